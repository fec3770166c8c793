//! `credpool seed`: adopt keys from the environment and a config file of custom
//! endpoints (core's `seed`: never removes, deduplicates by secret fingerprint).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Args;
use credpool_core::Reply;
use credpool_core::{PROVIDERS, SeedReport};
use serde_json::{Value, json};

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
    /// Do not read provider keys from the environment (only the config).
    #[arg(long)]
    pub(crate) no_env: bool,
}

/// `credpool seed`: adopt keys from the environment and a config file (never removes).
pub(crate) fn seed(ctx: &Ctx, args: &SeedArgs) -> CliResult<()> {
    let config = match &args.config {
        Some(path) => read_json(path)?,
        None => json!({}),
    };
    let env = seed_env(&config, args.no_env);
    let mut store = ctx.open()?;
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

/// The environment variables seeding reads (and only those: the rest of the
/// environment never reaches the store).
fn seed_env(config: &Value, no_env: bool) -> BTreeMap<String, String> {
    let mut names: Vec<String> = Vec::new();
    if !no_env {
        for p in PROVIDERS {
            names.extend(p.key_vars.iter().map(|v| (*v).to_owned()));
            names.extend(p.base_url_var.map(str::to_owned));
        }
    }
    if let Some(list) = config.get("custom_providers").and_then(Value::as_array) {
        names.extend(
            list.iter()
                .filter_map(|c| c.get("api_key_env").and_then(Value::as_str))
                .map(str::to_owned),
        );
    }
    names
        .into_iter()
        .filter_map(|name| std::env::var(&name).ok().map(|v| (name, v)))
        .collect()
}

/// Prints what a seed added or updated.
fn print_seed_report(report: &SeedReport) {
    for e in &report.added {
        println!(
            "Added {} credential from {} (id {})",
            e.pool, e.source, e.entry_id
        );
    }
    for e in &report.updated {
        println!(
            "Updated {} credential from {} (id {}): new key",
            e.pool, e.source, e.entry_id
        );
    }
    if report.added.is_empty() && report.updated.is_empty() {
        println!("Nothing new to seed.");
    }
}
