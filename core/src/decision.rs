//! Decisions: what the host should do next, one per acquire, report or refresh result.

use serde::{Deserialize, Serialize};

use crate::classify::OutcomeClass;
use crate::entry::EntryId;
use crate::policy::HintUsed;
use crate::pool_key::PoolKey;
use crate::time::Millis;

/// Id of an open lease: one request's claim on an entry, reported back exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseId(pub u64);

/// Why a decision was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Reason {
    /// Every entry is cooling down.
    AllCoolingDown,
    /// Every usable entry holds as many open requests as the pool's per-key cap allows.
    AllKeysBusy,
    /// The pool has no entry that could ever serve (empty, all dead, or no secret here).
    NoUsableEntry,
    /// The access token expires within the refresh skew.
    TokenExpiring,
    /// A refresh succeeded.
    Refreshed,
    /// Another process already rotated the token; it was adopted.
    Adopted,
    /// The refresh failed.
    RefreshFailed,
    /// The per-turn refresh cap was reached.
    RefreshCap,
    /// A routed call reached a pool whose API shape is not its request's.
    ApiMismatch,
    /// A routed call reached a fallback pool whose entry names no endpoint (`base_url`).
    NoBaseUrl,
    /// A probe found a benched entry's limit lifted; it was reopened.
    QuotaRestored,
    /// The outcome class of the reported response (serialised as the class name).
    #[serde(untagged)]
    Outcome(OutcomeClass),
}

impl From<OutcomeClass> for Reason {
    fn from(class: OutcomeClass) -> Self {
        Self::Outcome(class)
    }
}

/// A step of a pool's fallback chain: another pool, optionally with another model.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FallbackTarget {
    /// Pool to use instead.
    pub pool: PoolKey,
    /// Model to use there (`None`: the host's choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// What the host should do next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[must_use]
#[non_exhaustive]
pub enum Decision {
    /// Send the request with this entry under this lease.
    Use {
        /// The entry to use.
        entry_id: EntryId,
        /// The lease to report against.
        lease_id: LeaseId,
        /// Why (absent for a plain selection).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<Reason>,
        /// The hint that set the failed entry's cooldown, after a rotation.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<HintUsed>,
    },
    /// Retry with the same entry after `delay_ms`; the lease stays open.
    RetrySame {
        /// The entry to retry with.
        entry_id: EntryId,
        /// The lease, still open.
        lease_id: LeaseId,
        /// How long to wait first.
        delay_ms: u64,
        /// Why.
        reason: Reason,
        /// The hint the delay came from.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<HintUsed>,
    },
    /// Refresh this entry's OAuth token (lock, sync, refresh only if still `generation`),
    /// then send `refresh_result`; the lease stays open.
    Refresh {
        /// The entry to refresh.
        entry_id: EntryId,
        /// The lease, still open.
        lease_id: LeaseId,
        /// The token generation to replace; a newer one in the store means: adopt it.
        generation: u64,
        /// Why.
        reason: Reason,
    },
    /// Switch to the next step of the fallback chain for the rest of the turn.
    Fallback {
        /// The pool to use.
        pool: PoolKey,
        /// The model to use there.
        #[serde(skip_serializing_if = "Option::is_none")]
        model: Option<String>,
        /// Why the primary could not serve.
        reason: Reason,
        /// When the primary pool is expected to be usable again.
        primary_back_at: Option<Millis>,
    },
    /// Nothing usable before `until`; acquire again then.
    Wait {
        /// When an entry becomes available.
        until: Millis,
        /// Why.
        reason: Reason,
        /// The hint that set the deadline, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        hint: Option<HintUsed>,
    },
    /// Give up on this request, with the real cause.
    Fail {
        /// The real cause.
        reason: Reason,
        /// The HTTP status behind it, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
    },
    /// The request succeeded; the lease is settled.
    Done,
}
