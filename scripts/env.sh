# shellcheck shell=bash
# Sourced by the other scripts: shared cache locations (never inside the repo).
CREDPOOL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CREDPOOL_CACHE=${CREDPOOL_CACHE:-$HOME/.cache/credpool}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$CREDPOOL_CACHE/target}
export CREDPOOL_ROOT CREDPOOL_CACHE CARGO_TARGET_DIR
mkdir -p "$CREDPOOL_CACHE" "$CARGO_TARGET_DIR"
