//! `SharedStore`: a store shared by threads, whose refresh runs the host's refresh without
//! holding it (other calls go on), single-flight within the process, and refusing a
//! refresh started from inside a refresh instead of deadlocking.

use std::sync::mpsc;
use std::thread;

use credpool_core::{
    Decision, EntryId, ErrorCode, Millis, PoolKey, Reason, RefreshOutcome, Secret,
};
use credpool_store::{SharedStore, Store, StoreOptions};
use serde_json::json;

fn oauth_store(dir: &tempfile::TempDir) -> SharedStore {
    let mut store =
        Store::open_path(&dir.path().join("pools.sqlite"), StoreOptions::new("w1", 7)).unwrap();
    let entry = json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth",
        "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}});
    store.handle_value(Millis(0), entry).unwrap();
    let key = json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "k", "access_token": "sk-k"}});
    store.handle_value(Millis(0), key).unwrap();
    SharedStore::new(store)
}

fn refreshed(token: &str) -> RefreshOutcome {
    RefreshOutcome::Refreshed {
        access_token: Secret::new(token),
        refresh_token: Some(Secret::new(format!("r{token}"))),
        expires_at: Some(Millis(10_000_000)),
    }
}

#[test]
fn other_calls_go_on_while_a_refresh_runs_and_a_second_refresh_adopts() {
    let dir = tempfile::tempdir().unwrap();
    let shared = oauth_store(&dir);
    let (pool, id) = (
        PoolKey::parse("anthropic").unwrap(),
        EntryId::parse("o").unwrap(),
    );
    let (entered_tx, entered_rx) = mpsc::channel();
    let (proceed_tx, proceed_rx) = mpsc::channel::<()>();
    let (shared, pool, id) = (&shared, &pool, &id);
    thread::scope(|scope| {
        let first = scope.spawn(move || {
            shared.refresh(Millis(2_000), pool, id, 0, None, |credential| {
                assert_eq!(
                    credential.refresh_token.as_ref().map(Secret::expose),
                    Some("rt-0")
                );
                entered_tx.send(()).unwrap();
                proceed_rx.recv().unwrap();
                Ok::<_, ()>((refreshed("at-1"), Millis(2_100)))
            })
        });
        entered_rx.recv().unwrap();
        // The host's refresh runs: another call through the same object goes on.
        let other = json!({"type": "acquire", "pool": "openrouter"});
        shared
            .with(|store| store.handle_value(Millis(2_050), other))
            .unwrap();
        // A second refresh of generation 0 waits for the first, then adopts its token.
        let second = scope.spawn(move || {
            shared.refresh(Millis(2_060), pool, id, 0, None, |_| -> Result<_, ()> {
                panic!("rt-0 must not be used twice")
            })
        });
        proceed_tx.send(()).unwrap();
        let first = first.join().unwrap().unwrap().unwrap();
        assert!(
            matches!(
                first,
                Decision::Use {
                    reason: Some(Reason::Refreshed),
                    ..
                }
            ),
            "{first:?}"
        );
        let second = second.join().unwrap().unwrap().unwrap();
        assert!(
            matches!(
                second,
                Decision::Use {
                    reason: Some(Reason::Adopted),
                    ..
                }
            ),
            "{second:?}"
        );
    });
}

#[test]
fn a_failed_host_refresh_changes_nothing_and_a_nested_refresh_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let shared = oauth_store(&dir);
    let (pool, id) = (
        PoolKey::parse("anthropic").unwrap(),
        EntryId::parse("o").unwrap(),
    );
    let nested = shared
        .refresh(Millis(2_000), &pool, &id, 0, None, |_| {
            let inner = shared.refresh(Millis(2_001), &pool, &id, 0, None, |_| -> Result<_, ()> {
                panic!("never reached")
            });
            Err(inner.err().map(|e| e.code()))
        })
        .unwrap();
    assert_eq!(nested, Err(Some(ErrorCode::InvalidInput)));
    // The refresh lock was released and nothing changed: the next refresh uses rt-0.
    let again = shared
        .refresh(Millis(3_000), &pool, &id, 0, None, |credential| {
            assert_eq!(
                credential.refresh_token.as_ref().map(Secret::expose),
                Some("rt-0")
            );
            Ok::<_, ()>((refreshed("at-1"), Millis(3_100)))
        })
        .unwrap();
    assert!(again.is_ok());
}
