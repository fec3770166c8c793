//! `credpool` with no subcommand on a terminal: the pool status and a menu (add, remove,
//! reset cooldowns, set strategy, exit), like `hermes auth`.
//!
//! OAuth logins: for an OAuth-capable provider it asks "API key or OAuth login?"; for
//! OAuth it runs the provider's login (`credpool login`) when credpool has one, else it
//! explains that the login must be completed with the provider's own tool and accepts the
//! resulting access token and refresh token pasted at no-echo prompts.

use credpool_core::PoolKey;
use credpool_core::{PROVIDERS, provider};

use crate::config::{StrategyArg, current_config, set_strategy};
use crate::exit::{CliError, CliResult};
use crate::manage::{
    self, Ctx, NewCredential, add_credential, base_url_for, existing_keys, pool_status, remove_in,
    reset_in,
};
use crate::output::{NEXT_MARKER, pools_text, wire_name};
use crate::prompt;
use crate::target::resolve_provider;

/// Whether the session goes on after an action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    /// Show the menu again.
    Continue,
    /// End (the user chose Exit, or input ended).
    Quit,
}

/// Reads one answer; end of input ends the session.
macro_rules! ask {
    ($prompt:expr) => {
        match prompt::line($prompt)? {
            Some(answer) => answer,
            None => return Ok(Flow::Quit),
        }
    };
}

/// Runs the menu until Exit or end of input. Errors of one action are printed and the
/// menu comes back; a store that cannot be opened (corrupt, unreadable) ends the session.
pub(crate) fn run(ctx: &Ctx) -> CliResult<()> {
    loop {
        let mut store = ctx.open()?;
        let pools = manage::status(&mut store, None)?;
        println!();
        println!("Credential Pool Status");
        println!("{}", "=".repeat(50));
        print!("{}", pools_text(&pools));
        println!();
        println!("What would you like to do?");
        println!("  1. Add a credential");
        println!("  2. Remove a credential");
        println!("  3. Reset cooldowns for a provider");
        println!("  4. Set rotation strategy for a provider");
        println!("  5. Exit");
        let Some(choice) = prompt::line("Choice [1-5]: ")? else {
            return Ok(());
        };
        let result = match choice.as_str() {
            "1" => add(ctx),
            "2" => remove(ctx),
            "3" => reset(ctx),
            "4" => strategy(ctx),
            "5" | "q" | "quit" | "exit" => return Ok(()),
            _ => {
                println!("Please type a number from 1 to 5.");
                Ok(Flow::Continue)
            }
        };
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => return Ok(()),
            Err(e) => eprintln!("{e}"),
        }
    }
}

/// Asks for a provider (`adding`: any known provider or custom endpoint; else a pool of
/// the store, the only one by default).
/// Blank cancels (`None`).
fn ask_provider(ctx: &Ctx, adding: bool) -> CliResult<Option<Option<PoolKey>>> {
    let store = ctx.open()?;
    let keys = existing_keys(&store);
    let with_entries: Vec<&PoolKey> = keys
        .iter()
        .filter(|k| {
            store
                .registry()
                .pool(k)
                .is_ok_and(|p| !p.entries().is_empty())
        })
        .collect();
    if !adding && with_entries.is_empty() {
        println!("No credentials yet.");
        return Ok(Some(None));
    }
    let prompt_text = if adding {
        let known: Vec<&str> = PROVIDERS.iter().map(|p| p.id).collect();
        println!("Providers: {}", known.join(", "));
        println!("A custom endpoint: custom:<name>.");
        "Provider (blank to cancel): ".to_owned()
    } else if let [only] = with_entries.as_slice() {
        format!("Provider [{only}]: ")
    } else {
        let names: Vec<String> = with_entries.iter().map(ToString::to_string).collect();
        format!("Provider ({}; blank to cancel): ", names.join(", "))
    };
    let Some(answer) = prompt::line(&prompt_text)? else {
        return Ok(None);
    };
    if answer.is_empty() {
        return Ok(Some(match (adding, with_entries.as_slice()) {
            (false, [only]) => Some((*only).clone()),
            _ => None,
        }));
    }
    Ok(Some(Some(resolve_provider(&answer, &keys, false)?)))
}

/// Menu 1: add an API key, or pasted OAuth tokens.
fn add(ctx: &Ctx) -> CliResult<Flow> {
    let key = match ask_provider(ctx, true)? {
        None => return Ok(Flow::Quit),
        Some(None) => return Ok(Flow::Continue),
        Some(Some(key)) => key,
    };
    let mut store = ctx.open()?;
    let base_url = match base_url_for(&store, &key, None) {
        Ok(url) => url,
        Err(_) => {
            let url = ask!(&format!("Base URL of the custom endpoint {key}: "));
            if url.is_empty() {
                return Ok(Flow::Continue);
            }
            Some(url)
        }
    };
    let oauth_capable = provider(key.as_str()).is_some_and(|p| p.oauth);
    let can_log_in = crate::login::has_flow(key.as_str());
    let mut oauth = false;
    if oauth_capable {
        println!("{key} supports both API keys and OAuth login.");
        println!("  1. API key");
        if can_log_in {
            println!("  2. OAuth login (credpool runs {key}'s login: a URL to open)");
            println!("  3. OAuth tokens pasted from the provider's own login tool");
            let answer = ask!("API key or OAuth login? [1/2/3]: ");
            if answer == "2" {
                drop(store);
                let label = ask!("Label / account name (optional, default from the login): ");
                crate::login::login(ctx, &crate::login::LoginArgs::new(key.as_str(), label))?;
                return Ok(Flow::Continue);
            }
            oauth = answer == "3";
        } else {
            println!("  2. OAuth login (tokens from the provider's own login tool)");
            let answer = ask!("API key or OAuth login? [1/2]: ");
            oauth = answer == "2";
        }
    }
    let mut new = NewCredential {
        oauth,
        base_url,
        ..NewCredential::default()
    };
    if oauth {
        println!(
            "Complete the login with {key}'s own tool, then paste the access token and \
             refresh token it stored."
        );
        let Some(access) = prompt::secret("Access token (input hidden): ")? else {
            println!("No token given; nothing added.");
            return Ok(Flow::Continue);
        };
        new.secret = access;
        new.refresh = prompt::secret("Refresh token (input hidden, blank if none): ")?;
        let expires = ask!("Access token expires in how many seconds? (blank if unknown): ");
        if !expires.is_empty() {
            new.expires_in = Some(expires.parse().map_err(|_| {
                CliError::usage("invalid_input", "the expiry must be a number of seconds")
            })?);
        }
    } else {
        let Some(secret) = prompt::secret("API key (input hidden): ")? else {
            println!("No key given; nothing added.");
            return Ok(Flow::Continue);
        };
        new.secret = secret;
    }
    let label = ask!("Label / account name (optional): ");
    new.label = Some(label);
    let entry = add_credential(&mut store, &key, new)?;
    println!(
        "Added {key} credential #{}: \"{}\" (id {})",
        entry.index, entry.label, entry.id
    );
    Ok(Flow::Continue)
}

/// Menu 2: remove a credential by index, id or label.
fn remove(ctx: &Ctx) -> CliResult<Flow> {
    let key = match ask_provider(ctx, false)? {
        None => return Ok(Flow::Quit),
        Some(None) => return Ok(Flow::Continue),
        Some(Some(key)) => key,
    };
    let mut store = ctx.open()?;
    let pool = pool_status(&mut store, &key)?;
    for e in &pool.entries {
        println!(
            "  #{}  {:<25} {:<10} {} {} [id:{}]",
            e.index,
            e.label,
            wire_name(&e.auth_type),
            e.source,
            e.text,
            e.id
        );
    }
    let target = ask!("Remove #, id, or label (blank to cancel): ");
    if target.is_empty() {
        return Ok(Flow::Continue);
    }
    let entry = remove_in(&mut store, &key, &target)?;
    println!(
        "Removed {key} credential #{} ({}, id {})",
        entry.index, entry.label, entry.id
    );
    Ok(Flow::Continue)
}

/// Menu 3: reset every cooldown of a pool.
fn reset(ctx: &Ctx) -> CliResult<Flow> {
    let key = match ask_provider(ctx, false)? {
        None => return Ok(Flow::Quit),
        Some(None) => return Ok(Flow::Continue),
        Some(Some(key)) => key,
    };
    let mut store = ctx.open()?;
    let (_, count) = reset_in(&mut store, &key, None)?;
    println!("Reset {key}: cleared the status of {count} credential(s)");
    Ok(Flow::Continue)
}

/// Menu 4: pick a strategy for a pool (the current one is marked).
fn strategy(ctx: &Ctx) -> CliResult<Flow> {
    let key = match ask_provider(ctx, false)? {
        None => return Ok(Flow::Quit),
        Some(None) => return Ok(Flow::Continue),
        Some(Some(key)) => key,
    };
    let mut store = ctx.open()?;
    let (current, _, _) = current_config(&store, &key);
    println!("Rotation strategy for {key}:");
    for (i, (choice, description)) in StrategyArg::ALL.iter().enumerate() {
        let name = wire_name(&choice.strategy());
        let marker = if choice.strategy() == current {
            format!(" {NEXT_MARKER}")
        } else {
            String::new()
        };
        println!("  {}. {name:<12} {description}{marker}", i + 1);
    }
    let answer = ask!("Choice [1-4] (blank to cancel): ");
    if answer.is_empty() {
        return Ok(Flow::Continue);
    }
    let Some((choice, _)) = answer
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_sub(1))
        .and_then(|i| StrategyArg::ALL.get(i))
    else {
        println!("Please type a number from 1 to 4.");
        return Ok(Flow::Continue);
    };
    set_strategy(&mut store, &key, *choice)?;
    println!("Strategy of {key}: {}", wire_name(&choice.strategy()));
    Ok(Flow::Continue)
}
