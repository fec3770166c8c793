"""credpool's Python binding next to Python peers doing the same operations, in one process.

    python benches/peers.py [--json] [--quick]

Run by scripts/bench.sh in its own venv ($CREDPOOL_CACHE/venv-bench) where the peers are
installed from PyPI (never vendored): ``hermes-agent`` (``agent.credential_pool``),
``rotapool`` and ``litellm``. A peer that fails to import is skipped with a note.

``credpool Store`` rows are the same operations on a persisted ``credpool.Store`` (SQLite):
the like-for-like comparison with Hermes, which persists its pool to ``auth.json``.

Every figure is the median of per-operation timings (``perf_counter_ns`` around each
operation; anything needed to keep the pool from running dry happens outside the timer),
over a time budget per cell (0.2 s with ``--quick`` or ``CREDPOOL_BENCH_QUICK=1``, else 1 s).
Operations, at pool sizes 10, 100 and 1,000:

- ``select+ok <strategy>``: pick a key for a request that then succeeds.
  credpool: ``acquire`` + ``report(status=200)``; Hermes: ``CredentialPool.select()`` (it has
  no success report); rotapool: ``Pool.run(op)`` with an op that returns at once (its own
  asyncio task per attempt); LiteLLM: ``Router.get_available_deployment`` (selection only).
- ``429 → rotate (fill_first)``: pick, get a 429, mark the key and pick another.
  credpool: ``acquire`` + ``report(status=429)`` → ``use`` of a sibling (lease released),
  clock 2 h on per op so the cooldown has run out by the next one; Hermes: ``select()`` +
  ``mark_exhausted_and_rotate(status_code=429)`` then ``reset_statuses()`` outside the timer
  (Hermes persists the pool to ``$HERMES_HOME/auth.json`` on every mark: that is its real
  cost); rotapool (``primary_backup``): ``run`` whose first attempt raises
  ``CooldownResource`` and second succeeds, zero retry delay and zero cooldown.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from typing import Callable

SIZES = [10, 100, 1_000]
HOUR_MS = 3_600_000
QUICK = "--quick" in sys.argv or os.environ.get("CREDPOOL_BENCH_QUICK", "") not in ("", "0")
AS_JSON = "--json" in sys.argv or os.environ.get("CREDPOOL_BENCH_JSON", "") not in ("", "0")
BUDGET_S = 0.2 if QUICK else 1.0
MAX_OPS = 20_000

rows: list[dict] = []
notes: list[str] = []


def log(*args: object) -> None:
    print(*args, file=sys.stderr if AS_JSON else sys.stdout, flush=True)


def measure(op: Callable[[], None], restore: Callable[[], None] | None = None) -> float:
    """Median ns of ``op`` over a time budget; ``restore`` runs untimed after each op."""
    for _ in range(3):  # warm up
        op()
        if restore:
            restore()
    samples: list[int] = []
    deadline = time.perf_counter() + BUDGET_S
    while len(samples) < MAX_OPS and (len(samples) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter_ns()
        op()
        samples.append(time.perf_counter_ns() - start)
        if restore:
            restore()
    return statistics.median(samples)


def record(peer: str, op: str, n: int, ns: float) -> None:
    rows.append({"peer": peer, "op": op, "n": n, "ns": round(ns, 1)})
    log(f"{peer:<10} {op:<28} {n:>6} entries {ns:>12.0f} ns")


# ---------------------------------------------------------------- credpool


def bench_credpool() -> None:
    import credpool

    def registry(n: int, strategy: str) -> "credpool.Registry":
        reg = credpool.Registry(writer="bench", seed=1)
        reg.configure_pool(
            "openrouter", strategy=strategy, policy={"preset": "adaptive", "jitter_percent": 0}, now=0
        )
        for i in range(n):
            reg.add_entry("openrouter", {"id": f"k{i}", "access_token": f"sk-or-{i:06}", "priority": i}, now=0)
        return reg

    for n in SIZES:
        for strategy in ("fill_first", "round_robin", "random"):
            reg = registry(n, strategy)
            clock = [1_000]

            def ok(reg=reg, clock=clock) -> None:
                clock[0] += 1
                use = reg.acquire("openrouter", now=clock[0])
                reg.report("openrouter", use["lease_id"], status=200, now=clock[0])

            record("credpool", f"select+ok {strategy}", n, measure(ok))

        reg = registry(n, "fill_first")
        clock = [1_000]

        def limited(reg=reg, clock=clock) -> None:
            clock[0] += 2 * HOUR_MS
            use = reg.acquire("openrouter", now=clock[0])
            nxt = reg.report("openrouter", use["lease_id"], status=429, now=clock[0])
            reg.release("openrouter", nxt["lease_id"], now=clock[0])

        record("credpool", "429 → rotate (fill_first)", n, measure(limited))


def bench_credpool_store() -> None:
    """The same operations on a persisted ``credpool.Store`` (its default engine, an SQLite
    database in a temporary directory, ``durable`` on): the figures to put next to Hermes,
    which persists too."""
    import credpool

    home = tempfile.mkdtemp(prefix="credpool-bench-store-")
    for n in SIZES:
        for op, strategy in (("select+ok round_robin", "round_robin"), ("429 → rotate (fill_first)", "fill_first")):
            path = os.path.join(home, f"pools-{n}-{strategy}.sqlite")
            setup = credpool.Store.open(path, writer="setup", seed=1, durable=False)
            setup.configure_pool(
                "openrouter", strategy=strategy, policy={"preset": "adaptive", "jitter_percent": 0}, now=0
            )
            for i in range(n):
                setup.add_entry("openrouter", {"id": f"k{i}", "access_token": f"sk-or-{i:06}", "priority": i}, now=0)
            store = credpool.Store.open(path, writer="bench", seed=1)
            clock = [1_000]

            def ok(store=store, clock=clock) -> None:
                clock[0] += 1
                use = store.acquire("openrouter", now=clock[0])
                store.report("openrouter", use["lease_id"], status=200, now=clock[0])

            def limited(store=store, clock=clock) -> None:
                clock[0] += 2 * HOUR_MS
                use = store.acquire("openrouter", now=clock[0])
                nxt = store.report("openrouter", use["lease_id"], status=429, now=clock[0])
                store.release("openrouter", nxt["lease_id"], now=clock[0])

            record("credpool Store", op, n, measure(ok if strategy == "round_robin" else limited))
    notes.append(
        "`credpool Store`: `credpool.Store.open(path)` (SQLite, `durable` on: a token is fsynced"
        " before the call returns, counters with the next write a second or more later) in a"
        " temporary directory; every call runs lock → read what other processes changed →"
        " decide → write what changed."
    )


# ---------------------------------------------------------------- Hermes


def bench_hermes() -> None:
    home = tempfile.mkdtemp(prefix="credpool-bench-hermes-")
    os.environ["HERMES_HOME"] = home
    import logging

    from agent import credential_pool as cp

    logging.getLogger("agent.credential_pool").setLevel(logging.WARNING)

    def pool(n: int, strategy: str) -> "cp.CredentialPool":
        entries = [
            cp.PooledCredential(
                provider="openrouter",
                id=f"k{i}",
                label=f"key-{i}",
                auth_type="api_key",
                priority=i,
                source="manual",
                access_token=f"sk-or-{i:06}",
            )
            for i in range(n)
        ]
        p = cp.CredentialPool("openrouter", entries)
        p._strategy = strategy  # what get_pool_strategy() would read from config.yaml
        return p

    for n in SIZES:
        for strategy in ("fill_first", "round_robin", "random"):
            p = pool(n, strategy)
            record("hermes", f"select+ok {strategy}", n, measure(lambda p=p: p.select()))
        p = pool(n, "fill_first")

        def limited(p=p) -> None:
            p.select()
            if p.mark_exhausted_and_rotate(status_code=429) is None:
                raise RuntimeError("hermes pool ran dry")

        record("hermes", "429 → rotate (fill_first)", n, measure(limited, p.reset_statuses))
    notes.append(
        "Hermes (`hermes-agent` from PyPI, `agent.credential_pool`, temporary `HERMES_HOME`): "
        "`round_robin` selection and every mark rewrite `auth.json` on disk."
    )


# ---------------------------------------------------------------- rotapool


def bench_rotapool() -> None:
    import rotapool

    def pool(n: int, strategy: str) -> "rotapool.Pool":
        resources = [rotapool.Resource(resource_id=f"k{i}", value=f"sk-or-{i:06}") for i in range(n)]
        return rotapool.Pool(resources, strategy=strategy, max_attempts=2, cooldown_table=(0.0,))

    async def ok_op(resource: "rotapool.Resource") -> str:
        return resource.value

    async def run_all() -> None:
        for n in SIZES:
            for ours, theirs in (("fill_first", "primary_backup"), ("round_robin", "round_robin")):
                p = pool(n, theirs)
                record("rotapool", f"select+ok {ours}", n, await ameasure(lambda p=p: p.run(ok_op, retry_delay=0)))
            p = pool(n, "primary_backup")

            def limited(p=p):
                attempts = [0]

                async def op(resource: "rotapool.Resource") -> str:
                    attempts[0] += 1
                    if attempts[0] == 1:
                        raise rotapool.CooldownResource()
                    return resource.value

                return p.run(op, retry_delay=0)

            record("rotapool", "429 → rotate (fill_first)", n, await ameasure(limited))

    async def ameasure(make) -> float:
        for _ in range(3):
            await make()
        samples: list[int] = []
        deadline = time.perf_counter() + BUDGET_S
        while len(samples) < MAX_OPS and (len(samples) < 5 or time.perf_counter() < deadline):
            start = time.perf_counter_ns()
            await make()
            samples.append(time.perf_counter_ns() - start)
        return statistics.median(samples)

    asyncio.run(run_all())
    notes.append(
        "rotapool: `primary_backup` stands for fill_first; `Pool.run` is async (timed inside one "
        "event loop); no `random` strategy."
    )


# ---------------------------------------------------------------- LiteLLM


def bench_litellm() -> None:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no fetch of the cost map
    os.environ.setdefault("LITELLM_TELEMETRY", "False")
    from litellm import Router

    for n in SIZES:
        model_list = [
            {
                "model_name": "gpt-4o",
                "litellm_params": {"model": "openai/gpt-4o", "api_key": f"sk-{i:06}"},
                "model_info": {"id": f"k{i}"},
            }
            for i in range(n)
        ]
        router = Router(model_list=model_list, routing_strategy="simple-shuffle")
        record(
            "litellm",
            "select+ok random",
            n,
            measure(lambda r=router: r.get_available_deployment(model="gpt-4o")),
        )
    notes.append(
        "LiteLLM `Router(routing_strategy=\"simple-shuffle\")` (its default, a random pick) "
        "`get_available_deployment`: selection only, no network; its 429 cooldown lives in the "
        "async completion path, so no `429 → rotate` figure."
    )


def main() -> None:
    log(f"peers: {'quick' if QUICK else 'full'} run, {BUDGET_S} s per cell, median ns/op")
    bench_credpool()  # the references: failures here are fatal
    bench_credpool_store()
    for name, fn in (("hermes-agent", bench_hermes), ("rotapool", bench_rotapool), ("litellm", bench_litellm)):
        try:
            fn()
        except Exception as exc:  # a peer that does not install or import is reported, not fatal
            notes.append(f"{name}: not benchmarked ({type(exc).__name__}: {exc})")
            log(f"{name}: skipped: {exc!r}")
    try:
        from importlib.metadata import version

        versions = {}
        for dist in ("credpool", "hermes-agent", "rotapool", "litellm"):
            try:
                versions[dist] = version(dist)
            except Exception:
                versions[dist] = None
    except ImportError:
        versions = {}
    notes.insert(0, "Versions: " + ", ".join(f"{k} {v or 'not installed'}" for k, v in versions.items()) + ".")
    if AS_JSON:
        print(json.dumps({"bench": "peers", "lang": "python", "sizes": SIZES, "rows": rows, "notes": notes}))
    else:
        for note in notes:
            log("-", note)


if __name__ == "__main__":
    main()
