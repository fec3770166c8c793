"""Cost of one acquire+report pair through the Python binding, next to a no-op call
(``version()``) through the same binding: the ratio is what the binding adds on top of FFI.

    python benches/bindings.py [iterations]

Figures are medians of 7 rounds, measured in this one run (compare ratios, not ns).
"""

import statistics
import sys
import time

import credpool

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000


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


noop = measure(lambda _: credpool.version())
rows = [
    ("no-op call (version)", noop),
    ("acquire + report", measure(pair)),
    ("handle(acquire) + handle(report)", measure(handle_pair)),
]
print(f"credpool python binding, {iterations} iterations x 7 rounds, median ns/op")
for name, ns in rows:
    print(f"{name:<34} {ns:9.0f} ns  {ns / noop:7.1f}x no-op")
