//! The per-key concurrency cap (`max_concurrent_per_key`) across processes, for every
//! backend: each `Store` stands for one process (its own writer id), sharing one store.

use credpool_core::Millis;
use credpool_store::Store;
use serde_json::{Value, json};

fn run(store: &mut Store, now: u64, input: Value) -> Value {
    serde_json::to_value(store.handle_value(Millis(now), input).unwrap()).unwrap()
}

fn acquire(store: &mut Store, now: u64) -> Value {
    run(store, now, json!({"type": "acquire", "pool": "openrouter"}))
}

fn succeed(store: &mut Store, now: u64, decision: &Value) {
    let lease = &decision["lease_id"];
    let done = run(
        store,
        now,
        json!({"type": "report", "pool": "openrouter", "lease_id": lease, "response": {"status": 200}}),
    );
    assert_eq!(done["type"], "done", "{done}");
}

fn used(decision: &Value) -> &str {
    assert_eq!(decision["type"], "use", "{decision}");
    decision["entry_id"].as_str().unwrap()
}

fn busy(decision: &Value) -> bool {
    decision["type"] == "wait" && decision["reason"] == "all_keys_busy"
}

/// With a cap of one request per key: a second process gets the other key, a third
/// request waits `all_keys_busy`, a settled lease frees its key for another process, and
/// the leases of a process that died holding them stop counting after `lease_ttl_ms`.
pub(crate) fn the_cap_counts_other_processes_leases_until_they_lapse(open: &dyn Fn(&str) -> Store) {
    let mut a = open("proc-a");
    for id in ["k1", "k2"] {
        run(
            &mut a,
            0,
            json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": id, "access_token": format!("sk-{id}")}}),
        );
    }
    run(
        &mut a,
        0,
        json!({"type": "configure_pool", "pool": "openrouter",
               "policy": {"max_concurrent_per_key": 1, "lease_ttl_ms": 60_000}}),
    );
    let mut b = open("proc-b");
    let on_a = acquire(&mut a, 1_000);
    assert_eq!(used(&on_a), "k1");
    let on_b = acquire(&mut b, 1_001);
    assert_eq!(used(&on_b), "k2");
    assert!(busy(&acquire(&mut b, 1_002)));
    assert!(busy(&acquire(&mut a, 1_003)));

    succeed(&mut a, 1_004, &on_a);
    let again = acquire(&mut b, 1_005);
    assert_eq!(used(&again), "k1", "a's settled lease frees k1 for b");
    succeed(&mut b, 1_006, &again);
    succeed(&mut b, 1_007, &on_b);

    // A process takes both keys and dies without settling either.
    let mut doomed = open("proc-doomed");
    assert_eq!(used(&acquire(&mut doomed, 2_000)), "k1");
    assert_eq!(used(&acquire(&mut doomed, 2_001)), "k2");
    drop(doomed);
    assert!(busy(&acquire(&mut a, 30_000)), "its leases still count");
    let after = acquire(&mut a, 62_001);
    assert_eq!(
        used(&after),
        "k1",
        "they lapse 60 s after it last wrote them"
    );

    // A process opened after all that reads the same counts.
    let mut late = open("proc-late");
    assert_eq!(used(&acquire(&mut late, 62_002)), "k2");
    assert!(busy(&acquire(&mut late, 62_003)));
}
