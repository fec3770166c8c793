//! The simulated provider: per-key RPM windows and daily quotas, revoked keys, 5xx bursts,
//! and an OAuth server with rotating single-use refresh tokens that counts replays.
//!
//! Answers are shaped like the real providers' so core's classifier does the work.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use credpool_core::{
    AuthType, Body, Headers, Millis, NewEntry, PoolKey, RefreshOutcome, Response, Secret,
};
use credpool_core::{DAY, MINUTE, SECOND};

use crate::scenario::{Flavor, HintStyle, KeySpec, Outage, Scenario};

/// What the provider did with one call.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The response the host reports.
    pub response: Response,
    /// The key the secret belongs to (`None`: unknown secret).
    pub key: Option<String>,
}

/// An OAuth grant: the current refresh token and every access token issued.
#[derive(Clone, Debug)]
struct Grant {
    ttl_ms: u64,
    generation: u64,
    refresh: String,
    spent: BTreeSet<String>,
    access: BTreeMap<String, Millis>,
    revoked: bool,
}

#[derive(Clone, Debug)]
struct KeyState {
    spec: KeySpec,
    pool: PoolKey,
    window: VecDeque<Millis>,
    day: u64,
    used: u32,
    grant: Option<Grant>,
}

#[derive(Clone, Debug)]
struct PoolState {
    flavor: Flavor,
    outages: Vec<Outage>,
}

/// The provider side of a run (fresh for every matrix row).
#[derive(Clone, Debug)]
pub struct Provider {
    start: Millis,
    keys: Vec<KeyState>,
    pools: BTreeMap<PoolKey, PoolState>,
    by_secret: BTreeMap<String, usize>,
    /// Refresh calls the OAuth server answered.
    pub refresh_calls: u64,
    /// Refresh tokens presented after they had been spent.
    pub replays: u64,
}

impl Provider {
    /// The provider of `scenario`, at its start.
    pub fn new(scenario: &Scenario) -> Self {
        let start = Millis(scenario.start_epoch_s.saturating_mul(SECOND));
        let mut provider = Self {
            start,
            keys: Vec::new(),
            pools: BTreeMap::new(),
            by_secret: BTreeMap::new(),
            refresh_calls: 0,
            replays: 0,
        };
        for pool in &scenario.pools {
            provider.pools.insert(
                pool.pool.clone(),
                PoolState {
                    flavor: pool.flavor,
                    outages: pool.outages.clone(),
                },
            );
            for spec in &pool.keys {
                let index = provider.keys.len();
                let grant = spec.oauth.as_ref().map(|oauth| {
                    let first = oauth.first_expiry_s.unwrap_or(oauth.token_ttl_s);
                    let access = format!("at-{}-0", spec.id);
                    let refresh = format!("rt-{}-0", spec.id);
                    provider.by_secret.insert(access.clone(), index);
                    provider.by_secret.insert(refresh.clone(), index);
                    Grant {
                        ttl_ms: oauth.token_ttl_s.saturating_mul(SECOND),
                        generation: 0,
                        refresh,
                        spent: BTreeSet::new(),
                        access: BTreeMap::from([(access, start.plus(first * SECOND))]),
                        revoked: false,
                    }
                });
                if grant.is_none() {
                    provider.by_secret.insert(api_key(spec), index);
                }
                provider.keys.push(KeyState {
                    spec: spec.clone(),
                    pool: pool.pool.clone(),
                    window: VecDeque::new(),
                    day: start.0 / DAY,
                    used: spec.used_today,
                    grant,
                });
            }
        }
        provider
    }

    /// The entries an agent starts with, per pool (the same for every agent).
    pub fn initial_entries(&self) -> Vec<(PoolKey, NewEntry)> {
        self.keys
            .iter()
            .enumerate()
            .map(|(priority, key)| {
                let mut entry = NewEntry {
                    id: Some(key.spec.id.clone()),
                    label: Some(key.spec.id.to_string()),
                    priority: Some(i64::try_from(priority).unwrap_or(0)),
                    ..NewEntry::default()
                };
                match &key.grant {
                    Some(grant) => {
                        let (access, expiry) = grant
                            .access
                            .iter()
                            .next()
                            .map(|(a, e)| (a.clone(), *e))
                            .unwrap_or_default();
                        entry.auth_type = Some(AuthType::Oauth);
                        entry.access_token = Some(Secret::new(access));
                        entry.refresh_token = Some(Secret::new(grant.refresh.clone()));
                        entry.expires_at = Some(expiry);
                    }
                    None => entry.access_token = Some(Secret::new(api_key(&key.spec))),
                }
                (key.pool.clone(), entry)
            })
            .collect()
    }

    /// One request sent with `secret` at `now` to `pool`.
    pub fn call(&mut self, now: Millis, pool: &PoolKey, secret: &str) -> Answer {
        let flavor = self.pools.get(pool).map_or(Flavor::Openai, |p| p.flavor);
        let Some(&index) = self.by_secret.get(secret) else {
            return answer(
                None,
                auth(401, "invalid_api_key", "Incorrect API key provided."),
            );
        };
        let start = self.start;
        let outage = self
            .pools
            .get(pool)
            .and_then(|p| {
                p.outages.iter().find(|o| {
                    now >= start.plus(o.from_s * SECOND) && now < start.plus(o.to_s * SECOND)
                })
            })
            .map(|o| o.status);
        let key = &mut self.keys[index];
        let id = Some(key.spec.id.to_string());
        if key
            .spec
            .revoked_at_s
            .is_some_and(|s| now >= start.plus(s * SECOND))
        {
            return answer(id, auth(401, "token_revoked", "Token revoked."));
        }
        if let Some(grant) = &key.grant {
            if grant.revoked {
                let text =
                    "Your authentication token has been invalidated. Please try signing in again.";
                return answer(id, auth(401, "token_invalidated", text));
            }
            if grant.access.get(secret).is_none_or(|expiry| now >= *expiry) {
                return answer(id, auth(401, "token_expired", "Access token expired."));
            }
        }
        if let Some(status) = outage {
            return answer(id, server_error(flavor, status));
        }
        let day = now.0 / DAY;
        if day != key.day {
            key.day = day;
            key.used = 0;
        }
        if key.spec.daily_quota.is_some_and(|quota| key.used >= quota) {
            let resets_at = (day + 1) * DAY;
            return answer(id, usage_limit(now, Millis(resets_at)));
        }
        while key.window.front().is_some_and(|t| t.plus(MINUTE) <= now) {
            key.window.pop_front();
        }
        if let Some(rpm) = key.spec.rpm
            && key.window.len() >= rpm as usize
        {
            let free_at = key.window.front().map_or(now, |t| t.plus(MINUTE));
            let seconds = now.until(free_at).div_ceil(SECOND).max(1);
            return answer(id, rate_limited(flavor, key.spec.hint, seconds));
        }
        key.window.push_back(now);
        key.used = key.used.saturating_add(1);
        answer(
            id,
            Response {
                status: Some(200),
                ..Response::default()
            },
        )
    }

    /// The OAuth token endpoint: exchanges a refresh token for a new pair.
    ///
    /// Refresh tokens are single-use: presenting a spent one is a replay, which revokes the
    /// whole grant (as real providers do), so every access token of it stops working.
    pub fn refresh(&mut self, now: Millis, refresh_token: Option<&str>) -> RefreshOutcome {
        self.refresh_calls += 1;
        let failed = |reason: &str, message: &str| RefreshOutcome::Failed {
            terminal: true,
            reason: Some(reason.to_owned()),
            message: Some(message.to_owned()),
        };
        let Some(token) = refresh_token else {
            return failed("invalid_request", "No refresh token.");
        };
        let Some(&index) = self.by_secret.get(token) else {
            return failed("invalid_grant", "Unknown refresh token.");
        };
        let key = &mut self.keys[index];
        let id = key.spec.id.to_string();
        let Some(grant) = key.grant.as_mut() else {
            return failed("invalid_grant", "Not an OAuth login.");
        };
        if grant.spent.contains(token) {
            self.replays += 1;
            grant.revoked = true;
            return failed(
                "refresh_token_reused",
                "Your refresh token has already been used to generate a new access token.",
            );
        }
        if grant.revoked || grant.refresh != token {
            return failed("invalid_grant", "The grant was revoked.");
        }
        grant.spent.insert(token.to_owned());
        grant.generation += 1;
        let access = format!("at-{id}-{}", grant.generation);
        let refresh = format!("rt-{id}-{}", grant.generation);
        let expires_at = now.plus(grant.ttl_ms);
        grant.access.insert(access.clone(), expires_at);
        grant.refresh.clone_from(&refresh);
        self.by_secret.insert(access.clone(), index);
        self.by_secret.insert(refresh.clone(), index);
        RefreshOutcome::Refreshed {
            access_token: Secret::new(access),
            refresh_token: Some(Secret::new(refresh)),
            expires_at: Some(expires_at),
        }
    }
}

fn api_key(spec: &KeySpec) -> String {
    format!("sk-sim-{}", spec.id)
}

fn answer(key: Option<String>, response: Response) -> Answer {
    Answer { response, key }
}

fn json_body(text: String) -> Option<Body> {
    Some(Body::Text(text))
}

fn auth(status: u16, code: &str, message: &str) -> Response {
    Response {
        status: Some(status),
        body: json_body(format!(
            r#"{{"error":{{"message":"{message}","type":"invalid_request_error","param":null,"code":"{code}"}}}}"#
        )),
        ..Response::default()
    }
}

fn server_error(flavor: Flavor, status: u16) -> Response {
    let (status, body) = match flavor {
        Flavor::Anthropic => (
            529,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        Flavor::Openai => (
            status,
            r#"{"error":{"message":"The server had an error while processing your request.","type":"server_error"}}"#,
        ),
    };
    Response {
        status: Some(status),
        body: json_body(body.to_owned()),
        ..Response::default()
    }
}

fn usage_limit(now: Millis, resets_at: Millis) -> Response {
    let at_s = resets_at.0 / SECOND;
    let in_s = now.until(resets_at).div_ceil(SECOND);
    Response {
        status: Some(429),
        body: json_body(format!(
            r#"{{"error":{{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_at":{at_s},"resets_in_seconds":{in_s}}}}}"#
        )),
        ..Response::default()
    }
}

fn rate_limited(flavor: Flavor, hint: HintStyle, seconds: u64) -> Response {
    let headers = match hint {
        HintStyle::RetryAfter => Headers::from_iter([("retry-after", seconds.to_string())]),
        HintStyle::XRatelimitReset => {
            Headers::from_iter([("x-ratelimit-reset", seconds.to_string())])
        }
        HintStyle::None => Headers::default(),
    };
    let body = match flavor {
        Flavor::Anthropic => {
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of requests has exceeded your rate limit."}}"#
        }
        Flavor::Openai => {
            r#"{"error":{"message":"Rate limit reached for requests per minute.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#
        }
    };
    Response {
        status: Some(429),
        headers,
        body: json_body(body.to_owned()),
        ..Response::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use credpool_core::{OutcomeClass, classify};

    fn scenario(keys: &str) -> Scenario {
        let text = format!(
            r#"{{"name":"t","start_epoch_s":1767311400,"agents":1,"requests":1,"rate_per_min":1,
               "pools":[{{"pool":"openai","weight":1,"keys":{keys}}}]}}"#
        );
        Scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn pool() -> PoolKey {
        PoolKey::parse("openai").unwrap_or_else(|e| panic!("{e}"))
    }

    const T0: u64 = 1_767_311_400_000;

    #[test]
    fn rpm_window_answers_429_with_the_hint_and_frees_up() {
        let mut p = Provider::new(&scenario(r#"[{"id":"a","rpm":2,"hint":"retry-after"}]"#));
        let key = pool();
        assert_eq!(
            p.call(Millis(T0), &key, "sk-sim-a").response.status,
            Some(200)
        );
        assert_eq!(
            p.call(Millis(T0 + 10_000), &key, "sk-sim-a")
                .response
                .status,
            Some(200)
        );
        let limited = p.call(Millis(T0 + 20_000), &key, "sk-sim-a").response;
        assert_eq!(limited.status, Some(429));
        assert_eq!(limited.headers.get("retry-after"), Some("40"));
        let c = classify(Millis(T0 + 20_000), &limited);
        assert_eq!(c.class, OutcomeClass::RateLimit);
        assert_eq!(c.hint.map(|h| h.at), Some(Millis(T0 + 60_000)));
        assert_eq!(
            p.call(Millis(T0 + 60_000), &key, "sk-sim-a")
                .response
                .status,
            Some(200)
        );
    }

    #[test]
    fn daily_quota_is_a_usage_limit_until_midnight() {
        let mut p = Provider::new(&scenario(r#"[{"id":"a","daily_quota":3,"used_today":2}]"#));
        let key = pool();
        assert_eq!(
            p.call(Millis(T0), &key, "sk-sim-a").response.status,
            Some(200)
        );
        let capped = p.call(Millis(T0 + 1), &key, "sk-sim-a").response;
        let c = classify(Millis(T0 + 1), &capped);
        assert_eq!(c.class, OutcomeClass::UsageLimit);
        let midnight = (T0 / DAY + 1) * DAY;
        assert_eq!(c.hint.map(|h| h.at), Some(Millis(midnight)));
        assert_eq!(
            p.call(Millis(midnight), &key, "sk-sim-a").response.status,
            Some(200)
        );
    }

    #[test]
    fn revoked_key_is_terminal_and_outage_is_a_server_error() {
        let mut p = Provider::new(&scenario(r#"[{"id":"a","revoked_at_s":10}]"#));
        let key = pool();
        let revoked = p.call(Millis(T0 + 10_000), &key, "sk-sim-a").response;
        assert_eq!(
            classify(Millis(T0), &revoked).class,
            OutcomeClass::AuthTerminal
        );
        let unknown = p.call(Millis(T0), &key, "sk-nope").response;
        assert_eq!(classify(Millis(T0), &unknown).class, OutcomeClass::Auth);
        assert_eq!(
            classify(Millis(T0), &server_error(Flavor::Anthropic, 503)).class,
            OutcomeClass::ServerError
        );
    }

    #[test]
    fn oauth_tokens_expire_refresh_rotates_and_replay_revokes_the_grant() {
        let mut p = Provider::new(&scenario(
            r#"[{"id":"o","oauth":{"token_ttl_s":60,"first_expiry_s":10}}]"#,
        ));
        let key = pool();
        assert_eq!(
            p.call(Millis(T0), &key, "at-o-0").response.status,
            Some(200)
        );
        let expired = p.call(Millis(T0 + 10_000), &key, "at-o-0").response;
        assert_eq!(classify(Millis(T0), &expired).class, OutcomeClass::Auth);
        let RefreshOutcome::Refreshed { access_token, .. } =
            p.refresh(Millis(T0 + 10_000), Some("rt-o-0"))
        else {
            panic!("refresh failed")
        };
        assert_eq!(access_token.expose(), "at-o-1");
        assert_eq!(
            p.call(Millis(T0 + 11_000), &key, "at-o-1").response.status,
            Some(200)
        );
        assert_eq!(p.replays, 0);
        let replay = p.refresh(Millis(T0 + 12_000), Some("rt-o-0"));
        assert!(matches!(
            replay,
            RefreshOutcome::Failed { terminal: true, .. }
        ));
        assert_eq!(p.replays, 1);
        let dead = p.call(Millis(T0 + 13_000), &key, "at-o-1").response;
        assert_eq!(
            classify(Millis(T0), &dead).class,
            OutcomeClass::AuthTerminal
        );
    }
}
