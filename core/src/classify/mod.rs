//! The classifier: from a provider [`Response`] to an [`OutcomeClass`], the
//! provider's reason and message, and a reset [`Hint`].
//!
//! Pure functions; every language classifies identically because this runs in core.
//!
//! # Class
//!
//! Status first, refined by the body (see `class.rs` for the exact phrase lists):
//!
//! | Status | Class |
//! |---|---|
//! | any but a success, with reason `credential_persist_failed` (the host's own) | `AuthTerminal` |
//! | none (transport failure), or < 100 | `NetworkError` |
//! | 100–399 | `Success` (an error-shaped body on a 2xx stays a success) |
//! | 401 | `AuthTerminal` when a reason candidate is exactly `token_invalidated`, `token_revoked`, `invalid_token`, `invalid_grant`, `unauthorized_client`, `refresh_token_reused` or the host's `credential_persist_failed`; else `Auth` |
//! | 402 | `Billing` |
//! | 403 | stale-token text (`[wke=unauthenticated:`, `oauth2 access token could not be validated`) → `Auth` (refreshed like a 401); entitlement text → `Entitlement`; billing-shaped → `Billing`; "out of extra usage" → `BillingUnverified`; else `Forbidden` |
//! | 429 | upstream-throttled → `UpstreamRateLimit`; code `overloaded_error` → `ServerError`; billing-shaped (e.g. OpenAI `insufficient_quota`) → `Billing`; usage/plan cap → `UsageLimit`; else `RateLimit` |
//! | 400 | invalid or expired key (`api key not valid`, `api key expired`, `API_KEY_INVALID`, `API_KEY_EXPIRED`, `incorrect api key provided`) → `AuthTerminal`; "out of extra usage" → `BillingUnverified`; billing-shaped → `Billing`; Codex model entitlement → `ModelEntitlement`; code `model_not_found` → `NotFound`; else `ClientError` |
//! | 404 | `NotFound` |
//! | 408 | `ServerError` (server-side timeout: transient, not the key's fault) |
//! | other 4xx | code `model_not_found` → `NotFound`; billing-shaped → `Billing`; else `ClientError` |
//! | 500–599 (529 included), ≥ 600 | `ServerError` |
//!
//! *Upstream-throttled* (429 only): the text says `rate-limited upstream`,
//! `rate limited upstream`, `upstream rate limit` or `upstream_rate_limit`, or the
//! payload's `metadata` (OpenRouter) has a non-empty string `provider_name` and a
//! non-null `raw` (OpenRouter forwarding the upstream provider's own 429).
//! *Codex model entitlement*: a reason `model_not_supported` / `unsupported_model`,
//! or the text "is not supported when using codex".
//!
//! # Reason and message
//!
//! See `body.rs`: reason = first string of payload `code`, `type`, `status`, or an
//! identifier-like payload `error` (`{"error":"invalid_grant"}`); message = payload
//! `message`, `error_description`, `detail`, a prose payload `error` (xAI), root
//! `message`/`detail`, or a non-JSON text body. Bounded to
//! [`MAX_REASON_CHARS`](crate::limits::MAX_REASON_CHARS) /
//! [`MAX_MESSAGE_CHARS`](crate::limits::MAX_MESSAGE_CHARS) chars. A network error
//! without a body reason gives its kind (`timeout`, ...) as the reason. A
//! `Success` carries no reason, message or hint (its body is not read).
//!
//! # Reset hint precedence
//!
//! Read only for non-success outcomes; the first source that yields an instant wins:
//!
//! 1. body fields, payload first then root: `resets_at` → `reset_at` (absolute:
//!    epoch ms when ≥ 10^12, else epoch seconds; numeric strings and RFC 3339
//!    strings too; ≤ 0 ignored) → `resets_in_seconds` → `retry_after` (relative seconds);
//! 2. `retry-after-ms`, then `Retry-After` (delta-seconds, decimals allowed, or IMF-fixdate);
//! 3. Google `RetryInfo.retryDelay` in `error.details` (first 32 entries), then
//!    `quotaResetDelay` (or absolute `quotaResetTimeStamp`) in a detail's `metadata`,
//!    then `quotaResetDelay: 1500ms` in the message;
//! 4. `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-reset`
//!    (RFC 3339): the latest among limits whose `-remaining` is `0`, else the latest;
//! 5. `x-ratelimit-reset` (or the same key in OpenRouter's body `metadata.headers`):
//!    a number < 10^9 is relative seconds, < 10^12 absolute epoch seconds, else
//!    absolute epoch ms; a duration (`6m0s`) is relative; RFC 3339 is absolute;
//! 6. `x-ratelimit-reset-requests` / `-tokens` (durations `6m0s`, `1.5s`, `20ms`):
//!    the later among limits whose `x-ratelimit-remaining-*` is `0`, else the later of both;
//! 7. message phrases: "retry after N" / "retry in" / "try again in" / "wait N" win
//!    over "resets in 2h 5m"; then "resets at <RFC 3339>".
//!
//! Arithmetic saturates; numbers that overflow, carry a sign or an exponent, or are
//! not numbers at all are ignored. Past instants are returned as they are (policy
//! clamps), except absolute values ≤ 0. Header values longer than
//! [`MAX_HEADER_VALUE_BYTES`](crate::limits::MAX_HEADER_VALUE_BYTES) are ignored.
//!
//! # Bounds
//!
//! Text is scanned up to [`MAX_BODY_SCAN_BYTES`](crate::limits::MAX_BODY_SCAN_BYTES)
//! (a longer text body is not parsed as JSON); the walk to the error payload takes at
//! most [`MAX_BODY_DEPTH`](crate::limits::MAX_BODY_DEPTH) steps and never recurses.

mod body;
mod class;
pub(crate) use class::is_terminal_auth_reason;
mod duration;
mod hints;
pub(crate) mod httpdate;
mod phrases;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use self::body::{Fields, Parsed, Signals, truncated};
use crate::limits::{MAX_MESSAGE_CHARS, MAX_REASON_CHARS};
use crate::response::Response;
use crate::time::Millis;

/// What kind of outcome a response is, as far as credential rotation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeClass {
    /// 2xx/3xx: the credential worked.
    Success,
    /// 429 (or a rate-limit-shaped body): the key is throttled for a while.
    RateLimit,
    /// A plan/usage cap (`usage_limit_reached` and kin): retrying will not help before the reset.
    UsageLimit,
    /// 402 or a billing-shaped body: out of credit.
    Billing,
    /// An ambiguous billing-shaped 400 (Anthropic "out of extra usage"): short bench only.
    BillingUnverified,
    /// 401 without a terminal reason: the token may be refreshed or re-tried later.
    Auth,
    /// 401 with a terminal reason (`token_revoked`, `invalid_grant`, ...): the credential is dead.
    AuthTerminal,
    /// 403 that is not entitlement-shaped.
    Forbidden,
    /// Entitlement-shaped 403 (the account may not use this API/model): not the key's fault.
    Entitlement,
    /// The credential may not use this model (e.g. a Codex entitlement 400): bench (key, model).
    ModelEntitlement,
    /// 5xx, 529 or an overloaded body: the provider's problem.
    ServerError,
    /// The request never got a response (timeout, reset, DNS, ...).
    NetworkError,
    /// An aggregator says its upstream is throttled: not this key's limit.
    UpstreamRateLimit,
    /// 404, or a `model_not_found` code: the model (or endpoint) is not there for this
    /// request; not the key's fault, so no mark, and the fallback chain may serve it.
    NotFound,
    /// Any other 4xx (bad request, too large, ...): not a credential problem.
    ClientError,
}

/// Where a reset hint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HintSource {
    /// `Retry-After` header (delta-seconds or HTTP-date).
    RetryAfter,
    /// `x-ratelimit-reset` header (relative seconds, or absolute epoch s/ms by magnitude).
    XRatelimitReset,
    /// `x-ratelimit-reset-requests` header (a duration like `6m0s`).
    XRatelimitResetRequests,
    /// `x-ratelimit-reset-tokens` header (a duration like `1.5s`).
    XRatelimitResetTokens,
    /// `anthropic-ratelimit-*-reset` header (ISO 8601).
    AnthropicRatelimitReset,
    /// Body field `resets_at` (absolute).
    BodyResetsAt,
    /// Body field `reset_at` (absolute).
    BodyResetAt,
    /// Body field `resets_in_seconds` (relative).
    BodyResetsInSeconds,
    /// Body field `retry_after` (relative seconds).
    BodyRetryAfter,
    /// Google `RetryInfo.retryDelay` in `error.details`.
    GoogleRetryDelay,
    /// Google `quotaResetDelay` (in details metadata or message text).
    GoogleQuotaResetDelay,
    /// A phrase in the message ("try again in 20s", "resets in 2h 5m", ...).
    Message,
}

/// A provider-supplied reset time, absolute, before clamping by policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hint {
    /// When the provider says the limit resets (epoch ms).
    pub at: Millis,
    /// Which header, field or phrase said so.
    pub source: HintSource,
}

/// The classifier's verdict on one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Classification {
    /// The outcome class.
    pub class: OutcomeClass,
    /// The provider's error code/type (e.g. `rate_limit_exceeded`), bounded.
    pub reason: Option<String>,
    /// The provider's error message, bounded to [`crate::limits::MAX_MESSAGE_CHARS`].
    pub message: Option<String>,
    /// The reset hint, if any source gave one.
    pub hint: Option<Hint>,
}

/// Classifies `response` observed at `now`.
#[must_use]
pub fn classify(now: Millis, response: &Response) -> Classification {
    if matches!(response.status, Some(100..=399)) {
        return Classification {
            class: OutcomeClass::Success,
            reason: None,
            message: None,
            hint: None,
        };
    }
    let parsed = Parsed::new(response.body.as_ref());
    let fields = Fields::new(&parsed);
    let class = class::decide(response.status, &Signals::new(&fields));
    let network_kind = if class == OutcomeClass::NetworkError {
        response.network_error.as_deref()
    } else {
        None
    };
    let reason = fields
        .reasons()
        .first()
        .copied()
        .or(network_kind)
        .and_then(|r| truncated(r, MAX_REASON_CHARS));
    let message = fields
        .message()
        .and_then(|m| truncated(m, MAX_MESSAGE_CHARS));
    let hint = hints::find(now, &response.headers, &fields);
    Classification {
        class,
        reason,
        message,
        hint,
    }
}
