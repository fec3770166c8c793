#!/usr/bin/env python3
"""Stress and crash harness for the credpool stores (plain Python 3.11 stdlib).

Many worker processes (Rust example, Node binding, Python binding) hammer one store (a
file, or with --redis a Redis namespace); each logs every operation the store
acknowledged. The checker then proves from the final state and the logs that no
acknowledged update was lost, no removed entry came back, and no OAuth refresh token was
used twice. See tests/stress/README.md.

  run.py --rust-worker BIN [--node NODE] [--python PY] [--mix rust=3,node=3,python=2]
         [--ops 150] [--seed N] [--crash --rounds 15] [--negative-control nomerge|nolock]
         [--redis redis://127.0.0.1:PORT | --redis-server BIN [--redis-outage MS]]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEYS = [f"k{i}" for i in range(6)]
OAUTH = ["o0", "o1"]
COUNTED_POOLS = {"keys": KEYS, "oauth": OAUTH}


# ---------------------------------------------------------------- workers


@dataclass
class Worker:
    kind: str  # rust | node | python
    writer: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    killed: bool = False
    stderr: Path | None = None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.returncode


class Runner:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.dir = workdir
        self.file = workdir / "pools.sqlite"
        # The location the workers open: the file, or a fresh namespace of the Redis server.
        self.store: str = str(self.file)
        if args.redis:
            sep = "&" if "?" in args.redis else "?"
            self.store = f"{args.redis}{sep}namespace=stress-{args.seed}-{os.getpid()}"
        self.refresh_log = workdir / "refresh.log"
        self.refresh_log.touch()

    def command(self, kind: str, writer: str, ops: int, seed: int, log: Path) -> list[str]:
        tail = [self.store, writer, str(ops), str(seed), str(log), str(self.refresh_log)]
        if kind == "rust":
            return [self.args.rust_worker, "work", *tail]
        if kind == "node":
            return [self.args.node, str(HERE / "worker.mjs"), *tail]
        if kind == "python":
            return [self.args.python, str(HERE / "worker.py"), *tail]
        raise SystemExit(f"unknown worker kind {kind}")

    def start(self, kind: str, writer: str, ops: int, seed: int) -> Worker:
        log = self.dir / f"{writer}.log"
        err = self.dir / f"{writer}.err"
        env = dict(os.environ)
        if self.args.negative_control:
            env["STRESS_BROKEN"] = self.args.negative_control
        env["STRESS_DURABLE"] = "0" if self.args.no_durable else "1"
        with open(err, "wb") as err_file:
            proc = subprocess.Popen(
                self.command(kind, writer, ops, seed, log),
                stdout=subprocess.DEVNULL,
                stderr=err_file,
                env=env,
            )
        return Worker(kind, writer, log, proc, stderr=err)

    def rust(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.args.rust_worker, *args], capture_output=True, text=True, check=False
        )

    def setup(self) -> None:
        done = self.rust("setup", self.store)
        if done.returncode != 0:
            raise SystemExit(f"setup failed: {done.stderr.strip()}")


class RedisServer:
    """A redis-server this harness starts on a free loopback port (append-only file, fsync
    always, so a SIGKILL and restart keep every write), to stop and restart mid-run."""

    def __init__(self, binary: str, workdir: Path) -> None:
        self.binary = binary
        self.dir = workdir / "redis"
        self.dir.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as c:
                    c.sendall(b"PING\r\n")
                    if c.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise SystemExit("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


# ---------------------------------------------------------------- logs


@dataclass
class WriterLog:
    writer: str
    selects: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    added: list[str] = field(default_factory=list)
    removing: list[str] = field(default_factory=list)  # intents, in order
    removed: list[str] = field(default_factory=list)
    refreshed: list[tuple[str, str]] = field(default_factory=list)  # (entry, new refresh token)
    adopted: int = 0
    interrupted: list[str] = field(default_factory=list)  # entries found with an unsettled send
    oauth_unavailable: int = 0
    resets: int = 0
    reopens: int = 0
    lock_timeouts: int = 0
    queued: int = 0  # calls acknowledged while Redis was unreachable (marks queued)
    unavailable: int = 0  # refresh/open/flush tries refused while Redis was unreachable
    slowest_ms: int = 0
    finished: bool = False
    ops: int = 0
    malformed: list[str] = field(default_factory=list)


def read_log(writer: str, path: Path) -> WriterLog:
    log = WriterLog(writer)
    text = path.read_text() if path.exists() else ""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:
        log.malformed.append(f"unterminated last line {lines[-1]!r}")
        lines.pop()
    for line in lines:
        parts = line.split(" ")
        match parts:
            case ["select", pool, entry]:
                log.selects[(pool, entry)] += 1
                if pool == "keys":
                    log.ops += 1
            case ["add", entry_id]:
                log.added.append(entry_id)
                log.ops += 1
            case ["removing", entry_id]:
                log.removing.append(entry_id)
            case ["remove", entry_id]:
                log.removed.append(entry_id)
                log.ops += 1
            case ["refreshed", entry, token]:
                log.refreshed.append((entry, token))
                log.ops += 1
            case ["adopted", _entry]:
                log.adopted += 1
                log.ops += 1
            case ["interrupted", entry]:
                log.interrupted.append(entry)
                log.ops += 1
            case ["oauth_unavailable"]:
                log.oauth_unavailable += 1
                log.ops += 1
            case ["reset", _pool]:
                log.resets += 1
                log.ops += 1
            case ["reopen"]:
                log.reopens += 1
                log.ops += 1
            case ["lock_timeout"]:
                log.lock_timeouts += 1
            case ["queued"]:
                log.queued += 1
            case ["unavailable"]:
                log.unavailable += 1
            case ["slowest", ms] if ms.isdigit():
                log.slowest_ms = int(ms)
            case ["finished"]:
                log.finished = True
            case _:
                log.malformed.append(line)
    return log


@dataclass
class Use:
    index: int
    entry: str
    old: str
    new: str
    writer: str


def read_refresh_log(path: Path) -> tuple[list[Use], list[str]]:
    uses: list[Use] = []
    malformed: list[str] = []
    text = path.read_text()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for i, line in enumerate(lines):
        match line.split(" "):
            case ["use", entry, old, new, writer]:
                uses.append(Use(i, entry, old, new, writer))
            case _:
                malformed.append(line)
    return uses, malformed


# ---------------------------------------------------------------- checker


@dataclass
class Figures:
    selections: int = 0
    operations: int = 0
    refreshes: int = 0
    adoptions: int = 0
    lost_updates: int = 0
    resurrected: int = 0
    replays: int = 0
    interrupted_refreshes: int = 0
    lock_timeouts: int = 0
    queued: int = 0
    unavailable: int = 0
    slowest_ms: int = 0
    violations: list[str] = field(default_factory=list)

    def fail(self, text: str) -> None:
        self.violations.append(text)


def load_store(runner: Runner, figures: Figures) -> dict | None:
    try:
        # The state as a fresh process reads it (Store::open: the SQLite database, or Redis).
        exported = runner.rust("export", runner.store)
        if exported.returncode != 0:
            raise ValueError(exported.stderr.strip())
        doc = json.loads(exported.stdout)
    except (OSError, ValueError) as e:
        figures.fail(f"store file does not load: {e}")
        return None
    if doc.get("format") != "credpool" or doc.get("schema_version") != 1:
        figures.fail(f"store file is not credpool state v1: {str(doc)[:200]}")
        return None
    check = runner.rust("check", runner.store)
    if check.returncode != 0:
        figures.fail(f"FileStore::open refuses the file: {check.stderr.strip()}")
    return doc


def check(
    runner: Runner, logs: list[WriterLog], killed: set[str], figures: Figures
) -> None:
    """Checks the store file against every acknowledged operation in `logs`.

    `killed` names the writers that were SIGKILLed: for them one operation may have been
    persisted without being acknowledged (the last one in flight); everything else is exact.
    """
    doc = load_store(runner, figures)
    if doc is None:
        return
    pools = doc.get("pools", {})

    def entries(pool: str) -> dict[str, dict]:
        return {e["id"]: e for e in pools.get(pool, {}).get("entries", [])}

    # 1. Request counters: persisted == acknowledged selections (killed: +1 at most, once).
    for log in logs:
        excess = 0
        for pool, ids in COUNTED_POOLS.items():
            have = entries(pool)
            for entry_id in ids:
                if entry_id not in have:
                    figures.fail(f"{pool}/{entry_id} is missing from the store")
                    continue
                persisted = have[entry_id].get("request_counts", {}).get(log.writer, 0)
                acked = log.selects[(pool, entry_id)]
                if persisted < acked:
                    figures.lost_updates += acked - persisted
                    figures.fail(
                        f"lost update: {log.writer} selected {pool}/{entry_id} {acked}x "
                        f"but the store counts {persisted}"
                    )
                elif persisted > acked:
                    excess += persisted - acked
                    if log.writer not in killed:
                        figures.fail(
                            f"phantom count: {log.writer} selected {pool}/{entry_id} {acked}x "
                            f"but the store counts {persisted}"
                        )
        if log.writer in killed and excess > 1:
            figures.fail(f"{log.writer} (killed) has {excess} unacknowledged selections (> 1)")

    # 2. Adds and removes (pool `churn`).
    churn = entries("churn")
    tombstones = pools.get("churn", {}).get("removed", {})
    for log in logs:
        removed = set(log.removed)
        # A killed writer may have persisted the remove it was about to acknowledge.
        in_flight = set()
        if log.writer in killed and log.removing and log.removing[-1] not in removed:
            in_flight.add(log.removing[-1])
        for entry_id in log.added:
            if entry_id in removed or entry_id in in_flight:
                continue
            if entry_id not in churn:
                figures.lost_updates += 1
                figures.fail(f"lost add: {log.writer} added {entry_id}; it is not in the store")
        for entry_id in removed:
            if entry_id in churn:
                figures.resurrected += 1
                figures.fail(f"resurrected: {log.writer} removed {entry_id}; it is back")
            elif entry_id not in tombstones:
                figures.lost_updates += 1
                figures.fail(f"lost remove: {entry_id} has no tombstone")

    # 3. Refresh tokens: single use, one chain per entry, the file holds its head.
    uses, malformed = read_refresh_log(runner.refresh_log)
    for line in malformed:
        figures.fail(f"malformed refresh log line {line!r}")
    acked_refresh = {(log.writer, e, t) for log in logs for (e, t) in log.refreshed}
    oauth = entries("oauth")
    committed = {u.old for u in uses} | {
        e.get("refresh_token") for e in oauth.values() if e.get("refresh_token")
    }

    def interrupted(use: Use) -> bool:
        # Killed inside the refresh callback: the token reached the "provider" but the
        # new pair never reached the file (it was never used or stored afterwards).
        return (
            use.writer in killed
            and use.new not in committed
            and (use.writer, use.entry, use.new) not in acked_refresh
        )

    by_old: dict[str, list[Use]] = collections.defaultdict(list)
    for use in uses:
        by_old[use.old].append(use)
        if interrupted(use):
            figures.interrupted_refreshes += 1
    # No token is sent twice, not even after a worker was killed holding it: its send was
    # recorded first, so the entry asks for a new login instead.
    for token, group in by_old.items():
        for earlier in group[:-1]:
            figures.replays += 1
            figures.fail(
                f"refresh replay: {token} ({earlier.entry}) used by {earlier.writer} "
                f"and again by {', '.join(u.writer for u in group[group.index(earlier) + 1 :])}"
            )
    said_interrupted = {e for log in logs for e in log.interrupted}
    for entry_id in OAUTH:
        entry = oauth.get(entry_id)
        if entry is None:
            figures.fail(f"oauth/{entry_id} is missing from the store")
            continue
        mine = [u for u in uses if u.entry == entry_id]
        head = f"rt-seed-{entry_id}"
        chain = 0
        for use in mine:
            if use.old != head:
                figures.fail(
                    f"refresh fork: {use.writer} refreshed {entry_id} from {use.old}, "
                    f"but the current token was {head}"
                )
            if interrupted(use):
                continue
            head = use.new
            chain += 1
        if entry.get("refresh_token") != head:
            figures.fail(
                f"oauth/{entry_id} holds {entry.get('refresh_token')}, not the last issued {head}"
            )
        elif head != f"rt-seed-{entry_id}" and entry.get("access_token") != "at-" + head[3:]:
            figures.fail(f"oauth/{entry_id} holds a token pair that was never issued together")
        # A send cut by a kill stays recorded as unsettled at the current generation, so
        # nobody sends that token again (a reset may revive the entry; the record stays).
        cut = any(interrupted(u) for u in mine)
        sent = entry.get("refresh_sent") or {}
        held = sent.get("settled") is False and sent.get("generation") == entry.get("token_generation")
        if cut and not held:
            figures.fail(f"oauth/{entry_id}: a send of its token was interrupted, yet its record is {sent}")
        # (A worker killed after recording its send but before logging it leaves no `use`.)
        if entry_id in said_interrupted and not held:
            figures.fail(f"oauth/{entry_id} was reported interrupted, yet its record is {sent}")
        if entry.get("token_generation") != chain:
            figures.fail(
                f"oauth/{entry_id} is at generation {entry.get('token_generation')} "
                f"after {chain} committed refreshes"
            )

    for log in logs:
        for line in log.malformed:
            figures.fail(f"{log.writer}: malformed log line {line!r}")
        figures.selections += sum(n for (pool, _), n in log.selects.items() if pool == "keys")
        figures.operations += log.ops
        figures.refreshes += len(log.refreshed)
        figures.adoptions += log.adopted
        figures.lock_timeouts += log.lock_timeouts
        figures.queued += log.queued
        figures.unavailable += log.unavailable
        figures.slowest_ms = max(figures.slowest_ms, log.slowest_ms)


# ---------------------------------------------------------------- modes


def parse_mix(text: str) -> list[tuple[str, int]]:
    mix = []
    for part in text.split(","):
        kind, _, count = part.partition("=")
        if kind not in ("rust", "node", "python") or not count.isdigit():
            raise SystemExit(f"bad --mix part {part!r} (want rust=N,node=N,python=N)")
        if int(count):
            mix.append((kind, int(count)))
    return mix


def report_failure(workers: list[Worker]) -> list[str]:
    out = []
    for w in workers:
        if w.killed:
            continue
        if w.returncode != 0:
            text = w.stderr.read_text().strip() if w.stderr and w.stderr.exists() else ""
            out.append(f"worker {w.writer} ({w.kind}) exited {w.returncode}: {text[-500:]}")
    return out


def mixed(args: argparse.Namespace, workdir: Path) -> int:
    runner = Runner(args, workdir)
    runner.setup()
    mix = parse_mix(args.mix)
    rng = random.Random(args.seed)
    started = time.monotonic()
    workers = []
    for kind, count in mix:
        for i in range(count):
            workers.append(runner.start(kind, f"{kind}-{i}", args.ops, rng.randrange(1 << 48)))
    if args.redis_outage:
        # Redis lost mid-run (SIGKILL), back after the outage: the workers go on deciding
        # meanwhile, and their queued marks must all be merged in the end.
        # Kill it once every worker is under way (has logged an acknowledged call), so
        # the outage lands mid-run whatever the start-up time of each runtime.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(
            w.log.exists() and w.log.stat().st_size > 0 for w in workers
        ):
            time.sleep(0.01)
        args.server.kill()
        time.sleep(args.redis_outage / 1000)
        args.server.start()
    for w in workers:
        assert w.proc is not None
        try:
            w.proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
    elapsed = time.monotonic() - started
    figures = Figures()
    for text in report_failure(workers):
        figures.fail(text)
    logs = [read_log(w.writer, w.log) for w in workers]
    for log in logs:
        if not log.finished:
            figures.fail(f"worker {log.writer} did not finish")
    check(runner, logs, set(), figures)
    kinds = ", ".join(f"{kind} {count}" for kind, count in mix)
    slowest = ", ".join(
        f"{kind} {max(log.slowest_ms for w, log in zip(workers, logs) if w.kind == kind)}"
        for kind, _ in mix
    )
    print(
        f"stress{backend(args)}: processes={len(workers)} ({kinds}) "
        f"operations={figures.operations} "
        f"selections={figures.selections} refreshes={figures.refreshes} "
        f"adoptions={figures.adoptions} lost updates={figures.lost_updates} "
        f"resurrected={figures.resurrected} refresh replays={figures.replays} "
        f"lock timeouts (retried)={figures.lock_timeouts} "
        f"{outage(args, figures)}"
        f"slowest store call={figures.slowest_ms}ms ({slowest}) "
        f"violations={len(figures.violations)} time={elapsed:.1f}s"
    )
    return finish(args, figures)


def crash(args: argparse.Namespace, workdir: Path) -> int:
    runner = Runner(args, workdir)
    runner.setup()
    kinds = [kind for kind, count in parse_mix(args.crash_mix) for _ in range(count)]
    rng = random.Random(args.seed)
    figures = Figures()
    all_logs: list[WriterLog] = []
    killed: set[str] = set()
    kills = 0
    seen: set[str] = set()
    started = time.monotonic()
    for r in range(args.rounds):
        n = rng.randint(4, 6)
        workers = []
        for i in range(n):
            kind = rng.choice(kinds)
            workers.append(
                runner.start(kind, f"c{r}-{kind}-{i}", args.crash_ops, rng.randrange(1 << 48))
            )
        round_start = time.monotonic()
        victims = rng.sample(workers, rng.randint(1, n - 1))
        schedule = sorted((rng.uniform(0.005, 0.300), w) for w in victims)
        for at, w in schedule:
            delay = round_start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            assert w.proc is not None
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGKILL)
                w.killed = True
                killed.add(w.writer)
                kills += 1
        for w in workers:
            assert w.proc is not None
            try:
                w.proc.wait(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
                figures.fail(f"round {r}: worker {w.writer} hung")
        for text in report_failure(workers):
            figures.fail(f"round {r}: {text}")
        logs = [read_log(w.writer, w.log) for w in workers]
        for w, log in zip(workers, logs):
            if not w.killed and not log.finished:
                figures.fail(f"round {r}: worker {w.writer} did not finish")
        all_logs.extend(logs)
        # After every round: the file loads and holds every acknowledged update so far.
        round_figures = Figures()
        check(runner, all_logs, killed, round_figures)
        for v in round_figures.violations:
            if v not in seen:  # a violation stays visible in every later round
                seen.add(v)
                figures.fail(f"round {r}: {v}")
        figures.lost_updates = max(figures.lost_updates, round_figures.lost_updates)
        figures.resurrected = max(figures.resurrected, round_figures.resurrected)
        figures.replays = max(figures.replays, round_figures.replays)
        figures.interrupted_refreshes = round_figures.interrupted_refreshes
        figures.operations, figures.selections = round_figures.operations, round_figures.selections
        figures.refreshes, figures.adoptions = round_figures.refreshes, round_figures.adoptions
        figures.lock_timeouts = round_figures.lock_timeouts
    elapsed = time.monotonic() - started
    temps = len(list(workdir.glob(".pools.json.tmp-*")))
    valid = not any("does not load" in v or "refuses" in v or "not credpool" in v
                    for v in figures.violations)
    kinds_text = ", ".join(f"{k} {c}" for k, c in parse_mix(args.crash_mix))
    print(
        f"crash{backend(args)}: rounds={args.rounds} workers={len(all_logs)} ({kinds_text}) "
        f"kills={kills} "
        f"acknowledged operations={figures.operations} refreshes={figures.refreshes} "
        f"adoptions={figures.adoptions} "
        f"file {'always valid' if valid else 'INVALID'}, "
        f"lost acknowledged updates={figures.lost_updates} resurrected={figures.resurrected} "
        f"refresh replays={figures.replays} "
        f"(refreshes cut by a kill inside the callback: {figures.interrupted_refreshes}; "
        f"lock timeouts (retried): {figures.lock_timeouts}; "
        f"orphaned temp files: {temps}) time={elapsed:.1f}s"
    )
    return finish(args, figures)


def backend(args: argparse.Namespace) -> str:
    return " (redis)" if args.redis else ""


def outage(args: argparse.Namespace, figures: Figures) -> str:
    if not args.redis_outage:
        return ""
    if figures.queued == 0:
        figures.fail("no call was acknowledged while Redis was down (the outage was not exercised)")
    return (
        f"redis down={args.redis_outage}ms calls decided while down (marks queued)="
        f"{figures.queued} refresh/open tries refused while down={figures.unavailable} "
    )


def finish(args: argparse.Namespace, figures: Figures) -> int:
    if args.strict_lock and figures.lock_timeouts:
        figures.fail(f"{figures.lock_timeouts} store calls failed with lock_timeout (--strict-lock)")
    if args.negative_control:
        if figures.violations:
            print(f"negative control ({args.negative_control}): the checker caught "
                  f"{len(figures.violations)} violations, e.g.:")
            for v in figures.violations[:5]:
                print(f"  {v}")
            return 0
        print(f"negative control ({args.negative_control}): NOT caught")
        return 1
    if figures.violations:
        print(f"{len(figures.violations)} violations:", file=sys.stderr)
        for v in figures.violations[:50]:
            print(f"  {v}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rust-worker", required=True, help="the stress_worker example binary")
    p.add_argument("--node", default="node")
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--mix", default="rust=3,node=3,python=2", help="mixed run processes")
    p.add_argument("--ops", type=int, default=150, help="operations per worker (mixed run)")
    p.add_argument("--seed", type=int, default=None, help="harness seed (default: random)")
    p.add_argument("--timeout", type=float, default=120.0, help="per-worker wait, seconds")
    p.add_argument("--crash", action="store_true", help="run the crash test instead")
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--crash-mix", default="rust=1", help="kinds drawn from, e.g. rust=2,node=1")
    p.add_argument("--crash-ops", type=int, default=60, help="operations per crash worker")
    p.add_argument(
        "--negative-control",
        choices=["nomerge", "nolock"],
        help="run with deliberately broken Rust workers; succeeds only if the checker fails",
    )
    p.add_argument(
        "--strict-lock",
        action="store_true",
        help="count lock_timeout errors as violations (default: the workers retry them)",
    )
    p.add_argument(
        "--no-durable",
        action="store_true",
        help="open the stores without fsync (faster writes: more interleavings per second)",
    )
    p.add_argument(
        "--redis",
        metavar="URL",
        help="run over Redis (redis://host:port) in a fresh namespace instead of a file",
    )
    p.add_argument(
        "--redis-server",
        metavar="BIN",
        help="start this redis-server on a free loopback port and run over it (like --redis)",
    )
    p.add_argument(
        "--redis-outage",
        metavar="MS",
        type=int,
        default=0,
        help="mixed run: SIGKILL the --redis-server 150 ms in, restart it MS later",
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    args = p.parse_args()
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    if args.redis_outage and not args.redis_server:
        raise SystemExit("--redis-outage needs --redis-server (the harness restarts it)")
    workdir = Path(tempfile.mkdtemp(prefix="credpool-stress-"))
    args.server = None
    try:
        if args.redis_server:
            args.server = RedisServer(args.redis_server, workdir)
            args.server.start()
            args.redis = args.server.url
        code = crash(args, workdir) if args.crash else mixed(args, workdir)
    finally:
        if args.server is not None:
            args.server.kill()
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if code != 0:
        print(f"(harness seed {args.seed}; rerun with --seed {args.seed} --keep to inspect)",
              file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
