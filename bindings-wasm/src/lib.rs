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

use credpool_core::{ErrorCode, Input, Millis, Options, Output, OutputBody, Reply};
use js::{JsResult, core_error, error, from_js, guard, integer_value, to_js, to_u64};
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
            let mut input = object(opts.into(), "opts")?;
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

    /// `configure_pool`: create the pool if missing and set its strategy, policy, fallback,
    /// API shape.
    #[wasm_bindgen(
        js_name = "configurePool",
        unchecked_return_type = "{ type: 'pool_configured'; pool: string } & Changed"
    )]
    pub fn configure_pool(
        &mut self,
        pool: String,
        #[wasm_bindgen(
            unchecked_param_type = "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }"
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

    /// Applies a parsed input; the output as a plain JS object.
    fn run(&mut self, input: Input, now: Millis) -> JsResult<JsValue> {
        to_js(&self.output(input, now)?)
    }

    fn output(&mut self, input: Input, now: Millis) -> JsResult<Output> {
        self.inner.handle(now, input).map_err(|e| core_error(&e))
    }
}

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

/// The providers with a built-in OAuth refresher (pool keys, or an entry's
/// `extra.oauth_provider`): `token_request` builds their refresh requests.
#[wasm_bindgen(js_name = "oauthProviders")]
pub fn oauth_providers() -> Vec<String> {
    credpool_core::oauth_providers()
        .into_iter()
        .map(str::to_owned)
        .collect()
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
