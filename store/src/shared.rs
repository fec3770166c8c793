//! [`SharedStore`]: one [`Store`] shared by the threads of a process (a binding's object),
//! whose single-flight refresh runs the host's refresh without holding it.

use std::sync::{Mutex, MutexGuard};
use std::thread::ThreadId;

use credpool_core::{
    Credential, Decision, EntryId, Error, ErrorCode, LeaseId, Millis, PoolKey, RefreshOutcome,
    Result,
};

use crate::{RefreshStart, Store};

/// A [`Store`] for the threads of one process. Every call locks it for its own duration;
/// [`refresh`](Self::refresh) holds it only to begin, confirm and finish, so other calls
/// go on while the host refreshes, and a second refresh through the same object waits for
/// the first (single-flight within the process, as the store's refresh lock is across
/// processes).
pub struct SharedStore {
    store: Mutex<Store>,
    /// Held by the thread refreshing, from `begin_refresh` to `finish_refresh`.
    refresh_gate: Mutex<()>,
    /// That thread: its refresh starting another one here would wait for itself.
    refreshing: Mutex<Option<ThreadId>>,
}

impl SharedStore {
    /// Shares `store`.
    #[must_use]
    pub fn new(store: Store) -> Self {
        Self {
            store: Mutex::new(store),
            refresh_gate: Mutex::new(()),
            refreshing: Mutex::new(None),
        }
    }

    /// Runs `op` on the store, locked meanwhile.
    pub fn with<T>(&self, op: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        op(&mut *self.lock()?)
    }

    /// The single-flight refresh a `refresh` decision asks for: begins it at `now` (a
    /// token another process already rotated is adopted), confirms the lock right before
    /// the refresh token is used, then calls `refresh(credential)` without holding the
    /// store and records the outcome it returns, at the instant it returns. When
    /// `refresh` fails, the store's refresh lock is released with nothing changed and its
    /// error comes back inside `Ok(Err(..))`. A refresh started from inside `refresh`
    /// through this object fails with `invalid_input` instead of deadlocking.
    pub fn refresh<E>(
        &self,
        now: Millis,
        pool: &PoolKey,
        entry_id: &EntryId,
        generation: u64,
        lease_id: Option<LeaseId>,
        refresh: impl FnOnce(&Credential) -> std::result::Result<(RefreshOutcome, Millis), E>,
    ) -> Result<std::result::Result<Decision, E>> {
        let _gate = self.enter_refresh()?;
        let mut store = self.lock()?;
        let ticket = match store.begin_refresh(now, pool, entry_id, generation, lease_id)? {
            RefreshStart::Adopted(decision) => return Ok(Ok(decision)),
            RefreshStart::Needed(ticket) => ticket,
        };
        let ticket = match store.confirm_refresh(now, ticket)? {
            RefreshStart::Adopted(decision) => return Ok(Ok(decision)),
            RefreshStart::Needed(ticket) => ticket,
        };
        drop(store);
        match refresh(ticket.credential()) {
            Ok((outcome, finished)) => Ok(Ok(self
                .lock()?
                .finish_refresh(finished, ticket, outcome)?)),
            Err(error) => Ok(Err(error)),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Store>> {
        self.store.lock().map_err(|_| poisoned())
    }

    /// Takes the refresh gate (waiting for another thread's refresh); refuses a refresh
    /// started by the thread that holds it.
    fn enter_refresh(&self) -> Result<RefreshGate<'_>> {
        let me = std::thread::current().id();
        if *self.refreshing.lock().map_err(|_| poisoned())? == Some(me) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "a refresh was started from inside a refresh through the same store (it holds \
                 the refresh lock): use the credential it was given",
            ));
        }
        let gate = self.refresh_gate.lock().map_err(|_| poisoned())?;
        *self.refreshing.lock().map_err(|_| poisoned())? = Some(me);
        Ok(RefreshGate {
            _gate: gate,
            refreshing: &self.refreshing,
        })
    }
}

/// A held refresh gate; clears the re-entrance guard when dropped (on an error too).
struct RefreshGate<'a> {
    _gate: MutexGuard<'a, ()>,
    refreshing: &'a Mutex<Option<ThreadId>>,
}

impl Drop for RefreshGate<'_> {
    fn drop(&mut self) {
        if let Ok(mut owner) = self.refreshing.lock() {
            *owner = None;
        }
    }
}

fn poisoned() -> Error {
    Error::new(ErrorCode::Internal, "store lock poisoned")
}
