"""The Python runner of the hostile input corpus (tests/hostile/*.json; format: tests/hostile/README.md).

Every case must end in its expected typed error (a ``CredpoolError`` with ``.code``) or a
defined result within its time bound, leave the registry usable, and leak no canary secret
(``CANARY``) into ``str``/``repr`` of the exception, its formatted traceback, a ``logging``
record of it, ``repr`` of the registry, or a non-secret output.
"""

import copy
import io
import json
import logging
import math
import os
import time
import traceback
from pathlib import Path

import pytest

from credpool import CredpoolError, Registry

HOSTILE = Path(__file__).resolve().parents[1] / "hostile"
RUNTIME = "python"
DEFAULT_MAX_MS = 10_000
DEFAULT_NOW = 1000
TIMINGS = []


def json_type(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def field_paths(value, prefix, out):
    if not isinstance(value, dict):
        return out
    for k, v in value.items():
        if prefix == "" and k == "type":
            continue
        path = f"{prefix}/{k}"
        out.append((path, v))
        if isinstance(v, dict) and v:
            field_paths(v, path, out)
    return out


def set_at(root, pointer, value):
    parts = pointer.split("/")[1:]
    last = parts.pop()
    target = root
    for p in parts:
        target = target[int(p)] if isinstance(target, list) else target[p]
    if isinstance(target, list):
        if last == "-" or int(last) >= len(target):
            target.append(value)
        else:
            target[int(last)] = value
    else:
        target[last] = value


def js_json(v):
    """JSON text of a value as JavaScript's JSON.stringify writes it (case names)."""
    return json.dumps(v, separators=(",", ":"))


def expand_cases(doc):
    out = []
    for c in doc["cases"]:
        if "mutate" not in c:
            out.append(c)
            continue
        m = c["mutate"]
        free, lenient = m.get("free", []), m.get("lenient", {})
        for path, original in field_paths(m["template"], "", []):
            if path in free:
                continue
            for value in m["values"]:
                if json_type(value) == json_type(original):
                    continue
                inp = copy.deepcopy(m["template"])
                set_at(inp, path, value)
                expect = copy.deepcopy(c["expect"])
                if json_type(value) in lenient.get(path, []) and "one_of" in expect:
                    expect["one_of"].append("ok")
                case = {k: v for k, v in c.items() if k != "mutate"}
                case.update(name=f"{c['name']}{path}={js_json(value)}", input=inp, expect=expect)
                out.append(case)
    return out


def with_index(t, i):
    if isinstance(t, str):
        return t.replace("{i}", str(i))
    if isinstance(t, list):
        return [with_index(x, i) for x in t]
    if isinstance(t, dict):
        return {k: with_index(v, i) for k, v in t.items()}
    return t


def nest(spec):
    v = spec.get("leaf")
    for _ in range(spec["depth"]):
        v = {spec["key"]: v} if spec["kind"] == "object" else [v]
    return v


SPECIALS = {"lone_surrogate": lambda: "a\ud800b", "invalid_utf8": lambda: b"\xff\xfe\xc3\x28"}


def specials(v):
    if isinstance(v, list):
        return [specials(x) for x in v]
    if isinstance(v, dict):
        if list(v) == ["special"]:
            return SPECIALS[v["special"]]()
        return {k: specials(x) for k, x in v.items()}
    return v


def generate(c):
    c = specials(copy.deepcopy(c))
    for g in c.get("generate", []):
        s = g["value"]
        if "string" in s:
            value = s["string"]["repeat"] * s["string"]["times"]
        elif "array" in s:
            value = [with_index(s["array"]["item"], i) for i in range(s["array"]["count"])]
        elif "object" in s:
            o = s["object"]
            value = {o["key"].replace("{i}", str(i)): with_index(o["value"], i) for i in range(o["count"])}
        else:
            value = nest(s["nest"])
        set_at(c, g["at"], value)
    return c


NOW = {
    "NaN": math.nan,
    "Infinity": math.inf,
    "-Infinity": -math.inf,
    "2^53": 2**53,
    "2^53+1": 2**53 + 1,
    "2^64": 2**64,
    "2^64-1": 2**64 - 1,
    "-1": -1,
    "1.5": 1.5,
}


def now_of(c):
    n = c.get("now", DEFAULT_NOW)
    return NOW[n] if isinstance(n, str) else n


def clean(text, channel):
    text = str(text)
    at = text.find("CANARY")
    if at >= 0:
        pytest.fail(f"a canary secret leaked into {channel}: …{text[max(0, at - 60):at + 60]}…")


def logged(e):
    """What `logging.exception` writes for `e` (with its traceback)."""
    stream = io.StringIO()
    logger = logging.getLogger("credpool-hostile")
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
    return stream.getvalue()


def error_outcome(e):
    for channel, text in [
        ("str(err)", str(e)),
        ("repr(err)", repr(e)),
        ("traceback", "".join(traceback.format_exception(type(e), e, e.__traceback__))),
        ("logging.exception", logged(e)),
    ]:
        clean(text, channel)
    return e.code


def outcome(c):
    kwargs = {"writer": "w1", "seed": 1}
    if "state" in c:
        kwargs["state"] = c["state"]
    try:
        reg = Registry(**kwargs)
    except CredpoolError as e:
        return error_outcome(e), None, None
    for i, inp in enumerate(c.get("setup", [])):
        try:
            reg.handle(inp, now=c.get("setup_at", 0))
        except CredpoolError as e:
            pytest.fail(f"setup[{i}] failed: {e.code}: {e}")
    try:
        out = reg.handle(c["input"], now=now_of(c))
    except CredpoolError as e:
        result = (error_outcome(e), None, reg)
    else:
        if out.get("type") not in ("credential", "send", "state", "token_request", "token_outcome"):
            clean(repr(out), "repr(output)")
        result = ("ok", out.get("type"), reg)
    clean(repr(reg), "repr(registry)")
    return result


def all_cases():
    for path in sorted(HOSTILE.glob("*.json")):
        for c in expand_cases(json.loads(path.read_text(encoding="utf-8"))):
            yield pytest.param(c, id=f"{path.stem}::{c['name']}")


@pytest.mark.parametrize("case", list(all_cases()))
def test_hostile(case):
    g = generate(case)
    expect = case.get("expect_by_runtime", {}).get(RUNTIME, case["expect"])
    started = time.perf_counter()
    got, kind, reg = outcome(g)
    ms = (time.perf_counter() - started) * 1000
    del g
    TIMINGS.append((ms, case["name"]))
    if os.environ.get("CREDPOOL_HOSTILE_VERBOSE"):
        print(f"outcome {case['name']}: {got} {kind or ''} ({ms:.0f} ms)")
    allowed = ["ok"] if expect.get("ok") else [expect["error"]] if "error" in expect else expect["one_of"]
    assert got in allowed, f"expected {expect}, got {got}"
    if "type" in expect:
        assert kind == expect["type"]
    bound = case.get("max_ms", DEFAULT_MAX_MS)
    assert ms <= bound, f"took {ms:.0f} ms, bound {bound} ms"
    if reg is not None:
        clean(json.dumps(reg.status(now=2**53)), "status")
        reg.export_state(now=2**53)
    Registry(writer="w2", seed=2).tick(now=0)


def test_zz_print_slowest():
    """Prints the slowest cases (run last: pytest keeps file order)."""
    for ms, name in sorted(TIMINGS, reverse=True)[:5]:
        print(f"slowest (python): {ms:.1f} ms  {name}")
