//! Change journals over random input sequences: the changes of every input, merged into a
//! copy that saw nothing else, give the same state as a whole export; an undone input
//! leaves the registry as it was (state, leases and randomness alike).

use credpool_core::{Changes, Millis, Options, Registry, StateDoc};
use proptest::prelude::*;
use serde_json::{Value, json};

#[derive(Clone, Debug)]
enum Op {
    Acquire,
    Report(u16),
    Add(u8),
    Remove(u8),
    Strategy(&'static str),
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Acquire),
        4 => prop::sample::select(vec![200u16, 401, 402, 403, 429, 500]).prop_map(Op::Report),
        1 => (0u8..6).prop_map(Op::Add),
        1 => (0u8..6).prop_map(Op::Remove),
        1 => prop::sample::select(vec!["fill_first", "round_robin", "least_used", "random"])
            .prop_map(Op::Strategy),
        1 => Just(Op::Reset),
    ]
}

/// The wire input of `op` (`lease`: the last lease opened, for a report).
fn input(op: &Op, lease: Option<u64>) -> Value {
    match op {
        Op::Acquire => json!({"type": "acquire", "pool": "openrouter"}),
        Op::Report(status) => json!({
            "type": "report", "pool": "openrouter", "lease_id": lease.unwrap_or(1),
            "response": {"status": status},
        }),
        Op::Add(n) => json!({
            "type": "add_entry", "pool": if n % 2 == 0 { "openrouter" } else { "anthropic" },
            "entry": {"id": format!("e{n}"), "access_token": format!("sk-journal-{n}")},
        }),
        Op::Remove(n) => {
            json!({"type": "remove_entry", "pool": "openrouter", "entry_id": format!("e{n}")})
        }
        Op::Strategy(s) => json!({"type": "configure_pool", "pool": "openrouter", "strategy": s}),
        Op::Reset => json!({"type": "reset", "pool": "openrouter"}),
    }
}

fn registry(writer: &str) -> Registry {
    let mut r = Registry::new(Options {
        writer: writer.into(),
        seed: 7,
    })
    .unwrap();
    for id in ["a", "b", "c"] {
        let add = json!({"type": "add_entry", "pool": "openrouter",
            "entry": {"id": id, "access_token": format!("sk-journal-{id}")}});
        r.handle_value(Millis(1), add).unwrap();
    }
    r
}

/// `changes` as a state document fragment (what a store reads back from its rows).
fn fragment(changes: &Changes) -> Value {
    let mut doc: StateDoc =
        serde_json::from_value(json!({"format": "credpool", "schema_version": 1})).unwrap();
    for pool in &changes.pools {
        let mut fields = pool.pool.clone();
        fields.entries.clone_from(&pool.entries);
        doc.pools.insert(pool.key.clone(), fields);
    }
    serde_json::to_value(doc).unwrap()
}

fn export(r: &Registry) -> Value {
    serde_json::to_value(r.export_state()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn changes_and_undo(ops in prop::collection::vec((op(), any::<bool>()), 1..40)) {
        let mut r = registry("w1");
        let mut mirror = Registry::from_state(&export(&r), Options { writer: "w2".into(), seed: 1 }).unwrap();
        let mut lease = None;
        let mut now = 10;
        for (op, undo) in ops {
            now += 1_000;
            let before = export(&r);
            let before_status = r.status(Millis(now), None).unwrap();
            r.begin_changes();
            let out = r.handle_value(Millis(now), input(&op, lease));
            if undo {
                r.undo_changes();
                prop_assert_eq!(export(&r), before);
                prop_assert_eq!(r.status(Millis(now), None).unwrap(), before_status);
                continue;
            }
            if let Ok(out) = &out {
                let value = serde_json::to_value(out).unwrap();
                if let Some(id) = value.get("lease_id").and_then(Value::as_u64) {
                    lease = Some(id);
                }
            }
            let changes = r.changes();
            r.end_changes();
            // The same ids asked for afterwards give the same changes (what a store that
            // queued ids writes).
            let touched = changes.pools.iter().map(|p| {
                let ids = p.entries.iter().map(|e| e.id.clone()).chain(p.gone.iter().cloned());
                (p.key.clone(), ids.collect())
            }).collect();
            prop_assert_eq!(&r.changes_of(&touched), &changes);
            mirror.sync(&fragment(&changes)).unwrap();
            prop_assert_eq!(export(&mirror), export(&r));
        }
    }
}

#[test]
fn an_undone_acquire_leaves_no_lease_and_the_same_next_pick() {
    let mut r = registry("w1");
    let acquire = json!({"type": "acquire", "pool": "openrouter"});
    r.begin_changes();
    let first = serde_json::to_value(r.handle_value(Millis(5), acquire.clone()).unwrap()).unwrap();
    r.undo_changes();
    let report = json!({"type": "report", "pool": "openrouter", "lease_id": first["lease_id"],
        "response": {"status": 200}});
    let err = r.handle_value(Millis(6), report).unwrap_err();
    assert_eq!(err.code().as_str(), "unknown_lease");
    let again = serde_json::to_value(r.handle_value(Millis(5), acquire).unwrap()).unwrap();
    assert_eq!(again["entry_id"], first["entry_id"]);
    assert_eq!(again["lease_id"], first["lease_id"]);
}

#[test]
fn changes_name_only_the_touched_entries() {
    let mut r = registry("w1");
    r.begin_changes();
    r.handle_value(Millis(5), json!({"type": "acquire", "pool": "openrouter"}))
        .unwrap();
    let changes = r.changes();
    r.end_changes();
    let pool = &changes.pools[0];
    assert_eq!(pool.entries.len(), 1, "one entry counted a selection");
    assert!(pool.gone.is_empty());
    assert!(pool.pool.entries.is_empty());
}
