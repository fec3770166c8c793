//! Target `merge_laws`: `sync` is commutative, associative and idempotent on the states of
//! three small registries driven by arbitrary inputs from a common starting state
//! (same ids and secrets, so their copies of an entry really conflict).

use arbitrary::{Arbitrary, Unstructured};
use credpool_core::{Options, Registry};
use serde_json::Value;

use super::inputs::{Driver, Op, ops};

fn merged(base: &Value, other: &Value) -> Value {
    let mut registry = Registry::from_state(
        base,
        Options {
            writer: "m".to_owned(),
            seed: 1,
        },
    )
    .expect("an export imports");
    registry.sync(other).expect("an export syncs");
    serde_json::to_value(registry.export_state()).expect("state serialises")
}

/// The common start: two pools, shared ids and secrets.
fn start(driver: &mut Driver) {
    for (pool, id, secret) in [(0u8, 0u8, 0u8), (0, 1, 1), (0, 2, 1), (1, 0, 2)] {
        driver.step(&Op::Add {
            pool,
            id,
            secret,
            oauth: pool == 1,
            refresh: pool == 1,
            expires_in_min: None,
            priority: None,
            borrowed: false,
        });
    }
}

/// The target.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let mut states = Vec::new();
    for writer in ["w1", "w2", "w3"] {
        let seed = u64::arbitrary(&mut u).unwrap_or(0);
        let mut driver = Driver::new(writer, seed);
        driver.check = false;
        start(&mut driver);
        let count = u.int_in_range(0..=24u8).unwrap_or(0);
        for op in ops(&mut u, usize::from(count)) {
            driver.step(&op);
        }
        states.push(driver.export_value());
    }
    let (a, b, c) = (&states[0], &states[1], &states[2]);
    let ab = merged(a, b);
    assert_eq!(ab, merged(b, a), "merge is not commutative");
    assert_eq!(
        merged(&ab, c),
        merged(a, &merged(b, c)),
        "merge is not associative"
    );
    assert_eq!(merged(&ab, &ab), ab, "merge is not idempotent");
    assert_eq!(merged(&ab, a), ab, "merging a part again changed the whole");
    assert_eq!(merged(a, a), *a, "merging a state with itself changed it");
}
