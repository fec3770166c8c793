//! What the host observed from a provider: the input of the classifier.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A provider response (or transport failure) as reported by the host.
///
/// Only what the classifier needs: status, headers, body and model. Bodies and
/// header values are read up to fixed bounds (see [`crate::limits`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    /// HTTP status code; `None` together with `network_error` for transport failures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Transport failure kind as the host names it (`timeout`, `connect`, `reset`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_error: Option<String>,
    /// Response headers; names compare case-insensitively.
    #[serde(default, skip_serializing_if = "Headers::is_empty")]
    pub headers: Headers,
    /// Response body, text or already-parsed JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// Model the request was for, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

impl Response {
    /// Reads a response document (`{"status": 429, "headers": {...}, ...}`) as `report`
    /// reads its `response`, refusing it with `invalid_input` (no value quoted) likewise.
    pub fn from_value(value: Value) -> crate::Result<Self> {
        crate::codec::from_value(value)
    }
}

/// A response body: JSON when the host parsed it, text otherwise.
///
/// On the wire a JSON string is text and any other JSON value is a parsed body;
/// text that itself parses as a JSON object is treated as that object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum Body {
    /// Raw text (possibly JSON the host did not parse).
    Text(String),
    /// A parsed JSON value.
    Json(Value),
}

/// By hand rather than `#[serde(untagged)]`: the same result (a string is text, anything
/// else JSON) without serde's `Content` buffer and its code.
impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::String(text) => Self::Text(text),
            json => Self::Json(json),
        })
    }
}

/// Response headers as ordered `(name, value)` pairs.
///
/// Deserialises from a JSON object (`{"retry-after": "30"}`) or an array of
/// pairs (`[["retry-after", "30"]]`); serialises as an object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// No headers at all.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// First value of header `name`, compared case-insensitively.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Serialize for Headers {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (name, value) in &self.0 {
            map.serialize_entry(name, value)?;
        }
        map.end()
    }
}

/// An object, or an array of `[name, value]` string pairs; anything else fails as the
/// former `#[serde(untagged)] enum Shape { Map, Pairs }` did (read by hand: no `Content`
/// buffer).
impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let pairs = match Value::deserialize(deserializer)? {
            Value::Object(map) => map
                .into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    Value::Number(n) => Ok((k, n.to_string())),
                    _ => Err(D::Error::custom("header values must be strings or numbers")),
                })
                .collect::<Result<_, _>>()?,
            Value::Array(items) => items
                .into_iter()
                .map(pair)
                .collect::<Option<_>>()
                .ok_or_else(|| D::Error::custom(NO_SHAPE))?,
            _ => return Err(D::Error::custom(NO_SHAPE)),
        };
        Ok(Self(pairs))
    }
}

/// What serde said when headers were neither an object nor pairs.
const NO_SHAPE: &str = "data did not match any variant of untagged enum Shape";

/// `["name", "value"]` as a pair (exactly two strings).
fn pair(item: Value) -> Option<(String, String)> {
    let Value::Array(items) = item else {
        return None;
    };
    match <[Value; 2]>::try_from(items).ok()? {
        [Value::String(name), Value::String(value)] => Some((name, value)),
        _ => None,
    }
}
