//! # credpool-core
//!
//! A pure credential-rotation state machine for LLM agents. **It does no IO, reads no
//! clock, no environment and no OS randomness**: every input carries `now` (epoch ms),
//! randomness comes from a seeded PRNG, and persistence is the host's job (export the
//! state when an output says `changed`).
//!
//! The host loop:
//! 1. `acquire` → a [`Decision`]: `use` an entry under a lease (or `refresh`, `fallback`,
//!    `wait`, `fail`).
//! 2. Call the provider with the entry's secret ([`Registry::credential`]).
//! 3. `report` the response against the lease → the next [`Decision`]: `done`,
//!    `retry_same`, `use` (rotated), `refresh`, `fallback`, `wait` or `fail`.
//! 4. Persist when `changed`; `sync` what other processes wrote before deciding.
//!
//! ```
//! use credpool_core::{AcquireRequest, Decision, Millis, NewEntry, Options, PoolKey,
//!     Registry, Report, Response, Secret};
//!
//! let mut pool = Registry::new(Options { writer: "docs".into(), seed: 1 })?;
//! let key = PoolKey::parse("openrouter")?;
//! for secret in ["sk-or-one", "sk-or-two"] {
//!     let entry = NewEntry { access_token: Some(Secret::new(secret)), ..NewEntry::default() };
//!     pool.add_entry(Millis(0), &key, entry)?;
//! }
//! let request = AcquireRequest::new(key.clone());
//! let Decision::Use { entry_id, lease_id, .. } = pool.acquire(Millis(1_000), &request)? else {
//!     unreachable!("two healthy keys")
//! };
//! let _api_key = pool.credential(&key, &entry_id)?.access_token;
//! // ... the provider answers 402: out of credit, so rotate at once.
//! let response = Response { status: Some(402), ..Response::default() };
//! let report = Report { pool: key.clone(), lease_id: Some(lease_id), entry_id: None, response };
//! let next = pool.report(Millis(2_000), &report)?;
//! assert!(matches!(next, Decision::Use { entry_id: ref other, .. } if *other != entry_id));
//! # Ok::<(), credpool_core::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod call;
mod classify;
mod codec;
mod counts;
mod decision;
mod entry;
mod error;
mod fallback;
mod hermes;
mod index;
mod journal;
pub mod limits;
mod merge;
mod oauth;
mod outcome;
mod policy;
mod pool_key;
mod ranked;
mod redact;
mod registry;
mod response;
mod rng;
mod route;
mod secret;
mod seed;
mod seed_anthropic;
mod select;
mod shared_leases;
mod short_str;
mod state;
mod status;
mod suppress;
mod table;
mod time;
mod wire;

pub use call::{
    Action, Budget, CallId, CallReport, CallStart, DEFAULT_MAX_TOTAL_WAIT_MS, DEFAULT_MAX_WAIT_MS,
    EXTRA_SENDS, Route,
};
pub use classify::{Classification, Hint, HintSource, OutcomeClass, classify};
pub use counts::Counts;
pub use decision::{Decision, FallbackTarget, LeaseId, Reason};
pub use entry::{
    AuthType, Availability, Entry, EntryId, LastError, Meta, ModelCooldown, RefreshSent, Status,
    StatusRecord, Token, is_borrowed_source,
};
pub use error::{Error, ErrorCode, Result};
pub use hermes::{
    AUTH_STORE_VERSION, HERMES_WRITER, export_hermes, hermes_strategy, import_hermes,
    is_hermes_borrowed_source,
};
pub use journal::{Changes, PoolChanges};
pub use oauth::{CanRefresh, TokenRequest, jwt_claims, oauth_providers};
pub use outcome::{
    REFRESH_INTERRUPTED, RefreshOutcome, RefreshResult, RefreshSend, Report, TickReport,
};
pub use policy::{HintUsed, ModelScope, Policy, Preset};
pub use pool_key::{CUSTOM_PREFIX, PoolKey, custom_name, name_from_base_url};
pub use registry::{
    Credential, Cursor, Lease, NewEntry, Options, Pool, PoolConfig, PoolUpdate, Registry, Strategy,
};
pub use response::{Body, Headers, Response};
pub use rng::Rng;
pub use route::{ANTHROPIC_OAUTH_BETA, Api, Auth, rebase_url};
pub use secret::{Fingerprint, Secret};
pub use seed::{
    BorrowedLogin, CustomProvider, PROVIDERS, Provider, SeedConfig, SeedReport, SeededEntry,
    SuppressedSource, provider,
};
pub use select::AcquireRequest;
pub use shared_leases::{SharedLeases, WriterLeases};
pub use state::{EntryDoc, FORMAT, PoolDoc, SCHEMA_VERSION, StateDoc};
pub use status::{EntryStatus, Health, PoolStatus, time_left};
pub use time::{DAY, HOUR, MINUTE, Millis, SECOND};
pub use wire::{
    CredentialOut, Input, OutcomeOut, Output, OutputBody, Recovered, Reply, parse_input,
};

/// This crate's version (bindings report it through `version()`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The workspace README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
