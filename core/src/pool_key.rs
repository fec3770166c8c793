//! Pool keys: lower-cased provider ids, or `custom:<name>` for custom endpoints.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, Result, clip};
use crate::limits::MAX_NAME_CHARS;

/// Prefix of custom-endpoint pool keys.
pub const CUSTOM_PREFIX: &str = "custom:";

/// A normalised pool key: `openrouter`, `anthropic`, `custom:together.ai`, ...
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct PoolKey(String);

impl PoolKey {
    /// Normalises `raw`: trimmed and lower-cased; for `custom:<name>` the name is
    /// normalised as in [`custom_name`] (spaces become `-`).
    pub fn parse(raw: &str) -> Result<Self> {
        let trimmed = raw.trim();
        let key = match strip_custom_prefix(trimmed) {
            Some(name) => format!("{CUSTOM_PREFIX}{}", custom_name(name)),
            None => trimmed.to_lowercase(),
        };
        let name_part = key.strip_prefix(CUSTOM_PREFIX).unwrap_or(&key);
        if name_part.is_empty()
            || key.chars().count() > MAX_NAME_CHARS
            || key.chars().any(char::is_control)
        {
            return Err(Error::new(
                ErrorCode::InvalidPoolKey,
                format!("invalid pool key `{}`", clip(raw)),
            ));
        }
        Ok(Self(key))
    }

    /// The key for a custom endpoint named `name`, or derived from `base_url`'s host
    /// when no name is configured.
    pub fn custom(name: Option<&str>, base_url: &str) -> Result<Self> {
        match name.map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => Self::parse(&format!("{CUSTOM_PREFIX}{name}")),
            None => Self::parse(&format!("{CUSTOM_PREFIX}{}", name_from_base_url(base_url))),
        }
    }

    /// The key as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a `custom:` pool.
    #[must_use]
    pub fn is_custom(&self) -> bool {
        self.0.starts_with(CUSTOM_PREFIX)
    }
}

impl fmt::Display for PoolKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PoolKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

fn strip_custom_prefix(key: &str) -> Option<&str> {
    let head = key.get(..CUSTOM_PREFIX.len())?;
    head.eq_ignore_ascii_case(CUSTOM_PREFIX)
        .then(|| key.get(CUSTOM_PREFIX.len()..).unwrap_or(""))
}

/// Normalises a custom endpoint name: trimmed, lower-cased, spaces to `-`.
#[must_use]
pub fn custom_name(name: &str) -> String {
    name.trim().to_lowercase().replace(' ', "-")
}

/// A readable name for an endpoint without a configured name:
/// `https://api.together.ai/v1` → `together.ai`; loopback hosts →
/// `local-(localhost:8080)`.
#[must_use]
pub fn name_from_base_url(base_url: &str) -> String {
    let rest = base_url
        .trim()
        .split_once("://")
        .map_or_else(|| base_url.trim(), |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit('@')
        .next()
        .unwrap_or(authority)
        .to_lowercase();
    let host = authority
        .strip_prefix('[')
        .and_then(|h| h.split(']').next())
        .unwrap_or_else(|| authority.split(':').next().unwrap_or(""));
    let local = matches!(host, "localhost" | "::1" | "0.0.0.0") || host.starts_with("127.");
    if local {
        return format!("local-({authority})");
    }
    let trimmed = ["api.", "www."]
        .iter()
        .find_map(|p| authority.strip_prefix(p))
        .unwrap_or(&authority);
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(raw: &str) -> String {
        PoolKey::parse(raw)
            .map(|k| k.0)
            .unwrap_or_else(|e| format!("ERR {}", e.code().as_str()))
    }

    #[test]
    fn provider_ids_are_lowercased_and_trimmed() {
        assert_eq!(key("  OpenRouter "), "openrouter");
        assert_eq!(key("openai-codex"), "openai-codex");
    }

    #[test]
    fn custom_names_are_normalised() {
        assert_eq!(key("custom:Together.ai"), "custom:together.ai");
        assert_eq!(
            key("CUSTOM:Local (localhost:8080)"),
            "custom:local-(localhost:8080)"
        );
        assert_eq!(key("custom: My  Box "), "custom:my--box");
    }

    #[test]
    fn empty_keys_are_rejected() {
        assert_eq!(key(""), "ERR invalid_pool_key");
        assert_eq!(key("custom:   "), "ERR invalid_pool_key");
        assert_eq!(key("open\u{7}router"), "ERR invalid_pool_key");
    }

    #[test]
    fn custom_key_from_base_url() {
        let k = |name, url| PoolKey::custom(name, url).map(|k| k.0).unwrap_or_default();
        assert_eq!(k(None, "https://api.together.ai/v1/"), "custom:together.ai");
        assert_eq!(
            k(None, "http://localhost:8080/v1"),
            "custom:local-(localhost:8080)"
        );
        assert_eq!(
            k(None, "http://127.0.0.1:11434"),
            "custom:local-(127.0.0.1:11434)"
        );
        assert_eq!(k(Some("Together.ai"), "https://x"), "custom:together.ai");
        assert_eq!(
            k(None, "https://llm.example.com:8443/v1"),
            "custom:llm.example.com:8443"
        );
    }
}
