//! Reset hints: when the provider says the limit resets, as an absolute instant.
//!
//! Sources are tried in the precedence order documented on [`super`]; the first
//! that yields an instant wins. Header values longer than
//! [`MAX_HEADER_VALUE_BYTES`] are ignored, and so are body strings of that size
//! used as numbers or dates.

use std::borrow::Cow;

use serde_json::Value;

use super::body::{Fields, Object};
use super::duration::{Decimal, parse_decimal, parse_go_duration, parse_seconds};
use super::httpdate::{parse_http_date, parse_rfc3339};
use super::phrases;
use super::{Hint, HintSource};
use crate::limits::MAX_HEADER_VALUE_BYTES;
use crate::response::Headers;
use crate::time::Millis;

/// `x-ratelimit-reset` values below this are relative seconds.
pub(crate) const RELATIVE_BELOW: u64 = 1_000_000_000;
/// Numeric reset values at or above this are epoch milliseconds (below: epoch seconds).
pub(crate) const EPOCH_MS_FROM: u64 = 1_000_000_000_000;
/// Google `error.details` entries examined.
pub(crate) const MAX_DETAILS: usize = 32;

/// `(remaining, reset)` header pairs of Anthropic's rate limits.
const ANTHROPIC_LIMITS: [(&str, &str); 4] = [
    (
        "anthropic-ratelimit-requests-remaining",
        "anthropic-ratelimit-requests-reset",
    ),
    (
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-tokens-reset",
    ),
    (
        "anthropic-ratelimit-input-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ),
    (
        "anthropic-ratelimit-output-tokens-remaining",
        "anthropic-ratelimit-output-tokens-reset",
    ),
];

/// `(remaining, reset, source)` of OpenAI's split reset headers.
const OPENAI_LIMITS: [(&str, &str, HintSource); 2] = [
    (
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        HintSource::XRatelimitResetRequests,
    ),
    (
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        HintSource::XRatelimitResetTokens,
    ),
];

/// The reset hint of a failed response, by the documented precedence.
pub(crate) fn find(now: Millis, headers: &Headers, fields: &Fields<'_>) -> Option<Hint> {
    let lower_message = fields.message().map(str::to_ascii_lowercase);
    let lower_message = lower_message.as_deref();
    body_fields(now, fields)
        .or_else(|| retry_after(now, headers))
        .or_else(|| google(now, fields, lower_message))
        .or_else(|| anthropic(headers))
        .or_else(|| x_ratelimit_reset(now, headers, fields))
        .or_else(|| x_ratelimit_reset_split(now, headers))
        .or_else(|| message(now, lower_message))
}

const fn hint(at: Millis, source: HintSource) -> Hint {
    Hint { at, source }
}

/// Header `name`, trimmed and non-empty, unless longer than [`MAX_HEADER_VALUE_BYTES`].
fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    let value = headers.get(name)?;
    if value.len() > MAX_HEADER_VALUE_BYTES {
        return None;
    }
    let value = value.trim_ascii();
    (!value.is_empty()).then_some(value)
}

/// A JSON string or number as text, for number/date parsing; long strings are ignored.
fn scalar_text(value: &Value) -> Option<Cow<'_, str>> {
    match value {
        Value::String(s) if s.len() <= MAX_HEADER_VALUE_BYTES => Some(Cow::Borrowed(s)),
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// An absolute epoch number: ms when ≥ [`EPOCH_MS_FROM`], else seconds; zero is ignored.
fn absolute_number(d: Decimal) -> Option<Millis> {
    let at = if d.int >= EPOCH_MS_FROM {
        Millis(d.int)
    } else {
        Millis(d.seconds_to_ms()?)
    };
    (at > Millis::ZERO).then_some(at)
}

/// An `x-ratelimit-reset` number: relative seconds below [`RELATIVE_BELOW`], else absolute.
fn reset_number(now: Millis, d: Decimal) -> Option<Millis> {
    if d.int < RELATIVE_BELOW {
        Some(now.plus(d.seconds_to_ms()?))
    } else {
        absolute_number(d)
    }
}

/// An absolute body value: epoch s/ms by magnitude (number or numeric string), or RFC 3339.
fn absolute_value(value: &Value) -> Option<Millis> {
    let text = scalar_text(value)?;
    match parse_decimal(&text) {
        Some(d) => absolute_number(d),
        None => parse_rfc3339(&text),
    }
}

/// A relative body value: seconds (number or numeric string) or a duration like `30s`.
fn relative_value(now: Millis, value: &Value) -> Option<Millis> {
    let text = scalar_text(value)?;
    let ms = parse_seconds(&text).or_else(|| parse_go_duration(&text))?;
    Some(now.plus(ms))
}

/// Rank 1: body `resets_at`, `reset_at` (absolute), `resets_in_seconds`, `retry_after`
/// (relative), each looked up in the payload, then in the root object.
fn body_fields(now: Millis, fields: &Fields<'_>) -> Option<Hint> {
    let absolute = [
        ("resets_at", HintSource::BodyResetsAt),
        ("reset_at", HintSource::BodyResetAt),
    ];
    let relative = [
        ("resets_in_seconds", HintSource::BodyResetsInSeconds),
        ("retry_after", HintSource::BodyRetryAfter),
    ];
    let lookup = |key: &'static str| fields.objects().filter_map(move |obj| obj.get(key));
    absolute
        .into_iter()
        .find_map(|(key, source)| {
            lookup(key)
                .find_map(absolute_value)
                .map(|at| hint(at, source))
        })
        .or_else(|| {
            relative.into_iter().find_map(|(key, source)| {
                lookup(key)
                    .find_map(|v| relative_value(now, v))
                    .map(|at| hint(at, source))
            })
        })
}

/// Rank 2: `retry-after-ms` (milliseconds, as the OpenAI SDKs honour), then
/// `Retry-After` (delta-seconds, decimals allowed, or an IMF-fixdate HTTP-date).
fn retry_after(now: Millis, headers: &Headers) -> Option<Hint> {
    let precise = header(headers, "retry-after-ms")
        .and_then(parse_decimal)
        .map(|d| now.plus(d.int));
    let at = precise.or_else(|| {
        let value = header(headers, "retry-after")?;
        parse_seconds(value)
            .map(|ms| now.plus(ms))
            .or_else(|| parse_http_date(value))
    })?;
    Some(hint(at, HintSource::RetryAfter))
}

/// Rank 3: Google `RetryInfo.retryDelay`, then `quotaResetDelay` (or the absolute
/// `quotaResetTimeStamp`) in a detail's `metadata`, then `quotaResetDelay` in the message.
fn google(now: Millis, fields: &Fields<'_>, lower_message: Option<&str>) -> Option<Hint> {
    let details: Vec<&Object> = fields
        .payload
        .and_then(|p| p.get("details"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .take(MAX_DETAILS)
                .filter_map(Value::as_object)
                .collect()
        })
        .unwrap_or_default();
    let retry_info = details.iter().find_map(|detail| {
        let kind = detail.get("@type")?.as_str()?;
        if !kind.ends_with("google.rpc.RetryInfo") {
            return None;
        }
        retry_delay(detail.get("retryDelay")?).map(|ms| now.plus(ms))
    });
    if let Some(at) = retry_info {
        return Some(hint(at, HintSource::GoogleRetryDelay));
    }
    let metadata = details.iter().find_map(|detail| {
        let meta = detail.get("metadata")?.as_object()?;
        let delay = meta
            .get("quotaResetDelay")
            .and_then(scalar_text)
            .and_then(|v| parse_go_duration(&v))
            .map(|ms| now.plus(ms));
        delay.or_else(|| meta.get("quotaResetTimeStamp").and_then(absolute_value))
    });
    metadata
        .or_else(|| phrases::quota_reset_delay(lower_message?).map(|ms| now.plus(ms)))
        .map(|at| hint(at, HintSource::GoogleQuotaResetDelay))
}

/// A protobuf `Duration` in JSON: `"34s"`, `"1.5s"`, or `{"seconds": 34, "nanos": 0}`.
fn retry_delay(value: &Value) -> Option<u64> {
    match value {
        Value::String(s) if s.len() <= MAX_HEADER_VALUE_BYTES => parse_go_duration(s),
        Value::Object(o) => {
            let seconds = o.get("seconds").and_then(scalar_text);
            let seconds = seconds.map_or(Some(0), |s| parse_seconds(&s))?;
            let nanos = o.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Some(seconds.saturating_add(nanos / 1_000_000))
        }
        _ => None,
    }
}

/// Rank 4: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`
/// (RFC 3339): the latest among limits whose `-remaining` is `0`, else the latest of all.
fn anthropic(headers: &Headers) -> Option<Hint> {
    let mut latest = None;
    let mut latest_exhausted = None;
    for (remaining, reset) in ANTHROPIC_LIMITS {
        let Some(at) = header(headers, reset).and_then(parse_rfc3339) else {
            continue;
        };
        latest = latest.max(Some(at));
        if is_exhausted(headers, remaining) {
            latest_exhausted = latest_exhausted.max(Some(at));
        }
    }
    latest_exhausted
        .or(latest)
        .map(|at| hint(at, HintSource::AnthropicRatelimitReset))
}

/// Whether header `remaining` reads `0`.
fn is_exhausted(headers: &Headers, remaining: &str) -> bool {
    header(headers, remaining)
        .and_then(parse_decimal)
        .is_some_and(Decimal::is_zero)
}

/// Rank 5: `x-ratelimit-reset`, else the same name inside OpenRouter's body
/// `metadata.headers`. A number is relative seconds below [`RELATIVE_BELOW`], absolute
/// epoch seconds below [`EPOCH_MS_FROM`], epoch ms above; a duration (`6m0s`) is
/// relative; an RFC 3339 string is absolute.
fn x_ratelimit_reset(now: Millis, headers: &Headers, fields: &Fields<'_>) -> Option<Hint> {
    let from_header = header(headers, "x-ratelimit-reset").and_then(|v| reset_value(now, v));
    let at = from_header.or_else(|| {
        let (_, value) = fields
            .metadata()?
            .get("headers")?
            .as_object()?
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("x-ratelimit-reset"))?;
        reset_value(now, &scalar_text(value)?)
    })?;
    Some(hint(at, HintSource::XRatelimitReset))
}

fn reset_value(now: Millis, value: &str) -> Option<Millis> {
    match parse_decimal(value) {
        Some(d) => reset_number(now, d),
        None => parse_go_duration(value)
            .map(|ms| now.plus(ms))
            .or_else(|| parse_rfc3339(value)),
    }
}

/// Rank 6: `x-ratelimit-reset-requests` / `-tokens` (durations; a bare number is
/// seconds): the later among limits whose `x-ratelimit-remaining-*` is `0`, else the
/// later of both; requests win a tie.
fn x_ratelimit_reset_split(now: Millis, headers: &Headers) -> Option<Hint> {
    let mut latest: Option<Hint> = None;
    let mut latest_exhausted: Option<Hint> = None;
    for (remaining, reset, source) in OPENAI_LIMITS {
        let Some(ms) =
            header(headers, reset).and_then(|v| parse_go_duration(v).or_else(|| parse_seconds(v)))
        else {
            continue;
        };
        let candidate = hint(now.plus(ms), source);
        if latest.is_none_or(|h| candidate.at > h.at) {
            latest = Some(candidate);
        }
        if is_exhausted(headers, remaining) && latest_exhausted.is_none_or(|h| candidate.at > h.at)
        {
            latest_exhausted = Some(candidate);
        }
    }
    latest_exhausted.or(latest)
}

/// Rank 7: a phrase in the message ("try again in 20s", "resets in 2h 5m", "resets at <date>").
fn message(now: Millis, lower_message: Option<&str>) -> Option<Hint> {
    let lower = lower_message?;
    let at = phrases::delay(lower)
        .map(|ms| now.plus(ms))
        .or_else(|| phrases::reset_instant(lower))?;
    Some(hint(at, HintSource::Message))
}
