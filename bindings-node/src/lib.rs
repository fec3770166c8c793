//! Node.js binding of `credpool-core` (napi-rs): convert in, call core, convert out.
//!
//! Everything goes through core's data-shaped entry point
//! [`credpool_core::Registry::handle_value`]; the camelCase methods only build the
//! snake_case wire input. Errors are real JS `Error`s with a stable `code` property.
//! The binding reads the wall clock (default `now`) and OS randomness (default writer and
//! seed); core never does.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use credpool_core::{ErrorCode, Millis, Options};
use napi_derive::napi;
use serde_json::{Map, Value, json};

mod error;

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
    pub state: Option<Value>,
}

/// A credential registry: all pools of one process.
#[napi(js_name = "Registry")]
pub struct JsRegistry {
    inner: credpool_core::Registry,
}

#[napi]
impl JsRegistry {
    /// `new Registry({ writer?, seed?, state? })`.
    #[napi(constructor)]
    pub fn new(options: Option<RegistryOptions>) -> Result<Self, Code> {
        let (writer, seed, state) = match options {
            Some(o) => (o.writer, o.seed, o.state),
            None => (None, None, None),
        };
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
        let options = Options { writer, seed };
        let inner = guard(|| match &state {
            Some(state) => credpool_core::Registry::from_state(state, options),
            None => credpool_core::Registry::new(options),
        })?;
        Ok(Self { inner })
    }

    /// Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: `Date.now()`).
    #[napi]
    pub fn handle(&mut self, input: Value, now: Option<f64>) -> Result<Value, Code> {
        let now = clock(now)?;
        // Core validates before it mutates, so a failed input leaves the state untouched.
        let output = guard(|| self.inner.handle_value(now, input))?;
        serde_json::to_value(&output)
            .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))
    }

    /// `acquire`: pick an entry for a request. `opts`: `{ model?, session? }`.
    #[napi]
    pub fn acquire(
        &mut self,
        pool: String,
        opts: Option<Value>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let mut input = object(opts, "opts")?;
        input.insert("pool".into(), Value::String(pool));
        self.call("acquire", input, now)
    }

    /// `report`: a request's outcome against its lease. `response`: `{ status?, headers?, body?, ... }`.
    #[napi]
    pub fn report(
        &mut self,
        pool: String,
        lease_id: f64,
        response: Value,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        let input =
            json!({ "pool": pool, "lease_id": lease_id_value(lease_id), "response": response });
        self.call("report", into_map(input), now)
    }

    /// `begin_turn`: restore pools from their fallback (one pool, or all).
    #[napi]
    pub fn begin_turn(&mut self, pool: Option<String>, now: Option<f64>) -> Result<Value, Code> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("begin_turn", input, now)
    }

    /// `refresh_result`: `{ pool, entry_id, generation, lease_id?, result }`.
    #[napi]
    pub fn refresh_result(&mut self, result: Value, now: Option<f64>) -> Result<Value, Code> {
        let input = object(Some(result), "result")?;
        self.call("refresh_result", input, now)
    }

    /// `sync`: merge another writer's exported state.
    #[napi]
    pub fn sync(&mut self, state: Value, now: Option<f64>) -> Result<Value, Code> {
        self.call("sync", into_map(json!({ "state": state })), now)
    }

    /// The persistable state document (contains the secrets of non-`env:` entries).
    #[napi]
    pub fn export_state(&mut self) -> Result<Value, Code> {
        let mut output = self.call("export_state", Map::new(), Some(0.0))?;
        Ok(output
            .get_mut("state")
            .map(Value::take)
            .unwrap_or(Value::Null))
    }

    /// `status`: status for humans (one pool, or all).
    #[napi]
    pub fn status(&mut self, pool: Option<String>, now: Option<f64>) -> Result<Value, Code> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.call("status", input, now)
    }

    /// `add_entry`: `entry` is `{ id?, label?, auth_type?, priority?, source?, access_token?, ... }`.
    #[napi]
    pub fn add_entry(
        &mut self,
        pool: String,
        entry: Value,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        self.call(
            "add_entry",
            into_map(json!({ "pool": pool, "entry": entry })),
            now,
        )
    }

    /// `remove_entry`.
    #[napi]
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

    /// `reset`: clear status and cooldowns of one entry, or of every entry of the pool.
    #[napi]
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

    fn call(
        &mut self,
        kind: &str,
        mut input: Map<String, Value>,
        now: Option<f64>,
    ) -> Result<Value, Code> {
        input.insert("type".into(), Value::String(kind.to_owned()));
        self.handle(Value::Object(input), now)
    }
}

/// Every stable error code, in core's declaration order.
#[napi]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// Runs `f`, turning a core error or a panic into a coded JS error.
fn guard<T>(f: impl FnOnce() -> credpool_core::Result<T>) -> Result<T, Code> {
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
fn clock(now: Option<f64>) -> Result<Millis, Code> {
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

/// A finite integer in `0..=2^53` as `u64`.
fn to_u64(x: f64) -> Option<u64> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    (x.is_finite() && x.fract() == 0.0 && (0.0..=MAX_CLOCK).contains(&x)).then_some(x as u64)
}

fn lease_id_value(id: f64) -> Value {
    to_u64(id).map_or_else(|| json!(id), |n| json!(n))
}

fn object(value: Option<Value>, what: &str) -> Result<Map<String, Value>, Code> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(error(
            ErrorCode::InvalidInput,
            format!("{what} must be an object"),
        )),
    }
}

fn into_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// 8 bytes of OS randomness (std's `RandomState` keys are drawn from the OS).
fn os_random_u64() -> Result<u64, Code> {
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
