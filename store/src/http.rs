//! The built-in OAuth refresher's HTTP (feature `http`): core builds each provider's token
//! request ([`Registry::token_request`]) and reads the answer
//! ([`Registry::token_outcome`]); this only sends it, bounded in time and size. The
//! request holds the refresh token: it is never logged, and failures name their kind only.

use std::io::Read;
use std::time::Duration;

use credpool_core::{
    Body, EntryId, Headers, Millis, PoolKey, RefreshOutcome, Registry, Response, TokenRequest,
};

/// Longest wait for a token endpoint.
const TIMEOUT: Duration = Duration::from_secs(20);
/// Most bytes of a token endpoint's answer read (an answer is a few hundred bytes).
const MAX_ANSWER_BYTES: u64 = 64 * 1024;

/// Refreshes entry `entry_id` of `pool` with its provider's built-in refresher.
pub(crate) fn refresh(
    registry: &Registry,
    now: Millis,
    pool: &PoolKey,
    entry_id: &EntryId,
) -> RefreshOutcome {
    let request = match registry.token_request(pool, entry_id) {
        Ok(request) => request,
        Err(e) => {
            return RefreshOutcome::Failed {
                terminal: false,
                reason: Some(e.code().as_str().to_owned()),
                message: Some(e.message().to_owned()),
            };
        }
    };
    let answer = send(&request);
    registry
        .token_outcome(now, pool, entry_id, &answer)
        .unwrap_or_else(|e| RefreshOutcome::Failed {
            terminal: false,
            reason: Some(e.code().as_str().to_owned()),
            message: Some(e.message().to_owned()),
        })
}

/// POSTs `request`; the answer as core's [`Response`] (a network failure as its kind).
fn send(request: &TokenRequest) -> Response {
    let agent = ureq::AgentBuilder::new()
        .timeout(TIMEOUT)
        .redirects(0)
        .build();
    let mut call = agent.post(&request.url);
    for (name, value) in &request.headers {
        call = call.set(name, value.expose());
    }
    let answer = match call.send_string(request.body.expose()) {
        Ok(answer) | Err(ureq::Error::Status(_, answer)) => answer,
        Err(ureq::Error::Transport(e)) => {
            return Response {
                network_error: Some(format!("{}", e.kind())),
                ..Response::default()
            };
        }
    };
    let status = answer.status();
    let mut text = String::new();
    let read = answer
        .into_reader()
        .take(MAX_ANSWER_BYTES)
        .read_to_string(&mut text);
    if read.is_err() {
        return Response {
            network_error: Some("the answer was cut off".to_owned()),
            ..Response::default()
        };
    }
    Response {
        status: Some(status),
        headers: Headers::default(),
        body: Some(Body::Text(text)),
        ..Response::default()
    }
}
