//! Persistence for `credpool-core`: the IO the pure core never does.
//!
//! [`FileStore`] keeps a registry in one JSON file (default [`default_path`]) that any
//! number of processes share: every state-changing input runs under an advisory lock as
//! lock → read → merge (core `sync`) → apply → atomic write, so no update is ever lost;
//! OAuth refreshes are single-flight ([`FileStore::begin_refresh`]), so a rotated
//! single-use refresh token is never replayed.
//!
//! `RedisStore` (feature `redis`, on by default) keeps the same state in Redis for agents
//! on many machines: per-pool state and generation counters, atomic read-merge-write by a
//! compare-and-set script, a leased and fenced refresh lock, and offline operation on the
//! last known state while Redis is away. [`Store`] opens either by location (a path or a
//! `redis://` URL) behind one surface.

mod any;
mod file;
mod lock;
mod path;
#[cfg(feature = "redis")]
mod redis;
mod store;

pub use any::{Store, is_redis_location};
pub use file::MAX_FILE_BYTES;
pub use path::{FILE_NAME, default_path};
#[cfg(feature = "redis")]
pub use redis::{DEFAULT_NAMESPACE, RedisStore};
pub use store::{FileStore, RefreshStart, RefreshTicket, StoreOptions, StorePool, reads_only};

use credpool_core::Millis;

/// The wall clock as core's [`Millis`] (the store's job, never core's).
pub fn now() -> Millis {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    Millis(u64::try_from(ms).unwrap_or(u64::MAX))
}
