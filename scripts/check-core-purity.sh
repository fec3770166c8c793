#!/usr/bin/env bash
# Core stays sans-IO: no clock, IO, env, threads or OS randomness in its source, and
# only pure dependencies. clippy's disallowed-methods/types catch calls; this catches
# the rest (imports, dependencies) textually.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
banned='std::fs|std::net|std::process|std::thread|std::env|SystemTime|Instant|getrandom|rand::|tokio|println!|eprintln!'
if grep -rnE "$banned" core/src; then
  echo "core/src must stay pure (no IO, clock, env, threads or OS randomness)" >&2
  exit 1
fi
allowed='serde serde_json thiserror sha2 hashbrown'
deps=$(sed -n '/^\[dependencies\]/,/^\[/p' core/Cargo.toml | grep -E '^[a-z0-9_-]+ *[.=]' | cut -d' ' -f1 | cut -d. -f1)
for dep in $deps; do
  case " $allowed " in
    *" $dep "*) ;;
    *) echo "core depends on '$dep', which is not on the pure list ($allowed)" >&2; exit 1 ;;
  esac
done
echo "core is pure: dependencies [$(echo "$deps" | tr '\n' ' ')]"
