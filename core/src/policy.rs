//! Policy: every number behind a decision, as plain fields, with two presets.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::classify::{Hint, HintSource, OutcomeClass};
use crate::error::{Error, ErrorCode, Result};
use crate::rng::Rng;
use crate::route::Api;
use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};

/// A named starting point for a [`Policy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Preset {
    /// The documented Hermes agent behaviour (default).
    #[default]
    Hermes,
    /// credpool's own: rotate early, escalate cooldowns with jitter, bounded retries.
    Adaptive,
}

/// How a pool reacts to outcomes. Every field can be set; presets fill the rest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The preset these values started from (informational).
    pub preset: Preset,
    /// On the first plain 429 of an entry in a turn, retry the same entry before rotating.
    pub retry_first_rate_limit: bool,
    /// With a healthy sibling, a first 429 rotates at once unless its hint is at most this
    /// many ms away (then the same entry is retried after the hint). `null`: never.
    pub rotate_unless_hint_within_ms: Option<u64>,
    /// Same-entry retries (429 retry, 5xx, network) allowed per pool per turn.
    pub max_same_retries_per_turn: u32,
    /// OAuth refreshes triggered by 401 allowed per entry per turn.
    pub max_refreshes_per_turn: u32,
    /// Cooldown after a non-terminal 401 (or failed refresh) without a hint.
    pub cooldown_auth_ms: u64,
    /// Cooldown after a 429 without a hint.
    pub cooldown_rate_limit_ms: u64,
    /// Cooldown after a usage/plan limit without a hint.
    pub cooldown_usage_limit_ms: u64,
    /// Cooldown after 402 / billing without a hint; never shortened by the sole rule.
    pub cooldown_billing_ms: u64,
    /// Cooldown after an ambiguous billing-shaped 400.
    pub cooldown_billing_unverified_ms: u64,
    /// Cooldown after any other marking failure (403, ...) without a hint.
    pub cooldown_default_ms: u64,
    /// Cap on transient cooldowns of the only non-dead entry of a pool (`null`: no cap).
    pub cooldown_sole_ms: Option<u64>,
    /// How long an (entry, model) pair is benched after a model-entitlement refusal.
    pub cooldown_model_entitlement_ms: u64,
    /// Each repeated failure of the same entry multiplies its cooldown by this percentage.
    pub escalation_percent: u32,
    /// Upper bound of escalated cooldowns (hints are bounded by `hint_max_ms` instead).
    pub cooldown_max_ms: u64,
    /// Random spread added to computed cooldowns and backoffs, in percent (0: none).
    pub jitter_percent: u32,
    /// Lower bound applied to provider reset hints.
    pub hint_min_ms: u64,
    /// Upper bound applied to provider reset hints.
    pub hint_max_ms: u64,
    /// First backoff delay for a same-entry retry without a hint.
    pub backoff_base_ms: u64,
    /// Largest backoff delay for a same-entry retry without a hint.
    pub backoff_max_ms: u64,
    /// An OAuth entry whose token expires within this many ms (or within half its lifetime,
    /// when that is shorter) is refreshed before use.
    pub refresh_skew_ms: u64,
    /// Which pools' rate limits bench only the (entry, model) pair when the model is known
    /// (`"off"`, `"anthropic"`, `"all"`; `false` and `true` read as `"off"` and `"all"`).
    pub model_scoped_rate_limits: ModelScope,
    /// A call started with `probe` probes a key benched by a rate or usage limit for longer
    /// than this, and probes the same key again only after it (Hermes: 300 s).
    pub quota_probe_interval_ms: u64,
    /// The most requests open on one key at once, over every process sharing the store
    /// (`None`: no cap). A key at the cap is skipped; when every usable key is, `acquire`
    /// answers `wait` with `all_keys_busy` for a second.
    pub max_concurrent_per_key: Option<u32>,
    /// How long a process's open leases on a key count after it last opened or settled
    /// one there (so a crashed process cannot pin a key under the cap).
    pub lease_ttl_ms: u64,
}

/// How long `acquire` waits before looking again when every usable key is at the cap.
pub(crate) const BUSY_RECHECK_MS: u64 = SECOND;

/// Which pools' rate limits bench the (entry, model) pair instead of the whole entry, when
/// the request names its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ModelScope {
    /// None: a rate limit benches the entry for every model.
    Off,
    /// Pools of the Anthropic API shape, whose limits are per model (as Hermes V3 does).
    Anthropic,
    /// Every pool.
    All,
}

impl ModelScope {
    /// Whether a rate limit on a pool of shape `api` benches only the model.
    #[must_use]
    pub fn applies_to(self, api: Api) -> bool {
        match self {
            Self::Off => false,
            Self::Anthropic => api == Api::Anthropic,
            Self::All => true,
        }
    }
}

impl<'de> Deserialize<'de> for ModelScope {
    /// `"off"`, `"anthropic"` or `"all"`; the booleans of earlier versions as `"off"`/`"all"`.
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Bool(false) => Ok(Self::Off),
            Value::Bool(true) => Ok(Self::All),
            Value::String(name) if name == "off" => Ok(Self::Off),
            Value::String(name) if name == "anthropic" => Ok(Self::Anthropic),
            Value::String(name) if name == "all" => Ok(Self::All),
            _ => Err(serde::de::Error::custom(
                "model_scoped_rate_limits must be \"off\", \"anthropic\" or \"all\"",
            )),
        }
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self::hermes()
    }
}

impl Policy {
    /// The documented Hermes behaviour.
    #[must_use]
    pub const fn hermes() -> Self {
        Self {
            preset: Preset::Hermes,
            retry_first_rate_limit: true,
            rotate_unless_hint_within_ms: None,
            max_same_retries_per_turn: 3,
            max_refreshes_per_turn: 2,
            cooldown_auth_ms: 5 * MINUTE,
            cooldown_rate_limit_ms: HOUR,
            cooldown_usage_limit_ms: HOUR,
            cooldown_billing_ms: HOUR,
            cooldown_billing_unverified_ms: MINUTE,
            cooldown_default_ms: HOUR,
            cooldown_sole_ms: Some(MINUTE),
            cooldown_model_entitlement_ms: 2 * DAY,
            escalation_percent: 100,
            cooldown_max_ms: HOUR,
            jitter_percent: 0,
            hint_min_ms: SECOND,
            hint_max_ms: 8 * DAY,
            backoff_base_ms: 5 * SECOND,
            backoff_max_ms: 2 * MINUTE,
            refresh_skew_ms: 2 * MINUTE,
            model_scoped_rate_limits: ModelScope::Anthropic,
            quota_probe_interval_ms: 5 * MINUTE,
            max_concurrent_per_key: None,
            lease_ttl_ms: 10 * MINUTE,
        }
    }

    /// credpool's adaptive preset.
    #[must_use]
    pub const fn adaptive() -> Self {
        Self {
            preset: Preset::Adaptive,
            retry_first_rate_limit: false,
            rotate_unless_hint_within_ms: Some(5 * SECOND),
            // Five same-key retries (backoff 2, 4, 8, 16, 32 s: 62 s) ride out a 5xx burst
            // that hermes's three (5, 10, 20 s: 35 s) ride out, and longer ones; 429s rarely
            // spend them (a first 429 rotates). Tuned with `credpool simulate --sweep 20`.
            max_same_retries_per_turn: 5,
            max_refreshes_per_turn: 2,
            cooldown_auth_ms: 5 * MINUTE,
            cooldown_rate_limit_ms: MINUTE,
            cooldown_usage_limit_ms: HOUR,
            cooldown_billing_ms: HOUR,
            cooldown_billing_unverified_ms: MINUTE,
            cooldown_default_ms: 10 * MINUTE,
            cooldown_sole_ms: Some(MINUTE),
            cooldown_model_entitlement_ms: 2 * DAY,
            escalation_percent: 200,
            cooldown_max_ms: HOUR,
            jitter_percent: 20,
            // A reset a second or two away is mostly one slot of a sliding rpm window
            // freeing, which the calls waiting on the key then meet together: bench at least
            // 7 s. Tuned with `credpool simulate --sweep 20` (fewer 429s, seeds 1 to 3).
            hint_min_ms: 7 * SECOND,
            hint_max_ms: 8 * DAY,
            backoff_base_ms: 2 * SECOND,
            backoff_max_ms: MINUTE,
            refresh_skew_ms: 2 * MINUTE,
            model_scoped_rate_limits: ModelScope::Anthropic,
            quota_probe_interval_ms: 5 * MINUTE,
            max_concurrent_per_key: None,
            lease_ttl_ms: 10 * MINUTE,
        }
    }

    /// The preset's values.
    #[must_use]
    pub const fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Hermes => Self::hermes(),
            Preset::Adaptive => Self::adaptive(),
        }
    }

    /// Builds a policy from a JSON object: `preset` (default `hermes`) then any field overrides.
    pub fn from_value(value: &Value) -> Result<Self> {
        let Value::Object(fields) = value else {
            return Err(invalid("policy must be an object"));
        };
        let preset = match fields.get("preset") {
            None => Preset::Hermes,
            Some(p) => serde_json::from_value(p.clone())
                .map_err(|_| invalid("`preset` must be \"hermes\" or \"adaptive\""))?,
        };
        let mut merged: Map<String, Value> = match serde_json::to_value(Self::preset(preset)) {
            Ok(Value::Object(map)) => map,
            _ => {
                return Err(Error::new(
                    ErrorCode::Internal,
                    "policy serialisation failed",
                ));
            }
        };
        for (name, field) in fields {
            if !merged.contains_key(name) {
                return Err(invalid(format!(
                    "unknown policy field `{}`",
                    crate::error::clip(name)
                )));
            }
            merged.insert(name.clone(), field.clone());
        }
        let policy: Self = serde_json::from_value(Value::Object(merged))
            .map_err(|e| invalid(format!("bad policy field: {e}")))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Checks that the fields are coherent.
    pub fn validate(&self) -> Result<()> {
        if self.hint_min_ms > self.hint_max_ms {
            return Err(invalid("hint_min_ms must not exceed hint_max_ms"));
        }
        if self.backoff_base_ms > self.backoff_max_ms {
            return Err(invalid("backoff_base_ms must not exceed backoff_max_ms"));
        }
        if self.escalation_percent < 100 || self.escalation_percent > 1_000 {
            return Err(invalid("escalation_percent must be within 100..=1000"));
        }
        if self.jitter_percent > 100 {
            return Err(invalid("jitter_percent must be within 0..=100"));
        }
        if self.max_concurrent_per_key == Some(0) {
            return Err(invalid(
                "max_concurrent_per_key must be at least 1 (null: no cap)",
            ));
        }
        if self.lease_ttl_ms == 0 {
            return Err(invalid("lease_ttl_ms must be at least 1"));
        }
        Ok(())
    }

    /// When an entry marked at `now` for `class` becomes available again, and which hint set it.
    ///
    /// A hint wins over every default (clamped into `hint_min_ms..=hint_max_ms`). Without one, the
    /// class's default applies, capped by the sole rule for transient classes, escalated by
    /// `streak` (failures in a row before this one) and spread by jitter.
    pub(crate) fn cooldown(&self, mark: &MarkContext, rng: &mut Rng) -> (Millis, Option<HintUsed>) {
        let now = mark.now;
        if let Some(hint) = mark.hint {
            let used = self.clamp_hint(now, hint);
            return (used.at, Some(used));
        }
        let base = match mark.class {
            OutcomeClass::Auth | OutcomeClass::AuthTerminal => self.cooldown_auth_ms,
            OutcomeClass::RateLimit | OutcomeClass::UpstreamRateLimit => {
                self.cooldown_rate_limit_ms
            }
            OutcomeClass::UsageLimit => self.cooldown_usage_limit_ms,
            OutcomeClass::Billing => self.cooldown_billing_ms,
            OutcomeClass::BillingUnverified => self.cooldown_billing_unverified_ms,
            _ => self.cooldown_default_ms,
        };
        let transient = !matches!(
            mark.class,
            OutcomeClass::Auth | OutcomeClass::AuthTerminal | OutcomeClass::Billing
        );
        let capped = match (mark.sole, self.cooldown_sole_ms) {
            (true, Some(sole)) if transient => base.min(sole),
            _ => base,
        };
        let escalated = self.escalate(capped, mark.streak);
        (now.plus(self.jitter(escalated, rng)), None)
    }

    /// Delay before retrying the same entry: the hint when there is one, else exponential backoff.
    pub(crate) fn retry_delay(
        &self,
        now: Millis,
        hint: Option<Hint>,
        attempt: u32,
        rng: &mut Rng,
    ) -> (u64, Option<HintUsed>) {
        if let Some(hint) = hint {
            let used = self.clamp_hint(now, hint);
            return (now.until(used.at), Some(used));
        }
        let shift = attempt.saturating_sub(1).min(32);
        let delay = self
            .backoff_base_ms
            .saturating_mul(1u64 << shift)
            .min(self.backoff_max_ms);
        (self.jitter(delay, rng), None)
    }

    /// The hint clamped into policy bounds.
    pub(crate) fn clamp_hint(&self, now: Millis, hint: Hint) -> HintUsed {
        let lo = now.plus(self.hint_min_ms);
        let hi = now.plus(self.hint_max_ms);
        let at = hint.at.clamp(lo, hi);
        HintUsed {
            source: hint.source,
            at,
            clamped: at != hint.at,
        }
    }

    fn escalate(&self, base: u64, streak: u32) -> u64 {
        if self.escalation_percent <= 100 || streak == 0 {
            return base;
        }
        let mut value = base;
        for _ in 0..streak.min(64) {
            value = value.saturating_mul(u64::from(self.escalation_percent)) / 100;
            if value >= self.cooldown_max_ms {
                return self.cooldown_max_ms.max(base);
            }
        }
        value
    }

    fn jitter(&self, value: u64, rng: &mut Rng) -> u64 {
        if self.jitter_percent == 0 || value == 0 {
            return value;
        }
        let spread = value.saturating_mul(u64::from(self.jitter_percent)) / 100;
        value.saturating_add(rng.below(spread.saturating_add(1)))
    }
}

/// What a mark needs to compute a cooldown.
pub(crate) struct MarkContext {
    pub(crate) now: Millis,
    pub(crate) class: OutcomeClass,
    pub(crate) sole: bool,
    pub(crate) streak: u32,
    pub(crate) hint: Option<Hint>,
}

/// The reset hint a decision relied on, after clamping.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HintUsed {
    /// Where the hint came from.
    pub source: HintSource,
    /// The instant used (epoch ms), after clamping.
    pub at: Millis,
    /// Whether clamping changed the provider's value.
    pub clamped: bool,
}

fn invalid(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidPolicy, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mark(class: OutcomeClass, sole: bool, streak: u32) -> MarkContext {
        MarkContext {
            now: Millis(1_000),
            class,
            sole,
            streak,
            hint: None,
        }
    }

    #[test]
    fn hermes_ttl_matrix() {
        let p = Policy::hermes();
        let mut rng = Rng::new(1);
        let until = |m: MarkContext, rng: &mut Rng| p.cooldown(&m, rng).0.0 - 1_000;
        assert_eq!(until(mark(OutcomeClass::Auth, false, 0), &mut rng), 300_000);
        assert_eq!(until(mark(OutcomeClass::Auth, true, 0), &mut rng), 300_000);
        assert_eq!(
            until(mark(OutcomeClass::RateLimit, false, 0), &mut rng),
            3_600_000
        );
        assert_eq!(
            until(mark(OutcomeClass::RateLimit, true, 0), &mut rng),
            60_000
        );
        assert_eq!(
            until(mark(OutcomeClass::Billing, true, 0), &mut rng),
            3_600_000
        );
        assert_eq!(
            until(mark(OutcomeClass::Forbidden, true, 0), &mut rng),
            60_000
        );
        assert_eq!(
            until(mark(OutcomeClass::BillingUnverified, false, 0), &mut rng),
            60_000
        );
        assert_eq!(
            until(mark(OutcomeClass::RateLimit, false, 5), &mut rng),
            3_600_000
        );
    }

    #[test]
    fn adaptive_escalates_to_cap() {
        let p = Policy::from_value(&json!({"preset": "adaptive", "jitter_percent": 0}))
            .unwrap_or_default();
        let mut rng = Rng::new(1);
        let until = |s, rng: &mut Rng| {
            p.cooldown(&mark(OutcomeClass::RateLimit, false, s), rng)
                .0
                .0
                - 1_000
        };
        assert_eq!(until(0, &mut rng), 60_000);
        assert_eq!(until(1, &mut rng), 120_000);
        assert_eq!(until(3, &mut rng), 480_000);
        assert_eq!(until(20, &mut rng), 3_600_000);
    }

    #[test]
    fn hints_are_clamped() {
        let p = Policy::hermes();
        let used = p.clamp_hint(
            Millis(10_000),
            Hint {
                at: Millis(10_001),
                source: HintSource::RetryAfter,
            },
        );
        assert_eq!(used.at, Millis(11_000));
        assert!(used.clamped);
        let used = p.clamp_hint(
            Millis(0),
            Hint {
                at: Millis(u64::MAX),
                source: HintSource::Message,
            },
        );
        assert_eq!(used.at, Millis(8 * DAY));
    }

    #[test]
    fn overrides_apply_and_unknown_fields_fail() {
        let p = Policy::from_value(&json!({"cooldown_auth_ms": 1})).unwrap_or_default();
        assert_eq!(p.cooldown_auth_ms, 1);
        assert_eq!(p.preset, Preset::Hermes);
        let err = Policy::from_value(&json!({"nope": 1}))
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::InvalidPolicy));
        let err = Policy::from_value(&json!({"hint_min_ms": 10, "hint_max_ms": 1}))
            .err()
            .map(|e| e.code());
        assert_eq!(err, Some(ErrorCode::InvalidPolicy));
    }

    #[test]
    fn backoff_doubles_to_max() {
        let p = Policy::hermes();
        let mut rng = Rng::new(1);
        let d = |a, rng: &mut Rng| p.retry_delay(Millis(0), None, a, rng).0;
        assert_eq!(d(1, &mut rng), 5_000);
        assert_eq!(d(2, &mut rng), 10_000);
        assert_eq!(d(10, &mut rng), 120_000);
    }
}
