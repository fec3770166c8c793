#!/usr/bin/env bash
# Panic safety across FFI: builds each binding WITH the test-only `test-panic` feature
# (`handle({type: "__test_panic"})` panics where core would run) into separate outputs
# under $CREDPOOL_CACHE/panic (the normal builds stay clean), then runs
# tests/hostile/panic/{panic.test.mjs,test_panic.py} against them.
# Debug builds for napi and Python; wasm uses the wasm-release profile (panic = "unwind").
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CREDPOOL_ROOT"
out="$CREDPOOL_CACHE/panic"
mkdir -p "$out"

echo "== test-panic: napi (debug build, own target dir)"
rm -rf "$out/napi" && mkdir -p "$out/napi"
(
  cd bindings-node
  CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-node-panic" npx napi build --platform \
    --features test-panic --output-dir "$out/napi" --js index.js --dts index.d.ts >/dev/null
)
CREDPOOL_PANIC_IMPL=napi CREDPOOL_PANIC_MODULE="$out/napi/index.js" \
  node --test tests/hostile/panic/panic.test.mjs

echo "== test-panic: python (debug wheel, unpacked first on PYTHONPATH)"
venv="$CREDPOOL_CACHE/venv-py"
rm -rf "$out/py" && mkdir -p "$out/py/wheel" "$out/py/site"
(
  cd bindings-python
  VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-py-panic" \
    maturin build -q --features test-panic --out "$out/py/wheel"
)
"$venv/bin/python" -m zipfile -e "$out"/py/wheel/*.whl "$out/py/site"
PYTHONPATH="$out/py/site" "$venv/bin/python" -c \
  'import credpool, sys; p = credpool.__file__; assert p.startswith(sys.argv[1]), p' "$out/py/site"
PYTHONPATH="$out/py/site" "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/hostile/panic/test_panic.py

echo "== test-panic: wasm (panic = unwind + wasm exception handling; nodejs package, no wasm-opt)"
# The same build script and flags as the release package, plus the test-only feature.
rm -rf "$out/wasm"
CREDPOOL_WASM_OPT=0 CREDPOOL_WASM_FEATURES=test-panic \
  scripts/build-wasm-crate.sh bindings-wasm "$out/wasm-pkg" >/dev/null
CREDPOOL_PANIC_IMPL=wasm CREDPOOL_PANIC_MODULE="$out/wasm-pkg/nodejs/credpool_wasm.js" \
  node --test tests/hostile/panic/panic.test.mjs
echo "test-panic: all bindings passed"
