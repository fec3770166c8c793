#!/usr/bin/env bash
# Stress and crash tests of the store (SQLite) across processes and runtimes (tests/stress/).
#
#   scripts/stress.sh                 # mixed run (3 Rust, 3 Node, 2 Python) + crash test
#   scripts/stress.sh --crash --rounds 30 --seed 7 --keep    # one run.py invocation
#
# STRESS_MIX / STRESS_CRASH_MIX choose the workers (e.g. rust=8); STRESS_OPS the operations
# per worker. The Node and Python bindings must be built (scripts/test.sh builds them).
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CREDPOOL_ROOT"

mix=${STRESS_MIX:-rust=3,node=3,python=2}
crash_mix=${STRESS_CRASH_MIX:-rust=3,node=1,python=1}
python=${STRESS_PYTHON:-$CREDPOOL_CACHE/venv-py/bin/python}
node=${STRESS_NODE:-node}

cargo build -q --release -p credpool-store --example stress_worker
worker=$CARGO_TARGET_DIR/release/examples/stress_worker

# Refuse to run a mix whose runtimes are missing (rather than silently testing less).
wants() { [[ ",$mix,$crash_mix," =~ ,$1=[1-9] ]]; }
if wants node && ! "$node" -e "
  const { Store } = require('./bindings-node/index.js');
  if (typeof Store?.open !== 'function') process.exit(1)" 2>/dev/null; then
  echo "stress.sh: the Node binding (bindings-node) has no Store; build it, or set STRESS_MIX/STRESS_CRASH_MIX without node" >&2
  exit 1
fi
if wants python && ! "$python" -c "import credpool; credpool.Store" 2>/dev/null; then
  echo "stress.sh: $python cannot import credpool.Store; build the Python binding, or set STRESS_MIX/STRESS_CRASH_MIX without python" >&2
  exit 1
fi

run() { python3 tests/stress/run.py --rust-worker "$worker" --node "$node" --python "$python" "$@"; }
if [[ $# -gt 0 ]]; then
  run --mix "$mix" --crash-mix "$crash_mix" "$@"
  exit
fi
run --mix "$mix" --ops "${STRESS_OPS:-150}"
run --crash --crash-mix "$crash_mix" --rounds "${STRESS_ROUNDS:-15}"
