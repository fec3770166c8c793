//! Persistence for `credpool-core`: the IO the pure core never does.
//!
//! [`SqliteStore`] keeps a registry in an SQLite database (default [`default_path`]) that
//! any number of processes of one machine share, one row per entry: every state-changing
//! input runs under an advisory lock as lock → read the rows changed since the last look
//! → merge (core `sync`) → apply → write the rows it touched, so no update is ever lost
//! and a decision costs what it changed, not the pool's size; OAuth refreshes are
//! single-flight ([`SqliteStore::begin_refresh`]), so a rotated single-use refresh token
//! is never replayed. The one-JSON-file store of earlier versions is no live store any
//! more: [`Store::open`] migrates such a file into SQLite (JSON stays for export and
//! import).
//!
//! `RedisStore` (feature `redis`, on by default) keeps the same state in Redis for agents
//! on many machines: a row per pool and per entry, compare-and-set per row, counters and
//! cursors that never conflict, a leased and fenced refresh lock, TLS, and offline
//! operation on the last known state while Redis is away. [`Store`] opens either by location (a path or a
//! `redis://` URL) behind one surface.

mod any;
mod file;
#[cfg(feature = "http")]
mod http;
mod lock;
mod migrate;
mod path;
#[cfg(feature = "redis")]
mod redis;
mod shared;
mod sqlite;
mod store;

pub use any::{Store, is_redis_location};
pub use file::MAX_FILE_BYTES;
pub use migrate::MOVED_SCHEMA_VERSION;
pub use path::{FILE_NAME, LEGACY_FILE_NAME, default_path};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_NAMESPACE, RedisStore};
pub use shared::SharedStore;
pub use sqlite::{LIGHT_SYNC_INTERVAL, SqliteStore};
pub use store::{RefreshStart, RefreshTicket, StoreOptions, StorePool, reads_only};

use credpool_core::Millis;

/// The wall clock as core's [`Millis`] (the store's job, never core's).
pub fn now() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
