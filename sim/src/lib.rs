//! `credpool-sim`: the engine of `credpool simulate`, pure enough for wasm.
//!
//! A scenario ([`Scenario`]) describes pools of simulated keys (RPM windows, daily quotas,
//! revocation, OAuth logins with rotating single-use refresh tokens, 5xx bursts, fallback
//! chains) and a workload. Every matrix row (policy × strategy, shared store or not) runs
//! the real engine (`credpool-core`) against the simulated provider ([`provider`]) in
//! simulated time: nothing sleeps, reads a clock, touches a file or spawns a thread.
//!
//! Each request is one call of core's call driver (SPEC §7): the agent is a thin loop that
//! does what each action says and reports back, so every rule the table measures is core's.
//! The agents of a shared row each keep their own `Registry` and follow the file store's
//! protocol against one in-memory state document: before every input they merge in what
//! the others wrote (core `sync`), after every change they write their export back, and a
//! refresh is single-flight (`check_refresh` against the merged document first). Same
//! scenario and seed, same results, byte for byte, on every target.

pub mod agent;
pub mod provider;
pub mod report;
pub mod scenario;
pub mod svg;
pub mod sweep;

pub use agent::{
    Arrival, FallbackMark, Mark, MarkKind, Metrics, RowResult, RowSpec, Timeline, Window, run_row,
    workload,
};
pub use scenario::{
    DEFAULT_SCENARIO, PRESETS, PREVIEW_SCENARIO, SMALL_SCENARIO, Scenario, policy_from,
    preset_text, strategy_name,
};
pub use sweep::{SWEEP_RANGES, Sweep, SweepRanges, Variation};

/// Rows: every policy × strategy with a shared store, then (optionally) every policy with
/// the first strategy and no store.
pub fn matrix(scenario: &Scenario) -> Result<Vec<RowSpec>, String> {
    let mut rows = Vec::new();
    let policies: Vec<_> = scenario
        .policies
        .iter()
        .map(policy_from)
        .collect::<Result<_, _>>()?;
    for (name, policy) in &policies {
        for strategy in &scenario.strategies {
            rows.push(RowSpec {
                policy_name: name.clone(),
                policy: policy.clone(),
                strategy: *strategy,
                shared: true,
            });
        }
    }
    if scenario.isolated_baseline {
        for (name, policy) in &policies {
            rows.push(RowSpec {
                policy_name: name.clone(),
                policy: policy.clone(),
                strategy: scenario.strategies[0],
                shared: false,
            });
        }
    }
    Ok(rows)
}

/// Runs every row of the scenario's matrix, one after the other (each row is
/// deterministic on its own, so a host may as well run [`run_row`] in parallel).
pub fn simulate(scenario: &Scenario, seed: u64) -> Result<Vec<RowResult>, credpool_core::Error> {
    let rows = matrix(scenario)
        .map_err(|e| credpool_core::Error::new(credpool_core::ErrorCode::InvalidInput, e))?;
    let arrivals = workload(scenario, seed);
    rows.iter()
        .map(|spec| run_row(scenario, &arrivals, spec, seed, &|| {}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_results_other_seed_other_numbers() {
        let scenario = Scenario::small();
        let a = simulate(&scenario, 7).unwrap_or_else(|e| panic!("{e}"));
        let b = simulate(&scenario, 7).unwrap_or_else(|e| panic!("{e}"));
        let c = simulate(&scenario, 8).unwrap_or_else(|e| panic!("{e}"));
        let json = |rows: &[RowResult]| report::json(&scenario, 0, rows).to_string();
        assert_eq!(json(&a), json(&b));
        assert_eq!(svg::render(&scenario, 7, &a), svg::render(&scenario, 7, &b));
        assert_eq!(
            report::timeline_json(&scenario, &a),
            report::timeline_json(&scenario, &b)
        );
        assert_ne!(json(&a), json(&c));
        assert_eq!(a.len(), 6);
    }

    #[test]
    fn rows_add_up_and_shared_stores_never_replay() {
        let scenario = Scenario::small();
        let rows = simulate(&scenario, 1).unwrap_or_else(|e| panic!("{e}"));
        for row in &rows {
            let m = &row.metrics;
            assert_eq!(m.served + m.failed, u64::from(scenario.requests), "{m:?}");
            assert_eq!(m.failures.values().sum::<u64>(), m.failed, "{m:?}");
            if row.spec.shared {
                assert_eq!(m.replays, 0, "{m:?}");
            }
            let served = row
                .timeline
                .marks
                .iter()
                .filter(|k| k.kind == MarkKind::Served)
                .count() as u64;
            assert_eq!(served, m.served);
            assert_eq!(row.timeline.fallbacks.len() as u64, m.fallbacks);
        }
    }

    #[test]
    fn the_preview_preset_shows_every_incident() {
        let scenario = Scenario::preset("preview").unwrap_or_else(|| panic!("preset"));
        let rows = simulate(&scenario, 1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(rows.len(), 4);
        for row in &rows {
            let t = &row.timeline;
            assert!(row.metrics.fallbacks > 0, "{:?}", row.metrics);
            assert!(row.metrics.refreshes > 0, "{:?}", row.metrics);
            assert!(t.windows.iter().any(|w| w.until.is_none()), "a key dies");
            assert!(
                t.windows.iter().any(|w| w.until.is_some()),
                "a key cools down"
            );
            for kind in [MarkKind::RateLimited, MarkKind::Auth, MarkKind::ServerError] {
                assert!(t.marks.iter().any(|m| m.kind == kind), "{kind:?}");
            }
        }
        assert!(rows.iter().any(|r| !r.spec.shared && r.metrics.replays > 0));
    }

    #[test]
    fn the_scenario_budgets_reach_the_driver() {
        // One key at 1 rpm, a request every 2 s: every request after the first meets a 429
        // whose retry-after is longer than the single wait the scenario accepts.
        let text = |budgets: &str| {
            format!(
                r#"{{"name": "budgets", "start_epoch_s": 1767268800, "agents": 1, "requests": 4,
                    "rate_per_min": 30, "policies": ["hermes"], "strategies": ["fill_first"],
                    {budgets}
                    "pools": [{{"pool": "openai", "weight": 1, "keys": [{{"id": "a", "rpm": 1}}]}}]}}"#
            )
        };
        let run = |budgets: &str| {
            let scenario = Scenario::parse(&text(budgets)).unwrap_or_else(|e| panic!("{e}"));
            let rows = simulate(&scenario, 1).unwrap_or_else(|e| panic!("{e}"));
            rows[0].metrics.clone()
        };
        let capped = run(r#""max_wait_ms": 1000,"#);
        assert_eq!(capped.served, 1, "{capped:?}");
        assert_eq!(capped.failures.get("rate_limit (max_wait_ms)"), Some(&3));
        assert_eq!(capped.wait_ms, 0, "no sleep beyond the cap: {capped:?}");
        let one_send = run(r#""max_sends": 1,"#);
        assert_eq!(one_send.failures.get("rate_limit (max_sends)"), Some(&3));
        assert_eq!(one_send.rate_limited, 3, "one send each: {one_send:?}");
        for bad in [r#""max_sends": 0,"#, r#""max_attempts": 12,"#] {
            assert!(Scenario::parse(&text(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_preview_has_rows_timeline_and_svg() {
        let scenario = Scenario::small();
        let preview = report::preview(&scenario, 1).unwrap_or_else(|e| panic!("{e}"));
        let rows = preview["rows"].as_array().map_or(0, Vec::len);
        assert_eq!(rows, 6);
        assert_eq!(
            preview["timeline"]["rows"].as_array().map_or(0, Vec::len),
            rows
        );
        assert!(
            preview["svg"]
                .as_str()
                .is_some_and(|s| s.starts_with("<svg"))
        );
    }
}
