//! Early reopening of a long rate-limit bench (Hermes's Codex quota probe, reference §4.2).
//!
//! A call started with `probe` (the host can ask the provider whether a limit still holds,
//! e.g. Codex's usage endpoint) gets a `probe` action instead of waiting or giving up when
//! an entry of its pool is benched by a rate or usage limit for longer than the policy's
//! `quota_probe_interval_ms`. The host answers `call_probed`: `restored` reopens the entry
//! (its status cleared, as `reset` does) and the call acquires again; otherwise the call
//! goes on as it would have. An entry is probed at most once per interval and token
//! generation per registry (in memory, like Hermes's per-process cache).

use super::{Action, CallId, Next};
use crate::OutcomeClass;
use crate::decision::{Decision, Reason};
use crate::entry::{EntryId, Status, StatusRecord};
use crate::error::{Error, Result};
use crate::registry::Registry;
use crate::time::Millis;

impl Registry {
    /// The entry of the call's pool to probe at `now`, if the call may probe and one is due:
    /// exhausted by a rate or usage limit, benched for longer than the probe interval, and
    /// not probed within it (at its current token generation).
    pub(super) fn probe_due(&self, now: Millis, id: CallId) -> Option<EntryId> {
        let call = self.calls.get(&id).filter(|call| call.probe)?;
        let pool = self.pools.get(&call.pool)?;
        let interval = pool.config.policy.quota_probe_interval_ms;
        let due = |entry: &&crate::entry::Entry| {
            let limited = matches!(
                entry.status.failure,
                Some(OutcomeClass::RateLimit | OutcomeClass::UsageLimit)
            );
            let long = entry
                .status
                .until
                .is_some_and(|until| now.until(until) > interval);
            let key = (call.pool.clone(), entry.id.clone());
            let recent = self.probed.get(&key).is_some_and(|&(generation, at)| {
                generation == entry.token.generation && at.plus(interval) > now
            });
            entry.effective_status() == Status::Exhausted && limited && long && !recent
        };
        let mut due: Vec<_> = pool.unordered().filter(due).collect();
        due.sort_by(|a, b| (a.meta.priority, &a.id).cmp(&(b.meta.priority, &b.id)));
        due.first().map(|entry| entry.id.clone())
    }

    /// The `probe` action for `entry_id`, to follow `then` unless the probe reopens it.
    pub(super) fn probe(
        &mut self,
        id: CallId,
        entry_id: EntryId,
        then: Decision,
    ) -> Result<Action> {
        let call = self.call(id)?;
        let pool = call.pool.clone();
        let entry = self.pool(&pool)?.entry(&entry_id)?;
        let action = Action::Probe {
            call_id: id,
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            auth_type: entry.meta.auth_type,
            access_token: entry.token.access.clone(),
            base_url: entry.meta.base_url.clone(),
            reason: entry
                .status
                .failure
                .map_or(Reason::NoUsableEntry, Reason::from),
        };
        self.call_mut(id)?.next = Next::Probe(entry_id, Box::new(then));
        Ok(action)
    }

    /// Records what the `probe` action found; the call's next action.
    pub fn call_probed(&mut self, now: Millis, id: CallId, restored: bool) -> Result<Action> {
        let now = self.clock(now);
        let call = self.call(id)?;
        let Next::Probe(entry_id, then) = &call.next else {
            return Err(Error::invalid_input(format!(
                "call {} is not waiting for a probe",
                id.0
            )));
        };
        let (pool, entry_id, then) = (call.pool.clone(), entry_id.clone(), then.as_ref().clone());
        let generation = self.pool(&pool)?.entry(&entry_id)?.token.generation;
        self.probed
            .insert((pool.clone(), entry_id.clone()), (generation, now));
        if !restored {
            return self.follow(now, id, then);
        }
        self.pool_mut(&pool)?.update_entry(&entry_id, |entry| {
            if entry.effective_status() == Status::Exhausted {
                entry.status = StatusRecord {
                    at: now,
                    ..StatusRecord::default()
                };
                entry.cleared_at = Some(now);
            }
        })?;
        self.mark_changed();
        let decision = self.acquire_for(now, id).map(|decision| match decision {
            Decision::Use {
                entry_id,
                lease_id,
                reason: None,
                hint,
            } => Decision::Use {
                entry_id,
                lease_id,
                reason: Some(Reason::QuotaRestored),
                hint,
            },
            other => other,
        });
        self.follow_result(now, id, decision)
    }
}
