#!/usr/bin/env bash
# Installs Debian's redis-server (if missing): what the Redis store's tests run against.
# Idempotent. Prints the server's version.
set -euo pipefail

if ! command -v redis-server >/dev/null 2>&1; then
  echo "setup-redis: apt-get install redis-server" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >&2
fi
# The Debian package may start a system service on 6379; the tests never use it (they
# start their own servers on free loopback ports).
redis-server --version
