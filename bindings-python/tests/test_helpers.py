"""Tests of the pure-Python helpers (credpool._helpers) with real httpx / openai /
anthropic / requests objects: real clients against mock transports, real exceptions."""

from __future__ import annotations

import json

import anthropic
import httpx
import httpx2
import openai
import pytest
import requests

import credpool
from credpool import CredentialPool, Lease, NoCredentialError, Registry, response_info

URL = "https://api.example.test/v1/chat/completions"


class Clock:
    """Deterministic epoch-ms clock; sleeping advances it."""

    def __init__(self, now: int = 1000) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += int(seconds * 1000)


def make(keys=("a", "b"), pool="openrouter") -> Registry:
    r = Registry(writer="w1", seed=1)
    for k in keys:
        r.add_entry(pool, {"id": k, "access_token": f"sk-test-{k}"}, now=0)
    return r


def entry_status(r: Registry, pool: str, entry_id: str) -> dict:
    out = r.status(pool, now=1)
    assert "sk-test" not in json.dumps(out)
    (p,) = out["pools"]
    (entry,) = [e for e in p["entries"] if e["id"] == entry_id]
    return entry


def scripted(responses):
    """A MockTransport handler answering the scripted (status, headers, json) in turn."""
    seen = []

    def handler(request):
        seen.append(request)
        status, headers, body = responses[min(len(seen) - 1, len(responses) - 1)]
        return (httpx2 if isinstance(request, httpx2.Request) else httpx).Response(
            status, headers=headers, json=body
        )

    return handler, seen


def openai_client(handler) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="sk-unused",
        base_url="https://api.example.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


def anthropic_client(handler) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key="sk-unused",
        base_url="https://api.example.test",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        max_retries=0,
    )


def openai_error(status, headers=None, body=None) -> Exception:
    handler, _ = scripted([(status, headers or {}, body or {"error": {"message": "x"}})])
    with pytest.raises(openai.APIError) as e:
        openai_client(handler).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}]
        )
    return e.value


def anthropic_error(status, headers=None, body=None) -> Exception:
    handler, _ = scripted([(status, headers or {}, body or {"type": "error", "error": {"type": "x"}})])
    with pytest.raises(anthropic.APIError) as e:
        anthropic_client(handler).messages.create(
            model="claude", max_tokens=8, messages=[{"role": "user", "content": "hi"}]
        )
    return e.value


# ----------------------------------------------------------------------------- response_info


def test_httpx_response():
    resp = httpx.Response(
        429,
        headers={"Retry-After": "20", "X-Thing": "1"},
        json={"error": {"message": "slow down"}},
        request=httpx.Request("POST", URL),
    )
    info = response_info(resp)
    assert info == {
        "status": 429,
        "headers": {"retry-after": "20", "x-thing": "1", "content-length": info["headers"]["content-length"],
                    "content-type": "application/json"},
        "body": {"error": {"message": "slow down"}},
        "network_error": None,
    }


def test_httpx_status_error_from_a_real_client():
    handler, _ = scripted([(402, {"retry-after": "5"}, {"error": "no credit"})])
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        resp = client.post(URL, json={})
        with pytest.raises(httpx.HTTPStatusError) as e:
            resp.raise_for_status()
    info = response_info(e.value)
    assert info["status"] == 402 and info["headers"]["retry-after"] == "5"
    assert info["body"] == {"error": "no credit"} and info["network_error"] is None


def test_text_body_is_text_and_bounded():
    big = "x" * 200_000
    resp = httpx.Response(500, text=big, request=httpx.Request("GET", URL))
    info = response_info(resp)
    assert info["status"] == 500 and isinstance(info["body"], str) and len(info["body"]) == 64 * 1024
    # JSON with NaN is not JSON credpool can take: passed on as text instead
    resp = httpx.Response(500, text='{"a": NaN}', headers={"content-type": "application/json"})
    assert response_info(resp)["body"] == '{"a": NaN}'


@pytest.mark.parametrize(
    "exc, kind",
    [
        (httpx.ConnectError("refused"), "connect"),
        (httpx.ReadTimeout("slow"), "timeout"),
        (httpx.ConnectTimeout("slow"), "timeout"),
        (httpx.RemoteProtocolError("bad"), "protocol"),
        (httpx2.ReadError("reset"), "read"),
    ],
)
def test_httpx_transport_errors(exc, kind):
    assert response_info(exc) == {"status": None, "headers": {}, "body": None, "network_error": kind}


def test_httpx_transport_error_from_a_real_client():
    def handler(request):
        raise httpx.ConnectTimeout("timed out", request=request)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(httpx.TimeoutException) as e:
            client.get(URL)
    assert response_info(e.value)["network_error"] == "timeout"


def test_openai_status_errors_raised_by_the_sdk():
    e = openai_error(429, {"retry-after": "20"}, {"error": {"message": "rate", "type": "requests"}})
    assert isinstance(e, openai.RateLimitError)
    info = response_info(e)
    assert info["status"] == 429 and info["headers"]["retry-after"] == "20"
    # the full response body, not only the SDK's "error" member
    assert info["body"] == {"error": {"message": "rate", "type": "requests"}}
    e = openai_error(401)
    assert isinstance(e, openai.AuthenticationError) and response_info(e)["status"] == 401


def test_openai_connection_errors_raised_by_the_sdk():
    def refuse(request):
        raise httpx2.ConnectError("refused", request=request)

    def slow(request):
        raise httpx2.ReadTimeout("slow", request=request)

    for handler, cls, kind in ((refuse, openai.APIConnectionError, "connect"), (slow, openai.APITimeoutError, "timeout")):
        with pytest.raises(cls) as e:
            openai_client(handler).models.list()
        assert response_info(e.value)["network_error"] == kind


def test_anthropic_errors_raised_by_the_sdk():
    e = anthropic_error(429, {"retry-after": "7"}, {"type": "error", "error": {"type": "rate_limit_error"}})
    assert isinstance(e, anthropic.RateLimitError)
    info = response_info(e)
    assert info["status"] == 429 and info["headers"]["retry-after"] == "7"
    assert info["body"]["error"]["type"] == "rate_limit_error"
    e = anthropic_error(529, {}, {"type": "error", "error": {"type": "overloaded_error"}})
    assert isinstance(e, anthropic.APIStatusError) and response_info(e)["status"] == 529

    def slow(request):
        raise httpx2.ReadTimeout("slow", request=request)

    with pytest.raises(anthropic.APITimeoutError) as t:
        anthropic_client(slow).messages.create(model="c", max_tokens=1, messages=[{"role": "user", "content": "x"}])
    assert response_info(t.value)["network_error"] == "timeout"


def test_requests_objects():
    resp = requests.Response()
    resp.status_code = 403
    resp.headers.update({"Content-Type": "application/json", "X-Reason": "nope"})
    resp._content = b'{"error": {"code": "forbidden"}}'
    resp.url = URL
    with pytest.raises(requests.HTTPError) as e:
        resp.raise_for_status()
    for obj in (resp, e.value):
        info = response_info(obj)
        assert info["status"] == 403 and info["headers"]["x-reason"] == "nope"
        assert info["body"] == {"error": {"code": "forbidden"}}
    assert response_info(requests.ConnectTimeout("x"))["network_error"] == "timeout"
    assert response_info(requests.ConnectionError("x"))["network_error"] == "connect"
    assert response_info(requests.exceptions.InvalidURL("x")) is None


def test_builtins_dicts_and_unrelated():
    assert response_info(TimeoutError())["network_error"] == "timeout"
    assert response_info(ConnectionResetError())["network_error"] == "reset"
    assert response_info(ConnectionRefusedError())["network_error"] == "connect"
    assert response_info({"status": 402, "headers": {"Retry-After": "3"}, "body": "x"}) == {
        "status": 402,
        "headers": {"retry-after": "3"},
        "body": "x",
        "network_error": None,
    }
    assert response_info({"network_error": "timeout"})["network_error"] == "timeout"
    for unrelated in (KeyError("k"), ValueError("v"), RuntimeError(), "text", 429, None, object()):
        assert response_info(unrelated) is None


# ----------------------------------------------------------------------------- lease()


def test_openai_402_rotates_to_the_other_key():
    r, clock = make(), Clock(1000)
    r.configure_pool("openrouter", policy={"preset": "hermes"}, now=0)
    pool = CredentialPool(r, "openrouter", clock=clock)
    error = openai_error(402, {}, {"error": {"message": "insufficient credit"}})
    with pytest.raises(openai.APIStatusError) as e:
        with pool.lease(model="gpt-4o") as lease:
            assert (lease.entry_id, lease.lease_id, lease.access_token) == ("a", 1, "sk-test-a")
            assert lease.auth_type == "api_key" and lease.model == "gpt-4o" and lease.reason is None
            clock.now = 2000
            raise error
    assert e.value.status_code == 402  # the exception propagated after being reported
    assert lease.action["type"] == "send" and lease.action["entry_id"] == "b" and lease.again
    assert lease.action["reason"] == "billing" and lease.action["lease_id"] == 2
    # follow the rotation: the same call goes on
    with pool.lease(after=lease) as nxt:
        assert (nxt.entry_id, nxt.lease_id, nxt.access_token, nxt.reason) == ("b", 2, "sk-test-b", "billing")
        assert nxt.call_id == lease.call_id
    assert nxt.action["type"] == "done" and not nxt.again


def test_429_retry_after_20_first_hit_sleeps_then_resends_on_the_same_key():
    r, clock = make(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    with pool.lease() as lease:
        clock.now = 2000
        lease.report(openai_error(429, {"retry-after": "20"}, {"error": {"message": "rate limited"}}))
    a = lease.action
    assert a["type"] == "sleep" and a["until"] == 22000 and a["reason"] == "rate_limit" and lease.again
    assert a["hint"] == {"source": "retry_after", "at": 22000, "clamped": False}
    with pool.lease(after=lease, sleep=clock.sleep) as again:
        assert (again.entry_id, again.lease_id, again.reason) == ("a", 1, "rate_limit")
    assert clock.slept == [20.0] and again.action["type"] == "done"


def test_a_returned_httpx_429_reported_explicitly_is_a_429():
    r, clock = make(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    handler, _ = scripted([(429, {"Retry-After": "20"}, {"error": "slow"})])
    with pool.lease() as lease:
        with httpx.Client(transport=httpx.MockTransport(handler)) as client:
            resp = client.post(URL, headers={"authorization": f"Bearer {lease.access_token}"})
        clock.now = 2000
        assert lease.report(resp)["type"] == "sleep"  # not a success: the clean exit reports nothing more
    assert lease.action["until"] == 22000
    lease.close()  # not following: the call is cancelled, its lease released
    with pytest.raises(credpool.UnknownLeaseError):
        r.report("openrouter", 1, status=200, now=3000)
    lease.close()  # once the call is over, nothing to do


def test_success_reports_done():
    r = make()
    pool = credpool.CredentialPool(r, "openrouter", clock=Clock())
    with pool.lease() as lease:
        pass
    assert lease.action["type"] == "done" and not lease.again
    with pytest.raises(credpool.UnknownLeaseError):
        r.report("openrouter", lease.lease_id, status=200, now=2000)
    with pytest.raises(ValueError):
        pool.lease(after=lease)  # the call is over


def test_unrelated_exception_cancels_without_mark():
    r = make(keys=("a",))
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pytest.raises(KeyError):
        with pool.lease() as lease:
            {}["missing"]
    assert lease.action is None
    e = entry_status(r, "openrouter", "a")
    assert e["health"] == "available" and e["next"] is True, e
    with pytest.raises(credpool.UnknownLeaseError):  # the call's lease was released
        r.release("openrouter", lease.lease_id, now=1001)
    assert r.acquire("openrouter", now=1001)["entry_id"] == "a"  # still usable at once


def test_keyboard_interrupt_after_a_report_cancels_the_call():
    r, clock = make(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    with pytest.raises(KeyboardInterrupt):
        with pool.lease() as lease:
            lease.report({"status": 402})  # rotates: lease 2 on b is open for the call
            raise KeyboardInterrupt
    assert lease.action["type"] == "send" and lease.action["lease_id"] == 2
    with pytest.raises(credpool.UnknownLeaseError):  # cancelled: lease 2 released
        r.release("openrouter", 2, now=1001)


def test_provider_exception_is_reported_and_propagates():
    r = make(keys=("a",))
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pytest.raises(httpx.ConnectError):
        with pool.lease() as lease:
            raise httpx.ConnectError("refused")
    assert lease.action["type"] == "sleep" and lease.action["reason"] == "network_error"


def test_repr_has_no_secret():
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pool.lease(model="gpt-4o") as lease:
        assert lease.access_token == "sk-test-a"
        text = repr(lease) + str(lease) + repr(pool)
        assert "sk-test" not in text
        assert "entry_id='a'" in text and "gpt-4o" in text and "api_key" in text
    seen = []
    pool.call(lambda lease: seen.append(repr(lease) + str(lease)))
    assert seen and "sk-test" not in seen[0]


def test_report_at_most_once():
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pool.lease() as lease:
        first = lease.report(httpx.Response(200))
        with pytest.raises(ValueError):
            lease.report(httpx.Response(200))
    assert first["type"] == "done" and lease.action is first  # exit did not report again
    with pool.lease() as other:
        with pytest.raises(TypeError):
            other.report(KeyError("x"))
    assert other.action["type"] == "done"
    # the raw API takes what response_info gives as report keywords
    d = r.acquire("openrouter", now=5000)
    assert r.report("openrouter", d["lease_id"], **response_info(httpx.Response(402)), now=5001)["type"] == "use"


def test_no_credential_on_an_empty_pool():
    r = Registry(writer="w1", seed=1)
    r.configure_pool("openrouter", now=0)
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pytest.raises(NoCredentialError) as e:
        with pool.lease():
            raise AssertionError("not entered")
    assert e.value.code == "no_credential" and isinstance(e.value, credpool.CredpoolError)
    assert e.value.action["type"] == "give_up" and e.value.action["reason"] == "no_usable_entry"


def test_a_wait_beyond_max_wait_gives_up_with_until():
    r, clock = make(keys=("a",)), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    with pool.lease() as lease:
        lease.report({"status": 402})
    a = lease.action
    assert (a["type"], a["reason"], a["status"], a["budget"]) == ("give_up", "billing", 402, "max_wait_ms")
    assert a["until"] == 3601000 and not lease.again
    assert entry_status(r, "openrouter", "a")["health"] == "exhausted"
    with pytest.raises(NoCredentialError) as e:
        with pool.lease():
            pass
    assert e.value.action["type"] == "give_up" and e.value.action["until"] > clock.now
    assert "3601000" in str(e.value)


def test_fallback_is_followed():
    r, clock = make(keys=("a",)), Clock(1000)
    r.configure_pool("openrouter", fallback=[{"pool": "anthropic", "model": "claude"}], now=0)
    r.add_entry("anthropic", {"id": "z", "access_token": "sk-test-z"}, now=0)
    pool = CredentialPool(r, "openrouter", clock=clock)
    with pool.lease(model="gpt-4o") as lease:
        lease.report(anthropic_error(429, {}, {"type": "error", "error": {"type": "rate_limit_error"}}))
    assert lease.action["type"] == "send" and lease.action["pool"] == "anthropic"
    with pool.lease(after=lease) as fb:
        assert (fb.pool, fb.model, fb.entry_id, fb.access_token) == ("anthropic", "claude", "z", "sk-test-z")
    assert fb.action["type"] == "done"
    # a new call on the primary goes to the chain while the primary cools down
    with pool.lease(model="gpt-4o") as again:
        assert again.pool == "anthropic"


def oauth_registry() -> Registry:
    r = Registry(writer="w1", seed=1)
    r.add_entry(
        "openrouter",
        {"id": "a", "auth_type": "oauth", "access_token": "oauth-access-a", "refresh_token": "oauth-refresh-a"},
        now=0,
    )
    r.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=0)
    return r


def test_refresh_with_a_refresh_callable():
    seen: list[Lease] = []

    def refresh(lease: Lease) -> dict:
        seen.append(lease)
        assert lease.refresh_token == "oauth-refresh-a" and "oauth-" not in repr(lease) + str(lease)
        assert lease.generation == 0 and lease.access_token == "oauth-access-a"
        return {"type": "refreshed", "access_token": "oauth-access-a2", "refresh_token": "oauth-refresh-a2"}

    r, clock = oauth_registry(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock, refresh=refresh)
    with pool.lease() as lease:
        assert lease.access_token == "oauth-access-a" and lease.auth_type == "oauth"
        clock.now = 2000
        lease.report(openai_error(401))
    assert lease.action["type"] == "refresh" and lease.action["generation"] == 0 and lease.again
    with pool.lease(after=lease) as again:
        assert (again.entry_id, again.lease_id, again.access_token) == ("a", 1, "oauth-access-a2")
        assert again.reason == "refreshed"
    assert len(seen) == 1 and again.action["type"] == "done"


def test_without_a_refresh_callable_an_oauth_401_is_marked_and_rotated():
    """No refresh callable: calls start with ``can_refresh`` false, so core never asks for a
    refresh the helper cannot carry out; the 401 marks the OAuth key and the call rotates."""
    r, clock = oauth_registry(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    with pool.lease() as lease:
        lease.report({"status": 401})
    assert lease.action["type"] == "send" and lease.again
    with pool.lease(after=lease) as again:
        assert again.entry_id == "b" and again.reason == "auth"
    assert entry_status(r, "openrouter", "a")["health"] == "auth_failed"


def test_refresh_callable_failure_cancels_and_propagates():
    def refresh(lease):
        raise OSError("token endpoint down")

    r, clock = oauth_registry(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock, refresh=refresh)
    with pool.lease() as lease:
        lease.report({"status": 401})
    with pytest.raises(OSError):
        with pool.lease(after=lease):
            pass
    with pytest.raises(credpool.UnknownLeaseError):
        r.release("openrouter", 1, now=3000)
    assert entry_status(r, "openrouter", "a")["health"] == "available"


# ----------------------------------------------------------------------------- call()


def test_call_follows_retry_rotation_and_succeeds():
    r, clock = make(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    handler, seen = scripted(
        [
            (429, {"retry-after": "2"}, {"error": {"message": "slow"}}),
            (402, {}, {"error": {"message": "no credit"}}),
            (200, {}, {"id": "m", "object": "list", "data": []}),
        ]
    )
    keys = []

    def fn(lease: Lease):
        keys.append(lease.access_token)
        client = openai.OpenAI(
            api_key=lease.access_token,
            base_url="https://api.example.test/v1",
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
            max_retries=0,
        )
        return client.models.list()

    result = pool.call(fn, sleep=clock.sleep)
    assert list(result) == []
    assert keys == ["sk-test-a", "sk-test-a", "sk-test-b"]
    assert clock.slept == [2.0]
    assert [req.headers["authorization"] for req in seen] == ["Bearer sk-test-a"] * 2 + ["Bearer sk-test-b"]


def test_call_reraises_the_provider_error_on_give_up():
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    calls = []

    def fn(lease):
        calls.append(lease.entry_id)
        raise openai_error(400, {}, {"error": {"message": "bad request"}})

    with pytest.raises(openai.BadRequestError):
        pool.call(fn)
    assert calls == ["a"]


def test_call_returns_a_returned_response_on_give_up():
    r = make()
    handler, _ = scripted([(400, {}, {"error": {"message": "bad request"}})])
    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        resp = CredentialPool(r, "openrouter", clock=Clock()).call(lambda lease: client.post(URL))
    assert isinstance(resp, httpx.Response) and resp.status_code == 400  # as httpx would


def test_call_cancels_on_unrelated_exception_and_keeps_to_max_sends():
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pytest.raises(ZeroDivisionError):
        pool.call(lambda lease: 1 / 0)
    assert r.acquire("openrouter", now=5)["type"] == "use"
    with pytest.raises(credpool.UnknownLeaseError):  # the call's lease 1 was released
        r.release("openrouter", 1, now=6)

    clock = Clock()
    calls = []

    def down(lease):
        calls.append(lease.entry_id)
        raise httpx.ConnectError("refused")

    with pytest.raises(httpx.ConnectError):
        CredentialPool(make(), "openrouter", clock=clock).call(down, max_sends=3, sleep=clock.sleep)
    assert len(calls) == 3


def test_call_cancels_on_keyboard_interrupt():
    r = make()

    def fn(lease):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        CredentialPool(r, "openrouter", clock=Clock()).call(fn)
    with pytest.raises(credpool.UnknownLeaseError):  # the call's lease 1 was released, unmarked
        r.release("openrouter", 1, now=6)
    assert entry_status(r, "openrouter", "a")["health"] == "available"


def test_a_failure_after_delivery_ends_the_call():
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pool.lease() as lease:
        lease.report({"network_error": "reset"}, delivered=True)
    assert lease.action["type"] == "give_up" and lease.action["reason"] == "network_error"
    assert not lease.again


def test_call_without_anything_to_send_raises_no_credential():
    r = Registry(writer="w1", seed=1)
    r.configure_pool("openrouter", now=0)
    with pytest.raises(NoCredentialError) as e:
        CredentialPool(r, "openrouter", clock=Clock()).call(lambda lease: pytest.fail("not called"))
    assert e.value.action["type"] == "give_up" and e.value.action["reason"] == "no_usable_entry"


def test_call_waits_for_a_sole_key_within_max_wait():
    r, clock = make(keys=("a",)), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    handler, seen = scripted(
        [
            (429, {}, {"error": {"message": "slow"}}),
            (429, {}, {"error": {"message": "slow"}}),
            (200, {}, {"id": "m", "object": "list", "data": []}),
        ]
    )
    result = pool.call(lambda lease: openai_client(handler).models.list(), sleep=clock.sleep)
    assert list(result) == [] and len(seen) == 3
    assert len(clock.slept) == 2 and clock.slept[1] > 0
    # the same scenario with no patience re-raises the provider's error
    r2, clock2 = make(keys=("a",)), Clock(1000)
    handler2, _ = scripted([(429, {}, {"error": {"message": "slow"}})])
    with pytest.raises(openai.RateLimitError):
        CredentialPool(r2, "openrouter", clock=clock2).call(
            lambda lease: openai_client(handler2).models.list(), sleep=clock2.sleep, max_wait_ms=0
        )
    assert clock2.slept == []


def test_call_follows_a_fallback():
    r, clock = make(keys=("a",)), Clock(1000)
    r.configure_pool("openrouter", fallback=[{"pool": "anthropic", "model": "claude"}], now=0)
    r.add_entry("anthropic", {"id": "z", "access_token": "sk-test-z"}, now=0)
    seen = []

    def fn(lease):
        seen.append((lease.pool, lease.model, lease.access_token))
        if lease.pool == "openrouter":
            raise openai_error(429, {}, {"error": {"message": "slow"}})
        return "ok"

    assert CredentialPool(r, "openrouter", clock=clock).call(fn, model="gpt-4o") == "ok"
    assert seen == [("openrouter", "gpt-4o", "sk-test-a"), ("anthropic", "claude", "sk-test-z")]
    # max_hops=0: no fallback; the call gives up and re-raises the provider's error
    r2 = make(keys=("a",))
    r2.configure_pool("openrouter", fallback=[{"pool": "anthropic"}], now=0)
    r2.add_entry("anthropic", {"id": "z", "access_token": "sk-test-z"}, now=0)
    with pytest.raises(openai.RateLimitError):
        CredentialPool(r2, "openrouter", clock=Clock(1000)).call(fn, max_hops=0)


def test_call_refresh_argument_overrides_the_pool_refresh():
    r, clock = oauth_registry(), Clock(1000)
    pool = CredentialPool(r, "openrouter", clock=clock)
    tokens = []

    def fn(lease):
        tokens.append(lease.access_token)
        return {"status": 401} if len(tokens) == 1 else "answer"  # a dict returned is a success

    def refresh(lease):
        return {"type": "refreshed", "access_token": "oauth-access-a2"}

    assert pool.call(fn, refresh=refresh) == {"status": 401}  # any other value is a success
    tokens.clear()

    def fn401(lease):
        tokens.append(lease.access_token)
        if len(tokens) == 1:
            raise openai_error(401)
        return "answer"

    assert pool.call(fn401, refresh=refresh) == "answer"
    assert tokens == ["oauth-access-a", "oauth-access-a2"]


def test_importing_credpool_imports_no_http_library():
    import subprocess
    import sys

    code = (
        "import sys, credpool\n"
        "credpool.response_info(KeyError('x'))\n"
        "bad = [m for m in ('httpx', 'httpx2', 'openai', 'anthropic', 'requests') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spread_calls_take_different_keys_while_both_are_open():
    # Parallel sub-agents: with spread, the second open call takes the key with fewer open
    # leases; plain calls keep the strategy (fill_first: both on A).
    r = make()
    pool = CredentialPool(r, "openrouter", clock=Clock())
    with pool.lease(spread=True) as first, pool.lease(spread=True) as second:
        assert (first.entry_id, second.entry_id) == ("a", "b")
    with pool.lease() as first, pool.lease() as second:
        assert (first.entry_id, second.entry_id) == ("a", "a")
    assert r.acquire("openrouter", spread=True, now=5000)["entry_id"] == "a"
    assert r.acquire("openrouter", spread=True, now=5001)["entry_id"] == "b"


def test_call_start_takes_spread_and_probe_like_handle():
    r = make()
    first = r.call_start("openrouter", spread=True, now=1000)
    second = r.call_start("openrouter", spread=True, probe=True, now=1001)
    assert (first["entry_id"], second["entry_id"]) == ("a", "b")
