//! An agent with three OpenRouter keys against a scripted provider, printing every decision.
//!
//! Run: `cargo run -p credpool-core --example agent`

use std::collections::BTreeMap;

use credpool_core::{
    AcquireRequest, Body, Decision, Headers, Millis, NewEntry, Options, PoolKey, Registry, Report,
    Response, Secret,
};

/// What the scripted provider answers for each key, in order; then 200 forever.
fn scripted_provider() -> BTreeMap<&'static str, Vec<Response>> {
    let rate_limited = Response {
        status: Some(429),
        headers: Headers::from_iter([("retry-after", "20")]),
        body: Some(Body::Text(
            r#"{"error":{"code":"rate_limit_exceeded","message":"Rate limit reached"}}"#.into(),
        )),
        ..Response::default()
    };
    let out_of_credit = Response {
        status: Some(402),
        ..Response::default()
    };
    BTreeMap::from([
        ("key-a", vec![rate_limited.clone(), rate_limited]),
        ("key-b", vec![out_of_credit]),
        ("key-c", vec![]),
    ])
}

fn main() -> Result<(), credpool_core::Error> {
    let mut registry = Registry::new(Options {
        writer: "example".into(),
        seed: 7,
    })?;
    let pool = PoolKey::parse("openrouter")?;
    let mut script = BTreeMap::new();
    for (label, responses) in scripted_provider() {
        let entry = NewEntry {
            label: Some(label.into()),
            access_token: Some(Secret::new(format!("sk-or-demo-{label}"))),
            ..NewEntry::default()
        };
        let id = registry.add_entry(Millis(0), &pool, entry)?;
        script.insert(id, (label, responses.into_iter()));
    }
    let mut now = Millis(1_000);
    for request in 1..=4 {
        println!("request {request}:");
        let acquire = AcquireRequest {
            pool: pool.clone(),
            model: None,
            session: None,
        };
        let mut decision = registry.acquire(now, &acquire)?;
        loop {
            println!("  t={:>6} ms  {}", now.0, describe(&decision));
            let (entry_id, lease_id) = match &decision {
                Decision::Use {
                    entry_id, lease_id, ..
                } => (entry_id.clone(), *lease_id),
                Decision::RetrySame {
                    entry_id,
                    lease_id,
                    delay_ms,
                    ..
                } => {
                    now = now.plus(*delay_ms);
                    (entry_id.clone(), *lease_id)
                }
                _ => break,
            };
            let (label, responses) = script.get_mut(&entry_id).expect("scripted key");
            let response = responses.next().unwrap_or(Response {
                status: Some(200),
                ..Response::default()
            });
            println!(
                "  t={:>6} ms  {label} -> HTTP {}",
                now.0,
                response.status.unwrap_or(0)
            );
            now = now.plus(250);
            let report = Report {
                pool: pool.clone(),
                lease_id: Some(lease_id),
                entry_id: None,
                response,
            };
            decision = registry.report(now, &report)?;
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

fn describe(decision: &Decision) -> String {
    serde_json::to_string(decision).unwrap_or_else(|e| format!("<{e}>"))
}
