//! Criterion benches of the engine: the acquire+report pair per strategy and pool size,
//! the memory floor under `random` (one entry read, and the machine's memory latency),
//! the classifier on real-looking provider answers, state export/import and `sync`.
//!
//!     cargo bench -p credpool-core --bench engine            # full (1 s warm-up, 2 s)
//!     CREDPOOL_BENCH_QUICK=1 cargo bench -p credpool-core    # smoke run
//!
//! `scripts/bench.sh` runs these and regenerates the tables of `BENCHMARKS.md`.
#![allow(missing_docs, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use credpool_core::{
    AcquireRequest, Action, Body, CallReport, CallStart, Decision, EntryId, Headers, LeaseId,
    Millis, NewEntry, Options, Policy, PoolKey, PoolUpdate, Registry, Report, Response, Secret,
    Strategy, classify,
};
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const HOUR: u64 = 60 * 60 * 1_000;
/// Pool sizes of the scaling table; the goal is a 100k/10 ratio of at most 2x.
const SIZES: [usize; 3] = [10, 1_000, 100_000];
const STRATEGIES: [(&str, Strategy); 4] = [
    ("fill_first", Strategy::FillFirst),
    ("round_robin", Strategy::RoundRobin),
    ("least_used", Strategy::LeastUsed),
    ("random", Strategy::Random),
];

/// Short runs by default (a shared 2-core machine); `CREDPOOL_BENCH_QUICK=1` for smoke runs.
// The bench harness is a host program: reading its own knob from the environment is fine.
#[allow(clippy::disallowed_methods)]
fn config() -> Criterion {
    let quick = std::env::var_os("CREDPOOL_BENCH_QUICK").is_some_and(|v| v != "0" && !v.is_empty());
    let base = Criterion::default().without_plots();
    if quick {
        base.warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(500))
            .sample_size(10)
    } else {
        base.warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(2))
            .sample_size(30)
    }
}

fn key() -> PoolKey {
    PoolKey::parse("openrouter").expect("pool key")
}

/// A registry with one pool of `n` API keys, ids `k<i>` and explicit priorities.
///
/// The adaptive policy without jitter: a plain 429 with a healthy sibling rotates at once
/// (no same-key retry), and every cooldown is capped at one hour (`cooldown_max_ms`).
fn registry(n: usize, strategy: Strategy, writer: &str) -> Registry {
    let mut reg = Registry::new(Options {
        writer: writer.into(),
        seed: 1,
    })
    .expect("registry");
    let key = key();
    let policy = Policy {
        jitter_percent: 0,
        ..Policy::adaptive()
    };
    reg.configure_pool(
        Millis(0),
        &key,
        PoolUpdate {
            strategy: Some(strategy),
            policy: Some(policy),
            ..PoolUpdate::default()
        },
    )
    .expect("configure");
    for i in 0..n {
        let entry = NewEntry {
            id: Some(EntryId::parse(&format!("k{i}")).expect("id")),
            priority: Some(i64::try_from(i).expect("priority")),
            access_token: Some(Secret::new(format!("sk-bench-{i:06}"))),
            ..NewEntry::default()
        };
        reg.add_entry(Millis(0), &key, entry).expect("add entry");
    }
    reg
}

fn lease(decision: &Decision) -> LeaseId {
    match decision {
        Decision::Use { lease_id, .. } | Decision::Refresh { lease_id, .. } => *lease_id,
        other => panic!("the pool ran dry: {other:?}"),
    }
}

fn status(code: u16) -> Response {
    Response {
        status: Some(code),
        ..Response::default()
    }
}

/// acquire + report(200), a fresh lease each time, the clock 1 ms on per pair.
fn pair_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("pair_success");
    let request = AcquireRequest::new(key());
    let ok = status(200);
    for (name, strategy) in STRATEGIES {
        for n in SIZES {
            let mut reg = registry(n, strategy, "bench");
            let mut now = 1_000_u64;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    now += 1;
                    let decision = reg.acquire(Millis(now), &request).expect("acquire");
                    let report = Report {
                        pool: request.pool.clone(),
                        lease_id: Some(lease(&decision)),
                        entry_id: None,
                        response: ok.clone(),
                    };
                    black_box(reg.report(Millis(now), &report).expect("report"))
                });
            });
        }
    }
    group.finish();
}

/// A whole call through the driver: `call_start` (a `send`) + `call_report(200)` (`done`),
/// next to the raw `acquire` + `report` pair above: what the driver adds per request.
fn call_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("call_success");
    let start = CallStart::new(key());
    let ok = status(200);
    for (name, strategy) in STRATEGIES {
        for n in SIZES {
            let mut reg = registry(n, strategy, "bench");
            let mut now = 1_000_u64;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    now += 1;
                    let Action::Send { call_id, .. } =
                        reg.start_call(Millis(now), &start).expect("call_start")
                    else {
                        panic!("a healthy pool sends")
                    };
                    let report = CallReport {
                        call_id,
                        response: ok.clone(),
                        delivered: false,
                    };
                    black_box(reg.call_report(Millis(now), &report).expect("call_report"))
                });
            });
        }
    }
    group.finish();
}

/// acquire + report(429) → the entry cools down and the pool rotates (`use` of a sibling,
/// whose lease is released). The clock moves 2 h per pair, past the 1 h cooldown cap, so
/// the marked entry is available again by the next pair and the pool never runs dry.
fn pair_rate_limited(c: &mut Criterion) {
    let mut group = c.benchmark_group("pair_429");
    let request = AcquireRequest::new(key());
    let limited = status(429);
    for (name, strategy) in STRATEGIES {
        for n in SIZES {
            let mut reg = registry(n, strategy, "bench");
            let mut now = 1_000_u64;
            group.bench_function(BenchmarkId::new(name, n), |b| {
                b.iter(|| {
                    now += 2 * HOUR;
                    let decision = reg.acquire(Millis(now), &request).expect("acquire");
                    let report = Report {
                        pool: request.pool.clone(),
                        lease_id: Some(lease(&decision)),
                        entry_id: None,
                        response: limited.clone(),
                    };
                    let rotated = reg.report(Millis(now), &report).expect("report");
                    assert!(
                        matches!(rotated, Decision::Use { .. }),
                        "expected a rotation, got {rotated:?}"
                    );
                    reg.release(&request.pool, lease(&rotated))
                        .expect("release");
                });
            });
        }
    }
    group.finish();
}

/// The memory floor under `random`: reading one uniformly drawn entry (`Pool::entry` and
/// its request count), the access a random pick cannot avoid. At 100,000 entries the
/// pool no longer fits in the CPU caches, so this one read costs a trip to memory.
fn entry_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("entry_lookup");
    for n in SIZES {
        let reg = registry(n, Strategy::Random, "bench");
        let pool = reg.pool(&key()).expect("pool");
        let ids: Vec<EntryId> = (0..n)
            .map(|i| EntryId::parse(&format!("k{i}")).expect("id"))
            .collect();
        let mut state = 1_u64;
        group.bench_function(BenchmarkId::new("random", n), |b| {
            b.iter(|| {
                // A 64-bit LCG (the bench's own draw) fed by the entry just read, so each
                // read waits for the one before, as a pair's reads do: the figure is the
                // latency of one read, not the throughput of overlapping ones.
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let at = usize::try_from(state >> 33).unwrap_or(0) % n;
                let entry = pool.entry(&ids[at]).expect("entry");
                state ^= entry.request_count() ^ entry.meta.priority.unsigned_abs() & 1;
                black_box(state)
            });
        });
    }
    group.finish();
}

/// Working sets of the memory-latency row: inside the caches, around their edge, and the
/// size of a 100,000-entry pool.
const CHASE_MIB: [usize; 4] = [4, 8, 16, 64];

/// This machine's memory latency, with no credpool code: one read at a time through a
/// random cycle over a buffer of `CHASE_MIB` mebibytes, one read per 64-byte line, each
/// read's address taken from the one before. It shows from which working set on a
/// dependent read leaves the caches, and what it then costs, next to the pairs above.
fn memory_latency(c: &mut Criterion) {
    const LINE_WORDS: usize = 8;
    let mut group = c.benchmark_group("memory_latency");
    for mib in CHASE_MIB {
        let lines = mib * 1024 * 1024 / 64;
        // The lines in a random order (a shuffle with the bench's own LCG); each line
        // holds the index of the next one in that order, the last the first: one cycle.
        let mut order: Vec<usize> = (0..lines).collect();
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        for i in (1..lines).rev() {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let j = usize::try_from(state >> 33).unwrap_or(0) % i;
            order.swap(i, j);
        }
        let mut next = vec![0_usize; lines * LINE_WORDS];
        for (i, &line) in order.iter().enumerate() {
            next[line * LINE_WORDS] = order[(i + 1) % lines] * LINE_WORDS;
        }
        drop(order);
        let mut at = 0_usize;
        group.bench_function(BenchmarkId::new("chase_mib", mib), |b| {
            b.iter(|| {
                at = next[at];
                black_box(at)
            });
        });
    }
    group.finish();
}

fn text(code: u16, headers: &[(&str, &str)], body: &str) -> Response {
    Response {
        status: Some(code),
        headers: Headers(
            headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        body: Some(Body::Text(body.to_owned())),
        ..Response::default()
    }
}

/// Real-looking provider answers (shapes from `core/src/classify/tests.rs`).
fn responses() -> Vec<(&'static str, Response)> {
    let openai = text(
        429,
        &[
            ("x-ratelimit-limit-requests", "10000"),
            ("x-ratelimit-limit-tokens", "30000"),
            ("x-ratelimit-remaining-requests", "9999"),
            ("x-ratelimit-remaining-tokens", "0"),
            ("x-ratelimit-reset-requests", "6m0s"),
            ("x-ratelimit-reset-tokens", "1.5s"),
            ("x-request-id", "req_abc123"),
        ],
        r#"{
  "error": {
    "message": "Rate limit reached for gpt-4o in organization org-abc on tokens per min (TPM): Limit 30000, Used 29807, Requested 1354. Please try again in 2.322s. Visit https://platform.openai.com/account/rate-limits to learn more.",
    "type": "tokens",
    "param": null,
    "code": "rate_limit_exceeded"
  }
}"#,
    );
    let anthropic = text(
        429,
        &[
            ("anthropic-ratelimit-requests-limit", "50"),
            ("anthropic-ratelimit-requests-remaining", "49"),
            ("anthropic-ratelimit-requests-reset", "2025-06-15T15:06:41Z"),
            ("anthropic-ratelimit-input-tokens-limit", "50000"),
            ("anthropic-ratelimit-input-tokens-remaining", "0"),
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
            ("retry-after", "17"),
        ],
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"This request would exceed the rate limit for your organization (a1b2c3) of 50,000 input tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
    );
    let gemini = Response {
        status: Some(429),
        body: Some(Body::Json(json!({
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
        }))),
        ..Response::default()
    };
    let openrouter = text(
        402,
        &[],
        r#"{"error":{"message":"Insufficient credits. Add more using https://openrouter.ai/settings/credits","code":402}}"#,
    );
    let codex = text(
        429,
        &[("retry-after", "60")],
        r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":1767225600,"resets_in_seconds":12345}}"#,
    );
    vec![
        ("openai_429_x_ratelimit", openai),
        ("anthropic_429_retry_after", anthropic),
        ("gemini_429_retry_info", gemini),
        ("openrouter_402", openrouter),
        ("codex_usage_limit", codex),
    ]
}

fn classifier(c: &mut Criterion) {
    let mut group = c.benchmark_group("classify");
    let now = Millis(1_750_000_000_000);
    for (name, response) in responses() {
        group.bench_function(name, |b| b.iter(|| classify(now, black_box(&response))));
    }
    group.finish();
}

/// A 1,000-entry registry that has served traffic: counters, a few cooldowns.
fn busy_registry(writer: &str, from: Option<&Value>, rate_limit_every: u64) -> Registry {
    let mut reg = match from {
        Some(state) => Registry::from_state(
            state,
            Options {
                writer: writer.into(),
                seed: 2,
            },
        )
        .expect("from_state"),
        None => registry(1_000, Strategy::RoundRobin, writer),
    };
    let request = AcquireRequest::new(key());
    for i in 0..2_000_u64 {
        let now = Millis(10_000 + i);
        let decision = reg.acquire(now, &request).expect("acquire");
        let code = if i % rate_limit_every == 0 { 429 } else { 200 };
        let report = Report {
            pool: request.pool.clone(),
            lease_id: Some(lease(&decision)),
            entry_id: None,
            response: status(code),
        };
        if let Some(lease_id) = lease_of(&reg.report(now, &report).expect("report")) {
            reg.release(&request.pool, lease_id).expect("release");
        }
    }
    reg
}

/// The lease of a decision, when it holds one.
fn lease_of(decision: &Decision) -> Option<LeaseId> {
    match decision {
        Decision::Use { lease_id, .. } | Decision::Refresh { lease_id, .. } => Some(*lease_id),
        _ => None,
    }
}

fn state(c: &mut Criterion) {
    let mut group = c.benchmark_group("state");
    let reg = busy_registry("bench", None, 7);
    let text = serde_json::to_string(&reg.export_state()).expect("serialize");
    group.bench_function("export_1000", |b| {
        b.iter(|| serde_json::to_string(&reg.export_state()).expect("serialize"));
    });
    group.bench_function("import_1000", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_str(black_box(&text)).expect("parse");
            Registry::from_state(
                &value,
                Options {
                    writer: "bench".into(),
                    seed: 1,
                },
            )
            .expect("from_state")
        });
    });
    group.finish();
}

fn sync(c: &mut Criterion) {
    let mut group = c.benchmark_group("sync");
    let ours = busy_registry("a", None, 7);
    let shared = serde_json::to_value(ours.export_state()).expect("export");
    // Another writer, started from the same state, served its own traffic since.
    let theirs = busy_registry("b", Some(&shared), 5);
    let theirs = serde_json::to_value(theirs.export_state()).expect("export");
    group.bench_function("merge_1000", |b| {
        b.iter_batched(
            || ours.clone(),
            |mut reg| {
                reg.sync(black_box(&theirs)).expect("sync");
                reg
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = pair_success, call_success, pair_rate_limited, entry_lookup, memory_latency, classifier, state, sync
}
criterion_main!(benches);
