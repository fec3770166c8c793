//! Python bindings of `credpool-core`: convert in, call core, convert out. No policy here.
//!
//! Values cross as JSON (Python's `json` module on one side, `serde_json` on the other),
//! so the wire shapes are exactly core's `wire.rs`. Errors become the exception classes
//! defined in `python/credpool/__init__.py`, each carrying a stable `.code`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;

use credpool_core::{ErrorCode, Millis, Options, Registry as CoreRegistry};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{Map, Value, json};

/// Largest accepted clock: 2^53 ms (the range every runtime represents exactly).
const MAX_CLOCK: u64 = 1 << 53;

/// `FileStore`: the registry persisted in a file shared by processes (credpool-store).
mod methods;
mod store;

mod errors {
    use super::*;

    /// Exception class name for a code (classes live in `credpool/__init__.py`).
    fn class_for(code: &str) -> &'static str {
        match code {
            "invalid_input"
            | "invalid_pool_key"
            | "invalid_entry"
            | "invalid_policy"
            | "invalid_state"
            | "unsupported_schema_version"
            | "foreign_document"
            | "too_large" => "InvalidInputError",
            "invalid_clock" => "InvalidClockError",
            "unknown_pool" => "UnknownPoolError",
            "unknown_entry" => "UnknownEntryError",
            "unknown_lease" => "UnknownLeaseError",
            "duplicate_entry" => "DuplicateEntryError",
            "stale_refresh" | "not_refreshable" => "RefreshError",
            "no_credential" => "NoCredentialError",
            "lock_timeout" => "LockTimeoutError",
            "io" => "StoreIOError",
            _ => "CredpoolError",
        }
    }

    /// A Python exception of the class for `code`, with `.code` set.
    pub(crate) fn make(py: Python<'_>, code: &str, message: &str) -> PyErr {
        let build = || -> PyResult<PyErr> {
            let module = py.import("credpool")?;
            let class = module.getattr(class_for(code))?;
            let exc = class.call1((message,))?;
            exc.setattr("code", code)?;
            Ok(PyErr::from_value(exc))
        };
        build().unwrap_or_else(|e| e)
    }

    pub(crate) fn from_core(py: Python<'_>, e: &credpool_core::Error) -> PyErr {
        make(py, e.code().as_str(), e.message())
    }

    pub(crate) fn internal(py: Python<'_>, message: &str) -> PyErr {
        make(py, ErrorCode::Internal.as_str(), message)
    }
}

/// Test-only (`--features test-panic`): panics on `{"type": "__test_panic"}`, where core
/// would run (inside the registry lock), to show a panic becomes `code="internal"`.
#[cfg(feature = "test-panic")]
fn test_panic(input: &Value) {
    if input.get("type").and_then(Value::as_str) == Some("__test_panic") {
        panic!("credpool test-panic: forced panic");
    }
}

/// Runs `f`, turning a panic into `CredpoolError(code="internal")`.
fn guarded<T>(py: Python<'_>, f: impl FnOnce() -> PyResult<T>) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(errors::internal(py, "internal error (panic caught)")))
}

/// Python object -> JSON value, via `json.dumps` (rejects NaN/inf and non-JSON types).
fn to_value(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let json = py.import("json")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    let text: String = match json.call_method("dumps", (obj,), Some(&kwargs)) {
        Ok(t) => t.extract()?,
        Err(e) => {
            return Err(errors::make(
                py,
                "invalid_input",
                &format!(
                    "input is not JSON-serialisable: {}",
                    e.value(py).get_type().name()?
                ),
            ));
        }
    };
    serde_json::from_str(&text).map_err(|e| {
        errors::make(
            py,
            "invalid_input",
            &format!("input is not valid JSON: {e}"),
        )
    })
}

/// JSON value -> Python object, via `json.loads`.
fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(value).map_err(|e| errors::internal(py, &e.to_string()))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// Validates `now` (an int in 0..=2^53) or reads the wall clock.
fn clock(py: Python<'_>, now: Option<&Bound<'_, PyAny>>) -> PyResult<Millis> {
    let bad = |what: &str| {
        errors::make(
            py,
            "invalid_clock",
            &format!("now must be an integer of epoch ms in 0..=2^53, got {what}"),
        )
    };
    let ms: u64 = match now {
        None => {
            let ns: u128 = py.import("time")?.call_method0("time_ns")?.extract()?;
            u64::try_from(ns / 1_000_000).map_err(|_| bad("a wall clock out of range"))?
        }
        Some(v) => {
            // bool is an int subclass in Python; refuse it, and refuse floats outright.
            if v.is_instance_of::<pyo3::types::PyBool>()
                || !v.is_instance_of::<pyo3::types::PyInt>()
            {
                return Err(bad(&v.get_type().name()?.to_string()));
            }
            match v.extract::<i128>() {
                Ok(n) if (0..=i128::from(MAX_CLOCK)).contains(&n) => n as u64,
                Ok(n) => return Err(bad(&n.to_string())),
                Err(_) => return Err(bad("an out-of-range integer")),
            }
        }
    };
    if ms > MAX_CLOCK {
        return Err(bad(&ms.to_string()));
    }
    Ok(Millis(ms))
}

/// A credential registry: every pool of one process. Thread-safe (one internal lock).
#[pyclass(frozen, module = "credpool._credpool")]
struct Registry {
    inner: Mutex<CoreRegistry>,
}

impl Registry {
    /// `handle` on a JSON value: lock, call core, convert out.
    fn call(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
        input: Value,
    ) -> PyResult<PyObject> {
        let now = clock(py, now)?;
        guarded(py, || {
            // Lock with the GIL released: a thread holding the lock never waits for the GIL.
            let result = py.allow_threads(|| {
                self.inner
                    .lock()
                    .map(|mut registry| {
                        #[cfg(feature = "test-panic")]
                        test_panic(&input);
                        registry.handle_value(now, input)
                    })
                    .map_err(|_| ())
            });
            let result = result.map_err(|_| errors::internal(py, "registry lock poisoned"))?;
            match result {
                Ok(output) => {
                    let value = serde_json::to_value(&output)
                        .map_err(|e| errors::internal(py, &e.to_string()))?;
                    Ok(to_py(py, &value)?.unbind())
                }
                Err(e) => Err(errors::from_core(py, &e)),
            }
        })
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
}

/// A wire input of `kind` from its fields (null fields left out).
fn input_of(kind: &str, fields: Vec<(&str, Value)>) -> Value {
    let mut map = Map::new();
    map.insert("type".into(), Value::String(kind.into()));
    for (k, v) in fields {
        if !v.is_null() {
            map.insert(k.into(), v);
        }
    }
    Value::Object(map)
}

/// The writer and seed a registry starts with: the caller's, else random ones (a 12-hex
/// writer id, a seed from OS randomness). `seed` must be an int in 0..2^64 (not a bool).
fn registry_options(
    py: Python<'_>,
    writer: Option<String>,
    seed: Option<&Bound<'_, PyAny>>,
) -> PyResult<Options> {
    let random =
        || random_u64().ok_or_else(|| PyRuntimeError::new_err("OS randomness unavailable"));
    let seed = match seed {
        Some(s) if !s.is_none() => s
            .extract::<u64>()
            .ok()
            .filter(|_| !s.is_instance_of::<pyo3::types::PyBool>())
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

fn opt(py: Python<'_>, v: Option<&Bound<'_, PyAny>>) -> PyResult<Value> {
    match v {
        None => Ok(Value::Null),
        Some(v) if v.is_none() => Ok(Value::Null),
        Some(v) => to_value(py, v),
    }
}

fn random_u64() -> Option<u64> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).ok()?;
    Some(u64::from_le_bytes(bytes))
}

#[pymethods]
impl Registry {
    #[new]
    #[pyo3(signature = (writer=None, seed=None, state=None))]
    fn new(
        py: Python<'_>,
        writer: Option<String>,
        seed: Option<&Bound<'_, PyAny>>,
        state: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let options = registry_options(py, writer, seed)?;
        let state = opt(py, state)?;
        let registry = guarded(py, || {
            if state.is_null() {
                CoreRegistry::new(options)
            } else {
                CoreRegistry::from_state(&state, options)
            }
            .map_err(|e| errors::from_core(py, &e))
        })?;
        Ok(Self {
            inner: Mutex::new(registry),
        })
    }

    /// The writer id (never a secret).
    #[getter]
    fn writer(&self) -> PyResult<String> {
        let registry = self
            .inner
            .lock()
            .map_err(|_| PyRuntimeError::new_err("registry lock poisoned"))?;
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
fn import_hermes(
    py: Python<'_>,
    auth_json: &Bound<'_, PyAny>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyObject> {
    let now = clock(py, now)?;
    let auth = to_value(py, auth_json)?;
    let state = guarded(py, || {
        credpool_core::import_hermes(&auth, now).map_err(|e| errors::from_core(py, &e))
    })?;
    let state = serde_json::to_value(&state).map_err(|e| errors::internal(py, &e.to_string()))?;
    Ok(to_py(py, &state)?.unbind())
}

/// Writes a Hermes `auth.json` dict (`version: 1` and `credential_pool`) from a credpool
/// state document. With `base` (an existing `auth.json`), its other top-level keys are kept
/// and only `credential_pool` is replaced. Borrowed sources carry no secret, only
/// `secret_fingerprint`; removed entries are left out.
#[pyfunction]
#[pyo3(signature = (state, base=None, now=None))]
fn export_hermes(
    py: Python<'_>,
    state: &Bound<'_, PyAny>,
    base: Option<&Bound<'_, PyAny>>,
    now: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyObject> {
    let now = clock(py, now)?;
    let state = to_value(py, state)?;
    let base = opt(py, base)?;
    let auth = guarded(py, || {
        let base = (!base.is_null()).then_some(&base);
        credpool_core::export_hermes(&state, base, now).map_err(|e| errors::from_core(py, &e))
    })?;
    Ok(to_py(py, &auth)?.unbind())
}

#[pymodule]
fn _credpool(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Registry>()?;
    m.add_class::<store::FileStore>()?;
    m.add_function(wrap_pyfunction!(error_codes, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(import_hermes, m)?)?;
    m.add_function(wrap_pyfunction!(export_hermes, m)?)?;
    Ok(())
}
