//! Python bindings of `credpool-core`: convert in, call core, convert out. No policy here.
//!
//! Values cross as JSON (Python's `json` module on one side, `serde_json` on the other),
//! so the wire shapes are exactly core's `wire.rs`. Errors become the exception classes
//! defined in `python/credpool/__init__.py`, each carrying a stable `.code`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, TryLockError};

use credpool_core::{ErrorCode, Input, Millis, Options, Registry as CoreRegistry};
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
            "unknown_call" => "UnknownCallError",
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

/// Core outputs of the hot path as Python objects, built directly: the same keys in the same
/// order as core's serde form (what `json.loads` gave before), optional fields absent or
/// `None` exactly as there.
mod out {
    use credpool_core::CredentialOut;
    use credpool_core::{Decision, HintUsed, Output, OutputBody, Reason, Reply};
    use pyo3::intern;

    use super::*;

    /// `output` as a `dict`; replies off the hot path go through JSON as before.
    pub(crate) fn output(py: Python<'_>, output: Output) -> PyResult<PyObject> {
        let Output { body, changed } = output;
        let dict = PyDict::new(py);
        match body {
            OutputBody::Decision(decision) => self::decision(py, &dict, &decision)?,
            OutputBody::Reply(Reply::Released { lease_id }) => {
                dict.set_item(intern!(py, "type"), intern!(py, "released"))?;
                dict.set_item(intern!(py, "lease_id"), lease_id.0)?;
            }
            OutputBody::Reply(Reply::Credential(credential)) => {
                self::credential(py, &dict, &credential)?;
            }
            body => {
                let output = Output { body, changed };
                let value = serde_json::to_value(&output)
                    .map_err(|e| errors::internal(py, &e.to_string()))?;
                return Ok(to_py(py, &value)?.unbind());
            }
        }
        dict.set_item(intern!(py, "changed"), changed)?;
        Ok(dict.into_any().unbind())
    }

    /// A unit enum (reason, hint source) by its serde name.
    fn name(py: Python<'_>, value: serde_json::Result<Value>) -> PyResult<String> {
        match value {
            Ok(Value::String(name)) => Ok(name),
            _ => Err(errors::internal(py, "cannot name an enum value")),
        }
    }

    fn reason(py: Python<'_>, dict: &Bound<'_, PyDict>, reason: Reason) -> PyResult<()> {
        let name = name(py, serde_json::to_value(reason))?;
        dict.set_item(intern!(py, "reason"), name)
    }

    fn hint(py: Python<'_>, dict: &Bound<'_, PyDict>, hint: Option<&HintUsed>) -> PyResult<()> {
        let Some(hint) = hint else { return Ok(()) };
        let inner = PyDict::new(py);
        let source = name(py, serde_json::to_value(hint.source))?;
        inner.set_item(intern!(py, "source"), source)?;
        inner.set_item(intern!(py, "at"), hint.at.0)?;
        inner.set_item(intern!(py, "clamped"), hint.clamped)?;
        dict.set_item(intern!(py, "hint"), inner)
    }

    /// A [`Decision`] in its serde order (`type` first; optional fields absent when `None`,
    /// except `primary_back_at`, which is `None`).
    fn decision(py: Python<'_>, dict: &Bound<'_, PyDict>, decision: &Decision) -> PyResult<()> {
        let kind = intern!(py, "type");
        match decision {
            Decision::Use {
                entry_id,
                lease_id,
                reason,
                hint,
            } => {
                dict.set_item(kind, intern!(py, "use"))?;
                dict.set_item(intern!(py, "entry_id"), entry_id.as_str())?;
                dict.set_item(intern!(py, "lease_id"), lease_id.0)?;
                if let Some(r) = reason {
                    self::reason(py, dict, *r)?;
                }
                self::hint(py, dict, hint.as_ref())?;
            }
            Decision::RetrySame {
                entry_id,
                lease_id,
                delay_ms,
                reason,
                hint,
            } => {
                dict.set_item(kind, intern!(py, "retry_same"))?;
                dict.set_item(intern!(py, "entry_id"), entry_id.as_str())?;
                dict.set_item(intern!(py, "lease_id"), lease_id.0)?;
                dict.set_item(intern!(py, "delay_ms"), *delay_ms)?;
                self::reason(py, dict, *reason)?;
                self::hint(py, dict, hint.as_ref())?;
            }
            Decision::Refresh {
                entry_id,
                lease_id,
                generation,
                reason,
            } => {
                dict.set_item(kind, intern!(py, "refresh"))?;
                dict.set_item(intern!(py, "entry_id"), entry_id.as_str())?;
                dict.set_item(intern!(py, "lease_id"), lease_id.0)?;
                dict.set_item(intern!(py, "generation"), *generation)?;
                self::reason(py, dict, *reason)?;
            }
            Decision::Fallback {
                pool,
                model,
                reason,
                primary_back_at,
            } => {
                dict.set_item(kind, intern!(py, "fallback"))?;
                dict.set_item(intern!(py, "pool"), pool.as_str())?;
                if let Some(model) = model {
                    dict.set_item(intern!(py, "model"), model)?;
                }
                self::reason(py, dict, *reason)?;
                dict.set_item(
                    intern!(py, "primary_back_at"),
                    primary_back_at.map(|at| at.0),
                )?;
            }
            Decision::Wait {
                until,
                reason,
                hint,
            } => {
                dict.set_item(kind, intern!(py, "wait"))?;
                dict.set_item(intern!(py, "until"), until.0)?;
                self::reason(py, dict, *reason)?;
                self::hint(py, dict, hint.as_ref())?;
            }
            Decision::Fail { reason, status } => {
                dict.set_item(kind, intern!(py, "fail"))?;
                self::reason(py, dict, *reason)?;
                if let Some(status) = status {
                    dict.set_item(intern!(py, "status"), *status)?;
                }
            }
            Decision::Done => dict.set_item(kind, intern!(py, "done"))?,
            _ => return Err(errors::internal(py, "unknown decision")),
        }
        Ok(())
    }

    /// `reveal`'s answer: `access_token` is `None` when absent, the other optional fields
    /// are left out.
    fn credential(
        py: Python<'_>,
        dict: &Bound<'_, PyDict>,
        credential: &CredentialOut,
    ) -> PyResult<()> {
        dict.set_item(intern!(py, "type"), intern!(py, "credential"))?;
        dict.set_item(intern!(py, "entry_id"), credential.entry_id.as_str())?;
        let token = credential.access_token.as_ref().map(|t| t.expose());
        dict.set_item(intern!(py, "access_token"), token)?;
        if let Some(token) = &credential.refresh_token {
            dict.set_item(intern!(py, "refresh_token"), token.expose())?;
        }
        if let Some(at) = credential.expires_at {
            dict.set_item(intern!(py, "expires_at"), at.0)?;
        }
        if let Some(url) = &credential.base_url {
            dict.set_item(intern!(py, "base_url"), url)?;
        }
        dict.set_item(intern!(py, "generation"), credential.generation)
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
            // The common case first: a small non-negative int (`u64` extraction is one C
            // call; `i128` goes through Python-level shifts under abi3).
            if let Ok(n) = v.extract::<u64>()
                && n <= MAX_CLOCK
            {
                return Ok(Millis(n));
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

    /// The hot path: a typed input to core's [`CoreRegistry::handle`], the output built as a
    /// `dict` directly. The lock is taken with the GIL held when it is free (core only runs
    /// Rust, so no thread then waits for the GIL while holding the lock), else with the GIL
    /// released as in [`Registry::call`].
    fn typed(
        &self,
        py: Python<'_>,
        now: Option<&Bound<'_, PyAny>>,
        input: Input,
    ) -> PyResult<PyObject> {
        let now = clock(py, now)?;
        guarded(py, || {
            let result = match self.inner.try_lock() {
                Ok(mut registry) => Ok(registry.handle(now, input)),
                Err(TryLockError::WouldBlock) => py.allow_threads(|| {
                    self.inner
                        .lock()
                        .map(|mut registry| registry.handle(now, input))
                        .map_err(|_| ())
                }),
                Err(TryLockError::Poisoned(_)) => Err(()),
            };
            let result = result.map_err(|_| errors::internal(py, "registry lock poisoned"))?;
            match result {
                Ok(output) => out::output(py, output),
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

/// The items of an exact `dict` whose keys and values are all `str`, in order (what
/// `json.dumps` then core's header reader would make of it); `None` for any other object.
fn str_pairs(obj: &Bound<'_, PyAny>) -> Option<Vec<(String, String)>> {
    let dict = obj.downcast_exact::<PyDict>().ok()?;
    let mut pairs = Vec::with_capacity(dict.len());
    for (key, value) in dict.iter() {
        if !key.is_exact_instance_of::<pyo3::types::PyString>()
            || !value.is_exact_instance_of::<pyo3::types::PyString>()
        {
            return None;
        }
        pairs.push((key.extract().ok()?, value.extract().ok()?));
    }
    Some(pairs)
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
