"""credpool.Store: a registry persisted in an SQLite database shared by threads and processes
(and the JSON store file of earlier versions, migrated on open)."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple, Union

import pytest

import credpool
from credpool import InvalidInputError, LockTimeoutError, Store, StorePool

fcntl = pytest.importorskip("fcntl")  # the store's locks are flock(2) locks

OAUTH = {
    "id": "o",
    "auth_type": "oauth",
    "access_token": "at-0",
    "refresh_token": "rt-0",
    "expires_at": 1000,
}


def open_store(path: Union[str, Path], writer: str, **kw: Any) -> Store:
    return Store.open(path, writer=writer, seed=7, **kw)


def sibling(path: Path, suffix: str) -> Path:
    """A file next to the database: ``-wal``, ``-shm``, ``.lock``, ``.refresh-lock``."""
    return path.with_name(path.name + suffix)


def exported(path: Path) -> Dict[str, Any]:
    """The state a fresh store on ``path`` reads: what another process sees."""
    return Store.open(path, writer="reader").export_state()["state"]  # type: ignore[no-any-return]


def entry_ids(path: Path, pool: str) -> List[str]:
    return sorted(e["id"] for e in exported(path)["pools"].get(pool, {}).get("entries", []))


def stored_bytes(path: Path) -> bytes:
    """Everything the database holds on disk: its file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in (path, sibling(path, "-wal")) if p.exists())


def on_disk(path: Path) -> Dict[str, Tuple[int, bytes]]:
    """The database and its log as (mtime, bytes): equal snapshots mean nothing was written."""
    files = (path, sibling(path, "-wal"))
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in files if p.exists()}


def refreshed(n: int) -> Dict[str, Any]:
    return {"type": "refreshed", "access_token": f"at-{n}", "refresh_token": f"rt-{n}", "expires_at": 10_000_000}


@contextlib.contextmanager
def lock_held(lock_file: Path) -> Iterator[None]:
    """Holds one of the store's flock locks, as a process inside a transaction does."""
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def lock_is_free(lock_file: Path) -> bool:
    with open(lock_file, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
        return True


# --------------------------------------------------------------------------- names


def test_file_store_is_a_deprecated_alias_of_store() -> None:
    with pytest.warns(DeprecationWarning, match="credpool.Store"):
        assert credpool.FileStore is credpool.Store
    with pytest.warns(DeprecationWarning, match="credpool.AsyncStore"):
        assert credpool.AsyncFileStore is credpool.AsyncStore
    assert {"Store", "AsyncStore", "FileStore", "AsyncFileStore"} <= set(credpool.__all__)
    with pytest.warns(DeprecationWarning):
        from credpool import AsyncFileStore, FileStore  # what existing code imports still works

    assert FileStore is Store and AsyncFileStore is credpool.AsyncStore
    assert "deprecated" in (credpool.__doc__ or "").lower()


# --------------------------------------------------------------------------- persistence


def test_persist_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "pools.sqlite"
    store = open_store(path, "w1")
    assert store.path == str(path) and store.location == str(path) and store.writer == "w1"
    assert not path.exists(), "opening does not create the database"
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=0)
    assert entry_ids(path, "openrouter") == ["a", "b"]
    assert path.read_bytes().startswith(b"SQLite format 3\x00")
    for p in (path, sibling(path, "-wal"), sibling(path, "-shm"), sibling(path, ".lock")):
        if p.exists():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    again = open_store(str(path), "w2")  # a str works as well as a PathLike
    assert [e["id"] for e in again.status("openrouter", now=1)["pools"][0]["entries"]] == ["a", "b"]
    assert again.credential("openrouter", "a", now=1)["access_token"] == "sk-test-a"
    assert again.acquire("openrouter", now=2)["type"] == "use"


def test_two_stores_never_clobber_each_other(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    a, b = open_store(path, "wa"), open_store(path, "wb")
    a.add_entry("openrouter", {"id": "from-a", "access_token": "sk-test-a"}, now=0)
    b.add_entry("openrouter", {"id": "from-b", "access_token": "sk-test-b"}, now=0)  # b never saw from-a
    assert entry_ids(path, "openrouter") == ["from-a", "from-b"]
    a.remove_entry("openrouter", "from-b", now=1)  # known to a only through the database
    b.add_entry("openrouter", {"id": "later", "access_token": "sk-test-c"}, now=2)
    assert entry_ids(path, "openrouter") == ["from-a", "later"]


def test_an_entry_benched_by_one_store_is_not_handed_out_by_the_other(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    a = open_store(path, "wa")
    a.add_entry("openrouter", {"id": "k1", "access_token": "sk-test-1"}, now=0)
    a.add_entry("openrouter", {"id": "k2", "access_token": "sk-test-2"}, now=0)
    b = open_store(path, "wb")
    d = a.acquire("openrouter", now=1_000)
    assert d["entry_id"] == "k1"
    assert a.report("openrouter", d["lease_id"], status=402, now=1_100)["entry_id"] == "k2"
    # b still has k1 healthy in memory; its acquire merges the database first.
    assert b.acquire("openrouter", now=1_200)["entry_id"] == "k2"


def test_reload_reports_whether_the_database_changed(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    a, b = open_store(path, "wa"), open_store(path, "wb")
    assert b.reload() is False
    a.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert b.reload() is True
    assert b.reload() is False


def test_no_write_when_nothing_changed(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    store.add_entry("anthropic", OAUTH, now=0)
    before = on_disk(path)
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
    assert on_disk(path) == before
    store.acquire("openrouter", now=16)  # a selection is a change (counters persist)
    assert on_disk(path) != before


# --------------------------------------------------------------------------- the JSON store of earlier versions

#: A JSON store file as credpool wrote it before the database (pools.json, schema 1),
#: written by hand: configuration, a benched key with its counters, an extra field, an
#: OAuth entry some refreshes in, a tombstone.
LEGACY: Dict[str, Any] = {
    "format": "credpool",
    "schema_version": 1,
    "pools": {
        "openrouter": {
            "strategy": "round_robin",
            "fallback": [{"pool": "anthropic"}],
            "entries": [
                {"id": "a", "priority": 0, "access_token": "sk-legacy-a", "extra": {"team": "infra"}},
                {
                    "id": "b",
                    "priority": 1,
                    "access_token": "sk-legacy-b",
                    "status": "exhausted",
                    "status_at": 5_000,
                    "cooldown_until": 99_999_999_999,
                    "failure_class": "billing",
                    "last_error": {"code": 402, "reason": "insufficient_credits", "message": "top up"},
                    "request_counts": {"old-writer": 3},
                },
            ],
        },
        "anthropic": {
            "entries": [
                {
                    "id": "o",
                    "auth_type": "oauth",
                    "access_token": "at-legacy",
                    "refresh_token": "rt-legacy",
                    "expires_at": 10**13,
                    "token_generation": 4,
                }
            ],
            "removed": {"gone": 1_234},
        },
    },
}


def registry_written() -> Dict[str, Any]:
    """A JSON store's document as the JSON store wrote it: a registry's export, after
    acquires, a 402 and a lease left open."""
    r = credpool.Registry(writer="old", seed=1)
    r.add_entry("openrouter", {"id": "k1", "access_token": "sk-legacy-1"}, now=0)
    r.add_entry("openrouter", {"id": "k2", "access_token": "sk-legacy-2"}, now=0)
    d = r.acquire("openrouter", now=1_000)
    r.report("openrouter", d["lease_id"], status=402, now=1_001)
    r.acquire("openrouter", now=1_002)
    return r.export_state(now=1_003)["state"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("make_doc", [lambda: LEGACY, registry_written], ids=["by-hand", "registry-written"])
def test_a_json_store_of_an_earlier_version_is_migrated_losslessly(tmp_path: Path, make_doc: Any) -> None:
    doc = make_doc()
    legacy, database = tmp_path / "pools.json", tmp_path / "pools.sqlite"
    legacy.write_text(json.dumps(doc))
    before = credpool.Registry(writer="x", state=doc).export_state(now=6_000)["state"]
    store = open_store(legacy, "new")
    assert store.path == str(database) and database.exists()
    assert store.export_state(now=6_000)["state"] == before, "the migrated state is the JSON store's"
    marker = json.loads(legacy.read_text())
    assert marker["format"] == "credpool" and marker["schema_version"] == 2
    assert marker["moved_to"] == "pools.sqlite"
    assert "sk-legacy" not in legacy.read_text() and "rt-legacy" not in legacy.read_text(), "the marker keeps no secret"
    # Later opens of the old path follow the marker to the same database (migrated once).
    again = open_store(legacy, "later")
    assert again.path == str(database)
    assert again.export_state(now=6_000)["state"] == before
    store.add_entry("openrouter", {"id": "new", "access_token": "sk-test-new"}, now=6_001)
    assert "new" in entry_ids(legacy, "openrouter") and "new" in entry_ids(database, "openrouter")
    assert json.loads(legacy.read_text()) == marker, "writes go to the database, not the old file"
    # The state document itself keeps schema 1 (a Registry reads it); only the marker is 2.
    assert exported(database)["schema_version"] == 1


def test_a_json_store_named_sqlite_moves_next_to_itself(tmp_path: Path) -> None:
    legacy = tmp_path / "store.sqlite"  # a JSON store file that happens to end in .sqlite
    legacy.write_text(json.dumps(LEGACY))
    store = open_store(legacy, "new")
    assert store.path == str(tmp_path / "store.sqlite.db")
    assert json.loads(legacy.read_text())["moved_to"] == "store.sqlite.db"
    assert [e["id"] for e in store.status("openrouter", now=6_000)["pools"][0]["entries"]] == ["a", "b"]


def test_a_bad_marker_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "pools.json"
    data = json.dumps({"format": "credpool", "schema_version": 2, "moved_to": "../elsewhere.sqlite"}).encode()
    path.write_bytes(data)
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w1")
    assert e.value.code == "invalid_state"
    assert path.read_bytes() == data


# --------------------------------------------------------------------------- bad files

SQLITE_HEADER = b"SQLite format 3\x00"


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("pools.json", b'{"format": "credpool", "schema_version": 1, "pools": {"key', "invalid_state"),
        ("pools.sqlite", b"\x00\x01garbage", "invalid_state"),
        ("pools.sqlite", SQLITE_HEADER + b"\xff" * 4_000, "foreign_document"),
    ],
    ids=["truncated-json", "not-json", "damaged-database"],
)
def test_a_corrupt_file_is_refused_and_left_untouched(tmp_path: Path, name: str, content: bytes, code: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w1")
    assert e.value.code == code
    assert str(path) in str(e.value)
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == [name]
    # moved aside only on request; then a fresh store starts over
    aside = Store.move_aside(path)
    assert not path.exists() and ".corrupt-" in aside and Path(aside).read_bytes() == content
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert entry_ids(path, "openrouter") == ["a"]


def test_a_file_replaced_under_a_running_store_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    os.replace(path, tmp_path / "elsewhere")  # e.g. an editor saving over it
    path.write_bytes(b"{oops")
    for write in (
        lambda: store.acquire("openrouter", now=5),
        lambda: store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=6),
    ):
        with contextlib.suppress(InvalidInputError):
            write()
        assert path.read_bytes() == b"{oops"
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w2")
    assert e.value.code == "invalid_state"
    assert path.read_bytes() == b"{oops"


@pytest.mark.parametrize("how", ["replaced", "overwritten-in-place"])
def test_a_file_corrupted_under_a_running_store_is_refused_and_not_overwritten(tmp_path: Path, how: str) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    if how == "replaced":
        os.replace(path, tmp_path / "elsewhere")
    path.write_bytes(b"{oops")
    try:
        with pytest.raises(InvalidInputError) as e:
            store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=5)
        assert e.value.code in ("invalid_state", "foreign_document")
    finally:
        assert path.read_bytes() == b"{oops"


def _newer_database(path: Path) -> None:
    open_store(path, "w1").add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE meta SET value = 99 WHERE key = 'layout'")
        db.commit()


def _foreign_database(path: Path) -> None:
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('hi')")
        db.commit()


def _json(doc: Dict[str, Any]) -> Any:
    return lambda path: path.write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("pools.json", _json({"format": "credpool", "schema_version": 99, "pools": {}}), "unsupported_schema_version"),
        ("pools.json", _json({"hello": "world"}), "foreign_document"),
        ("pools.sqlite", _newer_database, "unsupported_schema_version"),
        ("pools.sqlite", _foreign_database, "foreign_document"),
    ],
    ids=["newer-json", "foreign-json", "newer-database", "foreign-database"],
)
def test_unknown_schema_version_or_foreign_document(tmp_path: Path, name: str, make: Any, code: str) -> None:
    path = tmp_path / name
    make(path)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(InvalidInputError) as e:
        open_store(path, "w1")
    assert e.value.code == code
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".lock")}
    assert after == {k: v for k, v in files.items() if not k.endswith(".lock")}, "left untouched, nothing created"


def test_io_error_is_a_store_io_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(credpool.StoreIOError) as e:
        open_store(blocker / "pools.sqlite", "w1")
    assert e.value.code == "io" and isinstance(e.value, OSError)
    with pytest.raises(credpool.StoreIOError):
        Store.move_aside(tmp_path / "missing.sqlite")


# --------------------------------------------------------------------------- options


def test_default_path_honours_credpool_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDPOOL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    store = Store.open(writer="w1")
    assert store.path == str(tmp_path / "home" / "pools.sqlite")
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    assert (tmp_path / "home" / "pools.sqlite").exists()
    monkeypatch.delenv("CREDPOOL_HOME")
    assert Store.open().path == str(tmp_path / "xdg" / "credpool" / "pools.sqlite")
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert Store.open().path == str(tmp_path / "user" / ".config" / "credpool" / "pools.sqlite")


def test_the_default_path_migrates_a_legacy_pools_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "pools.json").write_text(json.dumps(LEGACY))
    monkeypatch.setenv("CREDPOOL_HOME", str(home))
    store = Store.open(writer="w1")
    assert store.path == str(home / "pools.sqlite")
    assert [e["id"] for e in store.status("openrouter", now=6_000)["pools"][0]["entries"]] == ["a", "b"]
    assert json.loads((home / "pools.json").read_text())["moved_to"] == "pools.sqlite"
    assert Store.open(writer="w2").path == str(home / "pools.sqlite"), "the database is the default now"


def test_defaults_repr_and_bad_options(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = Store.open(path, durable=False)
    assert len(store.writer) == 12
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-secret"}, now=0)
    text = repr(store)
    assert text.startswith("<credpool.Store ")
    assert str(path) in text and store.writer in text and "sk-test-secret" not in text
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError):
            Store.open(path, lock_timeout=bad)
    with pytest.raises(InvalidInputError):
        Store.open(path, seed=-1)
    with pytest.raises(TypeError):
        Store()


def test_same_methods_as_registry() -> None:
    registry_methods = {n for n in dir(credpool.Registry) if not n.startswith("_")}
    assert registry_methods <= set(dir(Store))


def test_every_registry_method_persists(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
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
    on_disk = stored_bytes(path)
    assert b"sk-test-a" in on_disk, "the scan reads where secrets are"
    assert b"sk-env-secret-123" not in on_disk
    state = other.export_state(now=9)["state"]
    assert s.sync(state, now=10)["type"] == "synced"


# --------------------------------------------------------------------------- the locks


def _ticker(stop: threading.Event, ticks: List[float]) -> None:
    while not stop.is_set():
        ticks.append(time.monotonic())
        time.sleep(0.005)


@contextlib.contextmanager
def ticking() -> Iterator[List[float]]:
    """Another Python thread ticking every 5 ms: it only ticks while the GIL is free."""
    stop, ticks = threading.Event(), []  # type: ignore[var-annotated]
    ticker = threading.Thread(target=_ticker, args=(stop, ticks))
    ticker.start()
    try:
        yield ticks
    finally:
        stop.set()
        ticker.join()


def assert_waited_without_the_gil(ticks: List[float], start: float, end: float) -> None:
    assert end - start >= 0.45
    during = [x for x in ticks if start + 0.05 < x < end - 0.05]
    assert len(during) >= 10, f"only {len(during)} ticks while waiting: GIL held?"


def test_the_write_lock_held_times_out_and_the_gil_is_released(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    open_store(path, "w1").add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    waiter = open_store(path, "w2", lock_timeout=0.5)
    with lock_held(sibling(path, ".lock")), ticking() as ticks:
        start = time.monotonic()
        with pytest.raises(LockTimeoutError) as e:
            waiter.acquire("openrouter", now=2_100)
        end = time.monotonic()
    assert e.value.code == "lock_timeout" and isinstance(e.value, TimeoutError)
    assert "pools.sqlite.lock" in str(e.value)
    assert_waited_without_the_gil(ticks, start, end)
    assert waiter.acquire("openrouter", now=2_200)["entry_id"] == "a", "free again"


def test_a_refresh_held_by_a_thread_blocks_only_other_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    holder = open_store(path, "w1")
    holder.add_entry("anthropic", OAUTH, now=0)
    holder.add_entry("openrouter", {"id": "k", "access_token": "sk-test-k"}, now=0)
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
    try:
        assert entered.wait(10)
        waiter = open_store(path, "w2", lock_timeout=0.5)
        # Every other write goes on while the refresh runs (another Store on the same path;
        # a write waiting for the refresh would time out after 0.5 s) ...
        d = waiter.acquire("openrouter", now=2_010)
        assert d["type"] == "use" and d["entry_id"] == "k"
        assert waiter.report("openrouter", d["lease_id"], status=200, now=2_020)["type"] == "done"
        waiter.add_entry("openrouter", {"id": "k2", "access_token": "sk-test-k2"}, now=2_030)
        assert waiter.acquire("anthropic", now=2_040)["type"] == "refresh", "the token is still the stale one"
        # ... only another refresh waits (and times out), with the GIL released.
        with ticking() as ticks:
            start = time.monotonic()
            with pytest.raises(LockTimeoutError) as e:
                waiter.refresh("anthropic", "o", 0, lambda c: pytest.fail("must not run"), now=2_100)
            end = time.monotonic()
        assert e.value.code == "lock_timeout" and "pools.sqlite.refresh-lock" in str(e.value)
        assert_waited_without_the_gil(ticks, start, end)
    finally:
        release.set()
        t.join()
    assert results and results[0]["type"] == "use" and results[0]["reason"] == "refreshed"
    assert waiter.credential("anthropic", "o", now=3_000)["access_token"] == "at-1"
    assert entry_ids(path, "openrouter") == ["k", "k2"], "the refresh's write merged the others'"


def test_threads_sharing_a_store_go_on_while_it_refreshes(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    store.add_entry("openrouter", {"id": "k", "access_token": "sk-test-k"}, now=0)
    entered, release = threading.Event(), threading.Event()
    calls: List[str] = []

    def slow_refresh(credential: Dict[str, Any]) -> Dict[str, Any]:
        calls.append(credential["refresh_token"])
        entered.set()
        release.wait(10)
        return refreshed(1)

    outs: List[Dict[str, Any]] = []

    def refresh_in_thread() -> None:
        outs.append(store.refresh("anthropic", "o", 0, slow_refresh, now=2_000))

    first = threading.Thread(target=refresh_in_thread)
    first.start()
    second = threading.Thread(target=refresh_in_thread)
    try:
        assert entered.wait(10)
        second.start()  # a second refresh through the same object waits for the first
        d = store.acquire("openrouter", now=2_010)  # same object, other thread: goes on
        assert store.report("openrouter", d["lease_id"], status=200, now=2_020)["type"] == "done"
        assert store.status("anthropic", now=2_030)["pools"][0]["entries"][0]["id"] == "o"
        second.join(0.3)
        assert second.is_alive() and len(outs) == 0
    finally:
        release.set()
        first.join()
        second.join()
    assert calls == ["rt-0"], "single-flight within the process as well"
    assert sorted(o["reason"] for o in outs) == ["adopted", "refreshed"]


HOLDER = textwrap.dedent(
    """
    import sys
    from credpool import Store

    store = Store.open(sys.argv[1], writer="child", seed=1)

    def refresh_fn(credential):
        assert credential["refresh_token"] == "rt-0", credential
        print("holding", flush=True)
        sys.stdin.readline()
        return {"type": "refreshed", "access_token": "at-child", "refresh_token": "rt-child"}

    d = store.refresh("anthropic", "o", 0, refresh_fn, now=2_000)
    print(d["type"], d["reason"], flush=True)
    print(" ".join(e["id"] for e in store.status("openrouter")["pools"][0]["entries"]), flush=True)
    """
)

LOCKER = textwrap.dedent(
    """
    import fcntl, sys

    with open(sys.argv[1], "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # what a process inside a transaction holds
        print("holding", flush=True)
        sys.stdin.readline()
    """
)


@contextlib.contextmanager
def child(script: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def go_on(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


def test_the_write_lock_held_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1", lock_timeout=0.3)
    store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    with child(LOCKER, str(sibling(path, ".lock"))) as proc:
        with pytest.raises(LockTimeoutError):
            store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=1)
        with pytest.raises(LockTimeoutError):
            store.acquire("openrouter", now=2)
        assert store.status("openrouter", now=3)["pools"][0]["entries"][0]["id"] == "a", "reads need no lock"
        go_on(proc)
        assert proc.wait(10) == 0
    store.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=4)
    assert entry_ids(path, "openrouter") == ["a", "b"]


def test_a_refresh_held_by_another_process_lets_other_writes_go_on(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1", lock_timeout=0.3)
    store.add_entry("anthropic", OAUTH, now=0)
    with child(HOLDER, str(path)) as proc:
        assert proc.stdout is not None
        # While the child's refresh_fn runs, this process's writes go on ...
        store.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=1)
        d = store.acquire("openrouter", now=2)
        assert d["type"] == "use" and d["entry_id"] == "a"
        assert store.report("openrouter", d["lease_id"], status=402, now=3)["reason"] == "billing"
        assert store.acquire("anthropic", now=2_000)["type"] == "refresh", "the token is still the stale one"
        # ... but our own refresh of generation 0 waits for the child's.
        with pytest.raises(LockTimeoutError) as e:
            store.refresh("anthropic", "o", 0, lambda c: pytest.fail("must not run"), now=2_000)
        assert "refresh-lock" in str(e.value)
        go_on(proc)
        assert proc.stdout.readline().split() == ["use", "refreshed"]
        assert proc.stdout.readline().split() == ["a"], "the child merged what was written meanwhile"
        assert proc.wait(10) == 0
    # Once the child is done, the refresh adopts the child's token: rt-0 is never replayed.
    d = store.refresh("anthropic", "o", 0, lambda c: pytest.fail("must not run"), now=2_100)
    assert d["type"] == "use" and d["reason"] == "adopted"
    cred = store.credential("anthropic", "o", now=2_200)
    assert (cred["access_token"], cred["refresh_token"], cred["generation"]) == ("at-child", "rt-child", 1)
    status = {e["id"]: e for e in exported(path)["pools"]["openrouter"]["entries"]}
    assert status["a"]["status"] == "exhausted", "the 402 written during the refresh survived it"


# --------------------------------------------------------------------------- single-flight refresh


def test_refresh_is_single_flight_across_stores(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
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
    assert b"rt-0" not in stored_bytes(path), "the replaced refresh token left the database"


def test_concurrent_refreshes_from_threads_call_refresh_fn_once(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
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


def test_a_raising_refresh_fn_frees_the_lock_and_its_token_is_never_sent_again(tmp_path: Path) -> None:
    """The refresh fn raising after the store recorded the send: whether the provider got
    the token is unknown, so it is never sent again (fail closed, SECURITY.md): the entry
    asks for a new login. The locks are free and other writers go on."""
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)

    class Boom(Exception):
        pass

    def boom(credential: Dict[str, Any]) -> Dict[str, Any]:
        raise Boom("provider down")

    with pytest.raises(Boom):
        store.refresh("anthropic", "o", 0, boom, now=2_000)
    assert lock_is_free(sibling(path, ".refresh-lock")) and lock_is_free(sibling(path, ".lock"))
    other = open_store(path, "w2", lock_timeout=0.2)
    other.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=2_001)
    cred = other.credential("anthropic", "o", now=2_002)
    assert (cred["access_token"], cred["refresh_token"], cred["generation"]) == ("at-0", "rt-0", 0)
    sent: list[Dict[str, Any]] = []

    def record(credential: Dict[str, Any]) -> Dict[str, Any]:
        sent.append(credential)
        return {"type": "refreshed", "access_token": "at-1", "refresh_token": "rt-1"}

    out = other.refresh("anthropic", "o", 0, record, now=2_003)
    assert sent == [] and out["type"] == "fail" and out["reason"] == "refresh_failed"
    entry = other.status("anthropic", now=2_004)["pools"][0]["entries"][0]
    assert entry["health"] == "dead"
    assert lock_is_free(sibling(path, ".refresh-lock"))


@pytest.mark.parametrize(
    "result",
    [
        lambda c: {"type": "nope"},
        lambda c: {"type": "refreshed", "access_token": "x", "expires_at": "sk-test-leak"},
        "not callable",
    ],
)
def test_a_bad_refresh_result_is_refused_without_quoting_it(tmp_path: Path, result: Any) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    with pytest.raises(InvalidInputError) as e:
        store.refresh("anthropic", "o", 0, result, now=2_003)
    assert e.value.code == "invalid_input" and "sk-test-leak" not in str(e.value)
    assert store.credential("anthropic", "o", now=2_004)["generation"] == 0
    assert lock_is_free(sibling(path, ".refresh-lock"))


def test_a_failed_refresh_is_recorded_and_benches_the_entry(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    out = store.refresh("anthropic", "o", 0, lambda c: {"type": "failed", "terminal": True}, now=2_005)
    assert out["type"] == "fail" and out["reason"] == "refresh_failed"
    assert store.status("anthropic", now=2_006)["pools"][0]["entries"][0]["health"] == "dead"


def test_refresh_fn_may_use_the_store_but_not_refresh_through_it(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
    store = open_store(path, "w1")
    store.add_entry("anthropic", OAUTH, now=0)
    store.add_entry("openrouter", {"id": "k", "access_token": "sk-test-k"}, now=0)
    seen: List[Any] = []

    def uses_the_store(credential: Dict[str, Any]) -> Dict[str, Any]:
        seen.append(store.status("anthropic", now=1)["pools"][0]["entries"][0]["id"])
        seen.append(store.acquire("openrouter", now=1)["entry_id"])
        return refreshed(1)

    assert store.refresh("anthropic", "o", 0, uses_the_store, now=2_000)["reason"] == "refreshed"
    assert seen == ["o", "k"]
    # Starting a refresh from inside refresh_fn would wait for itself: it raises instead.
    store.add_entry("anthropic", dict(OAUTH, id="p"), now=2_001)
    with pytest.raises(InvalidInputError) as e:
        store.refresh("anthropic", "p", 0, lambda c: store.refresh("anthropic", "o", 1, lambda c2: refreshed(2)), now=2_002)
    assert "inside a refresh" in str(e.value) and e.value.code == "invalid_input"
    # nothing changed, and the store still works afterwards
    assert store.check_refresh("anthropic", "p", 0, now=2_003)["needed"] is True
    assert store.credential("anthropic", "o", now=2_004)["generation"] == 1


def test_store_pool_refreshes_single_flight(tmp_path: Path) -> None:
    path = tmp_path / "pools.sqlite"
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


def test_a_store_path_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path) -> None:
    """A FIFO at the store path used to block the open forever (ignoring lock_timeout)."""
    fifo = tmp_path / "pools.sqlite"
    os.mkfifo(fifo)
    with pytest.raises(credpool.StoreIOError) as e:
        Store.open(fifo, writer="w1", lock_timeout=0.2)
    assert e.value.code == "io" and "not a regular file" in str(e.value)
