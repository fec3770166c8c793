"""credpool.Store over Redis: ``Store.open("redis://...")`` opens credpool-store's
RedisStore.

Against a real server: CREDPOOL_REDIS_URL names one (scripts/test-redis.sh starts it and
sets the variable); without it these tests are skipped, saying so. The outage and password
tests start their own redis-server on a free loopback port (CREDPOOL_REDIS_SERVER, else
``redis-server`` on PATH), so they can kill and restart it. The database test of the same
new surface (location, has_pending, flush) always runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Iterator, List, Mapping, Optional

import pytest

import credpool
from credpool import Store, StoreIOError

URL = os.environ.get("CREDPOOL_REDIS_URL")
SERVER = os.environ.get("CREDPOOL_REDIS_SERVER", "redis-server")
needs_redis = pytest.mark.skipif(
    not URL,
    reason="CREDPOOL_REDIS_URL is not set (scripts/test-redis.sh runs these against a redis-server it starts)",
)

OAUTH = {
    "id": "o",
    "auth_type": "oauth",
    "access_token": "at-0",
    "refresh_token": "rt-0",
    "expires_at": 1000,
}

_namespaces = [0]


def fresh_url() -> str:
    """The test server's URL with a namespace no other test (or run) uses."""
    assert URL
    _namespaces[0] += 1
    sep = "&" if "?" in URL else "?"
    return f"{URL}{sep}namespace=py-{os.getpid()}-{time.time_ns()}-{_namespaces[0]}"


def open_store(location: str, writer: str, **kw: Any) -> Store:
    kw.setdefault("reconnect_interval", 0.0)
    return Store.open(location, writer=writer, seed=1, **kw)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            reply = s.recv(64)
            return reply.startswith(b"+PONG") or reply.startswith(b"-NOAUTH")
    except OSError:
        return False


class Server:
    """A redis-server child on a free loopback port (append-only file: a restart keeps data)."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.args = list(args)
        self.dir = tempfile.TemporaryDirectory(prefix="credpool-redis-py-")
        self.proc: Optional[subprocess.Popen[bytes]] = None
        self.restart()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def restart(self) -> None:
        assert self.proc is None
        self.proc = subprocess.Popen(
            [SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--dir", self.dir.name, "--appendonly", "yes", "--appendfsync", "always", *self.args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not answers(self.port):
            assert self.proc.poll() is None, f"{SERVER} exited {self.proc.returncode}"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL: the server is gone at once (mid-run loss)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        self.kill()
        self.dir.cleanup()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    try:
        yield s
    finally:
        s.stop()


def two_keys(store: Store, pool: str = "p") -> None:
    store.configure_pool(pool, strategy="fill_first")
    store.add_entry(pool, {"id": "k0", "access_token": "sk-redis-0"})
    store.add_entry(pool, {"id": "k1", "access_token": "sk-redis-1"})


def status_of(store: Store, pool: str, entry_id: str) -> Mapping[str, Any]:
    pools = store.status(pool)["pools"]
    return next(e for e in pools[0]["entries"] if e["id"] == entry_id)


def test_database_store_location_pending_and_flush(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(str(path), "w")
    assert store.location == str(path) and store.path == str(path)
    assert store.has_pending() is False
    store.add_entry("p", {"id": "k", "access_token": "sk-file"})
    assert store.flush() is None
    assert "location=" in repr(store) and "sk-file" not in repr(store)


@needs_redis
def test_unreachable_at_open_is_a_coded_io_error_without_the_password() -> None:
    port = free_port()
    with pytest.raises(StoreIOError) as info:
        open_store(f"redis://user:pw-s3cret-9@127.0.0.1:{port}", "w", connect_timeout=0.3)
    assert info.value.code == "io"
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "pw-s3cret-9" not in str(info.value) and "pw-s3cret-9" not in repr(info.value)


@needs_redis
def test_invalid_options_are_invalid_input() -> None:
    assert URL
    for kw in ({"io_timeout": -1.0}, {"refresh_lease": float("nan")}, {"namespace": "has space"}):
        with pytest.raises(credpool.InvalidInputError):
            open_store(URL, "w", **kw)


@needs_redis
def test_two_stores_on_one_url_see_each_others_marks() -> None:
    url = fresh_url()
    a, b = open_store(url, "wa"), open_store(url, "wb")
    assert a.path is None and a.location == URL
    assert URL in repr(a)
    two_keys(a)
    d = b.acquire("p")
    assert d["entry_id"] == "k0", "b sees the entries a added"
    marked = b.report("p", d["lease_id"], status=402)
    assert marked.get("entry_id") != "k0", marked
    assert a.acquire("p")["entry_id"] == "k1", "a does not hand out the entry b benched"
    assert status_of(a, "p", "k0")["health"] == "exhausted"
    c = open_store(url, "wc")
    assert [e["id"] for e in c.export_state()["state"]["pools"]["p"]["entries"]] == ["k0", "k1"]
    assert a.has_pending() is False


@needs_redis
def test_refresh_is_single_flight_across_stores() -> None:
    url = fresh_url()
    open_store(url, "setup").add_entry("o", OAUTH)
    stores = [open_store(url, f"w{i}") for i in range(3)]
    decisions = [s.acquire("o", now=2000) for s in stores]
    assert all(d["type"] == "refresh" for d in decisions)
    used: List[str] = []
    results: List[Mapping[str, Any]] = [{}] * 3
    errors: List[BaseException] = []

    def run(i: int) -> None:
        def refresh_fn(cred: Mapping[str, Any]) -> Mapping[str, Any]:
            used.append(cred["refresh_token"])
            time.sleep(0.05)  # the provider round trip, lock held
            return {
                "type": "refreshed",
                "access_token": f"at-{i + 1}",
                "refresh_token": f"rt-{i + 1}",
                "expires_at": int(time.time() * 1000) + 3_600_000,
            }

        try:
            d = decisions[i]
            results[i] = stores[i].refresh("o", "o", d["generation"], refresh_fn, lease_id=d["lease_id"])
        except BaseException as e:  # noqa: BLE001 - surfaced below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert used == ["rt-0"], "the refresh token was used once"
    assert sorted(r["reason"] for r in results) == ["adopted", "adopted", "refreshed"]
    assert stores[0].credential("o", "o")["refresh_token"] != "rt-0"


@needs_redis
def test_other_calls_go_on_while_a_refresh_runs() -> None:
    """While one store's refresh_fn runs (the entry's Redis refresh lock held), another
    store on the URL and other threads of the refreshing store object acquire and report;
    only another refresh of the entry waits (here: times out)."""
    url = fresh_url()
    holder = open_store(url, "holder")
    holder.add_entry("o", OAUTH)
    two_keys(holder)
    entered, release = threading.Event(), threading.Event()
    results: List[Mapping[str, Any]] = []

    def slow(cred: Mapping[str, Any]) -> Mapping[str, Any]:
        entered.set()
        release.wait(10)
        return {"type": "refreshed", "access_token": "at-1", "refresh_token": "rt-1",
                "expires_at": int(time.time() * 1000) + 3_600_000}  # fmt: skip

    t = threading.Thread(target=lambda: results.append(holder.refresh("o", "o", 0, slow, now=2000)))
    t.start()
    try:
        assert entered.wait(10)
        other = open_store(url, "other", lock_timeout=0.3)
        for store in (other, holder):  # another store; the refreshing object from this thread
            d = store.acquire("p")
            assert d["type"] == "use", d
            assert store.report("p", d["lease_id"], status=200)["type"] == "done"
        with pytest.raises(credpool.LockTimeoutError):
            other.refresh("o", "o", 0, lambda cred: pytest.fail("must not run"), now=2000)
    finally:
        release.set()
        t.join()
    assert results and results[0]["reason"] == "refreshed"
    assert other.refresh("o", "o", 0, lambda cred: pytest.fail("must not run"), now=2100)["reason"] == "adopted"


@needs_redis
def test_store_pool_refreshes_over_redis() -> None:
    url = fresh_url()
    open_store(url, "setup").add_entry("o", OAUTH)
    calls: List[str] = []

    def refresh(lease: Any) -> Mapping[str, Any]:
        calls.append(lease.refresh_token)
        return {"type": "refreshed", "access_token": "at-9", "refresh_token": "rt-9",
                "expires_at": int(time.time() * 1000) + 3_600_000}

    pool = open_store(url, "w").pool("o", refresh=refresh)
    assert "location=" in repr(pool)
    with pool.lease() as lease:
        assert lease.access_token == "at-9"
    assert calls == ["rt-0"]


@needs_redis
def test_redis_killed_mid_run_marks_queue_and_merge(server: Server) -> None:
    opts = {"connect_timeout": 0.3, "io_timeout": 0.3}
    store = open_store(server.url, "w", **opts)
    two_keys(store)
    assert store.has_pending() is False
    server.kill()
    d = store.acquire("p")
    assert d["type"] == "use" and d["entry_id"] == "k0", "acquire decides on the last known state"
    store.report("p", d["lease_id"], status=429, headers={"retry-after": "600"})
    assert store.has_pending() is True, "the mark waits for Redis"
    nxt = store.acquire("p")
    assert nxt["entry_id"] == "k1", "the local mark is honoured while Redis is down"
    store.report("p", nxt["lease_id"], status=200)
    with pytest.raises(StoreIOError):
        store.flush()
    assert store.has_pending() is True
    with pytest.raises(StoreIOError):  # a refresh never proceeds without the lock
        store.refresh("p", "k0", 0, lambda cred: {"type": "adopted"})
    server.restart()
    store.flush()
    assert store.has_pending() is False
    other = open_store(server.url, "other", **opts)
    assert status_of(other, "p", "k0")["health"] not in ("available", None), "the queued 429 reached Redis"
    assert other.acquire("p")["entry_id"] == "k1"


@needs_redis
def test_password_url_is_redacted_everywhere() -> None:
    s = Server("--requirepass", "pw-s3cret-7")
    try:
        store = open_store(f"redis://:pw-s3cret-7@127.0.0.1:{s.port}", "w")
        assert store.location == f"redis://***@127.0.0.1:{s.port}"
        store.add_entry("p", {"id": "k", "access_token": "sk-inside"})
        for text in (repr(store), repr(store.pool("p")), str(store)):
            assert "pw-s3cret-7" not in text and "sk-inside" not in text, text
        with pytest.raises(credpool.CredpoolError) as info:
            open_store(f"redis://:pw-wrong-5@127.0.0.1:{s.port}", "w")
        assert "pw-wrong-5" not in str(info.value) and "pw-wrong-5" not in repr(info.value)
    finally:
        s.stop()
