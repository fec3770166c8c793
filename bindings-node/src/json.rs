//! Large JSON values cross the FFI boundary as text.
//!
//! napi-rs converts at most 1,000,000 values per `serde_json::Value` conversion: the state
//! or status of a registry with more than ~60k entries would fail with napi's own
//! `InvalidArg`. [`Json`] goes through V8's `JSON.stringify` / `JSON.parse` and serde_json
//! text instead, which have no such cap; a value that is not JSON (a cycle, a BigInt,
//! nesting serde_json refuses) becomes a coded `invalid_input` error in the method.

// napi's conversion traits are `unsafe fn`s over raw handles.
#![allow(unsafe_code)]

use credpool_core::ErrorCode;
use napi::bindgen_prelude::{
    FromNapiValue, Function, JsObjectValue, ToNapiValue, TypeName, Unknown, ValidateNapiValue,
};
use napi::{Env, JSON, JsValue, ValueType, sys};
use serde_json::Value;

use crate::error::{Code, error};

/// A JSON value converted through text; `Err` holds why the JS value was not JSON.
pub struct Json(Result<Value, String>);

impl Json {
    /// Wraps a value for output.
    pub(crate) fn new(value: Value) -> Self {
        Self(Ok(value))
    }

    /// The value, or `invalid_input` naming `what` when the JS value was not JSON.
    pub(crate) fn into_value(self, what: &str) -> Result<Value, napi::Error<Code>> {
        self.0.map_err(|why| {
            error(
                ErrorCode::InvalidInput,
                format!("{what} is not JSON: {why}"),
            )
        })
    }
}

fn global_json(env: sys::napi_env) -> napi::Result<JSON<'static>> {
    Env::from_raw(env)
        .get_global()?
        .get_named_property_unchecked("JSON")
}

impl FromNapiValue for Json {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let stringify: Function<'_, Unknown<'_>, Unknown<'_>> =
            global_json(env)?.get_named_property_unchecked("stringify")?;
        // SAFETY: `value` is the live argument napi handed us for this call.
        let arg = unsafe { Unknown::from_raw_unchecked(env, value) };
        let text = match stringify.call(arg) {
            Ok(text) if text.get_type()? == ValueType::String => {
                // SAFETY: checked to be a string just above.
                unsafe { String::from_napi_value(env, text.raw())? }
            }
            Ok(_) => return Ok(Self(Err("it has no JSON form".into()))),
            // A cycle, a BigInt or a stack overflow: JSON.stringify threw.
            Err(e) => return Ok(Self(Err(e.reason))),
        };
        Ok(Self(
            serde_json::from_str(&text).map_err(|e| format!("{e}")),
        ))
    }
}

impl ToNapiValue for Json {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let value = value.0.map_err(napi::Error::from_reason)?;
        let text = serde_json::to_string(&value)
            .map_err(|e| napi::Error::from_reason(format!("cannot serialise the output: {e}")))?;
        let parse: Function<'_, String, Unknown<'_>> =
            global_json(env)?.get_named_property_unchecked("parse")?;
        Ok(parse.call(text)?.raw())
    }
}

impl TypeName for Json {
    fn type_name() -> &'static str {
        "Json"
    }

    fn value_type() -> ValueType {
        ValueType::Unknown
    }
}

impl ValidateNapiValue for Json {}
