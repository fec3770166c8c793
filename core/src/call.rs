//! The call driver (SPEC §7): one user request is one call, and one turn.
//!
//! A host starts a call and is told exactly one next [`Action`] at a time: `send` the
//! request with a credential, `sleep` until an instant, `refresh` an entry, `done` or
//! `give_up`. It reports what each action produced (`call_report`, `call_refreshed`,
//! `call_resume`) and gets the next one. The driver follows the pool's decisions for the
//! host, within the call's budgets; every rule lives here, so the helpers, transports and
//! fetch wrappers of every language are thin loops over it.
//!
//! Each call owns its turn state (refresh counts, same-key retries, fallback position), kept
//! under its call id like leases: concurrent calls never reset or spend each other's budgets.

mod given_up;
mod probe;

pub(crate) use given_up::GivenUp;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::decision::{Decision, LeaseId, Reason};
use crate::entry::{AuthType, EntryId, validate_name};
use crate::error::{Error, ErrorCode, Result};
use crate::oauth::CanRefresh;
use crate::outcome::{RefreshOutcome, RefreshResult, Report};
use crate::policy::HintUsed;
use crate::pool_key::PoolKey;
use crate::registry::{Registry, Turn};
use crate::response::Response;
use crate::route::{Api, Auth, rebase_url};
use crate::secret::Secret;
use crate::select::AcquireRequest;
use crate::time::Millis;

/// Id of an open call: counts from 1 in each registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CallId(pub u64);

/// Default longest single wait or retry delay of a call.
pub const DEFAULT_MAX_WAIT_MS: u64 = 60_000;
/// Default total of all waits of a call.
pub const DEFAULT_MAX_TOTAL_WAIT_MS: u64 = 120_000;
/// Sends allowed beyond the usable entries of the chain, by default.
pub const EXTRA_SENDS: u32 = 3;

/// Starts a call: one user request on a pool.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallStart {
    /// The primary pool.
    pub pool: PoolKey,
    /// The model asked for (model benches apply; a fallback may switch it).
    #[serde(default)]
    pub model: Option<String>,
    /// A sticky session key.
    #[serde(default)]
    pub session: Option<String>,
    /// Provider sends in the call, resends after a refresh included (default: the usable
    /// entries of the pool and its fallback chain, plus 3).
    #[serde(default)]
    pub max_sends: Option<u32>,
    /// Longest single wait or retry delay (default 60 s); a longer one gives up.
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
    /// All waits of the call together (default 120 s).
    #[serde(default)]
    pub max_total_wait_ms: Option<u64>,
    /// Fallback hops (default and maximum: the primary's chain length).
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// The API shape of the request the host holds (a transport's or `fetch`'s call):
    /// sends then carry `api` and `auth`, and a pool of another shape ends the call with
    /// `api_mismatch`. Default with `url`: the primary pool's shape.
    #[serde(default)]
    pub api: Option<Api>,
    /// The request's URL: sends then carry the `url` to send to, moved onto the entry's
    /// `base_url` when it has one, and a fallback pool's entry without one ends the call
    /// with `no_base_url`.
    #[serde(default)]
    pub url: Option<String>,
    /// The host's identity of the request (a digest of its method, URL and body): a call
    /// with one that gives up is kept, for a client's retry of the request to continue.
    #[serde(default)]
    pub request_id: Option<String>,
    /// The request is its client's retry of an earlier send of it (the openai and
    /// anthropic SDKs send `x-stainless-retry-count` ≥ 1): when the call of its
    /// `request_id` gave up, this continues that call (same id, budgets spent so far, the
    /// time since the give-up counted as waited) instead of starting a new turn.
    #[serde(default)]
    pub client_retry: bool,
    /// The host can ask the provider whether a rate-limit bench still holds: instead of
    /// waiting or giving up on a key benched longer than the policy's
    /// `quota_probe_interval_ms`, the call answers a `probe` action first.
    #[serde(default)]
    pub probe: bool,
    /// Spread concurrent calls (parallel sub-agents): each acquire picks a usable entry with
    /// the fewest open leases, as `acquire` with `spread` does.
    #[serde(default)]
    pub spread: bool,
    /// Which OAuth entries the host can refresh (default: all). The call's acquires pass
    /// over expiring entries it cannot refresh (as `acquire` does), and a 401 on one marks
    /// and rotates instead of asking for a `refresh`.
    #[serde(default)]
    pub can_refresh: CanRefresh,
}

impl CallStart {
    /// A call on `pool` with no model, session or route and the default budgets; set the
    /// fields to change them (`CallStart { max_sends: Some(2), ..CallStart::new(pool) }`).
    #[must_use]
    pub const fn new(pool: PoolKey) -> Self {
        Self {
            pool,
            model: None,
            session: None,
            max_sends: None,
            max_wait_ms: None,
            max_total_wait_ms: None,
            max_hops: None,
            api: None,
            url: None,
            request_id: None,
            client_retry: false,
            probe: false,
            spread: false,
            can_refresh: CanRefresh::All,
        }
    }
}

/// What a `send` produced.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallReport {
    /// The call.
    pub call_id: CallId,
    /// What the provider answered (a returned error response is an outcome like a raised one).
    pub response: Response,
    /// Whether bytes of the body already reached the caller (a stream): a failure then ends
    /// the call, after it is classified and marked, and nothing is resent.
    #[serde(default)]
    pub delivered: bool,
}

/// The budget that ended a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Budget {
    /// `max_sends`.
    MaxSends,
    /// `max_wait_ms`.
    MaxWaitMs,
    /// `max_total_wait_ms`.
    MaxTotalWaitMs,
    /// `max_hops`.
    MaxHops,
}

/// The one next thing the host does for a call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
#[must_use]
pub enum Action {
    /// Send the request with this entry's credential, then `call_report` what came back.
    Send {
        /// The call.
        call_id: CallId,
        /// The pool (another than the primary after a fallback).
        pool: PoolKey,
        /// The model to ask for (rewritten by a fallback step that names one).
        #[serde(skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// The entry.
        entry_id: EntryId,
        /// How to present the credential (`x-api-key` or Bearer is the host's mapping).
        auth_type: AuthType,
        /// The lease the send runs under.
        lease_id: LeaseId,
        /// The API key or access token.
        #[serde(serialize_with = "crate::codec::ser_secret")]
        access_token: Option<Secret>,
        /// The entry's endpoint, when it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        /// Why this send (absent for a plain selection): a retry's or rotation's cause, or
        /// `refreshed` / `adopted`.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        /// A routed call's (`api` or `url` given) request placement.
        #[serde(flatten, skip_serializing_if = "Option::is_none")]
        route: Option<Route>,
    },
    /// Ask the provider whether this entry's rate-limit bench still holds (the call was
    /// started with `probe`), then `call_probed`.
    Probe {
        /// The call.
        call_id: CallId,
        /// The pool.
        pool: PoolKey,
        /// The benched entry.
        entry_id: EntryId,
        /// How to present the credential.
        auth_type: AuthType,
        /// The API key or access token to probe with.
        #[serde(serialize_with = "crate::codec::ser_secret")]
        access_token: Option<Secret>,
        /// The entry's endpoint, when it has one.
        #[serde(skip_serializing_if = "Option::is_none")]
        base_url: Option<String>,
        /// The bench's cause.
        reason: Reason,
    },
    /// Sleep until `until`, then `call_resume`.
    Sleep {
        /// The call.
        call_id: CallId,
        /// When to resume.
        until: Millis,
        /// Why.
        reason: Reason,
        /// The hint the instant came from.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<HintUsed>,
    },
    /// Refresh this entry's OAuth token by the single-flight protocol (SPEC §5), then
    /// `call_refreshed` (or `refresh_result` on the lease and `call_resume`).
    Refresh {
        /// The call.
        call_id: CallId,
        /// The pool.
        pool: PoolKey,
        /// The entry.
        entry_id: EntryId,
        /// The lease, still open.
        lease_id: LeaseId,
        /// The token generation to replace.
        generation: u64,
        /// Why.
        reason: Reason,
    },
    /// The last send succeeded: hand its response to the caller.
    Done {
        /// The call.
        call_id: CallId,
        /// The pool that served.
        pool: PoolKey,
        /// The entry that served.
        entry_id: EntryId,
    },
    /// Stop: the real cause, the last provider status, when a key is expected back, and the
    /// budget that ended the call (absent when the policy did).
    GiveUp {
        /// The call.
        call_id: CallId,
        /// The real cause.
        reason: Reason,
        /// The last provider status of the call, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// When a key is expected back, if the decision said.
        #[serde(skip_serializing_if = "Option::is_none")]
        until: Option<Millis>,
        /// The budget that ran out.
        #[serde(skip_serializing_if = "Option::is_none")]
        budget: Option<Budget>,
    },
}

/// Where a routed call's send goes: the pool's API shape, the credential's headers and,
/// when the call has a URL, the URL to send to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The API shape of the send's pool.
    pub api: Api,
    /// Where the credential goes on the request.
    pub auth: Auth,
    /// The URL to send to (the call's, on the entry's `base_url` when it has one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// One open call (in memory only, like leases).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    pool: PoolKey,
    primary: PoolKey,
    /// The shape a routed call's request has (`None`: not routed).
    api: Option<Api>,
    url: Option<String>,
    /// The host's identity of the request, if it gave one (`CallStart::request_id`).
    request_id: Option<String>,
    /// Whether the host can probe a rate-limit bench (`CallStart::probe`).
    probe: bool,
    /// Whether its acquires spread (`CallStart::spread`).
    spread: bool,
    /// Which entries the host can refresh (`CallStart::can_refresh`).
    can_refresh: CanRefresh,
    model: Option<String>,
    session: Option<String>,
    max_sends: u32,
    max_wait_ms: u64,
    max_total_wait_ms: u64,
    max_hops: u32,
    sends: u32,
    waited_ms: u64,
    hops: u32,
    /// The lease the call holds open, if any.
    lease: Option<LeaseId>,
    last_status: Option<u16>,
    last_reason: Option<Reason>,
    next: Next,
    /// The call's turn on each pool it touched.
    turns: BTreeMap<PoolKey, Turn>,
}

/// What the call waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Next {
    /// Nothing yet: the call is being started.
    Start,
    /// The outcome of a send on this entry.
    Report(EntryId),
    /// The result of a refresh of this entry from this generation.
    Refresh(EntryId, u64),
    /// The end of a sleep, then `then`.
    Sleep {
        until: Millis,
        reason: Reason,
        hint: Option<HintUsed>,
        then: Box<Decision>,
    },
    /// A decision recorded on the call's lease (a store's refresh protocol), to follow.
    Follow(Box<Decision>),
    /// What a probe of this entry found, then `then` unless it reopened the entry.
    Probe(EntryId, Box<Decision>),
}

impl Registry {
    /// Starts a call on `start.pool`: its first action. A client's retry of a request
    /// whose call gave up continues that call instead (`CallStart::client_retry`).
    pub fn start_call(&mut self, now: Millis, start: &CallStart) -> Result<Action> {
        let now = self.clock(now);
        if let Some(request_id) = &start.request_id {
            validate_name("request_id", request_id)?;
            if start.client_retry
                && let Some((id, call)) = self.take_given_up(now, request_id)
            {
                self.calls.insert(id, call);
                return self.acquire_and_follow(now, id);
            }
        }
        let call = self.new_call(start)?;
        let id = CallId(self.next_call);
        self.next_call = self.next_call.saturating_add(1);
        self.calls.insert(id, call);
        self.acquire_and_follow(now, id)
    }

    /// A call for `start`, with its budgets' defaults filled in.
    fn new_call(&self, start: &CallStart) -> Result<Call> {
        let pool = self.pool(&start.pool)?;
        let chain_len = u32::try_from(pool.config.fallback.len()).unwrap_or(u32::MAX);
        let usable: usize = std::iter::once(&start.pool)
            .chain(pool.config.fallback.iter().map(|t| &t.pool))
            .filter_map(|key| self.pools.get(key))
            .map(crate::registry::Pool::live_count)
            .sum();
        let default_sends = u32::try_from(usable)
            .unwrap_or(u32::MAX)
            .saturating_add(EXTRA_SENDS);
        let api = start.api.or_else(|| {
            let primary = Api::of_pool(pool.config.api, &start.pool);
            start.url.as_ref().map(|_| primary)
        });
        Ok(Call {
            pool: start.pool.clone(),
            primary: start.pool.clone(),
            api,
            url: start.url.clone(),
            request_id: start.request_id.clone(),
            probe: start.probe,
            spread: start.spread,
            can_refresh: start.can_refresh,
            model: start.model.clone(),
            session: start.session.clone(),
            max_sends: start.max_sends.unwrap_or(default_sends),
            max_wait_ms: start.max_wait_ms.unwrap_or(DEFAULT_MAX_WAIT_MS),
            max_total_wait_ms: start.max_total_wait_ms.unwrap_or(DEFAULT_MAX_TOTAL_WAIT_MS),
            max_hops: start.max_hops.map_or(chain_len, |h| h.min(chain_len)),
            sends: 0,
            waited_ms: 0,
            hops: 0,
            lease: None,
            last_status: None,
            last_reason: None,
            next: Next::Start,
            turns: BTreeMap::new(),
        })
    }

    /// Reports what a `send` produced; the next action.
    pub fn call_report(&mut self, now: Millis, report: &CallReport) -> Result<Action> {
        let now = self.clock(now);
        let id = report.call_id;
        let call = self.call(id)?;
        let (Next::Report(_), Some(lease_id)) = (&call.next, call.lease) else {
            return Err(Error::invalid_input(format!(
                "call {} is not waiting for a response",
                id.0
            )));
        };
        let pool = call.pool.clone();
        let raw = Report {
            pool: pool.clone(),
            lease_id: Some(lease_id),
            entry_id: None,
            response: report.response.clone(),
        };
        let decision = self.in_call(id, &pool, |r| r.report_with(now, &raw, !report.delivered))?;
        let call = self.call_mut(id)?;
        if report.response.status.is_some() || report.response.network_error.is_some() {
            call.last_status = report.response.status;
        }
        if report.delivered && decision != Decision::Done {
            // Bytes reached the caller: the outcome is recorded, nothing is resent.
            let reason = reason_of(&decision).unwrap_or(Reason::NoUsableEntry);
            return Ok(self.end_call(id, reason, None, None));
        }
        self.follow(now, id, decision)
    }

    /// Records how the refresh a `refresh` action asked for ended; the next action.
    pub fn call_refreshed(
        &mut self,
        now: Millis,
        id: CallId,
        outcome: &RefreshOutcome,
    ) -> Result<Action> {
        let now = self.clock(now);
        let call = self.call(id)?;
        let (Next::Refresh(entry_id, generation), Some(lease_id)) = (&call.next, call.lease) else {
            return Err(Error::invalid_input(format!(
                "call {} is not waiting for a refresh",
                id.0
            )));
        };
        let result = RefreshResult {
            pool: call.pool.clone(),
            entry_id: entry_id.clone(),
            generation: *generation,
            lease_id: Some(lease_id),
            result: outcome.clone(),
        };
        let pool = call.pool.clone();
        let decision = self.in_call(id, &pool, |r| r.refresh_result(now, &result))?;
        self.follow(now, id, decision)
    }

    /// Resumes a call after a `sleep` (an early resume answers the same sleep) or after a
    /// `refresh_result` on its lease; the next action.
    pub fn call_resume(&mut self, now: Millis, id: CallId) -> Result<Action> {
        let now = self.clock(now);
        let call = self.call(id)?;
        match &call.next {
            Next::Sleep {
                until,
                reason,
                hint,
                ..
            } if now < *until => Ok(Action::Sleep {
                call_id: id,
                until: *until,
                reason: *reason,
                hint: *hint,
            }),
            // A pool's wait ended: acquire again.
            Next::Sleep { then, .. } if matches!(then.as_ref(), Decision::Wait { .. }) => {
                self.acquire_and_follow(now, id)
            }
            // A same-key retry whose key another request benched meanwhile: not resent
            // there; the lease is released with no mark and the call acquires again.
            Next::Sleep { then, .. }
                if matches!(then.as_ref(), Decision::Use { entry_id, .. }
                    if !self.usable_for_call(now, id, entry_id)) =>
            {
                if let Some(lease) = self.call_mut(id)?.lease.take() {
                    self.settle_lease(&lease);
                }
                self.acquire_and_follow(now, id)
            }
            Next::Sleep { then, .. } | Next::Follow(then) => {
                let decision = then.as_ref().clone();
                self.follow(now, id, decision)
            }
            Next::Start | Next::Report(_) | Next::Refresh(..) | Next::Probe(..) => {
                Err(Error::invalid_input(format!(
                    "call {} is waiting for a report, not a resume",
                    id.0
                )))
            }
        }
    }

    /// Cancels a call: its lease is released with no mark (the request counter already
    /// taken stands).
    pub fn cancel_call(&mut self, id: CallId) -> Result<()> {
        let call = self.calls.remove(&id).ok_or_else(|| unknown_call(id))?;
        if let Some(lease) = call.lease {
            self.settle_lease(&lease);
        }
        Ok(())
    }

    /// Whether `entry` of the call's current pool can serve the call's model at `now`.
    fn usable_for_call(&self, now: Millis, id: CallId, entry: &EntryId) -> bool {
        let Ok(call) = self.call(id) else {
            return false;
        };
        self.pool(&call.pool)
            .and_then(|pool| {
                let skew = pool.config.policy.refresh_skew_ms;
                let entry = pool.entry(entry)?;
                Ok(entry
                    .availability(now, call.model.as_deref(), skew)
                    .is_usable())
            })
            .unwrap_or(false)
    }

    /// The open call `id`.
    pub(crate) fn call(&self, id: CallId) -> Result<&Call> {
        self.calls.get(&id).ok_or_else(|| unknown_call(id))
    }

    fn call_mut(&mut self, id: CallId) -> Result<&mut Call> {
        self.calls.get_mut(&id).ok_or_else(|| unknown_call(id))
    }

    /// Runs `op` on `pool` with the call's turn in force (lent to the pool for the input,
    /// so the policy reads and spends this call's budgets) and new leases tagged with the
    /// call.
    pub(crate) fn in_call<T>(
        &mut self,
        id: CallId,
        pool: &PoolKey,
        op: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<T> {
        let turn = self.call_mut(id)?.turns.remove(pool).unwrap_or_default();
        let shelved = std::mem::replace(&mut self.pool_mut(pool)?.turn, turn);
        let outer = self.current_call.replace(id);
        let out = op(self);
        self.current_call = outer;
        if let Some(pool_state) = self.pools.get_mut(pool) {
            let turn = std::mem::replace(&mut pool_state.turn, shelved);
            if let Some(call) = self.calls.get_mut(&id) {
                call.turns.insert(pool.clone(), turn);
            }
        }
        out
    }

    /// An acquire on the call's current pool and model; for a routed call on a pool of
    /// another API shape, a `fail` with `api_mismatch` instead.
    fn acquire_for(&mut self, now: Millis, id: CallId) -> Result<Decision> {
        let call = self.call(id)?;
        if let Some(api) = call.api {
            let pool = self.pool(&call.pool)?;
            if Api::of_pool(pool.config.api, &call.pool) != api {
                return Ok(Decision::Fail {
                    reason: Reason::ApiMismatch,
                    status: None,
                });
            }
        }
        let request = AcquireRequest {
            pool: call.pool.clone(),
            model: call.model.clone(),
            session: call.session.clone(),
            spread: call.spread,
            can_refresh: call.can_refresh,
        };
        self.in_call(id, &request.pool, |r| r.acquire(now, &request))
    }

    fn acquire_and_follow(&mut self, now: Millis, id: CallId) -> Result<Action> {
        let decision = self.acquire_for(now, id);
        self.follow_result(now, id, decision)
    }

    /// Follows a decision that may have failed: an error ends the call, then propagates.
    fn follow_result(
        &mut self,
        now: Millis,
        id: CallId,
        decision: Result<Decision>,
    ) -> Result<Action> {
        match decision {
            Ok(decision) => self.follow(now, id, decision),
            Err(e) => {
                let _ = self.cancel_call(id);
                Err(e)
            }
        }
    }

    /// Turns core's decision into the call's next action, within the call's budgets.
    fn follow(&mut self, now: Millis, id: CallId, mut decision: Decision) -> Result<Action> {
        loop {
            let call = self.call_mut(id)?;
            if let Some(reason) = reason_of(&decision) {
                call.last_reason = Some(reason);
            }
            let cause = call.last_reason.unwrap_or(Reason::NoUsableEntry);
            return Ok(match decision {
                Decision::Done => {
                    let call = self.calls.remove(&id).ok_or_else(|| unknown_call(id))?;
                    let Next::Report(entry_id) = call.next else {
                        return Err(Error::new(ErrorCode::Internal, "done without a send"));
                    };
                    Action::Done {
                        call_id: id,
                        pool: call.pool,
                        entry_id,
                    }
                }
                Decision::Use {
                    entry_id,
                    lease_id,
                    reason,
                    ..
                } => {
                    call.lease = Some(lease_id);
                    if call.sends >= call.max_sends {
                        return Ok(self.end_call(id, cause, None, Some(Budget::MaxSends)));
                    }
                    return self.send(id, entry_id, lease_id, reason);
                }
                Decision::RetrySame {
                    entry_id,
                    lease_id,
                    delay_ms,
                    reason,
                    hint,
                } => {
                    call.lease = Some(lease_id);
                    let resend = Decision::Use {
                        entry_id,
                        lease_id,
                        reason: Some(reason),
                        hint: None,
                    };
                    self.sleep(now, id, now.plus(delay_ms), reason, hint, resend)
                }
                Decision::Refresh {
                    entry_id,
                    lease_id,
                    generation,
                    reason,
                } => {
                    call.lease = Some(lease_id);
                    if call.sends >= call.max_sends {
                        return Ok(self.end_call(id, cause, None, Some(Budget::MaxSends)));
                    }
                    call.next = Next::Refresh(entry_id.clone(), generation);
                    Action::Refresh {
                        call_id: id,
                        pool: call.pool.clone(),
                        entry_id,
                        lease_id,
                        generation,
                        reason,
                    }
                }
                Decision::Fallback {
                    pool,
                    model,
                    reason,
                    primary_back_at,
                } => {
                    if call.hops >= call.max_hops {
                        return Ok(self.end_call(
                            id,
                            reason,
                            primary_back_at,
                            Some(Budget::MaxHops),
                        ));
                    }
                    call.hops += 1;
                    call.pool = pool;
                    if model.is_some() {
                        call.model = model;
                    }
                    decision = match self.acquire_for(now, id) {
                        Ok(next) => next,
                        Err(e) => {
                            let _ = self.cancel_call(id);
                            return Err(e);
                        }
                    };
                    continue;
                }
                Decision::Wait {
                    until,
                    reason,
                    hint,
                } => {
                    let then = Decision::Wait {
                        until,
                        reason,
                        hint,
                    };
                    if let Some(entry_id) = self.probe_due(now, id) {
                        return self.probe(id, entry_id, then);
                    }
                    self.sleep(now, id, until, reason, hint, then)
                }
                Decision::Fail { reason, status } => {
                    if status.is_some() {
                        call.last_status = status;
                    }
                    self.end_call(id, reason, None, None)
                }
            });
        }
    }

    /// The `send` of `entry_id` under `lease_id`, counted against the call's sends, with a
    /// routed call's route; a fallback pool's entry without a `base_url` cannot take a
    /// routed call's URL, so that ends the call with `no_base_url`.
    fn send(
        &mut self,
        id: CallId,
        entry_id: EntryId,
        lease_id: LeaseId,
        reason: Option<Reason>,
    ) -> Result<Action> {
        let call = self.call(id)?;
        let (pool, model, api, url) = (
            call.pool.clone(),
            call.model.clone(),
            call.api,
            call.url.clone(),
        );
        let on_fallback = pool != call.primary;
        let base_url = self.pool(&pool)?.entry(&entry_id)?.meta.base_url.clone();
        if url.is_some() && on_fallback && base_url.is_none() {
            return Ok(self.end_call(id, Reason::NoBaseUrl, None, None));
        }
        let entry = self.pool(&pool)?.entry(&entry_id)?;
        let auth_type = entry.meta.auth_type;
        let route = api.map(|api| Route {
            api,
            auth: Auth::of(api, auth_type),
            url: url.map(|url| match &base_url {
                Some(base) => rebase_url(&url, base, api),
                None => url,
            }),
        });
        let action = Action::Send {
            call_id: id,
            pool,
            model,
            entry_id: entry_id.clone(),
            auth_type,
            lease_id,
            access_token: entry.token.access.clone(),
            base_url,
            reason,
            route,
        };
        let call = self.call_mut(id)?;
        call.sends += 1;
        call.next = Next::Report(entry_id);
        Ok(action)
    }

    /// A `sleep` until `until`, then `then`, if the call's budgets allow it.
    fn sleep(
        &mut self,
        now: Millis,
        id: CallId,
        until: Millis,
        reason: Reason,
        hint: Option<HintUsed>,
        then: Decision,
    ) -> Action {
        let Some(call) = self.calls.get_mut(&id) else {
            return self.end_call(id, reason, Some(until), None);
        };
        let delay = now.until(until);
        let over = if call.sends >= call.max_sends {
            Some(Budget::MaxSends)
        } else if delay > call.max_wait_ms {
            Some(Budget::MaxWaitMs)
        } else if call.waited_ms.saturating_add(delay) > call.max_total_wait_ms {
            Some(Budget::MaxTotalWaitMs)
        } else {
            None
        };
        if over.is_some() {
            return self.end_call(id, reason, Some(until), over);
        }
        call.waited_ms = call.waited_ms.saturating_add(delay);
        call.next = Next::Sleep {
            until,
            reason,
            hint,
            then: Box::new(then),
        };
        Action::Sleep {
            call_id: id,
            until,
            reason,
            hint,
        }
    }

    /// Ends the call with `give_up`: its lease released with no mark.
    fn end_call(
        &mut self,
        id: CallId,
        reason: Reason,
        until: Option<Millis>,
        budget: Option<Budget>,
    ) -> Action {
        let status = self.calls.remove(&id).and_then(|mut call| {
            if let Some(lease) = call.lease.take() {
                self.settle_lease(&lease);
            }
            let status = call.last_status;
            if call.request_id.is_some() {
                self.keep_given_up(id, call);
            }
            status
        });
        Action::GiveUp {
            call_id: id,
            reason,
            status,
            until,
            budget,
        }
    }

    /// Records a decision taken on a call's lease outside the driver (a store's refresh
    /// protocol applies `refresh_result` itself), for `call_resume` to follow.
    pub(crate) fn record_for_call(&mut self, id: CallId, decision: &Decision) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.next = Next::Follow(Box::new(decision.clone()));
        }
    }
}

/// The cause a decision carries, if any.
fn reason_of(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Use { reason, .. } => *reason,
        Decision::RetrySame { reason, .. }
        | Decision::Refresh { reason, .. }
        | Decision::Fallback { reason, .. }
        | Decision::Wait { reason, .. }
        | Decision::Fail { reason, .. } => Some(*reason),
        Decision::Done => None,
    }
}

fn unknown_call(id: CallId) -> Error {
    Error::new(
        ErrorCode::UnknownCall,
        format!("call {} is unknown or finished", id.0),
    )
}
