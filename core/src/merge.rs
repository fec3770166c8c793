//! `sync`: merge another writer's state into this registry.
//!
//! Every part of an entry is a register with its own order, merged independently, so the
//! merge is commutative, associative and idempotent:
//! - token: higher `(generation, updated_at, fingerprint)` wins; a held secret survives a
//!   merge with a copy that lacks it (borrowed secrets are never exported);
//! - status: later `at` wins, the more severe on a tie (a reset is a status written at
//!   reset time), and a token written after the status clears it (adopt, clear status);
//! - metadata and pool configuration: later `updated_at` wins; the round-robin cursor:
//!   the later selection wins;
//! - request counters: per writer, the larger count (a grow-only counter);
//! - model benches: per model, later `at` wins; removal tombstones: union, and a
//!   tombstoned id never comes back;
//! - suppressed sources: per source the latest suppression, per pool the latest lift
//!   (see [`crate::suppress`]).
//!
//! Ties are broken by comparing the serialised values, so the result never depends on order.

use std::cmp::Ordering;

use serde_json::Value;

use crate::entry::{Entry, EntryId, ModelCooldown, Status, StatusRecord, Token};
use crate::error::Result;
use crate::pool_key::PoolKey;
use crate::registry::{Cursor, Pool, Registry};
use crate::state::pools_from_value;
use crate::time::Millis;

impl Registry {
    /// Merges `state` (another writer's exported state, or a fragment of one: the pools
    /// it names, with their own fields and some of their entries) into this registry. The
    /// cost follows the size of `state`, not of this registry.
    pub fn sync(&mut self, state: &Value) -> Result<()> {
        let theirs = pools_from_value(state)?;
        for (key, pool) in theirs {
            let changed = match self.pools.get_mut(&key) {
                Some(ours) => merge_pool_into(ours, &pool),
                None => {
                    self.pools.insert(key, pool);
                    true
                }
            };
            if changed {
                self.mark_changed();
            }
        }
        Ok(())
    }

    /// Merges another writer's round-robin cursor of `pool`, as [`sync`](Self::sync)
    /// merges the cursor of a state document holding that pool (the later selection
    /// wins); whether it moved ours. For a store that keeps cursors apart from the rest of
    /// a pool's state, so that a selection elsewhere costs no whole-pool merge here.
    pub fn merge_cursor(&mut self, pool: &PoolKey, cursor: &Cursor) -> Result<bool> {
        let ours = self.pool_mut(pool)?;
        if cursor_order(Some(cursor)) <= cursor_order(ours.cursor.as_ref()) {
            return Ok(false);
        }
        ours.cursor = Some(cursor.clone());
        self.mark_changed();
        Ok(true)
    }
}

/// Merges `theirs` into `ours` (another state of the same pool; runtime, the turn and
/// sessions, stays ours); returns whether `ours` changed.
fn merge_pool_into(ours: &mut Pool, theirs: &Pool) -> bool {
    let mut changed = false;
    if later_by(
        (theirs.config_at, &theirs.config),
        (ours.config_at, &ours.config),
    ) {
        ours.set_config(theirs.config.clone());
        ours.config_at = theirs.config_at;
        changed = true;
    }
    if cursor_order(theirs.cursor.as_ref()) > cursor_order(ours.cursor.as_ref()) {
        ours.cursor.clone_from(&theirs.cursor);
        changed = true;
    }
    changed |= ours.suppressions.merge(&theirs.suppressions);
    for (id, at) in &theirs.removed {
        if ours.removed.get(id).is_none_or(|mine| mine < at) {
            ours.removed.insert(id.clone(), *at);
            changed = true;
        }
    }
    for entry in theirs.unordered() {
        if ours.removed.contains_key(&entry.id) {
            continue;
        }
        match ours.get(&entry.id) {
            Some(mine) => {
                let combined = merge_entry(mine, entry);
                if combined != *mine {
                    // The entry exists: only the indexes its change touches are updated.
                    let _ = ours.update_entry(&entry.id, |slot| *slot = combined);
                    changed = true;
                }
            }
            None => {
                ours.put_entry(entry.clone());
                changed = true;
            }
        }
    }
    let gone: Vec<_> = theirs
        .removed
        .keys()
        .filter(|id| ours.get(id).is_some())
        .cloned()
        .collect();
    for id in &gone {
        ours.take_entry(id);
        changed = true;
    }
    if !gone.is_empty() {
        let removed = &ours.removed;
        ours.sessions.retain(|_, id| !removed.contains_key(id));
    }
    changed
}

/// The order in which round-robin cursors merge: the later selection wins (ties by
/// position).
fn cursor_order(cursor: Option<&Cursor>) -> Option<(Millis, i64, &EntryId)> {
    cursor.map(|c| (c.at, c.priority, &c.entry_id))
}

/// Merges two copies of one entry, register by register.
pub(crate) fn merge_entry(a: &Entry, b: &Entry) -> Entry {
    let meta = if later_by((b.meta.updated_at, &b.meta), (a.meta.updated_at, &a.meta)) {
        b.meta.clone()
    } else {
        a.meta.clone()
    };
    let mut counts = a.counts.clone();
    counts.merge(&b.counts);
    let mut model_cooldowns = a.model_cooldowns.clone();
    for (model, theirs) in &b.model_cooldowns {
        let slot = model_cooldowns.entry(model.clone()).or_insert(*theirs);
        *slot = later_bench(*slot, *theirs);
    }
    let mut leases = a.leases.clone();
    leases.merge(&b.leases);
    let token = merge_token(&a.token, &b.token);
    let mut status = merge_status(&a.status, &b.status);
    if status.status != Status::Ok && token.updated_at > status.at {
        // A token written after the status (a refresh or re-login elsewhere) clears it.
        status = StatusRecord {
            at: token.updated_at,
            ..StatusRecord::default()
        };
    }
    Entry {
        id: a.id.clone(),
        meta,
        token,
        status,
        cleared_at: a.cleared_at.max(b.cleared_at),
        counts,
        model_cooldowns,
        added_at: a.added_at.min(b.added_at),
        leases,
        refresh_sent: a.refresh_sent.max(b.refresh_sent),
    }
}

fn later_bench(a: ModelCooldown, b: ModelCooldown) -> ModelCooldown {
    if (b.at, b.until) > (a.at, a.until) {
        b
    } else {
        a
    }
}

fn merge_token(a: &Token, b: &Token) -> Token {
    let key = |t: &Token| {
        let refresh = t.refresh.as_ref().map(crate::secret::Secret::fingerprint);
        (
            t.generation,
            t.updated_at,
            t.fingerprint.clone(),
            t.expires_at,
            refresh,
        )
    };
    let (winner, other) = if key(b) > key(a) { (b, a) } else { (a, b) };
    let mut token = winner.clone();
    if key(other) == key(winner) && token.access.is_none() {
        token.access.clone_from(&other.access);
    }
    token
}

/// The later status wins; of two written in the same millisecond, the more severe one
/// (dead > exhausted > ok), so a mark never loses to a status that only ties it in time.
fn merge_status(a: &StatusRecord, b: &StatusRecord) -> StatusRecord {
    let b_wins = match (b.at, b.status).cmp(&(a.at, a.status)) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => later_by((b.at, b), (a.at, a)),
    };
    if b_wins { b.clone() } else { a.clone() }
}

/// Whether `(at, value)` of `b` orders after that of `a`: by time, then (a tie of two
/// different values) by their `Debug` text, formatted only in that rare case.
fn later_by<T: PartialEq + std::fmt::Debug>(b: (Millis, &T), a: (Millis, &T)) -> bool {
    match b.0.cmp(&a.0) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => b.1 != a.1 && format!("{:?}", b.1) > format!("{:?}", a.1),
    }
}
