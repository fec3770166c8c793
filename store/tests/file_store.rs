//! FileStore: persistence, merge on write, reload, corrupt files, the lock, single-flight refresh.

use std::fs;
use std::time::Duration;

use credpool_core::{
    Decision, EntryId, ErrorCode, Millis, PoolKey, Reason, RefreshOutcome, Secret,
};
use credpool_store::{FileStore, RefreshStart, StoreOptions};
use serde_json::{Value, json};

fn open(path: &std::path::Path, writer: &str) -> FileStore {
    FileStore::open(path, StoreOptions::new(writer, 7)).unwrap()
}

fn run(store: &mut FileStore, now: u64, input: Value) -> Value {
    serde_json::to_value(store.handle_value(Millis(now), input).unwrap()).unwrap()
}

fn code(store: &mut FileStore, now: u64, input: Value) -> ErrorCode {
    store.handle_value(Millis(now), input).unwrap_err().code()
}

fn add(store: &mut FileStore, pool: &str, id: &str) {
    run(
        store,
        0,
        json!({"type": "add_entry", "pool": pool, "entry": {"id": id, "access_token": format!("sk-{id}")}}),
    );
}

fn file_json(path: &std::path::Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn entry_ids(path: &std::path::Path, pool: &str) -> Vec<String> {
    file_json(path)["pools"][pool]["entries"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn first_write_creates_the_file_0600_and_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/credpool/pools.json");
    let mut store = open(&path, "w1");
    assert!(!path.exists(), "opening does not create the file");
    add(&mut store, "openrouter", "a");
    assert_eq!(entry_ids(&path, "openrouter"), ["a"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let reopened = open(&path, "w2");
    assert_eq!(reopened.registry().pools().count(), 1);
}

#[test]
fn two_writers_never_clobber_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut a = open(&path, "wa");
    let mut b = open(&path, "wb");
    add(&mut a, "openrouter", "from-a");
    // b never saw from-a; its write merges the file first, so from-a survives.
    add(&mut b, "openrouter", "from-b");
    let mut ids = entry_ids(&path, "openrouter");
    ids.sort();
    assert_eq!(ids, ["from-a", "from-b"]);
    // a removes from-b (which it only learns about from the file) and b's next write keeps it removed.
    run(
        &mut a,
        1,
        json!({"type": "remove_entry", "pool": "openrouter", "entry_id": "from-b"}),
    );
    add(&mut b, "openrouter", "later");
    let mut ids = entry_ids(&path, "openrouter");
    ids.sort();
    assert_eq!(ids, ["from-a", "later"]);
}

#[test]
fn a_key_benched_by_another_process_is_not_handed_out_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut a = open(&path, "wa");
    add(&mut a, "openrouter", "k1");
    add(&mut a, "openrouter", "k2");
    let mut b = open(&path, "wb");
    let use_a = run(
        &mut a,
        1_000,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(use_a["entry_id"], "k1");
    let report = json!({"type": "report", "pool": "openrouter", "lease_id": use_a["lease_id"], "response": {"status": 402}});
    assert_eq!(run(&mut a, 1_100, report)["entry_id"], "k2");
    // b still believes k1 is fine in memory; acquire reloads first.
    let use_b = run(
        &mut b,
        1_200,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(use_b["entry_id"], "k2");
}

#[test]
fn nothing_changed_means_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut store = open(&path, "w1");
    add(&mut store, "openrouter", "a");
    let before = fs::metadata(&path).unwrap().modified().unwrap();
    let bytes = fs::read(&path).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    run(&mut store, 10, json!({"type": "status"}));
    run(&mut store, 11, json!({"type": "export_state"}));
    run(&mut store, 12, json!({"type": "tick"}));
    assert_eq!(
        code(
            &mut store,
            13,
            json!({"type": "report", "pool": "openrouter", "lease_id": 99, "response": {"status": 200}})
        ),
        ErrorCode::UnknownLease
    );
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), before);
    assert_eq!(fs::read(&path).unwrap(), bytes);
    // A selection is a change (request counters are persisted).
    run(
        &mut store,
        14,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_ne!(fs::read(&path).unwrap(), bytes);
}

#[test]
fn corrupt_or_foreign_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], ErrorCode); 5] = [
        (
            "truncated",
            br#"{"format": "credpool", "schema_version": 1, "pools": [{"key"#,
            ErrorCode::InvalidState,
        ),
        ("not json", b"\x00\x01garbage", ErrorCode::InvalidState),
        (
            "newer",
            br#"{"format": "credpool", "schema_version": 99, "pools": []}"#,
            ErrorCode::UnsupportedSchemaVersion,
        ),
        (
            "foreign",
            br#"{"hello": "world"}"#,
            ErrorCode::ForeignDocument,
        ),
        (
            "hermes",
            br#"{"version": 1, "credential_pool": {}}"#,
            ErrorCode::ForeignDocument,
        ),
    ];
    for (name, bytes, want) in cases {
        let path = dir.path().join(format!("{}.json", name.replace(' ', "_")));
        fs::write(&path, bytes).unwrap();
        let err = FileStore::open(&path, StoreOptions::new("w1", 1)).unwrap_err();
        assert_eq!(err.code(), want, "{name}: {err}");
        assert_eq!(fs::read(&path).unwrap(), bytes, "{name}: file untouched");
    }
    // Moving aside happens only on request.
    let path = dir.path().join("truncated.json");
    let aside = FileStore::move_aside(&path).unwrap();
    assert!(!path.exists());
    assert!(aside.to_string_lossy().contains("truncated.json.corrupt-"));
    let mut fresh = open(&path, "w1");
    add(&mut fresh, "openrouter", "a");
    assert_eq!(entry_ids(&path, "openrouter"), ["a"]);
}

#[test]
fn a_file_corrupted_under_a_running_store_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut store = open(&path, "w1");
    add(&mut store, "openrouter", "a");
    fs::write(&path, b"{oops").unwrap();
    assert_eq!(
        code(
            &mut store,
            5,
            json!({"type": "acquire", "pool": "openrouter"})
        ),
        ErrorCode::InvalidState
    );
    assert_eq!(fs::read(&path).unwrap(), b"{oops");
}

#[test]
fn a_held_lock_times_out_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut holder = open(&path, "w1");
    run(
        &mut holder,
        0,
        json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
    );
    let pool = PoolKey::parse("anthropic").unwrap();
    let id = EntryId::parse("o").unwrap();
    let RefreshStart::Needed(ticket) = holder
        .begin_refresh(Millis(10), &pool, &id, 0, None)
        .unwrap()
    else {
        panic!("refresh needed")
    };
    let mut options = StoreOptions::new("w2", 1);
    options.lock_timeout = Duration::from_millis(100);
    let mut waiter = FileStore::open(&path, options).unwrap();
    let err = waiter
        .handle_value(Millis(20), json!({"type": "acquire", "pool": "anthropic"}))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LockTimeout);
    assert!(err.message().contains("pools.json.lock"), "{err}");
    drop(ticket); // released without finishing: nothing changed
    waiter
        .handle_value(Millis(30), json!({"type": "status"}))
        .unwrap();
    let decision = waiter
        .handle_value(Millis(40), json!({"type": "acquire", "pool": "anthropic"}))
        .unwrap();
    assert_eq!(serde_json::to_value(&decision).unwrap()["type"], "refresh");
}

#[test]
fn refresh_is_single_flight_across_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut a = open(&path, "wa");
    run(
        &mut a,
        0,
        json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
    );
    let mut b = open(&path, "wb");
    let pool = PoolKey::parse("anthropic").unwrap();
    let id = EntryId::parse("o").unwrap();
    // Both processes are told to refresh generation 0.
    let da = a
        .handle_value(
            Millis(2_000),
            json!({"type": "acquire", "pool": "anthropic"}),
        )
        .unwrap();
    let db = b
        .handle_value(
            Millis(2_000),
            json!({"type": "acquire", "pool": "anthropic"}),
        )
        .unwrap();
    let lease = |d: &credpool_core::Output| {
        serde_json::to_value(d).unwrap()["lease_id"]
            .as_u64()
            .map(credpool_core::LeaseId)
    };
    for d in [&da, &db] {
        assert_eq!(serde_json::to_value(d).unwrap()["type"], "refresh");
        assert_eq!(serde_json::to_value(d).unwrap()["generation"], 0);
    }
    let mut used = Vec::new();
    let decision = a
        .refresh(
            || Millis(2_100),
            &pool,
            &id,
            0,
            lease(&da),
            |cred| {
                used.push(
                    cred.refresh_token
                        .as_ref()
                        .map(Secret::expose)
                        .unwrap()
                        .to_owned(),
                );
                RefreshOutcome::Refreshed {
                    access_token: Secret::new("at-1"),
                    refresh_token: Some(Secret::new("rt-1")),
                    expires_at: Some(Millis(10_000_000)),
                }
            },
        )
        .unwrap();
    assert!(
        matches!(
            decision,
            Decision::Use {
                reason: Some(Reason::Refreshed),
                ..
            }
        ),
        "{decision:?}"
    );
    // b's refresh finds generation 1 in the file and adopts it: rt-0 is never replayed.
    let decision = b
        .refresh(
            || Millis(2_200),
            &pool,
            &id,
            0,
            lease(&db),
            |_| panic!("must not refresh again"),
        )
        .unwrap();
    assert!(
        matches!(
            decision,
            Decision::Use {
                reason: Some(Reason::Adopted),
                ..
            }
        ),
        "{decision:?}"
    );
    assert_eq!(used, ["rt-0"]);
    let cred = b.registry().credential(&pool, &id).unwrap();
    assert_eq!(cred.access_token.as_ref().map(Secret::expose), Some("at-1"));
    assert_eq!(cred.generation, 1);
}

#[test]
fn secrets_of_borrowed_entries_never_reach_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut store = open(&path, "w1");
    run(
        &mut store,
        0,
        json!({"type": "seed", "env": {"OPENAI_API_KEY": "sk-env-secret-123"}}),
    );
    run(&mut store, 1, json!({"type": "acquire", "pool": "openai"}));
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("sk-env-secret-123"));
    assert!(text.contains("sha256:"));
}

#[test]
fn a_write_that_leaves_the_stamp_unchanged_is_still_merged() {
    // Same inode, same length, same mtime: only the bytes tell another process wrote.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let elsewhere = dir.path().join("elsewhere.json");
    let pad = |mut bytes: Vec<u8>| {
        bytes.resize(64 * 1024, b' ');
        bytes
    };
    let mut source = open(&elsewhere, "w0");
    add(&mut source, "openrouter", "a");
    fs::write(&path, pad(fs::read(&elsewhere).unwrap())).unwrap();
    let mtime = fs::metadata(&path).unwrap().modified().unwrap();
    let mut store = open(&path, "w1");
    add(&mut source, "openrouter", "b");
    {
        use std::io::Write;
        let mut file = fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(&pad(fs::read(&elsewhere).unwrap())).unwrap();
        file.set_modified(mtime).unwrap();
    }
    assert_eq!(fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    add(&mut store, "openrouter", "c");
    let mut ids = entry_ids(&path, "openrouter");
    ids.sort();
    assert_eq!(ids, ["a", "b", "c"]);
}

#[test]
fn temp_files_of_killed_writers_are_removed_by_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let orphan = dir.path().join(".pools.json.tmp-999999-0");
    fs::write(&orphan, b"half a file").unwrap();
    let unrelated = dir.path().join("notes.txt");
    fs::write(&unrelated, b"keep").unwrap();
    let mut store = open(&path, "w1");
    add(&mut store, "openrouter", "a");
    assert!(!orphan.exists());
    assert!(unrelated.exists());
}

#[test]
fn a_pool_view_persists_like_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut store = open(&path, "w1");
    add(&mut store, "openrouter", "a");
    add(&mut store, "openrouter", "b");
    let mut pool = store.pool(PoolKey::parse("openrouter").unwrap());
    let Decision::Use {
        entry_id, lease_id, ..
    } = pool.acquire(Millis(1_000), None, None).unwrap()
    else {
        panic!("two healthy keys")
    };
    assert_eq!(entry_id.as_str(), "a");
    let secret = pool.credential(&entry_id).unwrap().access_token.unwrap();
    assert_eq!(secret.expose(), "sk-a");
    let response = credpool_core::Response {
        status: Some(402),
        ..Default::default()
    };
    let Decision::Use {
        entry_id: next,
        lease_id: next_lease,
        ..
    } = pool.report(Millis(1_100), lease_id, response).unwrap()
    else {
        panic!("402 rotates")
    };
    assert_eq!(next.as_str(), "b");
    pool.release(Millis(1_200), next_lease).unwrap();
    let status = pool.status(Millis(1_300)).unwrap();
    assert_eq!(status.entries.len(), 2);
    // Another process sees the bench.
    let mut other = open(&path, "w2");
    let use_other = run(
        &mut other,
        1_400,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(use_other["entry_id"], "b");
}

/// A call over two stores sharing one file: both calls are told to refresh the same
/// expiring OAuth token; the first refreshes it through the single-flight protocol, the
/// second's protocol finds it rotated and adopts it (`call_resume` then sends with it), so
/// the refresh token is used once.
#[test]
fn calls_on_two_stores_refresh_once_and_adopt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut a = open(&path, "wa");
    run(
        &mut a,
        0,
        json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
    );
    let mut b = open(&path, "wb");
    let pool = PoolKey::parse("anthropic").unwrap();
    let id = EntryId::parse("o").unwrap();
    let start = json!({"type": "call_start", "pool": "anthropic"});
    let ra = run(&mut a, 2_000, start.clone());
    let rb = run(&mut b, 2_000, start);
    for action in [&ra, &rb] {
        assert_eq!(action["type"], "refresh", "{action}");
        assert_eq!(action["reason"], "token_expiring");
        assert_eq!(action["generation"], 0);
    }
    let lease = |action: &Value| Some(credpool_core::LeaseId(action["lease_id"].as_u64().unwrap()));
    // A refreshes under the lock.
    let RefreshStart::Needed(ticket) = a
        .begin_refresh(Millis(2_100), &pool, &id, 0, lease(&ra))
        .unwrap()
    else {
        panic!("a's refresh is needed")
    };
    assert_eq!(
        ticket
            .credential()
            .refresh_token
            .as_ref()
            .map(Secret::expose),
        Some("rt-0")
    );
    let outcome = RefreshOutcome::Refreshed {
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        expires_at: Some(Millis(10_000_000)),
    };
    let recorded = a.finish_refresh(Millis(2_200), ticket, outcome).unwrap();
    assert!(matches!(
        recorded,
        Decision::Use {
            reason: Some(Reason::Refreshed),
            ..
        }
    ));
    let sa = run(
        &mut a,
        2_300,
        json!({"type": "call_resume", "call_id": ra["call_id"]}),
    );
    assert_eq!(sa["type"], "send");
    assert_eq!(sa["access_token"], "at-1");
    assert_eq!(sa["reason"], "refreshed");
    // B's protocol finds the token rotated: adopted, never refreshed again.
    match b
        .begin_refresh(Millis(2_400), &pool, &id, 0, lease(&rb))
        .unwrap()
    {
        RefreshStart::Adopted(decision) => {
            assert!(matches!(
                decision,
                Decision::Use {
                    reason: Some(Reason::Adopted),
                    ..
                }
            ));
        }
        RefreshStart::Needed(_) => panic!("b would replay the rotated refresh token"),
    }
    let sb = run(
        &mut b,
        2_500,
        json!({"type": "call_resume", "call_id": rb["call_id"]}),
    );
    assert_eq!(sb["type"], "send", "{sb}");
    assert_eq!(sb["access_token"], "at-1");
    assert_eq!(sb["reason"], "adopted");
    for (store, action) in [(&mut a, &ra), (&mut b, &rb)] {
        let done = run(
            store,
            2_600,
            json!({"type": "call_report", "call_id": action["call_id"], "response": {"status": 200}}),
        );
        assert_eq!(done["type"], "done");
    }
}
