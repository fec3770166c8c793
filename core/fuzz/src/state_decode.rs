//! Target `state_decode`: `Registry::from_state` and `sync` on arbitrary bytes parsed as
//! JSON (seeded with real state documents, see `seeds/state_decode`).
//!
//! Checks: no panic; a document that imports exports and re-imports to a fixed point;
//! a failed `sync` leaves the state as it was; a successful `sync` is idempotent (syncing
//! the same document again changes nothing).

use credpool_core::{Millis, NewEntry, Options, PoolKey, Registry, Secret};
use serde_json::Value;

fn options(writer: &str) -> Options {
    Options {
        writer: writer.to_owned(),
        seed: 5,
    }
}

fn export(registry: &Registry) -> Value {
    serde_json::to_value(registry.export_state()).expect("state serialises")
}

/// A registry with a little state of its own to merge into.
pub fn base() -> Registry {
    let mut registry = Registry::new(options("base")).expect("valid writer");
    let key = PoolKey::parse("openrouter").expect("valid pool");
    for (id, secret) in [("a", "sk-a"), ("b", "sk-b")] {
        let entry = NewEntry {
            id: Some(credpool_core::EntryId::parse(id).expect("valid id")),
            access_token: Some(Secret::new(secret)),
            ..NewEntry::default()
        };
        registry
            .add_entry(Millis(1_000), &key, entry)
            .expect("entry added");
    }
    registry
}

/// The target.
pub fn run(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(registry) = Registry::from_state(&value, options("fz")) {
        let first = export(&registry);
        let again = Registry::from_state(&first, options("fz")).expect("an export re-imports");
        assert_eq!(export(&again), first, "export -> import -> export moved");
    }
    let mut registry = base();
    let before = export(&registry);
    match registry.sync(&value) {
        Err(_) => assert_eq!(export(&registry), before, "a failed sync changed state"),
        Ok(()) => {
            registry.take_changed();
            let once = export(&registry);
            registry
                .sync(&value)
                .expect("the same document syncs twice");
            assert_eq!(export(&registry), once, "sync is not idempotent");
            assert!(
                !registry.take_changed(),
                "a repeated sync reported a change"
            );
            let reimported =
                Registry::from_state(&once, options("fz")).expect("a merged export re-imports");
            assert_eq!(
                export(&reimported),
                once,
                "merged export does not round-trip"
            );
        }
    }
}
