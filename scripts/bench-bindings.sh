#!/usr/bin/env bash
# Per-binding figures for one acquire+report pair next to a no-op call through the same
# binding (benches/bindings.{mjs,py}; wasm also in Chromium), all release builds, in one run so the ratios compare.
# Usage: scripts/bench-bindings.sh [iterations]   (after scripts/test.sh has built everything)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
cd "$CREDPOOL_ROOT"
n=${1:-20000}
venv=$CREDPOOL_CACHE/venv-py
(cd bindings-python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
  CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-py" maturin develop --release -q)
CREDPOOL_IMPL=napi node benches/bindings.mjs "$n"
CREDPOOL_IMPL=wasm CREDPOOL_WASM_PKG="$CREDPOOL_CACHE/wasm-pkg/nodejs" node benches/bindings.mjs "$n"
# The same rows on the web build in headless Chromium (Debian's chromium, playwright-core).
eval "$(scripts/setup-browser.sh)"
CREDPOOL_WASM_WEB="$CREDPOOL_CACHE/wasm-pkg/web" node benches/bindings-chromium.mjs "$n"
"$venv/bin/python" benches/bindings.py "$n"
