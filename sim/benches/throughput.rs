//! Simulator throughput: `credpool_sim::simulate` on the `small` preset, reported by
//! criterion as simulated requests per second (every row of the matrix replays the
//! scenario's workload, so one run simulates `requests x rows` requests).
//!
//!     cargo bench -p credpool-sim --bench throughput
//!     CREDPOOL_BENCH_QUICK=1 cargo bench -p credpool-sim     # smoke run
#![allow(missing_docs, unreachable_pub)]

use std::hint::black_box;
use std::time::Duration;

use credpool_sim::{Scenario, matrix, simulate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

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
            .sample_size(20)
    }
}

fn throughput(c: &mut Criterion) {
    let mut group = c.benchmark_group("simulate");
    let scenario = Scenario::small();
    let rows = matrix(&scenario).expect("matrix").len() as u64;
    group.throughput(Throughput::Elements(u64::from(scenario.requests) * rows));
    group.bench_function("small", |b| {
        b.iter(|| simulate(black_box(&scenario), 7).expect("simulate"));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = throughput
}
criterion_main!(benches);
