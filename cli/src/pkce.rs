//! The browser logins of `credpool login` (OAuth 2 authorization code with PKCE, S256):
//! Anthropic's (the user pastes the `code#state` the provider shows), Codex's and
//! OpenRouter's (the browser comes back to a loopback listener on 127.0.0.1). OpenRouter's
//! mints an API key. Endpoints and client ids are the providers'; `--issuer` replaces the
//! authorization server (its endpoints at the provider's paths).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::exit::{CliError, CliResult};
use crate::login::{Obtained, Tokens, login_failed, post_form, post_json, tokens_of};

/// How long a browser login may wait for the user.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// A PKCE verifier (64 random bytes, base64url: 86 characters) and its S256 challenge.
pub(crate) struct Pkce {
    /// The verifier (sent with the code exchange or the polls).
    pub(crate) verifier: String,
    /// Its S256 challenge (sent with the authorization request).
    pub(crate) challenge: String,
}

/// A random `state` (32 bytes, base64url).
pub(crate) fn nonce() -> CliResult<String> {
    Ok(base64url(&random::<32>()?))
}

impl Pkce {
    /// A fresh verifier and its challenge.
    pub(crate) fn new() -> CliResult<Self> {
        let verifier = base64url(&random::<64>()?);
        let challenge = base64url(&Sha256::digest(verifier.as_bytes()));
        Ok(Self {
            verifier,
            challenge,
        })
    }
}

/// Anthropic (Claude Pro/Max): the authorize URL, then the `code#state` the user pastes,
/// exchanged with a JSON body.
pub(crate) fn anthropic(agent: &ureq::Agent, issuer: Option<&str>) -> CliResult<Obtained> {
    const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
    let (authorize, token_url, redirect) = match issuer {
        Some(base) => (
            format!("{base}/oauth/authorize"),
            format!("{base}/v1/oauth/token"),
            format!("{base}/oauth/code/callback"),
        ),
        None => (
            "https://claude.ai/oauth/authorize".to_owned(),
            "https://platform.claude.com/v1/oauth/token".to_owned(),
            "https://console.anthropic.com/oauth/code/callback".to_owned(),
        ),
    };
    let pkce = Pkce::new()?;
    let state = nonce()?;
    let url = with_query(
        &authorize,
        &[
            ("code", "true"),
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", &redirect),
            ("scope", "org:create_api_key user:profile user:inference"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("state", &state),
        ],
    );
    eprintln!("Open {url}");
    let pasted = crate::prompt::secret("Paste the code the page shows (code#state, hidden): ")?
        .ok_or_else(|| login_failed("no code was pasted"))?;
    let (code, returned) = pasted.split_once('#').unwrap_or((pasted.as_str(), ""));
    if returned != state {
        return Err(login_failed(
            "the pasted code belongs to another login (state mismatch)",
        ));
    }
    let body = json!({
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "code": code,
        "state": returned,
        "redirect_uri": redirect,
        "code_verifier": pkce.verifier,
    });
    let (status, answer) = post_json(agent, &token_url, &body)?;
    if !(200..300).contains(&status) {
        return Err(refused(status, &answer));
    }
    Ok(Obtained {
        provider: "anthropic",
        tokens: tokens_of(&answer)?,
        oauth: true,
        source: "manual:hermes_pkce",
        base_url: "https://api.anthropic.com",
        token_url: issuer.map(|_| token_url),
    })
}

/// Codex's browser login: the loopback redirect on `port`, then a form exchange.
pub(crate) fn codex(agent: &ureq::Agent, issuer: Option<&str>, port: u16) -> CliResult<Obtained> {
    const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
    let base = issuer.unwrap_or("https://auth.openai.com");
    let listener = bind(port)?;
    let redirect = format!("http://localhost:{port}/auth/callback");
    let pkce = Pkce::new()?;
    let state = nonce()?;
    let url = with_query(
        &format!("{base}/oauth/authorize"),
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", &redirect),
            ("scope", "openid profile email offline_access"),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
            ("id_token_add_organizations", "true"),
            ("state", &state),
        ],
    );
    eprintln!("Open {url}");
    let query = callback(&listener, "/auth/callback")?;
    if param(&query, "state").as_deref() != Some(state.as_str()) {
        return Err(login_failed(
            "the browser came back from another login (state mismatch)",
        ));
    }
    let code = code_of(&query)?;
    let token_url = format!("{base}/oauth/token");
    let fields = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
        ("client_id", CLIENT_ID),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let (status, answer) = post_form(agent, &token_url, &fields)?;
    if !(200..300).contains(&status) {
        return Err(refused(status, &answer));
    }
    Ok(Obtained {
        provider: "openai-codex",
        tokens: tokens_of(&answer)?,
        oauth: true,
        source: "manual:loopback_pkce",
        base_url: "https://chatgpt.com/backend-api/codex",
        token_url: issuer.map(|_| token_url),
    })
}

/// OpenRouter: the loopback redirect to a one-time path (OpenRouter returns no `state`,
/// so the path's nonce stands for it), then the code is exchanged for an API key.
pub(crate) fn openrouter(agent: &ureq::Agent, issuer: Option<&str>) -> CliResult<Obtained> {
    let base = issuer.unwrap_or("https://openrouter.ai");
    let listener = bind(0)?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::runtime("io", format!("cannot listen on 127.0.0.1: {e}")))?
        .port();
    let path = format!("/callback/{}", base64url(&random::<16>()?));
    let pkce = Pkce::new()?;
    let url = with_query(
        &format!("{base}/auth"),
        &[
            ("callback_url", &format!("http://127.0.0.1:{port}{path}")),
            ("code_challenge", &pkce.challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    eprintln!("Open {url}");
    let query = callback(&listener, &path)?;
    let code = code_of(&query)?;
    let body = json!({
        "code": code,
        "code_verifier": pkce.verifier,
        "code_challenge_method": "S256",
    });
    let (status, answer) = post_json(agent, &format!("{base}/api/v1/auth/keys"), &body)?;
    let key = answer
        .get("key")
        .and_then(Value::as_str)
        .filter(|k| !k.is_empty());
    let (true, Some(key)) = ((200..300).contains(&status), key) else {
        return Err(refused(status, &answer));
    };
    Ok(Obtained {
        provider: "openrouter",
        tokens: Tokens {
            access: key.to_owned(),
            refresh: None,
            expires_in: None,
        },
        oauth: false,
        source: "manual:openrouter_pkce",
        base_url: "https://openrouter.ai/api/v1",
        token_url: None,
    })
}

/// Listens on 127.0.0.1 (`port` 0: any free one).
fn bind(port: u16) -> CliResult<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
        CliError::runtime(
            "io",
            format!("cannot listen on 127.0.0.1:{port} for the browser's return: {e}"),
        )
    })
}

/// Waits for the browser's `GET <path>?...` and answers it; its query. Requests for other
/// paths get a 404 and are ignored.
fn callback(listener: &TcpListener, path: &str) -> CliResult<Vec<(String, String)>> {
    let deadline = Instant::now() + LOGIN_TIMEOUT;
    listener
        .set_nonblocking(true)
        .map_err(|e| CliError::runtime("io", format!("loopback listener: {e}")))?;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    return Err(login_failed("the browser did not come back in time"));
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(CliError::runtime("io", format!("loopback listener: {e}"))),
        };
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut line = String::new();
        let mut reader = BufReader::new(&stream);
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("");
        let (got, query) = target.split_once('?').unwrap_or((target, ""));
        let mut stream = &stream;
        if got != path {
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            continue;
        }
        let page = "Login received: you can close this tab.";
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
            page.len()
        );
        return Ok(parse_query(query));
    }
}

/// The value of `key` in a query.
fn param(query: &[(String, String)], key: &str) -> Option<String> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

/// The `code` of a callback's query; its `error` as a refusal.
fn code_of(query: &[(String, String)]) -> CliResult<String> {
    if let Some(error) = param(query, "error") {
        return Err(login_failed(&format!(
            "the provider refused the login: {error}"
        )));
    }
    param(query, "code").ok_or_else(|| login_failed("the browser came back without a code"))
}

/// A refused code exchange, with the provider's error code.
fn refused(status: u16, answer: &Value) -> CliError {
    let code = answer
        .get("error")
        .and_then(|e| e.as_str().or_else(|| e.get("message")?.as_str()))
        .unwrap_or("");
    login_failed(&format!("the provider refused the code ({status} {code})"))
}

/// `url?k=v&...`, percent-encoded.
fn with_query(url: &str, pairs: &[(&str, &str)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    format!("{url}?{}", query.join("&"))
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(char::from(byte));
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `N` bytes from the OS.
fn random<const N: usize>() -> CliResult<[u8; N]> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| CliError::runtime("io", format!("no randomness from the OS: {e}")))?;
    Ok(bytes)
}

/// Unpadded base64url.
fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0_u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings() {
        // The S256 challenge as Python's hashlib and base64.urlsafe_b64encode give it.
        assert_eq!(
            base64url(&Sha256::digest(b"credpool-verifier")),
            "9XGgoDlMaDsQ1J8tnDoicq796XhQoPROElvqmTYzewE"
        );
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        assert_eq!(
            parse_query("code=a%2Fb&state=x+y"),
            vec![
                ("code".to_owned(), "a/b".to_owned()),
                ("state".to_owned(), "x y".to_owned()),
            ]
        );
        assert_eq!(with_query("u", &[("k", "a b/c")]), "u?k=a%20b%2Fc");
    }
}
