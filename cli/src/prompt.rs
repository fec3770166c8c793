//! Reading from the user: plain lines, and secrets without echo.
//!
//! On a terminal a secret is read with echo off (`rpassword`, from the controlling
//! terminal); otherwise (a pipe: `printf '%s\n' "$KEY" | credpool add openrouter`) one line
//! is read from stdin. A secret is never printed, logged or put in an error message.

use std::io::{BufRead, IsTerminal, Write};

use crate::exit::{CliError, CliResult};

/// Prints `prompt` (no newline) and reads one line from stdin, trimmed; `None` at end of input.
pub(crate) fn line(prompt: &str) -> CliResult<Option<String>> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    let mut text = String::new();
    let read = std::io::stdin()
        .lock()
        .read_line(&mut text)
        .map_err(|e| CliError::runtime("io", format!("cannot read stdin: {e}")))?;
    if read == 0 {
        return Ok(None);
    }
    Ok(Some(text.trim().to_owned()))
}

/// Reads a secret: without echo on a terminal (after `prompt`), else one line of stdin.
/// Surrounding whitespace is trimmed; an empty answer is `None`.
pub(crate) fn secret(prompt: &str) -> CliResult<Option<String>> {
    let text = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(prompt)
            .map_err(|e| CliError::runtime("io", format!("cannot read from the terminal: {e}")))?
    } else {
        let mut text = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut text)
            .map_err(|e| CliError::runtime("io", format!("cannot read stdin: {e}")))?;
        text
    };
    let text = text.trim();
    Ok((!text.is_empty()).then(|| text.to_owned()))
}
