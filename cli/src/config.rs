//! `credpool strategy` and `credpool policy`: show or set how a pool picks entries and
//! reacts to outcomes.

use clap::ValueEnum;
use credpool_core::{Input, PoolKey, Preset, Strategy};
use credpool_store::Store;
use serde_json::json;

use crate::exit::CliResult;
use crate::manage::{Ctx, pool_key};
use crate::output::{print_json, wire_name};

/// Strategies, as the command line spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StrategyArg {
    /// Use the first key until it is benched, then the next (default).
    #[value(name = "fill_first", alias = "fill-first")]
    FillFirst,
    /// Cycle through the keys evenly.
    #[value(name = "round_robin", alias = "round-robin")]
    RoundRobin,
    /// Always pick the least-used key.
    #[value(name = "least_used", alias = "least-used")]
    LeastUsed,
    /// Random selection.
    #[value(name = "random")]
    Random,
}

impl StrategyArg {
    /// Every strategy with its one-line description (the interactive menu).
    pub(crate) const ALL: [(Self, &'static str); 4] = [
        (Self::FillFirst, "Use first key until exhausted, then next"),
        (Self::RoundRobin, "Cycle through keys evenly"),
        (Self::LeastUsed, "Always pick the least-used key"),
        (Self::Random, "Random selection"),
    ];

    /// Core's strategy.
    pub(crate) fn strategy(self) -> Strategy {
        match self {
            Self::FillFirst => Strategy::FillFirst,
            Self::RoundRobin => Strategy::RoundRobin,
            Self::LeastUsed => Strategy::LeastUsed,
            Self::Random => Strategy::Random,
        }
    }
}

/// Policy presets, as the command line spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum PolicyArg {
    /// The documented Hermes agent behaviour (default).
    Hermes,
    /// credpool's own: rotate early, escalating jittered cooldowns, bounded retries.
    Adaptive,
}

/// Sets a pool's strategy (creating the pool when missing); returns whether it changed.
pub(crate) fn set_strategy(
    store: &mut Store,
    key: &PoolKey,
    strategy: StrategyArg,
) -> CliResult<bool> {
    let input = Input::ConfigurePool {
        pool: key.clone(),
        strategy: Some(strategy.strategy()),
        policy: None,
        fallback: None,
        api: None,
    };
    Ok(store.handle(credpool_store::now(), input)?.changed)
}

/// The strategy and policy in force for `key` (defaults when the store has no such pool).
pub(crate) fn current_config(store: &Store, key: &PoolKey) -> (Strategy, Preset, bool) {
    match store.registry().pool(key) {
        Ok(pool) => (pool.config().strategy, pool.config().policy.preset, true),
        Err(_) => (Strategy::default(), Preset::default(), false),
    }
}

/// `credpool strategy <provider> [value]`.
pub(crate) fn strategy(ctx: &Ctx, provider: &str, value: Option<StrategyArg>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let changed = match value {
        Some(value) => Some(set_strategy(&mut store, &key, value)?),
        None => None,
    };
    let (strategy, _, exists) = current_config(&store, &key);
    let name = wire_name(&strategy);
    if ctx.json {
        print_json(&json!({ "pool": key, "strategy": name, "changed": changed.unwrap_or(false) }));
    } else if changed.is_some() {
        println!("Strategy of {key}: {name}");
    } else {
        println!("{name}{}", if exists { "" } else { " (default)" });
    }
    Ok(())
}

/// `credpool policy <provider> [hermes|adaptive]`.
pub(crate) fn policy(ctx: &Ctx, provider: &str, value: Option<PolicyArg>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let changed = match value {
        Some(value) => {
            let preset = match value {
                PolicyArg::Hermes => "hermes",
                PolicyArg::Adaptive => "adaptive",
            };
            let input = Input::ConfigurePool {
                pool: key.clone(),
                strategy: None,
                policy: Some(json!({ "preset": preset })),
                fallback: None,
                api: None,
            };
            Some(store.handle(credpool_store::now(), input)?.changed)
        }
        None => None,
    };
    let (_, preset, exists) = current_config(&store, &key);
    let name = wire_name(&preset);
    if ctx.json {
        print_json(&json!({ "pool": key, "policy": name, "changed": changed.unwrap_or(false) }));
    } else if changed.is_some() {
        println!("Policy of {key}: {name}");
    } else {
        println!("{name}{}", if exists { "" } else { " (default)" });
    }
    Ok(())
}
