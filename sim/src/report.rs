//! The comparison table (plain text) and its `--json` form.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::agent::{MarkKind, Metrics, RowResult};
use crate::scenario::{Scenario, strategy_name};

/// Column headers of the table, in order.
pub const COLUMNS: [&str; 11] = [
    "policy",
    "strategy",
    "store",
    "served",
    "failed",
    "429s",
    "wait s",
    "rotations",
    "refreshes",
    "fallbacks",
    "replays",
];

fn cells(row: &RowResult) -> Vec<String> {
    let m = &row.metrics;
    vec![
        row.spec.policy_name.clone(),
        strategy_name(row.spec.strategy),
        if row.spec.shared { "shared" } else { "none" }.to_owned(),
        m.served.to_string(),
        m.failed.to_string(),
        m.rate_limited.to_string(),
        wait_text(m.wait_ms),
        m.rotations.to_string(),
        m.refreshes.to_string(),
        m.fallbacks.to_string(),
        m.replays.to_string(),
    ]
}

fn wait_text(ms: u64) -> String {
    format!("{}.{}", ms / 1_000, (ms % 1_000) / 100)
}

/// The plain-text report: header, aligned table, the best row per column, a legend.
pub fn text(scenario: &Scenario, seed: u64, rows: &[RowResult]) -> String {
    let mut out = String::new();
    let keys: usize = scenario.pools.iter().map(|p| p.keys.len()).sum();
    let _ = writeln!(
        out,
        "scenario `{}`: {} requests from {} agent{} at {}/min, {} pool{} with {} keys (seed {seed})",
        scenario.name,
        scenario.requests,
        scenario.agents,
        if scenario.agents == 1 { "" } else { "s" },
        scenario.rate_per_min,
        scenario.pools.len(),
        if scenario.pools.len() == 1 { "" } else { "s" },
        keys,
    );
    out.push('\n');
    let table: Vec<Vec<String>> = rows.iter().map(cells).collect();
    write_table(&mut out, &COLUMNS, &table, None, 3);
    out.push('\n');
    let best = |name: &str, value: fn(&Metrics) -> u64, more_is_better: bool| {
        let shared = rows.iter().filter(|r| r.spec.shared);
        let pick = if more_is_better {
            shared.map(|r| value(&r.metrics)).max()
        } else {
            shared.map(|r| value(&r.metrics)).min()
        };
        let Some(target) = pick else {
            return String::new();
        };
        let winners: Vec<String> = rows
            .iter()
            .filter(|r| r.spec.shared && value(&r.metrics) == target)
            .map(|r| format!("{}/{}", r.spec.policy_name, strategy_name(r.spec.strategy)))
            .collect();
        format!("  {name:<8} {}\n", winners.join(", "))
    };
    out.push_str("best (shared store):\n");
    out.push_str(&best("served", |m| m.served, true));
    out.push_str(&best("failed", |m| m.failed, false));
    out.push_str(&best("429s", |m| m.rate_limited, false));
    out.push_str(&best("wait s", |m| m.wait_ms, false));
    out.push('\n');
    out.push_str(
        "served/failed: requests; 429s: 429 answers received; wait s: simulated seconds spent in \
         retry delays and waits;\nrotations: switches to another key after a failure; refreshes: \
         OAuth refresh calls; fallbacks: moves to the fallback chain;\nreplays: spent refresh \
         tokens presented again (each one revokes the login); store none: every agent keeps its \
         own state.\n",
    );
    out
}

/// The `--json` report.
pub fn json(scenario: &Scenario, seed: u64, rows: &[RowResult]) -> Value {
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let m = &r.metrics;
            json!({
                "policy": r.spec.policy_name,
                "strategy": strategy_name(r.spec.strategy),
                "store": if r.spec.shared { "shared" } else { "none" },
                "served": m.served,
                "failed": m.failed,
                "rate_limited": m.rate_limited,
                "wait_s": m.wait_ms as f64 / 1_000.0,
                "rotations": m.rotations,
                "refreshes": m.refreshes,
                "fallbacks": m.fallbacks,
                "replays": m.replays,
                "failures": m.failures,
            })
        })
        .collect();
    json!({
        "scenario": scenario.name,
        "description": scenario.description,
        "seed": seed,
        "requests": scenario.requests,
        "agents": scenario.agents,
        "rows": rows,
    })
}

/// The outcome name of a provider call on the timeline.
pub fn outcome_name(kind: MarkKind) -> &'static str {
    match kind {
        MarkKind::Served => "served",
        MarkKind::RateLimited => "rate_limited",
        MarkKind::Auth => "auth",
        MarkKind::ServerError => "server_error",
    }
}

/// The timeline of every row as data (what the SVG draws): keys in lane order, and per
/// row every provider call, every bench (cooldown or dead) and every fallback. Times are
/// ms after `start_ms` (epoch ms of the scenario start).
pub fn timeline_json(scenario: &Scenario, rows: &[RowResult]) -> Value {
    let start = scenario.start_epoch_s.saturating_mul(1_000);
    let end = rows
        .iter()
        .map(|r| r.timeline.end.0)
        .max()
        .unwrap_or(start)
        .max(start);
    let keys: Vec<Value> = crate::agent::keys(scenario)
        .into_iter()
        .map(|(pool, key)| json!({ "pool": pool, "key": key }))
        .collect();
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let t = &r.timeline;
            let requests: Vec<Value> = t
                .marks
                .iter()
                .map(|m| {
                    json!({
                        "t_ms": m.at.0.saturating_sub(start),
                        "key": m.key,
                        "agent": m.agent,
                        "outcome": outcome_name(m.kind),
                    })
                })
                .collect();
            let cooldowns: Vec<Value> = t
                .windows
                .iter()
                .map(|w| {
                    json!({
                        "key": w.key,
                        "from_ms": w.from.0.saturating_sub(start),
                        "until_ms": w.until.map(|u| u.0.saturating_sub(start)),
                        "dead": w.until.is_none(),
                    })
                })
                .collect();
            let fallbacks: Vec<Value> = t
                .fallbacks
                .iter()
                .map(|f| {
                    json!({
                        "t_ms": f.at.0.saturating_sub(start),
                        "from": f.from,
                        "to": f.to,
                    })
                })
                .collect();
            json!({
                "policy": r.spec.policy_name,
                "strategy": strategy_name(r.spec.strategy),
                "store": if r.spec.shared { "shared" } else { "none" },
                "end_ms": t.end.0.saturating_sub(start),
                "requests": requests,
                "cooldowns": cooldowns,
                "fallbacks": fallbacks,
            })
        })
        .collect();
    json!({
        "start_ms": start,
        "end_ms": end.saturating_sub(start),
        "agents": scenario.agents,
        "keys": keys,
        "rows": rows,
    })
}

/// Everything a preview shows, in one value: the `--json` report (`scenario`,
/// `description`, `seed`, `requests`, `agents`, `rows`), plus `timeline`
/// ([`timeline_json`]) and `svg` (the `--svg` document).
pub fn preview(scenario: &Scenario, seed: u64) -> Result<Value, credpool_core::Error> {
    let rows = crate::simulate(scenario, seed)?;
    let mut value = json(scenario, seed, &rows);
    if let Value::Object(map) = &mut value {
        map.insert("timeline".into(), timeline_json(scenario, &rows));
        map.insert(
            "svg".into(),
            Value::String(crate::svg::render(scenario, seed, &rows)),
        );
    }
    Ok(value)
}

/// Writes `rows` under `header` as aligned columns (the first `left` left-aligned, the
/// others right-aligned) and a rule, then, when given, another rule and a `total` row.
pub(crate) fn write_table(
    out: &mut String,
    header: &[&str],
    rows: &[Vec<String>],
    total: Option<&[String]>,
    left: usize,
) {
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let all = || {
        rows.iter()
            .map(Vec::as_slice)
            .chain(total)
            .chain([header.as_slice()])
    };
    let widths: Vec<usize> = (0..header.len())
        .map(|i| all().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String], out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < left {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&header, out);
    line(&rule, out);
    for row in rows {
        line(row, out);
    }
    if let Some(total) = total {
        line(&rule, out);
        line(total, out);
    }
}
