//! The advisory lock that serialises writers: `flock` on `<store>.lock`, waited for with a
//! bounded backoff so a stuck holder yields a clear `lock_timeout` instead of a hang.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use credpool_core::{Error, ErrorCode, Result};

use crate::file::{create_dir, io_error, parent};

/// A held lock; released when dropped (or when the process dies: the kernel drops it).
#[derive(Debug)]
pub(crate) struct LockGuard {
    file: File,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first makes it immediate.
        let _ = self.file.unlock();
    }
}

/// The lock file of the store at `path`: the same path with `.lock` appended.
pub(crate) fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Takes the exclusive lock on `lock_path`, waiting at most `timeout`.
pub(crate) fn lock(lock_path: &Path, timeout: Duration) -> Result<LockGuard> {
    let file = open_lock_file(lock_path)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(LockGuard { file }),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(io_error("lock", lock_path, &e));
            }
        }
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(Error::new(
                ErrorCode::LockTimeout,
                format!(
                    "{} stayed locked by another process for {} ms (timeout)",
                    lock_path.display(),
                    waited.as_millis()
                ),
            ));
        }
        sleep(pause.min(timeout - waited));
        // Short polls: a transaction holds the lock for milliseconds, and a long backoff
        // lets the process that just released it take it again first (starvation).
        pause = (pause * 2).min(Duration::from_millis(4));
    }
}

fn open_lock_file(lock_path: &Path) -> Result<File> {
    create_dir(parent(lock_path))?;
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(lock_path)
        .map_err(|e| io_error("open the lock file", lock_path, &e))
}
