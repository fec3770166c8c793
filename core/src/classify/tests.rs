//! Classifier tests with real-looking provider responses and hostile inputs.

use serde_json::{Value, json};

use super::*;
use crate::limits::{
    MAX_BODY_SCAN_BYTES, MAX_HEADER_VALUE_BYTES, MAX_MESSAGE_CHARS, MAX_REASON_CHARS,
};
use crate::response::{Body, Headers};
use crate::time::{HOUR, MINUTE, SECOND};

/// 2025-06-15T15:06:40Z.
const NOW: Millis = Millis(1_750_000_000_000);
/// 2026-01-01T00:00:00Z in epoch seconds.
const JAN_2026_S: u64 = 1_767_225_600;
const JAN_2026: Millis = Millis(JAN_2026_S * 1000);

fn headers(pairs: &[(&str, &str)]) -> Headers {
    pairs.iter().copied().collect()
}

fn text(status: u16, hdrs: &[(&str, &str)], body: &str) -> Response {
    Response {
        status: Some(status),
        headers: headers(hdrs),
        body: Some(Body::Text(body.to_owned())),
        ..Response::default()
    }
}

fn parsed(status: u16, hdrs: &[(&str, &str)], body: Value) -> Response {
    Response {
        status: Some(status),
        headers: headers(hdrs),
        body: Some(Body::Json(body)),
        ..Response::default()
    }
}

fn bare(status: u16, hdrs: &[(&str, &str)]) -> Response {
    Response {
        status: Some(status),
        headers: headers(hdrs),
        ..Response::default()
    }
}

fn run(response: &Response) -> Classification {
    classify(NOW, response)
}

fn hint(c: &Classification) -> Option<(Millis, HintSource)> {
    c.hint.map(|h| (h.at, h.source))
}

fn after(ms: u64) -> Millis {
    NOW.plus(ms)
}

/// Drops a deeply nested value without recursing (serde_json's drop recurses).
fn dismantle(mut value: Value) {
    loop {
        value = match value {
            Value::Object(mut map) => match map.remove("error") {
                Some(inner) => inner,
                None => break,
            },
            Value::Array(mut items) => match items.pop() {
                Some(inner) => inner,
                None => break,
            },
            _ => break,
        };
    }
}

// ---------------------------------------------------------------- OpenAI

const OPENAI_TPM: &str = r#"{
  "error": {
    "message": "Rate limit reached for gpt-4o in organization org-xxx on tokens per min (TPM): Limit 30000, Used 29800, Requested 500. Please try again in 600ms. Visit https://platform.openai.com/account/rate-limits to learn more.",
    "type": "tokens",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#;

#[test]
fn openai_429_rate_limit_uses_later_split_reset() {
    let c = run(&text(
        429,
        &[
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-reset-tokens", "1.5s"),
            ("x-request-id", "req_abc123"),
        ],
        OPENAI_TPM,
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.reason.as_deref(), Some("rate_limit_exceeded"));
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Rate limit reached for gpt-4o"))
    );
    assert_eq!(
        hint(&c),
        Some((after(6 * MINUTE), HintSource::XRatelimitResetRequests))
    );
}

#[test]
fn openai_429_split_reset_prefers_the_exhausted_limit() {
    let c = run(&text(
        429,
        &[
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-reset-tokens", "1.5s"),
        ],
        OPENAI_TPM,
    ));
    assert_eq!(
        hint(&c),
        Some((after(1_500), HintSource::XRatelimitResetTokens))
    );
}

#[test]
fn openai_429_without_headers_reads_the_message() {
    let c = run(&text(429, &[], OPENAI_TPM));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(hint(&c), Some((after(600), HintSource::Message)));
}

#[test]
fn openai_429_insufficient_quota_is_billing() {
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
    assert_eq!(c.reason.as_deref(), Some("insufficient_quota"));
    assert_eq!(c.hint, None);
}

#[test]
fn openai_401_invalid_api_key_is_plain_auth() {
    let c = run(&text(
        401,
        &[],
        r#"{"error":{"message":"Incorrect API key provided: sk-proj-****abcd. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Auth);
    assert_eq!(c.reason.as_deref(), Some("invalid_api_key"));
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Incorrect API key"))
    );
}

// ---------------------------------------------------------------- Anthropic

const ANTHROPIC_429: &str = r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (a1b2c3) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#;

fn anthropic_headers(
    retry_after: bool,
    input_exhausted: bool,
) -> Vec<(&'static str, &'static str)> {
    let mut h = vec![
        ("anthropic-ratelimit-requests-limit", "50"),
        ("anthropic-ratelimit-requests-remaining", "49"),
        ("anthropic-ratelimit-requests-reset", "2025-06-15T15:06:41Z"),
        ("anthropic-ratelimit-input-tokens-limit", "50000"),
        (
            "anthropic-ratelimit-input-tokens-remaining",
            if input_exhausted { "0" } else { "100" },
        ),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2025-06-15T15:07:00Z",
        ),
        ("anthropic-ratelimit-output-tokens-limit", "10000"),
        ("anthropic-ratelimit-output-tokens-remaining", "10000"),
        (
            "anthropic-ratelimit-output-tokens-reset",
            "2025-06-15T15:07:30.500Z",
        ),
        ("request-id", "req_011CSHoEeqs5C35K2UUqR7Fy"),
    ];
    if retry_after {
        h.push(("retry-after", "17"));
    }
    h
}

#[test]
fn anthropic_429_retry_after_beats_ratelimit_headers() {
    let c = run(&text(429, &anthropic_headers(true, true), ANTHROPIC_429));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.reason.as_deref(), Some("rate_limit_error"));
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("This request would exceed"))
    );
    assert_eq!(hint(&c), Some((after(17 * SECOND), HintSource::RetryAfter)));
}

#[test]
fn anthropic_reset_headers_prefer_the_exhausted_limit() {
    let c = run(&text(429, &anthropic_headers(false, true), ANTHROPIC_429));
    // input-tokens is exhausted: its reset (15:07:00) wins over the later output reset.
    assert_eq!(
        hint(&c),
        Some((after(20 * SECOND), HintSource::AnthropicRatelimitReset))
    );
}

#[test]
fn anthropic_reset_headers_use_the_latest_when_none_is_exhausted() {
    let c = run(&text(429, &anthropic_headers(false, false), ANTHROPIC_429));
    assert_eq!(
        hint(&c),
        Some((after(50_500), HintSource::AnthropicRatelimitReset))
    );
}

#[test]
fn anthropic_529_overloaded_is_server_error() {
    let c = run(&text(
        529,
        &[],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":null}"#,
    ));
    assert_eq!(c.class, OutcomeClass::ServerError);
    assert_eq!(c.reason.as_deref(), Some("overloaded_error"));
    assert_eq!(c.message.as_deref(), Some("Overloaded"));
    assert_eq!(c.hint, None);
}

#[test]
fn anthropic_400_out_of_extra_usage_is_billing_unverified() {
    let c = run(&text(
        400,
        &[],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"You're out of extra usage. Add more at claude.ai/settings/usage and keep going."}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::BillingUnverified);
    assert_eq!(c.reason.as_deref(), Some("invalid_request_error"));
}

#[test]
fn anthropic_400_credit_balance_too_low_is_billing() {
    let c = run(&text(
        400,
        &[],
        r#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits."}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
}

#[test]
fn anthropic_403_oauth_not_allowed_is_entitlement() {
    let c = run(&text(
        403,
        &[],
        r#"{"type":"error","error":{"type":"permission_error","message":"OAuth authentication is currently not allowed for this organization."}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Entitlement);
    assert_eq!(c.reason.as_deref(), Some("permission_error"));
}

#[test]
fn anthropic_401_is_auth() {
    let c = run(&text(
        401,
        &[],
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Auth);
    assert_eq!(c.reason.as_deref(), Some("authentication_error"));
}

// ---------------------------------------------------------------- OpenRouter

#[test]
fn openrouter_402_insufficient_credits() {
    let c = run(&text(
        402,
        &[],
        r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
    // Numeric codes are not reasons.
    assert_eq!(c.reason, None);
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Insufficient credits"))
    );
}

#[test]
fn openrouter_429_upstream_rate_limited() {
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"message":"Provider returned error","code":429,"metadata":{"raw":"google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly, or add your own key to accumulate your rate limits: https://openrouter.ai/settings/integrations","provider_name":"Google AI Studio"}},"user_id":"user_2abc"}"#,
    ));
    assert_eq!(c.class, OutcomeClass::UpstreamRateLimit);
    assert_eq!(c.message.as_deref(), Some("Provider returned error"));
}

#[test]
fn openrouter_429_upstream_by_text_or_metadata_alone() {
    let by_text = run(&text(
        429,
        &[],
        r#"{"error":{"message":"google/gemini-2.0-flash-exp:free is temporarily rate-limited upstream. Please retry shortly.","code":429}}"#,
    ));
    assert_eq!(by_text.class, OutcomeClass::UpstreamRateLimit);
    let by_metadata = run(&parsed(
        429,
        &[],
        json!({"error": {"message": "Provider returned error", "code": 429,
            "metadata": {"provider_name": "DeepInfra", "raw": {"error": "too many requests"}}}}),
    ));
    assert_eq!(by_metadata.class, OutcomeClass::UpstreamRateLimit);
    // A provider name without the upstream's raw error is not enough.
    let name_only = run(&parsed(
        429,
        &[],
        json!({"error": {"message": "Rate limit exceeded", "code": 429,
            "metadata": {"provider_name": "DeepInfra"}}}),
    ));
    assert_eq!(name_only.class, OutcomeClass::RateLimit);
}

#[test]
fn openrouter_429_own_limit_reads_body_metadata_headers() {
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"message":"Rate limit exceeded: free-models-per-day. Add 10 credits to unlock 1000 free model requests per day","code":429,"metadata":{"headers":{"X-RateLimit-Limit":"50","X-RateLimit-Remaining":"0","X-RateLimit-Reset":"1767225600000"}}}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(hint(&c), Some((JAN_2026, HintSource::XRatelimitReset)));
}

#[test]
fn openrouter_403_key_limit_exceeded_is_billing() {
    let c = run(&text(
        403,
        &[],
        r#"{"error":{"message":"Key limit exceeded (total limit). Manage it using https://openrouter.ai/settings/keys","code":403}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
}

// ---------------------------------------------------------------- Google

fn gemini_429() -> Value {
    json!({
      "error": {
        "code": 429,
        "message": "You exceeded your current quota, please check your plan and billing details. For more information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [
          {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{
              "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
              "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
              "quotaDimensions": {"location": "global", "model": "gemini-2.0-flash"},
              "quotaValue": "15"
            }]
          },
          {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{"description": "Learn more about Gemini API quotas",
                       "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]
          },
          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}
        ]
      }
    })
}

#[test]
fn gemini_429_resource_exhausted_with_retry_info() {
    let c = run(&parsed(429, &[], gemini_429()));
    // "exceeded your current quota" on a Gemini 429 is a rate limit, not billing.
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.reason.as_deref(), Some("RESOURCE_EXHAUSTED"));
    assert_eq!(
        hint(&c),
        Some((after(34 * SECOND), HintSource::GoogleRetryDelay))
    );
    // Same body as text, and wrapped in an array as streaming endpoints send it.
    let as_text = run(&text(429, &[], &gemini_429().to_string()));
    assert_eq!(as_text, c);
    let wrapped = run(&text(429, &[], &json!([gemini_429()]).to_string()));
    assert_eq!(wrapped, c);
}

#[test]
fn google_retry_delay_variants() {
    let with_delay = |delay: Value| {
        let body = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}]}});
        hint(&run(&parsed(429, &[], body)))
    };
    assert_eq!(
        with_delay(json!("1.5s")),
        Some((after(1_500), HintSource::GoogleRetryDelay))
    );
    assert_eq!(
        with_delay(json!({"seconds": 2, "nanos": 500_000_000})),
        Some((after(2_500), HintSource::GoogleRetryDelay))
    );
    assert_eq!(with_delay(json!("soon")), None);
    assert_eq!(with_delay(json!(-3)), None);
}

#[test]
fn google_quota_reset_delay_in_metadata_timestamp_and_message() {
    let metadata = run(&parsed(
        429,
        &[],
        json!({"error": {"code": 429, "message": "You have exhausted your capacity on this model.",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "QUOTA_EXHAUSTED", "domain": "cloudcode-pa.googleapis.com",
                "metadata": {"quotaResetDelay": "4h5m3s",
                             "quotaResetTimeStamp": "2026-01-01T00:00:00Z",
                             "model": "gemini-2.5-pro"}}]}}),
    ));
    assert_eq!(
        hint(&metadata),
        Some((
            after(4 * HOUR + 5 * MINUTE + 3 * SECOND),
            HintSource::GoogleQuotaResetDelay
        ))
    );
    let timestamp = run(&parsed(
        429,
        &[],
        json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "metadata": {"quotaResetTimeStamp": "2026-01-01T00:00:00Z"}}]}}),
    ));
    assert_eq!(
        hint(&timestamp),
        Some((JAN_2026, HintSource::GoogleQuotaResetDelay))
    );
    let message = run(&text(
        429,
        &[],
        "Resource exhausted. quotaResetDelay: 1500ms, quotaResetTimeStamp: soon",
    ));
    assert_eq!(
        hint(&message),
        Some((after(1_500), HintSource::GoogleQuotaResetDelay))
    );
}

#[test]
fn google_details_are_bounded() {
    let mut details: Vec<Value> = (0..1_000)
        .map(|i| json!({"@type": "type.googleapis.com/google.rpc.Help", "n": i}))
        .collect();
    details.push(json!({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}));
    let c = run(&parsed(
        429,
        &[],
        json!({"error": {"code": 429, "details": details}}),
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.hint, None);
}

// ---------------------------------------------------------------- Codex

const CODEX_USAGE: &str = r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":1767225600,"resets_in_seconds":12345}}"#;

#[test]
fn codex_429_usage_limit_reached() {
    let c = run(&text(429, &[("retry-after", "60")], CODEX_USAGE));
    assert_eq!(c.class, OutcomeClass::UsageLimit);
    assert_eq!(c.reason.as_deref(), Some("usage_limit_reached"));
    assert_eq!(
        c.message.as_deref(),
        Some("The usage limit has been reached")
    );
    // Body fields beat Retry-After; resets_at beats resets_in_seconds.
    assert_eq!(hint(&c), Some((JAN_2026, HintSource::BodyResetsAt)));
}

#[test]
fn codex_429_resets_in_seconds_alone() {
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"pro","resets_in_seconds":12345}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::UsageLimit);
    assert_eq!(
        hint(&c),
        Some((after(12_345 * SECOND), HintSource::BodyResetsInSeconds))
    );
}

#[test]
fn usage_limit_by_message_or_code() {
    for body in [
        r#"{"error":{"message":"You've hit your usage limit. Upgrade to Pro or try again later."}}"#,
        r#"{"error":{"code":"GoUsageLimit","message":"Monthly cap"}}"#,
        r#"{"detail":"Usage limit reached for this plan"}"#,
    ] {
        assert_eq!(
            run(&text(429, &[], body)).class,
            OutcomeClass::UsageLimit,
            "{body}"
        );
    }
}

#[test]
fn codex_401_terminal_reasons() {
    for (code, message) in [
        (
            "token_invalidated",
            "Your authentication token has been invalidated. Please try signing in again.",
        ),
        (
            "refresh_token_reused",
            "Your refresh token has already been used to generate a new access token. Please try signing in again.",
        ),
        ("token_revoked", "Token revoked."),
        ("invalid_token", "Invalid token."),
        ("unauthorized_client", "Unauthorized client."),
    ] {
        let c = run(&parsed(
            401,
            &[],
            json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}}),
        ));
        assert_eq!(c.class, OutcomeClass::AuthTerminal, "{code}");
        assert_eq!(c.reason.as_deref(), Some(code));
        assert_eq!(c.message.as_deref(), Some(message));
    }
}

#[test]
fn terminal_reasons_only_count_on_401() {
    let body = r#"{"error":{"code":"token_revoked","message":"Token revoked."}}"#;
    assert_eq!(run(&text(403, &[], body)).class, OutcomeClass::Forbidden);
    assert_eq!(run(&text(400, &[], body)).class, OutcomeClass::ClientError);
    // A terminal word inside prose is not a terminal code.
    let prose = r#"{"error":{"code":"unauthorized","message":"invalid_grant happened"}}"#;
    assert_eq!(run(&text(401, &[], prose)).class, OutcomeClass::Auth);
}

#[test]
fn codex_400_model_entitlement() {
    let c = run(&text(
        400,
        &[],
        r#"{"detail":"The 'gpt-5-pro' model is not supported when using Codex with a ChatGPT account."}"#,
    ));
    assert_eq!(c.class, OutcomeClass::ModelEntitlement);
    assert_eq!(c.reason, None);
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("The 'gpt-5-pro' model"))
    );
    for code in ["model_not_supported", "unsupported_model"] {
        let by_code = run(&parsed(
            400,
            &[],
            json!({"error": {"code": code, "message": "This model is not available."}}),
        ));
        assert_eq!(by_code.class, OutcomeClass::ModelEntitlement, "{code}");
    }
}

// ---------------------------------------------------------------- Nous

#[test]
fn nous_401_invalid_grant_is_terminal() {
    let c = run(&text(
        401,
        &[],
        r#"{"error":"invalid_grant","error_description":"Refresh token is invalid or has been revoked"}"#,
    ));
    assert_eq!(c.class, OutcomeClass::AuthTerminal);
    assert_eq!(c.reason.as_deref(), Some("invalid_grant"));
    assert_eq!(
        c.message.as_deref(),
        Some("Refresh token is invalid or has been revoked")
    );
}

#[test]
fn nous_429_rate_limit_from_message() {
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"message":"Rate limit exceeded for model Hermes-4-405B. Please retry after 30 seconds.","type":"rate_limit_error","code":"rate_limit_exceeded"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.reason.as_deref(), Some("rate_limit_exceeded"));
    assert_eq!(hint(&c), Some((after(30 * SECOND), HintSource::Message)));
}

// ---------------------------------------------------------------- xAI

#[test]
fn xai_403_stale_token_is_auth_not_entitlement() {
    let c = run(&text(
        403,
        &[],
        r#"{"code":"The caller does not have permission to execute the specified operation","error":"Access denied: not entitled to this model [WKE=unauthenticated:oauth2-token-expired]"}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Auth);
    assert_eq!(
        c.reason.as_deref(),
        Some("The caller does not have permission to execute the specified operation")
    );
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Access denied"))
    );
    let validated = run(&text(
        403,
        &[],
        r#"{"error":"OAuth2 access token could not be validated. Subscription required."}"#,
    ));
    assert_eq!(validated.class, OutcomeClass::Auth);
}

#[test]
fn invalid_or_expired_keys_on_a_400_are_terminal_auth() {
    for body in [
        r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT"}}"#,
        r#"{"error":{"code":400,"message":"API key expired. Please renew the API key.","status":"INVALID_ARGUMENT"}}"#,
        r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***a1."}"#,
    ] {
        assert_eq!(
            run(&text(400, &[], body)).class,
            OutcomeClass::AuthTerminal,
            "{body}"
        );
    }
    // The same words on another status keep that status's class.
    let on_401 = r#"{"error":{"message":"Incorrect API key provided: sk-***"}}"#;
    assert_eq!(run(&text(401, &[], on_401)).class, OutcomeClass::Auth);
}

#[test]
fn model_not_found_is_not_found_on_any_4xx() {
    let body = r#"{"error":{"message":"The model `gpt-9` does not exist","type":"invalid_request_error","code":"model_not_found"}}"#;
    for status in [400, 404, 422] {
        assert_eq!(
            run(&text(status, &[], body)).class,
            OutcomeClass::NotFound,
            "{status}"
        );
    }
    let other = r#"{"error":{"message":"Invalid 'messages'","code":"empty_array"}}"#;
    assert_eq!(run(&text(422, &[], other)).class, OutcomeClass::ClientError);
}

#[test]
fn xai_403_spending_limit_is_billing() {
    let c = run(&text(
        403,
        &[],
        r#"{"code":"The caller does not have permission to execute the specified operation","error":"Your team 0f1e2d3c has either used all available credits or reached its monthly spending limit. To continue making API requests, please purchase more credits or raise your spending limit."}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Your team"))
    );
}

#[test]
fn xai_401_incorrect_key_is_auth() {
    let c = run(&text(
        401,
        &[],
        r#"{"code":"Client specified an invalid argument","error":"Incorrect API key provided: xa***yz. You can obtain an API key from https://console.x.ai."}"#,
    ));
    assert_eq!(c.class, OutcomeClass::Auth);
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("Incorrect API key"))
    );
}

// ---------------------------------------------------------------- 403 shapes

#[test]
fn entitlement_phrases_on_403() {
    for message in [
        "Your account is not entitled to use this API.",
        "Subscription required to use this model.",
        "Project `proj_abc` does not have access to model `o3`",
        "You do not have permission to use the model claude-opus-4.",
    ] {
        let body = json!({"error": {"message": message}});
        assert_eq!(
            run(&parsed(403, &[], body)).class,
            OutcomeClass::Entitlement,
            "{message}"
        );
    }
    let plain = run(&text(403, &[], r#"{"error":{"message":"Forbidden"}}"#));
    assert_eq!(plain.class, OutcomeClass::Forbidden);
    let extra = run(&text(403, &[], "You're out of extra usage."));
    assert_eq!(extra.class, OutcomeClass::BillingUnverified);
}

// ---------------------------------------------------------------- status table

#[test]
fn status_table() {
    let cases: &[(u16, OutcomeClass)] = &[
        (100, OutcomeClass::Success),
        (200, OutcomeClass::Success),
        (204, OutcomeClass::Success),
        (304, OutcomeClass::Success),
        (400, OutcomeClass::ClientError),
        (401, OutcomeClass::Auth),
        (402, OutcomeClass::Billing),
        (403, OutcomeClass::Forbidden),
        (404, OutcomeClass::NotFound),
        (408, OutcomeClass::ServerError),
        (409, OutcomeClass::ClientError),
        (413, OutcomeClass::ClientError),
        (422, OutcomeClass::ClientError),
        (429, OutcomeClass::RateLimit),
        (499, OutcomeClass::ClientError),
        (500, OutcomeClass::ServerError),
        (502, OutcomeClass::ServerError),
        (503, OutcomeClass::ServerError),
        (504, OutcomeClass::ServerError),
        (529, OutcomeClass::ServerError),
        (599, OutcomeClass::ServerError),
        (600, OutcomeClass::ServerError),
        (0, OutcomeClass::NetworkError),
        (u16::MAX, OutcomeClass::ServerError),
    ];
    for &(status, class) in cases {
        let c = run(&bare(status, &[]));
        assert_eq!(c.class, class, "{status}");
        assert_eq!(
            (c.reason, c.message, c.hint),
            (None, None, None),
            "{status}"
        );
    }
}

#[test]
fn success_ignores_error_bodies_and_hints() {
    let c = run(&text(200, &[("retry-after", "30")], CODEX_USAGE));
    assert_eq!(
        c,
        Classification {
            class: OutcomeClass::Success,
            reason: None,
            message: None,
            hint: None
        }
    );
}

#[test]
fn network_errors() {
    let timeout = Response {
        network_error: Some("timeout".to_owned()),
        ..Response::default()
    };
    let c = run(&timeout);
    assert_eq!(c.class, OutcomeClass::NetworkError);
    assert_eq!(c.reason.as_deref(), Some("timeout"));
    assert_eq!(run(&Response::default()).class, OutcomeClass::NetworkError);
    // A status wins over a network error.
    let with_status = Response {
        status: Some(503),
        network_error: Some("reset".to_owned()),
        ..Response::default()
    };
    assert_eq!(run(&with_status).class, OutcomeClass::ServerError);
    assert_eq!(run(&with_status).reason, None);
}

#[test]
fn overloaded_code_on_429_is_server_error() {
    let c = run(&text(
        429,
        &[],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::ServerError);
}

#[test]
fn plain_text_bodies() {
    let c = run(&text(
        503,
        &[],
        "  upstream connect error or disconnect/reset before headers. reset reason: overflow  ",
    ));
    assert_eq!(c.class, OutcomeClass::ServerError);
    assert_eq!(c.reason, None);
    assert_eq!(
        c.message.as_deref(),
        Some("upstream connect error or disconnect/reset before headers. reset reason: overflow")
    );
    let json_string = run(&parsed(
        429,
        &[],
        json!("Too many requests, wait 45 seconds"),
    ));
    assert_eq!(
        json_string.message.as_deref(),
        Some("Too many requests, wait 45 seconds")
    );
    assert_eq!(
        hint(&json_string),
        Some((after(45 * SECOND), HintSource::Message))
    );
    let number = run(&parsed(500, &[], json!(42)));
    assert_eq!(number.message, None);
}

// ---------------------------------------------------------------- hint sources

#[test]
fn retry_after_seconds_decimal_ms_and_http_date() {
    let of = |pairs: &[(&str, &str)]| hint(&run(&bare(429, pairs)));
    assert_eq!(
        of(&[("Retry-After", "30")]),
        Some((after(30 * SECOND), HintSource::RetryAfter))
    );
    assert_eq!(
        of(&[("retry-after", " 1.5 ")]),
        Some((after(1_500), HintSource::RetryAfter))
    );
    assert_eq!(
        of(&[("retry-after", "0")]),
        Some((NOW, HintSource::RetryAfter))
    );
    assert_eq!(
        of(&[("retry-after", "Thu, 01 Jan 2026 00:00:00 GMT")]),
        Some((JAN_2026, HintSource::RetryAfter))
    );
    // Past dates are returned as they are; the policy clamps.
    assert_eq!(
        of(&[("retry-after", "Sun, 06 Nov 1994 08:49:37 GMT")]),
        Some((Millis(784_111_777_000), HintSource::RetryAfter))
    );
    assert_eq!(
        of(&[("retry-after-ms", "250"), ("retry-after", "30")]),
        Some((after(250), HintSource::RetryAfter))
    );
    for bad in [
        "-5",
        "1e400",
        "NaN",
        "",
        "soon",
        "99999999999999999999999",
        "30 s",
    ] {
        assert_eq!(of(&[("retry-after", bad)]), None, "{bad:?}");
    }
}

#[test]
fn x_ratelimit_reset_by_magnitude() {
    let of = |value: &str| hint(&run(&bare(429, &[("x-ratelimit-reset", value)])));
    let src = HintSource::XRatelimitReset;
    assert_eq!(of("30"), Some((after(30 * SECOND), src)));
    assert_eq!(of("0"), Some((NOW, src)));
    assert_eq!(of("2.5"), Some((after(2_500), src)));
    assert_eq!(of("999999999"), Some((after(999_999_999 * SECOND), src)));
    assert_eq!(of("1000000000"), Some((Millis(1_000_000_000_000), src)));
    assert_eq!(of("1767225600"), Some((JAN_2026, src)));
    assert_eq!(of("999999999999"), Some((Millis(999_999_999_999_000), src)));
    assert_eq!(of("1000000000000"), Some((Millis(1_000_000_000_000), src)));
    assert_eq!(of("1767225600123"), Some((Millis(1_767_225_600_123), src)));
    assert_eq!(of("6m0s"), Some((after(6 * MINUTE), src)));
    assert_eq!(of("2026-01-01T00:00:00Z"), Some((JAN_2026, src)));
    for bad in ["-5", "1e400", "99999999999999999999999", "NaN", "", "soon"] {
        assert_eq!(of(bad), None, "{bad:?}");
    }
}

#[test]
fn x_ratelimit_reset_requests_and_tokens_alone() {
    let c = run(&bare(429, &[("x-ratelimit-reset-requests", "1h2m3.5s")]));
    assert_eq!(
        hint(&c),
        Some((after(3_723_500), HintSource::XRatelimitResetRequests))
    );
    let c = run(&bare(429, &[("x-ratelimit-reset-tokens", "20ms")]));
    assert_eq!(
        hint(&c),
        Some((after(20), HintSource::XRatelimitResetTokens))
    );
    let c = run(&bare(
        429,
        &[
            ("x-ratelimit-reset-tokens", "20ms"),
            ("x-ratelimit-reset-requests", "10ms"),
        ],
    ));
    assert_eq!(
        hint(&c),
        Some((after(20), HintSource::XRatelimitResetTokens))
    );
}

#[test]
fn body_reset_fields() {
    let of = |body: Value| hint(&run(&parsed(429, &[], body)));
    assert_eq!(
        of(json!({"error": {"message": "x", "reset_at": "2026-01-01T00:00:00Z"}})),
        Some((JAN_2026, HintSource::BodyResetAt))
    );
    assert_eq!(
        of(json!({"error": {"reset_at": "1767225600"}})),
        Some((JAN_2026, HintSource::BodyResetAt))
    );
    assert_eq!(
        of(json!({"error": {"reset_at": 1_767_225_600_123_u64}})),
        Some((Millis(1_767_225_600_123), HintSource::BodyResetAt))
    );
    assert_eq!(
        of(json!({"error": {"resets_at": 1_767_225_600.5}})),
        Some((Millis(1_767_225_600_500), HintSource::BodyResetsAt))
    );
    // Small absolute values are epoch seconds in 1970: returned, the policy clamps.
    assert_eq!(
        of(json!({"error": {"resets_at": 30}})),
        Some((Millis(30_000), HintSource::BodyResetsAt))
    );
    // Root-level fields count too (payload first).
    assert_eq!(
        of(json!({"error": {"message": "slow down"}, "retry_after": 12})),
        Some((after(12 * SECOND), HintSource::BodyRetryAfter))
    );
    assert_eq!(
        of(json!({"error": {"retry_after": "2.5"}, "retry_after": 12})),
        Some((after(2_500), HintSource::BodyRetryAfter))
    );
    // Zero, negative and absurd values are ignored and later sources used.
    let fallback = Some((after(5 * SECOND), HintSource::Message));
    let absurd = [
        json!(-5),
        json!("-5"),
        json!(1e300),
        json!("1e400"),
        json!("99999999999999999999999"),
        json!(""),
        json!("NaN"),
        json!(null),
        json!(true),
        json!({"a": 1}),
        json!([1]),
    ];
    for bad in absurd.iter().chain(&[json!(0), json!("0"), json!(0.0)]) {
        let body =
            json!({"error": {"resets_at": bad, "reset_at": bad, "message": "try again in 5s"}});
        assert_eq!(of(body), fallback, "{bad}");
    }
    for bad in &absurd {
        let body = json!({"error": {"resets_in_seconds": bad, "retry_after": bad,
            "message": "try again in 5s"}});
        assert_eq!(of(body), fallback, "{bad}");
    }
    // A relative zero means "now".
    assert_eq!(
        of(json!({"error": {"resets_in_seconds": 0}})),
        Some((NOW, HintSource::BodyResetsInSeconds))
    );
}

#[test]
fn message_phrases() {
    let of = |message: &str| {
        hint(&run(&parsed(
            429,
            &[],
            json!({"error": {"message": message}}),
        )))
    };
    let src = HintSource::Message;
    assert_eq!(
        of("Please try again in 1m30s."),
        Some((after(90 * SECOND), src))
    );
    assert_eq!(
        of("Please try again in 6.5 seconds."),
        Some((after(6_500), src))
    );
    assert_eq!(of("Retry in 2 minutes"), Some((after(2 * MINUTE), src)));
    assert_eq!(
        of("Your limit resets in 2h 5m"),
        Some((after(2 * HOUR + 5 * MINUTE), src))
    );
    assert_eq!(
        of("Resets in 4hr 5min"),
        Some((after(4 * HOUR + 5 * MINUTE), src))
    );
    assert_eq!(
        of("Please wait 45 seconds"),
        Some((after(45 * SECOND), src))
    );
    assert_eq!(
        of("Weekly limit resets in 3h. Retry after 30 seconds."),
        Some((after(30 * SECOND), src))
    );
    assert_eq!(
        of("Quota resets at 2026-01-01T00:00:00Z."),
        Some((JAN_2026, src))
    );
    assert_eq!(of("Please try again later."), None);
}

/// One response carrying the sources from `first` on, each saying a different delay.
fn layered(first: usize) -> Response {
    let has = |layer: usize| layer >= first;
    let mut error = json!({"message": if has(6) { "try again in 7s" } else { "" }});
    if has(0) {
        error["retry_after"] = json!(1);
    }
    if has(2) {
        error["details"] =
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]);
    }
    let mut hdrs = Vec::new();
    if has(1) {
        hdrs.push(("retry-after", "2"));
    }
    if has(3) {
        hdrs.push(("anthropic-ratelimit-requests-reset", "2025-06-15T15:06:44Z"));
    }
    if has(4) {
        hdrs.push(("x-ratelimit-reset", "5"));
    }
    if has(5) {
        hdrs.push(("x-ratelimit-reset-requests", "6s"));
    }
    parsed(429, &hdrs, json!({"error": error}))
}

#[test]
fn precedence_of_sources() {
    let order = [
        HintSource::BodyRetryAfter,
        HintSource::RetryAfter,
        HintSource::GoogleRetryDelay,
        HintSource::AnthropicRatelimitReset,
        HintSource::XRatelimitReset,
        HintSource::XRatelimitResetRequests,
        HintSource::Message,
    ];
    for (first, source) in order.into_iter().enumerate() {
        let seconds = u64::try_from(first).unwrap() + 1;
        assert_eq!(
            hint(&run(&layered(first))),
            Some((after(seconds * SECOND), source)),
            "{source:?}"
        );
    }
    assert_eq!(run(&layered(order.len())).hint, None);
}

// ---------------------------------------------------------------- hostile inputs

#[test]
fn megabyte_text_body_is_bounded() {
    let mut body = "x".repeat(2 * 1024 * 1024);
    body.push_str(" try again in 5s");
    let c = run(&text(429, &[], &body));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(
        c.message.as_ref().map(|m| m.chars().count()),
        Some(MAX_MESSAGE_CHARS)
    );
    // The phrase lies beyond the scanned prefix.
    assert_eq!(c.hint, None);
    let early = format!("Too many requests, try again in 5s. {body}");
    assert_eq!(
        hint(&run(&text(429, &[], &early))),
        Some((after(5 * SECOND), HintSource::Message))
    );
}

#[test]
fn oversized_json_text_is_not_parsed() {
    let padding = "a".repeat(MAX_BODY_SCAN_BYTES);
    let body = format!(r#"{{"error":{{"code":"insufficient_quota","message":"{padding}"}}}}"#);
    let c = run(&text(429, &[], &body));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.reason, None);
    assert!(
        c.message
            .as_deref()
            .is_some_and(|m| m.starts_with("{\"error\""))
    );
}

#[test]
fn deep_nesting_is_bounded() {
    let mut value = json!({"code": "insufficient_quota", "message": "deep", "retry_after": 5});
    for _ in 0..10_000 {
        let mut map = serde_json::Map::new();
        map.insert("error".to_owned(), value);
        value = Value::Object(map);
    }
    let mut response = parsed(429, &[], value);
    let c = run(&response);
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!((c.reason, c.message, c.hint), (None, None, None));
    if let Some(Body::Json(value)) = response.body.take() {
        dismantle(value);
    }

    let mut value = json!("bottom");
    for _ in 0..10_000 {
        value = Value::Array(vec![value]);
    }
    let mut response = parsed(500, &[], value);
    assert_eq!(run(&response).class, OutcomeClass::ServerError);
    if let Some(Body::Json(value)) = response.body.take() {
        dismantle(value);
    }

    // Nesting written as text hits serde_json's own limit and stays text.
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let c = run(&text(400, &[], &nested));
    assert_eq!(c.class, OutcomeClass::ClientError);
    assert!(c.message.is_some());
}

#[test]
fn payload_found_within_depth() {
    // Two levels of `error` plus an array are well within MAX_BODY_DEPTH.
    let c = run(&parsed(
        429,
        &[],
        json!([{"error": {"error": {"code": "insufficient_quota", "message": "nested"}}}]),
    ));
    assert_eq!(c.class, OutcomeClass::Billing);
    assert_eq!(c.message.as_deref(), Some("nested"));
}

#[test]
fn hostile_header_values() {
    let long = "9".repeat(MAX_HEADER_VALUE_BYTES + 1);
    let padded = format!("{}30", " ".repeat(MAX_HEADER_VALUE_BYTES));
    let lossy = String::from_utf8_lossy(&[0xff, b'3', 0xfe, b'0']).into_owned();
    for value in [
        "30\u{0}",
        "\u{0}30",
        "3\u{7f}0",
        "3\r\n0",
        "\u{1b}[31m30",
        "３０",
        &long,
        &padded,
        &lossy,
        "1e400",
        "-5",
        "99999999999999999999999",
        "NaN",
        "Infinity",
        "0x1e",
        "",
    ] {
        for name in [
            "retry-after",
            "retry-after-ms",
            "x-ratelimit-reset",
            "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens",
            "anthropic-ratelimit-tokens-reset",
        ] {
            let c = run(&bare(429, &[(name, value)]));
            assert_eq!(c.class, OutcomeClass::RateLimit);
            assert_eq!(c.hint, None, "{name}: {value:?}");
        }
    }
    // Surrounding ASCII whitespace (CR/LF included) is trimmed.
    assert_eq!(
        hint(&run(&bare(429, &[("retry-after", "\r\n30\r\n")]))),
        Some((after(30 * SECOND), HintSource::RetryAfter))
    );
    // Only the length bound matters: a value of exactly the bound is read.
    let exact = format!("{}30", " ".repeat(MAX_HEADER_VALUE_BYTES - 2));
    assert_eq!(
        hint(&run(&bare(429, &[("retry-after", &exact)]))),
        Some((after(30 * SECOND), HintSource::RetryAfter))
    );
}

#[test]
fn hostile_strings_in_bodies() {
    let lossy =
        String::from_utf8_lossy(b"\xff\xfeRate limit \xc3\x28 try again in 3s \xed\xa0\x80")
            .into_owned();
    let c = run(&parsed(
        429,
        &[],
        json!({"error": {"message": lossy, "code": "\u{0}\u{7}"}}),
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(hint(&c), Some((after(3 * SECOND), HintSource::Message)));
    assert!(c.message.as_deref().is_some_and(|m| m.contains('\u{fffd}')));

    // Truncation lands on char boundaries.
    let c = run(&parsed(
        403,
        &[],
        json!({"error": {"code": "€".repeat(300), "message": "é".repeat(MAX_MESSAGE_CHARS + 100)}}),
    ));
    assert_eq!(
        c.reason.as_ref().map(|r| r.chars().count()),
        Some(MAX_REASON_CHARS)
    );
    assert_eq!(
        c.message.as_ref().map(|m| m.chars().count()),
        Some(MAX_MESSAGE_CHARS)
    );

    // Emoji and combining marks straddling the scan bound.
    let body = format!("{}{}", "a".repeat(MAX_BODY_SCAN_BYTES - 1), "👍".repeat(10));
    let c = run(&text(500, &[], &body));
    assert_eq!(c.class, OutcomeClass::ServerError);

    // serde_json rejects 1e400 in text; it stays a text body.
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"resets_at":1e400,"message":"x"}}"#,
    ));
    assert_eq!(c.class, OutcomeClass::RateLimit);
    assert_eq!(c.hint, None);
    // A huge integer parses as a float (1e23) and is ignored.
    let c = run(&text(
        429,
        &[],
        r#"{"error":{"resets_at":99999999999999999999999}}"#,
    ));
    assert_eq!(c.hint, None);
}

#[test]
fn whitespace_only_fields_are_absent() {
    let c = run(&parsed(
        401,
        &[],
        json!({"error": {"code": "  ", "type": "", "message": " \n "}}),
    ));
    assert_eq!(c.class, OutcomeClass::Auth);
    assert_eq!((c.reason, c.message), (None, None));
}
