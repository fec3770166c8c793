//! `credpool seed`: adopt keys from the environment, a `.env` file (its values win, as in
//! Hermes) and a config file of custom endpoints (core's `seed`: deduplicates by secret
//! fingerprint, skips suppressed sources).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Args;
use credpool_core::Reply;
use credpool_core::{PROVIDERS, SeedReport};
use serde_json::{Value, json};

use crate::dotenv;
use crate::exit::{CliError, CliResult};
use crate::manage::{Ctx, apply, read_json, unexpected};
use crate::output::print_json;

/// Arguments of `credpool seed`.
#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// JSON config with custom endpoints: `{"custom_providers": [{"name", "base_url",
    /// "api_key" | "api_key_env"}]}`.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// A `.env` file whose values beat the process environment (default: `.env` beside
    /// the store, read when it exists).
    #[arg(long, value_name = "FILE")]
    pub(crate) env_file: Option<PathBuf>,
    /// Do not read provider keys from the environment nor from the default `.env` (only
    /// the config, and the --env-file given).
    #[arg(long)]
    pub(crate) no_env: bool,
    /// Borrow Claude Code's login (`$CLAUDE_CONFIG_DIR/.credentials.json`, else
    /// `~/.claude/.credentials.json`) even when the anthropic provider is not configured
    /// yet (otherwise it is borrowed only when the store has an anthropic pool or the
    /// environment sets `ANTHROPIC_TOKEN` or `ANTHROPIC_API_KEY`).
    #[arg(long)]
    pub(crate) claude_code: bool,
}

/// `credpool seed`: adopt keys from the environment, a `.env` file and a config file
/// (removes only what core's seeding rules remove: duplicates of a source, and Anthropic
/// OAuth logins when only an API key is set).
pub(crate) fn seed(ctx: &Ctx, args: &SeedArgs) -> CliResult<()> {
    let config = match &args.config {
        Some(path) => read_json(path)?,
        None => json!({}),
    };
    let dotenv = match &args.env_file {
        Some(path) => Some(
            dotenv::read(path)?
                .ok_or_else(|| CliError::io("read", path, &std::io::ErrorKind::NotFound.into()))?,
        ),
        None if args.no_env => None,
        None => dotenv::read(&default_env_file(&ctx.path))?,
    };
    let provider_vars = !args.no_env || args.env_file.is_some();
    let env = seed_env(&config, provider_vars, !args.no_env, dotenv.as_ref());
    let mut store = ctx.open()?;
    let mut config = config;
    let configured = args.claude_code
        || store
            .registry()
            .pools()
            .any(|p| p.key().as_str() == "anthropic")
        || ["ANTHROPIC_TOKEN", "ANTHROPIC_API_KEY"]
            .iter()
            .any(|v| env.contains_key(*v));
    if configured
        && let Some(login) = claude_code_login()
        && let Some(object) = config.as_object_mut()
    {
        let logins = object.entry("borrowed_logins").or_insert_with(|| json!([]));
        if let Some(list) = logins.as_array_mut() {
            list.push(login);
        }
    }
    let input = credpool_core::parse_input(json!({
        "type": "seed",
        "env": env,
        "config": config,
    }))
    .map_err(|e| {
        CliError::from(e).context(format!(
            "seed config {}",
            args.config
                .as_ref()
                .map_or_else(String::new, |p| p.display().to_string())
        ))
    })?;
    let Reply::Seeded(report) = apply(&mut store, input)? else {
        return Err(unexpected("seed"));
    };
    if ctx.json {
        print_json(&report);
    } else {
        print_seed_report(&report);
    }
    Ok(())
}

/// Claude Code's login as core's borrowed login: the access token and its expiry of
/// `$CLAUDE_CONFIG_DIR/.credentials.json` (else `~/.claude/.credentials.json`), never its
/// refresh token (Claude Code refreshes it; credpool re-seeds after). None when the file is
/// absent; an unreadable one is skipped with a warning (it is another tool's file).
fn claude_code_login() -> Option<Value> {
    let dir = std::env::var_os("CLAUDE_CONFIG_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".claude")))?;
    let path = dir.join(".credentials.json");
    let bytes = match crate::files::read(&path) {
        Ok(bytes) => bytes?,
        Err(e) => {
            eprintln!("warning: {e}; Claude Code's login skipped");
            return None;
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    let oauth = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|doc| doc.get("claudeAiOauth").cloned());
    let access = oauth
        .as_ref()
        .and_then(|o| o.get("accessToken")?.as_str().map(str::to_owned))
        .filter(|t| !t.is_empty());
    let Some(access) = access else {
        eprintln!(
            "warning: {} holds no Claude Code login (claudeAiOauth.accessToken); skipped",
            path.display()
        );
        return None;
    };
    let expires_at = oauth
        .as_ref()
        .and_then(|o| o.get("expiresAt")?.as_u64())
        .filter(|ms| *ms > 0);
    Some(json!({
        "pool": "anthropic",
        "source": "claude_code",
        "access_token": access,
        "expires_at": expires_at,
    }))
}

/// The default `.env`: beside the store (its directory resolved as the store path is).
fn default_env_file(store: &Path) -> PathBuf {
    store
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
        .join(".env")
}

/// The variables seeding reads (and only those: the rest of the environment never
/// reaches the store): the providers' (when `provider_vars`) and the config's
/// `api_key_env`; each from `dotenv` first, else from the process environment (when
/// `process_env` or for the config's).
fn seed_env(
    config: &Value,
    provider_vars: bool,
    process_env: bool,
    dotenv: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    let mut names: Vec<(String, bool)> = Vec::new();
    if provider_vars {
        for p in PROVIDERS {
            names.extend(p.key_vars.iter().map(|v| ((*v).to_owned(), process_env)));
            names.extend(p.base_url_var.map(|v| (v.to_owned(), process_env)));
        }
    }
    if let Some(list) = config.get("custom_providers").and_then(Value::as_array) {
        names.extend(
            list.iter()
                .filter_map(|c| c.get("api_key_env").and_then(Value::as_str))
                .map(|v| (v.to_owned(), true)),
        );
    }
    names
        .into_iter()
        .filter_map(|(name, from_process)| {
            let process = from_process.then(|| std::env::var(&name).ok()).flatten();
            let value = dotenv::prefer_file(dotenv.and_then(|d| d.get(&name)), process)?;
            Some((name, value))
        })
        .collect()
}

/// Prints what a seed added or updated.
fn print_seed_report(report: &SeedReport) {
    let changes = [
        ("Added", &report.added, ""),
        ("Updated", &report.updated, ": new key"),
        ("Removed", &report.removed, ""),
    ];
    for (verb, entries, note) in changes {
        for e in entries {
            let (pool, source, id) = (&e.pool, &e.source, &e.entry_id);
            println!("{verb} {pool} credential from {source} (id {id}){note}");
        }
    }
    for s in &report.suppressed {
        println!(
            "Skipped {} for {}: suppressed since its credential was removed (`credpool add {}` re-enables it)",
            s.source, s.pool, s.pool
        );
    }
    if report.added.is_empty() && report.updated.is_empty() && report.removed.is_empty() {
        println!("Nothing new to seed.");
    }
}
