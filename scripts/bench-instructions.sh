#!/usr/bin/env bash
# Instructions per acquire+report pair through the napi and Python bindings: a load-independent
# figure to compare builds on this noisy machine (BENCHMARKS.md, "Bindings"). Runs the same pair
# loop 1,000 and 11,000 times under valgrind (Debian's `valgrind`) and prints the difference / 10,000,
# so start-up and import cost cancel out.
# Usage: scripts/bench-instructions.sh   (after scripts/test.sh or scripts/bench-bindings.sh has built both)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
cd "$CREDPOOL_ROOT"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }

node_loop='
const { Registry } = require("./bindings-node");
const reg = new Registry({ writer: "bench", seed: 1 });
for (let i = 0; i < 8; i++) reg.addEntry("openrouter", { id: `k${i}`, access_token: `sk-bench-${i}` }, 0);
let clock = 1000;
for (let i = 0, n = Number(process.argv[1]); i < n; i++) {
  clock++;
  const use = reg.acquire("openrouter", undefined, clock);
  reg.report("openrouter", use.lease_id, { status: 200 }, clock);
}'
python_loop='
import sys, credpool
reg = credpool.Registry(writer="bench", seed=1)
for i in range(8):
    reg.add_entry("openrouter", {"id": f"k{i}", "access_token": f"sk-bench-{i}"}, now=0)
clock = 1000
for _ in range(int(sys.argv[1])):
    clock += 1
    use = reg.acquire("openrouter", now=clock)
    reg.report("openrouter", use["lease_id"], status=200, now=clock)'

# Guest instructions of one run of "$@" (the loop size is the last argument).
instructions() {
  valgrind --tool=lackey --basic-counts=yes "$@" 2>&1 | sed -n 's/.*guest instrs: *\([0-9,]*\)$/\1/p' | tr -d ,
}
per_pair() {
  local small big
  small=$(instructions "$@" 1000)
  big=$(instructions "$@" 11000)
  echo $(((big - small) / 10000))
}
echo "napi:   $(per_pair node -e "$node_loop") instructions per acquire + report"
echo "python: $(per_pair "$CREDPOOL_CACHE/venv-py/bin/python" -c "$python_loop") instructions per acquire + report"
