//! What every store shares: [`StoreOptions`], the refresh ticket, a pool view
//! ([`StorePool`]) and the single-flight refresh over any backend.

use std::path::PathBuf;
use std::time::Duration;

use credpool_core::{
    AcquireRequest, Changes, Credential, Decision, EntryId, Error, ErrorCode, Input, LeaseId,
    Millis, Output, PoolKey, REFRESH_INTERRUPTED, RefreshOutcome, RefreshSend, Registry, Report,
    Result,
};

use crate::lock::LockGuard;

/// Options of [`Store::open`](crate::Store::open).
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// This process's writer id (keys its request counters in the merged file).
    pub writer: String,
    /// PRNG seed of the registry.
    pub seed: u64,
    /// Longest wait for the lock before a `lock_timeout` error (default 10 s).
    pub lock_timeout: Duration,
    /// fsync writes (default true): a token, an entry or a configuration change reaches
    /// the disk before the call returns; counters, statuses and leases within
    /// [`LIGHT_SYNC_INTERVAL`](crate::LIGHT_SYNC_INTERVAL). False: never fsync (a crash of
    /// the process loses nothing; a power loss may).
    pub durable: bool,
    /// Redis only: the key namespace (`credpool:{namespace}:...`) when the URL names none
    /// (`?namespace=...`); default `default`.
    pub namespace: Option<String>,
    /// Redis only: longest wait to connect (default 2 s).
    pub connect_timeout: Duration,
    /// Redis only: longest wait for one command's reply or write (default 2 s).
    pub io_timeout: Duration,
    /// Redis only: lease of a refresh lock; a holder that stalls longer loses it
    /// (default 30 s).
    pub refresh_lease: Duration,
    /// Redis only: after a failed connect, calls run on local state without trying again
    /// for this long (default 1 s).
    pub reconnect_interval: Duration,
    /// Redis over TLS (`rediss://`) only: a PEM file of the certificate authorities to
    /// trust instead of the system's (default: the system's, or `SSL_CERT_FILE`).
    pub tls_ca_file: Option<PathBuf>,
}

impl StoreOptions {
    /// Options with the given writer and seed and the defaults.
    pub fn new(writer: impl Into<String>, seed: u64) -> Self {
        Self {
            writer: writer.into(),
            seed,
            lock_timeout: Duration::from_secs(10),
            durable: true,
            namespace: None,
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(2),
            refresh_lease: Duration::from_secs(30),
            reconnect_interval: Duration::from_secs(1),
            tls_ca_file: None,
        }
    }
}

/// What `begin_refresh` (of any store) found.
#[derive(Debug)]
pub enum RefreshStart {
    /// Another process already rotated the token: it was adopted; here is the decision.
    Adopted(Decision),
    /// The token is still the stale one: refresh it, then call `finish_refresh`.
    Needed(RefreshTicket),
}

/// A refresh in progress. It holds the store's lock (the file lock, or a Redis lock with a
/// lease), so no other process can refresh the same token meanwhile; dropping it without
/// finishing releases the lock (a Redis lock also expires at the end of its lease),
/// changing nothing.
#[derive(Debug)]
pub struct RefreshTicket {
    pub(crate) hold: Hold,
    pub(crate) pool: PoolKey,
    pub(crate) entry_id: EntryId,
    pub(crate) generation: u64,
    pub(crate) lease_id: Option<LeaseId>,
    pub(crate) credential: Credential,
}

/// What a [`RefreshTicket`] holds.
#[derive(Debug)]
pub(crate) enum Hold {
    /// The SQLite store's refresh lock (released on drop: held, never read).
    File(#[allow(dead_code, reason = "held for its Drop")] LockGuard),
    /// A Redis refresh lock (released on drop by compare-and-delete).
    #[cfg(feature = "redis")]
    Redis(Box<crate::redis::RedisLock>),
}

impl RefreshTicket {
    /// The credential to refresh (its refresh token included).
    pub fn credential(&self) -> &Credential {
        &self.credential
    }
}

/// What a [`StorePool`] needs of its store (implemented by every backend).
pub(crate) trait Backend: std::fmt::Debug {
    fn handle(&mut self, now: Millis, input: Input) -> Result<Output>;
    fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision>;
    fn report(&mut self, now: Millis, report: &Report) -> Result<Decision>;
    fn reload(&mut self) -> Result<bool>;
    fn registry(&self) -> &Registry;
    fn begin_refresh(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart>;
    fn confirm_refresh(&mut self, now: Millis, ticket: RefreshTicket) -> Result<RefreshStart>;
    fn finish_refresh(
        &mut self,
        now: Millis,
        ticket: RefreshTicket,
        outcome: RefreshOutcome,
    ) -> Result<Decision>;
}

/// A state document (this version's format) holding `pools`: what a store reads back from
/// its rows and merges with core's `sync`.
pub(crate) fn state_of(pools: serde_json::Map<String, serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "format": credpool_core::FORMAT,
        "schema_version": credpool_core::SCHEMA_VERSION,
        "pools": pools,
    })
}

/// Runs `op` on `registry` under a change journal: its value and, when it changed state
/// (its own flag, or the registry's change flag), what it changed. The journal stays open
/// for the caller to end (written) or undo (the write failed); an error from `op` undoes
/// it at once.
pub(crate) fn journaled<T>(
    registry: &mut Registry,
    op: impl FnOnce(&mut Registry) -> Result<(bool, T)>,
) -> Result<(Option<Changes>, T)> {
    registry.begin_changes();
    match op(registry) {
        Ok((changed, value)) => {
            let changed = registry.take_changed() | changed;
            Ok((changed.then(|| registry.changes()), value))
        }
        Err(e) => {
            registry.undo_changes();
            Err(e)
        }
    }
}

/// The single-flight refresh protocol, the same on every store: `begin_refresh` (adopt a
/// token another process already rotated, or take the lock), `confirm_refresh` right
/// before the refresh token is used (a lock whose lease ran out adopts instead), the
/// host's `refresh`, then `finish_refresh`. `clock` gives `now` for each step.
pub(crate) fn single_flight_refresh(
    store: &mut impl Backend,
    clock: impl Fn() -> Millis,
    pool: &PoolKey,
    entry_id: &EntryId,
    generation: u64,
    lease_id: Option<LeaseId>,
    refresh: impl FnOnce(&Registry, &Credential) -> RefreshOutcome,
) -> Result<Decision> {
    let ticket = match store.begin_refresh(clock(), pool, entry_id, generation, lease_id)? {
        RefreshStart::Adopted(decision) => return Ok(decision),
        RefreshStart::Needed(ticket) => ticket,
    };
    match store.confirm_refresh(clock(), ticket)? {
        RefreshStart::Adopted(decision) => Ok(decision),
        RefreshStart::Needed(ticket) => {
            let outcome = refresh(store.registry(), ticket.credential());
            store.finish_refresh(clock(), ticket, outcome)
        }
    }
}

/// `impl Backend for $store` by its inherent methods of the same names and signatures
/// (every backend has them as its public API; the trait only lets shared code call them).
macro_rules! impl_backend_by_inherent_methods {
    ($store:ty) => {
        impl $crate::store::Backend for $store {
            fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
                Self::handle(self, now, input)
            }
            fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision> {
                Self::acquire(self, now, request)
            }
            fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
                Self::report(self, now, report)
            }
            fn reload(&mut self) -> Result<bool> {
                Self::reload(self)
            }
            fn registry(&self) -> &Registry {
                Self::registry(self)
            }
            fn begin_refresh(
                &mut self,
                now: Millis,
                pool: &PoolKey,
                entry_id: &EntryId,
                generation: u64,
                lease_id: Option<LeaseId>,
            ) -> Result<RefreshStart> {
                Self::begin_refresh(self, now, pool, entry_id, generation, lease_id)
            }
            fn confirm_refresh(
                &mut self,
                now: Millis,
                ticket: RefreshTicket,
            ) -> Result<RefreshStart> {
                Self::confirm_refresh(self, now, ticket)
            }
            fn finish_refresh(
                &mut self,
                now: Millis,
                ticket: RefreshTicket,
                outcome: RefreshOutcome,
            ) -> Result<Decision> {
                Self::finish_refresh(self, now, ticket, outcome)
            }
        }
    };
}
pub(crate) use impl_backend_by_inherent_methods;

/// One pool of a store (`pool(key)` of `SqliteStore`, `RedisStore` or `Store`); every call
/// persists like the store's.
#[derive(Debug)]
pub struct StorePool<'a> {
    store: &'a mut dyn Backend,
    key: PoolKey,
}

impl<'a> StorePool<'a> {
    pub(crate) fn new(store: &'a mut dyn Backend, key: PoolKey) -> Self {
        Self { store, key }
    }
}

impl StorePool<'_> {
    /// The pool key.
    pub fn key(&self) -> &PoolKey {
        &self.key
    }

    /// `acquire` on this pool (`model`, `session` as in [`AcquireRequest`]).
    pub fn acquire(
        &mut self,
        now: Millis,
        model: Option<String>,
        session: Option<String>,
    ) -> Result<Decision> {
        let request = AcquireRequest {
            model,
            session,
            ..AcquireRequest::new(self.key.clone())
        };
        self.store.acquire(now, &request)
    }

    /// `report` of a response against `lease_id`.
    pub fn report(
        &mut self,
        now: Millis,
        lease_id: LeaseId,
        response: credpool_core::Response,
    ) -> Result<Decision> {
        let report = Report {
            pool: self.key.clone(),
            lease_id: Some(lease_id),
            entry_id: None,
            response,
        };
        self.store.report(now, &report)
    }

    /// `release` of `lease_id` (no outcome, nothing marked).
    pub fn release(&mut self, now: Millis, lease_id: LeaseId) -> Result<()> {
        let input = Input::Release {
            pool: self.key.clone(),
            lease_id,
        };
        self.store.handle(now, input).map(drop)
    }

    /// The entry's secrets (from the store as last merged).
    pub fn credential(&mut self, entry_id: &EntryId) -> Result<Credential> {
        self.store.reload()?;
        self.store.registry().credential(&self.key, entry_id)
    }

    /// Status of this pool for humans.
    pub fn status(&mut self, now: Millis) -> Result<credpool_core::PoolStatus> {
        self.store.reload()?;
        let mut pools = self.store.registry().status(now, Some(&self.key))?;
        pools.pop().ok_or_else(|| {
            Error::new(
                ErrorCode::UnknownPool,
                format!("unknown pool {}", self.key.as_str()),
            )
        })
    }
}

/// The outcome to record for a refresh that [`Registry::record_refresh_send`] said not to send:
/// the stored token adopted, or (an earlier send of this token never settled) a terminal
/// failure asking for a new login.
///
/// [`Registry::record_refresh_send`]: credpool_core::Registry::record_refresh_send
pub(crate) fn not_sent(start: RefreshSend) -> RefreshOutcome {
    if start == RefreshSend::Interrupted {
        RefreshOutcome::Failed {
            terminal: true,
            reason: Some(REFRESH_INTERRUPTED.to_owned()),
            message: Some(
                "a refresh of this token was sent and never recorded an answer; the provider \
                 may have consumed it, so it is never sent again: log in again"
                    .to_owned(),
            ),
        }
    } else {
        RefreshOutcome::Adopted
    }
}

/// Whether `input` only reads state (`status`, `export_state`, `reveal`, `check_refresh`,
/// `token_request`, `token_response`): the stores answer it after a reload, without a
/// transaction.
pub fn reads_only(input: &Input) -> bool {
    matches!(
        input,
        Input::Status { .. }
            | Input::ExportState
            | Input::Reveal { .. }
            | Input::CheckRefresh { .. }
            | Input::TokenRequest { .. }
            | Input::TokenResponse { .. }
    )
}
