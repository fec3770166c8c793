//! The data-shaped entry point: `handle(now, input) -> output`, serde-tagged snake_case JSON.
//!
//! Used by the conformance vectors and by every binding. Typed methods on
//! [`Registry`] sit beside it for Rust users.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, de};
use serde_json::Value;

use crate::call::{Action, CallId, CallReport, CallStart};
use crate::codec::{Tagged, sanitize_serde_error, ser_secret};
use crate::decision::{Decision, FallbackTarget, LeaseId};
use crate::entry::EntryId;
use crate::error::{Error, ErrorCode, Result};
use crate::outcome::{RefreshOutcome, RefreshResult, RefreshSend, Report};
use crate::policy::Policy;
use crate::pool_key::PoolKey;
use crate::registry::{Credential, NewEntry, PoolUpdate, Registry, Strategy};
use crate::response::Response;
use crate::route::Api;
use crate::secret::Secret;
use crate::seed::{SeedConfig, SeedReport};
use crate::select::AcquireRequest;
use crate::state::StateDoc;
use crate::status::PoolStatus;
use crate::time::Millis;

/// Every input the registry accepts.
///
/// On the wire an object whose `type` names the variant in snake_case (`{"type":
/// "acquire", "pool": ...}`), unknown fields refused; [`parse_input`] reads it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Input {
    /// Create a pool (if missing) and set any of its strategy, policy, fallback chain and API shape.
    ConfigurePool {
        /// Pool key.
        pool: PoolKey,
        /// Strategy.
        strategy: Option<Strategy>,
        /// Policy: `{"preset": "adaptive", ...field overrides}`.
        policy: Option<Value>,
        /// Fallback chain.
        fallback: Option<Vec<FallbackTarget>>,
        /// The API shape its endpoints speak.
        api: Option<Api>,
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
    /// The built-in refresher's request for an entry (`token_request` reply).
    TokenRequest {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
    },
    /// Read the token endpoint's answer to `token_request` (`token_outcome` reply: the
    /// `result` to report with `refresh_result` / `call_refreshed`).
    TokenResponse {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
        /// What the token endpoint answered.
        response: Response,
    },
    /// Record that the refresh token of `generation` is about to be sent (persist the
    /// state before sending it).
    RefreshSend {
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
        pool: Option<PoolKey>,
    },
    /// Adopt credentials from an env map and a config.
    Seed {
        /// Environment variables.
        env: BTreeMap<String, String>,
        /// Custom providers.
        config: SeedConfig,
    },
    /// Hand the host an entry's secrets.
    Reveal {
        /// Pool key.
        pool: PoolKey,
        /// Entry.
        entry_id: EntryId,
    },
    /// Start a call (the call driver, SPEC §7): its first action.
    CallStart(CallStart),
    /// What a call's `send` produced.
    CallReport(CallReport),
    /// What a call's `probe` found.
    CallProbed {
        /// The call.
        call_id: CallId,
        /// Whether the provider says the limit no longer holds.
        restored: bool,
    },
    /// How the refresh a call's `refresh` action asked for ended.
    CallRefreshed {
        /// The call.
        call_id: CallId,
        /// How it ended.
        result: RefreshOutcome,
    },
    /// Resume a call after a `sleep`, or after a `refresh_result` on its lease.
    CallResume {
        /// The call.
        call_id: CallId,
    },
    /// Cancel a call: its lease is released with no mark.
    CallCancel {
        /// The call.
        call_id: CallId,
    },
}

/// The field rules of [`Input`] on the wire (a `remote` mirror: the compiler checks that it
/// matches). Derived externally tagged, and fed by [`Tagged`], so an input is read straight
/// from its JSON value (by reference, like state documents): serde's internally tagged
/// derive first copied every input into its private `Content` buffer and instantiated every
/// field type once more for it (about 55 KB of the wasm module). Same accepted shapes and
/// messages as that derive (`tests` below), except two oddities of its buffer: a unit enum
/// variant written `{"name": {}}` (e.g. `"strategy": {"round_robin": {}}`) is refused like
/// any other non-null value, and a nested struct written as an over-long array says
/// "expected fewer elements in array" instead of "expected N elements in sequence".
#[derive(Deserialize)]
#[serde(remote = "Input", rename_all = "snake_case", deny_unknown_fields)]
enum InputDef {
    ConfigurePool {
        pool: PoolKey,
        #[serde(default)]
        strategy: Option<Strategy>,
        #[serde(default)]
        policy: Option<Value>,
        #[serde(default)]
        fallback: Option<Vec<FallbackTarget>>,
        #[serde(default)]
        api: Option<Api>,
    },
    AddEntry {
        pool: PoolKey,
        entry: NewEntry,
    },
    RemoveEntry {
        pool: PoolKey,
        entry_id: EntryId,
    },
    Reset {
        pool: PoolKey,
        #[serde(default)]
        entry_id: Option<EntryId>,
    },
    SetPriority {
        pool: PoolKey,
        entry_id: EntryId,
        priority: i64,
    },
    Acquire(AcquireRequest),
    Report(Report),
    Release {
        pool: PoolKey,
        lease_id: LeaseId,
    },
    RefreshResult(RefreshResult),
    CheckRefresh {
        pool: PoolKey,
        entry_id: EntryId,
        generation: u64,
    },
    RefreshSend {
        pool: PoolKey,
        entry_id: EntryId,
        generation: u64,
    },
    TokenRequest {
        pool: PoolKey,
        entry_id: EntryId,
    },
    TokenResponse {
        pool: PoolKey,
        entry_id: EntryId,
        response: Response,
    },
    BeginTurn {
        #[serde(default)]
        pool: Option<PoolKey>,
    },
    Tick,
    Sync {
        state: Value,
    },
    ExportState,
    Status {
        #[serde(default)]
        pool: Option<PoolKey>,
    },
    Seed {
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        config: SeedConfig,
    },
    Reveal {
        pool: PoolKey,
        entry_id: EntryId,
    },
    CallStart(CallStart),
    CallReport(CallReport),
    CallProbed {
        call_id: CallId,
        restored: bool,
    },
    CallRefreshed {
        call_id: CallId,
        result: RefreshOutcome,
    },
    CallResume {
        call_id: CallId,
    },
    CallCancel {
        call_id: CallId,
    },
}

/// Reads any self-describing input through a JSON value (messages as [`parse_input`]'s).
impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        input_from_value(value).map_err(de::Error::custom)
    }
}

fn input_from_value(value: Value) -> std::result::Result<Input, serde_json::Error> {
    InputDef::deserialize(&Tagged::split(
        value,
        "internally tagged enum Input",
        false,
    )?)
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
#[non_exhaustive]
pub enum OutputBody {
    /// For `acquire`, `report` and `refresh_result`.
    Decision(Decision),
    /// For the call driver's inputs (`call_start`, `call_report`, ...).
    Action(Action),
    /// For everything else.
    Reply(Reply),
}

/// Replies to non-decision inputs.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
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
    /// `token_request` answer: send it (`POST`), then pass the answer to `token_response`.
    TokenRequest {
        /// The token endpoint.
        url: String,
        /// Request headers (values may hold the refresh token).
        #[serde(serialize_with = "ser_secret_map")]
        headers: Vec<(String, Secret)>,
        /// The request body (holds the refresh token).
        #[serde(serialize_with = "ser_secret_str")]
        body: Secret,
    },
    /// `token_response` answer: the refresh outcome to report.
    TokenOutcome {
        /// As `refresh_result` takes it.
        result: OutcomeOut,
    },
    /// `refresh_send` answer.
    RefreshSendRecorded {
        /// `send` (recorded as sent), `adopt` or `interrupted`.
        verdict: RefreshSend,
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
    /// `reveal` answer: with a `send` action, the only outputs that carry secrets.
    Credential(CredentialOut),
    /// `call_cancel` done: the call's lease was released with no mark.
    CallCancelled {
        /// The call.
        call_id: CallId,
    },
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

/// A [`RefreshOutcome`] as an output carries it (the new tokens included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OutcomeOut {
    /// New tokens.
    Refreshed {
        /// New access token.
        #[serde(serialize_with = "ser_secret")]
        access_token: Option<Secret>,
        /// New refresh token, if the provider rotated it.
        #[serde(serialize_with = "ser_secret", skip_serializing_if = "Option::is_none")]
        refresh_token: Option<Secret>,
        /// New expiry.
        #[serde(skip_serializing_if = "Option::is_none")]
        expires_at: Option<Millis>,
    },
    /// The refresh failed.
    Failed {
        /// A new login is needed.
        terminal: bool,
        /// Provider code.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Provider message (clipped, no token).
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// Adopted.
    Adopted,
}

impl From<RefreshOutcome> for OutcomeOut {
    fn from(outcome: RefreshOutcome) -> Self {
        match outcome {
            RefreshOutcome::Refreshed {
                access_token,
                refresh_token,
                expires_at,
            } => Self::Refreshed {
                access_token: Some(access_token),
                refresh_token,
                expires_at,
            },
            RefreshOutcome::Failed {
                terminal,
                reason,
                message,
            } => Self::Failed {
                terminal,
                reason,
                message,
            },
            RefreshOutcome::Adopted => Self::Adopted,
        }
    }
}

fn ser_secret_str<S: serde::Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

fn ser_secret_map<S: serde::Serializer>(
    headers: &[(String, Secret)],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(headers.len()))?;
    for (name, value) in headers {
        map.serialize_entry(name, value.expose())?;
    }
    map.end()
}

impl Registry {
    /// Applies one input at `now`. Every input validates before it mutates, so an input
    /// that fails leaves the persisted state as it was (bindings rely on this).
    pub fn handle(&mut self, now: Millis, input: Input) -> Result<Output> {
        self.take_changed();
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
        use OutputBody::{Action as A, Decision as D, Reply as R};
        Ok(match input {
            Input::ConfigurePool {
                pool,
                strategy,
                policy,
                fallback,
                api,
            } => {
                let policy = policy.as_ref().map(Policy::from_value).transpose()?;
                let update = PoolUpdate {
                    strategy,
                    policy,
                    fallback,
                    api,
                };
                self.configure_pool(now, &pool, update)?;
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
            Input::TokenRequest { pool, entry_id } => {
                let request = self.token_request(&pool, &entry_id)?;
                R(Reply::TokenRequest {
                    url: request.url,
                    headers: request.headers,
                    body: request.body,
                })
            }
            Input::TokenResponse {
                pool,
                entry_id,
                response,
            } => {
                let now = self.clock(now);
                let outcome = self.token_outcome(now, &pool, &entry_id, &response)?;
                R(Reply::TokenOutcome {
                    result: outcome.into(),
                })
            }
            Input::RefreshSend {
                pool,
                entry_id,
                generation,
            } => R(Reply::RefreshSendRecorded {
                verdict: self.record_refresh_send(now, &pool, &entry_id, generation)?,
            }),
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
            Input::CallStart(start) => A(self.start_call(now, &start)?),
            Input::CallReport(report) => A(self.call_report(now, &report)?),
            Input::CallProbed { call_id, restored } => A(self.call_probed(now, call_id, restored)?),
            Input::CallRefreshed { call_id, result } => {
                A(self.call_refreshed(now, call_id, &result)?)
            }
            Input::CallResume { call_id } => A(self.call_resume(now, call_id)?),
            Input::CallCancel { call_id } => {
                self.clock(now);
                self.cancel_call(call_id)?;
                R(Reply::CallCancelled { call_id })
            }
        })
    }
}

/// Parses an [`Input`] from JSON, with an error message that never echoes input values.
///
/// The names an input carries (pool keys, entry ids) are checked first, by the same parsers
/// serde then uses, so their own codes (`invalid_pool_key`, `invalid_input`) are decided
/// before serde runs; any other failure is `invalid_input`.
pub fn parse_input(input: Value) -> Result<Input> {
    check_names(&input)?;
    input_from_value(input).map_err(|e| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("invalid input: {}", sanitize_serde_error(&e)),
        )
    })
}

/// Parses every pool key and entry id an input names where the wire has them: `pool`,
/// `entry_id`, `entry.id` and `fallback[].pool`.
fn check_names(input: &Value) -> Result<()> {
    let Some(fields) = input.as_object() else {
        return Ok(());
    };
    let steps = fields.get("fallback").and_then(Value::as_array);
    let pools = std::iter::once(fields.get("pool"))
        .chain(steps.into_iter().flatten().map(|step| step.get("pool")))
        .flatten();
    for pool in pools.filter_map(Value::as_str) {
        PoolKey::parse(pool)?;
    }
    let entries = [
        fields.get("entry_id"),
        fields.get("entry").and_then(|entry| entry.get("id")),
    ];
    for id in entries.into_iter().flatten().filter_map(Value::as_str) {
        EntryId::parse(id)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::{Input, parse_input};
    use crate::codec::sanitize_serde_error;
    use crate::outcome::RefreshOutcome;
    use crate::response::{Body, Headers};

    /// `parse_input`'s message for `input`, or `ok: <Debug>`.
    fn parsed(input: serde_json::Value) -> String {
        match parse_input(input) {
            Ok(input) => format!("ok: {input:?}"),
            Err(e) => e.message().to_owned(),
        }
    }

    // The inputs are read without serde's internally tagged derive; these pin the shapes
    // and messages that derive gave (checked against it), beyond the vectors.
    #[test]
    fn tag_anywhere_missing_or_malformed() {
        assert_eq!(
            parsed(json!({"pool": "p", "type": "release", "lease_id": 1})),
            parsed(json!({"type": "release", "pool": "p", "lease_id": 1}))
        );
        for missing in [json!({}), json!([]), json!({"pool": "p"})] {
            assert_eq!(parsed(missing), "invalid input: missing field `type`");
        }
        assert_eq!(
            parsed(json!(5)),
            "invalid input: invalid type: integer `…`, expected internally tagged enum Input"
        );
        assert_eq!(
            parsed(json!(null)),
            "invalid input: invalid type: null, expected internally tagged enum Input"
        );
        assert_eq!(
            parsed(json!({"type": 0})),
            "invalid input: invalid type: integer `…`, expected variant identifier"
        );
        assert!(
            parsed(json!({"type": "zzz"})).starts_with(
                "invalid input: unknown variant `…`, expected one of `configure_pool`"
            )
        );
        assert_eq!(
            parsed(json!({"type": "release", "pool": "p", "lease_id": 1, "x": 1})),
            "invalid input: unknown field `x`, expected `pool` or `lease_id`"
        );
        assert_eq!(
            parsed(json!({"type": "acquire", "pool": "p", "x": 1})),
            "invalid input: unknown field `x`, expected one of `pool`, `model`, `session`, `spread`, `can_refresh`"
        );
    }

    #[test]
    fn unit_variants_ignore_fields_and_arrays_are_positional() {
        assert_eq!(parsed(json!({"type": "tick", "x": 1})), "ok: Tick");
        assert_eq!(parsed(json!(["tick"])), "ok: Tick");
        assert_eq!(
            parsed(json!(["tick", 1])),
            "invalid input: invalid length 1, expected 0 elements in sequence"
        );
        assert_eq!(
            parsed(json!(["release", "p", 7])),
            parsed(json!({"type": "release", "pool": "p", "lease_id": 7}))
        );
        assert_eq!(
            parsed(json!(["release", "p", 7, 8])),
            "invalid input: invalid length 3, expected 2 elements in sequence"
        );
        assert_eq!(
            parsed(json!(["acquire", "p", "m", "s", true, false, 1])),
            "invalid input: invalid length 6, expected 5 elements in sequence"
        );
        assert_eq!(
            parsed(json!(["release", "p"])),
            "invalid input: invalid length 1, expected struct variant Input::Release with 2 elements"
        );
    }

    #[test]
    fn refresh_outcome_shapes() {
        let result = |result: serde_json::Value| {
            parsed(
                json!({"type": "refresh_result", "pool": "p", "entry_id": "a",
                "generation": 0, "result": result}),
            )
        };
        let adopted = result(json!({"type": "adopted"}));
        assert!(adopted.ends_with("result: Adopted })"), "{adopted}");
        assert_eq!(result(json!({"type": "adopted", "x": 1})), adopted);
        // A variant index, as serde's buffered tag always accepted.
        assert_eq!(result(json!({"type": 2})), adopted);
        assert_eq!(
            result(json!({"type": 3})),
            "invalid input: invalid value: integer `…`, expected variant index 0 <= i < 3"
        );
        assert_eq!(
            result(json!({"type": "refreshed"})),
            "invalid input: missing field `access_token`"
        );
        assert_eq!(
            result(json!({"type": "failed", "x": 1})),
            "invalid input: unknown field `x`, expected one of `terminal`, `reason`, `message`"
        );
        assert_eq!(
            result(json!("adopted")),
            "invalid input: invalid type: string \"…\", expected internally tagged enum RefreshOutcome"
        );
        let refreshed: RefreshOutcome =
            serde_json::from_value(json!({"access_token": "t", "type": "refreshed"})).unwrap();
        assert!(
            matches!(refreshed, RefreshOutcome::Refreshed { access_token, refresh_token: None, .. }
            if access_token.expose() == "t")
        );
    }

    #[test]
    fn headers_and_bodies() {
        let headers = |v| serde_json::from_value::<Headers>(v).map_err(|e| e.to_string());
        assert_eq!(
            headers(json!({"a": "1", "b": 2})).unwrap().0,
            [("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            headers(json!([["a", "1"]])).unwrap().0,
            [("a".into(), "1".into())]
        );
        assert_eq!(headers(json!([])).unwrap().0, []);
        let no_shape = "data did not match any variant of untagged enum Shape";
        for bad in [
            json!([["a", "b", "c"]]),
            json!([["a", 1]]),
            json!(["a"]),
            json!(5),
        ] {
            assert_eq!(headers(bad).unwrap_err(), no_shape);
        }
        assert_eq!(
            headers(json!({"a": null})).unwrap_err(),
            "header values must be strings or numbers"
        );
        let body = |v| serde_json::from_value::<Body>(v).unwrap();
        assert_eq!(body(json!("x")), Body::Text("x".into()));
        assert_eq!(body(json!({"a": 1})), Body::Json(json!({"a": 1})));
        assert_eq!(body(json!(null)), Body::Json(json!(null)));
    }

    #[test]
    fn input_deserialize_reads_json_text() {
        let input: Input = serde_json::from_str(r#"{"pool":"p","type":"tick"}"#).unwrap();
        assert_eq!(input, Input::Tick);
    }

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
