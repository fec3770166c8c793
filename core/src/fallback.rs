//! The fallback chain: a pool that cannot serve a turn hands it to the next step of its
//! chain (another pool, maybe another model) for the rest of that turn, and gets it back at
//! the next turn once it has a usable entry again.

use crate::decision::{Decision, FallbackTarget, Reason};
use crate::error::{Error, ErrorCode, Result};
use crate::limits::MAX_FALLBACK_STEPS;
use crate::oauth::CanRefresh;
use crate::outcome::Subject;
use crate::pool_key::PoolKey;
use crate::registry::{Pool, Registry, Turn};
use crate::select::{next_available_at, next_cooling_end, pick};
use crate::time::Millis;

/// A pool's position on its fallback chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ActiveFallback {
    pub(crate) step: usize,
    pub(crate) reason: Reason,
    pub(crate) back_at: Option<Millis>,
}

impl Registry {
    /// The decision when no entry of `key` can serve: fallback, wait or fail.
    pub(crate) fn no_entry_decision(
        &mut self,
        now: Millis,
        key: &PoolKey,
        model: Option<&str>,
        reason: Reason,
        can_refresh: bool,
    ) -> Decision {
        let Some(pool) = self.pools.get_mut(key) else {
            return Decision::Fail {
                reason: Reason::NoUsableEntry,
                status: None,
            };
        };
        // A host that cannot refresh found no entry it can use now: only a cooldown's end
        // can change that (an entry left usable is one whose token needs a refresh).
        let back_at = if can_refresh {
            next_available_at(pool, now, model)
        } else {
            next_cooling_end(pool, now, model)
        };
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

    /// Starts a new agent turn: per-turn counters reset; a pool on its fallback chain is
    /// restored once it has a usable entry again. Returns the restored pools.
    pub fn begin_turn(&mut self, now: Millis, key: Option<&PoolKey>) -> Result<Vec<PoolKey>> {
        let now = self.clock(now);
        if let Some(key) = key {
            self.pool(key)?;
        }
        let mut restored = Vec::new();
        for pool in self
            .pools
            .values_mut()
            .filter(|p| key.is_none_or(|k| &p.key == k))
        {
            let fallback = pool.turn.fallback.take();
            pool.turn = Turn::default();
            if let Some(active) = fallback {
                let back = pick(pool, now, None, None, &mut self.rng).is_some();
                if back {
                    restored.push(pool.key.clone());
                } else {
                    pool.turn.fallback = Some(active);
                }
            }
        }
        Ok(restored)
    }

    /// Leaves the pool for this turn: fallback when the chain has a step, else wait or fail.
    pub(crate) fn give_up(
        &mut self,
        now: Millis,
        subject: &Subject,
        reason: Reason,
        status: Option<u16>,
    ) -> Decision {
        self.settle_lease(&subject.lease_id);
        let model = subject.model.clone();
        if self.has_fallback_step(&subject.pool) {
            let refresh = subject.can_refresh == CanRefresh::All;
            return self.no_entry_decision(now, &subject.pool, model.as_deref(), reason, refresh);
        }
        Decision::Fail { reason, status }
    }

    pub(crate) fn has_fallback_step(&self, key: &PoolKey) -> bool {
        self.pools.get(key).is_some_and(|p| {
            let step = p.turn.fallback.map_or(0, |f| f.step + 1);
            step < p.config.fallback.len()
        })
    }
}

pub(crate) fn fallback_decision(pool: &Pool, active: ActiveFallback) -> Option<Decision> {
    let target = pool.config.fallback.get(active.step)?;
    Some(Decision::Fallback {
        pool: target.pool.clone(),
        model: target.model.clone(),
        reason: active.reason,
        primary_back_at: active.back_at,
    })
}

/// A fallback chain within [`MAX_FALLBACK_STEPS`].
pub(crate) fn validate_fallback(targets: &[FallbackTarget]) -> Result<()> {
    if targets.len() > MAX_FALLBACK_STEPS {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!(
                "a fallback chain of {} steps is longer than {MAX_FALLBACK_STEPS}",
                targets.len()
            ),
        ));
    }
    Ok(())
}
