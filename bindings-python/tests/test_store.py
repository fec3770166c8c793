"""credpool.FileStore: a registry persisted in one JSON file shared by threads and processes."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Union

import pytest

import credpool
from credpool import FileStore, InvalidInputError, LockTimeoutError, StorePool

OAUTH = {
    "id": "o",
    "auth_type": "oauth",
    "access_token": "at-0",
    "refresh_token": "rt-0",
    "expires_at": 1000,
}


def open_store(path: Union[str, Path], writer: str, **kw: Any) -> FileStore:
    return FileStore.open(path, writer=writer, seed=7, **kw)


def entry_ids(path: Path, pool: str) -> List[str]:
    doc = json.loads(path.read_bytes())
    return sorted(e["id"] for e in doc["pools"].get(pool, {}).get("entries", []))


def refreshed(n: int) -> Dict[str, Any]:
    return {"type": "refreshed", "access_token": f"at-{n}", "refresh_token": f"rt-{n}", "expires_at": 10_000_000}


# --------------------------------------------------------------------------- persistence


def test_persist_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "pools.json"
    store = open_store(path, "w1")
    assert store.path == str(path) and store.writer == "w1"
    assert not path.exists(), "opening does not create the file"
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=0)
    assert entry_ids(path, "openrouter") == ["a", "b"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = open_store(str(path), "w2")  # a str works as well as a PathLike
    assert [e["id"] for e in again.status("openrouter", now=1)["pools"][0]["entries"]] == ["a", "b"]
    assert again.credential("openrouter", "a", now=1)["access_token"] == "sk-test-a"
    assert again.acquire("openrouter", now=2)["type"] == "use"


def test_two_stores_never_clobber_each_other(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    a, b = open_store(path, "wa"), open_store(path, "wb")
    a.add_entry("openrouter", {"id": "from-a", "access_token": "sk-test-a"}, now=0)
    b.add_entry("openrouter", {"id": "from-b", "access_token": "sk-test-b"}, now=0)  # b never saw from-a
    assert entry_ids(path, "openrouter") == ["from-a", "from-b"]
    a.remove_entry("openrouter", "from-b", now=1)  # known to a only through the file
    b.add_entry("openrouter", {"id": "later", "access_token": "sk-test-c"}, now=2)
    assert entry_ids(path, "openrouter") == ["from-a", "later"]


def test_an_entry_benched_by_one_store_is_not_handed_out_by_the_other(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    a = open_store(path, "wa")
    a.add_entry("openrouter", {"id": "k1", "access_token": "sk-test-1"}, now=0)
    a.add_entry("openrouter", {"id": "k2", "access_token": "sk-test-2"}, now=0)
    b = open_store(path, "wb")
    d = a.acquire("openrouter", now=1_000)
    assert d["entry_id"] == "k1"
    assert a.report("openrouter", d["lease_id"], status=402, now=1_100)["entry_id"] == "k2"
    # b still has k1 healthy in memory; its acquire merges the file first.
    assert b.acquire("openrouter", now=1_200)["entry_id"] == "k2"


def test_reload_reports_whether_the_file_changed(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    a, b = open_store(path, "wa"), open_store(path, "wb")
    assert b.reload() is False
    a.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert b.reload() is True
    assert b.reload() is False


def test_no_write_when_nothing_changed(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    store.add_entry("anthropic", OAUTH, now=0)
    before, data = path.stat().st_mtime_ns, path.read_bytes()
    time.sleep(0.02)
    store.status(now=10)
    store.status("openrouter", now=10)
    store.tick(now=11)
    store.export_state(now=12)
    store.credential("openrouter", "a", now=13)
    store.check_refresh("anthropic", "o", 0, now=14)
    store.reload()
    with pytest.raises(credpool.UnknownLeaseError):
        store.report("openrouter", 99, status=200, now=15)
    assert path.stat().st_mtime_ns == before
    assert path.read_bytes() == data
    store.acquire("openrouter", now=16)  # a selection is a change (counters persist)
    assert path.read_bytes() != data


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize(
    "content",
    [b'{"format": "credpool", "schema_version": 1, "pools": {"key', b"\x00\x01garbage"],
    ids=["truncated", "not-json"],
)
def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "pools.json"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w1")
    assert e.value.code == "invalid_state"
    assert str(path) in str(e.value)
    assert path.read_bytes() == content
    # moved aside only on request; then a fresh store starts over
    aside = FileStore.move_aside(path)
    assert not path.exists() and ".corrupt-" in aside and Path(aside).read_bytes() == content
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert entry_ids(path, "openrouter") == ["a"]


def test_a_file_corrupted_under_a_running_store_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    path.write_bytes(b"{oops")
    with pytest.raises(InvalidInputError) as e:
        store.acquire("openrouter", now=5)
    assert e.value.code == "invalid_state"
    assert path.read_bytes() == b"{oops"


@pytest.mark.parametrize(
    ("doc", "code"),
    [
        ({"format": "credpool", "schema_version": 99, "pools": {}}, "unsupported_schema_version"),
        ({"hello": "world"}, "foreign_document"),
    ],
)
def test_unknown_schema_version_or_foreign_document(tmp_path: Path, doc: Dict[str, Any], code: str) -> None:
    path = tmp_path / "pools.json"
    data = json.dumps(doc).encode()
    path.write_bytes(data)
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w1")
    assert e.value.code == code
    assert path.read_bytes() == data


def test_io_error_is_a_store_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(credpool.StoreIOError) as e:
        open_store(blocker / "pools.json", "w1")
    assert e.value.code == "io" and isinstance(e.value, OSError)
    with pytest.raises(credpool.StoreIOError):
        FileStore.move_aside(tmp_path / "missing.json")


# --------------------------------------------------------------------------- options


def test_default_path_honours_credpool_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDPOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    store = FileStore.open(writer="w1")
    assert store.path == str(tmp_path / "home" / "pools.json")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert (tmp_path / "home" / "pools.json").exists()
    monkeypatch.delenv("CREDPOOL_HOME")
    assert FileStore.open().path == str(tmp_path / "xdg" / "credpool" / "pools.json")


def test_defaults_repr_and_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = FileStore.open(path, durable=False)
    assert len(store.writer) == 12
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-secret"}, now=0)
    text = repr(store)
    assert str(path) in text and store.writer in text and "sk-test-secret" not in text
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError):
            FileStore.open(path, lock_timeout=bad)
    with pytest.raises(InvalidInputError):
        FileStore.open(path, seed=-1)
    with pytest.raises(TypeError):
        FileStore()


def test_same_methods_as_registry() -> None:
    registry_methods = {n for n in dir(credpool.Registry) if not n.startswith("_")}
    assert registry_methods <= set(dir(FileStore))


def test_every_registry_method_persists(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    s = open_store(path, "w1")
    s.configure_pool("openrouter", strategy="round_robin", now=0)
    s.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    s.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=0)
    s.set_priority("openrouter", "b", -1, now=1)
    s.seed(env={"OPENAI_API_KEY": "sk-env-secret-123"}, now=1)
    d = s.handle({"type": "acquire", "pool": "openrouter"}, now=2)
    s.release("openrouter", d["lease_id"], now=3)
    d = s.acquire("openrouter", now=4)
    s.report("openrouter", d["lease_id"], status=429, now=5)
    s.begin_turn(now=6)
    s.reset("openrouter", now=7)
    other = open_store(path, "w2")
    st = other.status("openrouter", now=8)["pools"][0]
    assert st["strategy"] == "round_robin"
    assert {e["id"]: e["priority"] for e in st["entries"]}["b"] == -1
    assert "openai" in {p["pool"] for p in other.status(now=8)["pools"]}
    assert "sk-env-secret-123" not in path.read_text()
    state = other.export_state(now=9)["state"]
    assert s.sync(state, now=10)["type"] == "synced"


# --------------------------------------------------------------------------- the lock


def _ticker(stop: threading.Event, ticks: List[float]) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.005)


def test_lock_held_by_a_thread_times_out_and_the_gil_is_released(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    holder = open_store(path, "w1")
    holder.add_entry("anthropic", OAUTH, now=0)
    entered, release = threading.Event(), threading.Event()

    def slow_refresh(credential: Dict[str, Any]) -> Dict[str, Any]:
        entered.set()
        release.wait(10)
        return refreshed(1)

    results: List[Any] = []
    t = threading.Thread(
        target=lambda: results.append(holder.refresh("anthropic", "o", 0, slow_refresh, now=2_000))
    )
    t.start()
    assert entered.wait(10)
    waiter = open_store(path, "w2", lock_timeout=0.5)
    stop = threading.Event()
    ticks: List[float] = []
    ticker = threading.Thread(target=_ticker, args=(stop, ticks))
    ticker.start()
    try:
        start = time.monotonic()
        with pytest.raises(LockTimeoutError) as e:
            waiter.acquire("anthropic", now=2_100)
        end = time.monotonic()
    finally:
        stop.set()
        ticker.join()
        release.set()
        t.join()
    assert e.value.code == "lock_timeout" and isinstance(e.value, TimeoutError)
    assert "pools.json.lock" in str(e.value)
    assert end - start >= 0.45
    # Another Python thread kept running while this one waited for the lock.
    during = [x for x in ticks if start + 0.05 < x < end - 0.05]
    assert len(during) >= 10, f"only {len(during)} ticks while waiting: GIL held?"
    assert results and results[0]["type"] == "use" and results[0]["reason"] == "refreshed"
    assert waiter.credential("anthropic", "o", now=3_000)["access_token"] == "at-1"


HOLDER = textwrap.dedent(
    """
    import sys
    from credpool import FileStore

    store = FileStore.open(sys.argv[1], writer="child", seed=1)

    def refresh_fn(credential):
        assert credential["refresh_token"] == "rt-0", credential
        print("holding", flush=True)
        sys.stdin.readline()
        return {"type": "refreshed", "access_token": "at-child", "refresh_token": "rt-child"}

    d = store.refresh("anthropic", "o", 0, refresh_fn, now=2_000)
    print(d["type"], d["reason"], flush=True)
    """
)


def test_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1", lock_timeout=0.3)
    store.add_entry("anthropic", OAUTH, now=0)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "holding"
        with pytest.raises(LockTimeoutError):
            store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=1)
        # Our own refresh of generation 0 waits for the child as well ...
        with pytest.raises(LockTimeoutError):
            store.refresh("anthropic", "o", 0, lambda c: pytest.fail("must not run"), now=2_000)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["use", "refreshed"]
        assert child.wait(10) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    # ... and once the child is done, it adopts the child's token: rt-0 is never replayed.
    d = store.refresh("anthropic", "o", 0, lambda c: pytest.fail("must not run"), now=2_100)
    assert d["type"] == "use" and d["reason"] == "adopted"
    cred = store.credential("anthropic", "o", now=2_200)
    assert (cred["access_token"], cred["refresh_token"], cred["generation"]) == ("at-child", "rt-child", 1)


# --------------------------------------------------------------------------- single-flight refresh


def test_refresh_is_single_flight_across_stores(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    a = open_store(path, "wa")
    a.add_entry("anthropic", OAUTH, now=0)
    b = open_store(path, "wb")
    da = a.acquire("anthropic", now=2_000)
    db = b.acquire("anthropic", now=2_000)
    for d in (da, db):
        assert d["type"] == "refresh" and d["generation"] == 0
    seen: List[Dict[str, Any]] = []

    def refresh_a(credential: Dict[str, Any]) -> Dict[str, Any]:
        seen.append(credential)
        return refreshed(1)

    def refresh_b(credential: Dict[str, Any]) -> Dict[str, Any]:
        raise AssertionError("b must adopt, not refresh again")

    out_a = a.refresh("anthropic", "o", 0, refresh_a, lease_id=da["lease_id"], now=2_100)
    assert out_a["type"] == "use" and out_a["reason"] == "refreshed"
    out_b = b.refresh("anthropic", "o", 0, refresh_b, lease_id=db["lease_id"], now=2_200)
    assert out_b["type"] == "use" and out_b["reason"] == "adopted"
    assert len(seen) == 1
    assert seen[0]["entry_id"] == "o" and seen[0]["refresh_token"] == "rt-0"
    assert seen[0]["access_token"] == "at-0" and seen[0]["generation"] == 0 and seen[0]["expires_at"] == 1000
    cred = b.credential("anthropic", "o", now=2_300)
    assert (cred["access_token"], cred["refresh_token"], cred["generation"]) == ("at-1", "rt-1", 1)


def test_concurrent_refreshes_from_threads_call_refresh_fn_once(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    open_store(path, "w0").add_entry("anthropic", OAUTH, now=0)
    stores = [open_store(path, f"w{i}") for i in range(4)]
    calls: List[str] = []

    def refresh_fn(credential: Dict[str, Any]) -> Dict[str, Any]:
        calls.append(credential["refresh_token"])
        time.sleep(0.05)
        return refreshed(1)

    outs: List[Dict[str, Any]] = []
    threads = [
        threading.Thread(target=lambda s=s: outs.append(s.refresh("anthropic", "o", 0, refresh_fn, now=2_000)))
        for s in stores + stores  # two threads per store object too
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["rt-0"]
    assert sorted(o["reason"] for o in outs) == ["adopted"] * 7 + ["refreshed"]


def test_a_raising_refresh_fn_changes_nothing_and_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    data = path.read_bytes()

    class Boom(Exception):
        pass

    def boom(credential: Dict[str, Any]) -> Dict[str, Any]:
        raise Boom("provider down")

    with pytest.raises(Boom):
        store.refresh("anthropic", "o", 0, boom, now=2_000)
    assert path.read_bytes() == data
    other = open_store(path, "w2", lock_timeout=0.2)
    other.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=2_001)  # lock is free
    cred = other.credential("anthropic", "o", now=2_002)
    assert (cred["access_token"], cred["refresh_token"], cred["generation"]) == ("at-0", "rt-0", 0)
    # a bad result is refused the same way
    with pytest.raises(InvalidInputError):
        store.refresh("anthropic", "o", 0, lambda c: {"type": "nope"}, now=2_003)
    bad = {"type": "refreshed", "access_token": "x", "expires_at": "sk-test-leak"}
    with pytest.raises(InvalidInputError) as e:
        store.refresh("anthropic", "o", 0, lambda c: bad, now=2_003)
    assert e.value.code == "invalid_input" and "sk-test-leak" not in str(e.value)
    with pytest.raises(InvalidInputError):
        store.refresh("anthropic", "o", 0, "not callable", now=2_003)  # type: ignore[arg-type]
    assert store.credential("anthropic", "o", now=2_004)["generation"] == 0
    # a failed refresh is recorded (the entry is benched), then nothing is left to refresh
    out = store.refresh("anthropic", "o", 0, lambda c: {"type": "failed", "terminal": True}, now=2_005)
    assert out["type"] == "fail" and out["reason"] == "refresh_failed"
    assert other.status("anthropic", now=2_006)["pools"][0]["entries"][0]["health"] == "dead"


def test_refresh_fn_calling_back_into_the_same_store_raises(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    with pytest.raises(InvalidInputError) as e:
        store.refresh("anthropic", "o", 0, lambda c: store.status(now=1), now=2_000)
    assert "refresh_fn" in str(e.value)
    # the store still works afterwards
    assert store.check_refresh("anthropic", "o", 0, now=2_001)["needed"] is True


def test_store_pool_refreshes_single_flight(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    calls: List[Any] = []

    def refresh(lease: credpool.Lease) -> Dict[str, Any]:
        calls.append(lease.refresh_token)
        return refreshed(1)

    pool = store.pool("anthropic", refresh=refresh, clock=lambda: 2_000)
    assert isinstance(pool, StorePool) and isinstance(pool, credpool.CredentialPool)
    with pool.lease() as lease:
        assert lease.access_token == "at-1" and lease.reason == "refreshed"
    assert calls == ["rt-0"]
    other = open_store(path, "w2")
    assert other.credential("anthropic", "o", now=2_100)["access_token"] == "at-1"
