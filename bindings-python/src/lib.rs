//! Python bindings of `credpool-core`: convert in, call core, convert out. No policy here.
//!
//! Every call takes one path: its arguments become one of core's wire inputs through
//! pyo3's conversion traits (`convert.rs`), core applies it (`Registry::handle`, or
//! `handle_value` for JSON), and its output becomes Python objects through serde
//! (`pythonize`). `handle(input)` passes any dict through core's wire reader; a method
//! names its input's fields, or, for the hot four, builds core's typed input
//! (`methods.rs`). Errors become the exception classes defined in
//! `python/credpool/__init__.py`, each carrying a stable `.code`; a panic becomes
//! `CredpoolError(code="internal")`, never an abort.

use std::sync::{Mutex, TryLockError};

use credpool_core::{ErrorCode, Input, Options, Registry as CoreRegistry};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyList};
use serde_json::Value;

use convert::{Arg, Clock, Json, to_py};
use errors::{check, guarded};
use methods::wire;

mod convert;
mod errors;
mod methods;
/// `Store`: the registry persisted in an SQLite database shared by processes, or in Redis.
mod store;

/// What every wire method returns: core's output as a `dict`.
type Out<'py> = PyResult<Bound<'py, PyAny>>;

/// One input for core: JSON for core's wire reader (`handle`'s dict, or the fields a
/// method names), or core's typed `Input` (the hot methods, whose fields pyo3 converts to
/// core's types directly: no JSON on the hot path).
enum Wire {
    Json(Value),
    Typed(Input),
}

impl From<Value> for Wire {
    fn from(value: Value) -> Self {
        Self::Json(value)
    }
}

impl From<Input> for Wire {
    fn from(input: Input) -> Self {
        Self::Typed(input)
    }
}

/// A credential registry: every pool of one process. Thread-safe (one internal lock).
#[pyclass(frozen, module = "credpool._credpool")]
struct Registry {
    inner: Mutex<CoreRegistry>,
}

impl Registry {
    /// Applies one wire input: lock, call core, convert out. A typed (hot) input takes the
    /// lock with the GIL held when it is free (core then runs briefly, and only Rust: no
    /// thread holding the lock ever waits for the GIL); any other input, or a contended
    /// lock, waits and runs with the GIL released, so other Python threads keep running.
    fn run<'py>(&self, py: Python<'py>, now: Option<Clock>, input: impl Into<Wire>) -> Out<'py> {
        let (now, input) = (convert::now(py, now)?, input.into());
        let hot = matches!(input, Wire::Typed(_));
        let apply = |registry: &mut CoreRegistry| match input {
            Wire::Json(value) => {
                errors::test_panic(&value);
                registry.handle_value(now, value)
            }
            Wire::Typed(input) => registry.handle(now, input),
        };
        let poisoned = || errors::core_internal("registry lock poisoned");
        let output = guarded(|| {
            if hot {
                match self.inner.try_lock() {
                    Ok(mut registry) => return apply(&mut registry),
                    Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
                    Err(TryLockError::WouldBlock) => {}
                }
            }
            py.allow_threads(|| apply(&mut *self.inner.lock().map_err(|_| poisoned())?))
        });
        to_py(py, &check(py, output)?)
    }
}

/// The writer and seed a registry starts with: the caller's, else random ones (a 12-hex
/// writer id, a seed from OS randomness). `seed` must be an int in 0..2^64 (not a bool).
fn registry_options(
    py: Python<'_>,
    writer: Option<String>,
    seed: Option<&Bound<'_, PyAny>>,
) -> PyResult<Options> {
    let random = || {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes)
            .map(|()| u64::from_le_bytes(bytes))
            .map_err(|_| PyRuntimeError::new_err("OS randomness unavailable"))
    };
    let seed = match seed {
        Some(s) if !s.is_none() => s
            .extract::<u64>()
            .ok()
            .filter(|_| !s.is_instance_of::<PyBool>())
            .ok_or_else(|| {
                errors::make(py, "invalid_input", "seed must be an integer in 0..2^64")
            })?,
        _ => random()?,
    };
    let writer = match writer {
        Some(w) => w,
        None => format!("{:012x}", random()? & 0xffff_ffff_ffff),
    };
    Ok(Options { writer, seed })
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (writer=None, seed=None, state=None))]
    fn new(
        py: Python<'_>,
        writer: Option<String>,
        seed: Option<&Bound<'_, PyAny>>,
        state: Option<Json>,
    ) -> PyResult<Self> {
        let options = registry_options(py, writer, seed)?;
        let registry = guarded(|| match state {
            Some(Json(state)) if !state.is_null() => CoreRegistry::from_state(&state, options),
            _ => CoreRegistry::new(options),
        });
        Ok(Self {
            inner: Mutex::new(check(py, registry)?),
        })
    }

    /// The writer id (never a secret).
    #[getter]
    fn writer(&self, py: Python<'_>) -> PyResult<String> {
        let registry = self.inner.lock();
        let registry = registry.map_err(|_| errors::internal(py, "registry lock poisoned"))?;
        Ok(registry.writer().to_owned())
    }

    fn __repr__(&self) -> String {
        match self.inner.lock() {
            Ok(r) => format!(
                "<credpool.Registry writer={:?} pools={}>",
                r.writer(),
                r.pools().count()
            ),
            Err(_) => "<credpool.Registry (poisoned)>".to_owned(),
        }
    }
}

methods::wire_methods!(Registry);

/// Every stable error code, in core's declaration order.
#[pyfunction]
fn error_codes(py: Python<'_>) -> PyResult<Bound<'_, PyList>> {
    PyList::new(py, ErrorCode::ALL.iter().map(|c| c.as_str()))
}

/// The providers with a built-in OAuth refresher (pool keys, or an entry's
/// ``extra.oauth_provider``): ``token_request`` builds their refresh requests.
#[pyfunction]
fn oauth_providers() -> Vec<&'static str> {
    credpool_core::oauth_providers()
}

/// The version of credpool-core inside this build.
#[pyfunction]
fn version() -> &'static str {
    credpool_core::VERSION
}

/// Converts the `credential_pool` section of a Hermes `auth.json` (a dict) into a credpool
/// state document for `Registry(state=...)`. Hermes times (epoch seconds) become ms; borrowed
/// sources (`env:*`, `config:*`, ...) keep only their fingerprint; the `providers` singletons
/// are not imported. Raises `invalid_state`, `foreign_document`,
/// `unsupported_schema_version` or `too_large`.
#[pyfunction]
#[pyo3(signature = (auth_json, now=None))]
fn import_hermes<'py>(py: Python<'py>, auth_json: Json, now: Option<Clock>) -> Out<'py> {
    let now = convert::now(py, now)?;
    let state = guarded(|| credpool_core::import_hermes(&auth_json.0, now));
    to_py(py, &check(py, state)?)
}

/// Writes a Hermes `auth.json` dict (`version: 1` and `credential_pool`) from a credpool
/// state document. With `base` (an existing `auth.json`), its other top-level keys are kept
/// and only `credential_pool` is replaced. Borrowed sources carry no secret, only
/// `secret_fingerprint`; removed entries are left out.
#[pyfunction]
#[pyo3(signature = (state, base=None, now=None))]
fn export_hermes<'py>(
    py: Python<'py>,
    state: Json,
    base: Option<Json>,
    now: Option<Clock>,
) -> Out<'py> {
    let now = convert::now(py, now)?;
    let base = base.map(Value::from).filter(|b| !b.is_null());
    let auth = guarded(|| credpool_core::export_hermes(&state.0, base.as_ref(), now));
    to_py(py, &check(py, auth)?)
}

#[pymodule]
fn _credpool(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Registry>()?;
    m.add_class::<store::Store>()?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(oauth_providers, m)?)?;
    m.add_function(wrap_pyfunction!(import_hermes, m)?)?;
    m.add_function(wrap_pyfunction!(export_hermes, m)?)?;
    Ok(())
}
