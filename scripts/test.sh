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

echo "== main job example"
cargo run -q -p credpool-core --example agent >/dev/null

echo "all test suites passed"
