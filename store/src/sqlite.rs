//! [`SqliteStore`]: a registry persisted in an SQLite database (WAL) that many processes
//! of one machine share, one row per entry, so a decision costs what it changed.
//!
//! Layout: `meta` (format, layout version, change counter), `pools` (each pool's own
//! fields: configuration, cursor, tombstones) and `entries` (one row per entry), each row
//! stamped with the change counter of the write that last touched it. A transaction runs
//! under the store's advisory lock (short polls, so no writer starves behind SQLite's busy
//! backoff) as: read the rows stamped after the last look and merge them (core `sync`),
//! open core's change journal, apply, write the touched rows under a new stamp, commit.
//! A failed write rolls back the database and undoes the input in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use credpool_core::{
    AcquireRequest, Changes, Credential, Decision, EntryId, Error, ErrorCode, Input, LeaseId,
    Millis, Options, Output, PoolKey, RefreshOutcome, RefreshResult, RefreshSend, Registry, Report,
    Result, parse_input,
};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use serde_json::{Map, Value};

use crate::file::{self, io_error};
use crate::lock;
use crate::store::{Hold, RefreshStart, RefreshTicket, StoreOptions, StorePool, reads_only};

/// The table layout this build writes and the newest it reads.
const LAYOUT_VERSION: i64 = 1;
/// The longest a light change (a counter, a status, the cursor) waits for an fsync: a
/// power loss forgets at most this much of them. Tokens and configuration never wait.
pub const LIGHT_SYNC_INTERVAL: Duration = Duration::from_secs(1);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS pools (
    key TEXT PRIMARY KEY, doc TEXT NOT NULL, stamp INTEGER NOT NULL) STRICT;
CREATE TABLE IF NOT EXISTS entries (
    pool TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL, stamp INTEGER NOT NULL,
    PRIMARY KEY (pool, id)) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pools_by_stamp ON pools (stamp);
CREATE INDEX IF NOT EXISTS entries_by_stamp ON entries (stamp);
";

/// How soon a write must reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Durability {
    /// Tokens, entries, configuration: fsynced before the call returns.
    Now,
    /// Counters, statuses, the cursor, leases: fsynced within [`LIGHT_SYNC_INTERVAL`].
    Soon,
}

/// A registry persisted in an SQLite database shared by the processes of one machine.
///
/// Same contract as the one-JSON-file store it replaces (which it migrates):
/// merge by core's join on every transaction, no lost update, single-flight OAuth refresh,
/// corrupt, foreign or newer data refused with a code and left untouched, mode 0600,
/// no secret of a borrowed source written, safe against `SIGKILL` (SQLite's WAL).
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    lock_path: PathBuf,
    refresh_lock_path: PathBuf,
    /// The database connection (`None` while the file does not exist: it is created by
    /// the first write, so reads and failed inputs never create it).
    conn: Option<Connection>,
    registry: Registry,
    /// The change counter as of the last look.
    seen: i64,
    /// Each pool's own fields as last read or written (unchanged ones are not rewritten).
    pool_docs: BTreeMap<PoolKey, String>,
    /// When a write last reached the disk.
    last_sync: Option<Instant>,
    /// Writes made since then (not yet fsynced).
    unsynced: bool,
    /// The database file's identity (device, inode) and page size when connected: a file
    /// replaced or cut short under an open store is refused, never written.
    identity: Option<(u64, u64, u64)>,
    options: StoreOptions,
}

impl SqliteStore {
    /// Opens the database at `path` and loads it (a missing file is an empty store,
    /// created with mode 0600 by the first write).
    ///
    /// A file that is not a credpool database fails with `foreign_document`, a newer layout
    /// with `unsupported_schema_version`, damaged rows with `invalid_state`; the file is
    /// left untouched.
    pub fn open(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Self> {
        let path = path.into();
        let lock_path = lock::lock_path(&path);
        let registry = Registry::new(Options {
            writer: options.writer.clone(),
            seed: options.seed,
        })?;
        let mut store = Self {
            refresh_lock_path: refresh_lock_path(&path),
            lock_path,
            path,
            conn: None,
            registry,
            seen: 0,
            pool_docs: BTreeMap::new(),
            last_sync: None,
            unsynced: false,
            identity: None,
            options,
        };
        if store.path.exists() {
            store.connect(false, false)?;
            store.merge_rows()?;
        }
        Ok(store)
    }

    /// Connects to the database file (creating it when `create`), checks it is a credpool
    /// store, and creates the tables in an empty one (under the store's lock, taken here
    /// unless the caller holds it: `locked`).
    fn connect(&mut self, create: bool, locked: bool) -> Result<&mut Connection> {
        if self.conn.is_none() {
            let path = self.path.clone();
            let fail = |e: rusqlite::Error| db_error(&path, "open", &e);
            if create {
                create_private(&path)?;
            }
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(fail)?;
            conn.busy_timeout(self.options.lock_timeout).map_err(fail)?;
            // Freed space is zeroed: a removed entry's or a replaced token's secret does not
            // linger in the file.
            conn.pragma_update(None, "secure_delete", "ON")
                .map_err(fail)?;
            if !has_layout(&conn, &path)? {
                let _guard = if locked {
                    None
                } else {
                    Some(lock::lock(&self.lock_path, self.options.lock_timeout)?)
                };
                if !has_layout(&conn, &path)? {
                    create_layout(&conn, &path)?;
                }
            }
            let page_size: u64 = conn
                .query_row("PRAGMA page_size", [], |row| row.get(0))
                .map_err(fail)?;
            let (device, inode, _) = file_identity(&path)?;
            self.identity = Some((device, inode, page_size.max(1)));
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "no database connection"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The in-memory registry as of the last reload or transaction.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Merges in what other processes wrote since the last look (one indexed read when
    /// nothing did); returns whether anything new was merged.
    pub fn reload(&mut self) -> Result<bool> {
        self.merge_rows()
    }

    /// Applies one wire input, persisting what it changed.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        if reads_only(&input) {
            self.reload()?;
            return self.registry.handle(now, input);
        }
        let durability = durability_of(&input);
        self.transact(durability, |registry| {
            let output = registry.handle(now, input)?;
            Ok((output.changed, output))
        })
    }

    /// Parses a JSON wire input and applies it ([`SqliteStore::handle`]).
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
        self.transact(Durability::Soon, |registry| {
            let decision = registry.acquire(now, request)?;
            Ok((registry.take_changed(), decision))
        })
    }

    /// `report`, persisted.
    pub fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
        self.transact(Durability::Soon, |registry| {
            let decision = registry.report(now, report)?;
            Ok((registry.take_changed(), decision))
        })
    }

    /// Step one of the single-flight refresh: takes the store's refresh lock (other
    /// writers go on meanwhile), merges, and either adopts a token another process already
    /// rotated ([`RefreshStart::Adopted`]) or hands back a ticket holding the lock.
    pub fn begin_refresh(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart> {
        let guard = lock::lock(&self.refresh_lock_path, self.options.lock_timeout)?;
        self.merge_rows()?;
        if self.registry.check_refresh(pool, entry_id, generation)? {
            let credential = self.registry.credential(pool, entry_id)?;
            return Ok(RefreshStart::Needed(RefreshTicket {
                hold: Hold::File(guard),
                pool: pool.clone(),
                entry_id: entry_id.clone(),
                generation,
                lease_id,
                credential,
            }));
        }
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            generation,
            lease_id,
            result: RefreshOutcome::Adopted,
        };
        let decision = self.transact(Durability::Soon, |registry| {
            let decision = registry.refresh_result(now, &result)?;
            Ok((registry.take_changed(), decision))
        })?;
        drop(guard);
        Ok(RefreshStart::Adopted(decision))
    }

    /// Right before the refresh token is used: records (fsynced) that it is being sent,
    /// and hands the ticket back ([`RefreshStart::Needed`]; a file lock cannot expire). A
    /// send of this token that never recorded its answer (its process died) refuses it:
    /// [`RefreshStart::Adopted`] with the entry marked dead (`refresh_interrupted`).
    pub fn confirm_refresh(&mut self, now: Millis, ticket: RefreshTicket) -> Result<RefreshStart> {
        let (pool, entry_id, generation) = (&ticket.pool, &ticket.entry_id, ticket.generation);
        let send = self.transact(Durability::Now, |registry| {
            let send = registry.record_refresh_send(now, pool, entry_id, generation)?;
            Ok((registry.take_changed(), send))
        })?;
        if send == RefreshSend::Send {
            return Ok(RefreshStart::Needed(ticket));
        }
        let outcome = crate::store::not_sent(send);
        self.finish_refresh(now, ticket, outcome)
            .map(RefreshStart::Adopted)
    }

    /// Step two: records how the refresh ended (a new token is fsynced before this
    /// returns), then releases the refresh lock.
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
        let result = RefreshResult {
            pool,
            entry_id,
            generation,
            lease_id,
            result: outcome,
        };
        let decision = self.transact(Durability::Now, |registry| {
            let decision = registry.refresh_result(now, &result)?;
            Ok((registry.take_changed(), decision))
        })?;
        drop(hold);
        Ok(decision)
    }

    /// The whole single-flight refresh (begin, confirm, `refresh`, finish).
    pub fn refresh(
        &mut self,
        clock: impl Fn() -> Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
        refresh: impl FnOnce(&Credential) -> RefreshOutcome,
    ) -> Result<Decision> {
        crate::store::single_flight_refresh(
            self,
            clock,
            pool,
            entry_id,
            generation,
            lease_id,
            |_, credential| refresh(credential),
        )
    }

    /// Lock, merge, apply `op` under a change journal, write what it touched, commit.
    fn transact<T>(
        &mut self,
        durability: Durability,
        op: impl FnOnce(&mut Registry) -> Result<(bool, T)>,
    ) -> Result<T> {
        let guard = lock::lock(&self.lock_path, self.options.lock_timeout)?;
        if self.conn.is_none() && self.path.exists() {
            self.connect(false, true)?;
        }
        self.check_file()?;
        self.merge_rows()?;
        let (changes, value) = crate::store::journaled(&mut self.registry, op)?;
        let Some(changes) = changes else {
            self.registry.end_changes();
            return Ok(value);
        };
        match self.write(&changes, durability) {
            Ok(()) => self.registry.end_changes(),
            Err(e) => {
                self.registry.undo_changes();
                return Err(e);
            }
        }
        drop(guard);
        Ok(value)
    }

    /// Writes `changes` under a new stamp in one transaction.
    fn write(&mut self, changes: &Changes, durability: Durability) -> Result<()> {
        let sync_now = self.options.durable
            && (durability == Durability::Now
                || self
                    .last_sync
                    .is_none_or(|at| at.elapsed() >= LIGHT_SYNC_INTERVAL));
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| db_error(&path, "write", &e);
        let level = if sync_now { "FULL" } else { "NORMAL" };
        self.connect(true, true)?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(Error::new(ErrorCode::Internal, "no database connection"));
        };
        conn.pragma_update(None, "synchronous", level)
            .map_err(fail)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        let stamp = read_stamp(&tx).map_err(fail)? + 1;
        let pool_docs = &self.pool_docs;
        let mut written = Vec::new();
        for pool in &changes.pools {
            let key = pool.key.as_str();
            let doc = to_text(&pool.pool)?;
            if pool_docs.get(&pool.key) != Some(&doc) {
                tx.prepare_cached("INSERT INTO pools (key, doc, stamp) VALUES (?1, ?2, ?3) ON CONFLICT (key) DO UPDATE SET doc = ?2, stamp = ?3")
                    .and_then(|mut s| s.execute(params![key, doc, stamp]))
                    .map_err(fail)?;
                written.push((pool.key.clone(), doc));
            }
            for entry in &pool.entries {
                let doc = to_text(entry)?;
                tx.prepare_cached("INSERT INTO entries (pool, id, doc, stamp) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (pool, id) DO UPDATE SET doc = ?3, stamp = ?4")
                    .and_then(|mut s| s.execute(params![key, entry.id.as_str(), doc, stamp]))
                    .map_err(fail)?;
            }
            for id in &pool.gone {
                tx.prepare_cached("DELETE FROM entries WHERE pool = ?1 AND id = ?2")
                    .and_then(|mut s| s.execute(params![key, id.as_str()]))
                    .map_err(fail)?;
            }
        }
        tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'stamp'")
            .and_then(|mut s| s.execute(params![stamp]))
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        if durability == Durability::Now {
            // Old page images (a removed secret, a replaced token) leave the log too; a
            // reader still using the log keeps it, and the next such write retries.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        if sync_now {
            self.last_sync = Some(Instant::now());
        }
        self.unsynced = !sync_now;
        self.seen = stamp;
        self.pool_docs.extend(written);
        Ok(())
    }

    /// Checks that the path still names the database file this store connected to (not
    /// a file renamed over it) and that its size is still whole pages (not overwritten in
    /// place by a shorter file): either is refused, and nothing is written. Only the
    /// path's metadata is looked at: opening and closing the file here would drop the
    /// POSIX locks SQLite holds on it. (An overwrite that keeps whole pages is found when
    /// SQLite reads a damaged page.)
    fn check_file(&self) -> Result<()> {
        let Some((device, inode, page_size)) = self.identity else {
            return Ok(());
        };
        let changed = match file_identity(&self.path) {
            Ok((d, i, size)) => (d, i) != (device, inode) || size % page_size != 0,
            Err(_) => true,
        };
        if changed {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!(
                    "{} was replaced or overwritten while this store had it open; nothing \
                     was written (reopen the store)",
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Reads the rows stamped after the last look and merges them into the registry.
    fn merge_rows(&mut self) -> Result<bool> {
        let path = self.path.clone();
        let fail = |e: rusqlite::Error| db_error(&path, "read", &e);
        if self.conn.is_none() {
            if !self.path.exists() {
                return Ok(false);
            }
            self.connect(false, false)?;
        }
        self.check_file()?;
        let Some(conn) = self.conn.as_mut() else {
            return Ok(false);
        };
        let tx = conn.transaction().map_err(fail)?;
        let stamp = read_stamp(&tx).map_err(fail)?;
        if stamp == self.seen {
            return Ok(false);
        }
        let mut pools: BTreeMap<String, String> = BTreeMap::new();
        let mut entries: BTreeMap<String, Vec<String>> = BTreeMap::new();
        {
            let mut rows = tx
                .prepare_cached("SELECT key, doc FROM pools WHERE stamp > ?1")
                .map_err(fail)?;
            let found = rows
                .query_map(params![self.seen], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(fail)?;
            for row in found {
                let (key, doc) = row.map_err(fail)?;
                pools.insert(key, doc);
            }
            let mut rows = tx
                .prepare_cached("SELECT pool, doc FROM entries WHERE stamp > ?1")
                .map_err(fail)?;
            let found = rows
                .query_map(params![self.seen], |row| Ok((row.get(0)?, row.get(1)?)))
                .map_err(fail)?;
            for row in found {
                let (pool, doc): (String, String) = row.map_err(fail)?;
                entries.entry(pool).or_default().push(doc);
            }
            let mut one = tx
                .prepare_cached("SELECT doc FROM pools WHERE key = ?1")
                .map_err(fail)?;
            for pool in entries.keys() {
                if !pools.contains_key(pool) {
                    let doc: Option<String> = one
                        .query_row(params![pool], |row| row.get(0))
                        .optional()
                        .map_err(fail)?;
                    let doc = doc.ok_or_else(|| {
                        damaged(&path, "an entry row names a pool that has no row")
                    })?;
                    pools.insert(pool.clone(), doc);
                }
            }
        }
        drop(tx);
        let fragment = fragment(&path, &pools, entries)?;
        self.registry.sync(&fragment)?;
        self.registry.take_changed();
        for (key, doc) in pools {
            if let Ok(key) = PoolKey::parse(&key) {
                self.pool_docs.insert(key, doc);
            }
        }
        self.seen = stamp;
        Ok(true)
    }
}

impl Drop for SqliteStore {
    /// Writes not yet fsynced reach the disk when the store closes: a checkpoint syncs
    /// the write-ahead log first.
    fn drop(&mut self) {
        if self.unsynced
            && self.options.durable
            && let Some(conn) = &self.conn
        {
            let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
        }
    }
}

crate::store::impl_backend_by_inherent_methods!(SqliteStore);

/// A file's (device, inode, size).
fn file_identity(path: &Path) -> Result<(u64, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot stat {}: {e}", path.display()),
        )
    })?;
    Ok((meta.dev(), meta.ino(), meta.len()))
}

/// How soon what `input` changes must be on disk (see [`Durability`]).
fn durability_of(input: &Input) -> Durability {
    match input {
        Input::Acquire(_)
        | Input::Report(_)
        | Input::Release { .. }
        | Input::BeginTurn { .. }
        | Input::CallStart(_)
        | Input::CallReport(_)
        | Input::CallResume { .. }
        | Input::CallCancel { .. } => Durability::Soon,
        _ => Durability::Now,
    }
}

/// Creates `path` with mode 0600 if it does not exist (SQLite gives its `-wal` and `-shm`
/// files the database's mode).
fn create_private(path: &Path) -> Result<()> {
    file::create_dir(file::parent(path))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_error("create", path, &e)),
    }
}

/// Whether the database holds credpool's tables (false: an empty database); anything
/// else is refused with a code, untouched.
fn has_layout(conn: &Connection, path: &Path) -> Result<bool> {
    let fail = |e: rusqlite::Error| db_error(path, "open", &e);
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(fail)?;
    if tables == 0 {
        return Ok(false);
    }
    let meta = |key: &str| -> Option<rusqlite::types::Value> {
        conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            params![key],
            |row| row.get(0),
        )
        .ok()
    };
    if meta("format") != Some(rusqlite::types::Value::Text(credpool_core::FORMAT.into())) {
        return Err(Error::new(
            ErrorCode::ForeignDocument,
            format!(
                "{} is an SQLite database but not a credpool store; it was left untouched",
                path.display()
            ),
        ));
    }
    match meta("layout") {
        Some(rusqlite::types::Value::Integer(v)) if v == LAYOUT_VERSION => Ok(true),
        Some(rusqlite::types::Value::Integer(v)) if v > LAYOUT_VERSION => Err(Error::new(
            ErrorCode::UnsupportedSchemaVersion,
            format!(
                "{} has store layout {v}, newer than this build reads ({LAYOUT_VERSION}); it was left untouched",
                path.display()
            ),
        )),
        _ => Err(damaged(path, "its layout version is missing or unknown")),
    }
}

/// Creates credpool's tables in an empty database (the caller holds the store's lock),
/// in write-ahead-log mode.
fn create_layout(conn: &Connection, path: &Path) -> Result<()> {
    let fail = |e: rusqlite::Error| db_error(path, "create", &e);
    // Small pages: a decision rewrites a few pages (its entry, the pool, the stamp
    // indexes), so a 1 KiB page writes a quarter of the bytes of SQLite's default 4 KiB.
    conn.pragma_update(None, "page_size", 1024).map_err(fail)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(fail)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::new(
            ErrorCode::Io,
            format!(
                "{} cannot use write-ahead logging (journal mode {mode})",
                path.display()
            ),
        ));
    }
    conn.execute_batch(&format!(
        "BEGIN IMMEDIATE; {SCHEMA} INSERT INTO meta (key, value) VALUES ('format', '{}'), \
         ('layout', {LAYOUT_VERSION}), ('stamp', 0); COMMIT;",
        credpool_core::FORMAT
    ))
    .map_err(fail)
}

fn read_stamp(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.prepare_cached("SELECT value FROM meta WHERE key = 'stamp'")?
        .query_row([], |row| row.get(0))
}

/// Rows as a state document fragment for core's `sync`: the pools read, each with its
/// entry rows.
fn fragment(
    path: &Path,
    pools: &BTreeMap<String, String>,
    mut entries: BTreeMap<String, Vec<String>>,
) -> Result<Value> {
    let mut docs = Map::new();
    for (key, doc) in pools {
        let Ok(Value::Object(mut pool)) = serde_json::from_str::<Value>(doc) else {
            return Err(damaged(path, "a pool row is not a JSON object"));
        };
        let rows = entries.remove(key).unwrap_or_default();
        let mut list = Vec::with_capacity(rows.len());
        for row in rows {
            list.push(
                serde_json::from_str::<Value>(&row)
                    .map_err(|_| damaged(path, "an entry row is not JSON"))?,
            );
        }
        pool.insert("entries".to_owned(), Value::Array(list));
        docs.insert(key.clone(), Value::Object(pool));
    }
    Ok(crate::store::state_of(docs))
}

fn to_text(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| Error::new(ErrorCode::Internal, format!("cannot serialise state: {e}")))
}

fn refresh_lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".refresh-lock");
    PathBuf::from(name)
}

fn damaged(path: &Path, what: &str) -> Error {
    Error::new(
        ErrorCode::InvalidState,
        format!(
            "{} is a damaged credpool store ({what}); it was left untouched",
            path.display()
        ),
    )
}

/// An SQLite error as a coded error: a file that is no database is `foreign_document`,
/// a damaged one `invalid_state`, a busy one past the timeout `lock_timeout`, else `io`.
fn db_error(path: &Path, what: &str, e: &rusqlite::Error) -> Error {
    use rusqlite::ErrorCode as Sqlite;
    let code = match e.sqlite_error_code() {
        Some(Sqlite::NotADatabase) => ErrorCode::ForeignDocument,
        Some(Sqlite::DatabaseCorrupt) => ErrorCode::InvalidState,
        Some(Sqlite::DatabaseBusy | Sqlite::DatabaseLocked) => ErrorCode::LockTimeout,
        _ => ErrorCode::Io,
    };
    Error::new(code, format!("cannot {what} {}: {e}", path.display()))
}
