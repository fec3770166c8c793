//! Python objects <-> core's wire values, through pyo3's conversion traits in ([`Json`]
//! for any JSON field or input, [`Arg`] for core's typed fields, [`Clock`] for `now`) and
//! serde out ([`to_py`], `pythonize`).

use std::sync::Mutex;

use credpool_core::{Body, EntryId, Headers, Millis, PoolKey};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

use crate::errors::{self, check};

/// Deepest nesting read (lists and mappings): serde_json's own limit on JSON text, so the
/// same inputs pass as when they crossed as JSON text; far from overflowing the stack.
const MAX_DEPTH: usize = 127;

/// Largest accepted clock: 2^53 ms (the range every runtime represents exactly).
const MAX_CLOCK: u64 = 1 << 53;

/// A Python value as JSON data: `None`, `bool`, `int`, finite `float`, `str`, `list` or
/// `tuple`, and `dict` (or any mapping) with `str` keys (a number, bool or `None` key is
/// written as `json.dumps` writes it), nested at most 127 deep. Anything else raises
/// `InvalidInputError` (`invalid_input`), naming its type, never its content.
pub(crate) struct Json(pub(crate) Value);

impl FromPyObject<'_> for Json {
    fn extract_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        value(obj, MAX_DEPTH).map(Self).map_err(|what| {
            let message = format!("input is not JSON data: {what}");
            errors::make(obj.py(), "invalid_input", &message)
        })
    }
}

impl From<Json> for Value {
    fn from(json: Json) -> Self {
        json.0
    }
}

/// `obj` as a JSON value, or what it holds that JSON cannot (`depth`: levels left).
fn value(obj: &Bound<'_, PyAny>, depth: usize) -> Result<Value, String> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(text) = obj.downcast::<PyString>() {
        return text
            .to_cow()
            .map(|t| Value::String(t.into_owned()))
            .map_err(|_| "a str that is not valid Unicode (a lone surrogate)".to_owned());
    }
    if let Ok(flag) = obj.downcast::<PyBool>() {
        return Ok(Value::Bool(flag.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        if let Ok(n) = obj.extract::<i64>() {
            return Ok(n.into());
        }
        if let Ok(n) = obj.extract::<u64>() {
            return Ok(n.into());
        }
        // Past 64 bits: the nearest float, as serde_json reads such a number in JSON text.
        let float = obj.extract::<f64>().ok().and_then(Number::from_f64);
        return float
            .map(Value::Number)
            .ok_or_else(|| "an int out of range".to_owned());
    }
    if let Ok(float) = obj.downcast::<PyFloat>() {
        let number = Number::from_f64(float.value());
        return number
            .map(Value::Number)
            .ok_or_else(|| "a float that is not finite".to_owned());
    }
    let Some(depth) = depth.checked_sub(1) else {
        return Err(format!("nested more than {MAX_DEPTH} levels deep"));
    };
    let items = |items: &mut dyn Iterator<Item = Bound<'_, PyAny>>| {
        items
            .map(|item| value(&item, depth))
            .collect::<Result<Vec<_>, _>>()
    };
    if let Ok(list) = obj.downcast::<PyList>() {
        return items(&mut list.iter()).map(Value::Array);
    }
    if let Ok(tuple) = obj.downcast::<PyTuple>() {
        return items(&mut tuple.iter()).map(Value::Array);
    }
    let mut map = Map::new();
    let mut put = |key: &Bound<'_, PyAny>, item: &Bound<'_, PyAny>| {
        // As `json.dumps` writes keys: a number, bool or `None` key as its JSON text.
        let key = match value(key, 0) {
            Ok(Value::String(key)) => key,
            Ok(scalar @ (Value::Null | Value::Bool(_) | Value::Number(_))) => scalar.to_string(),
            _ => return Err("a mapping key that is not a str, number, bool or None".to_owned()),
        };
        map.insert(key, value(item, depth)?);
        Ok::<_, String>(())
    };
    if let Ok(dict) = obj.downcast::<PyDict>() {
        for (key, item) in dict.iter() {
            put(&key, &item)?;
        }
    } else if let Ok(mapping) = obj.downcast::<PyMapping>() {
        let pairs = mapping
            .items()
            .map_err(|_| "a mapping whose items() failed")?;
        for pair in pairs.iter() {
            let (key, item) = pair
                .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>)>()
                .map_err(|_| "a mapping whose items() are not pairs")?;
            put(&key, &item)?;
        }
    } else {
        return Err(format!("a value of type {}", type_name(obj)));
    }
    Ok(Value::Object(map))
}

/// `obj`'s type name (never its value).
fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".into(), |n| n.to_string())
}

/// An argument read straight into core's wire type, raising core's own error (code and
/// message) when core would refuse it: a pool key or entry id (a non-`str` is a
/// `TypeError`, as for any `str` argument), response headers or a body.
pub(crate) struct Arg<T>(pub(crate) T);

/// The last pool key read, with the `str` it was read from (kept alive, so the same object
/// is the same immutable text): hosts pass one object call after call, and copying it out
/// (abi3 3.9 has no borrowed UTF-8) and parsing it again cost ~8% of an acquire + report
/// pair. Busy (another thread): read as usual.
static LAST_POOL: Mutex<Option<(Py<PyAny>, PoolKey)>> = Mutex::new(None);

impl FromPyObject<'_> for Arg<PoolKey> {
    fn extract_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut last = LAST_POOL.try_lock().ok();
        if let Some(Some((text, key))) = last.as_deref()
            && text.is(obj)
        {
            return Ok(Self(key.clone()));
        }
        let key = check(obj.py(), PoolKey::parse(&obj.extract::<String>()?))?;
        if let Some(last) = last.as_deref_mut() {
            *last = Some((obj.clone().unbind(), key.clone()));
        }
        Ok(Self(key))
    }
}

impl FromPyObject<'_> for Arg<EntryId> {
    fn extract_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        check(obj.py(), EntryId::parse(&obj.extract::<String>()?)).map(Self)
    }
}

/// Core's wire types read from [`Json`] by their own serde reader, whose errors never
/// quote the value (so they read as core's wire reader would say them).
trait SerdeArg: DeserializeOwned {}
impl SerdeArg for Headers {}
impl SerdeArg for Body {}

impl<T: SerdeArg> FromPyObject<'_> for Arg<T> {
    fn extract_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let Json(value) = obj.extract()?;
        let invalid = |e| errors::make(obj.py(), "invalid_input", &format!("invalid input: {e}"));
        T::deserialize(value).map(Self).map_err(invalid)
    }
}

/// Core's output (any serde value) as Python objects: dicts, lists, `str`, `int`, `float`,
/// `bool` and `None`, keys in serde's order.
pub(crate) fn to_py<'py>(py: Python<'py>, output: &impl Serialize) -> PyResult<Bound<'py, PyAny>> {
    pythonize::pythonize(py, output)
        .map_err(|_| errors::internal(py, "cannot convert core's output to Python objects"))
}

/// `now`: an `int` of epoch ms in 0..=2^53 (a `bool` or `float` raises
/// `InvalidClockError`, `invalid_clock`).
#[derive(Clone, Copy)]
pub(crate) struct Clock(pub(crate) Millis);

impl FromPyObject<'_> for Clock {
    fn extract_bound(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let int = obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>();
        if int
            && let Ok(ms) = obj.extract::<u64>()
            && ms <= MAX_CLOCK
        {
            return Ok(Self(Millis(ms)));
        }
        let got = match obj.extract::<i128>() {
            Ok(n) if int => n.to_string(),
            _ if int => "an out-of-range integer".to_owned(),
            _ => type_name(obj),
        };
        let message = format!("now must be an integer of epoch ms in 0..=2^53, got {got}");
        Err(errors::make(obj.py(), "invalid_clock", &message))
    }
}

/// The caller's clock, else the wall clock (Python's `time.time_ns`, so a host that fakes
/// Python's time fakes credpool's too).
pub(crate) fn now(py: Python<'_>, clock: Option<Clock>) -> PyResult<Millis> {
    match clock {
        Some(Clock(ms)) => Ok(ms),
        None => {
            let ns: u64 = py.import("time")?.call_method0("time_ns")?.extract()?;
            Ok(Millis(ns / 1_000_000))
        }
    }
}
