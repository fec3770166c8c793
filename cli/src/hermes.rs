//! `credpool import-hermes` and `credpool export-hermes`: move pools between the store and
//! a Hermes Agent `auth.json`, through core's pure conversions.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use credpool_core::{Input, OutputBody, Reply, export_hermes, import_hermes};
use serde_json::json;

use crate::exit::{CliError, CliResult};
use crate::manage::{Ctx, read_json};
use crate::output::print_json;

/// Arguments of `credpool export-hermes`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// An existing auth.json whose other sections (providers, active_provider, ...) are
    /// kept; only its `credential_pool` is replaced.
    #[arg(long, value_name = "AUTH_JSON")]
    pub(crate) base: Option<PathBuf>,
    /// Where to write (created with mode 0600, replaced atomically). Without it the
    /// document goes to stdout, which must then not be a terminal: it holds secrets.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

/// `credpool import-hermes <auth.json>`: merges the file's `credential_pool` into the store.
pub(crate) fn import(ctx: &Ctx, path: &Path) -> CliResult<()> {
    let auth = read_json(path)?;
    let now = credpool_store::now();
    let doc = import_hermes(&auth, now).map_err(|e| CliError::from(e).context(path.display()))?;
    let pools = doc.pools.len();
    let entries: usize = doc.pools.values().map(|p| p.entries.len()).sum();
    let state = serde_json::to_value(&doc)
        .map_err(|e| CliError::runtime("internal", format!("cannot serialise state: {e}")))?;
    let mut store = ctx.open()?;
    let output = store.handle(now, Input::Sync { state })?;
    if ctx.json {
        print_json(&json!({
            "imported": { "pools": pools, "entries": entries },
            "changed": output.changed,
        }));
    } else {
        println!(
            "Imported {entries} credential(s) in {pools} pool(s) from {}{}",
            path.display(),
            if output.changed {
                ""
            } else {
                " (the store already had them)"
            }
        );
    }
    Ok(())
}

/// `credpool export-hermes [--base auth.json] [-o out.json]`.
pub(crate) fn export(ctx: &Ctx, args: &ExportArgs) -> CliResult<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "secrets_to_terminal",
            "refusing to print an auth.json (it holds secrets) to a terminal; use -o FILE or redirect stdout",
        ));
    }
    let base = args.base.as_deref().map(read_json).transpose()?;
    let mut store = ctx.open()?;
    let now = credpool_store::now();
    let OutputBody::Reply(Reply::State { state }) = store.handle(now, Input::ExportState)?.body
    else {
        return Err(CliError::runtime(
            "internal",
            "unexpected reply to export_state",
        ));
    };
    let pools = state.pools.len();
    let entries: usize = state.pools.values().map(|p| p.entries.len()).sum();
    let state = serde_json::to_value(&state)
        .map_err(|e| CliError::runtime("internal", format!("cannot serialise state: {e}")))?;
    let auth = export_hermes(&state, base.as_ref(), now).map_err(|e| {
        let e = CliError::from(e);
        match &args.base {
            Some(path) => e.context(path.display()),
            None => e,
        }
    })?;
    let mut text = serde_json::to_string_pretty(&auth)
        .map_err(|e| CliError::runtime("internal", format!("cannot serialise auth.json: {e}")))?;
    text.push('\n');
    match &args.output {
        Some(path) => {
            write_private(path, text.as_bytes())?;
            if ctx.json {
                print_json(&json!({ "output": path, "pools": pools, "entries": entries }));
            } else {
                println!(
                    "Wrote {entries} credential(s) in {pools} pool(s) to {}",
                    path.display()
                );
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::runtime("io", format!("cannot write stdout: {e}")))?;
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, renamed),
/// readable by the owner only.
fn write_private(path: &Path, bytes: &[u8]) -> CliResult<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = options
        .open(&tmp)
        .and_then(|mut file| file.write_all(bytes).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        CliError::io("write", path, &e)
    })
}
