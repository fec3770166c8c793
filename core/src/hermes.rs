//! Hermes migration: pure conversions between a Hermes Agent `auth.json` and a credpool
//! state document.
//!
//! - [`import_hermes`] reads the `credential_pool` section of an `auth.json` (a
//!   `serde_json::Value`) and returns a [`StateDoc`] that [`crate::Registry::from_state`]
//!   loads (after `serde_json::to_value`).
//! - [`export_hermes`] takes a credpool state document (the JSON of a [`StateDoc`], as
//!   exported by [`crate::Registry::export_state`]) and writes an `auth.json`: `version: 1`,
//!   `credential_pool` and `suppressed_sources`. Given `base` (an existing `auth.json`),
//!   every other top-level key of it (`version`, `active_provider`, `providers`, ...) is
//!   kept untouched; `credential_pool` is replaced as a whole (pools of `base` that the
//!   state lacks are dropped; pools without entries are left out), and in
//!   `suppressed_sources` the state's pools replace theirs (a pool with nothing suppressed
//!   drops its list) while `base`'s lists of pools the state does not have are kept, so an
//!   export never resurrects a source Hermes suppressed. The key is left out when empty.
//!
//! Both are pure: no IO, no clock. The host reads and writes the file.
//!
//! # What is imported
//!
//! Every pool key of `credential_pool` (including `custom:*`, normalised as
//! [`PoolKey::parse`] does) and every entry field:
//!
//! | Hermes entry key | credpool |
//! |---|---|
//! | `id` (required), `label`, `auth_type`, `priority`, `source`, `base_url` | same fields; a missing `label` is the source (else the pool key), a missing `source` is `manual`, `auth_type` defaults to `api_key` |
//! | `access_token`, `refresh_token` | the token (owned sources only, see below); `""` means none |
//! | `secret_fingerprint` | the token's fingerprint |
//! | `expires_at_ms` (epoch ms) / `expires_at` (ISO) | the token's `expires_at` (see *Token expiry*) |
//! | `last_status` (`null`/`ok`/`exhausted`/`dead`), `last_status_at` | status and `status_at` |
//! | `last_error_code` / `_reason` / `_message` | `last_error` (reason and message clipped to [`MAX_REASON_CHARS`] / [`MAX_MESSAGE_CHARS`]) |
//! | `last_error_reset_at` | `cooldown_until` (see *Cooldown deadlines*) |
//! | `failure_reason` | `failure_class` when it names an [`OutcomeClass`] (`rate_limit`, `billing`, `billing_unverified`, `auth`, `model_entitlement`, ...); any other value stays in `extra` |
//! | `status_cleared_at` | `status_cleared_at` |
//! | `request_count` | `request_counts` under the single writer [`HERMES_WRITER`] (`"hermes"`) |
//! | `model_cooldowns` (`{model: until}`) + `model_cooldown_observed_at` (`{model: at}`) | `model_cooldowns` (`until`, `at`; `at` is 0 when not observed) |
//! | `provider` | dropped (Hermes never writes it; the pool key is the provider) |
//! | anything else (`last_refresh`, `agent_key`, `inference_base_url`, `secret_source`, `tls`, plugin keys, ...) | `extra`, verbatim (`null` values are dropped, as Hermes' `to_dict` does) |
//!
//! **Times.** Hermes times are epoch *seconds* (floats), or ISO-8601 strings, or numeric
//! strings; they become integer epoch ms (rounded to the nearest ms). As in Hermes'
//! `parse_abs_ts`, a number above 10^12 is already ms, and a value ≤ 0 (or `""`) means none.
//!
//! **Borrowed sources** (`env:*`, `config:*`, vault-style refs — `vault:`, `keyring`,
//! `1password`, `pass`, `sops`, `age://`, `systemd`, `future_secret_store:` — and
//! `claude_code`; see [`is_hermes_borrowed_source`]) have no secret on disk: import keeps
//! `secret_fingerprint` only. A secret found on disk for such a source is dropped (its
//! fingerprint is kept, computed from it when the row has none), as are secret-looking
//! keys in the row (`agent_key`, `api_key`, `tokens`, `*_token`, `*secret*`, ...).
//!
//! **Suppressed sources**: `suppressed_sources` (`{provider: [source, ...]}`) becomes each
//! pool's suppressed sources, stamped `now`; a provider without `credential_pool` rows
//! becomes a pool with no entries that holds them.
//!
//! **Not imported:** the `providers` singletons section (the host re-seeds from its own
//! sources), `active_provider`, and the pool strategies: they live in Hermes'
//! `config.yaml`, which the host reads; [`hermes_strategy`] maps its values as Hermes does,
//! for the host to configure the imported pools with (`credpool import-hermes` does).
//! Without that, imported pools use the default configuration (`fill_first`, the `hermes`
//! policy preset).
//!
//! **Priorities** are renumbered `0..n-1` in Hermes order (priority, then position in the
//! file), so credpool's order (priority, then id) equals Hermes' stable sort.
//!
//! **Anthropic**: as Hermes' `__post_init__`, an `anthropic` entry whose token starts with
//! `sk-ant-oat` is `oauth`.
//!
//! **Registers**: `meta_updated_at` and `added_at` are `now`; the token is generation 0
//! written at 0 (so it never clears the imported status); the failure streak is 1 for an
//! exhausted or dead entry and 0 otherwise.
//!
//! # Cooldown deadlines
//!
//! An `exhausted` entry with a `last_error_reset_at` keeps that deadline (Hermes' "provider
//! reset always wins"). Without one, the deadline is derived as Hermes' `_exhausted_until`
//! would: `last_status_at` + TTL, where the TTL is (reference §3.3)
//! - `401`: 5 min;
//! - `failure_reason == billing_unverified` and code ≠ 402: 60 s;
//! - the pool's only non-dead entry, not billing (402 or `failure_reason == billing`): 60 s;
//! - otherwise (429, 402, 403, 5xx, none, ...): 1 h.
//!
//! The sole-credential test uses the pool as imported (Hermes evaluates it lazily, with the
//! pool as it is then). An `exhausted` entry with neither a reset time nor
//! `last_status_at` has no deadline, i.e. it is available (as in Hermes). A `dead` (or
//! healthy) entry with a `last_error_reset_at` keeps it as its `cooldown_until`, which
//! credpool ignores for those statuses but exports back.
//!
//! # Token expiry
//!
//! The `nous` pool writes ISO `expires_at`; every other pool writes `expires_at_ms`. On
//! import, that pool's preferred field becomes the token expiry, or the other one when the
//! preferred one is absent; when both are present, the other one stays in `extra` verbatim.
//!
//! # Export
//!
//! Hermes' shape (reference §1.3): every entry has `id, label, auth_type, priority, source,
//! request_count` and the six status fields `last_status, last_status_at, last_error_code,
//! last_error_reason, last_error_message, last_error_reset_at`, with explicit `null`s; other
//! fields only when set; times as epoch-second floats; priorities contiguous `0..n-1` in
//! credpool order; removed (tombstoned) entries are not exported. Borrowed sources carry no
//! secret, only `secret_fingerprint` (also written for any entry that has no secret; for
//! an owned entry with its secret it is derivable and left out). `extra` keys are merged at
//! the top level of the entry (the fields above win on a name clash; secret-looking keys of
//! borrowed sources are dropped). The status in force is written: an entry whose token was
//! written after its status (credpool's "adopt, clear status") is `ok` at that time.
//!
//! - `last_status`: `null` when the entry never had a status (`status_at` 0) or its last
//!   status write was a reset (`status_cleared_at == status_at`); else `ok`/`exhausted`/`dead`.
//! - `last_error_reset_at`: for `exhausted`, the deadline, except `null` when it equals the
//!   deadline Hermes would derive itself (the rule above, same meaning); for other statuses,
//!   the stored deadline if any.
//! - `failure_reason`: the failure class's snake_case name (else an `extra` value).
//! - `request_count`: the sum over all writers.
//! - `model_cooldowns`: benches with `until > at` (a credpool reset leaves `until <= at`);
//!   `model_cooldown_observed_at` for those with `at > 0`; both left out when empty.
//! - `last_refresh` (kept in `extra`): rewritten as the token's write time when the token
//!   was written after it (credpool refreshed it).
//! - ISO times are written as Python's `isoformat()` does: `2026-08-18T10:00:00+00:00`,
//!   with `.ffffff` when the ms part is not zero.
//!
//! # Round trips
//!
//! `import(export(state))` keeps every live entry's id, label, auth type, order, source,
//! base URL, secrets (owned sources), fingerprint, token expiry, status, status time, error,
//! cooldown deadline, failure class, `status_cleared_at`, total request count, model benches
//! with `until > at` and `extra`, to the ms (an f64 of epoch seconds holds ms exactly: ms /
//! 1000 parses back to the same ms). Not kept: pool configuration, round-robin cursor,
//! tombstones, token generation and write times, the per-writer split of request counts
//! (all under `hermes`), failure streaks, a healthy entry's status time after a reset.
//!
//! `export(import(auth))` reproduces the original `credential_pool` up to key order and
//! these representational defaults: times become epoch-second floats (an ISO or integer
//! `last_status_at` comes back as a float); `last_status: "ok"` without `last_status_at`
//! comes back `null` and `null` with a `last_status_at` comes back `"ok"`; priorities are
//! renumbered `0..n-1`; missing defaults are written (`label`, `auth_type`, `source`,
//! `priority`, `request_count`, the six status fields); `null`-valued optional keys,
//! `access_token: ""`, empty `model_cooldowns` and observation times of models without a
//! bench are left out; a `last_error_reset_at` equal to the derived deadline comes back
//! `null`; the token expiry is written in the pool's field (see *Token expiry*); ISO
//! strings are re-formatted as above; reason and message are clipped; borrowed secrets
//! found on disk are dropped; `provider` keys are dropped; `auth_type` is normalised for
//! Anthropic OAuth tokens.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::classify::OutcomeClass;
use crate::classify::httpdate::parse_rfc3339;
use crate::entry::{AuthType, Entry, EntryId, LastError, ModelCooldown, Status, validate_name};
use crate::error::{Error, ErrorCode, Result, clip};
use crate::limits::{
    MAX_ENTRIES_PER_POOL, MAX_MESSAGE_CHARS, MAX_NAME_CHARS, MAX_POOLS, MAX_REASON_CHARS,
    MAX_SECRET_BYTES, MAX_SUPPRESSED_SOURCES,
};
use crate::pool_key::PoolKey;
use crate::registry::Strategy;
use crate::secret::Secret;
use crate::shared_leases::SharedLeases;
use crate::state::{EntryDoc, FORMAT, PoolDoc, SCHEMA_VERSION, StateDoc, pools_from_value};
use crate::time::{DAY, HOUR, MINUTE, Millis};

/// The writer that imported request counts are filed under.
pub const HERMES_WRITER: &str = "hermes";
/// Hermes' `AUTH_STORE_VERSION`.
pub const AUTH_STORE_VERSION: u64 = 1;
/// Model benches one imported entry may hold.
const MAX_MODEL_COOLDOWNS: usize = 1_024;
/// Largest time accepted (2^53 ms, the bindings' clock bound).
const MAX_MILLIS: u64 = 1 << 53;

/// The six status fields Hermes always writes.
const STATUS_FIELDS: [&str; 6] = [
    "last_status",
    "last_status_at",
    "last_error_code",
    "last_error_reason",
    "last_error_message",
    "last_error_reset_at",
];

/// Secret keys Hermes' `sanitize_borrowed_credential_payload` strips from borrowed rows.
const SECRET_KEYS: [&str; 10] = [
    "access_token",
    "refresh_token",
    "agent_key",
    "api_key",
    "client_secret",
    "secret_key",
    "authToken",
    "refreshToken",
    "authorization",
    "tokens",
];

/// Whether Hermes treats `source` as borrowed (its secret is never written to disk):
/// credpool's borrowed sources (`env:*`, `config:*`), vault-style references and
/// `claude_code`.
#[must_use]
pub fn is_hermes_borrowed_source(source: &str) -> bool {
    const PREFIXES: [&str; 4] = ["env:", "config:", "vault:", "future_secret_store:"];
    const SCHEMES: [&str; 7] = [
        "systemd",
        "keyring",
        "1password",
        "pass",
        "sops",
        "age",
        "vault",
    ];
    if source == "claude_code" || PREFIXES.iter().any(|p| source.starts_with(p)) {
        return true;
    }
    SCHEMES.iter().any(|s| {
        source == *s
            || source
                .strip_prefix(s)
                .is_some_and(|rest| rest.starts_with(':') || rest.starts_with("-"))
    })
}

/// The strategy Hermes' `get_pool_strategy` reads from a `config.yaml`
/// `credential_pool_strategies` value: trimmed and lower-cased, one of `fill_first`,
/// `round_robin`, `least_used`, `random`; anything else is `fill_first` (reference §1.4,
/// scenario 10).
#[must_use]
pub fn hermes_strategy(value: &str) -> Strategy {
    match value.trim().to_ascii_lowercase().as_str() {
        "round_robin" => Strategy::RoundRobin,
        "least_used" => Strategy::LeastUsed,
        "random" => Strategy::Random,
        _ => Strategy::FillFirst,
    }
}

/// Whether a row key holds a secret (stripped from borrowed rows).
fn is_secret_key(key: &str) -> bool {
    if SECRET_KEYS.contains(&key) {
        return true;
    }
    let lower = key.to_ascii_lowercase();
    if lower == "secret_fingerprint" || lower == "secret_source" {
        return false;
    }
    lower.contains("secret") || lower.contains("password") || lower.ends_with("_token")
}

// ---------------------------------------------------------------------------------------
// Import
// ---------------------------------------------------------------------------------------

/// Converts the `credential_pool` section of a Hermes `auth.json` into a credpool state
/// document (see the [module docs](self) for every rule).
///
/// `now` stamps the imported metadata (`meta_updated_at`, `added_at`).
///
/// # Errors
///
/// - `foreign_document`: `auth` is a credpool state document, or an object with none of
///   Hermes' top-level keys (`credential_pool`, `version`, `providers`, `active_provider`);
/// - `unsupported_schema_version`: `version` is a number other than 1;
/// - `invalid_state`: `auth` is not an object, `credential_pool` is not an object of
///   arrays, an entry is not an object, lacks an `id`, repeats one, or has a field of the
///   wrong type or value (the message names the pool, the entry index and the field,
///   never a value);
/// - `too_large`: more pools, entries, model benches or secret bytes than
///   [`crate::limits`] allows.
///
/// An `auth.json` without `credential_pool` (only singletons) imports as an empty state (plus
/// the pools of its `suppressed_sources`).
pub fn import_hermes(auth: &Value, now: Millis) -> Result<StateDoc> {
    let Value::Object(top) = auth else {
        return Err(invalid(
            "a Hermes auth.json must be a JSON object".to_owned(),
        ));
    };
    if top.contains_key("format") && !top.contains_key("credential_pool") {
        return Err(Error::new(
            ErrorCode::ForeignDocument,
            "this is a credpool state document, not a Hermes auth.json",
        ));
    }
    let hermes_keys = ["credential_pool", "version", "providers", "active_provider"];
    if !hermes_keys.iter().any(|k| top.contains_key(*k)) {
        return Err(Error::new(
            ErrorCode::ForeignDocument,
            "not a Hermes auth.json (no credential_pool, version or providers)",
        ));
    }
    match top.get("version") {
        None | Some(Value::Null) => {}
        // (`1.0` too: some JSON bridges hand every number over as a float.)
        #[allow(clippy::cast_precision_loss)]
        Some(Value::Number(n)) if n.as_f64() == Some(AUTH_STORE_VERSION as f64) => {}
        Some(Value::Number(_)) => {
            return Err(Error::new(
                ErrorCode::UnsupportedSchemaVersion,
                format!("Hermes auth.json version must be {AUTH_STORE_VERSION}"),
            ));
        }
        Some(_) => return Err(invalid("`version` must be a number".to_owned())),
    }
    let empty = Map::new();
    let pools = match top.get("credential_pool") {
        None => &empty,
        Some(Value::Object(pools)) => pools,
        Some(_) => {
            return Err(invalid(
                "`credential_pool` must be an object of pool key → entry list".to_owned(),
            ));
        }
    };
    if pools.len() > MAX_POOLS {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("more than {MAX_POOLS} pools in credential_pool"),
        ));
    }
    let mut doc = empty_state();
    for (raw_key, rows) in pools {
        let key = PoolKey::parse(raw_key).map_err(|e| {
            invalid(format!(
                "credential_pool key `{}`: {}",
                clip(raw_key),
                e.message()
            ))
        })?;
        let pool = import_pool(&key, raw_key, rows, now)?;
        if doc.pools.insert(key.clone(), pool).is_some() {
            return Err(invalid(format!(
                "credential_pool has two keys that normalise to `{}`",
                clip(key.as_str())
            )));
        }
    }
    import_suppressed_sources(top.get("suppressed_sources"), &mut doc, now)?;
    // Guarantee the result loads: run it through the state loader's validation.
    let value = serde_json::to_value(&doc)
        .map_err(|_| Error::new(ErrorCode::Internal, "state serialisation failed"))?;
    pools_from_value(&value).map_err(|e| invalid(format!("imported state: {}", e.message())))?;
    Ok(doc)
}

/// Files Hermes' `suppressed_sources` (`{provider: [source, ...]}`) under each pool,
/// stamped `now` (at least 1 ms, so that no lift time of 0 covers them); a provider with no
/// `credential_pool` rows gets an empty pool that holds them.
fn import_suppressed_sources(
    section: Option<&Value>,
    doc: &mut StateDoc,
    now: Millis,
) -> Result<()> {
    let lists = match section {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Object(lists)) => lists,
        Some(_) => {
            return Err(invalid(
                "`suppressed_sources` must be an object of provider → source list".to_owned(),
            ));
        }
    };
    let at = now.max(Millis(1));
    for (raw_key, sources) in lists {
        let key = PoolKey::parse(raw_key).map_err(|e| {
            invalid(format!(
                "suppressed_sources key `{}`: {}",
                clip(raw_key),
                e.message()
            ))
        })?;
        let Value::Array(sources) = sources else {
            return Err(invalid(format!(
                "suppressed_sources.{} must be a list of sources",
                clip(raw_key)
            )));
        };
        if sources.len() > MAX_SUPPRESSED_SOURCES {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!("more than {MAX_SUPPRESSED_SOURCES} suppressed sources in a pool"),
            ));
        }
        if !doc.pools.contains_key(&key) && doc.pools.len() >= MAX_POOLS {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!("more than {MAX_POOLS} pools in credential_pool and suppressed_sources"),
            ));
        }
        let pool = doc.pools.entry(key).or_insert_with(empty_pool);
        for (index, source) in sources.iter().enumerate() {
            let name = source
                .as_str()
                .filter(|s| validate_name("source", s).is_ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "suppressed_sources.{}[{index}] must be a source name (1..={MAX_NAME_CHARS} characters without control characters)",
                        clip(raw_key)
                    ))
                })?;
            pool.suppressed_sources.insert(name.to_owned(), at);
        }
    }
    Ok(())
}

/// A pool document with no entries and the default configuration.
fn empty_pool() -> PoolDoc {
    PoolDoc {
        strategy: Strategy::default(),
        policy: None,
        fallback: Vec::new(),
        api: None,
        config_updated_at: Millis::ZERO,
        round_robin: None,
        entries: Vec::new(),
        removed: BTreeMap::new(),
        suppressed_sources: BTreeMap::new(),
        suppressions_lifted_at: Millis::ZERO,
    }
}

fn empty_state() -> StateDoc {
    StateDoc {
        format: FORMAT.to_owned(),
        schema_version: SCHEMA_VERSION,
        pools: BTreeMap::new(),
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorCode::InvalidState, message)
}

fn import_pool(key: &PoolKey, raw_key: &str, rows: &Value, now: Millis) -> Result<PoolDoc> {
    let Value::Array(rows) = rows else {
        return Err(invalid(format!(
            "credential_pool.{} must be a list of entries",
            clip(raw_key)
        )));
    };
    if rows.len() > MAX_ENTRIES_PER_POOL {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("more than {MAX_ENTRIES_PER_POOL} entries in a pool"),
        ));
    }
    let mut parsed = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let row_ctx = Row {
            at: format!("credential_pool.{}[{index}]", clip(raw_key)),
            fields: match row {
                Value::Object(fields) => fields,
                _ => {
                    return Err(invalid(format!(
                        "credential_pool.{}[{index}] must be an object",
                        clip(raw_key)
                    )));
                }
            },
        };
        parsed.push(import_entry(key, &row_ctx, now)?);
    }
    let sole = parsed
        .iter()
        .filter(|p| p.doc.status != Status::Dead)
        .count()
        <= 1;
    for p in &mut parsed {
        if p.doc.status == Status::Exhausted && p.doc.cooldown_until.is_none() {
            p.doc.cooldown_until = derived_deadline(
                p.doc.status_at,
                p.doc.last_error.as_ref().and_then(|e| e.code),
                p.failure_name.as_deref(),
                sole,
            );
        }
    }
    // Hermes' order: a stable sort by priority (ties keep file order); then contiguous.
    parsed.sort_by_key(|p| p.doc.priority);
    let mut seen = BTreeMap::new();
    let mut entries = Vec::with_capacity(parsed.len());
    for (index, mut p) in parsed.into_iter().enumerate() {
        if seen.insert(p.doc.id.clone(), ()).is_some() {
            return Err(invalid(format!(
                "credential_pool.{}: duplicate entry id `{}`",
                clip(raw_key),
                clip(p.doc.id.as_str())
            )));
        }
        p.doc.priority = i64::try_from(index).unwrap_or(i64::MAX);
        entries.push(p.doc);
    }
    Ok(PoolDoc {
        entries,
        ..empty_pool()
    })
}

/// The deadline Hermes derives for an exhausted entry without a reset time.
fn derived_deadline(
    at: Millis,
    code: Option<u16>,
    failure: Option<&str>,
    sole: bool,
) -> Option<Millis> {
    (at > Millis::ZERO).then(|| at.plus(hermes_ttl_ms(code, failure, sole)))
}

/// Hermes' `_exhausted_ttl`, in ms.
fn hermes_ttl_ms(code: Option<u16>, failure: Option<&str>, sole: bool) -> u64 {
    if code == Some(401) {
        return 5 * MINUTE;
    }
    if failure == Some("billing_unverified") && code != Some(402) {
        return MINUTE;
    }
    let billing = code == Some(402) || failure == Some("billing");
    if sole && !billing { MINUTE } else { HOUR }
}

struct Parsed {
    doc: EntryDoc,
    /// `failure_reason` as written (a class name or an opaque string).
    failure_name: Option<String>,
}

/// One Hermes row and where it is, for error messages.
struct Row<'a> {
    at: String,
    fields: &'a Map<String, Value>,
}

impl Row<'_> {
    fn err(&self, field: &str, what: &str) -> Error {
        invalid(format!("{}.{field} {what}", self.at))
    }

    fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field).filter(|v| !v.is_null())
    }

    fn string(&self, field: &str) -> Result<Option<&str>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.err(field, "must be a string")),
        }
    }

    fn name(&self, field: &str) -> Result<Option<String>> {
        let Some(text) = self.string(field)? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Ok(None);
        }
        validate_name(field, text).map_err(|_| {
            self.err(
                field,
                &format!("must be 1..={MAX_NAME_CHARS} characters without control characters"),
            )
        })?;
        Ok(Some(text.to_owned()))
    }

    fn secret(&self, field: &str) -> Result<Option<Secret>> {
        match self.string(field)? {
            None | Some("") => Ok(None),
            Some(s) if s.len() > MAX_SECRET_BYTES => Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "{}.{field} is longer than {MAX_SECRET_BYTES} bytes",
                    self.at
                ),
            )),
            Some(s) => Ok(Some(Secret::new(s))),
        }
    }

    fn integer(&self, field: &str) -> Result<Option<i64>> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .map(Some)
                .ok_or_else(|| self.err(field, "must be an integer")),
            Some(_) => Err(self.err(field, "must be an integer")),
        }
    }

    fn time(&self, field: &str) -> Result<Option<Millis>> {
        match self.get(field) {
            None => Ok(None),
            Some(value) => parse_time(value).map_err(|what| self.err(field, what)),
        }
    }
}

/// Hermes' `parse_abs_ts`: seconds (or ms above 10^12), numeric strings, ISO strings.
fn parse_time(value: &Value) -> std::result::Result<Option<Millis>, &'static str> {
    let seconds_or_ms = |f: f64| {
        if !f.is_finite() {
            return Err("must be a finite number");
        }
        if f <= 0.0 {
            return Ok(None);
        }
        let ms = if f > 1e12 { f } else { f * 1_000.0 }.round();
        #[allow(clippy::cast_precision_loss)]
        if ms > MAX_MILLIS as f64 {
            return Err("is out of range");
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Some(Millis(ms as u64)))
    };
    match value {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_f64().map_or(Err("must be a number"), seconds_or_ms),
        Value::String(s) => {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let numeric = s
                .bytes()
                .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+');
            if numeric {
                return s
                    .parse::<f64>()
                    .map_or(Err("must be a time"), seconds_or_ms);
            }
            parse_rfc3339(s)
                .map(Some)
                .ok_or("must be epoch seconds or an ISO-8601 time")
        }
        _ => Err("must be epoch seconds or an ISO-8601 time"),
    }
}

/// Keys the importer maps itself (everything else goes to `extra`).
const MAPPED_KEYS: [&str; 22] = [
    "id",
    "label",
    "auth_type",
    "priority",
    "source",
    "access_token",
    "refresh_token",
    "secret_fingerprint",
    "base_url",
    "last_status",
    "last_status_at",
    "last_error_code",
    "last_error_reason",
    "last_error_message",
    "last_error_reset_at",
    "status_cleared_at",
    "request_count",
    "model_cooldowns",
    "model_cooldown_observed_at",
    "failure_reason",
    "provider",
    // The token-expiry fields are handled by `expiry`.
    "expires_at_ms",
];

/// The token-expiry field a pool writes: ISO `expires_at` for `nous`, else `expires_at_ms`.
fn preferred_expiry_field(key: &PoolKey) -> &'static str {
    if key.as_str() == "nous" {
        "expires_at"
    } else {
        "expires_at_ms"
    }
}

fn import_entry(key: &PoolKey, row: &Row<'_>, now: Millis) -> Result<Parsed> {
    let id = match row.string("id")? {
        Some(id) => EntryId::parse(id).map_err(|_| {
            row.err(
                "id",
                &format!("must be 1..={MAX_NAME_CHARS} characters without control characters"),
            )
        })?,
        None => return Err(row.err("id", "is required")),
    };
    let source = row.name("source")?.unwrap_or_else(|| "manual".to_owned());
    let label = match row.name("label")? {
        Some(label) => label,
        None => source.clone(),
    };
    let borrowed = is_hermes_borrowed_source(&source);
    let mut access = row.secret("access_token")?;
    let mut refresh = row.secret("refresh_token")?;
    let mut fingerprint = row.name("secret_fingerprint")?;
    if borrowed {
        if fingerprint.is_none() {
            fingerprint = access.as_ref().map(|s| s.fingerprint().into_string());
        }
        access = None;
        refresh = None;
    }
    let mut auth_type = match row.string("auth_type")? {
        None | Some("api_key") => AuthType::ApiKey,
        Some("oauth") => AuthType::Oauth,
        Some(_) => return Err(row.err("auth_type", "must be \"api_key\" or \"oauth\"")),
    };
    if key.as_str() == "anthropic"
        && access
            .as_ref()
            .is_some_and(|s| s.expose().starts_with("sk-ant-oat"))
    {
        auth_type = AuthType::Oauth;
    }
    let priority = row.integer("priority")?.unwrap_or(0);
    let base_url = row.string("base_url")?.map(str::to_owned);

    // Token expiry: the pool's preferred field, else the other one.
    let preferred = preferred_expiry_field(key);
    let iso = row.time("expires_at")?;
    let ms = match row.integer("expires_at_ms")? {
        None => None,
        Some(ms) if ms <= 0 => None,
        Some(ms) => Some(
            u64::try_from(ms)
                .ok()
                .filter(|ms| *ms <= MAX_MILLIS)
                .map(Millis)
                .ok_or_else(|| row.err("expires_at_ms", "is out of range"))?,
        ),
    };
    let (expires_at, keep_other) = if preferred == "expires_at" {
        (iso.or(ms), iso.is_some().then_some("expires_at_ms"))
    } else {
        (ms.or(iso), ms.is_some().then_some("expires_at"))
    };

    // Status.
    let status = match row.string("last_status")? {
        None | Some("ok") => Status::Ok,
        Some("exhausted") => Status::Exhausted,
        Some("dead") => Status::Dead,
        Some(_) => {
            return Err(row.err(
                "last_status",
                "must be null, \"ok\", \"exhausted\" or \"dead\"",
            ));
        }
    };
    let status_at = row.time("last_status_at")?.unwrap_or(Millis::ZERO);
    let code = match row.integer("last_error_code")? {
        None => None,
        Some(code) => {
            Some(u16::try_from(code).map_err(|_| row.err("last_error_code", "must be 0..=65535"))?)
        }
    };
    let reason = row
        .string("last_error_reason")?
        .map(|r| clip_chars(r, MAX_REASON_CHARS));
    // A key the provider echoed into the message is not carried over.
    let own: Vec<&str> = ["access_token", "refresh_token"]
        .into_iter()
        .filter_map(|k| row.string(k).ok().flatten())
        .collect();
    let message = row
        .string("last_error_message")?
        .map(|m| clip_chars(&crate::redact::redact_text(m, &own), MAX_MESSAGE_CHARS));
    let last_error =
        (code.is_some() || reason.is_some() || message.is_some()).then_some(LastError {
            code,
            reason,
            message,
        });
    let reset_at = row.time("last_error_reset_at")?;
    let failure_name = row.string("failure_reason")?.map(str::to_owned);
    let failure_class = failure_name.as_deref().and_then(class_from_name);

    let status_cleared_at = row.time("status_cleared_at")?;
    let request_count = match row.integer("request_count")? {
        None => 0,
        Some(n) => {
            u64::try_from(n).map_err(|_| row.err("request_count", "must not be negative"))?
        }
    };
    let model_cooldowns = import_model_cooldowns(row)?;

    let mut extra = Map::new();
    for (name, value) in row.fields {
        if value.is_null() || MAPPED_KEYS.contains(&name.as_str()) {
            continue;
        }
        if name == "expires_at" && keep_other != Some("expires_at") {
            continue;
        }
        if borrowed && is_secret_key(name) {
            continue;
        }
        extra.insert(name.clone(), value.clone());
    }
    if let (Some(name), None) = (&failure_name, failure_class) {
        extra.insert("failure_reason".to_owned(), Value::String(name.clone()));
    }
    if keep_other == Some("expires_at_ms")
        && let Some(v) = row.get("expires_at_ms")
    {
        extra.insert("expires_at_ms".to_owned(), v.clone());
    }

    Ok(Parsed {
        doc: EntryDoc {
            id,
            label,
            auth_type,
            priority,
            source,
            access_token: access,
            refresh_token: refresh,
            secret_fingerprint: fingerprint,
            expires_at,
            base_url,
            token_generation: 0,
            token_updated_at: Millis::ZERO,
            meta_updated_at: now,
            added_at: now,
            status,
            status_at,
            last_error,
            cooldown_until: reset_at,
            failure_class,
            failure_streak: u32::from(status != Status::Ok),
            status_cleared_at,
            request_counts: if request_count > 0 {
                BTreeMap::from([(HERMES_WRITER.to_owned(), request_count)])
            } else {
                BTreeMap::new()
            },
            model_cooldowns,
            open_leases: SharedLeases::default(),
            refresh_sent: None,
            extra,
            unknown: Map::new(),
        },
        failure_name,
    })
}

fn import_model_cooldowns(row: &Row<'_>) -> Result<BTreeMap<String, ModelCooldown>> {
    let object = |field: &str| match row.get(field) {
        None => Ok(None),
        Some(Value::Object(map)) if map.len() > MAX_MODEL_COOLDOWNS => Err(Error::new(
            ErrorCode::TooLarge,
            format!(
                "{}.{field} has more than {MAX_MODEL_COOLDOWNS} models",
                row.at
            ),
        )),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(_) => Err(row.err(field, "must be an object of model → epoch seconds")),
    };
    let mut benches = BTreeMap::new();
    let Some(until_map) = object("model_cooldowns")? else {
        return Ok(benches);
    };
    let observed = object("model_cooldown_observed_at")?;
    for (model, until) in until_map {
        validate_name("model", model).map_err(|_| {
            row.err(
                "model_cooldowns",
                "has a model name that is empty, too long or has control characters",
            )
        })?;
        let Some(until) = parse_time(until).map_err(|what| row.err("model_cooldowns", what))?
        else {
            continue;
        };
        let at = match observed.and_then(|o| o.get(model)) {
            None => Millis::ZERO,
            Some(v) => parse_time(v)
                .map_err(|what| row.err("model_cooldown_observed_at", what))?
                .unwrap_or(Millis::ZERO),
        };
        benches.insert(model.clone(), ModelCooldown { until, at });
    }
    Ok(benches)
}

fn class_from_name(name: &str) -> Option<OutcomeClass> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

fn class_name(class: OutcomeClass) -> Option<String> {
    match serde_json::to_value(class) {
        Ok(Value::String(name)) => Some(name),
        _ => None,
    }
}

fn clip_chars(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

// ---------------------------------------------------------------------------------------
// Export
// ---------------------------------------------------------------------------------------

/// Writes a Hermes `auth.json` from a credpool state document (the JSON of a
/// [`StateDoc`]); see the [module docs](self) for the exact shape.
///
/// `base`, when given, is an existing `auth.json`: all its top-level keys except
/// `credential_pool` are kept untouched (including its `version`); without it the result is
/// `{"version": 1, "credential_pool": ...}`. `now` is accepted for symmetry with
/// [`import_hermes`]; the result does not depend on it (Hermes clears expired cooldowns
/// lazily, so they are written as they are).
///
/// # Errors
///
/// Those of [`crate::Registry::from_state`] for `state` (`invalid_state`,
/// `foreign_document`, `unsupported_schema_version`, `too_large`); `invalid_input` when
/// `base` is not an object; `foreign_document` when `base` is a credpool state document.
pub fn export_hermes(state: &Value, base: Option<&Value>, now: Millis) -> Result<Value> {
    let _ = now;
    let mut top = match base {
        None | Some(Value::Null) => {
            let mut top = Map::new();
            top.insert("version".to_owned(), Value::from(AUTH_STORE_VERSION));
            top
        }
        Some(Value::Object(fields)) => {
            if fields.get("format").and_then(Value::as_str) == Some(FORMAT) {
                return Err(Error::new(
                    ErrorCode::ForeignDocument,
                    "base is a credpool state document, not a Hermes auth.json",
                ));
            }
            fields.clone()
        }
        Some(_) => {
            return Err(Error::invalid_input(
                "base must be a JSON object (a Hermes auth.json)",
            ));
        }
    };
    let pools = pools_from_value(state)?;
    let mut section = Map::new();
    let mut suppressed = match top.get("suppressed_sources") {
        Some(Value::Object(lists)) => lists.clone(),
        _ => Map::new(),
    };
    for (key, pool) in &pools {
        let sources: Vec<Value> = pool.suppressed_sources().map(Value::from).collect();
        suppressed.retain(|raw, _| PoolKey::parse(raw).ok().as_ref() != Some(key));
        if !sources.is_empty() {
            suppressed.insert(key.as_str().to_owned(), Value::Array(sources));
        }
        let entries = pool.entries();
        if entries.is_empty() {
            continue;
        }
        let sole = entries
            .iter()
            .filter(|e| e.effective_status() != Status::Dead)
            .count()
            <= 1;
        let rows = entries
            .iter()
            .enumerate()
            .map(|(index, entry)| Value::Object(export_entry(key, entry, index, sole)))
            .collect();
        section.insert(key.as_str().to_owned(), Value::Array(rows));
    }
    top.insert("credential_pool".to_owned(), Value::Object(section));
    if suppressed.is_empty() {
        top.remove("suppressed_sources");
    } else {
        top.insert("suppressed_sources".to_owned(), Value::Object(suppressed));
    }
    Ok(Value::Object(top))
}

fn seconds(at: Millis) -> Value {
    #[allow(clippy::cast_precision_loss)]
    let secs = at.0 as f64 / 1_000.0;
    Value::from(secs)
}

fn optional_seconds(at: Option<Millis>) -> Value {
    at.filter(|at| *at > Millis::ZERO)
        .map_or(Value::Null, seconds)
}

fn export_entry(key: &PoolKey, entry: &Entry, index: usize, sole: bool) -> Map<String, Value> {
    let mut row = Map::new();
    let mut put = |name: &str, value: Value| {
        row.insert(name.to_owned(), value);
    };
    put("id", Value::from(entry.id.as_str()));
    put("label", Value::from(entry.meta.label.as_str()));
    put(
        "auth_type",
        Value::from(match entry.meta.auth_type {
            AuthType::ApiKey => "api_key",
            AuthType::Oauth => "oauth",
        }),
    );
    put("priority", Value::from(index));
    put("source", Value::from(entry.meta.source.as_str()));
    let borrowed = is_hermes_borrowed_source(&entry.meta.source);
    let access = entry.token.access.as_ref().filter(|_| !borrowed);
    if let Some(secret) = access {
        put("access_token", Value::from(secret.expose()));
    }
    if let Some(secret) = entry.token.refresh.as_ref().filter(|_| !borrowed) {
        put("refresh_token", Value::from(secret.expose()));
    }
    if access.is_none()
        && let Some(fp) = &entry.token.fingerprint
    {
        put("secret_fingerprint", Value::from(fp.as_str()));
    }

    // The six status fields, always present.
    let failure = entry.status.failure.and_then(class_name).or_else(|| {
        entry
            .meta
            .extra
            .get("failure_reason")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let adopted = entry.effective_status() != entry.status.status;
    if adopted {
        put("last_status", Value::from("ok"));
        put(
            "last_status_at",
            optional_seconds(Some(entry.token.updated_at)),
        );
        for field in &STATUS_FIELDS[2..] {
            put(field, Value::Null);
        }
    } else {
        let record = &entry.status;
        let status = match record.status {
            Status::Ok if record.at == Millis::ZERO || entry.cleared_at == Some(record.at) => {
                Value::Null
            }
            Status::Ok => Value::from("ok"),
            Status::Exhausted => Value::from("exhausted"),
            Status::Dead => Value::from("dead"),
        };
        let cleared = status.is_null() && record.status == Status::Ok;
        put("last_status", status);
        put(
            "last_status_at",
            if cleared {
                Value::Null
            } else {
                optional_seconds(Some(record.at))
            },
        );
        let error = record.error.clone().unwrap_or_default();
        put(
            "last_error_code",
            error.code.map_or(Value::Null, Value::from),
        );
        put(
            "last_error_reason",
            error.reason.map_or(Value::Null, Value::from),
        );
        put(
            "last_error_message",
            error.message.map_or(Value::Null, Value::from),
        );
        let reset = match record.status {
            Status::Exhausted => {
                let derived = derived_deadline(record.at, error.code, failure.as_deref(), sole);
                record.until.filter(|until| Some(*until) != derived)
            }
            _ => record.until,
        };
        put("last_error_reset_at", optional_seconds(reset));
    }
    if let Some(cleared) = entry.cleared_at {
        put("status_cleared_at", optional_seconds(Some(cleared)));
    }
    if let Some(url) = &entry.meta.base_url {
        put("base_url", Value::from(url.as_str()));
    }
    if let Some(expiry) = entry.token.expires_at {
        match preferred_expiry_field(key) {
            "expires_at" => put("expires_at", Value::from(iso(expiry))),
            field => put(field, Value::from(expiry.0)),
        }
    }
    put("request_count", Value::from(entry.request_count()));
    let active: Vec<(&String, &ModelCooldown)> = entry
        .model_cooldowns
        .iter()
        .filter(|(_, c)| c.until > c.at)
        .collect();
    if !active.is_empty() {
        let until: Map<String, Value> = active
            .iter()
            .map(|(m, c)| ((*m).clone(), seconds(c.until)))
            .collect();
        put("model_cooldowns", Value::Object(until));
        let observed: Map<String, Value> = active
            .iter()
            .filter(|(_, c)| c.at > Millis::ZERO)
            .map(|(m, c)| ((*m).clone(), seconds(c.at)))
            .collect();
        if !observed.is_empty() {
            put("model_cooldown_observed_at", Value::Object(observed));
        }
    }
    if let Some(name) = failure {
        put("failure_reason", Value::from(name));
    }
    for (name, value) in &entry.meta.extra {
        if value.is_null() || row.contains_key(name) || (borrowed && is_secret_key(name)) {
            continue;
        }
        let value = match (name.as_str(), value) {
            ("last_refresh", Value::String(text))
                if parse_rfc3339(text).is_some_and(|at| entry.token.updated_at > at) =>
            {
                Value::from(iso(entry.token.updated_at))
            }
            _ => value.clone(),
        };
        row.insert(name.clone(), value);
    }
    row
}

/// `at` as Python's `datetime.isoformat()` writes an aware UTC time.
fn iso(at: Millis) -> String {
    let days = at.0 / DAY;
    let rest = at.0 % DAY;
    let (year, month, day) = civil_from_days(days);
    let (hour, minute) = (rest / HOUR, rest % HOUR / MINUTE);
    let second = rest % MINUTE / 1_000;
    let milli = rest % 1_000;
    let fraction = if milli == 0 {
        String::new()
    } else {
        format!(".{milli:03}000")
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}+00:00")
}

/// The civil date of `days` since 1970-01-01 (H. Hinnant's algorithm, days ≥ 0).
const fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips() {
        for text in [
            "2026-08-18T10:00:00+00:00",
            "2000-02-29T23:59:59.123000+00:00",
            "1970-01-02T00:00:00+00:00",
        ] {
            let at = parse_rfc3339(text).unwrap_or_default();
            assert_eq!(iso(at), text);
        }
    }

    #[test]
    fn seconds_round_trip_to_the_ms() {
        for ms in [
            1_787_074_990_790_u64,
            1_787_000_000_000,
            1,
            1_787_074_990_001,
        ] {
            let value = seconds(Millis(ms));
            assert_eq!(parse_time(&value), Ok(Some(Millis(ms))));
        }
    }

    #[test]
    fn strategies_read_as_hermes_reads_them() {
        assert_eq!(hermes_strategy(" Round_Robin "), Strategy::RoundRobin);
        assert_eq!(hermes_strategy("least_used"), Strategy::LeastUsed);
        assert_eq!(hermes_strategy("random"), Strategy::Random);
        assert_eq!(hermes_strategy("weighted"), Strategy::FillFirst);
        assert_eq!(hermes_strategy("quota_aware"), Strategy::FillFirst);
    }

    #[test]
    fn borrowed_sources() {
        for s in [
            "env:X",
            "config:Together.ai",
            "claude_code",
            "vault:kv/x",
            "keyring",
        ] {
            assert!(is_hermes_borrowed_source(s), "{s}");
        }
        for s in [
            "manual",
            "manual:device_code",
            "device_code",
            "hermes_pkce",
            "passport",
        ] {
            assert!(!is_hermes_borrowed_source(s), "{s}");
        }
    }

    #[test]
    fn ttl_matrix() {
        assert_eq!(hermes_ttl_ms(Some(401), None, true), 5 * MINUTE);
        assert_eq!(hermes_ttl_ms(Some(429), None, false), HOUR);
        assert_eq!(hermes_ttl_ms(Some(429), Some("rate_limit"), true), MINUTE);
        assert_eq!(hermes_ttl_ms(Some(429), Some("billing"), true), HOUR);
        assert_eq!(
            hermes_ttl_ms(Some(402), Some("billing_unverified"), true),
            HOUR
        );
        assert_eq!(
            hermes_ttl_ms(Some(400), Some("billing_unverified"), false),
            MINUTE
        );
        assert_eq!(hermes_ttl_ms(None, None, false), HOUR);
    }
}
