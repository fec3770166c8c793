//! Built-in OAuth refreshers: each supported provider's refresh-token request, and the
//! reading of its answer into a [`RefreshOutcome`]. Core only builds and reads; the host
//! sends the request (under the store's single-flight protocol) and hands back the answer.
//!
//! Facts (endpoints, client ids, body shapes, terminal error codes) follow the Hermes
//! agent's refreshers and the providers' own CLIs. An entry's `extra.token_url` replaces
//! the provider's token endpoint (a login records the one it used; tests point it at a
//! mock), and `extra.oauth_provider` names the provider of an entry whose pool key does not.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::entry::{Entry, EntryId};
use crate::error::{Error, ErrorCode, Result, clip};
use crate::outcome::RefreshOutcome;
use crate::pool_key::PoolKey;
use crate::registry::Registry;
use crate::response::{Body, Response};
use crate::secret::Secret;
use crate::time::{Millis, SECOND};

/// The HTTP request that refreshes one entry's token (it carries the refresh token: its
/// `Debug` shows the URL and header names only).
#[derive(Clone, PartialEq, Eq)]
pub struct TokenRequest {
    /// The token endpoint (always `POST`).
    pub url: String,
    /// Request headers, `content-type` first (values may hold the refresh token).
    pub headers: Vec<(String, Secret)>,
    /// The request body (holds the refresh token).
    pub body: Secret,
}

impl std::fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("TokenRequest")
            .field("url", &self.url)
            .field("headers", &names)
            .finish_non_exhaustive()
    }
}

/// How a provider's refresh request is shaped and its answer read.
struct Provider {
    /// The pool key (and `extra.oauth_provider` value) that selects it.
    name: &'static str,
    token_url: &'static str,
    client_id: &'static str,
    /// JSON body instead of a form.
    json: bool,
    /// The refresh token goes in this header instead of the body (Nous).
    token_header: Option<&'static str>,
    /// Where the new token's expiry comes from.
    expiry: Expiry,
    /// Which failures are terminal (a new login needed).
    terminal: fn(status: u16, code: &str, text: &str) -> bool,
}

#[derive(Clone, Copy)]
enum Expiry {
    /// `expires_in` seconds, this default when absent.
    ExpiresIn(u64),
    /// The access token's JWT `exp` (Codex), else none.
    JwtExp,
    /// `expires_in`, else the access token's JWT `exp` (xAI).
    ExpiresInOrJwt,
    /// MiniMax's `expired_in`: epoch ms when larger than half of now, else seconds.
    MinimaxExpiredIn,
}

/// Codes that mean the grant is gone, whatever the provider.
const DEAD_GRANT: &[&str] = &[
    "invalid_grant",
    "invalid_token",
    "refresh_token_reused",
    "token_revoked",
    "token_invalidated",
    "unauthorized_client",
];

fn dead_grant(_status: u16, code: &str, _text: &str) -> bool {
    DEAD_GRANT.contains(&code)
}

const PROVIDERS: &[Provider] = &[
    Provider {
        name: "anthropic",
        token_url: "https://platform.claude.com/v1/oauth/token",
        client_id: "9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        json: true,
        token_header: None,
        expiry: Expiry::ExpiresIn(3_600),
        terminal: |status, code, text| {
            matches!(status, 400 | 401) && dead_grant(status, code, text)
        },
    },
    Provider {
        name: "openai-codex",
        token_url: "https://auth.openai.com/oauth/token",
        client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
        json: false,
        token_header: None,
        expiry: Expiry::JwtExp,
        terminal: |status, code, text| {
            matches!(status, 401 | 403) || dead_grant(status, code, text)
        },
    },
    Provider {
        name: "xai-oauth",
        token_url: "https://auth.x.ai/oauth2/token",
        client_id: "b1a00492-073a-47ea-816f-4c329264a828",
        json: false,
        token_header: None,
        expiry: Expiry::ExpiresInOrJwt,
        // 403 is a subscription tier without API access, not a dead login.
        terminal: |status, code, text| {
            matches!(status, 400 | 401) || (status != 403 && dead_grant(status, code, text))
        },
    },
    Provider {
        name: "nous",
        token_url: "https://portal.nousresearch.com/api/oauth/token",
        client_id: "hermes-cli",
        json: false,
        token_header: Some("x-nous-refresh-token"),
        expiry: Expiry::ExpiresIn(3_600),
        terminal: |status, code, text| dead_grant(status, code, text) || text.contains("reuse"),
    },
    Provider {
        name: "qwen-oauth",
        token_url: "https://chat.qwen.ai/api/v1/oauth2/token",
        client_id: "f0304373b74a44d2b584a3fb70ca9e56",
        json: false,
        token_header: None,
        expiry: Expiry::ExpiresIn(6 * 3_600),
        // The qwen CLI drops its credentials on 400 and 401.
        terminal: |status, code, text| {
            matches!(status, 400 | 401) || dead_grant(status, code, text)
        },
    },
    Provider {
        name: "minimax-oauth",
        token_url: "https://api.minimax.io/oauth/token",
        client_id: "78257093-7e40-4613-99e0-527b14b39113",
        json: false,
        token_header: None,
        expiry: Expiry::MinimaxExpiredIn,
        terminal: |status, code, text| {
            dead_grant(status, code, text) || text.contains("invalid_refresh_token")
        },
    },
];

/// Which OAuth entries the host can refresh: on the wire `true` (every one: it brings its
/// own refresher; the default), `"built_in"` (those of a provider with a built-in
/// refresher, which it carries out) or `false` (none). An entry the host cannot refresh
/// is passed over while its token needs a refresh, and a 401 on it marks and rotates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CanRefresh {
    /// Every OAuth entry.
    #[default]
    All,
    /// Entries of a provider with a built-in refresher.
    BuiltIn,
    /// None.
    None,
}

impl CanRefresh {
    /// Whether the host can refresh `entry` of `pool`.
    pub(crate) fn covers(self, pool: &PoolKey, entry: &Entry) -> bool {
        match self {
            Self::All => true,
            Self::BuiltIn => provider_of(pool, entry).is_ok(),
            Self::None => false,
        }
    }
}

impl<'de> Deserialize<'de> for CanRefresh {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Bool(true) => Ok(Self::All),
            Value::Bool(false) => Ok(Self::None),
            Value::String(name) if name == "built_in" => Ok(Self::BuiltIn),
            _ => Err(serde::de::Error::custom(
                "can_refresh must be true, false or \"built_in\"",
            )),
        }
    }
}

/// The provider names with a built-in refresher.
#[must_use]
pub fn oauth_providers() -> Vec<&'static str> {
    PROVIDERS.iter().map(|p| p.name).collect()
}

impl Registry {
    /// The request that refreshes entry `entry_id` of `pool` with its provider's built-in
    /// refresher. `not_refreshable` when the entry has no refresh token or its provider
    /// none.
    pub fn token_request(&self, pool: &PoolKey, entry_id: &EntryId) -> Result<TokenRequest> {
        let entry = self.pool(pool)?.entry(entry_id)?;
        let provider = provider_of(pool, entry)?;
        let Some(refresh) = entry
            .token
            .refresh
            .as_ref()
            .filter(|_| entry.is_refreshable())
        else {
            return Err(Error::new(
                ErrorCode::NotRefreshable,
                "entry has no refresh token",
            ));
        };
        let url = match entry.meta.extra.get("token_url") {
            Some(Value::String(url)) => url.clone(),
            _ => provider.token_url.to_owned(),
        };
        let mut fields = vec![("grant_type", "refresh_token")];
        if provider.token_header.is_none() {
            fields.push(("refresh_token", refresh.expose()));
        }
        fields.push(("client_id", provider.client_id));
        let (content_type, body) = if provider.json {
            let object: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
                .collect();
            ("application/json", Value::Object(object).to_string())
        } else {
            ("application/x-www-form-urlencoded", form_encode(&fields))
        };
        let mut headers = vec![
            ("content-type".to_owned(), Secret::new(content_type)),
            ("accept".to_owned(), Secret::new("application/json")),
        ];
        if let Some(name) = provider.token_header {
            headers.push((name.to_owned(), refresh.clone()));
        }
        Ok(TokenRequest {
            url,
            headers,
            body: Secret::new(body),
        })
    }

    /// Reads the token endpoint's answer to [`token_request`](Self::token_request) at
    /// `now`: `refreshed` with the new pair and expiry, or `failed` (terminal when the
    /// provider says the grant is gone). Provider text is clipped and never holds the
    /// entry's tokens.
    pub fn token_outcome(
        &self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        response: &Response,
    ) -> Result<RefreshOutcome> {
        let entry = self.pool(pool)?.entry(entry_id)?;
        let provider = provider_of(pool, entry)?;
        let body = match &response.body {
            Some(Body::Json(value)) => value.clone(),
            Some(Body::Text(text)) => serde_json::from_str(text).unwrap_or(Value::Null),
            None => Value::Null,
        };
        let Some(status) = response.status else {
            let message = response.network_error.clone();
            return Ok(failed(entry, false, "network_error", message));
        };
        if (200..300).contains(&status) {
            return Ok(read_tokens(now, provider, entry, &body));
        }
        let (code, message) = error_of(&body);
        let text = body.to_string();
        let terminal = (provider.terminal)(status, &code, &text);
        let code = if code.is_empty() {
            format!("http_{status}")
        } else {
            code
        };
        Ok(failed(entry, terminal, &code, message))
    }
}

fn provider_of(pool: &PoolKey, entry: &Entry) -> Result<&'static Provider> {
    let name = match entry.meta.extra.get("oauth_provider") {
        Some(Value::String(name)) => name.as_str(),
        _ => pool.as_str(),
    };
    PROVIDERS.iter().find(|p| p.name == name).ok_or_else(|| {
        Error::new(
            ErrorCode::NotRefreshable,
            format!(
                "no built-in refresher for `{}` (built in: {})",
                clip(name),
                oauth_providers().join(", ")
            ),
        )
    })
}

/// A 2xx answer's tokens; `failed` when it carries no access token (or MiniMax says so).
fn read_tokens(now: Millis, provider: &Provider, entry: &Entry, body: &Value) -> RefreshOutcome {
    let text = |key: &str| {
        body.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    if matches!(provider.expiry, Expiry::MinimaxExpiredIn)
        && body.get("status").and_then(Value::as_str) != Some("success")
    {
        let (code, message) = error_of(body);
        let code = if code.is_empty() {
            "authorization_failed".to_owned()
        } else {
            code
        };
        return failed(entry, true, &code, message);
    }
    let Some(access) = text("access_token") else {
        return failed(entry, false, "invalid_token_response", None);
    };
    let seconds = |key: &str| body.get(key).and_then(Value::as_u64);
    let expires_at = match provider.expiry {
        Expiry::ExpiresIn(default) => {
            Some(now.plus(seconds("expires_in").unwrap_or(default) * SECOND))
        }
        Expiry::JwtExp => jwt_exp(access),
        Expiry::ExpiresInOrJwt => seconds("expires_in")
            .map(|s| now.plus(s * SECOND))
            .or_else(|| jwt_exp(access)),
        Expiry::MinimaxExpiredIn => seconds("expired_in").map(|value| {
            if value > now.0 / 2 {
                Millis(value)
            } else {
                now.plus(value * SECOND)
            }
        }),
    };
    RefreshOutcome::Refreshed {
        access_token: Secret::new(access),
        refresh_token: text("refresh_token").map(Secret::new),
        expires_at,
    }
}

/// An error answer's code and message: `{"error": "code", "error_description"}` (OAuth),
/// `{"error": {"code"|"type", "message"}}` or MiniMax's `{"base_resp": {"status_msg"}}`.
fn error_of(body: &Value) -> (String, Option<String>) {
    let field = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    match body.get("error") {
        Some(Value::String(code)) => (code.clone(), field(body, "error_description")),
        Some(error @ Value::Object(_)) => (
            field(error, "code")
                .or_else(|| field(error, "type"))
                .unwrap_or_default(),
            field(error, "message"),
        ),
        _ => (
            String::new(),
            body.get("base_resp").and_then(|b| field(b, "status_msg")),
        ),
    }
}

/// A failed outcome whose texts are clipped and hold none of the entry's tokens.
fn failed(entry: &Entry, terminal: bool, code: &str, message: Option<String>) -> RefreshOutcome {
    let scrub = |text: &str| {
        let mut text = text.to_owned();
        for secret in [&entry.token.access, &entry.token.refresh]
            .into_iter()
            .flatten()
        {
            text = text.replace(secret.expose(), "[redacted]");
        }
        clip(&text)
    };
    RefreshOutcome::Failed {
        terminal,
        reason: Some(scrub(code)),
        message: message.map(|m| scrub(&m)),
    }
}

/// `application/x-www-form-urlencoded` of `fields`.
fn form_encode(fields: &[(&str, &str)]) -> String {
    let encode = |text: &str| {
        let mut out = String::with_capacity(text.len());
        for byte in text.bytes() {
            match byte {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    out.push(char::from(byte));
                }
                b' ' => out.push('+'),
                _ => out.push_str(&format!("%{byte:02X}")),
            }
        }
        out
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The claims of a JWT's payload, unverified (a label or an expiry is all they give);
/// none when `token` is not a JWT.
#[must_use]
pub fn jwt_claims(token: &str) -> Option<Map<String, Value>> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64url_decode(payload)?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(claims) => Some(claims),
        _ => None,
    }
}

/// The `exp` claim (seconds) of a JWT's payload, as epoch ms; none when it is not a JWT.
fn jwt_exp(token: &str) -> Option<Millis> {
    let exp = jwt_claims(token)?.get("exp")?.as_u64()?;
    Some(Millis(exp.saturating_mul(SECOND)))
}

/// Decodes unpadded (or padded) base64url.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0_u32, 0_u32);
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xFF).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_and_base64url() {
        assert_eq!(form_encode(&[("a b", "x/y+z")]), "a+b=x%2Fy%2Bz");
        assert_eq!(base64url_decode("eyJleHAiOjF9").unwrap(), br#"{"exp":1}"#);
        assert_eq!(jwt_exp("h.eyJleHAiOjF9.s"), Some(Millis(1_000)));
        assert_eq!(jwt_exp("sk-ant-oat01-not-a-jwt"), None);
    }
}
