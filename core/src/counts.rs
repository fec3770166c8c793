//! Selections of one entry per writer: a grow-only counter per writer.
//!
//! Nearly every entry is counted by one writer (one process, or one worker slot), so
//! the first counter sits inline in the entry: counting a selection reads and writes
//! memory the entry's lookup already brought into cache.

use std::collections::BTreeMap;
use std::fmt;

use crate::short_str::ShortStr;

/// Selections per writer; the sum is the entry's request count. Merges take the larger
/// count per writer (see [`Counts::merge`]).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Counts(Repr);

/// Canonical: one writer is always `One`; `Many` holds 0 or at least 2, sorted by writer.
#[derive(Clone, PartialEq, Eq)]
enum Repr {
    One(ShortStr, u64),
    Many(Vec<(ShortStr, u64)>),
}

impl Default for Repr {
    fn default() -> Self {
        Self::Many(Vec::new())
    }
}

impl Counts {
    /// The count of `writer` (0 when it never selected the entry).
    #[must_use]
    pub fn get(&self, writer: &str) -> u64 {
        self.iter()
            .find(|(name, _)| *name == writer)
            .map_or(0, |(_, n)| n)
    }

    /// `(writer, count)` pairs, sorted by writer.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        let (one, many): (_, &[(ShortStr, u64)]) = match &self.0 {
            Repr::One(name, n) => (Some((name.as_str(), *n)), &[]),
            Repr::Many(list) => (None, list),
        };
        one.into_iter().chain(many.iter().map(pair))
    }

    /// Number of writers.
    #[must_use]
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::One(..) => 1,
            Repr::Many(list) => list.len(),
        }
    }

    /// Whether no writer counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sum over writers (saturating).
    #[must_use]
    pub fn total(&self) -> u64 {
        self.iter().fold(0, |sum, (_, n)| sum.saturating_add(n))
    }

    /// Counts one more selection by `writer`.
    pub(crate) fn increment(&mut self, writer: &str) {
        let n = self.get(writer).saturating_add(1);
        self.set(writer, n);
    }

    /// Sets the count of `writer`.
    pub(crate) fn set(&mut self, writer: &str, n: u64) {
        match &mut self.0 {
            Repr::One(name, count) if name.as_str() == writer => *count = n,
            Repr::One(name, count) => {
                let mut list = vec![(name.clone(), *count), (ShortStr::new(writer), n)];
                list.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                self.0 = Repr::Many(list);
            }
            Repr::Many(list) if list.is_empty() => self.0 = Repr::One(ShortStr::new(writer), n),
            Repr::Many(list) => {
                match list.binary_search_by(|(name, _)| name.as_str().cmp(writer)) {
                    Ok(i) => list[i].1 = n,
                    Err(i) => list.insert(i, (ShortStr::new(writer), n)),
                }
            }
        }
    }

    /// Takes, per writer, the larger of the two counts (the merge of grow-only counters).
    pub(crate) fn merge(&mut self, other: &Self) {
        for (writer, n) in other.iter() {
            if n > self.get(writer) {
                self.set(writer, n);
            }
        }
    }
}

fn pair((name, n): &(ShortStr, u64)) -> (&str, u64) {
    (name.as_str(), *n)
}

impl FromIterator<(String, u64)> for Counts {
    fn from_iter<I: IntoIterator<Item = (String, u64)>>(pairs: I) -> Self {
        let mut counts = Self::default();
        for (writer, n) in pairs {
            counts.set(&writer, n);
        }
        counts
    }
}

impl From<&Counts> for BTreeMap<String, u64> {
    fn from(counts: &Counts) -> Self {
        counts.iter().map(|(w, n)| (w.to_owned(), n)).collect()
    }
}

impl fmt::Debug for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::Counts;

    #[test]
    fn behaves_like_a_sorted_map() {
        let writers = [
            "w",
            "b",
            "a-very-long-writer-name-on-the-heap",
            "w",
            "a",
            "b",
            "w",
        ];
        let mut counts = Counts::default();
        let mut map: BTreeMap<String, u64> = BTreeMap::new();
        for writer in writers {
            counts.increment(writer);
            *map.entry(writer.to_owned()).or_default() += 1;
            assert_eq!(BTreeMap::from(&counts), map);
            assert_eq!(counts.total(), map.values().sum::<u64>());
        }
        assert_eq!(counts.get("w"), 3);
        assert_eq!(counts.get("nobody"), 0);
    }

    #[test]
    fn equality_and_merge_ignore_history() {
        let a: Counts = [("x".to_owned(), 2), ("y".to_owned(), 1)]
            .into_iter()
            .collect();
        let mut b = Counts::default();
        b.set("y", 1);
        b.set("x", 2);
        assert_eq!(a, b);
        let mut one = Counts::default();
        one.set("x", 5);
        let mut merged = a.clone();
        merged.merge(&one);
        assert_eq!(merged.get("x"), 5);
        assert_eq!(merged.get("y"), 1);
        let mut back = one.clone();
        back.merge(&a);
        assert_eq!(back, merged);
    }
}
