//! Errors: misuse and bad input only. "No key usable now" is a decision, never an error.

use serde::{Deserialize, Serialize};

/// Stable, snake_case error codes: API, designed to change rarely or never. Messages may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The input is not of the expected shape (wrong type, missing or unknown field).
    InvalidInput,
    /// A clock value is not a non-negative integer of milliseconds within 2^53.
    InvalidClock,
    /// A pool key is empty or malformed.
    InvalidPoolKey,
    /// No pool with that key.
    UnknownPool,
    /// No entry with that id in the pool.
    UnknownEntry,
    /// No open lease with that id (never issued, or already settled).
    UnknownLease,
    /// No open call with that id (never started, or already finished).
    UnknownCall,
    /// An entry with that id already exists (or was removed and may not come back).
    DuplicateEntry,
    /// An entry's fields are invalid (bad auth type, empty secret, ...).
    InvalidEntry,
    /// A policy field is out of range.
    InvalidPolicy,
    /// A state document is malformed.
    InvalidState,
    /// A state document's `schema_version` is newer or unknown.
    UnsupportedSchemaVersion,
    /// The document is not a credpool (or Hermes) document at all.
    ForeignDocument,
    /// A refresh result names a token generation that is no longer current.
    StaleRefresh,
    /// The entry cannot be refreshed (not OAuth, or no refresh token).
    NotRefreshable,
    /// An input exceeds a documented limit.
    TooLarge,
    /// No entry can serve the request now. Core answers this with a `wait` or `fail`
    /// decision, never an error; the bindings' helpers raise it (with that decision
    /// attached) when they cannot follow the decision for the caller.
    NoCredential,
    /// The store's lock file stayed locked by another process past the timeout
    /// (raised by `credpool-store`, never by core).
    LockTimeout,
    /// Reading or writing the store's file failed (raised by `credpool-store`, never by core).
    Io,
    /// An internal invariant failed; the registry is left as it was.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::InvalidInput,
        Self::InvalidClock,
        Self::InvalidPoolKey,
        Self::UnknownPool,
        Self::UnknownEntry,
        Self::UnknownLease,
        Self::UnknownCall,
        Self::DuplicateEntry,
        Self::InvalidEntry,
        Self::InvalidPolicy,
        Self::InvalidState,
        Self::UnsupportedSchemaVersion,
        Self::ForeignDocument,
        Self::StaleRefresh,
        Self::NotRefreshable,
        Self::TooLarge,
        Self::NoCredential,
        Self::LockTimeout,
        Self::Io,
        Self::Internal,
    ];

    /// The snake_case code string.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid_input",
            Self::InvalidClock => "invalid_clock",
            Self::InvalidPoolKey => "invalid_pool_key",
            Self::UnknownPool => "unknown_pool",
            Self::UnknownEntry => "unknown_entry",
            Self::UnknownLease => "unknown_lease",
            Self::UnknownCall => "unknown_call",
            Self::DuplicateEntry => "duplicate_entry",
            Self::InvalidEntry => "invalid_entry",
            Self::InvalidPolicy => "invalid_policy",
            Self::InvalidState => "invalid_state",
            Self::UnsupportedSchemaVersion => "unsupported_schema_version",
            Self::ForeignDocument => "foreign_document",
            Self::StaleRefresh => "stale_refresh",
            Self::NotRefreshable => "not_refreshable",
            Self::TooLarge => "too_large",
            Self::NoCredential => "no_credential",
            Self::LockTimeout => "lock_timeout",
            Self::Io => "io",
            Self::Internal => "internal",
        }
    }
}

/// An error from core: a stable [`ErrorCode`] and a human message that never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    code: ErrorCode,
    message: String,
}

impl Error {
    /// A new error with `code` and `message` (the caller guarantees no secret is in it).
    #[must_use]
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// The stable code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub(crate) fn unknown_pool(pool: &str) -> Self {
        Self::new(ErrorCode::UnknownPool, format!("no pool `{}`", clip(pool)))
    }

    pub(crate) fn unknown_entry(pool: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::UnknownEntry,
            format!("no entry `{}` in pool `{}`", clip(id), clip(pool)),
        )
    }
}

/// Result alias for core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Shortens user-provided names quoted in messages (ids, pool keys), never secrets.
pub(crate) fn clip(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_strings() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
