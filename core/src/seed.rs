//! Seeding: adopt credentials from an environment map and a config, purely.
//!
//! A process that lacks a variable never deletes the entry another process seeded;
//! entries are deduplicated by secret fingerprint. A source the user suppressed (by
//! removing its entry) is skipped; two entries of one seeded source collapse to the first
//! (Hermes reference §6.4); the anthropic pool follows Hermes' own rules
//! ([`crate::seed_anthropic`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{AuthType, EntryId, validate_name};
use crate::error::Result;
use crate::pool_key::PoolKey;
use crate::registry::{NewEntry, Registry};
use crate::secret::Secret;
use crate::time::Millis;

/// A known provider: its pool key, the env vars that hold its keys, and its endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provider {
    /// Pool key.
    pub id: &'static str,
    /// Env vars holding keys, in priority order.
    pub key_vars: &'static [&'static str],
    /// Env var overriding the endpoint.
    pub base_url_var: Option<&'static str>,
    /// Default endpoint.
    pub base_url: &'static str,
    /// Whether the provider offers an OAuth login besides API keys.
    pub oauth: bool,
}

/// The providers credpool seeds from the environment.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        id: "openrouter",
        key_vars: &["OPENROUTER_API_KEY"],
        base_url_var: Some("OPENROUTER_BASE_URL"),
        base_url: "https://openrouter.ai/api/v1",
        oauth: true,
    },
    Provider {
        id: "anthropic",
        key_vars: &[
            "ANTHROPIC_TOKEN",
            "CLAUDE_CODE_OAUTH_TOKEN",
            "ANTHROPIC_API_KEY",
        ],
        base_url_var: Some("ANTHROPIC_BASE_URL"),
        base_url: "https://api.anthropic.com",
        oauth: true,
    },
    Provider {
        id: "openai",
        key_vars: &["OPENAI_API_KEY"],
        base_url_var: Some("OPENAI_BASE_URL"),
        base_url: "https://api.openai.com/v1",
        oauth: false,
    },
    Provider {
        id: "openai-codex",
        key_vars: &[],
        base_url_var: None,
        base_url: "https://chatgpt.com/backend-api/codex",
        oauth: true,
    },
    Provider {
        id: "gemini",
        key_vars: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        base_url_var: None,
        base_url: "https://generativelanguage.googleapis.com/v1beta",
        oauth: false,
    },
    Provider {
        id: "xai",
        key_vars: &["XAI_API_KEY"],
        base_url_var: None,
        base_url: "https://api.x.ai/v1",
        oauth: false,
    },
    Provider {
        id: "xai-oauth",
        key_vars: &[],
        base_url_var: None,
        base_url: "https://api.x.ai/v1",
        oauth: true,
    },
    Provider {
        id: "nous",
        key_vars: &["NOUS_API_KEY"],
        base_url_var: None,
        base_url: "https://inference-api.nousresearch.com/v1",
        oauth: true,
    },
    Provider {
        id: "deepseek",
        key_vars: &["DEEPSEEK_API_KEY"],
        base_url_var: None,
        base_url: "https://api.deepseek.com/v1",
        oauth: false,
    },
    Provider {
        id: "mistral",
        key_vars: &["MISTRAL_API_KEY"],
        base_url_var: None,
        base_url: "https://api.mistral.ai/v1",
        oauth: false,
    },
    Provider {
        id: "groq",
        key_vars: &["GROQ_API_KEY"],
        base_url_var: None,
        base_url: "https://api.groq.com/openai/v1",
        oauth: false,
    },
    Provider {
        id: "zai",
        key_vars: &["ZAI_API_KEY", "GLM_API_KEY"],
        base_url_var: None,
        base_url: "https://api.z.ai/api/paas/v4",
        oauth: false,
    },
    Provider {
        id: "kimi-coding",
        key_vars: &["KIMI_API_KEY"],
        base_url_var: None,
        base_url: "https://api.moonshot.ai/v1",
        oauth: false,
    },
    Provider {
        id: "qwen-oauth",
        key_vars: &[],
        base_url_var: None,
        base_url: "https://portal.qwen.ai/v1",
        oauth: true,
    },
    Provider {
        id: "minimax-oauth",
        key_vars: &[],
        base_url_var: None,
        base_url: "https://api.minimax.io/v1",
        oauth: true,
    },
];

/// The provider with pool key `id`.
#[must_use]
pub fn provider(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

/// Seeding configuration: custom OpenAI-compatible endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedConfig {
    /// Custom endpoints.
    #[serde(default)]
    pub custom_providers: Vec<CustomProvider>,
    /// Logins another tool owns, read from its files by the host (Claude Code's
    /// `~/.claude/.credentials.json`, only when the provider is explicitly configured).
    #[serde(default)]
    pub borrowed_logins: Vec<BorrowedLogin>,
}

/// A login another tool owns and keeps fresh: only its access token and expiry are
/// borrowed, never its refresh token, so credpool never refreshes (never consumes) it; a
/// seed after the tool refreshed updates the entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BorrowedLogin {
    /// The pool (`anthropic` for Claude Code).
    pub pool: PoolKey,
    /// The source (`claude_code`).
    pub source: String,
    /// The access token.
    #[serde(deserialize_with = "crate::codec::de_secret_required")]
    pub access_token: Secret,
    /// When the access token expires (epoch ms).
    #[serde(default)]
    pub expires_at: Option<Millis>,
}

/// A custom endpoint and where its key is.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomProvider {
    /// Name (pool key `custom:<normalised name>`); derived from the URL when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// Endpoint.
    pub base_url: String,
    /// The key itself.
    #[serde(default, deserialize_with = "crate::codec::de_secret")]
    pub api_key: Option<Secret>,
    /// Or the env var holding the key.
    #[serde(default)]
    pub api_key_env: Option<String>,
}

/// What a seed did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SeedReport {
    /// Entries added.
    pub added: Vec<SeededEntry>,
    /// Entries whose secret changed.
    pub updated: Vec<SeededEntry>,
    /// Entries removed: later duplicates of a seeded source, and the anthropic OAuth
    /// entries an API key alone prunes. Left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<SeededEntry>,
    /// Offered sources skipped because they are suppressed. Left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub suppressed: Vec<SuppressedSource>,
}

/// A source seeding offered but skipped: the user removed its entry (`add` lifts it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuppressedSource {
    /// Pool.
    pub pool: PoolKey,
    /// Source (`env:<VAR>`, `config:<name>`, ...).
    pub source: String,
}

/// One seeded entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SeededEntry {
    /// Pool.
    pub pool: PoolKey,
    /// Entry.
    pub entry_id: EntryId,
    /// Source (`env:<VAR>` or `config:<name>`).
    pub source: String,
}

/// One credential the environment or config offers.
struct Offer {
    pool: PoolKey,
    source: String,
    label: String,
    secret: Secret,
    base_url: String,
    auth_type: AuthType,
    /// The access token's expiry (a borrowed login's).
    expires_at: Option<Millis>,
}

impl Registry {
    /// Adopts credentials from `env` and `config`. Never removes anything.
    pub fn seed(
        &mut self,
        now: Millis,
        env: &BTreeMap<String, String>,
        config: &SeedConfig,
    ) -> Result<SeedReport> {
        let now = self.clock(now);
        let mut report = SeedReport::default();
        self.prune_anthropic_oauth(now, env, &mut report)?;
        for offer in offers(env, config)? {
            self.adopt(now, offer, &mut report)?;
        }
        self.normalise_anthropic_priorities(now)?;
        Ok(report)
    }

    fn adopt(&mut self, now: Millis, offer: Offer, report: &mut SeedReport) -> Result<()> {
        let suppressed = self
            .pools
            .get(&offer.pool)
            .is_some_and(|pool| pool.suppressions.contains(&offer.source));
        if suppressed {
            report.suppressed.push(SuppressedSource {
                pool: offer.pool,
                source: offer.source,
            });
            return Ok(());
        }
        let fingerprint = offer.secret.fingerprint();
        let existing = self.collapse_duplicates(now, &offer, report)?;
        if let Some(id) = existing {
            let updated = self.pool_mut(&offer.pool)?.update_entry(&id, |entry| {
                if entry.token.fingerprint.as_ref() == Some(&fingerprint) {
                    entry.token.access.get_or_insert(offer.secret);
                    false
                } else {
                    entry.token.access = Some(offer.secret);
                    entry.token.fingerprint = Some(fingerprint);
                    entry.token.expires_at = offer.expires_at;
                    entry.token.generation = entry.token.generation.saturating_add(1);
                    entry.token.updated_at = now;
                    entry.status = crate::entry::StatusRecord {
                        at: now,
                        ..Default::default()
                    };
                    true
                }
            })?;
            if updated {
                self.mark_changed();
                report.updated.push(SeededEntry {
                    pool: offer.pool,
                    entry_id: id,
                    source: offer.source,
                });
            }
            return Ok(());
        }
        let duplicate = self
            .pools
            .get(&offer.pool)
            .is_some_and(|pool| !pool.with_fingerprint(&fingerprint).is_empty());
        if duplicate {
            return Ok(());
        }
        let new = NewEntry {
            label: Some(offer.label),
            auth_type: Some(offer.auth_type),
            source: Some(offer.source.clone()),
            access_token: Some(offer.secret),
            expires_at: offer.expires_at,
            base_url: Some(offer.base_url),
            ..NewEntry::default()
        };
        let id = self.insert_entry(now, &offer.pool, new)?;
        report.added.push(SeededEntry {
            pool: offer.pool,
            entry_id: id,
            source: offer.source,
        });
        Ok(())
    }

    /// The first entry (in priority order) of the offered source, after removing the later
    /// ones (Hermes' `_upsert_entry`: two rows of one source collapse to the first).
    fn collapse_duplicates(
        &mut self,
        now: Millis,
        offer: &Offer,
        report: &mut SeedReport,
    ) -> Result<Option<EntryId>> {
        let Some(pool) = self.pools.get(&offer.pool) else {
            return Ok(None);
        };
        let mut same_source = pool
            .entries()
            .into_iter()
            .filter(|e| e.meta.source == offer.source)
            .map(|e| e.id.clone());
        let first = same_source.next();
        let later: Vec<EntryId> = same_source.collect();
        for id in later {
            self.prune_entry(now, &offer.pool, &id)?;
            report.removed.push(SeededEntry {
                pool: offer.pool.clone(),
                entry_id: id,
                source: offer.source.clone(),
            });
        }
        Ok(first)
    }
}

/// The trimmed value of `var` in `env`, if it is set and not blank.
pub(crate) fn env_value<'a>(env: &'a BTreeMap<String, String>, var: &str) -> Option<&'a str> {
    env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty())
}

fn offers(env: &BTreeMap<String, String>, config: &SeedConfig) -> Result<Vec<Offer>> {
    let value = |var: &str| env_value(env, var);
    let mut list = Vec::new();
    for provider in PROVIDERS {
        let base_url = provider
            .base_url_var
            .and_then(value)
            .unwrap_or(provider.base_url);
        for var in provider.key_vars {
            let Some(secret) = value(var) else { continue };
            let oauth = provider.id == "anthropic" && secret.starts_with("sk-ant-oat");
            list.push(Offer {
                pool: PoolKey::parse(provider.id)?,
                source: format!("env:{var}"),
                label: (*var).to_owned(),
                secret: Secret::new(secret),
                base_url: base_url.trim_end_matches('/').to_owned(),
                auth_type: if oauth {
                    AuthType::Oauth
                } else {
                    AuthType::ApiKey
                },
                expires_at: None,
            });
        }
    }
    for custom in &config.custom_providers {
        let secret = custom.api_key.clone().or_else(|| {
            custom
                .api_key_env
                .as_deref()
                .and_then(value)
                .map(Secret::new)
        });
        let Some(secret) = secret else { continue };
        let pool = PoolKey::custom(custom.name.as_deref(), &custom.base_url)?;
        let name = custom
            .name
            .clone()
            .unwrap_or_else(|| pool.as_str().trim_start_matches("custom:").to_owned());
        list.push(Offer {
            pool,
            source: format!("config:{name}"),
            label: name,
            secret,
            base_url: custom.base_url.trim().trim_end_matches('/').to_owned(),
            auth_type: AuthType::ApiKey,
            expires_at: None,
        });
    }
    for login in &config.borrowed_logins {
        validate_name("source", &login.source)?;
        if login.pool.as_str() == "anthropic" && crate::seed_anthropic::api_key_only(env) {
            // The API-key path seeds no Anthropic login (Hermes §6.2).
            continue;
        }
        let Some(known) = provider(login.pool.as_str()) else {
            return Err(crate::error::Error::invalid_input(format!(
                "a borrowed login needs a known provider, not `{}`",
                login.pool.as_str()
            )));
        };
        let base_url = known.base_url;
        list.push(Offer {
            pool: login.pool.clone(),
            source: login.source.clone(),
            label: login.source.clone(),
            secret: login.access_token.clone(),
            base_url: base_url.to_owned(),
            auth_type: AuthType::Oauth,
            expires_at: login.expires_at,
        });
    }
    Ok(list)
}
