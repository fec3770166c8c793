//! `credpool login <provider>` and `credpool refresh`.
//!
//! `login`: the device-code logins Hermes uses (RFC 8628 for xAI and
//! Nous, with PKCE for Qwen; OpenAI's own device flow for Codex; MiniMax's user-code grant
//! with PKCE), and the browser logins of [`crate::pkce`]. The user opens a URL and types a code; this
//! polls the token endpoint until the login is approved, then adds an OAuth entry (source
//! `manual:device_code`) that core's built-in refresher keeps fresh.
//!
//! Endpoints and client ids are the providers' (the facts Hermes ships); `--issuer`
//! replaces the authorization server (a self-hosted portal, or a test's mock), and the
//! entry then records its token endpoint (`extra.token_url`) so refreshes go there too.

use std::time::{Duration, Instant};

use credpool_core::{
    AuthType, Decision, Input, Millis, NewEntry, PoolKey, Reason, Reply, Secret, jwt_claims,
};
use serde_json::{Map, Value, json};

use crate::exit::{CliError, CliResult};
use crate::manage::{Ctx, apply, pool_key, pool_status};
use crate::output::{print_json, shown};
use crate::pkce::Pkce;
use crate::target::resolve_target;

/// `credpool login` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct LoginArgs {
    /// Provider: `anthropic`, `openrouter` (browser logins), `openai-codex`, `xai-oauth`,
    /// `nous`, `qwen-oauth`, `minimax-oauth` (device-code logins; `openai-codex --browser`
    /// for Codex's browser login).
    provider: String,
    /// Label (default: the token's email claim, else `<provider>-oauth-<n>`).
    #[arg(long)]
    label: Option<String>,
    /// The authorization server to use instead of the provider's (its endpoints sit at
    /// the provider's paths under it).
    #[arg(long)]
    issuer: Option<String>,
    /// openai-codex: the browser (loopback PKCE) login instead of the device code.
    #[arg(long)]
    browser: bool,
    /// The loopback port of a Codex browser login (Codex's own: 1455).
    #[arg(long, default_value_t = 1455)]
    port: u16,
}

/// One provider's device-code login.
struct Flow {
    provider: &'static str,
    issuer: &'static str,
    client_id: &'static str,
    kind: Kind,
    /// Where the entry's requests go (the inference endpoint).
    base_url: &'static str,
}

enum Kind {
    /// RFC 8628: form requests, `authorization_pending` / `slow_down`; with `pkce`, a
    /// S256 challenge on the device request and its verifier on the polls (Qwen).
    Rfc8628 {
        device_path: &'static str,
        token_path: &'static str,
        scope: &'static str,
        pkce: bool,
    },
    /// MiniMax's user-code grant with PKCE: `status` `pending` / `success` / `error`.
    MiniMax,
    /// OpenAI's device flow: a user code, polled until 200, then a code exchange.
    Codex,
}

const FLOWS: &[Flow] = &[
    Flow {
        provider: "xai-oauth",
        issuer: "https://auth.x.ai",
        client_id: "b1a00492-073a-47ea-816f-4c329264a828",
        kind: Kind::Rfc8628 {
            device_path: "/oauth2/device/code",
            token_path: "/oauth2/token",
            scope: "openid profile email offline_access grok-cli:access api:access",
            pkce: false,
        },
        base_url: "https://api.x.ai/v1",
    },
    Flow {
        provider: "nous",
        issuer: "https://portal.nousresearch.com",
        client_id: "hermes-cli",
        kind: Kind::Rfc8628 {
            device_path: "/api/oauth/device/code",
            token_path: "/api/oauth/token",
            scope: "inference:invoke",
            pkce: false,
        },
        base_url: "https://inference-api.nousresearch.com/v1",
    },
    Flow {
        provider: "openai-codex",
        issuer: "https://auth.openai.com",
        client_id: "app_EMoamEEZ73f0CkXaXp7hrann",
        kind: Kind::Codex,
        base_url: "https://chatgpt.com/backend-api/codex",
    },
    Flow {
        provider: "qwen-oauth",
        issuer: "https://chat.qwen.ai",
        client_id: "f0304373b74a44d2b584a3fb70ca9e56",
        kind: Kind::Rfc8628 {
            device_path: "/api/v1/oauth2/device/code",
            token_path: "/api/v1/oauth2/token",
            scope: "openid profile email model.completion",
            pkce: true,
        },
        base_url: "https://portal.qwen.ai/v1",
    },
    Flow {
        provider: "minimax-oauth",
        issuer: "https://api.minimax.io",
        client_id: "78257093-7e40-4613-99e0-527b14b39113",
        kind: Kind::MiniMax,
        base_url: "https://api.minimax.io/v1",
    },
];

/// How long a login may wait for the user (Hermes: 15 min).
const LOGIN_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Longest wait for one HTTP answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The tokens a completed login issued.
pub(crate) struct Tokens {
    /// Access token (or the minted API key).
    pub(crate) access: String,
    /// Refresh token.
    pub(crate) refresh: Option<String>,
    /// Seconds until the access token expires.
    pub(crate) expires_in: Option<u64>,
}

impl LoginArgs {
    /// A login of `provider` with the default flow, labelled `label` (blank: from the login).
    pub(crate) fn new(provider: &str, label: String) -> Self {
        Self {
            provider: provider.to_owned(),
            label: Some(label).filter(|l| !l.trim().is_empty()),
            issuer: None,
            browser: false,
            port: 1455,
        }
    }
}

/// Whether `credpool login` has a flow for `provider`.
pub(crate) fn has_flow(provider: &str) -> bool {
    matches!(provider, "anthropic" | "openrouter") || FLOWS.iter().any(|f| f.provider == provider)
}

/// What a login obtained, to store as an entry.
pub(crate) struct Obtained {
    /// The pool.
    pub(crate) provider: &'static str,
    /// The tokens (an API key in `access` when `oauth` is false).
    pub(crate) tokens: Tokens,
    /// An OAuth login (else the flow minted an API key).
    pub(crate) oauth: bool,
    /// The entry's source (`manual:<flow>`).
    pub(crate) source: &'static str,
    /// The entry's endpoint.
    pub(crate) base_url: &'static str,
    /// The token endpoint to record (an `--issuer` login).
    pub(crate) token_url: Option<String>,
}

/// `credpool login <provider>`.
pub(crate) fn login(ctx: &Ctx, args: &LoginArgs) -> CliResult<()> {
    let agent = ureq::AgentBuilder::new()
        .timeout(HTTP_TIMEOUT)
        .redirects(0)
        .build();
    let issuer = args.issuer.as_deref().map(|i| i.trim_end_matches('/'));
    let obtained = match args.provider.as_str() {
        "anthropic" => crate::pkce::anthropic(&agent, issuer)?,
        "openrouter" => crate::pkce::openrouter(&agent, issuer)?,
        "openai-codex" if args.browser => crate::pkce::codex(&agent, issuer, args.port)?,
        provider => device(&agent, provider, issuer)?,
    };
    save(ctx, obtained, args.label.clone())
}

/// A device-code login of `provider`.
fn device(agent: &ureq::Agent, provider: &str, issuer: Option<&str>) -> CliResult<Obtained> {
    let flow = FLOWS
        .iter()
        .find(|f| f.provider == provider)
        .ok_or_else(|| {
            let known: Vec<&str> = FLOWS.iter().map(|f| f.provider).collect();
            CliError::usage(
                "invalid_input",
                format!(
                    "no login flow for `{provider}` (browser logins: anthropic, openrouter, \
                 openai-codex --browser; device-code logins: {}); add an API key with \
                 `credpool add`",
                    known.join(", ")
                ),
            )
        })?;
    let base = issuer.unwrap_or(flow.issuer);
    // xAI publishes its token endpoint by OpenID discovery (Hermes reads it there too).
    let discovered = match flow.provider {
        "xai-oauth" => Some(discover_token_endpoint(agent, base, issuer.is_none())?),
        _ => None,
    };
    let (tokens, token_url) = match &flow.kind {
        Kind::Rfc8628 {
            device_path,
            token_path,
            scope,
            pkce,
        } => {
            let token_url = discovered
                .clone()
                .unwrap_or_else(|| format!("{base}{token_path}"));
            let device_url = format!("{base}{device_path}");
            let pkce = pkce.then(Pkce::new).transpose()?;
            let tokens = rfc8628(agent, flow, &device_url, &token_url, scope, pkce.as_ref())?;
            (tokens, token_url)
        }
        Kind::MiniMax => {
            let token_url = format!("{base}/oauth/token");
            (minimax(agent, flow, base, &token_url)?, token_url)
        }
        Kind::Codex => {
            let token_url = format!("{base}/oauth/token");
            (codex(agent, flow, base, &token_url)?, token_url)
        }
    };
    Ok(Obtained {
        provider: flow.provider,
        tokens,
        oauth: true,
        source: "manual:device_code",
        base_url: flow.base_url,
        token_url: (issuer.is_some() || discovered.is_some()).then_some(token_url),
    })
}

/// The `token_endpoint` of `issuer`'s OpenID configuration; with `strict` (the provider's
/// own issuer) it must be https on `x.ai` or a subdomain.
fn discover_token_endpoint(agent: &ureq::Agent, issuer: &str, strict: bool) -> CliResult<String> {
    let url = format!("{issuer}/.well-known/openid-configuration");
    let answer = agent.get(&url).set("accept", "application/json").call();
    let (status, doc) = answer_of(&url, answer)?;
    let endpoint = doc
        .get("token_endpoint")
        .and_then(Value::as_str)
        .unwrap_or("");
    let host = endpoint
        .strip_prefix("https://")
        .and_then(|rest| rest.split(['/', ':']).next())
        .unwrap_or("");
    let trusted = host == "x.ai" || host.ends_with(".x.ai");
    if !(200..300).contains(&status) || endpoint.is_empty() || (strict && !trusted) {
        return Err(login_failed(&format!(
            "the OpenID configuration of {issuer} names no usable token endpoint"
        )));
    }
    Ok(endpoint.to_owned())
}

/// Adds what a login obtained to the store and says so.
fn save(ctx: &Ctx, obtained: Obtained, label: Option<String>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = PoolKey::parse(obtained.provider)?;
    let tokens = obtained.tokens;
    if obtained.oauth {
        warn_same_account(&store, &key, &tokens.access);
    }
    let mut extra = Map::new();
    if let Some(url) = obtained.token_url {
        extra.insert("token_url".to_owned(), Value::String(url));
    }
    let now = credpool_store::now();
    let label = label
        .or_else(|| identity(&tokens.access))
        .unwrap_or_else(|| fallback_label(&store, &key, obtained.oauth));
    let entry = NewEntry {
        label: Some(label),
        auth_type: Some(if obtained.oauth {
            AuthType::Oauth
        } else {
            AuthType::ApiKey
        }),
        source: Some(obtained.source.to_owned()),
        access_token: Some(Secret::new(tokens.access)),
        refresh_token: tokens.refresh.map(Secret::new),
        expires_at: tokens
            .expires_in
            .map(|s| Millis(now.0.saturating_add(s.saturating_mul(1_000)))),
        base_url: Some(obtained.base_url.to_owned()),
        extra,
        ..NewEntry::default()
    };
    let Reply::EntryAdded { entry_id } = apply(
        &mut store,
        Input::AddEntry {
            pool: key.clone(),
            entry,
        },
    )?
    else {
        return Err(CliError::runtime(
            "internal",
            "add_entry answered something else",
        ));
    };
    let status = pool_status(&mut store, &key)?;
    let added = status.entries.iter().find(|e| e.id == entry_id);
    let label = added.map_or("", |e| e.label.as_str());
    if ctx.json {
        print_json(&json!({ "pool": key, "entry_id": entry_id, "label": label }));
    } else {
        let label = shown(label);
        println!("Logged in: added {key} credential \"{label}\" (id {entry_id})");
    }
    Ok(())
}

/// RFC 8628: the device authorization request, then polls until approved.
fn rfc8628(
    agent: &ureq::Agent,
    flow: &Flow,
    device_url: &str,
    token_url: &str,
    scope: &str,
    pkce: Option<&Pkce>,
) -> CliResult<Tokens> {
    let mut fields = vec![("client_id", flow.client_id), ("scope", scope)];
    if let Some(pkce) = pkce {
        fields.extend([
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
    }
    let (_, device) = post_form(agent, device_url, &fields)?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(device_code), Some(user_code)) =
        (text(&device, "device_code"), text(&device, "user_code"))
    else {
        return Err(login_failed(
            "the device authorization answer has no device_code or user_code",
        ));
    };
    let visit = text(&device, "verification_uri_complete")
        .or_else(|| text(&device, "verification_uri"))
        .unwrap_or_default();
    show(&visit, &user_code);
    let interval = device
        .get("interval")
        .and_then(Value::as_u64)
        .unwrap_or(5)
        .max(1);
    let expires = device
        .get("expires_in")
        .and_then(Value::as_u64)
        .map_or(LOGIN_TIMEOUT, Duration::from_secs)
        .min(LOGIN_TIMEOUT);
    poll(Duration::from_secs(interval), expires, || {
        let mut fields = vec![
            ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
            ("client_id", flow.client_id),
            ("device_code", device_code.as_str()),
        ];
        if let Some(pkce) = pkce {
            fields.push(("code_verifier", pkce.verifier.as_str()));
        }
        let (status, answer) = post_form(agent, token_url, &fields)?;
        if (200..300).contains(&status) {
            return tokens_of(&answer).map(Poll::Done);
        }
        match answer.get("error").and_then(Value::as_str) {
            Some("authorization_pending") => Ok(Poll::Pending),
            Some("slow_down") => Ok(Poll::SlowDown),
            Some(code) => {
                let why = text(&answer, "error_description").unwrap_or_default();
                Err(login_failed(&format!(
                    "the provider refused the login: {code} {why}"
                )))
            }
            None => Err(login_failed(&format!(
                "the token endpoint answered {status}"
            ))),
        }
    })
}

/// What one poll of a login found.
enum Poll<T> {
    /// Approved: the result.
    Done(T),
    /// Not yet.
    Pending,
    /// Not yet, and poll less often (one second more, 30 s at most).
    SlowDown,
}

/// Polls `attempt` every `interval` until it is done, for `expires` at most.
fn poll<T>(
    mut interval: Duration,
    expires: Duration,
    mut attempt: impl FnMut() -> CliResult<Poll<T>>,
) -> CliResult<T> {
    let deadline = Instant::now() + expires;
    loop {
        std::thread::sleep(interval);
        match attempt()? {
            Poll::Done(value) => return Ok(value),
            Poll::Pending => {}
            Poll::SlowDown => {
                interval = (interval + Duration::from_secs(1)).min(Duration::from_secs(30));
            }
        }
        if Instant::now() >= deadline {
            return Err(login_failed(
                "the code expired before the login was approved",
            ));
        }
    }
}

/// MiniMax's user-code grant: a code request with a PKCE challenge and a state, then polls
/// with the verifier until `status` is `success`.
fn minimax(agent: &ureq::Agent, flow: &Flow, issuer: &str, token_url: &str) -> CliResult<Tokens> {
    let pkce = Pkce::new()?;
    let state = crate::pkce::nonce()?;
    let fields = [
        ("response_type", "code"),
        ("client_id", flow.client_id),
        ("scope", "group_id profile model.completion"),
        ("code_challenge", pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", state.as_str()),
    ];
    let (_, start) = post_form(agent, &format!("{issuer}/oauth/code"), &fields)?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    if text(&start, "state").as_deref() != Some(state.as_str()) {
        return Err(login_failed(
            "the code answer belongs to another login (state mismatch)",
        ));
    }
    let (Some(user_code), Some(visit)) =
        (text(&start, "user_code"), text(&start, "verification_uri"))
    else {
        return Err(login_failed(
            "the code answer has no user_code or verification_uri",
        ));
    };
    show(&visit, &user_code);
    let interval_ms = start
        .get("interval")
        .and_then(Value::as_u64)
        .unwrap_or(2_000)
        .max(2_000);
    poll(Duration::from_millis(interval_ms), LOGIN_TIMEOUT, || {
        let fields = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:user_code"),
            ("client_id", flow.client_id),
            ("user_code", user_code.as_str()),
            ("code_verifier", pkce.verifier.as_str()),
        ];
        let (status, answer) = post_form(agent, token_url, &fields)?;
        if !(200..300).contains(&status) {
            return Err(login_failed(&format!(
                "the token endpoint answered {status}"
            )));
        }
        match answer.get("status").and_then(Value::as_str) {
            Some("success") => {
                let mut tokens = tokens_of(&answer)?;
                tokens.expires_in = answer.get("expired_in").and_then(Value::as_u64).map(|v| {
                    // Epoch ms when larger than half of now, else seconds (as core reads it).
                    let now_ms = credpool_store::now().0;
                    if v > now_ms / 2 {
                        v.saturating_sub(now_ms) / 1_000
                    } else {
                        v
                    }
                });
                Ok(Poll::Done(tokens))
            }
            Some("pending") => Ok(Poll::Pending),
            _ => Err(login_failed("the provider refused the login")),
        }
    })
}

/// OpenAI's device flow: a user code, polled until approved, then the code exchange.
fn codex(agent: &ureq::Agent, flow: &Flow, issuer: &str, token_url: &str) -> CliResult<Tokens> {
    let (_, start) = post_json(
        agent,
        &format!("{issuer}/api/accounts/deviceauth/usercode"),
        &json!({ "client_id": flow.client_id }),
    )?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(user_code), Some(device_auth_id)) =
        (text(&start, "user_code"), text(&start, "device_auth_id"))
    else {
        return Err(login_failed(
            "the device code answer has no user_code or device_auth_id",
        ));
    };
    show(&format!("{issuer}/codex/device"), &user_code);
    let interval = start
        .get("interval")
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(5)
        .max(3);
    let approved = poll(Duration::from_secs(interval), LOGIN_TIMEOUT, || {
        let body = json!({ "device_auth_id": device_auth_id, "user_code": user_code });
        let (status, answer) = post_json(
            agent,
            &format!("{issuer}/api/accounts/deviceauth/token"),
            &body,
        )?;
        match status {
            200..=299 => Ok(Poll::Done(answer)),
            403 | 404 => Ok(Poll::Pending),
            other => Err(login_failed(&format!(
                "the device token endpoint answered {other}"
            ))),
        }
    })?;
    let (Some(code), Some(verifier)) = (
        text(&approved, "authorization_code"),
        text(&approved, "code_verifier"),
    ) else {
        return Err(login_failed(
            "the approval has no authorization_code or code_verifier",
        ));
    };
    let redirect = format!("{issuer}/deviceauth/callback");
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", flow.client_id),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, answer) = post_form(agent, token_url, &fields)?;
    if !(200..300).contains(&status) {
        return Err(login_failed(&format!(
            "the code exchange answered {status}"
        )));
    }
    tokens_of(&answer)
}

pub(crate) fn tokens_of(answer: &Value) -> CliResult<Tokens> {
    let text = |k: &str| {
        answer
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let access =
        text("access_token").ok_or_else(|| login_failed("the token answer has no access_token"))?;
    Ok(Tokens {
        access: access.to_owned(),
        refresh: text("refresh_token").map(str::to_owned),
        expires_in: answer.get("expires_in").and_then(Value::as_u64),
    })
}

/// Tells the user where to go and what to type (stderr: stdout stays for `--json`).
pub(crate) fn show(url: &str, code: &str) {
    eprintln!("Open {url} and enter the code {code}");
    eprintln!("Waiting for the login to be approved...");
}

/// A label from the token's identity claims (`email`, `preferred_username`, `upn`).
pub(crate) fn identity(access: &str) -> Option<String> {
    let claims = jwt_claims(access)?;
    ["email", "preferred_username", "upn"]
        .iter()
        .find_map(|k| claims.get(*k)?.as_str().filter(|s| !s.is_empty()))
        .map(str::to_owned)
}

/// `<provider>-oauth-<n>` (`api-key-<n>` for a minted key), n one past the pool's entries.
fn fallback_label(store: &credpool_store::Store, key: &PoolKey, oauth: bool) -> String {
    let n = store
        .registry()
        .pool(key)
        .map_or(0, |pool| pool.entries().len());
    if oauth {
        format!("{key}-oauth-{}", n + 1)
    } else {
        format!("api-key-{}", n + 1)
    }
}

/// Warns when the login's account (Codex: `chatgpt_account_id` and `sub`) is already in
/// the pool: two logins of one account share one token family (Hermes #47096).
fn warn_same_account(store: &credpool_store::Store, key: &PoolKey, access: &str) {
    let account = |token: &str| {
        let claims = jwt_claims(token)?;
        let auth = claims.get("https://api.openai.com/auth")?;
        let id = auth.get("chatgpt_account_id")?.as_str()?.to_owned();
        Some((id, claims.get("sub")?.as_str()?.to_owned()))
    };
    let Some(mine) = account(access) else { return };
    let Ok(pool) = store.registry().pool(key) else {
        return;
    };
    let same = pool.entries().iter().any(|e| {
        e.token
            .access
            .as_ref()
            .and_then(|t| account(t.expose()))
            .is_some_and(|theirs| theirs == mine)
    });
    if same {
        eprintln!(
            "warning: this {key} account is already logged in here; both logins share one \
             token family, and refreshing one may end the other"
        );
    }
}

pub(crate) fn post_form(
    agent: &ureq::Agent,
    url: &str,
    fields: &[(&str, &str)],
) -> CliResult<(u16, Value)> {
    answer_of(
        url,
        agent
            .post(url)
            .set("accept", "application/json")
            .send_form(fields),
    )
}

pub(crate) fn post_json(agent: &ureq::Agent, url: &str, body: &Value) -> CliResult<(u16, Value)> {
    let request = agent
        .post(url)
        .set("accept", "application/json")
        .set("content-type", "application/json");
    answer_of(url, request.send_string(&body.to_string()))
}

/// The status and JSON body of an answer (non-JSON: null); a transport failure is an
/// `io` error naming the URL only.
fn answer_of(url: &str, result: Result<ureq::Response, ureq::Error>) -> CliResult<(u16, Value)> {
    let response = match result {
        Ok(response) | Err(ureq::Error::Status(_, response)) => response,
        Err(ureq::Error::Transport(e)) => {
            let why = format!("could not reach {url}: {}", e.kind());
            return Err(CliError::runtime(
                credpool_core::ErrorCode::Io.as_str(),
                why,
            ));
        }
    };
    let status = response.status();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(
        &mut std::io::Read::take(response.into_reader(), 64 * 1024),
        &mut text,
    );
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub(crate) fn login_failed(why: &str) -> CliError {
    CliError::runtime("login_failed", why)
}

/// `credpool refresh <provider> [target]`: refreshes now, with the built-in refresher and
/// single-flight with every other process, one OAuth entry or all of the pool's. A token
/// another process rotated meanwhile is adopted, never refreshed twice.
pub(crate) fn refresh(ctx: &Ctx, provider: &str, target: Option<&str>) -> CliResult<()> {
    let mut store = ctx.open()?;
    let key = pool_key(&store, provider, false)?;
    let status = pool_status(&mut store, &key)?;
    let entries: Vec<_> = match target {
        Some(target) => vec![resolve_target(&key, &status.entries, target)?.clone()],
        None => status
            .entries
            .into_iter()
            .filter(|e| e.auth_type == AuthType::Oauth)
            .collect(),
    };
    if entries.is_empty() {
        return Err(CliError::usage(
            "not_refreshable",
            format!("{key} has no OAuth entry to refresh"),
        ));
    }
    let mut report = Vec::new();
    let mut failed = None;
    for entry in entries {
        let generation = store
            .registry()
            .pool(&key)?
            .entry(&entry.id)?
            .token
            .generation;
        let decision =
            store.refresh_built_in(credpool_store::now, &key, &entry.id, generation, None)?;
        let outcome = match &decision {
            Decision::Use {
                reason: Some(Reason::Refreshed),
                ..
            } => "refreshed",
            Decision::Use {
                reason: Some(Reason::Adopted),
                ..
            } => "adopted",
            _ => "failed",
        };
        if let Decision::Use { lease_id, .. } = decision {
            apply(
                &mut store,
                Input::Release {
                    pool: key.clone(),
                    lease_id,
                },
            )?;
        }
        let after = pool_status(&mut store, &key)?;
        let line = after.entries.iter().find(|e| e.id == entry.id);
        let text = line.map_or(String::new(), |e| e.text.clone());
        if outcome == "failed" {
            failed.get_or_insert_with(|| format!("{} ({text})", entry.label));
        }
        if !ctx.json {
            let (index, label, id) = (entry.index, shown(&entry.label), shown(entry.id.as_str()));
            let text = shown(&text);
            println!("{outcome:>9} {key} #{index} \"{label}\" (id {id}): {text}");
        }
        report.push(json!({ "entry_id": entry.id, "label": entry.label, "outcome": outcome, "status": text }));
    }
    if ctx.json {
        print_json(&json!({ "pool": key, "refreshed": report }));
    }
    match failed {
        Some(which) => Err(CliError::runtime(
            "refresh_failed",
            format!("the refresh of {which} failed"),
        )),
        None => Ok(()),
    }
}
