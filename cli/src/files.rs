//! Reading the files a command is given (configs, `.env`, Hermes' `auth.json` and
//! `config.yaml`, scenarios, Claude Code's credentials): regular files only (a FIFO would
//! block the command, a device like `/dev/zero` never ends) and at most
//! [`MAX_INPUT_BYTES`], so no argument can hang it or exhaust its memory.

use std::io::Read;
use std::path::Path;

use crate::exit::{CliError, CliResult, Exit};

/// The most bytes read from one input file (the store's own cap).
pub(crate) const MAX_INPUT_BYTES: u64 = credpool_store::MAX_FILE_BYTES;

/// The bytes of `path`; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> CliResult<Option<Vec<u8>>> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(CliError::io("read", path, &e)),
        Ok(meta) if !meta.is_file() => {
            return Err(bad(path, "is not a regular file".to_owned()));
        }
        Ok(_) => {}
    }
    let file = std::fs::File::open(path).map_err(|e| CliError::io("read", path, &e))?;
    let mut bytes = Vec::new();
    file.take(MAX_INPUT_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io("read", path, &e))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(bad(path, format!("is larger than {MAX_INPUT_BYTES} bytes")));
    }
    Ok(Some(bytes))
}

/// The bytes of `path`, which must exist.
pub(crate) fn read_existing(path: &Path) -> CliResult<Vec<u8>> {
    read(path)?.ok_or_else(|| CliError::io("read", path, &std::io::ErrorKind::NotFound.into()))
}

fn bad(path: &Path, why: String) -> CliError {
    CliError {
        code: credpool_core::ErrorCode::TooLarge.as_str().to_owned(),
        message: format!("{} {why}; it was not read", path.display()),
        exit: Exit::BadData,
    }
}
