//! [`FileStore`]: a registry persisted in one JSON file shared by many processes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use credpool_core::{
    AcquireRequest, Credential, Decision, EntryId, Error, ErrorCode, Input, LeaseId, Millis,
    Options, Output, PoolKey, RefreshOutcome, RefreshResult, Registry, Report, Result, parse_input,
};
use serde_json::Value;

use crate::file::{self, Stamp};
use crate::lock::{self, LockGuard};
use crate::path::default_path;

/// Options of [`FileStore::open`].
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

/// A registry persisted in one JSON file that many processes share.
///
/// Every input that may change state runs as one transaction: take the lock, read the
/// file if another process changed it and merge it in (core `sync`), apply the input,
/// write the merged state atomically if the input changed anything, release. So no
/// writer ever clobbers another, and a long-lived process sees what others wrote before
/// it decides. Read-only inputs (`status`, `export_state`, `reveal`, `check_refresh`)
/// reload without the lock. A file that is not valid credpool state is never overwritten.
#[derive(Debug)]
pub struct FileStore {
    path: PathBuf,
    lock_path: PathBuf,
    registry: Registry,
    /// The file version last read or written here (`None`: no file yet).
    seen: Option<Stamp>,
    /// Digest of the bytes last read or written here. File stamps are only a hint:
    /// timestamps are coarse and inode numbers get reused, so under the lock the bytes
    /// decide whether another process wrote.
    seen_digest: Option<u64>,
    options: StoreOptions,
}

/// What `begin_refresh` (of [`FileStore`] or any store) found.
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
    /// The file store's lock (released on drop: held, never read).
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

impl FileStore {
    /// Opens the store at `path`: loads the file if it exists (without creating it).
    ///
    /// A file that is not valid credpool state fails with a coded error (`invalid_state`,
    /// `unsupported_schema_version`, `foreign_document`, `too_large`) and is left untouched;
    /// [`FileStore::move_aside`] moves it away on explicit request.
    pub fn open(path: impl Into<PathBuf>, options: StoreOptions) -> Result<Self> {
        let path = path.into();
        let registry_options = Options {
            writer: options.writer.clone(),
            seed: options.seed,
        };
        let seen = file::stamp(&path)?;
        let bytes = file::read(&path)?;
        let registry = match &bytes {
            Some(bytes) => Registry::from_state(&parse(&path, bytes)?, registry_options)?,
            None => Registry::new(registry_options)?,
        };
        let seen_digest = bytes.as_deref().map(digest);
        Ok(Self {
            lock_path: lock::lock_path(&path),
            path,
            registry,
            seen,
            seen_digest,
            options,
        })
    }

    /// Opens the store at [`default_path`](crate::default_path).
    pub fn open_default(options: StoreOptions) -> Result<Self> {
        Self::open(default_path()?, options)
    }

    /// Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new
    /// path. Never done implicitly.
    pub fn move_aside(path: &Path) -> Result<PathBuf> {
        file::move_aside(path)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The in-memory registry as of the last reload or transaction.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Merges in what other processes wrote since the last look (a cheap stat when the
    /// file's stamp did not move); returns whether new content was merged. Without the
    /// lock a write landing in the same clock tick can be missed until the next look;
    /// every transaction re-reads under the lock, so decisions never miss one.
    pub fn reload(&mut self) -> Result<bool> {
        let stamp = file::stamp(&self.path)?;
        if stamp == self.seen || stamp.is_none() {
            return Ok(false);
        }
        self.merge_file(stamp)
    }

    /// Reads the file and merges it in unless its bytes are the ones last seen here.
    fn merge_file(&mut self, stamp: Option<Stamp>) -> Result<bool> {
        let Some(bytes) = file::read(&self.path)? else {
            return Ok(false);
        };
        let digest = digest(&bytes);
        let new = self.seen_digest != Some(digest);
        if new {
            let state = parse(&self.path, &bytes)?;
            self.registry.sync(&state)?;
            self.registry.take_changed();
            self.seen_digest = Some(digest);
        }
        self.seen = stamp;
        Ok(new)
    }

    /// Applies one wire input, persisting it when it changed state.
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        if reads_only(&input) {
            self.reload()?;
            return self.registry.handle(now, input);
        }
        self.transact(|registry| {
            let output = registry.handle(now, input)?;
            Ok((output.changed, output))
        })
    }

    /// Parses a JSON wire input and applies it ([`FileStore::handle`]).
    pub fn handle_value(&mut self, now: Millis, input: Value) -> Result<Output> {
        let input = parse_input(input)?;
        self.handle(now, input)
    }

    /// A view of one pool: `acquire`, `report`, `release`, `status` without repeating it.
    pub fn pool(&mut self, key: PoolKey) -> StorePool<'_> {
        StorePool::new(self, key)
    }

    /// `acquire`, persisted.
    pub fn acquire(&mut self, now: Millis, request: &AcquireRequest) -> Result<Decision> {
        self.transact(|registry| {
            let decision = registry.acquire(now, request)?;
            Ok((registry.take_changed(), decision))
        })
    }

    /// `report`, persisted.
    pub fn report(&mut self, now: Millis, report: &Report) -> Result<Decision> {
        self.transact(|registry| {
            let decision = registry.report(now, report)?;
            Ok((registry.take_changed(), decision))
        })
    }

    /// Step one of the single-flight refresh a `refresh` decision asks for: takes the lock,
    /// merges in the file, and either adopts a token another process already rotated
    /// ([`RefreshStart::Adopted`]) or hands back a ticket holding the lock
    /// ([`RefreshStart::Needed`]) for the host to refresh with.
    pub fn begin_refresh(
        &mut self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
    ) -> Result<RefreshStart> {
        let guard = lock::lock(&self.lock_path, self.options.lock_timeout)?;
        self.reload_locked()?;
        if self.registry.check_refresh(pool, entry_id, generation)? {
            let credential = self.registry.credential(pool, entry_id)?;
            return Ok(RefreshStart::Needed(RefreshTicket {
                hold: Hold::File(guard),
                pool: pool.clone(),
                entry_id: entry_id.clone(),
                generation,
                lease_id,
                credential,
            }));
        }
        let result = RefreshResult {
            pool: pool.clone(),
            entry_id: entry_id.clone(),
            generation,
            lease_id,
            result: RefreshOutcome::Adopted,
        };
        let decision = self.apply_locked(|registry| {
            let decision = registry.refresh_result(now, &result)?;
            Ok((registry.take_changed(), decision))
        })?;
        drop(guard);
        Ok(RefreshStart::Adopted(decision))
    }

    /// Step two: records how the refresh ended (the new token pair, or the failure),
    /// writes it, and releases the lock.
    pub fn finish_refresh(
        &mut self,
        now: Millis,
        ticket: RefreshTicket,
        outcome: RefreshOutcome,
    ) -> Result<Decision> {
        let RefreshTicket {
            hold,
            pool,
            entry_id,
            generation,
            lease_id,
            ..
        } = ticket;
        let result = RefreshResult {
            pool,
            entry_id,
            generation,
            lease_id,
            result: outcome,
        };
        let decision = self.apply_locked(|registry| {
            let decision = registry.refresh_result(now, &result)?;
            Ok((registry.take_changed(), decision))
        })?;
        drop(hold);
        Ok(decision)
    }

    /// Checks, right before the refresh token is used, that `ticket` still holds the lock.
    /// A file lock cannot expire, so this always answers [`RefreshStart::Needed`] with the
    /// same ticket (it exists so hosts can call it on any store; see
    /// `RedisStore::confirm_refresh`).
    pub fn confirm_refresh(&mut self, _now: Millis, ticket: RefreshTicket) -> Result<RefreshStart> {
        Ok(RefreshStart::Needed(ticket))
    }

    /// The whole single-flight refresh: [`begin_refresh`](Self::begin_refresh),
    /// [`confirm_refresh`](Self::confirm_refresh), `refresh` (only when the token is still
    /// stale; it runs under the lock), then [`finish_refresh`](Self::finish_refresh).
    /// `clock` gives `now` for each step.
    pub fn refresh(
        &mut self,
        clock: impl Fn() -> Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
        refresh: impl FnOnce(&Credential) -> RefreshOutcome,
    ) -> Result<Decision> {
        single_flight_refresh(self, clock, pool, entry_id, generation, lease_id, refresh)
    }

    /// Lock, reload, apply `op`, write when it says state changed, unlock.
    fn transact<T>(&mut self, op: impl FnOnce(&mut Registry) -> Result<(bool, T)>) -> Result<T> {
        let guard = lock::lock(&self.lock_path, self.options.lock_timeout)?;
        self.reload_locked()?;
        let result = self.apply_locked(op);
        drop(guard);
        result
    }

    /// Applies `op` under the held lock; on a failed write the registry is restored, so
    /// the caller's error means the input did not happen.
    fn apply_locked<T>(
        &mut self,
        op: impl FnOnce(&mut Registry) -> Result<(bool, T)>,
    ) -> Result<T> {
        let before = self.registry.clone();
        let (changed, value) = op(&mut self.registry)?;
        if changed && let Err(e) = self.write_locked() {
            self.registry = before;
            return Err(e);
        }
        Ok(value)
    }

    /// Under the held lock (the file cannot change meanwhile): always reads the file, so a
    /// write that left the stamp unchanged is still seen; parses only new bytes.
    fn reload_locked(&mut self) -> Result<()> {
        let stamp = file::stamp(&self.path)?;
        self.merge_file(stamp).map(drop)
    }

    fn write_locked(&mut self) -> Result<()> {
        let state = self.registry.export_state();
        let bytes = serde_json::to_vec(&state)
            .map_err(|e| Error::new(ErrorCode::Internal, format!("cannot serialise state: {e}")))?;
        file::write_atomic(&self.path, &bytes, self.options.durable)?;
        self.seen = file::stamp(&self.path)?;
        self.seen_digest = Some(digest(&bytes));
        Ok(())
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
    refresh: impl FnOnce(&Credential) -> RefreshOutcome,
) -> Result<Decision> {
    let ticket = match store.begin_refresh(clock(), pool, entry_id, generation, lease_id)? {
        RefreshStart::Adopted(decision) => return Ok(decision),
        RefreshStart::Needed(ticket) => ticket,
    };
    match store.confirm_refresh(clock(), ticket)? {
        RefreshStart::Adopted(decision) => Ok(decision),
        RefreshStart::Needed(ticket) => {
            let outcome = refresh(ticket.credential());
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

impl_backend_by_inherent_methods!(FileStore);

/// One pool of a store (`pool(key)` of [`FileStore`], `RedisStore` or `Store`); every call
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
            pool: self.key.clone(),
            model,
            session,
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

/// A 64-bit digest of file bytes (collisions are 2^-64 unlikely; no adversary writes here
/// who could not also write the file itself).
fn digest(bytes: &[u8]) -> u64 {
    use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
    BuildHasherDefault::<DefaultHasher>::default().hash_one(bytes)
}

/// Parses a store file, with an error that names the file and keeps it untouched.
fn parse(path: &Path, bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| {
        Error::new(
            ErrorCode::InvalidState,
            format!(
                "{} is not valid JSON ({e}); it was left untouched (move it aside with \
                 FileStore::move_aside to start over)",
                path.display()
            ),
        )
    })
}

/// Whether `input` only reads state (`status`, `export_state`, `reveal`, `check_refresh`):
/// the stores answer it after a reload, without a transaction.
pub fn reads_only(input: &Input) -> bool {
    matches!(
        input,
        Input::Status { .. }
            | Input::ExportState
            | Input::Reveal { .. }
            | Input::CheckRefresh { .. }
    )
}
