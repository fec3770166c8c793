//! The data-shaped entry point: `handle(now, input) -> output`, serde-tagged snake_case JSON.
//!
//! Used by the conformance vectors and by every binding. Typed methods on
//! [`Registry`] sit beside it for Rust users.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::decision::{Decision, FallbackTarget, LeaseId};
use crate::entry::EntryId;
use crate::error::{Error, ErrorCode, Result};
use crate::outcome::{RefreshResult, Report};
use crate::policy::Policy;
use crate::pool_key::PoolKey;
use crate::registry::{Credential, NewEntry, Registry, Strategy};
use crate::secret::Secret;
use crate::seed::{SeedConfig, SeedReport};
use crate::select::AcquireRequest;
use crate::state::StateDoc;
use crate::status::PoolStatus;
use crate::time::Millis;

/// Every input the registry accepts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Input {
    /// Create a pool (if missing) and set any of its strategy, policy and fallback chain.
    ConfigurePool {
        /// Pool key.
        pool: PoolKey,
        /// Strategy.
        #[serde(default)]
        strategy: Option<Strategy>,
        /// Policy: `{"preset": "adaptive", ...field overrides}`.
        #[serde(default)]
        policy: Option<Value>,
        /// Fallback chain.
        #[serde(default)]
        fallback: Option<Vec<FallbackTarget>>,
    },
    /// Add an entry (creating the pool).
    AddEntry {
        /// Pool key.
        pool: PoolKey,
        /// The entry.
        entry: NewEntry,
    },
    /// Remove an entry (tombstoned).
    RemoveEntry {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
    },
    /// Clear status and cooldowns of one entry, or of every entry of the pool.
    Reset {
        /// Pool key.
        pool: PoolKey,
        /// Entry (all when absent).
        #[serde(default)]
        entry_id: Option<EntryId>,
    },
    /// Set an entry's priority.
    SetPriority {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
        /// New priority.
        priority: i64,
    },
    /// Pick an entry for a request.
    Acquire(AcquireRequest),
    /// Report a request's outcome.
    Report(Report),
    /// Close a lease with no outcome (nothing is marked).
    Release {
        /// Pool key.
        pool: PoolKey,
        /// The lease.
        lease_id: LeaseId,
    },
    /// Report the result of a refresh.
    RefreshResult(RefreshResult),
    /// Ask whether a refresh from `generation` is still needed.
    CheckRefresh {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
        /// The generation the `refresh` decision named.
        generation: u64,
    },
    /// Start a new agent turn.
    BeginTurn {
        /// One pool, or all when absent.
        #[serde(default)]
        pool: Option<PoolKey>,
    },
    /// Let time pass: clear expired cooldowns.
    Tick,
    /// Merge another writer's exported state.
    Sync {
        /// The other state document.
        state: Value,
    },
    /// Export the persistable state.
    ExportState,
    /// Status for humans.
    Status {
        /// One pool, or all when absent.
        #[serde(default)]
        pool: Option<PoolKey>,
    },
    /// Adopt credentials from an env map and a config.
    Seed {
        /// Environment variables.
        #[serde(default)]
        env: BTreeMap<String, String>,
        /// Custom providers.
        #[serde(default)]
        config: SeedConfig,
    },
    /// Hand the host an entry's secrets.
    Reveal {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
    },
}

/// The answer to one input, plus whether persisted state changed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Output {
    /// The answer.
    #[serde(flatten)]
    pub body: OutputBody,
    /// Whether persisted state changed (write it back only then).
    pub changed: bool,
}

/// An answer: a decision, or a reply to a management or query input.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OutputBody {
    /// For `acquire`, `report` and `refresh_result`.
    Decision(Decision),
    /// For everything else.
    Reply(Reply),
}

/// Replies to non-decision inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// `configure_pool` done.
    PoolConfigured {
        /// Pool key.
        pool: PoolKey,
    },
    /// `add_entry` done.
    EntryAdded {
        /// The new entry's id.
        entry_id: EntryId,
    },
    /// `remove_entry` done.
    EntryRemoved {
        /// The removed id.
        entry_id: EntryId,
    },
    /// `release` done.
    Released {
        /// The closed lease.
        lease_id: LeaseId,
    },
    /// `reset` done.
    Reset {
        /// Entries that had something to clear.
        count: usize,
    },
    /// `set_priority` done.
    EntryUpdated {
        /// The entry.
        entry_id: EntryId,
    },
    /// `check_refresh` answer.
    RefreshCheck {
        /// Whether the host should refresh (false: adopt the stored token).
        needed: bool,
    },
    /// `begin_turn` done.
    TurnBegun {
        /// Pools restored from their fallback.
        restored: Vec<PoolKey>,
    },
    /// `tick` done.
    Ticked {
        /// Entries whose cooldown ended.
        recovered: Vec<Recovered>,
        /// Next cooldown deadline, for the host's timer.
        next_wakeup: Option<Millis>,
    },
    /// `sync` done.
    Synced,
    /// `export_state` answer.
    State {
        /// The document.
        state: StateDoc,
    },
    /// `status` answer.
    Status {
        /// Pools.
        pools: Vec<PoolStatus>,
    },
    /// `seed` answer.
    Seeded(SeedReport),
    /// `reveal` answer: the only output that carries secrets.
    Credential(CredentialOut),
}

impl From<Credential> for CredentialOut {
    fn from(c: Credential) -> Self {
        Self {
            entry_id: c.entry_id,
            access_token: c.access_token,
            refresh_token: c.refresh_token,
            expires_at: c.expires_at,
            base_url: c.base_url,
            generation: c.generation,
        }
    }
}

/// An entry that recovered during a tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recovered {
    /// Pool.
    pub pool: PoolKey,
    /// Entry.
    pub entry_id: EntryId,
}

/// Secrets handed to the host by `reveal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CredentialOut {
    /// Entry.
    pub entry_id: EntryId,
    /// The API key or access token.
    #[serde(serialize_with = "ser_secret")]
    pub access_token: Option<Secret>,
    /// The refresh token.
    #[serde(serialize_with = "ser_secret", skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// Access-token expiry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// Endpoint.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Token generation.
    pub generation: u64,
}

impl Registry {
    /// Applies one input at `now`. Every input validates before it mutates, so an input
    /// that fails leaves the persisted state as it was (bindings rely on this).
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        self.changed = false;
        let body = self.dispatch(now, input)?;
        Ok(Output {
            body,
            changed: self.take_changed(),
        })
    }

    /// Parses `input` (JSON) and applies it.
    pub fn handle_value(&mut self, now: Millis, input: Value) -> Result<Output> {
        let input = parse_input(input)?;
        self.handle(now, input)
    }

    fn dispatch(&mut self, now: Millis, input: Input) -> Result<OutputBody> {
        use OutputBody::{Decision as D, Reply as R};
        Ok(match input {
            Input::ConfigurePool {
                pool,
                strategy,
                policy,
                fallback,
            } => {
                let policy = policy.as_ref().map(Policy::from_value).transpose()?;
                self.configure_pool(now, &pool, strategy, policy, fallback)?;
                R(Reply::PoolConfigured { pool })
            }
            Input::AddEntry { pool, entry } => R(Reply::EntryAdded {
                entry_id: self.add_entry(now, &pool, entry)?,
            }),
            Input::RemoveEntry { pool, entry_id } => {
                self.remove_entry(now, &pool, &entry_id)?;
                R(Reply::EntryRemoved { entry_id })
            }
            Input::Reset { pool, entry_id } => R(Reply::Reset {
                count: self.reset(now, &pool, entry_id.as_ref())?,
            }),
            Input::SetPriority {
                pool,
                entry_id,
                priority,
            } => {
                self.set_priority(now, &pool, &entry_id, priority)?;
                R(Reply::EntryUpdated { entry_id })
            }
            Input::Acquire(request) => D(self.acquire(now, &request)?),
            Input::Report(report) => D(self.report(now, &report)?),
            Input::Release { pool, lease_id } => {
                self.release(&pool, lease_id)?;
                R(Reply::Released { lease_id })
            }
            Input::RefreshResult(result) => D(self.refresh_result(now, &result)?),
            Input::CheckRefresh {
                pool,
                entry_id,
                generation,
            } => {
                self.clock(now);
                R(Reply::RefreshCheck {
                    needed: self.check_refresh(&pool, &entry_id, generation)?,
                })
            }
            Input::BeginTurn { pool } => R(Reply::TurnBegun {
                restored: self.begin_turn(now, pool.as_ref())?,
            }),
            Input::Tick => {
                let tick = self.tick(now);
                let recovered = tick
                    .recovered
                    .into_iter()
                    .map(|(pool, entry_id)| Recovered { pool, entry_id })
                    .collect();
                R(Reply::Ticked {
                    recovered,
                    next_wakeup: tick.next_wakeup,
                })
            }
            Input::Sync { state } => {
                self.clock(now);
                self.sync(&state)?;
                R(Reply::Synced)
            }
            Input::ExportState => R(Reply::State {
                state: self.export_state(),
            }),
            Input::Status { pool } => {
                let now = self.clock(now);
                R(Reply::Status {
                    pools: self.status(now, pool.as_ref())?,
                })
            }
            Input::Seed { env, config } => R(Reply::Seeded(self.seed(now, &env, &config)?)),
            Input::Reveal { pool, entry_id } => {
                R(Reply::Credential(self.credential(&pool, &entry_id)?.into()))
            }
        })
    }
}

/// Parses an [`Input`] from JSON, with an error message that never echoes input values.
pub fn parse_input(input: Value) -> Result<Input> {
    Input::deserialize(input)
        .map_err(|e| Error::from_serde(ErrorCode::InvalidInput, "invalid input", &e))
}

/// A serde error's message with every quoted value removed (values may be secrets).
pub(crate) fn sanitize_serde_error(error: &impl std::fmt::Display) -> String {
    // serde quotes strings with `"`, and other values (an unknown variant, a number, a
    // bool, a char) with backticks after these words; backticks elsewhere name what was
    // expected (`api_key` or `oauth`) and are kept.
    const BACKTICK_VALUE_AFTER: [&str; 5] = [
        "variant ",
        "integer ",
        "floating point ",
        "boolean ",
        "character ",
    ];
    let text = error.to_string();
    let mut out = String::with_capacity(text.len().min(300));
    let mut closing: Option<char> = None;
    for ch in text.chars() {
        match (ch, closing) {
            ('"', None) => {
                closing = Some('"');
                out.push_str("\"…");
            }
            ('`', None) if BACKTICK_VALUE_AFTER.iter().any(|w| out.ends_with(w)) => {
                closing = Some('`');
                out.push_str("`…");
            }
            (c, Some(close)) if c == close => {
                closing = None;
                out.push(c);
            }
            (_, Some(_)) => {}
            (c, None) => out.push(c),
        }
        if out.len() > 300 {
            out.push('…');
            break;
        }
    }
    out
}

/// Serialises an optional secret as its text (state documents and `reveal` only).
pub(crate) fn ser_secret<S: Serializer>(
    secret: &Option<Secret>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match secret {
        Some(secret) => serializer.serialize_str(secret.expose()),
        None => serializer.serialize_none(),
    }
}

/// Deserialises an optional secret; empty strings count as absent.
pub(crate) fn de_secret<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Secret>, D::Error> {
    let text: Option<String> = Option::deserialize(deserializer)?;
    Ok(text.filter(|t| !t.is_empty()).map(Secret::new))
}

/// Deserialises a required secret.
pub(crate) fn de_secret_required<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Secret, D::Error> {
    String::deserialize(deserializer).map(Secret::new)
}

#[cfg(test)]
mod tests {
    use super::sanitize_serde_error;

    #[test]
    fn sanitized_errors_drop_every_quoted_value() {
        let cases = [
            (
                "unknown variant `sk-secret`, expected `api_key` or `oauth`",
                "unknown variant `…`, expected `api_key` or `oauth`",
            ),
            (
                "invalid type: integer `123456`, expected a string",
                "invalid type: integer `…`, expected a string",
            ),
            (
                "invalid type: string \"sk-secret\", expected u64",
                "invalid type: string \"…\", expected u64",
            ),
            (
                "unknown field `policy`, expected `pool`",
                "unknown field `policy`, expected `pool`",
            ),
        ];
        for (raw, clean) in cases {
            assert_eq!(sanitize_serde_error(&raw), clean);
        }
    }
}
