//! An input that fails leaves the persisted state as it was (the bindings rely on it).

use credpool_core::{
    EntryId, Millis, NewEntry, Options, Policy, PoolKey, PoolUpdate, Registry, Secret,
};

#[test]
fn failed_inputs_do_not_create_pools_or_entries() {
    let mut r = Registry::new(Options {
        writer: "w1".into(),
        seed: 1,
    })
    .unwrap();
    let key = PoolKey::parse("openai").unwrap();
    let bad_policy = Policy {
        hint_min_ms: 10,
        hint_max_ms: 1,
        ..Policy::hermes()
    };
    assert!(
        r.configure_pool(
            Millis(1),
            &key,
            PoolUpdate {
                policy: Some(bad_policy),
                ..PoolUpdate::default()
            }
        )
        .is_err()
    );
    let entry = |id: &str| NewEntry {
        id: Some(EntryId::parse(id).unwrap()),
        access_token: Some(Secret::new("sk-test")),
        ..NewEntry::default()
    };
    r.add_entry(Millis(2), &key, entry("a")).unwrap();
    r.remove_entry(Millis(3), &key, &EntryId::parse("a").unwrap())
        .unwrap();
    let before = serde_json::to_value(r.export_state()).unwrap();
    assert!(
        r.add_entry(Millis(4), &key, entry("a")).is_err(),
        "removed ids never come back"
    );
    let other = PoolKey::parse("gemini").unwrap();
    let no_secret = NewEntry {
        id: Some(EntryId::parse("b").unwrap()),
        ..NewEntry::default()
    };
    assert!(r.add_entry(Millis(5), &other, no_secret).is_err());
    assert_eq!(serde_json::to_value(r.export_state()).unwrap(), before);
}
