//! Structured generators shared by the harnesses: provider responses biased towards what
//! the classifier looks at (statuses, reset headers, error bodies, phrases), plus noise.

use arbitrary::{Arbitrary, Result, Unstructured};
use credpool_core::{Body, Headers, Response};
use serde_json::{Map, Value, json};

/// Statuses the policy treats differently.
pub const STATUSES: [u16; 14] = [
    200, 204, 301, 400, 401, 402, 403, 404, 408, 429, 500, 502, 503, 529,
];

/// Headers the classifier reads, and a few it must ignore.
pub const HEADER_NAMES: [&str; 16] = [
    "retry-after",
    "Retry-After",
    "retry-after-ms",
    "x-ratelimit-reset",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "anthropic-ratelimit-requests-reset",
    "anthropic-ratelimit-tokens-reset",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-input-tokens-reset",
    "anthropic-ratelimit-output-tokens-reset",
    "content-type",
    "x-request-id",
];

/// Provider reason codes the classifier knows (and kin).
pub const REASONS: [&str; 18] = [
    "rate_limit_exceeded",
    "usage_limit_reached",
    "insufficient_quota",
    "billing_hard_limit_reached",
    "token_invalidated",
    "token_revoked",
    "invalid_token",
    "invalid_grant",
    "unauthorized_client",
    "refresh_token_reused",
    "overloaded_error",
    "model_not_supported",
    "unsupported_model",
    "upstream_rate_limit",
    "permission_error",
    "RESOURCE_EXHAUSTED",
    "credential_persist_failed",
    "invalid_request_error",
];

/// Message phrases the classifier looks for.
pub const PHRASES: [&str; 16] = [
    "Please try again in 20s.",
    "Rate limit reached. Please try again in 1.5s",
    "retry after 30 seconds",
    "wait 12 seconds",
    "Your limit resets in 2h 5m",
    "resets in 3 days",
    "resets at 2030-01-01T00:00:00Z",
    "quotaResetDelay: 1500ms",
    "rate-limited upstream",
    "upstream rate limit exceeded",
    "You're out of extra usage",
    "is not supported when using codex",
    "Your credit balance is too low",
    "[wke=unauthenticated: token expired]",
    "OAuth2 access token could not be validated",
    "you do not have access to this model",
];

/// Fuzzed header and text values are kept short so a run explores shapes, not bulk.
fn short_string(u: &mut Unstructured<'_>) -> Result<String> {
    let s = String::arbitrary(u)?;
    Ok(s.chars().take(80).collect())
}

/// A number-ish or date-ish header value, or noise.
pub fn header_value(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=9u8)? {
        0 => u.int_in_range(0..=120u32)?.to_string(),
        1 => u64::arbitrary(u)?.to_string(),
        2 => (1_700_000_000u64 + u64::from(u.int_in_range(0..=10_000_000u32)?)).to_string(),
        3 => (1_700_000_000_000u64 + u64::from(u32::arbitrary(u)?)).to_string(),
        4 => format!(
            "{}.{}",
            u.int_in_range(0..=999u16)?,
            u.int_in_range(0..=999u16)?
        ),
        5 => format!(
            "{}m{}s",
            u.int_in_range(0..=90u8)?,
            u.int_in_range(0..=59u8)?
        ),
        6 => format!("{}ms", u.int_in_range(0..=100_000u32)?),
        7 => format!(
            "20{:02}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            u.int_in_range(0..=99u8)?,
            u.int_in_range(0..=13u8)?,
            u.int_in_range(0..=32u8)?,
            u.int_in_range(0..=24u8)?,
            u.int_in_range(0..=60u8)?,
            u.int_in_range(0..=60u8)?,
            u.choose(&["Z", "+00:00", "-05:30", ".123Z", ""])?
        ),
        8 => format!(
            "{}, {:02} {} 20{:02} {:02}:{:02}:{:02} GMT",
            u.choose(&["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])?,
            u.int_in_range(0..=32u8)?,
            u.choose(&["Jan", "Feb", "Oct", "Dec", "Foo"])?,
            u.int_in_range(0..=99u8)?,
            u.int_in_range(0..=24u8)?,
            u.int_in_range(0..=60u8)?,
            u.int_in_range(0..=60u8)?
        ),
        _ => short_string(u)?,
    })
}

/// Free text: a known phrase, noise, or both.
pub fn message(u: &mut Unstructured<'_>) -> Result<String> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => (*u.choose(&PHRASES)?).to_owned(),
        1 => short_string(u)?,
        2 => format!("{} {}", short_string(u)?, u.choose(&PHRASES)?),
        _ => format!(
            "Please try again in {}{}",
            u.int_in_range(0..=100_000u32)?,
            u.choose(&["s", "ms", "m", "h", " seconds", "m30s", ""])?
        ),
    })
}

/// A small arbitrary JSON value (bounded depth and width).
pub fn json_value(u: &mut Unstructured<'_>, depth: u8) -> Result<Value> {
    let top = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=top)? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 => json!(i64::arbitrary(u)?),
        3 => json!(f64::arbitrary(u)?),
        4 => Value::String(short_string(u)?),
        5 => {
            let n = u.int_in_range(0..=3u8)?;
            let mut items = Vec::new();
            for _ in 0..n {
                items.push(json_value(u, depth - 1)?);
            }
            Value::Array(items)
        }
        _ => {
            let n = u.int_in_range(0..=3u8)?;
            let mut map = Map::new();
            for _ in 0..n {
                let key = if bool::arbitrary(u)? {
                    (*u.choose(&[
                        "error",
                        "code",
                        "type",
                        "message",
                        "status",
                        "metadata",
                        "details",
                        "raw",
                        "resets_at",
                        "reset_at",
                        "retry_after",
                    ])?)
                    .to_owned()
                } else {
                    short_string(u)?
                };
                map.insert(key, json_value(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// A provider-shaped error payload with a random subset of the fields core reads.
pub fn error_body(u: &mut Unstructured<'_>) -> Result<Value> {
    let mut payload = Map::new();
    if bool::arbitrary(u)? {
        payload.insert("code".into(), json!(u.choose(&REASONS)?));
    }
    if bool::arbitrary(u)? {
        payload.insert("type".into(), json!(u.choose(&REASONS)?));
    }
    if bool::arbitrary(u)? {
        payload.insert("message".into(), json!(message(u)?));
    }
    let reset_fields = ["resets_at", "reset_at", "resets_in_seconds", "retry_after"];
    if bool::arbitrary(u)? {
        let field = *u.choose(&reset_fields)?;
        let value = match u.int_in_range(0..=3u8)? {
            0 => json!(u.int_in_range(0..=100_000u32)?),
            1 => json!(1_700_000_000u64 + u64::from(u.int_in_range(0..=10_000_000u32)?)),
            2 => json!(header_value(u)?),
            _ => json_value(u, 1)?,
        };
        payload.insert(field.into(), value);
    }
    if bool::arbitrary(u)? {
        payload.insert(
            "details".into(),
            json!([{
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": header_value(u)?,
                "metadata": {"quotaResetDelay": header_value(u)?},
            }]),
        );
    }
    if bool::arbitrary(u)? {
        payload.insert(
            "metadata".into(),
            json!({
                "provider_name": short_string(u)?,
                "raw": json_value(u, 1)?,
                "headers": {"X-RateLimit-Reset": header_value(u)?},
            }),
        );
    }
    Ok(match u.int_in_range(0..=3u8)? {
        0 => json!({ "error": payload }),
        1 => Value::Object(payload),
        2 => json!({ "error": u.choose(&REASONS)?, "error_description": message(u)? }),
        _ => json!({ "detail": message(u)?, "error": {"error": payload} }),
    })
}

/// A provider response or transport failure.
pub fn response(u: &mut Unstructured<'_>, models: &[&str]) -> Result<Response> {
    let status = match u.int_in_range(0..=9u8)? {
        0 => None,
        1 => Some(u16::arbitrary(u)?),
        _ => Some(*u.choose(&STATUSES)?),
    };
    let network_error = if status.is_none() || u.ratio(1, 20)? {
        Some(match u.int_in_range(0..=3u8)? {
            0 => "timeout".to_owned(),
            1 => "connect".to_owned(),
            2 => "reset".to_owned(),
            _ => short_string(u)?,
        })
    } else {
        None
    };
    let mut headers = Vec::new();
    for _ in 0..u.int_in_range(0..=4u8)? {
        let name = if u.ratio(1, 8)? {
            short_string(u)?
        } else {
            (*u.choose(&HEADER_NAMES)?).to_owned()
        };
        headers.push((name, header_value(u)?));
    }
    let body = match u.int_in_range(0..=5u8)? {
        0 => None,
        1 => Some(Body::Text(short_string(u)?)),
        2 => Some(Body::Text(message(u)?)),
        3 => Some(Body::Json(error_body(u)?)),
        4 => Some(Body::Text(error_body(u)?.to_string())),
        _ => Some(Body::Json(json_value(u, 4)?)),
    };
    let model = if models.is_empty() || bool::arbitrary(u)? {
        None
    } else {
        Some((*u.choose(models)?).to_owned())
    };
    Ok(Response {
        status,
        network_error,
        headers: Headers(headers),
        body,
        model,
    })
}
