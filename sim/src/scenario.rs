//! The scenario file: pools of simulated keys, their limits and incidents, and the workload.
//!
//! The built-in default is `sim/scenarios/default.json`, embedded at build time, so the file
//! in the repository IS the default and documents the format by example; `small.json` is a
//! quick one (a browser preview, tests).

use std::collections::BTreeSet;

use credpool_core::{CallStart, EntryId, PoolKey, Strategy};
use serde::Deserialize;

/// The built-in default scenario (`sim/scenarios/default.json`).
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.json");
/// A small scenario: 60 requests, two keys (`sim/scenarios/small.json`).
pub const SMALL_SCENARIO: &str = include_str!("../scenarios/small.json");
/// A quick look at every incident (quota, revocation, OAuth expiry, 5xx burst, fallback):
/// 90 requests, four rows (`sim/scenarios/preview.json`); fast enough for a browser.
pub const PREVIEW_SCENARIO: &str = include_str!("../scenarios/preview.json");

/// The built-in scenarios by name: `default`, `small`, `preview`.
pub const PRESETS: [(&str, &str); 3] = [
    ("default", DEFAULT_SCENARIO),
    ("small", SMALL_SCENARIO),
    ("preview", PREVIEW_SCENARIO),
];

/// The text of a built-in scenario, by name ([`PRESETS`]).
pub fn preset_text(name: &str) -> Option<&'static str> {
    PRESETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

/// Largest workload a scenario may ask for (keeps a typo from running for hours).
const MAX_REQUESTS: u32 = 200_000;
/// Most agents a scenario may run.
const MAX_AGENTS: u32 = 64;

/// A whole scenario.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, printed in the header.
    pub name: String,
    /// What the scenario exercises (free text).
    #[serde(default)]
    pub description: String,
    /// Simulated start instant, epoch seconds (daily quotas reset at UTC midnight).
    pub start_epoch_s: u64,
    /// Agent processes sharing one store.
    pub agents: u32,
    /// Requests in the workload (all agents together).
    pub requests: u32,
    /// Mean arrival rate of requests, per minute (all agents together).
    pub rate_per_min: f64,
    /// Provider latency of a successful call, `[min, max]` ms (errors take `error_latency_ms`).
    #[serde(default = "default_latency")]
    pub latency_ms: [u64; 2],
    /// Provider latency of an error answer, ms.
    #[serde(default = "default_error_latency")]
    pub error_latency_ms: u64,
    /// Latency of one OAuth refresh call, ms.
    #[serde(default = "default_refresh_latency")]
    pub refresh_latency_ms: u64,
    /// The budgets of every request, passed to the call driver as they are: see
    /// [`CallStart`] (SPEC §7) for their meaning and defaults; absent: the default.
    #[serde(default)]
    pub max_sends: Option<u32>,
    /// [`CallStart::max_wait_ms`].
    #[serde(default)]
    pub max_wait_ms: Option<u64>,
    /// [`CallStart::max_total_wait_ms`].
    #[serde(default)]
    pub max_total_wait_ms: Option<u64>,
    /// [`CallStart::max_hops`].
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// Policies compared (`hermes`, `adaptive`, or a policy object as `configure_pool` takes).
    #[serde(default = "default_policies")]
    pub policies: Vec<serde_json::Value>,
    /// Strategies compared.
    #[serde(default = "default_strategies")]
    pub strategies: Vec<Strategy>,
    /// Also run each policy with fill_first and NO shared store (every agent its own pool).
    #[serde(default)]
    pub isolated_baseline: bool,
    /// The pools.
    pub pools: Vec<PoolSpec>,
}

/// One pool: a provider account with several keys.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// Pool key (`openai`, `anthropic`, `custom:name`, ...).
    pub pool: PoolKey,
    /// Share of the workload sent here (0: only reached through a fallback).
    #[serde(default)]
    pub weight: u32,
    /// Model requested from this pool.
    #[serde(default)]
    pub model: Option<String>,
    /// Response shape of errors: `openai` (default) or `anthropic` (5xx are 529 overloaded).
    #[serde(default)]
    pub flavor: Flavor,
    /// Fallback chain.
    #[serde(default)]
    pub fallback: Vec<credpool_core::FallbackTarget>,
    /// Windows where the provider answers 5xx for every key of the pool.
    #[serde(default)]
    pub outages: Vec<Outage>,
    /// The keys.
    pub keys: Vec<KeySpec>,
}

/// Response shapes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// OpenAI-shaped errors.
    #[default]
    Openai,
    /// Anthropic-shaped errors.
    Anthropic,
}

/// A 5xx burst.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// Start, seconds after the scenario start.
    pub from_s: u64,
    /// End (exclusive), seconds after the scenario start.
    pub to_s: u64,
    /// Status answered (500..=599).
    #[serde(default = "default_outage_status")]
    pub status: u16,
}

/// Which reset hint a key's rate-limit 429 carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HintStyle {
    /// `retry-after: <seconds>`.
    #[default]
    RetryAfter,
    /// `x-ratelimit-reset: <seconds>` (relative).
    XRatelimitReset,
    /// No hint at all: the policy's default cooldown applies.
    None,
}

/// One simulated key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySpec {
    /// Entry id (unique over the scenario).
    pub id: EntryId,
    /// Requests per minute (sliding 60 s window); absent: unlimited.
    #[serde(default)]
    pub rpm: Option<u32>,
    /// Successful requests per UTC day, then 429 `usage_limit_reached` until midnight.
    #[serde(default)]
    pub daily_quota: Option<u32>,
    /// Requests already spent today when the scenario starts.
    #[serde(default)]
    pub used_today: u32,
    /// The hint on rate-limit 429s.
    #[serde(default)]
    pub hint: HintStyle,
    /// From this second on, the key answers 401 `token_revoked`.
    #[serde(default)]
    pub revoked_at_s: Option<u64>,
    /// An OAuth login (access token expiring, rotating single-use refresh token).
    #[serde(default)]
    pub oauth: Option<OauthSpec>,
}

/// OAuth parameters of a key.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OauthSpec {
    /// Lifetime of each access token, seconds.
    pub token_ttl_s: u64,
    /// Lifetime of the first access token (default `token_ttl_s`).
    #[serde(default)]
    pub first_expiry_s: Option<u64>,
}

fn default_latency() -> [u64; 2] {
    [400, 2_000]
}
const fn default_error_latency() -> u64 {
    150
}
const fn default_refresh_latency() -> u64 {
    300
}
const fn default_outage_status() -> u16 {
    503
}
fn default_policies() -> Vec<serde_json::Value> {
    vec!["hermes".into(), "adaptive".into()]
}
fn default_strategies() -> Vec<Strategy> {
    vec![
        Strategy::FillFirst,
        Strategy::RoundRobin,
        Strategy::LeastUsed,
        Strategy::Random,
    ]
}

impl Scenario {
    /// Parses and validates a scenario; the error is one line naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let scenario: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Validates a scenario given as a JSON value (as a binding receives it).
    pub fn from_value(value: serde_json::Value) -> Result<Self, String> {
        let scenario: Self = serde_json::from_value(value).map_err(|e| e.to_string())?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// The built-in default.
    pub fn builtin() -> Self {
        // The embedded file is checked by a unit test; a broken one is a build bug.
        Self::parse(DEFAULT_SCENARIO).unwrap_or_else(|e| panic!("built-in scenario: {e}"))
    }

    /// The built-in small scenario.
    pub fn small() -> Self {
        Self::parse(SMALL_SCENARIO).unwrap_or_else(|e| panic!("small scenario: {e}"))
    }

    /// A built-in scenario by name ([`PRESETS`]).
    pub fn preset(name: &str) -> Option<Self> {
        // The embedded files are checked by a unit test; a broken one is a build bug.
        preset_text(name).map(|text| Self::parse(text).unwrap_or_else(|e| panic!("{name}: {e}")))
    }

    /// The call driver's input for one request on `pool`, with the scenario's budgets.
    pub fn call_start(&self, pool: PoolKey, model: Option<String>) -> CallStart {
        CallStart {
            model,
            max_sends: self.max_sends,
            max_wait_ms: self.max_wait_ms,
            max_total_wait_ms: self.max_total_wait_ms,
            max_hops: self.max_hops,
            ..CallStart::new(pool)
        }
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("`name` must not be empty".into());
        }
        if !(1..=MAX_AGENTS).contains(&self.agents) {
            return Err(format!("`agents` must be within 1..={MAX_AGENTS}"));
        }
        if !(1..=MAX_REQUESTS).contains(&self.requests) {
            return Err(format!("`requests` must be within 1..={MAX_REQUESTS}"));
        }
        if !(self.rate_per_min.is_finite() && self.rate_per_min > 0.0 && self.rate_per_min <= 1e6) {
            return Err("`rate_per_min` must be a positive number".into());
        }
        if self.latency_ms[0] > self.latency_ms[1] || self.latency_ms[1] > 600_000 {
            return Err("`latency_ms` must be [min, max] with min <= max <= 600000".into());
        }
        if self.max_sends.is_some_and(|n| !(1..=1_000).contains(&n)) {
            return Err("`max_sends` must be within 1..=1000".into());
        }
        if self.policies.is_empty() || self.strategies.is_empty() {
            return Err("`policies` and `strategies` must not be empty".into());
        }
        for policy in &self.policies {
            policy_from(policy)?;
        }
        if self.pools.is_empty() {
            return Err("`pools` must not be empty".into());
        }
        let mut pools = BTreeSet::new();
        let mut ids = BTreeSet::new();
        for pool in &self.pools {
            let name = pool.pool.as_str();
            if !pools.insert(pool.pool.clone()) {
                return Err(format!("pool `{name}` appears twice"));
            }
            if pool.keys.is_empty() {
                return Err(format!("pool `{name}` has no keys"));
            }
            for key in &pool.keys {
                if !ids.insert(key.id.clone()) {
                    return Err(format!("key id `{}` appears twice", key.id));
                }
                if key.rpm == Some(0) {
                    return Err(format!("key `{}`: `rpm` must be at least 1", key.id));
                }
                if let Some(oauth) = &key.oauth
                    && oauth.token_ttl_s == 0
                {
                    return Err(format!("key `{}`: `token_ttl_s` must be positive", key.id));
                }
            }
            for outage in &pool.outages {
                if outage.from_s >= outage.to_s || !(500..=599).contains(&outage.status) {
                    return Err(format!(
                        "pool `{name}`: an outage needs from_s < to_s and a 5xx status"
                    ));
                }
            }
        }
        for pool in &self.pools {
            for target in &pool.fallback {
                if !pools.contains(&target.pool) {
                    return Err(format!(
                        "pool `{}` falls back to unknown pool `{}`",
                        pool.pool.as_str(),
                        target.pool.as_str()
                    ));
                }
                if target.pool == pool.pool {
                    return Err(format!(
                        "pool `{}` cannot fall back to itself",
                        pool.pool.as_str()
                    ));
                }
            }
        }
        if self.pools.iter().all(|p| p.weight == 0) {
            return Err("at least one pool needs a positive `weight`".into());
        }
        Ok(())
    }
}

/// A policy entry of the scenario as core's policy, and its display name.
pub fn policy_from(value: &serde_json::Value) -> Result<(String, credpool_core::Policy), String> {
    let (name, object) = match value {
        serde_json::Value::String(name) => {
            (Some(name.clone()), serde_json::json!({ "preset": name }))
        }
        serde_json::Value::Object(fields) => {
            let mut fields = fields.clone();
            let name = match fields.remove("name") {
                Some(serde_json::Value::String(name)) => Some(name),
                None => None,
                Some(_) => return Err("a policy's `name` must be a string".into()),
            };
            (name, serde_json::Value::Object(fields))
        }
        _ => return Err("a policy is a preset name or an object".into()),
    };
    let policy = credpool_core::Policy::from_value(&object)
        .map_err(|e| format!("bad policy: {}", e.message()))?;
    let name = name.unwrap_or_else(|| format!("{:?}*", policy.preset).to_lowercase());
    Ok((name, policy))
}

/// The snake_case name of a strategy.
pub fn strategy_name(strategy: Strategy) -> String {
    wire_name(&strategy)
}

/// The snake_case wire name of a unit enum value (a strategy, a reason, a budget).
pub(crate) fn wire_name(value: &impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parses() {
        let s = Scenario::builtin();
        assert_eq!(s.name, "default");
        assert!(s.pools.len() >= 2);
        assert_eq!(Scenario::small().name, "small");
        for (name, _) in PRESETS {
            assert_eq!(
                Scenario::preset(name).map(|s| s.name).as_deref(),
                Some(name)
            );
        }
        assert!(Scenario::preset("nope").is_none());
        let value: serde_json::Value =
            serde_json::from_str(SMALL_SCENARIO).unwrap_or_else(|e| panic!("{e}"));
        let parsed = Scenario::from_value(value).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.requests, Scenario::small().requests);
    }

    #[test]
    fn errors_are_one_line() {
        for bad in [
            "{",
            r#"{"name":"x"}"#,
            r#"{"name":"x","start_epoch_s":0,"agents":0,"requests":1,"rate_per_min":1,"pools":[]}"#,
        ] {
            let e = Scenario::parse(bad).err().unwrap_or_default();
            assert!(!e.is_empty() && !e.contains('\n'), "{e}");
        }
    }
}
