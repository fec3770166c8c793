//! Change journals: what one input changed, so a store can persist only that (and undo it
//! when the write fails) at a cost that follows the change, not the pool's size.
//!
//! A store calls [`Registry::begin_changes`] before applying an input, writes
//! [`Registry::changes`] (the touched entries and every pool's own fields), then either
//! [`Registry::end_changes`] (written) or [`Registry::undo_changes`] (the write failed:
//! the registry as it was at `begin_changes`). While no
//! journal is open, nothing is recorded and the registry pays nothing for it.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::call::{Call, CallId, GivenUp};
use crate::decision::LeaseId;
use crate::entry::{Entry, EntryId};
use crate::pool_key::PoolKey;
use crate::registry::{Cursor, Lease, Pool, PoolConfig, Registry, Turn};
use crate::rng::Rng;
use crate::state::{EntryDoc, PoolDoc, entry_doc, pool_fields_doc};
use crate::suppress::Suppressions;
use crate::time::Millis;

/// What changed since [`Registry::begin_changes`], as fragments of a state document.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Changes {
    /// Every pool (touched or not: its own fields are small), in key order.
    pub pools: Vec<PoolChanges>,
}

/// One pool's part of [`Changes`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PoolChanges {
    /// The pool key.
    pub key: PoolKey,
    /// The pool's own fields (configuration, cursor, tombstones); `entries` is empty.
    pub pool: PoolDoc,
    /// Entries changed or added (borrowed secrets left out, as in an export).
    pub entries: Vec<EntryDoc>,
    /// Entries removed.
    pub gone: Vec<EntryId>,
}

/// Before-images of an open journal (registry side; entries are journaled by their pool).
#[derive(Clone, Debug)]
pub(crate) struct Journal {
    rng: Rng,
    last_now: Millis,
    next_lease: u64,
    leases: BTreeMap<LeaseId, Lease>,
    changed: bool,
    next_call: u64,
    calls: BTreeMap<CallId, Call>,
    /// The given-up calls as they were, once changed (`None`: unchanged).
    given_up: Option<VecDeque<GivenUp>>,
    pools: BTreeMap<PoolKey, PoolFields>,
}

impl Journal {
    /// Records the given-up calls as they were before their first change.
    pub(crate) fn record_given_up(&mut self, before: &VecDeque<GivenUp>) {
        self.given_up.get_or_insert_with(|| before.clone());
    }
}

/// A pool's own fields as they were (its entries are journaled one by one).
#[derive(Clone, Debug)]
struct PoolFields {
    config: PoolConfig,
    config_at: Millis,
    removed: BTreeMap<EntryId, Millis>,
    suppressions: Suppressions,
    cursor: Option<Cursor>,
    turn: Turn,
    sessions: BTreeMap<String, EntryId>,
}

/// An entry journal: each touched entry's before-image (`None`: it did not exist).
pub(crate) type EntryJournal = BTreeMap<EntryId, Option<Entry>>;

impl Registry {
    /// Starts recording changes (replacing a journal left open). Costs the pools' own
    /// fields and the open leases and calls, never the entries.
    pub fn begin_changes(&mut self) {
        let pools = self
            .pools
            .iter_mut()
            .map(|(key, pool)| {
                pool.journal = Some(EntryJournal::new());
                (key.clone(), PoolFields::of(pool))
            })
            .collect();
        let journal = Journal {
            rng: self.rng.clone(),
            last_now: self.last_now,
            next_lease: self.next_lease,
            leases: self.leases.clone(),
            changed: self.changed,
            next_call: self.next_call,
            calls: self.calls.clone(),
            given_up: None,
            pools,
        };
        self.journal = Some(Box::new(journal));
    }

    /// What changed since [`begin_changes`](Self::begin_changes): every pool's own fields
    /// and the touched entries. The journal stays open (end it with
    /// [`end_changes`](Self::end_changes) once they are written, or undo them). Without an
    /// open journal every entry counts as touched.
    #[must_use]
    pub fn changes(&self) -> Changes {
        // A pool holds an entry journal exactly while the registry's journal is open.
        let pools = self
            .pools
            .iter()
            .map(|(key, pool)| match &pool.journal {
                Some(journal) => pool_changes(key, pool, journal.keys()),
                None => pool_changes(key, pool, pool.unordered().map(|e| &e.id)),
            })
            .collect();
        Changes { pools }
    }

    /// The current state of the named pools and entries, as [`Changes`]: what a store
    /// that queued the ids of [`changes`](Self::changes) (to write later, after merging
    /// in other writers' state) writes then. Ids no longer present are `gone`; pools no
    /// longer present are left out.
    #[must_use]
    pub fn changes_of(&self, touched: &BTreeMap<PoolKey, BTreeSet<EntryId>>) -> Changes {
        let pools = touched
            .iter()
            .filter_map(|(key, ids)| Some(pool_changes(key, self.pools.get(key)?, ids.iter())))
            .collect();
        Changes { pools }
    }

    /// Keeps what changed since [`begin_changes`](Self::begin_changes) and stops
    /// recording.
    pub fn end_changes(&mut self) {
        self.journal = None;
        for pool in self.pools.values_mut() {
            pool.journal = None;
        }
    }

    /// Puts the registry back as it was at [`begin_changes`](Self::begin_changes) (pools
    /// created since are dropped); stops recording. Does nothing without an open journal.
    pub fn undo_changes(&mut self) {
        let Some(journal) = self.journal.take() else {
            return;
        };
        let journal = *journal;
        self.pools.retain(|key, _| journal.pools.contains_key(key));
        for (key, fields) in journal.pools {
            let Some(pool) = self.pools.get_mut(&key) else {
                continue;
            };
            for (id, before) in pool.journal.take().unwrap_or_default() {
                match before {
                    Some(entry) => {
                        pool.put_entry(entry);
                    }
                    None => {
                        pool.take_entry(&id);
                    }
                }
            }
            fields.restore(pool);
        }
        self.rng = journal.rng;
        self.last_now = journal.last_now;
        self.next_lease = journal.next_lease;
        self.leases = journal.leases;
        self.changed = journal.changed;
        self.next_call = journal.next_call;
        self.calls = journal.calls;
        if let Some(given_up) = journal.given_up {
            self.given_up = given_up;
        }
    }

    /// Whether a journal is open (a pool created now must journal its entries too).
    pub(crate) fn journaling(&self) -> bool {
        self.journal.is_some()
    }
}

/// One pool's own fields and the current state of the entries `touched` names.
fn pool_changes<'a>(
    key: &PoolKey,
    pool: &Pool,
    touched: impl Iterator<Item = &'a EntryId>,
) -> PoolChanges {
    let (mut entries, mut gone) = (Vec::new(), Vec::new());
    for id in touched {
        match pool.get(id) {
            Some(entry) => entries.push(entry_doc(entry)),
            None => gone.push(id.clone()),
        }
    }
    PoolChanges {
        key: key.clone(),
        pool: pool_fields_doc(pool),
        entries,
        gone,
    }
}

impl PoolFields {
    fn of(pool: &Pool) -> Self {
        Self {
            config: pool.config.clone(),
            config_at: pool.config_at,
            removed: pool.removed.clone(),
            suppressions: pool.suppressions.clone(),
            cursor: pool.cursor.clone(),
            turn: pool.turn.clone(),
            sessions: pool.sessions.clone(),
        }
    }

    fn restore(self, pool: &mut Pool) {
        if pool.config != self.config {
            pool.set_config(self.config);
        }
        pool.config_at = self.config_at;
        pool.removed = self.removed;
        pool.suppressions = self.suppressions;
        pool.cursor = self.cursor;
        pool.turn = self.turn;
        pool.sessions = self.sessions;
    }
}
