//! Errors of the `credpool` command and the exit code each one maps to.
//!
//! Every failure is reported as ONE line on stderr, `credpool: <message> [<code>]`, and a
//! non-zero exit status (see [`Exit`]). The store never writes on a failed command: core
//! validates every input before it mutates, and the store writes only after a successful
//! input, so a failing command leaves the store file byte for byte as it was.

use std::fmt;
use std::process::ExitCode;

use credpool_core::ErrorCode;

/// The exit statuses of `credpool` (documented in `--help` and `cli/README.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: a runtime failure: IO (unreadable/unwritable file), an internal error.
    Runtime = 1,
    /// 2: a usage error: bad arguments, unknown provider or target, ambiguous label,
    /// invalid value; fix the command line.
    Usage = 2,
    /// 3: the store stayed locked by another process past `--lock-timeout-ms`; safe to retry.
    Locked = 3,
    /// 4: a data file (the store, or a file given to `seed`/`import-hermes`/`export-hermes`)
    /// is not valid: corrupt JSON, a foreign document, a newer schema, too large. It was
    /// left untouched; a human must look at it.
    BadData = 4,
}

impl Exit {
    /// The process exit status.
    pub(crate) fn code(self) -> ExitCode {
        ExitCode::from(self as u8)
    }
}

/// A failed command: a stable code, a one-line message (never a secret) and its exit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CliError {
    /// Stable snake_case code shown in brackets (core's codes, plus the CLI's own).
    pub(crate) code: String,
    /// Human message.
    pub(crate) message: String,
    /// Exit status.
    pub(crate) exit: Exit,
}

/// Result alias of the CLI.
pub(crate) type CliResult<T> = Result<T, CliError>;

impl CliError {
    /// A usage error (exit 2) with a CLI code.
    pub(crate) fn usage(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            exit: Exit::Usage,
        }
    }

    /// A runtime error (exit 1) with a CLI code.
    pub(crate) fn runtime(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
            exit: Exit::Runtime,
        }
    }

    /// An IO failure on `path` while doing `what`.
    pub(crate) fn io(what: &str, path: &std::path::Path, error: &std::io::Error) -> Self {
        Self::runtime(
            ErrorCode::Io.as_str(),
            format!("cannot {what} {}: {error}", path.display()),
        )
    }

    /// A data file that is not valid JSON (exit 4).
    pub(crate) fn bad_json(path: &std::path::Path, error: &serde_json::Error) -> Self {
        // serde_json's message names line and column, never the offending text.
        Self {
            code: ErrorCode::InvalidState.as_str().to_owned(),
            message: format!("{} is not valid JSON ({error})", path.display()),
            exit: Exit::BadData,
        }
    }

    /// Prefixes the message with where the error happened.
    pub(crate) fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// Prints the one-line report to stderr and returns the exit status.
    pub(crate) fn report(&self) -> ExitCode {
        eprintln!("{self}");
        self.exit.code()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "credpool: {} [{}]", one_line(&self.message), self.code)
    }
}

impl From<credpool_core::Error> for CliError {
    fn from(error: credpool_core::Error) -> Self {
        let code = error.code();
        Self {
            code: code.as_str().to_owned(),
            message: error.message().to_owned(),
            exit: exit_for(code),
        }
    }
}

/// The exit status for a core or store error code.
pub(crate) fn exit_for(code: ErrorCode) -> Exit {
    match code {
        ErrorCode::LockTimeout => Exit::Locked,
        ErrorCode::InvalidState
        | ErrorCode::UnsupportedSchemaVersion
        | ErrorCode::ForeignDocument
        | ErrorCode::TooLarge => Exit::BadData,
        ErrorCode::Io | ErrorCode::Internal | ErrorCode::NoCredential => Exit::Runtime,
        ErrorCode::InvalidInput
        | ErrorCode::InvalidClock
        | ErrorCode::InvalidPoolKey
        | ErrorCode::UnknownPool
        | ErrorCode::UnknownEntry
        | ErrorCode::UnknownLease
        | ErrorCode::UnknownCall
        | ErrorCode::DuplicateEntry
        | ErrorCode::InvalidEntry
        | ErrorCode::InvalidPolicy
        | ErrorCode::StaleRefresh
        | ErrorCode::NotRefreshable => Exit::Usage,
        // A code newer than this CLI: a failure it cannot classify.
        _ => Exit::Runtime,
    }
}

/// `text` on one line: line breaks and other control characters become spaces.
pub(crate) fn one_line(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_one_line() {
        let e = CliError::usage("x", "a\nb\r\n  c");
        assert_eq!(e.to_string(), "credpool: a b c [x]");
    }

    #[test]
    fn codes_map_to_exits() {
        assert_eq!(exit_for(ErrorCode::LockTimeout), Exit::Locked);
        assert_eq!(exit_for(ErrorCode::InvalidState), Exit::BadData);
        assert_eq!(exit_for(ErrorCode::UnknownEntry), Exit::Usage);
        assert_eq!(exit_for(ErrorCode::Io), Exit::Runtime);
    }
}
