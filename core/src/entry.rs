//! Credential entries: identity, metadata, token, status and counters.
//!
//! Each part that several processes may change is its own register with a timestamp,
//! so that [`crate::merge`] can combine two states component by component.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::OutcomeClass;
use crate::counts::Counts;
use crate::error::{Error, ErrorCode, Result, clip};
use crate::limits::{MAX_EXTRA_BYTES, MAX_EXTRA_DEPTH, MAX_NAME_CHARS, MAX_SECRET_BYTES};
use crate::secret::{Fingerprint, Secret};
use crate::shared_leases::SharedLeases;
use crate::short_str::ShortStr;
use crate::time::Millis;

/// Stable id of an entry within its pool (never derived from its secret).
///
/// Ids up to 22 bytes (every generated id, and most chosen ones) are stored
/// inline: comparing and cloning them touches no heap memory, which keeps the pool's
/// ordered indexes cheap to search when they hold many entries.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryId(ShortStr);

impl EntryId {
    /// Validates `raw` as an id: non-empty, at most 256 characters, no control characters.
    pub fn parse(raw: &str) -> Result<Self> {
        validate_name("entry id", raw)?;
        Ok(Self(ShortStr::new(raw)))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// An id core generated itself (already valid).
    pub(crate) fn from_trusted(raw: String) -> Self {
        Self(ShortStr::new(&raw))
    }

    /// A fast fixed hash of the id (core's entry table).
    pub(crate) fn fast_hash(&self) -> u64 {
        self.0.fast_hash()
    }

    /// The smallest id (the empty one, never valid as an entry's id): a range bound.
    pub(crate) const fn min() -> Self {
        Self(ShortStr::empty())
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("EntryId").field(&self.as_str()).finish()
    }
}

impl Serialize for EntryId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntryId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(|e| serde::de::Error::custom(e.message()))
    }
}

/// Checks a user-supplied name (id, label, source, model, session).
pub(crate) fn validate_name(what: &str, raw: &str) -> Result<()> {
    if raw.is_empty() || raw.chars().count() > MAX_NAME_CHARS || raw.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "{what} must be 1..={MAX_NAME_CHARS} characters without control characters (got `{}`)",
            clip(raw)
        )));
    }
    Ok(())
}

/// Checks a secret's size (never quoting it).
pub(crate) fn validate_secret(what: &str, secret: &str) -> Result<()> {
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES {
        return Err(Error::new(
            ErrorCode::InvalidEntry,
            format!("{what} must be 1..={MAX_SECRET_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Checks the nesting depth (iteratively: no recursion on input) and the JSON size of an
/// entry's `extra`, so exported state stays small and readable by every JSON parser.
pub(crate) fn validate_extra(extra: &Map<String, Value>) -> Result<()> {
    let mut stack: Vec<(&Value, usize)> = extra.values().map(|v| (v, 2)).collect();
    while let Some((value, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match value {
            Value::Array(items) => Box::new(items.iter()),
            Value::Object(map) => Box::new(map.values()),
            _ => continue,
        };
        if depth > MAX_EXTRA_DEPTH {
            return Err(Error::new(
                ErrorCode::TooLarge,
                format!("extra is nested deeper than {MAX_EXTRA_DEPTH} levels"),
            ));
        }
        stack.extend(children.map(|v| (v, depth + 1)));
    }
    let bytes = serde_json::to_string(extra).map_or(usize::MAX, |text| text.len());
    if bytes > MAX_EXTRA_BYTES {
        return Err(Error::new(
            ErrorCode::TooLarge,
            format!("extra is {bytes} bytes of JSON, more than {MAX_EXTRA_BYTES}"),
        ));
    }
    Ok(())
}

/// How the credential authenticates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthType {
    /// A static API key.
    #[default]
    ApiKey,
    /// An OAuth access token, possibly with a refresh token.
    Oauth,
}

/// Persisted health of an entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Status {
    /// Usable.
    #[default]
    Ok,
    /// Benched until its cooldown deadline.
    Exhausted,
    /// Unusable until re-login, refresh or reset.
    Dead,
}

/// The last error that marked an entry: codes and a bounded message, never a secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LastError {
    /// HTTP status, when there was one.
    #[serde(default)]
    pub code: Option<u16>,
    /// Provider reason code (e.g. `rate_limit_exceeded`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Provider message, bounded.
    #[serde(default)]
    pub message: Option<String>,
}

/// Human-facing and routing metadata; last writer wins as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Meta {
    /// Sort key, ascending; ties by id.
    pub priority: i64,
    /// When this metadata was last written.
    pub updated_at: Millis,
    /// API key or OAuth.
    pub auth_type: AuthType,
    /// Human label.
    pub label: String,
    /// Provenance: `manual`, `env:<VAR>`, `config:<name>`, `oauth:<flow>`, ...
    pub source: String,
    /// Endpoint this credential serves.
    pub base_url: Option<String>,
    /// Opaque payload kept untouched through load and save.
    pub extra: Map<String, Value>,
}

/// The token pair; a higher generation wins a merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The access token or API key, when this process holds it.
    pub access: Option<Secret>,
    /// The OAuth refresh token, when any.
    pub refresh: Option<Secret>,
    /// Fingerprint of the access token (kept even when the secret is not).
    pub fingerprint: Option<Fingerprint>,
    /// When the access token expires.
    pub expires_at: Option<Millis>,
    /// Incremented on every refresh or re-seed with a different secret.
    pub generation: u64,
    /// When this token was written.
    pub updated_at: Millis,
}

impl Token {
    /// A token from optional secrets, generation 0 written at `at`.
    pub(crate) fn new(
        access: Option<Secret>,
        refresh: Option<Secret>,
        expires_at: Option<Millis>,
        at: Millis,
    ) -> Self {
        Self {
            fingerprint: access.as_ref().map(Secret::fingerprint),
            access,
            refresh,
            expires_at,
            generation: 0,
            updated_at: at,
        }
    }
}

/// The status register: what happened last and until when it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusRecord {
    /// ok / exhausted / dead.
    pub status: Status,
    /// When the status was set.
    pub at: Millis,
    /// The error behind it.
    pub error: Option<LastError>,
    /// Cooldown deadline, computed and stored when marked.
    pub until: Option<Millis>,
    /// Classifier verdict behind the mark.
    pub failure: Option<OutcomeClass>,
    /// Failures in a row (escalates adaptive cooldowns; cleared by success or reset).
    pub streak: u32,
}

/// A per-model bench of one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ModelCooldown {
    /// Benched until.
    pub until: Millis,
    /// When the bench was set (last writer wins).
    pub at: Millis,
}

/// One credential of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Entry {
    // Declared (and, by `repr(C)`, laid out) hottest first: a request reads the id,
    // counters, status, token and benches, which then share a few adjacent cache lines.
    /// Stable id.
    pub id: EntryId,
    /// Selections per writer (a grow-only counter; the sum is the request count).
    pub counts: Counts,
    /// Status register.
    pub status: StatusRecord,
    /// Token register.
    pub token: Token,
    /// Per-model benches.
    pub model_cooldowns: BTreeMap<String, ModelCooldown>,
    /// Last explicit reset.
    pub cleared_at: Option<Millis>,
    /// When the entry was added.
    pub added_at: Millis,
    /// Metadata register (its priority first: selection reads it).
    pub meta: Meta,
    /// Open leases per writer (kept while the pool caps concurrent requests per key).
    pub leases: SharedLeases,
    /// The last refresh whose refresh token was about to be sent (see [`RefreshSent`]).
    pub refresh_sent: Option<RefreshSent>,
}

/// A refresh about to send (or sending) the refresh token of one token generation,
/// recorded before the token leaves the process so that no process ever sends it twice.
///
/// Merges keep the later record (`at`, then settled over unsettled).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshSent {
    /// When it was recorded or settled.
    pub at: Millis,
    /// Whether the refresh ended with an answer (`refresh_result`); unsettled, a later
    /// refresh of the same generation finds it interrupted.
    pub settled: bool,
    /// The token generation whose refresh token was sent.
    pub generation: u64,
}

impl Entry {
    /// Whether a refresh of the current token was started and never settled (the process
    /// that sent its refresh token stopped before recording the answer).
    #[must_use]
    pub fn refresh_interrupted(&self) -> bool {
        self.refresh_sent
            .is_some_and(|sent| !sent.settled && sent.generation == self.token.generation)
    }
}

/// Whether an entry can serve a request now, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Availability {
    /// Usable now.
    Available,
    /// Usable after an OAuth refresh (token expiring within the skew).
    NeedsRefresh,
    /// Benched until the given instant (entry-wide or for this model).
    Cooling(Millis),
    /// Dead: needs re-login, refresh or reset.
    Dead,
    /// This process does not hold the secret (a borrowed entry not seeded here).
    NoSecret,
}

impl Availability {
    /// Usable now (possibly after a refresh).
    #[must_use]
    pub const fn is_usable(self) -> bool {
        matches!(self, Self::Available | Self::NeedsRefresh)
    }
}

impl Entry {
    /// Total selections over all writers.
    #[must_use]
    pub fn request_count(&self) -> u64 {
        self.counts.total()
    }

    /// The status in force: a token written after the status clears it.
    #[must_use]
    pub fn effective_status(&self) -> Status {
        if self.status.status != Status::Ok && self.token.updated_at > self.status.at {
            Status::Ok
        } else {
            self.status.status
        }
    }

    /// Whether the source lends the secret (env vars): it is never persisted.
    #[must_use]
    pub fn is_borrowed(&self) -> bool {
        is_borrowed_source(&self.meta.source)
    }

    /// Whether an OAuth refresh is possible.
    #[must_use]
    pub fn is_refreshable(&self) -> bool {
        self.meta.auth_type == AuthType::Oauth && self.token.refresh.is_some()
    }

    /// Availability at `now` for `model` (`None`: any active model bench blocks).
    #[must_use]
    pub fn availability(
        &self,
        now: Millis,
        model: Option<&str>,
        refresh_skew_ms: u64,
    ) -> Availability {
        match self.effective_status() {
            Status::Dead => return Availability::Dead,
            Status::Exhausted => {
                let until = self.status.until.unwrap_or(self.status.at);
                if now < until {
                    return Availability::Cooling(until);
                }
            }
            Status::Ok => {}
        }
        if let Some(until) = self.model_bench(now, model) {
            return Availability::Cooling(until);
        }
        if self.token.access.is_none() {
            return if self.is_refreshable() {
                Availability::NeedsRefresh
            } else {
                Availability::NoSecret
            };
        }
        match self.token.expires_at {
            Some(expiry)
                if self.is_refreshable()
                    && expiry <= now.plus(self.refresh_window(expiry, refresh_skew_ms)) =>
            {
                Availability::NeedsRefresh
            }
            _ => Availability::Available,
        }
    }

    /// How long before `expiry` the token is refreshed: the skew, or half the token's
    /// lifetime when that is shorter (a token living less than the skew would otherwise be
    /// refreshed on every acquire). A token that expired when it was written was never
    /// valid: always due, whatever another process's clock reads.
    fn refresh_window(&self, expiry: Millis, refresh_skew_ms: u64) -> u64 {
        if expiry <= self.token.updated_at {
            return u64::MAX;
        }
        let lifetime = expiry.0 - self.token.updated_at.0;
        refresh_skew_ms.min(lifetime / 2)
    }

    /// Latest active model bench that blocks `model` at `now`.
    fn model_bench(&self, now: Millis, model: Option<&str>) -> Option<Millis> {
        let active = |c: &ModelCooldown| (c.until > now).then_some(c.until);
        match model {
            Some(model) => self.model_cooldowns.get(model).and_then(active),
            None => self.model_cooldowns.values().filter_map(active).max(),
        }
    }

    /// Whether an exhausted status has run out at `now` (to be cleared on selection).
    #[must_use]
    pub fn cooldown_expired(&self, now: Millis) -> bool {
        self.effective_status() == Status::Exhausted
            && self.status.until.unwrap_or(self.status.at) <= now
    }

    /// Sort key used by every strategy: priority, then id.
    #[must_use]
    pub fn order_key(&self) -> (i64, &EntryId) {
        (self.meta.priority, &self.id)
    }
}

/// Sources whose secrets are borrowed (env vars, config files) and never persisted.
#[must_use]
pub fn is_borrowed_source(source: &str) -> bool {
    source.starts_with("env:") || source.starts_with("config:")
}
