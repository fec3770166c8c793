"""Cost of one acquire+report pair through the Python binding, next to a no-op call
(``version()``) through the same binding: the ratio is what the binding adds on top of FFI.

    python benches/bindings.py [iterations] [--json]

With ``--json`` (or ``CREDPOOL_BENCH_JSON=1``) the table goes to stderr and stdout gets one
JSON line for ``benches/report.py``.

Figures are medians of 7 rounds, measured in this one run (compare ratios, not ns).
"""

import json
import os
import statistics
import sys
import time

import credpool

as_json = "--json" in sys.argv[1:] or os.environ.get("CREDPOOL_BENCH_JSON", "") not in ("", "0")
args = [a for a in sys.argv[1:] if a != "--json"]
iterations = int(args[0]) if args else 20_000


def registry() -> credpool.Registry:
    reg = credpool.Registry(writer="bench", seed=1)
    for i in range(8):
        reg.add_entry("openrouter", {"id": f"k{i}", "access_token": f"sk-bench-{i}"}, now=0)
    return reg


def measure(fn) -> float:
    """Median ns per call of ``fn`` over 7 rounds of ``iterations`` calls."""
    for i in range(min(iterations, 2_000)):
        fn(i)
    rounds = []
    for _ in range(7):
        start = time.perf_counter_ns()
        for i in range(iterations):
            fn(i)
        rounds.append((time.perf_counter_ns() - start) / iterations)
    return statistics.median(rounds)


reg = registry()
clock = [1_000]


def pair(_: int) -> None:
    clock[0] += 1
    use = reg.acquire("openrouter", now=clock[0])
    reg.report("openrouter", use["lease_id"], status=200, now=clock[0])


def handle_pair(_: int) -> None:
    clock[0] += 1
    use = reg.handle({"type": "acquire", "pool": "openrouter"}, now=clock[0])
    reg.handle(
        {"type": "report", "pool": "openrouter", "lease_id": use["lease_id"], "response": {"status": 200}},
        now=clock[0],
    )


def acquire_release(_: int) -> None:
    clock[0] += 1
    use = reg.acquire("openrouter", now=clock[0])
    reg.release("openrouter", use["lease_id"], now=clock[0])


def opts_pair(_: int) -> None:
    clock[0] += 1
    use = reg.acquire("openrouter", model="m", session="s", now=clock[0])
    reg.report("openrouter", use["lease_id"], status=200, headers={"x-request-id": "r"}, now=clock[0])


entry_id = reg.acquire("openrouter", now=clock[0])["entry_id"]
noop = measure(lambda _: credpool.version())
# The last three rows show where the pair's time goes: the same calls with a smaller input
# or output.
rows = [
    ("no-op call (version)", noop),
    ("acquire + report", measure(pair)),
    ("handle(acquire) + handle(report)", measure(handle_pair)),
    ("acquire + release", measure(acquire_release)),
    ("credential (reveal)", measure(lambda _: reg.credential("openrouter", entry_id, now=clock[0]))),
    ("acquire(opts) + report(headers)", measure(opts_pair)),
]
out = sys.stderr if as_json else sys.stdout
print(f"credpool python binding, {iterations} iterations x 7 rounds, median ns/op", file=out)
for name, ns in rows:
    print(f"{name:<34} {ns:9.0f} ns  {ns / noop:7.1f}x no-op", file=out)
if as_json:
    record = {"bench": "bindings", "impl": "python", "iterations": iterations}
    record["rows"] = [{"name": name, "ns": round(ns, 1)} for name, ns in rows]
    print(json.dumps(record))
