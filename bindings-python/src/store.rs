//! `credpool.FileStore`: a registry persisted in one JSON file shared by many processes
//! (lock → reload/merge → apply → atomic write), or in Redis when opened with a
//! `redis://` URL; thin over `credpool_store::Store`, which opens either by location.
//!
//! The methods mirror `Registry`'s (same names, same keyword arguments); each one goes
//! through the store's `handle`, so every input that changes state is one locked
//! transaction. Lock waits, file and Redis IO run with the GIL released, so other Python
//! threads keep running while one waits for another process.
//!
//! Concurrency inside one process: a `Mutex` serialises the users of one `FileStore`
//! object. It is never held while Python code runs, except during
//! [`FileStore::refresh`]'s `refresh_fn`: other threads using the same `FileStore` wait
//! meanwhile (and other processes wait for the file lock), which is exactly what
//! single-flight means. `refresh_fn` must not call back into the same `FileStore`
//! (that raises instead of deadlocking).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;
use std::time::Duration;

use credpool_core::CredentialOut;
use credpool_core::{
    Credential, Decision, EntryId, ErrorCode, Input, LeaseId, Millis, Options, Output, PoolKey,
    RefreshOutcome, parse_input,
};
use credpool_store::{
    FileStore as CoreFileStore, RefreshStart, Store as CoreStore, StoreOptions, is_redis_location,
};
use pyo3::prelude::*;
use serde_json::{Value, json};

use crate::{clock, errors, guarded, input_of, methods, opt, registry_options, to_py, to_value};

/// Why a call into the store failed, carried out of a GIL-free section (all `Send`).
enum Failure {
    Core(credpool_core::Error),
    Py(PyErr),
    Poisoned,
    Reentrant,
}

impl Failure {
    fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Self::Core(e) => errors::from_core(py, &e),
            Self::Py(e) => e,
            Self::Poisoned => errors::internal(py, "store lock poisoned"),
            Self::Reentrant => errors::make(
                py,
                "invalid_input",
                "refresh_fn called back into the FileStore that is refreshing (it holds the \
                 store lock): use the credential it was given",
            ),
        }
    }
}

impl From<credpool_core::Error> for Failure {
    fn from(e: credpool_core::Error) -> Self {
        Self::Core(e)
    }
}

/// A credential registry persisted in one JSON file that any number of processes share,
/// or in Redis (a `redis://` location) shared by processes on many machines.
///
/// Same methods as `Registry`; every input that may change state runs as one locked
/// transaction (merge what others wrote, apply, write atomically when it changed
/// anything). Thread-safe.
#[pyclass(frozen, module = "credpool._credpool")]
pub(crate) struct FileStore {
    inner: Mutex<CoreStore>,
    /// The thread running a `refresh_fn` while holding `inner` (re-entrance guard).
    refreshing: Mutex<Option<ThreadId>>,
    /// Immutable copies, readable without `inner` (so `repr` never waits on a refresh).
    path: Option<PathBuf>,
    location: String,
    writer: String,
}

impl FileStore {
    /// Fails when the current thread is inside this store's `refresh_fn` (it holds `inner`:
    /// locking it again would deadlock).
    fn check_reentrance(&self) -> Result<(), Failure> {
        let owner = *self.refreshing.lock().map_err(|_| Failure::Poisoned)?;
        if owner == Some(std::thread::current().id()) {
            return Err(Failure::Reentrant);
        }
        Ok(())
    }

    fn lock(&self) -> Result<MutexGuard<'_, CoreStore>, Failure> {
        self.check_reentrance()?;
        self.inner.lock().map_err(|_| Failure::Poisoned)
    }

    /// Runs `f` on the store with the GIL released (lock waits and file IO happen there).
    fn with_store<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut CoreStore) -> Result<T, Failure> + Send,
    ) -> PyResult<T> {
        guarded(py, || {
            py.allow_threads(|| {
                let mut store = self.lock()?;
                f(&mut store)
            })
            .map_err(|e| e.into_py(py))
        })
    }

    /// `handle` on a JSON value through the store.
    fn call(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
        input: Value,
    ) -> PyResult<PyObject> {
        let now = clock(py, now)?;
        let output: Output = self.with_store(py, |store| Ok(store.handle_value(now, input)?))?;
        out(py, serde_json::to_value(&output))
    }

    fn call_fields(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
        kind: &str,
        fields: Vec<(&str, Value)>,
    ) -> PyResult<PyObject> {
        self.call(py, now, input_of(kind, fields))
    }
    /// The hot path: a typed input through the store, the output built as a `dict`
    /// directly (as `Registry`'s).
    fn typed(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
        input: Input,
    ) -> PyResult<PyObject> {
        let now = clock(py, now)?;
        let output: Output = self.with_store(py, |store| Ok(store.handle(now, input)?))?;
        crate::out::output(py, output)
    }
}

/// A serialised output -> Python object.
fn out(py: Python<'_>, value: serde_json::Result<Value>) -> PyResult<PyObject> {
    let value = value.map_err(|e| errors::internal(py, &e.to_string()))?;
    Ok(to_py(py, &value)?.unbind())
}

/// The dict handed to `refresh_fn`: the shape of `Registry.credential` (secrets included).
fn credential_value(credential: &Credential) -> Result<Value, Failure> {
    serde_json::to_value(CredentialOut::from(credential.clone())).map_err(|e| {
        Failure::Core(credpool_core::Error::new(
            ErrorCode::Internal,
            format!("cannot serialise the credential: {e}"),
        ))
    })
}

/// Calls `refresh_fn(credential)` (GIL held) and parses its result as a `RefreshOutcome`,
/// through core's `refresh_result` input parser (whose errors never echo input values).
fn run_refresh_fn(
    py: Python<'_>,
    refresh_fn: &Py<PyAny>,
    credential: &Value,
    (pool, entry_id, generation): (&str, &str, u64),
) -> PyResult<RefreshOutcome> {
    let arg = to_py(py, credential)?;
    let result = refresh_fn.bind(py).call1((arg,))?;
    let result = to_value(py, &result)?;
    let input = json!({
        "type": "refresh_result",
        "pool": pool,
        "entry_id": entry_id,
        "generation": generation,
        "result": result,
    });
    match parse_input(input) {
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
fn parse_timeout(py: Python<'_>, name: &str, seconds: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(seconds).map_err(|_| {
        errors::make(
            py,
            "invalid_input",
            &format!("{name} must be a finite, non-negative number of seconds"),
        )
    })
}

/// Opens the store at `location` (a `redis://` URL, or a file path; `None`: the default
/// file).
fn open_store(
    location: Option<PathBuf>,
    options: StoreOptions,
) -> credpool_core::Result<CoreStore> {
    let Some(location) = location else {
        return CoreStore::open_default(options);
    };
    match location.to_str() {
        Some(text) if is_redis_location(text) => CoreStore::open(text, options),
        // A path (possibly not UTF-8): opened as given.
        _ => CoreFileStore::open(location, options).map(CoreStore::File),
    }
}

#[pymethods]
impl FileStore {
    /// Opens the store at `location`: a `redis://` / `rediss://` URL
    /// (`redis://[user:password@]host[:port][/db][?namespace=NAME]`) opens the Redis
    /// store (unreachable: `StoreIOError`, code `io`); anything else is a file path
    /// (default: `$CREDPOOL_HOME/pools.json`, else `$XDG_CONFIG_HOME/credpool/pools.json`,
    /// else `~/.config/credpool/pools.json`). The file is created by the first write; an
    /// invalid file raises and is left untouched. `durable` concerns files only;
    /// `namespace`, `connect_timeout`, `io_timeout`, `refresh_lease` and
    /// `reconnect_interval` (seconds) concern Redis only.
    #[staticmethod]
    #[pyo3(signature = (
        location=None, *, writer=None, seed=None, lock_timeout=10.0, durable=true,
        namespace=None, connect_timeout=2.0, io_timeout=2.0, refresh_lease=30.0,
        reconnect_interval=1.0,
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
    ) -> PyResult<Self> {
        let Options { writer, seed } = registry_options(py, writer, seed)?;
        let mut options = StoreOptions::new(writer, seed);
        options.lock_timeout = parse_timeout(py, "lock_timeout", lock_timeout)?;
        options.durable = durable;
        options.namespace = namespace;
        options.connect_timeout = parse_timeout(py, "connect_timeout", connect_timeout)?;
        options.io_timeout = parse_timeout(py, "io_timeout", io_timeout)?;
        options.refresh_lease = parse_timeout(py, "refresh_lease", refresh_lease)?;
        options.reconnect_interval = parse_timeout(py, "reconnect_interval", reconnect_interval)?;
        let store = guarded(py, || {
            py.allow_threads(|| open_store(location, options))
                .map_err(|e| errors::from_core(py, &e))
        })?;
        Ok(Self {
            path: store.path().map(ToOwned::to_owned),
            location: store.location(),
            writer: store.registry().writer().to_owned(),
            inner: Mutex::new(store),
            refreshing: Mutex::new(None),
        })
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new path.
    #[staticmethod]
    fn move_aside(py: Python<'_>, path: PathBuf) -> PyResult<String> {
        guarded(py, || {
            py.allow_threads(|| CoreFileStore::move_aside(&path))
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(|e| errors::from_core(py, &e))
        })
    }

    /// The store file (`None` for a Redis store).
    #[getter]
    fn path(&self) -> Option<String> {
        self.path.as_ref().map(|p| p.to_string_lossy().into_owned())
    }

    /// Where the store lives: the file path, or the Redis URL without credentials.
    #[getter]
    fn location(&self) -> String {
        self.location.clone()
    }

    /// The writer id (never a secret).
    #[getter]
    fn writer(&self) -> String {
        self.writer.clone()
    }

    /// Merges in what other processes wrote since the last look; whether anything new was
    /// merged.
    fn reload(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_store(py, |store| Ok(store.reload()?))
    }

    /// Whether changes wait to reach Redis (decided while it was unreachable). Always
    /// false for a file store, which never queues.
    fn has_pending(&self, py: Python<'_>) -> PyResult<bool> {
        self.with_store(py, |store| Ok(store.has_pending()))
    }

    /// Writes the changes queued while Redis was unreachable; raises `StoreIOError` (`io`)
    /// when Redis still cannot be reached (they stay queued). A no-op for a file store.
    /// Call it before the process exits so nothing stays only in memory.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_store(py, |store| Ok(store.flush()?))
    }

    /// The single-flight OAuth refresh a `refresh` decision asks for.
    ///
    /// Takes the store lock (the file lock, or the entry's Redis refresh lock) and merges
    /// what others wrote. If another process already rotated the token, adopts it without
    /// calling `refresh_fn`. Otherwise confirms, right before the refresh token is used,
    /// that the lock still holds (a Redis lock whose lease ran out is retaken, or the
    /// token rotated meanwhile adopted), then calls `refresh_fn(credential)` (the dict
    /// `credential()` returns, refresh token included) while holding the lock, and
    /// records what it returns: `{"type": "refreshed",
    /// "access_token", "refresh_token"?, "expires_at"?}`, `{"type": "failed", "terminal"?,
    /// ...}` or `{"type": "adopted"}`. If `refresh_fn` raises, the lock is released with
    /// nothing changed and the exception propagates. Returns the decision. Redis
    /// unreachable: `StoreIOError` (`io`) before `refresh_fn` runs (a refresh never
    /// proceeds without the lock).
    ///
    /// Other threads using this `FileStore` (and other processes using the file) wait
    /// while `refresh_fn` runs; `refresh_fn` must not call this `FileStore` itself.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (pool, entry_id, generation, refresh_fn, lease_id=None, now=None))]
    fn refresh(
        &self,
        py: Python<'_>,
        pool: String,
        entry_id: String,
        generation: u64,
        refresh_fn: &Bound<'_, PyAny>,
        lease_id: Option<u64>,
        now: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let fixed_now = match now {
            Some(n) if !n.is_none() => Some(clock(py, Some(n))?),
            _ => None,
        };
        let start_now = match fixed_now {
            Some(n) => n,
            None => clock(py, None)?,
        };
        if !refresh_fn.is_callable() {
            return Err(errors::make(
                py,
                "invalid_input",
                "refresh_fn must be callable",
            ));
        }
        let refresh_fn: Py<PyAny> = refresh_fn.clone().unbind();
        let decision: Decision = guarded(py, || {
            py.allow_threads(|| {
                let (pool_name, entry_name) = (pool, entry_id);
                let pool = PoolKey::parse(&pool_name)?;
                let entry_id = EntryId::parse(&entry_name)?;
                let mut store = self.lock()?;
                let ticket = match store.begin_refresh(
                    start_now,
                    &pool,
                    &entry_id,
                    generation,
                    lease_id.map(LeaseId),
                )? {
                    RefreshStart::Adopted(decision) => return Ok(decision),
                    RefreshStart::Needed(ticket) => ticket,
                };
                // Right before the refresh token is used: the lock must still be held.
                let ticket = match store.confirm_refresh(start_now, ticket)? {
                    RefreshStart::Adopted(decision) => return Ok(decision),
                    RefreshStart::Needed(ticket) => ticket,
                };
                let credential = credential_value(ticket.credential())?;
                // The host's refresh runs with the GIL held, under both locks.
                *self.refreshing.lock().map_err(|_| Failure::Poisoned)? =
                    Some(std::thread::current().id());
                let called = Python::with_gil(|py| -> PyResult<(RefreshOutcome, Millis)> {
                    let outcome = run_refresh_fn(
                        py,
                        &refresh_fn,
                        &credential,
                        (&pool_name, &entry_name, generation),
                    )?;
                    let finish_now = match fixed_now {
                        Some(n) => n,
                        None => clock(py, None)?,
                    };
                    Ok((outcome, finish_now))
                });
                if let Ok(mut owner) = self.refreshing.lock() {
                    *owner = None;
                }
                match called {
                    // Dropping the ticket releases the lock: nothing changed.
                    Err(e) => {
                        drop(ticket);
                        Err(Failure::Py(e))
                    }
                    Ok((outcome, finish_now)) => {
                        Ok(store.finish_refresh(finish_now, ticket, outcome)?)
                    }
                }
            })
            .map_err(|e: Failure| e.into_py(py))
        })?;
        out(py, serde_json::to_value(&decision))
    }

    /// This store bound to one pool: a `credpool.StorePool` (a `CredentialPool` whose
    /// refreshes go through [`FileStore::refresh`]).
    #[pyo3(signature = (key, *, refresh=None, clock=None))]
    fn pool(
        slf: &Bound<'_, Self>,
        key: String,
        refresh: Option<&Bound<'_, PyAny>>,
        clock: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<PyObject> {
        let py = slf.py();
        let class = py.import("credpool._store")?.getattr("StorePool")?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("refresh", refresh)?;
        kwargs.set_item("clock", clock)?;
        Ok(class.call((slf, key), Some(&kwargs))?.unbind())
    }

    fn __repr__(&self) -> String {
        format!(
            "<credpool.FileStore location={:?} writer={:?}>",
            self.location, self.writer
        )
    }
}

methods::wire_methods!(FileStore);
