#!/usr/bin/env bash
# Fuzz smoke run: builds the cargo-fuzz targets of core/fuzz with nightly and runs each
# for a bounded time, printing libFuzzer's execution count per target. Fails on any crash
# (the crashing input is left in core/fuzz/artifacts/<target>/; copy it to
# core/fuzz/regressions/<target>/ once fixed, and `cargo test -p credpool-core` replays it).
#
#   scripts/fuzz-smoke.sh [target...]      default: every target
#   CREDPOOL_FUZZ_SECONDS=60               seconds per target (default 60)
#   CREDPOOL_FUZZ_JOBS=1                   libFuzzer workers per target (default 1)
#
# Corpora persist in $CREDPOOL_CACHE/fuzz-corpus/<target> (seeded from core/fuzz/seeds and
# core/fuzz/regressions), so every run starts where the last one stopped.
set -euo pipefail
# shellcheck source=scripts/env.sh
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CREDPOOL_ROOT/core/fuzz"

seconds=${CREDPOOL_FUZZ_SECONDS:-60}
jobs=${CREDPOOL_FUZZ_JOBS:-1}
tools="$CREDPOOL_CACHE/cargo-tools"
export PATH="$tools/bin:$PATH"
# Its own target dir: sanitizer flags would otherwise rebuild the workspace's artefacts.
export CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz-smoke: needs a nightly toolchain (rustup toolchain install nightly)" >&2
  exit 1
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz into $tools"
  CARGO_INSTALL_ROOT="$tools" cargo install cargo-fuzz --locked \
    || CARGO_INSTALL_ROOT="$tools" cargo install cargo-fuzz
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

echo "== building fuzz targets (nightly; no sanitizer: core forbids unsafe code, so ASan would only slow the search): ${targets[*]}"
cargo +nightly fuzz build --sanitizer none

summary=()
status=0
for target in "${targets[@]}"; do
  corpus="$CREDPOOL_CACHE/fuzz-corpus/$target"
  mkdir -p "$corpus"
  for extra in "seeds/$target" "regressions/$target"; do
    if [ -d "$extra" ]; then
      find "$extra" -type f -exec cp -n {} "$corpus/" \;
    fi
  done
  flags=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)
  if [ -f "$target.dict" ]; then flags+=("-dict=$target.dict"); fi
  if [ "$jobs" -gt 1 ]; then flags+=("-jobs=$jobs" "-workers=$jobs"); fi
  log="$CREDPOOL_CACHE/fuzz-$target.log"
  echo "== fuzz $target for ${seconds}s (corpus $corpus, log $log)"
  set +e
  cargo +nightly fuzz run --sanitizer none "$target" "$corpus" -- "${flags[@]}" >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's final stats line: "stat::number_of_executed_units: N".
  # With -jobs, the workers log to fuzz-<n>.log in the working directory.
  logs=("$log")
  for worker in fuzz-*.log; do
    if [ -f "$worker" ]; then logs+=("$worker"); fi
  done
  execs=$(awk '/stat::number_of_executed_units/ {s += $2} END {print s + 0}' "${logs[@]}")
  rm -f fuzz-*.log
  if [ "$rc" -ne 0 ]; then
    echo "!! $target failed (exit $rc); last lines of $log:" >&2
    grep -E 'panicked|ERROR|SUMMARY|Test unit written|artifact' "$log" | head -20 >&2 || true
    tail -5 "$log" >&2
    summary+=("$target: FAILED after $execs executions")
    status=1
  else
    summary+=("$target: $execs executions in ${seconds}s, no crash")
  fi
done

echo "== fuzz summary"
printf '  %s\n' "${summary[@]}"
exit "$status"
