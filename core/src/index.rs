//! Selection indexes of a pool, kept up to date by every mutation of an entry.
//!
//! Every index is a pure function of the entries' fields (never of the clock), so a pool
//! can always rebuild them from scratch and compare ([`Index::build`]); the time-dependent
//! part of availability (an exhausted entry's cooldown deadline, model benches) is kept as
//! deadline-ordered sets that a query at `now` reads by range.
//!
//! - `ready`: entries whose effective status is `ok` and that hold (or can refresh to) a
//!   secret, by `(priority, id)`, with positional access (an order-statistic set) so that
//!   `fill_first`, `round_robin` and `random` pick in `O(log n)`;
//! - `least_used`: the same entries by `(request count, priority, id)`, kept only while
//!   the pool's strategy is `least_used` (every selection moves an entry in it, and at
//!   random positions that costs cache misses the other strategies need not pay);
//! - `deadlines`: effective-`exhausted` entries by `(cooldown deadline, id)`: expiry pops
//!   only what ran out, the next deadline is the first element;
//! - `benches` / `all_benches`: model benches by `(until, id)`, per model and over all
//!   models (expired benches stay, as they stay in the entry; a range skips them);
//! - `live`: the number of non-dead entries (the sole-credential rule);
//! - `fingerprints`: hash of the secret fingerprint → sorted ids, a hash map (a lookup
//!   reads one slot, where a tree keyed by random hashes misses the cache at every level;
//!   callers compare the fingerprints of the ids found, so a hash collision is harmless);
//! - `priorities`: a multiset of priorities (the default priority of a new entry).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::entry::{Entry, EntryId, Status};
use crate::ranked::{RankedSet, SortedSet};
use crate::secret::Fingerprint;
use crate::table::FixedHashMap;
use crate::time::Millis;

/// `(priority, id)`: the order every strategy uses.
pub(crate) type OrderKey = (i64, EntryId);

/// What the indexes derive from one entry, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    priority: i64,
    ready: bool,
    deadline: Option<Millis>,
    live: bool,
    count: u64,
}

impl Facts {
    pub(crate) fn of(entry: &Entry) -> Self {
        let status = entry.effective_status();
        Self {
            priority: entry.meta.priority,
            ready: status == Status::Ok && has_secret(entry),
            deadline: (status == Status::Exhausted)
                .then(|| entry.status.until.unwrap_or(entry.status.at)),
            live: status != Status::Dead,
            count: entry.request_count(),
        }
    }
}

/// Holds a secret now or can get one by an OAuth refresh.
fn has_secret(entry: &Entry) -> bool {
    entry.token.access.is_some() || entry.is_refreshable()
}

/// An entry's state before a mutation, to update only the indexes that changed.
pub(crate) struct Snapshot {
    facts: Facts,
    fingerprint: Option<u64>,
    benches: Vec<(String, Millis)>,
    leased: bool,
}

impl Snapshot {
    pub(crate) fn of(entry: &Entry) -> Self {
        Self {
            facts: Facts::of(entry),
            fingerprint: entry.token.fingerprint.as_ref().map(Fingerprint::hash),
            benches: benches_of(entry),
            leased: !entry.leases.is_empty(),
        }
    }
}

fn benches_of(entry: &Entry) -> Vec<(String, Millis)> {
    entry
        .model_cooldowns
        .iter()
        .map(|(model, c)| (model.clone(), c.until))
        .collect()
}

/// The ids under one fingerprint hash: nearly always one, held inline (no second
/// allocation to chase); `Many` holds two or more, sorted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Siblings {
    One(EntryId),
    Many(Vec<EntryId>),
}

impl Siblings {
    /// From sorted, non-empty ids.
    fn from_vec(mut ids: Vec<EntryId>) -> Self {
        match (ids.pop(), ids.is_empty()) {
            (Some(only), true) => Self::One(only),
            (Some(last), false) => {
                ids.push(last);
                Self::Many(ids)
            }
            (None, _) => Self::Many(ids),
        }
    }

    fn into_vec(self) -> Vec<EntryId> {
        match self {
            Self::One(id) => vec![id],
            Self::Many(ids) => ids,
        }
    }
}

/// The indexes of one pool (see the module documentation).
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Index {
    pub(crate) ready: RankedSet<OrderKey>,
    pub(crate) least_used: Option<SortedSet<(u64, i64, EntryId)>>,
    pub(crate) deadlines: SortedSet<(Millis, EntryId)>,
    pub(crate) live: usize,
    pub(crate) fingerprints: FixedHashMap<u64, Siblings>,
    /// How many fingerprint hashes have more than one id (0: no secret is shared).
    pub(crate) shared: usize,
    pub(crate) benches: BTreeMap<String, BTreeSet<(Millis, EntryId)>>,
    pub(crate) all_benches: BTreeSet<(Millis, EntryId, String)>,
    pub(crate) priorities: BTreeMap<i64, usize>,
    /// Entries with open-lease counts (`max_concurrent_per_key`): where a cap can bite.
    pub(crate) leased: BTreeSet<EntryId>,
}

impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("ready", &self.ready.len())
            .field("cooling", &self.deadlines.len())
            .field("live", &self.live)
            .finish_non_exhaustive()
    }
}

impl Index {
    /// The indexes of `entries`, from scratch (what `Pool::check_index` compares with).
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn build<'a>(
        entries: impl IntoIterator<Item = &'a Entry>,
        least_used: bool,
    ) -> Self {
        let mut index = Self {
            least_used: least_used.then(SortedSet::default),
            ..Self::default()
        };
        for entry in entries {
            index.add(entry);
        }
        index
    }

    /// Starts (from `entries`, the pool's) or stops keeping the `least_used` index.
    pub(crate) fn keep_least_used<'a>(
        &mut self,
        keep: bool,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) {
        match (keep, self.least_used.is_some()) {
            (true, false) => {
                self.least_used = Some(
                    entries
                        .into_iter()
                        .map(|entry| (entry, Facts::of(entry)))
                        .filter(|(_, facts)| facts.ready)
                        .map(|(entry, facts)| (facts.count, facts.priority, entry.id.clone()))
                        .collect(),
                );
            }
            (false, true) => self.least_used = None,
            _ => {}
        }
    }

    /// Indexes a new entry.
    pub(crate) fn add(&mut self, entry: &Entry) {
        self.change_facts(&entry.id, None, Some(Facts::of(entry)));
        if let Some(fp) = &entry.token.fingerprint {
            self.add_fingerprint(fp.hash(), &entry.id);
        }
        for (model, cooldown) in &entry.model_cooldowns {
            self.add_bench(model, cooldown.until, &entry.id);
        }
        if !entry.leases.is_empty() {
            self.leased.insert(entry.id.clone());
        }
    }

    /// Forgets an entry that is being removed.
    pub(crate) fn remove(&mut self, entry: &Entry) {
        self.change_facts(&entry.id, Some(Facts::of(entry)), None);
        if let Some(fp) = &entry.token.fingerprint {
            self.remove_fingerprint(fp.hash(), &entry.id);
        }
        for (model, cooldown) in &entry.model_cooldowns {
            self.remove_bench(model, cooldown.until, &entry.id);
        }
        self.leased.remove(&entry.id);
    }

    /// Brings the indexes of `entry` up to date after a change from `before`.
    pub(crate) fn update(&mut self, entry: &Entry, before: Snapshot) {
        let facts = Facts::of(entry);
        if facts != before.facts {
            self.change_facts(&entry.id, Some(before.facts), Some(facts));
        }
        let fingerprint = entry.token.fingerprint.as_ref().map(Fingerprint::hash);
        if before.fingerprint != fingerprint {
            if let Some(hash) = before.fingerprint {
                self.remove_fingerprint(hash, &entry.id);
            }
            if let Some(hash) = fingerprint {
                self.add_fingerprint(hash, &entry.id);
            }
        }
        let changed = before.benches.len() != entry.model_cooldowns.len()
            || before
                .benches
                .iter()
                .zip(&entry.model_cooldowns)
                .any(|((m, u), (model, c))| m != model || *u != c.until);
        if changed {
            for (model, until) in &before.benches {
                self.remove_bench(model, *until, &entry.id);
            }
            for (model, cooldown) in &entry.model_cooldowns {
                self.add_bench(model, cooldown.until, &entry.id);
            }
        }
        match (before.leased, entry.leases.is_empty()) {
            (false, false) => {
                self.leased.insert(entry.id.clone());
            }
            (true, true) => {
                self.leased.remove(&entry.id);
            }
            _ => {}
        }
    }

    /// Records one more selection of `entry` (whose count was `before`).
    pub(crate) fn count_changed(&mut self, entry: &Entry, before: u64) {
        if self.least_used.is_some() {
            let facts = Facts::of(entry);
            let was = Facts {
                count: before,
                ..facts
            };
            self.change_facts(&entry.id, Some(was), Some(facts));
        }
    }

    /// Moves `id` in every index whose key changed from `before` to `after` (`None`: the
    /// entry is absent), touching nothing else: an index miss costs a cache miss in a
    /// large pool.
    fn change_facts(&mut self, id: &EntryId, before: Option<Facts>, after: Option<Facts>) {
        let ready_key = |f: Option<Facts>| f.filter(|f| f.ready).map(|f| f.priority);
        let (was_ready, is_ready) = (ready_key(before), ready_key(after));
        if was_ready != is_ready {
            if let Some(priority) = was_ready {
                self.ready.remove_key(priority, id);
            }
            if let Some(priority) = is_ready {
                self.ready.insert((priority, id.clone()));
            }
        }
        if let Some(least_used) = &mut self.least_used {
            let key = |f: Option<Facts>| f.filter(|f| f.ready).map(|f| (f.count, f.priority));
            let (old, new) = (key(before), key(after));
            if old != new {
                if let Some((count, priority)) = old {
                    least_used.remove(&(count, priority, id.clone()));
                }
                if let Some((count, priority)) = new {
                    least_used.insert((count, priority, id.clone()));
                }
            }
        }
        let deadline = |f: Option<Facts>| f.and_then(|f| f.deadline);
        if deadline(before) != deadline(after) {
            if let Some(deadline) = deadline(before) {
                self.deadlines.remove(&(deadline, id.clone()));
            }
            if let Some(deadline) = deadline(after) {
                self.deadlines.insert((deadline, id.clone()));
            }
        }
        let live = |f: Option<Facts>| f.is_some_and(|f| f.live);
        match (live(before), live(after)) {
            (false, true) => self.live += 1,
            (true, false) => self.live = self.live.saturating_sub(1),
            _ => {}
        }
        let priority = |f: Option<Facts>| f.map(|f| f.priority);
        if priority(before) != priority(after) {
            if let Some(old) = priority(before)
                && let Some(n) = self.priorities.get_mut(&old)
            {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.priorities.remove(&old);
                }
            }
            if let Some(new) = priority(after) {
                *self.priorities.entry(new).or_insert(0) += 1;
            }
        }
    }

    /// Ids whose fingerprint hashes like `fp` (a superset of the ids sharing it).
    pub(crate) fn fingerprint_candidates(&self, hash: u64) -> impl Iterator<Item = &EntryId> {
        let ids: &[EntryId] = match self.fingerprints.get(&hash) {
            None => &[],
            Some(Siblings::One(id)) => std::slice::from_ref(id),
            Some(Siblings::Many(ids)) => ids,
        };
        ids.iter()
    }

    fn add_fingerprint(&mut self, hash: u64, id: &EntryId) {
        let siblings = self.fingerprints.remove(&hash);
        let mut ids = siblings.map_or_else(Vec::new, Siblings::into_vec);
        if let Err(at) = ids.binary_search(id) {
            ids.insert(at, id.clone());
            if ids.len() == 2 {
                self.shared += 1;
            }
        }
        self.fingerprints.insert(hash, Siblings::from_vec(ids));
    }

    fn remove_fingerprint(&mut self, hash: u64, id: &EntryId) {
        if let Some(siblings) = self.fingerprints.remove(&hash) {
            let mut ids = siblings.into_vec();
            let before = ids.len();
            ids.retain(|other| other != id);
            if before == 2 && ids.len() == 1 {
                self.shared = self.shared.saturating_sub(1);
            }
            if !ids.is_empty() {
                self.fingerprints.insert(hash, Siblings::from_vec(ids));
            }
        }
    }

    fn add_bench(&mut self, model: &str, until: Millis, id: &EntryId) {
        self.benches
            .entry(model.to_owned())
            .or_default()
            .insert((until, id.clone()));
        self.all_benches
            .insert((until, id.clone(), model.to_owned()));
    }

    fn remove_bench(&mut self, model: &str, until: Millis, id: &EntryId) {
        if let Some(set) = self.benches.get_mut(model) {
            set.remove(&(until, id.clone()));
            if set.is_empty() {
                self.benches.remove(model);
            }
        }
        self.all_benches
            .remove(&(until, id.clone(), model.to_owned()));
    }

    /// Ids with a model bench in force at `now` that blocks `model` (`None`: any bench);
    /// an id may repeat. Costs `O(log n)` plus the benches in force.
    pub(crate) fn benched(&self, now: Millis, model: Option<&str>) -> Vec<&EntryId> {
        let from = now.plus(1);
        let mut ids: Vec<&EntryId> = match model {
            Some(model) => self.benches.get(model).map_or_else(Vec::new, |set| {
                set.range((from, EntryId::min())..)
                    .filter(|(until, _)| *until > now)
                    .map(|(_, id)| id)
                    .collect()
            }),
            None => self
                .all_benches
                .range((from, EntryId::min(), String::new())..)
                .filter(|(until, _, _)| *until > now)
                .map(|(_, id, _)| id)
                .collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Entries whose cooldown deadline is at or before `now` (to clear, or usable anyway).
    pub(crate) fn expired(&self, now: Millis) -> impl Iterator<Item = &EntryId> {
        self.deadlines
            .iter()
            .take_while(move |(deadline, _)| *deadline <= now)
            .map(|(_, id)| id)
    }

    /// The earliest cooldown deadline after `now`.
    pub(crate) fn next_deadline(&self, now: Millis) -> Option<Millis> {
        let after = now.plus(1);
        self.deadlines
            .iter_from_by(|(deadline, _)| deadline.cmp(&after))
            .map(|(deadline, _)| *deadline)
            .find(|deadline| *deadline > now)
    }

    /// The largest priority in the pool.
    pub(crate) fn max_priority(&self) -> Option<i64> {
        self.priorities.keys().next_back().copied()
    }
}

/// Compares a ready key with `(priority, id)` without building one.
fn cmp_key(key: &OrderKey, priority: i64, id: &EntryId) -> Ordering {
    key.0.cmp(&priority).then_with(|| key.1.cmp(id))
}

/// The ready set's lookups by `(priority, id)`, without cloning the id.
impl RankedSet<OrderKey> {
    /// Removes `(priority, id)`; false when it was not there.
    pub(crate) fn remove_key(&mut self, priority: i64, id: &EntryId) -> bool {
        self.remove_by(|k| cmp_key(k, priority, id))
    }

    /// Whether the set holds `(priority, id)`.
    pub(crate) fn contains_key(&self, priority: i64, id: &EntryId) -> bool {
        self.contains_by(|k| cmp_key(k, priority, id))
    }

    /// How many keys are smaller than `(priority, id)` (`or_equal`: not greater).
    pub(crate) fn rank(&self, priority: i64, id: &EntryId, or_equal: bool) -> usize {
        self.rank_by(|k| cmp_key(k, priority, id), or_equal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn id(n: u64) -> EntryId {
        EntryId::from_trusted(format!("e{n}"))
    }

    #[test]
    fn ranked_set_matches_a_sorted_vec() {
        let mut rng = Rng::new(11);
        let mut set = RankedSet::default();
        let mut model: BTreeSet<OrderKey> = BTreeSet::new();
        for step in 0..20_000 {
            let priority = i64::try_from(rng.below(50)).unwrap_or(0) - 25;
            let key = (priority, id(rng.below(400)));
            if rng.below(3) == 0 {
                assert_eq!(
                    set.remove_key(key.0, &key.1),
                    model.remove(&key),
                    "step {step}"
                );
            } else {
                assert_eq!(set.insert(key.clone()), model.insert(key), "step {step}");
            }
            assert_eq!(set.len(), model.len());
            if step % 97 == 0 {
                let sorted: Vec<&OrderKey> = model.iter().collect();
                let ours: Vec<&OrderKey> = set.iter().collect();
                assert_eq!(ours, sorted);
                for (k, key) in sorted.iter().enumerate() {
                    assert_eq!(set.select(k), Some(*key));
                    assert_eq!(set.rank(key.0, &key.1, false), k);
                    assert_eq!(set.rank(key.0, &key.1, true), k + 1);
                    assert!(set.contains_key(key.0, &key.1));
                }
                assert_eq!(set.select(sorted.len()), None);
                let probe = (3, id(1000));
                let below = model.iter().filter(|k| **k < probe).count();
                assert_eq!(set.rank(probe.0, &probe.1, false), below);
            }
        }
    }
}
