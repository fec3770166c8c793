//! Property tests: merge laws and selection invariants over random input sequences.

use credpool_core::{
    AcquireRequest, Decision, Millis, NewEntry, Options, PoolKey, PoolUpdate, Registry, Report,
    Response, Secret, Status, Strategy as Selection,
};
use proptest::prelude::*;
use serde_json::Value;

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Report(u16),
    Advance(u64),
    Back(u64),
    Reset,
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        4 => prop::sample::select(vec![200u16, 401, 402, 403, 429, 500]).prop_map(Op::Report),
        2 => (0u64..7_200_000).prop_map(Op::Advance),
        1 => (0u64..3_600_000).prop_map(Op::Back),
        1 => Just(Op::Reset),
        1 => Just(Op::Tick),
    ]
}

fn strategy() -> impl Strategy<Value = Selection> {
    prop::sample::select(vec![
        Selection::FillFirst,
        Selection::RoundRobin,
        Selection::LeastUsed,
        Selection::Random,
    ])
}

fn registry(writer: &str, strategy: Selection) -> (Registry, PoolKey) {
    let mut r = Registry::new(Options {
        writer: writer.into(),
        seed: 9,
    })
    .unwrap();
    let key = PoolKey::parse("openrouter").unwrap();
    r.configure_pool(
        Millis(1),
        &key,
        PoolUpdate {
            strategy: Some(strategy),
            ..PoolUpdate::default()
        },
    )
    .unwrap();
    for id in ["a", "b", "c"] {
        let entry = NewEntry {
            id: Some(credpool_core::EntryId::parse(id).unwrap()),
            access_token: Some(Secret::new(format!("sk-prop-{id}"))),
            ..NewEntry::default()
        };
        r.add_entry(Millis(1), &key, entry).unwrap();
    }
    (r, key)
}

/// Applies `ops`, checking the invariants after every step.
fn drive(r: &mut Registry, key: &PoolKey, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut now = Millis(1_000);
    let mut lease = None;
    let mut counts = std::collections::BTreeMap::new();
    for op in ops {
        match op {
            Op::Acquire => {
                let usable_before = r.pool(key).unwrap().entries().iter().any(|e| {
                    e.availability(now.max(Millis(0)), None, 120_000)
                        .is_usable()
                });
                let request = AcquireRequest::new(key.clone());
                let decision = r.acquire(now, &request).unwrap();
                match &decision {
                    Decision::Use {
                        entry_id, lease_id, ..
                    }
                    | Decision::Refresh {
                        entry_id, lease_id, ..
                    } => {
                        let entry = r.pool(key).unwrap().entry(entry_id).unwrap();
                        prop_assert!(
                            entry.effective_status() != Status::Dead,
                            "handed out a dead entry"
                        );
                        lease = Some(*lease_id);
                    }
                    other => prop_assert!(
                        !usable_before,
                        "no entry handed out although one was usable: {other:?}"
                    ),
                }
            }
            Op::Report(status) => {
                if let Some(id) = lease.take() {
                    let response = Response {
                        status: Some(*status),
                        ..Response::default()
                    };
                    let report = Report {
                        pool: key.clone(),
                        lease_id: Some(id),
                        entry_id: None,
                        response,
                    };
                    match r.report(now, &report) {
                        Ok(
                            Decision::RetrySame { lease_id, .. }
                            | Decision::Use { lease_id, .. }
                            | Decision::Refresh { lease_id, .. },
                        ) => lease = Some(lease_id),
                        Ok(_) => {}
                        Err(e) => prop_assert!(false, "report failed: {e}"),
                    }
                }
            }
            Op::Advance(ms) => now = now.plus(*ms),
            Op::Back(ms) => now = Millis(now.0.saturating_sub(*ms)),
            Op::Reset => {
                r.reset(now, key, None).unwrap();
            }
            Op::Tick => {
                r.tick(now);
            }
        }
        for entry in r.pool(key).unwrap().entries() {
            let count = entry.request_count();
            let before = counts.insert(entry.id.clone(), count).unwrap_or(0);
            prop_assert!(count >= before, "request counter decreased");
            if let Some(until) = entry.status.until {
                prop_assert!(until >= entry.status.at, "cooldown ends before it was set");
            }
        }
    }
    Ok(())
}

fn export(r: &Registry) -> Value {
    serde_json::to_value(r.export_state()).unwrap()
}

fn merged(base: &Value, other: &Value) -> Value {
    let mut r = Registry::from_state(
        base,
        Options {
            writer: "m".into(),
            seed: 1,
        },
    )
    .unwrap();
    r.sync(other).unwrap();
    export(&r)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn invariants_hold_under_random_inputs(strategy in strategy(), ops in prop::collection::vec(op(), 1..60)) {
        let (mut r, key) = registry("w1", strategy);
        drive(&mut r, &key, &ops)?;
    }

    #[test]
    fn merge_is_commutative_associative_idempotent(
        s in strategy(),
        a_ops in prop::collection::vec(op(), 0..30),
        b_ops in prop::collection::vec(op(), 0..30),
        c_ops in prop::collection::vec(op(), 0..30),
    ) {
        let mut states = Vec::new();
        for (writer, ops) in [("w1", &a_ops), ("w2", &b_ops), ("w3", &c_ops)] {
            let (mut r, key) = registry(writer, s);
            drive(&mut r, &key, ops)?;
            states.push(export(&r));
        }
        let (a, b, c) = (&states[0], &states[1], &states[2]);
        prop_assert_eq!(merged(a, b), merged(b, a));
        prop_assert_eq!(merged(&merged(a, b), c), merged(a, &merged(b, c)));
        let ab = merged(a, b);
        prop_assert_eq!(merged(&ab, &ab), ab.clone());
        prop_assert_eq!(merged(&ab, a), ab);
    }

    #[test]
    fn merge_cursor_is_sync_of_the_cursor_alone(
        a_ops in prop::collection::vec(op(), 0..30),
        b_ops in prop::collection::vec(op(), 0..30),
    ) {
        let mut states = Vec::new();
        for (writer, ops) in [("w1", &a_ops), ("w2", &b_ops)] {
            let (mut r, key) = registry(writer, Selection::RoundRobin);
            drive(&mut r, &key, ops)?;
            states.push(export(&r));
        }
        let (a, b) = (&states[0], &states[1]);
        let Some((key, theirs)) = b["pools"].as_object().and_then(|p| p.iter().next()) else {
            return Ok(());
        };
        let Ok(cursor) = serde_json::from_value::<credpool_core::Cursor>(theirs["round_robin"].clone()) else {
            return Ok(());
        };
        // `a` merging b's pool with only its cursor, by sync and by merge_cursor.
        let mut only_cursor = a.clone();
        only_cursor["pools"][key]["round_robin"] = theirs["round_robin"].clone();
        let by_sync = merged(a, &only_cursor);
        let mut r = Registry::from_state(a, Options { writer: "m".into(), seed: 1 }).unwrap();
        let pool = PoolKey::parse(key).unwrap();
        let moved = r.merge_cursor(&pool, &cursor).unwrap();
        prop_assert_eq!(export(&r), by_sync.clone());
        prop_assert_eq!(moved, &by_sync != a);
    }

    #[test]
    fn export_import_export_is_a_fixed_point(s in strategy(), ops in prop::collection::vec(op(), 0..40)) {
        let (mut r, key) = registry("w1", s);
        drive(&mut r, &key, &ops)?;
        let first = export(&r);
        let again = Registry::from_state(&first, Options { writer: "w1".into(), seed: 1 }).unwrap();
        prop_assert_eq!(export(&again), first);
    }
}
