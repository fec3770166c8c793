//! `credpool simulate`: runs a scenario against the real engine with a simulated provider
//! and compares policies and strategies side by side.
//!
//! The engine is `credpool-sim` (pure, also in the wasm binding): everything runs in
//! simulated time (a virtual clock in epoch ms; nothing sleeps); the agents of a row share
//! one in-memory store document and follow core's decisions like a host loop; the simulated
//! provider enforces per-key limits and answers like the real ones, so core's classifier
//! does the work. Same scenario and seed, same output, byte for byte. This layer adds the
//! file I/O, the progress bar and one thread per row.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use clap::Args;

use credpool_sim::{RowResult, RowSpec, Scenario, report, svg};

/// Arguments of `credpool simulate`.
#[derive(Debug, Args)]
#[command(after_help = SCENARIO_HELP)]
pub(crate) struct SimulateArgs {
    /// Scenario file (JSON, the format of sim/scenarios/default.json); default: built in.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Seed of the workload and of every agent's PRNG: same seed, same output.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Also write a timeline of every row as an SVG file.
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// Print the built-in scenario (a starting point for --scenario) and exit.
    #[arg(long, conflicts_with_all = ["scenario", "json", "svg"])]
    print_scenario: bool,
    /// Run the scenario and N seeded variations of it (ranges: sim/scenarios/sweep.json)
    /// and compare its two policies pair by pair: same variation, seed, strategy and store.
    #[arg(long, value_name = "N", conflicts_with = "svg",
          value_parser = clap::value_parser!(u32).range(1..=i64::from(credpool_sim::sweep::MAX_VARIATIONS)))]
    sweep: Option<u32>,
}

/// The scenario format in brief (`--print-scenario` shows a whole one).
const SCENARIO_HELP: &str = "\
Scenario (JSON): name, start_epoch_s, agents, requests, rate_per_min; optional latency_ms [min,max],
error_latency_ms, refresh_latency_ms, the call budgets of each request (max_sends, max_wait_ms,
max_total_wait_ms, max_hops; default: the call driver's), policies (\"hermes\", \"adaptive\" or
{\"name\", \"preset\", ...policy fields}), strategies, isolated_baseline; pools: [{pool, weight, model,
flavor (openai|anthropic), fallback [{pool, model}], outages [{from_s, to_s, status}], keys: [{id, rpm,
daily_quota, used_today, hint (retry-after|x-ratelimit-reset|none), revoked_at_s,
oauth {token_ttl_s, first_expiry_s}}]}]. from_s, to_s and revoked_at_s are seconds after the start.
The simulation runs in simulated time: agents of a row share one in-memory store (never --store).";

/// Rows × requests above which a progress bar is shown (on a terminal only).
const PROGRESS_THRESHOLD: u64 = 2_000;

/// Runs `credpool simulate`.
pub(crate) fn run(args: &SimulateArgs) -> ExitCode {
    if args.print_scenario {
        print!("{}", credpool_sim::DEFAULT_SCENARIO);
        return ExitCode::SUCCESS;
    }
    if let Some(count) = args.sweep {
        return run_sweep(args, count);
    }
    let scenario = match &args.scenario {
        None => Scenario::builtin(),
        Some(path) => {
            let loaded = read_text(path).and_then(|text| Scenario::parse(&text));
            match loaded {
                Ok(s) => s,
                Err(e) => {
                    eprintln!(
                        "credpool simulate: bad scenario {}: {}",
                        path.display(),
                        e.replace('\n', " ")
                    );
                    return ExitCode::from(2);
                }
            }
        }
    };
    let rows = match credpool_sim::matrix(&scenario) {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("credpool simulate: bad scenario: {e}");
            return ExitCode::from(2);
        }
    };
    let results = match simulate(&scenario, &rows, args.seed) {
        Ok(results) => results,
        Err(e) => {
            eprintln!("credpool simulate: engine error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(path) = &args.svg
        && let Err(e) = std::fs::write(path, svg::render(&scenario, args.seed, &results))
    {
        eprintln!("credpool simulate: cannot write {}: {e}", path.display());
        return ExitCode::from(1);
    }
    if args.json {
        let value = report::json(&scenario, args.seed, &results);
        println!(
            "{}",
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        print!("{}", report::text(&scenario, args.seed, &results));
    }
    ExitCode::SUCCESS
}

/// `--sweep N`: the scenario (built in or `--scenario`) and N seeded variations, each run
/// like a plain `simulate`, then its two policies compared pair by pair.
fn run_sweep(args: &SimulateArgs, count: u32) -> ExitCode {
    let text = match &args.scenario {
        None => Ok(credpool_sim::DEFAULT_SCENARIO.to_owned()),
        Some(path) => read_text(path),
    };
    let base = text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()));
    let ranges = credpool_sim::SweepRanges::builtin();
    let mut variations = Vec::new();
    let mut names = None;
    for index in 0..=count {
        let variation = base.as_ref().map_err(Clone::clone).and_then(|base| {
            let v = credpool_sim::sweep::variation(base, &ranges, args.seed, index)?;
            names.get_or_insert(credpool_sim::sweep::compared_policies(&v.scenario)?);
            let rows = credpool_sim::matrix(&v.scenario)?;
            Ok((v, rows))
        });
        let (variation, rows) = match variation {
            Ok(found) => found,
            Err(e) => {
                eprintln!("credpool simulate: bad scenario: {}", e.replace('\n', " "));
                return ExitCode::from(2);
            }
        };
        let results = match simulate(&variation.scenario, &rows, variation.seed) {
            Ok(results) => results,
            Err(e) => {
                eprintln!("credpool simulate: engine error: {e}");
                return ExitCode::from(1);
            }
        };
        match credpool_sim::sweep::pair_rows(variation, &results) {
            Ok(paired) => variations.push(paired),
            Err(e) => {
                eprintln!("credpool simulate: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let (baseline, challenger) = names.unwrap_or_default();
    let sweep = credpool_sim::Sweep {
        seed: args.seed,
        baseline,
        challenger,
        variations,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&sweep.json()).unwrap_or_default()
        );
    } else {
        print!("{}", sweep.text());
    }
    ExitCode::SUCCESS
}

/// Runs every row (in parallel threads; each row is deterministic on its own).
fn simulate(
    scenario: &Scenario,
    rows: &[RowSpec],
    seed: u64,
) -> Result<Vec<RowResult>, credpool_core::Error> {
    let arrivals = credpool_sim::workload(scenario, seed);
    let total = rows.len() as u64 * u64::from(scenario.requests);
    let bar = (std::io::stderr().is_terminal() && total >= PROGRESS_THRESHOLD).then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "simulating {bar:40} {pos}/{len} requests ({eta} left)",
        ) {
            bar.set_style(style);
        }
        bar
    });
    let tick = || {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZero::get)
        .min(rows.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<RowResult, credpool_core::Error>>>> =
        Mutex::new(vec![None; rows.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(spec) = rows.get(i) else { break };
                    let result = credpool_sim::run_row(scenario, &arrivals, spec, seed, &tick);
                    if let Ok(mut slots) = results.lock() {
                        slots[i] = Some(result);
                    }
                }
            });
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let slots = results.into_inner().unwrap_or_default();
    slots
        .into_iter()
        .map(|slot| {
            slot.unwrap_or_else(|| {
                Err(credpool_core::Error::new(
                    credpool_core::ErrorCode::Internal,
                    "a simulation thread died",
                ))
            })
        })
        .collect()
}

/// A scenario file's text (a regular file, capped: [`crate::files::read`]).
fn read_text(path: &std::path::Path) -> Result<String, String> {
    match crate::files::read_existing(path) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|e| e.to_string()),
        Err(e) => Err(e.message),
    }
}
