//! Reading a provider error body: payload, reason, message and the text the
//! class decision matches against.
//!
//! A text body that parses as a JSON object (or array) is used as that value.
//! The error *payload* is found by descending through `error` members that are
//! objects and through the first element of arrays (Google streaming errors are
//! `[{"error": {...}}]`), at most [`MAX_BODY_DEPTH`] steps, iteratively; the last
//! object reached is the payload (`body["error"]` for the usual shapes, the body
//! itself when `error` is a string or absent). The first object reached is the
//! *root* (the envelope).
//!
//! - reason candidates, in order: payload `code`, `type`, `status` (Google), then
//!   payload `error` when it is an identifier (`invalid_grant`): ASCII letters,
//!   digits and `_-.:`, no spaces, at most [`MAX_REASON_CHARS`] bytes. Only
//!   strings count; numeric codes (OpenRouter, Google `429`) are skipped.
//! - message, first of: payload `message`, `error_description`, `detail`, payload
//!   `error` when it is not an identifier (xAI's sentence), root `message`,
//!   root `detail`; for a non-JSON text body, the text itself.
//!
//! Every string is read up to [`MAX_BODY_SCAN_BYTES`] (cut at a char boundary).

use std::borrow::Cow;

use serde_json::{Map, Value};

use crate::limits::{MAX_BODY_DEPTH, MAX_BODY_SCAN_BYTES, MAX_REASON_CHARS};
use crate::response::Body;

/// A JSON object.
pub(crate) type Object = Map<String, Value>;

/// The longest prefix of `s` that is at most `max_bytes` long and ends on a char boundary.
pub(crate) fn bounded(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The first `max_chars` chars of `s`, trimmed; `None` when nothing is left.
pub(crate) fn truncated(s: &str, max_chars: usize) -> Option<String> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    Some(
        s.chars()
            .take(max_chars)
            .collect::<String>()
            .trim_end()
            .to_owned(),
    )
}

/// A body as the classifier sees it.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// No body, or a JSON body that is not an object, array or string.
    Empty,
    /// A text body that is not a JSON object or array (bounded).
    Text(&'a str),
    /// A JSON object or array (parsed here from text, or handed in by the host).
    Json(Cow<'a, Value>),
}

impl<'a> Parsed<'a> {
    /// Reads `body`, parsing text bodies that hold a JSON object or array.
    pub(crate) fn new(body: Option<&'a Body>) -> Self {
        match body {
            None | Some(Body::Json(Value::Null | Value::Bool(_) | Value::Number(_))) => Self::Empty,
            Some(Body::Text(text) | Body::Json(Value::String(text))) => Self::from_text(text),
            Some(Body::Json(value)) => Self::Json(Cow::Borrowed(value)),
        }
    }

    fn from_text(text: &'a str) -> Self {
        let text = bounded(text, MAX_BODY_SCAN_BYTES);
        if text.trim_start().starts_with(['{', '[']) {
            // serde_json bounds its own recursion (128 levels) and fails cleanly.
            if let Ok(value @ (Value::Object(_) | Value::Array(_))) =
                serde_json::from_str::<Value>(text)
            {
                return Self::Json(Cow::Owned(value));
            }
        }
        Self::Text(text)
    }
}

/// The parts of a body the classifier reads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields<'a> {
    /// The outermost object (the envelope).
    pub(crate) root: Option<&'a Object>,
    /// The error payload (see the module docs).
    pub(crate) payload: Option<&'a Object>,
    /// A non-JSON text body.
    pub(crate) text: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// Locates root and payload in `parsed`.
    pub(crate) fn new(parsed: &'a Parsed<'_>) -> Self {
        match parsed {
            Parsed::Empty => Self::default(),
            Parsed::Text(text) => Self {
                text: Some(text),
                ..Self::default()
            },
            Parsed::Json(value) => {
                let (root, payload) = descend(value);
                Self {
                    root,
                    payload,
                    text: None,
                }
            }
        }
    }

    /// The payload, then the root when it is a different object.
    pub(crate) fn objects(&self) -> impl Iterator<Item = &'a Object> {
        let root = self
            .root
            .filter(|root| !self.payload.is_some_and(|p| std::ptr::eq(p, *root)));
        self.payload.into_iter().chain(root)
    }

    /// Reason candidates in order (see the module docs).
    pub(crate) fn reasons(&self) -> Vec<&'a str> {
        let Some(payload) = self.payload else {
            return Vec::new();
        };
        let mut out: Vec<&'a str> = ["code", "type", "status"]
            .iter()
            .filter_map(|key| str_field(payload, key))
            .collect();
        out.extend(str_field(payload, "error").filter(|e| is_identifier(e)));
        out
    }

    /// The first message candidate (see the module docs), bounded but not truncated.
    pub(crate) fn message(&self) -> Option<&'a str> {
        if let Some(text) = self.text {
            let text = text.trim();
            return (!text.is_empty()).then_some(text);
        }
        let payload = self.payload?;
        ["message", "error_description", "detail"]
            .iter()
            .find_map(|key| str_field(payload, key))
            .or_else(|| str_field(payload, "error").filter(|e| !is_identifier(e)))
            .or_else(|| {
                let root = self.objects().nth(1)?;
                str_field(root, "message").or_else(|| str_field(root, "detail"))
            })
    }

    /// The payload's `metadata` object (OpenRouter).
    pub(crate) fn metadata(&self) -> Option<&'a Object> {
        self.payload?.get("metadata")?.as_object()
    }
}

/// Walks from `value` to the error payload; returns (root, payload).
fn descend(value: &Value) -> (Option<&Object>, Option<&Object>) {
    let mut root = None;
    let mut payload = None;
    let mut current = value;
    for _ in 0..MAX_BODY_DEPTH {
        current = match current {
            Value::Object(map) => {
                root = root.or(Some(map));
                payload = Some(map);
                match map.get("error") {
                    Some(inner @ (Value::Object(_) | Value::Array(_))) => inner,
                    _ => break,
                }
            }
            Value::Array(items) => match items.first() {
                Some(first) => first,
                None => break,
            },
            _ => break,
        };
    }
    (root, payload)
}

/// `map[key]` as a trimmed, non-empty, bounded string.
pub(crate) fn str_field<'a>(map: &'a Object, key: &str) -> Option<&'a str> {
    let s = bounded(map.get(key)?.as_str()?, MAX_BODY_SCAN_BYTES).trim();
    (!s.is_empty()).then_some(s)
}

/// Whether `s` looks like a machine code (`invalid_grant`) rather than prose.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_REASON_CHARS
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'))
}

/// What the class decision matches against, all ASCII-lower-cased.
#[derive(Clone, Debug, Default)]
pub(crate) struct Signals {
    /// Every reason candidate, trimmed and lower-cased.
    pub(crate) codes: Vec<String>,
    /// Codes, message and OpenRouter `metadata.raw`, joined by newlines.
    pub(crate) haystack: String,
    /// OpenRouter forwarded an upstream provider's error: `metadata.provider_name`
    /// is a non-empty string and `metadata.raw` is present.
    pub(crate) upstream_metadata: bool,
}

impl Signals {
    /// Collects the signals of `fields`.
    pub(crate) fn new(fields: &Fields<'_>) -> Self {
        let codes: Vec<String> = fields
            .reasons()
            .iter()
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let metadata = fields.metadata();
        let raw = metadata.and_then(|m| str_field(m, "raw"));
        let mut haystack = codes.join("\n");
        for part in [fields.message(), raw].into_iter().flatten() {
            haystack.push('\n');
            haystack.push_str(&part.to_ascii_lowercase());
        }
        let upstream_metadata = metadata.is_some_and(|m| {
            str_field(m, "provider_name").is_some() && m.get("raw").is_some_and(|r| !r.is_null())
        });
        Self {
            codes,
            haystack,
            upstream_metadata,
        }
    }

    /// Whether some code equals one of `set`.
    pub(crate) fn has_code(&self, set: &[&str]) -> bool {
        self.codes.iter().any(|c| set.contains(&c.as_str()))
    }

    /// Whether the haystack contains one of `phrases` (lower-case).
    pub(crate) fn mentions(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.haystack.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_respects_char_boundaries() {
        assert_eq!(bounded("héllo", 2), "h");
        assert_eq!(bounded("héllo", 3), "hé");
        assert_eq!(bounded("héllo", 99), "héllo");
        assert_eq!(bounded("€", 2), "");
        assert_eq!(truncated("  ab€d  ", 3), Some("ab€".to_owned()));
        assert_eq!(truncated("   ", 3), None);
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("invalid_grant"));
        assert!(is_identifier("GoUsageLimit"));
        assert!(!is_identifier("Incorrect API key provided"));
        assert!(!is_identifier(""));
        assert!(!is_identifier(&"a".repeat(MAX_REASON_CHARS + 1)));
    }
}
