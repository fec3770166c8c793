//! Opening a store path by what the file holds, and moving a JSON store into SQLite.
//!
//! - no file, an empty one, or an SQLite database: the [`SqliteStore`] there;
//! - a JSON store (`pools.json`, schema 1): migrated once, under the JSON store's own lock,
//!   into an SQLite database next to it (`pools.sqlite`); the JSON file is then replaced
//!   by a marker with `schema_version` 2 naming the database, which older credpool builds
//!   refuse (`unsupported_schema_version`) instead of writing a second, diverging store;
//! - such a marker: the database it names.

use std::path::{Path, PathBuf};

use credpool_core::{Error, ErrorCode, Input, Options, Registry, Result};
use serde_json::{Value, json};

use crate::file;
use crate::lock;
use crate::sqlite::SqliteStore;
use crate::store::StoreOptions;

/// The `schema_version` of a JSON store file that moved to SQLite.
pub const MOVED_SCHEMA_VERSION: u64 = 2;

/// Opens the store at `path` by its contents (see the module documentation).
pub(crate) fn open_path(path: &Path, options: StoreOptions) -> Result<SqliteStore> {
    file::check_regular(path)?;
    if !holds_json(path, options.lock_timeout)? {
        return SqliteStore::open(path, options);
    }
    let guard = lock::lock(&lock::lock_path(path), options.lock_timeout)?;
    let bytes = file::read(path)?.unwrap_or_default();
    let doc: Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::new(
            ErrorCode::InvalidState,
            format!(
                "{} is not valid JSON ({e}) nor an SQLite database; it was left untouched",
                path.display()
            ),
        )
    })?;
    if let Some(moved_to) = moved_to(path, &doc)? {
        drop(guard);
        return SqliteStore::open(moved_to, options);
    }
    // Refuse what core refuses (foreign, newer, damaged), before anything is written.
    Registry::from_state(
        &doc,
        Options {
            writer: options.writer.clone(),
            seed: options.seed,
        },
    )?;
    let database = database_for(path);
    let mut store = SqliteStore::open(&database, options)?;
    store.handle(crate::now(), Input::Sync { state: doc })?;
    let name = database
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let marker = json!({
        "format": credpool_core::FORMAT,
        "schema_version": MOVED_SCHEMA_VERSION,
        "moved_to": name,
        "note": "this store moved to the SQLite database named by moved_to; credpool builds \
                 that predate it refuse this file rather than write a second store",
    });
    let text = serde_json::to_vec_pretty(&marker).unwrap_or_default();
    file::write_atomic(path, &text, true)?;
    drop(guard);
    Ok(store)
}

/// Where the JSON store at `path` moves: `pools.json` → `pools.sqlite` (a JSON file that
/// already ends in `.sqlite` gets `.sqlite.db`).
fn database_for(path: &Path) -> PathBuf {
    if path.extension().is_some_and(|e| e == "sqlite") {
        let mut name = path.as_os_str().to_owned();
        name.push(".db");
        PathBuf::from(name)
    } else {
        path.with_extension("sqlite")
    }
}

/// Whether `path` holds something other than an SQLite database (a missing or empty file
/// is a new database). SQLite itself looks: opening and closing the file here with
/// `std::fs` would drop the POSIX locks another connection of this process holds on it
/// (a store reopened while the old one is still alive), and with them the guarantee that
/// no other process deletes the write-ahead log under that connection.
fn holds_json(path: &Path, busy_timeout: std::time::Duration) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.len() == 0 => return Ok(false),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(file::io_error("open", path, &e)),
    }
    let flags =
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let looked = rusqlite::Connection::open_with_flags(path, flags).and_then(|conn| {
        conn.busy_timeout(busy_timeout)?;
        conn.query_row("PRAGMA schema_version", [], |row| row.get::<_, i64>(0))
    });
    match looked {
        Ok(_) => Ok(false),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::NotADatabase =>
        {
            // No connection of this process works on it, so reading it here is safe: a
            // damaged database (the header, then garbage) is opened as one, and refused
            // as one; anything else is read as JSON.
            Ok(!starts_as_sqlite(path))
        }
        Err(e) => Err(Error::new(
            ErrorCode::Io,
            format!("cannot read {}: {e}", path.display()),
        )),
    }
}

/// Whether the file begins with SQLite's header.
fn starts_as_sqlite(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// The database a moved-store marker names (`None`: `doc` is no such marker).
fn moved_to(path: &Path, doc: &Value) -> Result<Option<PathBuf>> {
    let is_marker = doc.get("format").and_then(Value::as_str) == Some(credpool_core::FORMAT)
        && doc.get("schema_version").and_then(Value::as_u64) == Some(MOVED_SCHEMA_VERSION);
    if !is_marker {
        return Ok(None);
    }
    match doc.get("moved_to").and_then(Value::as_str) {
        Some(name) if !name.is_empty() && Path::new(name).file_name() == Some(name.as_ref()) => {
            Ok(Some(path.with_file_name(name)))
        }
        _ => Err(Error::new(
            ErrorCode::InvalidState,
            format!(
                "{} names no database to open (moved_to); it was left untouched",
                path.display()
            ),
        )),
    }
}
