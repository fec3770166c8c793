//! WebAssembly module of the simulator (`credpool-sim`, the engine of `credpool simulate`):
//! `simulate`, `defaultScenario`, `scenarioPreset`.
//!
//! Its own module, separate from `credpool-wasm` (the binding of the engine), so the
//! binding stays small: the config preview page (bindings-wasm/www) loads it only for its
//! timeline. Errors are JS `Error`s with `name = "CredpoolError"` and a stable `code`,
//! panics included (see `js::guard`).

#[path = "../../bindings-wasm/src/js.rs"]
mod js;

use credpool_core::ErrorCode;
use js::{JsResult, core_error, error, from_js, guard, to_js, to_u64};
use serde_json::Value;
use wasm_bindgen::prelude::*;

/// The wire types (core/wire.d.ts) the scenario types refer to (`Strategy`, `FallbackTarget`).
#[wasm_bindgen(typescript_custom_section)]
const WIRE_TYPES: &str = include_str!("../../core/wire.d.ts");

/// The version of credpool-core inside this build.
#[wasm_bindgen]
pub fn version() -> String {
    credpool_core::VERSION.to_owned()
}

/// `simulate(scenario?, seed?)`: runs a scenario of `credpool simulate` (the same engine:
/// simulated provider, agents sharing one store, simulated time) and returns its rows (as
/// `credpool simulate --json`), the timeline of every row, and the SVG of `--svg`.
/// `scenario`: an object (the scenario file format), a preset name (`"default"`,
/// `"small"`, `"preview"`: the quick one for a browser), or nothing for the default. `seed`: a non-negative safe integer (default 1).
/// Throws `invalid_input` for a bad scenario or seed.
#[wasm_bindgen(js_name = "simulate", unchecked_return_type = "SimulationResult")]
pub fn simulate(
    #[wasm_bindgen(unchecked_param_type = "Scenario | ScenarioPreset | null")] scenario: JsValue,
    seed: Option<f64>,
) -> JsResult<JsValue> {
    guard(|| run(scenario, seed))
}

fn run(scenario: JsValue, seed: Option<f64>) -> JsResult<JsValue> {
    let seed = match seed {
        None => 1,
        Some(seed) => to_u64(seed).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                "seed must be a non-negative safe integer",
            )
        })?,
    };
    let scenario = match from_js(scenario)? {
        Value::Null => credpool_sim::Scenario::builtin(),
        Value::String(name) => credpool_sim::Scenario::preset(&name).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                &format!("unknown scenario preset `{name}` (default, small, preview)"),
            )
        })?,
        value => credpool_sim::Scenario::from_value(value).map_err(|e| {
            error(
                ErrorCode::InvalidInput,
                &format!("bad scenario: {}", e.replace('\n', " ")),
            )
        })?,
    };
    let result = credpool_sim::report::preview(&scenario, seed).map_err(|e| core_error(&e))?;
    to_js(&result)
}

/// `defaultScenario()`: the built-in scenario of `credpool simulate` (a starting point).
#[wasm_bindgen(js_name = "defaultScenario", unchecked_return_type = "Scenario")]
pub fn default_scenario() -> JsResult<JsValue> {
    guard(|| preset(credpool_sim::DEFAULT_SCENARIO))
}

/// `scenarioPreset(name)`: a built-in scenario by name (`default`, `small`, `preview`).
/// Throws `invalid_input` for another name.
#[wasm_bindgen(js_name = "scenarioPreset", unchecked_return_type = "Scenario")]
pub fn scenario_preset(
    #[wasm_bindgen(unchecked_param_type = "ScenarioPreset")] name: &str,
) -> JsResult<JsValue> {
    guard(|| {
        let text = credpool_sim::preset_text(name).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                &format!("unknown scenario preset `{name}` (default, small, preview)"),
            )
        })?;
        preset(text)
    })
}

fn preset(text: &str) -> JsResult<JsValue> {
    let value: Value = serde_json::from_str(text)
        .map_err(|_| error(ErrorCode::Internal, "the built-in scenario is not JSON"))?;
    to_js(&value)
}

/// The types of `simulate` and its scenarios.
#[wasm_bindgen(typescript_custom_section)]
const SIMULATE_TYPES: &str = r#"
/** Built-in scenarios of `simulate` (`preview`: every incident in four quick rows, for a browser). */
export type ScenarioPreset = 'default' | 'small' | 'preview'

/** A scenario of `credpool simulate` (the format of sim/scenarios/default.json). Times are seconds after the start. */
export interface Scenario {
  name: string
  description?: string
  /** Simulated start, epoch seconds (daily quotas reset at UTC midnight). */
  start_epoch_s: number
  /** Agent processes sharing one store (1..=64). */
  agents: number
  /** Requests of the workload, all agents together (1..=200000). */
  requests: number
  /** Mean arrival rate, per minute. */
  rate_per_min: number
  /** Latency of a successful call, [min, max] ms (default [400, 2000]). */
  latency_ms?: [number, number]
  error_latency_ms?: number
  refresh_latency_ms?: number
  /** The call driver's budgets per request (SPEC §7; absent: the driver's defaults). */
  /** Provider sends per request. */
  max_sends?: number
  /** Longest single wait or retry delay, ms. */
  max_wait_ms?: number
  /** All waits of one request, ms. */
  max_total_wait_ms?: number
  /** Fallback hops. */
  max_hops?: number
  /** Policies compared: a preset name or a policy object with an optional display `name`. */
  policies?: Array<string | ({ name?: string } & Record<string, unknown>)>
  /** Strategies compared. */
  strategies?: Strategy[]
  /** Also run each policy with the first strategy and no shared store. */
  isolated_baseline?: boolean
  pools: ScenarioPool[]
}

export interface ScenarioPool {
  pool: string
  /** Share of the workload (0: only reached through a fallback). */
  weight?: number
  model?: string | null
  flavor?: 'openai' | 'anthropic'
  fallback?: FallbackTarget[]
  /** 5xx bursts for every key of the pool. */
  outages?: Array<{ from_s: number; to_s: number; status?: number }>
  keys: ScenarioKey[]
}

export interface ScenarioKey {
  id: string
  rpm?: number | null
  daily_quota?: number | null
  used_today?: number
  hint?: 'retry-after' | 'x-ratelimit-reset' | 'none'
  revoked_at_s?: number | null
  oauth?: { token_ttl_s: number; first_expiry_s?: number | null } | null
}

/** One row of the comparison (as `credpool simulate --json`). */
export interface SimulationRow {
  policy: string
  strategy: Strategy
  /** `shared`: the agents share one store; `none`: every agent keeps its own state. */
  store: 'shared' | 'none'
  served: number
  failed: number
  /** 429 answers received. */
  rate_limited: number
  /** Simulated seconds spent in retry delays and waits. */
  wait_s: number
  /** Switches to another key after a failure. */
  rotations: number
  /** OAuth refresh calls. */
  refreshes: number
  /** Moves to the fallback chain. */
  fallbacks: number
  /** Spent refresh tokens presented again. */
  replays: number
  /** Failed requests by the driver's give-up reason (the budget that ran out in brackets). */
  failures: Record<string, number>
}

/** Outcome of one provider call: 2xx, 429, 401/403, 5xx. */
export type SimulationOutcome = 'served' | 'rate_limited' | 'auth' | 'server_error'

/** The events of one row; every time is ms after `SimulationTimeline.start_ms`. */
export interface SimulationTimelineRow {
  policy: string
  strategy: Strategy
  store: 'shared' | 'none'
  /** When the row's last request finished. */
  end_ms: number
  /** Every provider call: which key, which agent (0-based), how it went. */
  requests: Array<{ t_ms: number; key: string; agent: number; outcome: SimulationOutcome }>
  /** Keys benched by the engine: [from_ms, until_ms); `until_ms` null (`dead`): for good. */
  cooldowns: Array<{ key: string; from_ms: number; until_ms: number | null; dead: boolean }>
  /** Requests moved to the fallback chain, from pool to pool. */
  fallbacks: Array<{ t_ms: number; from: string; to: string }>
}

export interface SimulationTimeline {
  /** Scenario start, epoch ms. */
  start_ms: number
  /** Latest end over the rows, ms after the start. */
  end_ms: number
  agents: number
  /** Keys in lane order. */
  keys: Array<{ pool: string; key: string }>
  /** One per row, in the order of `SimulationResult.rows`. */
  rows: SimulationTimelineRow[]
}

/** What `simulate` returns: the `--json` report plus the timeline and the `--svg` document. */
export interface SimulationResult {
  scenario: string
  description: string
  seed: number
  requests: number
  agents: number
  rows: SimulationRow[]
  timeline: SimulationTimeline
  /** A standalone SVG document of every row's timeline. */
  svg: string
}
"#;
