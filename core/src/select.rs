//! Selection: `acquire` picks an available entry by the pool's strategy.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::decision::{Decision, Reason};
use crate::entry::{Availability, Entry, EntryId, StatusRecord, validate_name};
use crate::error::{Error, Result};
use crate::fallback::fallback_decision;
use crate::oauth::CanRefresh;
use crate::policy::BUSY_RECHECK_MS;
use crate::pool_key::PoolKey;
use crate::registry::{Cursor, Lease, Pool, Registry, Strategy};
use crate::rng::Rng;
use crate::time::Millis;

/// What the host asks for.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcquireRequest {
    /// The pool.
    pub pool: PoolKey,
    /// The model the request is for (model benches apply).
    #[serde(default)]
    pub model: Option<String>,
    /// A session key: the same entry is reused while it stays available.
    #[serde(default)]
    pub session: Option<String>,
    /// Spread concurrent requests (parallel sub-agents): pick among the usable entries one
    /// with the fewest leases open in this registry, ties broken by the strategy.
    #[serde(default)]
    pub spread: bool,
    /// Which OAuth entries the host can refresh (default: all). An entry it cannot refresh
    /// whose token expires within the refresh skew is passed over for the next usable one,
    /// and used as is only when nothing else can serve and its token has not expired.
    #[serde(default)]
    pub can_refresh: CanRefresh,
}

impl AcquireRequest {
    /// A plain acquire on `pool`: no model, session or spreading; the host can refresh.
    #[must_use]
    pub const fn new(pool: PoolKey) -> Self {
        Self {
            pool,
            model: None,
            session: None,
            spread: false,
            can_refresh: CanRefresh::All,
        }
    }
}

impl Registry {
    /// Picks an entry for one request: `use` (or `refresh` for an expiring OAuth token)
    /// with a lease, or `fallback`, `wait` or `fail` when none can serve.
    pub fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision> {
        let now = self.clock(now);
        for name in [&request.model, &request.session].into_iter().flatten() {
            validate_name("model/session", name)?;
        }
        let writer = self.writer.clone();
        let leased = if request.spread {
            self.open_leases(&request.pool)
        } else {
            BTreeMap::new()
        };
        let pool = self
            .pools
            .get_mut(&request.pool)
            .ok_or_else(|| Error::unknown_pool(request.pool.as_str()))?;
        if let Some(active) = pool.turn.fallback
            && let Some(decision) = fallback_decision(pool, active)
        {
            return Ok(decision);
        }
        let mut changed = clear_expired(pool, now);
        let model = request.model.as_deref();
        let skew = pool.config.policy.refresh_skew_ms;
        let busy = busy_entries(pool, now);
        let sticky = request
            .session
            .as_ref()
            .and_then(|s| pool.sessions.get(s))
            .filter(|id| {
                !busy.contains(id)
                    && pool
                        .get(id)
                        .is_some_and(|e| match e.availability(now, model, skew) {
                            Availability::Available => true,
                            Availability::NeedsRefresh => {
                                request.can_refresh.covers(&request.pool, e)
                            }
                            _ => false,
                        })
            })
            .cloned();
        let chosen = match sticky {
            Some(id) => Some(id),
            None => {
                let pick = |skip: &[&EntryId], rng: &mut Rng| {
                    if request.spread {
                        pick_least_leased(pool, now, model, &leased, skip, rng)
                    } else {
                        pick_excluding(pool, now, model, skip, rng)
                    }
                };
                let refresh = request.can_refresh;
                pick_refreshable(pool, now, model, refresh, busy.clone(), &mut self.rng, pick)
            }
        };
        let Some(id) = chosen else {
            let all_busy = !busy.is_empty() && has_candidate(pool, now, model, None);
            if changed {
                self.mark_changed();
            }
            if all_busy {
                return Ok(all_keys_busy(now));
            }
            let refresh = request.can_refresh == CanRefresh::All;
            let reason = Reason::AllCoolingDown;
            return Ok(self.no_entry_decision(now, &request.pool, model, reason, refresh));
        };
        let pool = self.pool_mut(&request.pool)?;
        pool.count_selection(&id, &writer)?;
        let (generation, needs_refresh) = {
            let entry = pool.entry(&id)?;
            let due = entry.availability(now, model, skew) == Availability::NeedsRefresh;
            let covered = request.can_refresh.covers(&request.pool, entry);
            (entry.token.generation, due && covered)
        };
        changed = true;
        if pool.config.strategy == Strategy::RoundRobin {
            let priority = pool.entry(&id)?.meta.priority;
            pool.cursor = Some(Cursor {
                priority,
                entry_id: id.clone(),
                at: now,
            });
        }
        if let Some(session) = &request.session {
            pool.sessions.insert(session.clone(), id.clone());
        }
        if changed {
            self.mark_changed();
        }
        let lease_id = self.open_lease(Lease {
            pool: request.pool.clone(),
            entry_id: id.clone(),
            model: request.model.clone(),
            session: request.session.clone(),
            call: None,
            opened_at: now,
            retrying_rate_limit: false,
            can_refresh: request.can_refresh,
        });
        Ok(if needs_refresh {
            Decision::Refresh {
                entry_id: id,
                lease_id,
                generation,
                reason: Reason::TokenExpiring,
            }
        } else {
            Decision::Use {
                entry_id: id,
                lease_id,
                reason: None,
                hint: None,
            }
        })
    }
}

/// Clears every exhausted status whose cooldown has run out; true when one was cleared.
/// Reads only the expired prefix of the deadline index.
pub(crate) fn clear_expired(pool: &mut Pool, now: Millis) -> bool {
    let expired: Vec<EntryId> = pool.index().expired(now).cloned().collect();
    for id in &expired {
        // The id comes from the index, so the entry exists.
        let _ = pool.update_entry(id, |entry| {
            let streak = entry.status.streak;
            entry.status = StatusRecord {
                at: now,
                streak,
                ..StatusRecord::default()
            };
        });
    }
    !expired.is_empty()
}

/// The earliest instant an entry of `pool` becomes usable for `model`, if any will.
pub(crate) fn next_available_at(pool: &Pool, now: Millis, model: Option<&str>) -> Option<Millis> {
    if Candidates::new(pool, now, model, &[]).any() {
        // Every cooling deadline lies after `now`.
        return Some(now);
    }
    next_cooling_end(pool, now, model)
}

/// The earliest end of a cooldown in force at `now` for `model` (entry-wide or a model
/// bench): what [`Availability::Cooling`] reports, minimised over the pool, reading the
/// deadline index and the benches in force only.
pub(crate) fn next_cooling_end(pool: &Pool, now: Millis, model: Option<&str>) -> Option<Millis> {
    let skew = pool.config.policy.refresh_skew_ms;
    let benched = pool
        .index()
        .benched(now, model)
        .into_iter()
        .filter_map(|id| pool.get(id))
        .filter_map(|e| match e.availability(now, model, skew) {
            Availability::Cooling(until) => Some(until),
            _ => None,
        });
    pool.index()
        .next_deadline(now)
        .into_iter()
        .chain(benched)
        .min()
}

/// Whether an entry other than `exclude` is usable at `now` for `model`.
pub(crate) fn has_candidate(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    exclude: Option<&EntryId>,
) -> bool {
    Candidates::new(pool, now, model, exclude.as_slice()).any()
}

/// The entries usable at `now` for `model`, other than `exclude`, described without
/// listing them: the ready index minus `blocked` (ready entries that a model bench blocks,
/// and `exclude`), plus `extra` (entries whose cooldown ran out but was not cleared yet:
/// empty after [`clear_expired`], so on `acquire` and rotation).
///
/// Cost: `O(log n)` per lookup plus the size of `blocked` and `extra`. A model bench makes
/// selection skip the benched entries one by one (cost proportional to the entries benched
/// for that model); without benches in force every strategy is `O(log n)`.
struct Candidates<'a> {
    pool: &'a Pool,
    /// Sorted by order key.
    blocked: Vec<(i64, &'a EntryId)>,
    /// Sorted by order key.
    extra: Vec<&'a Entry>,
}

impl<'a> Candidates<'a> {
    fn new(pool: &'a Pool, now: Millis, model: Option<&str>, exclude: &[&EntryId]) -> Self {
        let index = pool.index();
        let skew = pool.config.policy.refresh_skew_ms;
        let ready = |e: &Entry| index.ready.contains_key(e.meta.priority, &e.id);
        let mut blocked: Vec<(i64, &EntryId)> = index
            .benched(now, model)
            .into_iter()
            .chain(exclude.iter().copied())
            .filter_map(|id| pool.get(id))
            .filter(|e| ready(e))
            .map(|e| (e.meta.priority, &e.id))
            .collect();
        blocked.sort_unstable();
        blocked.dedup();
        let mut extra: Vec<&Entry> = index
            .expired(now)
            .filter_map(|id| pool.get(id))
            .filter(|e| !exclude.contains(&&e.id) && e.availability(now, model, skew).is_usable())
            .collect();
        extra.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        Self {
            pool,
            blocked,
            extra,
        }
    }

    fn is_blocked(&self, priority: i64, id: &EntryId) -> bool {
        self.blocked.binary_search(&(priority, id)).is_ok()
    }

    fn len(&self) -> usize {
        self.pool.index().ready.len() - self.blocked.len() + self.extra.len()
    }

    fn any(&self) -> bool {
        self.len() > 0
    }

    /// The first unblocked ready key at position `from` or later.
    fn ready_from(&self, from: usize) -> Option<(i64, &'a EntryId)> {
        let ready = &self.pool.index().ready;
        (from..)
            .map_while(|k| ready.select(k))
            .map(|(priority, id)| (*priority, id))
            .find(|(priority, id)| !self.is_blocked(*priority, id))
    }

    /// The first candidate in order after `after` (or from the start).
    fn first_after(&self, after: Option<(i64, &EntryId)>) -> Option<(i64, &'a EntryId)> {
        let from = after.map_or(0, |(priority, id)| {
            self.pool.index().ready.rank(priority, id, true)
        });
        let ready = self.ready_from(from);
        let extra = self
            .extra
            .iter()
            .map(|e| (e.meta.priority, &e.id))
            .find(|key| after.is_none_or(|cursor| *key > cursor));
        ready.into_iter().chain(extra).min()
    }

    /// The candidate with the lowest `(request count, priority, id)`.
    fn least_used(&self) -> Option<&'a EntryId> {
        let ready = match &self.pool.index().least_used {
            Some(least_used) => least_used
                .iter()
                .find(|(_, priority, id)| !self.is_blocked(*priority, id))
                .map(|(count, priority, id)| (*count, *priority, id)),
            // The index is kept while the strategy is `least_used`; a scan otherwise.
            None => self
                .pool
                .index()
                .ready
                .iter()
                .filter(|(priority, id)| !self.is_blocked(*priority, id))
                .filter_map(|(priority, id)| {
                    let entry = self.pool.get(id)?;
                    Some((entry.request_count(), *priority, id))
                })
                .min(),
        };
        let extra = self
            .extra
            .iter()
            .map(|e| (e.request_count(), e.meta.priority, &e.id))
            .min();
        ready.into_iter().chain(extra).min().map(|(_, _, id)| id)
    }

    /// The candidate at position `k` in order.
    fn nth(&self, k: usize) -> Option<&'a EntryId> {
        let ready = &self.pool.index().ready;
        // Walk the adjustments (blocked keys leave the ready order, extra ones join it) in
        // order; `shift` is how far a candidate position is from its ready position.
        let mut events: Vec<((i64, &EntryId), bool)> = self
            .blocked
            .iter()
            .map(|key| (*key, false))
            .chain(self.extra.iter().map(|e| ((e.meta.priority, &e.id), true)))
            .collect();
        events.sort_unstable();
        let (mut added, mut skipped) = (0_usize, 0_usize);
        for ((priority, id), joins) in events {
            // Candidates before this event: ready keys before it, adjusted.
            let before = ready.rank(priority, id, false) + added - skipped;
            if before > k {
                break;
            }
            if joins {
                if before == k {
                    return Some(id);
                }
                added += 1;
            } else {
                skipped += 1;
            }
        }
        ready.select(k + skipped - added).map(|(_, id)| id)
    }
}

/// Picks an available entry by strategy, skipping `exclude`, from the pool's indexes
/// (`O(log n)` without model benches in force): `fill_first` the first candidate in
/// `(priority, id)` order, `round_robin` the first after the cursor (else the first),
/// `least_used` the lowest `(request count, priority, id)`, `random` the candidate at
/// position `rng.below(count)` in `(priority, id)` order — the same draw and the same
/// entry as a scan of every entry (`pick_by_scan` in the tests).
pub(crate) fn pick(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    exclude: Option<&EntryId>,
    rng: &mut Rng,
) -> Option<EntryId> {
    pick_excluding(pool, now, model, exclude.as_slice(), rng)
}

/// [`pick`] among the candidates with the fewest leases in `leased` (open leases per entry),
/// skipping `busy`.
fn pick_least_leased(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    leased: &BTreeMap<EntryId, usize>,
    busy: &[&EntryId],
    rng: &mut Rng,
) -> Option<EntryId> {
    let mut levels: Vec<usize> = leased.values().copied().chain([0]).collect();
    levels.sort_unstable();
    levels.dedup();
    levels.into_iter().find_map(|level| {
        let over: Vec<&EntryId> = leased
            .iter()
            .filter(|(_, n)| **n > level)
            .map(|(id, _)| id)
            .chain(busy.iter().copied())
            .collect();
        pick_excluding(pool, now, model, &over, rng)
    })
}

/// Picks with `pick` (by strategy, skipping the ids it is given), skipping `skip`. When the
/// host cannot refresh, an entry whose token needs a refresh is skipped too, and chosen
/// only when nothing else can serve and its token has not expired yet (first in order).
pub(crate) fn pick_refreshable<'p>(
    pool: &'p Pool,
    now: Millis,
    model: Option<&str>,
    can_refresh: CanRefresh,
    mut skip: Vec<&'p EntryId>,
    rng: &mut Rng,
    mut pick: impl FnMut(&[&EntryId], &mut Rng) -> Option<EntryId>,
) -> Option<EntryId> {
    let skew = pool.config.policy.refresh_skew_ms;
    let mut expiring: Vec<&Entry> = Vec::new();
    while let Some(id) = pick(&skip, rng) {
        let Some(entry) = pool.get(&id) else {
            return Some(id);
        };
        if can_refresh.covers(&pool.key, entry)
            || entry.availability(now, model, skew) != Availability::NeedsRefresh
        {
            return Some(id);
        }
        expiring.push(entry);
        skip.push(&entry.id);
    }
    expiring
        .into_iter()
        .find(|e| e.token.access.is_some() && e.token.expires_at.is_some_and(|at| at > now))
        .map(|e| e.id.clone())
}

/// The entries holding as many open leases (over every writer) as the pool's
/// `max_concurrent_per_key` allows; none without a cap. Reads only the entries with lease
/// counts.
pub(crate) fn busy_entries(pool: &Pool, now: Millis) -> Vec<&EntryId> {
    let Some(cap) = pool.config.policy.max_concurrent_per_key else {
        return Vec::new();
    };
    pool.index()
        .leased
        .iter()
        .filter(|id| {
            pool.get(id)
                .is_some_and(|e| e.leases.open_at(now) >= u64::from(cap))
        })
        .collect()
}

/// The `wait` of an acquire or rotation that found every usable entry at the per-key cap.
pub(crate) fn all_keys_busy(now: Millis) -> Decision {
    Decision::Wait {
        until: now.plus(BUSY_RECHECK_MS),
        reason: Reason::AllKeysBusy,
        hint: None,
    }
}

/// [`pick`] skipping every entry of `exclude`.
pub(crate) fn pick_excluding(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    exclude: &[&EntryId],
    rng: &mut Rng,
) -> Option<EntryId> {
    let candidates = Candidates::new(pool, now, model, exclude);
    let chosen = match pool.config.strategy {
        Strategy::FillFirst => candidates.first_after(None).map(|(_, id)| id),
        Strategy::RoundRobin => {
            let after = pool.cursor.as_ref().map(|c| (c.priority, &c.entry_id));
            candidates
                .first_after(after)
                .or_else(|| candidates.first_after(None))
                .map(|(_, id)| id)
        }
        Strategy::LeastUsed => candidates.least_used(),
        Strategy::Random => {
            let len = u64::try_from(candidates.len()).unwrap_or(u64::MAX);
            let index = usize::try_from(rng.below(len)).unwrap_or(0);
            candidates.nth(index)
        }
    };
    chosen.cloned()
}

/// The reference selection: every entry's availability, by strategy (a linear scan, for
/// tests that check [`pick`] against it).
#[cfg(test)]
pub(crate) fn pick_by_scan(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    exclude: Option<&EntryId>,
    rng: &mut Rng,
) -> Option<EntryId> {
    let skew = pool.config.policy.refresh_skew_ms;
    let candidates: Vec<&Entry> = pool
        .entries()
        .into_iter()
        .filter(|e| Some(&e.id) != exclude && e.availability(now, model, skew).is_usable())
        .collect();
    let chosen = match pool.config.strategy {
        Strategy::FillFirst => candidates.first().copied(),
        Strategy::RoundRobin => {
            let after = pool.cursor.as_ref().map(|c| (c.priority, &c.entry_id));
            candidates
                .iter()
                .find(|e| after.is_none_or(|cursor| e.order_key() > cursor))
                .or_else(|| candidates.first())
                .copied()
        }
        Strategy::LeastUsed => candidates
            .iter()
            .min_by_key(|e| (e.request_count(), e.order_key()))
            .copied(),
        Strategy::Random => {
            let len = u64::try_from(candidates.len()).unwrap_or(u64::MAX);
            let index = usize::try_from(rng.below(len)).unwrap_or(0);
            candidates.get(index).copied()
        }
    };
    chosen.map(|e| e.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::LeaseId;
    use crate::policy::ModelScope;
    use crate::registry::{NewEntry, Options, PoolUpdate};
    use crate::secret::Secret;

    fn registry(strategy: Strategy, n: usize) -> (Registry, PoolKey) {
        let mut r = Registry::new(Options {
            writer: "w".into(),
            seed: 3,
        })
        .unwrap();
        let key = PoolKey::parse("openrouter").unwrap();
        r.configure_pool(
            Millis(1),
            &key,
            PoolUpdate {
                strategy: Some(strategy),
                ..PoolUpdate::default()
            },
        )
        .unwrap();
        for i in 0..n {
            let new = NewEntry {
                id: EntryId::parse(&format!(
                    "{}",
                    char::from(b'a' + u8::try_from(i).unwrap_or(0))
                ))
                .ok(),
                access_token: Some(Secret::new(format!("sk-{i}"))),
                ..NewEntry::default()
            };
            r.add_entry(Millis(1), &key, new).unwrap();
        }
        (r, key)
    }

    fn take(r: &mut Registry, key: &PoolKey) -> (String, LeaseId) {
        let request = AcquireRequest::new(key.clone());
        match r.acquire(Millis(10), &request) {
            Ok(Decision::Use {
                entry_id, lease_id, ..
            }) => (entry_id.as_str().to_owned(), lease_id),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn round_robin_cycles_without_touching_priorities() {
        let (mut r, key) = registry(Strategy::RoundRobin, 3);
        let order: Vec<String> = (0..4).map(|_| take(&mut r, &key).0).collect();
        assert_eq!(order, ["a", "b", "c", "a"]);
        let priorities: Vec<i64> = r
            .pool(&key)
            .map(|p| p.entries().iter().map(|e| e.meta.priority).collect())
            .unwrap_or_default();
        assert_eq!(priorities, [0, 1, 2]);
    }

    #[test]
    fn least_used_balances() {
        let (mut r, key) = registry(Strategy::LeastUsed, 3);
        let order: Vec<String> = (0..6).map(|_| take(&mut r, &key).0).collect();
        assert_eq!(order, ["a", "b", "c", "a", "b", "c"]);
    }

    /// Random traffic over a small pool (siblings sharing a secret, OAuth entries without an
    /// access token, borrowed entries without a secret, model benches, priority changes,
    /// resets, ticks, syncs): after every step the maintained indexes equal a rebuild, and
    /// at several instants (before and after cooldowns run out, uncleared) `pick`,
    /// `next_available_at` and `has_candidate` answer exactly what a scan of every entry
    /// answers, drawing the same random numbers.
    #[test]
    fn indexed_selection_matches_a_scan() {
        use crate::entry::AuthType;
        use crate::outcome::Report;
        use crate::policy::Policy;
        use crate::response::{Body, Response};
        use crate::rng::Rng;
        use serde_json::json;

        let strategies = [
            Strategy::FillFirst,
            Strategy::RoundRobin,
            Strategy::LeastUsed,
            Strategy::Random,
        ];
        let models = [None, Some("m1"), Some("m2")];
        let (mut seen_benched, mut seen_expired) = (false, false);
        for seed in 0..40_u64 {
            let mut dice = Rng::new(seed);
            let mut r = Registry::new(Options {
                writer: "w".into(),
                seed,
            })
            .unwrap();
            let key = PoolKey::parse("openrouter").unwrap();
            let policy = Policy {
                model_scoped_rate_limits: if seed % 2 == 0 {
                    ModelScope::All
                } else {
                    ModelScope::Off
                },
                ..Policy::adaptive()
            };
            r.configure_pool(
                Millis(1),
                &key,
                PoolUpdate {
                    policy: Some(policy),
                    ..PoolUpdate::default()
                },
            )
            .unwrap();
            let mut now = 1_000_000_u64;
            let mut leases: Vec<LeaseId> = Vec::new();
            for step in 0..300 {
                now +=
                    [1, 1_000, 30_000, 600_000, 4_000_000][usize::try_from(dice.below(5)).unwrap()];
                let t = Millis(now);
                let model = models[usize::try_from(dice.below(3)).unwrap()];
                match dice.below(12) {
                    0 | 1 => {
                        let n = dice.below(12);
                        let kind = dice.below(4);
                        let new = NewEntry {
                            id: EntryId::parse(&format!("e{n}")).ok(),
                            priority: (dice.below(2) == 0)
                                .then(|| i64::try_from(dice.below(5)).unwrap()),
                            auth_type: (kind == 2).then_some(AuthType::Oauth),
                            source: (kind == 3).then(|| "env:KEY".to_owned()),
                            access_token: (kind < 2)
                                .then(|| Secret::new(format!("sk-{}", dice.below(4)))),
                            refresh_token: (kind == 2).then(|| Secret::new("rt")),
                            ..NewEntry::default()
                        };
                        let _ = r.add_entry(t, &key, new);
                    }
                    2 => {
                        let strategy = strategies[usize::try_from(dice.below(4)).unwrap()];
                        r.configure_pool(
                            t,
                            &key,
                            PoolUpdate {
                                strategy: Some(strategy),
                                ..PoolUpdate::default()
                            },
                        )
                        .unwrap();
                    }
                    3..=5 => {
                        let request = AcquireRequest {
                            pool: key.clone(),
                            model: model.map(str::to_owned),
                            session: (dice.below(3) == 0).then(|| "s".to_owned()),
                            spread: dice.below(4) == 0,
                            can_refresh: match dice.below(4) {
                                0 => CanRefresh::None,
                                1 => CanRefresh::BuiltIn,
                                _ => CanRefresh::All,
                            },
                        };
                        if let Ok(
                            Decision::Use { lease_id, .. } | Decision::Refresh { lease_id, .. },
                        ) = r.acquire(t, &request)
                        {
                            leases.push(lease_id);
                        }
                    }
                    6 | 7 => {
                        if let Some(lease_id) = leases.pop() {
                            let code = [200, 429, 402, 401, 403, 400, 500]
                                [usize::try_from(dice.below(7)).unwrap()];
                            let body = match code {
                                400 => Some(Body::Json(
                                    json!({"error": {"code": "model_not_supported"}}),
                                )),
                                401 if dice.below(2) == 0 => {
                                    Some(Body::Json(json!({"error": {"code": "token_revoked"}})))
                                }
                                _ => None,
                            };
                            let report = Report {
                                pool: key.clone(),
                                lease_id: Some(lease_id),
                                entry_id: None,
                                response: Response {
                                    status: Some(code),
                                    body,
                                    model: model.map(str::to_owned),
                                    ..Response::default()
                                },
                            };
                            if let Ok(
                                Decision::Use { lease_id, .. }
                                | Decision::Refresh { lease_id, .. }
                                | Decision::RetrySame { lease_id, .. },
                            ) = r.report(t, &report)
                            {
                                leases.push(lease_id);
                            }
                        }
                    }
                    8 => {
                        let id = EntryId::parse(&format!("e{}", dice.below(12))).unwrap();
                        let priority = i64::try_from(dice.below(6)).unwrap() - 1;
                        let _ = r.set_priority(t, &key, &id, priority);
                    }
                    9 => {
                        let id = EntryId::parse(&format!("e{}", dice.below(12))).unwrap();
                        match dice.below(4) {
                            0 => {
                                let _ = r.reset(t, &key, None);
                            }
                            1 => {
                                let _ = r.reset(t, &key, Some(&id));
                            }
                            2 => {
                                let _ = r.remove_entry(t, &key, &id);
                            }
                            _ => {
                                let _ = r.begin_turn(t, None);
                            }
                        }
                    }
                    10 => {
                        let _ = r.tick(t);
                    }
                    _ => {
                        // Another writer's view of the same pool, with its own traffic.
                        let state = serde_json::to_value(r.export_state()).unwrap();
                        let mut other = Registry::from_state(
                            &state,
                            Options {
                                writer: "x".into(),
                                seed: seed + 1,
                            },
                        )
                        .unwrap();
                        let request = AcquireRequest::new(key.clone());
                        if let Ok(Decision::Use { lease_id, .. }) = other.acquire(t, &request) {
                            let report = Report {
                                pool: key.clone(),
                                lease_id: Some(lease_id),
                                entry_id: None,
                                response: Response {
                                    status: Some(429),
                                    ..Response::default()
                                },
                            };
                            let _ = other.report(t, &report);
                        }
                        other.check_indexes().unwrap();
                        let theirs = serde_json::to_value(other.export_state()).unwrap();
                        r.sync(&theirs).unwrap();
                    }
                }
                r.check_indexes()
                    .unwrap_or_else(|drift| panic!("seed {seed} step {step}: {drift}"));
                let Ok(pool) = r.pool(&key) else { continue };
                let ids: Vec<EntryId> = pool.entries().iter().map(|e| e.id.clone()).collect();
                for later in [0, 59_000, 61_000, 3_000_000, 200_000_000] {
                    let at = Millis(now + later);
                    for model in models {
                        for exclude in [None].into_iter().chain(ids.iter().take(3).map(Some)) {
                            seen_benched |= !pool.index().benched(at, model).is_empty();
                            seen_expired |= pool.index().expired(at).next().is_some();
                            let mut rng_a = Rng::new(seed * 1_000 + step);
                            let mut rng_b = rng_a.clone();
                            let indexed = pick(pool, at, model, exclude, &mut rng_a);
                            let scanned = pick_by_scan(pool, at, model, exclude, &mut rng_b);
                            assert_eq!(
                                indexed, scanned,
                                "pick: seed {seed} step {step} +{later} {model:?} {exclude:?}"
                            );
                            assert_eq!(rng_a, rng_b);
                            let skew = pool.config.policy.refresh_skew_ms;
                            let any = pool.entries().iter().any(|e| {
                                Some(&e.id) != exclude
                                    && e.availability(at, model, skew).is_usable()
                            });
                            assert_eq!(has_candidate(pool, at, model, exclude), any);
                        }
                        let skew = pool.config.policy.refresh_skew_ms;
                        let scanned = pool
                            .entries()
                            .iter()
                            .filter_map(|e| match e.availability(at, model, skew) {
                                Availability::Cooling(until) => Some(until),
                                Availability::Available | Availability::NeedsRefresh => Some(at),
                                Availability::Dead | Availability::NoSecret => None,
                            })
                            .min();
                        assert_eq!(
                            next_available_at(pool, at, model),
                            scanned,
                            "seed {seed} step {step}"
                        );
                    }
                }
            }
        }
        assert!(
            seen_benched,
            "the traffic never benched an entry for a model"
        );
        assert!(
            seen_expired,
            "the traffic never left a cooldown expired but uncleared"
        );
    }

    #[test]
    fn leases_are_unique() {
        let (mut r, key) = registry(Strategy::FillFirst, 1);
        let (_, l1) = take(&mut r, &key);
        let (_, l2) = take(&mut r, &key);
        assert_ne!(l1, l2);
    }
}
