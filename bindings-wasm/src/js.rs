//! JS <-> Rust conversions and the panic guard shared by the two wasm modules:
//! `credpool-wasm` (this crate) and `credpool-wasm-sim` (bindings-wasm-sim), which
//! includes this file with `#[path]` so the simulator's module carries no `Registry`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use credpool_core::ErrorCode;
use serde::Serialize;
use serde::de::DeserializeSeed;
use serde_json::{Map, Value};
use wasm_bindgen::JsValue;
use wasm_bindgen::prelude::wasm_bindgen;

/// Largest clock value accepted: 2^53 ms (JS safe-integer range).
pub(crate) const MAX_CLOCK: f64 = 9_007_199_254_740_992.0;

/// What every export returns: a value, or a thrown JS error.
pub(crate) type JsResult<T> = Result<T, JsValue>;

/// A coded JS error (`name = "CredpoolError"`, `code` = stable snake_case code).
pub(crate) fn error(code: ErrorCode, message: &str) -> JsValue {
    let e = js_sys::Error::new(message);
    e.set_name("CredpoolError");
    let _ = js_sys::Reflect::set(
        &e,
        &JsValue::from_str("code"),
        &JsValue::from_str(code.as_str()),
    );
    e.into()
}

/// A core error as a coded JS error (core messages never carry secrets).
pub(crate) fn core_error(e: &credpool_core::Error) -> JsValue {
    error(e.code(), e.message())
}

/// Runs one export's body; a panic inside it (a bug in core or here) becomes a coded
/// `internal` error instead of escaping to JS.
///
/// The modules are built with `panic = "unwind"` and wasm exception handling
/// (scripts/build-wasm-crate.sh), so `catch_unwind` really catches: the frames unwind
/// (destructors run, the shadow stack pointer is restored, wasm-bindgen's borrow of
/// `self` ends) and std's panic count returns to 0, so the next panic is caught the same
/// way. The object whose call panicked stays usable; whatever that call changed before
/// the panic stays changed (as in the napi binding, which catches the same way).
pub(crate) fn guard<T>(body: impl FnOnce() -> JsResult<T>) -> JsResult<T> {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        Err(error(
            ErrorCode::Internal,
            "internal error (panic) inside credpool-core",
        ))
    })
}

/// A JS value as a `serde_json::Value` (`undefined`/`null` -> `Null`), at most
/// [`MAX_DEPTH`] levels deep; integral numbers up to 2^53 become integers.
pub(crate) fn from_js(value: JsValue) -> JsResult<Value> {
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
pub(crate) const MAX_DEPTH: usize = 128;

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

/// A serialisable value as a plain JS value (objects, arrays, numbers, strings, null).
///
/// Direct first; an output holding an integer beyond JS's safe range (a deadline past 2^53
/// ms, a saturated counter), which the json-compatible serializer refuses, is serialised
/// again with 64-bit integers as `BigInt`s, which then become the nearest double, as in
/// the napi binding. (No detour through `serde_json::Value`: that instantiated every
/// output type's serialisation a second time, about 10 KB of the module.)
pub(crate) fn to_js<T: Serialize + ?Sized>(value: &T) -> JsResult<JsValue> {
    let ser = serde_wasm_bindgen::Serializer::json_compatible();
    if let Ok(js) = value.serialize(&ser) {
        return Ok(js);
    }
    let js = value
        .serialize(&ser.serialize_large_number_types_as_bigints(true))
        .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))?;
    Ok(numbers_from_bigints(js))
}

// Both serialisations build plain objects and arrays only (string keys; the outputs hold
// no float that is not finite), so the walk meets nothing else.
#[wasm_bindgen(inline_js = r#"
export function numbers_from_bigints(v) {
  if (typeof v === 'bigint') return Number(v)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = numbers_from_bigints(v[i])
  } else if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) v[k] = numbers_from_bigints(v[k])
  }
  return v
}
"#)]
extern "C" {
    /// `v` with every `BigInt` (nested in arrays and objects too) replaced by the nearest
    /// JS number (`Number(b)`: round to nearest, ties to even, as Rust's `as f64`).
    fn numbers_from_bigints(v: JsValue) -> JsValue;
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
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}
