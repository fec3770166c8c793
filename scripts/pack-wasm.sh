#!/usr/bin/env bash
# Usage: scripts/pack-wasm.sh [<wasm-pkg-dir> [<out-dir>]]
# Assembles the npm package credpool-wasm from a build of scripts/build-wasm-crate.sh
# (<wasm-pkg-dir>/{web,nodejs}, default $CREDPOOL_CACHE/wasm-pkg), bindings-wasm/package.json
# and the JS helpers, then `npm pack`s it into <out-dir> (default $CREDPOOL_CACHE/dist).
# Prints the tarball's path.
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
  "$CREDPOOL_ROOT/core/wire.d.ts" "$stage/"
for t in web nodejs; do
  mkdir -p "$stage/$t"
  # wasm-bindgen writes a .gitignore and a package.json per target; the package has its own.
  cp "$pkg/$t"/credpool_wasm* "$stage/$t/"
done
# The nodejs target is CommonJS inside a "type": "module" package.
echo '{ "type": "commonjs" }' >"$stage/nodejs/package.json"
(cd "$stage" && npm pack --silent --pack-destination "$out") | tail -n1 | sed "s|^|$out/|"
