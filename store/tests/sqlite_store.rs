//! The SQLite store (what `Store::open` opens for a path): the file store's promises
//! (merge on write, no lost update, refused data left untouched, 0600, no borrowed secret,
//! single-flight refresh) plus what the row layout adds (removed secrets leave the file,
//! refreshes do not block other writers, least_used fair across processes) and the
//! migration of a JSON store.

use std::fs;
use std::path::{Path, PathBuf};

use credpool_core::{
    Decision, EntryId, ErrorCode, Millis, Options, PoolKey, Reason, RefreshOutcome, Registry,
    Secret,
};
use credpool_store::{RefreshStart, Store, StoreOptions};
use serde_json::{Value, json};

fn open(path: &Path, writer: &str) -> Store {
    Store::open_path(path, StoreOptions::new(writer, 7)).unwrap()
}

fn run(store: &mut Store, now: u64, input: Value) -> Value {
    serde_json::to_value(store.handle_value(Millis(now), input).unwrap()).unwrap()
}

fn add(store: &mut Store, pool: &str, id: &str) {
    run(
        store,
        0,
        json!({"type": "add_entry", "pool": pool, "entry": {"id": id, "access_token": format!("sk-{id}")}}),
    );
}

/// The state as a fresh process reads it.
fn exported(path: &Path) -> Value {
    serde_json::to_value(open(path, "reader").registry().export_state()).unwrap()
}

fn entry_ids(path: &Path, pool: &str) -> Vec<String> {
    let mut ids: Vec<String> = exported(path)["pools"][pool]["entries"]
        .as_array()
        .map(|es| {
            es.iter()
                .map(|e| e["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The database's bytes and its write-ahead log's, as text (secrets are stored as text).
fn file_text(path: &Path) -> String {
    let mut bytes = fs::read(path).unwrap_or_default();
    bytes.extend(fs::read(sibling(path, "-wal")).unwrap_or_default());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

#[test]
fn the_first_write_creates_the_database_0600_and_opening_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/credpool/pools.sqlite");
    let mut store = open(&path, "w1");
    assert!(!path.exists(), "opening does not create the file");
    run(&mut store, 0, json!({"type": "status"}));
    assert!(!path.exists(), "a read does not create it");
    add(&mut store, "openrouter", "a");
    assert_eq!(&fs::read(&path).unwrap()[..16], b"SQLite format 3\0");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [path.clone(), sibling(&path, "-wal"), sibling(&path, "-shm")] {
            if let Ok(meta) = fs::metadata(&file) {
                assert_eq!(
                    meta.permissions().mode() & 0o777,
                    0o600,
                    "{}",
                    file.display()
                );
            }
        }
    }
    assert_eq!(entry_ids(&path, "openrouter"), ["a"]);
}

#[test]
fn two_writers_never_clobber_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut a = open(&path, "wa");
    let mut b = open(&path, "wb");
    add(&mut a, "openrouter", "from-a");
    add(&mut b, "openrouter", "from-b");
    assert_eq!(entry_ids(&path, "openrouter"), ["from-a", "from-b"]);
    run(
        &mut a,
        1,
        json!({"type": "remove_entry", "pool": "openrouter", "entry_id": "from-b"}),
    );
    add(&mut b, "openrouter", "later");
    assert_eq!(entry_ids(&path, "openrouter"), ["from-a", "later"]);
}

#[test]
fn counters_of_many_writers_all_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    add(&mut open(&path, "setup"), "openrouter", "k");
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let path = path.clone();
            std::thread::spawn(move || {
                let mut store = open(&path, &format!("w{w}"));
                for i in 0..50 {
                    let used = run(
                        &mut store,
                        1_000 + i,
                        json!({"type": "acquire", "pool": "openrouter"}),
                    );
                    run(
                        &mut store,
                        1_000 + i,
                        json!({"type": "report", "pool": "openrouter",
                        "lease_id": used["lease_id"], "response": {"status": 200}}),
                    );
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let counts = &exported(&path)["pools"]["openrouter"]["entries"][0]["request_counts"];
    for w in 0..4 {
        assert_eq!(counts[format!("w{w}")], 50, "{counts}");
    }
}

#[test]
fn least_used_stays_fair_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut setup = open(&path, "setup");
    run(
        &mut setup,
        0,
        json!({"type": "configure_pool", "pool": "openrouter", "strategy": "least_used"}),
    );
    for id in ["k1", "k2", "k3"] {
        add(&mut setup, "openrouter", id);
    }
    // Two processes take turns: each pick sees the other's counts, so the three keys stay
    // within one selection of each other.
    let mut a = open(&path, "wa");
    let mut b = open(&path, "wb");
    for i in 0..30 {
        let store = if i % 2 == 0 { &mut a } else { &mut b };
        let used = run(
            store,
            1_000 + i,
            json!({"type": "acquire", "pool": "openrouter"}),
        );
        run(
            store,
            1_000 + i,
            json!({"type": "release", "pool": "openrouter", "lease_id": used["lease_id"]}),
        );
    }
    let state = exported(&path);
    let totals: Vec<u64> = state["pools"]["openrouter"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["request_counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|v| v.as_u64().unwrap())
                .sum()
        })
        .collect();
    assert_eq!(totals.iter().sum::<u64>(), 30);
    assert!(
        totals.iter().max().unwrap() - totals.iter().min().unwrap() <= 1,
        "{totals:?}"
    );
}

#[test]
fn a_key_benched_by_another_process_is_not_handed_out_here() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
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
    let use_b = run(
        &mut b,
        1_200,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(use_b["entry_id"], "k2");
}

#[test]
fn refused_files_are_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // A foreign SQLite database.
    let foreign = dir.path().join("foreign.sqlite");
    {
        let conn = rusqlite::Connection::open(&foreign).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
            .unwrap();
    }
    // A credpool database of a newer layout.
    let newer = dir.path().join("newer.sqlite");
    {
        let mut store = open(&newer, "w");
        add(&mut store, "openrouter", "a");
    }
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("UPDATE meta SET value = 99 WHERE key = 'layout'", [])
        .unwrap();
    let garbage = dir.path().join("garbage.sqlite");
    fs::write(&garbage, b"{not json").unwrap();
    let hermes = dir.path().join("auth.sqlite");
    fs::write(&hermes, br#"{"credential_pool": {}}"#).unwrap();
    let cases = [
        (&foreign, ErrorCode::ForeignDocument),
        (&newer, ErrorCode::UnsupportedSchemaVersion),
        (&garbage, ErrorCode::InvalidState),
        (&hermes, ErrorCode::ForeignDocument),
    ];
    for (path, code) in cases {
        let before = fs::read(path).unwrap();
        let err = Store::open_path(path, StoreOptions::new("w", 1)).unwrap_err();
        assert_eq!(err.code(), code, "{}: {err}", path.display());
        assert_eq!(
            fs::read(path).unwrap(),
            before,
            "{} changed",
            path.display()
        );
    }
}

#[test]
fn no_borrowed_secret_and_no_removed_secret_stays_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut store = open(&path, "w1");
    run(
        &mut store,
        0,
        json!({"type": "seed", "env": {"OPENAI_API_KEY": "sk-env-secret-123"}}),
    );
    run(&mut store, 1, json!({"type": "acquire", "pool": "openai"}));
    run(
        &mut store,
        2,
        json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "gone", "access_token": "sk-removed-secret-456"}}),
    );
    assert!(file_text(&path).contains("sk-removed-secret-456"));
    run(
        &mut store,
        3,
        json!({"type": "remove_entry", "pool": "openrouter", "entry_id": "gone"}),
    );
    let text = file_text(&path);
    assert!(!text.contains("sk-env-secret-123"));
    assert!(
        !text.contains("sk-removed-secret-456"),
        "a removed secret lingers in the file"
    );
    assert!(text.contains("sha256:"));
}

/// An OAuth entry due for a refresh, in a fresh store at `path`.
fn oauth_store(path: &Path) -> Store {
    let mut a = open(path, "wa");
    run(
        &mut a,
        0,
        json!({"type": "add_entry", "pool": "anthropic", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
    );
    a
}

#[test]
fn refresh_is_single_flight_and_other_writers_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut a = oauth_store(&path);
    let mut b = open(&path, "wb");
    let pool = PoolKey::parse("anthropic").unwrap();
    let id = EntryId::parse("o").unwrap();
    let RefreshStart::Needed(ticket) = a.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("a refresh is needed");
    };
    // Another writer goes on meanwhile; a second refresh of the store waits.
    add(&mut b, "openrouter", "k");
    let mut options = StoreOptions::new("wc", 3);
    options.lock_timeout = std::time::Duration::from_millis(100);
    let mut c = Store::open_path(&path, options).unwrap();
    let err = c
        .begin_refresh(Millis(2_050), &pool, &id, 0, None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LockTimeout);
    let outcome = RefreshOutcome::Refreshed {
        access_token: Secret::new("at-1"),
        refresh_token: Some(Secret::new("rt-1")),
        expires_at: Some(Millis(10_000_000)),
    };
    let decision = a.finish_refresh(Millis(2_100), ticket, outcome).unwrap();
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
    // b's refresh of generation 0 adopts generation 1: rt-0 is never replayed.
    let decision = b
        .refresh(
            || Millis(2_200),
            &pool,
            &id,
            0,
            None,
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
    let cred = b.registry().credential(&pool, &id).unwrap();
    assert_eq!(cred.access_token.as_ref().map(Secret::expose), Some("at-1"));
    assert_eq!(cred.generation, 1);
    assert!(
        !file_text(&path).contains("rt-0"),
        "the replaced refresh token left the file"
    );
}

#[test]
fn a_json_store_migrates_losslessly_once_and_old_builds_refuse_it_after() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("pools.json");
    {
        // What an earlier version kept: its registry's export, as the whole file.
        let mut legacy = Registry::new(Options {
            writer: "old".into(),
            seed: 1,
        })
        .unwrap();
        let add = |id: &str| json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": id, "access_token": format!("sk-{id}")}});
        legacy.handle_value(Millis(0), add("a")).unwrap();
        legacy.handle_value(Millis(0), add("b")).unwrap();
        let used = serde_json::to_value(
            legacy
                .handle_value(
                    Millis(1_000),
                    json!({"type": "acquire", "pool": "openrouter"}),
                )
                .unwrap(),
        )
        .unwrap();
        let report = json!({"type": "report", "pool": "openrouter", "lease_id": used["lease_id"], "response": {"status": 402}});
        legacy.handle_value(Millis(1_001), report).unwrap();
        fs::write(
            &json_path,
            serde_json::to_vec(&legacy.export_state()).unwrap(),
        )
        .unwrap();
    }
    let before: Value = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    // Two processes open the JSON store at once: one migrates, the other follows.
    let openers: Vec<_> = (0..2)
        .map(|i| {
            let json_path = json_path.clone();
            std::thread::spawn(move || {
                let store = open(&json_path, &format!("new{i}"));
                store.path().map(Path::to_path_buf)
            })
        })
        .collect();
    for opener in openers {
        assert_eq!(
            opener.join().unwrap(),
            Some(dir.path().join("pools.sqlite"))
        );
    }
    assert_eq!(
        exported(&json_path),
        before,
        "the migrated state is the JSON store's, exactly"
    );
    assert_eq!(exported(&dir.path().join("pools.sqlite")), before);
    let marker: Value = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(marker["schema_version"], 2);
    assert_eq!(marker["moved_to"], "pools.sqlite");
    assert!(
        !marker.to_string().contains("sk-a"),
        "the marker keeps no secret"
    );
    // A build that predates the database refuses the marker instead of starting over:
    // its JSON store loaded a file with `Registry::from_state`.
    let options = Options {
        writer: "old".into(),
        seed: 1,
    };
    let err = Registry::from_state(&marker, options).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedSchemaVersion);
}

#[test]
fn a_database_replaced_under_an_open_store_is_refused_and_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut store = open(&path, "w1");
    add(&mut store, "openai", "a");
    // Another program renames a different file over the path.
    let other = dir.path().join("other");
    fs::write(&other, b"not yours").unwrap();
    fs::rename(&other, &path).unwrap();
    let e = store
        .handle_value(Millis(1), json!({"type": "acquire", "pool": "openai"}))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState, "{e}");
    assert_eq!(
        fs::read(&path).unwrap(),
        b"not yours",
        "nothing written to it"
    );
    assert_eq!(store.reload().unwrap_err().code(), ErrorCode::InvalidState);
    // Overwritten in place (same file, cut short) by another program: refused too.
    let path = dir.path().join("second.sqlite");
    let mut store = open(&path, "w1");
    add(&mut store, "openai", "a");
    fs::write(&path, b"{oops").unwrap();
    let e = store
        .handle_value(Millis(2), json!({"type": "acquire", "pool": "openai"}))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState, "{e}");
    assert_eq!(fs::read(&path).unwrap(), b"{oops", "nothing written to it");
}

#[test]
fn move_aside_takes_the_write_ahead_log_along() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut store = open(&path, "w1");
    add(&mut store, "openai", "a");
    assert!(
        sibling(&path, "-wal").exists(),
        "an open store keeps its log"
    );
    let aside = Store::move_aside(&path).unwrap();
    drop(store);
    assert!(!path.exists() && !sibling(&path, "-wal").exists());
    assert!(!sibling(&path, "-shm").exists());
    // The moved database still reads, log included; a new store at the path starts empty.
    assert_eq!(entry_ids(&aside, "openai"), vec!["a"]);
    assert!(entry_ids(&path, "openai").is_empty());
}

#[test]
fn nothing_changed_means_no_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut store = open(&path, "w1");
    add(&mut store, "openrouter", "a");
    let look = |path: &Path| {
        [path.to_path_buf(), sibling(path, "-wal")]
            .iter()
            .map(|p| fs::metadata(p).map(|m| (m.len(), m.modified().ok())).ok())
            .collect::<Vec<_>>()
    };
    let before = look(&path);
    std::thread::sleep(std::time::Duration::from_millis(20));
    run(&mut store, 10, json!({"type": "status"}));
    run(&mut store, 11, json!({"type": "export_state"}));
    run(&mut store, 12, json!({"type": "tick"}));
    let unknown = json!({"type": "report", "pool": "openrouter", "lease_id": 99, "response": {"status": 200}});
    let err = store.handle_value(Millis(13), unknown).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnknownLease);
    assert_eq!(
        look(&path),
        before,
        "no write for calls that change nothing"
    );
    // A selection is a change (request counters are persisted).
    run(
        &mut store,
        14,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_ne!(look(&path), before);
}

#[test]
fn a_held_lock_times_out_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let mut first = open(&path, "w1");
    add(&mut first, "openrouter", "a");
    // Another process holds the store's write lock (`flock`, as the store takes it).
    let held = fs::File::open(sibling(&path, ".lock")).unwrap();
    held.lock().unwrap();
    let mut options = StoreOptions::new("w2", 1);
    options.lock_timeout = std::time::Duration::from_millis(100);
    let mut waiter = Store::open_path(&path, options).unwrap();
    let err = waiter
        .handle_value(Millis(20), json!({"type": "acquire", "pool": "openrouter"}))
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::LockTimeout);
    assert!(err.message().contains("pools.sqlite.lock"), "{err}");
    // Reads do not take it.
    waiter
        .handle_value(Millis(30), json!({"type": "status"}))
        .unwrap();
    held.unlock().unwrap();
    let d = run(
        &mut waiter,
        40,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(d["type"], "use");
}

#[test]
fn a_pool_view_persists_like_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
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
    assert_eq!(pool.status(Millis(1_300)).unwrap().entries.len(), 2);
    // Another process sees the bench.
    let mut other = open(&path, "w2");
    let use_other = run(
        &mut other,
        1_400,
        json!({"type": "acquire", "pool": "openrouter"}),
    );
    assert_eq!(use_other["entry_id"], "b");
}

/// A call over two stores sharing one database: both calls are told to refresh the same
/// expiring OAuth token; the first refreshes it through the single-flight protocol, the
/// second's protocol finds it rotated and adopts it (`call_resume` then sends with it), so
/// the refresh token is used once.
#[test]
fn calls_on_two_stores_refresh_once_and_adopt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
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
        assert_eq!(action["generation"], 0);
    }
    let lease = |action: &Value| Some(credpool_core::LeaseId(action["lease_id"].as_u64().unwrap()));
    let RefreshStart::Needed(ticket) = a
        .begin_refresh(Millis(2_100), &pool, &id, 0, lease(&ra))
        .unwrap()
    else {
        panic!("a's refresh is needed")
    };
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
    assert_eq!(
        (sa["type"].as_str(), sa["reason"].as_str()),
        (Some("send"), Some("refreshed"))
    );
    match b
        .begin_refresh(Millis(2_400), &pool, &id, 0, lease(&rb))
        .unwrap()
    {
        RefreshStart::Adopted(decision) => assert!(matches!(
            decision,
            Decision::Use {
                reason: Some(Reason::Adopted),
                ..
            }
        )),
        RefreshStart::Needed(_) => panic!("b would replay the rotated refresh token"),
    }
    let sb = run(
        &mut b,
        2_500,
        json!({"type": "call_resume", "call_id": rb["call_id"]}),
    );
    assert_eq!(
        (sb["type"].as_str(), sb["reason"].as_str()),
        (Some("send"), Some("adopted"))
    );
    for (store, action) in [(&mut a, &ra), (&mut b, &rb)] {
        let done = run(
            store,
            2_600,
            json!({"type": "call_report", "call_id": action["call_id"], "response": {"status": 200}}),
        );
        assert_eq!(done["type"], "done");
    }
}

/// A source suppressed by one process (its seeded entry removed) is skipped by another
/// process's seed, and the other's `add` lifts it for both (Hermes scenario 59): the
/// suppression travels in the pool's row.
#[test]
fn a_suppression_made_by_one_process_holds_in_another() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    let seed = json!({"type": "seed", "env": {"OPENROUTER_API_KEY": "sk-or-env"}});
    let mut a = open(&path, "a");
    let mut b = open(&path, "b");
    let added = run(&mut a, 1_000, seed.clone());
    let id = added["added"][0]["entry_id"].as_str().unwrap().to_owned();
    run(&mut b, 1_001, json!({"type": "status"}));
    run(
        &mut a,
        2_000,
        json!({"type": "remove_entry", "pool": "openrouter", "entry_id": id}),
    );
    let out = run(&mut b, 3_000, seed.clone());
    assert_eq!(out["added"], json!([]), "{out}");
    assert_eq!(
        out["suppressed"],
        json!([{"pool": "openrouter", "source": "env:OPENROUTER_API_KEY"}])
    );
    let state = exported(&path);
    assert_eq!(
        state["pools"]["openrouter"]["suppressed_sources"],
        json!({"env:OPENROUTER_API_KEY": 2_000})
    );
    run(
        &mut b,
        4_000,
        json!({"type": "add_entry", "pool": "openrouter", "entry": {"id": "m", "access_token": "sk-m"}}),
    );
    let out = run(&mut a, 5_000, seed);
    assert_eq!(out["added"][0]["source"], "env:OPENROUTER_API_KEY", "{out}");
    assert_eq!(entry_ids(&path, "openrouter").len(), 2);
}

#[path = "support/concurrency_cap.rs"]
mod concurrency_cap;

#[test]
fn max_concurrent_per_key_counts_leases_across_processes_until_they_lapse() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    concurrency_cap::the_cap_counts_other_processes_leases_until_they_lapse(&|writer| {
        open(&path, writer)
    });
}

#[path = "support/refresh_interrupted.rs"]
mod refresh_interrupted;

#[test]
fn an_interrupted_refresh_is_never_sent_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.sqlite");
    refresh_interrupted::an_interrupted_refresh_is_never_sent_again(&|writer| open(&path, writer));
}
