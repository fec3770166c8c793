//! Clock faults: the host clock jumps backwards and forwards by hours.
//!
//! Cooldown deadlines are absolute epoch instants computed and stored when the entry is
//! marked; a `now` earlier than the last one seen acts as the last one (SPEC §1, vectors
//! `state_clock_backwards_*`). So a backwards jump never hands a benched entry out early
//! and never moves a deadline; a forwards jump ends cooldowns as a real wait would.

use credpool_core::{
    AcquireRequest, Decision, EntryId, LeaseId, Millis, NewEntry, Options, PoolKey, Registry,
    Report, Response, Status,
};

const T: u64 = 1_700_000_000_000;
const SECOND: u64 = 1_000;
const HOUR: u64 = 3_600 * SECOND;

fn registry() -> (Registry, PoolKey) {
    let mut r = Registry::new(Options {
        writer: "clock".into(),
        seed: 3,
    })
    .unwrap();
    let key = PoolKey::parse("openrouter").unwrap();
    for id in ["a", "b"] {
        let entry = NewEntry {
            id: Some(EntryId::parse(id).unwrap()),
            access_token: Some(credpool_core::Secret::new(format!("sk-clock-{id}"))),
            ..NewEntry::default()
        };
        r.add_entry(Millis(T - HOUR), &key, entry).unwrap();
    }
    (r, key)
}

fn acquire(r: &mut Registry, key: &PoolKey, now: u64) -> Decision {
    let request = AcquireRequest::new(key.clone());
    r.acquire(Millis(now), &request).unwrap()
}

fn used(decision: &Decision) -> Option<(&str, LeaseId)> {
    match decision {
        Decision::Use {
            entry_id, lease_id, ..
        } => Some((entry_id.as_str(), *lease_id)),
        _ => None,
    }
}

fn report(r: &mut Registry, key: &PoolKey, now: u64, lease: LeaseId, status: u16) -> Decision {
    let report = Report {
        pool: key.clone(),
        lease_id: Some(lease),
        entry_id: None,
        response: Response {
            status: Some(status),
            ..Response::default()
        },
    };
    r.report(Millis(now), &report).unwrap()
}

fn entry_a(r: &Registry, key: &PoolKey) -> credpool_core::Entry {
    r.pool(key)
        .unwrap()
        .entry(&EntryId::parse("a").unwrap())
        .unwrap()
        .clone()
}

/// Marks `a` exhausted by a 402 at `T` (billing: 3600 s).
fn bench_a(r: &mut Registry, key: &PoolKey) {
    let first = acquire(r, key, T);
    let (id, lease) = used(&first).unwrap();
    assert_eq!(id, "a");
    let _ = report(r, key, T, lease, 402);
    let a = entry_a(r, key);
    assert_eq!(a.status.status, Status::Exhausted);
    assert_eq!(a.status.until, Some(Millis(T + HOUR)));
}

#[test]
fn a_report_at_a_backwards_clock_is_marked_at_the_last_seen_time() {
    let (mut r, key) = registry();
    let (_, lease) = used(&acquire(&mut r, &key, T))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    // The host's clock jumped 5 hours back between acquire and report.
    let _ = report(&mut r, &key, T - 5 * HOUR, lease, 402);
    let a = entry_a(&r, &key);
    assert_eq!(a.status.at, Millis(T), "marked at the last seen time");
    assert_eq!(
        a.status.until,
        Some(Millis(T + HOUR)),
        "deadline from the last seen time"
    );
}

#[test]
fn backwards_jumps_never_hand_a_benched_entry_out_early() {
    let (mut r, key) = registry();
    bench_a(&mut r, &key);
    // Anything from 10 h before the mark up to one ms before the deadline, in a jumpy order.
    let mut times = vec![
        T - 10 * HOUR,
        T + HOUR - 1,
        T - HOUR,
        T + 30 * 60 * SECOND,
        T - 1,
    ];
    times.extend((0..40).map(|i| T + HOUR - 1 - (i * 7_919 * SECOND) % (11 * HOUR)));
    for now in times {
        let decision = acquire(&mut r, &key, now);
        assert_eq!(used(&decision).map(|(id, _)| id), Some("b"), "at {now}");
        assert_eq!(
            entry_a(&r, &key).status.until,
            Some(Millis(T + HOUR)),
            "the stored deadline never moves"
        );
    }
    // The deadline itself: a is back (fill_first prefers it).
    let decision = acquire(&mut r, &key, T + HOUR);
    assert_eq!(used(&decision).map(|(id, _)| id), Some("a"));
}

#[test]
fn a_forward_jump_then_a_backward_one_keeps_the_later_time() {
    let (mut r, key) = registry();
    bench_a(&mut r, &key);
    // A jump 5 h forward ends the cooldown, as waiting would.
    let decision = acquire(&mut r, &key, T + 5 * HOUR);
    assert_eq!(used(&decision).map(|(id, _)| id), Some("a"));
    // Back to T + 10 min: the registry keeps T + 5 h, so a stays available and a new mark
    // is stamped at T + 5 h, its deadline at T + 6 h.
    let (_, lease) = used(&acquire(&mut r, &key, T + 600 * SECOND))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let _ = report(&mut r, &key, T + 600 * SECOND, lease, 402);
    let a = entry_a(&r, &key);
    assert_eq!(a.status.at, Millis(T + 5 * HOUR));
    assert_eq!(a.status.until, Some(Millis(T + 6 * HOUR)));
    // Status for humans at a backwards clock counts from the last seen time too.
    let pools = r.status(Millis(T), Some(&key)).unwrap();
    let text = serde_json::to_string(&pools).unwrap();
    assert!(text.contains("\"a\""), "{text}");
}

#[test]
fn a_deadline_synced_from_another_writer_holds_at_any_earlier_clock() {
    let (mut other, key) = registry();
    bench_a(&mut other, &key);
    let state = serde_json::to_value(other.export_state()).unwrap();
    // This process's clock is 8 hours behind the writer that benched `a`.
    let mut r = Registry::from_state(
        &state,
        Options {
            writer: "late".into(),
            seed: 1,
        },
    )
    .unwrap();
    for now in [T - 8 * HOUR, T - HOUR, T, T + HOUR - 1] {
        let decision = acquire(&mut r, &key, now);
        assert_eq!(used(&decision).map(|(id, _)| id), Some("b"), "at {now}");
    }
    assert_eq!(r.tick(Millis(T)).next_wakeup, Some(Millis(T + HOUR)));
    let decision = acquire(&mut r, &key, T + HOUR);
    assert_eq!(used(&decision).map(|(id, _)| id), Some("a"));
}

#[test]
fn when_every_entry_cools_the_wait_names_the_absolute_deadline() {
    let (mut r, key) = registry();
    bench_a(&mut r, &key);
    // b is benched at a later clock; then the clock jumps back 3 h.
    let (_, lease) = used(&acquire(&mut r, &key, T + 600 * SECOND))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let _ = report(&mut r, &key, T + 600 * SECOND, lease, 402);
    let decision = acquire(&mut r, &key, T - 3 * HOUR);
    assert!(
        matches!(decision, Decision::Wait { until, .. } if until == Millis(T + HOUR)),
        "{decision:?}"
    );
}

#[test]
fn a_late_report_never_shortens_a_bench_nor_revives_a_dead_entry() {
    let (mut r, key) = registry();
    // Two requests hold `a` at once.
    let (_, first) = used(&acquire(&mut r, &key, T))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let (_, second) = used(&acquire(&mut r, &key, T))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let _ = report(&mut r, &key, T, first, 402);
    // The second request's 401 arrives later: 300 s would end before the 3600 s bench.
    let _ = report(&mut r, &key, T + SECOND, second, 401);
    assert_eq!(entry_a(&r, &key).status.until, Some(Millis(T + HOUR)));
    let decision = acquire(&mut r, &key, T + 400 * SECOND);
    assert_eq!(used(&decision).map(|(id, _)| id), Some("b"));

    // A terminal 401 kills b; a 402 from an older lease on b must not bring it back.
    let (mut r, key) = registry();
    r.set_priority(Millis(T), &key, &EntryId::parse("b").unwrap(), -1)
        .unwrap();
    let (_, one) = used(&acquire(&mut r, &key, T))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let (_, two) = used(&acquire(&mut r, &key, T))
        .map(|(i, l)| (i.to_owned(), l))
        .unwrap();
    let terminal = Report {
        pool: key.clone(),
        lease_id: Some(one),
        entry_id: None,
        response: Response {
            status: Some(401),
            body: Some(credpool_core::Body::Json(
                serde_json::json!({"error": {"code": "token_revoked"}}),
            )),
            ..Response::default()
        },
    };
    let _ = r.report(Millis(T), &terminal).unwrap();
    let _ = report(&mut r, &key, T + SECOND, two, 402);
    let b = r
        .pool(&key)
        .unwrap()
        .entry(&EntryId::parse("b").unwrap())
        .unwrap()
        .clone();
    assert_eq!(b.status.status, Status::Dead);
    let decision = acquire(&mut r, &key, T + 10 * HOUR);
    assert_eq!(used(&decision).map(|(id, _)| id), Some("a"));
}
