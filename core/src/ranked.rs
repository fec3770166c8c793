//! [`RankedSet`]: a sorted set in blocks, with positional access.

use std::cmp::Ordering;

/// How many keys a block of a [`RankedSet`] holds before it splits in two.
const BLOCK_MAX: usize = 128;

/// A sorted set with positional access: `select(k)` (the k-th key) and `rank` (how many
/// keys are smaller) in `O(log n)`, and insert/remove in `O(log n + BLOCK_MAX)`.
///
/// Against a `BTreeSet` of 100,000 keys (depth 5–6, each node scanned linearly) a
/// lookup here is two binary searches over contiguous memory: about 17 comparisons
/// instead of about 50.
///
/// Keys live in sorted blocks of at most [`BLOCK_MAX`]; a Fenwick tree over the block
/// lengths finds the block holding a position. A block that splits or empties rebuilds
/// the tree (`O(n / BLOCK_MAX)`, once per `BLOCK_MAX / 2` insertions at most).
///
/// `POSITIONS = false` ([`SortedSet`]) drops the Fenwick tree, for sets only searched
/// and walked in order (no `select`/`rank`): splits and merges then cost no rebuild.
#[derive(Clone)]
pub(crate) struct RankedSet<K, const POSITIONS: bool = true> {
    blocks: Vec<Vec<K>>,
    /// The last key of each block, contiguous: finding a key's block reads no block.
    lasts: Vec<K>,
    /// Fenwick tree (1-based) over `blocks[i].len()` (empty without `POSITIONS`).
    tree: Vec<usize>,
    len: usize,
}

/// A sorted set in blocks without positional access.
pub(crate) type SortedSet<K> = RankedSet<K, false>;

impl<K, const P: bool> Default for RankedSet<K, P> {
    fn default() -> Self {
        Self {
            blocks: Vec::new(),
            lasts: Vec::new(),
            tree: Vec::new(),
            len: 0,
        }
    }
}

impl<K: Ord + Clone, const P: bool> PartialEq for RankedSet<K, P> {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().eq(other.iter())
    }
}

impl<K: Ord + Clone, const P: bool> Eq for RankedSet<K, P> {}

impl<K: Ord + Clone, const P: bool> FromIterator<K> for RankedSet<K, P> {
    fn from_iter<I: IntoIterator<Item = K>>(keys: I) -> Self {
        let mut sorted: Vec<K> = keys.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let len = sorted.len();
        let mut blocks = Vec::with_capacity(len / (BLOCK_MAX / 2) + 1);
        let mut rest = sorted.into_iter().peekable();
        while rest.peek().is_some() {
            blocks.push(rest.by_ref().take(BLOCK_MAX / 2).collect());
        }
        let mut set = Self {
            blocks,
            lasts: Vec::new(),
            tree: Vec::new(),
            len,
        };
        set.lasts = set
            .blocks
            .iter()
            .filter_map(|block| block.last().cloned())
            .collect();
        set.rebuild_tree();
        set
    }
}

impl<K: Ord + Clone, const P: bool> RankedSet<K, P> {
    /// Number of keys.
    pub(crate) const fn len(&self) -> usize {
        self.len
    }

    /// Keys in order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &K> {
        self.blocks.iter().flatten()
    }

    /// Keys in order from the first that `probe` does not call `Less` (the probe orders a
    /// key against the target, as `binary_search_by` does).
    pub(crate) fn iter_from_by(&self, probe: impl Fn(&K) -> Ordering) -> impl Iterator<Item = &K> {
        let b = self.block_of(&probe);
        let skip = self.blocks.get(b).map_or(0, |block| {
            block.partition_point(|k| probe(k) == Ordering::Less)
        });
        self.blocks.iter().skip(b).flatten().skip(skip)
    }

    /// The block that holds (or would hold) the probe's target.
    ///
    /// The first and last blocks are tried before the binary search: queue-like use
    /// (cooldown deadlines, the least-used order) works at the ends.
    fn block_of(&self, probe: &impl Fn(&K) -> Ordering) -> usize {
        let below = |last: &K| probe(last) == Ordering::Less;
        let n = self.lasts.len();
        if n == 0 || !below(&self.lasts[0]) {
            return 0;
        }
        if below(&self.lasts[n - 1]) {
            return n;
        }
        // Here n >= 2 and lasts[0] < target <= lasts[n - 1].
        if below(&self.lasts[n - 2]) {
            return n - 1;
        }
        1 + self.lasts[1..n - 1].partition_point(below)
    }

    /// Inserts a key; false when it was there.
    pub(crate) fn insert(&mut self, key: K) -> bool {
        if self.blocks.is_empty() {
            self.lasts.push(key.clone());
            self.blocks.push(vec![key]);
            self.len = 1;
            self.rebuild_tree();
            return true;
        }
        let b = self
            .block_of(&|k: &K| k.cmp(&key))
            .min(self.blocks.len() - 1);
        let block = &mut self.blocks[b];
        let Err(at) = block.binary_search(&key) else {
            return false;
        };
        block.insert(at, key);
        self.len += 1;
        if block.len() > BLOCK_MAX {
            let tail = block.split_off(BLOCK_MAX / 2);
            if let Some(head_last) = block.last() {
                // `lasts[b]` (the tail's last) moves to `b + 1`.
                self.lasts.insert(b, head_last.clone());
            }
            if at + 1 == block.len() + tail.len() {
                self.lasts[b + 1] = tail[tail.len() - 1].clone();
            }
            self.blocks.insert(b + 1, tail);
            self.rebuild_tree();
        } else {
            if at + 1 == block.len() {
                self.lasts[b] = block[at].clone();
            }
            self.add(b, true);
        }
        true
    }

    /// Removes `key`; false when it was not there.
    pub(crate) fn remove(&mut self, key: &K) -> bool {
        self.remove_by(|k| k.cmp(key))
    }

    /// Removes the key the probe finds; false when there is none.
    pub(crate) fn remove_by(&mut self, probe: impl Fn(&K) -> Ordering) -> bool {
        let b = self.block_of(&probe);
        let Some(block) = self.blocks.get_mut(b) else {
            return false;
        };
        let Ok(at) = block.binary_search_by(&probe) else {
            return false;
        };
        block.remove(at);
        self.len -= 1;
        let small = block.len() < BLOCK_MAX / 8;
        if let Some(last) = block.last()
            && at == block.len()
        {
            self.lasts[b] = last.clone();
        }
        if block.is_empty() {
            self.blocks.remove(b);
            self.lasts.remove(b);
            self.rebuild_tree();
        } else if small && b + 1 < self.blocks.len() && self.blocks[b + 1].len() < BLOCK_MAX / 2 {
            let next = self.blocks.remove(b + 1);
            self.blocks[b].extend(next);
            // The merged block ends where the next one did.
            self.lasts.remove(b);
            self.rebuild_tree();
        } else {
            self.add(b, false);
        }
        true
    }

    /// Whether the probe finds a key.
    pub(crate) fn contains_by(&self, probe: impl Fn(&K) -> Ordering) -> bool {
        self.blocks
            .get(self.block_of(&probe))
            .is_some_and(|block| block.binary_search_by(&probe).is_ok())
    }

    /// One more (`grow`) or one fewer key in block `b`.
    fn add(&mut self, b: usize, grow: bool) {
        if !P {
            return;
        }
        let mut i = b + 1;
        while i < self.tree.len() {
            if grow {
                self.tree[i] += 1;
            } else {
                self.tree[i] -= 1;
            }
            i += i & i.wrapping_neg();
        }
    }

    /// Panics unless `lasts`, the tree and `len` agree with the blocks (tests).
    #[cfg(test)]
    fn assert_consistent(&self) {
        let lasts: Vec<&K> = self.blocks.iter().filter_map(|b| b.last()).collect();
        assert!(self.lasts.iter().eq(lasts), "lasts drifted");
        assert!(
            self.blocks
                .iter()
                .all(|b| !b.is_empty() && b.len() <= BLOCK_MAX)
        );
        let mut sum = 0;
        for (b, block) in self.blocks.iter().enumerate() {
            if P {
                let mut i = b;
                let mut prefix = 0;
                while i > 0 {
                    prefix += self.tree[i];
                    i &= i - 1;
                }
                assert_eq!(prefix, sum, "tree drifted");
            }
            sum += block.len();
        }
        assert_eq!(sum, self.len);
    }

    /// Rebuilds the Fenwick tree after blocks split, merged or vanished (`O(blocks)`
    /// integer additions; `lasts` is kept up to date by the caller).
    fn rebuild_tree(&mut self) {
        if !P {
            return;
        }
        let n = self.blocks.len();
        self.tree.clear();
        self.tree.resize(n + 1, 0);
        for (i, block) in self.blocks.iter().enumerate() {
            let at = i + 1;
            self.tree[at] += block.len();
            let parent = at + (at & at.wrapping_neg());
            if parent <= n {
                let value = self.tree[at];
                self.tree[parent] += value;
            }
        }
    }
}

/// Positional access (the Fenwick tree).
impl<K: Ord + Clone> RankedSet<K> {
    /// How many keys are smaller than the probe's target (`or_equal`: not greater).
    pub(crate) fn rank_by(&self, probe: impl Fn(&K) -> Ordering, or_equal: bool) -> usize {
        let b = self.block_of(&probe);
        let Some(block) = self.blocks.get(b) else {
            return self.len;
        };
        let within = block.partition_point(|k| match probe(k) {
            Ordering::Less => true,
            Ordering::Equal => or_equal,
            Ordering::Greater => false,
        });
        self.prefix(b) + within
    }

    /// The key at position `k` (0-based).
    pub(crate) fn select(&self, k: usize) -> Option<&K> {
        if k >= self.len {
            return None;
        }
        let n = self.blocks.len();
        let mut pos = 0;
        let mut rest = k;
        let mut step = n.checked_ilog2().map_or(0, |log| 1 << log);
        while step > 0 {
            if pos + step <= n && self.tree[pos + step] <= rest {
                pos += step;
                rest -= self.tree[pos];
            }
            step >>= 1;
        }
        self.blocks.get(pos).and_then(|block| block.get(rest))
    }

    /// Sum of the lengths of the first `b` blocks.
    fn prefix(&self, b: usize) -> usize {
        let mut i = b;
        let mut sum = 0;
        while i > 0 {
            sum += self.tree[i];
            i &= i - 1;
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::RankedSet;
    use crate::rng::Rng;

    #[test]
    fn matches_a_btree_set_through_splits_and_merges() {
        let mut rng = Rng::new(5);
        let start: Vec<u64> = (0..700).map(|_| rng.below(5_000)).collect();
        let mut set: RankedSet<u64> = start.iter().copied().collect();
        let mut sorted: super::SortedSet<u64> = set.iter().copied().collect();
        let mut model: BTreeSet<u64> = start.into_iter().collect();
        for step in 0..30_000 {
            let key = rng.below(5_000);
            if rng.below(2) == 0 {
                assert_eq!(set.remove(&key), model.remove(&key), "step {step}");
                sorted.remove(&key);
            } else {
                assert_eq!(set.insert(key), model.insert(key), "step {step}");
                sorted.insert(key);
            }
            assert_eq!(set.len(), model.len());
            if step % 211 == 0 {
                set.assert_consistent();
                sorted.assert_consistent();
                assert!(sorted.iter().eq(model.iter()));
                assert!(set.iter().eq(model.iter()));
                let from = rng.below(5_200);
                let ours: Vec<&u64> = set.iter_from_by(|k| k.cmp(&from)).collect();
                let theirs: Vec<&u64> = model.range(from..).collect();
                assert_eq!(ours, theirs, "from {from}");
                assert_eq!(
                    set.rank_by(|k| k.cmp(&from), false),
                    model.range(..from).count()
                );
                assert_eq!(set.contains_by(|k| k.cmp(&from)), model.contains(&from));
            }
        }
    }
}
