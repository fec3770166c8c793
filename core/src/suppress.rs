//! Suppressed sources: seeding sources of a pool that a user turned off by removing their
//! entry (Hermes' `auth.json suppressed_sources`, reference §6.2 and §7.3).
//!
//! Persisted per pool as a register that merges across processes: each source keeps the
//! time of its latest suppression, the pool keeps the time of its latest lift (an
//! `add_entry`, reference §7.2: "re-adding means re-enable"), and a source is suppressed
//! while its suppression is later than the lift. Both merge by maximum, so the merge is
//! commutative, associative and idempotent; suppressions a lift covers are dropped.

use std::collections::BTreeMap;

use crate::entry::validate_name;
use crate::error::{Error, ErrorCode, Result};
use crate::limits::MAX_SUPPRESSED_SOURCES;
use crate::time::Millis;

/// The suppressed sources of one pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Suppressions {
    /// Source → when it was last suppressed (only those later than `lifted_at`).
    sources: BTreeMap<String, Millis>,
    /// When every suppression of the pool was last lifted.
    lifted_at: Millis,
}

/// Whether removing an entry of `source` suppresses that source: every source but the
/// user's own (`manual`, `manual:<flow>`), which no seeding offers.
#[must_use]
pub(crate) fn suppressed_on_removal(source: &str) -> bool {
    source != "manual" && !source.starts_with("manual:")
}

impl Suppressions {
    /// Reads the persisted form, dropping suppressions the lift covers.
    ///
    /// # Errors
    ///
    /// `invalid_state` for a source name that is empty, too long or has control
    /// characters; `too_large` for more than [`MAX_SUPPRESSED_SOURCES`] sources.
    pub(crate) fn from_parts(sources: BTreeMap<String, Millis>, lifted_at: Millis) -> Result<Self> {
        if sources.len() > MAX_SUPPRESSED_SOURCES {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!("more than {MAX_SUPPRESSED_SOURCES} suppressed sources in a pool"),
            ));
        }
        for source in sources.keys() {
            validate_name("suppressed source", source)
                .map_err(|e| Error::new(ErrorCode::InvalidState, e.message().to_owned()))?;
        }
        let mut this = Self { sources, lifted_at };
        this.drop_lifted();
        Ok(this)
    }

    /// The persisted form: sources with their suppression times, and the lift time.
    pub(crate) const fn parts(&self) -> (&BTreeMap<String, Millis>, Millis) {
        (&self.sources, self.lifted_at)
    }

    /// Whether seeding must skip `source`.
    pub(crate) fn contains(&self, source: &str) -> bool {
        self.sources.contains_key(source)
    }

    /// The suppressed sources, sorted.
    pub(crate) fn sources(&self) -> impl Iterator<Item = &str> {
        self.sources.keys().map(String::as_str)
    }

    /// Suppresses `source` at `now` (stamped after the last lift, so a suppression always
    /// outlives a lift this process saw, even within one millisecond); whether the
    /// persisted form changed. Past [`MAX_SUPPRESSED_SOURCES`] a new source is not kept.
    pub(crate) fn suppress(&mut self, source: &str, now: Millis) -> bool {
        if !self.sources.contains_key(source) && self.sources.len() >= MAX_SUPPRESSED_SOURCES {
            return false;
        }
        let at = now.max(self.lifted_at.plus(1));
        let slot = self
            .sources
            .entry(source.to_owned())
            .or_insert(Millis::ZERO);
        let changed = *slot < at;
        *slot = (*slot).max(at);
        changed
    }

    /// Lifts every suppression made up to `now`; whether one was lifted (a pool with
    /// nothing suppressed keeps its lift time as it was).
    pub(crate) fn lift(&mut self, now: Millis) -> bool {
        if !self.sources.values().any(|at| *at <= now) {
            return false;
        }
        self.lifted_at = self.lifted_at.max(now);
        self.drop_lifted();
        true
    }

    /// Merges another process's suppressions; whether ours changed.
    pub(crate) fn merge(&mut self, theirs: &Self) -> bool {
        let before = self.clone();
        self.lifted_at = self.lifted_at.max(theirs.lifted_at);
        for (source, at) in &theirs.sources {
            let slot = self.sources.entry(source.clone()).or_insert(*at);
            *slot = (*slot).max(*at);
        }
        self.drop_lifted();
        *self != before
    }

    fn drop_lifted(&mut self) {
        let lifted_at = self.lifted_at;
        self.sources.retain(|_, at| *at > lifted_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sources: &[(&str, u64)], lifted: u64) -> Suppressions {
        Suppressions::from_parts(
            sources
                .iter()
                .map(|(s, at)| ((*s).to_owned(), Millis(*at)))
                .collect(),
            Millis(lifted),
        )
        .unwrap()
    }

    #[test]
    fn merge_is_commutative_associative_and_idempotent() {
        let samples = [
            of(&[("env:A", 10)], 0),
            of(&[("env:B", 30)], 20),
            of(&[("env:A", 25), ("env:C", 5)], 15),
            of(&[], 40),
        ];
        let merged = |a: &Suppressions, b: &Suppressions| {
            let mut out = a.clone();
            out.merge(b);
            out
        };
        for a in &samples {
            assert_eq!(merged(a, a), *a);
            for b in &samples {
                assert_eq!(merged(a, b), merged(b, a));
                for c in &samples {
                    assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
                }
            }
        }
    }

    #[test]
    fn a_suppression_after_a_lift_in_the_same_ms_holds() {
        let mut s = of(&[("env:A", 10)], 0);
        assert!(s.lift(Millis(50)));
        assert!(!s.contains("env:A"));
        assert!(s.suppress("env:A", Millis(50)));
        assert!(s.contains("env:A"));
        assert!(
            !s.lift(Millis(40)),
            "a lift never covers a later suppression"
        );
        assert!(s.contains("env:A"));
    }

    #[test]
    fn only_seeded_sources_are_suppressed_on_removal() {
        assert!(suppressed_on_removal("env:OPENROUTER_API_KEY"));
        assert!(suppressed_on_removal("claude_code"));
        assert!(!suppressed_on_removal("manual"));
        assert!(!suppressed_on_removal("manual:device_code"));
    }
}
