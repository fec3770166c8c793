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

echo "== rust tests (unit, doc, conformance vectors)"
cargo test --workspace

echo "== vectors against tests/vector.schema.json"
scripts/check-vector-schema.sh

echo "== CREDPOOL_EXTRA_VECTORS runs vectors kept elsewhere"
extra=$(mktemp -d)
cp tests/vectors/fill_first_basic.json "$extra/kept_elsewhere.json"
CREDPOOL_EXTRA_VECTORS=$extra cargo test -q -p credpool-conformance --test vectors -- --exact extra::kept_elsewhere \
  | tee "$extra/out.txt"
grep -q "1 passed" "$extra/out.txt"
rm -rf "$extra"

echo "== node binding (napi): build, generated-file drift, tests (API + every vector)"
(
  cd bindings-node
  npm install --no-audit --no-fund --loglevel=error
  CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-node" npx napi build --platform --release
  git diff --exit-code -- index.js index.d.ts
  node --test
)

echo "== main job example"
cargo run -q -p credpool-core --example agent >/dev/null

echo "all test suites passed"
