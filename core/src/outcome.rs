//! Outcomes: `report`, `refresh_result`, `begin_turn` and `tick` — marks, rotation,
//! refresh, fallback and waiting, decided by the pool's [`crate::policy::Policy`].

use serde::{Deserialize, Serialize};

use crate::classify::{Classification, OutcomeClass, classify};
use crate::decision::{Decision, LeaseId, Reason};
use crate::entry::{
    EntryId, LastError, ModelCooldown, RefreshSent, Status, StatusRecord, Token, validate_secret,
};
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::CanRefresh;
use crate::policy::{HintUsed, MarkContext};
use crate::pool_key::PoolKey;
use crate::redact::redact;
use crate::registry::{Lease, Registry};
use crate::response::Response;
use crate::rng::Rng;
use crate::route::Api;
use crate::secret::Secret;
use crate::select::{
    all_keys_busy, busy_entries, clear_expired, has_candidate, next_cooling_end, pick_excluding,
    pick_refreshable,
};
use crate::time::Millis;

/// What happened to a request, against a lease (or, without one, an entry id).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The pool.
    pub pool: PoolKey,
    /// The lease the request ran under.
    #[serde(default)]
    pub lease_id: Option<LeaseId>,
    /// The entry, when the host has no lease (e.g. a request made outside `acquire`).
    #[serde(default)]
    pub entry_id: Option<EntryId>,
    /// What the provider answered.
    pub response: Response,
}

/// How an OAuth refresh ended.
///
/// On the wire an object whose `type` names the variant (`refreshed`, `failed`,
/// `adopted`), unknown fields refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshOutcome {
    /// The provider issued a new pair.
    Refreshed {
        /// New access token.
        access_token: Secret,
        /// New refresh token (single-use tokens rotate; absent: keep the old one).
        refresh_token: Option<Secret>,
        /// New expiry.
        expires_at: Option<Millis>,
    },
    /// The refresh failed; `terminal` when the grant is gone (`invalid_grant`, reuse, ...).
    Failed {
        /// Whether the failure is terminal (re-login required).
        terminal: bool,
        /// Provider reason code.
        reason: Option<String>,
        /// Provider message.
        message: Option<String>,
    },
    /// Another process had already rotated the token; the host synced it in instead.
    Adopted,
}

/// The reason a host reports for a refresh [`RefreshSend::Interrupted`] refused (terminal).
pub const REFRESH_INTERRUPTED: &str = "refresh_interrupted";

/// What [`Registry::record_refresh_send`] found, right before a host sends a refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RefreshSend {
    /// Send it: the refresh is recorded as sent (persist the state before sending).
    Send,
    /// Another process already rotated the token: adopt it (`refresh_result` `adopted`).
    Adopt,
    /// A refresh of this very token was sent and never settled (its process stopped before
    /// recording the answer): the provider may have consumed it, so it is never sent again.
    /// Report `refresh_result` `failed` with reason `refresh_interrupted` (the entry is
    /// marked dead until a new login).
    Interrupted,
}

impl RefreshOutcome {
    /// Reads a refresh outcome (`{"type": "refreshed", ...}`) as `refresh_result` reads its
    /// `result`, refusing it with `invalid_input` (no secret quoted) likewise.
    pub fn from_value(value: serde_json::Value) -> Result<Self> {
        crate::codec::from_value(value)
    }
}

/// The field rules of [`RefreshOutcome`] on the wire, read without serde's `Content` buffer
/// (see `crate::codec::Tagged`; errors as serde's internally tagged derive gives them).
#[derive(Deserialize)]
#[serde(
    remote = "RefreshOutcome",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum RefreshOutcomeDef {
    Refreshed {
        #[serde(deserialize_with = "crate::codec::de_secret_required")]
        access_token: Secret,
        #[serde(default, deserialize_with = "crate::codec::de_secret")]
        refresh_token: Option<Secret>,
        #[serde(default)]
        expires_at: Option<Millis>,
    },
    Failed {
        #[serde(default)]
        terminal: bool,
        #[serde(default)]
        reason: Option<String>,
        #[serde(default)]
        message: Option<String>,
    },
    Adopted,
}

impl<'de> Deserialize<'de> for RefreshOutcome {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        crate::codec::Tagged::split(value, "internally tagged enum RefreshOutcome", true)
            .and_then(|tagged| RefreshOutcomeDef::deserialize(&tagged))
            .map_err(serde::de::Error::custom)
    }
}

/// The result of the refresh a `refresh` decision asked for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshResult {
    /// The pool.
    pub pool: PoolKey,
    /// The refreshed entry.
    pub entry_id: EntryId,
    /// The generation the `refresh` decision named.
    pub generation: u64,
    /// The lease the refresh ran under, if any.
    #[serde(default)]
    pub lease_id: Option<LeaseId>,
    /// How it ended.
    pub result: RefreshOutcome,
}

/// Entries whose cooldown ran out during a tick, and the next deadline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TickReport {
    /// `(pool, entry)` pairs that became available again.
    pub recovered: Vec<(PoolKey, EntryId)>,
    /// The earliest future cooldown deadline, for the host's timer.
    pub next_wakeup: Option<Millis>,
}

/// Which lease and entry an outcome is about.
pub(crate) struct Subject {
    pub(crate) pool: PoolKey,
    pub(crate) entry_id: EntryId,
    pub(crate) lease_id: LeaseId,
    pub(crate) model: Option<String>,
    /// HTTP status of the reported response, when there was one.
    pub(crate) status: Option<u16>,
    /// Whether a rotation may hand out another entry (false when a call ends on this
    /// outcome: its bytes already reached the caller).
    pub(crate) follow_up: bool,
    /// Which entries the host can refresh (the lease's; all without a lease).
    pub(crate) can_refresh: CanRefresh,
}

impl Registry {
    /// Reports a request's outcome and returns what to do next.
    pub fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
        self.report_with(now, report, true)
    }

    /// [`Registry::report`]; with `follow_up` false a rotation marks but hands out nothing.
    pub(crate) fn report_with(
        &mut self,
        now: Millis,
        report: &Report,
        follow_up: bool,
    ) -> Result<Decision> {
        let now = self.clock(now);
        let mut subject = self.subject(&report.pool, report.lease_id, report.entry_id.as_ref())?;
        if let Some(lease_id) = report.lease_id {
            self.check_not_driven(lease_id)?;
        }
        subject.status = report.response.status;
        subject.follow_up = follow_up;
        let mut response = report.response.clone();
        if response.model.is_none() {
            response.model.clone_from(&subject.model);
        }
        let verdict = classify(now, &response);
        self.decide(now, &subject, &verdict)
    }

    /// Closes a lease with no outcome: the host abandoned the request for a reason of its
    /// own (a bug, a cancellation). Nothing is marked and no persisted state changes.
    pub fn release(&mut self, key: &PoolKey, lease_id: LeaseId) -> Result<()> {
        self.pool(key)?;
        if self.lease(lease_id)?.pool != *key {
            return Err(Error::invalid_input(format!(
                "lease {} belongs to another pool",
                lease_id.0
            )));
        }
        self.check_not_driven(lease_id)?;
        self.settle_lease(&lease_id);
        Ok(())
    }

    /// Refuses a raw input on a lease a call opened, unless that call is applying it: the
    /// call's budgets cannot be bypassed.
    fn check_not_driven(&self, lease_id: LeaseId) -> Result<()> {
        match self.open_lease_ref(&lease_id).and_then(|l| l.call) {
            Some(call) if self.current_call != Some(call) => Err(Error::invalid_input(format!(
                "lease {} belongs to call {}: report it with call_report",
                lease_id.0, call.0
            ))),
            _ => Ok(()),
        }
    }

    /// Applies the result of a refresh the host performed after a `refresh` decision.
    ///
    /// On a lease a call opened (a store's single-flight protocol records the refresh
    /// itself), the decision is taken with the call's budgets and recorded for
    /// `call_resume` to follow.
    pub fn refresh_result(&mut self, now: Millis, result: &RefreshResult) -> Result<Decision> {
        let driven = result
            .lease_id
            .and_then(|id| self.open_lease_ref(&id))
            .and_then(|lease| lease.call)
            .filter(|_| self.current_call.is_none());
        if let Some(call) = driven {
            let decision = self.in_call(call, &result.pool, |r| r.refresh_result(now, result))?;
            self.record_for_call(call, &decision);
            return Ok(decision);
        }
        let now = self.clock(now);
        let subject = self.subject(&result.pool, result.lease_id, Some(&result.entry_id))?;
        let current = self
            .pool(&subject.pool)?
            .entry(&subject.entry_id)?
            .token
            .generation;
        let stale = current != result.generation;
        let interrupted = matches!(&result.result, RefreshOutcome::Failed { reason: Some(r), .. }
            if r == REFRESH_INTERRUPTED);
        if !stale && !interrupted && !matches!(result.result, RefreshOutcome::Adopted) {
            self.settle_refresh(now, &subject.pool, &subject.entry_id, current);
        }
        match &result.result {
            RefreshOutcome::Refreshed {
                access_token,
                refresh_token,
                expires_at,
            } => {
                if stale {
                    return Err(Error::new(
                        ErrorCode::StaleRefresh,
                        format!(
                            "generation {} is no longer current ({current}); adopt the stored token",
                            result.generation
                        ),
                    ));
                }
                validate_secret("access_token", access_token.expose())?;
                if let Some(token) = refresh_token {
                    validate_secret("refresh_token", token.expose())?;
                }
                self.pool_mut(&subject.pool)?
                    .update_entry(&subject.entry_id, |entry| {
                        let refresh = refresh_token
                            .clone()
                            .or_else(|| entry.token.refresh.clone());
                        let mut token =
                            Token::new(Some(access_token.clone()), refresh, *expires_at, now);
                        token.generation = current.saturating_add(1);
                        entry.token = token;
                        entry.status = StatusRecord {
                            at: now,
                            ..StatusRecord::default()
                        };
                    })?;
                self.mark_changed();
                Ok(self.use_again(now, &subject, Reason::Refreshed))
            }
            RefreshOutcome::Adopted => Ok(self.use_again(now, &subject, Reason::Adopted)),
            RefreshOutcome::Failed { .. } if stale => {
                Ok(self.use_again(now, &subject, Reason::Adopted))
            }
            RefreshOutcome::Failed {
                terminal,
                reason,
                message,
            } => {
                let terminal = *terminal
                    || reason
                        .as_deref()
                        .is_some_and(crate::classify::is_terminal_auth_reason);
                let class = if terminal {
                    OutcomeClass::AuthTerminal
                } else {
                    OutcomeClass::Auth
                };
                let verdict = Classification {
                    class,
                    reason: reason.clone(),
                    message: message.clone(),
                    hint: None,
                };
                let hint = self.mark(now, &subject, &verdict, None)?;
                Ok(self.rotate(now, &subject, Reason::RefreshFailed, hint))
            }
        }
    }

    /// Whether a refresh of `entry_id` from `generation` is still needed (false: another
    /// process already rotated the token and this registry has synced it in).
    pub fn check_refresh(
        &self,
        key: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
    ) -> Result<bool> {
        let entry = self.pool(key)?.entry(entry_id)?;
        if !entry.is_refreshable() {
            return Err(Error::new(
                ErrorCode::NotRefreshable,
                "entry has no refresh token",
            ));
        }
        Ok(entry.token.generation == generation)
    }

    /// Records that the refresh token of `generation` is about to be sent, so that it is
    /// never sent twice: [`RefreshSend::Send`] (recorded), [`RefreshSend::Adopt`] (the
    /// token is already newer) or [`RefreshSend::Interrupted`] (an earlier send of this
    /// token never settled). A store persists the record before the host sends anything.
    pub fn record_refresh_send(
        &mut self,
        now: Millis,
        key: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
    ) -> Result<RefreshSend> {
        let now = self.clock(now);
        if !self.check_refresh(key, entry_id, generation)? {
            return Ok(RefreshSend::Adopt);
        }
        let pool = self.pool_mut(key)?;
        if pool.entry(entry_id)?.refresh_interrupted() {
            return Ok(RefreshSend::Interrupted);
        }
        pool.update_entry(entry_id, |entry| {
            entry.refresh_sent = Some(RefreshSent {
                at: now,
                settled: false,
                generation,
            });
        })?;
        self.mark_changed();
        Ok(RefreshSend::Send)
    }

    /// Settles a refresh of `generation` recorded as sent (its answer is being applied).
    fn settle_refresh(&mut self, now: Millis, key: &PoolKey, entry_id: &EntryId, generation: u64) {
        let Some(pool) = self.pools.get_mut(key) else {
            return;
        };
        let sent = pool.get(entry_id).and_then(|e| e.refresh_sent);
        if sent.is_some_and(|s| !s.settled && s.generation == generation) {
            let _ = pool.update_entry(entry_id, |entry| {
                entry.refresh_sent = Some(RefreshSent {
                    at: now,
                    settled: true,
                    generation,
                });
            });
            self.mark_changed();
        }
    }

    /// Clears cooldowns that ran out; extra calls are harmless.
    pub fn tick(&mut self, now: Millis) -> TickReport {
        let now = self.clock(now);
        let mut report = TickReport::default();
        let mut changed = false;
        for pool in self.pools.values_mut() {
            let mut expired: Vec<EntryId> = pool.index().expired(now).cloned().collect();
            expired.sort_unstable();
            changed |= clear_expired(pool, now);
            report
                .recovered
                .extend(expired.into_iter().map(|id| (pool.key.clone(), id)));
            let pending = next_cooling_end(pool, now, None);
            report.next_wakeup = report.next_wakeup.into_iter().chain(pending).min();
        }
        if changed {
            self.mark_changed();
        }
        report
    }

    fn subject(
        &self,
        key: &PoolKey,
        lease: Option<LeaseId>,
        entry: Option<&EntryId>,
    ) -> Result<Subject> {
        let pool = self.pool(key)?;
        match (lease, entry) {
            (Some(lease_id), _) => {
                let Lease {
                    pool: lease_pool,
                    entry_id,
                    model,
                    can_refresh,
                    ..
                } = self.lease(lease_id)?;
                if lease_pool != key || entry.is_some_and(|e| e != entry_id) {
                    return Err(Error::invalid_input(format!(
                        "lease {} belongs to another pool or entry",
                        lease_id.0
                    )));
                }
                pool.entry(entry_id)?;
                Ok(Subject {
                    pool: key.clone(),
                    entry_id: entry_id.clone(),
                    lease_id,
                    model: model.clone(),
                    status: None,
                    follow_up: true,
                    can_refresh: *can_refresh,
                })
            }
            (None, Some(entry_id)) => {
                pool.entry(entry_id)?;
                let lease_id = self.lease_on(key, entry_id).unwrap_or(LeaseId(0));
                Ok(Subject {
                    pool: key.clone(),
                    entry_id: entry_id.clone(),
                    lease_id,
                    model: None,
                    status: None,
                    follow_up: true,
                    can_refresh: CanRefresh::All,
                })
            }
            (None, None) => Err(Error::invalid_input(
                "a report needs a lease_id or an entry_id",
            )),
        }
    }

    /// The policy's answer to one classified outcome.
    fn decide(
        &mut self,
        now: Millis,
        subject: &Subject,
        verdict: &Classification,
    ) -> Result<Decision> {
        let class = verdict.class;
        let pool = self.pool(&subject.pool)?;
        let policy = pool.config.policy.clone();
        let entry = pool.entry(&subject.entry_id)?;
        let model = subject.model.as_deref();
        let status = subject.status;
        match class {
            OutcomeClass::Success => {
                if entry.status.streak > 0 && entry.effective_status() == Status::Ok {
                    self.pool_mut(&subject.pool)?
                        .update_entry(&subject.entry_id, |entry| entry.status.streak = 0)?;
                    self.mark_changed();
                }
                let pool = self.pool_mut(&subject.pool)?;
                pool.turn.retried_rate_limit.remove(&subject.entry_id);
                self.settle_lease(&subject.lease_id);
                Ok(Decision::Done)
            }
            OutcomeClass::ClientError => {
                self.settle_lease(&subject.lease_id);
                Ok(Decision::Fail {
                    reason: class.into(),
                    status,
                })
            }
            OutcomeClass::ServerError
            | OutcomeClass::NetworkError
            | OutcomeClass::UpstreamRateLimit => {
                if class == OutcomeClass::UpstreamRateLimit && self.has_fallback_step(&subject.pool)
                {
                    return Ok(self.give_up(now, subject, class.into(), status));
                }
                Ok(self
                    .retry_same(now, subject, verdict)
                    .unwrap_or_else(|| self.give_up(now, subject, class.into(), status)))
            }
            OutcomeClass::Entitlement | OutcomeClass::NotFound => {
                Ok(self.give_up(now, subject, class.into(), status))
            }
            OutcomeClass::ModelEntitlement => {
                let Some(model) = model.map(str::to_owned) else {
                    let hint = self.mark(now, subject, verdict, None)?;
                    return Ok(self.rotate(now, subject, class.into(), hint));
                };
                self.bench_model(now, subject, &model, policy.cooldown_model_entitlement_ms);
                Ok(self.rotate(now, subject, class.into(), None))
            }
            OutcomeClass::RateLimit => {
                if self.benched_since_lease(now, subject) {
                    // An echo of a limit another request's outcome already benched: the
                    // key is benched once, and this request rotates too.
                    return Ok(self.rotate(now, subject, class.into(), None));
                }
                let pool = self.pool(&subject.pool)?;
                let entry = pool.entry(&subject.entry_id)?;
                let already = entry.effective_status() == Status::Exhausted;
                let retry_elsewhere = self.rate_limit_retry_pending(
                    &subject.pool,
                    &subject.entry_id,
                    &subject.lease_id,
                );
                let room = pool.live_count() >= 2
                    && has_candidate(pool, now, model, Some(&subject.entry_id));
                if !already && !room && self.has_fallback_step(&subject.pool) {
                    self.mark(now, subject, verdict, model)?;
                    return Ok(self.give_up(now, subject, class.into(), status));
                }
                let retried = pool.turn.retried_rate_limit.contains(&subject.entry_id);
                let hint_within =
                    |limit: u64| verdict.hint.is_some_and(|h| h.at <= now.plus(limit));
                // Another call already retries this key for its 429: one same-key retry
                // per key at a time, so this 429 benches it.
                let wants_retry = !already
                    && !retry_elsewhere
                    && if !room || policy.retry_first_rate_limit {
                        !retried
                    } else {
                        !retried && policy.rotate_unless_hint_within_ms.is_some_and(hint_within)
                    };
                if wants_retry && let Some(decision) = self.retry_same(now, subject, verdict) {
                    let pool = self.pool_mut(&subject.pool)?;
                    pool.turn
                        .retried_rate_limit
                        .insert(subject.entry_id.clone());
                    if let Decision::RetrySame { lease_id, .. } = &decision {
                        self.note_rate_limit_retry(lease_id);
                    }
                    return Ok(decision);
                }
                let hint = self.mark(now, subject, verdict, model)?;
                Ok(self.rotate(now, subject, class.into(), hint))
            }
            OutcomeClass::Auth
                if entry.is_refreshable() && subject.can_refresh.covers(&subject.pool, entry) =>
            {
                let refreshes = pool
                    .turn
                    .refreshes
                    .get(&subject.entry_id)
                    .copied()
                    .unwrap_or(0);
                if refreshes >= policy.max_refreshes_per_turn {
                    return Ok(self.give_up(now, subject, Reason::RefreshCap, status));
                }
                let generation = entry.token.generation;
                let pool = self.pool_mut(&subject.pool)?;
                pool.turn
                    .refreshes
                    .insert(subject.entry_id.clone(), refreshes + 1);
                Ok(Decision::Refresh {
                    entry_id: subject.entry_id.clone(),
                    lease_id: self.ensure_lease(now, subject),
                    generation,
                    reason: class.into(),
                })
            }
            OutcomeClass::UsageLimit
            | OutcomeClass::Billing
            | OutcomeClass::BillingUnverified
            | OutcomeClass::Auth
            | OutcomeClass::AuthTerminal
            | OutcomeClass::Forbidden => {
                let hint = self.mark(now, subject, verdict, model)?;
                Ok(self.rotate(now, subject, class.into(), hint))
            }
        }
    }

    /// A same-entry retry if the turn's budget allows and the delay is at most the longest
    /// backoff; the lease stays open.
    fn retry_same(
        &mut self,
        now: Millis,
        subject: &Subject,
        verdict: &Classification,
    ) -> Option<Decision> {
        let pool = self.pools.get_mut(&subject.pool)?;
        let policy = &pool.config.policy;
        if pool.turn.same_retries >= policy.max_same_retries_per_turn {
            return None;
        }
        let attempt = pool.turn.same_retries + 1;
        let (delay_ms, hint) = policy.retry_delay(now, verdict.hint, attempt, &mut self.rng);
        if delay_ms > policy.backoff_max_ms {
            // A reset further away than the longest backoff: waiting on this key is worse
            // than benching it (and rotating, falling back or waiting for the pool).
            return None;
        }
        pool.turn.same_retries = attempt;
        let lease_id = self.ensure_lease(now, subject);
        Some(Decision::RetrySame {
            entry_id: subject.entry_id.clone(),
            lease_id,
            delay_ms,
            reason: verdict.class.into(),
            hint,
        })
    }

    /// Marks the entry (and siblings sharing its secret) exhausted or dead; returns the hint used.
    fn mark(
        &mut self,
        now: Millis,
        subject: &Subject,
        verdict: &Classification,
        model: Option<&str>,
    ) -> Result<Option<HintUsed>> {
        let pool = self.pool(&subject.pool)?;
        let policy = pool.config.policy.clone();
        let streak = pool.entry(&subject.entry_id)?.status.streak;
        let context = MarkContext {
            now,
            class: verdict.class,
            sole: pool.live_count() <= 1,
            streak,
            hint: verdict.hint,
        };
        let api = Api::of_pool(pool.config.api, &subject.pool);
        // Provider text may echo a key: redacted before it is stored (and shown).
        let entry = pool.get(&subject.entry_id);
        let scrub = |text: &Option<String>| text.as_deref().map(|t| redact(t, pool, entry));
        let (reason, message) = (scrub(&verdict.reason), scrub(&verdict.message));
        let (until, hint) = policy.cooldown(&context, &mut self.rng);
        if policy.model_scoped_rate_limits.applies_to(api)
            && verdict.class == OutcomeClass::RateLimit
            && let Some(model) = model
        {
            self.bench_model(now, subject, model, now.until(until));
            return Ok(hint);
        }
        let dead = verdict.class == OutcomeClass::AuthTerminal;
        let record = StatusRecord {
            status: if dead {
                Status::Dead
            } else {
                Status::Exhausted
            },
            at: now,
            error: Some(LastError {
                code: subject.status,
                reason,
                message,
            }),
            until: (!dead).then_some(until),
            failure: Some(verdict.class),
            streak: streak.saturating_add(1),
        };
        let pool = self.pool_mut(&subject.pool)?;
        for id in pool.sharing_secret(&subject.entry_id) {
            pool.update_entry(&id, |entry| {
                // A late report (a lease taken before another one marked the entry) never
                // shortens a bench in force, nor brings a dead entry back.
                let current = entry.effective_status();
                if current == Status::Dead {
                    return;
                }
                let mut record = record.clone();
                // Stamped no earlier than the token it is about: a token written "later"
                // by a process whose clock runs ahead would otherwise clear this mark on
                // merge (a token written after a status clears it) until this clock caught
                // up. The cooldown itself still runs on this process's clock.
                record.at = record.at.max(entry.token.updated_at);
                if current == Status::Exhausted
                    && let (Some(held), Some(new)) = (entry.status.until, record.until)
                    && held > new
                {
                    record.until = Some(held);
                }
                entry.status = record;
            })?;
        }
        self.mark_changed();
        Ok(hint)
    }

    fn bench_model(&mut self, now: Millis, subject: &Subject, model: &str, duration_ms: u64) {
        let Some(pool) = self.pools.get_mut(&subject.pool) else {
            return;
        };
        for id in pool.sharing_secret(&subject.entry_id) {
            let _ = pool.update_entry(&id, |entry| {
                let until = now.plus(duration_ms);
                let slot = entry
                    .model_cooldowns
                    .entry(model.to_owned())
                    .or_insert(ModelCooldown { until, at: now });
                *slot = ModelCooldown {
                    until: slot.until.max(until),
                    at: now,
                };
            });
        }
        self.mark_changed();
    }

    /// Settles the failed lease and hands out another entry, or falls back / waits / fails.
    fn rotate(
        &mut self,
        now: Millis,
        subject: &Subject,
        reason: Reason,
        hint: Option<HintUsed>,
    ) -> Decision {
        self.settle_lease(&subject.lease_id);
        if !subject.follow_up {
            return Decision::Fail {
                reason,
                status: subject.status,
            };
        }
        let writer = self.writer.clone();
        let model = subject.model.as_deref();
        let Some(pool) = self.pools.get_mut(&subject.pool) else {
            return Decision::Fail {
                reason,
                status: None,
            };
        };
        clear_expired(pool, now);
        let mut skip = busy_entries(pool, now);
        let busy = !skip.is_empty();
        skip.push(&subject.entry_id);
        let pick = |skip: &[&EntryId], rng: &mut Rng| pick_excluding(pool, now, model, skip, rng);
        let next = pick_refreshable(
            pool,
            now,
            model,
            subject.can_refresh,
            skip,
            &mut self.rng,
            pick,
        );
        let all_busy =
            next.is_none() && busy && has_candidate(pool, now, model, Some(&subject.entry_id));
        if all_busy {
            return match all_keys_busy(now) {
                Decision::Wait { until, reason, .. } => Decision::Wait {
                    until,
                    reason,
                    hint,
                },
                other => other,
            };
        }
        let Some(next) = next else {
            let refresh = subject.can_refresh == CanRefresh::All;
            let decision = self.no_entry_decision(now, &subject.pool, model, reason, refresh);
            return match decision {
                Decision::Wait { until, reason, .. } => Decision::Wait {
                    until,
                    reason,
                    hint,
                },
                Decision::Fail { reason, .. } => Decision::Fail {
                    reason,
                    status: subject.status,
                },
                other => other,
            };
        };
        // `pick` returned an entry of this pool.
        let _ = pool.count_selection(&next, &writer);
        self.mark_changed();
        let lease_id = self.open_lease(Lease {
            pool: subject.pool.clone(),
            entry_id: next.clone(),
            model: subject.model.clone(),
            session: None,
            call: None,
            opened_at: now,
            retrying_rate_limit: false,
            can_refresh: subject.can_refresh,
        });
        Decision::Use {
            entry_id: next,
            lease_id,
            reason: Some(reason),
            hint,
        }
    }

    /// Whether the subject's entry was benched (entry-wide, or for the subject's model) at
    /// or after its lease was opened and still is: this outcome then echoes one another
    /// request already reported.
    fn benched_since_lease(&self, now: Millis, subject: &Subject) -> bool {
        let Some(lease) = self.open_lease_ref(&subject.lease_id) else {
            return false;
        };
        let Ok(entry) = self
            .pool(&subject.pool)
            .and_then(|pool| pool.entry(&subject.entry_id))
        else {
            return false;
        };
        let entry_wide = entry.effective_status() == Status::Exhausted
            && entry.status.at >= lease.opened_at
            && entry.status.until.is_some_and(|until| until > now);
        let for_model = subject
            .model
            .as_ref()
            .and_then(|model| entry.model_cooldowns.get(model))
            .is_some_and(|bench| bench.at >= lease.opened_at && bench.until > now);
        entry_wide || for_model
    }

    /// `use` the same entry again after a refresh or adoption.
    fn use_again(&mut self, now: Millis, subject: &Subject, reason: Reason) -> Decision {
        Decision::Use {
            entry_id: subject.entry_id.clone(),
            lease_id: self.ensure_lease(now, subject),
            reason: Some(reason),
            hint: None,
        }
    }

    /// The subject's lease, opening one when the report came by entry id.
    fn ensure_lease(&mut self, now: Millis, subject: &Subject) -> LeaseId {
        if self.is_open_lease(&subject.lease_id) {
            return subject.lease_id;
        }
        self.open_lease(Lease {
            pool: subject.pool.clone(),
            entry_id: subject.entry_id.clone(),
            model: subject.model.clone(),
            session: None,
            call: None,
            opened_at: now,
            retrying_rate_limit: false,
            can_refresh: subject.can_refresh,
        })
    }
}
