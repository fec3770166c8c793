"""Regenerates the tables of BENCHMARKS.md from one run of scripts/bench.sh (stdlib only).

    python3 benches/report.py --criterion DIR --results DIR [--wasm FILE]... [--out BENCHMARKS.md]

Reads criterion's ``<criterion>/**/new/{benchmark,estimates}.json`` (median point estimates)
and the JSON lines the other benches print with ``--json`` (every ``*.jsonl`` in ``--results``:
``{"bench": "bindings", ...}``, ``{"bench": "peers", ...}`` and ``{"bench": "store", ...}``), then rewrites each block of
``--out`` between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``. Text outside the markers
is kept as written.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

SIZES = ["10", "1000", "100000"]
STRATEGIES = ["fill_first", "round_robin", "least_used", "random"]
GOAL_RATIO = 2.0
CHASE_MIB = ["4", "8", "16", "64"]
WASM_GOAL_BYTES = 150_000


def fmt_ns(ns: float | None) -> str:
    """A duration in the unit that reads best."""
    if ns is None:
        return "–"
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if round(ns) >= scale:
            return f"{ns / scale:.3g} {unit}" if ns / scale < 100 else f"{ns / scale:.0f} {unit}"
    return f"{ns:.0f} ns"


def fmt_ratio(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r:,.0f}×" if r >= 100 else f"{r:.2g}×" if r < 10 else f"{r:.0f}×"


def load_criterion(root: Path) -> dict[str, dict]:
    """``full_id`` → {"ns": median ns, "elements": throughput elements or None}."""
    out: dict[str, dict] = {}
    if not root.is_dir():
        return out
    for bench in root.glob("**/new/benchmark.json"):
        estimates = bench.with_name("estimates.json")
        if not estimates.exists():
            continue
        meta = json.loads(bench.read_text())
        est = json.loads(estimates.read_text())
        throughput = meta.get("throughput") or {}
        out[meta["full_id"]] = {
            "ns": est["median"]["point_estimate"],
            "elements": throughput.get("Elements"),
        }
    return out


def load_records(results: Path) -> list[dict]:
    records = []
    if results.is_dir():
        for path in sorted(results.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                line = line.strip()
                if line.startswith("{"):
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:
                        print(f"report.py: skipping a bad line of {path}", file=sys.stderr)
    return records


def machine(quick: bool) -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "not found"

    mode = "quick (`CREDPOOL_BENCH_QUICK=1`: 0.2 s warm-up, 0.5 s, 10 samples)" if quick else (
        "full (1 s warm-up, 2 s measurement)"
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    rows = [
        ("run", f"{stamp}, {mode}"),
        ("cores (`nproc`)", str(os.cpu_count())),
        ("CPU", model),
        ("OS", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("rustc", version(["rustc", "--version"])),
        ("node", version(["node", "--version"])),
        ("python", platform.python_version()),
    ]
    return table(["", ""], rows)


def table(header: list[str], rows: list[tuple | list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def scaling(crit: dict, group: str) -> str:
    rows = []
    for strategy in STRATEGIES:
        cells = [crit.get(f"{group}/{strategy}/{n}", {}).get("ns") for n in SIZES]
        ratio = cells[2] / cells[0] if cells[0] and cells[2] else None
        verdict = "–" if ratio is None else ("yes" if ratio <= GOAL_RATIO else "no")
        rows.append([f"`{strategy}`", *(fmt_ns(c) for c in cells), fmt_ratio(ratio), verdict])
    return table(["strategy", "10 entries", "1,000", "100,000", "100k / 10", "≤ 2×?"], rows)


def memory_floor(crit: dict) -> str:
    cells = [crit.get(f"entry_lookup/random/{n}", {}).get("ns") for n in SIZES]
    ratio = cells[2] / cells[0] if cells[0] and cells[2] else None
    pair = [crit.get(f"pair_success/random/{n}", {}).get("ns") for n in SIZES]
    rows = [
        ["read one random entry", *(fmt_ns(c) for c in cells), fmt_ratio(ratio)],
        ["`random` pair minus that read",
         *(fmt_ns(p - c) if p and c else "–" for p, c in zip(pair, cells)),
         fmt_ratio((pair[2] - cells[2]) / (pair[0] - cells[0])
                   if all(pair) and all(cells) and pair[0] > cells[0] else None)],
    ]
    return table(["operation", "10 entries", "1,000", "100,000", "100k / 10"], rows)


def memory_latency(crit: dict) -> str:
    pair = crit.get("pair_success/random/10", {}).get("ns")
    rows = []
    for mib in CHASE_MIB:
        ns = crit.get(f"memory_latency/chase_mib/{mib}", {}).get("ns")
        share = f"{ns / pair:.0%}" if ns and pair else "–"
        rows.append([f"{mib} MiB", fmt_ns(ns), share])
    return table(["working set", "one dependent read", "÷ the 10-entry `random` pair"], rows)


def simple(crit: dict, group: str, labels: dict[str, str]) -> str:
    rows = []
    for key, label in labels.items():
        item = crit.get(f"{group}/{key}")
        rows.append([label, fmt_ns(item["ns"]) if item else "–"])
    return table(["operation", "median"], rows)


def simulator(crit: dict) -> str:
    item = crit.get("simulate/small")
    if not item:
        return "_not run_"
    per_s = item["elements"] / (item["ns"] / 1e9) if item.get("elements") else None
    rows = [[
        "`small` preset (every matrix row)",
        str(item.get("elements") or "–"),
        fmt_ns(item["ns"]),
        f"{per_s:,.0f}" if per_s else "–",
    ]]
    return table(["scenario", "simulated requests per run", "median per run", "simulated requests / s"], rows)


def bindings(records: list[dict]) -> str:
    recs = [r for r in records if r.get("bench") == "bindings"]
    if not recs:
        return "_not run (see the run's log: the bindings must be built first, `scripts/test.sh`)_"
    rows = []
    for r in recs:
        noop = next((x["ns"] for x in r["rows"] if x["name"].startswith("no-op")), None)
        for x in r["rows"]:
            ratio = x["ns"] / noop if noop else None
            rows.append([f"`{r['impl']}`", x["name"], fmt_ns(x["ns"]), fmt_ratio(ratio)])
    iterations = recs[0].get("iterations")
    note = f"\n\n{iterations} iterations × 7 rounds per figure (median round), one 8-key pool."
    return table(["binding", "operation", "median", "× no-op call"], rows) + note


PERSISTED = "credpool Store"


def peers(records: list[dict], lang: str, persisted: bool = False) -> str:
    """The peer table of one language: against credpool's in-memory registry, or (with
    ``persisted``) credpool's persisted ``Store`` next to the peers that persist (Hermes)."""
    recs = [r for r in records if r.get("bench") == "peers" and r.get("lang") == lang]
    if not recs:
        return "_not run_"
    rec = recs[-1]
    sizes = [str(n) for n in rec.get("sizes", [])]
    reference = PERSISTED if persisted else "credpool"
    base = {(x["op"], str(x["n"])): x["ns"] for x in rec["rows"] if x["peer"] == reference}
    if persisted:
        kept = [x for x in rec["rows"] if x["peer"] in (PERSISTED, "hermes") and (x["op"], str(x["n"])) in base]
    else:
        kept = [x for x in rec["rows"] if x["peer"] != PERSISTED]
    if not kept:
        return "_not run_"
    order: list[tuple[str, str]] = []
    cells: dict[tuple[str, str], dict[str, float]] = {}
    for x in kept:
        k = (x["peer"], x["op"])
        if k not in cells:
            order.append(k)
            cells[k] = {}
        cells[k][str(x["n"])] = x["ns"]
    rows = []
    for peer, op in order:
        row = [f"`{peer}`", op]
        for n in sizes:
            ns = cells[(peer, op)].get(n)
            ref = base.get((op, n))
            ratio = f" ({fmt_ratio(ns / ref)})" if ns and ref and peer != reference else ""
            row.append(fmt_ns(ns) + ratio)
        rows.append(row)
    out = table(["library", "operation", *(f"{int(n):,} entries" for n in sizes)], rows)
    what = "credpool's persisted `Store`" if persisted else "credpool's in-memory `Registry`"
    out += f"\n\nIn parentheses: time ÷ {what}'s time for the same operation and pool size."
    shown = ("Versions", f"`{PERSISTED}`", "Hermes") if persisted else None
    notes = [
        n for n in rec.get("notes") or []
        if (shown and n.startswith(shown)) or (not shown and not n.startswith(f"`{PERSISTED}`"))
    ]
    if notes:
        out += "\n\n" + "\n".join(f"- {n}" for n in notes)
    return out


def store(records: list[dict]) -> str:
    recs = [r for r in records if r.get("bench") == "store"]
    if not recs:
        return "_not run_"
    rec = recs[-1]
    mixed = rec["persisted"]["mixed"]
    quiet = rec["persisted"]["status_only"]
    requests = mixed["requests"]
    rows = [[f"`{x['input']}`", f"{x['calls']:,}", f"{x['writes']:,}"] for x in mixed["by_input"]]
    rows.append(["**all calls**", f"**{mixed['calls']:,}**", f"**{mixed['writes']:,}**"])
    rows.append(["`status` only (1,000 calls, nothing changes)", f"{quiet['calls']:,}", f"{quiet['writes']:,}"])
    out = table(["input", "calls", "calls that wrote"], rows)
    out += (
        f"\n\n{requests:,} requests on {rec['keys']} keys ({mixed['rate_limited']} answered 429,"
        f" {mixed['waits']} `wait` decisions slept out): {mixed['writes']:,} calls wrote,"
        f" {mixed['changed_calls']:,} calls changed state (`changed`),"
        f" {mixed['bytes_written'] / 1e6:.2f} MB handed to `write` in"
        f" {mixed.get('write_syscalls', 0):,} calls (database pages and write-ahead log,"
        f" checkpoints included); {mixed['file_bytes']:,} B on disk at the end."
    )
    sizes = sorted({x["n"] for x in rec.get("by_size", [])})
    cells: dict[tuple[str, str], dict[int, float]] = {}
    for x in rec.get("by_size", []):
        cells.setdefault((x["backend"], x["op"]), {})[x["n"]] = x["ns"]
    if cells:
        rows = []
        for (backend, op), by_n in cells.items():
            first = by_n.get(sizes[0])
            last = by_n.get(sizes[-1])
            growth = fmt_ratio(last / first) if first and last else "–"
            rows.append([backend, op, *(fmt_ns(by_n.get(n)) for n in sizes), growth])
        out += "\n\n" + table(
            ["store", "operation (one process, durable)", *(f"{n:,} keys" for n in sizes),
             f"{sizes[-1]:,} ÷ {sizes[0]:,}"],
            rows,
        )
    rows = []
    for x in rec["throughput"]:
        durable = "–" if x.get("durable") is None else ("on" if x["durable"] else "off")
        rows.append([
            x["backend"], durable, f"{x.get('keys', rec['keys']):,}", str(x["processes"]),
            f"{x['pairs_per_s']:,.0f}", f"{x['calls_per_s']:,.0f}", str(x["lock_timeouts"]),
            f"{x['conflicts_per_pair']:.3f}" if "conflicts_per_pair" in x else "–",
        ])
    out += "\n\n" + table(
        ["store", "durable (fsync)", "keys", "processes", "acquire + report pairs / s", "calls / s",
         "lock timeouts", "compare-and-set retries / pair"],
        rows,
    )
    redis = rec.get("redis") or {}
    note = (f"{rec['seconds_per_run']} s per run, all processes together; store files in the"
            f" system temp directory ({rec.get('filesystem', 'unknown')} filesystem).")
    if redis.get("ran"):
        note += f" Redis {redis.get('version', '?')} on loopback, no persistence."
    else:
        note += f" Redis not run: {redis.get('reason', 'unknown')}."
    return out + "\n\n" + note


def wasm(paths: list[Path]) -> str:
    rows = []
    missing = []
    for path in paths:
        if not path.exists():
            missing.append(f"`{path}`")
            continue
        raw = path.read_bytes()
        gz = len(gzip.compress(raw, compresslevel=9))
        goal = "yes" if len(raw) <= WASM_GOAL_BYTES else "no"
        role = "simulator" if "sim" in path.name else "engine"
        rows.append([f"`{path.name}` ({role}, {path.parent.name})", f"{len(raw):,} B", f"{gz:,} B", goal])
    out = table(["file", "raw", "gzip -9", f"≤ {WASM_GOAL_BYTES // 1000} KB raw?"], rows) if rows else ""
    if missing:
        out += ("\n\n" if out else "") + "_not built: " + ", ".join(missing) + " (scripts/build-wasm-crate.sh)_"
    return out + f"\n\nGoal: ≤ {WASM_GOAL_BYTES // 1000} KB raw ({WASM_GOAL_BYTES:,} B) per module."


def replace(doc: str, name: str, body: str) -> str:
    pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(<!-- /bench:{name} -->)", re.S)
    if not pattern.search(doc):
        print(f"report.py: no <!-- bench:{name} --> block in the document", file=sys.stderr)
        return doc
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--criterion", type=Path, required=True)
    parser.add_argument("--results", type=Path, required=True)
    parser.add_argument("--wasm", type=Path, action="append", default=[],
                        help="a .wasm module to size (repeatable)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()

    crit = load_criterion(args.criterion)
    records = load_records(args.results)
    blocks = {
        "machine": machine(args.quick),
        "pair-success": scaling(crit, "pair_success"),
        "pair-429": scaling(crit, "pair_429"),
        "memory-floor": memory_floor(crit),
        "memory-latency": memory_latency(crit),
        "classify": simple(crit, "classify", {
            "openai_429_x_ratelimit": "OpenAI 429, `x-ratelimit-*` headers",
            "anthropic_429_retry_after": "Anthropic 429, `anthropic-ratelimit-*` + `retry-after`",
            "gemini_429_retry_info": "Gemini 429 `RESOURCE_EXHAUSTED` with `RetryInfo` (parsed JSON)",
            "openrouter_402": "OpenRouter 402 insufficient credits",
            "codex_usage_limit": "Codex 429 `usage_limit_reached`",
        }),
        "state": simple(crit, "state", {
            "export_1000": "`export_state` + `serde_json::to_string`, 1,000 entries",
            "import_1000": "`serde_json::from_str` + `Registry::from_state`, 1,000 entries",
        }) + "\n" + simple(crit, "sync", {
            "merge_1000": "`sync`: merge another writer's 1,000-entry state",
        }).split("\n", 2)[2],
        "sim": simulator(crit),
        "bindings": bindings(records),
        "peers-python": peers(records, "python"),
        "peers-python-persisted": peers(records, "python", persisted=True),
        "peers-node": peers(records, "node"),
        "store": store(records),
        "wasm": wasm(args.wasm) if args.wasm else "_no path given_",
    }
    doc = args.out.read_text()
    for name, body in blocks.items():
        doc = replace(doc, name, body)
    args.out.write_text(doc)
    print(f"report.py: rewrote {len(blocks)} blocks of {args.out} "
          f"({len(crit)} criterion results, {len(records)} JSON records)")


if __name__ == "__main__":
    main()
