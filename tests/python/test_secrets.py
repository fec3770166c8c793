"""Secret hygiene: every conformance vector (tests/vectors) run with recognisable secrets
(every access_token / refresh_token / api_key and every seed env value rewritten to
``sk-CANARY-<n>-…``), scanning every channel that must never carry one: outputs other than
``credential`` (reveal) and ``state``, the borrowed (``env:`` / ``config:``) entries of
exported state, ``status``, exceptions (``str``, ``repr``, formatted traceback, a
``logging.exception`` record) and ``repr`` of the registry. Plus: a Store's database (and
its write-ahead log) is mode 0600 and holds no secret of a borrowed source.
"""

import io
import json
import logging
import stat
import traceback
from pathlib import Path

import pytest

from credpool import CredpoolError, Registry, Store

VECTORS = Path(__file__).resolve().parents[1] / "vectors"
SECRET_KEYS = {"access_token", "refresh_token", "api_key"}
REVEALED = []
# Spelled apart so that tracebacks, which quote this file's source lines, show no canary.
C = "CAN" + "ARY"


def canarize(v, mapping, in_env=False):
    if isinstance(v, list):
        return [canarize(x, mapping) for x in v]
    if not isinstance(v, dict):
        return v
    out = {}
    for k, x in v.items():
        if (k in SECRET_KEYS or in_env) and isinstance(x, str) and x:
            out[k] = mapping.setdefault(x, f"sk-CANARY-{len(mapping) + 1}-{x}")
        else:
            out[k] = canarize(x, mapping, k == "env" and isinstance(x, dict))
    return out


def clean(text, channel):
    text = str(text)
    at = text.find("CANARY")
    if at >= 0:
        pytest.fail(f"canary leaked into {channel}: …{text[max(0, at - 80):at + 40]}…")


def check_error(e, where):
    stream = io.StringIO()
    logger = logging.getLogger("credpool-secrets")
    handler = logging.StreamHandler(stream)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise e
        except CredpoolError:
            logger.exception("credpool call failed")
    finally:
        logger.removeHandler(handler)
    for channel, text in [
        ("str", str(e)),
        ("repr", repr(e)),
        ("traceback", "".join(traceback.format_exception(type(e), e, e.__traceback__))),
        ("logging", stream.getvalue()),
    ]:
        clean(text, f"{where} {channel}(err)")


def check_state(state, where):
    for name, pool in (state or {}).get("pools", {}).items():
        for e in pool.get("entries", []):
            if str(e.get("source", "")).startswith(("env:", "config:")):
                clean(json.dumps(e), f"{where} borrowed entry {name}/{e.get('id')}")


def check_output(out, where):
    if out.get("type") in ("credential", "send", "probe", "token_request", "token_outcome"):  # they hand over a secret
        return "CANARY" in json.dumps(out)
    if out.get("type") == "state":
        check_state(out["state"], where)
        return False
    clean(repr(out), f"{where} output")
    return False


@pytest.mark.parametrize("path", sorted(VECTORS.glob("*.json")), ids=lambda p: p.stem)
def test_vector_secrets(path):
    v = canarize(json.loads(path.read_text()), {})
    kwargs = {"writer": v.get("writer", "w1"), "seed": v.get("seed", 1)}
    if "state" in v:
        kwargs["state"] = v["state"]
    try:
        reg = Registry(**kwargs)
    except CredpoolError as e:
        check_error(e, "Registry()")
        return
    steps = [{"at": v.get("setup_at", 0), "input": i} for i in v.get("setup", [])] + v["steps"]
    for i, step in enumerate(steps):
        where = f"step {i} ({step['input'].get('type') if isinstance(step['input'], dict) else '?'})"
        try:
            REVEALED.append(check_output(reg.handle(step["input"], now=step["at"]), where))
        except CredpoolError as e:
            check_error(e, where)
        clean(repr(reg), f"{where} repr(registry)")
        clean(json.dumps(reg.status(now=step["at"])), f"{where} status")
        check_state(reg.export_state(now=step["at"])["state"], f"{where} export_state")
    for call in [
        lambda: reg.add_entry("p", {"access_token": f"sk-{C}-x" * 3000}),
        lambda: reg.add_entry("p", {"access_token": [f"sk-{C}-in-list"]}),
        lambda: reg.add_entry("p", {"access_token": f"sk-{C}-bytes".encode()}),
        lambda: reg.add_entry("p", {"access_token": f"sk-{C}-ok", "auth_type": f"sk-{C}-as-enum"}),
        lambda: reg.handle({"type": "sync", "state": {"format": "credpool", "schema_version": 1,
                            "pools": {"p": {"entries": [{"id": "a", "access_token": 7, "refresh_token": f"sk-{C}-r"}]}}}}),
    ]:
        try:
            check_output(call(), "extra call")
        except CredpoolError as e:
            check_error(e, "extra call")


def test_zz_rewrite_reached_reveal_outputs():
    assert any(REVEALED), "no reveal output carried a canary: the rewrite or the scan is broken"


def test_borrowed_secrets_never_in_exported_state():
    reg = Registry(writer="w1", seed=1)
    reg.seed(env={"OPENROUTER_API_KEY": "sk-CANARY-env-1"},
             config={"custom_providers": [{"name": "c", "base_url": "https://c.example/v1", "api_key": "sk-CANARY-cfg-1"}]}, now=0)
    reg.add_entry("openrouter", {"id": "own", "access_token": "sk-CANARY-owned"}, now=0)
    text = json.dumps(reg.export_state(now=0))
    assert "sk-CANARY-owned" in text
    assert "sk-CANARY-env-1" not in text and "sk-CANARY-cfg-1" not in text


@pytest.mark.parametrize("durable", [True, False])
def test_store_files_are_0600_hold_no_borrowed_secret_and_repr_is_clean(tmp_path, durable):
    path = tmp_path / "pools.sqlite"
    store = Store.open(str(path), writer="w1", seed=1, durable=durable)
    store.add_entry("openrouter", {"id": "a", "access_token": f"sk-{C}-owned"}, now=0)
    store.seed(env={"OPENROUTER_API_KEY": f"sk-{C}-env-1"},
               config={"custom_providers": [{"name": "c", "base_url": "https://c.example/v1", "api_key": f"sk-{C}-cfg-1"}]},
               now=1)  # fmt: skip
    d = store.acquire("openrouter", now=2)
    store.report("openrouter", d["lease_id"], status=200, now=3)
    files = [path.with_name(path.name + suffix) for suffix in ("", "-wal", "-shm", ".lock")]
    for f in files:
        if f.exists():
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    # What is on disk: the database and its write-ahead log (a commit lands there first).
    disk = b"".join(f.read_bytes() for f in files[:2] if f.exists())
    assert f"sk-{C}-owned".encode() in disk, "the scan reads where the store keeps secrets"
    for borrowed in (f"sk-{C}-env-1", f"sk-{C}-cfg-1"):
        assert borrowed.encode() not in disk, "a borrowed secret reached the disk"
    borrowed_ids = [e["id"] for p in store.export_state(now=4)["state"]["pools"].values()
                    for e in p["entries"] if e.get("source", "").startswith(("env:", "config:"))]  # fmt: skip
    assert len(borrowed_ids) == 2, borrowed_ids
    clean(repr(store), "repr(Store)")
