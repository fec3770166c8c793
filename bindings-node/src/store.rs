//! `FileStore`: the credpool-store store (a JSON file, or Redis for a `redis://` location),
//! async, never blocking the event loop.
//!
//! Every store owns one worker thread (not a libuv pool thread: a wait for the file lock
//! or for Redis can last seconds, and parked libuv threads would stall `fs` and `dns` for
//! the whole process). The JS thread only converts arguments to wire JSON and posts a
//! job; the worker waits for the lock, does the IO and the core call, and settles the
//! promise through a threadsafe deferred. Jobs run one at a time, in call order.
//!
//! A refresh ticket (`beginRefresh` → `needed`) holds the store's lock: the file lock, or
//! the entry's Redis refresh lock. While one is out, jobs that need that lock wait in a
//! backlog (for a file: every state-changing job; for Redis: only `beginRefresh`), so the
//! `confirmRefresh` / `finishRefresh` / `abandonRefresh` that ends it is never stuck
//! behind them; a backlog job waits at most `lockTimeoutMs`, then fails with
//! `lock_timeout`, exactly like a wait for another process's lock. Tickets are dropped
//! on the worker thread (releasing a Redis lock is a network round trip).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use credpool_core::{
    Credential, Decision, EntryId, ErrorCode, Input, LeaseId, Millis, Options, Output, OutputBody,
    PoolKey, RefreshOutcome, Reply, parse_input,
};
use credpool_store::{
    FileStore as CoreFileStore, RefreshStart, RefreshTicket, Store as CoreStore, StoreOptions,
};
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi::{Env, JsDeferred, JsError};
use napi_derive::napi;
use serde_json::{Map, Value, json};

use crate::error::{Code, error};
use crate::json::Json;
use crate::{clock, guard, integer_value, into_map, object, registry_options, to_u64};

/// Default longest wait for the file lock.
const DEFAULT_LOCK_TIMEOUT_MS: u64 = 10_000;

/// Options of `FileStore.open(location, options)`.
#[napi(object)]
#[derive(Default)]
pub struct FileStoreOptions {
    /// This process's writer id (default: 12 random hex characters).
    pub writer: Option<String>,
    /// PRNG seed, a non-negative safe integer (default: from OS randomness).
    pub seed: Option<f64>,
    /// Longest wait for the file lock (or a Redis refresh lock), in ms, before a
    /// `lock_timeout` error (default 10000).
    pub lock_timeout_ms: Option<f64>,
    /// File only: fsync the file and its directory on every write (default true).
    pub durable: Option<bool>,
    /// Redis only: the key namespace (`credpool:{namespace}:...`) when the URL names none
    /// (`?namespace=...`); default `default`.
    pub namespace: Option<String>,
    /// Redis only: longest wait to connect, in ms (default 2000).
    pub connect_timeout_ms: Option<f64>,
    /// Redis only: longest wait for one command's reply, in ms (default 2000).
    pub io_timeout_ms: Option<f64>,
    /// Redis only: lease of a refresh lock, in ms; a holder that stalls longer loses it
    /// (default 30000).
    pub refresh_lease_ms: Option<f64>,
    /// Redis only: after a failed connect, calls decide on local state without trying
    /// again for this long, in ms (default 1000).
    pub reconnect_interval_ms: Option<f64>,
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

/// A persisted registry shared with other processes: through one JSON file, or through
/// Redis when opened with a `redis://` URL.
#[napi(js_name = "FileStore")]
pub struct FileStore {
    tx: Sender<Msg>,
    /// The store file (`None` for Redis).
    path: Option<String>,
    /// The file path, or the Redis URL without credentials.
    location: String,
    tickets: Tickets,
    /// Whether the store holds changes Redis has not received (updated after every job).
    pending: Arc<AtomicBool>,
}

#[napi]
impl FileStore {
    /// Opens the store at `location`: a `redis://` / `rediss://` URL
    /// (`redis://[user:password@]host[:port][/db][?namespace=NAME]`) opens the Redis store,
    /// anything else is a file path (default: `$CREDPOOL_HOME/pools.json`, else
    /// `$XDG_CONFIG_HOME/credpool/pools.json`, else `~/.config/credpool/pools.json`).
    /// A file is loaded if it exists, without creating it; a file that is not valid
    /// credpool state rejects with `invalid_state` / `unsupported_schema_version` / ... and
    /// is left untouched. Redis unreachable at open rejects with `io`.
    #[napi(ts_return_type = "Promise<FileStore>")]
    pub fn open<'env>(
        env: &'env Env,
        location: Option<String>,
        options: Option<FileStoreOptions>,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Self, Resolver<Self>>()?;
        match store_options(options) {
            Err(e) => settle(deferred, Err(e)),
            Ok((options, lock_timeout)) => {
                spawn_worker(location, options, lock_timeout, deferred);
            }
        }
        Ok(promise)
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new path.
    #[napi]
    pub fn move_aside(path: String) -> napi::Result<String, Code> {
        let moved = guard(|| CoreFileStore::move_aside(Path::new(&path)))?;
        Ok(moved.to_string_lossy().into_owned())
    }

    /// The store file (`null` for a Redis store).
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.path.clone()
    }

    /// Where the store lives: the file path, or the Redis URL without credentials.
    #[napi(getter)]
    pub fn location(&self) -> String {
        self.location.clone()
    }

    /// Whether changes wait to reach Redis (decided while it was unreachable; as of the
    /// last settled call). Always false for a file store, which never queues.
    #[napi]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Writes the changes queued while Redis was unreachable; rejects with `io` when Redis
    /// still cannot be reached (they stay queued). A no-op for a file store. Call it before
    /// the process exits so nothing stays only in memory. Resolves to `null`.
    #[napi(ts_return_type = "Promise<null>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(env, Ok(Job::Flush))
    }

    /// Merges in what other processes wrote since the last look; whether anything new was
    /// merged.
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

    /// Step one of the single-flight refresh a `refresh` decision asks for. Takes the lock
    /// (the file lock, or the entry's Redis refresh lock) and either adopts a token another
    /// process already rotated (`adopted`, lock released) or answers `needed` with a ticket
    /// that HOLDS the lock: `confirmRefresh(ticket)` right before using the refresh token,
    /// refresh `credential`, then `finishRefresh(ticket, outcome)` — or
    /// `abandonRefresh(ticket)`. Redis unreachable: rejects with `io` (a refresh never
    /// proceeds without the lock).
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

    /// Right before the refresh token is used: checks that `ticket` still holds the lock
    /// and renews a Redis lock's lease. A Redis holder that stalled past its lease lost the
    /// lock: then a token another process rotated meanwhile is adopted (`adopted`; the
    /// ticket is spent and `fn` must not run), or the lock is taken again (`needed`, same
    /// ticket number). A file lock always holds (`needed` at once). Rejects with `io` when
    /// Redis is unreachable (the ticket is spent, its lock released).
    #[napi(
        ts_return_type = "Promise<{ type: 'adopted'; decision: DecisionOutput } | { type: 'needed'; ticket: number; credential: CredentialOutput }>"
    )]
    pub fn confirm_refresh<'env>(
        &self,
        env: &'env Env,
        ticket: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Json, Resolver<Json>>()?;
        match (|| Ok((ticket_id(ticket)?, opt_clock(now)?)))() {
            Err(e) => settle(deferred, Err(e)),
            Ok((ticket, now)) => self.post(Msg::Confirm {
                ticket,
                now,
                reply: deferred,
            }),
        }
        Ok(promise)
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

    /// Drops a refresh ticket: nothing changes, and the lock is released (by the store's
    /// worker, before any job posted later runs). Returns whether the ticket was still
    /// open.
    #[napi]
    pub fn abandon_refresh(&self, ticket: f64) -> bool {
        let Ok(id) = ticket_id(ticket) else {
            return false;
        };
        let Some(dropped) = lock_tickets(&self.tickets).remove(&id) else {
            return false;
        };
        // Released on the worker (a Redis release is a round trip); if the worker is gone,
        // the send hands the ticket back and it drops here.
        let _ = self.tx.send(Msg::Abandon(Box::new(dropped)));
        true
    }

    /// A view of one pool of this store: the same calls without the `pool` argument.
    #[napi]
    pub fn pool(&self, key: String) -> StorePool {
        StorePool {
            store: Self {
                tx: self.tx.clone(),
                path: self.path.clone(),
                location: self.location.clone(),
                tickets: Arc::clone(&self.tickets),
                pending: Arc::clone(&self.pending),
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
        if let Err(std::sync::mpsc::SendError(
            Msg::Run { reply, .. } | Msg::Finish { reply, .. } | Msg::Confirm { reply, .. },
        )) = self.tx.send(msg)
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

/// A duration option in ms (`name` for the error), or `default` when absent.
fn millis_option(ms: Option<f64>, name: &str, default: Duration) -> Coded<Duration> {
    match ms {
        None => Ok(default),
        Some(ms) => to_u64(ms).map(Duration::from_millis).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                format!("{name} must be a non-negative safe integer"),
            )
        }),
    }
}

fn store_options(options: Option<FileStoreOptions>) -> Coded<(StoreOptions, Duration)> {
    let FileStoreOptions {
        writer,
        seed,
        lock_timeout_ms,
        durable,
        namespace,
        connect_timeout_ms,
        io_timeout_ms,
        refresh_lease_ms,
        reconnect_interval_ms,
    } = options.unwrap_or_default();
    let Options { writer, seed } = registry_options(writer, seed)?;
    let mut options = StoreOptions::new(writer, seed);
    options.lock_timeout = millis_option(
        lock_timeout_ms,
        "lockTimeoutMs",
        Duration::from_millis(DEFAULT_LOCK_TIMEOUT_MS),
    )?;
    options.durable = durable.unwrap_or(true);
    options.namespace = namespace;
    options.connect_timeout = millis_option(
        connect_timeout_ms,
        "connectTimeoutMs",
        options.connect_timeout,
    )?;
    options.io_timeout = millis_option(io_timeout_ms, "ioTimeoutMs", options.io_timeout)?;
    options.refresh_lease =
        millis_option(refresh_lease_ms, "refreshLeaseMs", options.refresh_lease)?;
    options.reconnect_interval = millis_option(
        reconnect_interval_ms,
        "reconnectIntervalMs",
        options.reconnect_interval,
    )?;
    let lock_timeout = options.lock_timeout;
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
    Confirm {
        ticket: u32,
        now: Option<Millis>,
        reply: Deferred<Json>,
    },
    /// A ticket was abandoned: drop it (releasing its lock); the backlog may run.
    Abandon(Box<RefreshTicket>),
}

enum Job {
    Handle {
        input: Value,
        now: Option<Millis>,
        /// Answer only the `state` of an `export_state` output.
        state_only: bool,
    },
    Reload,
    Flush,
    Begin {
        pool: String,
        entry_id: String,
        generation: u64,
        lease_id: Option<LeaseId>,
        now: Option<Millis>,
    },
}

impl Job {
    /// Whether the job takes the lock a ticket may hold (so must wait while one is out):
    /// for a file store, every state-changing job takes the file lock; for Redis, only a
    /// `beginRefresh` takes a refresh lock (maybe the very one this process holds).
    fn needs_lock(&self, file: bool) -> bool {
        match self {
            Self::Reload | Self::Flush => false,
            Self::Begin { .. } => true,
            Self::Handle { input, .. } => {
                file && !matches!(
                    input.get("type").and_then(Value::as_str),
                    Some("status" | "export_state" | "reveal" | "check_refresh")
                )
            }
        }
    }
}

/// Starts the store's worker thread; it opens the store and settles `opened`.
fn spawn_worker(
    location: Option<String>,
    options: StoreOptions,
    lock_timeout: Duration,
    opened: Deferred<FileStore>,
) {
    let (tx, rx) = channel();
    let tickets = Tickets::default();
    let pending = Arc::new(AtomicBool::new(false));
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
            let store = guard(|| match location {
                Some(location) => CoreStore::open(&location, options),
                None => CoreStore::open_default(options),
            });
            match store {
                Err(e) => settle(opened, Err(e)),
                Ok(store) => {
                    let js = FileStore {
                        tx,
                        path: store.path().map(|p| p.to_string_lossy().into_owned()),
                        location: store.location(),
                        tickets: Arc::clone(&thread_tickets),
                        pending: Arc::clone(&pending),
                    };
                    settle(opened, Ok(js));
                    Worker {
                        file: matches!(store, CoreStore::File(_)),
                        store,
                        tickets: thread_tickets,
                        pending,
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
    /// A file store (whose tickets hold the lock every write takes).
    file: bool,
    tickets: Tickets,
    /// Shared with the JS object: `store.has_pending()` after every job.
    pending: Arc<AtomicBool>,
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
                    if job.needs_lock(self.file) && self.gated() {
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
                    self.settle_job(reply, result);
                }
                Some(Msg::Confirm { ticket, now, reply }) => {
                    let result = self.confirm(ticket, now);
                    self.settle_job(reply, result);
                }
                Some(Msg::Abandon(ticket)) => drop(ticket), // releases its lock
                None => {}
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
                            self.store.location(),
                            waited.as_millis()
                        ),
                    )),
                );
            }
        }
    }

    /// Settles a job's promise after publishing whether changes are queued (so
    /// `hasPending()` is current once the promise settles).
    fn settle_job(&self, reply: Deferred<Json>, result: Coded<Value>) {
        self.pending
            .store(self.store.has_pending(), Ordering::Release);
        settle(reply, result.map(Json::new));
    }

    fn run_job(&mut self, job: Job, reply: Deferred<Json>) {
        let result = match job {
            Job::Reload => guard(|| self.store.reload()).map(Value::Bool),
            Job::Flush => guard(|| self.store.flush()).map(|()| Value::Null),
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
        self.settle_job(reply, result);
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
        self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
        let id = self.next_ticket;
        self.answer_start(id, start)
    }

    /// A `RefreshStart` as JS: `adopted` with the decision, or `needed` with ticket `id`
    /// (kept open in the map) and its credential.
    fn answer_start(&self, id: u32, start: RefreshStart) -> Coded<Value> {
        match start {
            RefreshStart::Adopted(decision) => {
                Ok(json!({ "type": "adopted", "decision": decision_json(decision)? }))
            }
            RefreshStart::Needed(ticket) => {
                let credential = credential_json(ticket.credential())?;
                lock_tickets(&self.tickets).insert(id, ticket);
                Ok(json!({ "type": "needed", "ticket": id, "credential": credential }))
            }
        }
    }

    fn confirm(&mut self, id: u32, now: Option<Millis>) -> Coded<Value> {
        let ticket = self.take_ticket(id)?;
        let now = now.unwrap_or_else(credpool_store::now);
        let start = guard(|| self.store.confirm_refresh(now, ticket))?;
        self.answer_start(id, start)
    }

    fn take_ticket(&self, id: u32) -> Coded<RefreshTicket> {
        lock_tickets(&self.tickets).remove(&id).ok_or_else(|| {
            error(
                ErrorCode::InvalidInput,
                format!("refresh ticket {id} is not open (already finished or abandoned)"),
            )
        })
    }

    fn finish(&mut self, id: u32, outcome: RefreshOutcome, now: Option<Millis>) -> Coded<Value> {
        let ticket = self.take_ticket(id)?;
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
