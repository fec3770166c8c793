//! The registry: every pool of one process, its open leases and per-turn state.
//!
//! Inputs are methods taking `now`; each returns a value and never blocks. Pool
//! management lives here; selection in [`crate::select`], outcomes in
//! [`crate::outcome`], persistence in [`crate::state`] and [`crate::merge`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::call::{Call, CallId, GivenUp};
use crate::counts::Counts;
use crate::decision::{FallbackTarget, LeaseId};
use crate::entry::{
    AuthType, Entry, EntryId, Meta, Status, StatusRecord, Token, is_borrowed_source,
    validate_extra, validate_name, validate_secret,
};
use crate::error::{Error, ErrorCode, Result};
use crate::fallback::{ActiveFallback, validate_fallback};
use crate::index::{Index, Snapshot};
use crate::journal::{EntryJournal, Journal};
use crate::limits::{MAX_ENTRIES_PER_POOL, MAX_POOLS};
use crate::oauth::CanRefresh;
use crate::policy::Policy;
use crate::pool_key::PoolKey;
use crate::rng::Rng;
use crate::route::Api;
use crate::secret::{Fingerprint, Secret};
use crate::shared_leases::SharedLeases;
use crate::suppress::{Suppressions, suppressed_on_removal};
use crate::table::EntryTable;
use crate::time::Millis;

/// How a pool picks among its available entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Lowest priority available (default).
    #[default]
    FillFirst,
    /// Cycle over the available entries by a cursor (priorities untouched).
    RoundRobin,
    /// Lowest request count, ties by priority.
    LeastUsed,
    /// Uniform over available entries, from the seeded PRNG.
    Random,
}

/// A pool's configuration; last writer wins as a whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// Selection strategy.
    pub strategy: Strategy,
    /// Outcome policy.
    pub policy: Policy,
    /// Fallback chain, tried in order within a turn.
    pub fallback: Vec<FallbackTarget>,
    /// The API shape its endpoints speak, if declared (see [`Api::of_pool`]).
    pub api: Option<Api>,
}

/// A change to a pool's configuration: each field given replaces the pool's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolUpdate {
    /// Selection strategy.
    pub strategy: Option<Strategy>,
    /// Outcome policy.
    pub policy: Option<Policy>,
    /// Fallback chain.
    pub fallback: Option<Vec<FallbackTarget>>,
    /// API shape.
    pub api: Option<Api>,
}

/// Round-robin position: the last entry handed out.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Cursor {
    /// Priority of the last selected entry when it was selected.
    pub priority: i64,
    /// The last selected entry.
    pub entry_id: EntryId,
    /// When it was selected (last writer wins).
    pub at: Millis,
}

/// Per-turn counters of a pool (in memory, never persisted).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Turn {
    /// 401-triggered refreshes per entry this turn.
    pub(crate) refreshes: BTreeMap<EntryId, u32>,
    /// Entries that already had their one same-key 429 retry.
    pub(crate) retried_rate_limit: BTreeSet<EntryId>,
    /// Same-entry retries spent this turn.
    pub(crate) same_retries: u32,
    /// The fallback step in force, if the pool fell back.
    pub(crate) fallback: Option<ActiveFallback>,
}

/// One pool: entries for one provider or custom endpoint.
///
/// The entries are private: every change goes through a method that updates the entry and
/// the selection indexes together, so no code path can leave an index stale.
#[derive(Clone, Debug)]
pub struct Pool {
    pub(crate) key: PoolKey,
    pub(crate) config: PoolConfig,
    pub(crate) config_at: Millis,
    /// By id, unordered (the indexes hold the ordered views).
    entries: EntryTable,
    index: Index,
    pub(crate) removed: BTreeMap<EntryId, Millis>,
    /// Seeding sources the user turned off (see [`crate::suppress`]).
    pub(crate) suppressions: Suppressions,
    pub(crate) cursor: Option<Cursor>,
    pub(crate) turn: Turn,
    pub(crate) sessions: BTreeMap<String, EntryId>,
    /// Before-images of the entries touched since the registry's journal opened (None:
    /// no journal open, nothing recorded).
    pub(crate) journal: Option<EntryJournal>,
}

/// Records `before` as `id`'s before-image in an open journal, unless it has one already.
fn record(journal: &mut Option<EntryJournal>, id: &EntryId, before: Option<&Entry>) {
    if let Some(journal) = journal
        && !journal.contains_key(id)
    {
        journal.insert(id.clone(), before.cloned());
    }
}

/// Equality of what a pool holds; the index is derived from the entries (and the journal
/// is bookkeeping), so both are skipped.
impl PartialEq for Pool {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
            && self.config == other.config
            && self.config_at == other.config_at
            && self.entries == other.entries
            && self.removed == other.removed
            && self.suppressions == other.suppressions
            && self.cursor == other.cursor
            && self.turn == other.turn
            && self.sessions == other.sessions
    }
}

impl Eq for Pool {}

impl Pool {
    pub(crate) fn new(key: PoolKey) -> Self {
        Self {
            key,
            config: PoolConfig::default(),
            config_at: Millis::ZERO,
            entries: EntryTable::default(),
            index: Index::default(),
            removed: BTreeMap::new(),
            suppressions: Suppressions::default(),
            cursor: None,
            turn: Turn::default(),
            sessions: BTreeMap::new(),
            journal: None,
        }
    }

    /// The pool key.
    #[must_use]
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// The seeding sources suppressed in this pool (a removed seeded entry's source), sorted.
    pub fn suppressed_sources(&self) -> impl Iterator<Item = &str> {
        self.suppressions.sources()
    }

    /// Entries in priority order (ties by id).
    #[must_use]
    pub fn entries(&self) -> Vec<&Entry> {
        let mut list: Vec<&Entry> = self.entries.iter().collect();
        list.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        list
    }

    /// Every entry, in no particular order.
    pub(crate) fn unordered(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the pool holds (or tombstoned) `id`.
    pub(crate) fn knows(&self, id: &EntryId) -> bool {
        self.entries.contains(id) || self.removed.contains_key(id)
    }

    /// The entry with `id`.
    pub fn entry(&self, id: &EntryId) -> Result<&Entry> {
        self.entries
            .get(id)
            .ok_or_else(|| Error::unknown_entry(self.key.as_str(), id.as_str()))
    }

    /// The entry with `id`, if any.
    pub(crate) fn get(&self, id: &EntryId) -> Option<&Entry> {
        self.entries.get(id)
    }

    /// Sets the configuration (and keeps the indexes its strategy needs).
    pub(crate) fn set_config(&mut self, config: PoolConfig) {
        self.config = config;
        let least_used = self.config.strategy == Strategy::LeastUsed;
        self.index.keep_least_used(least_used, self.entries.iter());
    }

    /// The selection indexes.
    pub(crate) const fn index(&self) -> &Index {
        &self.index
    }

    /// Sets an entry's priority (stamped `now`); whether it moved.
    pub(crate) fn set_priority(
        &mut self,
        now: Millis,
        id: &EntryId,
        priority: i64,
    ) -> Result<bool> {
        self.update_entry(id, |entry| {
            let moved = entry.meta.priority != priority;
            if moved {
                entry.meta.priority = priority;
                entry.meta.updated_at = now;
            }
            moved
        })
    }

    /// Changes the entry `id` with `change` (which must not change its id) and brings the
    /// indexes up to date.
    pub(crate) fn update_entry<R>(
        &mut self,
        id: &EntryId,
        change: impl FnOnce(&mut Entry) -> R,
    ) -> Result<R> {
        let Some(entry) = self.entries.get_mut(id) else {
            return Err(Error::unknown_entry(self.key.as_str(), id.as_str()));
        };
        record(&mut self.journal, id, Some(entry));
        let before = Snapshot::of(entry);
        let out = change(entry);
        debug_assert_eq!(&entry.id, id, "an update must not change the entry id");
        self.index.update(entry, before);
        Ok(out)
    }

    /// Counts one more selection of `id` by `writer`.
    pub(crate) fn count_selection(&mut self, id: &EntryId, writer: &str) -> Result<()> {
        let Some(entry) = self.entries.get_mut(id) else {
            return Err(Error::unknown_entry(self.key.as_str(), id.as_str()));
        };
        record(&mut self.journal, id, Some(entry));
        let before = entry.request_count();
        entry.counts.increment(writer);
        self.index.count_changed(entry, before);
        Ok(())
    }

    /// Inserts `entry`, replacing (and returning) the one with its id.
    pub(crate) fn put_entry(&mut self, entry: Entry) -> Option<Entry> {
        let old = self.entries.remove(&entry.id);
        record(&mut self.journal, &entry.id, old.as_ref());
        if let Some(old) = &old {
            self.index.remove(old);
        }
        self.index.add(&entry);
        self.entries.insert(entry);
        old
    }

    /// Removes the entry `id`.
    pub(crate) fn take_entry(&mut self, id: &EntryId) -> Option<Entry> {
        let entry = self.entries.remove(id)?;
        record(&mut self.journal, id, Some(&entry));
        self.index.remove(&entry);
        Some(entry)
    }

    /// Non-dead entries (the sole-credential rule counts these).
    pub(crate) const fn live_count(&self) -> usize {
        self.index.live
    }

    /// Ids of the entries whose access token has fingerprint `fingerprint`, by id.
    pub(crate) fn with_fingerprint(&self, fingerprint: &Fingerprint) -> Vec<EntryId> {
        self.index
            .fingerprint_candidates(fingerprint.hash())
            .filter(|id| {
                self.get(id)
                    .is_some_and(|e| e.token.fingerprint.as_ref() == Some(fingerprint))
            })
            .cloned()
            .collect()
    }

    /// The entry `id` and every entry sharing its secret (same access-token fingerprint),
    /// by id. The usual answer (no shared secret in the pool, or none for this entry)
    /// reads no fingerprint text.
    pub(crate) fn sharing_secret(&self, id: &EntryId) -> Vec<EntryId> {
        if self.index.shared == 0 {
            // No two entries share a secret: nothing to look up.
            return vec![id.clone()];
        }
        let fingerprint = self.get(id).and_then(|e| e.token.fingerprint.as_ref());
        let alone = fingerprint.is_none_or(|fp| {
            self.index
                .fingerprint_candidates(fp.hash())
                .all(|other| other == id)
        });
        let mut ids = match fingerprint {
            Some(fp) if !alone => self.with_fingerprint(fp),
            _ => Vec::new(),
        };
        if let Err(at) = ids.binary_search(id) {
            ids.insert(at, id.clone());
        }
        ids
    }

    fn next_priority(&self) -> i64 {
        self.index.max_priority().map_or(0, |p| p.saturating_add(1))
    }

    /// Rebuilds the indexes from scratch and compares them with the maintained ones: an
    /// error names the first index that drifted. For tests and fuzzing.
    #[cfg(any(test, debug_assertions))]
    pub(crate) fn check_index(&self) -> std::result::Result<(), String> {
        let fresh = Index::build(
            self.unordered(),
            self.config.strategy == Strategy::LeastUsed,
        );
        let ours = &self.index;
        let mismatch = |what: &str| Err(format!("pool {}: index `{what}` drifted", self.key));
        if fresh.ready != ours.ready {
            return mismatch("ready");
        }
        if fresh.least_used != ours.least_used {
            return mismatch("least_used");
        }
        if fresh.deadlines != ours.deadlines {
            return mismatch("deadlines");
        }
        if fresh.live != ours.live {
            return mismatch("live");
        }
        if fresh.fingerprints != ours.fingerprints || fresh.shared != ours.shared {
            return mismatch("fingerprints");
        }
        if fresh.benches != ours.benches || fresh.all_benches != ours.all_benches {
            return mismatch("benches");
        }
        if fresh.leased != ours.leased {
            return mismatch("leased");
        }
        if fresh.priorities != ours.priorities {
            return mismatch("priorities");
        }
        for (k, key) in ours.ready.iter().enumerate() {
            if ours.ready.select(k) != Some(key) || ours.ready.rank(key.0, &key.1, false) != k {
                return mismatch("ready positions");
            }
        }
        Ok(())
    }
}

/// An open lease: which request holds which entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The pool.
    pub pool: PoolKey,
    /// The entry handed out.
    pub entry_id: EntryId,
    /// The model requested.
    pub model: Option<String>,
    /// The sticky session, if any.
    pub session: Option<String>,
    /// The call driving this lease, if a call opened it (its reports go through the call).
    pub call: Option<CallId>,
    /// When it was opened: a bench set since then was set by another request's outcome.
    pub opened_at: Millis,
    /// Whether a same-key rate-limit retry is pending on it.
    pub retrying_rate_limit: bool,
    /// Which entries its host can refresh (`AcquireRequest::can_refresh`).
    pub can_refresh: CanRefresh,
}

/// A new entry as the host describes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewEntry {
    /// Id to use; generated (6 hex) when absent.
    #[serde(default)]
    pub id: Option<EntryId>,
    /// Human label; defaults to the source for seeded entries, else `api-key-<n>`.
    #[serde(default)]
    pub label: Option<String>,
    /// Auth type (default `api_key`).
    #[serde(default)]
    pub auth_type: Option<AuthType>,
    /// Priority; defaults to after the last entry.
    #[serde(default)]
    pub priority: Option<i64>,
    /// Provenance (default `manual`).
    #[serde(default)]
    pub source: Option<String>,
    /// The API key or access token.
    #[serde(default, deserialize_with = "crate::codec::de_secret")]
    pub access_token: Option<Secret>,
    /// The OAuth refresh token.
    #[serde(default, deserialize_with = "crate::codec::de_secret")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (epoch ms).
    #[serde(default)]
    pub expires_at: Option<Millis>,
    /// Endpoint the credential serves.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Opaque payload kept untouched.
    #[serde(default)]
    pub extra: Map<String, Value>,
}

/// Construction options of a [`Registry`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// This process's writer id, keying its request counters in merged state.
    pub writer: String,
    /// PRNG seed (bindings draw one from the OS when the caller gives none).
    pub seed: u64,
}

/// All pools of one process and the state machine around them.
#[derive(Clone, Debug)]
pub struct Registry {
    pub(crate) writer: String,
    pub(crate) pools: BTreeMap<PoolKey, Pool>,
    pub(crate) rng: Rng,
    pub(crate) last_now: Millis,
    pub(crate) next_lease: u64,
    pub(crate) leases: BTreeMap<LeaseId, Lease>,
    /// Whether persisted state changed since the last `take_changed`.
    pub(crate) changed: bool,
    pub(crate) next_call: u64,
    pub(crate) calls: BTreeMap<CallId, Call>,
    /// Calls that gave up, for a client's retry of their request to continue.
    pub(crate) given_up: VecDeque<GivenUp>,
    /// When each entry was last probed (`call_probed`), at which token generation.
    pub(crate) probed: BTreeMap<(PoolKey, EntryId), (u64, Millis)>,
    /// The call whose input is being applied (its turn is lent to the pool meanwhile).
    pub(crate) current_call: Option<CallId>,
    /// The open change journal, if a store opened one (`begin_changes`).
    pub(crate) journal: Option<Box<Journal>>,
}

impl Registry {
    /// An empty registry.
    pub fn new(options: Options) -> Result<Self> {
        validate_name("writer", &options.writer)?;
        Ok(Self {
            writer: options.writer,
            pools: BTreeMap::new(),
            rng: Rng::new(options.seed),
            last_now: Millis::ZERO,
            next_lease: 1,
            leases: BTreeMap::new(),
            changed: false,
            next_call: 1,
            calls: BTreeMap::new(),
            given_up: VecDeque::new(),
            probed: BTreeMap::new(),
            current_call: None,
            journal: None,
        })
    }

    /// This process's writer id.
    #[must_use]
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The pool with `key`.
    pub fn pool(&self, key: &PoolKey) -> Result<&Pool> {
        self.pools
            .get(key)
            .ok_or_else(|| Error::unknown_pool(key.as_str()))
    }

    /// Every pool, by key.
    pub fn pools(&self) -> impl Iterator<Item = &Pool> {
        self.pools.values()
    }

    /// The open lease `id`.
    pub fn lease(&self, id: LeaseId) -> Result<&Lease> {
        self.leases.get(&id).ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownLease,
                format!("lease {} is unknown or settled", id.0),
            )
        })
    }

    /// Whether persisted state changed since the last call, clearing the flag.
    pub fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    /// Notes that persisted state changed (hosts then write it).
    pub(crate) fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// Settles (closes) the lease `id`, returning it if it was open.
    /// How many leases are open on each entry of `pool` (entries with none left out).
    pub(crate) fn open_leases(&self, pool: &PoolKey) -> BTreeMap<EntryId, usize> {
        let mut open = BTreeMap::new();
        for lease in self.leases.values().filter(|lease| lease.pool == *pool) {
            *open.entry(lease.entry_id.clone()).or_insert(0) += 1;
        }
        open
    }

    pub(crate) fn settle_lease(&mut self, id: &LeaseId) -> Option<Lease> {
        let lease = self.leases.remove(id)?;
        self.share_lease_count(&lease.pool, &lease.entry_id);
        Some(lease)
    }

    /// Writes this writer's count of open leases on `entry` into the entry, stamped with
    /// the registry's clock, when the pool caps concurrent requests per key (other
    /// processes then count them through the store).
    fn share_lease_count(&mut self, key: &PoolKey, entry: &EntryId) {
        let Some(pool) = self.pools.get_mut(key) else {
            return;
        };
        if pool.config.policy.max_concurrent_per_key.is_none() {
            return;
        }
        let ttl = pool.config.policy.lease_ttl_ms;
        let open = self
            .leases
            .values()
            .filter(|l| l.pool == *key && l.entry_id == *entry)
            .count();
        let open = u32::try_from(open).unwrap_or(u32::MAX);
        let (writer, now) = (&self.writer, self.last_now);
        if pool
            .update_entry(entry, |e| e.leases.set(writer, open, now, ttl))
            .is_ok()
        {
            self.mark_changed();
        }
    }

    /// The open lease `id`, if any.
    pub(crate) fn open_lease_ref(&self, id: &LeaseId) -> Option<&Lease> {
        self.leases.get(id)
    }

    /// Whether the lease `id` is open.
    pub(crate) fn is_open_lease(&self, id: &LeaseId) -> bool {
        self.leases.contains_key(id)
    }

    /// Notes that lease `id` waits for a same-key rate-limit retry.
    pub(crate) fn note_rate_limit_retry(&mut self, id: &LeaseId) {
        if let Some(lease) = self.leases.get_mut(id) {
            lease.retrying_rate_limit = true;
        }
    }

    /// Whether another open lease than `except` waits for a same-key rate-limit retry on
    /// `entry` of `pool`.
    pub(crate) fn rate_limit_retry_pending(
        &self,
        pool: &PoolKey,
        entry: &EntryId,
        except: &LeaseId,
    ) -> bool {
        self.leases.iter().any(|(id, l)| {
            id != except && l.retrying_rate_limit && &l.pool == pool && &l.entry_id == entry
        })
    }

    /// An open lease of `pool` on `entry`, if any.
    pub(crate) fn lease_on(&self, pool: &PoolKey, entry: &EntryId) -> Option<LeaseId> {
        self.leases
            .iter()
            .find(|(_, l)| &l.pool == pool && &l.entry_id == entry)
            .map(|(id, _)| *id)
    }

    /// Creates `key` if missing and applies the given configuration fields.
    pub fn configure_pool(&mut self, now: Millis, key: &PoolKey, update: PoolUpdate) -> Result<()> {
        let now = self.clock(now);
        let PoolUpdate {
            strategy,
            policy,
            fallback,
            api,
        } = update;
        if let Some(targets) = &fallback {
            validate_fallback(targets)?;
            if targets.iter().any(|t| &t.pool == key) {
                return Err(Error::invalid_input("a pool cannot fall back to itself"));
            }
        }
        if let Some(policy) = &policy {
            policy.validate()?;
        }
        let pool = self.pool_or_create(key)?;
        let mut config = pool.config.clone();
        if let Some(strategy) = strategy {
            config.strategy = strategy;
        }
        if let Some(policy) = policy {
            config.policy = policy;
        }
        if let Some(fallback) = fallback {
            config.fallback = fallback;
        }
        if api.is_some() {
            config.api = api;
        }
        if config != pool.config || pool.config_at == Millis::ZERO {
            pool.set_config(config);
            pool.config_at = now;
            self.changed = true;
        }
        Ok(())
    }

    /// Adds an entry to `key` (creating the pool), returning its id. Adding lifts every
    /// suppressed source of the pool (Hermes' `auth add`: re-adding means re-enable).
    pub fn add_entry(&mut self, now: Millis, key: &PoolKey, new: NewEntry) -> Result<EntryId> {
        let id = self.insert_entry(now, key, new)?;
        let now = self.clock(now);
        self.pool_mut(key)?.suppressions.lift(now);
        Ok(id)
    }

    /// Adds an entry to `key` (creating the pool) without touching its suppressions, as
    /// seeding does.
    pub(crate) fn insert_entry(
        &mut self,
        now: Millis,
        key: &PoolKey,
        new: NewEntry,
    ) -> Result<EntryId> {
        let now = self.clock(now);
        let source = new.source.unwrap_or_else(|| "manual".to_owned());
        validate_name("source", &source)?;
        if let Some(label) = &new.label {
            validate_name("label", label)?;
        }
        if let Some(url) = &new.base_url {
            validate_name("base_url", url)?;
        }
        validate_extra(&new.extra)?;
        for (what, secret) in [
            ("access_token", &new.access_token),
            ("refresh_token", &new.refresh_token),
        ] {
            if let Some(secret) = secret {
                validate_secret(what, secret.expose())?;
            }
        }
        if new.access_token.is_none() && new.refresh_token.is_none() && !is_borrowed_source(&source)
        {
            return Err(Error::new(
                ErrorCode::InvalidEntry,
                "an entry needs an access_token or a refresh_token",
            ));
        }
        let id = match new.id {
            Some(id) => id,
            None => self.fresh_id(key),
        };
        if let Some(pool) = self.pools.get(key) {
            if pool.len() >= MAX_ENTRIES_PER_POOL {
                return Err(Error::new(ErrorCode::TooLarge, "pool is full"));
            }
            if pool.knows(&id) {
                return Err(Error::new(
                    ErrorCode::DuplicateEntry,
                    format!("entry `{id}` already exists or was removed"),
                ));
            }
        }
        let pool = self.pool_or_create(key)?;
        let label = new
            .label
            .unwrap_or_else(|| default_label(&source, pool.len() + 1));
        let priority = new.priority.unwrap_or_else(|| pool.next_priority());
        let entry = Entry {
            id: id.clone(),
            meta: Meta {
                label,
                auth_type: new.auth_type.unwrap_or_default(),
                priority,
                source,
                base_url: new.base_url.map(|u| u.trim_end_matches('/').to_owned()),
                extra: new.extra,
                updated_at: now,
            },
            token: Token::new(new.access_token, new.refresh_token, new.expires_at, now),
            status: StatusRecord {
                at: now,
                ..StatusRecord::default()
            },
            cleared_at: None,
            counts: Counts::default(),
            model_cooldowns: BTreeMap::new(),
            leases: SharedLeases::default(),
            refresh_sent: None,
            added_at: now,
        };
        pool.put_entry(entry);
        self.changed = true;
        Ok(id)
    }

    /// Removes an entry; its id is tombstoned so no merge brings it back, and its source,
    /// when seeding offers it (anything but `manual`), is suppressed so no later seed
    /// re-adds it (Hermes' `auth remove`).
    pub fn remove_entry(&mut self, now: Millis, key: &PoolKey, id: &EntryId) -> Result<()> {
        let source = self.prune_entry(now, key, id)?;
        let now = self.clock(now);
        if suppressed_on_removal(&source) {
            self.pool_mut(key)?.suppressions.suppress(&source, now);
        }
        Ok(())
    }

    /// Removes an entry (tombstoned) without suppressing its source, as seeding's pruning
    /// does; returns the source it had.
    pub(crate) fn prune_entry(
        &mut self,
        now: Millis,
        key: &PoolKey,
        id: &EntryId,
    ) -> Result<String> {
        let now = self.clock(now);
        let pool = self.pool_mut(key)?;
        let entry = pool
            .take_entry(id)
            .ok_or_else(|| Error::unknown_entry(key.as_str(), id.as_str()))?;
        pool.removed.insert(id.clone(), now);
        pool.sessions.retain(|_, e| e != id);
        self.leases
            .retain(|_, l| !(l.pool == *key && l.entry_id == *id));
        self.changed = true;
        Ok(entry.meta.source)
    }

    /// Clears status, cooldowns and model benches of one entry (or all), returning how many
    /// entries had something to clear.
    pub fn reset(&mut self, now: Millis, key: &PoolKey, id: Option<&EntryId>) -> Result<usize> {
        let now = self.clock(now);
        let pool = self.pool_mut(key)?;
        let ids: Vec<EntryId> = match id {
            Some(id) => vec![pool.entry(id)?.id.clone()],
            None => pool.unordered().map(|e| e.id.clone()).collect(),
        };
        let mut count = 0;
        for id in ids {
            let had_something = pool.update_entry(&id, |entry| {
                let benched = entry.model_cooldowns.values().any(|c| c.until > now);
                let had_something =
                    entry.effective_status() != Status::Ok || entry.status.streak > 0 || benched;
                entry.status = StatusRecord {
                    at: now,
                    ..StatusRecord::default()
                };
                entry.cleared_at = Some(now);
                for cooldown in entry.model_cooldowns.values_mut() {
                    cooldown.until = cooldown.until.min(now);
                    cooldown.at = now;
                }
                had_something
            })?;
            if had_something {
                count += 1;
            }
        }
        pool.turn = Turn::default();
        self.changed = true;
        Ok(count)
    }

    /// Sets an entry's priority.
    pub fn set_priority(
        &mut self,
        now: Millis,
        key: &PoolKey,
        id: &EntryId,
        priority: i64,
    ) -> Result<()> {
        let now = self.clock(now);
        let changed = self.pool_mut(key)?.set_priority(now, id, priority)?;
        self.changed |= changed;
        Ok(())
    }

    /// The entry's secrets, for the host to put on the wire (or to refresh with).
    pub fn credential(&self, key: &PoolKey, id: &EntryId) -> Result<Credential> {
        let entry = self.pool(key)?.entry(id)?;
        Ok(Credential {
            entry_id: entry.id.clone(),
            access_token: entry.token.access.clone(),
            refresh_token: entry.token.refresh.clone(),
            expires_at: entry.token.expires_at,
            base_url: entry.meta.base_url.clone(),
            generation: entry.token.generation,
        })
    }

    /// Rebuilds every pool's selection indexes from scratch and compares them with the
    /// maintained ones; an error names the pool and index that drifted. For tests and
    /// fuzzing (not in release builds).
    #[doc(hidden)]
    #[cfg(any(test, debug_assertions))]
    pub fn check_indexes(&self) -> std::result::Result<(), String> {
        self.pools.values().try_for_each(Pool::check_index)
    }

    /// Moves the clock forward: a `now` earlier than the last one seen counts as the last one.
    pub(crate) fn clock(&mut self, now: Millis) -> Millis {
        if now > self.last_now {
            self.last_now = now;
        }
        self.last_now
    }

    pub(crate) fn pool_mut(&mut self, key: &PoolKey) -> Result<&mut Pool> {
        self.pools
            .get_mut(key)
            .ok_or_else(|| Error::unknown_pool(key.as_str()))
    }

    pub(crate) fn pool_or_create(&mut self, key: &PoolKey) -> Result<&mut Pool> {
        if !self.pools.contains_key(key) {
            if self.pools.len() >= MAX_POOLS {
                return Err(Error::new(ErrorCode::TooLarge, "too many pools"));
            }
            let mut pool = Pool::new(key.clone());
            if self.journaling() {
                pool.journal = Some(EntryJournal::new());
            }
            self.pools.insert(key.clone(), pool);
            self.changed = true;
        }
        self.pool_mut(key)
    }

    /// Opens a lease (tagged with the call whose input is being applied, if any).
    pub(crate) fn open_lease(&mut self, mut lease: Lease) -> LeaseId {
        let id = LeaseId(self.next_lease);
        self.next_lease = self.next_lease.saturating_add(1);
        lease.call = self.current_call;
        let (key, entry) = (lease.pool.clone(), lease.entry_id.clone());
        self.leases.insert(id, lease);
        self.share_lease_count(&key, &entry);
        id
    }

    fn fresh_id(&mut self, key: &PoolKey) -> EntryId {
        loop {
            let candidate = EntryId::from_trusted(self.rng.short_id());
            let taken = self.pools.get(key).is_some_and(|p| p.knows(&candidate));
            if !taken {
                return candidate;
            }
        }
    }
}

/// An entry's secrets, handed to the host on request only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The entry.
    pub entry_id: EntryId,
    /// The API key or access token (absent for a borrowed entry not seeded here).
    pub access_token: Option<Secret>,
    /// The OAuth refresh token.
    pub refresh_token: Option<Secret>,
    /// When the access token expires.
    pub expires_at: Option<Millis>,
    /// Endpoint.
    pub base_url: Option<String>,
    /// Token generation.
    pub generation: u64,
}

fn default_label(source: &str, ordinal: usize) -> String {
    if source == "manual" {
        format!("api-key-{ordinal}")
    } else {
        source.to_owned()
    }
}
