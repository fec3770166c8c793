#!/usr/bin/env bash
# Installs Debian's chromium (if missing) and playwright-core into
# $CREDPOOL_CACHE/node-tools. playwright-core never downloads a browser:
# launch it with executablePath '/usr/bin/chromium'. Idempotent.
# Prints the paths test scripts use to load playwright-core.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"

PLAYWRIGHT_CORE_VERSION=1.65.1
NODE_TOOLS=$CREDPOOL_CACHE/node-tools

if [[ ! -x /usr/bin/chromium ]]; then
  echo "setup-browser: apt-get install chromium" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
fi

have=$(node -p "require('$NODE_TOOLS/node_modules/playwright-core/package.json').version" 2>/dev/null || true)
if [[ $have != "$PLAYWRIGHT_CORE_VERSION" ]]; then
  echo "setup-browser: npm install playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install -s --prefix "$NODE_TOOLS" --save-exact \
    --no-audit --no-fund "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
fi

# CommonJS can use NODE_PATH; ESM `import` ignores it, so ESM tests do:
#   import { createRequire } from 'node:module';
#   const { chromium } = createRequire(process.env.CREDPOOL_NODE_TOOLS + '/')('playwright-core');
echo "export CREDPOOL_NODE_TOOLS=$NODE_TOOLS"
echo "export NODE_PATH=$NODE_TOOLS/node_modules"
echo "# $(/usr/bin/chromium --version 2>/dev/null), playwright-core $PLAYWRIGHT_CORE_VERSION"
