//! Target `classify`: the classifier on arbitrary statuses, headers and bodies.
//!
//! Checks: no panic; deterministic; 1xx–3xx is a success with nothing read; reason and
//! message stay within their bounds; a text body that parses as a JSON object classifies
//! as that object (SPEC: such text "is treated as that object").

use arbitrary::{Arbitrary, Unstructured};
use credpool_core::limits::{MAX_BODY_SCAN_BYTES, MAX_MESSAGE_CHARS, MAX_REASON_CHARS};
use credpool_core::{Body, Millis, OutcomeClass, Response, classify};
use serde_json::Value;

use super::generate;

/// The target.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(now) = u64::arbitrary(&mut u) else {
        return;
    };
    // Mostly realistic clocks (hints are relative to them), sometimes anything.
    let now = if now % 4 == 0 {
        now
    } else {
        super::inputs::START + now % (1 << 40)
    };
    let Ok(response) = generate::response(&mut u, &["m1", "gpt-5-codex"]) else {
        return;
    };
    check(now, &response);
}

/// Classifies `response` at `now` and checks the verdict.
pub fn check(now: u64, response: &Response) {
    let verdict = classify(Millis(now), response);
    assert_eq!(
        verdict,
        classify(Millis(now), response),
        "not deterministic"
    );
    if let Some(reason) = &verdict.reason {
        assert!(
            reason.chars().count() <= MAX_REASON_CHARS,
            "reason too long"
        );
    }
    if let Some(message) = &verdict.message {
        assert!(
            message.chars().count() <= MAX_MESSAGE_CHARS,
            "message too long"
        );
    }
    if matches!(response.status, Some(100..=399)) {
        assert_eq!(verdict.class, OutcomeClass::Success);
    }
    if verdict.class == OutcomeClass::Success {
        assert!(
            verdict.reason.is_none() && verdict.message.is_none() && verdict.hint.is_none(),
            "a success carries no reason, message or hint: {verdict:?}"
        );
    }
    if let Some(Body::Text(text)) = &response.body
        && text.len() <= MAX_BODY_SCAN_BYTES
        && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text)
    {
        let parsed = Response {
            body: Some(Body::Json(value)),
            ..response.clone()
        };
        assert_eq!(
            verdict,
            classify(Millis(now), &parsed),
            "a JSON text body classifies differently from the parsed body"
        );
    }
}
