"""``CredentialTransport`` / ``AsyncCredentialTransport`` under the real openai and anthropic
SDKs (httpx2) and plain httpx / httpx2 clients, against the mock provider of
``mock_provider`` on 127.0.0.1. The SDKs keep their DEFAULT retry settings unless a test
says otherwise: the transport's ``x-should-retry: false`` on a give-up keeps them from
retrying what the driver gave up on."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import anthropic
import httpx
import httpx2
import openai
import pytest

import credpool
from credpool import AsyncCredentialTransport, Budgets, CredentialPool, CredentialTransport, NoCredentialError, Registry
from mock_provider import (
    ANTHROPIC_401,
    ANTHROPIC_403,
    ANTHROPIC_529,
    ANTHROPIC_MESSAGE,
    ANTHROPIC_OAUTH_401,
    ANTHROPIC_STREAM,
    OPENAI_401,
    OPENAI_403,
    OPENAI_COMPLETION,
    OPENAI_STREAM,
    OPENROUTER_402,
    Drop,
    Json,
    Provider,
    Seen,
    Sse,
    anthropic_429,
    openai_429,
    running,
)
from test_helpers import Clock

MESSAGES = [{"role": "user", "content": "hi"}]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def provider() -> Iterator[Provider]:
    yield from running()


def keys(pool: str, *ids: str, **extra: Any) -> Registry:
    r = Registry(writer="w1", seed=1)
    for k in ids:
        r.add_entry(pool, {"id": k, "access_token": f"sk-test-{k}", **extra}, now=0)
    return r


def health(r: Registry, pool: str, entry_id: str, now: int) -> str:
    (p,) = r.status(pool, now=now)["pools"]
    return str([e for e in p["entries"] if e["id"] == entry_id][0]["health"])


class ASleep:
    """An async sleep advancing a test clock (no real waiting)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def __call__(self, seconds: float) -> None:
        self.clock.sleep(seconds)


def openai_sync(provider: Provider, pool: CredentialPool, clock: Clock, budgets: Budgets = {}, **kw: Any) -> openai.OpenAI:
    transport = CredentialTransport(pool, sleep=clock.sleep, **budgets)
    return openai.OpenAI(api_key="unused", base_url=f"{provider.url}/v1", http_client=httpx2.Client(transport=transport),
                         **kw)  # fmt: skip


def openai_async(provider: Provider, pool: CredentialPool, clock: Clock, budgets: Budgets = {}, **kw: Any) -> openai.AsyncOpenAI:
    transport = AsyncCredentialTransport(pool, sleep=ASleep(clock), **budgets)
    return openai.AsyncOpenAI(api_key="unused", base_url=f"{provider.url}/v1",
                              http_client=httpx2.AsyncClient(transport=transport), **kw)  # fmt: skip


def anthropic_sync(provider: Provider, pool: CredentialPool, clock: Clock, budgets: Budgets = {}, **kw: Any) -> anthropic.Anthropic:
    transport = CredentialTransport(pool, sleep=clock.sleep, **budgets)
    return anthropic.Anthropic(api_key="unused", base_url=provider.url, http_client=httpx2.Client(transport=transport),
                               **kw)  # fmt: skip


def anthropic_async(provider: Provider, pool: CredentialPool, clock: Clock, budgets: Budgets = {}, **kw: Any) -> anthropic.AsyncAnthropic:
    transport = AsyncCredentialTransport(pool, sleep=ASleep(clock), **budgets)
    return anthropic.AsyncAnthropic(api_key="unused", base_url=provider.url,
                                    http_client=httpx2.AsyncClient(transport=transport), **kw)  # fmt: skip


def chat(client: Any) -> Any:
    """One chat completion (openai) or message (anthropic), sync or async (a coroutine)."""
    if isinstance(client, (openai.OpenAI, openai.AsyncOpenAI)):
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    return client.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES)


def text(out: Any) -> str:
    return str(out.choices[0].message.content if hasattr(out, "choices") else out.content[0].text)


def run(client: Any, times: int = 1) -> Any:
    """``times`` requests in a row (an async client's on one event loop); the last's result."""
    if "Async" not in type(client).__name__:
        return [chat(client) for _ in range(times)][-1]

    async def main() -> Any:
        return [await chat(client) for _ in range(times)][-1]

    return asyncio.run(main())


SDKS: Dict[str, Callable[..., Any]] = {
    "openai": openai_sync, "openai-async": openai_async,
    "anthropic": anthropic_sync, "anthropic-async": anthropic_async,
}  # fmt: skip


def shape(sdk: str) -> str:
    return sdk.split("-")[0]


def ok(sdk: str) -> Json:
    return OPENAI_COMPLETION if shape(sdk) == "openai" else ANTHROPIC_MESSAGE


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ----------------------------------------------------------------------------- classification


@pytest.mark.parametrize("sdk", SDKS)
def test_a_429_with_real_reset_headers_retries_then_rotates_and_benches_the_key(provider: Provider, sdk: str) -> None:
    clock = Clock(1_700_000_000_000)
    limited = openai_429("2s", "2") if shape(sdk) == "openai" else anthropic_429(iso(clock.now + 2000), "2")
    provider.answer = lambda s: limited if s.token == "sk-test-a" else ok(sdk)
    r = keys(shape(sdk), "a", "b")
    client = SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock)  # default SDK retries
    assert text(run(client, times=4)) == "hello"
    # hermes: the first 429 sleeps its reset hint on the same key, the second benches and
    # rotates; the next calls don't send to the benched key
    assert provider.tokens() == ["sk-test-a", "sk-test-a"] + ["sk-test-b"] * 4 and clock.slept == [2.0]
    assert {s.retry_count for s in provider.seen} == {"0"}, "the SDK retried nothing itself"
    assert health(r, shape(sdk), "a", clock.now) != "available"


@pytest.mark.parametrize("sdk", SDKS)
@pytest.mark.parametrize("failure", ["401", "402", "403"])
def test_a_key_failing_auth_billing_or_permission_rotates_at_once(provider: Provider, sdk: str, failure: str) -> None:
    answers = {"401": OPENAI_401 if shape(sdk) == "openai" else ANTHROPIC_401, "402": OPENROUTER_402,
               "403": OPENAI_403 if shape(sdk) == "openai" else ANTHROPIC_403}  # fmt: skip
    provider.answer = lambda s: answers[failure] if s.token == "sk-test-a" else ok(sdk)
    r, clock = keys(shape(sdk), "a", "b"), Clock()
    assert text(run(SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock))) == "hello"
    assert provider.tokens() == ["sk-test-a", "sk-test-b"] and clock.slept == []
    assert health(r, shape(sdk), "a", clock.now) != "available"


@pytest.mark.parametrize("sdk", ["anthropic", "anthropic-async"])
def test_529_overloaded_is_resent_and_marks_no_key(provider: Provider, sdk: str) -> None:
    answers = iter([ANTHROPIC_529, ANTHROPIC_MESSAGE])
    provider.answer = lambda s: next(answers)
    r, clock = keys("anthropic", "a", "b"), Clock()
    assert text(run(SDKS[sdk](provider, CredentialPool(r, "anthropic", clock=clock), clock))) == "hello"
    assert len(provider.seen) == 2 and {s.retry_count for s in provider.seen} == {"0"}
    assert health(r, "anthropic", "a", clock.now) == "available"


@pytest.mark.parametrize("sdk", SDKS)
def test_credentials_go_where_each_api_wants_them(provider: Provider, sdk: str) -> None:
    provider.answer = lambda s: ok(sdk)
    r, clock = keys(shape(sdk), "a"), Clock()
    run(SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock))
    (seen,) = provider.seen
    if shape(sdk) == "openai":
        assert (seen.authorization, seen.x_api_key) == ("Bearer sk-test-a", None)
    else:  # the SDK's own "unused" key is gone
        assert (seen.authorization, seen.x_api_key, seen.anthropic_beta) == (None, "sk-test-a", None)


def oauth_refresher(issued: List[str]) -> Callable[[credpool.Lease], Dict[str, Any]]:
    def refresh(lease: credpool.Lease) -> Dict[str, Any]:
        assert lease.refresh_token == f"rt-{len(issued)}"
        issued.append(f"at-{len(issued) + 1}")
        return {"type": "refreshed", "access_token": issued[-1], "refresh_token": f"rt-{len(issued)}"}

    return refresh


@pytest.mark.parametrize("sdk", ["anthropic", "anthropic-async"])
def test_an_expired_oauth_token_refreshes_and_is_sent_as_bearer_with_the_oauth_beta(
    provider: Provider, sdk: str
) -> None:
    provider.answer = lambda s: ANTHROPIC_MESSAGE if s.token == "at-1" else ANTHROPIC_OAUTH_401
    r, clock, issued = Registry(writer="w1", seed=1), Clock(), []
    r.add_entry("anthropic", {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0"}, now=0)
    pool = CredentialPool(r, "anthropic", clock=clock, refresh=oauth_refresher(issued))
    client = SDKS[sdk](provider, pool, clock, default_headers={"anthropic-beta": "prompt-caching-2024-07-31"})
    assert text(run(client)) == "hello"
    assert issued == ["at-1"] and provider.tokens() == ["at-0", "at-1"]
    for seen in provider.seen:
        assert seen.x_api_key is None and seen.authorization == f"Bearer {seen.token}"
        assert seen.anthropic_beta == "prompt-caching-2024-07-31,oauth-2025-04-20"


# ----------------------------------------------------------------------------- give-ups and SDK retries


@pytest.mark.parametrize("sdk", SDKS)
def test_a_give_up_hands_the_sdk_the_response_with_x_should_retry_false(provider: Provider, sdk: str) -> None:
    clock = Clock(1_700_000_000_000)
    # a short reset the SDK itself would retry after (2 s): only x-should-retry stops it
    limited = openai_429("2s", "2") if shape(sdk) == "openai" else anthropic_429(iso(clock.now + 2000), "2")
    provider.answer = lambda s: limited
    r = keys(shape(sdk), "a")
    client = SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock)  # default max_retries (2)
    error = openai.RateLimitError if shape(sdk) == "openai" else anthropic.RateLimitError
    with pytest.raises(error) as e:
        run(client)
    assert e.value.response.headers["x-should-retry"] == "false"
    # the driver retried the one key after each reset, up to max_sends (its usable keys + 3);
    # the SDK, on default retries, resent none of it
    assert provider.tokens() == ["sk-test-a"] * 4 and clock.slept == [2.0] * 3
    assert [s.retry_count for s in provider.seen] == ["0"] * 4


def no_credential(error: BaseException) -> bool:
    """openai 3.x lets a transport's own exception through; anthropic wraps it (its cause)."""
    return isinstance(error, NoCredentialError) or isinstance(error.__cause__, NoCredentialError)


@pytest.mark.parametrize("sdk", ["openai", "anthropic-async"])
def test_keys_benched_for_an_hour_are_not_sent_to_again(provider: Provider, sdk: str) -> None:
    clock = Clock(1_700_000_000_000)
    hour = openai_429("1h0m0s", "3600") if shape(sdk) == "openai" else anthropic_429(iso(clock.now + 3_600_000), "3600")
    provider.answer = lambda s: hour
    r = keys(shape(sdk), "a", "b")
    pool = CredentialPool(r, shape(sdk), clock=clock)
    with pytest.raises((openai.RateLimitError, anthropic.RateLimitError)):
        run(SDKS[sdk](provider, pool, clock))
    assert provider.tokens() == ["sk-test-a", "sk-test-b"] and clock.slept == []
    # both benched: the next request reaches no key (max_retries=0: anthropic would retry a
    # transport's exception like a connection error, after a real back-off)
    with pytest.raises(Exception) as e:
        run(SDKS[sdk](provider, pool, clock, max_retries=0))
    assert no_credential(e.value), repr(e.value)
    assert len(provider.seen) == 2


@pytest.mark.parametrize("sdk", SDKS)
def test_an_sdk_retry_continues_the_call_that_gave_up(provider: Provider, sdk: str) -> None:
    # Every request is dropped: the driver resends once (max_sends 2) and gives up, and the
    # transport re-raises the connection error. The SDK (default max_retries=2) retries with
    # x-stainless-retry-count: the retry continues the given-up call, whose sends are spent,
    # so it gives up with no send (a new call per retry would have sent 2 more each). openai
    # 3.x lets that NoCredentialError through; anthropic wraps it and retries once more.
    provider.answer = lambda s: Drop()
    r, clock = keys(shape(sdk), "a"), Clock(1_700_000_000_000)
    actions: List[Dict[str, Any]] = []
    pool = CredentialPool(r, shape(sdk), clock=clock)
    handle = pool._handle
    pool._handle = lambda given: actions.append(handle(given)) or actions[-1]  # type: ignore[method-assign]
    with pytest.raises(Exception) as e:
        run(SDKS[sdk](provider, pool, clock, {"max_sends": 2}))
    assert no_credential(e.value), repr(e.value)
    assert [s.retry_count for s in provider.seen] == ["0", "0"]
    ends = [a for a in actions if a["type"] == "give_up"]
    sdk_retries = 1 if shape(sdk) == "openai" else 2
    assert [(a["call_id"], a["reason"], a["budget"]) for a in ends] == [(1, "network_error", "max_sends")] * (
        1 + sdk_retries)
    assert clock.slept == [5.0], "the driver's one backoff; the SDK's own retries sent nothing"


USAGE_LIMIT = Json(429, {"x-request-id": "req_limit"}, {"error": {
    "type": "usage_limit_reached", "message": "The usage limit has been reached", "resets_in_seconds": 18000}})


@pytest.mark.parametrize("sdk", ["openai", "openai-async"])
def test_a_probe_reopens_a_long_usage_limit_bench_within_the_sdk_call(provider: Provider, sdk: str) -> None:
    # The only key answers a 5 h usage limit; the pool's probe (the host asking, say, Codex's
    # usage endpoint) says it is lifted, so the same SDK call is resent on it and succeeds.
    answers = [USAGE_LIMIT]
    provider.answer = lambda s: answers.pop(0) if answers else OPENAI_COMPLETION
    r, clock = keys("openai-codex", "a"), Clock(1_700_000_000_000)
    probed: List[Any] = []

    def sync_probe(lease: credpool.Lease) -> bool:
        probed.append((lease.entry_id, lease.access_token, lease.lease_id))
        return True

    async def async_probe(lease: credpool.Lease) -> bool:
        return sync_probe(lease)

    probe = async_probe if "async" in sdk else sync_probe
    pool = CredentialPool(r, "openai-codex", clock=clock, probe=probe)
    out = run(SDKS[sdk](provider, pool, clock))
    assert text(out) == "hello" and probed == [("a", "sk-test-a", None)]
    assert provider.tokens() == ["sk-test-a", "sk-test-a"] and clock.slept == []
    # Without a probe the same bench ends the call (the SDK is told not to retry it).
    answers.append(USAGE_LIMIT)
    clock.now += 1000
    r.reset("openai-codex", now=clock.now)
    with pytest.raises(openai.RateLimitError):
        run(SDKS[sdk](provider, CredentialPool(r, "openai-codex", clock=clock), clock))


def test_a_connection_error_is_reported_and_reraised_on_give_up(provider: Provider) -> None:
    r, clock = keys("openai", "a"), Clock()
    transport = CredentialTransport(CredentialPool(r, "openai", clock=clock), sleep=clock.sleep)
    with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
        client.post("http://127.0.0.1:9/v1/chat/completions", json={"model": "gpt-4o"})
    assert health(r, "openai", "a", clock.now) == "available", "a network error marks no key"


def test_a_request_of_another_api_shape_gives_up_with_api_mismatch(provider: Provider) -> None:
    r, clock = keys("openai", "a"), Clock()
    client = anthropic_sync(provider, CredentialPool(r, "openai", clock=clock), clock, max_retries=0)
    with pytest.raises(anthropic.APIConnectionError) as e:
        run(client)
    cause = e.value.__cause__
    assert isinstance(cause, NoCredentialError) and cause.action is not None
    assert cause.action["reason"] == "api_mismatch" and provider.seen == []


# ----------------------------------------------------------------------------- streams


def stream_text(client: Any, fail: bool = False) -> str:
    if isinstance(client, openai.OpenAI):
        chunks = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    with client.messages.stream(model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES) as stream:
        return "".join(stream.text_stream)


async def astream_text(client: Any) -> str:
    if isinstance(client, openai.AsyncOpenAI):
        chunks = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
    async with client.messages.stream(model="claude-sonnet-4-6", max_tokens=16, messages=MESSAGES) as stream:
        return "".join([t async for t in stream.text_stream])


def read_stream(client: Any) -> str:
    return asyncio.run(astream_text(client)) if "Async" in type(client).__name__ else stream_text(client)


def call_is_over(r: Registry, call_id: int) -> bool:
    try:
        r.call_cancel(call_id, now=10**13)
    except credpool.UnknownCallError:
        return True
    return False


@pytest.mark.parametrize("sdk", SDKS)
def test_a_stream_passes_through_and_its_end_ends_the_call(provider: Provider, sdk: str) -> None:
    events = OPENAI_STREAM if shape(sdk) == "openai" else ANTHROPIC_STREAM
    provider.answer = lambda s: Sse(events)
    r, clock = keys(shape(sdk), "a"), Clock()
    assert read_stream(SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock)) == "hello"
    assert call_is_over(r, 1) and len(provider.seen) == 1


@pytest.mark.parametrize("sdk", SDKS)
def test_a_stream_failing_midway_is_reported_delivered_and_not_resent(provider: Provider, sdk: str) -> None:
    events = OPENAI_STREAM if shape(sdk) == "openai" else ANTHROPIC_STREAM
    provider.answer = lambda s: Sse(events, fail_after=3)
    r, clock = keys(shape(sdk), "a", "b"), Clock()
    with pytest.raises(Exception) as e:  # the SDK's reader sees the broken stream
        read_stream(SDKS[sdk](provider, CredentialPool(r, shape(sdk), clock=clock), clock))
    assert credpool.response_info(e.value) is not None, repr(e.value)  # a network error, as the SDK raised it
    assert provider.tokens() == ["sk-test-a"], "nothing resent behind the caller's back"
    assert call_is_over(r, 1)


# ----------------------------------------------------------------------------- httpx and httpx2 alike


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_plain_httpx_clients_fall_back_with_the_url_and_model_rewritten(provider: Provider, lib: Any) -> None:
    provider.answer = lambda s: openai_429("1h0m0s", "3600") if s.token == "sk-test-a" else OPENAI_COMPLETION
    r, clock = keys("openai", "a"), Clock()
    r.add_entry("openrouter", {"id": "or", "access_token": "sk-test-or", "base_url": f"{provider.url}/api/v1"}, now=0)
    r.configure_pool("openai", fallback=[{"pool": "openrouter", "model": "openai/gpt-4o"}], now=0)
    transport = CredentialTransport(CredentialPool(r, "openai", clock=clock), sleep=clock.sleep)
    with lib.Client(transport=transport) as client:
        resp = client.post(f"{provider.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": MESSAGES})
    assert resp.status_code == 200 and resp.json()["choices"][0]["message"]["content"] == "hello"
    assert [(s.path, s.token, s.body["model"]) for s in provider.seen] == [
        ("/v1/chat/completions", "sk-test-a", "gpt-4o"),
        ("/api/v1/chat/completions", "sk-test-or", "openai/gpt-4o"),
    ]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_plain_async_httpx_clients_get_an_error_body_still_readable(provider: Provider, lib: Any) -> None:
    provider.answer = lambda s: openai_429("1h0m0s", "3600")
    r, clock = keys("openai", "a"), Clock()

    async def main() -> Any:
        transport = AsyncCredentialTransport(CredentialPool(r, "openai", clock=clock), sleep=ASleep(clock))
        async with lib.AsyncClient(transport=transport) as client:
            return await client.post(f"{provider.url}/v1/chat/completions", json={"model": "gpt-4o"})

    resp = asyncio.run(main())
    assert resp.status_code == 429 and resp.headers["x-should-retry"] == "false"
    assert resp.json()["error"]["code"] == "rate_limit_exceeded"


# ----------------------------------------------------------------------------- concurrency


def test_100_concurrent_async_requests_over_3_keys_one_rate_limited(provider: Provider) -> None:
    provider.answer = lambda s: openai_429("60s", "60") if s.token == "sk-test-a" else OPENAI_COMPLETION
    r = keys("openai", "a", "b", "c")
    r.configure_pool("openai", strategy="round_robin", policy={"preset": "adaptive"}, now=0)
    pool = CredentialPool(r, "openai")

    async def main() -> List[str]:
        client = openai.AsyncOpenAI(api_key="unused", base_url=f"{provider.url}/v1",
                                    http_client=httpx2.AsyncClient(transport=AsyncCredentialTransport(pool)))  # fmt: skip
        async with client:
            outs = await asyncio.gather(*(chat(client) for _ in range(100)))
        return [text(o) for o in outs]

    assert asyncio.run(main()) == ["hello"] * 100, "no request lost"
    hits = {k: provider.hits(f"sk-test-{k}") for k in "abc"}
    print(f"\nhits per key, 100 requests at once: {hits}")
    # every request reached a good key once; the limited key saw only the requests round
    # robin sent it before its first 429 came back (all 100 were in flight at once)
    assert hits["b"] + hits["c"] == 100 and hits["a"] <= 34, hits
    assert {s.retry_count for s in provider.seen} == {"0"}, "no SDK retry"
    assert health(r, "openai", "a", now=int(time.time() * 1000)) != "available"
    # benched once: the other 429s were echoes of requests in flight (no second mark)
    (a_entry,) = [e for e in r.export_state()["state"]["pools"]["openai"]["entries"] if e["id"] == "a"]
    assert a_entry["status"] == "exhausted" and a_entry["failure_streak"] == 1, a_entry["failure_streak"]
    # benched: the next 100 never reach it
    assert asyncio.run(main()) == ["hello"] * 100
    assert provider.hits("sk-test-a") == hits["a"] and len(provider.seen) == 200 + hits["a"]


# ----------------------------------------------------------------------------- secrets


def test_no_secret_in_reprs_errors_or_logs(provider: Provider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    provider.answer = lambda s: OPENAI_401
    r, clock = keys("openai", "a", "b"), Clock()
    pool = CredentialPool(r, "openai", clock=clock)
    transport = CredentialTransport(pool, sleep=clock.sleep)
    client = openai.OpenAI(api_key="unused", base_url=f"{provider.url}/v1", http_client=httpx2.Client(transport=transport))
    texts = [repr(transport), str(transport), repr(AsyncCredentialTransport(pool))]
    with pytest.raises(openai.AuthenticationError) as e:
        run(client)
    texts += [str(e.value), repr(e.value), repr(e.value.response.headers)]
    with pytest.raises(NoCredentialError) as e2:  # both keys benched now
        run(client)
    texts += [str(e2.value), repr(e2.value), repr(e2.value.action)]
    texts += [record.getMessage() for record in caplog.records]
    assert provider.tokens() == ["sk-test-a", "sk-test-b"]
    assert len(caplog.records) > 0 and not any("sk-test" in t for t in texts)


# ----------------------------------------------------------------------------- the README


def test_the_readme_drop_in_example_runs(provider: Provider, tmp_path: Path) -> None:
    provider.answer = lambda s: OPENROUTER_402 if s.token == "sk-first" else OPENAI_COMPLETION
    code = subprocess.run([sys.executable, str(ROOT / "scripts" / "readme-example.py"), "python-dropin"],
                          check=True, capture_output=True, text=True).stdout  # fmt: skip
    env = {**os.environ, "OPENAI_BASE_URL": f"{provider.url}/v1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hello" and provider.tokens() == ["sk-first", "sk-second"]


@pytest.mark.parametrize("lib", [httpx, httpx2], ids=["httpx", "httpx2"])
def test_a_long_error_body_is_classified_from_its_head_and_reaches_the_caller_whole(
    provider: Provider, lib: Any
) -> None:
    long = Json(429, {"retry-after": "3600"}, {"error": {"message": "x" * 200_000, "code": "rate_limit_exceeded"}})
    provider.answer = lambda s: long
    r, clock = keys("openai", "a", "b"), Clock()
    transport = CredentialTransport(CredentialPool(r, "openai", clock=clock), sleep=clock.sleep)
    with lib.Client(transport=transport) as client:
        resp = client.post(f"{provider.url}/v1/chat/completions", json={"model": "gpt-4o"})
        assert resp.status_code == 429 and resp.json() == long.body  # all 200 kB, as sent
    # classified as a 429 with its hour-long hint: both keys benched, the first closed unread
    assert provider.tokens() == ["sk-test-a", "sk-test-b"] and clock.slept == []
    assert {health(r, "openai", k, clock.now) for k in "ab"} != {"available"}


@pytest.mark.parametrize("sdk", ["anthropic", "anthropic-async"])
def test_a_store_pool_refreshes_single_flight_through_the_transport(
    provider: Provider, sdk: str, tmp_path: Path
) -> None:
    provider.answer = lambda s: ANTHROPIC_MESSAGE if s.token == "at-1" else ANTHROPIC_OAUTH_401
    store = credpool.Store.open(tmp_path / "pools.sqlite", writer="w1", seed=1)
    store.add_entry("anthropic", {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0",
                                  "expires_at": 10**13})  # fmt: skip
    clock, issued = Clock(), []
    pool = store.pool("anthropic", clock=clock, refresh=oauth_refresher(issued))
    assert text(run(SDKS[sdk](provider, pool, clock))) == "hello"
    assert issued == ["at-1"] and provider.tokens() == ["at-0", "at-1"]
    assert provider.seen[-1].anthropic_beta == "oauth-2025-04-20"
    other = credpool.Store.open(tmp_path / "pools.sqlite", writer="w2")  # what another process sees
    assert other.credential("anthropic", "o")["refresh_token"] == "rt-1"
