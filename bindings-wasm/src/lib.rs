//! WebAssembly binding of `credpool-core` (wasm-bindgen): convert in, call core, convert out.
//!
//! Same JS surface as the Node binding (`bindings-node`): class `Registry` with
//! `handle(input, now?)` and camelCase convenience methods, plus `errorCodes()`.
//! Errors are real JS `Error`s with `name = "CredpoolError"` and a stable `code`.
//! The binding reads the wall clock (`Date.now()`) and `crypto.getRandomValues`
//! (default writer and seed); core never does. Built with `panic = "unwind"` and wasm
//! exception handling: every export runs inside `js::guard`, so any panic (the first
//! and every later one) becomes a coded `internal` error and the module stays usable.
//! The simulator is a separate module (bindings-wasm-sim), to keep this one small.

mod js;

use credpool_core::{
    AcquireRequest, Decision, ErrorCode, Input, LeaseId, Millis, Options, Output, OutputBody,
    PoolKey, Reply, Report, Response,
};
use js::{JsResult, core_error, error, from_js, guard, integer_value, to_js, to_u64};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use wasm_bindgen::prelude::*;

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
        guard(|| {
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
        })
    }

    /// Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: `Date.now()`).
    #[wasm_bindgen(unchecked_return_type = "Output")]
    pub fn handle(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "Input")] input: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        guard(|| {
            let now = clock(now)?;
            let input = from_js(input)?;
            self.apply(input, now)
        })
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
        guard(|| {
            let opts: JsValue = opts.into();
            // Typed path for the common call (no options): no JSON value in between.
            if (opts.is_undefined() || opts.is_null())
                && let Ok(pool) = PoolKey::parse(&pool)
            {
                let request = AcquireRequest {
                    pool,
                    model: None,
                    session: None,
                };
                return self.run(Input::Acquire(request), clock(now)?);
            }
            // Anything else goes the generic way (same result, same error messages).
            let mut input = object(opts, "opts")?;
            input.insert("pool".into(), Value::String(pool));
            self.call("acquire", input, now)
        })
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
        guard(|| {
            if let Some(report) = typed_report(&pool, lease_id, &response) {
                return self.run(Input::Report(report), clock(now)?);
            }
            let response = from_js(response)?;
            let input =
                json!({ "pool": pool, "lease_id": integer_value(lease_id), "response": response });
            self.call("report", into_map(input), now)
        })
    }

    /// `release`: close a lease with no outcome (nothing is marked).
    #[wasm_bindgen(unchecked_return_type = "{ type: 'released'; lease_id: number } & Changed")]
    pub fn release(&mut self, pool: String, lease_id: f64, now: Option<f64>) -> JsResult<JsValue> {
        guard(|| {
            let input = json!({ "pool": pool, "lease_id": integer_value(lease_id) });
            self.call("release", into_map(input), now)
        })
    }

    /// `reveal`: an entry's secrets, to send the request with (the only output carrying them).
    #[wasm_bindgen(unchecked_return_type = "CredentialOutput")]
    pub fn credential(
        &mut self,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        guard(|| {
            let input = json!({ "pool": pool, "entry_id": entry_id });
            self.call("reveal", into_map(input), now)
        })
    }

    /// `begin_turn`: restore pools from their fallback (one pool, or all).
    #[wasm_bindgen(
        js_name = "beginTurn",
        unchecked_return_type = "{ type: 'turn_begun'; restored: string[] } & Changed"
    )]
    pub fn begin_turn(&mut self, pool: Option<String>, now: Option<f64>) -> JsResult<JsValue> {
        guard(|| {
            let mut input = Map::new();
            if let Some(pool) = pool {
                input.insert("pool".into(), Value::String(pool));
            }
            self.call("begin_turn", input, now)
        })
    }

    /// `refresh_result`: how the refresh a `refresh` decision asked for ended.
    #[wasm_bindgen(js_name = "refreshResult", unchecked_return_type = "DecisionOutput")]
    pub fn refresh_result(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "RefreshResultInput")] result: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        guard(|| {
            let input = object(result, "result")?;
            self.call("refresh_result", input, now)
        })
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
        guard(|| {
            let input = json!({ "pool": pool, "entry_id": entry_id, "generation": integer_value(generation) });
            self.call("check_refresh", into_map(input), now)
        })
    }

    /// `sync`: merge another writer's exported state.
    #[wasm_bindgen(unchecked_return_type = "{ type: 'synced' } & Changed")]
    pub fn sync(
        &mut self,
        #[wasm_bindgen(unchecked_param_type = "StateDocument")] state: JsValue,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        guard(|| {
            let state = from_js(state)?;
            self.call("sync", into_map(json!({ "state": state })), now)
        })
    }

    /// The persistable state document (contains the secrets of non-`env:` entries).
    #[wasm_bindgen(js_name = "exportState", unchecked_return_type = "StateDocument")]
    pub fn export_state(&mut self) -> JsResult<JsValue> {
        guard(|| match self.output(Input::ExportState, Millis(0))?.body {
            OutputBody::Reply(Reply::State { state }) => to_js(&state),
            _ => Err(error(
                ErrorCode::Internal,
                "export_state answered something else",
            )),
        })
    }

    /// `status`: status for humans (one pool, or all).
    #[wasm_bindgen(unchecked_return_type = "StatusOutput")]
    pub fn status(&mut self, pool: Option<String>, now: Option<f64>) -> JsResult<JsValue> {
        guard(|| {
            let mut input = Map::new();
            if let Some(pool) = pool {
                input.insert("pool".into(), Value::String(pool));
            }
            self.call("status", input, now)
        })
    }

    /// `tick`: let time pass; expired cooldowns clear and the next deadline is named.
    #[wasm_bindgen(
        unchecked_return_type = "{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed"
    )]
    pub fn tick(&mut self, now: Option<f64>) -> JsResult<JsValue> {
        guard(|| self.call("tick", Map::new(), now))
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
        guard(|| {
            let mut input = object(config.into(), "config")?;
            input.insert("pool".into(), Value::String(pool));
            self.call("configure_pool", input, now)
        })
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
        guard(|| {
            let entry = from_js(entry)?;
            self.call(
                "add_entry",
                into_map(json!({ "pool": pool, "entry": entry })),
                now,
            )
        })
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
        guard(|| {
            self.call(
                "remove_entry",
                into_map(json!({ "pool": pool, "entry_id": entry_id })),
                now,
            )
        })
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
        guard(|| {
            let input =
                json!({ "pool": pool, "entry_id": entry_id, "priority": integer_value(priority) });
            self.call("set_priority", into_map(input), now)
        })
    }

    /// `reset`: clear status and cooldowns of one entry, or of every entry of the pool.
    #[wasm_bindgen(unchecked_return_type = "{ type: 'reset'; count: number } & Changed")]
    pub fn reset(
        &mut self,
        pool: String,
        entry_id: Option<String>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        guard(|| {
            let mut input = into_map(json!({ "pool": pool }));
            if let Some(id) = entry_id {
                input.insert("entry_id".into(), Value::String(id));
            }
            self.call("reset", input, now)
        })
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
        guard(|| {
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
        })
    }
}

impl Registry {
    /// The generic path: validates the clock, then applies `{type: kind, ...input}`.
    fn call(
        &mut self,
        kind: &str,
        input: Map<String, Value>,
        now: Option<f64>,
    ) -> JsResult<JsValue> {
        let now = clock(now)?;
        self.apply_kind(kind, input, now)
    }

    fn apply_kind(
        &mut self,
        kind: &str,
        mut input: Map<String, Value>,
        now: Millis,
    ) -> JsResult<JsValue> {
        input.insert("type".into(), Value::String(kind.to_owned()));
        self.apply(Value::Object(input), now)
    }

    /// Parses a wire input (core's own parser and error messages) and applies it.
    fn apply(&mut self, input: Value, now: Millis) -> JsResult<JsValue> {
        #[cfg(feature = "test-panic")]
        test_panic(&input);
        let input = credpool_core::parse_input(input).map_err(|e| core_error(&e))?;
        self.run(input, now)
    }

    /// Applies a typed input; the output goes straight to a JS object (the two hot shapes,
    /// `use` without reason or hint and `done`, in one call into JS).
    fn run(&mut self, input: Input, now: Millis) -> JsResult<JsValue> {
        let out = self.output(input, now)?;
        match &out.body {
            OutputBody::Decision(Decision::Use {
                entry_id,
                lease_id,
                reason: None,
                hint: None,
            }) if lease_id.0 <= SAFE_INTEGER => {
                #[allow(clippy::cast_precision_loss)] // <= 2^53 - 1: exact
                let lease_id = lease_id.0 as f64;
                Ok(use_output(entry_id.as_str(), lease_id, out.changed))
            }
            OutputBody::Decision(Decision::Done) => Ok(done_output(out.changed)),
            _ => to_js(&out),
        }
    }

    /// Applies a typed input; core validates before it mutates, so a failed call leaves
    /// the state untouched.
    fn output(&mut self, input: Input, now: Millis) -> JsResult<Output> {
        self.inner.handle(now, input).map_err(|e| core_error(&e))
    }
}

/// The response fields `report`'s typed path takes (the hot case: `{ status: 200 }`).
/// Any other key (headers, a body: arbitrary JSON, converted with a depth bound; or an
/// unknown key, which core refuses) sends the call down the generic path.
#[derive(Default)]
struct PlainResponse {
    status: Option<u16>,
    network_error: Option<String>,
    model: Option<String>,
}

impl<'de> Deserialize<'de> for PlainResponse {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // A map, not a struct: serde-wasm-bindgen reads a struct's declared fields only and
        // would silently drop the others; its map access walks every own key.
        d.deserialize_map(PlainResponseVisitor)
    }
}

struct PlainResponseVisitor;

impl<'de> serde::de::Visitor<'de> for PlainResponseVisitor {
    type Value = PlainResponse;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a response with only status, network_error and model")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<PlainResponse, A::Error> {
        let mut out = PlainResponse::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "status" => out.status = map.next_value()?,
                "network_error" => out.network_error = map.next_value()?,
                "model" => out.model = map.next_value()?,
                _ => return Err(serde::de::Error::custom("not a plain response")),
            }
        }
        Ok(out)
    }
}

/// `report`'s arguments as a typed [`Report`], or `None` when any of them needs the
/// generic path (which then gives the same result or the same coded error as before).
fn typed_report(pool: &str, lease_id: f64, response: &JsValue) -> Option<Report> {
    let lease_id = LeaseId(to_u64(lease_id)?);
    let pool = PoolKey::parse(pool).ok()?;
    let plain = match u16::try_from(status_only(response)) {
        Ok(status) => PlainResponse {
            status: Some(status),
            ..PlainResponse::default()
        },
        Err(_) if response.is_object() => serde_wasm_bindgen::from_value(response.clone()).ok()?,
        Err(_) => return None,
    };
    Some(Report {
        pool,
        lease_id: Some(lease_id),
        entry_id: None,
        response: Response {
            status: plain.status,
            network_error: plain.network_error,
            model: plain.model,
            ..Response::default()
        },
    })
}

/// Largest integer a JS number holds exactly: 2^53 - 1.
const SAFE_INTEGER: u64 = (1 << 53) - 1;

// One call into JS instead of one per field (each crossing costs about as much as a no-op
// export call). Same keys, same order as the serde output (`type`, fields, `changed`).
#[wasm_bindgen(inline_js = r#"
export function status_only(r) {
  if (typeof r !== 'object' || r === null) return -1
  const keys = Object.keys(r)
  if (keys.length !== 1 || keys[0] !== 'status') return -1
  const s = r.status
  return Number.isInteger(s) && s >= 0 && s <= 65535 ? s : -1
}
export function use_output(entry_id, lease_id, changed) {
  return { type: 'use', entry_id, lease_id, changed }
}
export function done_output(changed) {
  return { type: 'done', changed }
}
"#)]
extern "C" {
    /// `response.status` when `response` is exactly `{ status: <integer 0..=65535> }`, else -1.
    fn status_only(response: &JsValue) -> i32;
    /// `{ type: 'use', entry_id, lease_id, changed }`.
    fn use_output(entry_id: &str, lease_id: f64, changed: bool) -> JsValue;
    /// `{ type: 'done', changed }`.
    fn done_output(changed: bool) -> JsValue;
}

/// Test-only (`--features test-panic`): panics on `{"type": "__test_panic"}`, where core
/// would run. The export's `guard` catches it (panic = "unwind"): a coded `internal`
/// error, every time, and the registry stays usable. See tests/hostile/panic/.
#[cfg(feature = "test-panic")]
fn test_panic(input: &Value) {
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
    guard(|| {
        let now = clock(now)?;
        let auth = from_js(auth_json)?;
        let state = credpool_core::import_hermes(&auth, now).map_err(|e| core_error(&e))?;
        to_js(&state)
    })
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
    guard(|| {
        let now = clock(now)?;
        let state = from_js(state)?;
        let base = from_js(base)?;
        let base = (!base.is_null()).then_some(&base);
        let auth = credpool_core::export_hermes(&state, base, now).map_err(|e| core_error(&e))?;
        to_js(&auth)
    })
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
