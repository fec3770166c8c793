//! [`RedisStore`]: a registry shared through Redis by processes on many machines.
//!
//! Keys (all under `credpool:{namespace}:`):
//! - `generations`: a hash, pool key → generation, bumped by every write of that pool;
//! - `pool:{pool}`: the pool's state, a credpool state document holding that one pool;
//! - `refresh:{pool}:{entry}`: the single-flight refresh lock of one entry (a random
//!   holder token, set with `NX PX lease`).
//!
//! Every write is an atomic read-merge-write: read the generations (one `HGETALL`), merge
//! (core `sync`) the pools whose generation moved, apply the input, and write the pools
//! that differ from Redis with a Lua script that checks their generations did not move
//! meanwhile (else re-read, merge, retry; the input is applied once, and the merge is a
//! join, so retrying is safe). A refresh result is written by the same script only while
//! the refresh lock still holds this holder's token (fencing).
//!
//! When Redis is lost mid-run, inputs keep being decided on the local registry (the last
//! known state) and the store remembers it has unsent changes; the next call that reaches
//! Redis merges and writes them. A refresh never proceeds without the lock.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use credpool_core::{
    AcquireRequest, Credential, Decision, EntryId, Error, ErrorCode, Input, LeaseId, Millis,
    Options, Output, PoolKey, RefreshOutcome, RefreshResult, Registry, Report, Result, parse_input,
};
use redis::{Client, Connection, Script};
use serde_json::{Value, json};

use crate::store::{
    Hold, RefreshStart, RefreshTicket, StoreOptions, StorePool, reads_only, single_flight_refresh,
};

/// The namespace when neither the URL (`?namespace=...`) nor the options name one.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Compare-and-set write of pool documents (see the module docs).
/// KEYS: generations hash, refresh lock (read only when ARGV[1] is a token), pool docs.
/// ARGV: lock token or '', then per pool: pool key, expected generation, document.
/// Returns 1 (written), 0 (a generation moved: re-read and retry), -1 (lock not held).
const WRITE_SCRIPT: &str = r"
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
local n = (#ARGV - 1) / 3
for i = 0, n - 1 do
  local current = redis.call('HGET', KEYS[1], ARGV[2 + 3 * i]) or '0'
  if current ~= ARGV[3 + 3 * i] then return 0 end
end
for i = 0, n - 1 do
  redis.call('SET', KEYS[3 + i], ARGV[4 + 3 * i])
  redis.call('HINCRBY', KEYS[1], ARGV[2 + 3 * i], 1)
end
if ARGV[1] ~= '' then redis.call('DEL', KEYS[2]) end
return 1
";

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
    /// Per pool: the generation and pool document last seen in (or written to) Redis.
    remote: BTreeMap<PoolKey, Remote>,
    /// The registry holds changes Redis has not received yet.
    pending: bool,
    /// After a failed connect: no new attempt before this instant.
    retry_at: Option<Instant>,
    options: StoreOptions,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.location)
            .field("namespace", &self.namespace)
            .field("connected", &self.conn.is_some())
            .field("pending", &self.pending)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
struct Remote {
    generation: u64,
    doc: Value,
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
        let client = client(&url).map_err(|e| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("invalid Redis URL {location}: {e}"),
            )
        })?;
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
            remote: BTreeMap::new(),
            pending: false,
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
        self.pending
    }

    /// Merges in what other processes wrote (one `HGETALL` when nothing moved) and sends
    /// queued changes; returns whether new content was merged. While Redis is unreachable
    /// it changes nothing and answers `false`.
    pub fn reload(&mut self) -> Result<bool> {
        self.sync_online()
    }

    /// Writes queued changes now; an `io` error when Redis cannot be reached (they stay
    /// queued). A process about to exit calls it so nothing stays only in memory.
    pub fn flush(&mut self) -> Result<()> {
        self.connect_now("flush the queued changes")?;
        self.sync_online()?;
        if self.pending {
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
    /// ticket). Redis unreachable: an `io` error.
    pub fn confirm_refresh(&mut self, now: Millis, ticket: RefreshTicket) -> Result<RefreshStart> {
        let Hold::Redis(lock) = &ticket.hold else {
            return Ok(RefreshStart::Needed(ticket));
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
        if renewed == 1 {
            return Ok(RefreshStart::Needed(ticket));
        }
        let RefreshTicket {
            hold,
            pool,
            entry_id,
            generation,
            lease_id,
            ..
        } = ticket;
        if let Hold::Redis(mut lock) = hold {
            lock.released = true;
        }
        self.begin_refresh(now, &pool, &entry_id, generation, lease_id)
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
            let before = (self.registry.clone(), self.remote.clone(), self.pending);
            let decision = self.registry.refresh_result(now, &result)?;
            self.registry.take_changed();
            self.pending = true;
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
            (self.registry, self.remote, self.pending) = before;
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
        single_flight_refresh(self, clock, pool, entry_id, generation, lease_id, refresh)
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
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            generation,
            lease_id,
            result: RefreshOutcome::Adopted,
        };
        self.transact(|registry| registry.refresh_result(now, &result).map(|d| (false, d)))
    }

    /// Merge in Redis (when reachable), apply `op` to the registry, write what changed
    /// (when reachable; else queue it). `op`'s flag says the input changed state; the
    /// registry's own change flag counts too.
    fn transact<T>(&mut self, op: impl FnOnce(&mut Registry) -> Result<(bool, T)>) -> Result<T> {
        self.sync_online()?;
        let (changed, value) = op(&mut self.registry)?;
        if self.registry.take_changed() || changed {
            self.pending = true;
        }
        if self.pending {
            self.sync_online()?;
        }
        Ok(value)
    }

    /// When Redis is (or becomes) reachable: merge in what moved and write queued changes.
    /// Connection failures switch to offline mode (not an error); returns whether new
    /// content was merged.
    fn sync_online(&mut self) -> Result<bool> {
        self.try_connect();
        if self.conn.is_none() {
            return Ok(false);
        }
        match self.try_sync() {
            Ok(merged) => Ok(merged),
            Err(Fail::Core(e)) => Err(e),
            Err(Fail::Redis(e)) if dropped(&e) => {
                // A connection to a server that restarted: one fresh try at once.
                self.conn = None;
                self.retry_at = None;
                self.try_connect();
                if self.conn.is_none() {
                    return Ok(false);
                }
                match self.try_sync() {
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
        if self.pending {
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

    /// Reads the generations; fetches and merges the pools whose generation moved.
    fn pull(&mut self) -> std::result::Result<bool, Fail> {
        let gens_key = self.key("generations");
        let conn = self.conn_mut()?;
        let gens: BTreeMap<String, u64> = redis::cmd("HGETALL").arg(&gens_key).query(conn)?;
        // A pool this process saw that Redis no longer has (Redis lost its data, e.g. a
        // restart without persistence): write it again from the local state.
        let before = self.remote.len();
        self.remote.retain(|key, _| gens.contains_key(key.as_str()));
        if self.remote.len() != before {
            self.pending = true;
        }
        let mut moved = Vec::new();
        for (name, generation) in gens {
            let key = PoolKey::parse(&name).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidState,
                    format!("Redis holds a pool with an invalid key: {e}"),
                )
            })?;
            if self.remote.get(&key).map(|r| r.generation) != Some(generation) {
                moved.push((key, generation));
            }
        }
        if moved.is_empty() {
            return Ok(false);
        }
        let doc_keys: Vec<String> = moved.iter().map(|(k, _)| self.pool_key(k)).collect();
        let docs: Vec<Option<String>> =
            redis::cmd("MGET").arg(&doc_keys).query(self.conn_mut()?)?;
        let mut merged = false;
        for ((key, generation), doc) in moved.into_iter().zip(docs) {
            let Some(doc) = doc else { continue };
            let state: Value = serde_json::from_str(&doc).map_err(|e| {
                Error::new(
                    ErrorCode::InvalidState,
                    format!(
                        "Redis key {} is not valid JSON ({e}); it was left untouched",
                        self.pool_key(&key)
                    ),
                )
            })?;
            self.registry.sync(&state)?;
            merged |= self.registry.take_changed();
            let pool_doc = state["pools"][key.as_str()].clone();
            self.remote.insert(
                key,
                Remote {
                    generation,
                    doc: pool_doc,
                },
            );
        }
        Ok(merged)
    }

    /// Writes every pool whose state differs from Redis, retrying (re-read, merge) while
    /// generations move; with `lock`, only while the lock holds its token (and releases it).
    fn commit(&mut self, lock: Option<&RedisLock>) -> std::result::Result<Commit, Fail> {
        let script = Script::new(WRITE_SCRIPT);
        for _ in 0..MAX_WRITE_ATTEMPTS {
            self.pull()?;
            let state = self.registry.export_state();
            let mut writes = Vec::new();
            for (key, pool) in &state.pools {
                let doc = serde_json::to_value(pool).map_err(serialise_error)?;
                if self.remote.get(key).map(|r| &r.doc) != Some(&doc) {
                    writes.push((key.clone(), doc));
                }
            }
            if writes.is_empty() && lock.is_none() {
                self.pending = false;
                return Ok(Commit::Written);
            }
            let gens_key = self.key("generations");
            let mut invocation = script.key(&gens_key);
            match lock {
                Some(lock) => invocation.key(&lock.key).arg(&lock.token),
                None => invocation.key(&gens_key).arg(""),
            };
            for (key, doc) in &writes {
                let expected = self.remote.get(key).map_or(0, |r| r.generation);
                let full = json!({
                    "format": state.format,
                    "schema_version": state.schema_version,
                    "pools": { key.as_str(): doc },
                });
                let text = serde_json::to_string(&full).map_err(serialise_error)?;
                invocation
                    .key(self.pool_key(key))
                    .arg(key.as_str())
                    .arg(expected)
                    .arg(text);
            }
            let answer: i64 = invocation.invoke(self.conn_mut()?)?;
            match answer {
                1 => {
                    for (key, doc) in writes {
                        let generation = self.remote.get(&key).map_or(0, |r| r.generation) + 1;
                        self.remote.insert(key, Remote { generation, doc });
                    }
                    self.pending = false;
                    return Ok(Commit::Written);
                }
                -1 => return Ok(Commit::LockLost),
                _ => {}
            }
        }
        Ok(Commit::Contended)
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

    fn pool_key(&self, pool: &PoolKey) -> String {
        self.key(&format!("pool:{}", pool.as_str()))
    }

    fn lock_key(&self, pool: &PoolKey, entry_id: &EntryId) -> String {
        self.key(&format!("refresh:{}:{}", pool.as_str(), entry_id.as_str()))
    }
}

crate::store::impl_backend_by_inherent_methods!(RedisStore);

/// A client for `url` whose connections send no `CLIENT SETINFO` handshake (one round trip
/// less per connect, and nothing a busy server could stall before the first command).
fn client(url: &str) -> redis::RedisResult<Client> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info()?;
    let settings = info.redis_settings().clone().set_skip_set_lib_name();
    Client::open(info.set_redis_settings(settings))
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

fn serialise_error(e: serde_json::Error) -> Fail {
    Fail::Core(Error::new(
        ErrorCode::Internal,
        format!("cannot serialise state: {e}"),
    ))
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
