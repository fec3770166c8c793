//! Seeded variations of a scenario (`credpool simulate --sweep N`) and the comparison of its
//! two policies over them, pair by pair: the same variation, workload seed, strategy and
//! store for both, so every difference is the policy's.
//!
//! The ranges are `sim/scenarios/sweep.json` ([`SWEEP_RANGES`]). Variation 0 is the scenario
//! itself with the run's seed; variation `i` draws its values from a [`Rng`] seeded with the
//! run's seed and `i` (never a global RNG), so the same seed gives the same variations on
//! every target.

use std::fmt::Write as _;

use credpool_core::{Rng, Strategy};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::agent::{Metrics, RowResult};
use crate::scenario::{Scenario, policy_from, strategy_name};

/// The built-in sweep ranges (`sim/scenarios/sweep.json`).
pub const SWEEP_RANGES: &str = include_str!("../scenarios/sweep.json");

/// Most variations a sweep may ask for.
pub const MAX_VARIATIONS: u32 = 1_000;

/// What a sweep varies, each value drawn uniformly within an inclusive `[min, max]` range
/// (or from a list). The file documents the meaning of each field.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepRanges {
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Requests in the workload.
    pub requests: [u64; 2],
    /// Agent processes.
    pub agents: [u64; 2],
    /// Mean arrival rate, per minute.
    pub rate_per_min: [u64; 2],
    /// Keys removed from the end of each pool (negative; at least one stays) or plain keys
    /// added to it (positive, with the rpm of the pool's first key).
    pub key_count_change: [i64; 2],
    /// The reset hint of an added key, one of these.
    pub added_key_hints: Vec<String>,
    /// Each key's rpm, scaled by this percentage (at least 1).
    pub rpm_percent: [u64; 2],
    /// Requests left of a key's daily quota when the scenario starts.
    pub daily_quota_left: [u64; 2],
    /// When a revoked key is revoked, in percent of the workload's span.
    pub revoked_at_percent: [u64; 2],
    /// Lifetime of an OAuth key's first access token, seconds.
    pub oauth_first_expiry_s: [u64; 2],
    /// 5xx bursts of each pool that receives requests (they replace the scenario's).
    pub outages_per_pool: [u64; 2],
    /// Start of a burst, in percent of the workload's span.
    pub outage_from_percent: [u64; 2],
    /// Length of a burst, seconds.
    pub outage_length_s: [u64; 2],
    /// Status of a burst, one of these (an `anthropic`-flavoured pool answers 529).
    pub outage_statuses: Vec<u16>,
}

impl SweepRanges {
    /// The built-in ranges.
    pub fn builtin() -> Self {
        // The embedded file is checked by a unit test; a broken one is a build bug.
        Self::parse(SWEEP_RANGES).unwrap_or_else(|e| panic!("sweep ranges: {e}"))
    }

    /// Parses and checks ranges; the error is one line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let ranges: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let unsigned = [
            ("requests", ranges.requests),
            ("agents", ranges.agents),
            ("rate_per_min", ranges.rate_per_min),
            ("rpm_percent", ranges.rpm_percent),
            ("daily_quota_left", ranges.daily_quota_left),
            ("revoked_at_percent", ranges.revoked_at_percent),
            ("oauth_first_expiry_s", ranges.oauth_first_expiry_s),
            ("outages_per_pool", ranges.outages_per_pool),
            ("outage_from_percent", ranges.outage_from_percent),
            ("outage_length_s", ranges.outage_length_s),
        ];
        for (name, [lo, hi]) in unsigned {
            if lo > hi {
                return Err(format!("`{name}` must be [min, max] with min <= max"));
            }
        }
        if ranges.key_count_change[0] > ranges.key_count_change[1] {
            return Err("`key_count_change` must be [min, max] with min <= max".into());
        }
        if ranges.added_key_hints.is_empty() || ranges.outage_statuses.is_empty() {
            return Err("`added_key_hints` and `outage_statuses` must not be empty".into());
        }
        Ok(ranges)
    }
}

/// One scenario of a sweep and the workload seed it runs with.
#[derive(Clone, Debug)]
pub struct Variation {
    /// 0: the scenario itself; 1..: drawn.
    pub index: u32,
    /// The seed of its workload and agents.
    pub seed: u64,
    /// The scenario.
    pub scenario: Scenario,
    /// The scenario as JSON (a `--scenario` file of its own, to rerun it alone).
    pub json: Value,
}

/// Variation `index` of the scenario `base` (its JSON) for the run's `seed`.
pub fn variation(
    base: &Value,
    ranges: &SweepRanges,
    seed: u64,
    index: u32,
) -> Result<Variation, String> {
    if index == 0 {
        let scenario = Scenario::from_value(base.clone())?;
        return Ok(Variation {
            index,
            seed,
            scenario,
            json: base.clone(),
        });
    }
    let mut rng = Rng::new(
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ u64::from(index).wrapping_mul(0xD1B5_4A32_D192_ED03),
    );
    let run_seed = rng.below(1 << 32);
    let mut value = base.clone();
    let Value::Object(scenario) = &mut value else {
        return Err("a scenario is an object".into());
    };
    let name = scenario
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("scenario");
    let name = format!("{name}~{index}");
    let requests = draw(&mut rng, ranges.requests);
    let agents = draw(&mut rng, ranges.agents);
    let rate = draw(&mut rng, ranges.rate_per_min).max(1);
    let span_s = requests * 60 / rate;
    scenario.insert("name".into(), name.into());
    scenario.insert("requests".into(), requests.into());
    scenario.insert("agents".into(), agents.into());
    scenario.insert("rate_per_min".into(), rate.into());
    let Some(Value::Array(pools)) = scenario.get_mut("pools") else {
        return Err("a scenario needs `pools`".into());
    };
    for pool in pools {
        vary_pool(pool, ranges, span_s, &mut rng);
    }
    let scenario = Scenario::from_value(value.clone())?;
    Ok(Variation {
        index,
        seed: run_seed,
        scenario,
        json: value,
    })
}

/// Draws one pool's keys, limits and bursts (in a fixed order: the same seed, the same pool).
fn vary_pool(pool: &mut Value, ranges: &SweepRanges, span_s: u64, rng: &mut Rng) {
    let Value::Object(pool) = pool else { return };
    let name = pool.get("pool").and_then(Value::as_str).unwrap_or("pool");
    let id_stem = name.replace(':', "-");
    let receives = pool.get("weight").and_then(Value::as_u64).unwrap_or(0) > 0;
    let change = draw_signed(rng, ranges.key_count_change);
    if let Some(Value::Array(keys)) = pool.get_mut("keys") {
        if change < 0 {
            let keep = keys
                .len()
                .saturating_sub(change.unsigned_abs() as usize)
                .max(1);
            keys.truncate(keep);
        }
        let rpm = keys.first().and_then(|k| k.get("rpm")).cloned();
        for n in 1..=change.max(0) {
            let hint = pick(rng, &ranges.added_key_hints).clone();
            let mut key = json!({ "id": format!("{id_stem}-extra-{n}"), "hint": hint });
            if let (Some(rpm), Value::Object(fields)) = (&rpm, &mut key) {
                fields.insert("rpm".into(), rpm.clone());
            }
            keys.push(key);
        }
        for key in keys.iter_mut() {
            vary_key(key, ranges, span_s, rng);
        }
    }
    if receives {
        let count = draw(rng, ranges.outages_per_pool);
        let outages: Vec<Value> = (0..count)
            .map(|_| {
                let from = span_s * draw(rng, ranges.outage_from_percent) / 100;
                let length = draw(rng, ranges.outage_length_s).max(1);
                let status = *pick(rng, &ranges.outage_statuses);
                json!({ "from_s": from, "to_s": from + length, "status": status })
            })
            .collect();
        pool.insert("outages".into(), outages.into());
    }
}

/// Draws one key's rpm, quota left, revocation and first token lifetime (where it has them).
fn vary_key(key: &mut Value, ranges: &SweepRanges, span_s: u64, rng: &mut Rng) {
    let Value::Object(key) = key else { return };
    let percent = draw(rng, ranges.rpm_percent);
    if let Some(rpm) = key.get("rpm").and_then(Value::as_u64) {
        key.insert("rpm".into(), (rpm * percent / 100).max(1).into());
    }
    let left = draw(rng, ranges.daily_quota_left);
    if let Some(quota) = key.get("daily_quota").and_then(Value::as_u64) {
        key.insert("used_today".into(), (quota - left.min(quota)).into());
    }
    let revoked = span_s * draw(rng, ranges.revoked_at_percent) / 100;
    if key.get("revoked_at_s").is_some_and(|v| !v.is_null()) {
        key.insert("revoked_at_s".into(), revoked.into());
    }
    let first_expiry = draw(rng, ranges.oauth_first_expiry_s);
    if let Some(Value::Object(oauth)) = key.get_mut("oauth") {
        oauth.insert("first_expiry_s".into(), first_expiry.into());
    }
}

fn draw(rng: &mut Rng, [lo, hi]: [u64; 2]) -> u64 {
    lo + rng.below((hi - lo).saturating_add(1))
}

fn draw_signed(rng: &mut Rng, [lo, hi]: [i64; 2]) -> i64 {
    let width = hi.abs_diff(lo);
    lo.saturating_add_unsigned(rng.below(width.saturating_add(1)))
}

fn pick<'a, T>(rng: &mut Rng, list: &'a [T]) -> &'a T {
    &list[rng.below(list.len() as u64) as usize]
}

/// One strategy and store, run with both policies.
#[derive(Clone, Debug)]
pub struct Pair {
    /// The strategy.
    pub strategy: Strategy,
    /// Shared store (false: every agent its own).
    pub shared: bool,
    /// The first policy's numbers.
    pub baseline: Metrics,
    /// The second policy's numbers.
    pub challenger: Metrics,
}

impl Pair {
    /// The challenger serves at least as many, fails no more, and receives no more 429s and
    /// waits no longer than the baseline.
    pub fn holds(&self) -> bool {
        self.lost().is_empty()
    }

    /// The columns the challenger lost, e.g. `failed 3 > 2`.
    pub fn lost(&self) -> Vec<String> {
        let (b, c) = (&self.baseline, &self.challenger);
        let mut lost = Vec::new();
        if c.served < b.served {
            lost.push(format!("served {} < {}", c.served, b.served));
        }
        if c.failed > b.failed {
            lost.push(format!("failed {} > {}", c.failed, b.failed));
        }
        if c.rate_limited > b.rate_limited {
            lost.push(format!("429s {} > {}", c.rate_limited, b.rate_limited));
        }
        if c.wait_ms > b.wait_ms {
            lost.push(format!(
                "wait s {} > {}",
                seconds(c.wait_ms),
                seconds(b.wait_ms)
            ));
        }
        lost
    }
}

/// A variation's pairs.
#[derive(Clone, Debug)]
pub struct VariationResult {
    /// The variation.
    pub variation: Variation,
    /// One per strategy and store, in matrix order.
    pub pairs: Vec<Pair>,
}

/// The two policies a sweep compares: the scenario's first (baseline) and second
/// (challenger); a sweep needs exactly two.
pub fn compared_policies(scenario: &Scenario) -> Result<(String, String), String> {
    match scenario.policies.as_slice() {
        [baseline, challenger] => Ok((policy_from(baseline)?.0, policy_from(challenger)?.0)),
        _ => Err("a sweep compares exactly two policies (the scenario's `policies`)".into()),
    }
}

/// Pairs a variation's rows: the same strategy and store under both policies.
pub fn pair_rows(variation: Variation, rows: &[RowResult]) -> Result<VariationResult, String> {
    let (baseline, challenger) = compared_policies(&variation.scenario)?;
    let find = |name: &str, strategy: Strategy, shared: bool| {
        rows.iter()
            .find(|r| {
                r.spec.policy_name == name && r.spec.strategy == strategy && r.spec.shared == shared
            })
            .map(|r| r.metrics.clone())
    };
    let pairs = rows
        .iter()
        .filter(|r| r.spec.policy_name == baseline)
        .map(|r| {
            let (strategy, shared) = (r.spec.strategy, r.spec.shared);
            let other = find(&challenger, strategy, shared)
                .ok_or_else(|| format!("no `{challenger}` row for {strategy:?}"))?;
            Ok(Pair {
                strategy,
                shared,
                baseline: r.metrics.clone(),
                challenger: other,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(VariationResult { variation, pairs })
}

/// A whole sweep.
#[derive(Clone, Debug)]
pub struct Sweep {
    /// The run's seed.
    pub seed: u64,
    /// Name of the first policy.
    pub baseline: String,
    /// Name of the second policy.
    pub challenger: String,
    /// Variation 0 (the scenario) first.
    pub variations: Vec<VariationResult>,
}

/// Sums of one policy's columns over pairs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Served requests.
    pub served: u64,
    /// Failed requests.
    pub failed: u64,
    /// 429 answers.
    pub rate_limited: u64,
    /// Simulated ms in waits.
    pub wait_ms: u64,
}

impl Totals {
    fn add(&mut self, m: &Metrics) {
        self.served += m.served;
        self.failed += m.failed;
        self.rate_limited += m.rate_limited;
        self.wait_ms += m.wait_ms;
    }
}

fn totals<'a>(pairs: impl Iterator<Item = &'a Pair>) -> (Totals, Totals) {
    let (mut b, mut c) = (Totals::default(), Totals::default());
    for pair in pairs {
        b.add(&pair.baseline);
        c.add(&pair.challenger);
    }
    (b, c)
}

impl Sweep {
    /// Sums over every pair of every variation: (baseline, challenger).
    pub fn totals(&self) -> (Totals, Totals) {
        totals(self.variations.iter().flat_map(|v| v.pairs.iter()))
    }

    /// Every pair held, and the challenger's 429s and wait are strictly lower in the sums.
    pub fn challenger_wins(&self) -> bool {
        let (b, c) = self.totals();
        self.variations
            .iter()
            .all(|v| v.pairs.iter().all(Pair::holds))
            && c.rate_limited < b.rate_limited
            && c.wait_ms < b.wait_ms
    }

    /// The plain-text summary: a row per variation (its pairs summed), the sums, the verdict
    /// and every pair the challenger lost.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let (bn, cn) = (&self.baseline, &self.challenger);
        let Some(first) = self.variations.first() else {
            return out;
        };
        let pairs_per = first.pairs.len();
        let _ = writeln!(
            out,
            "sweep of scenario `{}` (seed {}): the scenario and {} seeded variation{} \
             (ranges: sim/scenarios/sweep.json)",
            first.variation.scenario.name,
            self.seed,
            self.variations.len() - 1,
            if self.variations.len() == 2 { "" } else { "s" },
        );
        let _ = writeln!(
            out,
            "each row sums its {pairs_per} pairs: {bn} vs {cn} on the same workload, strategy and \
             store; cells are {bn}/{cn}\n"
        );
        let header = [
            "var",
            "seed",
            "requests",
            "agents",
            "rate",
            "keys",
            "outages",
            "served",
            "failed",
            "429s",
            "wait s",
            "pairs held",
        ];
        let mut table: Vec<Vec<String>> = Vec::new();
        let cells = |b: &Totals, c: &Totals| {
            vec![
                format!("{}/{}", b.served, c.served),
                format!("{}/{}", b.failed, c.failed),
                format!("{}/{}", b.rate_limited, c.rate_limited),
                format!("{}/{}", seconds(b.wait_ms), seconds(c.wait_ms)),
            ]
        };
        for v in &self.variations {
            let s = &v.variation.scenario;
            let (b, c) = totals(v.pairs.iter());
            let held = v.pairs.iter().filter(|p| p.holds()).count();
            let mut row = vec![
                v.variation.index.to_string(),
                v.variation.seed.to_string(),
                s.requests.to_string(),
                s.agents.to_string(),
                s.rate_per_min.to_string(),
                s.pools
                    .iter()
                    .map(|p| p.keys.len())
                    .sum::<usize>()
                    .to_string(),
                s.pools
                    .iter()
                    .map(|p| p.outages.len())
                    .sum::<usize>()
                    .to_string(),
            ];
            row.extend(cells(&b, &c));
            row.push(format!("{held}/{}", v.pairs.len()));
            table.push(row);
        }
        let (b, c) = self.totals();
        let all: usize = self.variations.iter().map(|v| v.pairs.len()).sum();
        let held: usize = self
            .variations
            .iter()
            .map(|v| v.pairs.iter().filter(|p| p.holds()).count())
            .sum();
        let mut sum = vec!["sum".to_owned()];
        sum.extend(std::iter::repeat_n(String::new(), 6));
        sum.extend(cells(&b, &c));
        sum.push(format!("{held}/{all}"));
        crate::report::write_table(&mut out, &header, &table, Some(&sum), 0);
        out.push('\n');
        let _ = writeln!(
            out,
            "{cn} vs {bn}, pair by pair: served >= and failed <= and 429s <= and wait s <= in \
             {held} of {all} pairs; sums: 429s {} vs {}, wait s {} vs {}: {}",
            c.rate_limited,
            b.rate_limited,
            seconds(c.wait_ms),
            seconds(b.wait_ms),
            if self.challenger_wins() {
                format!("{cn} wins every column")
            } else {
                format!("{cn} does NOT win every column")
            }
        );
        for v in &self.variations {
            for p in v.pairs.iter().filter(|p| !p.holds()) {
                let _ = writeln!(
                    out,
                    "  lost: variation {} {}/{}: {}",
                    v.variation.index,
                    strategy_name(p.strategy),
                    if p.shared { "shared" } else { "none" },
                    p.lost().join(", ")
                );
            }
        }
        out
    }

    /// The `--json` form: every pair of every variation, with the variation's drawn scenario
    /// in brief, and the sums.
    pub fn json(&self) -> Value {
        let metrics = |m: &Metrics| {
            json!({
                "served": m.served,
                "failed": m.failed,
                "rate_limited": m.rate_limited,
                "wait_s": m.wait_ms as f64 / 1_000.0,
                "failures": m.failures,
            })
        };
        let total = |t: &Totals| {
            json!({
                "served": t.served,
                "failed": t.failed,
                "rate_limited": t.rate_limited,
                "wait_s": t.wait_ms as f64 / 1_000.0,
            })
        };
        let variations: Vec<Value> = self
            .variations
            .iter()
            .map(|v| {
                let s = &v.variation.scenario;
                let pools: Vec<Value> = s
                    .pools
                    .iter()
                    .map(|p| {
                        json!({
                            "pool": p.pool.as_str(),
                            "keys": p.keys.len(),
                            "outages": p.outages.iter()
                                .map(|o| json!([o.from_s, o.to_s, o.status]))
                                .collect::<Vec<_>>(),
                        })
                    })
                    .collect();
                let pairs: Vec<Value> = v
                    .pairs
                    .iter()
                    .map(|p| {
                        json!({
                            "strategy": strategy_name(p.strategy),
                            "store": if p.shared { "shared" } else { "none" },
                            "holds": p.holds(),
                            &self.baseline: metrics(&p.baseline),
                            &self.challenger: metrics(&p.challenger),
                        })
                    })
                    .collect();
                json!({
                    "index": v.variation.index,
                    "seed": v.variation.seed,
                    "requests": s.requests,
                    "agents": s.agents,
                    "rate_per_min": s.rate_per_min,
                    "pools": pools,
                    "pairs": pairs,
                    "scenario": v.variation.json,
                })
            })
            .collect();
        let (b, c) = self.totals();
        json!({
            "seed": self.seed,
            "baseline": self.baseline,
            "challenger": self.challenger,
            "challenger_wins": self.challenger_wins(),
            "sums": { &self.baseline: total(&b), &self.challenger: total(&c) },
            "variations": variations,
        })
    }
}

/// Runs a sweep of `count` variations (plus the scenario itself) one row after the other.
pub fn sweep(base: &Value, ranges: &SweepRanges, seed: u64, count: u32) -> Result<Sweep, String> {
    if count > MAX_VARIATIONS {
        return Err(format!("a sweep runs at most {MAX_VARIATIONS} variations"));
    }
    let mut variations = Vec::new();
    let mut names = None;
    for index in 0..=count {
        let v = variation(base, ranges, seed, index)?;
        names.get_or_insert(compared_policies(&v.scenario)?);
        let rows = crate::simulate(&v.scenario, v.seed).map_err(|e| e.to_string())?;
        variations.push(pair_rows(v, &rows)?);
    }
    let (baseline, challenger) = names.unwrap_or_default();
    Ok(Sweep {
        seed,
        baseline,
        challenger,
        variations,
    })
}

fn seconds(ms: u64) -> String {
    format!("{}.{}", ms / 1_000, (ms % 1_000) / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(text: &str) -> Value {
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_builtin_ranges_parse_and_bad_ones_are_refused() {
        let ranges = SweepRanges::builtin();
        assert!(ranges.requests[0] <= ranges.requests[1]);
        let bad = SWEEP_RANGES.replace("\"requests\": [200, 400]", "\"requests\": [400, 200]");
        assert!(SweepRanges::parse(&bad).is_err());
    }

    #[test]
    fn variations_are_drawn_from_the_seed_within_the_ranges() {
        let ranges = SweepRanges::builtin();
        let default = base(crate::DEFAULT_SCENARIO);
        let zero = variation(&default, &ranges, 1, 0).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((zero.seed, zero.scenario.requests), (1, 288));
        let mut differ = false;
        for index in 1..=20 {
            let a = variation(&default, &ranges, 1, index).unwrap_or_else(|e| panic!("{e}"));
            let b = variation(&default, &ranges, 1, index).unwrap_or_else(|e| panic!("{e}"));
            let c = variation(&default, &ranges, 2, index).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(format!("{:?}", a.scenario), format!("{:?}", b.scenario));
            assert_eq!(a.seed, b.seed);
            differ |= format!("{:?}", a.scenario) != format!("{:?}", c.scenario);
            let s = &a.scenario;
            assert!((200..=400).contains(&s.requests), "{}", s.requests);
            assert!((2..=4).contains(&s.agents));
            for pool in &s.pools {
                assert!(!pool.keys.is_empty());
                assert!(pool.outages.len() <= 2);
                for o in &pool.outages {
                    assert!((10..=60).contains(&(o.to_s - o.from_s)));
                }
            }
        }
        assert!(differ, "another seed, other variations");
    }

    #[test]
    fn a_quick_sweep_pairs_every_row_and_sums_them() {
        let small = base(crate::SMALL_SCENARIO);
        let ranges = SweepRanges::builtin();
        let a = sweep(&small, &ranges, 3, 2).unwrap_or_else(|e| panic!("{e}"));
        let b = sweep(&small, &ranges, 3, 2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(a.text(), b.text());
        assert_eq!(a.variations.len(), 3);
        assert_eq!(a.challenger, "adaptive-nojitter");
        for v in &a.variations {
            // Two strategies shared, and fill_first without a store.
            assert_eq!(v.pairs.len(), 3);
        }
        let (hermes, _) = a.totals();
        let served: u64 = a
            .variations
            .iter()
            .flat_map(|v| &v.pairs)
            .map(|p| p.baseline.served)
            .sum();
        assert_eq!(hermes.served, served);
        assert!(a.text().contains("sum"));
        assert_eq!(a.json()["variations"].as_array().map(Vec::len), Some(3));
        let three = base(&crate::SMALL_SCENARIO.replace(
            r#""policies": ["hermes","#,
            r#""policies": ["hermes", "adaptive","#,
        ));
        assert!(sweep(&three, &ranges, 3, 1).is_err(), "two policies only");
    }
}
