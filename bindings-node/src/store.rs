//! `Store`: the credpool-store store (an SQLite database, or Redis for a `redis://`
//! location), async, never blocking the event loop. `FileStore`, its name while the store
//! was one JSON file, stays a deprecated alias of the same class for a release
//! ([`deprecated_names`]).
//!
//! Every store owns one worker thread (not a libuv pool thread: a wait for the store's
//! lock or for Redis can last seconds, and parked libuv threads would stall `fs` and `dns`
//! for the whole process). The JS thread only converts arguments to a wire input and posts
//! a job; the worker waits for the lock, does the IO and the core call, and settles the
//! promise through a threadsafe deferred (the output is converted on the JS thread). Jobs
//! run one at a time, in call order.
//!
//! A refresh ticket (`beginRefresh` → `needed`) holds a refresh lock: the database's
//! refresh lock file, or the entry's Redis refresh lock. Other writes never take it, in
//! this process or any other; only another `beginRefresh` does. So while a ticket is out,
//! `beginRefresh` jobs wait in a backlog (the `confirmRefresh` / `finishRefresh` /
//! `abandonRefresh` that ends the ticket is never stuck behind them) and every other job
//! runs at once; a backlog job waits at most `lockTimeoutMs`, then fails with
//! `lock_timeout`, exactly like a wait for another process's lock. Tickets are dropped on
//! the worker thread (releasing a Redis lock is a network round trip).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SendError, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use credpool_core::{
    Decision, EntryId, ErrorCode, Input, LeaseId, Millis, Options, Output, OutputBody, PoolKey,
    RefreshOutcome, Reply,
};
use credpool_store::{
    RefreshStart, RefreshTicket, Store as CoreStore, StoreOptions as CoreOptions,
};
use napi::bindgen_prelude::{Object, ToNapiValue, Unknown};
use napi::{Env, JsDeferred, JsError};
use napi_derive::napi;
use serde::Serialize;
use serde_json::Value;

use crate::{
    Code, Coded, Document, clock, error, guard, registry_options, state_text, to_js, to_text,
    to_u64, whole,
};

/// Options of `Store.open(location, options)`.
#[napi(object)]
#[derive(Default)]
pub struct StoreOptions {
    /// This process's writer id (default: 12 random hex characters).
    pub writer: Option<String>,
    /// PRNG seed, a non-negative safe integer (default: from OS randomness).
    pub seed: Option<f64>,
    /// Longest wait for the database's lock (or a refresh lock), in ms, before a
    /// `lock_timeout` error (default 10000).
    pub lock_timeout_ms: Option<f64>,
    /// SQLite only: fsync writes (default true): tokens, entries and configuration before
    /// the call resolves, counters, statuses and leases within 1 s (a power loss forgets at
    /// most that much of them). `false`: never fsync (the OS writes when it will; a crash
    /// of the process alone still loses nothing).
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
    /// Redis over TLS (`rediss://`) only: a PEM file of the certificate authorities to
    /// trust instead of the system's.
    pub tls_ca_file: Option<String>,
}

type Resolver<T> = Box<dyn FnOnce(Env) -> napi::Result<T>>;
type Deferred<T> = JsDeferred<T, Resolver<T>>;
/// The promise of a job: settled with a JSON value, converted on the JS thread.
type Answer = Deferred<Unknown<'static>>;
type Tickets = Arc<Mutex<HashMap<u32, RefreshTicket>>>;

/// Settles `deferred` (from any thread): a value, or a real `Error` with a `code`.
fn settle<T: ToNapiValue + 'static>(
    deferred: Deferred<T>,
    result: impl FnOnce(&Env) -> Coded<T> + 'static,
) {
    deferred.resolve(Box::new(move |env| {
        result(&env).map_err(|e| napi::Error::from(JsError::from(e).into_unknown(env)))
    }));
}

/// Settles a job's promise with its output (JSON text, parsed on the JS thread).
fn answer(deferred: Answer, result: Coded<String>) {
    settle(deferred, move |env| to_js(env, result?));
}

fn lock_tickets(tickets: &Tickets) -> MutexGuard<'_, HashMap<u32, RefreshTicket>> {
    // A poisoned map is still a map: the worker never panics while holding it.
    tickets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A persisted registry shared with other processes: through an SQLite database (one row
/// per entry, shared by the processes of one machine), or through Redis when opened with a
/// `redis://` URL. (The package entry, `main.js`, also exports it as `FileStore`, deprecated.)
#[napi]
#[derive(Clone)]
pub struct Store {
    tx: Sender<Msg>,
    /// The database file (`None` for Redis).
    path: Option<String>,
    /// The database path, or the Redis URL without credentials.
    location: String,
    tickets: Tickets,
    /// Whether the store holds changes Redis has not received (updated after every job).
    pending: Arc<AtomicBool>,
}

#[napi]
impl Store {
    /// Opens the store at `location`: a `redis://` / `rediss://` URL
    /// (`redis://[user:password@]host[:port][/db][?namespace=NAME]`) opens the Redis store,
    /// anything else is the path of an SQLite database (default:
    /// `$CREDPOOL_HOME/pools.sqlite`, else `$XDG_CONFIG_HOME/credpool/pools.sqlite`, else
    /// `~/.config/credpool/pools.sqlite`). A database is loaded if it exists, without
    /// creating it (the first write creates it, mode 0600). A JSON store of an earlier
    /// version (`pools.json`) is migrated on open into `pools.sqlite` next to it, and the
    /// JSON file becomes a marker naming the database (`schema_version` 2), which later
    /// opens follow and older builds refuse; the default path falls back to such a
    /// `pools.json` when there is no `pools.sqlite` yet. A file that is no credpool store
    /// rejects with `invalid_state` / `foreign_document` / `unsupported_schema_version` /
    /// ... and is left untouched. Redis unreachable at open rejects with `io`.
    #[napi(ts_return_type = "Promise<Store>")]
    pub fn open<'env>(
        env: &'env Env,
        location: Option<String>,
        options: Option<StoreOptions>,
    ) -> napi::Result<Object<'env>> {
        let (deferred, promise) = env.create_deferred::<Self, Resolver<Self>>()?;
        match store_options(options) {
            Err(e) => settle(deferred, move |_| Err(e)),
            Ok(options) => spawn_worker(location, options, deferred),
        }
        Ok(promise)
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new path.
    #[napi]
    pub fn move_aside(path: String) -> napi::Result<String, Code> {
        let moved = guard(|| CoreStore::move_aside(Path::new(&path)))?;
        Ok(moved.to_string_lossy().into_owned())
    }

    /// The database file (`null` for a Redis store): for a migrated JSON store, the
    /// database it moved to.
    #[napi(getter)]
    pub fn path(&self) -> Option<String> {
        self.path.clone()
    }

    /// Where the store lives: the database path, or the Redis URL without credentials.
    #[napi(getter)]
    pub fn location(&self) -> String {
        self.location.clone()
    }

    /// Whether changes wait to reach Redis (decided while it was unreachable; as of the
    /// last settled call). Always false for an SQLite store, which never queues.
    #[napi]
    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Writes the changes queued while Redis was unreachable; rejects with `io` when Redis
    /// still cannot be reached (they stay queued). A no-op for an SQLite store. Call it
    /// before the process exits so nothing stays only in memory. Resolves to `null`.
    #[napi(ts_return_type = "Promise<null>")]
    pub fn flush<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(env, Ok(Job::Flush), None)
    }

    /// Merges in what other processes wrote since the last look; whether anything new was
    /// merged.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub fn reload<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(env, Ok(Job::Reload), None)
    }

    /// The state document, as of the store now (contains the secrets of non-`env:` entries).
    #[napi(ts_return_type = "Promise<StateDocument>")]
    pub fn export_state<'env>(&self, env: &'env Env) -> napi::Result<Object<'env>> {
        self.submit(env, Ok(Job::ExportState), Some(0.0))
    }

    /// Step one of the single-flight refresh a `refresh` decision asks for. Takes the
    /// refresh lock (the database's, or the entry's Redis refresh lock) and either adopts a
    /// token another process already rotated (`adopted`, lock released) or answers `needed`
    /// with a ticket that HOLDS the lock: `confirmRefresh(ticket)` right before using the
    /// refresh token, refresh `credential`, then `finishRefresh(ticket, outcome)` — or
    /// `abandonRefresh(ticket)`. Meanwhile other calls go on, here and in other processes;
    /// only another `beginRefresh` waits for the lock. Redis unreachable: rejects with `io`
    /// (a refresh never proceeds without the lock).
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
            let generation = whole(generation, "generation")?;
            let lease_id = lease_id
                .map(|id| whole(id, "leaseId").map(LeaseId))
                .transpose()?;
            Ok(Job::Begin {
                pool,
                entry_id,
                generation,
                lease_id,
            })
        })();
        self.submit(env, job, now)
    }

    /// Right before the refresh token is used: checks that `ticket` still holds the lock
    /// and renews a Redis lock's lease. A Redis holder that stalled past its lease lost the
    /// lock: then a token another process rotated meanwhile is adopted (`adopted`; the
    /// ticket is spent and `fn` must not run), or the lock is taken again (`needed`, same
    /// ticket number). An SQLite refresh lock always holds (`needed` at once). Rejects
    /// with `io` when Redis is unreachable (the ticket is spent, its lock released).
    #[napi(
        ts_return_type = "Promise<{ type: 'adopted'; decision: DecisionOutput } | { type: 'needed'; ticket: number; credential: CredentialOutput }>"
    )]
    pub fn confirm_refresh<'env>(
        &self,
        env: &'env Env,
        ticket: f64,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = ticket_id(ticket).map(Job::Confirm);
        self.submit(env, job, now)
    }

    /// Step two: records how the refresh ended (the new token pair, or the failure),
    /// writes it, and releases the lock. The ticket is spent even when this rejects.
    #[napi(ts_return_type = "Promise<DecisionOutput>")]
    pub fn finish_refresh<'env>(
        &self,
        env: &'env Env,
        ticket: f64,
        #[napi(ts_arg_type = "RefreshOutcome")] outcome: Unknown<'_>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let job = (|| {
            let ticket = ticket_id(ticket)?;
            let outcome = parse_outcome(outcome.read(env, "outcome")?)?;
            Ok(Job::Finish(ticket, outcome))
        })();
        self.submit(env, job, now)
    }

    /// Drops a refresh ticket: nothing changes, and the lock is released (by the store's
    /// worker, before any job posted later runs). Returns whether the ticket was still
    /// open.
    #[napi]
    pub fn abandon_refresh(&self, ticket: f64) -> bool {
        let id = ticket_id(ticket).ok();
        let Some(dropped) = id.and_then(|id| lock_tickets(&self.tickets).remove(&id)) else {
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
            store: self.clone(),
            key,
        }
    }

    /// Posts a `Handle` job for a wire input.
    pub(crate) fn call<'env>(
        &self,
        env: &'env Env,
        input: Coded<Input>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        self.submit(env, input.map(|input| Job::Handle(Box::new(input))), now)
    }

    /// Posts a job to run at `now` (validated here; default: the wall clock when it runs,
    /// after any lock wait); its promise settles when the worker ran it.
    fn submit<'env>(
        &self,
        env: &'env Env,
        job: Coded<Job>,
        now: Option<f64>,
    ) -> napi::Result<Object<'env>> {
        let (reply, promise) = env.create_deferred::<Unknown<'static>, Resolver<_>>()?;
        let job = job.and_then(|job| Ok((job, now.map(|now| clock(Some(now))).transpose()?)));
        match job {
            Err(e) => answer(reply, Err(e)),
            Ok((job, now)) => {
                let queued = Instant::now();
                let msg = Msg::Run(Queued {
                    job,
                    now,
                    reply,
                    queued,
                });
                if let Err(SendError(Msg::Run(unsent))) = self.tx.send(msg) {
                    let gone = error(ErrorCode::Internal, "the store's worker thread is gone");
                    answer(unsent.reply, Err(gone));
                }
            }
        }
        Ok(promise)
    }
}

fn ticket_id(ticket: f64) -> Coded<u32> {
    to_u64(ticket)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| {
            let message = "ticket must be a ticket number from beginRefresh";
            error(ErrorCode::InvalidInput, message)
        })
}

/// Reads a `RefreshOutcome` as core reads one (its errors never echo secrets).
fn parse_outcome(outcome: Value) -> Coded<RefreshOutcome> {
    guard(|| RefreshOutcome::from_value(outcome))
}

fn store_options(options: Option<StoreOptions>) -> Coded<CoreOptions> {
    let o = options.unwrap_or_default();
    let ms = |value: Option<f64>, name: &str, default: Duration| {
        value.map_or(Ok(default), |v| whole(v, name).map(Duration::from_millis))
    };
    let Options { writer, seed } = registry_options(o.writer, o.seed)?;
    let d = CoreOptions::new(writer, seed);
    Ok(CoreOptions {
        lock_timeout: ms(o.lock_timeout_ms, "lockTimeoutMs", d.lock_timeout)?,
        durable: o.durable.unwrap_or(true),
        namespace: o.namespace,
        connect_timeout: ms(o.connect_timeout_ms, "connectTimeoutMs", d.connect_timeout)?,
        io_timeout: ms(o.io_timeout_ms, "ioTimeoutMs", d.io_timeout)?,
        refresh_lease: ms(o.refresh_lease_ms, "refreshLeaseMs", d.refresh_lease)?,
        reconnect_interval: ms(
            o.reconnect_interval_ms,
            "reconnectIntervalMs",
            d.reconnect_interval,
        )?,
        tls_ca_file: o.tls_ca_file.map(Into::into),
        ..d
    })
}

/// A job posted at `queued` to run at `now` (default: the wall clock when it runs).
struct Queued {
    job: Job,
    now: Option<Millis>,
    reply: Answer,
    queued: Instant,
}

enum Msg {
    Run(Queued),
    /// A ticket was abandoned: drop it (releasing its lock); the backlog may run.
    Abandon(Box<RefreshTicket>),
}

enum Job {
    Handle(Box<Input>),
    ExportState,
    Reload,
    Flush,
    Begin {
        pool: String,
        entry_id: String,
        generation: u64,
        lease_id: Option<LeaseId>,
    },
    /// These two end a ticket: they never wait in the backlog.
    Confirm(u32),
    Finish(u32, RefreshOutcome),
}

/// Starts the store's worker thread; it opens the store and settles `opened`.
fn spawn_worker(location: Option<String>, options: CoreOptions, opened: Deferred<Store>) {
    let lock_timeout = options.lock_timeout;
    let (tx, rx) = channel();
    let tickets = Tickets::default();
    let pending = Arc::new(AtomicBool::new(false));
    // The deferred goes to the thread; if the spawn fails it comes back through this slot.
    let slot = Arc::new(Mutex::new(Some(opened)));
    let thread_slot = Arc::clone(&slot);
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
            let store = match store {
                Err(e) => return settle(opened, move |_| Err(e)),
                Ok(store) => store,
            };
            let js = Store {
                tx,
                path: store.path().map(|p| p.to_string_lossy().into_owned()),
                location: store.location(),
                tickets: Arc::clone(&tickets),
                pending: Arc::clone(&pending),
            };
            settle(opened, move |_| Ok(js));
            let backlog = VecDeque::new();
            Worker {
                store,
                tickets,
                pending,
                lock_timeout,
                next_ticket: 0,
                backlog,
            }
            .run(&rx);
        });
    if spawned.is_err()
        && let Some(opened) = slot.lock().ok().and_then(|mut s| s.take())
    {
        let e = error(ErrorCode::Io, "cannot start the store's worker thread");
        settle(opened, move |_| Err(e));
    }
}

struct Worker {
    store: CoreStore,
    tickets: Tickets,
    /// Shared with the JS object: `store.has_pending()` after every job.
    pending: Arc<AtomicBool>,
    lock_timeout: Duration,
    next_ticket: u32,
    /// `beginRefresh` jobs posted while this store's own ticket holds the refresh lock.
    backlog: VecDeque<Queued>,
}

impl Worker {
    fn run(mut self, rx: &Receiver<Msg>) {
        loop {
            while !self.gated()
                && let Some(queued) = self.backlog.pop_front()
            {
                self.run_job(queued);
            }
            let msg = match self.backlog.front() {
                Some(Queued { queued, .. }) => {
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
                Some(Msg::Run(queued)) => {
                    // Only a `beginRefresh` takes the refresh lock a ticket may hold (maybe
                    // this process's own), so only it waits while one is out; every other
                    // write takes the database's own lock, which a ticket never holds.
                    if matches!(queued.job, Job::Begin { .. }) && self.gated() {
                        self.backlog.push_back(queued);
                    } else {
                        self.run_job(queued);
                    }
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
        while let Some(Queued { queued, .. }) = self.backlog.front() {
            let waited = queued.elapsed();
            if waited < self.lock_timeout {
                break;
            }
            if let Some(job) = self.backlog.pop_front() {
                let message = format!(
                    "{} stayed locked by a refresh in progress in this process for {} ms \
                     (timeout; finish or abandon its ticket)",
                    self.store.location(),
                    waited.as_millis()
                );
                answer(job.reply, Err(error(ErrorCode::LockTimeout, message)));
            }
        }
    }

    /// Runs a job and settles its promise, after publishing whether changes are queued
    /// (so `hasPending()` is current once the promise settles).
    fn run_job(&mut self, queued: Queued) {
        let Queued {
            job, now, reply, ..
        } = queued;
        let now = now.unwrap_or_else(credpool_store::now);
        let result = match job {
            Job::Reload => guard(|| self.store.reload()).map(|new| new.to_string()),
            Job::Flush => guard(|| self.store.flush()).map(|()| "null".into()),
            Job::Handle(input) => {
                guard(|| self.store.handle(now, *input)).and_then(|o| to_text(&o))
            }
            Job::ExportState => {
                guard(|| self.store.handle(now, Input::ExportState)).and_then(state_text)
            }
            Job::Begin {
                pool,
                entry_id,
                generation,
                lease_id,
            } => {
                let start = guard(|| {
                    let (pool, entry_id) = (PoolKey::parse(&pool)?, EntryId::parse(&entry_id)?);
                    self.store
                        .begin_refresh(now, &pool, &entry_id, generation, lease_id)
                });
                self.next_ticket = self.next_ticket.wrapping_add(1).max(1);
                start.and_then(|start| self.answer_start(self.next_ticket, start))
            }
            Job::Confirm(ticket) => self.take_ticket(ticket).and_then(|t| {
                let start = guard(|| self.store.confirm_refresh(now, t))?;
                self.answer_start(ticket, start)
            }),
            Job::Finish(ticket, outcome) => self.take_ticket(ticket).and_then(|t| {
                to_text(&decision(guard(|| {
                    self.store.finish_refresh(now, t, outcome)
                })?))
            }),
        };
        self.pending
            .store(self.store.has_pending(), Ordering::Release);
        answer(reply, result);
    }

    /// A `RefreshStart` as JS: `adopted` with the decision, or `needed` with ticket `id`
    /// (kept open in the map) and its credential (as `credential()` answers it).
    fn answer_start(&self, id: u32, start: RefreshStart) -> Coded<String> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "snake_case")]
        enum Start {
            Adopted { decision: Output },
            Needed { ticket: u32, credential: Output },
        }
        match start {
            RefreshStart::Adopted(d) => to_text(&Start::Adopted {
                decision: decision(d),
            }),
            RefreshStart::Needed(ticket) => {
                let credential = ticket.credential().clone().into();
                let credential = Output {
                    body: OutputBody::Reply(Reply::Credential(credential)),
                    changed: false,
                };
                lock_tickets(&self.tickets).insert(id, ticket);
                to_text(&Start::Needed {
                    ticket: id,
                    credential,
                })
            }
        }
    }

    fn take_ticket(&self, id: u32) -> Coded<RefreshTicket> {
        lock_tickets(&self.tickets).remove(&id).ok_or_else(|| {
            let message =
                format!("refresh ticket {id} is not open (already finished or abandoned)");
            error(ErrorCode::InvalidInput, message)
        })
    }
}

/// A decision the store already persisted, as a `DecisionOutput`.
fn decision(decision: Decision) -> Output {
    Output {
        body: OutputBody::Decision(decision),
        changed: true,
    }
}

/// One pool of a [`Store`] (`store.pool(key)`): the store's calls bound to that pool.
#[napi]
pub struct StorePool {
    store: Store,
    key: String,
}

#[napi]
impl StorePool {
    /// The pool key.
    #[napi(getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }
}

/// Each `StorePool` method is the `Store` method of the same name with this pool's key
/// as its first argument.
macro_rules! pool_methods {
    ($($(#[doc = $doc:tt])* fn $name:ident($($arg:ident: $ty:ty $(as $ts:literal)?),*) -> $promise:literal;)*) => {
        #[napi]
        impl StorePool {$(
            $(#[doc = $doc])*
            #[napi(ts_return_type = $promise)]
            pub fn $name<'env>(
                &self,
                env: &'env Env,
                $($(#[napi(ts_arg_type = $ts)])? $arg: $ty,)*
                now: Option<f64>,
            ) -> napi::Result<Object<'env>> {
                self.store.$name(env, self.key.clone().into(), $($arg,)* now)
            }
        )*}
    };
}

pool_methods! {
    #[doc = "`acquire` on this pool."]
    fn acquire(opts: Option<Unknown<'_>> as "{ model?: string; session?: string }") -> "Promise<DecisionOutput>";
    #[doc = "`report` on this pool."]
    fn report(lease_id: f64, response: Unknown<'_> as "ResponseInfo") -> "Promise<DecisionOutput>";
    #[doc = "`release` on this pool."]
    fn release(lease_id: f64) -> "Promise<{ type: 'released'; lease_id: number } & Changed>";
    #[doc = "`credential` on this pool."]
    fn credential(entry_id: String) -> "Promise<CredentialOutput>";
    #[doc = "`status` of this pool."]
    fn status() -> "Promise<StatusOutput>";
    #[doc = "`add_entry` to this pool."]
    fn add_entry(entry: Unknown<'_> as "NewEntry") -> "Promise<{ type: 'entry_added'; entry_id: string } & Changed>";
    #[doc = "`reset` one entry of this pool, or all."]
    fn reset(entry_id: Option<String>) -> "Promise<{ type: 'reset'; count: number } & Changed>";
}
