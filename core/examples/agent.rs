//! An agent's request loop over the call driver (SPEC §7): start a call, do what each action
//! says, report what it produced. Every rule (retry, rotate, refresh, fall back, wait, give
//! up) is core's; the loop only sends, sleeps and refreshes.
//!
//! Three OpenRouter credentials against a scripted provider: a rate-limited key, a key out of
//! credit, and an OAuth login whose access token is refused once; then a wait for a key, and a
//! bad request (400) no key can fix.
//!
//! Run: `cargo run -p credpool-core --example agent`

use std::collections::BTreeMap;

use credpool_core::{
    Action, AuthType, Body, CallReport, CallStart, EntryId, Headers, Millis, NewEntry, Options,
    PoolKey, RefreshOutcome, Registry, Response, Secret,
};

fn main() -> Result<(), credpool_core::Error> {
    let mut registry = Registry::new(Options {
        writer: "example".into(),
        seed: 7,
    })?;
    let pool = PoolKey::parse("openrouter")?;
    for (id, token, refresh) in [
        ("key-a", "sk-or-demo-a", None),
        ("key-b", "sk-or-demo-b", None),
        ("login", "oauth-access-1", Some("oauth-refresh-1")),
    ] {
        let entry = NewEntry {
            id: Some(EntryId::parse(id)?),
            label: Some(id.into()),
            auth_type: refresh.map(|_| AuthType::Oauth),
            access_token: Some(Secret::new(token)),
            refresh_token: refresh.map(Secret::new),
            ..NewEntry::default()
        };
        registry.add_entry(Millis(0), &pool, entry)?;
    }
    let mut provider = ScriptedProvider::new();
    let mut now = Millis(1_000);
    for request in 1..=4 {
        println!("request {request}:");
        let start = CallStart::new(pool.clone());
        let mut action = registry.start_call(now, &start)?;
        loop {
            println!("  t={:>6} ms  {}", now.0, describe(&action));
            action = match action {
                Action::Send {
                    call_id,
                    access_token,
                    ..
                } => {
                    let response = provider.send(access_token.as_ref());
                    now = now.plus(250); // the provider's latency
                    println!("  t={:>6} ms  HTTP {}", now.0, response.status.unwrap_or(0));
                    let report = CallReport {
                        call_id,
                        response,
                        delivered: false,
                    };
                    registry.call_report(now, &report)?
                }
                Action::Sleep { call_id, until, .. } => {
                    now = until; // a real agent sleeps here
                    registry.call_resume(now, call_id)?
                }
                Action::Refresh {
                    call_id,
                    pool,
                    entry_id,
                    ..
                } => {
                    let credential = registry.credential(&pool, &entry_id)?;
                    let outcome = provider.refresh(credential.refresh_token.as_ref());
                    registry.call_refreshed(now, call_id, &outcome)?
                }
                // `done`: hand the response to the caller; `give_up`: raise its cause.
                _ => break,
            };
        }
        now = now.plus(1_000);
    }
    for status in registry.status(now, Some(&pool))? {
        for entry in status.entries {
            println!(
                "{} #{} {:<6} {}",
                status.pool, entry.index, entry.label, entry.text
            );
        }
    }
    Ok(())
}

/// The action as JSON, without the credential a `send` carries.
fn describe(action: &Action) -> String {
    let mut value = serde_json::to_value(action).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("access_token");
    }
    value.to_string()
}

/// Answers each credential from its script, then 200; refreshes the OAuth login once.
struct ScriptedProvider {
    script: BTreeMap<&'static str, Vec<Response>>,
}

impl ScriptedProvider {
    fn new() -> Self {
        let rate_limited = |seconds: &str| Response {
            status: Some(429),
            headers: Headers::from_iter([("retry-after", seconds)]),
            body: Some(Body::Text(
                r#"{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached"}}"#.into(),
            )),
            ..Response::default()
        };
        let status = |code| Response {
            status: Some(code),
            ..Response::default()
        };
        Self {
            script: BTreeMap::from([
                (
                    "sk-or-demo-a",
                    vec![
                        rate_limited("20"),
                        rate_limited("20"),
                        status(200),
                        status(400),
                    ],
                ),
                ("sk-or-demo-b", vec![status(402)]),
                ("oauth-access-1", vec![status(401)]),
                (
                    "oauth-access-2",
                    vec![status(200), status(200), rate_limited("3600")],
                ),
            ]),
        }
    }

    fn send(&mut self, credential: Option<&Secret>) -> Response {
        let script = self.script.get_mut(credential.map_or("", Secret::expose));
        match script {
            Some(answers) if !answers.is_empty() => answers.remove(0),
            _ => Response {
                status: Some(200),
                ..Response::default()
            },
        }
    }

    fn refresh(&mut self, refresh_token: Option<&Secret>) -> RefreshOutcome {
        if refresh_token.map(Secret::expose) == Some("oauth-refresh-1") {
            return RefreshOutcome::Refreshed {
                access_token: Secret::new("oauth-access-2"),
                refresh_token: Some(Secret::new("oauth-refresh-2")),
                expires_at: None,
            };
        }
        RefreshOutcome::Failed {
            terminal: true,
            reason: Some("invalid_grant".into()),
            message: None,
        }
    }
}
