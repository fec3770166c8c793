//! Node.js binding of `credpool-core` (napi-rs): convert in, call core, convert out.
//!
//! Every method builds one wire input (`{ type: "acquire", ... }`) and hands it to core's
//! data-shaped entry point [`credpool_core::Registry::handle_value`] (or the store's), so
//! a method and `handle()` give the same results and the same errors. One conversion each
//! way, through JSON text and V8's own JSON functions (looked up once per environment):
//! object arguments in by `JSON.stringify` then serde_json ([`Document`]), outputs out by
//! serde_json then `JSON.parse` ([`to_js`]); strings and numbers by napi's conversions.
//! Text has no value cap (napi's `serde_json::Value` conversion stops at 1,000,000
//! values: a 70,000-entry state) and was measured faster than napi's per-property calls.
//!
//! Errors are real JS `Error`s with a stable `code` property (core's [`ErrorCode`]); a
//! panic in core becomes an `internal` error. The binding reads the wall clock (default
//! `now`) and OS randomness (default writer and seed); core never does.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

use credpool_core::{ErrorCode, Input, Millis, Options, Output, OutputBody, Reply};
use napi::JsValue;
use napi::bindgen_prelude::{
    FromNapiValue, Function, FunctionRef, JsObjectValue, JsValuesTupleIntoVec, Unknown,
};
use napi::{Env, JSON, Result, ValueType};
use napi_derive::napi;
use serde_json::{Value, json};

/// The `code` property of a thrown JS error: a stable snake_case [`ErrorCode`].
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// A result whose error is a JS `Error` with a `code`.
pub(crate) type Coded<T> = Result<T, Code>;

/// A coded JS error.
pub(crate) fn error(code: ErrorCode, message: impl Into<String>) -> napi::Error<Code> {
    napi::Error::new(Code(code.as_str()), message.into())
}

/// Largest clock value accepted: 2^53 ms (JS safe-integer range).
const MAX_CLOCK: f64 = 9_007_199_254_740_992.0;

/// Options of `new Registry(...)`.
#[napi(object)]
pub struct RegistryOptions<'a> {
    /// This process's writer id (default: 12 random hex characters).
    pub writer: Option<String>,
    /// PRNG seed, a non-negative safe integer (default: from OS randomness).
    pub seed: Option<f64>,
    /// An exported state document to start from.
    #[napi(ts_type = "StateDocument")]
    pub state: Option<Unknown<'a>>,
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
    pub fn new(env: &Env, options: Option<RegistryOptions<'_>>) -> Result<Self, Code> {
        let (writer, seed, state) =
            options.map_or((None, None, None), |o| (o.writer, o.seed, o.state));
        let options = registry_options(writer, seed)?;
        let state = state.map(|s| s.read(env, "state")).transpose()?;
        let inner = guard(|| match &state {
            Some(state) => credpool_core::Registry::from_state(state, options),
            None => credpool_core::Registry::new(options),
        })?;
        Ok(Self { inner })
    }

    /// The persistable state document (contains the secrets of non-`env:` entries).
    #[napi(ts_return_type = "StateDocument")]
    pub fn export_state<'env>(&mut self, env: &'env Env) -> Result<Unknown<'env>, Code> {
        let output = self.apply(Input::ExportState, Some(0.0))?;
        to_js(env, state_text(output)?)
    }

    /// Applies `input` at `now` and converts the output.
    fn run<'env>(
        &mut self,
        env: &'env Env,
        input: Coded<Input>,
        now: Option<f64>,
    ) -> Result<Unknown<'env>, Code> {
        let output = self.apply(input?, now)?;
        to_js(env, to_text(&output)?)
    }

    /// Core's `handle` at `now` (default: the wall clock), under the panic guard. Core
    /// validates before it mutates, so a failed input leaves the state untouched.
    fn apply(&mut self, input: Input, now: Option<f64>) -> Coded<Output> {
        let now = clock(now)?;
        guard(|| self.inner.handle(now, input))
    }
}

// After `Registry`, so that the generated typings list its constructor first.
mod store;
mod wire;

/// Every stable error code, in core's declaration order.
#[napi(ts_return_type = "ErrorCode[]")]
pub fn error_codes() -> Vec<&'static str> {
    ErrorCode::ALL.iter().map(|c| c.as_str()).collect()
}

/// The providers with a built-in OAuth refresher (pool keys, or an entry's
/// `extra.oauth_provider`): `token_request` builds their refresh requests.
#[napi]
pub fn oauth_providers() -> Vec<&'static str> {
    credpool_core::oauth_providers()
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
pub fn import_hermes<'env>(
    env: &'env Env,
    #[napi(ts_arg_type = "Record<string, unknown>")] auth_json: Unknown<'_>,
    now: Option<f64>,
) -> Result<Unknown<'env>, Code> {
    let now = clock(now)?;
    let auth_json = auth_json.read(env, "authJson")?;
    let state = guard(|| credpool_core::import_hermes(&auth_json, now))?;
    to_js(env, to_text(&state)?)
}

/// `exportHermes(state, base?, now?)`: writes a Hermes `auth.json` object (`version: 1` and
/// `credential_pool`) from a credpool state document. With `base` (an existing `auth.json`),
/// its other top-level keys are kept and only `credential_pool` is replaced. Borrowed sources
/// carry no secret, only `secret_fingerprint`; removed entries are left out.
#[napi(ts_return_type = "Record<string, unknown>")]
pub fn export_hermes<'env>(
    env: &'env Env,
    #[napi(ts_arg_type = "StateDocument")] state: Unknown<'_>,
    #[napi(ts_arg_type = "Record<string, unknown> | null")] base: Option<Unknown<'_>>,
    now: Option<f64>,
) -> Result<Unknown<'env>, Code> {
    let now = clock(now)?;
    let state = state.read(env, "state")?;
    let base = base.map(|b| b.read(env, "base")).transpose()?;
    let auth_json = guard(|| credpool_core::export_hermes(&state, base.as_ref(), now))?;
    to_js(env, to_text(&auth_json)?)
}

/// Test-only (`--features test-panic`): panics on `{"type": "__test_panic"}`, where core
/// would run, to show a panic becomes a coded `internal` error.
#[cfg(feature = "test-panic")]
pub(crate) fn test_panic(input: &Value) {
    if input.get("type").and_then(Value::as_str) == Some("__test_panic") {
        panic!("credpool test-panic: forced panic");
    }
}

const PANIC: &str = "internal error (panic) inside credpool-core";

/// Runs `f`, turning a core error (whose message never holds a secret) or a panic into a
/// coded JS error.
pub(crate) fn guard<T>(f: impl FnOnce() -> credpool_core::Result<T>) -> Coded<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(error(e.code(), e.message())),
        Err(_) => Err(error(ErrorCode::Internal, PANIC)),
    }
}

/// A JS object argument, read through JSON text: `JSON.stringify`, then serde_json (no
/// value cap; at most 128 levels). An omitted one (`Option`) reads as `null`; one that is
/// not JSON (a cycle, a BigInt, `undefined`) is `invalid_input` naming it.
pub(crate) trait Document {
    fn read(self, env: &Env, what: &str) -> Coded<Value>;
}

impl Document for Unknown<'_> {
    fn read(self, env: &Env, what: &str) -> Coded<Value> {
        let not_json = |why| {
            error(
                ErrorCode::InvalidInput,
                format!("{what} is not JSON: {why}"),
            )
        };
        let stringify = json_fn::<Unknown<'_>, Unknown<'_>>(env, STRINGIFY).map_err(internal)?;
        // Throws on a cycle or a BigInt; answers `undefined` for `undefined` or a function.
        let text = stringify.call(self).map_err(|e| not_json(e.reason))?;
        if text.get_type().map_err(internal)? != ValueType::String {
            return Err(not_json("it has no JSON form".into()));
        }
        let text = String::from_unknown(text).map_err(internal)?;
        serde_json::from_str(&text).map_err(|e| not_json(e.to_string()))
    }
}

impl Document for Option<Unknown<'_>> {
    fn read(self, env: &Env, what: &str) -> Coded<Value> {
        self.map_or(Ok(Value::Null), |value| value.read(env, what))
    }
}

/// A core output (or document) as JSON text.
pub(crate) fn to_text(value: &impl serde::Serialize) -> Coded<String> {
    serde_json::to_string(value)
        .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))
}

/// The `state` of an `export_state` output, as JSON text.
pub(crate) fn state_text(output: Output) -> Coded<String> {
    match output.body {
        OutputBody::Reply(Reply::State { state }) => to_text(&state),
        _ => Err(error(ErrorCode::Internal, "export_state answered no state")),
    }
}

/// JSON text as a JS value, by `JSON.parse` (no value cap; integers past 2^53 become
/// doubles, never BigInts).
pub(crate) fn to_js<'env>(env: &Env, text: String) -> Result<Unknown<'env>, Code> {
    let parse = json_fn::<String, Unknown<'static>>(env, PARSE).map_err(internal)?;
    parse.call(text).map_err(internal)
}

const PARSE: usize = 0;
const STRINGIFY: usize = 1;

/// `JSON.parse` ([`PARSE`]) or `JSON.stringify` ([`STRINGIFY`]) of this Node environment:
/// looked up on first use, then kept (as references) in its instance data.
fn json_fn<'env, Args, Return>(env: &'env Env, which: usize) -> Result<Function<'env, Args, Return>>
where
    Args: JsValuesTupleIntoVec,
    Return: FromNapiValue,
{
    type Any<'a> = Function<'a, Unknown<'static>, Unknown<'static>>;
    type Fns = [FunctionRef<Unknown<'static>, Unknown<'static>>; 2];
    let fns = match env.get_instance_data::<Fns>()? {
        Some(fns) => fns,
        None => {
            let json: JSON<'_> = env.get_global()?.get_named_property_unchecked("JSON")?;
            let get = |name| {
                json.get_named_property_unchecked::<Any<'_>>(name)?
                    .create_ref()
            };
            env.set_instance_data([get("parse")?, get("stringify")?], (), |_| {})?;
            let fns = env.get_instance_data::<Fns>()?;
            fns.ok_or_else(|| napi::Error::from_reason("no instance data"))?
        }
    };
    let f = fns[which].borrow_back(env)?;
    Function::from_unknown(f.to_unknown())
}

fn internal(e: napi::Error) -> napi::Error<Code> {
    error(ErrorCode::Internal, e.reason)
}

/// Validates a JS clock value, or reads the wall clock.
pub(crate) fn clock(now: Option<f64>) -> Coded<Millis> {
    match now {
        Some(now) => to_u64(now).map(Millis).ok_or_else(|| {
            let message = "now must be an integer number of ms in 0..=2^53";
            error(ErrorCode::InvalidClock, message)
        }),
        None => Ok(credpool_store::now()),
    }
}

/// The writer and seed a registry starts with: the caller's, else random ones (a 12-hex
/// writer id, a seed from OS randomness).
pub(crate) fn registry_options(writer: Option<String>, seed: Option<f64>) -> Coded<Options> {
    let seed = seed.map_or_else(|| Ok(os_random_u64()), |seed| whole(seed, "seed"))?;
    let writer = writer.unwrap_or_else(|| format!("{:012x}", os_random_u64() & 0xffff_ffff_ffff));
    Ok(Options { writer, seed })
}

/// A non-negative safe integer argument (`name` for the error).
pub(crate) fn whole(x: f64, name: &str) -> Coded<u64> {
    to_u64(x).ok_or_else(|| {
        let message = format!("{name} must be a non-negative safe integer");
        error(ErrorCode::InvalidInput, message)
    })
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

/// 8 bytes of OS randomness (std's `RandomState` keys are drawn from the OS).
pub(crate) fn os_random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.finish()
}
