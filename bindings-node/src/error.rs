//! `credpool_core::Error` → a JS `Error` whose `code` is the stable snake_case code.

use credpool_core::ErrorCode;

/// The `code` property of a thrown JS error.
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A coded JS error.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(Code(code.as_str()), message.into())
}

/// A core error as a JS error (core messages never contain secrets).
pub(crate) fn core_error(e: &credpool_core::Error) -> napi::Error<Code> {
    error(e.code(), e.message())
}
