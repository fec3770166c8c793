//! WebAssembly binding of `credpool-core` (wasm-bindgen): convert in, call core, convert out.
//!
//! Same JS surface as the Node binding (`bindings-node`): class `Registry` with
//! `handle(input, now?)` and camelCase convenience methods, plus `errorCodes()`.
//! Errors are real JS `Error`s with `name = "CredpoolError"` and a stable `code`.
//! The binding reads the wall clock (`Date.now()`) and `crypto.getRandomValues`
//! (default writer and seed); core never does. Built with `panic = "abort"`, so inputs
//! are validated here rather than relying on unwinding.

use credpool_core::{ErrorCode, Millis, Options};
use serde::Serialize;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value, json};
use wasm_bindgen::prelude::*;

/// Largest clock value accepted: 2^53 ms (JS safe-integer range).
const MAX_CLOCK: f64 = 9_007_199_254_740_992.0;

type JsResult<T> = Result<T, JsValue>;

/// A coded JS error (`name = "CredpoolError"`, `code` = stable snake_case code).
fn error(code: ErrorCode, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("CredpoolError");
    let _ = js_sys::Reflect::set(
        &e,
        &JsValue::from_str("code"),
        &JsValue::from_str(code.as_str()),
    );
    e.into()
}

fn core_error(e: &credpool_core::Error) -> JsValue {
    error(e.code(), e.message())
}

/// A credential registry: all pools of one process.
#[wasm_bindgen]
pub struct Registry {
    inner: credpool_core::Registry,
}

#[wasm_bindgen]
impl Registry {
    /// `new Registry({ writer?, seed?, state? })`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(unchecked_param_type = "RegistryOptions")] options: Option<js_sys::Object>,
    ) -> JsResult<Self> {
        let options: JsValue = options.into();
        let options = if options.is_undefined() || options.is_null() {
            Map::new()
        } else {
            match from_js(options)? {
                Value::Object(map) => map,
                _ => return Err(error(ErrorCode::InvalidInput, "options must be an object")),
            }
        };
        let seed = match options.get("seed") {
            None | Some(Value::Null) => random_u64()?,
            Some(v) => v.as_f64().and_then(to_u64).ok_or_else(|| {
                error(
                    ErrorCode::InvalidInput,
                    "seed must be a non-negative safe integer",
                )
            })?,
        };
        let writer = match options.get("writer") {
            None | Some(Value::Null) => format!("{:012x}", random_u64()? & 0xffff_ffff_ffff),
            Some(Value::String(s)) => s.clone(),
            Some(_) => return Err(error(ErrorCode::InvalidInput, "writer must be a string")),
        };
        let opts = Options { writer, seed };
        let inner = match options.get("state") {
            None | Some(Value::Null) => credpool_core::Registry::new(opts),
            Some(state) => credpool_core::Registry::from_state(state, opts),
        }
        .map_err(|e| core_error(&e))?;
        Ok(Self { inner })
    }

    /// Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: `Date.now()`).
    #[wasm_bindgen(unchecked_return_type = "Output")]
    pub fn handle(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Input")] input: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let now = clock(now)?;
        let input = from_js(input)?;
        self.apply(input, now)
    }

    /// `acquire`: pick an entry for a request.
    #[wasm_bindgen(unchecked_return_type = "DecisionOutput")]
    pub fn acquire(
        &mut self,
        pool: String,
        #[wasm_bindgen(unchecked_param_type = "{ model?: string; session?: string }")] opts: Option<
            js_sys::Object,
        >,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let mut input = object(opts.into(), "opts")?;
        input.insert("pool".into(), Value::String(pool));
        self.call("acquire", input, now)
    }

    /// `report`: a request's outcome against its lease.
    #[wasm_bindgen(unchecked_return_type = "DecisionOutput")]
    pub fn report(
        &mut self,
        pool: String,
        lease_id: f64,
        #[wasm_bindgen(unchecked_param_type = "ResponseInfo")] response: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let response = from_js(response)?;
        let input =
            json!({ "pool": pool, "lease_id": integer_value(lease_id), "response": response });
        self.call("report", into_map(input), now)
    }

    /// `release`: close a lease with no outcome (nothing is marked).
    #[wasm_bindgen(unchecked_return_type = "{ type: 'released'; lease_id: number } & Changed")]
    pub fn release(&mut self, pool: String, lease_id: f64, now: Option<f64>) -> JsResult<JsValue> {
        let input = json!({ "pool": pool, "lease_id": integer_value(lease_id) });
        self.call("release", into_map(input), now)
    }

    /// `reveal`: an entry's secrets, to send the request with (the only output carrying them).
    #[wasm_bindgen(unchecked_return_type = "CredentialOutput")]
    pub fn credential(
        &mut self,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let input = json!({ "pool": pool, "entry_id": entry_id });
        self.call("reveal", into_map(input), now)
    }

    /// `begin_turn`: restore pools from their fallback (one pool, or all).
    #[wasm_bindgen(
        js_name = "beginTurn",
        unchecked_return_type = "{ type: 'turn_begun'; restored: string[] } & Changed"
    )]
    pub fn begin_turn(&mut self, pool: Option<String>, now: Option<f64>) -> JsResult<JsValue> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("begin_turn", input, now)
    }

    /// `refresh_result`: how the refresh a `refresh` decision asked for ended.
    #[wasm_bindgen(js_name = "refreshResult", unchecked_return_type = "DecisionOutput")]
    pub fn refresh_result(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RefreshResultInput")] result: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let input = object(result, "result")?;
        self.call("refresh_result", input, now)
    }

    /// `check_refresh`: whether a refresh from `generation` is still needed.
    #[wasm_bindgen(
        js_name = "checkRefresh",
        unchecked_return_type = "{ type: 'refresh_check'; needed: boolean } & Changed"
    )]
    pub fn check_refresh(
        &mut self,
        pool: String,
        entry_id: String,
        generation: f64,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "generation": integer_value(generation) });
        self.call("check_refresh", into_map(input), now)
    }

    /// `sync`: merge another writer's exported state.
    #[wasm_bindgen(unchecked_return_type = "{ type: 'synced' } & Changed")]
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "StateDocument")] state: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let state = from_js(state)?;
        self.call("sync", into_map(json!({ "state": state })), now)
    }

    /// The persistable state document (contains the secrets of non-`env:` entries).
    #[wasm_bindgen(js_name = "exportState", unchecked_return_type = "StateDocument")]
    pub fn export_state(&mut self) -> JsResult<JsValue> {
        let mut input = Map::new();
        input.insert("type".into(), Value::String("export_state".into()));
        let mut out = self.apply_value(Value::Object(input), Millis(0))?;
        to_js(&out.get_mut("state").map(Value::take).unwrap_or(Value::Null))
    }

    /// `status`: status for humans (one pool, or all).
    #[wasm_bindgen(unchecked_return_type = "StatusOutput")]
    pub fn status(&mut self, pool: Option<String>, now: Option<f64>) -> JsResult<JsValue> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("status", input, now)
    }

    /// `tick`: let time pass; expired cooldowns clear and the next deadline is named.
    #[wasm_bindgen(
        unchecked_return_type = "{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed"
    )]
    pub fn tick(&mut self, now: Option<f64>) -> JsResult<JsValue> {
        self.call("tick", Map::new(), now)
    }

    /// `configure_pool`: create the pool if missing and set its strategy, policy, fallback.
    #[wasm_bindgen(
        js_name = "configurePool",
        unchecked_return_type = "{ type: 'pool_configured'; pool: string } & Changed"
    )]
    pub fn configure_pool(
        &mut self,
        pool: String,
        #[wasm_bindgen(
            unchecked_param_type = "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[] }"
        )]
        config: Option<js_sys::Object>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let mut input = object(config.into(), "config")?;
        input.insert("pool".into(), Value::String(pool));
        self.call("configure_pool", input, now)
    }

    /// `add_entry`: add a credential (creating the pool).
    #[wasm_bindgen(
        js_name = "addEntry",
        unchecked_return_type = "{ type: 'entry_added'; entry_id: string } & Changed"
    )]
    pub fn add_entry(
        &mut self,
        pool: String,
        #[wasm_bindgen(unchecked_param_type = "NewEntry")] entry: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let entry = from_js(entry)?;
        self.call(
            "add_entry",
            into_map(json!({ "pool": pool, "entry": entry })),
            now,
        )
    }

    /// `remove_entry`: remove a credential for good (tombstoned).
    #[wasm_bindgen(
        js_name = "removeEntry",
        unchecked_return_type = "{ type: 'entry_removed'; entry_id: string } & Changed"
    )]
    pub fn remove_entry(
        &mut self,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        self.call(
            "remove_entry",
            into_map(json!({ "pool": pool, "entry_id": entry_id })),
            now,
        )
    }

    /// `set_priority`: move an entry (lower is preferred).
    #[wasm_bindgen(
        js_name = "setPriority",
        unchecked_return_type = "{ type: 'entry_updated'; entry_id: string } & Changed"
    )]
    pub fn set_priority(
        &mut self,
        pool: String,
        entry_id: String,
        priority: f64,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "priority": integer_value(priority) });
        self.call("set_priority", into_map(input), now)
    }

    /// `reset`: clear status and cooldowns of one entry, or of every entry of the pool.
    #[wasm_bindgen(unchecked_return_type = "{ type: 'reset'; count: number } & Changed")]
    pub fn reset(
        &mut self,
        pool: String,
        entry_id: Option<String>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let mut input = into_map(json!({ "pool": pool }));
        if let Some(id) = entry_id {
            input.insert("entry_id".into(), Value::String(id));
        }
        self.call("reset", input, now)
    }

    /// `seed`: adopt credentials from an environment map and custom providers.
    #[wasm_bindgen(
        unchecked_return_type = "{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed"
    )]
    pub fn seed(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Record<string, string>")] env: Option<
            js_sys::Object,
        >,
        #[wasm_bindgen(unchecked_param_type = "{ custom_providers?: CustomProvider[] }")]
        config: Option<js_sys::Object>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let mut input = Map::new();
        for (key, value) in [
            ("env", from_js(env.into())?),
            ("config", from_js(config.into())?),
        ] {
            if !value.is_null() {
                input.insert(key.into(), value);
            }
        }
        self.call("seed", input, now)
    }
}

impl Registry {
    fn call(
        &mut self,
        kind: &str,
        mut input: Map<String, Value>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let now = clock(now)?;
        input.insert("type".into(), Value::String(kind.to_owned()));
        self.apply(Value::Object(input), now)
    }

    fn apply(&mut self, input: Value, now: Millis) -> JsResult<JsValue> {
        let value = self.apply_value(input, now)?;
        to_js(&value)
    }

    /// Applies one input; core validates before it mutates, so a failed call leaves the
    /// state untouched.
    fn apply_value(&mut self, input: Value, now: Millis) -> JsResult<Value> {
        #[cfg(feature = "test-panic")]
        test_panic(&input);
        let output = self
            .inner
            .handle_value(now, input)
            .map_err(|e| core_error(&e))?;
        serde_json::to_value(&output)
            .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))
    }
}

/// Test-only (`--features test-panic`): panics on `{"type": "__test_panic"}`, where core
/// would run. The build aborts on panic (`panic = "abort"`): without a hook the call traps
/// (`RuntimeError: unreachable`); the hook below throws a coded `internal` error first.
/// Either way the wasm frames are abandoned mid-call: that registry stays mutably borrowed,
/// the shadow stack pointer is not restored, and std's panic count stays at 1, so later
/// panics abort without the hook (bare trap). See tests/hostile/panic/panic.test.mjs.
#[cfg(feature = "test-panic")]
fn test_panic(input: &Value) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|_| {
            wasm_bindgen::throw_val(error(
                ErrorCode::Internal,
                "internal error (panic) inside credpool-core",
            ))
        }));
    });
    if input.get("type").and_then(Value::as_str) == Some("__test_panic") {
        panic!("credpool test-panic: forced panic");
    }
}

/// The wire types (core/wire.d.ts), shared with the Node package's `index.d.ts`.
#[wasm_bindgen(typescript_custom_section)]
const WIRE_TYPES: &str = include_str!("../../core/wire.d.ts");

/// Options of `new Registry(...)` (the Node package generates the same interface).
#[wasm_bindgen(typescript_custom_section)]
const REGISTRY_OPTIONS: &str = r#"
/** Options of `new Registry(...)`. */
export interface RegistryOptions {
  /** This process's writer id (default: 12 random hex characters). */
  writer?: string
  /** PRNG seed, a non-negative safe integer (default: from OS randomness). */
  seed?: number
  /** An exported state document to start from. */
  state?: StateDocument
}
"#;

/// The version of credpool-core inside this build (also the cheapest call into the module).
#[wasm_bindgen]
pub fn version() -> String {
    credpool_core::VERSION.to_owned()
}

/// Every stable error code, in core's declaration order.
#[wasm_bindgen(js_name = "errorCodes", unchecked_return_type = "ErrorCode[]")]
pub fn error_codes() -> Vec<String> {
    ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_owned())
        .collect()
}

/// `importHermes(authJson, now?)`: converts the `credential_pool` section of a Hermes
/// `auth.json` (parsed) into a credpool state document for `new Registry({ state })`.
/// Hermes times (epoch seconds) become ms; borrowed sources (`env:*`, `config:*`, ...)
/// keep only their fingerprint; the `providers` singletons are not imported.
/// Throws `invalid_state`, `foreign_document`, `unsupported_schema_version` or `too_large`.
#[wasm_bindgen(js_name = "importHermes", unchecked_return_type = "StateDocument")]
pub fn import_hermes(
    #[wasm_bindgen(js_name = "authJson", unchecked_param_type = "Record<string, unknown>")]
    auth_json: JsValue,
    now: Option<f64>,
) -> JsResult<JsValue> {
    let now = clock(now)?;
    let auth = from_js(auth_json)?;
    let state = credpool_core::import_hermes(&auth, now).map_err(|e| core_error(&e))?;
    let state = serde_json::to_value(&state)
        .map_err(|_| error(ErrorCode::Internal, "could not serialise the state"))?;
    to_js(&state)
}

/// `exportHermes(state, base?, now?)`: writes a Hermes `auth.json` object (`version: 1` and
/// `credential_pool`) from a credpool state document. With `base` (an existing `auth.json`),
/// its other top-level keys are kept and only `credential_pool` is replaced. Borrowed sources
/// carry no secret, only `secret_fingerprint`; removed entries are left out.
#[wasm_bindgen(
    js_name = "exportHermes",
    unchecked_return_type = "Record<string, unknown>"
)]
pub fn export_hermes(
    #[wasm_bindgen(unchecked_param_type = "StateDocument")] state: JsValue,
    #[wasm_bindgen(unchecked_param_type = "Record<string, unknown> | null")] base: JsValue,
    now: Option<f64>,
) -> JsResult<JsValue> {
    let now = clock(now)?;
    let state = from_js(state)?;
    let base = from_js(base)?;
    let base = (!base.is_null()).then_some(&base);
    let auth = credpool_core::export_hermes(&state, base, now).map_err(|e| core_error(&e))?;
    to_js(&auth)
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
    preset(credpool_sim::DEFAULT_SCENARIO)
}

/// `scenarioPreset(name)`: a built-in scenario by name (`default`, `small`, `preview`).
/// Throws `invalid_input` for another name.
#[wasm_bindgen(js_name = "scenarioPreset", unchecked_return_type = "Scenario")]
pub fn scenario_preset(
    #[wasm_bindgen(unchecked_param_type = "ScenarioPreset")] name: &str,
) -> JsResult<JsValue> {
    let text = credpool_sim::preset_text(name).ok_or_else(|| {
        error(
            ErrorCode::InvalidInput,
            &format!("unknown scenario preset `{name}` (default, small, preview)"),
        )
    })?;
    preset(text)
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
  /** Provider calls per request before giving up (default 12). */
  max_attempts?: number
  /** Longest single wait accepted, seconds (default 300). */
  max_wait_s?: number
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
  /** Failed requests by cause. */
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

fn from_js(value: JsValue) -> JsResult<Value> {
    if value.is_undefined() || value.is_null() {
        return Ok(Value::Null);
    }
    Bounded(MAX_DEPTH)
        .deserialize(serde_wasm_bindgen::Deserializer::from(value))
        .map_err(|e| {
            error(
                ErrorCode::InvalidInput,
                &format!("input is not JSON-shaped: {e}"),
            )
        })
}

/// Deepest nesting a JS value may have: the 128 levels of serde_json's and napi's
/// converters. The conversion recurses, and wasm has no guard page: an unbounded depth
/// overflowed the shadow stack ("memory access out of bounds") and poisoned the instance.
const MAX_DEPTH: usize = 128;

/// A JS value -> `serde_json::Value` converter that refuses more than `.0` nesting levels.
struct Bounded(usize);

impl<'de> DeserializeSeed<'de> for Bounded {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // Integral numbers up to 2^53 become integers (2^53 itself arrives as a float), as
        // in the napi binding; NaN and infinities become null, as in serde_json's visitor.
        if v.is_finite() && v.fract() == 0.0 && v.abs() <= MAX_CLOCK {
            return Ok(integer_value(v));
        }
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.0.checked_sub(1).ok_or_else(too_deep)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Self(inner))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.0.checked_sub(1).ok_or_else(too_deep)?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Self(inner))?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

fn too_deep<E: serde::de::Error>() -> E {
    E::custom(format_args!("nested deeper than {MAX_DEPTH} levels"))
}

fn to_js(value: &Value) -> JsResult<JsValue> {
    let mut value = value.clone();
    js_numbers(&mut value);
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|_| error(ErrorCode::Internal, "could not convert the output"))
}

/// Integers beyond JS's safe range (a deadline past 2^53 ms, a saturated counter) become
/// the nearest double, as in the napi binding: the json-compatible serializer refuses them,
/// which made every output holding one fail (`could not convert the output`) after core
/// had already applied the input.
fn js_numbers(value: &mut Value) {
    const SAFE: u64 = (1 << 53) - 1;
    match value {
        Value::Number(n)
            if n.as_u64().is_some_and(|u| u > SAFE)
                || n.as_i64().is_some_and(|i| i.unsigned_abs() > SAFE) =>
        {
            if let Some(x) = n.as_f64().and_then(serde_json::Number::from_f64) {
                *n = x;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(js_numbers),
        Value::Object(map) => map.values_mut().for_each(js_numbers),
        _ => {}
    }
}

/// Validates a JS clock value, or reads the wall clock.
fn clock(now: Option<f64>) -> JsResult<Millis> {
    let now = now.unwrap_or_else(js_sys::Date::now);
    to_u64(now).map(Millis).ok_or_else(|| {
        error(
            ErrorCode::InvalidClock,
            "now must be an integer number of ms in 0..=2^53",
        )
    })
}

/// A finite integer in `0..=2^53` as `u64`.
fn to_u64(x: f64) -> Option<u64> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (x.is_finite() && x.fract() == 0.0 && (0.0..=MAX_CLOCK).contains(&x)).then_some(x as u64)
}

/// A JS number as a JSON integer when it is a safe integer (so core's integer fields
/// accept it), else as it is (core then rejects it with a coded error).
fn integer_value(x: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_CLOCK {
        json!(x as i64)
    } else {
        json!(x)
    }
}

fn object(value: JsValue, what: &str) -> JsResult<Map<String, Value>> {
    match from_js(value)? {
        Value::Null => Ok(Map::new()),
        Value::Object(map) => Ok(map),
        _ => Err(error(
            ErrorCode::InvalidInput,
            &format!("{what} must be an object"),
        )),
    }
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// 8 bytes from `crypto.getRandomValues` (via getrandom's `wasm_js` backend).
fn random_u64() -> JsResult<u64> {
    let mut buf = [0u8; 8];
    getrandom::fill(&mut buf)
        .map_err(|_| error(ErrorCode::Internal, "no secure randomness available"))?;
    Ok(u64::from_le_bytes(buf))
}
