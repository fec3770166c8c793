//! Node.js binding of `credpool-core` (napi-rs): convert in, call core, convert out.
//!
//! The hot path (`acquire`, `report`, `release`, `credential`) reads its arguments into
//! core's typed [`credpool_core::Input`] and builds the output object directly
//! ([`json::Out`]); it builds each output object, and reads each object argument, in one
//! call into a cached JS function (module `shape`). An argument of any other shape (and
//! every other method) goes through core's data-shaped entry point
//! [`credpool_core::Registry::handle_value`] as JSON, so results and errors are the same
//! either way. Errors are real JS `Error`s with a stable `code` property.
//! The binding reads the wall clock (default `now`) and OS randomness (default writer and
//! seed); core never does.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use credpool_core::{
    AcquireRequest, EntryId, ErrorCode, Input, LeaseId, Millis, Options, PoolKey, Report,
};
use napi::bindgen_prelude::Unknown;
use napi_derive::napi;
use serde_json::{Map, Value, json};

mod error;
mod json;
mod shape;
mod store;

use error::{Code, core_error, error};
use napi::Result;

/// Largest clock value accepted: 2^53 ms (JS safe-integer range).
const MAX_CLOCK: f64 = 9_007_199_254_740_992.0;

/// Options of `new Registry(...)`.
#[napi(object)]
pub struct RegistryOptions {
    /// This process's writer id (default: 12 random hex characters).
    pub writer: Option<String>,
    /// PRNG seed, a non-negative safe integer (default: from OS randomness).
    pub seed: Option<f64>,
    /// An exported state document to start from.
    #[napi(ts_type = "StateDocument")]
    pub state: Option<json::Json>,
}

/// A credential registry: all pools of one process.
#[napi(js_name = "Registry")]
pub struct Registry {
    inner: credpool_core::Registry,
}

#[napi]
impl Registry {
    /// `new Registry({ writer?, seed?, state? })`.
    #[napi(constructor)]
    pub fn new(options: Option<RegistryOptions>) -> Result<Self, Code> {
        let (writer, seed, state) = match options {
            Some(o) => (o.writer, o.seed, o.state),
            None => (None, None, None),
        };
        let options = registry_options(writer, seed)?;
        let state = state
            .map(|s| s.into_value("state"))
            .transpose()?
            .map(integral);
        let inner = guard(|| match &state {
            Some(state) => credpool_core::Registry::from_state(state, options),
            None => credpool_core::Registry::new(options),
        })?;
        Ok(Self { inner })
    }

    /// Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: `Date.now()`).
    #[napi(ts_return_type = "Output")]
    pub fn handle(
        &mut self,
        #[napi(ts_arg_type = "Input")] input: json::Json,
        now: Option<f64>,
    ) -> Result<json::Json, Code> {
        let input = input.into_value("input")?;
        self.apply(input, now).map(json::Json::new)
    }

    /// [`Registry::handle`] on a JSON value (every method ends here).
    fn apply(&mut self, input: Value, now: Option<f64>) -> Result<Value, Code> {
        let now = clock(now)?;
        // Core validates before it mutates, so a failed input leaves the state untouched.
        let input = integral(input);
        let output = guard(|| {
            #[cfg(feature = "test-panic")]
            test_panic(&input);
            self.inner.handle_value(now, input)
        })?;
        serde_json::to_value(&output)
            .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))
    }

    /// `acquire`: pick an entry for a request.
    #[napi(ts_return_type = "DecisionOutput")]
    pub fn acquire(
        &mut self,
        #[napi(ts_arg_type = "string")] pool: json::Text,
        #[napi(ts_arg_type = "{ model?: string; session?: string }")] opts: Option<Unknown<'_>>,
        now: Option<f64>,
    ) -> Result<json::Out, Code> {
        let typed = match opts {
            None => Some((None, None)),
            Some(opts) => json::read_opts(opts).map_err(json::conversion_error)?,
        };
        if let (Some((model, session)), Ok(pool)) = (typed, PoolKey::parse(pool.as_str())) {
            let request = AcquireRequest {
                pool,
                model,
                session,
            };
            return self.typed(Input::Acquire(request), now);
        }
        let opts = opts
            .map(json::to_value)
            .transpose()
            .map_err(json::conversion_error)?;
        let mut input = object(opts, "opts")?;
        input.insert("pool".into(), Value::String(pool.into_string()));
        self.call("acquire", input, now).map(json::Out::Json)
    }

    /// `report`: a request's outcome against its lease.
    #[napi(ts_return_type = "DecisionOutput")]
    pub fn report(
        &mut self,
        #[napi(ts_arg_type = "string")] pool: json::Text,
        lease_id: f64,
        #[napi(ts_arg_type = "ResponseInfo")] response: Unknown<'_>,
        now: Option<f64>,
    ) -> Result<json::Out, Code> {
        let typed = json::read_response(response).map_err(json::conversion_error)?;
        if let (Some(response), Ok(pool), Some(lease_id)) =
            (typed, PoolKey::parse(pool.as_str()), to_u64(lease_id))
        {
            let report = Report {
                pool,
                lease_id: Some(LeaseId(lease_id)),
                entry_id: None,
                response,
            };
            return self.typed(Input::Report(report), now);
        }
        let response = json::to_value(response).map_err(json::conversion_error)?;
        let lease_id = integer_value(lease_id);
        let input = json!({ "pool": pool.as_str(), "lease_id": lease_id, "response": response });
        self.call("report", into_map(input), now)
            .map(json::Out::Json)
    }

    /// `release`: close a lease with no outcome (nothing is marked).
    #[napi(ts_return_type = "{ type: 'released'; lease_id: number } & Changed")]
    pub fn release(
        &mut self,
        #[napi(ts_arg_type = "string")] pool: json::Text,
        lease_id: f64,
        now: Option<f64>,
    ) -> Result<json::Out, Code> {
        if let (Ok(pool), Some(lease_id)) = (PoolKey::parse(pool.as_str()), to_u64(lease_id)) {
            let lease_id = LeaseId(lease_id);
            return self.typed(Input::Release { pool, lease_id }, now);
        }
        let input = json!({ "pool": pool.as_str(), "lease_id": integer_value(lease_id) });
        self.call("release", into_map(input), now)
            .map(json::Out::Json)
    }

    /// `reveal`: an entry's secrets, to send the request with (the only output carrying them).
    #[napi(ts_return_type = "CredentialOutput")]
    pub fn credential(
        &mut self,
        #[napi(ts_arg_type = "string")] pool: json::Text,
        #[napi(ts_arg_type = "string")] entry_id: json::Text,
        now: Option<f64>,
    ) -> Result<json::Out, Code> {
        if let (Ok(pool), Ok(entry_id)) = (
            PoolKey::parse(pool.as_str()),
            EntryId::parse(entry_id.as_str()),
        ) {
            return self.typed(Input::Reveal { pool, entry_id }, now);
        }
        let input = json!({ "pool": pool.as_str(), "entry_id": entry_id.as_str() });
        self.call("reveal", into_map(input), now)
            .map(json::Out::Json)
    }

    /// `begin_turn`: restore pools from their fallback (one pool, or all).
    #[napi(ts_return_type = "{ type: 'turn_begun'; restored: string[] } & Changed")]
    pub fn begin_turn(&mut self, pool: Option<String>, now: Option<f64>) -> Result<Value, Code> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("begin_turn", input, now)
    }

    /// `refresh_result`: how the refresh a `refresh` decision asked for ended.
    #[napi(ts_return_type = "DecisionOutput")]
    pub fn refresh_result(
        &mut self,
        #[napi(ts_arg_type = "RefreshResultInput")] result: Value,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let input = object(Some(result), "result")?;
        self.call("refresh_result", input, now)
    }

    /// `check_refresh`: whether a refresh from `generation` is still needed.
    #[napi(ts_return_type = "{ type: 'refresh_check'; needed: boolean } & Changed")]
    pub fn check_refresh(
        &mut self,
        pool: String,
        entry_id: String,
        generation: f64,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "generation": integer_value(generation) });
        self.call("check_refresh", into_map(input), now)
    }

    /// `sync`: merge another writer's exported state.
    #[napi(ts_return_type = "{ type: 'synced' } & Changed")]
    pub fn sync(
        &mut self,
        #[napi(ts_arg_type = "StateDocument")] state: json::Json,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let state = state.into_value("state")?;
        self.call("sync", into_map(json!({ "state": state })), now)
    }

    /// The persistable state document (contains the secrets of non-`env:` entries).
    #[napi(ts_return_type = "StateDocument")]
    pub fn export_state(&mut self) -> Result<json::Json, Code> {
        let mut output = self.call("export_state", Map::new(), Some(0.0))?;
        Ok(json::Json::new(
            output
                .get_mut("state")
                .map(Value::take)
                .unwrap_or(Value::Null),
        ))
    }

    /// `status`: status for humans (one pool, or all).
    #[napi(ts_return_type = "StatusOutput")]
    pub fn status(&mut self, pool: Option<String>, now: Option<f64>) -> Result<json::Json, Code> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("status", input, now).map(json::Json::new)
    }

    /// `tick`: let time pass; expired cooldowns clear and the next deadline is named.
    #[napi(
        ts_return_type = "{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed"
    )]
    pub fn tick(&mut self, now: Option<f64>) -> Result<Value, Code> {
        self.call("tick", Map::new(), now)
    }

    /// `configure_pool`: create the pool if missing and set its strategy, policy, fallback.
    #[napi(ts_return_type = "{ type: 'pool_configured'; pool: string } & Changed")]
    pub fn configure_pool(
        &mut self,
        pool: String,
        #[napi(
            ts_arg_type = "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[] }"
        )]
        config: Option<Value>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let mut input = object(config, "config")?;
        input.insert("pool".into(), Value::String(pool));
        self.call("configure_pool", input, now)
    }

    /// `add_entry`: add a credential (creating the pool).
    #[napi(ts_return_type = "{ type: 'entry_added'; entry_id: string } & Changed")]
    pub fn add_entry(
        &mut self,
        pool: String,
        #[napi(ts_arg_type = "NewEntry")] entry: Value,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        self.call(
            "add_entry",
            into_map(json!({ "pool": pool, "entry": entry })),
            now,
        )
    }

    /// `remove_entry`: remove a credential for good (tombstoned).
    #[napi(ts_return_type = "{ type: 'entry_removed'; entry_id: string } & Changed")]
    pub fn remove_entry(
        &mut self,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        self.call(
            "remove_entry",
            into_map(json!({ "pool": pool, "entry_id": entry_id })),
            now,
        )
    }

    /// `set_priority`: move an entry (lower is preferred).
    #[napi(ts_return_type = "{ type: 'entry_updated'; entry_id: string } & Changed")]
    pub fn set_priority(
        &mut self,
        pool: String,
        entry_id: String,
        priority: f64,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "priority": integer_value(priority) });
        self.call("set_priority", into_map(input), now)
    }

    /// `reset`: clear status and cooldowns of one entry, or of every entry of the pool.
    #[napi(ts_return_type = "{ type: 'reset'; count: number } & Changed")]
    pub fn reset(
        &mut self,
        pool: String,
        entry_id: Option<String>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let mut input = into_map(json!({ "pool": pool }));
        if let Some(id) = entry_id {
            input.insert("entry_id".into(), Value::String(id));
        }
        self.call("reset", input, now)
    }

    /// `seed`: adopt credentials from an environment map and custom providers.
    #[napi(
        ts_return_type = "{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed"
    )]
    pub fn seed(
        &mut self,
        #[napi(ts_arg_type = "Record<string, string>")] env: Option<Value>,
        #[napi(ts_arg_type = "{ custom_providers?: CustomProvider[] }")] config: Option<Value>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let mut input = Map::new();
        for (key, value) in [("env", env), ("config", config)] {
            if let Some(value) = value.filter(|v| !v.is_null()) {
                input.insert(key.into(), value);
            }
        }
        self.call("seed", input, now)
    }

    fn call(
        &mut self,
        kind: &str,
        mut input: Map<String, Value>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        input.insert("type".into(), Value::String(kind.to_owned()));
        self.apply(Value::Object(input), now)
    }

    /// The hot path: an input built from typed arguments goes to core's typed
    /// [`credpool_core::Registry::handle`] (no JSON either way), under the same clock check
    /// and panic guard as [`Registry::apply`].
    fn typed(&mut self, input: Input, now: Option<f64>) -> Result<json::Out, Code> {
        let now = clock(now)?;
        guard(|| self.inner.handle(now, input)).map(json::Out::Core)
    }
}

/// Every stable error code, in core's declaration order.
#[napi(ts_return_type = "ErrorCode[]")]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// The version of credpool-core inside this build (also the cheapest call into the addon).
#[napi]
pub fn version() -> &'static str {
    credpool_core::VERSION
}

/// `importHermes(authJson, now?)`: converts the `credential_pool` section of a Hermes
/// `auth.json` (parsed) into a credpool state document for `new Registry({ state })`.
/// Hermes times (epoch seconds) become ms; borrowed sources (`env:*`, `config:*`, ...)
/// keep only their fingerprint; the `providers` singletons are not imported.
/// Throws `invalid_state`, `foreign_document`, `unsupported_schema_version` or `too_large`.
#[napi(ts_return_type = "StateDocument")]
pub fn import_hermes(
    #[napi(ts_arg_type = "Record<string, unknown>")] auth_json: json::Json,
    now: Option<f64>,
) -> Result<json::Json, Code> {
    let now = clock(now)?;
    let auth_json = integral(auth_json.into_value("authJson")?);
    let state = guard(|| credpool_core::import_hermes(&auth_json, now))?;
    serde_json::to_value(&state)
        .map(json::Json::new)
        .map_err(|_| error(ErrorCode::Internal, "could not serialise the state"))
}

/// `exportHermes(state, base?, now?)`: writes a Hermes `auth.json` object (`version: 1` and
/// `credential_pool`) from a credpool state document. With `base` (an existing `auth.json`),
/// its other top-level keys are kept and only `credential_pool` is replaced. Borrowed sources
/// carry no secret, only `secret_fingerprint`; removed entries are left out.
#[napi(ts_return_type = "Record<string, unknown>")]
pub fn export_hermes(
    #[napi(ts_arg_type = "StateDocument")] state: json::Json,
    #[napi(ts_arg_type = "Record<string, unknown> | null")] base: Option<json::Json>,
    now: Option<f64>,
) -> Result<json::Json, Code> {
    let now = clock(now)?;
    let state = integral(state.into_value("state")?);
    let base = base
        .map(|b| b.into_value("base"))
        .transpose()?
        .map(integral);
    guard(|| credpool_core::export_hermes(&state, base.as_ref(), now)).map(json::Json::new)
}

/// Test-only (`--features test-panic`): panics on `{"type": "__test_panic"}`, where core
/// would run, to show a panic becomes a coded `internal` error.
#[cfg(feature = "test-panic")]
fn test_panic(input: &Value) {
    if input.get("type").and_then(Value::as_str) == Some("__test_panic") {
        panic!("credpool test-panic: forced panic");
    }
}

/// Runs `f`, turning a core error or a panic into a coded JS error.
pub(crate) fn guard<T>(f: impl FnOnce() -> credpool_core::Result<T>) -> Result<T, Code> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(core_error(&e)),
        Err(_) => Err(error(
            ErrorCode::Internal,
            "internal error (panic) inside credpool-core",
        )),
    }
}

/// Validates a JS clock value, or reads the wall clock.
pub(crate) fn clock(now: Option<f64>) -> Result<Millis, Code> {
    match now {
        Some(now) => to_u64(now).map(Millis).ok_or_else(|| {
            error(
                ErrorCode::InvalidClock,
                "now must be an integer number of ms in 0..=2^53",
            )
        }),
        None => {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| error(ErrorCode::InvalidClock, "system clock is before 1970"))?
                .as_millis();
            u64::try_from(ms)
                .map(Millis)
                .map_err(|_| error(ErrorCode::InvalidClock, "system clock out of range"))
        }
    }
}

/// The writer and seed a registry starts with: the caller's, else random ones (a 12-hex
/// writer id, a seed from OS randomness).
pub(crate) fn registry_options(writer: Option<String>, seed: Option<f64>) -> Result<Options, Code> {
    let seed = match seed {
        Some(seed) => to_u64(seed).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                "seed must be a non-negative safe integer",
            )
        })?,
        None => os_random_u64()?,
    };
    let writer = match writer {
        Some(writer) => writer,
        None => format!("{:012x}", os_random_u64()? & 0xffff_ffff_ffff),
    };
    Ok(Options { writer, seed })
}

/// A finite integer in `0..=2^53` as `u64`.
pub(crate) fn to_u64(x: f64) -> Option<u64> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (x.is_finite() && x.fract() == 0.0 && (0.0..=MAX_CLOCK).contains(&x)).then_some(x as u64)
}

/// A JS number as a JSON integer when it is a safe integer (so core's integer fields
/// accept it), else as it is (core then rejects it with a coded error).
pub(crate) fn integer_value(x: f64) -> Value {
    #[allow(clippy::cast_possible_truncation)]
    if x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_CLOCK {
        json!(x as i64)
    } else {
        json!(x)
    }
}

/// napi hands JS numbers outside the i32 range over as floats (`1787075000000.0`); core's
/// integer fields (ms timestamps, counters) need them as JSON integers. Integral floats
/// within 2^53 become integers, recursively; other numbers are left as they are.
pub(crate) fn integral(value: Value) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => match n.as_f64() {
            Some(x) if x.is_finite() && x.fract() == 0.0 && x.abs() <= MAX_CLOCK => {
                integer_value(x)
            }
            _ => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(integral).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, integral(v))).collect())
        }
        other => other,
    }
}

pub(crate) fn object(value: Option<Value>, what: &str) -> Result<Map<String, Value>, Code> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(error(
            ErrorCode::InvalidInput,
            format!("{what} must be an object"),
        )),
    }
}

pub(crate) fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// 8 bytes of OS randomness (std's `RandomState` keys are drawn from the OS).
pub(crate) fn os_random_u64() -> Result<u64, Code> {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    Ok(hasher.finish())
}
