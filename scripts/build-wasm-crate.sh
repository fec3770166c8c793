#!/usr/bin/env bash
# Usage: scripts/build-wasm-crate.sh <crate-dir> <out-dir>
# Builds a cdylib crate for wasm32-unknown-unknown (release, std rebuilt from
# source) and runs wasm-bindgen into <out-dir>/web and <out-dir>/nodejs.
# Panics unwind (wasm exception handling, legacy instructions: Node >= 20, Chromium), so
# the bindings' `catch_unwind` turns every panic into a coded error; std is rebuilt with
# panic_unwind for it, and with std's `optimize_for_size` (smaller formatting and sorting code).
# Panic messages carry no file/line/column (-Zlocation-detail=none): a panic only ever becomes
# the fixed `internal` error, so locations were dead bytes (about 10 KB).
# Env: CREDPOOL_WASM_OPT=0 skips wasm-opt -Oz; CREDPOOL_WASM_FEATURES=<list> passes
# --features (scripts/test-panic.sh: test-panic).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
[[ $# -eq 2 ]] || { echo "usage: $0 <crate-dir> <out-dir>" >&2; exit 2; }
crate=$(cd "$1" && pwd)
mkdir -p "$2" && out=$(cd "$2" && pwd)

# The CLI must match the wasm-bindgen crate the crate locks (creates Cargo.lock if missing).
ver=$(cargo tree -q --manifest-path "$crate/Cargo.toml" -i wasm-bindgen --depth 0 \
  --target all -e normal | sed -n 's/^wasm-bindgen v\([^ ]*\).*/\1/p' | head -n1)
[[ -n $ver ]] || { echo "$crate does not depend on wasm-bindgen" >&2; exit 1; }
WASM_BINDGEN_VERSION=$ver "$here/setup-wasm.sh"
# shellcheck source=/dev/null
. "$CREDPOOL_CACHE/wasm-env.sh"

log=$(mktemp); trap 'rm -f "$log"' EXIT
features=()
[[ -n ${CREDPOOL_WASM_FEATURES:-} ]] && features=(--features "$CREDPOOL_WASM_FEATURES")
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Cpanic=unwind -Ctarget-feature=+exception-handling -Zlocation-detail=none" \
  credpool_wasm_cargo build --profile wasm-release --config 'profile.wasm-release.panic="unwind"' \
  --lib --target wasm32-unknown-unknown -Zbuild-std=std,panic_unwind \
  -Zbuild-std-features=optimize_for_size \
  --manifest-path "$crate/Cargo.toml" "${features[@]}" \
  --message-format=json-render-diagnostics >"$log"
wasm=$(grep -o '"[^"]*\.wasm"' "$log" | tail -n1 | tr -d '"')
[[ -f $wasm ]] || { echo "no .wasm artifact (is the crate a cdylib?)" >&2; exit 1; }

bindgen=$CREDPOOL_CACHE/wasm-bindgen-$ver/bin/wasm-bindgen
wasm_opt=$CREDPOOL_CACHE/node-tools/node_modules/.bin/wasm-opt
for t in web nodejs; do
  rm -rf "${out:?}/$t"
  "$bindgen" --target "$t" --out-dir "$out/$t" "$wasm"
  if [[ ${CREDPOOL_WASM_OPT:-1} != 0 && -x $wasm_opt ]]; then
    for f in "$out/$t"/*_bg.wasm; do
      # Features rustc >= 1.82 enables by default on wasm32-unknown-unknown.
      # --converge: repeat -Oz while it still shrinks. --low-memory-unused: `load(p + c)`
      # becomes `load offset=c (p)` for c < 1 KiB, which differs only if p + c wrapped past
      # 4 GiB into the lowest 1 KiB (no Rust pointer comes near 4 GiB). The producers and
      # target-features sections are metadata no runtime reads.
      "$wasm_opt" -Oz --converge --low-memory-unused --strip-producers --strip-target-features \
        --enable-bulk-memory --enable-mutable-globals --enable-sign-ext \
        --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue \
        --enable-exception-handling \
        "$f" -o "$f"
    done
  fi
done
echo "built $(basename "$wasm") (wasm-bindgen $ver) -> $out/{web,nodejs}"
