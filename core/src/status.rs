//! Status for humans: what each entry is doing and for how long.

use serde::Serialize;

use crate::classify::OutcomeClass;
use crate::entry::{AuthType, Availability, Entry, EntryId};
use crate::error::Result;
use crate::policy::Preset;
use crate::pool_key::PoolKey;
use crate::registry::{Pool, Registry, Strategy};
use crate::select::pick;
use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};

/// The health of an entry, in words a person acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Health {
    /// Usable now.
    Available,
    /// Rate- or usage-limited until a deadline.
    RateLimited,
    /// Refused authentication; re-auth may be required.
    AuthFailed,
    /// Benched for another reason (billing, 403, ...) until a deadline.
    Exhausted,
    /// Dead: re-login required.
    Dead,
    /// Its secret is borrowed from an environment this process does not have.
    NoSecret,
}

/// One entry's status line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EntryStatus {
    /// 1-based position in priority order.
    pub index: usize,
    /// Entry id.
    pub id: EntryId,
    /// Label.
    pub label: String,
    /// Auth type.
    pub auth_type: AuthType,
    /// Priority.
    pub priority: i64,
    /// Source.
    pub source: String,
    /// Health.
    pub health: Health,
    /// When it becomes usable again (rate-limited, auth-failed or exhausted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Millis>,
    /// The human text, e.g. `rate-limited rate_limit_exceeded (429) (2h 5m left)`.
    pub text: String,
    /// Total selections.
    pub request_count: u64,
    /// Whether the next plain acquire would pick it.
    pub next: bool,
}

/// One pool's status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PoolStatus {
    /// Pool key.
    pub pool: PoolKey,
    /// Strategy.
    pub strategy: Strategy,
    /// Policy preset.
    pub policy: Preset,
    /// Entries in priority order.
    pub entries: Vec<EntryStatus>,
    /// Seeding sources suppressed in this pool (a removed seeded entry's source; `add`
    /// lifts them), sorted; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed_sources: Vec<String>,
}

impl Registry {
    /// Status of one pool, or of every pool, at `now`. Reads only.
    pub fn status(&self, now: Millis, key: Option<&PoolKey>) -> Result<Vec<PoolStatus>> {
        let now = now.max(self.last_now);
        match key {
            Some(key) => Ok(vec![pool_status(
                self.pool(key)?,
                now,
                &mut self.rng.clone(),
            )]),
            None => Ok(self
                .pools
                .values()
                .map(|p| pool_status(p, now, &mut self.rng.clone()))
                .collect()),
        }
    }
}

fn pool_status(pool: &Pool, now: Millis, rng: &mut crate::rng::Rng) -> PoolStatus {
    let next = pick(pool, now, None, None, rng);
    let skew = pool.config.policy.refresh_skew_ms;
    let entries = pool
        .entries()
        .into_iter()
        .enumerate()
        .map(|(i, entry)| {
            let (health, until) = health(entry, now, skew);
            EntryStatus {
                index: i + 1,
                id: entry.id.clone(),
                label: entry.meta.label.clone(),
                auth_type: entry.meta.auth_type,
                priority: entry.meta.priority,
                source: entry.meta.source.clone(),
                health,
                until,
                text: describe(entry, health, until, now),
                request_count: entry.request_count(),
                next: next.as_ref() == Some(&entry.id),
            }
        })
        .collect();
    PoolStatus {
        pool: pool.key.clone(),
        strategy: pool.config.strategy,
        policy: pool.config.policy.preset,
        entries,
        suppressed_sources: pool.suppressed_sources().map(str::to_owned).collect(),
    }
}

fn health(entry: &Entry, now: Millis, skew: u64) -> (Health, Option<Millis>) {
    match entry.availability(now, None, skew) {
        Availability::Available | Availability::NeedsRefresh => (Health::Available, None),
        Availability::Dead => (Health::Dead, None),
        Availability::NoSecret => (Health::NoSecret, None),
        Availability::Cooling(until) => {
            let code = entry.status.error.as_ref().and_then(|e| e.code);
            let health = match entry.status.failure {
                Some(
                    OutcomeClass::RateLimit
                    | OutcomeClass::UsageLimit
                    | OutcomeClass::UpstreamRateLimit,
                ) => Health::RateLimited,
                Some(OutcomeClass::Auth | OutcomeClass::AuthTerminal | OutcomeClass::Forbidden) => {
                    Health::AuthFailed
                }
                Some(_) => Health::Exhausted,
                None => match code {
                    Some(429) => Health::RateLimited,
                    Some(401 | 403) => Health::AuthFailed,
                    _ => Health::Exhausted,
                },
            };
            (health, Some(until))
        }
    }
}

fn describe(entry: &Entry, health: Health, until: Option<Millis>, now: Millis) -> String {
    let word = match health {
        Health::Available => return "available".to_owned(),
        Health::Dead => return "dead (re-login required)".to_owned(),
        Health::NoSecret => {
            return "no secret in this process (borrowed source not set)".to_owned();
        }
        Health::RateLimited => "rate-limited",
        Health::AuthFailed => "auth failed",
        Health::Exhausted => "exhausted",
    };
    let mut text = word.to_owned();
    if let Some(error) = &entry.status.error {
        if let Some(reason) = &error.reason {
            text.push(' ');
            text.push_str(reason);
        }
        if let Some(code) = error.code {
            text.push_str(&format!(" ({code})"));
        }
    }
    let left = until.map_or(0, |u| now.until(u));
    if left == 0 {
        text.push_str(" (ready to retry)");
    } else {
        text.push_str(&format!(" ({} left)", time_left(left)));
    }
    if health == Health::AuthFailed {
        text.push_str(" (re-auth may be required)");
    }
    text
}

/// The two largest units of `ms`, from the first non-zero one: `2h 5m`, `45s`, `1d 3h`.
#[must_use]
pub fn time_left(ms: u64) -> String {
    let units = [(DAY, "d"), (HOUR, "h"), (MINUTE, "m"), (SECOND, "s")];
    let seconds_ceil = ms.div_ceil(SECOND) * SECOND;
    let Some(first) = units.iter().position(|(size, _)| seconds_ceil >= *size) else {
        return "1s".to_owned();
    };
    let mut rest = seconds_ceil;
    let mut parts = Vec::new();
    for (size, name) in units.iter().skip(first).take(2) {
        let n = rest / size;
        rest %= size;
        if n > 0 || parts.is_empty() {
            parts.push(format!("{n}{name}"));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_left_uses_two_units() {
        assert_eq!(time_left((2 * 3600 + 5 * 60 + 10) * 1000), "2h 5m");
        assert_eq!(time_left(45_000), "45s");
        assert_eq!(time_left(1), "1s");
        assert_eq!(time_left(DAY + 3 * HOUR), "1d 3h");
        assert_eq!(time_left(HOUR), "1h");
    }
}
