#!/usr/bin/env bash
# Usage: scripts/pack-wasm.sh [<wasm-pkg-dir> [<out-dir>]]
# Assembles the npm package credpool-wasm from a build of scripts/build-wasm-crate.sh
# (<wasm-pkg-dir>/{web,nodejs}, default $CREDPOOL_CACHE/wasm-pkg), bindings-wasm/package.json
# and the JS helpers, then `npm pack`s it into <out-dir> (default $CREDPOOL_CACHE/dist).
# Prints the tarball's path. The simulator (bindings-wasm-sim, used by the config preview
# page) is a separate module and never part of this package: packing fails if the engine's
# module exports `simulate`.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
pkg=${1:-$CREDPOOL_CACHE/wasm-pkg}
out=${2:-$CREDPOOL_CACHE/dist}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$out"
cp "$CREDPOOL_ROOT/bindings-wasm/package.json" "$stage/"
cp "$CREDPOOL_ROOT/bindings-node/helpers.mjs" "$CREDPOOL_ROOT/bindings-node/helpers.d.mts" \
  "$CREDPOOL_ROOT/bindings-node/fetch.mjs" "$CREDPOOL_ROOT/bindings-node/fetch.d.mts" \
  "$CREDPOOL_ROOT/bindings-node/oauth.mjs" \
  "$CREDPOOL_ROOT/core/wire.d.ts" "$stage/"
for t in web nodejs; do
  mkdir -p "$stage/$t"
  # wasm-bindgen writes a .gitignore and a package.json per target; the package has its own.
  cp "$pkg/$t"/credpool_wasm.js "$pkg/$t"/credpool_wasm.d.ts "$pkg/$t"/credpool_wasm_bg.wasm \
    "$pkg/$t"/credpool_wasm_bg.wasm.d.ts "$stage/$t/"
  # wasm-bindgen's inline_js snippets (the binding's hot-path object builders).
  if [[ -d $pkg/$t/snippets ]]; then cp -R "$pkg/$t/snippets" "$stage/$t/"; fi
done
node -e 'const m = new WebAssembly.Module(require("fs").readFileSync(process.argv[1]));
  if (WebAssembly.Module.exports(m).some((e) => e.name === "simulate")) {
    console.error("pack-wasm: credpool-wasm must not contain the simulator"); process.exit(1) }' \
  "$stage/web/credpool_wasm_bg.wasm"
# The nodejs target is CommonJS inside a "type": "module" package; its inline_js snippets
# are ES modules, which it require()s (Node >= 20.19 / 22.12, the package's `engines`).
echo '{ "type": "commonjs" }' >"$stage/nodejs/package.json"
if [[ -d $stage/nodejs/snippets ]]; then echo '{ "type": "module" }' >"$stage/nodejs/snippets/package.json"; fi
(cd "$stage" && npm pack --silent --pack-destination "$out") | tail -n1 | sed "s|^|$out/|"
