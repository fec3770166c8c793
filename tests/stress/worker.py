"""Stress worker over the Python binding's Store (driven by tests/stress/run.py).

  python worker.py <store> <writer> <ops> <seed> <log> <refresh-log>

`<store>` is a file path or a Redis URL (`redis://host:port?namespace=NAME`): both open
with `credpool.Store.open(location)`. The same operations and log lines as
store/examples/stress_worker.rs: one line per acknowledged operation, one unbuffered
os.write per line (a SIGKILL never leaves half a line). The refresh callback appends
`use <entry> <old> <new> <writer>` to the shared refresh log (O_APPEND) before it returns
the new pair. `STRESS_REFRESH_LEASE_MS` sets a Redis refresh lock's lease (default 2000).

Over Redis, an outage is ridden out like the Rust worker does: every call acknowledged
while Redis was unreachable (its marks queued) is logged `queued`; a refresh, an open or a
flush that fails with `io` is logged `unavailable` and retried every 20 ms for up to 60 s;
the store is flushed before a reopen and at the end.
"""

from __future__ import annotations

import os
import random
import sys
import time

import credpool

# How long an outage is ridden out (seconds).
PATIENCE = 60.0


def main() -> int:
    if len(sys.argv) != 7:
        print("usage: worker.py <store> <writer> <ops> <seed> <log> <refresh-log>", file=sys.stderr)
        return 2
    store_location, writer, ops_text, seed_text, log_path, refresh_log = sys.argv[1:]
    ops, seed = int(ops_text), int(seed_text)
    latency = float(os.environ.get("STRESS_REFRESH_MS", "2")) / 1000
    rng = random.Random(seed)
    slowest = [0.0]
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def log(line: str) -> None:
        os.write(log_fd, f"{line}\n".encode())

    def call(fn):
        """One store call; a `lock_timeout` (the input did not happen) is logged and retried;
        a call acknowledged while changes wait for Redis is logged `queued`."""
        while True:
            start = time.monotonic()
            try:
                out = fn()
                if store.has_pending():
                    log("queued")
                return out
            except credpool.CredpoolError as e:
                if e.code != "lock_timeout":
                    raise
                log("lock_timeout")
            finally:
                slowest[0] = max(slowest[0], time.monotonic() - start)

    def until_up(fn):
        """Runs `fn` until it does not fail with `io` (Redis unreachable; PATIENCE at most),
        logging `unavailable` for each failed try; `lock_timeout` is logged and retried too."""
        since = time.monotonic()
        while True:
            start = time.monotonic()
            try:
                return fn()
            except credpool.CredpoolError as e:
                if e.code == "lock_timeout":
                    log("lock_timeout")
                elif e.code == "io" and time.monotonic() - since < PATIENCE:
                    log("unavailable")
                    time.sleep(0.02)
                else:
                    raise
            finally:
                slowest[0] = max(slowest[0], time.monotonic() - start)

    def expect(decision, kind: str):
        if decision["type"] != kind:
            raise RuntimeError(f"expected a {kind} decision, got {decision}")
        return decision

    def open_store() -> credpool.Store:
        durable = os.environ.get("STRESS_DURABLE") != "0"
        lease = float(os.environ.get("STRESS_REFRESH_LEASE_MS", "2000")) / 1000
        return credpool.Store.open(
            store_location, writer=writer, seed=seed, durable=durable, refresh_lease=lease
        )

    store = until_up(open_store)

    def refresh(n: int) -> None:
        d = call(lambda: store.acquire("oauth"))
        if d["type"] != "refresh":
            # Every OAuth entry died of an interrupted refresh (a worker killed mid-send).
            expect(d, "fail")
            log("oauth_unavailable")
            return
        entry = d["entry_id"]
        log(f"select oauth {entry}")
        # A moment between the decision and the refresh, so other processes can act on the
        # same stale token meanwhile (the adopt path).
        time.sleep(rng.randrange(2000) / 1e6)
        new_rt, new_at = f"rt-{writer}-{n}", f"at-{writer}-{n}"

        def refresh_fn(cred):
            line = f"use {entry} {cred.get('refresh_token') or '-'} {new_rt} {writer}\n"
            fd = os.open(refresh_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
            time.sleep(latency)  # the provider round trip (the lock is held meanwhile)
            return {
                "type": "refreshed",
                "access_token": new_at,
                "refresh_token": new_rt,
                "expires_at": int(time.time() * 1000) - 1,
            }

        decision = until_up(
            lambda: store.refresh("oauth", entry, d["generation"], refresh_fn, lease_id=d["lease_id"])
        )
        if decision.get("reason") == "refresh_failed":
            # An earlier send of this token never settled (its worker was killed): the
            # token is never sent again, the entry is dead, and the request rotates.
            log(f"interrupted {entry}")
            if decision["type"] == "use":
                log(f"select oauth {decision['entry_id']}")
                expect(call(lambda: store.report("oauth", decision["lease_id"], status=200)), "done")
            return
        expect(decision, "use")
        if decision["entry_id"] != entry:
            raise RuntimeError(f"refresh of {entry} answered use {decision['entry_id']}")
        if decision.get("reason") == "refreshed":
            log(f"refreshed {entry} {new_rt}")
        elif decision.get("reason") == "adopted":
            log(f"adopted {entry}")
        else:
            raise RuntimeError(f"refresh answered {decision}")
        expect(call(lambda: store.report("oauth", decision["lease_id"], status=200)), "done")

    live: list[str] = []
    added = 0
    for n in range(ops):
        roll = rng.randrange(100)
        if roll < 40:
            d = expect(call(lambda: store.acquire("keys")), "use")
            log(f"select keys {d['entry_id']}")
            expect(call(lambda: store.report("keys", d["lease_id"], status=200)), "done")
        elif roll < 62:
            refresh(n)
        elif roll < 75:
            entry_id = f"{writer}-{added}"
            added += 1
            call(lambda: store.add_entry("churn", {"id": entry_id, "access_token": f"sk-{entry_id}"}))
            log(f"add {entry_id}")
            live.append(entry_id)
        elif roll < 87:
            if not live:
                continue
            i = rng.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            entry_id = live.pop()
            log(f"removing {entry_id}")
            call(lambda: store.remove_entry("churn", entry_id))
            log(f"remove {entry_id}")
        elif roll < 93:
            pool = "keys" if rng.randrange(2) == 0 else "oauth"
            call(lambda: store.reset(pool))
            log(f"reset {pool}")
        else:
            # A restart: a fresh store from the file (or Redis), so nothing survives only in
            # memory.
            until_up(store.flush)
            store = until_up(open_store)
            log("reopen")
    until_up(store.flush)
    log(f"slowest {int(slowest[0] * 1000)}")
    log("finished")
    os.close(log_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
