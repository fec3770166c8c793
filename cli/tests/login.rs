//! `credpool login` against a mock authorization server on 127.0.0.1, driven through a
//! real pty: the CLI shows the code, the test plays the user's browser (an HTTP client
//! that follows the verification URL), the CLI's polls see `authorization_pending` and
//! `slow_down` first, then the tokens; the entry lands with its label from the token.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use rexpect::session::{PtySession, spawn_command};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_credpool");

/// What the mock saw and decided.
#[derive(Default)]
struct Seen {
    approved: bool,
    slowed: bool,
    polls: Vec<BTreeMap<String, String>>,
    exchanges: Vec<BTreeMap<String, String>>,
    refused: bool,
    /// Refresh tokens spent, and the ones presented again (replays).
    spent: Vec<String>,
    replays: Vec<String>,
    /// The PKCE challenge and state of the last authorize request.
    challenge: String,
    state: String,
    /// Code exchanges whose verifier matched the challenge.
    verified: usize,
}

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn decode(text: &str) -> String {
    let mut out = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            out.push(
                u8::from_str_radix(std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap(), 16).unwrap(),
            );
            i += 3;
        } else {
            out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn query_of(target: &str) -> BTreeMap<String, String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

/// Whether `verifier` is the S256 verifier of `challenge`.
fn pkce_ok(verifier: &str, challenge: &str) -> bool {
    use sha2::Digest;
    b64url(&sha2::Sha256::digest(verifier.as_bytes())) == challenge
}

/// The user's browser: GETs `url`; the status, `location` header and body.
fn browse(url: &str) -> (u16, Option<String>, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest
        .split_once('/')
        .map_or_else(|| (rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let host = host.replace("localhost", "127.0.0.1");
    let mut stream = TcpStream::connect(&host).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap();
    let location = head
        .lines()
        .find_map(|l| {
            l.split_once(':')
                .filter(|(k, _)| k.eq_ignore_ascii_case("location"))
        })
        .map(|(_, v)| v.trim().to_owned());
    (status, location, body.to_owned())
}

/// A JWT (unsigned: the CLI only reads claims) carrying `claims`.
fn jwt(claims: &Value) -> String {
    format!(
        "{}.{}.sig",
        b64url(br#"{"alg":"none"}"#),
        b64url(claims.to_string().as_bytes())
    )
}

struct Mock {
    base: String,
    seen: Arc<Mutex<Seen>>,
}

impl Mock {
    /// Serves the device flows of Nous / xAI (RFC 8628) and Codex at one address.
    fn start(deny: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let (state, url) = (Arc::clone(&seen), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(stream, &url, &state, deny);
            }
        });
        Self { base, seen }
    }

    /// The user's browser: opens the verification URL, which approves the login.
    fn approve(&self, url: &str) {
        let path = url.strip_prefix(&self.base).expect("the URL is the mock's");
        let mut stream = TcpStream::connect(self.base.trim_start_matches("http://")).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
}

fn serve(stream: TcpStream, base: &str, seen: &Mutex<Seen>, deny: bool) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let (method, path) = {
        let mut parts = line.split_whitespace();
        (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        )
    };
    let mut length = 0;
    let mut nous_token = None;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).unwrap();
        if header.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = header.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            } else if k.eq_ignore_ascii_case("x-nous-refresh-token") {
                nous_token = Some(v.trim().to_owned());
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    let fields: BTreeMap<String, String> = if body.starts_with('{') {
        serde_json::from_str::<BTreeMap<String, Value>>(&body)
            .unwrap()
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
            .collect()
    } else {
        body.split('&')
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.replace("%3A", ":").replace("%2F", "/")))
            .collect()
    };
    let mut s = seen.lock().unwrap();
    let tokens = |email: &str| {
        let claims = json!({"email": email, "sub": "user-1", "exp": 4_000_000_000_u64,
            "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}});
        json!({"access_token": jwt(&claims), "refresh_token": "rt-login", "expires_in": 3600})
    };
    let route = path.split('?').next().unwrap_or("").to_owned();
    let query = query_of(&path);
    let (status, answer) = match (method.as_str(), route.as_str()) {
        ("GET", "/oauth/authorize" | "/auth") => {
            s.challenge = query.get("code_challenge").cloned().unwrap_or_default();
            s.state = query.get("state").cloned().unwrap_or_default();
            assert_eq!(
                query.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            let back = query
                .get("redirect_uri")
                .or_else(|| query.get("callback_url"))
                .cloned()
                .unwrap_or_default();
            drop(s);
            let mut stream = stream;
            if query.contains_key("code") {
                // Anthropic's manual flow: the page shows code#state to paste.
                let page = format!("code-A#{}", query["state"]);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                    page.len()
                );
            } else {
                let state = query
                    .get("state")
                    .map(|s| format!("&state={s}"))
                    .unwrap_or_default();
                let _ = write!(
                    stream,
                    "HTTP/1.1 302 Found\r\nlocation: {back}?code=code-L{state}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                );
            }
            return;
        }
        ("GET", "/.well-known/openid-configuration") => (
            200,
            json!({
            "issuer": base, "authorization_endpoint": format!("{base}/oauth2/auth"),
            "token_endpoint": format!("{base}/oauth2/token")}),
        ),
        ("POST", "/api/v1/oauth2/device/code") => {
            assert_eq!(
                fields.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            s.challenge = fields["code_challenge"].clone();
            (
                200,
                json!({"device_code": "dc-q", "user_code": "QWEN-1",
                "verification_uri": format!("{base}/device"),
                "verification_uri_complete": format!("{base}/device?user_code=QWEN-1"),
                "expires_in": 600, "interval": 1}),
            )
        }
        ("POST", "/api/v1/oauth2/token") => {
            s.polls.push(fields.clone());
            if !s.approved {
                (400, json!({"error": "authorization_pending"}))
            } else if pkce_ok(&fields["code_verifier"], &s.challenge)
                && fields["device_code"] == "dc-q"
            {
                s.verified += 1;
                (
                    200,
                    json!({"access_token": "at-qwen", "refresh_token": "rt-qwen", "expires_in": 21600, "resource_url": "portal.qwen.ai"}),
                )
            } else {
                (400, json!({"error": "invalid_grant"}))
            }
        }
        ("POST", "/oauth/code") => {
            assert_eq!(
                fields.get("code_challenge_method").map(String::as_str),
                Some("S256")
            );
            s.challenge = fields["code_challenge"].clone();
            (
                200,
                json!({"user_code": "MM-1", "verification_uri": format!("{base}/device"),
                "expired_in": 600_000, "interval": 2000, "state": fields["state"]}),
            )
        }
        ("POST", "/oauth/token")
            if fields.get("grant_type").map(String::as_str)
                == Some("urn:ietf:params:oauth:grant-type:user_code") =>
        {
            s.polls.push(fields.clone());
            if !s.approved {
                (200, json!({"status": "pending"}))
            } else if pkce_ok(&fields["code_verifier"], &s.challenge)
                && fields["user_code"] == "MM-1"
            {
                s.verified += 1;
                (
                    200,
                    json!({"status": "success", "access_token": "at-mm", "refresh_token": "rt-mm", "expired_in": 3600}),
                )
            } else {
                (200, json!({"status": "error"}))
            }
        }
        ("POST", "/v1/oauth/token") => {
            let ok = fields.get("code").map(String::as_str) == Some("code-A")
                && fields.get("state") == Some(&s.state)
                && pkce_ok(&fields["code_verifier"], &s.challenge)
                && fields.get("client_id").map(String::as_str)
                    == Some("9d1c250a-e61b-44d9-88ed-5944d1962f5e");
            if ok {
                s.verified += 1;
                (
                    200,
                    json!({"access_token": "sk-ant-oat01-minted", "refresh_token": "sk-ant-ort01-minted", "expires_in": 28800}),
                )
            } else {
                (400, json!({"error": "invalid_grant"}))
            }
        }
        ("POST", "/api/v1/auth/keys") => {
            if fields.get("code").map(String::as_str) == Some("code-L")
                && pkce_ok(&fields["code_verifier"], &s.challenge)
            {
                s.verified += 1;
                (200, json!({"key": "sk-or-v1-minted", "user_id": "u"}))
            } else {
                (403, json!({"error": {"message": "invalid code"}}))
            }
        }
        ("POST", "/oauth/token") if fields.get("code").map(String::as_str) == Some("code-L") => {
            if pkce_ok(&fields["code_verifier"], &s.challenge) {
                s.verified += 1;
                (200, tokens("linus@example.com"))
            } else {
                (400, json!({"error": "invalid_grant"}))
            }
        }
        ("GET", p) if p.starts_with("/device") || p.starts_with("/codex/device") => {
            s.approved = true;
            (200, json!({"ok": true}))
        }
        ("POST", "/api/oauth/device/code" | "/oauth2/device/code") => (
            200,
            json!({
            "device_code": "dc-1", "user_code": "ABCD-1234",
            "verification_uri": format!("{base}/device"),
            "verification_uri_complete": format!("{base}/device?user_code=ABCD-1234"),
            "expires_in": 600, "interval": 1}),
        ),
        ("POST", "/api/oauth/token")
            if fields.get("grant_type").map(String::as_str) == Some("refresh_token") =>
        {
            // Single-use rotating refresh tokens: rt-login, then rt-2, rt-3...
            let token = nous_token.unwrap_or_default();
            let current = format!("rt-{}", s.spent.len() + 1).replace("rt-1", "rt-login");
            if s.spent.contains(&token) {
                s.replays.push(token);
                (
                    400,
                    json!({"error": "invalid_grant", "error_description": "refresh token reuse"}),
                )
            } else if token == current {
                s.spent.push(token);
                let next = format!("rt-{}", s.spent.len() + 1);
                (
                    200,
                    json!({"access_token": format!("at-{next}"), "refresh_token": next, "expires_in": 3600}),
                )
            } else {
                (400, json!({"error": "invalid_grant"}))
            }
        }
        ("POST", "/api/oauth/token" | "/oauth2/token") => {
            s.polls.push(fields.clone());
            if deny && s.approved {
                s.refused = true;
                (
                    400,
                    json!({"error": "access_denied", "error_description": "the user said no"}),
                )
            } else if !s.approved {
                (400, json!({"error": "authorization_pending"}))
            } else if !s.slowed {
                s.slowed = true;
                (400, json!({"error": "slow_down"}))
            } else {
                (200, tokens("ada@example.com"))
            }
        }
        ("POST", "/api/accounts/deviceauth/usercode") => (
            200,
            json!({
            "user_code": "WXYZ-9876", "device_auth_id": "da-1", "interval": "3"}),
        ),
        ("POST", "/api/accounts/deviceauth/token") => {
            s.polls.push(fields.clone());
            if s.approved {
                (
                    200,
                    json!({"authorization_code": "ac-1", "code_verifier": "cv-1"}),
                )
            } else {
                (403, json!({"error": "pending"}))
            }
        }
        ("POST", "/oauth/token") => {
            s.exchanges.push(fields.clone());
            (200, tokens("grace@example.com"))
        }
        _ => (404, json!({})),
    };
    drop(s);
    let text = answer.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn spawn(home: &std::path::Path, args: &str) -> PtySession {
    let mut cmd = std::process::Command::new("sh");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("CREDPOOL_HOME", home)
        .arg("-c")
        .arg(format!("exec '{BIN}' {args}"));
    spawn_command(cmd, Some(30_000)).expect("spawn")
}

/// The entries of `pool` as another process reads the store (secrets included).
fn entries(home: &std::path::Path, pool: &str) -> Vec<Value> {
    let options = credpool_store::StoreOptions::new("reader", 1);
    let Ok(store) = credpool_store::Store::open_path(&home.join("pools.sqlite"), options) else {
        return Vec::new();
    };
    let state = serde_json::to_value(store.registry().export_state()).unwrap();
    state["pools"][pool]["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn nous_device_login_polls_through_pending_and_slow_down() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(home.path(), &format!("login nous --issuer {}", mock.base));
    p.exp_string("Open ").unwrap();
    let url = p.exp_string(" and enter the code ABCD-1234").unwrap();
    // The user takes a while: the CLI's first poll finds the login pending.
    while mock.seen.lock().unwrap().polls.is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    mock.approve(url.trim());
    p.exp_string("Logged in: added nous credential \"ada@example.com\"")
        .unwrap();
    p.exp_eof().unwrap();
    let seen = mock.seen.lock().unwrap();
    assert!(seen.slowed, "the CLI met slow_down");
    assert!(
        seen.polls.len() >= 3,
        "pending, slow_down, then the tokens: {:?}",
        seen.polls
    );
    assert_eq!(
        seen.polls[0]["grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
    assert_eq!(seen.polls[0]["client_id"], "hermes-cli");
    assert_eq!(seen.polls[0]["device_code"], "dc-1");
    let [entry] = entries(home.path(), "nous").try_into().unwrap();
    assert_eq!(entry["source"], "manual:device_code");
    assert_eq!(entry["auth_type"], "oauth");
    assert_eq!(entry["refresh_token"], "rt-login");
    assert_eq!(
        entry["extra"]["token_url"],
        format!("{}/api/oauth/token", mock.base)
    );
}

/// `credpool login nous`, the user approving at once.
fn log_in_nous(mock: &Mock, home: &std::path::Path) {
    let mut p = spawn(home, &format!("login nous --issuer {}", mock.base));
    p.exp_string("Open ").unwrap();
    let url = p.exp_string(" and enter the code ABCD-1234").unwrap();
    mock.approve(url.trim());
    p.exp_string("Logged in").unwrap();
    p.exp_eof().unwrap();
}

#[test]
fn refresh_rotates_a_login_once_even_from_concurrent_processes() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    log_in_nous(&mock, home.path());
    let run = || {
        std::process::Command::new(BIN)
            .env_clear()
            .env("CREDPOOL_HOME", home.path())
            .args(["refresh", "nous"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = run().wait_with_output().unwrap();
    assert!(first.status.success());
    let children: Vec<_> = (0..3).map(|_| run()).collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let seen = mock.seen.lock().unwrap();
    assert_eq!(
        seen.replays,
        Vec::<String>::new(),
        "a refresh token was sent twice"
    );
    let [entry] = entries(home.path(), "nous").try_into().unwrap();
    assert_eq!(entry["token_generation"], seen.spent.len());
    assert_eq!(
        entry["refresh_token"],
        format!("rt-{}", seen.spent.len() + 1)
    );
    assert!(seen.spent.len() >= 2, "{:?}", seen.spent);
}

#[test]
fn codex_device_login_exchanges_the_code_and_warns_on_the_same_account() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    for round in 0..2 {
        mock.seen.lock().unwrap().approved = false;
        let mut p = spawn(
            home.path(),
            &format!("login openai-codex --issuer {}", mock.base),
        );
        p.exp_string("Open ").unwrap();
        let url = p.exp_string(" and enter the code WXYZ-9876").unwrap();
        mock.approve(url.trim());
        if round == 1 {
            p.exp_string("warning: this openai-codex account is already logged in here")
                .unwrap();
        }
        p.exp_string("Logged in: added openai-codex credential \"grace@example.com\"")
            .unwrap();
        p.exp_eof().unwrap();
    }
    let seen = mock.seen.lock().unwrap();
    let exchange = &seen.exchanges[0];
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["code"], "ac-1");
    assert_eq!(exchange["code_verifier"], "cv-1");
    assert_eq!(exchange["client_id"], "app_EMoamEEZ73f0CkXaXp7hrann");
    assert_eq!(
        exchange["redirect_uri"],
        format!("{}/deviceauth/callback", mock.base)
    );
    assert_eq!(entries(home.path(), "openai-codex").len(), 2);
}

#[test]
fn a_refused_login_fails_in_one_line_and_adds_nothing() {
    let mock = Mock::start(true);
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(
        home.path(),
        &format!("login xai-oauth --issuer {}", mock.base),
    );
    p.exp_string("Open ").unwrap();
    let url = p.exp_string(" and enter the code ABCD-1234").unwrap();
    mock.approve(url.trim());
    p.exp_string(
        "credpool: the provider refused the login: access_denied the user said no [login_failed]",
    )
    .unwrap();
    p.exp_eof().unwrap();
    assert!(mock.seen.lock().unwrap().refused);
    assert!(entries(home.path(), "xai-oauth").is_empty());
}

#[test]
fn an_unknown_provider_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("CREDPOOL_HOME", home.path())
        .args(["login", "gemini"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no login flow for `gemini`") && err.contains("[invalid_input]"),
        "{err}"
    );
}

#[test]
fn anthropic_browser_login_takes_the_pasted_code_and_checks_pkce_and_state() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(
        home.path(),
        &format!("login anthropic --issuer {} --label claude-max", mock.base),
    );
    p.exp_string("Open ").unwrap();
    let url = p.exp_regex(r"http://\S+").unwrap().1;
    let (status, _, page) = browse(&url);
    assert_eq!(status, 200);
    p.exp_string("(code#state, hidden): ").unwrap();
    p.send_line(&page).unwrap();
    p.exp_string("Logged in: added anthropic credential \"claude-max\"")
        .unwrap();
    p.exp_eof().unwrap();
    assert_eq!(mock.seen.lock().unwrap().verified, 1);
    let [entry] = entries(home.path(), "anthropic").try_into().unwrap();
    assert_eq!(entry["source"], "manual:hermes_pkce");
    assert_eq!(entry["refresh_token"], "sk-ant-ort01-minted");
    assert_eq!(
        entry["extra"]["token_url"],
        format!("{}/v1/oauth/token", mock.base)
    );
}

#[test]
fn a_pasted_code_of_another_login_is_refused() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(
        home.path(),
        &format!("login anthropic --issuer {}", mock.base),
    );
    p.exp_string("(code#state, hidden): ").unwrap();
    p.send_line("code-A#not-this-login").unwrap();
    p.exp_string("state mismatch").unwrap();
    p.exp_eof().unwrap();
    assert!(entries(home.path(), "anthropic").is_empty());
}

#[test]
fn openrouter_browser_login_mints_an_api_key_through_the_loopback() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let mut p = spawn(
        home.path(),
        &format!("login openrouter --issuer {}", mock.base),
    );
    p.exp_string("Open ").unwrap();
    let url = p.exp_regex(r"http://\S+").unwrap().1;
    let (status, location, _) = browse(&url);
    assert_eq!(status, 302);
    let back = location.unwrap();
    assert!(
        back.starts_with("http://127.0.0.1:") && back.contains("/callback/"),
        "{back}"
    );
    // A request for another path of the listener is not the callback.
    let wrong = back.split("/callback/").next().unwrap().to_owned() + "/callback/guess?code=x";
    assert_eq!(browse(&wrong).0, 404);
    assert_eq!(browse(&back).0, 200);
    p.exp_string("Logged in: added openrouter credential")
        .unwrap();
    p.exp_eof().unwrap();
    let [entry] = entries(home.path(), "openrouter").try_into().unwrap();
    assert_eq!(
        (entry["auth_type"].as_str(), entry["source"].as_str()),
        (Some("api_key"), Some("manual:openrouter_pkce"))
    );
    assert_eq!(entry["access_token"], "sk-or-v1-minted");
}

#[test]
fn codex_browser_login_checks_the_state_of_the_loopback_return() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = spawn(
        home.path(),
        &format!(
            "login openai-codex --browser --port {port} --issuer {}",
            mock.base
        ),
    );
    p.exp_string("Open ").unwrap();
    let url = p.exp_regex(r"http://\S+").unwrap().1;
    let (_, location, _) = browse(&url);
    assert!(location.as_deref().unwrap().starts_with(&format!(
        "http://localhost:{port}/auth/callback?code=code-L&state="
    )));
    browse(&location.unwrap());
    p.exp_string("Logged in: added openai-codex credential \"linus@example.com\"")
        .unwrap();
    p.exp_eof().unwrap();
    let [entry] = entries(home.path(), "openai-codex").try_into().unwrap();
    assert_eq!(entry["source"], "manual:loopback_pkce");
    assert_eq!(mock.seen.lock().unwrap().verified, 1);
}

/// A device login whose user approves at once: the entry it added.
fn device_login(mock: &Mock, home: &std::path::Path, provider: &str, code: &str) -> Value {
    let mut p = spawn(home, &format!("login {provider} --issuer {}", mock.base));
    p.exp_string("Open ").unwrap();
    let url = p
        .exp_string(&format!(" and enter the code {code}"))
        .unwrap();
    mock.approve(url.trim());
    p.exp_string(&format!("Logged in: added {provider} credential"))
        .unwrap();
    p.exp_eof().unwrap();
    let [entry] = entries(home, provider).try_into().unwrap();
    entry
}

#[test]
fn qwen_device_login_sends_a_pkce_challenge_and_polls_with_its_verifier() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let entry = device_login(&mock, home.path(), "qwen-oauth", "QWEN-1");
    assert_eq!(mock.seen.lock().unwrap().verified, 1);
    assert_eq!(
        (entry["refresh_token"].as_str(), entry["label"].as_str()),
        (Some("rt-qwen"), Some("qwen-oauth-oauth-1"))
    );
    assert_eq!(entry["base_url"], "https://portal.qwen.ai/v1");
}

#[test]
fn minimax_user_code_login_polls_until_success() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let entry = device_login(&mock, home.path(), "minimax-oauth", "MM-1");
    let seen = mock.seen.lock().unwrap();
    assert_eq!(seen.verified, 1);
    assert_eq!(
        seen.polls[0]["grant_type"],
        "urn:ietf:params:oauth:grant-type:user_code"
    );
    assert_eq!(entry["refresh_token"], "rt-mm");
    assert!(entry["expires_at"].as_u64().is_some());
}

/// `credpool seed` with `env` as the whole environment (HOME and the store under `home`).
fn seed(home: &std::path::Path, env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear()
        .env("HOME", home)
        .env("CREDPOOL_HOME", home)
        .arg("seed")
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn write_claude_code(home: &std::path::Path, access: &str, refresh: &str, expires_at: u64) {
    let dir = home.join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    let doc = json!({"claudeAiOauth": {"accessToken": access, "refreshToken": refresh,
        "expiresAt": expires_at, "scopes": ["user:inference"], "subscriptionType": "max"}});
    std::fs::write(dir.join(".credentials.json"), doc.to_string()).unwrap();
}

#[test]
fn seed_borrows_claude_codes_login_only_when_anthropic_is_configured_and_never_its_refresh_token() {
    let home = tempfile::tempdir().unwrap();
    write_claude_code(
        home.path(),
        "sk-ant-oat01-first",
        "sk-ant-ort01-SECRET",
        4_000_000_000_000,
    );
    // Not configured: the file is not read.
    let out = seed(home.path(), &[], &[]);
    assert!(out.status.success());
    assert!(entries(home.path(), "anthropic").is_empty());
    // ANTHROPIC_TOKEN configures the provider: the login is borrowed.
    let out = seed(home.path(), &[("ANTHROPIC_TOKEN", "sk-ant-oat01-env")], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("from claude_code") && !stdout.contains("sk-ant-"),
        "{stdout}"
    );
    let borrowed = |home: &std::path::Path| {
        entries(home, "anthropic")
            .into_iter()
            .find(|e| e["source"] == "claude_code")
            .expect("the claude_code entry")
    };
    let entry = borrowed(home.path());
    assert_eq!(entry["access_token"], "sk-ant-oat01-first");
    assert_eq!(entry["expires_at"], 4_000_000_000_000_u64);
    assert!(
        entry.get("refresh_token").is_none(),
        "Claude Code's refresh token is never copied"
    );
    // Claude Code refreshed: the next seed (the pool now exists) takes the new token.
    write_claude_code(
        home.path(),
        "sk-ant-oat01-second",
        "sk-ant-ort01-SECRET2",
        4_000_000_100_000,
    );
    let out = seed(home.path(), &[], &[]);
    assert!(out.status.success());
    let entry = borrowed(home.path());
    assert_eq!(entry["access_token"], "sk-ant-oat01-second");
    assert_eq!(entry["token_generation"], 1);
}

#[test]
fn seed_claude_code_flag_borrows_without_configuration_and_claude_config_dir_moves_the_file() {
    let home = tempfile::tempdir().unwrap();
    let elsewhere = home.path().join("claude-home");
    write_claude_code(&elsewhere, "sk-ant-oat01-moved", "r", 4_000_000_000_000);
    let config_dir = elsewhere.join(".claude");
    let out = seed(
        home.path(),
        &[("CLAUDE_CONFIG_DIR", config_dir.to_str().unwrap())],
        &["--claude-code"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let [entry] = entries(home.path(), "anthropic").try_into().unwrap();
    assert_eq!(entry["access_token"], "sk-ant-oat01-moved");
}

#[test]
fn xai_login_takes_its_token_endpoint_from_openid_discovery_and_records_it() {
    let mock = Mock::start(false);
    let home = tempfile::tempdir().unwrap();
    let entry = device_login(&mock, home.path(), "xai-oauth", "ABCD-1234");
    assert_eq!(
        entry["extra"]["token_url"],
        format!("{}/oauth2/token", mock.base)
    );
    assert_eq!(entry["base_url"], "https://api.x.ai/v1");
}

#[test]
fn a_hermes_imported_claude_code_row_is_reseeded_from_its_file() {
    let home = tempfile::tempdir().unwrap();
    let auth = json!({"version": 1, "credential_pool": {"anthropic": [{
        "id": "cc1234", "label": "claude", "auth_type": "oauth", "priority": 0,
        "source": "claude_code", "access_token": "sk-ant-oat01-on-disk", "request_count": 3}]}});
    let file = home.path().join("auth.json");
    std::fs::write(&file, auth.to_string()).unwrap();
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("CREDPOOL_HOME", home.path())
        .args(["import-hermes", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let [row] = entries(home.path(), "anthropic").try_into().unwrap();
    assert!(
        row.get("access_token").is_none(),
        "Hermes never stores claude_code's secret"
    );
    write_claude_code(
        home.path(),
        "sk-ant-oat01-from-file",
        "r",
        4_000_000_000_000,
    );
    // The imported pool configures the provider: seed borrows the login into that row.
    assert!(seed(home.path(), &[], &[]).status.success());
    let [row] = entries(home.path(), "anthropic").try_into().unwrap();
    assert_eq!(row["id"], "cc1234");
    assert_eq!(row["access_token"], "sk-ant-oat01-from-file");
    assert_eq!(row["expires_at"], 4_000_000_000_000_u64);
}

/// Text in the store (a reason another process or an older version wrote) never drives the
/// terminal: `list` shows control characters escaped, so a rate-limited key cannot be made
/// to print as "available ←" nor retitle the terminal.
#[test]
fn list_shows_control_characters_escaped() {
    let home = tempfile::tempdir().unwrap();
    let options = credpool_store::StoreOptions::new("writer", 1);
    let mut store =
        credpool_store::Store::open_path(&home.path().join("pools.sqlite"), options).unwrap();
    let doc = json!({"format": "credpool", "schema_version": 1, "pools": {"openrouter": {"entries": [{
        "id": "a", "auth_type": "api_key", "priority": 0, "source": "manual", "access_token": "sk-test-a",
        "status": "exhausted", "status_at": 1, "cooldown_until": 4_000_000_000_000_u64,
        "last_error": {"code": 429, "reason": "\u{1b}[2K\r#1 a available \u{2190}\u{1b}]0;pwned\u{7}"}}]}}});
    store
        .handle_value(
            credpool_core::Millis(2),
            json!({"type": "sync", "state": doc}),
        )
        .unwrap();
    drop(store);
    let out = std::process::Command::new(BIN)
        .env_clear()
        .env("CREDPOOL_HOME", home.path())
        .args(["list"])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        !text.contains('\u{1b}') && !text.contains('\r') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(text.contains("\\u{1b}[2K\\u{d}"), "{text}");
}

/// `credpool` with `args` and the store under `home`.
fn run_cli(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env_clear().env("CREDPOOL_HOME", home).args(args);
    // A command that would block on a FIFO must not hang the test: give it 20 s.
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("credpool {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Special files never hang a command or exhaust its memory: a FIFO or a device given as
/// an input file or as the store is refused at once; an export onto the store is refused.
#[test]
fn special_files_are_refused_and_the_store_is_no_export_target() {
    let home = tempfile::tempdir().unwrap();
    let fifo = home.path().join("fifo");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["seed", "--config", "/dev/zero"],
        vec!["seed", "--config", fifo],
        vec!["import-hermes", fifo],
        vec!["seed", "--env-file", "/dev/zero"],
    ] {
        let out = run_cli(home.path(), &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(4), "{args:?}: {err}");
        assert!(
            err.contains("is not a regular file") && err.contains("[too_large]"),
            "{err}"
        );
    }
    let out = run_cli(home.path(), &["--store", fifo, "list"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is not a regular file"),
        "{err}"
    );
    // The store itself (and its files) is no export target.
    assert!(
        run_cli(
            home.path(),
            &["add", "openrouter", "--api-key", "sk-test-k"]
        )
        .status
        .success()
    );
    let store = home.path().join("pools.sqlite");
    for target in [store.clone(), home.path().join("pools.sqlite-wal")] {
        let out = run_cli(
            home.path(),
            &["export-hermes", "-o", target.to_str().unwrap()],
        );
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let export = home.path().join("auth.json");
    assert!(
        run_cli(
            home.path(),
            &["export-hermes", "-o", export.to_str().unwrap()]
        )
        .status
        .success()
    );
}
