#!/usr/bin/env bash
# Every benchmark in one command, then the tables of BENCHMARKS.md regenerated from them:
#   1. criterion: the engine (core/benches/engine.rs) and the simulator (sim/benches/throughput.rs)
#   2. the bindings (scripts/bench-bindings.sh: napi, wasm in Node and in Chromium, Python), building what is missing
#   3. the peers: Python (benches/peers.py) in $CREDPOOL_CACHE/venv-bench, installed from PyPI,
#      and Node (benches/peers.mjs), installed from npm into $CREDPOOL_CACHE/node-peers
#   4. the store (store/examples/store_bench.rs): writes and bytes per 1,000 requests, and
#      operations per second with 1 and 8 processes (file, and Redis when redis-server exists)
#   5. benches/report.py: rewrites the marked blocks of BENCHMARKS.md (and the wasm sizes)
# Usage: scripts/bench.sh [--quick]     (--quick, or CREDPOOL_BENCH_QUICK=1: a smoke run)
# Env: CREDPOOL_BENCH_SKIP="bindings peers" skips parts (names: core sim bindings peers store).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
cd "$CREDPOOL_ROOT"

quick=${CREDPOOL_BENCH_QUICK:-0}
[[ ${1:-} == --quick ]] && quick=1
if [[ $quick != 0 && -n $quick ]]; then
  export CREDPOOL_BENCH_QUICK=1
  iterations=2000
else
  unset CREDPOOL_BENCH_QUICK
  iterations=20000
fi
skip=" ${CREDPOOL_BENCH_SKIP:-} "
wants() { [[ $skip != *" $1 "* ]]; }

results=$CREDPOOL_CACHE/bench-results
criterion=$CARGO_TARGET_DIR/criterion
pkg=$CREDPOOL_CACHE/wasm-pkg
rm -rf "$results" && mkdir -p "$results"
failed=()

if wants core; then
  echo "== engine (criterion): core/benches/engine.rs"
  rm -rf "$criterion"/{pair_success,pair_429,entry_lookup,memory_latency,classify,state,sync}
  cargo bench -p credpool-core --bench engine
fi
if wants sim; then
  echo "== simulator throughput (criterion): sim/benches/throughput.rs"
  rm -rf "$criterion/simulate"
  cargo bench -p credpool-sim --bench throughput
fi

if wants bindings; then
  echo "== bindings: scripts/bench-bindings.sh $iterations"
  if ! compgen -G "bindings-node/*.node" >/dev/null; then
    echo "-- building the napi binding (release)"
    (cd bindings-node && npm install --no-audit --no-fund --loglevel=error &&
      CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-node" npx napi build --platform --release)
  fi
  if [[ ! -f $pkg/nodejs/credpool_wasm.js || ! -f $pkg/web/credpool_wasm_bg.wasm ]]; then
    echo "-- building the wasm binding"
    scripts/setup-wasm.sh && scripts/build-wasm-crate.sh bindings-wasm "$pkg"
  fi
  if [[ ! -x $CREDPOOL_CACHE/venv-py/bin/maturin ]]; then
    python3 -m venv "$CREDPOOL_CACHE/venv-py"
    "$CREDPOOL_CACHE/venv-py/bin/pip" install -q maturin
  fi
  if ! CREDPOOL_BENCH_JSON=1 scripts/bench-bindings.sh "$iterations" >"$results/bindings.jsonl"; then
    failed+=(bindings)
  fi
fi

if wants peers; then
  echo "== Python peers: benches/peers.py (venv $CREDPOOL_CACHE/venv-bench)"
  venv=$CREDPOOL_CACHE/venv-bench
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  # Peers from PyPI, never vendored; one that does not install is reported by peers.py.
  for peer in hermes-agent rotapool litellm maturin; do
    "$venv/bin/pip" install -q --disable-pip-version-check "$peer" || echo "bench.sh: $peer did not install"
  done
  (cd bindings-python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
    CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-py" maturin develop --release -q)
  if ! "$venv/bin/python" benches/peers.py --json >"$results/peers-python.jsonl"; then
    failed+=(peers)
  fi
  echo "== Node peers: benches/peers.mjs (key-carousel from npm in $CREDPOOL_CACHE/node-peers)"
  peers=$CREDPOOL_CACHE/node-peers
  mkdir -p "$peers"
  [[ -f $peers/package.json ]] || echo '{"private": true}' >"$peers/package.json"
  (cd "$peers" && npm install --no-audit --no-fund --loglevel=error key-carousel@1) ||
    echo "bench.sh: key-carousel did not install"
  if ! compgen -G "bindings-node/*.node" >/dev/null; then
    (cd bindings-node && npm install --no-audit --no-fund --loglevel=error &&
      CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-node" npx napi build --platform --release)
  fi
  if ! CREDPOOL_NODE_PEERS=$peers node benches/peers.mjs --json >"$results/peers-node.jsonl"; then
    failed+=(peers-node)
  fi
fi

if wants store; then
  echo "== store: store/examples/store_bench.rs${CREDPOOL_BENCH_QUICK:+ --quick}"
  cargo build -q --release -p credpool-store --example store_bench
  if ! "$CARGO_TARGET_DIR/release/examples/store_bench" --json ${CREDPOOL_BENCH_QUICK:+--quick} \
    >"$results/store.jsonl"; then
    failed+=(store)
  fi
fi

echo "== BENCHMARKS.md"
python3 benches/report.py --criterion "$criterion" --results "$results" \
  --wasm "$pkg/web/credpool_wasm_bg.wasm" \
  --wasm "$CREDPOOL_CACHE/wasm-sim-pkg/web/credpool_wasm_sim_bg.wasm" --out BENCHMARKS.md ${CREDPOOL_BENCH_QUICK:+--quick}
if ((${#failed[@]})); then
  echo "bench.sh: failed: ${failed[*]} (their tables say 'not run')" >&2
  exit 1
fi
