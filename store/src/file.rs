//! Reading and atomically replacing a file: the JSON store of earlier versions (migrated)
//! and its moved-store marker.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use credpool_core::{Error, ErrorCode, Result};

/// Bytes of a store file the store agrees to read.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Refuses a `path` that exists but is not a regular file (a FIFO would block every open,
/// a device like `/dev/zero` never ends), following symlinks.
pub(crate) fn check_regular(path: &Path) -> Result<()> {
    match fs::metadata(path) {
        Ok(meta) if !meta.is_file() => Err(Error::new(
            ErrorCode::Io,
            format!(
                "{} is not a regular file; a store must be one",
                path.display()
            ),
        )),
        _ => Ok(()),
    }
}

/// The file's bytes, `None` when it does not exist.
pub(crate) fn read(path: &Path) -> Result<Option<Vec<u8>>> {
    check_regular(path)?;
    match fs::metadata(path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "{} is {} bytes, more than the {MAX_FILE_BYTES} a store file may hold",
                    path.display(),
                    meta.len()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("stat", path, &e)),
    }
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("read", path, &e)),
    }
}

/// Replaces `path` with `bytes` atomically: a temp file in the same directory (mode 0600),
/// written and fsynced, renamed over `path`, then the directory fsynced (when `durable`).
/// Readers see the old or the new file, never a mix; a crash leaves one of the two.
/// The caller holds the store lock (temp files of writers that died are removed here).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], durable: bool) -> Result<()> {
    let dir = parent(path);
    create_dir(dir)?;
    remove_orphaned_temps(path);
    let tmp = temp_path(path);
    let result = (|| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&tmp)
            .map_err(|e| io_error("create", &tmp, &e))?;
        file.write_all(bytes)
            .map_err(|e| io_error("write", &tmp, &e))?;
        if durable {
            file.sync_all().map_err(|e| io_error("fsync", &tmp, &e))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(|e| io_error("rename into place", path, &e))?;
        if durable {
            sync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Moves the file at `path` aside as `<path>.corrupt-<epoch ms>` and returns the new path.
pub(crate) fn move_aside(path: &Path) -> Result<PathBuf> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{ms}"));
    let aside = PathBuf::from(name);
    fs::rename(path, &aside).map_err(|e| io_error("move aside", path, &e))?;
    Ok(aside)
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Creates `dir` (and its parents) with mode 0700 when missing.
pub(crate) fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| io_error("create the directory", dir, &e))
}

/// Removes temp files a writer killed mid-write left behind. Writers create them only
/// while holding the store lock, which the caller holds now, so none is in use.
fn remove_orphaned_temps(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = fs::read_dir(parent(path)) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn temp_path(path: &Path) -> PathBuf {
    // Unique per process and call: concurrent writers never share a temp file.
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy().into_owned());
    parent(path).join(format!(".{name}.tmp-{}-{n}", std::process::id()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error("fsync the directory", dir, &e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// An `io` error naming what failed on which path (paths are not secrets).
pub(crate) fn io_error(what: &str, path: &Path, e: &std::io::Error) -> Error {
    Error::new(
        ErrorCode::Io,
        format!("cannot {what} {}: {e}", path.display()),
    )
}
