//! Selection: `acquire` picks an available entry by the pool's strategy.

use serde::Deserialize;

use crate::decision::{Decision, Reason};
use crate::entry::{Availability, Entry, EntryId, StatusRecord, validate_name};
use crate::error::{Error, Result};
use crate::pool_key::PoolKey;
use crate::registry::{ActiveFallback, Cursor, Lease, Pool, Registry, Strategy};
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
        let sticky = request
            .session
            .as_ref()
            .and_then(|s| pool.sessions.get(s))
            .filter(|id| {
                pool.entries
                    .get(*id)
                    .is_some_and(|e| e.availability(now, model, skew).is_usable())
            })
            .cloned();
        let chosen = match sticky {
            Some(id) => Some(id),
            None => pick(pool, now, model, None, &mut self.rng),
        };
        let Some(id) = chosen else {
            self.changed |= changed;
            return Ok(self.no_entry_decision(now, &request.pool, model, Reason::AllCoolingDown));
        };
        let pool = self.pool_mut(&request.pool)?;
        let (generation, needs_refresh) = {
            let entry = pool.entry_mut(&id)?;
            let counter = entry.counts.entry(writer).or_insert(0);
            *counter = counter.saturating_add(1);
            (
                entry.token.generation,
                entry.availability(now, model, skew) == Availability::NeedsRefresh,
            )
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
        self.changed |= changed;
        let lease_id = self.open_lease(Lease {
            pool: request.pool.clone(),
            entry_id: id.clone(),
            model: request.model.clone(),
            session: request.session.clone(),
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

    /// The decision when no entry of `key` can serve: fallback, wait or fail.
    pub(crate) fn no_entry_decision(
        &mut self,
        now: Millis,
        key: &PoolKey,
        model: Option<&str>,
        reason: Reason,
    ) -> Decision {
        let Some(pool) = self.pools.get_mut(key) else {
            return Decision::Fail {
                reason: Reason::NoUsableEntry,
                status: None,
            };
        };
        let back_at = next_available_at(pool, now, model);
        let step = pool.turn.fallback.map_or(0, |f| f.step + 1);
        if step < pool.config.fallback.len() {
            let active = ActiveFallback {
                step,
                reason,
                back_at,
            };
            pool.turn.fallback = Some(active);
            if let Some(decision) = fallback_decision(pool, active) {
                return decision;
            }
        }
        match back_at {
            Some(until) => Decision::Wait {
                until,
                reason,
                hint: None,
            },
            None => Decision::Fail {
                reason: if reason == Reason::AllCoolingDown {
                    Reason::NoUsableEntry
                } else {
                    reason
                },
                status: None,
            },
        }
    }
}

fn fallback_decision(pool: &Pool, active: ActiveFallback) -> Option<Decision> {
    let target = pool.config.fallback.get(active.step)?;
    Some(Decision::Fallback {
        pool: target.pool.clone(),
        model: target.model.clone(),
        reason: active.reason,
        primary_back_at: active.back_at,
    })
}

/// Clears every exhausted status whose cooldown has run out; true when one was cleared.
pub(crate) fn clear_expired(pool: &mut Pool, now: Millis) -> bool {
    let mut cleared = false;
    for entry in pool.entries.values_mut() {
        if entry.cooldown_expired(now) {
            let streak = entry.status.streak;
            entry.status = StatusRecord {
                at: now,
                streak,
                ..StatusRecord::default()
            };
            cleared = true;
        }
    }
    cleared
}

/// The earliest instant an entry of `pool` becomes usable for `model`, if any will.
pub(crate) fn next_available_at(pool: &Pool, now: Millis, model: Option<&str>) -> Option<Millis> {
    let skew = pool.config.policy.refresh_skew_ms;
    pool.entries
        .values()
        .filter_map(|e| match e.availability(now, model, skew) {
            Availability::Cooling(until) => Some(until),
            Availability::Available | Availability::NeedsRefresh => Some(now),
            Availability::Dead | Availability::NoSecret => None,
        })
        .min()
}

/// Picks an available entry by strategy, skipping `exclude`.
pub(crate) fn pick(
    pool: &Pool,
    now: Millis,
    model: Option<&str>,
    exclude: Option<&EntryId>,
    rng: &mut crate::rng::Rng,
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
    use crate::registry::{NewEntry, Options};
    use crate::secret::Secret;

    fn registry(strategy: Strategy, n: usize) -> (Registry, PoolKey) {
        let mut r = Registry::new(Options {
            writer: "w".into(),
            seed: 3,
        })
        .unwrap();
        let key = PoolKey::parse("openrouter").unwrap();
        r.configure_pool(Millis(1), &key, Some(strategy), None, None)
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
        let request = AcquireRequest {
            pool: key.clone(),
            model: None,
            session: None,
        };
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

    #[test]
    fn leases_are_unique() {
        let (mut r, key) = registry(Strategy::FillFirst, 1);
        let (_, l1) = take(&mut r, &key);
        let (_, l2) = take(&mut r, &key);
        assert_ne!(l1, l2);
    }
}
