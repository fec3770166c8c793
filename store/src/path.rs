//! Where the store file lives by default.

use std::path::PathBuf;

use credpool_core::{Error, ErrorCode, Result};

/// File name of the store (an SQLite database) inside its directory.
pub const FILE_NAME: &str = "pools.sqlite";

/// File name of the JSON store of earlier versions, migrated on open.
pub const LEGACY_FILE_NAME: &str = "pools.json";

/// The default store path: `$CREDPOOL_HOME/pools.sqlite`, else
/// `$XDG_CONFIG_HOME/credpool/pools.sqlite`, else `~/.config/credpool/pools.sqlite`; when
/// that directory holds no `pools.sqlite` but the `pools.json` of an earlier version, that
/// file (which `Store::open` migrates into `pools.sqlite`).
pub fn default_path() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let path = resolve(var("CREDPOOL_HOME"), var("XDG_CONFIG_HOME"), var("HOME"))?;
    let legacy = path.with_file_name(LEGACY_FILE_NAME);
    Ok(if !path.exists() && legacy.exists() {
        legacy
    } else {
        path
    })
}

/// [`default_path`] with the environment passed in (testable without touching it).
pub(crate) fn resolve(
    credpool_home: Option<std::ffi::OsString>,
    xdg_config_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Result<PathBuf> {
    if let Some(dir) = credpool_home {
        return Ok(PathBuf::from(dir).join(FILE_NAME));
    }
    if let Some(dir) = xdg_config_home {
        return Ok(PathBuf::from(dir).join("credpool").join(FILE_NAME));
    }
    if let Some(home) = home {
        return Ok(PathBuf::from(home)
            .join(".config")
            .join("credpool")
            .join(FILE_NAME));
    }
    Err(Error::new(
        ErrorCode::Io,
        "no store path: set CREDPOOL_HOME, XDG_CONFIG_HOME or HOME, or pass a path",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let some = |s: &str| Some(s.into());
        assert_eq!(
            resolve(some("/c"), some("/x"), some("/h")).unwrap(),
            PathBuf::from("/c/pools.sqlite")
        );
        assert_eq!(
            resolve(None, some("/x"), some("/h")).unwrap(),
            PathBuf::from("/x/credpool/pools.sqlite")
        );
        assert_eq!(
            resolve(None, None, some("/h")).unwrap(),
            PathBuf::from("/h/.config/credpool/pools.sqlite")
        );
        assert_eq!(resolve(None, None, None).unwrap_err().code(), ErrorCode::Io);
    }
}
