//! Versioned JSON state: export, import, and the document types both use.
//!
//! Secrets of borrowed sources (`env:*`, `config:*`) are exported as fingerprints only.
//! Unknown entry fields are kept in the entry's `extra` object.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::OutcomeClass;
use crate::codec::{de_secret, sanitize_serde_error, ser_secret};
use crate::decision::FallbackTarget;
use crate::entry::{
    AuthType, Entry, EntryId, LastError, Meta, ModelCooldown, RefreshSent, Status, StatusRecord,
    Token, validate_extra, validate_name, validate_secret,
};
use crate::error::{Error, ErrorCode, Result};
use crate::fallback::validate_fallback;
use crate::limits::{MAX_ENTRIES_PER_POOL, MAX_MESSAGE_CHARS, MAX_POOLS, MAX_REASON_CHARS};
use crate::policy::Policy;
use crate::pool_key::PoolKey;
use crate::registry::{Cursor, Options, Pool, PoolConfig, Registry, Strategy};
use crate::route::Api;
use crate::secret::{Fingerprint, Secret};
use crate::shared_leases::SharedLeases;
use crate::suppress::Suppressions;
use crate::time::Millis;

/// The `format` marker of a credpool state document.
pub const FORMAT: &str = "credpool";
/// The schema version this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A whole state document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateDoc {
    /// Always `credpool`.
    pub format: String,
    /// Schema version.
    pub schema_version: u32,
    /// Pools by key.
    #[serde(default)]
    pub pools: BTreeMap<PoolKey, PoolDoc>,
}

/// One pool in a state document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolDoc {
    /// Selection strategy.
    #[serde(default)]
    pub strategy: Strategy,
    /// Policy fields (unknown ones from newer versions are ignored).
    #[serde(default)]
    pub policy: Option<Value>,
    /// Fallback chain.
    #[serde(default)]
    pub fallback: Vec<FallbackTarget>,
    /// The API shape the pool's endpoints speak, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<Api>,
    /// When the configuration was last written.
    #[serde(default)]
    pub config_updated_at: Millis,
    /// Round-robin cursor.
    #[serde(default)]
    pub round_robin: Option<Cursor>,
    /// Entries in priority order.
    #[serde(default)]
    pub entries: Vec<EntryDoc>,
    /// Removal tombstones: id → when removed.
    #[serde(default)]
    pub removed: BTreeMap<EntryId, Millis>,
    /// Seeding sources suppressed by a removal: source → when (absent in older documents).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub suppressed_sources: BTreeMap<String, Millis>,
    /// When the pool's suppressions were last lifted (an `add_entry`); 0: never.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub suppressions_lifted_at: Millis,
}

fn is_zero(at: &Millis) -> bool {
    *at == Millis::ZERO
}

/// One entry in a state document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EntryDoc {
    /// Stable id.
    pub id: EntryId,
    /// Human label.
    #[serde(default)]
    pub label: String,
    /// API key or OAuth.
    #[serde(default)]
    pub auth_type: AuthType,
    /// Sort key.
    #[serde(default)]
    pub priority: i64,
    /// Provenance.
    #[serde(default = "manual")]
    pub source: String,
    /// The secret (owned sources only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_secret",
        deserialize_with = "de_secret"
    )]
    pub access_token: Option<Secret>,
    /// The refresh token (owned sources only).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "ser_secret",
        deserialize_with = "de_secret"
    )]
    pub refresh_token: Option<Secret>,
    /// `sha256:<16 hex>` of the access token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_fingerprint: Option<String>,
    /// Access-token expiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Millis>,
    /// Endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Token generation.
    #[serde(default)]
    pub token_generation: u64,
    /// When the token was written.
    #[serde(default)]
    pub token_updated_at: Millis,
    /// When the metadata was written.
    #[serde(default)]
    pub meta_updated_at: Millis,
    /// When the entry was added.
    #[serde(default)]
    pub added_at: Millis,
    /// Persisted status.
    #[serde(default)]
    pub status: Status,
    /// When the status was set.
    #[serde(default)]
    pub status_at: Millis,
    /// The error behind the status.
    #[serde(default)]
    pub last_error: Option<LastError>,
    /// Cooldown deadline (exhausted only).
    #[serde(default)]
    pub cooldown_until: Option<Millis>,
    /// Classifier verdict behind the status.
    #[serde(default)]
    pub failure_class: Option<OutcomeClass>,
    /// Failures in a row.
    #[serde(default)]
    pub failure_streak: u32,
    /// Last explicit reset.
    #[serde(default)]
    pub status_cleared_at: Option<Millis>,
    /// Selections per writer.
    #[serde(default)]
    pub request_counts: BTreeMap<String, u64>,
    /// Per-model benches.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub model_cooldowns: BTreeMap<String, ModelCooldown>,
    /// Open leases per writer (pools with `max_concurrent_per_key` only).
    #[serde(default, skip_serializing_if = "SharedLeases::is_empty")]
    pub open_leases: SharedLeases,
    /// The last refresh about to send this entry's refresh token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_sent: Option<RefreshSent>,
    /// Opaque payload (and any field this version does not know).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// Fields this version does not know; moved into `extra` on import.
    #[serde(flatten, skip_serializing)]
    pub unknown: Map<String, Value>,
}

fn manual() -> String {
    "manual".to_owned()
}

impl Registry {
    /// The persistable state of every pool.
    #[must_use]
    pub fn export_state(&self) -> StateDoc {
        StateDoc {
            format: FORMAT.to_owned(),
            schema_version: SCHEMA_VERSION,
            pools: self
                .pools
                .iter()
                .map(|(k, p)| (k.clone(), pool_doc(p)))
                .collect(),
        }
    }

    /// A registry holding `state` (a JSON value of a [`StateDoc`]).
    pub fn from_state(state: &Value, options: Options) -> Result<Self> {
        let mut registry = Self::new(options)?;
        registry.pools = pools_from_value(state)?;
        Ok(registry)
    }
}

/// Parses and validates a state document into pools.
pub(crate) fn pools_from_value(state: &Value) -> Result<BTreeMap<PoolKey, Pool>> {
    let doc = parse_doc(state)?;
    if doc.pools.len() > MAX_POOLS {
        return Err(Error::new(ErrorCode::TooLarge, "too many pools in state"));
    }
    doc.pools
        .into_iter()
        .map(|(key, p)| Ok((key.clone(), pool_from_doc(key, p)?)))
        .collect()
}

/// Two keys of a document's `pools` that normalise to one pool key would silently collapse
/// into one pool (dropping the other's entries): refuse the document instead.
fn refuse_colliding_pool_keys(pools: &Map<String, Value>) -> Result<()> {
    let mut seen = BTreeSet::new();
    for raw in pools.keys() {
        // Invalid keys fail later with their own message.
        if let Ok(key) = PoolKey::parse(raw)
            && !seen.insert(key.clone())
        {
            return Err(Error::new(
                ErrorCode::InvalidState,
                format!(
                    "two pools of the state document are the same pool `{}` once normalised",
                    key.as_str()
                ),
            ));
        }
    }
    Ok(())
}

fn parse_doc(state: &Value) -> Result<StateDoc> {
    let Value::Object(fields) = state else {
        return Err(Error::new(
            ErrorCode::InvalidState,
            "state must be a JSON object",
        ));
    };
    match fields.get("format").and_then(Value::as_str) {
        Some(FORMAT) => {}
        None if fields.contains_key("credential_pool") => {
            return Err(Error::new(
                ErrorCode::ForeignDocument,
                "this is a Hermes auth.json: import it with import_hermes",
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorCode::ForeignDocument,
                "not a credpool state document",
            ));
        }
    }
    if let Some(Value::Object(pools)) = fields.get("pools") {
        refuse_colliding_pool_keys(pools)?;
    }
    match fields.get("schema_version").and_then(Value::as_u64) {
        Some(v) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) if v > u64::from(SCHEMA_VERSION) => {
            return Err(Error::new(
                ErrorCode::UnsupportedSchemaVersion,
                format!("schema_version {v} is newer than this build reads ({SCHEMA_VERSION})"),
            ));
        }
        _ => {
            return Err(Error::new(
                ErrorCode::UnsupportedSchemaVersion,
                "schema_version is missing or unknown",
            ));
        }
    }
    StateDoc::deserialize(state).map_err(|e| {
        Error::new(
            ErrorCode::InvalidState,
            format!("malformed state: {}", sanitize_serde_error(&e)),
        )
    })
}

fn pool_from_doc(key: PoolKey, doc: PoolDoc) -> Result<Pool> {
    if doc.entries.len() > MAX_ENTRIES_PER_POOL {
        return Err(Error::new(
            ErrorCode::TooLarge,
            "too many entries in a pool",
        ));
    }
    let policy = match &doc.policy {
        None => Policy::default(),
        Some(value) => Policy::from_value(&known_policy_fields(value))
            .map_err(|e| Error::new(ErrorCode::InvalidState, e.message().to_owned()))?,
    };
    let mut pool = Pool::new(key);
    pool.set_config(PoolConfig {
        strategy: doc.strategy,
        policy,
        fallback: {
            validate_fallback(&doc.fallback)?;
            doc.fallback
        },
        api: doc.api,
    });
    pool.config_at = doc.config_updated_at;
    pool.cursor = doc.round_robin;
    pool.removed = doc.removed;
    pool.suppressions =
        Suppressions::from_parts(doc.suppressed_sources, doc.suppressions_lifted_at)?;
    for entry in doc.entries {
        let entry = entry_from_doc(entry)?;
        if pool.removed.contains_key(&entry.id) {
            continue;
        }
        if pool.put_entry(entry).is_some() {
            return Err(Error::new(
                ErrorCode::InvalidState,
                "duplicate entry id in a pool",
            ));
        }
    }
    Ok(pool)
}

/// Drops policy fields a newer version may have added (forward tolerance).
fn known_policy_fields(value: &Value) -> Value {
    let Value::Object(fields) = value else {
        return value.clone();
    };
    let Ok(Value::Object(known)) = serde_json::to_value(Policy::default()) else {
        return value.clone();
    };
    Value::Object(
        fields
            .iter()
            .filter(|(k, _)| known.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn entry_from_doc(doc: EntryDoc) -> Result<Entry> {
    for (what, name) in [("label", &doc.label), ("source", &doc.source)] {
        if !name.is_empty() {
            validate_name(what, name)?;
        }
    }
    let fingerprint = doc
        .access_token
        .as_ref()
        .map(Secret::fingerprint)
        .or_else(|| doc.secret_fingerprint.map(Fingerprint::from_text));
    let mut extra = doc.extra;
    extra.extend(doc.unknown);
    validate_extra(&extra)?;
    doc.open_leases.validate()?;
    // The limits `add_entry` applies, on every other way in (a store file, `sync`, a
    // registry's initial state).
    if let Some(url) = doc.base_url.as_ref().filter(|url| !url.is_empty()) {
        validate_name("base_url", url)?;
    }
    for (what, secret) in [
        ("access_token", &doc.access_token),
        ("refresh_token", &doc.refresh_token),
    ] {
        if let Some(secret) = secret {
            validate_secret(what, secret.expose())?;
        }
    }
    if let Some(error) = &doc.last_error {
        let long = |text: &Option<String>, max: usize| {
            text.as_ref().is_some_and(|t| t.chars().count() > max)
        };
        if long(&error.message, MAX_MESSAGE_CHARS) || long(&error.reason, MAX_REASON_CHARS) {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!(
                    "entry `{}`: last_error is longer than {MAX_REASON_CHARS} (reason) or \
                     {MAX_MESSAGE_CHARS} (message) characters",
                    doc.id
                ),
            ));
        }
    }
    for model in doc.model_cooldowns.keys() {
        validate_name("model", model)?;
    }
    Ok(Entry {
        id: doc.id,
        meta: Meta {
            label: doc.label,
            auth_type: doc.auth_type,
            priority: doc.priority,
            source: doc.source,
            base_url: doc.base_url,
            extra,
            updated_at: doc.meta_updated_at,
        },
        token: Token {
            access: doc.access_token,
            refresh: doc.refresh_token,
            fingerprint,
            expires_at: doc.expires_at,
            generation: doc.token_generation,
            updated_at: doc.token_updated_at,
        },
        status: if doc.status != Status::Ok && doc.token_updated_at > doc.status_at {
            // A token written after the status clears it, exactly as `merge` does: so a
            // document imports as it syncs, and syncing it twice changes nothing.
            StatusRecord {
                at: doc.token_updated_at,
                ..StatusRecord::default()
            }
        } else {
            StatusRecord {
                status: doc.status,
                at: doc.status_at,
                error: doc.last_error,
                until: doc.cooldown_until,
                failure: doc.failure_class,
                streak: doc.failure_streak,
            }
        },
        cleared_at: doc.status_cleared_at,
        counts: doc.request_counts.into_iter().collect(),
        model_cooldowns: doc.model_cooldowns,
        added_at: doc.added_at,
        leases: doc.open_leases,
        refresh_sent: doc.refresh_sent,
    })
}

fn pool_doc(pool: &Pool) -> PoolDoc {
    PoolDoc {
        entries: pool.entries().into_iter().map(entry_doc).collect(),
        ..pool_fields_doc(pool)
    }
}

/// The document form of a pool's own fields (configuration, cursor, tombstones,
/// suppressions), with no
/// entries.
pub(crate) fn pool_fields_doc(pool: &Pool) -> PoolDoc {
    PoolDoc {
        strategy: pool.config.strategy,
        policy: serde_json::to_value(&pool.config.policy).ok(),
        fallback: pool.config.fallback.clone(),
        api: pool.config.api,
        config_updated_at: pool.config_at,
        round_robin: pool.cursor.clone(),
        entries: Vec::new(),
        removed: pool.removed.clone(),
        suppressed_sources: pool.suppressions.parts().0.clone(),
        suppressions_lifted_at: pool.suppressions.parts().1,
    }
}

/// The document form of `entry`; borrowed secrets are left out.
pub(crate) fn entry_doc(entry: &Entry) -> EntryDoc {
    let owned = !entry.is_borrowed();
    EntryDoc {
        id: entry.id.clone(),
        label: entry.meta.label.clone(),
        auth_type: entry.meta.auth_type,
        priority: entry.meta.priority,
        source: entry.meta.source.clone(),
        access_token: entry.token.access.clone().filter(|_| owned),
        refresh_token: entry.token.refresh.clone().filter(|_| owned),
        secret_fingerprint: entry
            .token
            .fingerprint
            .as_ref()
            .map(|f| f.as_str().to_owned()),
        expires_at: entry.token.expires_at,
        base_url: entry.meta.base_url.clone(),
        token_generation: entry.token.generation,
        token_updated_at: entry.token.updated_at,
        meta_updated_at: entry.meta.updated_at,
        added_at: entry.added_at,
        status: entry.status.status,
        status_at: entry.status.at,
        last_error: entry.status.error.clone(),
        cooldown_until: entry.status.until,
        failure_class: entry.status.failure,
        failure_streak: entry.status.streak,
        status_cleared_at: entry.cleared_at,
        request_counts: (&entry.counts).into(),
        model_cooldowns: entry.model_cooldowns.clone(),
        open_leases: entry.leases.clone(),
        refresh_sent: entry.refresh_sent,
        extra: entry.meta.extra.clone(),
        unknown: Map::new(),
    }
}
