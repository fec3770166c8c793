//! The pool-management subcommands (`list`, `add`, `remove`, `reset`, `priority`,
//! `strategy`, `policy`, `seed`), all over the shared store.
//!
//! Every change goes through [`Store::handle`]: lock → merge what other processes
//! wrote → apply → write what changed. Every target is resolved before anything is applied, so a
//! failing command writes nothing.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use credpool_core::provider;
use credpool_core::{
    AuthType, EntryId, Input, Millis, NewEntry, OutputBody, PoolKey, Reply, Secret,
};
use credpool_core::{EntryStatus, PoolStatus};
use credpool_store::{Store, StoreOptions};
use serde_json::{Value, json};

use crate::exit::{CliError, CliResult};
use crate::output::{self, print_json};
use crate::prompt;
use crate::target::{resolve_provider, resolve_target};

/// This process's writer id in the store (the CLI never counts requests).
const WRITER: &str = "credpool-cli";

/// Where the store is and how the output looks: the global options.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    /// The store file.
    pub(crate) path: PathBuf,
    /// Longest wait for the store lock.
    pub(crate) lock_timeout: Duration,
    /// Print JSON instead of text.
    pub(crate) json: bool,
}

impl Ctx {
    /// Opens the store (a missing file is an empty store; it is created on first write).
    pub(crate) fn open(&self) -> CliResult<Store> {
        let now = credpool_store::now().0;
        let mut options = StoreOptions::new(WRITER, now ^ u64::from(std::process::id()));
        options.lock_timeout = self.lock_timeout;
        Store::open_path(&self.path, options).map_err(CliError::from)
    }
}
/// How a credential authenticates, as the command line spells it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum AuthArg {
    /// A static API key (default).
    #[default]
    #[value(name = "api-key", alias = "api_key")]
    ApiKey,
    /// OAuth tokens obtained with the provider's own login tool, pasted here.
    Oauth,
}

/// Arguments of `credpool add`.
#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// Provider (openrouter, anthropic, ...), an alias (or, claude, ...), or a custom
    /// endpoint: `custom:<name>`, or any name together with --base-url.
    pub(crate) provider: String,
    /// The API key. Omit it to be prompted without echo (or to read one line from a
    /// pipe): a key on the command line ends up in the shell history and process list.
    #[arg(long, value_name = "KEY")]
    pub(crate) api_key: Option<String>,
    /// Label shown by `list` (default `api-key-<n>`).
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Priority (lower is tried first; default after the last entry).
    #[arg(long, allow_negative_numbers = true)]
    pub(crate) priority: Option<i64>,
    /// Endpoint (default: the provider's; required for a new custom endpoint).
    #[arg(long, value_name = "URL")]
    pub(crate) base_url: Option<String>,
    /// `oauth`: paste the access and refresh tokens of a login done with the provider's
    /// own tool (prompted without echo, or two lines from a pipe).
    #[arg(long = "type", value_enum, default_value_t = AuthArg::ApiKey)]
    pub(crate) auth_type: AuthArg,
    /// With --type oauth: seconds until the pasted access token expires.
    #[arg(long, value_name = "SECS")]
    pub(crate) expires_in: Option<u64>,
}

/// A credential to add, whatever asked for it (`add` or the interactive menu).
#[derive(Debug, Default)]
pub(crate) struct NewCredential {
    /// The API key or access token.
    pub(crate) secret: String,
    /// OAuth refresh token.
    pub(crate) refresh: Option<String>,
    /// OAuth (pasted tokens) rather than an API key.
    pub(crate) oauth: bool,
    /// Seconds until the access token expires.
    pub(crate) expires_in: Option<u64>,
    /// Label.
    pub(crate) label: Option<String>,
    /// Priority.
    pub(crate) priority: Option<i64>,
    /// Endpoint.
    pub(crate) base_url: Option<String>,
}

/// The pool keys present in the store.
pub(crate) fn existing_keys(store: &Store) -> Vec<PoolKey> {
    store.registry().pools().map(|p| p.key().clone()).collect()
}

/// Resolves a provider name against the known providers and the store's pools.
pub(crate) fn pool_key(store: &Store, raw: &str, new_custom: bool) -> CliResult<PoolKey> {
    resolve_provider(raw, &existing_keys(store), new_custom)
}

/// Status of every pool, or of one (an `unknown_pool` error when it has none).
pub(crate) fn status(store: &mut Store, pool: Option<&PoolKey>) -> CliResult<Vec<PoolStatus>> {
    let input = Input::Status {
        pool: pool.cloned(),
    };
    match store.handle(credpool_store::now(), input)?.body {
        OutputBody::Reply(Reply::Status { pools }) => Ok(pools),
        _ => Err(unexpected("status")),
    }
}

/// Status of one pool, with a clear error when the store has no such pool.
pub(crate) fn pool_status(store: &mut Store, pool: &PoolKey) -> CliResult<PoolStatus> {
    if store.registry().pool(pool).is_err() {
        return Err(CliError::usage(
            "unknown_pool",
            format!("no credentials for {pool} in the store"),
        ));
    }
    status(store, Some(pool))?
        .into_iter()
        .next()
        .ok_or_else(|| unexpected("status"))
}

/// Applies `input`, expecting a reply.
pub(crate) fn apply(store: &mut Store, input: Input) -> CliResult<Reply> {
    match store.handle(credpool_store::now(), input)?.body {
        OutputBody::Reply(reply) => Ok(reply),
        _ => Err(unexpected("a management input")),
    }
}

/// An internal error: core answered with an unexpected shape.
pub(crate) fn unexpected(what: &str) -> CliError {
    CliError::runtime("internal", format!("unexpected reply to {what}"))
}

/// `credpool list [provider]`.
pub(crate) fn list(ctx: &Ctx, provider: Option<&str>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let pools = match provider {
        Some(raw) => {
            let key = pool_key(&store, raw, false)?;
            if store.registry().pool(&key).is_ok() {
                status(&mut store, Some(&key))?
            } else {
                if !ctx.json {
                    println!("No credentials for {key}.");
                    return Ok(());
                }
                Vec::new()
            }
        }
        None => status(&mut store, None)?,
    };
    if ctx.json {
        print_json(&json!({ "store": store.path(), "pools": pools }));
    } else {
        print!("{}", output::pools_text(&pools));
    }
    Ok(())
}

/// `credpool add`.
pub(crate) fn add(ctx: &Ctx, args: &AddArgs) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, &args.provider, args.base_url.is_some())?;
    let oauth = args.auth_type == AuthArg::Oauth;
    if oauth && args.api_key.is_some() {
        return Err(CliError::usage(
            "invalid_input",
            "--api-key is for API keys; with --type oauth the tokens are prompted for",
        ));
    }
    // Check the endpoint before prompting for any secret.
    let base_url = base_url_for(&store, &key, args.base_url.clone())?;
    let (secret, refresh) = if oauth {
        let access = prompt::secret("Access token (input hidden): ")?;
        let refresh = prompt::secret("Refresh token (input hidden, blank if none): ")?;
        (access, refresh)
    } else {
        match &args.api_key {
            Some(key) => (Some(key.trim().to_owned()), None),
            None => (
                prompt::secret(&format!("API key for {key} (input hidden): "))?,
                None,
            ),
        }
    };
    let secret = secret
        .filter(|s| !s.is_empty())
        .ok_or_else(|| CliError::usage("invalid_entry", "no key given (the input was empty)"))?;
    let new = NewCredential {
        secret,
        refresh,
        oauth,
        expires_in: args.expires_in,
        label: args.label.clone(),
        priority: args.priority,
        base_url,
    };
    let entry = add_credential(&mut store, &key, new)?;
    if ctx.json {
        print_json(&json!({ "pool": key, "entry": entry }));
    } else {
        println!(
            "Added {key} credential #{}: \"{}\" (id {})",
            entry.index, entry.label, entry.id
        );
    }
    Ok(())
}

/// The endpoint of a new entry of `key`: the one given, else the provider's default,
/// else (a custom pool) the one its entries already use. A new custom endpoint without a
/// URL is a usage error.
pub(crate) fn base_url_for(
    store: &Store,
    key: &PoolKey,
    given: Option<String>,
) -> CliResult<Option<String>> {
    if let Some(url) = given.map(|u| u.trim().to_owned()).filter(|u| !u.is_empty()) {
        return Ok(Some(url));
    }
    if let Some(known) = provider(key.as_str()) {
        return Ok(Some(known.base_url.to_owned()));
    }
    let existing = store.registry().pool(key).ok().and_then(|pool| {
        pool.entries()
            .into_iter()
            .find_map(|e| e.meta.base_url.clone())
    });
    match existing {
        Some(url) => Ok(Some(url)),
        None if store.registry().pool(key).is_ok() => Ok(None),
        None => Err(CliError::usage(
            "invalid_input",
            format!("{key} is a new custom endpoint: give its --base-url"),
        )),
    }
}

/// Adds `new` to `key` and returns its status line.
pub(crate) fn add_credential(
    store: &mut Store,
    key: &PoolKey,
    new: NewCredential,
) -> CliResult<EntryStatus> {
    let now = credpool_store::now();
    let entry = NewEntry {
        label: new.label.filter(|l| !l.trim().is_empty()),
        auth_type: Some(if new.oauth {
            AuthType::Oauth
        } else {
            AuthType::ApiKey
        }),
        priority: new.priority,
        source: Some(if new.oauth {
            "manual:pasted_oauth".to_owned()
        } else {
            "manual".to_owned()
        }),
        access_token: Some(Secret::new(new.secret)),
        refresh_token: new.refresh.map(Secret::new),
        expires_at: new
            .expires_in
            .map(|s| Millis(now.0.saturating_add(s.saturating_mul(1000)))),
        base_url: new.base_url,
        ..NewEntry::default()
    };
    let input = Input::AddEntry {
        pool: key.clone(),
        entry,
    };
    let Reply::EntryAdded { entry_id } = apply(store, input)? else {
        return Err(unexpected("add_entry"));
    };
    find_entry(store, key, &entry_id)
}

/// The status line of `id` in `key`.
fn find_entry(store: &mut Store, key: &PoolKey, id: &EntryId) -> CliResult<EntryStatus> {
    pool_status(store, key)?
        .entries
        .into_iter()
        .find(|e| e.id == *id)
        .ok_or_else(|| unexpected("status"))
}

/// `credpool remove <provider> <target>`; returns the removed entry.
pub(crate) fn remove_in(store: &mut Store, key: &PoolKey, target: &str) -> CliResult<EntryStatus> {
    let pool = pool_status(store, key)?;
    let entry = resolve_target(key, &pool.entries, target)?.clone();
    apply(
        store,
        Input::RemoveEntry {
            pool: key.clone(),
            entry_id: entry.id.clone(),
        },
    )?;
    Ok(entry)
}

/// `credpool remove`.
pub(crate) fn remove(ctx: &Ctx, provider: &str, target: &str) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let entry = remove_in(&mut store, &key, target)?;
    if ctx.json {
        print_json(&json!({ "pool": key, "removed": entry }));
    } else {
        println!(
            "Removed {key} credential #{} ({}, id {})",
            entry.index, entry.label, entry.id
        );
    }
    Ok(())
}

/// Resets one entry (a target) or the whole pool; returns the entry and the count.
pub(crate) fn reset_in(
    store: &mut Store,
    key: &PoolKey,
    target: Option<&str>,
) -> CliResult<(Option<EntryStatus>, usize)> {
    let pool = pool_status(store, key)?;
    let entry = target
        .map(|t| resolve_target(key, &pool.entries, t).cloned())
        .transpose()?;
    let input = Input::Reset {
        pool: key.clone(),
        entry_id: entry.as_ref().map(|e| e.id.clone()),
    };
    let Reply::Reset { count } = apply(store, input)? else {
        return Err(unexpected("reset"));
    };
    Ok((entry, count))
}

/// `credpool reset`.
pub(crate) fn reset(ctx: &Ctx, provider: &str, target: Option<&str>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let (entry, count) = reset_in(&mut store, &key, target)?;
    if ctx.json {
        print_json(&json!({ "pool": key, "entry": entry, "cleared": count }));
    } else {
        match entry {
            Some(e) => println!(
                "Reset {key} credential #{} ({}): {}",
                e.index,
                e.label,
                if count > 0 {
                    "status and cooldowns cleared"
                } else {
                    "it had nothing to clear"
                }
            ),
            None => println!("Reset {key}: cleared the status of {count} credential(s)"),
        }
    }
    Ok(())
}

/// `credpool priority`.
pub(crate) fn priority(ctx: &Ctx, provider: &str, target: &str, priority: i64) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let pool = pool_status(&mut store, &key)?;
    let entry = resolve_target(&key, &pool.entries, target)?.clone();
    apply(
        &mut store,
        Input::SetPriority {
            pool: key.clone(),
            entry_id: entry.id.clone(),
            priority,
        },
    )?;
    let after = find_entry(&mut store, &key, &entry.id)?;
    if ctx.json {
        print_json(&json!({ "pool": key, "entry": after }));
    } else {
        println!(
            "Set the priority of {key} credential \"{}\" (id {}) to {priority}: now #{}",
            after.label, after.id, after.index
        );
    }
    Ok(())
}

/// Reads a JSON file: IO errors exit 1, invalid JSON exits 4.
pub(crate) fn read_json(path: &std::path::Path) -> CliResult<Value> {
    let bytes = crate::files::read_existing(path)?;
    serde_json::from_slice(&bytes).map_err(|e| CliError::bad_json(path, &e))
}
