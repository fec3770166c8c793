"""Conformance runner: every vector of tests/vectors (+ CREDPOOL_EXTRA_VECTORS), per tests/README.md."""

import json
import os
from pathlib import Path

import pytest

from credpool import CredpoolError, Registry

VECTORS = Path(__file__).resolve().parents[1] / "vectors"


def vector_files():
    dirs = [VECTORS]
    extra = os.environ.get("CREDPOOL_EXTRA_VECTORS", "")
    dirs += [Path(p) for p in extra.split(os.pathsep) if p]
    files = []
    for d in dirs:
        files += sorted(d.glob("*.json"))
    return files


def subset_match(expected, actual, path="state"):
    if isinstance(expected, dict) and isinstance(actual, dict):
        for k, v in expected.items():
            assert k in actual, f"{path}.{k}: missing (expected {v!r})"
            subset_match(v, actual[k], f"{path}.{k}")
    elif isinstance(expected, list) and isinstance(actual, list):
        assert len(expected) == len(actual), f"{path}: expected {len(expected)} items, got {actual!r}"
        for i, (w, h) in enumerate(zip(expected, actual)):
            subset_match(w, h, f"{path}[{i}]")
    else:
        assert same(expected, actual), f"{path}: expected {expected!r}, got {actual!r}"


def same(a, b):
    """JSON equality as serde_json compares: bool never equals a number."""
    if isinstance(a, (bool, int, float)) or isinstance(b, (bool, int, float)):
        return type(a) is type(b) and a == b  # 1 != 1.0 != True, as in serde_json
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def run_vector(v):
    kwargs = {"writer": v.get("writer", "w1"), "seed": v.get("seed", 1)}
    if "state" in v:
        kwargs["state"] = v["state"]
    reg = Registry(**kwargs)
    setup_at = v.get("setup_at", 0)
    for i, inp in enumerate(v.get("setup", [])):
        try:
            reg.handle(inp, now=setup_at)
        except CredpoolError as e:
            pytest.fail(f"setup[{i}]: {e.code} ({e})")
    for i, step in enumerate(v["steps"]):
        try:
            out = reg.handle(step["input"], now=step["at"])
        except CredpoolError as e:
            assert "error" in step, f"step {i}: unexpected error {e.code} ({e})"
            assert e.code == step["error"], f"step {i}: expected error {step['error']}, got {e.code} ({e})"
        else:
            assert "error" not in step, f"step {i}: expected error {step['error']}, got {out!r}"
            if "expect" in step:
                assert same(step["expect"], out), (
                    f"step {i}: output\n  expected: {json.dumps(step['expect'])}\n    actual: {json.dumps(out)}"
                )
        if "state" in step:
            subset_match(step["state"], reg.export_state(now=step["at"])["state"], f"step {i}: state")


@pytest.mark.parametrize("path", vector_files(), ids=lambda p: p.stem)
def test_vector(path):
    run_vector(json.loads(path.read_text()))
