#!/usr/bin/env bash
# Builds the wasm (web target) and serves the in-browser config preview
# (bindings-wasm/www) on http://127.0.0.1:${PORT:-8080}/ until interrupted.
# The served tree ($CREDPOOL_CACHE/www-serve) links the page's files and the build as pkg/.
#   scripts/serve-www.sh             # build, then serve
#   scripts/serve-www.sh --no-build  # serve the last build
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
port=${PORT:-8080}
pkg=$CREDPOOL_CACHE/wasm-pkg

if [[ ${1:-} != --no-build ]]; then
  "$here/build-wasm-crate.sh" "$CREDPOOL_ROOT/bindings-wasm" "$pkg"
  "$here/build-wasm-crate.sh" "$CREDPOOL_ROOT/bindings-wasm-sim" "$CREDPOOL_CACHE/wasm-sim-pkg"
fi
[[ -f $pkg/web/credpool_wasm.js ]] || { echo "no wasm build in $pkg/web (run without --no-build)" >&2; exit 1; }

tree=$CREDPOOL_CACHE/www-serve
rm -rf "$tree"
mkdir -p "$tree"
for f in "$CREDPOOL_ROOT"/bindings-wasm/www/*; do ln -s "$f" "$tree/"; done
ln -s "$pkg/web" "$tree/pkg"
ln -s "$CREDPOOL_CACHE/wasm-sim-pkg/web" "$tree/sim" # the timeline's simulator module

echo "credpool config preview: http://127.0.0.1:$port/  (Ctrl+C to stop)"
exec python3 -m http.server "$port" --bind 127.0.0.1 --directory "$tree"
