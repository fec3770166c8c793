//! The classifier: from a provider [`Response`] to an [`OutcomeClass`], the
//! provider's reason and message, and a reset [`Hint`].
//!
//! Pure functions; every language classifies identically because this runs in core.

use serde::{Deserialize, Serialize};

use crate::response::Response;
use crate::time::Millis;

/// What kind of outcome a response is, as far as credential rotation cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    /// Any other 4xx (bad request, not found, too large): not a credential problem.
    ClientError,
}

/// Where a reset hint came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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
    let _ = now;
    let class = match (response.status, &response.network_error) {
        (None, _) => OutcomeClass::NetworkError,
        (Some(s), _) if s < 400 => OutcomeClass::Success,
        (Some(401), _) => OutcomeClass::Auth,
        (Some(402), _) => OutcomeClass::Billing,
        (Some(403), _) => OutcomeClass::Forbidden,
        (Some(429), _) => OutcomeClass::RateLimit,
        (Some(s), _) if s >= 500 => OutcomeClass::ServerError,
        _ => OutcomeClass::ClientError,
    };
    Classification {
        class,
        reason: None,
        message: None,
        hint: None,
    }
}
