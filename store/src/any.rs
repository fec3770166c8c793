//! [`Store`]: one type over both backends, opened by location (a path or a Redis URL).

use std::path::Path;

use credpool_core::{
    AcquireRequest, Credential, Decision, EntryId, Input, LeaseId, Millis, Output, PoolKey,
    RefreshOutcome, Registry, Report, Result,
};
use serde_json::Value;

#[cfg(feature = "redis")]
use crate::redis::RedisStore;
use crate::sqlite::SqliteStore;
use crate::store::{RefreshStart, RefreshTicket, StoreOptions, StorePool};

/// A store of either backend, opened by location: what the bindings and the CLI wrap.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one long-lived store per process"
)]
pub enum Store {
    /// An SQLite database shared by the processes of one machine.
    Sqlite(SqliteStore),
    /// Redis, shared by processes on many machines.
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

impl Store {
    /// Opens the store at `location`: a `redis://` or `rediss://` URL opens a
    /// [`RedisStore`] (built with the `redis` feature); anything else is a path, opened by
    /// what the file holds: an SQLite database (or no file yet: a new one), or a JSON store
    /// file, migrated into SQLite on the spot (see [`SqliteStore`]).
    pub fn open(location: &str, options: StoreOptions) -> Result<Self> {
        if is_redis_location(location) {
            #[cfg(feature = "redis")]
            return RedisStore::open(location, options).map(Self::Redis);
            #[cfg(not(feature = "redis"))]
            return Err(credpool_core::Error::new(
                credpool_core::ErrorCode::InvalidInput,
                "this build of credpool-store has no Redis support (feature `redis`)",
            ));
        }
        crate::migrate::open_path(Path::new(location), options).map(Self::Sqlite)
    }

    /// Opens the store at [`default_path`](crate::default_path) (migrating the JSON store
    /// of an earlier version found there).
    pub fn open_default(options: StoreOptions) -> Result<Self> {
        Self::open_path(&crate::default_path()?, options)
    }

    /// Opens the store at a path (by what the file holds, as [`Store::open`]).
    pub fn open_path(path: &Path, options: StoreOptions) -> Result<Self> {
        crate::migrate::open_path(path, options).map(Self::Sqlite)
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`, with its
    /// write-ahead log and shared-memory files (`-wal`, `-shm`) when present, so a new
    /// database at `path` never replays them; returns the new path. Never done
    /// implicitly.
    pub fn move_aside(path: &Path) -> Result<std::path::PathBuf> {
        let aside = crate::file::move_aside(path)?;
        for suffix in ["-wal", "-shm"] {
            let mut from = path.as_os_str().to_owned();
            from.push(suffix);
            let mut to = aside.as_os_str().to_owned();
            to.push(suffix);
            match std::fs::rename(&from, &to) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(credpool_core::Error::new(
                        credpool_core::ErrorCode::Io,
                        format!("cannot move {} aside: {e}", Path::new(&from).display()),
                    ));
                }
                _ => {}
            }
        }
        Ok(aside)
    }

    /// Where the store lives: the database path, or the Redis URL without credentials.
    pub fn location(&self) -> String {
        match self {
            Self::Sqlite(s) => s.path().display().to_string(),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.location().to_owned(),
        }
    }

    /// The database file (`None` for Redis).
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(s) => Some(s.path()),
            #[cfg(feature = "redis")]
            Self::Redis(_) => None,
        }
    }

    /// The in-memory registry as of the last reload or transaction.
    pub fn registry(&self) -> &Registry {
        match self {
            Self::Sqlite(s) => s.registry(),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.registry(),
        }
    }

    /// Merges in what other processes wrote since the last look; whether anything new was
    /// merged.
    pub fn reload(&mut self) -> Result<bool> {
        match self {
            Self::Sqlite(s) => s.reload(),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.reload(),
        }
    }

    /// Whether changes wait to reach the shared store (Redis was unreachable); SQLite
    /// never queues.
    pub fn has_pending(&self) -> bool {
        match self {
            Self::Sqlite(_) => false,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.has_pending(),
        }
    }

    /// Redis: document writes retried because another process had written the same row
    /// since this one read it, since open (SQLite serialises writers: always 0).
    pub fn conflicts(&self) -> u64 {
        match self {
            Self::Sqlite(_) => 0,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.conflicts(),
        }
    }

    /// Writes queued changes now (a no-op for SQLite, which never queues).
    pub fn flush(&mut self) -> Result<()> {
        match self {
            Self::Sqlite(_) => Ok(()),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.flush(),
        }
    }

    /// Applies one wire input, persisting it when it changed state.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        match self {
            Self::Sqlite(s) => s.handle(now, input),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.handle(now, input),
        }
    }

    /// Parses a JSON wire input and applies it.
    pub fn handle_value(&mut self, now: Millis, input: Value) -> Result<Output> {
        match self {
            Self::Sqlite(s) => s.handle_value(now, input),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.handle_value(now, input),
        }
    }

    /// A view of one pool.
    pub fn pool(&mut self, key: PoolKey) -> StorePool<'_> {
        match self {
            Self::Sqlite(s) => s.pool(key),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.pool(key),
        }
    }

    /// `acquire`, persisted.
    pub fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision> {
        match self {
            Self::Sqlite(s) => s.acquire(now, request),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.acquire(now, request),
        }
    }

    /// `report`, persisted.
    pub fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
        match self {
            Self::Sqlite(s) => s.report(now, report),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.report(now, report),
        }
    }

    /// Step one of the single-flight refresh ([`SqliteStore::begin_refresh`],
    /// [`RedisStore::begin_refresh`]).
    pub fn begin_refresh(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart> {
        match self {
            Self::Sqlite(s) => s.begin_refresh(now, pool, entry_id, generation, lease_id),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.begin_refresh(now, pool, entry_id, generation, lease_id),
        }
    }

    /// Right before using the refresh token: checks the ticket still holds the lock
    /// ([`RedisStore::confirm_refresh`]; a file lock always does).
    pub fn confirm_refresh(&mut self, now: Millis, ticket: RefreshTicket) -> Result<RefreshStart> {
        match self {
            Self::Sqlite(s) => s.confirm_refresh(now, ticket),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.confirm_refresh(now, ticket),
        }
    }

    /// Step two: records how the refresh ended, writes it, releases the lock.
    pub fn finish_refresh(
        &mut self,
        now: Millis,
        ticket: RefreshTicket,
        outcome: RefreshOutcome,
    ) -> Result<Decision> {
        match self {
            Self::Sqlite(s) => s.finish_refresh(now, ticket, outcome),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.finish_refresh(now, ticket, outcome),
        }
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
        match self {
            Self::Sqlite(s) => s.refresh(clock, pool, entry_id, generation, lease_id, refresh),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.refresh(clock, pool, entry_id, generation, lease_id, refresh),
        }
    }

    /// The whole single-flight refresh with the entry's built-in refresher: core builds the
    /// token request and reads the answer, this sends it (feature `http`). An entry whose
    /// provider has none fails the refresh (not terminal) with `not_refreshable`.
    #[cfg(feature = "http")]
    pub fn refresh_built_in(
        &mut self,
        clock: impl Fn() -> Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<Decision> {
        let refresh = |registry: &Registry, _: &Credential| {
            crate::http::refresh(registry, clock(), pool, entry_id)
        };
        match self {
            Self::Sqlite(s) => crate::store::single_flight_refresh(
                s, &clock, pool, entry_id, generation, lease_id, refresh,
            ),
            #[cfg(feature = "redis")]
            Self::Redis(s) => crate::store::single_flight_refresh(
                s, &clock, pool, entry_id, generation, lease_id, refresh,
            ),
        }
    }
}

/// Whether `location` is a Redis URL (`redis://`, `rediss://`) rather than a file path.
pub fn is_redis_location(location: &str) -> bool {
    let head = location.get(..9).unwrap_or(location).to_ascii_lowercase();
    head.starts_with("redis://") || head.starts_with("rediss://")
}
