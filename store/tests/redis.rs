//! RedisStore against a real `redis-server` (each test starts its own on a free loopback
//! port, so it can stop and restart it): merge of other processes' writes, no lost updates
//! under concurrent writers, single-flight refresh with a leased, fenced lock, a holder
//! stalling past its lease, Redis down at open, lost mid-run and back, and slow.
//!
//! The tests needing the server are `#[ignore]`d so a plain `cargo test` stays green
//! without it; `scripts/test-redis.sh` installs Debian's `redis-server` and runs them with
//! `--ignored` (`CREDPOOL_REDIS_SERVER` names another binary).
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credpool_core::{
    Decision, EntryId, ErrorCode, LeaseId, Millis, PoolKey, Reason, RefreshOutcome, Secret,
};
use credpool_store::{RedisStore, RefreshStart, Store, StoreOptions};
use serde_json::{Value, json};

const NEEDS: &str = "needs redis-server (scripts/test-redis.sh)";

/// A `redis-server` child on a free loopback port, killed on drop. With `durable`, it
/// keeps an append-only file (fsync always) so a restart keeps the data.
struct Server {
    port: u16,
    dir: tempfile::TempDir,
    durable: bool,
    child: Option<Child>,
}

impl Server {
    fn start(durable: bool) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            port,
            dir: tempfile::tempdir().unwrap(),
            durable,
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let binary =
            std::env::var("CREDPOOL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let mut command = Command::new(binary);
        command
            .arg("--port")
            .arg(self.port.to_string())
            .args([
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--enable-debug-command",
                "local",
            ])
            .arg("--dir")
            .arg(self.dir.path());
        if self.durable {
            command.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test-redis.sh installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(client) = redis::Client::open(self.url())
                && let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200))
                && redis::cmd("PING").query::<String>(&mut conn).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the server is gone at once (mid-run loss).
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

fn options(writer: &str) -> StoreOptions {
    let mut options = StoreOptions::new(writer, 7);
    options.reconnect_interval = Duration::ZERO;
    options.io_timeout = Duration::from_millis(500);
    options.connect_timeout = Duration::from_millis(500);
    options
}

fn open(server: &Server, writer: &str) -> Store {
    Store::open(&server.url(), options(writer)).unwrap()
}

fn redis_store(server: &Server, writer: &str) -> RedisStore {
    RedisStore::open(&server.url(), options(writer)).unwrap()
}

fn run(store: &mut Store, now: u64, input: Value) -> Value {
    serde_json::to_value(store.handle_value(Millis(now), input).unwrap()).unwrap()
}

fn setup_keys(store: &mut Store, n: usize) {
    run(
        store,
        0,
        json!({"type": "configure_pool", "pool": "keys", "strategy": "random"}),
    );
    for i in 0..n {
        run(
            store,
            0,
            json!({"type": "add_entry", "pool": "keys", "entry": {"id": format!("k{i}"), "access_token": format!("sk-k{i}")}}),
        );
    }
}

fn setup_oauth(store: &mut Store) {
    run(
        store,
        0,
        json!({"type": "add_entry", "pool": "oauth", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
    );
}

/// One selection: acquire on `keys` and a 200 report; the entry used.
fn select(store: &mut Store, now: u64) -> String {
    let d = run(store, now, json!({"type": "acquire", "pool": "keys"}));
    assert_eq!(d["type"], "use", "{d}");
    let report = json!({"type": "report", "pool": "keys", "lease_id": d["lease_id"], "response": {"status": 200}});
    assert_eq!(run(store, now, report)["type"], "done");
    d["entry_id"].as_str().unwrap().to_owned()
}

/// Total selections recorded in `state` for `writer` (all writers when `None`).
fn selections(state: &Value, writer: Option<&str>) -> u64 {
    state["pools"]["keys"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["request_counts"].as_object().unwrap().iter())
        .filter(|(w, _)| writer.is_none_or(|want| w.as_str() == want))
        .map(|(_, n)| n.as_u64().unwrap())
        .sum()
}

/// The state as a fresh process sees it in Redis.
fn state_in_redis(server: &Server) -> Value {
    let store = open(server, "reader");
    serde_json::to_value(store.registry().export_state()).unwrap()
}

fn oauth() -> (PoolKey, EntryId) {
    (
        PoolKey::parse("oauth").unwrap(),
        EntryId::parse("o").unwrap(),
    )
}

fn refreshed(token: &str) -> RefreshOutcome {
    RefreshOutcome::Refreshed {
        access_token: Secret::new(format!("at-{token}")),
        refresh_token: Some(Secret::new(format!("rt-{token}"))),
        expires_at: Some(Millis(10_000_000)),
    }
}

fn reason(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Use { reason, .. } => *reason,
        other => panic!("expected a use decision, got {other:?}"),
    }
}

#[test]
fn unreachable_at_open_is_a_clear_io_error() {
    // A port nothing listens on (bound, then released).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}/0?namespace=t");
    let err = Store::open(&url, options("w")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(
        !err.to_string().contains("hunter2"),
        "the password leaked: {err}"
    );
}

#[test]
fn a_path_opens_a_file_store_and_a_url_a_redis_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pools.json");
    let mut store = Store::open(path.to_str().unwrap(), options("w")).unwrap();
    assert!(matches!(store, Store::Sqlite(_)));
    setup_keys(&mut store, 1);
    assert_eq!(store.path(), Some(path.as_path()));
    assert!(!store.has_pending());
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn another_process_writes_are_merged_before_deciding() {
    let server = Server::start(false);
    let mut a = open(&server, "wa");
    let mut b = open(&server, "wb");
    assert!(matches!(a, Store::Redis(_)), "{NEEDS}");
    setup_keys(&mut a, 2);
    // b sees a's pool at its next call (the generation moved).
    assert!(b.reload().unwrap());
    assert_eq!(b.registry().pools().count(), 1);
    // b benches k0 (a 401 marks it dead); a never hands k0 out afterwards.
    let d = run(&mut b, 10, json!({"type": "acquire", "pool": "keys"}));
    let bad = d["entry_id"].as_str().unwrap().to_owned();
    run(
        &mut b,
        10,
        json!({"type": "report", "pool": "keys", "lease_id": d["lease_id"], "response": {"status": 401}}),
    );
    for t in 0..20 {
        assert_ne!(select(&mut a, 20 + t), bad);
    }
    // A reload also reads the counters a's selections did not need (b's); after it,
    // nothing moved: reload is one read of the stamp and merges nothing.
    a.reload().unwrap();
    assert!(!a.reload().unwrap());
    // Namespaces are separate.
    let other = Store::open(&format!("{}?namespace=other", server.url()), options("w")).unwrap();
    assert_eq!(other.registry().pools().count(), 0);
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn concurrent_writers_never_lose_an_update() {
    let server = Server::start(false);
    setup_keys(&mut open(&server, "setup"), 3);
    let per_writer = 150;
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let url = server.url();
            std::thread::spawn(move || {
                let mut store = Store::open(&url, options(&format!("w{w}"))).unwrap();
                for t in 0..per_writer {
                    select(&mut store, 100 + t);
                }
                assert!(!store.has_pending());
                // Selections move counters and the cursor, which never conflict.
                assert_eq!(store.conflicts(), 0);
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let state = state_in_redis(&server);
    assert_eq!(selections(&state, None), 4 * per_writer);
    for w in 0..4 {
        assert_eq!(selections(&state, Some(&format!("w{w}"))), per_writer);
    }
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn redis_lost_mid_run_decisions_continue_and_marks_merge_when_it_returns() {
    let mut server = Server::start(true);
    let a = redis_store(&server, "wa");
    let mut b = open(&server, "wb");
    setup_keys(&mut b, 3);
    setup_oauth(&mut b);
    let mut a_store = Store::Redis(a);
    for t in 0..5 {
        select(&mut a_store, t);
    }
    let Store::Redis(ref mut a_ref) = a_store else {
        unreachable!()
    };
    assert!(!a_ref.has_pending());
    server.kill();
    // Down: a keeps deciding from its last known state and queues its marks.
    for t in 0..10 {
        select(&mut a_store, 100 + t);
    }
    let d = run(
        &mut a_store,
        200,
        json!({"type": "acquire", "pool": "keys"}),
    );
    let benched = d["entry_id"].as_str().unwrap().to_owned();
    let rotated = run(
        &mut a_store,
        200,
        json!({"type": "report", "pool": "keys", "lease_id": d["lease_id"], "response": {"status": 401}}),
    );
    // A 401 rotates: the decision names the next key (one more selection).
    let rotation = u64::from(rotated["type"] == "use");
    assert!(a_store.has_pending());
    // A refresh does not proceed without the lock.
    let (pool, id) = oauth();
    let err = a_store
        .begin_refresh(Millis(300), &pool, &id, 0, None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.to_string().contains("unreachable"), "{err}");
    assert!(a_store.flush().is_err());
    // Back (with its data): b writes first, then a's next call merges both ways.
    server.restart();
    for t in 0..3 {
        select(&mut b, 400 + t);
    }
    select(&mut a_store, 500);
    assert!(!a_store.has_pending());
    let state = state_in_redis(&server);
    assert_eq!(selections(&state, Some("wa")), 5 + 10 + 1 + rotation + 1);
    assert_eq!(selections(&state, Some("wb")), 3);
    let entry = state["pools"]["keys"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == benched.as_str())
        .unwrap()
        .clone();
    // The 401 made while Redis was down reached it: the key is benched for everyone.
    assert_eq!(entry["status"], "exhausted", "{entry}");
    assert_eq!(entry["status_at"], 200, "{entry}");
    let Store::Redis(a) = a_store else {
        unreachable!()
    };
    assert!(a.is_connected());
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn queued_marks_reseed_a_redis_that_lost_its_data() {
    let mut server = Server::start(false);
    let mut a = open(&server, "wa");
    setup_keys(&mut a, 2);
    select(&mut a, 1);
    server.kill();
    select(&mut a, 2);
    assert!(a.has_pending());
    // Restarted empty (no persistence): a's next call writes its whole state back.
    server.restart();
    a.flush().unwrap();
    let state = state_in_redis(&server);
    assert_eq!(selections(&state, Some("wa")), 2);
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn two_stores_racing_a_refresh_use_the_refresh_token_once() {
    let server = Server::start(false);
    setup_oauth(&mut open(&server, "setup"));
    let uses = Arc::new(Mutex::new(Vec::new()));
    let racers: Vec<_> = (0..4)
        .map(|w| {
            let url = server.url();
            let uses = Arc::clone(&uses);
            std::thread::spawn(move || {
                let mut store = Store::open(&url, options(&format!("w{w}"))).unwrap();
                let d = run(
                    &mut store,
                    2_000,
                    json!({"type": "acquire", "pool": "oauth"}),
                );
                assert_eq!(d["type"], "refresh", "{d}");
                let (pool, id) = oauth();
                let decision = store
                    .refresh(
                        || Millis(2_100),
                        &pool,
                        &id,
                        0,
                        d["lease_id"].as_u64().map(LeaseId),
                        |cred| {
                            let old = cred.refresh_token.as_ref().unwrap().expose().to_owned();
                            uses.lock().unwrap().push(old);
                            std::thread::sleep(Duration::from_millis(50));
                            refreshed(&format!("w{w}"))
                        },
                    )
                    .unwrap();
                reason(&decision)
            })
        })
        .collect();
    let reasons: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
    assert_eq!(*uses.lock().unwrap(), ["rt-0"], "rt-0 used exactly once");
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == Some(Reason::Refreshed))
            .count(),
        1
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| **r == Some(Reason::Adopted))
            .count(),
        3
    );
    let state = state_in_redis(&server);
    assert_eq!(state["pools"]["oauth"]["entries"][0]["token_generation"], 1);
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_holder_stalled_past_its_lease_adopts_instead_of_replaying() {
    let server = Server::start(false);
    setup_oauth(&mut open(&server, "setup"));
    let (pool, id) = oauth();
    let mut short = options("stalled");
    short.refresh_lease = Duration::from_millis(200);
    let mut a = Store::open(&server.url(), short.clone()).unwrap();
    let mut b = open(&server, "wb");
    let RefreshStart::Needed(ticket) = a.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("refresh needed")
    };
    // a stalls past its lease before using the token; b takes the lock and refreshes.
    std::thread::sleep(Duration::from_millis(400));
    let mut b_uses = 0;
    let d = b
        .refresh(
            || Millis(2_100),
            &pool,
            &id,
            0,
            None,
            |_| {
                b_uses += 1;
                refreshed("b")
            },
        )
        .unwrap();
    assert_eq!(reason(&d), Some(Reason::Refreshed));
    assert_eq!(b_uses, 1);
    // a's confirm before use finds the lock lost and the token rotated: it adopts.
    match a.confirm_refresh(Millis(2_200), ticket).unwrap() {
        RefreshStart::Adopted(d) => assert_eq!(reason(&d), Some(Reason::Adopted)),
        RefreshStart::Needed(_) => panic!("a stalled holder must not use rt-0 again"),
    }
    let cred = a.registry().credential(&pool, &id).unwrap();
    assert_eq!(
        cred.refresh_token.as_ref().map(Secret::expose),
        Some("rt-b")
    );
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_holder_stalled_after_sending_keeps_its_token_from_being_replayed() {
    let server = Server::start(false);
    setup_oauth(&mut open(&server, "setup"));
    let (pool, id) = oauth();
    let mut short = options("stalled");
    short.refresh_lease = Duration::from_millis(200);
    let mut a = Store::open(&server.url(), short).unwrap();
    let mut b = open(&server, "wb");
    let RefreshStart::Needed(ticket) = a.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("refresh needed")
    };
    let RefreshStart::Needed(ticket) = a.confirm_refresh(Millis(2_000), ticket).unwrap() else {
        panic!("the lock is still held")
    };
    // a sends rt-0 and stalls past its lease. b takes the lock, but a's send was recorded
    // and never settled: b never sends rt-0 again; the entry asks for a new login.
    std::thread::sleep(Duration::from_millis(400));
    let d = b
        .refresh(
            || Millis(2_100),
            &pool,
            &id,
            0,
            None,
            |_| panic!("rt-0 was sent again"),
        )
        .unwrap();
    assert!(matches!(d, Decision::Fail { .. }), "{d:?}");
    let state = state_in_redis(&server);
    let entry = &state["pools"]["oauth"]["entries"][0];
    assert_eq!(entry["status"], "dead");
    assert_eq!(entry["last_error"]["reason"], "refresh_interrupted");
    // a's answer arrives after all: it is written (the lock is free and nobody rotated
    // the token), so the new pair is kept and the entry lives again.
    let d = a
        .finish_refresh(Millis(2_200), ticket, refreshed("a"))
        .unwrap();
    assert_eq!(reason(&d), Some(Reason::Refreshed));
    let fresh = open(&server, "reader");
    let cred = fresh.registry().credential(&pool, &id).unwrap();
    assert_eq!(
        cred.refresh_token.as_ref().map(Secret::expose),
        Some("rt-a")
    );
    let state = state_in_redis(&server);
    assert_eq!(state["pools"]["oauth"]["entries"][0]["status"], "ok");
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_refresh_lock_released_without_a_result_lets_the_next_holder_in() {
    let server = Server::start(false);
    setup_oauth(&mut open(&server, "setup"));
    let (pool, id) = oauth();
    let mut a = open(&server, "wa");
    let mut b = open(&server, "wb");
    let RefreshStart::Needed(ticket) = a.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("refresh needed")
    };
    drop(ticket);
    let RefreshStart::Needed(ticket) = b.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("the dropped ticket released the lock")
    };
    let d = b
        .finish_refresh(Millis(2_100), ticket, refreshed("b"))
        .unwrap();
    assert_eq!(reason(&d), Some(Reason::Refreshed));
    let lock_key = "credpool:default:refresh:oauth:o";
    let exists: bool = redis::cmd("EXISTS")
        .arg(lock_key)
        .query(&mut server.conn())
        .unwrap();
    assert!(!exists, "finish released the lock");
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_slow_redis_meets_bounded_timeouts() {
    let server = Server::start(false);
    let mut fast = options("wa");
    fast.io_timeout = Duration::from_millis(300);
    let mut a = Store::open(&server.url(), fast.clone()).unwrap();
    setup_keys(&mut a, 2);
    setup_oauth(&mut a);
    let sleep_s = 5;
    let url = server.url();
    let sleeper = std::thread::spawn(move || {
        let mut conn = redis::Client::open(url).unwrap().get_connection().unwrap();
        let _: redis::RedisResult<String> = redis::cmd("DEBUG")
            .arg("SLEEP")
            .arg(sleep_s)
            .query(&mut conn);
    });
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    // Decisions go on from the last known state; the marks are queued.
    select(&mut a, 10);
    assert!(a.has_pending());
    let (pool, id) = oauth();
    let err = a
        .begin_refresh(Millis(20), &pool, &id, 0, None)
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    let err = Store::open(&server.url(), fast).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io);
    assert!(err.to_string().contains("timed out"), "{err}");
    // Each call gave up after its timeout, well before the server woke up.
    assert!(
        start.elapsed() < Duration::from_secs(sleep_s),
        "{:?}",
        start.elapsed()
    );
    sleeper.join().unwrap();
    a.flush().unwrap();
    assert_eq!(selections(&state_in_redis(&server), Some("wa")), 1);
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_pool_view_and_the_wire_export_work_over_redis() {
    let server = Server::start(false);
    let mut a = open(&server, "wa");
    setup_keys(&mut a, 1);
    let mut pool = a.pool(PoolKey::parse("keys").unwrap());
    let d = pool.acquire(Millis(5), None, None).unwrap();
    let Decision::Use { lease_id, .. } = d else {
        panic!("{d:?}")
    };
    pool.release(Millis(6), lease_id).unwrap();
    let export = run(&mut a, 7, json!({"type": "export_state"}));
    let text = export.to_string();
    assert!(text.contains("\"k0\""), "{text}");
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_refresh_result_cut_off_by_an_outage_is_written_when_redis_returns() {
    let mut server = Server::start(true);
    setup_oauth(&mut open(&server, "setup"));
    let (pool, id) = oauth();
    let mut a = open(&server, "wa");
    let mut b = open(&server, "wb");
    let RefreshStart::Needed(ticket) = a.begin_refresh(Millis(2_000), &pool, &id, 0, None).unwrap()
    else {
        panic!("refresh needed")
    };
    // rt-0 went to the provider; Redis dies before the result is written.
    server.kill();
    let d = a
        .finish_refresh(Millis(2_100), ticket, refreshed("a"))
        .unwrap();
    assert_eq!(reason(&d), Some(Reason::Refreshed));
    assert!(a.has_pending(), "the new pair is kept, queued");
    server.restart();
    // a's next call writes it; b then adopts it instead of refreshing rt-0 again.
    a.reload().unwrap();
    assert!(!a.has_pending());
    match b.begin_refresh(Millis(2_200), &pool, &id, 0, None).unwrap() {
        RefreshStart::Adopted(d) => assert_eq!(reason(&d), Some(Reason::Adopted)),
        RefreshStart::Needed(_) => panic!("rt-0 would be replayed"),
    }
    let cred = b.registry().credential(&pool, &id).unwrap();
    assert_eq!(
        cred.refresh_token.as_ref().map(Secret::expose),
        Some("rt-a")
    );
}

#[test]
fn a_rediss_url_to_nothing_is_unreachable_without_the_password() {
    let err = Store::open("rediss://user:hunter2@127.0.0.1:1", options("w")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::Io, "{err}");
    assert!(
        !err.to_string().contains("hunter2"),
        "the password leaked: {err}"
    );
    assert!(
        err.to_string().contains("rediss://***@127.0.0.1:1"),
        "{err}"
    );
}

/// Writes `state`'s pools into `namespace` the way credpool's earlier Redis layout did:
/// one state document per pool under `pool:{pool}`, a generation per pool.
fn write_layout_1(server: &Server, namespace: &str, state: &Value) {
    let mut conn = server.conn();
    for (pool, doc) in state["pools"].as_object().unwrap() {
        let one = json!({"format": "credpool", "schema_version": 1, "pools": {pool: doc}});
        let _: () = redis::cmd("SET")
            .arg(format!("credpool:{namespace}:pool:{pool}"))
            .arg(one.to_string())
            .query(&mut conn)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg(format!("credpool:{namespace}:generations"))
            .arg(pool)
            .arg(3)
            .query(&mut conn)
            .unwrap();
    }
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_namespace_of_the_earlier_layout_migrates_losslessly_and_retires_it() {
    let server = Server::start(false);
    // The state an earlier credpool kept: two pools, selections by two writers, a cooldown.
    let mut registry = credpool_core::Registry::new(credpool_core::Options {
        writer: "old".into(),
        seed: 3,
    })
    .unwrap();
    let inputs = [
        json!({"type": "configure_pool", "pool": "keys", "strategy": "round_robin"}),
        json!({"type": "add_entry", "pool": "keys", "entry": {"id": "k0", "access_token": "sk-mig-0"}}),
        json!({"type": "add_entry", "pool": "keys", "entry": {"id": "k1", "access_token": "sk-mig-1"}}),
        json!({"type": "add_entry", "pool": "oauth", "entry": {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": 1000}}),
        json!({"type": "acquire", "pool": "keys"}),
        json!({"type": "report", "pool": "keys", "lease_id": 1, "response": {"status": 429, "headers": {"retry-after": "3600"}}}),
    ];
    for input in inputs {
        registry.handle_value(Millis(5), input).unwrap();
    }
    let before = serde_json::to_value(registry.export_state()).unwrap();
    write_layout_1(&server, "old", &before);

    let url = format!("{}?namespace=old", server.url());
    let store = Store::open(&url, options("new")).unwrap();
    let migrated = serde_json::to_value(store.registry().export_state()).unwrap();
    assert_eq!(migrated["pools"], before["pools"], "lossless");
    // A fresh process reads the same from the rows.
    let again = Store::open(&url, options("reader")).unwrap();
    assert_eq!(
        serde_json::to_value(again.registry().export_state()).unwrap()["pools"],
        before["pools"]
    );
    // The layout-1 documents are retired: what an earlier credpool reads there now is a
    // newer schema_version, which it refuses (its load is core's `sync`).
    let mut conn = server.conn();
    let old_doc: String = redis::cmd("GET")
        .arg("credpool:old:pool:keys")
        .query(&mut conn)
        .unwrap();
    let marker: Value = serde_json::from_str(&old_doc).unwrap();
    assert_eq!(marker["schema_version"], 2);
    assert!(!old_doc.contains("sk-mig"), "no secret left in the marker");
    let mut earlier = credpool_core::Registry::new(credpool_core::Options {
        writer: "earlier".into(),
        seed: 1,
    })
    .unwrap();
    let refused = earlier.sync(&marker).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::UnsupportedSchemaVersion);
    // Its generations moved, so an earlier writer's compare-and-set fails and re-reads.
    let generation: u64 = redis::cmd("HGET")
        .arg("credpool:old:generations")
        .arg("keys")
        .query(&mut conn)
        .unwrap();
    assert_eq!(generation, 4);
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn selections_and_writers_on_other_entries_never_conflict() {
    let server = Server::start(false);
    let mut setup = open(&server, "setup");
    run(
        &mut setup,
        0,
        json!({"type": "configure_pool", "pool": "keys", "strategy": "round_robin"}),
    );
    for i in 0..4 {
        run(
            &mut setup,
            0,
            json!({"type": "add_entry", "pool": "keys", "entry": {"id": format!("k{i}"), "access_token": format!("sk-k{i}")}}),
        );
    }
    let mut a = redis_store(&server, "wa");
    let mut b = redis_store(&server, "wb");
    // Interleaved selections: each moves a counter and the cursor, never a document.
    for t in 0..40 {
        let store = if t % 2 == 0 { &mut a } else { &mut b };
        let d = store
            .handle_value(Millis(100 + t), json!({"type": "acquire", "pool": "keys"}))
            .unwrap();
        let d = serde_json::to_value(d).unwrap();
        let report = json!({"type": "report", "pool": "keys", "lease_id": d["lease_id"], "response": {"status": 200}});
        store.handle_value(Millis(100 + t), report).unwrap();
    }
    // b reads a's last selection before deciding: round robin stays a rotation across
    // the two processes.
    let state = state_in_redis(&server);
    for entry in state["pools"]["keys"]["entries"].as_array().unwrap() {
        let total: u64 = entry["request_counts"]
            .as_object()
            .unwrap()
            .values()
            .map(|n| n.as_u64().unwrap())
            .sum();
        assert_eq!(total, 10, "each of 4 keys got a quarter of 40: {state}");
    }
    // Each marks the entry it holds (different ones): different rows, no conflict.
    let acquire = |store: &mut RedisStore, t: u64| {
        let d = store
            .handle_value(Millis(t), json!({"type": "acquire", "pool": "keys"}))
            .unwrap();
        serde_json::to_value(d).unwrap()
    };
    let (da, db) = (acquire(&mut a, 500), acquire(&mut b, 501));
    assert_ne!(da["entry_id"], db["entry_id"]);
    for (store, d) in [(&mut a, &da), (&mut b, &db)] {
        let report = json!({"type": "report", "pool": "keys", "lease_id": d["lease_id"], "response": {"status": 429, "headers": {"retry-after": "3600"}}});
        store.handle_value(Millis(502), report).unwrap();
    }
    assert_eq!(a.conflicts() + b.conflicts(), 0);
    let state = state_in_redis(&server);
    let limited = state["pools"]["keys"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "exhausted")
        .count();
    assert_eq!(limited, 2, "both marks landed: {state}");
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_namespace_of_a_newer_layout_is_refused_untouched() {
    let server = Server::start(false);
    let mut conn = server.conn();
    let _: () = redis::cmd("SET")
        .arg("credpool:newer:layout")
        .arg("3")
        .query(&mut conn)
        .unwrap();
    let url = format!("{}?namespace=newer", server.url());
    let err = Store::open(&url, options("w")).unwrap_err();
    assert_eq!(err.code(), ErrorCode::UnsupportedSchemaVersion, "{err}");
    let layout: String = redis::cmd("GET")
        .arg("credpool:newer:layout")
        .query(&mut conn)
        .unwrap();
    assert_eq!(layout, "3");
}

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn a_namespace_wiped_and_rewritten_by_another_process_is_merged_back_whole() {
    let server = Server::start(false);
    let mut a = open(&server, "wa");
    setup_keys(&mut a, 2);
    select(&mut a, 10);
    // Redis loses everything; another process writes the same pool afresh, so its rows
    // start over at the versions a holds, under a lower stamp.
    let _: () = redis::cmd("FLUSHALL").query(&mut server.conn()).unwrap();
    let mut b = open(&server, "wb");
    run(
        &mut b,
        20,
        json!({"type": "add_entry", "pool": "keys", "entry": {"id": "k9", "access_token": "sk-k9"}}),
    );
    // a's next call reads the fresh namespace whole, merges it and writes its own back.
    select(&mut a, 30);
    assert!(!a.has_pending());
    let state = state_in_redis(&server);
    let mut ids: Vec<&str> = state["pools"]["keys"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["k0", "k1", "k9"], "{state}");
}

#[path = "support/concurrency_cap.rs"]
mod concurrency_cap;

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn max_concurrent_per_key_counts_leases_across_processes_until_they_lapse() {
    let server = Server::start(false);
    concurrency_cap::the_cap_counts_other_processes_leases_until_they_lapse(&|writer| {
        open(&server, writer)
    });
}

#[path = "support/refresh_interrupted.rs"]
mod refresh_interrupted;

#[test]
#[ignore = "needs redis-server (scripts/test-redis.sh)"]
fn an_interrupted_refresh_is_never_sent_again() {
    let server = Server::start(false);
    refresh_interrupted::an_interrupted_refresh_is_never_sent_again(&|writer| {
        open(&server, writer)
    });
}
