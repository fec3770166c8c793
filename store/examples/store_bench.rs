//! The store figures of BENCHMARKS.md (run by `scripts/bench.sh`, part `store`).
//!
//! ```text
//! store_bench [--quick] [--json]
//! store_bench worker <store> <writer> <start ms> <duration ms> <durable 0|1>
//! ```
//!
//! Without a subcommand it measures, in one run:
//!
//! 1. **Persisted bytes and writes per 1,000 requests**: the SQLite store (`durable` on)
//!    with one pool of 8 keys; 1,000 requests, each an `acquire` and a `report` (about 5 %
//!    of them 429 with `retry-after: 5`, whose rotation is retried once on the next key
//!    and reported 200), on a simulated clock (50 ms per request; a `wait` decision, every
//!    key cooling down, is slept out on it and the request acquires again). A write is
//!    counted from the outside: a call wrote when this process's `/proc/self/io` write
//!    counters moved during it (their bytes are what it handed to `write`). Then 1,000
//!    `status` calls, which change nothing, must write nothing.
//! 2. **Cost by pool size**: the median of one `select+ok round_robin` and one `429 →
//!    rotate (fill_first)` on a persisted pool of 10, 100 and 1,000 keys (one process,
//!    `durable` on), for SQLite and, when a `redis-server` is on `PATH`, for Redis.
//! 3. **Operations per second** with 1 and 8 processes on one SQLite store (`durable` on,
//!    then off), and with 1 and 16 processes on a Redis pool of 10 and of 1,000 keys: the
//!    driver starts this program as `worker` processes that open the store, wait for a
//!    common start instant, then run `acquire` + `report 200` pairs (2 transactions each)
//!    for a fixed time, and report their compare-and-set retries. Redis runs go to a
//!    server started here on a free loopback port (no persistence: `--save ''
//!    --appendonly no`); without `redis-server` they are skipped with the reason.
//!
//! `--quick` shortens each timed run (1 s instead of 3 s); `--json` prints one line
//! `{"bench": "store", ...}` on stdout for `benches/report.py` (the human summary always
//! goes to stderr).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use credpool_core::Millis;
use credpool_store::{Store, StoreOptions, now};
use serde_json::{Value, json};

type Fallible<T> = Result<T, String>;

/// Keys in the benchmark pool.
const KEYS: usize = 8;
/// Requests of the persisted-bytes loop.
const REQUESTS: u64 = 1_000;
/// The pool every run uses.
const POOL: &str = "bench";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["worker", store, writer, start, duration, durable] => {
            match (start.parse(), duration.parse()) {
                (Ok(start), Ok(duration)) => {
                    worker(store, writer, start, duration, *durable == "1")
                }
                _ => Err("start and duration must be integers (ms)".to_owned()),
            }
        }
        flags if flags.iter().all(|f| matches!(*f, "--quick" | "--json")) => {
            run(flags.contains(&"--quick"), flags.contains(&"--json"))
        }
        _ => Err("usage: store_bench [--quick] [--json] | \
             store_bench worker <store> <writer> <start ms> <duration ms> <durable 0|1>"
            .to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, print_json: bool) -> Fallible<()> {
    let seconds = if quick { 1 } else { 3 };
    let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let persisted = persisted(&dir.path().join("persisted.sqlite"))?;
    eprintln!("persisted: {persisted}");

    let mut throughput = Vec::new();
    for durable in [true, false] {
        for processes in [1, 8] {
            let path = dir
                .path()
                .join(format!("ops-{processes}-{}.sqlite", u8::from(durable)));
            let store = path.to_string_lossy().into_owned();
            let row = timed_run("sqlite", &store, KEYS, processes, durable, seconds)?;
            eprintln!("throughput: {row}");
            throughput.push(row);
        }
    }

    let budget = Duration::from_millis(if quick { 200 } else { 1_000 });
    let sqlite_dir = dir.path().to_path_buf();
    let mut sizes = by_size(
        "sqlite",
        |n, strategy| {
            sqlite_dir
                .join(format!("size-{n}-{strategy}.sqlite"))
                .to_string_lossy()
                .into_owned()
        },
        budget,
    )?;

    let redis = match RedisServer::start(dir.path()) {
        Ok(server) => {
            for keys in [10, 1_000] {
                for processes in [1, 16] {
                    let url = format!("{}?namespace=bench{keys}x{processes}", server.url);
                    let row = timed_run("redis", &url, keys, processes, true, seconds)?;
                    eprintln!("throughput: {row}");
                    throughput.push(row);
                }
            }
            let url = &server.url;
            sizes.extend(by_size(
                "redis",
                |n, strategy| format!("{url}?namespace=size{n}{strategy}"),
                budget,
            )?);
            json!({"ran": true, "version": server.version})
        }
        Err(reason) => {
            eprintln!("store_bench: Redis runs skipped: {reason}");
            json!({"ran": false, "reason": reason})
        }
    };

    let line = json!({
        "bench": "store",
        "quick": quick,
        "filesystem": filesystem(dir.path()),
        "keys": KEYS,
        "seconds_per_run": seconds,
        "persisted": persisted,
        "throughput": throughput,
        "by_size": sizes,
        "redis": redis,
    });
    if print_json {
        println!("{line}");
    }
    Ok(())
}

/// The type of the filesystem holding `dir` (the longest mount point of
/// `/proc/self/mounts` above it; `unknown` elsewhere): fsync costs depend on it.
fn filesystem(dir: &Path) -> String {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (_, mount, kind) = (fields.next()?, fields.next()?, fields.next()?);
            dir.starts_with(mount)
                .then(|| (mount.len(), kind.to_owned()))
        })
        .max()
        .map_or_else(|| "unknown".to_owned(), |(_, kind)| kind)
}

/// Opens a store with this run's options.
fn open(location: &str, writer: &str, durable: bool) -> Fallible<Store> {
    let mut options = StoreOptions::new(writer, 7);
    options.durable = durable;
    Store::open(location, options).map_err(err)
}

/// Writes the benchmark pool (8 API keys, round robin) into a fresh store.
fn setup(location: &str, durable: bool) -> Fallible<()> {
    let configure = json!({"type": "configure_pool", "pool": POOL, "strategy": "round_robin"});
    setup_pool(location, durable, KEYS, configure)
}

/// Writes a pool of `keys` API keys configured by `configure` into a fresh store.
fn setup_pool(location: &str, durable: bool, keys: usize, configure: Value) -> Fallible<()> {
    let mut store = open(location, "setup", durable)?;
    call(&mut store, now(), configure)?;
    for i in 0..keys {
        call(
            &mut store,
            now(),
            json!({"type": "add_entry", "pool": POOL,
                "entry": {"id": format!("k{i}"), "access_token": format!("sk-bench-{i}"),
                    "priority": i}}),
        )?;
    }
    store.flush().map_err(err)
}

/// This process's write counters from `/proc/self/io`: bytes handed to `write`-family
/// calls (`wchar`) and the number of such calls (`syscw`). Counted outside the store, so
/// they hold for any engine (a database page write, a log append, a whole-file rewrite).
fn io_counters() -> Fallible<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/io")
        .map_err(|e| format!("/proc/self/io (Linux only): {e}"))?;
    let field = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("/proc/self/io has no {name}"))
    };
    Ok((field("wchar:")?, field("syscw:")?))
}

/// The bytes the store occupies on disk: the database and its write-ahead log.
fn store_bytes(path: &Path) -> u64 {
    let wal = path.with_file_name(format!(
        "{}-wal",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    [path.to_path_buf(), wal]
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Counts the writes of a store from the outside, call by call: a call wrote when the
/// process's written-bytes counter moved during it (nothing else writes meanwhile).
struct WriteCounter {
    last: (u64, u64),
    writes: u64,
    bytes: u64,
    write_calls: u64,
    calls: u64,
    changed: u64,
    /// Per input type (`acquire`, `report 200`, `report 429`, ...): calls, writes.
    kinds: std::collections::BTreeMap<String, (u64, u64)>,
}

impl WriteCounter {
    fn new() -> Fallible<Self> {
        Ok(Self {
            last: io_counters()?,
            writes: 0,
            bytes: 0,
            write_calls: 0,
            calls: 0,
            changed: 0,
            kinds: std::collections::BTreeMap::new(),
        })
    }

    /// One store call, then a look at the counters.
    fn call(&mut self, store: &mut Store, now: Millis, input: Value) -> Fallible<Value> {
        let mut kind = input["type"].as_str().unwrap_or("?").to_owned();
        if let Some(status) = input["response"]["status"].as_u64() {
            kind = format!("{kind} {status}");
        }
        let out = call(store, now, input)?;
        self.calls += 1;
        if out["changed"] == true {
            self.changed += 1;
        }
        let io = io_counters()?;
        let wrote = io.0 != self.last.0;
        let entry = self.kinds.entry(kind).or_default();
        entry.0 += 1;
        entry.1 += u64::from(wrote);
        if wrote {
            self.writes += 1;
            self.bytes += io.0 - self.last.0;
            self.write_calls += io.1 - self.last.1;
        }
        self.last = io;
        Ok(out)
    }
}

/// Part 1: writes and bytes per 1,000 requests, and the read-only control.
fn persisted(path: &Path) -> Fallible<Value> {
    let location = path.to_string_lossy().into_owned();
    setup(&location, true)?;
    let mut store = open(&location, "bench", true)?;
    let mut counter = WriteCounter::new()?;
    let mut rng = Rng(0x5eed);
    let start = now().0;
    let mut clock = start;
    let (mut rate_limited, mut waits) = (0u64, 0u64);
    for _ in 0..REQUESTS {
        clock += 50;
        // A `wait` (every key cooling down) is slept out, then the request acquires again.
        let (t, lease) = loop {
            let d = counter.call(
                &mut store,
                Millis(clock),
                json!({"type": "acquire", "pool": POOL}),
            )?;
            match (lease_of(&d), d["until"].as_u64()) {
                (Some(lease), _) => break (Millis(clock), lease),
                (None, Some(until)) if d["type"] == "wait" => {
                    waits += 1;
                    clock = clock.max(until);
                }
                _ => return Err(format!("acquire answered {d}")),
            }
        };
        let limited = rng.below(100) < 5;
        let response = if limited {
            rate_limited += 1;
            json!({"status": 429, "headers": {"retry-after": "5"}})
        } else {
            json!({"status": 200})
        };
        let d = counter.call(
            &mut store,
            t,
            json!({"type": "report", "pool": POOL, "lease_id": lease, "response": response}),
        )?;
        // A rotation: the request is retried once on the key it names, and succeeds.
        if let Some(lease) = lease_of(&d) {
            counter.call(
                &mut store,
                t,
                json!({"type": "report", "pool": POOL, "lease_id": lease,
                    "response": {"status": 200}}),
            )?;
        }
    }
    let file_bytes = store_bytes(path);
    let loop_counts = json!({
        "requests": REQUESTS,
        "rate_limited": rate_limited,
        "waits": waits,
        "simulated_ms": clock - start,
        "calls": counter.calls,
        "changed_calls": counter.changed,
        "writes": counter.writes,
        "bytes_written": counter.bytes,
        "write_syscalls": counter.write_calls,
        "file_bytes": file_bytes,
        "by_input": counter.kinds.iter()
            .map(|(k, (calls, writes))| json!({"input": k, "calls": calls, "writes": writes}))
            .collect::<Vec<_>>(),
    });

    let mut quiet = WriteCounter::new()?;
    let t = Millis(clock);
    for _ in 0..REQUESTS {
        quiet.call(&mut store, t, json!({"type": "status", "pool": POOL}))?;
    }
    Ok(json!({
        "mixed": loop_counts,
        "status_only": {
            "calls": quiet.calls,
            "changed_calls": quiet.changed,
            "writes": quiet.writes,
            "bytes_written": quiet.bytes,
        },
    }))
}

/// Pool sizes of part 3.
const SIZES: [usize; 3] = [10, 100, 1_000];

/// Part 3: the median cost of one decision pair on a persisted pool of 10, 100 and 1,000
/// keys (`durable` on, one process): `select+ok round_robin` (an `acquire` + `report
/// 200`) and `429 → rotate (fill_first)` (an `acquire`, a `report 429` that rotates, and
/// the `release` of the sibling; the clock moves 2 h per operation so the cooldown has run
/// out by the next one), the operations `benches/peers.py` times for Hermes.
fn by_size(
    backend: &str,
    location: impl Fn(usize, &str) -> String,
    budget: Duration,
) -> Fallible<Vec<Value>> {
    let mut rows = Vec::new();
    for n in SIZES {
        for (op, strategy) in [
            ("select+ok round_robin", "round_robin"),
            ("429 → rotate (fill_first)", "fill_first"),
        ] {
            let place = location(n, strategy);
            let configure = json!({"type": "configure_pool", "pool": POOL, "strategy": strategy,
                "policy": {"preset": "adaptive", "jitter_percent": 0}});
            setup_pool(&place, false, n, configure)?;
            let mut store = open(&place, "bench", true)?;
            let mut clock = now().0;
            let rotate = strategy == "fill_first";
            let mut pair = || -> Fallible<()> {
                clock += if rotate { 2 * 3_600_000 } else { 1 };
                let t = Millis(clock);
                let d = call(&mut store, t, json!({"type": "acquire", "pool": POOL}))?;
                let lease = lease_of(&d).ok_or_else(|| format!("acquire answered {d}"))?;
                let status = if rotate { 429 } else { 200 };
                let d = call(
                    &mut store,
                    t,
                    json!({"type": "report", "pool": POOL,
                    "lease_id": lease, "response": {"status": status}}),
                )?;
                if rotate {
                    let next = lease_of(&d).ok_or_else(|| format!("a 429 answered {d}"))?;
                    call(
                        &mut store,
                        t,
                        json!({"type": "release", "pool": POOL, "lease_id": next}),
                    )?;
                }
                Ok(())
            };
            let ns = median_ns(&mut pair, budget)?;
            eprintln!("by size: {backend:<6} {op:<26} {n:>5} keys {ns:>10.0} ns");
            rows.push(json!({"backend": backend, "op": op, "n": n, "ns": ns}));
        }
    }
    Ok(rows)
}

/// The median ns of `op` over `budget` (at least 20 runs, after 3 to warm up).
fn median_ns(op: &mut impl FnMut() -> Fallible<()>, budget: Duration) -> Fallible<f64> {
    for _ in 0..3 {
        op()?;
    }
    let mut samples = Vec::new();
    let deadline = Instant::now() + budget;
    while samples.len() < 20 || (Instant::now() < deadline && samples.len() < 20_000) {
        let start = Instant::now();
        op()?;
        samples.push(start.elapsed().as_nanos() as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// Part 2: `processes` workers on one fresh store for `seconds`.
fn timed_run(
    backend: &str,
    location: &str,
    keys: usize,
    processes: usize,
    durable: bool,
    seconds: u64,
) -> Fallible<Value> {
    let configure = json!({"type": "configure_pool", "pool": POOL, "strategy": "round_robin"});
    setup_pool(location, false, keys, configure)?;
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    // Far enough ahead for every worker to start and open the store first.
    let start_ms = now().0 + 400 + 100 * processes as u64;
    let duration_ms = seconds * 1_000;
    let mut children = Vec::new();
    for w in 0..processes {
        let child = Command::new(&exe)
            .args([
                "worker",
                location,
                &format!("w{w}"),
                &start_ms.to_string(),
                &duration_ms.to_string(),
                if durable { "1" } else { "0" },
            ])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn worker: {e}"))?;
        children.push(child);
    }
    let (mut pairs, mut lock_timeouts, mut late, mut conflicts) = (0u64, 0u64, 0u64, 0u64);
    let mut failed = Vec::new();
    for child in children {
        let out = child
            .wait_with_output()
            .map_err(|e| format!("wait for a worker: {e}"))?;
        let text = String::from_utf8_lossy(&out.stdout);
        match (
            out.status.success(),
            serde_json::from_str::<Value>(text.trim()),
        ) {
            (true, Ok(v)) => {
                pairs += v["pairs"].as_u64().unwrap_or(0);
                lock_timeouts += v["lock_timeouts"].as_u64().unwrap_or(0);
                conflicts += v["conflicts"].as_u64().unwrap_or(0);
                late += u64::from(v["late_ms"].as_u64().unwrap_or(0) > 0);
            }
            _ => failed.push(format!("{} {}", out.status, text.trim())),
        }
    }
    if !failed.is_empty() {
        return Err(format!(
            "{backend} run with {processes} workers: {failed:?}"
        ));
    }
    let secs = duration_ms as f64 / 1_000.0;
    Ok(json!({
        "backend": backend,
        "durable": (backend == "sqlite").then_some(durable),
        "keys": keys,
        "processes": processes,
        "seconds": secs,
        "pairs": pairs,
        "pairs_per_s": pairs as f64 / secs,
        "calls_per_s": 2.0 * pairs as f64 / secs,
        "lock_timeouts": lock_timeouts,
        "conflicts": conflicts,
        "conflicts_per_pair": conflicts as f64 / (pairs.max(1)) as f64,
        "late_workers": late,
    }))
}

/// One worker process: acquire + report 200 pairs from `start_ms` for `duration_ms`;
/// prints `{"pairs": N, "lock_timeouts": N, "late_ms": N}`.
fn worker(
    location: &str,
    writer: &str,
    start_ms: u64,
    duration_ms: u64,
    durable: bool,
) -> Fallible<()> {
    let mut store = open(location, writer, durable)?;
    let t = now().0;
    let late_ms = t.saturating_sub(start_ms);
    if t < start_ms {
        std::thread::sleep(Duration::from_millis(start_ms - t));
    }
    let end = start_ms + duration_ms;
    let (mut pairs, mut lock_timeouts) = (0u64, 0u64);
    loop {
        let d = retrying(
            &mut store,
            &mut lock_timeouts,
            || json!({"type": "acquire", "pool": POOL}),
        )?;
        let lease = lease_of(&d).ok_or_else(|| format!("acquire answered {d}"))?;
        let report = || {
            json!({"type": "report", "pool": POOL, "lease_id": lease,
                "response": {"status": 200}})
        };
        retrying(&mut store, &mut lock_timeouts, report)?;
        if now().0 >= end {
            break;
        }
        pairs += 1;
    }
    store.flush().map_err(err)?;
    println!(
        "{}",
        json!({"pairs": pairs, "lock_timeouts": lock_timeouts, "late_ms": late_ms,
            "conflicts": store.conflicts()})
    );
    Ok(())
}

/// A call retried while it fails with `lock_timeout` (the input did not happen).
fn retrying(
    store: &mut Store,
    lock_timeouts: &mut u64,
    input: impl Fn() -> Value,
) -> Fallible<Value> {
    loop {
        match store.handle_value(now(), input()) {
            Ok(out) => return serde_json::to_value(out).map_err(|e| e.to_string()),
            Err(e) if e.code() == credpool_core::ErrorCode::LockTimeout => *lock_timeouts += 1,
            Err(e) => return Err(err(e)),
        }
    }
}

fn call(store: &mut Store, now: Millis, input: Value) -> Fallible<Value> {
    let out = store.handle_value(now, input).map_err(err)?;
    serde_json::to_value(out).map_err(|e| e.to_string())
}

/// The lease of a decision that names one (`use`, `retry_same`).
fn lease_of(d: &Value) -> Option<u64> {
    d["lease_id"].as_u64()
}

fn err(e: credpool_core::Error) -> String {
    format!("{:?}: {e}", e.code())
}

/// A `redis-server` started on a free loopback port, killed on drop.
struct RedisServer {
    child: Child,
    url: String,
    version: String,
}

impl RedisServer {
    fn start(dir: &Path) -> Result<Self, String> {
        let version = Command::new("redis-server")
            .arg("--version")
            .output()
            .map_err(|e| format!("no redis-server on PATH ({e})"))?;
        let version = String::from_utf8_lossy(&version.stdout)
            .split_whitespace()
            .find_map(|w| w.strip_prefix("v="))
            .unwrap_or("unknown")
            .to_owned();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free loopback port: {e}"))?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args(["--loglevel", "warning"])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let server = Self {
            child,
            url: format!("redis://127.0.0.1:{port}"),
            version,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "redis-server did not listen on port {port} within 5 s"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// xorshift64*: the benchmark's 429s, reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        let mut x = self.0.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
