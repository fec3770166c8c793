//! Seeding rules of the anthropic pool, as Hermes' `load_pool` applies them (reference
//! §6.2 "API-key path" and §6.4 "Anthropic priority normalisation").

use std::collections::BTreeMap;

use crate::entry::EntryId;
use crate::error::Result;
use crate::pool_key::PoolKey;
use crate::registry::Registry;
use crate::seed::{SeedReport, SeededEntry, env_value};
use crate::time::Millis;

/// The anthropic pool key.
const ANTHROPIC: &str = "anthropic";
/// Sources of the OAuth logins an API key alone prunes.
const OAUTH_LOGIN_SOURCES: [&str; 2] = ["hermes_pkce", "claude_code"];
/// Seeded sources in the order Hermes ranks them; any other seeded source comes after.
const SEEDED_RANK: [&str; 5] = [
    "env:ANTHROPIC_TOKEN",
    "env:CLAUDE_CODE_OAUTH_TOKEN",
    "hermes_pkce",
    "claude_code",
    "env:ANTHROPIC_API_KEY",
];

/// Whether `env` holds an Anthropic API key and no Anthropic OAuth token: then the pool
/// must not rotate into an OAuth login.
pub(crate) fn api_key_only(env: &BTreeMap<String, String>) -> bool {
    env_value(env, "ANTHROPIC_API_KEY").is_some()
        && env_value(env, "ANTHROPIC_TOKEN").is_none()
        && env_value(env, "CLAUDE_CODE_OAUTH_TOKEN").is_none()
}

/// Whether `source` is a user's own (`manual`, `manual:<flow>`).
fn is_manual(source: &str) -> bool {
    source == "manual" || source.starts_with("manual:")
}

impl Registry {
    /// With an API key only ([`api_key_only`]), removes the anthropic pool's `hermes_pkce`
    /// and `claude_code` entries (tombstoned, not suppressed), reporting them.
    pub(crate) fn prune_anthropic_oauth(
        &mut self,
        now: Millis,
        env: &BTreeMap<String, String>,
        report: &mut SeedReport,
    ) -> Result<()> {
        if !api_key_only(env) {
            return Ok(());
        }
        let key = PoolKey::parse(ANTHROPIC)?;
        let Some(pool) = self.pools.get(&key) else {
            return Ok(());
        };
        let doomed: Vec<(EntryId, String)> = pool
            .entries()
            .into_iter()
            .filter(|e| OAUTH_LOGIN_SOURCES.contains(&e.meta.source.as_str()))
            .map(|e| (e.id.clone(), e.meta.source.clone()))
            .collect();
        for (id, source) in doomed {
            self.prune_entry(now, &key, &id)?;
            report.removed.push(SeededEntry {
                pool: key.clone(),
                entry_id: id,
                source,
            });
        }
        Ok(())
    }

    /// Renumbers the anthropic pool's priorities `0..n-1`: manual entries first in their
    /// order, then seeded ones by [`SEEDED_RANK`] (ties by priority, label, id).
    pub(crate) fn normalise_anthropic_priorities(&mut self, now: Millis) -> Result<()> {
        let key = PoolKey::parse(ANTHROPIC)?;
        let Some(pool) = self.pools.get_mut(&key) else {
            return Ok(());
        };
        let mut order: Vec<(usize, i64, String, EntryId)> = pool
            .entries()
            .into_iter()
            .map(|e| {
                let source = e.meta.source.as_str();
                let rank = if is_manual(source) {
                    0
                } else {
                    1 + SEEDED_RANK
                        .iter()
                        .position(|s| *s == source)
                        .unwrap_or(SEEDED_RANK.len())
                };
                (rank, e.meta.priority, e.meta.label.clone(), e.id.clone())
            })
            .collect();
        order.sort_by(|a, b| {
            // Manual entries keep their own order (priority, then id), labels aside.
            let label = |x: &(usize, i64, String, EntryId)| {
                if x.0 == 0 { String::new() } else { x.2.clone() }
            };
            (a.0, a.1, label(a), &a.3).cmp(&(b.0, b.1, label(b), &b.3))
        });
        let mut changed = false;
        for (priority, (_, _, _, id)) in order.iter().enumerate() {
            let priority = i64::try_from(priority).unwrap_or(i64::MAX);
            changed |= pool.set_priority(now, id, priority)?;
        }
        if changed {
            self.mark_changed();
        }
        Ok(())
    }
}
