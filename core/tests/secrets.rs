//! No secret appears in Debug output, errors, decisions, or the exported state of borrowed entries.

use credpool_core::{Millis, Options, Registry};
use serde_json::json;

const MANUAL: &str = "sk-SECRET-manual-0123456789";
const ENV: &str = "sk-SECRET-env-9876543210";
const REFRESH: &str = "rt-SECRET-refresh-55555";
const NEW_ACCESS: &str = "sk-SECRET-rotated-77777";

#[test]
fn secrets_stay_out_of_every_channel_but_reveal() {
    let mut r = Registry::new(Options {
        writer: "w1".into(),
        seed: 5,
    })
    .unwrap();
    let mut transcript = Vec::new();
    let inputs = [
        json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "m", "access_token": MANUAL}}),
        json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth", "access_token": MANUAL, "refresh_token": REFRESH}}),
        json!({"type": "seed", "env": {"OPENROUTER_API_KEY": ENV}}),
        json!({"type": "acquire", "pool": "openrouter"}),
        json!({"type": "report", "pool": "openrouter", "lease_id": 1, "response": {"status": 429, "body": {"error": {"message": format!("bad key {MANUAL}")}}}}),
        json!({"type": "acquire", "pool": "anthropic"}),
        json!({"type": "report", "pool": "anthropic", "entry_id": "o", "response": {"status": 401}}),
        json!({"type": "refresh_result", "pool": "anthropic", "entry_id": "o", "generation": 0, "result": {"type": "refreshed", "access_token": NEW_ACCESS}}),
        json!({"type": "refresh_result", "pool": "anthropic", "entry_id": "o", "generation": 0, "result": {"type": "refreshed", "access_token": NEW_ACCESS}}),
        json!({"type": "status"}),
        json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "x", "access_token": MANUAL, "priority": MANUAL}}),
        json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "y", "access_token": 5, "label": MANUAL.len()}}),
        json!({"type": "acquire", "pool": "openrouter", "model": [MANUAL]}),
        json!({"type": "report", "pool": "openrouter", "lease_id": MANUAL, "response": {}}),
        json!({"type": "sync", "state": {"format": "credpool", "schema_version": 1, "pools": {"openrouter": {"entries": [{"id": "m", "priority": ENV}]}}}}),
    ];
    for (i, input) in inputs.into_iter().enumerate() {
        let result = r.handle_value(Millis(1_000 + i as u64), input);
        match result {
            Ok(output) => transcript.push(serde_json::to_string(&output).unwrap()),
            Err(e) => transcript.push(format!("{e} {e:?}")),
        }
        transcript.push(format!("{r:?}"));
    }
    for secret in [MANUAL, ENV, REFRESH, NEW_ACCESS] {
        for line in &transcript {
            assert!(!line.contains(secret), "secret leaked: {line}");
            assert!(!line.contains("SECRET"), "secret fragment leaked: {line}");
        }
    }
    let state = serde_json::to_string(&r.export_state()).unwrap();
    assert!(!state.contains(ENV), "borrowed secret persisted");
    assert!(
        state.contains("sha256:"),
        "borrowed entry keeps a fingerprint"
    );
    assert!(
        state.contains(MANUAL),
        "owned secrets are persisted in the state file"
    );
    let reveal = r
        .handle_value(
            Millis(9_999),
            json!({"type": "reveal", "pool": "anthropic", "entry_id": "o"}),
        )
        .unwrap();
    assert!(serde_json::to_string(&reveal).unwrap().contains(NEW_ACCESS));
}
