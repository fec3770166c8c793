//! Hermes migration: `import_hermes` / `export_hermes` against hand-written `auth.json`
//! fixtures in `tests/hermes/` (see the normalisation rules in `core/src/hermes.rs`).

use credpool_core::StateDoc;
use credpool_core::{
    AcquireRequest, Decision, EntryId, ErrorCode, Millis, NewEntry, Options, PoolKey, Registry,
    Report, Response, Secret, Status, export_hermes, import_hermes,
};
use serde_json::{Value, json};

/// Fixtures already in the canonical form `export_hermes` writes: export reproduces their
/// `credential_pool` exactly.
const CANONICAL: [&str; 5] = ["openrouter", "anthropic", "openai-codex", "nous", "custom"];
/// Every fixture (the legacy one exercises the normalisations).
const ALL: [&str; 6] = [
    "openrouter",
    "anthropic",
    "openai-codex",
    "nous",
    "custom",
    "legacy-mixed",
];

/// 2026-08-18T17:43:20Z, a little after the fixtures' marks.
const NOW: Millis = Millis(1_787_075_000_000);

fn fixture(name: &str) -> Value {
    let text = match name {
        "openrouter" => include_str!("../../tests/hermes/openrouter.json"),
        "anthropic" => include_str!("../../tests/hermes/anthropic.json"),
        "openai-codex" => include_str!("../../tests/hermes/openai-codex.json"),
        "nous" => include_str!("../../tests/hermes/nous.json"),
        "custom" => include_str!("../../tests/hermes/custom.json"),
        "legacy-mixed" => include_str!("../../tests/hermes/legacy-mixed.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

fn registry(state: &Value) -> Registry {
    Registry::from_state(
        state,
        Options {
            writer: "test".into(),
            seed: 7,
        },
    )
    .unwrap()
}

fn import(auth: &Value) -> Value {
    serde_json::to_value(import_hermes(auth, NOW).unwrap()).unwrap()
}

fn key(raw: &str) -> PoolKey {
    PoolKey::parse(raw).unwrap()
}

fn id(raw: &str) -> EntryId {
    EntryId::parse(raw).unwrap()
}

#[test]
fn canonical_fixtures_round_trip_through_a_registry() {
    for name in CANONICAL {
        let auth = fixture(name);
        let state = import(&auth);
        let reg = registry(&state);
        let exported_state = serde_json::to_value(reg.export_state()).unwrap();
        let out = export_hermes(&exported_state, Some(&auth), NOW).unwrap();
        let (Value::Object(out), Value::Object(orig)) = (&out, &auth) else {
            panic!("{name}: not objects");
        };
        // Other top-level keys untouched, none added or lost.
        assert_eq!(
            out.keys().collect::<Vec<_>>(),
            orig.keys().collect::<Vec<_>>(),
            "{name}"
        );
        for (k, v) in orig {
            if k != "credential_pool" {
                assert_eq!(&out[k], v, "{name}: top-level `{k}` changed");
            }
        }
        // credential_pool: field by field, then as a whole.
        let (got, want) = (&out["credential_pool"], &orig["credential_pool"]);
        for (pool, rows) in want.as_object().unwrap() {
            let got_rows = got[pool].as_array().unwrap();
            assert_eq!(
                got_rows.len(),
                rows.as_array().unwrap().len(),
                "{name}/{pool}"
            );
            for (g, w) in got_rows.iter().zip(rows.as_array().unwrap()) {
                for (field, value) in w.as_object().unwrap() {
                    assert_eq!(&g[field], value, "{name}/{pool}/{}: `{field}`", w["id"]);
                }
                assert_eq!(g, w, "{name}/{pool}: extra fields in export");
            }
        }
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn import_export_import_is_identity() {
    for name in ALL {
        let first = import_hermes(&fixture(name), NOW).unwrap();
        let out = export_hermes(&serde_json::to_value(&first).unwrap(), None, NOW).unwrap();
        assert_eq!(out["version"], json!(1));
        let second = import_hermes(&out, NOW).unwrap();
        assert_eq!(first, second, "{name}");
        // And once more: export is a fixed point after one normalisation.
        let again = export_hermes(&serde_json::to_value(&second).unwrap(), None, NOW).unwrap();
        assert_eq!(out, again, "{name}");
    }
}

#[test]
fn imported_fields_map_as_documented() {
    let state = import_hermes(&fixture("openrouter"), NOW).unwrap();
    let pool = &state.pools[&key("openrouter")];
    let [primary, env, backup] = &pool.entries[..] else {
        panic!("three entries")
    };
    assert_eq!(primary.status, Status::Exhausted);
    assert_eq!(primary.status_at, Millis(1_787_074_990_790));
    assert_eq!(primary.cooldown_until, Some(Millis(1_787_076_000_000)));
    assert_eq!(primary.request_counts["hermes"], 142);
    assert_eq!(primary.last_error.as_ref().and_then(|e| e.code), Some(429));
    // No reset_at: derived 429 TTL (1 h) from last_status_at.
    assert_eq!(
        env.cooldown_until,
        Some(Millis(1_787_074_000_500 + 3_600_000))
    );
    assert!(env.access_token.is_none());
    assert_eq!(
        env.secret_fingerprint.as_deref(),
        Some("sha256:12ab34cd56ef7890")
    );
    assert_eq!(env.extra["secret_source"], json!("bitwarden"));
    assert_eq!(backup.status, Status::Ok);
    assert_eq!(backup.priority, 2);

    // Billing never shortened; 401 dead has no deadline; sole 429 → 60 s.
    let state = import_hermes(&fixture("anthropic"), NOW).unwrap();
    let team = &state.pools[&key("anthropic")].entries[2];
    assert_eq!(
        team.cooldown_until,
        Some(Millis(1_787_073_600_125 + 3_600_000))
    );
    let oauth = &state.pools[&key("anthropic")].entries[0];
    assert_eq!(oauth.expires_at, Some(Millis(1_787_082_190_000)));
    assert_eq!(
        oauth.model_cooldowns["claude-opus-4-1"].until,
        Millis(1_787_078_400_000)
    );
    assert_eq!(
        oauth.model_cooldowns["claude-opus-4-1"].at,
        Millis(1_787_074_800_000)
    );
    let cleared = &state.pools[&key("anthropic")].entries[1];
    assert_eq!(cleared.status_cleared_at, Some(Millis(1_787_060_000_000)));

    let state = import_hermes(&fixture("custom"), NOW).unwrap();
    let together = &state.pools[&key("custom:together.ai")].entries[0];
    assert_eq!(
        together.cooldown_until,
        Some(Millis(1_787_074_500_250 + 60_000))
    );
    let local = &state.pools[&key("custom:local-(localhost:8080)")].entries[1];
    assert_eq!(local.failure_class, None);
    assert_eq!(local.extra["failure_reason"], json!("overloaded"));
    assert_eq!(
        local.cooldown_until,
        Some(Millis(1_787_074_100_000 + 3_600_000))
    );

    let state = import_hermes(&fixture("openai-codex"), NOW).unwrap();
    let dead = &state.pools[&key("openai-codex")].entries[0];
    assert_eq!(dead.status, Status::Dead);
    assert_eq!(dead.cooldown_until, None);
    assert_eq!(
        dead.extra["last_refresh"],
        json!("2026-08-17T09:12:44.512000+00:00")
    );

    let state = import_hermes(&fixture("nous"), NOW).unwrap();
    let nous = &state.pools[&key("nous")].entries[0];
    assert_eq!(nous.expires_at, Some(Millis(1_787_050_800_000)));
    assert_eq!(nous.extra["account_tier"], json!("pro"));
    assert_eq!(nous.extra["x_usage_plugin"]["version"], json!("0.3.1"));
    assert!(!nous.extra.contains_key("expires_at"));
}

#[test]
fn legacy_forms_are_normalised() {
    let auth = fixture("legacy-mixed");
    let state = import_hermes(&auth, NOW).unwrap();
    let text = serde_json::to_string(&state).unwrap();
    assert!(
        !text.contains("LEAKED"),
        "a borrowed secret crossed the import"
    );
    let pool = &state.pools[&key("openrouter")];
    let ids: Vec<&str> = pool.entries.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["aa0003", "aa0002", "aa0001"], "stable priority order");
    let env = &pool.entries[2];
    assert_eq!(
        env.label, "env:OPENROUTER_API_KEY",
        "label defaults to the source"
    );
    assert_eq!(
        env.status_at,
        Millis(1_787_074_990_790),
        "ISO last_status_at"
    );
    assert_eq!(
        env.cooldown_until,
        Some(Millis(1_787_076_000_000)),
        "reset_at in ms"
    );
    assert_eq!(
        env.secret_fingerprint.as_deref(),
        Some(
            Secret::new("sk-or-v1-LEAKED0000000000000000000000000000000000000000000000000000")
                .fingerprint()
                .as_str()
        )
    );
    let anthropic = &state.pools[&key("anthropic")].entries[0];
    assert_eq!(anthropic.auth_type, credpool_core::AuthType::Oauth);
    assert_eq!(anthropic.expires_at, Some(Millis(1_787_083_200_000)));
    assert_eq!(anthropic.extra["expires_at"], json!("2026-08-18T20:00:00Z"));

    let out = export_hermes(&serde_json::to_value(&state).unwrap(), Some(&auth), NOW).unwrap();
    let text = out.to_string();
    assert!(
        !text.contains("LEAKED"),
        "a borrowed secret crossed the export"
    );
    assert_eq!(out["active_provider"], json!("openrouter"));
    let rows = out["credential_pool"]["openrouter"].as_array().unwrap();
    assert!(out["credential_pool"].get("OpenRouter").is_none());
    let (empty, ok, env) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(
        [&empty["priority"], &ok["priority"], &env["priority"]],
        [&json!(0), &json!(1), &json!(2)]
    );
    assert_eq!(empty["last_status"], json!("ok"), "null + at → ok");
    assert_eq!(
        empty["last_status_at"],
        json!(1_787_070_000.0),
        "int → float"
    );
    assert!(empty.get("access_token").is_none());
    assert_eq!(ok["last_status"], Value::Null, "ok without at → null");
    assert!(ok.get("legacy_note").is_none());
    assert_eq!(ok["auth_type"], json!("api_key"));
    assert_eq!(env["last_status_at"], json!(1_787_074_990.79));
    assert_eq!(env["last_error_reset_at"], json!(1_787_076_000.0));
    assert!(env.get("provider").is_none());
    assert!(env.get("secret_fingerprint").is_some());
    for field in [
        "last_status",
        "last_status_at",
        "last_error_code",
        "last_error_reason",
        "last_error_message",
        "last_error_reset_at",
        "request_count",
    ] {
        assert!(ok.get(field).is_some(), "`{field}` always written");
    }
}

#[test]
fn imported_exhausted_entry_waits_for_its_deadline() {
    let state = import(&fixture("openrouter"));
    let request = AcquireRequest::new(key("openrouter"));
    let pick = |now: Millis| match registry(&state).acquire(now, &request).unwrap() {
        Decision::Use { entry_id, .. } => entry_id,
        other => panic!("expected use, got {other:?}"),
    };
    // reset_at 1787076000 s: before it the backup serves, after it the primary is back.
    assert_eq!(pick(Millis(1_787_075_999_000)), id("0f9e8d"));
    assert_eq!(pick(Millis(1_787_076_000_001)), id("a1b2c3"));
}

#[test]
fn registry_state_exports_and_imports_back() {
    let mut reg = Registry::new(Options {
        writer: "w1".into(),
        seed: 3,
    })
    .unwrap();
    let k = key("openai");
    let add = |reg: &mut Registry, raw: &str, source: &str, secret: &str| {
        reg.add_entry(
            Millis(1_000),
            &k,
            NewEntry {
                id: Some(id(raw)),
                source: Some(source.into()),
                access_token: Some(Secret::new(secret)),
                extra: serde_json::from_value(json!({"team": raw})).unwrap(),
                ..NewEntry::default()
            },
        )
        .unwrap()
    };
    add(&mut reg, "one", "manual", "sk-one-secret");
    add(&mut reg, "two", "env:OPENAI_API_KEY", "sk-env-secret");
    add(&mut reg, "three", "manual", "sk-three-secret");
    add(&mut reg, "gone", "manual", "sk-gone-secret");
    reg.remove_entry(Millis(2_000), &k, &id("gone")).unwrap();
    let request = AcquireRequest::new(k.clone());
    let Decision::Use { lease_id, .. } = reg.acquire(Millis(10_000), &request).unwrap() else {
        panic!("use")
    };
    let report = Report {
        pool: k.clone(),
        lease_id: Some(lease_id),
        entry_id: None,
        response: Response {
            status: Some(402),
            ..Response::default()
        },
    };
    let _next = reg.report(Millis(11_000), &report).unwrap();
    reg.reset(Millis(12_000), &k, Some(&id("three"))).unwrap();
    let state = reg.export_state();
    let value = serde_json::to_value(&state).unwrap();
    let out = export_hermes(&value, None, NOW).unwrap();
    let text = out.to_string();
    assert!(!text.contains("sk-env-secret"));
    assert!(
        !text.contains("gone"),
        "tombstoned entries are not exported"
    );
    let back: StateDoc = import_hermes(&out, NOW).unwrap();
    let ours = &state.pools[&k].entries;
    let theirs = &back.pools[&k].entries;
    assert_eq!(ours.len(), 3);
    assert_eq!(theirs.len(), 3);
    for (a, b) in ours.iter().zip(theirs) {
        assert_eq!(a.id, b.id);
        assert_eq!(a.label, b.label);
        assert_eq!(a.source, b.source);
        assert_eq!(a.auth_type, b.auth_type);
        assert_eq!(
            a.access_token.as_ref().map(Secret::expose),
            b.access_token.as_ref().map(Secret::expose)
        );
        assert_eq!(
            a.secret_fingerprint,
            b.secret_fingerprint.clone().or_else(|| {
                b.access_token
                    .as_ref()
                    .map(|s| s.fingerprint().into_string())
            })
        );
        assert_eq!(a.status, b.status, "{}", a.id);
        assert_eq!(a.last_error, b.last_error);
        assert_eq!(a.cooldown_until, b.cooldown_until, "{}", a.id);
        assert_eq!(a.failure_class, b.failure_class);
        assert_eq!(a.status_cleared_at, b.status_cleared_at);
        assert_eq!(a.extra, b.extra);
        let total = |d: &credpool_core::EntryDoc| d.request_counts.values().sum::<u64>();
        assert_eq!(total(a), total(b));
        if a.status != Status::Ok {
            assert_eq!(a.status_at, b.status_at);
        }
    }
    assert_eq!(
        ours[0].status,
        Status::Exhausted,
        "the 402 benched entry one"
    );
}

#[test]
fn bad_inputs_are_coded_errors() {
    let code = |auth: Value| import_hermes(&auth, NOW).err().map(|e| e.code());
    let entry = |extra: Value| {
        let mut row = json!({"id": "x1", "source": "manual", "access_token": "sk-x"});
        for (k, v) in extra.as_object().unwrap() {
            row[k] = v.clone();
        }
        json!({"version": 1, "credential_pool": {"openrouter": [row]}})
    };
    let invalid = Some(ErrorCode::InvalidState);
    assert_eq!(code(json!([])), invalid);
    assert_eq!(code(json!("auth")), invalid);
    assert_eq!(code(json!(null)), invalid);
    assert_eq!(code(json!({})), Some(ErrorCode::ForeignDocument));
    assert_eq!(
        code(json!({"format": "credpool", "schema_version": 1, "pools": {}})),
        Some(ErrorCode::ForeignDocument)
    );
    assert_eq!(
        code(json!({"version": 2, "credential_pool": {}})),
        Some(ErrorCode::UnsupportedSchemaVersion)
    );
    assert_eq!(
        code(json!({"version": "1", "credential_pool": {}})),
        invalid
    );
    assert_eq!(code(json!({"credential_pool": []})), invalid);
    assert_eq!(code(json!({"credential_pool": null})), invalid);
    assert_eq!(
        code(json!({"credential_pool": {"openrouter": {}}})),
        invalid
    );
    assert_eq!(
        code(json!({"credential_pool": {"openrouter": [1]}})),
        invalid
    );
    assert_eq!(code(json!({"credential_pool": {"": []}})), invalid);
    assert_eq!(
        code(json!({"credential_pool": {"a": [], "A": []}})),
        invalid
    );
    assert_eq!(
        code(json!({"credential_pool": {"openrouter": [{"label": "no id"}]}})),
        invalid
    );
    assert_eq!(code(entry(json!({"id": 7}))), invalid);
    assert_eq!(code(entry(json!({"id": ""}))), invalid);
    assert_eq!(code(entry(json!({"last_status": "cooling"}))), invalid);
    assert_eq!(code(entry(json!({"auth_type": "bearer"}))), invalid);
    assert_eq!(code(entry(json!({"last_error_code": 70000}))), invalid);
    assert_eq!(code(entry(json!({"request_count": -1}))), invalid);
    assert_eq!(code(entry(json!({"priority": 1.5}))), invalid);
    assert_eq!(code(entry(json!({"priority": "1"}))), invalid);
    assert_eq!(code(entry(json!({"last_status_at": true}))), invalid);
    assert_eq!(code(entry(json!({"last_status_at": "yesterday"}))), invalid);
    assert_eq!(code(entry(json!({"last_error_reset_at": 1e300}))), invalid);
    assert_eq!(code(entry(json!({"model_cooldowns": [1]}))), invalid);
    assert_eq!(
        code(entry(json!({"model_cooldowns": {"m": "soon"}}))),
        invalid
    );
    assert_eq!(code(entry(json!({"label": "a\nb"}))), invalid);
    assert_eq!(code(entry(json!({"base_url": 80}))), invalid);
    assert_eq!(
        code(entry(json!({"access_token": "x".repeat(20_000)}))),
        Some(ErrorCode::TooLarge)
    );
    let twice = json!({"credential_pool": {"openrouter": [
        {"id": "same", "access_token": "sk-1"}, {"id": "same", "access_token": "sk-2"}
    ]}});
    assert_eq!(code(twice), invalid);
    // The message names the place, never a value.
    let err = import_hermes(&entry(json!({"last_status": "sk-secret-looking"})), NOW).unwrap_err();
    assert!(
        err.message()
            .contains("credential_pool.openrouter[0].last_status"),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("sk-secret-looking"));

    // A Hermes file without pools is an empty state; the singletons are not imported.
    let only_singletons = json!({"version": 1, "providers": {"nous": {"access_token": "t"}}});
    assert!(
        import_hermes(&only_singletons, NOW)
            .unwrap()
            .pools
            .is_empty()
    );

    // Export: the state is validated like `from_state`; base must be an auth.json.
    let state = import(&fixture("openrouter"));
    let export_code = |state: &Value, base: Option<&Value>| {
        export_hermes(state, base, NOW).err().map(|e| e.code())
    };
    assert_eq!(
        export_code(&fixture("openrouter"), None),
        Some(ErrorCode::ForeignDocument)
    );
    assert_eq!(
        export_code(&json!({"format": "credpool"}), None),
        Some(ErrorCode::UnsupportedSchemaVersion)
    );
    assert_eq!(export_code(&json!(7), None), invalid);
    assert_eq!(
        export_code(&state, Some(&json!([1]))),
        Some(ErrorCode::InvalidInput)
    );
    assert_eq!(
        export_code(&state, Some(&state)),
        Some(ErrorCode::ForeignDocument)
    );
}

/// `suppressed_sources` crosses the converters both ways (Hermes scenario 59, reference
/// 1.5): imported per pool (a provider without rows gets an empty pool), exported from the
/// state's pools, with `base`'s lists of pools the state lacks kept and no empty pool
/// written to `credential_pool`.
#[test]
fn suppressed_sources_cross_both_ways() {
    let auth = fixture("custom");
    let state = import_hermes(&auth, NOW).unwrap();
    let copilot = &state.pools[&key("copilot")];
    assert!(copilot.entries.is_empty());
    assert_eq!(copilot.suppressed_sources["gh_cli"], NOW);
    assert_eq!(
        state.pools[&key("openrouter")].suppressed_sources["env:OPENROUTER_API_KEY"],
        NOW
    );
    let mut reg = registry(&serde_json::to_value(&state).unwrap());
    let status = reg.status(NOW, Some(&key("openrouter"))).unwrap();
    assert_eq!(status[0].suppressed_sources, ["env:OPENROUTER_API_KEY"]);
    // A seed skips the suppressed variable.
    let env = [("OPENROUTER_API_KEY".to_owned(), "sk-or-x".to_owned())].into();
    let report = reg.seed(NOW, &env, &Default::default()).unwrap();
    assert!(report.added.is_empty());
    assert_eq!(report.suppressed.len(), 1);
    // `add_entry` lifts openrouter's suppression; export keeps base's list of a pool the
    // state does not have.
    reg.add_entry(
        NOW,
        &key("openrouter"),
        NewEntry {
            access_token: Some(Secret::new("sk-or-added")),
            ..NewEntry::default()
        },
    )
    .unwrap();
    let mut base = auth.clone();
    base["suppressed_sources"]["xai"] = json!(["env:XAI_API_KEY"]);
    let exported = serde_json::to_value(reg.export_state()).unwrap();
    let out = export_hermes(&exported, Some(&base), NOW).unwrap();
    assert_eq!(
        out["suppressed_sources"],
        json!({"copilot": ["gh_cli"], "xai": ["env:XAI_API_KEY"]})
    );
    assert!(out["credential_pool"].get("copilot").is_none());
    // Bad shapes are invalid_state.
    for bad in [
        json!([]),
        json!({"openrouter": "env:X"}),
        json!({"openrouter": [1]}),
    ] {
        let err =
            import_hermes(&json!({"version": 1, "suppressed_sources": bad}), NOW).unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidState, "{bad}");
    }
}

/// A key the provider echoed into a Hermes row's `last_error_message` (the row's own
/// token, or any key-shaped word) is redacted on import, not carried into the store.
#[test]
fn an_echoed_key_in_a_hermes_error_message_is_redacted_on_import() {
    let auth = serde_json::json!({"credential_pool": {"openrouter": [{
        "id": "abc123", "auth_type": "api_key", "source": "manual",
        "access_token": "or-own-secret-000111222",
        "last_status": "exhausted", "last_error_code": 401,
        "last_error_message": "Incorrect API key provided: or-own-secret-000111222 (also sk-or-v1-0123456789abcdef0123)"
    }]}});
    let state = import(&auth);
    let message = &state["pools"]["openrouter"]["entries"][0]["last_error"]["message"];
    assert_eq!(
        message,
        "Incorrect API key provided: [redacted] (also [redacted])"
    );
}
