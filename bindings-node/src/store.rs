//! `FileStore`: the credpool-store file store, async, never blocking the event loop.
//!
//! Every store owns one worker thread (not a libuv pool thread: a wait for the file lock
//! can last seconds, and parked libuv threads would stall `fs` and `dns` for the whole
//! process). The JS thread only converts arguments to wire JSON and posts a job; the
//! worker waits for the lock, does the IO and the core call, and settles the promise
//! through a threadsafe deferred. Jobs run one at a time, in call order.
//!
//! A refresh ticket (`beginRefresh` → `needed`) holds the file lock. While one is out,
//! jobs that need the lock wait in a backlog (read-only ones still run), so the
//! `finishRefresh` / `abandonRefresh` that ends it is never stuck behind them; a backlog
//! job waits at most `lockTimeoutMs`, then fails with `lock_timeout`, exactly like a wait
//! for another process's lock.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use credpool_core::{
    Credential, Decision, EntryId, ErrorCode, Input, LeaseId, Millis, Options, Output, OutputBody,
    PoolKey, RefreshOutcome, Reply, parse_input,
};
use credpool_store::{FileStore as CoreStore, RefreshStart, RefreshTicket, StoreOptions};
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, JsDeferred, JsError};
use napi_derive::napi;
use serde_json::{Map, Value, json};

use crate::error::{Code, error};
use crate::json::Json;
use crate::{clock, guard, integer_value, into_map, object, registry_options, to_u64};

/// Default longest wait for the file lock.
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 10_000;

/// Options of `FileStore.open(path, options)`.
#[napi(object)]
pub struct FileStoreOptions {
    /// This process's writer id (default: 12 random hex characters).
    pub writer: Option<String>,
    /// PRNG seed, a non-negative safe integer (default: from OS randomness).
    pub seed: Option<f64>,
    /// Longest wait for the file lock, in ms, before a `lock_timeout` error (default 10000).
    pub lock_timeout_ms: Option<f64>,
    /// fsync the file and its directory on every write (default true).
    pub durable: Option<bool>,
}

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T>>;
type Deferred<T> = JsDeferred<T, Resolver<T>>;
type Coded<T> = Result<T, napi::Error<Code>>;
type Tickets = Arc<Mutex<HashMap<u32, RefreshTicket>>>;

/// Settles `deferred` (from any thread): a value, or a real `Error` with a `code`.
fn settle<T: ToNapiValue + 'static>(deferred: Deferred<T>, result: Coded<T>) {
    deferred.resolve(Box::new(move |env| {
        result.map_err(|e| napi::Error::from(JsError::from(e).into_unknown(env)))
    }));
}

fn lock_tickets(tickets: &Tickets) -> MutexGuard<'_, HashMap<u32, RefreshTicket>> {
    // A poisoned map is still a map: the worker never panics while holding it.
    tickets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A persisted registry shared with other processes through one JSON file.
#[napi(js_name = "FileStore")]
pub struct FileStore {
    tx: Sender<Msg>,
    path: String,
    tickets: Tickets,
}

#[napi]
impl FileStore {
    /// Opens the store at `path` (default: `$CREDPOOL_HOME/pools.json`, else
    /// `$XDG_CONFIG_HOME/credpool/pools.json`, else `~/.config/credpool/pools.json`).
    /// Loads the file if it exists, without creating it; a file that is not valid credpool
    /// state rejects with `invalid_state` / `unsupported_schema_version` / ... and is left
    /// untouched.
    #[napi(ts_return_type = "Promise<FileStore>")]
    pub fn open<'env>(
        env: &'env Env,
        path: Option<String>,
        options: Option<FileStoreOptions>,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Self, Resolver<Self>>()?;
        match store_options(options) {
            Err(e) => settle(deferred, Err(e)),
            Ok((options, lock_timeout)) => spawn_worker(path, options, lock_timeout, deferred),
        }
        Ok(promise)
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new path.
    #[napi]
    pub fn move_aside(path: String) -> napi::Result<String, Code> {
        let moved = guard(|| CoreStore::move_aside(Path::new(&path)))?;
        Ok(moved.to_string_lossy().into_owned())
    }

    /// The store file.
    #[napi(getter)]
    pub fn path(&self) -> String {
        self.path.clone()
    }

    /// Merges in what other processes wrote since the last look; whether the file changed.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn reload<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(env, Ok(Job::Reload))
    }

    /// Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: the wall clock).
    #[napi(ts_return_type = "Promise<Output>")]
    pub fn handle<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Input")] input: Json,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = input
            .into_value("input")
            .and_then(|input| handle_job(input, now, false));
        self.submit(env, job)
    }

    /// `acquire`: pick an entry for a request.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        pool: String,
        #[napi(ts_arg_type = "{ model?: string; session?: string }")] opts: Option<Value>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = object(opts, "opts").and_then(|mut input| {
            input.insert("pool".into(), Value::String(pool));
            call("acquire", input, now)
        });
        self.submit(env, job)
    }

    /// `report`: a request's outcome against its lease.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn report<'env>(
        &self,
        env: &'env Env,
        pool: String,
        lease_id: f64,
        #[napi(ts_arg_type = "ResponseInfo")] response: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input =
            json!({ "pool": pool, "lease_id": integer_value(lease_id), "response": response });
        self.submit(env, call("report", into_map(input), now))
    }

    /// `release`: close a lease with no outcome (nothing is marked).
    #[napi(ts_return_type = "Promise<{ type: 'released'; lease_id: number } & Changed>")]
    pub fn release<'env>(
        &self,
        env: &'env Env,
        pool: String,
        lease_id: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input = json!({ "pool": pool, "lease_id": integer_value(lease_id) });
        self.submit(env, call("release", into_map(input), now))
    }

    /// `reveal`: an entry's secrets, to send the request with.
    #[napi(ts_return_type = "Promise<CredentialOutput>")]
    pub fn credential<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input = json!({ "pool": pool, "entry_id": entry_id });
        self.submit(env, call("reveal", into_map(input), now))
    }

    /// `begin_turn`: restore pools from their fallback (one pool, or all).
    #[napi(ts_return_type = "Promise<{ type: 'turn_begun'; restored: string[] } & Changed>")]
    pub fn begin_turn<'env>(
        &self,
        env: &'env Env,
        pool: Option<String>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.submit(env, call("begin_turn", input, now))
    }

    /// `refresh_result`: how a refresh ended (prefer `beginRefresh` / `finishRefresh`,
    /// which keep the refresh single-flight across processes).
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn refresh_result<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "RefreshResultInput")] result: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job =
            object(Some(result), "result").and_then(|input| call("refresh_result", input, now));
        self.submit(env, job)
    }

    /// `check_refresh`: whether a refresh from `generation` is still needed.
    #[napi(ts_return_type = "Promise<{ type: 'refresh_check'; needed: boolean } & Changed>")]
    pub fn check_refresh<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: String,
        generation: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "generation": integer_value(generation) });
        self.submit(env, call("check_refresh", into_map(input), now))
    }

    /// `sync`: merge another writer's exported state (and persist the merge).
    #[napi(ts_return_type = "Promise<{ type: 'synced' } & Changed>")]
    pub fn sync<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "StateDocument")] state: Json,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = state
            .into_value("state")
            .and_then(|state| call("sync", into_map(json!({ "state": state })), now));
        self.submit(env, job)
    }

    /// The state document, as of the file now (contains the secrets of non-`env:` entries).
    #[napi(ts_return_type = "Promise<StateDocument>")]
    pub fn export_state<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(
            env,
            handle_job(json!({ "type": "export_state" }), Some(0.0), true),
        )
    }

    /// `status`: status for humans (one pool, or all), as of the file now.
    #[napi(ts_return_type = "Promise<StatusOutput>")]
    pub fn status<'env>(
        &self,
        env: &'env Env,
        pool: Option<String>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let mut input = Map::new();
        if let Some(pool) = pool {
            input.insert("pool".into(), Value::String(pool));
        }
        self.submit(env, call("status", input, now))
    }

    /// `tick`: let time pass; expired cooldowns clear and the next deadline is named.
    #[napi(
        ts_return_type = "Promise<{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed>"
    )]
    pub fn tick<'env>(&self, env: &'env Env, now: Option<f64>) -> napi::Result<Object<'env>> {
        self.submit(env, call("tick", Map::new(), now))
    }

    /// `configure_pool`: create the pool if missing and set its strategy, policy, fallback.
    #[napi(ts_return_type = "Promise<{ type: 'pool_configured'; pool: string } & Changed>")]
    pub fn configure_pool<'env>(
        &self,
        env: &'env Env,
        pool: String,
        #[napi(
            ts_arg_type = "{ strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[] }"
        )]
        config: Option<Value>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = object(config, "config").and_then(|mut input| {
            input.insert("pool".into(), Value::String(pool));
            call("configure_pool", input, now)
        });
        self.submit(env, job)
    }

    /// `add_entry`: add a credential (creating the pool).
    #[napi(ts_return_type = "Promise<{ type: 'entry_added'; entry_id: string } & Changed>")]
    pub fn add_entry<'env>(
        &self,
        env: &'env Env,
        pool: String,
        #[napi(ts_arg_type = "NewEntry")] entry: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input = into_map(json!({ "pool": pool, "entry": entry }));
        self.submit(env, call("add_entry", input, now))
    }

    /// `remove_entry`: remove a credential for good (tombstoned).
    #[napi(ts_return_type = "Promise<{ type: 'entry_removed'; entry_id: string } & Changed>")]
    pub fn remove_entry<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: String,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input = into_map(json!({ "pool": pool, "entry_id": entry_id }));
        self.submit(env, call("remove_entry", input, now))
    }

    /// `set_priority`: move an entry (lower is preferred).
    #[napi(ts_return_type = "Promise<{ type: 'entry_updated'; entry_id: string } & Changed>")]
    pub fn set_priority<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: String,
        priority: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let input =
            json!({ "pool": pool, "entry_id": entry_id, "priority": integer_value(priority) });
        self.submit(env, call("set_priority", into_map(input), now))
    }

    /// `reset`: clear status and cooldowns of one entry, or of every entry of the pool.
    #[napi(ts_return_type = "Promise<{ type: 'reset'; count: number } & Changed>")]
    pub fn reset<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: Option<String>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let mut input = into_map(json!({ "pool": pool }));
        if let Some(id) = entry_id {
            input.insert("entry_id".into(), Value::String(id));
        }
        self.submit(env, call("reset", input, now))
    }

    /// `seed`: adopt credentials from an environment map and custom providers.
    #[napi(
        ts_return_type = "Promise<{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed>"
    )]
    pub fn seed<'env>(
        &self,
        js_env: &'env Env,
        #[napi(ts_arg_type = "Record<string, string>")] env: Option<Value>,
        #[napi(ts_arg_type = "{ custom_providers?: CustomProvider[] }")] config: Option<Value>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let mut input = Map::new();
        for (key, value) in [("env", env), ("config", config)] {
            if let Some(value) = value.filter(|v| !v.is_null()) {
                input.insert(key.into(), value);
            }
        }
        self.submit(js_env, call("seed", input, now))
    }

    /// Step one of the single-flight refresh a `refresh` decision asks for. Takes the file
    /// lock and either adopts a token another process already rotated (`adopted`, lock
    /// released) or answers `needed` with a ticket that HOLDS the lock: refresh
    /// `credential`, then `finishRefresh(ticket, outcome)` — or `abandonRefresh(ticket)`.
    #[napi(
        ts_return_type = "Promise<{ type: 'adopted'; decision: DecisionOutput } | { type: 'needed'; ticket: number; credential: CredentialOutput }>"
    )]
    pub fn begin_refresh<'env>(
        &self,
        env: &'env Env,
        pool: String,
        entry_id: String,
        generation: f64,
        lease_id: Option<f64>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = (|| {
            let generation = to_u64(generation).ok_or_else(|| {
                error(
                    ErrorCode::InvalidInput,
                    "generation must be a non-negative safe integer",
                )
            })?;
            let lease_id = match lease_id {
                None => None,
                Some(id) => Some(LeaseId(to_u64(id).ok_or_else(|| {
                    error(
                        ErrorCode::InvalidInput,
                        "leaseId must be a non-negative safe integer",
                    )
                })?)),
            };
            Ok(Job::Begin {
                pool,
                entry_id,
                generation,
                lease_id,
                now: opt_clock(now)?,
            })
        })();
        self.submit(env, job)
    }

    /// Step two: records how the refresh ended (the new token pair, or the failure),
    /// writes it, and releases the lock. The ticket is spent even when this rejects.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn finish_refresh<'env>(
        &self,
        env: &'env Env,
        ticket: f64,
        #[napi(ts_arg_type = "RefreshOutcome")] outcome: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Json, Resolver<Json>>()?;
        let parsed = (|| Ok((ticket_id(ticket)?, parse_outcome(outcome)?, opt_clock(now)?)))();
        match parsed {
            Err(e) => settle(deferred, Err(e)),
            Ok((ticket, outcome, now)) => self.post(Msg::Finish {
                ticket,
                outcome,
                now,
                reply: deferred,
            }),
        }
        Ok(promise)
    }

    /// Drops a refresh ticket: the lock is released at once and nothing changes. Returns
    /// whether the ticket was still open.
    #[napi]
    pub fn abandon_refresh(&self, ticket: f64) -> bool {
        let Ok(id) = ticket_id(ticket) else {
            return false;
        };
        let dropped = lock_tickets(&self.tickets).remove(&id);
        let open = dropped.is_some();
        drop(dropped); // releases the file lock
        if open {
            let _ = self.tx.send(Msg::Wake);
        }
        open
    }

    /// A view of one pool of this store: the same calls without the `pool` argument.
    #[napi]
    pub fn pool(&self, key: String) -> StorePool {
        StorePool {
            store: Self {
                tx: self.tx.clone(),
                path: self.path.clone(),
                tickets: Arc::clone(&self.tickets),
            },
            key,
        }
    }

    /// Posts a job; its promise settles when the worker ran it.
    fn submit<'env>(&self, env: &'env Env, job: Coded<Job>) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Json, Resolver<Json>>()?;
        match job {
            Err(e) => settle(deferred, Err(e)),
            Ok(job) => self.post(Msg::Run {
                job,
                reply: deferred,
                queued: Instant::now(),
            }),
        }
        Ok(promise)
    }

    fn post(&self, msg: Msg) {
        if let Err(std::sync::mpsc::SendError(Msg::Run { reply, .. } | Msg::Finish { reply, .. })) =
            self.tx.send(msg)
        {
            settle(
                reply,
                Err(error(
                    ErrorCode::Internal,
                    "the store's worker thread is gone",
                )),
            );
        }
    }
}

/// A validated `now`: `None` reads the wall clock when the job runs (after any lock wait).
fn opt_clock(now: Option<f64>) -> Coded<Option<Millis>> {
    now.map(|now| clock(Some(now))).transpose()
}

fn ticket_id(ticket: f64) -> Coded<u32> {
    to_u64(ticket)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                "ticket must be a ticket number from beginRefresh",
            )
        })
}

/// Parses a `RefreshOutcome` with core's input parser (its errors never echo secrets).
fn parse_outcome(outcome: Value) -> Coded<RefreshOutcome> {
    let input = json!({
        "type": "refresh_result", "pool": "p", "entry_id": "e", "generation": 0, "result": crate::integral(outcome)
    });
    match guard(|| parse_input(input))? {
        Input::RefreshResult(result) => Ok(result.result),
        _ => Err(error(
            ErrorCode::Internal,
            "refresh outcome parsed as another input",
        )),
    }
}

fn call(kind: &str, mut input: Map<String, Value>, now: Option<f64>) -> Coded<Job> {
    input.insert("type".into(), Value::String(kind.to_owned()));
    handle_job(Value::Object(input), now, false)
}

fn handle_job(input: Value, now: Option<f64>, state_only: bool) -> Coded<Job> {
    Ok(Job::Handle {
        input,
        now: opt_clock(now)?,
        state_only,
    })
}

fn store_options(options: Option<FileStoreOptions>) -> Coded<(StoreOptions, Duration)> {
    let FileStoreOptions {
        writer,
        seed,
        lock_timeout_ms,
        durable,
    } = options.unwrap_or(FileStoreOptions {
        writer: None,
        seed: None,
        lock_timeout_ms: None,
        durable: None,
    });
    let Options { writer, seed } = registry_options(writer, seed)?;
    let lock_timeout = match lock_timeout_ms {
        Some(ms) => to_u64(ms).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                "lockTimeoutMs must be a non-negative safe integer",
            )
        })?,
        None => DEFAULT_LOCK_TIMEOUT_MS,
    };
    let lock_timeout = Duration::from_millis(lock_timeout);
    let mut options = StoreOptions::new(writer, seed);
    options.lock_timeout = lock_timeout;
    options.durable = durable.unwrap_or(true);
    Ok((options, lock_timeout))
}

enum Msg {
    Run {
        job: Job,
        reply: Deferred<Json>,
        queued: Instant,
    },
    Finish {
        ticket: u32,
        outcome: RefreshOutcome,
        now: Option<Millis>,
        reply: Deferred<Json>,
    },
    /// A ticket was abandoned: the backlog may run.
    Wake,
}

enum Job {
    Handle {
        input: Value,
        now: Option<Millis>,
        /// Answer only the `state` of an `export_state` output.
        state_only: bool,
    },
    Reload,
    Begin {
        pool: String,
        entry_id: String,
        generation: u64,
        lease_id: Option<LeaseId>,
        now: Option<Millis>,
    },
}

impl Job {
    /// Whether the job takes the file lock (so must wait while a ticket holds it).
    fn needs_lock(&self) -> bool {
        match self {
            Self::Reload => false,
            Self::Begin { .. } => true,
            Self::Handle { input, .. } => !matches!(
                input.get("type").and_then(Value::as_str),
                Some("status" | "export_state" | "reveal" | "check_refresh")
            ),
        }
    }
}

/// Starts the store's worker thread; it opens the store and settles `opened`.
fn spawn_worker(
    path: Option<String>,
    options: StoreOptions,
    lock_timeout: Duration,
    opened: Deferred<FileStore>,
) {
    let (tx, rx) = channel();
    let tickets = Tickets::default();
    // The deferred goes to the thread; if the spawn fails it comes back through this slot.
    let slot = Arc::new(Mutex::new(Some(opened)));
    let thread_slot = Arc::clone(&slot);
    let thread_tickets = Arc::clone(&tickets);
    let spawned = std::thread::Builder::new()
        .name("credpool-store".into())
        .spawn(move || {
            let Some(opened) = thread_slot.lock().ok().and_then(|mut s| s.take()) else {
                return;
            };
            let store = guard(|| {
                let path = match path {
                    Some(path) => PathBuf::from(path),
                    None => credpool_store::default_path()?,
                };
                CoreStore::open(path, options)
            });
            match store {
                Err(e) => settle(opened, Err(e)),
                Ok(store) => {
                    let js = FileStore {
                        tx,
                        path: store.path().to_string_lossy().into_owned(),
                        tickets: Arc::clone(&thread_tickets),
                    };
                    settle(opened, Ok(js));
                    Worker {
                        store,
                        tickets: thread_tickets,
                        lock_timeout,
                        next_ticket: 0,
                        backlog: VecDeque::new(),
                    }
                    .run(&rx);
                }
            }
        });
    if spawned.is_err()
        && let Some(opened) = slot.lock().ok().and_then(|mut s| s.take())
    {
        settle(
            opened,
            Err(error(
                ErrorCode::Io,
                "cannot start the store's worker thread",
            )),
        );
    }
}

struct Worker {
    store: CoreStore,
    tickets: Tickets,
    lock_timeout: Duration,
    next_ticket: u32,
    /// Jobs that need the lock while this store's own ticket holds it.
    backlog: VecDeque<(Job, Deferred<Json>, Instant)>,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            while !self.gated()
                && let Some((job, reply, _)) = self.backlog.pop_front()
            {
                self.run_job(job, reply);
            }
            let msg = match self.backlog.front() {
                Some((_, _, queued)) => {
                    let deadline = *queued + self.lock_timeout;
                    match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                        Ok(msg) => Some(msg),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match rx.recv() {
                    Ok(msg) => Some(msg),
                    Err(_) => break,
                },
            };
            match msg {
                Some(Msg::Run { job, reply, queued }) => {
                    if job.needs_lock() && self.gated() {
                        self.backlog.push_back((job, reply, queued));
                    } else {
                        self.run_job(job, reply);
                    }
                }
                Some(Msg::Finish {
                    ticket,
                    outcome,
                    now,
                    reply,
                }) => {
                    let result = self.finish(ticket, outcome, now);
                    settle(reply, result.map(Json::new));
                }
                Some(Msg::Wake) | None => {}
            }
            self.expire_backlog();
        }
        // The JS object is gone: open tickets drop with the map (locks released).
        lock_tickets(&self.tickets).clear();
    }

    fn gated(&self) -> bool {
        !lock_tickets(&self.tickets).is_empty()
    }

    fn expire_backlog(&mut self) {
        if !self.gated() {
            return;
        }
        while let Some((_, _, queued)) = self.backlog.front() {
            let waited = queued.elapsed();
            if waited < self.lock_timeout {
                break;
            }
            if let Some((_, reply, _)) = self.backlog.pop_front() {
                settle(
                    reply,
                    Err(error(
                        ErrorCode::LockTimeout,
                        format!(
                            "{} stayed locked by a refresh in progress in this process for {} ms \
                             (timeout; finish or abandon its ticket)",
                            self.store.path().display(),
                            waited.as_millis()
                        ),
                    )),
                );
            }
        }
    }

    fn run_job(&mut self, job: Job, reply: Deferred<Json>) {
        let result = match job {
            Job::Reload => guard(|| self.store.reload()).map(Value::Bool),
            Job::Handle {
                input,
                now,
                state_only,
            } => self.handle(input, now, state_only),
            Job::Begin {
                pool,
                entry_id,
                generation,
                lease_id,
                now,
            } => self.begin(&pool, &entry_id, generation, lease_id, now),
        };
        settle(reply, result.map(Json::new));
    }

    fn handle(&mut self, input: Value, now: Option<Millis>, state_only: bool) -> Coded<Value> {
        let now = now.unwrap_or_else(credpool_store::now);
        let output = guard(|| self.store.handle_value(now, input))?;
        let mut value = to_json(&output)?;
        if state_only {
            value = value.get_mut("state").map_or(Value::Null, Value::take);
        }
        Ok(value)
    }

    fn begin(
        &mut self,
        pool: &str,
        entry_id: &str,
        generation: u64,
        lease_id: Option<LeaseId>,
        now: Option<Millis>,
    ) -> Coded<Value> {
        let start = guard(|| {
            let pool = PoolKey::parse(pool)?;
            let entry_id = EntryId::parse(entry_id)?;
            let now = now.unwrap_or_else(credpool_store::now);
            self.store
                .begin_refresh(now, &pool, &entry_id, generation, lease_id)
        })?;
        match start {
            RefreshStart::Adopted(decision) => {
                Ok(json!({ "type": "adopted", "decision": decision_json(decision)? }))
            }
            RefreshStart::Needed(ticket) => {
                let credential = credential_json(ticket.credential())?;
                self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
                let id = self.next_ticket;
                lock_tickets(&self.tickets).insert(id, ticket);
                Ok(json!({ "type": "needed", "ticket": id, "credential": credential }))
            }
        }
    }

    fn finish(&mut self, id: u32, outcome: RefreshOutcome, now: Option<Millis>) -> Coded<Value> {
        let ticket = lock_tickets(&self.tickets).remove(&id).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                format!("refresh ticket {id} is not open (already finished or abandoned)"),
            )
        })?;
        let now = now.unwrap_or_else(credpool_store::now);
        let decision = guard(|| self.store.finish_refresh(now, ticket, outcome))?;
        decision_json(decision)
    }
}

/// A decision the store already persisted, as a `DecisionOutput`.
fn decision_json(decision: Decision) -> Coded<Value> {
    to_json(&Output {
        body: OutputBody::Decision(decision),
        changed: true,
    })
}

fn to_json(output: &Output) -> Coded<Value> {
    serde_json::to_value(output)
        .map_err(|_| error(ErrorCode::Internal, "could not serialise the output"))
}

/// The ticket's credential as a `CredentialOutput` (what `credential()` answers).
fn credential_json(c: &Credential) -> Coded<Value> {
    to_json(&Output {
        body: OutputBody::Reply(Reply::Credential(c.clone().into())),
        changed: false,
    })
}

/// One pool of a [`FileStore`] (`store.pool(key)`): the store's calls bound to that pool.
#[napi]
pub struct StorePool {
    store: FileStore,
    key: String,
}

#[napi]
impl StorePool {
    /// The pool key.
    #[napi(getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }

    /// `acquire` on this pool.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "{ model?: string; session?: string }")] opts: Option<Value>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store.acquire(env, self.key.clone(), opts, now)
    }

    /// `report` on this pool.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn report<'env>(
        &self,
        env: &'env Env,
        lease_id: f64,
        #[napi(ts_arg_type = "ResponseInfo")] response: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store
            .report(env, self.key.clone(), lease_id, response, now)
    }

    /// `release` on this pool.
    #[napi(ts_return_type = "Promise<{ type: 'released'; lease_id: number } & Changed>")]
    pub fn release<'env>(
        &self,
        env: &'env Env,
        lease_id: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store.release(env, self.key.clone(), lease_id, now)
    }

    /// `credential` on this pool.
    #[napi(ts_return_type = "Promise<CredentialOutput>")]
    pub fn credential<'env>(
        &self,
        env: &'env Env,
        entry_id: String,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store.credential(env, self.key.clone(), entry_id, now)
    }

    /// `status` of this pool.
    #[napi(ts_return_type = "Promise<StatusOutput>")]
    pub fn status<'env>(&self, env: &'env Env, now: Option<f64>) -> napi::Result<Object<'env>> {
        self.store.status(env, Some(self.key.clone()), now)
    }

    /// `add_entry` to this pool.
    #[napi(ts_return_type = "Promise<{ type: 'entry_added'; entry_id: string } & Changed>")]
    pub fn add_entry<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "NewEntry")] entry: Value,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store.add_entry(env, self.key.clone(), entry, now)
    }

    /// `reset` one entry of this pool, or all.
    #[napi(ts_return_type = "Promise<{ type: 'reset'; count: number } & Changed>")]
    pub fn reset<'env>(
        &self,
        env: &'env Env,
        entry_id: Option<String>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.store.reset(env, self.key.clone(), entry_id, now)
    }
}
