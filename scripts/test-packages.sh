#!/usr/bin/env bash
# Installs what users install and runs the README's examples there:
#   - `npm pack` of bindings-node (credpool) and of the wasm build (credpool-wasm), both
#     installed into a fresh npm project; the TypeScript example is type-checked with tsc
#     against the packed .d.ts files and run; the browser example runs in headless chromium
#     from that project's node_modules;
#   - `maturin build` of bindings-python, the wheel installed into a fresh venv, the Python
#     example run there.
# Expects the napi addon built in bindings-node/ and the wasm build in $CREDPOOL_CACHE/wasm-pkg
# (scripts/test.sh does both first), and CREDPOOL_NODE_TOOLS from scripts/setup-browser.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=env.sh
. "$here/env.sh"
cd "$CREDPOOL_ROOT"
TYPESCRIPT_VERSION=5.9.3
TYPES_NODE_VERSION=20.19.43

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dist=$work/dist
mkdir -p "$dist"

expect() { # <what> <expected substring> <actual output>
  if [[ $3 != *"$2"* ]]; then
    echo "$1: expected output containing '$2', got:" >&2
    echo "$3" >&2
    exit 1
  fi
  echo "$1: ok ($(echo "$3" | head -n1))"
}

echo "-- npm pack: credpool (napi) and credpool-wasm"
napi_tgz=$(cd bindings-node && npm pack --silent --pack-destination "$dist" | tail -n1)
wasm_tgz=$(scripts/pack-wasm.sh "$CREDPOOL_CACHE/wasm-pkg" "$dist")
ls -l "$dist"

echo "-- fresh npm project: npm install the tarballs"
app=$work/app
mkdir -p "$app"
cat >"$app/package.json" <<'JSON'
{ "name": "credpool-readme-check", "private": true, "type": "module" }
JSON
cat >"$app/tsconfig.json" <<'JSON'
{
  "compilerOptions": {
    "target": "es2022", "module": "nodenext", "moduleResolution": "nodenext",
    "strict": true, "skipLibCheck": false, "types": ["node"], "outDir": "out"
  },
  "files": ["example.ts"]
}
JSON
(cd "$app" && npm install --silent --no-audit --no-fund "$dist/$napi_tgz" "$wasm_tgz" \
  "typescript@$TYPESCRIPT_VERSION" "@types/node@$TYPES_NODE_VERSION")

scripts/readme-example.py typescript >"$app/example.ts"
(cd "$app" && npx tsc -p .)
out=$(cd "$app" && node out/example.js)
expect "README TypeScript example (tsc --strict, then node)" "200 first -> second" "$out"

# One type contract: tests/node/contract.ts compiles against both packages' .d.ts files.
for pkg in credpool credpool-wasm; do
  mkdir -p "$app/contract-$pkg"
  sed "s/credpool-under-test/$pkg/g" tests/node/contract.ts >"$app/contract-$pkg/contract.ts"
  (cd "$app" && npx tsc --noEmit --strict --target es2022 --module nodenext --moduleResolution nodenext \
    --types node "contract-$pkg/contract.ts")
  echo "type contract (tests/node/contract.ts) against $pkg: ok"
done

# credpool-wasm in Node resolves to its nodejs build (the `node` export condition).
out=$(cd "$app" && node --input-type=module -e "
import { Registry, version } from 'credpool-wasm'
import { withCredential } from 'credpool-wasm/helpers'
import { credentialFetch } from 'credpool-wasm/fetch'
const r = new Registry(); r.addEntry('openrouter', { access_token: 'sk-x' })
const out = await withCredential(r, 'openrouter', async (c) => c.entryId)
const send = credentialFetch(r, 'openrouter', { fetch: async (url, init) => new Response(init.headers.get('authorization')) })
const sent = await (await send('https://example.invalid/v1/chat/completions', { method: 'POST', body: '{}' })).text()
console.log(r.acquire('openrouter').type, version(), typeof out, sent)")
expect "credpool-wasm in Node (package exports, helpers, fetch)" "Bearer sk-x" "$out"

scripts/readme-example.py browser >"$app/index.html"
out=$(node scripts/run-page.mjs "$app" index.html '#log' 'use second')
expect "README browser example (headless chromium)" "first got 429, use second" "$out"

echo "-- maturin build: the wheel into a fresh venv"
venv=$CREDPOOL_CACHE/venv-py
(cd bindings-python && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" \
  CARGO_TARGET_DIR="$CREDPOOL_CACHE/target-py" maturin build --release -q -o "$dist")
wheel=$(ls "$dist"/credpool-*.whl)
echo "built $(basename "$wheel")"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check --no-index "$wheel"
scripts/readme-example.py python >"$work/example.py"
out=$(cd "$work" && "$work/venv/bin/python" example.py)
expect "README Python example (installed wheel)" "second -> done" "$out"
