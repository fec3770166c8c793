//! [`RedisStore`]: a registry shared through Redis by processes on many machines.
//!
//! Keys (all under `credpool:{namespace}:`): one row per pool and per entry, a change
//! index and per-writer counters and cursors (the layout: [`rows`]); and
//! `refresh:{pool}:{entry}`, the single-flight refresh lock of one entry (a random holder
//! token, set with `NX PX lease`).
//!
//! Every call reads the rows written since the stamp it last saw (one script, one round
//! trip; nothing when nothing moved) and merges them (core `sync`); an input that changed
//! state then writes the rows it touched (core's change journal) with one script that
//! checks each document's version did not move meanwhile (else re-read, merge, retry; the
//! input is applied once, and the merge is a join, so retrying is safe). A decision costs
//! what it changed, not the pool's size, and writers on different entries never conflict.
//! A refresh result is written by the same script only while the refresh lock still holds
//! this holder's token (fencing). A namespace of the earlier layout (one document per pool)
//! migrates on first contact.
//!
//! When Redis is lost mid-run, inputs keep being decided on the local registry (the last
//! known state) and the store remembers it has unsent changes; the next call that reaches
//! Redis merges and writes them. A refresh never proceeds without the lock.

mod rows;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use credpool_core::{
    AcquireRequest, Changes, Credential, Cursor, Decision, EntryId, Error, ErrorCode, Input,
    LeaseId, Millis, Options, Output, PoolKey, RefreshOutcome, RefreshResult, RefreshSend,
    Registry, Report, Result, Strategy, parse_input,
};
use redis::{Client, Connection, Script};
use serde_json::Value;

use self::rows::{Doc, LAYOUT, MOVED_MARKER, PULL_SCRIPT, WRITE_SCRIPT, entry_member, pool_member};

use crate::store::{
    Hold, RefreshStart, RefreshTicket, StoreOptions, StorePool, reads_only, single_flight_refresh,
};

/// The namespace when neither the URL (`?namespace=...`) nor the options name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Deletes the lock only while it holds the token.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Renews the lease only while the lock holds the token.
const EXTEND_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// The two scripts of every call, hashed once per process (`Script::new` computes the
/// SHA-1 that `EVALSHA` names them by).
static PULL: std::sync::OnceLock<Script> = std::sync::OnceLock::new();
static WRITE: std::sync::OnceLock<Script> = std::sync::OnceLock::new();

fn script(cell: &'static std::sync::OnceLock<Script>, text: &str) -> &'static Script {
    cell.get_or_init(|| Script::new(text))
}

/// Conflicting writes retried before a write is left queued for the next call.
const MAX_WRITE_ATTEMPTS: u32 = 1000;

/// A registry shared through Redis by many processes on many hosts (see the module docs).
pub struct RedisStore {
    /// The URL without credentials (for messages).
    location: String,
    namespace: String,
    client: Client,
    conn: Option<Connection>,
    registry: Registry,
    /// What this process knows of Redis, and what it has yet to write there.
    synced: Synced,
    /// Documents written again after a version moved (merge and retry), since open.
    conflicts: u64,
    /// NEGATIVE CONTROL ONLY (`Some(skip_merge)`): writes skip the version checks, and
    /// with `skip_merge` nothing written by others is read after open.
    broken: Option<bool>,
    /// The next pull reads other writers' counters too (a status, an export, the open).
    read_counts: bool,
    /// After a failed connect: no new attempt before this instant.
    retry_at: Option<Instant>,
    options: StoreOptions,
}

/// This process's view of the rows in Redis, and the rows it has yet to write.
#[derive(Clone, Debug, Default)]
struct Synced {
    /// The stamp of the last write read.
    seen: u64,
    /// The stamp of the last counter change read (counters are read only when needed).
    counted: u64,
    /// Per row: the version and document last read or written (a cursor move comes
    /// without its pool's document when the version held here is current).
    rows: BTreeMap<String, Row>,
    /// Per entry row: this writer's counter as last written or read.
    counts: BTreeMap<String, u64>,
    /// Per pool: the cursor Redis holds, as last written or read here.
    cursors: BTreeMap<PoolKey, Cursor>,
    /// Rows changed here and not yet written: per pool, the entries touched.
    dirty: BTreeMap<PoolKey, BTreeSet<EntryId>>,
    /// Every row is queued (a migration, or Redis lost its data): the next write carries
    /// every writer's counters, not only this writer's.
    full: bool,
}

#[derive(Clone, Debug)]
struct Row {
    version: u64,
    doc: Doc,
}

/// The rows one write sends (see [`rows::WRITE_SCRIPT`]).
#[derive(Debug, Default)]
struct Writes {
    /// Member, expected version, document (as sent, and as kept).
    docs: Vec<(String, u64, String, Doc)>,
    /// Entry member, writer, counter.
    counts: Vec<(String, String, u64)>,
    /// Pool, this writer's cursor.
    cursors: Vec<(PoolKey, Cursor)>,
    /// Deleted entry rows.
    gone: Vec<String>,
}

impl Writes {
    fn is_empty(&self) -> bool {
        self.docs.is_empty()
            && self.counts.is_empty()
            && self.cursors.is_empty()
            && self.gone.is_empty()
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .field("namespace", &self.namespace)
            .field("connected", &self.conn.is_some())
            .field("pending", &self.has_pending())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// A held Redis refresh lock (inside a [`RefreshTicket`]); released on drop by
/// compare-and-delete when still held, and expiring at the end of its lease anyway.
pub(crate) struct RedisLock {
    client: Client,
    key: String,
    token: String,
    timeout: Duration,
    released: bool,
}

impl fmt::Debug for RedisLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Drop for RedisLock {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(mut conn) = connect(&self.client, self.timeout, self.timeout) {
            let _: redis::RedisResult<i64> = Script::new(RELEASE_SCRIPT)
                .key(&self.key)
                .arg(&self.token)
                .invoke(&mut conn);
        }
    }
}

/// Why an internal step failed: Redis (go offline) or core (a real error).
enum Fail {
    Redis(redis::RedisError),
    Core(Error),
}

impl From<redis::RedisError> for Fail {
    fn from(e: redis::RedisError) -> Self {
        Self::Redis(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Core(e)
    }
}

/// How a write ended.
#[derive(Debug)]
enum Commit {
    Written,
    /// Generations kept moving: the changes stay queued for the next call.
    Contended,
    /// The refresh lock no longer holds this holder's token: nothing was written.
    LockLost,
}

impl RedisStore {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`, with an
    /// optional `?namespace=NAME`) and loads the namespace's pools.
    ///
    /// Redis unreachable at open is an `io` error naming the address (never the password).
    pub fn open(url: &str, options: StoreOptions) -> Result<Self> {
        let (url, namespace) = split_namespace(url);
        let location = redact(&url);
        let namespace = namespace
            .or_else(|| options.namespace.clone())
            .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        if namespace.is_empty() || namespace.contains(char::is_whitespace) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("invalid Redis namespace {namespace:?}"),
            ));
        }
        let client = client(&url, options.tls_ca_file.as_deref())?;
        let registry = Registry::new(Options {
            writer: options.writer.clone(),
            seed: options.seed,
        })?;
        let conn = connect(&client, options.connect_timeout, options.io_timeout)
            .map_err(|e| unreachable(&location, "open the store", &e))?;
        let mut store = Self {
            location,
            namespace,
            client,
            conn: Some(conn),
            registry,
            synced: Synced::default(),
            conflicts: 0,
            broken: None,
            read_counts: true,
            retry_at: None,
            options,
        };
        match store.pull() {
            Ok(_) => Ok(store),
            Err(Fail::Core(e)) => Err(e),
            Err(Fail::Redis(e)) => Err(unreachable(&store.location, "load the store", &e)),
        }
    }

    /// The Redis URL without credentials.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The key namespace (`credpool:{namespace}:...`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The in-memory registry as of the last call.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether the last call reached Redis.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Whether this process holds changes Redis has not received yet (marks made while
    /// Redis was unreachable); the next call that reaches Redis writes them.
    pub fn has_pending(&self) -> bool {
        !self.synced.dirty.is_empty()
    }

    /// Document writes retried because another process had written the same row since
    /// this one read it (each retry re-reads and merges first), since open.
    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }

    /// NEGATIVE CONTROL ONLY (`tests/stress`): from now on, writes skip the version checks
    /// (lost updates become possible), and with `skip_merge` nothing other processes
    /// write is read any more. Never for real use.
    #[doc(hidden)]
    pub fn break_for_negative_control(&mut self, skip_merge: bool) {
        self.broken = Some(skip_merge);
    }

    /// Merges in what other processes wrote (every writer's counters included; one
    /// script round trip, which reads nothing when nothing moved) and sends queued changes;
    /// returns whether new content was merged. While Redis is unreachable it changes
    /// nothing and answers `false`.
    pub fn reload(&mut self) -> Result<bool> {
        self.read_counts = true;
        self.sync_online()
    }

    /// Writes queued changes now; an `io` error when Redis cannot be reached (they stay
    /// queued). A process about to exit calls it so nothing stays only in memory.
    pub fn flush(&mut self) -> Result<()> {
        self.connect_now("flush the queued changes")?;
        self.sync_online()?;
        if self.has_pending() {
            return Err(Error::new(
                ErrorCode::Io,
                format!("Redis at {} did not take the queued changes", self.location),
            ));
        }
        Ok(())
    }

    /// Applies one wire input, persisting it when it changed state.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        if reads_only(&input) {
            self.read_counts = true;
            self.sync_online()?;
            return self.registry.handle(now, input);
        }
        self.transact(|registry| {
            let output = registry.handle(now, input)?;
            Ok((output.changed, output))
        })
    }

    /// Parses a JSON wire input and applies it ([`RedisStore::handle`]).
    pub fn handle_value(&mut self, now: Millis, input: Value) -> Result<Output> {
        let input = parse_input(input)?;
        self.handle(now, input)
    }

    /// A view of one pool: `acquire`, `report`, `release`, `status` without repeating it.
    pub fn pool(&mut self, key: PoolKey) -> StorePool<'_> {
        StorePool::new(self, key)
    }

    /// `acquire`, persisted.
    pub fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision> {
        self.transact(|registry| registry.acquire(now, request).map(|d| (false, d)))
    }

    /// `report`, persisted.
    pub fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
        self.transact(|registry| registry.report(now, report).map(|d| (false, d)))
    }

    /// Step one of the single-flight refresh: merges in Redis, and either adopts a token
    /// another process already rotated ([`RefreshStart::Adopted`]) or takes the entry's
    /// refresh lock (`SET NX PX lease`, waiting at most `lock_timeout` while another
    /// holder has it) and hands back a ticket ([`RefreshStart::Needed`]). Call
    /// [`confirm_refresh`](Self::confirm_refresh) right before using the refresh token.
    /// Redis unreachable: an `io` error (a refresh never proceeds without the lock).
    pub fn begin_refresh(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart> {
        self.sync_required()?;
        if !self.registry.check_refresh(pool, entry_id, generation)? {
            return self.adopt(now, pool, entry_id, generation, lease_id);
        }
        let mut lock = RedisLock {
            client: self.client.clone(),
            key: self.lock_key(pool, entry_id),
            token: new_token(),
            timeout: self.options.io_timeout,
            released: false,
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            if self.try_lock(&lock)? {
                self.pull_online()?;
                if self.registry.check_refresh(pool, entry_id, generation)? {
                    let credential = self.registry.credential(pool, entry_id)?;
                    return Ok(RefreshStart::Needed(RefreshTicket {
                        hold: Hold::Redis(Box::new(lock)),
                        pool: pool.clone(),
                        entry_id: entry_id.clone(),
                        generation,
                        lease_id,
                        credential,
                    }));
                }
                self.release(&mut lock);
                return self.adopt(now, pool, entry_id, generation, lease_id);
            }
            let waited = start.elapsed();
            if waited >= self.options.lock_timeout {
                lock.released = true;
                return Err(Error::new(
                    ErrorCode::LockTimeout,
                    format!(
                        "the refresh lock of {}/{} stayed held by another process for {} ms \
                         (timeout)",
                        pool.as_str(),
                        entry_id.as_str(),
                        waited.as_millis()
                    ),
                ));
            }
            std::thread::sleep(pause.min(self.options.lock_timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(50));
            self.sync_required()?;
            if !self.registry.check_refresh(pool, entry_id, generation)? {
                lock.released = true;
                return self.adopt(now, pool, entry_id, generation, lease_id);
            }
        }
    }

    /// Right before the refresh token is used: checks the ticket still holds the lock and
    /// renews its lease (a fresh `refresh_lease` for the provider round trip). A holder
    /// that stalled past its lease lost the lock: it then starts over, and adopts the token
    /// another holder rotated meanwhile ([`RefreshStart::Adopted`]) instead of replaying
    /// the old refresh token, or takes the lock again ([`RefreshStart::Needed`], a new
    /// ticket). A [`RefreshStart::Needed`] is recorded in Redis as being sent before it
    /// is returned; a send of this token that never recorded its answer (its process died)
    /// refuses it: [`RefreshStart::Adopted`] with the entry marked dead
    /// (`refresh_interrupted`). Redis unreachable: an `io` error.
    pub fn confirm_refresh(&mut self, now: Millis, ticket: RefreshTicket) -> Result<RefreshStart> {
        let RefreshTicket {
            hold,
            pool,
            entry_id,
            generation,
            lease_id,
            credential,
        } = ticket;
        let mut lock = match hold {
            Hold::Redis(lock) => lock,
            hold => {
                let ticket = RefreshTicket {
                    hold,
                    pool,
                    entry_id,
                    generation,
                    lease_id,
                    credential,
                };
                return Ok(RefreshStart::Needed(ticket));
            }
        };
        self.sync_required()?;
        let lease = lease_ms(self.options.refresh_lease);
        let renewed: i64 = match Script::new(EXTEND_SCRIPT)
            .key(&lock.key)
            .arg(&lock.token)
            .arg(lease)
            .invoke(self.conn_mut()?)
        {
            Ok(n) => n,
            Err(e) => return Err(self.went_offline("confirm the refresh lock", e)),
        };
        if renewed != 1 {
            lock.released = true;
            return match self.begin_refresh(now, &pool, &entry_id, generation, lease_id)? {
                RefreshStart::Needed(ticket) => self.confirm_refresh(now, ticket),
                adopted => Ok(adopted),
            };
        }
        let send = match self.record_refresh_start(now, &pool, &entry_id, generation) {
            Ok(send) => send,
            Err(e) => {
                self.release(&mut lock);
                return Err(e);
            }
        };
        if send == RefreshSend::Send {
            return Ok(RefreshStart::Needed(RefreshTicket {
                hold: Hold::Redis(lock),
                pool,
                entry_id,
                generation,
                lease_id,
                credential,
            }));
        }
        self.release(&mut lock);
        let outcome = crate::store::not_sent(send);
        self.record_unsent(now, &pool, &entry_id, generation, lease_id, outcome)
            .map(RefreshStart::Adopted)
    }

    /// Step two: records how the refresh ended and writes it only while the ticket still
    /// holds the lock (one script checks the lock and the generations, writes, and
    /// releases the lock). When the lease ran out before the write: a token another holder
    /// rotated meanwhile is adopted (this result is discarded); else the lock is taken
    /// again and the result written under it. Redis lost at this point: the result is kept
    /// locally and written when Redis returns (never dropped: the old refresh token is
    /// spent).
    pub fn finish_refresh(
        &mut self,
        now: Millis,
        ticket: RefreshTicket,
        outcome: RefreshOutcome,
    ) -> Result<Decision> {
        let RefreshTicket {
            hold,
            pool,
            entry_id,
            generation,
            lease_id,
            ..
        } = ticket;
        let Hold::Redis(mut lock) = hold else {
            return Err(Error::new(
                ErrorCode::Internal,
                "a file-store ticket was given to a Redis store",
            ));
        };
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            generation,
            lease_id,
            result: outcome,
        };
        let start = Instant::now();
        loop {
            let before = (self.registry.clone(), self.synced.clone());
            let decision =
                self.apply(|registry| registry.refresh_result(now, &result).map(|d| (true, d)))?;
            match self.commit(Some(&lock)) {
                Ok(Commit::Written) => {
                    lock.released = true;
                    return Ok(decision);
                }
                Ok(Commit::Contended) => return Ok(decision),
                Err(Fail::Core(e)) => return Err(e),
                Err(Fail::Redis(e)) => {
                    self.went_offline("write the refresh result", e);
                    return Ok(decision);
                }
                Ok(Commit::LockLost) => {}
            }
            // The lease ran out before the write: this result is not written unless the
            // lock is held again and nobody rotated the token meanwhile.
            (self.registry, self.synced) = before;
            loop {
                self.pull_online()?;
                if !self.registry.check_refresh(&pool, &entry_id, generation)? {
                    lock.released = true;
                    return self.adopt_decision(now, &pool, &entry_id, generation, lease_id);
                }
                if self.try_lock(&lock)? {
                    break;
                }
                if start.elapsed() >= self.options.lock_timeout {
                    lock.released = true;
                    return Err(Error::new(
                        ErrorCode::LockTimeout,
                        format!(
                            "the refresh lease of {}/{} ran out before its result was \
                             written and another process holds the lock (result discarded)",
                            pool.as_str(),
                            entry_id.as_str()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    /// The whole single-flight refresh: [`begin_refresh`](Self::begin_refresh),
    /// [`confirm_refresh`](Self::confirm_refresh), `refresh` (only when this holder still
    /// holds the lock and the token is still stale), then
    /// [`finish_refresh`](Self::finish_refresh). `clock` gives `now` for each step.
    pub fn refresh(
        &mut self,
        clock: impl Fn() -> Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
        refresh: impl FnOnce(&Credential) -> RefreshOutcome,
    ) -> Result<Decision> {
        single_flight_refresh(self, clock, pool, entry_id, generation, lease_id, |_, c| {
            refresh(c)
        })
    }

    /// [`adopt_decision`](Self::adopt_decision) as a [`RefreshStart`].
    fn adopt(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart> {
        self.adopt_decision(now, pool, entry_id, generation, lease_id)
            .map(RefreshStart::Adopted)
    }

    /// Records the adoption of a token another process rotated, persisted.
    fn adopt_decision(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<Decision> {
        let adopted = RefreshOutcome::Adopted;
        self.record_unsent(now, pool, entry_id, generation, lease_id, adopted)
    }

    /// Records how a refresh that sent nothing ended (adopted, or refused as interrupted).
    fn record_unsent(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
        outcome: RefreshOutcome,
    ) -> Result<Decision> {
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            generation,
            lease_id,
            result: outcome,
        };
        self.transact(|registry| registry.refresh_result(now, &result).map(|d| (false, d)))
    }

    /// Under the refresh lock: merges, then records (written to Redis, or an error) that the
    /// refresh token of `generation` is about to be sent, unless it must not be.
    fn record_refresh_start(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
    ) -> Result<RefreshSend> {
        let start = self.transact(|registry| {
            let start = registry.record_refresh_send(now, pool, entry_id, generation)?;
            Ok((false, start))
        })?;
        if start == RefreshSend::Send && self.has_pending() {
            return Err(Error::new(
                ErrorCode::Io,
                format!(
                    "could not record in Redis that the refresh token of {}/{} is about to be \
                     sent; not sending it",
                    pool.as_str(),
                    entry_id.as_str()
                ),
            ));
        }
        Ok(start)
    }

    /// Merge in Redis (when reachable), apply `op` to the registry, write the rows it
    /// changed (when reachable; else queue them). `op`'s flag says the input changed
    /// state; the registry's own change flag counts too.
    fn transact<T>(&mut self, op: impl FnOnce(&mut Registry) -> Result<(bool, T)>) -> Result<T> {
        self.sync_online()?;
        let value = self.apply(op)?;
        if self.has_pending() {
            self.online(|store| store.commit(None).map(|_| false))?;
        }
        Ok(value)
    }

    /// Applies `op` under a change journal and queues the rows it touched, when it
    /// changed state (an error changes nothing).
    fn apply<T>(&mut self, op: impl FnOnce(&mut Registry) -> Result<(bool, T)>) -> Result<T> {
        let (changes, value) = crate::store::journaled(&mut self.registry, op)?;
        if let Some(changes) = changes {
            self.queue(&changes);
        }
        self.registry.end_changes();
        Ok(value)
    }

    /// Queues the rows `changes` names for the next write.
    fn queue(&mut self, changes: &Changes) {
        for pool in &changes.pools {
            let ids = pool.entries.iter().map(|e| &e.id).chain(&pool.gone);
            self.synced
                .dirty
                .entry(pool.key.clone())
                .or_default()
                .extend(ids.cloned());
        }
    }

    /// Queues every row, with every writer's counters.
    fn queue_everything(&mut self) {
        let all = self.registry.changes();
        self.queue(&all);
        self.synced.full = true;
    }

    /// When Redis is (or becomes) reachable: merge in what moved and write queued changes.
    /// Connection failures switch to offline mode (not an error); returns whether new
    /// content was merged.
    fn sync_online(&mut self) -> Result<bool> {
        self.online(Self::try_sync)
    }

    /// Runs `step` when Redis is (or becomes) reachable; a connection failure switches to
    /// offline mode (not an error, `false`), after one fresh try at once when a working
    /// connection dropped (a server that restarted).
    fn online(&mut self, step: fn(&mut Self) -> std::result::Result<bool, Fail>) -> Result<bool> {
        self.try_connect();
        if self.conn.is_none() {
            return Ok(false);
        }
        match step(self) {
            Ok(merged) => Ok(merged),
            Err(Fail::Core(e)) => Err(e),
            Err(Fail::Redis(e)) if dropped(&e) => {
                self.conn = None;
                self.retry_at = None;
                self.try_connect();
                if self.conn.is_none() {
                    return Ok(false);
                }
                match step(self) {
                    Ok(merged) => Ok(merged),
                    Err(Fail::Core(e)) => Err(e),
                    Err(Fail::Redis(e)) => {
                        self.went_offline("sync the store", e);
                        Ok(false)
                    }
                }
            }
            Err(Fail::Redis(e)) => {
                self.went_offline("sync the store", e);
                Ok(false)
            }
        }
    }

    /// Pull, then write queued changes.
    fn try_sync(&mut self) -> std::result::Result<bool, Fail> {
        let merged = self.pull()?;
        if self.has_pending() {
            self.commit(None)?;
        }
        Ok(merged)
    }

    /// Merge in what moved and write queued changes, both of which must reach Redis (an
    /// `io` error otherwise). A refresh starts with it: a refresh result this process
    /// queued while Redis was away must be in Redis before any lock decision, or another
    /// holder could refresh from the token that result replaced.
    fn sync_required(&mut self) -> Result<()> {
        self.connect_now("refresh (it needs the shared refresh lock)")?;
        match self.try_sync() {
            Ok(_) => Ok(()),
            Err(Fail::Core(e)) => Err(e),
            Err(Fail::Redis(e)) if dropped(&e) => {
                // A connection to a server that restarted: one fresh try at once.
                self.conn = None;
                self.connect_now("refresh (it needs the shared refresh lock)")?;
                match self.try_sync() {
                    Ok(_) => Ok(()),
                    Err(Fail::Core(e)) => Err(e),
                    Err(Fail::Redis(e)) => Err(self.went_offline("sync the store", e)),
                }
            }
            Err(Fail::Redis(e)) => Err(self.went_offline("sync the store", e)),
        }
    }

    /// [`pull`](Self::pull) that must reach Redis (an `io` error otherwise).
    fn pull_online(&mut self) -> Result<()> {
        match self.pull() {
            Ok(_) => Ok(()),
            Err(Fail::Core(e)) => Err(e),
            Err(Fail::Redis(e)) => Err(self.went_offline("read the store", e)),
        }
    }

    /// Reads the rows written since the last look and merges them (migrating a namespace
    /// of the earlier layout first); whether anything new was merged.
    fn pull(&mut self) -> std::result::Result<bool, Fail> {
        if self.broken == Some(true) {
            return Ok(false);
        }
        let mut pulled = self.read_rows()?;
        if pulled.layout.is_empty() && pulled.old_layout {
            self.migrate()?;
            pulled = self.read_rows()?;
        }
        if !pulled.layout.is_empty() && pulled.layout != LAYOUT {
            return Err(Fail::Core(Error::new(
                ErrorCode::UnsupportedSchemaVersion,
                format!(
                    "the Redis namespace {} has layout {}, newer than this credpool's                      ({LAYOUT}); it was left untouched",
                    self.namespace, pulled.layout
                ),
            )));
        }
        if pulled.stamp < self.synced.seen {
            // Redis lost its data (a restart without persistence): write everything again.
            let Synced { dirty, .. } = std::mem::take(&mut self.synced);
            self.synced.dirty = dirty;
            self.queue_everything();
            // Read again from scratch: that read named pool versions held here, which a
            // fresh namespace can repeat (its rows would come without their documents).
            self.read_counts = true;
            pulled = self.read_rows()?;
        }
        if pulled.counted {
            self.read_counts = false;
            self.synced.counted = pulled.stamp;
        }
        if pulled.rows.is_empty() {
            self.synced.seen = pulled.stamp;
            return Ok(false);
        }
        let held = |pool: &str| match self.synced.rows.get(&format!("p\u{1f}{pool}")) {
            Some(Row {
                doc: Doc::Pool(doc),
                ..
            }) => serde_json::to_value(doc).ok(),
            _ => None,
        };
        if let Some(fragment) = rows::fragment(&pulled.rows, held)? {
            self.registry.sync(&fragment)?;
        }
        let writer = self.registry.writer().to_owned();
        for row in pulled.rows {
            let mine = row.fields.iter().find(|(w, _)| *w == writer);
            if let Some(pool) = row.member.strip_prefix("c\u{1f}") {
                // A cursor move: merged on its own, the pool's document is current here.
                let key = PoolKey::parse(pool)?;
                if let Some(cursor) = rows::latest_cursor(&row.fields)? {
                    self.registry.merge_cursor(&key, &cursor)?;
                    self.synced.cursors.insert(key, cursor);
                }
                continue;
            }
            if let Some(pool) = row.member.strip_prefix("p\u{1f}") {
                if let (Some(cursor), Ok(key)) =
                    (rows::latest_cursor(&row.fields)?, PoolKey::parse(pool))
                {
                    self.synced.cursors.insert(key, cursor);
                }
            } else if let Some(n) = mine.and_then(|(_, v)| v.parse().ok()) {
                self.synced.counts.insert(row.member.clone(), n);
            }
            match row.doc {
                Some(text) => {
                    let doc = Doc::parse(&row.member, &text)?;
                    let version = row.version;
                    self.synced.rows.insert(row.member, Row { version, doc });
                }
                None => {
                    self.synced.rows.remove(&row.member);
                }
            }
        }
        let merged = self.registry.take_changed();
        self.synced.seen = pulled.stamp;
        Ok(merged)
    }

    /// One [`PULL_SCRIPT`] round trip; other writers' counters too when they are needed
    /// (see [`read_counts`](Self::read_counts) and `least_used` pools).
    fn read_rows(&mut self) -> std::result::Result<rows::Pulled, Fail> {
        let prefix = self.key("");
        let seen = self.synced.seen;
        let counts = self.read_counts
            || self
                .registry
                .pools()
                .any(|pool| pool.config().strategy == Strategy::LeastUsed);
        let counted = if counts {
            self.synced.counted.to_string()
        } else {
            String::new()
        };
        let mut call = script(&PULL, PULL_SCRIPT).arg(prefix);
        call.arg(seen).arg(counted);
        for (member, row) in &self.synced.rows {
            if member.starts_with("p\u{1f}") {
                call.arg(member).arg(row.version);
            }
        }
        let reply: Vec<String> = call.invoke(self.conn_mut()?)?;
        let mut pulled = rows::parse_pull(reply)?;
        pulled.counted = counts;
        Ok(pulled)
    }

    /// Moves a namespace of the earlier layout (one document per pool, `generations`) to
    /// rows: merges its pools, writes them as rows and retires each pool document with
    /// [`MOVED_MARKER`], in one script that checks no pool moved meanwhile. A process
    /// that finds the namespace migrated by another reads the rows instead.
    fn migrate(&mut self) -> std::result::Result<(), Fail> {
        for _ in 0..MAX_WRITE_ATTEMPTS {
            let gens_key = self.key("generations");
            let gens: BTreeMap<String, u64> = redis::cmd("HGETALL")
                .arg(&gens_key)
                .query(self.conn_mut()?)?;
            let keys: Vec<String> = gens
                .keys()
                .map(|pool| self.key(&format!("pool:{pool}")))
                .collect();
            let docs: Vec<Option<String>> = if keys.is_empty() {
                Vec::new()
            } else {
                redis::cmd("MGET").arg(&keys).query(self.conn_mut()?)?
            };
            for (key, doc) in keys.iter().zip(docs) {
                let Some(doc) = doc else { continue };
                let state: Value = serde_json::from_str(&doc).map_err(|e| {
                    Error::new(
                        ErrorCode::InvalidState,
                        format!("Redis key {key} is not valid JSON ({e}); it was left untouched"),
                    )
                })?;
                if state.get("moved_to").is_some() {
                    continue;
                }
                self.registry.sync(&state)?;
            }
            self.registry.take_changed();
            self.queue_everything();
            let changes = self.registry.changes_of(&self.synced.dirty);
            let writes = self.writes_of(changes)?;
            let old: Vec<(String, u64)> = gens.into_iter().collect();
            match self.send(&writes, None, "migrate", &old)? {
                stamp if stamp > 0 => {
                    self.wrote(writes, stamp.unsigned_abs());
                    return Ok(());
                }
                -2 => return Ok(()),
                _ => {}
            }
        }
        Err(Fail::Core(Error::new(
            ErrorCode::Io,
            format!(
                "the Redis namespace {} kept changing while it migrated to layout {LAYOUT}",
                self.namespace
            ),
        )))
    }

    /// Writes the queued rows, retrying (re-read, merge) while versions move; with
    /// `lock`, only while the lock holds its token (and releases it).
    fn commit(&mut self, lock: Option<&RedisLock>) -> std::result::Result<Commit, Fail> {
        for attempt in 0..MAX_WRITE_ATTEMPTS {
            if attempt > 0 {
                self.pull()?;
            }
            let changes = self.registry.changes_of(&self.synced.dirty);
            let writes = self.writes_of(changes)?;
            if writes.is_empty() && lock.is_none() {
                self.synced.dirty.clear();
                self.synced.full = false;
                return Ok(Commit::Written);
            }
            match self.send(&writes, lock, "write", &[])? {
                stamp if stamp > 0 => {
                    self.wrote(writes, stamp.unsigned_abs());
                    return Ok(Commit::Written);
                }
                -1 => return Ok(Commit::LockLost),
                // Still the earlier layout: the next pull migrates it.
                -3 => {}
                _ => self.conflicts += 1,
            }
        }
        Ok(Commit::Contended)
    }

    /// The rows `changes` needs written: documents that differ from Redis's, this
    /// writer's counters and cursors that moved, deleted entries.
    fn writes_of(&self, changes: Changes) -> std::result::Result<Writes, Fail> {
        let writer = self.registry.writer();
        let mut writes = Writes::default();
        for mut pool in changes.pools {
            let cursor = pool.pool.round_robin.take();
            self.doc_write(
                &mut writes,
                pool_member(&pool.key),
                Doc::Pool(Box::new(pool.pool)),
            )?;
            if let Some(cursor) = cursor
                && self.synced.cursors.get(&pool.key) != Some(&cursor)
            {
                writes.cursors.push((pool.key.clone(), cursor));
            }
            for mut entry in pool.entries {
                let counts = std::mem::take(&mut entry.request_counts);
                let member = entry_member(&pool.key, &entry.id);
                for (who, n) in counts {
                    let mine = who == writer;
                    if (mine && self.synced.counts.get(&member) != Some(&n))
                        || (!mine && self.synced.full)
                    {
                        writes.counts.push((member.clone(), who, n));
                    }
                }
                self.doc_write(&mut writes, member, Doc::Entry(Box::new(entry)))?;
            }
            for id in &pool.gone {
                let member = entry_member(&pool.key, id);
                if self.synced.rows.contains_key(&member) {
                    writes.gone.push(member);
                }
            }
        }
        Ok(writes)
    }

    /// Adds `doc` for `member` unless Redis already holds it.
    fn doc_write(&self, writes: &mut Writes, member: String, doc: Doc) -> Result<()> {
        let row = self.synced.rows.get(&member);
        if row.map(|r| &r.doc) != Some(&doc) {
            let version = row.map_or(0, |r| r.version);
            writes.docs.push((member, version, doc.text()?, doc));
        }
        Ok(())
    }

    /// One [`WRITE_SCRIPT`] round trip (see its docs for the answers).
    fn send(
        &mut self,
        writes: &Writes,
        lock: Option<&RedisLock>,
        mode: &str,
        old: &[(String, u64)],
    ) -> std::result::Result<i64, Fail> {
        let mut call = script(&WRITE, WRITE_SCRIPT).arg(mode);
        call.arg(self.key("")).arg(self.registry.writer());
        match lock {
            Some(lock) => call.arg(&lock.key).arg(&lock.token),
            None => call.arg("").arg(""),
        };
        call.arg(if self.broken.is_some() { "1" } else { "0" });
        call.arg(writes.docs.len());
        for (member, version, text, _) in &writes.docs {
            call.arg(member).arg(version).arg(text);
        }
        call.arg(writes.counts.len());
        for (member, who, n) in &writes.counts {
            call.arg(member).arg(who).arg(n);
        }
        call.arg(writes.cursors.len());
        for (pool, cursor) in &writes.cursors {
            let text = serde_json::to_string(cursor).map_err(|e| {
                Error::new(
                    ErrorCode::Internal,
                    format!("cannot serialise a cursor: {e}"),
                )
            })?;
            call.arg(pool.as_str()).arg(text);
        }
        call.arg(writes.gone.len());
        for member in &writes.gone {
            call.arg(member);
        }
        call.arg(old.len());
        for (pool, generation) in old {
            call.arg(pool).arg(generation);
        }
        call.arg(MOVED_MARKER);
        Ok(call.invoke(self.conn_mut()?)?)
    }

    /// Records a write that landed under `stamp`.
    fn wrote(&mut self, writes: Writes, stamp: u64) {
        for (member, version, _, doc) in writes.docs {
            let version = version + 1;
            self.synced.rows.insert(member, Row { version, doc });
        }
        let writer = self.registry.writer();
        for (member, who, n) in writes.counts {
            if who == writer {
                self.synced.counts.insert(member, n);
            }
        }
        self.synced.cursors.extend(writes.cursors);
        for member in writes.gone {
            self.synced.rows.remove(&member);
            self.synced.counts.remove(&member);
        }
        // Another process's write in between: the next pull reads it (and these rows).
        if stamp == self.synced.seen + 1 {
            self.synced.seen = stamp;
        }
        if stamp == self.synced.counted + 1 {
            self.synced.counted = stamp;
        }
        self.synced.dirty.clear();
        self.synced.full = false;
    }

    /// `SET lock token NX PX lease`: whether it was taken.
    fn try_lock(&mut self, lock: &RedisLock) -> Result<bool> {
        let lease = lease_ms(self.options.refresh_lease);
        let taken: redis::RedisResult<Option<String>> = redis::cmd("SET")
            .arg(&lock.key)
            .arg(&lock.token)
            .arg("NX")
            .arg("PX")
            .arg(lease)
            .query(self.conn_mut()?);
        match taken {
            Ok(answer) => Ok(answer.is_some()),
            Err(e) => Err(self.went_offline("take the refresh lock", e)),
        }
    }

    /// Compare-and-delete of a lock this store holds (best effort: it expires anyway).
    fn release(&mut self, lock: &mut RedisLock) {
        if let Some(conn) = self.conn.as_mut() {
            let released: redis::RedisResult<i64> = Script::new(RELEASE_SCRIPT)
                .key(&lock.key)
                .arg(&lock.token)
                .invoke(conn);
            if released.is_ok() {
                lock.released = true;
            }
        }
    }

    /// Connects when offline and the reconnect interval has passed (failures are quiet).
    fn try_connect(&mut self) {
        if self.conn.is_some() || self.retry_at.is_some_and(|t| Instant::now() < t) {
            return;
        }
        match connect(
            &self.client,
            self.options.connect_timeout,
            self.options.io_timeout,
        ) {
            Ok(conn) => {
                self.conn = Some(conn);
                self.retry_at = None;
            }
            Err(_) => self.retry_at = Some(Instant::now() + self.options.reconnect_interval),
        }
    }

    /// Connects now if offline (ignoring the reconnect interval); an `io` error if Redis
    /// cannot be reached.
    fn connect_now(&mut self, what: &str) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        match connect(
            &self.client,
            self.options.connect_timeout,
            self.options.io_timeout,
        ) {
            Ok(conn) => {
                self.conn = Some(conn);
                self.retry_at = None;
                Ok(())
            }
            Err(e) => {
                self.retry_at = Some(Instant::now() + self.options.reconnect_interval);
                Err(unreachable(&self.location, what, &e))
            }
        }
    }

    /// Drops the connection (the next call reconnects) and returns the `io` error.
    fn went_offline(&mut self, what: &str, e: redis::RedisError) -> Error {
        self.conn = None;
        self.retry_at = Some(Instant::now() + self.options.reconnect_interval);
        unreachable(&self.location, what, &e)
    }

    fn conn_mut(&mut self) -> Result<&mut Connection> {
        self.conn.as_mut().ok_or_else(|| {
            Error::new(
                ErrorCode::Io,
                format!("not connected to Redis at {}", self.location),
            )
        })
    }

    fn key(&self, suffix: &str) -> String {
        format!("credpool:{}:{suffix}", self.namespace)
    }

    fn lock_key(&self, pool: &PoolKey, entry_id: &EntryId) -> String {
        self.key(&format!("refresh:{}:{}", pool.as_str(), entry_id.as_str()))
    }
}

crate::store::impl_backend_by_inherent_methods!(RedisStore);

/// A client for `url` whose connections send no `CLIENT SETINFO` handshake (one round trip
/// less per connect, and nothing a busy server could stall before the first command).
/// A `rediss://` URL connects over TLS (rustls, `ring` provider), trusting `tls_ca_file`
/// when given, else the system's certificate authorities.
fn client(url: &str, tls_ca_file: Option<&std::path::Path>) -> Result<Client> {
    use redis::IntoConnectionInfo;
    let invalid = |e: redis::RedisError| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("invalid Redis URL {}: {e}", redact(url)),
        )
    };
    let info = url.into_connection_info().map_err(invalid)?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    let info = info.set_redis_settings(settings);
    let Some(ca) = tls_ca_file else {
        return Client::open(info).map_err(invalid);
    };
    if !url
        .trim_start()
        .to_ascii_lowercase()
        .starts_with("rediss://")
    {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "tls_ca_file is set, but the Redis URL is not rediss:// (TLS)",
        ));
    }
    let pem = std::fs::read(ca).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot read the TLS CA file {}: {e}", ca.display()),
        )
    })?;
    // `ring` as the process-wide provider, unless the host installed one already (it
    // cross-compiles without the C and CMake toolchain aws-lc-rs needs).
    #[allow(
        deprecated,
        reason = "rustls nudges towards aws-lc-rs for post-quantum key exchange; ring is chosen for portability"
    )]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certificates = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    Client::build_with_tls(info, certificates).map_err(invalid)
}

fn connect(
    client: &Client,
    connect_timeout: Duration,
    io_timeout: Duration,
) -> redis::RedisResult<Connection> {
    let floor = |d: Duration| d.max(Duration::from_millis(1));
    let conn = client.get_connection_with_timeout(floor(connect_timeout))?;
    conn.set_read_timeout(Some(floor(io_timeout)))?;
    conn.set_write_timeout(Some(floor(io_timeout)))?;
    Ok(conn)
}

/// A failure of a connection that worked (the server restarted or closed it), not a
/// timeout: worth one fresh connection at once.
fn dropped(e: &redis::RedisError) -> bool {
    !e.is_timeout() && (e.is_connection_dropped() || e.is_io_error())
}

fn unreachable(location: &str, what: &str, e: &redis::RedisError) -> Error {
    let why = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else {
        e.to_string()
    };
    Error::new(
        ErrorCode::Io,
        format!("cannot {what}: Redis at {location} is unreachable ({why})"),
    )
}

fn lease_ms(lease: Duration) -> u64 {
    u64::try_from(lease.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// Splits `?namespace=NAME` (or `&namespace=`) off a Redis URL.
fn split_namespace(url: &str) -> (String, Option<String>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let mut namespace = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|pair| match pair.strip_prefix("namespace=") {
            Some(name) => {
                namespace = Some(name.to_owned());
                false
            }
            None => !pair.is_empty(),
        })
        .collect();
    let url = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    (url, namespace)
}

/// The URL without its user-info (passwords never appear in messages).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// A random lock holder token (OS-seeded hasher keys, pid, time, counter).
fn new_token() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = (std::process::id(), nanos, n);
    let a = RandomState::new().hash_one(seed);
    let b = RandomState::new().hash_one((seed, a));
    format!("{a:016x}{b:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_is_split_off_the_url() {
        assert_eq!(
            split_namespace("redis://h:1/2?namespace=fleet"),
            ("redis://h:1/2".to_owned(), Some("fleet".to_owned()))
        );
        assert_eq!(
            split_namespace("redis://h?protocol=resp3&namespace=a"),
            ("redis://h?protocol=resp3".to_owned(), Some("a".to_owned()))
        );
        assert_eq!(split_namespace("redis://h"), ("redis://h".to_owned(), None));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("redis://u:secret@h:1/0"), "redis://***@h:1/0");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn urls_are_told_from_paths() {
        use crate::is_redis_location;
        assert!(is_redis_location("redis://127.0.0.1:6379"));
        assert!(is_redis_location("REDISS://host"));
        assert!(!is_redis_location("/tmp/pools.json"));
        assert!(!is_redis_location("redis.json"));
    }

    #[test]
    fn tokens_differ() {
        assert_ne!(new_token(), new_token());
        assert_eq!(new_token().len(), 32);
    }
}
