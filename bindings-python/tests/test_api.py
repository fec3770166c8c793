"""API tests of the credpool Python binding (behaviour itself is pinned by test_vectors.py)."""

import re
from pathlib import Path
import threading

import pytest

import credpool
from credpool import CredpoolError, Registry


def make() -> Registry:
    r = Registry(writer="w1", seed=1)
    r.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"}, now=0)
    r.add_entry("openrouter", {"id": "b", "access_token": "sk-test-b"}, now=0)
    return r


def test_acquire_report_round_trip():
    r = make()
    d = r.acquire("openrouter", now=1000)
    assert d["type"] == "use" and d["entry_id"] == "a" and d["lease_id"] == 1
    out = r.report("openrouter", d["lease_id"], status=200, now=1001)
    assert out == {"type": "done", "changed": out["changed"]}
    # handle() takes the same dicts the vectors use
    d2 = r.handle({"type": "acquire", "pool": "openrouter"}, now=1002)
    assert d2["lease_id"] == 2


def test_default_now_and_writer_and_seed():
    r = Registry()
    assert re.fullmatch(r"[0-9a-f]{12}", r.writer)
    r.add_entry("openrouter", {"id": "a", "access_token": "sk-test-a"})
    assert r.acquire("openrouter")["type"] == "use"


@pytest.mark.parametrize("seed", [-1, 2**64, 1.5, "1", True])
def test_bad_seed(seed):
    with pytest.raises(credpool.InvalidInputError) as e:
        Registry(writer="w1", seed=seed)
    assert e.value.code == "invalid_input"


def test_state_round_trip():
    r = make()
    state = r.export_state(now=5)["state"]
    r2 = Registry(writer="w2", seed=3, state=state)
    assert r2.acquire("openrouter", now=10)["type"] == "use"


def test_error_codes():
    codes = credpool.error_codes()
    assert "unknown_lease" in codes and "invalid_clock" in codes and "internal" in codes
    assert len(codes) == len(set(codes))
    assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", c) for c in codes)


def test_error_classes():
    r = make()
    with pytest.raises(credpool.UnknownLeaseError) as e:
        r.report("openrouter", 99, status=200, now=1)
    assert e.value.code == "unknown_lease"
    assert isinstance(e.value, KeyError) and isinstance(e.value, CredpoolError)
    with pytest.raises(credpool.UnknownPoolError) as e:
        r.acquire("nous", now=1)
    assert e.value.code == "unknown_pool"
    with pytest.raises(credpool.DuplicateEntryError) as e:
        r.add_entry("openrouter", {"id": "a", "access_token": "sk-test-x"}, now=1)
    assert e.value.code == "duplicate_entry"
    with pytest.raises(credpool.InvalidInputError) as e:
        r.handle({"type": "nope"}, now=1)
    assert e.value.code == "invalid_input" and isinstance(e.value, ValueError)
    with pytest.raises(CredpoolError) as e:
        r.handle({"type": "acquire", "pool": "openrouter", "x": float("nan")}, now=1)
    assert e.value.code == "invalid_input"
    with pytest.raises(CredpoolError) as e:
        Registry(writer="w1", seed=1, state={"hello": 1})
    assert e.value.code in credpool.error_codes()


@pytest.mark.parametrize(
    "now", [-1, 2**53 + 1, 2**64, float("nan"), float("inf"), 1.5, 1000.0, True, "1000"]
)
def test_bad_now(now):
    r = make()
    with pytest.raises(CredpoolError) as e:
        r.acquire("openrouter", now=now)
    assert e.value.code == "invalid_clock"
    with pytest.raises(CredpoolError) as e:
        r.handle({"type": "status"}, now=now)
    assert e.value.code == "invalid_clock"


def test_now_bounds_ok():
    r = make()
    assert r.handle({"type": "status"}, now=0)
    assert r.handle({"type": "status"}, now=2**53)


def test_threads_share_one_registry():
    r = make()
    errors = []

    def work():
        try:
            for i in range(200):
                d = r.acquire("openrouter", now=1000 + i)
                assert d["type"] == "use", d
                r.report("openrouter", d["lease_id"], status=200, now=1000 + i)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    d = r.acquire("openrouter", now=5000)
    assert d["lease_id"] == 8 * 200 + 1


def test_repr_has_no_secrets():
    r = make()
    text = repr(r) + str(r)
    assert "sk-test" not in text and "w1" in text
    with pytest.raises(CredpoolError) as e:
        r.add_entry("openrouter", {"id": "a", "access_token": "sk-test-secret-zz"}, now=1)
    assert "sk-test-secret-zz" not in str(e.value) and "sk-test-secret-zz" not in repr(e.value)


ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_error_codes_match_core_and_stub():
    """Drift test: error_codes() == core's ErrorCode::as_str arms == the .pyi Literal."""
    core = (ROOT / "core" / "src" / "error.rs").read_text()
    as_str = core[core.index("fn as_str") :]
    as_str = as_str[: as_str.index("\n    }\n")]
    from_core = re.findall(r'Self::\w+ => "([a-z_]+)"', as_str)
    stub = (ROOT / "bindings-python" / "python" / "credpool" / "_credpool.pyi").read_text()
    literal = stub[stub.index("ErrorCode = Literal[") : stub.index("]", stub.index("ErrorCode = Literal["))]
    from_stub = re.findall(r'"([a-z_]+)"', literal)
    assert credpool.error_codes() == from_core == from_stub


def test_version_is_the_core_crate_version():
    cargo = (Path(__file__).resolve().parents[2] / "Cargo.toml").read_text()
    assert credpool.version() == re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)


def test_release_closes_a_lease_without_marking():
    r = make()
    use = r.acquire("openrouter", now=1000)
    assert r.release("openrouter", use["lease_id"], now=1100) == {
        "type": "released",
        "lease_id": use["lease_id"],
        "changed": False,
    }
    with pytest.raises(credpool.UnknownLeaseError):
        r.release("openrouter", use["lease_id"], now=1200)
    assert r.acquire("openrouter", now=1300)["entry_id"] == use["entry_id"]


def test_credential_and_management_methods():
    r = make()
    use = r.acquire("openrouter", now=1000)
    cred = r.credential("openrouter", use["entry_id"], now=1000)
    assert (cred["type"], cred["access_token"], cred["generation"]) == ("credential", "sk-test-a", 0)
    with pytest.raises(credpool.UnknownEntryError):
        r.credential("openrouter", "nope")
    assert r.configure_pool("openrouter", strategy="round_robin", policy={"preset": "adaptive"}, now=0) == {
        "type": "pool_configured",
        "pool": "openrouter",
        "changed": True,
    }
    with pytest.raises(credpool.InvalidInputError):
        r.configure_pool("openrouter", strategy="best")
    assert r.set_priority("openrouter", "b", -5, now=0)["type"] == "entry_updated"
    assert r.acquire("openrouter", now=10)["entry_id"] == "b"
    assert r.tick(now=20) == {"type": "ticked", "recovered": [], "next_wakeup": None, "changed": False}
    with pytest.raises(credpool.RefreshError) as info:
        r.check_refresh("openrouter", "a", 0, now=30)
    assert info.value.code == "not_refreshable"
    seeded = r.seed(env={"OPENAI_API_KEY": "sk-env-openai"}, now=40)
    assert [(e["pool"], e["source"]) for e in seeded["added"]] == [("openai", "env:OPENAI_API_KEY")]


def test_hermes_import_export_round_trip() -> None:
    import json

    hermes = Path(__file__).resolve().parents[2] / "tests" / "hermes"
    auth = json.loads((hermes / "openrouter.json").read_text())
    state = credpool.import_hermes(auth, 1787075000000)
    assert state["format"] == "credpool"
    reg = credpool.Registry(writer="w1", seed=1, state=state)
    # the primary is exhausted until its reset_at (1787076000 s); the backup serves meanwhile
    assert reg.acquire("openrouter", now=1787075999000)["entry_id"] == "0f9e8d"
    out = credpool.export_hermes(reg.export_state(now=0)["state"], auth, 1787076000000)
    assert out["providers"] == auth["providers"]
    assert out["suppressed_sources"] == auth["suppressed_sources"]
    # the acquire counted one request on the backup; everything else is as it was
    assert out["credential_pool"]["openrouter"][2]["request_count"] == 1
    out["credential_pool"]["openrouter"][2]["request_count"] = 0
    assert out["credential_pool"] == auth["credential_pool"]
    assert credpool.import_hermes(credpool.export_hermes(state), 1787075000000) == state

    # A legacy file with an env: secret on disk: it never crosses the converter.
    legacy = json.loads((hermes / "legacy-mixed.json").read_text())
    legacy_state = credpool.import_hermes(legacy, 1787075000000)
    exported = credpool.Registry(state=legacy_state).export_state(now=0)["state"]
    text = json.dumps(credpool.export_hermes(exported, legacy))
    assert "LEAKED" not in text
    assert "LEAKED" not in json.dumps(legacy_state)
    assert '"secret_fingerprint"' in text

    with pytest.raises(credpool.CredpoolError) as err:
        credpool.import_hermes({"credential_pool": []})
    assert err.value.code == "invalid_state"
    with pytest.raises(credpool.CredpoolError) as err:
        credpool.import_hermes({})
    assert err.value.code == "foreign_document"
    with pytest.raises(credpool.CredpoolError) as err:
        credpool.export_hermes(auth)
    assert err.value.code == "foreign_document"


def test_call_driver_methods():
    """The call driver's inputs as methods (same wire inputs as handle(); see the call_* vectors)."""
    r = make()
    send = r.call_start("openrouter", max_sends=5, max_wait_ms=10_000, now=1000)
    assert (send["type"], send["call_id"], send["entry_id"], send["access_token"]) == ("send", 1, "a", "sk-test-a")
    sleep = r.call_report(send["call_id"], status=429, headers={"x-request-id": "r"}, now=2000)
    assert (sleep["type"], sleep["until"]) == ("sleep", 7000)
    again = r.call_resume(send["call_id"], now=7000)
    assert (again["type"], again["lease_id"]) == ("send", send["lease_id"])
    done = r.call_report(send["call_id"], status=200, delivered=True, now=7100)
    assert done == {"type": "done", "call_id": 1, "pool": "openrouter", "entry_id": "a", "changed": done["changed"]}
    with pytest.raises(credpool.UnknownCallError) as e:
        r.call_resume(send["call_id"], now=7200)
    assert e.value.code == "unknown_call" and isinstance(e.value, KeyError)
    second = r.call_start("openrouter", now=8000)
    assert r.call_cancel(second["call_id"], now=8100) == {"type": "call_cancelled", "call_id": 2, "changed": False}
    with pytest.raises(credpool.UnknownCallError):
        r.call_refreshed(second["call_id"], {"type": "adopted"}, now=8200)
