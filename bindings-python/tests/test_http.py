"""``CredentialPool.call()`` and ``lease()`` with the real httpx, requests and openai libraries
against a real HTTP server on 127.0.0.1 (``http.server`` in a thread) that answers with
providers' real status codes, headers and bodies."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Tuple

import httpx
import openai
import pytest
import requests

import credpool
from credpool import CredentialPool, Lease, Registry, Store, StorePool, response_info
from test_helpers import Clock  # deterministic epoch-ms clock; sleeping advances it

Answer = Tuple[int, Dict[str, str], Any]

COMPLETION: Answer = (
    200,
    {"x-request-id": "req_ok"},
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    },
)
OPENAI_429: Answer = (
    429,
    {
        "retry-after": "2",
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "2s",
        "x-request-id": "req_429",
    },
    {
        "error": {
            "message": "Rate limit reached for gpt-4o in organization org-test on requests per min (RPM): "
            "Limit 500, Used 500, Requested 1. Please try again in 2s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        }
    },
)
OPENROUTER_402: Answer = (
    402,
    {},
    {
        "error": {
            "code": 402,
            "message": "Insufficient credits. Add more using https://openrouter.ai/settings/credits",
        }
    },
)
OPENAI_401: Answer = (
    401,
    {"www-authenticate": 'Bearer realm="OpenAI API"'},
    {
        "error": {
            "message": "Incorrect API key provided: sk-te***-a. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    },
)
EXPIRED_401: Answer = (
    401,
    {"www-authenticate": 'Bearer error="invalid_token"'},
    {"error": {"message": "The access token expired", "type": "authentication_error"}},
)


class Provider:
    """What the server answers: ``answer(token)`` for the API, and an OAuth token endpoint
    (``/oauth/token``) rotating single-use refresh tokens: ``rt-0`` -> ``at-1``/``rt-1`` ->
    ... An issued access token is accepted ``uses`` times (None: until the next rotation)."""

    def __init__(self) -> None:
        self.url = ""
        self.lock = threading.Lock()
        self.log: List[Tuple[str, str, int]] = []  # (path, token, status)
        self.answer: Callable[[str], Answer] = lambda token: COMPLETION
        self.refresh_token = "rt-0"
        self.issued = 0
        self.uses: Any = None
        self.left: Dict[str, int] = {}

    def serve(self, path: str, token: str, body: bytes) -> Answer:
        with self.lock:
            if path == "/oauth/token":  # logged under the refresh token it was given
                token = str(json.loads(body or b"{}").get("refresh_token"))
                answer = self._rotate(token)
            else:
                answer = self.answer(token)
            self.log.append((path, token, answer[0]))
            return answer

    def _rotate(self, refresh_token: Any) -> Answer:
        if refresh_token != self.refresh_token:  # a replayed single-use refresh token
            return 400, {}, {"error": "invalid_grant", "error_description": "refresh token already used"}
        self.issued += 1
        self.refresh_token = f"rt-{self.issued}"
        self.left = {f"at-{self.issued}": self.uses if self.uses is not None else 1 << 30}
        return 200, {}, {"access_token": f"at-{self.issued}", "refresh_token": self.refresh_token,
                         "expires_in": 3600, "token_type": "Bearer"}  # fmt: skip

    def oauth_api(self, token: str) -> Answer:
        """The API of an OAuth provider: an issued token while it has uses left, else 401."""
        if self.left.get(token, 0) <= 0:
            return EXPIRED_401
        self.left[token] -= 1
        return COMPLETION

    def tokens(self, path: str = "/v1/chat/completions") -> List[str]:
        return [token for p, token, _ in self.log if p == path]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Any

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        auth = self.headers.get("authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else self.headers.get("x-api-key", "")
        status, headers, payload = self.server.provider.serve(self.path, token, body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Provider]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.provider = Provider()  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.provider.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield server.provider  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def two_keys() -> Registry:
    r = Registry(writer="w1", seed=1)
    for k in ("a", "b"):
        r.add_entry("openai", {"id": k, "access_token": f"sk-test-{k}"}, now=0)
    return r


CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def post_with(lib: str, url: str) -> Callable[[Lease], Any]:
    """``fn`` sending one chat completion with ``lib``, returning its response (no raise)."""

    def fn(lease: Lease) -> Any:
        headers = {"authorization": f"Bearer {lease.access_token}"}
        if lib == "httpx":
            with httpx.Client(timeout=10) as client:
                return client.post(f"{url}/v1/chat/completions", headers=headers, json=CHAT)
        return requests.post(f"{url}/v1/chat/completions", headers=headers, json=CHAT, timeout=10)

    return fn


# ----------------------------------------------------------------------------- returned responses


@pytest.mark.parametrize("lib", ["httpx", "requests"])
@pytest.mark.parametrize(
    "failure, sends_on_a, reason",
    [(OPENAI_429, 2, "rate_limit"), (OPENROUTER_402, 1, "billing"), (OPENAI_401, 1, "auth")],
    ids=["429", "402", "401"],
)
def test_a_returned_failure_rotates_within_the_call(
    provider: Provider, lib: str, failure: Answer, sends_on_a: int, reason: str
) -> None:
    provider.answer = lambda token: failure if token == "sk-test-a" else COMPLETION
    r, clock = two_keys(), Clock()
    pool = CredentialPool(r, "openai", clock=clock)
    reasons: List[Any] = []
    post = post_with(lib, provider.url)

    def fn(lease: Lease) -> Any:
        reasons.append(lease.reason)
        return post(lease)

    resp = pool.call(fn, model="gpt-4o", sleep=clock.sleep)
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "hello"
    assert provider.tokens() == ["sk-test-a"] * sends_on_a + ["sk-test-b"]
    assert reasons[-1] == reason
    # hermes: a 429 first sleeps its Retry-After (2 s) on the same key, the second rotates
    assert clock.slept == ([2.0] if failure is OPENAI_429 else [])
    # the benched key is not called again
    for _ in range(3):
        assert pool.call(post, sleep=clock.sleep).status_code == 200
    assert provider.tokens()[sends_on_a + 1:] == ["sk-test-b"] * 3
    entry = [e for e in r.status("openai", now=clock.now)["pools"][0]["entries"] if e["id"] == "a"][0]
    assert entry["health"] != "available"


@pytest.mark.parametrize("lib", ["httpx", "requests"])
def test_give_up_returns_the_last_returned_response(provider: Provider, lib: str) -> None:
    provider.answer = lambda token: (429, {"retry-after": "3600"}, OPENAI_429[2])
    r, clock = two_keys(), Clock()
    resp = CredentialPool(r, "openai", clock=clock).call(post_with(lib, provider.url), sleep=clock.sleep)
    assert resp.status_code == 429 and resp.headers["retry-after"] == "3600"  # as the library would
    assert resp.json() == OPENAI_429[2]
    # an hour's wait benches each key in turn; waiting for one is beyond max_wait_ms
    assert provider.tokens() == ["sk-test-a", "sk-test-b"] and clock.slept == []


def test_lease_reports_a_returned_response(provider: Provider) -> None:
    provider.answer = lambda token: OPENROUTER_402 if token == "sk-test-a" else COMPLETION
    r, clock = two_keys(), Clock()
    pool = CredentialPool(r, "openai", clock=clock)
    post = post_with("httpx", provider.url)
    lease = None
    statuses = []
    while lease is None or lease.again:
        with pool.lease(after=lease, sleep=clock.sleep) as lease:
            resp = post(lease)
            statuses.append(resp.status_code)
            lease.report(resp)
    assert statuses == [402, 200] and lease.action is not None and lease.action["type"] == "done"
    assert provider.tokens() == ["sk-test-a", "sk-test-b"]


# ----------------------------------------------------------------------------- the openai SDK


def openai_fn(url: str, raised: List[str]) -> Callable[[Lease], Any]:
    def fn(lease: Lease) -> Any:
        client = openai.OpenAI(api_key=lease.access_token, base_url=f"{url}/v1", max_retries=0)
        try:
            return client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
        except openai.APIError as e:
            raised.append(type(e).__name__)
            raise

    return fn


def test_openai_sdk_rate_limit_error_rotates(provider: Provider) -> None:
    provider.answer = lambda token: OPENAI_429 if token == "sk-test-a" else COMPLETION
    r, clock = two_keys(), Clock()
    raised: List[str] = []
    out = CredentialPool(r, "openai", clock=clock).call(openai_fn(provider.url, raised), sleep=clock.sleep)
    assert out.choices[0].message.content == "hello"
    assert raised == ["RateLimitError", "RateLimitError"] and clock.slept == [2.0]
    assert provider.tokens() == ["sk-test-a", "sk-test-a", "sk-test-b"]


def test_openai_sdk_error_is_raised_again_on_give_up(provider: Provider) -> None:
    provider.answer = lambda token: (429, {"retry-after": "3600"}, OPENAI_429[2])
    r, clock = Registry(writer="w1", seed=1), Clock()
    r.add_entry("openai", {"id": "a", "access_token": "sk-test-a"}, now=0)
    raised: List[str] = []
    with pytest.raises(openai.RateLimitError) as e:
        CredentialPool(r, "openai", clock=clock).call(openai_fn(provider.url, raised), sleep=clock.sleep)
    assert e.value.status_code == 429 and raised == ["RateLimitError"]


# ----------------------------------------------------------------------------- OAuth


def oauth_refresh(url: str, seen: List[str]) -> Callable[[Lease], Dict[str, Any]]:
    """A refresh callable using the provider's token endpoint."""

    def refresh(lease: Lease) -> Dict[str, Any]:
        assert lease.refresh_token is not None
        seen.append(lease.refresh_token)
        resp = httpx.post(f"{url}/oauth/token", json={"grant_type": "refresh_token",
                                                      "refresh_token": lease.refresh_token})  # fmt: skip
        if resp.status_code != 200:
            return {"type": "failed", "terminal": resp.status_code == 400}
        body = resp.json()
        return {"type": "refreshed", "access_token": body["access_token"], "refresh_token": body["refresh_token"]}

    return refresh


@pytest.mark.parametrize("lib", ["httpx", "openai"])
def test_an_oauth_entry_answering_one_401_per_call_refreshes_on_every_call(provider: Provider, lib: str) -> None:
    provider.uses = 1  # every access token serves one request: each call's first send is a 401
    provider.answer = provider.oauth_api
    r = Registry(writer="w1", seed=1)
    r.add_entry("openai", {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0"}, now=0)
    clock, seen = Clock(), []
    pool = CredentialPool(r, "openai", clock=clock, refresh=oauth_refresh(provider.url, seen))
    fn = post_with("httpx", provider.url) if lib == "httpx" else openai_fn(provider.url, [])
    for n in range(1, 6):
        clock.now += 60_000
        out = pool.call(fn, sleep=clock.sleep)
        assert (out.status_code == 200) if lib == "httpx" else (out.choices[0].message.content == "hello")
        assert provider.tokens()[-2:] == [f"at-{n - 1}", f"at-{n}"], n
    assert seen == [f"rt-{n}" for n in range(5)]  # calls 1..5 all refreshed, once each
    assert provider.tokens("/oauth/token") == seen


def test_a_store_refresh_adopts_a_token_another_process_rotated(provider: Provider, tmp_path: Path) -> None:
    provider.answer = provider.oauth_api  # at-0 was revoked: nothing issued yet
    path = tmp_path / "pools.sqlite"
    store = Store.open(path, writer="here", seed=1)
    store.add_entry("openai", {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0",
                               "expires_at": 10**13}, now=0)  # fmt: skip
    other = textwrap.dedent(
        f"""
        import httpx, credpool
        store = credpool.Store.open({str(path)!r}, writer="other", seed=2)
        def fn(lease):
            return httpx.post({provider.url!r} + "/v1/chat/completions",
                              headers={{"authorization": "Bearer " + lease.access_token}}, json={{}})
        def refresh(lease):
            body = httpx.post({provider.url!r} + "/oauth/token", json={{"refresh_token": lease.refresh_token}}).json()
            return {{"type": "refreshed", "access_token": body["access_token"], "refresh_token": body["refresh_token"]}}
        assert store.pool("openai", refresh=refresh).call(fn).status_code == 200
        """
    )

    class Raced:
        """The store, with another process's call rotating the token right before this
        process's refresh: the race the single-flight protocol is for."""

        def __getattr__(self, name: str) -> Any:
            return getattr(store, name)

        def refresh(self, *args: Any, **kwargs: Any) -> Any:
            subprocess.run([sys.executable, "-c", other], check=True, timeout=60)
            return store.refresh(*args, **kwargs)

    seen: List[str] = []
    pool = StorePool(Raced(), "openai", refresh=oauth_refresh(provider.url, seen))  # type: ignore[arg-type]
    reasons: List[Any] = []
    post = post_with("httpx", provider.url)

    def fn(lease: Lease) -> Any:
        reasons.append(lease.reason)
        return post(lease)

    assert pool.call(fn).status_code == 200
    assert seen == [], "the token another process rotated was adopted, not refreshed again"
    assert provider.tokens("/oauth/token") == ["rt-0"], "rt-0 was used once"
    assert provider.tokens() == ["at-0", "at-0", "at-1", "at-1"]  # here, there, there, here
    assert reasons == [None, "adopted"]
    assert Store.open(path, writer="check").credential("openai", "o")["refresh_token"] == "rt-1"


# ----------------------------------------------------------------------------- streamed bodies


@pytest.mark.parametrize("size, read", [(200, True), (100_000, False)])
def test_a_streamed_error_body_is_read_only_up_to_the_cap(provider: Provider, size: int, read: bool) -> None:
    body = {"error": {"message": "x" * size, "code": "rate_limit_exceeded"}}
    provider.answer = lambda token: (429, {"retry-after": "7"}, body)
    url = f"{provider.url}/v1/chat/completions"
    with httpx.Client() as client, client.stream("POST", url, json=CHAT) as resp:
        info = response_info(resp)
        assert info is not None and info["status"] == 429 and info["headers"]["retry-after"] == "7"
        assert (info["body"] is not None) == read and resp.is_stream_consumed == read
        resp.read()  # still readable by the caller
        assert resp.json() == body
    with requests.post(url, json=CHAT, stream=True, timeout=10) as rresp:
        info = response_info(rresp)
        assert info is not None and info["status"] == 429 and (info["body"] is not None) == read
        assert rresp.json() == body
    # a success's body is never read
    provider.answer = lambda token: COMPLETION
    with httpx.Client() as client, client.stream("POST", url, json=CHAT) as resp:
        info = response_info(resp)
        assert info is not None and info["status"] == 200 and info["body"] is None and not resp.is_stream_consumed


def test_secrets_stay_out_of_reprs_and_errors(provider: Provider) -> None:
    provider.answer = lambda token: OPENAI_401
    r = two_keys()
    texts: List[str] = []

    def fn(lease: Lease) -> Any:
        texts.append(repr(lease) + str(lease))
        return post_with("httpx", provider.url)(lease)

    resp = CredentialPool(r, "openai", clock=Clock()).call(fn)
    assert resp.status_code == 401 and len(texts) == 2
    with pytest.raises(credpool.NoCredentialError) as e:  # both keys benched: nothing to send
        CredentialPool(r, "openai", clock=Clock()).call(fn)
    texts += [str(e.value), repr(e.value), repr(e.value.action)]
    assert not any("sk-test" in t for t in texts), texts
