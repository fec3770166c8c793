//! Values crossing the FFI boundary: large JSON values as text ([`Json`]), and the hot
//! path's inputs and outputs as typed values ([`Out`], [`read_opts`], [`read_response`]).
//!
//! ## Large JSON values
//!
//! napi-rs converts at most 1,000,000 values per `serde_json::Value` conversion: the state
//! or status of a registry with more than ~60k entries would fail with napi's own
//! `InvalidArg`. [`Json`] goes through V8's `JSON.stringify` / `JSON.parse` and serde_json
//! text instead, which have no such cap; a value that is not JSON (a cycle, a BigInt,
//! nesting serde_json refuses) becomes a coded `invalid_input` error in the method.

// napi's conversion traits are `unsafe fn`s over raw handles.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::ptr;

use credpool_core::CredentialOut;
use credpool_core::{
    Body, Decision, ErrorCode, Headers, HintUsed, Output, OutputBody, Reason, Reply, Response,
};
use napi::bindgen_prelude::{
    FromNapiValue, Function, JsObjectValue, ToNapiValue, TypeName, Unknown, ValidateNapiValue,
};
use napi::{Env, JSON, JsValue, Status, ValueType, check_status, sys};
use serde_json::Value;

use crate::error::{Code, error};
use crate::shape;

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

/// Longest string [`Text`] reads without a heap allocation, in UTF-8 bytes (plus the NUL
/// napi writes).
const TEXT_INLINE: usize = 64;

/// A string argument of a hot-path method (pool key, entry id): read in one napi call into
/// an inline buffer when short, else (and for a value that is not a string, to get napi's
/// own error) by napi's `String` conversion. The text is the same either way.
pub struct Text {
    len: usize,
    inline: [u8; TEXT_INLINE],
    heap: Option<String>,
}

impl Text {
    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match &self.heap {
            Some(text) => text,
            // Checked to be UTF-8 when read.
            None => std::str::from_utf8(&self.inline[..self.len]).unwrap_or_default(),
        }
    }

    /// The text as an owned `String`.
    pub(crate) fn into_string(self) -> String {
        match self.heap {
            Some(text) => text,
            None => self.as_str().to_owned(),
        }
    }
}

impl FromNapiValue for Text {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        let mut text = Self {
            len: 0,
            inline: [0; TEXT_INLINE],
            heap: None,
        };
        // SAFETY: `value` is a live argument; napi writes at most `TEXT_INLINE` bytes (the
        // text, never a split character, and a NUL) and the count of text bytes.
        let status = unsafe {
            sys::napi_get_value_string_utf8(
                env,
                value,
                text.inline.as_mut_ptr().cast(),
                TEXT_INLINE,
                &raw mut text.len,
            )
        };
        // Fewer than `TEXT_INLINE - 4` bytes written: nothing was cut (a cut leaves at most
        // a 4-byte character out of the `TEXT_INLINE - 1` bytes of room).
        if status == sys::Status::napi_ok
            && text.len < TEXT_INLINE - 4
            && std::str::from_utf8(&text.inline[..text.len]).is_ok()
        {
            return Ok(text);
        }
        // SAFETY: as above.
        text.heap = Some(unsafe { String::from_napi_value(env, value)? });
        Ok(text)
    }
}

impl TypeName for Text {
    fn type_name() -> &'static str {
        "String"
    }

    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ValidateNapiValue for Text {}

/// A hot-path method's result.
pub enum Out {
    /// A core [`Output`] built straight into a JS object: the same keys, in the same order,
    /// with the same absent-vs-`null` rules as its serde form, but no `serde_json::Value` in
    /// between. Replies other than `released` and `credential` go through serde.
    Core(Output),
    /// An output the generic JSON path produced.
    Json(Value),
}

impl TypeName for Out {
    fn type_name() -> &'static str {
        "Out"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl ToNapiValue for Out {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        let Output { body, changed } = match value {
            Self::Core(output) => output,
            // SAFETY: `env` is the live env of this call.
            Self::Json(value) => return unsafe { Value::to_napi_value(env, value) },
        };
        let mut out = Writer::new(env);
        match body {
            OutputBody::Decision(decision) => out.decision(&decision)?,
            OutputBody::Reply(Reply::Released { lease_id }) => {
                out.str(c"type", "released")?;
                out.u64(c"lease_id", lease_id.0)?;
            }
            OutputBody::Reply(Reply::Credential(credential)) => out.credential(&credential)?,
            body => {
                let value = serde_json::to_value(Output { body, changed }).map_err(|e| {
                    napi::Error::from_reason(format!("cannot serialise the output: {e}"))
                })?;
                // SAFETY: `env` is the live env of this call.
                return unsafe { Value::to_napi_value(env, value) };
            }
        }
        out.bool(c"changed", changed)?;
        out.finish()
    }
}

/// Collects the properties of a fresh JS object, then creates it in one call: through a
/// cached JS factory for its key sequence ([`crate::shape`]), else with
/// `napi_create_object` + `napi_define_properties`. Either way the same own, enumerable,
/// writable, configurable data properties, in order.
struct Writer {
    env: sys::napi_env,
    len: usize,
    keys: [&'static CStr; shape::MAX_KEYS],
    values: [sys::napi_value; shape::MAX_KEYS],
}

impl Writer {
    fn new(env: sys::napi_env) -> Self {
        Self {
            env,
            len: 0,
            keys: [c""; shape::MAX_KEYS],
            values: [ptr::null_mut(); shape::MAX_KEYS],
        }
    }

    /// The object with every property set so far.
    fn finish(self) -> napi::Result<sys::napi_value> {
        let (keys, values) = (&self.keys[..self.len], &self.values[..self.len]);
        // SAFETY: `env` is the live env of this call; the values were created in it.
        if let Some(object) = unsafe { shape::build(self.env, keys, values)? } {
            return Ok(object);
        }
        let properties: Vec<sys::napi_property_descriptor> = keys
            .iter()
            .zip(values)
            .map(|(key, value)| sys::napi_property_descriptor {
                utf8name: key.as_ptr(),
                name: ptr::null_mut(),
                method: None,
                getter: None,
                setter: None,
                value: *value,
                attributes: sys::PropertyAttributes::writable
                    | sys::PropertyAttributes::enumerable
                    | sys::PropertyAttributes::configurable,
                data: ptr::null_mut(),
            })
            .collect();
        let mut object = ptr::null_mut();
        // SAFETY: as above; the descriptors name `'static` C strings.
        unsafe {
            check_status!(sys::napi_create_object(self.env, &raw mut object))?;
            check_status!(sys::napi_define_properties(
                self.env,
                object,
                properties.len(),
                properties.as_ptr(),
            ))?;
        }
        Ok(object)
    }

    fn set(&mut self, key: &'static CStr, value: sys::napi_value) -> napi::Result<()> {
        let (Some(key_slot), Some(value_slot)) =
            (self.keys.get_mut(self.len), self.values.get_mut(self.len))
        else {
            return Err(napi::Error::from_reason("too many output properties"));
        };
        *key_slot = key;
        *value_slot = value;
        self.len += 1;
        Ok(())
    }

    fn str(&mut self, key: &'static CStr, text: &str) -> napi::Result<()> {
        let mut value = ptr::null_mut();
        // SAFETY: `text` outlives the call; napi copies it. ASCII is valid Latin-1 (and
        // cheaper for V8 to take than UTF-8, which it must decode).
        check_status!(unsafe {
            if text.is_ascii() {
                sys::napi_create_string_latin1(
                    self.env,
                    text.as_ptr().cast(),
                    text.len() as isize,
                    &raw mut value,
                )
            } else {
                sys::napi_create_string_utf8(
                    self.env,
                    text.as_ptr().cast(),
                    text.len() as isize,
                    &raw mut value,
                )
            }
        })?;
        self.set(key, value)
    }

    /// A `u64` as the serde path makes it: a number up to `i64::MAX` (all real values are
    /// within 2^53), else its decimal text.
    fn u64(&mut self, key: &'static CStr, n: u64) -> napi::Result<()> {
        let Ok(n) = i64::try_from(n) else {
            return self.str(key, &n.to_string());
        };
        let mut value = ptr::null_mut();
        // SAFETY: plain value creation in the live env.
        check_status!(unsafe { sys::napi_create_int64(self.env, n, &raw mut value) })?;
        self.set(key, value)
    }

    fn bool(&mut self, key: &'static CStr, b: bool) -> napi::Result<()> {
        let mut value = ptr::null_mut();
        // SAFETY: plain value creation in the live env.
        check_status!(unsafe { sys::napi_get_boolean(self.env, b, &raw mut value) })?;
        self.set(key, value)
    }

    fn null(&mut self, key: &'static CStr) -> napi::Result<()> {
        let mut value = ptr::null_mut();
        // SAFETY: plain value creation in the live env.
        check_status!(unsafe { sys::napi_get_null(self.env, &raw mut value) })?;
        self.set(key, value)
    }

    /// A unit enum (reason, hint source) by its serde name (a string value).
    fn name(&mut self, key: &'static CStr, value: serde_json::Result<Value>) -> napi::Result<()> {
        match value {
            Ok(Value::String(name)) => self.str(key, &name),
            _ => Err(napi::Error::from_reason("cannot name an enum value")),
        }
    }

    fn reason(&mut self, reason: Reason) -> napi::Result<()> {
        self.name(c"reason", serde_json::to_value(reason))
    }

    fn hint(&mut self, hint: Option<&HintUsed>) -> napi::Result<()> {
        let Some(hint) = hint else { return Ok(()) };
        let mut inner = Self::new(self.env);
        inner.name(c"source", serde_json::to_value(hint.source))?;
        inner.u64(c"at", hint.at.0)?;
        inner.bool(c"clamped", hint.clamped)?;
        let inner = inner.finish()?;
        self.set(c"hint", inner)
    }

    /// The fields of a [`Decision`] in its serde order (`type` first; optional fields
    /// absent when `None`, except `primary_back_at`, which is `null`).
    fn decision(&mut self, decision: &Decision) -> napi::Result<()> {
        match decision {
            Decision::Use {
                entry_id,
                lease_id,
                reason,
                hint,
            } => {
                self.str(c"type", "use")?;
                self.str(c"entry_id", entry_id.as_str())?;
                self.u64(c"lease_id", lease_id.0)?;
                if let Some(reason) = reason {
                    self.reason(*reason)?;
                }
                self.hint(hint.as_ref())?;
            }
            Decision::RetrySame {
                entry_id,
                lease_id,
                delay_ms,
                reason,
                hint,
            } => {
                self.str(c"type", "retry_same")?;
                self.str(c"entry_id", entry_id.as_str())?;
                self.u64(c"lease_id", lease_id.0)?;
                self.u64(c"delay_ms", *delay_ms)?;
                self.reason(*reason)?;
                self.hint(hint.as_ref())?;
            }
            Decision::Refresh {
                entry_id,
                lease_id,
                generation,
                reason,
            } => {
                self.str(c"type", "refresh")?;
                self.str(c"entry_id", entry_id.as_str())?;
                self.u64(c"lease_id", lease_id.0)?;
                self.u64(c"generation", *generation)?;
                self.reason(*reason)?;
            }
            Decision::Fallback {
                pool,
                model,
                reason,
                primary_back_at,
            } => {
                self.str(c"type", "fallback")?;
                self.str(c"pool", pool.as_str())?;
                if let Some(model) = model {
                    self.str(c"model", model)?;
                }
                self.reason(*reason)?;
                match primary_back_at {
                    Some(at) => self.u64(c"primary_back_at", at.0)?,
                    None => self.null(c"primary_back_at")?,
                }
            }
            Decision::Wait {
                until,
                reason,
                hint,
            } => {
                self.str(c"type", "wait")?;
                self.u64(c"until", until.0)?;
                self.reason(*reason)?;
                self.hint(hint.as_ref())?;
            }
            Decision::Fail { reason, status } => {
                self.str(c"type", "fail")?;
                self.reason(*reason)?;
                if let Some(status) = status {
                    self.u64(c"status", u64::from(*status))?;
                }
            }
            Decision::Done => self.str(c"type", "done")?,
            _ => return Err(napi::Error::from_reason("unknown decision")),
        }
        Ok(())
    }

    /// `reveal`'s answer: `access_token` is `null` when absent, the other optional fields
    /// are left out.
    fn credential(&mut self, credential: &CredentialOut) -> napi::Result<()> {
        self.str(c"type", "credential")?;
        self.str(c"entry_id", credential.entry_id.as_str())?;
        match &credential.access_token {
            Some(token) => self.str(c"access_token", token.expose())?,
            None => self.null(c"access_token")?,
        }
        if let Some(token) = &credential.refresh_token {
            self.str(c"refresh_token", token.expose())?;
        }
        if let Some(at) = credential.expires_at {
            self.u64(c"expires_at", at.0)?;
        }
        if let Some(url) = &credential.base_url {
            self.str(c"base_url", url)?;
        }
        self.u64(c"generation", credential.generation)
    }
}

/// A JS argument read field by field. `Ok(None)` means "not the common shape": the caller
/// then takes the generic JSON path, which gives exactly the error (or result) it always did.
type Typed<T> = napi::Result<Option<T>>;

/// The own enumerable string keys of a plain (non-array) object and their defined values, as
/// the serde conversion sees them; `None` when `value` is not such an object.
fn fields(value: Unknown<'_>) -> Typed<Vec<(String, Unknown<'_>)>> {
    if value.get_type()? != ValueType::Object || value.is_array()? {
        return Ok(None);
    }
    let (env, raw) = (value.value().env, value.raw());
    let mut names = ptr::null_mut();
    // SAFETY: `raw` is a live object of this call.
    check_status!(unsafe { sys::napi_get_property_names(env, raw, &raw mut names) })?;
    let mut len = 0u32;
    // SAFETY: `names` is the array napi just returned.
    check_status!(unsafe { sys::napi_get_array_length(env, names, &raw mut len) })?;
    let mut out = Vec::with_capacity(len as usize);
    for i in 0..len {
        let (mut name, mut field) = (ptr::null_mut(), ptr::null_mut());
        // SAFETY: index within the array's length; `name` is then a property key of `raw`.
        unsafe {
            check_status!(sys::napi_get_element(env, names, i, &raw mut name))?;
            check_status!(sys::napi_get_property(env, raw, name, &raw mut field))?;
        }
        // SAFETY: handles of this call.
        let (name, field) = unsafe {
            let name = Unknown::from_raw_unchecked(env, name);
            (name, Unknown::from_raw_unchecked(env, field))
        };
        if name.get_type()? != ValueType::String {
            return Ok(None);
        }
        if field.get_type()? == ValueType::Undefined {
            continue;
        }
        // SAFETY: checked to be a string just above.
        out.push((unsafe { String::from_napi_value(env, name.raw())? }, field));
    }
    Ok(Some(out))
}

/// A string field (`null` is absent, as serde reads `Option<String>`).
fn opt_string(value: Unknown<'_>) -> Typed<Option<String>> {
    match value.get_type()? {
        ValueType::Null => Ok(Some(None)),
        // SAFETY: checked to be a string.
        ValueType::String => Ok(Some(Some(unsafe { value.cast::<String>()? }))),
        _ => Ok(None),
    }
}

/// The keys `acquire`'s options may have.
const OPTS_KEYS: [&CStr; 2] = [c"model", c"session"];

/// The keys a `ResponseInfo` may have.
const RESPONSE_KEYS: [&CStr; 5] = [c"status", c"model", c"network_error", c"headers", c"body"];

/// A plain (non-array) object's defined values by key, each key among `keys` (own and
/// inherited enumerable string keys, as [`fields`] lists them); `None` when `value` is not
/// such an object or has another key. One call into JS ([`shape::read`]) where it can,
/// else [`fields`].
fn known_fields<'a, const N: usize>(
    value: Unknown<'a>,
    keys: &[&'static CStr; N],
) -> Typed<[Option<Unknown<'a>>; N]> {
    let env = value.value().env;
    let mut out = [None; N];
    // SAFETY: `value` is a live handle of this call.
    match unsafe { shape::read(env, keys, value.raw())? } {
        shape::Read::Fields { mask, values } => {
            let mut index = 1;
            for (i, slot) in out.iter_mut().enumerate() {
                if mask & (1 << i) == 0 {
                    continue;
                }
                let mut field = ptr::null_mut();
                // SAFETY: `values` is the reader's array: one element per set bit after the mask.
                check_status!(unsafe {
                    sys::napi_get_element(env, values, index, &raw mut field)
                })?;
                index += 1;
                // SAFETY: a handle of this call.
                *slot = Some(unsafe { Unknown::from_raw_unchecked(env, field) });
            }
            Ok(Some(out))
        }
        shape::Read::Other => Ok(None),
        shape::Read::Unavailable => {
            let Some(fields) = fields(value)? else {
                return Ok(None);
            };
            for (name, field) in fields {
                let Some(i) = keys.iter().position(|k| k.to_bytes() == name.as_bytes()) else {
                    return Ok(None);
                };
                out[i] = Some(field);
            }
            Ok(Some(out))
        }
    }
}

/// An optional string field read with [`opt_string`]: `Ok(None)` when present but not a
/// string or `null`.
fn opt_string_field(value: Option<Unknown<'_>>) -> Typed<Option<String>> {
    match value {
        None => Ok(Some(None)),
        Some(value) => opt_string(value),
    }
}

/// `acquire`'s `{ model?, session? }`, or `None` for the generic path.
pub(crate) fn read_opts(opts: Unknown<'_>) -> Typed<(Option<String>, Option<String>)> {
    let Some([model, session]) = known_fields(opts, &OPTS_KEYS)? else {
        return Ok(None);
    };
    let (Some(model), Some(session)) = (opt_string_field(model)?, opt_string_field(session)?)
    else {
        return Ok(None);
    };
    Ok(Some((model, session)))
}

/// `report`'s `ResponseInfo` as core's [`Response`], or `None` for the generic path.
/// Headers and non-text bodies are converted as the generic path converts them (napi's serde
/// conversion, integral numbers made integers), then read by core's own `Deserialize`.
pub(crate) fn read_response(response: Unknown<'_>) -> Typed<Response> {
    let Some([status, model, network_error, headers, body]) =
        known_fields(response, &RESPONSE_KEYS)?
    else {
        return Ok(None);
    };
    let mut out = Response::default();
    if let Some(value) = status {
        match value.get_type()? {
            ValueType::Null => {}
            ValueType::Number => {
                // SAFETY: checked to be a number.
                let n = unsafe { value.cast::<f64>()? };
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let status =
                    (n.fract() == 0.0 && (0.0..=65_535.0).contains(&n)).then_some(n as u16);
                if status.is_none() {
                    return Ok(None);
                }
                out.status = status;
            }
            _ => return Ok(None),
        }
    }
    let (Some(model), Some(network_error)) =
        (opt_string_field(model)?, opt_string_field(network_error)?)
    else {
        return Ok(None);
    };
    out.model = model;
    out.network_error = network_error;
    if let Some(value) = headers {
        let Some(headers) = to_value(value)
            .ok()
            .and_then(|v| serde_json::from_value::<Headers>(crate::integral(v)).ok())
        else {
            return Ok(None);
        };
        out.headers = headers;
    }
    if let Some(value) = body {
        match value.get_type()? {
            ValueType::Null => {}
            // SAFETY: checked to be a string.
            ValueType::String => out.body = Some(Body::Text(unsafe { value.cast::<String>()? })),
            _ => {
                let Some(body) = to_value(value)
                    .ok()
                    .and_then(|v| serde_json::from_value::<Body>(crate::integral(v)).ok())
                else {
                    return Ok(None);
                };
                out.body = Some(body);
            }
        }
    }
    Ok(Some(out))
}

/// napi's serde conversion of a JS value (what a `serde_json::Value` argument receives).
pub(crate) fn to_value(value: Unknown<'_>) -> napi::Result<Value> {
    // SAFETY: `value` is a live handle of this call.
    unsafe { Value::from_napi_value(value.value().env, value.raw()) }
}

/// A napi conversion error as the coded error napi itself throws for an argument that does
/// not convert (`code` is the napi status name).
pub(crate) fn conversion_error(e: napi::Error) -> napi::Error<Code> {
    let code = match e.status {
        Status::InvalidArg => "InvalidArg",
        Status::ObjectExpected => "ObjectExpected",
        Status::StringExpected => "StringExpected",
        Status::NumberExpected => "NumberExpected",
        Status::BooleanExpected => "BooleanExpected",
        Status::ArrayExpected => "ArrayExpected",
        Status::FunctionExpected => "FunctionExpected",
        Status::BigintExpected => "BigintExpected",
        Status::PendingException => "PendingException",
        _ => "GenericFailure",
    };
    napi::Error::new(Code(code), e.reason)
}
