//! `credpool.Store`: a registry persisted in an SQLite database shared by the processes of
//! one machine (lock → merge what others wrote → apply → write the rows it touched), or in
//! Redis when opened with a `redis://` URL; thin over `credpool_store::Store`, which opens
//! either by location (and migrates the JSON store file of an earlier version on open).
//! `credpool.FileStore` is its deprecated alias (`python/credpool/__init__.py`).
//!
//! The methods are `Registry`'s, through the store, so every input that changes state is
//! one locked transaction. Lock waits, database and Redis IO run with the GIL released.
//! The threads using one `Store` object share a `credpool_store::SharedStore`, never
//! locked while Python code runs: `refresh_fn` runs outside it, so other calls go on,
//! while another refresh through the same object waits (single-flight).

use std::path::PathBuf;
use std::time::Duration;

use credpool_core::CredentialOut;
use credpool_core::{
    Credential, EntryId, Input, LeaseId, Options, PoolKey, RefreshOutcome, parse_input,
};
use credpool_store::{SharedStore, Store as CoreStore, StoreOptions, is_redis_location};
use pyo3::prelude::*;
use pyo3::types::IntoPyDict;

use crate::convert::{self, Arg, Clock, Json, to_py};
use crate::errors::{self, check, guarded};
use crate::methods::{self, wire};
use crate::{Out, Wire, registry_options};

/// A credential registry persisted in an SQLite database that any number of processes of
/// one machine share, or in Redis (a `redis://` location) shared by processes on many
/// machines.
///
/// Same methods as `Registry`; every input that may change state runs as one locked
/// transaction (merge what others wrote, apply, write what changed). Thread-safe.
#[pyclass(frozen, module = "credpool._credpool")]
pub(crate) struct Store {
    inner: SharedStore,
    /// Immutable copies, readable without `inner` (so `repr` never waits on a refresh).
    path: Option<PathBuf>,
    location: String,
    writer: String,
}

impl Store {
    /// Runs `f` on the store with the GIL released (lock waits and IO happen there).
    fn with_store<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CoreStore) -> credpool_core::Result<T> + Send,
    ) -> PyResult<T> {
        check(py, guarded(|| py.allow_threads(|| self.inner.with(f))))
    }

    /// Applies one wire input through the store, converting the output.
    fn run<'py>(&self, py: Python<'py>, now: Option<Clock>, input: impl Into<Wire>) -> Out<'py> {
        let (now, input) = (convert::now(py, now)?, input.into());
        let output = self.with_store(py, |store| match input {
            Wire::Json(value) => {
                errors::test_panic(&value);
                store.handle_value(now, value)
            }
            Wire::Typed(input) => store.handle(now, input),
        })?;
        to_py(py, &output)
    }
}

/// Calls `refresh_fn(credential)` (GIL held) and reads its result as a `RefreshOutcome`
/// through core's `refresh_result` input parser (whose errors never echo input values).
fn run_refresh_fn(
    py: Python<'_>,
    refresh_fn: &Py<PyAny>,
    credential: &Credential,
    (pool, entry_id, generation): (&str, &str, u64),
) -> PyResult<RefreshOutcome> {
    let credential = to_py(py, &CredentialOut::from(credential.clone()))?;
    let result: Json = refresh_fn.bind(py).call1((credential,))?.extract()?;
    match parse_input(wire!("refresh_result" { pool, entry_id, generation, result })) {
        Ok(Input::RefreshResult(parsed)) => Ok(parsed.result),
        Ok(_) => Err(errors::internal(
            py,
            "refresh result parsed as another input",
        )),
        Err(e) => Err(errors::make(
            py,
            e.code().as_str(),
            &format!(
                "refresh_fn must return {{\"type\": \"refreshed\", \"access_token\", ...}}, \
                 {{\"type\": \"failed\", ...}} or {{\"type\": \"adopted\"}}: {}",
                e.message()
            ),
        )),
    }
}

/// A duration option in seconds (`name` for the error).
fn seconds(py: Python<'_>, name: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        let message = format!("{name} must be a finite, non-negative number of seconds");
        errors::make(py, "invalid_input", &message)
    })
}

/// Opens the store at `location` (a `redis://` URL, or a path, opened by what the file
/// holds; `None`: the default path).
fn open_store(
    location: Option<PathBuf>,
    options: StoreOptions,
) -> credpool_core::Result<CoreStore> {
    let Some(location) = location else {
        return CoreStore::open_default(options);
    };
    match location.to_str() {
        Some(text) if is_redis_location(text) => CoreStore::open(text, options),
        // A path (possibly not UTF-8): an SQLite database (or none yet), or a JSON store
        // of an earlier version, migrated on the spot.
        _ => CoreStore::open_path(&location, options),
    }
}

#[pymethods]
impl Store {
    /// Opens the store at `location`: a `redis://` / `rediss://` URL
    /// (`redis://[user:password@]host[:port][/db][?namespace=NAME]`) opens the Redis
    /// store (unreachable: `StoreIOError`, code `io`); anything else is the path of an
    /// SQLite database (default: `$CREDPOOL_HOME/pools.sqlite`, else
    /// `$XDG_CONFIG_HOME/credpool/pools.sqlite`, else `~/.config/credpool/pools.sqlite`),
    /// created (mode 0600) by the first write. The JSON store file of an earlier version
    /// (`pools.json`) is migrated on open into the database next to it (`pools.sqlite`)
    /// and left as a marker naming it, which later opens follow. A file that is neither
    /// (corrupt, foreign, newer) raises and is left untouched. `durable` (databases only):
    /// fsync writes (tokens and configuration at once, counters within 1 s); false never
    /// fsyncs. `namespace`, `connect_timeout`, `io_timeout`, `refresh_lease` and
    /// `reconnect_interval` (seconds) concern Redis only; `tls_ca_file`, a PEM file of the
    /// certificate authorities to trust instead of the system's, `rediss://` only.
    #[staticmethod]
    #[pyo3(signature = (
        location=None, *, writer=None, seed=None, lock_timeout=10.0, durable=true,
        namespace=None, connect_timeout=2.0, io_timeout=2.0, refresh_lease=30.0,
        reconnect_interval=1.0, tls_ca_file=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn open(
        py: Python<'_>,
        location: Option<PathBuf>,
        writer: Option<String>,
        seed: Option<&Bound<'_, PyAny>>,
        lock_timeout: f64,
        durable: bool,
        namespace: Option<String>,
        connect_timeout: f64,
        io_timeout: f64,
        refresh_lease: f64,
        reconnect_interval: f64,
        tls_ca_file: Option<PathBuf>,
    ) -> PyResult<Self> {
        let Options { writer, seed } = registry_options(py, writer, seed)?;
        let options = StoreOptions {
            lock_timeout: seconds(py, "lock_timeout", lock_timeout)?,
            durable,
            namespace,
            connect_timeout: seconds(py, "connect_timeout", connect_timeout)?,
            io_timeout: seconds(py, "io_timeout", io_timeout)?,
            refresh_lease: seconds(py, "refresh_lease", refresh_lease)?,
            reconnect_interval: seconds(py, "reconnect_interval", reconnect_interval)?,
            tls_ca_file,
            ..StoreOptions::new(writer, seed)
        };
        let store = guarded(|| py.allow_threads(|| open_store(location, options)));
        let store = check(py, store)?;
        Ok(Self {
            path: store.path().map(ToOwned::to_owned),
            location: store.location(),
            writer: store.registry().writer().to_owned(),
            inner: SharedStore::new(store),
        })
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new
    /// path. Never done implicitly.
    #[staticmethod]
    fn move_aside(py: Python<'_>, path: PathBuf) -> PyResult<String> {
        let moved = guarded(|| py.allow_threads(|| CoreStore::move_aside(&path)));
        Ok(check(py, moved)?.to_string_lossy().into_owned())
    }

    /// The database file (`None` for a Redis store; a migrated JSON store's database, not
    /// the path opened).
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.to_string_lossy().into_owned())
    }

    /// Where the store lives: the database path, or the Redis URL without credentials.
    #[getter]
    fn location(&self) -> &str {
        &self.location
    }

    /// The writer id (never a secret).
    #[getter]
    fn writer(&self) -> &str {
        &self.writer
    }

    /// Merges in what other processes wrote since the last look; whether anything new was
    /// merged.
    fn reload(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_store(py, CoreStore::reload)
    }

    /// Whether changes wait to reach Redis (decided while it was unreachable). Always
    /// false for a database, which never queues.
    fn has_pending(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_store(py, |store| Ok(store.has_pending()))
    }

    /// Writes the changes queued while Redis was unreachable; raises `StoreIOError` (`io`)
    /// when Redis still cannot be reached (they stay queued). A no-op for a database.
    /// Call it before the process exits so nothing stays only in memory.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_store(py, CoreStore::flush)
    }

    /// The single-flight OAuth refresh a `refresh` decision asks for.
    ///
    /// Takes the store's refresh lock (a database's, which only refreshes take: other
    /// writes go on meanwhile; or the entry's Redis refresh lock) and merges what others
    /// wrote. If another process already rotated the token, adopts it without calling
    /// `refresh_fn`. Otherwise confirms, right before the refresh token is used, that the
    /// lock still holds (a Redis lock whose lease ran out is retaken, or the token rotated
    /// meanwhile adopted), then calls `refresh_fn(credential)` (the dict `credential()`
    /// returns, refresh token included) while holding the lock, and records what it
    /// returns: `{"type": "refreshed", "access_token", "refresh_token"?, "expires_at"?}`,
    /// `{"type": "failed", "terminal"?, ...}` or `{"type": "adopted"}`. If `refresh_fn`
    /// raises, the lock is released with nothing changed and the exception propagates.
    /// Returns the decision. Redis unreachable: `StoreIOError` (`io`) before `refresh_fn`
    /// runs (a refresh never proceeds without the lock).
    ///
    /// Who waits while `refresh_fn` runs: another refresh, by another process (of any
    /// entry of the database; of the same entry in Redis) or by another thread through
    /// this `Store` object (of any entry). Every other call, from any process or thread,
    /// goes on; `refresh_fn` may call this `Store` too, except to start a refresh (that
    /// raises). While this refresh waits for another process's to end, other calls through
    /// this object wait as well.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (pool, entry_id, generation, refresh_fn, lease_id=None, now=None))]
    fn refresh<'py>(
        &self,
        py: Python<'py>,
        pool: String,
        entry_id: String,
        generation: u64,
        refresh_fn: &Bound<'py, PyAny>,
        lease_id: Option<u64>,
        now: Option<Clock>,
    ) -> Out<'py> {
        let start = convert::now(py, now)?;
        if !refresh_fn.is_callable() {
            return Err(errors::make(
                py,
                "invalid_input",
                "refresh_fn must be callable",
            ));
        }
        let refresh_fn = refresh_fn.clone().unbind();
        // Core's errors, or (inside) what `refresh_fn` raised, out of the GIL-free section.
        let decision: credpool_core::Result<PyResult<_>> = guarded(|| {
            py.allow_threads(|| {
                let (key, id) = (PoolKey::parse(&pool)?, EntryId::parse(&entry_id)?);
                let lease_id = lease_id.map(LeaseId);
                // `refresh_fn` runs with the GIL held, under the refresh lock but not the
                // store's: other calls go on meanwhile. What it raises changes nothing.
                self.inner
                    .refresh(start, &key, &id, generation, lease_id, |credential| {
                        Python::with_gil(|py| {
                            let ids = (pool.as_str(), entry_id.as_str(), generation);
                            let outcome = run_refresh_fn(py, &refresh_fn, credential, ids)?;
                            Ok((outcome, convert::now(py, now)?))
                        })
                    })
            })
        });
        to_py(py, &check(py, decision)??)
    }

    /// This store bound to one pool: a `credpool.StorePool` (a `CredentialPool` whose
    /// refreshes go through [`Store::refresh`]).
    #[pyo3(signature = (key, *, refresh=None, clock=None))]
    fn pool<'py>(
        slf: &Bound<'py, Self>,
        key: String,
        refresh: Option<&Bound<'py, PyAny>>,
        clock: Option<&Bound<'py, PyAny>>,
    ) -> Out<'py> {
        let class = slf.py().import("credpool._store")?.getattr("StorePool")?;
        let kwargs = [("refresh", refresh), ("clock", clock)].into_py_dict(slf.py())?;
        class.call((slf, key), Some(&kwargs))
    }

    fn __repr__(&self) -> String {
        format!(
            "<credpool.Store location={:?} writer={:?}>",
            self.location, self.writer
        )
    }
}

methods::wire_methods!(Store);
