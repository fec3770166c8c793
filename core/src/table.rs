//! The entries of a pool, found by id in constant time (and the hash map behind it).
//!
//! A pool of 100,000 entries is searched several times per request (the pick, its
//! counter, the report). In an ordered tree every search walks ~10 nodes that are
//! mostly out of cache. Here a lookup reads one control group and one 8-byte slot (the
//! table of a 100,000-entry pool is about 1 MiB, so it stays in cache) and then the
//! entry itself, which the caller reads anyway: the id is compared inside the entry.
//! Order is not needed here: the selection indexes (`index.rs`) hold every ordered view.
//!
//! Hashes are fixed functions of the key (ids: a multiply-mix of their inline words;
//! other keys: SipHash-1-3 with `DefaultHasher::new()`'s fixed keys): no randomness is
//! read, and iteration order depends only on the operations applied. Callers still
//! treat iteration as unordered.

// The one place core uses std's hash map (the fingerprint index): iteration order is
// never exposed (see above).
#![allow(clippy::disallowed_types)]

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::BuildHasherDefault;

use hashbrown::HashTable;

use crate::entry::{Entry, EntryId};

/// The fixed-key hasher of every core hash table.
type FixedState = BuildHasherDefault<DefaultHasher>;

/// A hash map with fixed keys (see the module documentation); never iterated where the
/// order could reach the output.
pub(crate) type FixedHashMap<K, V> = HashMap<K, V, FixedState>;

fn hash_of(id: &EntryId) -> u64 {
    id.fast_hash()
}

/// Entries by id; iteration order is unspecified.
#[derive(Clone, Default)]
pub(crate) struct EntryTable {
    /// Boxed entries, keyed by the hash of their id.
    table: HashTable<Box<Entry>>,
}

impl EntryTable {
    /// The entry with `id`.
    pub(crate) fn get(&self, id: &EntryId) -> Option<&Entry> {
        self.table
            .find(hash_of(id), |entry| entry.id == *id)
            .map(|e| &**e)
    }

    /// The entry with `id`, to change in place.
    pub(crate) fn get_mut(&mut self, id: &EntryId) -> Option<&mut Entry> {
        self.table
            .find_mut(hash_of(id), |entry| entry.id == *id)
            .map(|e| &mut **e)
    }

    /// Whether an entry has `id`.
    pub(crate) fn contains(&self, id: &EntryId) -> bool {
        self.get(id).is_some()
    }

    /// Inserts `entry`, returning the one it replaced.
    pub(crate) fn insert(&mut self, entry: Entry) -> Option<Entry> {
        let old = self.remove(&entry.id);
        self.table
            .insert_unique(hash_of(&entry.id), Box::new(entry), |e| hash_of(&e.id));
        old
    }

    /// Removes the entry with `id`.
    pub(crate) fn remove(&mut self, id: &EntryId) -> Option<Entry> {
        let found = self.table.find_entry(hash_of(id), |entry| entry.id == *id);
        found.ok().map(|slot| *slot.remove().0)
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Every entry, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.table.iter().map(|e| &**e)
    }
}

/// Equal when both hold the same entries (whatever their order in the table).
impl PartialEq for EntryTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .all(|entry| other.get(&entry.id).is_some_and(|theirs| theirs == entry))
    }
}

impl Eq for EntryTable {}

impl fmt::Debug for EntryTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::EntryTable;
    use crate::entry::{AuthType, Entry, EntryId, Meta, StatusRecord, Token};
    use crate::time::Millis;

    fn entry(id: &str, priority: i64) -> Entry {
        Entry {
            id: EntryId::parse(id).unwrap(),
            meta: Meta {
                label: id.to_owned(),
                auth_type: AuthType::default(),
                priority,
                source: "manual".to_owned(),
                base_url: None,
                extra: serde_json::Map::new(),
                updated_at: Millis::ZERO,
            },
            token: Token::new(None, None, None, Millis::ZERO),
            status: StatusRecord::default(),
            cleared_at: None,
            counts: crate::counts::Counts::default(),
            model_cooldowns: std::collections::BTreeMap::new(),
            added_at: Millis::ZERO,
            leases: crate::shared_leases::SharedLeases::default(),
            refresh_sent: None,
        }
    }

    #[test]
    fn insert_get_replace_remove() {
        let mut table = EntryTable::default();
        for i in 0..500 {
            assert!(table.insert(entry(&format!("k{i}"), i)).is_none());
        }
        assert_eq!(table.len(), 500);
        let id = EntryId::parse("k7").unwrap();
        assert_eq!(table.get(&id).map(|e| e.meta.priority), Some(7));
        let old = table.insert(entry("k7", 70)).map(|e| e.meta.priority);
        assert_eq!(old, Some(7));
        assert_eq!(table.get(&id).map(|e| e.meta.priority), Some(70));
        assert_eq!(table.len(), 500);
        assert_eq!(table.remove(&id).map(|e| e.meta.priority), Some(70));
        assert!(!table.contains(&id));
        assert_eq!(table.len(), 499);
        let mut other = EntryTable::default();
        for i in (0..500).rev().filter(|i| *i != 7) {
            other.insert(entry(&format!("k{i}"), i));
        }
        assert_eq!(table, other);
        other
            .get_mut(&EntryId::parse("k8").unwrap())
            .unwrap()
            .meta
            .priority = 0;
        assert_ne!(table, other);
    }
}
