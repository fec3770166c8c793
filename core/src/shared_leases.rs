//! Open leases per writer, kept on an entry while its pool caps the requests open on one
//! key (`max_concurrent_per_key`).
//!
//! Each writer (process) owns its own count and rewrites it whenever it opens or settles a
//! lease on the entry, so the store carries every process's count to the others and a
//! merge keeps each writer's latest write. A count lapses `lease_ttl_ms` after its
//! writer last wrote it: a crashed process cannot pin a key.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::validate_name;
use crate::error::Result;
use crate::time::Millis;

/// One writer's open leases on an entry.
///
/// Fields in merge order: the later write wins, ties by the larger count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriterLeases {
    /// When the writer last wrote the count.
    pub at: Millis,
    /// Leases the writer holds open on the entry.
    pub open: u32,
    /// When the count lapses unless its writer writes it again.
    pub until: Millis,
}

/// Open leases on an entry, per writer id.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SharedLeases(BTreeMap<String, WriterLeases>);

impl SharedLeases {
    /// Leases open at `now` over every writer (lapsed counts left out).
    #[must_use]
    pub fn open_at(&self, now: Millis) -> u64 {
        self.0
            .values()
            .filter(|leases| leases.until > now)
            .map(|leases| u64::from(leases.open))
            .sum()
    }

    /// Whether no writer has a count here.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `(writer, leases)` pairs, by writer.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &WriterLeases)> {
        self.0
            .iter()
            .map(|(writer, leases)| (writer.as_str(), leases))
    }

    /// Checks the writer ids of a document's counts.
    pub(crate) fn validate(&self) -> Result<()> {
        self.0
            .keys()
            .try_for_each(|writer| validate_name("writer", writer))
    }

    /// Writes `writer`'s count at `now`, lapsing `ttl_ms` later; drops other writers'
    /// lapsed counts.
    pub(crate) fn set(&mut self, writer: &str, open: u32, now: Millis, ttl_ms: u64) {
        self.0
            .retain(|name, leases| name == writer || leases.until > now);
        self.0.insert(
            writer.to_owned(),
            WriterLeases {
                at: now,
                open,
                until: now.plus(ttl_ms),
            },
        );
    }

    /// Keeps, per writer, the later of the two counts.
    pub(crate) fn merge(&mut self, theirs: &Self) {
        for (writer, leases) in &theirs.0 {
            let slot = self.0.entry(writer.clone()).or_insert(*leases);
            *slot = (*slot).max(*leases);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lapsed_counts_are_left_out_and_dropped_on_the_next_write() {
        let mut leases = SharedLeases::default();
        leases.set("w1", 2, Millis(0), 100);
        leases.set("w2", 1, Millis(50), 100);
        assert_eq!(leases.open_at(Millis(99)), 3);
        assert_eq!(leases.open_at(Millis(100)), 1);
        leases.set("w2", 0, Millis(120), 100);
        assert_eq!(leases.iter().map(|(w, _)| w).collect::<Vec<_>>(), ["w2"]);
    }

    #[test]
    fn merge_keeps_each_writers_later_write() {
        let mut ours = SharedLeases::default();
        ours.set("w1", 0, Millis(10), 100);
        let mut theirs = SharedLeases::default();
        theirs.set("w1", 3, Millis(5), 100);
        theirs.set("w2", 1, Millis(7), 100);
        ours.merge(&theirs);
        assert_eq!(ours.open_at(Millis(20)), 1);
    }
}
