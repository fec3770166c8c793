//! Seeding: adopt credentials from an environment map and a config, purely.
//!
//! A process that lacks a variable never deletes the entry another process seeded;
//! entries are deduplicated by secret fingerprint.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::entry::{AuthType, EntryId};
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
        for offer in offers(env, config)? {
            self.adopt(now, offer, &mut report)?;
        }
        Ok(report)
    }

    fn adopt(&mut self, now: Millis, offer: Offer, report: &mut SeedReport) -> Result<()> {
        let fingerprint = offer.secret.fingerprint();
        let existing = self.pools.get(&offer.pool).and_then(|pool| {
            pool.entries()
                .into_iter()
                .find(|e| e.meta.source == offer.source)
                .map(|e| e.id.clone())
        });
        if let Some(id) = existing {
            let updated = self.pool_mut(&offer.pool)?.update_entry(&id, |entry| {
                if entry.token.fingerprint.as_ref() == Some(&fingerprint) {
                    entry.token.access.get_or_insert(offer.secret);
                    false
                } else {
                    entry.token.access = Some(offer.secret);
                    entry.token.fingerprint = Some(fingerprint);
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
            base_url: Some(offer.base_url),
            ..NewEntry::default()
        };
        let id = self.add_entry(now, &offer.pool, new)?;
        report.added.push(SeededEntry {
            pool: offer.pool,
            entry_id: id,
            source: offer.source,
        });
        Ok(())
    }
}

fn offers(env: &BTreeMap<String, String>, config: &SeedConfig) -> Result<Vec<Offer>> {
    let value = |var: &str| env.get(var).map(|v| v.trim()).filter(|v| !v.is_empty());
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
        });
    }
    Ok(list)
}
