//! The entries of a pool, found by id in constant time (and the hash map behind it).
//!
//! A pool of 100,000 entries is searched several times per request (the pick, its
//! counter, the report). In an ordered tree every search walks ~10 nodes that are
//! mostly out of cache; a hash table reads one control group and one slot. Order is
//! not needed here: the selection indexes (`index.rs`) hold every ordered view.
//!
//! The hasher is SipHash-1-3 with fixed keys (`DefaultHasher::new()`, documented to be
//! the same in every process): no randomness is read, and iteration order depends only
//! on the operations applied. Callers still treat iteration as unordered.

// The one place core uses a hash map: iteration order is not exposed (see above).
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::BuildHasherDefault;

use crate::entry::{Entry, EntryId};

/// A hash map with fixed keys (see the module documentation); never iterated where the
/// order could reach the output.
pub(crate) type FixedHashMap<K, V> = HashMap<K, V, BuildHasherDefault<DefaultHasher>>;

/// Entries by id; iteration order is unspecified.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EntryTable {
    /// Boxed: slots stay small, so probing touches few cache lines.
    map: FixedHashMap<EntryId, Box<Entry>>,
}

impl EntryTable {
    /// The entry with `id`.
    pub(crate) fn get(&self, id: &EntryId) -> Option<&Entry> {
        self.map.get(id).map(|e| &**e)
    }

    /// The entry with `id`, to change in place.
    pub(crate) fn get_mut(&mut self, id: &EntryId) -> Option<&mut Entry> {
        self.map.get_mut(id).map(|e| &mut **e)
    }

    /// Whether an entry has `id`.
    pub(crate) fn contains(&self, id: &EntryId) -> bool {
        self.map.contains_key(id)
    }

    /// Inserts `entry`, returning the one it replaced.
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<Entry> {
        self.map
            .insert(entry.id.clone(), Box::new(entry))
            .map(|e| *e)
    }

    /// Removes the entry with `id`.
    pub(crate) fn remove(&mut self, id: &EntryId) -> Option<Entry> {
        self.map.remove(id).map(|e| *e)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.map.values().map(|e| &**e)
    }
}
