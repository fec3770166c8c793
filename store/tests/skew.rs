//! Processes with skewed clocks sharing one store.
//!
//! Deadlines are absolute wall-clock instants stamped with the clock of the process that
//! marks the entry. Another process compares them with its own clock, so with a skew of
//! `S` between the two:
//! - a key benched by the process whose clock runs FAST is seen benched for up to `S`
//!   longer by a slower process (late, never early);
//! - a key benched by the process whose clock runs SLOW may be handed out by a faster
//!   process up to `S` before the real deadline: early by at most the skew, never more.
//!
//! So with hosts kept in sync by NTP (skew well under a second) the deadline holds to the
//! second; the tests below use an hour-scale skew to make the bound visible.

use credpool_core::{AcquireRequest, Decision, Millis, PoolKey};
use credpool_store::{Store, StoreOptions};
use serde_json::json;

/// Real (reference) time at which the key is benched.
const T0: u64 = 1_700_000_000_000;
const SECOND: u64 = 1_000;
/// Billing cooldown of the hermes preset.
const BENCH: u64 = 3_600 * SECOND;

/// A process: a store handle and its clock offset from real time.
struct Process {
    store: Store,
    offset: i64,
}

impl Process {
    fn now(&self, real: u64) -> Millis {
        Millis(real.checked_add_signed(self.offset).unwrap())
    }

    fn acquire(&mut self, real: u64) -> Decision {
        let request = AcquireRequest::new(PoolKey::parse("openrouter").unwrap());
        let now = self.now(real);
        self.store.acquire(now, &request).unwrap()
    }
}

fn used(decision: &Decision) -> Option<&str> {
    match decision {
        Decision::Use { entry_id, .. } => Some(entry_id.as_str()),
        _ => None,
    }
}

/// Two processes on one store; `marker` benches `a` (402) at real time `T0`, then `reader`
/// acquires at real times around the deadline. Returns the first real time at which the
/// reader hands `a` out.
fn first_hand_out(marker_offset: i64, reader_offset: i64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let open = |writer: &str, offset| Process {
        store: Store::open_path(
            &path,
            StoreOptions {
                durable: false,
                ..StoreOptions::new(writer, 1)
            },
        )
        .unwrap(),
        offset,
    };
    let mut marker = open("marker", marker_offset);
    let mut reader = open("reader", reader_offset);
    // Both entries are added well before T0 by every clock.
    let setup = T0 - 10 * BENCH;
    for id in ["a", "b"] {
        let input = json!({"type": "add_entry", "pool": "openrouter",
            "entry": {"id": id, "access_token": format!("sk-skew-{id}")}});
        marker.store.handle_value(Millis(setup), input).unwrap();
    }
    let Decision::Use {
        entry_id, lease_id, ..
    } = marker.acquire(T0)
    else {
        panic!("marker got no entry")
    };
    assert_eq!(entry_id.as_str(), "a");
    let now = marker.now(T0);
    let report = json!({"type": "report", "pool": "openrouter", "lease_id": lease_id.0,
        "response": {"status": 402}});
    marker.store.handle_value(now, report).unwrap();
    // The reader polls every 10 s of real time from T0 on.
    let mut real = T0;
    loop {
        if used(&reader.acquire(real)) == Some("a") {
            return real;
        }
        real += 10 * SECOND;
        assert!(real < T0 + 3 * BENCH, "a never came back");
    }
}

const SKEW: i64 = 20 * 60 * 1_000; // 20 minutes

#[test]
fn same_clock_hands_out_at_the_deadline() {
    assert_eq!(first_hand_out(0, 0), T0 + BENCH);
}

#[test]
fn a_bench_by_the_fast_process_is_late_never_early_for_the_slow_one() {
    // The marker runs SKEW ahead: its deadline is T0 + SKEW + BENCH in real time terms.
    let real = first_hand_out(SKEW, 0);
    assert!(real >= T0 + BENCH, "handed out before the real deadline");
    assert_eq!(
        real,
        T0 + BENCH + SKEW.unsigned_abs(),
        "late by exactly the skew"
    );
}

#[test]
fn a_bench_by_the_slow_process_is_early_by_at_most_the_skew_for_the_fast_one() {
    let real = first_hand_out(-SKEW, 0);
    let deadline = T0 + BENCH;
    let skew = SKEW.unsigned_abs();
    assert!(
        real >= deadline - skew,
        "handed out {} ms before the deadline, more than the skew",
        deadline - real
    );
    assert_eq!(real, deadline - skew, "early by exactly the skew");
}

#[test]
fn skews_both_ways_stay_within_the_bound() {
    for (marker, reader) in [(SKEW, -SKEW), (-SKEW, SKEW), (SKEW / 2, -SKEW / 3)] {
        let real = first_hand_out(marker, reader);
        let skew = (marker - reader).unsigned_abs();
        let deadline = T0 + BENCH;
        assert!(
            real + skew >= deadline && real <= deadline + skew + 10 * SECOND,
            "marker {marker:+} reader {reader:+}: first hand-out at deadline {:+} ms",
            i128::from(real) - i128::from(deadline)
        );
    }
}
