//! `credpool import-hermes` and `credpool export-hermes`: move pools between the store and
//! a Hermes Agent `auth.json`, through core's pure conversions.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use credpool_core::{
    Input, OutputBody, PoolKey, Reply, export_hermes, hermes_strategy, import_hermes,
};
use serde_json::json;

use crate::exit::{CliError, CliResult};
use crate::hermes_config::pool_strategies;
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

/// Arguments of `credpool import-hermes`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The Hermes auth.json.
    pub(crate) auth_json: PathBuf,
    /// Hermes' config.yaml, whose `credential_pool_strategies` the imported pools keep
    /// (default: `config.yaml` beside the auth.json, read when it exists).
    #[arg(long, value_name = "CONFIG_YAML")]
    pub(crate) config: Option<PathBuf>,
}

/// `credpool import-hermes <auth.json> [--config config.yaml]`: merges the file's
/// `credential_pool` and `suppressed_sources` into the store, and gives the imported pools
/// the strategies of Hermes' config.yaml.
pub(crate) fn import(ctx: &Ctx, args: &ImportArgs) -> CliResult<()> {
    let path = args.auth_json.as_path();
    let auth = read_json(path)?;
    let strategies = read_strategies(path, args.config.as_deref())?;
    let now = credpool_store::now();
    let doc = import_hermes(&auth, now).map_err(|e| CliError::from(e).context(path.display()))?;
    let with_entries: Vec<PoolKey> = doc
        .pools
        .iter()
        .filter(|(_, p)| !p.entries.is_empty())
        .map(|(k, _)| k.clone())
        .collect();
    let pools = with_entries.len();
    let entries: usize = doc.pools.values().map(|p| p.entries.len()).sum();
    let state = serde_json::to_value(&doc)
        .map_err(|e| CliError::runtime("internal", format!("cannot serialise state: {e}")))?;
    let mut store = ctx.open()?;
    let mut changed = store.handle(now, Input::Sync { state })?.changed;
    let mut configured = Vec::new();
    for (raw, value) in &strategies {
        let Some(key) = PoolKey::parse(raw)
            .ok()
            .filter(|k| with_entries.contains(k))
        else {
            continue;
        };
        let strategy = hermes_strategy(value);
        let input = Input::ConfigurePool {
            pool: key.clone(),
            strategy: Some(strategy),
            policy: None,
            fallback: None,
            api: None,
        };
        changed |= store.handle(now, input)?.changed;
        configured.push(json!({ "pool": key, "strategy": strategy }));
    }
    if ctx.json {
        print_json(&json!({
            "imported": { "pools": pools, "entries": entries },
            "strategies": configured,
            "changed": changed,
        }));
    } else {
        println!(
            "Imported {entries} credential(s) in {pools} pool(s) from {}{}",
            path.display(),
            if changed {
                ""
            } else {
                " (the store already had them)"
            }
        );
        for c in &configured {
            println!(
                "Strategy of {}: {}",
                c["pool"].as_str().unwrap_or("?"),
                c["strategy"].as_str().unwrap_or("?")
            );
        }
    }
    Ok(())
}

/// The `credential_pool_strategies` of `config` (an error when it cannot be read), else
/// of the `config.yaml` beside `auth_json` (none when it does not exist).
fn read_strategies(auth_json: &Path, config: Option<&Path>) -> CliResult<BTreeMap<String, String>> {
    let (path, required) = match config {
        Some(path) => (path.to_path_buf(), true),
        None => (
            auth_json
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| Path::new("."))
                .join("config.yaml"),
            false,
        ),
    };
    let bytes = if required {
        Some(crate::files::read_existing(&path)?)
    } else {
        crate::files::read(&path)?
    };
    Ok(bytes.map_or_else(BTreeMap::new, |b| {
        pool_strategies(&String::from_utf8_lossy(&b))
    }))
}

/// `credpool export-hermes [--base auth.json] [-o out.json]`.
pub(crate) fn export(ctx: &Ctx, args: &ExportArgs) -> CliResult<()> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        return Err(CliError::usage(
            "secrets_to_terminal",
            "refusing to print an auth.json (it holds secrets) to a terminal; use -o FILE or redirect stdout",
        ));
    }
    if let Some(output) = &args.output
        && is_store_file(output, &ctx.path)
    {
        return Err(CliError::usage(
            "invalid_input",
            format!(
                "{} is the store (or one of its files); export to another file",
                output.display()
            ),
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
    let pools = state
        .pools
        .values()
        .filter(|p| !p.entries.is_empty())
        .count();
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
/// Whether `output` is the store at `store` or one of its files (`-wal`, `-shm`, locks),
/// by their resolved paths.
fn is_store_file(output: &Path, store: &Path) -> bool {
    let resolve = |p: &Path| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or_else(|| Path::new("."));
        let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
        std::fs::canonicalize(p).unwrap_or_else(|_| dir.join(p.file_name().unwrap_or_default()))
    };
    let (out, store) = (resolve(output), resolve(store));
    let Some(name) = store.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return false;
    };
    let of_store = ["", "-wal", "-shm", "-journal", ".lock", ".refresh-lock"];
    out.parent() == store.parent()
        && out.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            of_store.iter().any(|suffix| n == format!("{name}{suffix}"))
        })
}

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
