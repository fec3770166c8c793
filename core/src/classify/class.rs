//! The class decision: status first, refined by the body's codes and text.
//!
//! All matching is on ASCII-lower-cased text ([`Signals`]): *code* checks compare
//! a reason candidate exactly, *phrase* checks look for a substring of the
//! haystack (codes, message, OpenRouter `metadata.raw`).

use super::OutcomeClass;
use super::body::Signals;

/// 401 reasons that mean the credential is dead (exact code match). The last is a host's
/// own: a refreshed pair it could not persist (the old pair is spent, the new one lost).
const TERMINAL_AUTH_CODES: &[&str] = &[
    "token_invalidated",
    "token_revoked",
    "invalid_token",
    "invalid_grant",
    "unauthorized_client",
    "refresh_token_reused",
    "credential_persist_failed",
    "refresh_interrupted",
];

/// The host's own reason for a refreshed pair it could not persist (the old pair is spent,
/// the new one lost): dead whatever the status (Hermes scenario 35).
const PERSIST_FAILED_CODES: &[&str] = &["credential_persist_failed"];

/// Whether a reason code (a failed refresh's, say) means the credential is dead.
pub(crate) fn is_terminal_auth_reason(reason: &str) -> bool {
    TERMINAL_AUTH_CODES.contains(&reason.to_ascii_lowercase().as_str())
}

/// Codes that mean "out of credit" on any 4xx.
const BILLING_CODES: &[&str] = &[
    "insufficient_quota",
    "billing_hard_limit_reached",
    "billing_not_active",
    "insufficient_credits",
    "insufficient_balance",
    "credit_limit_exceeded",
    "payment_required",
];

/// Phrases that mean "out of credit" on any 4xx. Deliberately NOT "exceeded
/// your current quota": Gemini sends it on ordinary per-minute 429s, and OpenAI
/// sends it with code `insufficient_quota`, which is matched as a code.
const BILLING_PHRASES: &[&str] = &[
    "insufficient credits",
    "insufficient credit balance",
    "insufficient balance",
    "credit balance is too low",
    "key limit exceeded",
    "spending limit",
    "used all available credits",
    "out of credits",
    "billing hard limit",
];

/// Ambiguous billing (Anthropic 400/403 "You're out of extra usage").
const BILLING_UNVERIFIED_PHRASES: &[&str] = &["out of extra usage"];

/// Plan/usage caps on a 429 (codes are matched as substrings too).
const USAGE_LIMIT_PHRASES: &[&str] = &[
    "usage_limit_reached",
    "usage_limit_exceeded",
    "gousagelimit",
    "usage limit reached",
    "usage limit has been reached",
    "usage limit exceeded",
    "hit your usage limit",
    "reached your usage limit",
    "plan limit reached",
    "reached your plan limit",
];

/// An aggregator saying its upstream is throttled (429 only).
const UPSTREAM_PHRASES: &[&str] = &[
    "rate-limited upstream",
    "rate limited upstream",
    "upstream rate limit",
    "upstream_rate_limit",
];

/// Overloaded on a 4xx (Anthropic's `overloaded_error` seen through a proxy).
const OVERLOADED_CODES: &[&str] = &["overloaded_error", "overloaded"];

/// Invalid or expired keys answered with HTTP 400 instead of 401: Gemini (`API key not
/// valid`, `API key expired`, ErrorInfo reasons `API_KEY_INVALID` / `API_KEY_EXPIRED`) and
/// xAI (`Incorrect API key provided`).
const INVALID_KEY_PHRASES: &[&str] = &[
    "api key not valid",
    "api key expired",
    "api_key_invalid",
    "api_key_expired",
    "incorrect api key provided",
];

/// Codes of a model the provider does not know (or this key may not see), on any 4xx.
const NOT_FOUND_CODES: &[&str] = &["model_not_found"];

/// Stale-token signals on a 403 (xAI): an auth failure (refreshable), never entitlement.
const STALE_TOKEN_PHRASES: &[&str] = &[
    "[wke=unauthenticated:",
    "oauth2 access token could not be validated",
];

/// Entitlement-shaped 403: the account may not use this API/model.
const ENTITLEMENT_PHRASES: &[&str] = &[
    "oauth authentication is currently not allowed for this organization",
    "not entitled",
    "subscription required",
    "requires a subscription",
    "does not have access to model",
    "does not have access to the model",
    "permission to use the model",
    "permission to use this model",
];

/// Codex model entitlement on a 400 (bench the (key, model) pair).
const MODEL_ENTITLEMENT_CODES: &[&str] = &["model_not_supported", "unsupported_model"];
const MODEL_ENTITLEMENT_PHRASES: &[&str] = &["is not supported when using codex"];

/// Decides the class of a response with `status` (and `signals` from its body).
///
/// - `credential_persist_failed` (the host's reason) on anything but a success → `AuthTerminal`;
/// - no status, or a status below 100 → `NetworkError`;
/// - 100–399 → `Success` (an error-shaped body on a 2xx is still a success);
/// - 401 → `AuthTerminal` for a terminal code, else `Auth`;
/// - 402 → `Billing`;
/// - 403 → see `forbidden`; 429 → see `too_many_requests`; 400 → see `bad_request`;
/// - 404, or a `model_not_found` code on another 4xx → `NotFound`;
/// - 408 → `ServerError` (a server-side request timeout is transient and not the key's fault);
/// - other 4xx → `Billing` when billing-shaped, else `ClientError`;
/// - 500–599 (529 included) and anything ≥ 600 → `ServerError`.
pub(crate) fn decide(status: Option<u16>, signals: &Signals) -> OutcomeClass {
    let success = status.is_some_and(|s| (100..=399).contains(&s));
    if !success && signals.has_code(PERSIST_FAILED_CODES) {
        return OutcomeClass::AuthTerminal;
    }
    let Some(status) = status else {
        return OutcomeClass::NetworkError;
    };
    match status {
        0..=99 => OutcomeClass::NetworkError,
        100..=399 => OutcomeClass::Success,
        400 => bad_request(signals),
        401 if signals.has_code(TERMINAL_AUTH_CODES) => OutcomeClass::AuthTerminal,
        401 => OutcomeClass::Auth,
        402 => OutcomeClass::Billing,
        403 => forbidden(signals),
        404 => OutcomeClass::NotFound,
        408 => OutcomeClass::ServerError,
        429 => too_many_requests(signals),
        405..=499 if signals.has_code(NOT_FOUND_CODES) => OutcomeClass::NotFound,
        405..=499 if is_billing(signals) => OutcomeClass::Billing,
        405..=499 => OutcomeClass::ClientError,
        _ => OutcomeClass::ServerError,
    }
}

fn is_billing(s: &Signals) -> bool {
    s.has_code(BILLING_CODES) || s.mentions(BILLING_PHRASES)
}

/// 403: stale-token signal → `Auth` (refreshed, as a 401); entitlement-shaped →
/// `Entitlement`; billing-shaped → `Billing`; "out of extra usage" → `BillingUnverified`;
/// else `Forbidden`.
fn forbidden(s: &Signals) -> OutcomeClass {
    if s.mentions(STALE_TOKEN_PHRASES) {
        OutcomeClass::Auth
    } else if s.mentions(ENTITLEMENT_PHRASES) {
        OutcomeClass::Entitlement
    } else if is_billing(s) {
        OutcomeClass::Billing
    } else if s.mentions(BILLING_UNVERIFIED_PHRASES) {
        OutcomeClass::BillingUnverified
    } else {
        OutcomeClass::Forbidden
    }
}

/// 429: upstream-throttled (phrase, or OpenRouter upstream metadata) → `UpstreamRateLimit`;
/// overloaded code → `ServerError`; billing-shaped → `Billing`; usage/plan cap →
/// `UsageLimit`; else `RateLimit`.
fn too_many_requests(s: &Signals) -> OutcomeClass {
    if s.upstream_metadata || s.mentions(UPSTREAM_PHRASES) {
        OutcomeClass::UpstreamRateLimit
    } else if s.has_code(OVERLOADED_CODES) {
        OutcomeClass::ServerError
    } else if is_billing(s) {
        OutcomeClass::Billing
    } else if s.mentions(USAGE_LIMIT_PHRASES) {
        OutcomeClass::UsageLimit
    } else {
        OutcomeClass::RateLimit
    }
}

/// 400: an invalid or expired key (Gemini, xAI) → `AuthTerminal`; "out of extra usage" →
/// `BillingUnverified`; billing-shaped → `Billing`; Codex model entitlement (code
/// `model_not_supported`/`unsupported_model`, or "is not supported when using codex") →
/// `ModelEntitlement`; code `model_not_found` → `NotFound`; else `ClientError`.
fn bad_request(s: &Signals) -> OutcomeClass {
    if s.mentions(INVALID_KEY_PHRASES) {
        OutcomeClass::AuthTerminal
    } else if s.mentions(BILLING_UNVERIFIED_PHRASES) {
        OutcomeClass::BillingUnverified
    } else if is_billing(s) {
        OutcomeClass::Billing
    } else if s.has_code(MODEL_ENTITLEMENT_CODES) || s.mentions(MODEL_ENTITLEMENT_PHRASES) {
        OutcomeClass::ModelEntitlement
    } else if s.has_code(NOT_FOUND_CODES) {
        OutcomeClass::NotFound
    } else {
        OutcomeClass::ClientError
    }
}
