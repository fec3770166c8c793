"""``pool.acall`` / ``pool.alease`` and ``AsyncStore``: the async twins of the helpers,
over the same call steps; a store's lock waits never stall the event loop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List

import httpx2
import openai
import pytest

import credpool
from credpool import (
    AsyncCredentialTransport,
    AsyncStore,
    CredentialPool,
    Lease,
    NoCredentialError,
    Store,
)
from mock_provider import OPENAI_401, OPENAI_COMPLETION, OPENROUTER_402, Provider, openai_429, running
from test_helpers import Clock
from test_transport import ASleep, keys

MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def provider() -> Iterator[Provider]:
    yield from running()


def test_acall_awaits_an_async_openai_call_and_classifies_its_error(provider: Provider) -> None:
    provider.answer = lambda s: openai_429("2s", "2") if s.token == "sk-test-a" else OPENAI_COMPLETION
    r, clock = keys("openai", "a", "b"), Clock()
    pool = CredentialPool(r, "openai", clock=clock)
    raised: List[str] = []

    async def ask(lease: Lease) -> Any:
        client = openai.AsyncOpenAI(api_key=lease.access_token, base_url=f"{provider.url}/v1", max_retries=0)
        try:
            return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        except openai.APIError as e:
            raised.append(type(e).__name__)
            raise

    out = asyncio.run(pool.acall(ask, model="gpt-4o", sleep=ASleep(clock)))
    assert out.choices[0].message.content == "hello"
    assert raised == ["RateLimitError"] * 2 and clock.slept == [2.0]
    assert provider.tokens() == ["sk-test-a", "sk-test-a", "sk-test-b"]


def test_acall_gives_up_by_raising_the_last_error_and_a_sync_fn_works_too(provider: Provider) -> None:
    provider.answer = lambda s: openai_429("1h0m0s", "3600")
    r, clock = keys("openai", "a"), Clock()
    pool = CredentialPool(r, "openai", clock=clock)

    def ask(lease: Lease) -> Any:  # not a coroutine: its value is used as is
        return httpx2.post(f"{provider.url}/v1/chat/completions", json={"model": "gpt-4o"},
                           headers={"authorization": f"Bearer {lease.access_token}"})  # fmt: skip

    resp = asyncio.run(pool.acall(ask, sleep=ASleep(clock)))
    assert resp.status_code == 429
    with pytest.raises(NoCredentialError):  # benched for an hour
        asyncio.run(pool.acall(ask, sleep=ASleep(clock)))


def test_alease_loop_and_areport() -> None:
    r, clock = keys("openrouter", "a", "b"), Clock()
    pool = CredentialPool(r, "openrouter", clock=clock)

    async def main() -> List[str]:
        seen: List[str] = []
        lease = None
        while lease is None or lease.again:
            async with pool.alease(after=lease, sleep=ASleep(clock)) as lease:
                seen.append(lease.entry_id)
                if lease.entry_id == "a":
                    with pytest.raises(TypeError):
                        lease.report({"status": 402})  # an async lease reports with areport
                    assert (await lease.areport({"status": 402, "body": OPENROUTER_402.body}))["type"] == "send"
        assert lease.action is not None and lease.action["type"] == "done"
        return seen

    assert asyncio.run(main()) == ["a", "b"]


def test_a_cancelled_acall_releases_its_lease() -> None:
    r, clock = keys("openai", "a"), Clock()
    pool = CredentialPool(r, "openai", clock=clock)
    started = asyncio.Event()

    async def hang(lease: Lease) -> Any:
        started.set()
        await asyncio.sleep(60)

    async def main() -> None:
        task = asyncio.ensure_future(pool.acall(hang))
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    with pytest.raises(credpool.UnknownCallError):  # the call is gone, its lease released
        r.call_cancel(1, now=clock.now)
    assert asyncio.run(pool.acall(lambda lease: "served")) == "served"


def test_an_async_refresh_callable_runs_on_the_loop(provider: Provider) -> None:
    r, clock = credpool.Registry(writer="w1", seed=1), Clock()
    r.add_entry("openai", {"id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0"}, now=0)
    loops: List[Any] = []

    async def refresh(lease: Lease) -> Dict[str, Any]:
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0)
        return {"type": "refreshed", "access_token": "at-1", "refresh_token": "rt-1"}

    provider.answer = lambda s: OPENAI_COMPLETION if s.token == "at-1" else OPENAI_401
    pool = CredentialPool(r, "openai", clock=clock, refresh=refresh)

    async def main() -> Any:
        client = openai.AsyncOpenAI(api_key="unused", base_url=f"{provider.url}/v1", http_client=httpx2.AsyncClient(
            transport=AsyncCredentialTransport(pool, sleep=ASleep(clock))))  # fmt: skip
        return await client.chat.completions.create(model="gpt-4o", messages=MESSAGES), asyncio.get_running_loop()

    out, loop = asyncio.run(main())
    assert out.choices[0].message.content == "hello" and loops == [loop]
    assert provider.tokens() == ["at-0", "at-1"]


# ----------------------------------------------------------------------------- AsyncStore


def test_async_store_methods_and_a_store_pool_in_the_transport(provider: Provider, tmp_path: Path) -> None:
    provider.answer = lambda s: OPENROUTER_402 if s.token == "sk-test-a" else OPENAI_COMPLETION
    path = tmp_path / "pools.sqlite"

    async def main() -> Any:
        store = await AsyncStore.open(path, writer="w1", seed=1)
        for k in ("a", "b"):
            await store.add_entry("openai", {"id": k, "access_token": f"sk-test-{k}"})
        assert "sk-test" not in repr(store) and repr(store).startswith("AsyncStore(")
        assert store.path == str(path) and store.location == str(path) and store.writer == "w1"
        pool = store.pool("openai")
        client = openai.AsyncOpenAI(api_key="unused", base_url=f"{provider.url}/v1",
                                    http_client=httpx2.AsyncClient(transport=AsyncCredentialTransport(pool)))  # fmt: skip
        out = await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        status = await store.status("openai")
        await store.aclose()
        return out, status

    out, status = asyncio.run(main())
    assert out.choices[0].message.content == "hello" and provider.tokens() == ["sk-test-a", "sk-test-b"]
    assert {e["id"]: e["health"] for e in status["pools"][0]["entries"]}["a"] != "available"
    # the state is in the database: another process (here a sync Store) sees it
    assert Store.open(path, writer="w2").status("openai")["pools"][0]["entries"][0]["id"] == "a"


def test_async_file_store_is_a_deprecated_alias_that_still_opens_a_store(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning):
        AsyncFileStore = credpool.AsyncFileStore
    assert AsyncFileStore is AsyncStore

    async def main() -> Any:
        store = await AsyncFileStore.open(tmp_path / "pools.sqlite", writer="w1")
        await store.add_entry("openai", {"id": "a", "access_token": "sk-test-a"})
        await store.aclose()
        return store

    store = asyncio.run(main())
    assert isinstance(store, AsyncStore) and isinstance(store.store, Store)
    assert Store.open(tmp_path / "pools.sqlite").status("openai")["pools"][0]["entries"][0]["id"] == "a"


# The holders: another process inside a transaction (the write lock), or refreshing the
# token (the refresh lock), for `hold` seconds.
HOLDERS = {
    "write-lock": textwrap.dedent(
        """
        import fcntl, sys, time
        with open(sys.argv[1] + ".lock", "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)  # what a process inside a transaction holds
            print("holding", flush=True)
            time.sleep(float(sys.argv[2]))
        """
    ),
    "refresh-lock": textwrap.dedent(
        """
        import sys, time, credpool
        store = credpool.Store.open(sys.argv[1], writer="holder", seed=2)
        def slow(credential):
            print("holding", flush=True)
            time.sleep(float(sys.argv[2]))  # the store's refresh lock is held meanwhile
            return {"type": "refreshed", "access_token": "at-1", "refresh_token": "rt-1", "expires_at": 10**13}
        store.refresh("anthropic", "o", 0, slow)
        """
    ),
}


@pytest.mark.parametrize("lock", sorted(HOLDERS))
def test_the_event_loop_keeps_ticking_while_another_process_holds_a_store_lock(tmp_path: Path, lock: str) -> None:
    path, hold = tmp_path / "pools.sqlite", 1.0
    # Held write lock: the call's acquire waits for it. Held refresh lock: the token is
    # expired, so the call's refresh waits for the holder's, then adopts its token.
    expires_at = 10**13 if lock == "write-lock" else 1_000
    Store.open(path, writer="setup").add_entry("anthropic", {
        "id": "o", "auth_type": "oauth", "access_token": "at-0", "refresh_token": "rt-0", "expires_at": expires_at})  # fmt: skip

    async def main() -> Dict[str, Any]:
        store = await AsyncStore.open(path, writer="waiter", seed=1)
        holder = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLDERS[lock], str(path), str(hold),
                                                      stdout=asyncio.subprocess.PIPE)  # fmt: skip
        assert holder.stdout is not None
        assert (await holder.stdout.readline()).strip() == b"holding"
        lags: List[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before - 0.01)

        ticking = asyncio.ensure_future(ticker())
        start = time.monotonic()
        pool = store.pool("anthropic", refresh=lambda lease: pytest.fail("the holder's token is adopted"))
        token = await pool.acall(lambda lease: lease.access_token)  # waits for the lock off the loop
        waited = time.monotonic() - start
        stop.set()
        await ticking
        assert await holder.wait() == 0
        await store.aclose()
        return {"waited": waited, "max_lag": max(lags), "ticks": len(lags), "token": token}

    out = asyncio.run(main())
    print(f"\nevent loop while another process held the {lock}: waited {out['waited']:.3f} s, "
          f"{out['ticks']} ticks of 10 ms, max lag {out['max_lag'] * 1000:.1f} ms")
    expected = "at-0" if lock == "write-lock" else "at-1"
    assert out["token"] == expected, "the call ran after the holder let go (with its token, after a refresh)"
    assert out["waited"] > 0.5 * hold, "the lock was really held meanwhile"
    assert out["max_lag"] < hold / 4, out
    assert out["ticks"] > 10
