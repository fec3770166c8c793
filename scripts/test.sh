#!/usr/bin/env bash
# The README's test command: every check and test suite, from a fresh clone.
# Caches (cargo target dir, toolchains) live in $CREDPOOL_CACHE, never in the clone.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CREDPOOL_ROOT"

echo "== rustfmt"
cargo fmt --all -- --check

echo "== clippy (-D warnings; core/clippy.toml bans clocks, sleep, env, fs and OS randomness)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== core purity"
scripts/check-core-purity.sh

echo "== rust tests (unit, doc, conformance vectors, store)"
cargo test  # default members: core, store, cli, tests (bindings are tested in their languages)

echo "== fuzz smoke (cargo-fuzz on nightly): every core/fuzz target; a crash input fails the run"
CREDPOOL_FUZZ_SECONDS=${CREDPOOL_FUZZ_SECONDS:-30} scripts/fuzz-smoke.sh

echo "== vectors against tests/vector.schema.json; core/wire.d.ts against core/src/wire.rs"
scripts/check-vector-schema.sh
scripts/check-wire-types.sh

echo "== CREDPOOL_EXTRA_VECTORS runs vectors kept elsewhere"
extra=$(mktemp -d)
cp tests/vectors/fill_first_basic.json "$extra/kept_elsewhere.json"
CREDPOOL_EXTRA_VECTORS=$extra cargo test -q -p credpool-conformance --test vectors -- --exact extra::kept_elsewhere \
  | tee "$extra/out.txt"
grep -q "1 passed" "$extra/out.txt"
rm -rf "$extra"

echo "== node binding (napi): build, generated-file drift, API tests, every vector"
(
  cd bindings-node
  npm install --no-audit --no-fund --loglevel=error
  CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-node" npx napi build --platform --release
  git diff --exit-code -- index.js index.d.ts
)
# Test dependencies of the shared Node tests (the real openai, @anthropic-ai/sdk and Vercel AI
# SDKs for the helpers and credentialFetch).
(cd tests/node && npm install --no-audit --no-fund --loglevel=error)
CREDPOOL_IMPL=napi node --test tests/node/*.test.mjs

echo "== python binding (pyo3, abi3): build, stub check, tests (API + every vector)"
venv="$CREDPOOL_CACHE/venv-py"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r bindings-python/requirements-test.txt
(
  cd bindings-python
  VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-py" \
    maturin develop -q
  "$venv/bin/python" -m mypy.stubtest credpool --allowlist stubtest-allowlist.txt
  "$venv/bin/python" -m mypy --strict python/credpool/_helpers.py python/credpool/_oauth.py python/credpool/_responses.py python/credpool/_store.py python/credpool/_transport.py
  "$venv/bin/python" -m pytest -q tests ../tests/python
)

echo "== multi-process stress and crash tests (SQLite store; Rust, Node and Python processes)"
scripts/stress.sh

echo "== Redis store: Rust tests, fault tests and the stress test over a redis-server it starts and stops"
scripts/test-redis.sh

echo "== wasm binding: build (Debian rustc-web, -Zbuild-std), import check, vectors in Node and headless Chromium"
scripts/setup-wasm.sh
eval "$(scripts/setup-browser.sh)"
pkg="$CREDPOOL_CACHE/wasm-pkg"
sim_pkg="$CREDPOOL_CACHE/wasm-sim-pkg"
scripts/build-wasm-crate.sh bindings-wasm "$pkg"
scripts/build-wasm-crate.sh bindings-wasm-sim "$sim_pkg"
scripts/check-wasm-imports.sh "$pkg/web/credpool_wasm_bg.wasm" "$pkg/nodejs/credpool_wasm_bg.wasm" \
  "$sim_pkg/web/credpool_wasm_sim_bg.wasm" "$sim_pkg/nodejs/credpool_wasm_sim_bg.wasm"
for w in "$pkg/web/credpool_wasm_bg.wasm" "$sim_pkg/web/credpool_wasm_sim_bg.wasm"; do
  echo "$(basename "$w"): $(wc -c <"$w") bytes raw, $(gzip -9 -c "$w" | wc -c) bytes gzip -9"
done
CREDPOOL_IMPL=wasm CREDPOOL_WASM_PKG="$pkg/nodejs" CREDPOOL_WASM_SIM_PKG="$sim_pkg/nodejs" \
  node --test tests/node/*.test.mjs
CREDPOOL_WASM_WEB="$pkg/web" node bindings-wasm/test/browser.mjs
echo "-- the config preview page (bindings-wasm/www) in headless chromium; screenshots in \$CREDPOOL_CACHE/test-output/www"
CREDPOOL_WASM_WEB="$pkg/web" CREDPOOL_WASM_SIM_WEB="$sim_pkg/web" node --test bindings-wasm/test/www.test.mjs

echo "== panic safety across FFI (test-panic feature builds of the three bindings)"
scripts/test-panic.sh

echo "== packages: npm pack + maturin build, installed into fresh projects, README examples run there"
scripts/test-packages.sh

echo "== binding benches (smoke run; real figures: scripts/bench-bindings.sh)"
CREDPOOL_IMPL=napi node benches/bindings.mjs 200 >/dev/null
CREDPOOL_IMPL=wasm CREDPOOL_WASM_PKG="$pkg/nodejs" node benches/bindings.mjs 200 >/dev/null
CREDPOOL_WASM_WEB="$pkg/web" node benches/bindings-chromium.mjs 200 >/dev/null
"$venv/bin/python" benches/bindings.py 200 >/dev/null
# The Node peer bench's credpool side (key-carousel too when scripts/bench.sh installed it).
CREDPOOL_BENCH_QUICK=1 node benches/peers.mjs >/dev/null

echo "== main job: credpool simulate (the README's command)"
cargo run -q -p credpool-cli -- simulate | tee "$CREDPOOL_CACHE/simulate.txt" | grep -q "replays"
cargo run -q -p credpool-core --example agent >/dev/null

echo "all test suites passed"
