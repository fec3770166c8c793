//! A stress worker for the stores (driven by `tests/stress/run.py`).
//!
//! ```text
//! stress_worker setup  <store>
//! stress_worker check  <store>
//! stress_worker export <store>
//! stress_worker work   <store> <writer> <ops> <seed> <log> <refresh-log>
//! ```
//!
//! `<store>` is a file path or a Redis URL (`redis://host:port?namespace=NAME`), opened with
//! `Store::open`. `setup` writes the scenario's pools; `check` opens the store (exit 0: it
//! is valid credpool state); `export` prints the state as JSON (how the checker reads a
//! Redis store); `work` performs `ops` random operations and
//! appends one line per acknowledged operation to `<log>` (one `write` per line, so a
//! SIGKILL never leaves a half line). The refresh callback appends
//! `use <entry> <old refresh token> <new refresh token> <writer>` to the shared
//! `<refresh-log>` (O_APPEND), sleeps `STRESS_REFRESH_MS` (default 2: the provider round
//! trip) and returns the new token pair. `STRESS_DURABLE=0` opens the store without fsync;
//! `STRESS_REFRESH_LEASE_MS` sets a Redis refresh lock's lease (default 2000, so a worker
//! killed holding it blocks the others briefly). A call that fails with `lock_timeout` did
//! not happen: it is logged (`lock_timeout`) and retried.
//!
//! Over Redis, a server outage (`run.py --redis-outage`) is ridden out: every call that the
//! store acknowledged while Redis was unreachable (its marks queued) is logged `queued`;
//! a refresh, an open or a flush that fails with `io` (Redis unreachable: the refresh did
//! not start) is logged `unavailable` and retried every 20 ms for up to 60 s.
//!
//! `STRESS_BROKEN=nomerge|nolock` breaks the Redis store on purpose (the negative control
//! of `run.py --negative-control`, over Redis only,
//! `RedisStore::break_for_negative_control`): `nolock` writes rows without their version
//! checks; `nomerge` also stops reading what other processes write.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use credpool_core::{Credential, EntryId, LeaseId, Millis, PoolKey, RefreshOutcome, Secret};
use credpool_store::{Store, StoreOptions, now};
use serde_json::{Value, json};

type Fallible<T> = Result<T, String>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["setup", store] => setup(store),
        ["check", store] => check(store),
        ["export", store] => export(store),
        ["work", store, writer, ops, seed, log, refresh_log] => {
            match (ops.parse::<u64>(), seed.parse::<u64>()) {
                (Ok(ops), Ok(seed)) => work(&Work {
                    store: (*store).to_owned(),
                    writer: (*writer).to_owned(),
                    ops,
                    seed,
                    log: PathBuf::from(log),
                    refresh_log: PathBuf::from(refresh_log),
                    refresh_latency: std::time::Duration::from_millis(
                        std::env::var("STRESS_REFRESH_MS")
                            .ok()
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(2),
                    ),
                }),
                _ => Err("ops and seed must be integers".to_owned()),
            }
        }
        _ => Err(
            "usage: stress_worker setup <store> | check <store> | export <store> | \
             work <store> <writer> <ops> <seed> <log> <refresh-log>"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stress_worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The pools every run starts from: `keys` (k0..k5), `oauth` (o0, o1, expired), `churn`.
/// Options of every store the worker opens.
fn options(writer: &str, seed: u64) -> StoreOptions {
    let mut options = StoreOptions::new(writer, seed);
    options.durable = std::env::var("STRESS_DURABLE").as_deref() != Ok("0");
    options.refresh_lease = std::time::Duration::from_millis(
        std::env::var("STRESS_REFRESH_LEASE_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2_000),
    );
    options
}

fn setup(location: &str) -> Fallible<()> {
    let mut store = Store::open(location, options("setup", 1)).map_err(err)?;
    let t = now();
    let expired = t.0.saturating_sub(60_000);
    let mut inputs = vec![
        json!({"type": "configure_pool", "pool": "keys", "strategy": "random"}),
        json!({"type": "configure_pool", "pool": "oauth", "strategy": "random"}),
    ];
    for i in 0..6 {
        inputs.push(json!({"type": "add_entry", "pool": "keys",
            "entry": {"id": format!("k{i}"), "access_token": format!("sk-k{i}")}}));
    }
    for i in 0..2 {
        inputs.push(json!({"type": "add_entry", "pool": "oauth", "entry": {
            "id": format!("o{i}"), "auth_type": "oauth",
            "access_token": format!("at-seed-o{i}"), "refresh_token": format!("rt-seed-o{i}"),
            "expires_at": expired}}));
    }
    inputs.push(json!({"type": "add_entry", "pool": "churn",
        "entry": {"id": "c-seed", "access_token": "sk-c-seed"}}));
    for input in inputs {
        store.handle_value(t, input).map_err(err)?;
    }
    Ok(())
}

fn check(location: &str) -> Fallible<()> {
    let store = Store::open(location, options("check", 1)).map_err(err)?;
    if let Some(path) = store.path()
        && !path.exists()
    {
        return Err(format!("{} does not exist", path.display()));
    }
    println!("ok: {} pools", store.registry().pools().count());
    Ok(())
}

fn export(location: &str) -> Fallible<()> {
    let store = Store::open(location, options("export", 1)).map_err(err)?;
    let state =
        serde_json::to_string(&store.registry().export_state()).map_err(|e| e.to_string())?;
    println!("{state}");
    Ok(())
}

struct Work {
    store: String,
    writer: String,
    ops: u64,
    seed: u64,
    log: PathBuf,
    refresh_log: PathBuf,
    refresh_latency: std::time::Duration,
}

fn work(w: &Work) -> Fallible<()> {
    let broken = std::env::var("STRESS_BROKEN")
        .ok()
        .filter(|v| !v.is_empty());
    let open = || -> Fallible<Box<dyn Target>> {
        match broken.as_deref() {
            None => Ok(Box::new(
                Store::open(&w.store, options(&w.writer, w.seed)).map_err(err)?,
            )),
            Some(mode @ ("nomerge" | "nolock")) => {
                if !credpool_store::is_redis_location(&w.store) {
                    return Err("the negative control runs over Redis only".into());
                }
                let mut store =
                    credpool_store::RedisStore::open(&w.store, options(&w.writer, w.seed))
                        .map_err(err)?;
                store.break_for_negative_control(mode == "nomerge");
                Ok(Box::new(Store::Redis(store)))
            }
            Some(other) => Err(format!("unknown STRESS_BROKEN mode {other}")),
        }
    };
    let mut log = Log::open(&w.log)?;
    let mut store = until_up(&mut log, &open)?;
    let mut rng = Rng(w.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut live: Vec<String> = Vec::new();
    let mut added = 0_u64;
    for n in 0..w.ops {
        let roll = rng.below(100);
        if roll < 40 {
            // select: acquire on `keys`, then a 200 report (so counters are exactly selections).
            let d = call(
                store.as_mut(),
                &mut log,
                &json!({"type": "acquire", "pool": "keys"}),
            )?;
            let (entry, lease) = use_decision(&d, "use")?;
            log.line(&format!("select keys {entry}"))?;
            let report = json!({"type": "report", "pool": "keys",
                "lease_id": lease, "response": {"status": 200}});
            let done = call(store.as_mut(), &mut log, &report)?;
            expect_type(&done, "done")?;
        } else if roll < 62 {
            let pause = std::time::Duration::from_micros(rng.below(2_000));
            refresh(w, store.as_mut(), &mut log, n, pause)?;
        } else if roll < 75 {
            let id = format!("{}-{added}", w.writer);
            added += 1;
            let input = json!({"type": "add_entry", "pool": "churn",
                "entry": {"id": id, "access_token": format!("sk-{id}")}});
            call(store.as_mut(), &mut log, &input)?;
            log.line(&format!("add {id}"))?;
            live.push(id);
        } else if roll < 87 {
            if live.is_empty() {
                continue;
            }
            let id = live.swap_remove(rng.below(live.len() as u64) as usize);
            log.line(&format!("removing {id}"))?;
            let input = json!({"type": "remove_entry", "pool": "churn", "entry_id": id});
            call(store.as_mut(), &mut log, &input)?;
            log.line(&format!("remove {id}"))?;
        } else if roll < 93 {
            let pool = if rng.below(2) == 0 { "keys" } else { "oauth" };
            call(
                store.as_mut(),
                &mut log,
                &json!({"type": "reset", "pool": pool}),
            )?;
            log.line(&format!("reset {pool}"))?;
        } else {
            // A restart: a fresh store from the file (or Redis), so nothing survives only
            // in memory.
            until_up(&mut log, || store.flush())?;
            drop(store);
            store = until_up(&mut log, &open)?;
            log.line("reopen")?;
        }
    }
    until_up(&mut log, || store.flush())?;
    log.line(&format!("slowest {}", log.slowest.as_millis()))?;
    log.line("finished")?;
    Ok(())
}

/// acquire on `oauth` (always a `refresh` decision: tokens are expired), a pause, then the
/// single-flight refresh, then a 200 report.
fn refresh(
    w: &Work,
    store: &mut dyn Target,
    log: &mut Log,
    n: u64,
    pause: std::time::Duration,
) -> Fallible<()> {
    let d = call(store, log, &json!({"type": "acquire", "pool": "oauth"}))?;
    if d["type"] != "refresh" {
        // Every OAuth entry died of an interrupted refresh (a worker killed mid-send).
        expect_type(&d, "fail")?;
        return log.line("oauth_unavailable");
    }
    let (entry, lease) = use_decision(&d, "refresh")?;
    log.line(&format!("select oauth {entry}"))?;
    // A moment between the decision and the refresh, so other processes can act on the
    // same stale token meanwhile (the adopt path).
    std::thread::sleep(pause);
    let generation = d["generation"]
        .as_u64()
        .ok_or("refresh without generation")?;
    let new_rt = format!("rt-{}-{n}", w.writer);
    let new_at = format!("at-{}-{n}", w.writer);
    let refresh_log = &w.refresh_log;
    let writer = &w.writer;
    let entry_id = entry.clone();
    let mut callback_error = None;
    let mut callback = |cred: &Credential| {
        let old = cred.refresh_token.as_ref().map_or("-", Secret::expose);
        if let Err(e) = append_line(
            refresh_log,
            &format!("use {entry_id} {old} {new_rt} {writer}"),
        ) {
            callback_error = Some(e);
        }
        // The provider round trip (the lock is held meanwhile).
        std::thread::sleep(w.refresh_latency);
        RefreshOutcome::Refreshed {
            access_token: Secret::new(new_at.clone()),
            refresh_token: Some(Secret::new(new_rt.clone())),
            expires_at: Some(Millis(now().0.saturating_sub(1))),
        }
    };
    let unavailable_since = std::time::Instant::now();
    let decision = loop {
        let start = std::time::Instant::now();
        let result = store.refresh(&entry, generation, lease, &mut callback);
        log.timed(start);
        match result {
            Err(e) if e.starts_with(LOCK_TIMEOUT) => log.line("lock_timeout")?,
            Err(e) if e.starts_with(UNAVAILABLE) && unavailable_since.elapsed() < PATIENCE => {
                log.line("unavailable")?;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other?,
        }
    };
    if let Some(e) = callback_error {
        return Err(e);
    }
    if decision["reason"] == "refresh_failed" {
        // An earlier send of this token never settled (its worker was killed): the token
        // is never sent again, the entry is dead, and the request rotates.
        log.line(&format!("interrupted {entry}"))?;
        if decision["type"] == "use" {
            let (other, lease) = use_decision(&decision, "use")?;
            log.line(&format!("select oauth {other}"))?;
            let report = json!({"type": "report", "pool": "oauth",
                "lease_id": lease, "response": {"status": 200}});
            expect_type(&call(store, log, &report)?, "done")?;
        }
        return Ok(());
    }
    let (used, lease) = use_decision(&decision, "use")?;
    if used != entry {
        return Err(format!("refresh of {entry} answered use {used}"));
    }
    match decision["reason"].as_str() {
        Some("refreshed") => log.line(&format!("refreshed {entry} {new_rt}"))?,
        Some("adopted") => log.line(&format!("adopted {entry}"))?,
        other => return Err(format!("refresh answered reason {other:?}")),
    }
    let report = json!({"type": "report", "pool": "oauth",
        "lease_id": lease, "response": {"status": 200}});
    expect_type(&call(store, log, &report)?, "done")
}

const LOCK_TIMEOUT: &str = "LockTimeout";
/// The prefix of an `io` error (Redis unreachable).
const UNAVAILABLE: &str = "Io:";
/// How long an outage is ridden out.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `op` until it does not fail with `io` (Redis unreachable; `PATIENCE` at most),
/// logging `unavailable` for each failed try.
fn until_up<T>(log: &mut Log, mut op: impl FnMut() -> Fallible<T>) -> Fallible<T> {
    let start = std::time::Instant::now();
    loop {
        match op() {
            Err(e) if e.starts_with(UNAVAILABLE) && start.elapsed() < PATIENCE => {
                log.line("unavailable")?;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => return other,
        }
    }
}

/// One store call; a `lock_timeout` (the input did not happen) is logged and retried.
fn call(store: &mut dyn Target, log: &mut Log, input: &Value) -> Fallible<Value> {
    loop {
        let start = std::time::Instant::now();
        let result = store.handle(input.clone());
        log.timed(start);
        match result {
            Err(e) if e.starts_with(LOCK_TIMEOUT) => log.line("lock_timeout")?,
            Ok(out) => {
                if store.pending() {
                    log.line("queued")?;
                }
                return Ok(out);
            }
            other => return other,
        }
    }
}

fn use_decision(d: &Value, want: &str) -> Fallible<(String, u64)> {
    expect_type(d, want)?;
    match (d["entry_id"].as_str(), d["lease_id"].as_u64()) {
        (Some(e), Some(l)) => Ok((e.to_owned(), l)),
        _ => Err(format!("malformed decision {d}")),
    }
}

fn expect_type(d: &Value, want: &str) -> Fallible<()> {
    if d["type"] == want {
        Ok(())
    } else {
        Err(format!("expected a {want} decision, got {d}"))
    }
}

/// What the worker needs from a store (the real one, or the broken negative control).
trait Target {
    fn handle(&mut self, input: Value) -> Fallible<Value>;
    /// Sends changes queued while the shared store was unreachable (none for a file).
    fn flush(&mut self) -> Fallible<()> {
        Ok(())
    }
    /// Whether changes wait for the shared store (Redis unreachable).
    fn pending(&self) -> bool {
        false
    }
    fn refresh(
        &mut self,
        entry: &str,
        generation: u64,
        lease: u64,
        callback: &mut dyn FnMut(&Credential) -> RefreshOutcome,
    ) -> Fallible<Value>;
}

impl Target for Store {
    fn handle(&mut self, input: Value) -> Fallible<Value> {
        let out = self.handle_value(now(), input).map_err(err)?;
        serde_json::to_value(out).map_err(|e| e.to_string())
    }

    fn flush(&mut self) -> Fallible<()> {
        Self::flush(self).map_err(err)
    }

    fn pending(&self) -> bool {
        self.has_pending()
    }

    fn refresh(
        &mut self,
        entry: &str,
        generation: u64,
        lease: u64,
        callback: &mut dyn FnMut(&Credential) -> RefreshOutcome,
    ) -> Fallible<Value> {
        let pool = PoolKey::parse("oauth").map_err(err)?;
        let entry = EntryId::parse(entry).map_err(err)?;
        let d = Self::refresh(
            self,
            now,
            &pool,
            &entry,
            generation,
            Some(LeaseId(lease)),
            callback,
        )
        .map_err(err)?;
        serde_json::to_value(d).map_err(|e| e.to_string())
    }
}

/// The per-worker log: one unbuffered `write` per line; and the slowest store call.
struct Log {
    file: File,
    slowest: std::time::Duration,
}

impl Log {
    fn open(path: &Path) -> Fallible<Self> {
        Ok(Self {
            file: open_append(path)?,
            slowest: std::time::Duration::ZERO,
        })
    }

    fn timed(&mut self, start: std::time::Instant) {
        self.slowest = self.slowest.max(start.elapsed());
    }

    fn line(&mut self, text: &str) -> Fallible<()> {
        self.file
            .write_all(format!("{text}\n").as_bytes())
            .map_err(|e| format!("log: {e}"))
    }
}

fn open_append(path: &Path) -> Fallible<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))
}

/// Appends one line to the shared log with a single `write` on an O_APPEND descriptor.
fn append_line(path: &Path, text: &str) -> Fallible<()> {
    open_append(path)?
        .write_all(format!("{text}\n").as_bytes())
        .map_err(|e| format!("refresh log: {e}"))
}

fn err(e: credpool_core::Error) -> String {
    format!("{:?}: {e}", e.code())
}

/// xorshift64*: enough randomness for choosing operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
