//! Core errors as the exception classes of `credpool/__init__.py`, each with `.code`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use credpool_core::{Error, ErrorCode};
use pyo3::prelude::*;

/// Exception class name for a code.
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
        let class = py.import("credpool")?.getattr(class_for(code))?;
        let exc = class.call1((message,))?;
        exc.setattr("code", code)?;
        Ok(PyErr::from_value(exc))
    };
    build().unwrap_or_else(|e| e)
}

/// A core error as its Python exception (core's messages never carry secrets).
pub(crate) fn from_core(py: Python<'_>, e: &Error) -> PyErr {
    make(py, e.code().as_str(), e.message())
}

/// `CredpoolError(code="internal")`.
pub(crate) fn internal(py: Python<'_>, message: &str) -> PyErr {
    make(py, ErrorCode::Internal.as_str(), message)
}

/// A core `internal` error (for places without the GIL).
pub(crate) fn core_internal(message: &str) -> Error {
    Error::new(ErrorCode::Internal, message)
}

/// Runs `f`, turning a panic into an `internal` error: nothing unwinds across FFI.
pub(crate) fn guarded<T, E: From<Error>>(f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(core_internal("internal error (panic caught)").into()))
}

/// A core result in Python.
pub(crate) fn check<T>(py: Python<'_>, result: credpool_core::Result<T>) -> PyResult<T> {
    result.map_err(|e| from_core(py, &e))
}

/// Test-only (`--features test-panic`; a no-op without it): panics on `{"type":
/// "__test_panic"}` where core would run (inside the registry or store lock), to show a
/// panic becomes `internal`.
pub(crate) fn test_panic(_input: &serde_json::Value) {
    #[cfg(feature = "test-panic")]
    if _input.get("type").and_then(serde_json::Value::as_str) == Some("__test_panic") {
        panic!("credpool test-panic: forced panic");
    }
}
