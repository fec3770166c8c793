#!/usr/bin/env bash
# Usage: scripts/check-wasm-imports.sh <file.wasm>...
# Fails if a module imports from anything but wasm-bindgen's own modules
# (wbg, __wbindgen_*, ./<name>_bg.js, ./snippets/...), e.g. from "env".
# Needs only node (WebAssembly.Module.imports).
set -euo pipefail
[[ $# -ge 1 ]] || { echo "usage: $0 <file.wasm>..." >&2; exit 2; }
node - "$@" <<'JS'
const fs = require('node:fs');
const ok = /^(wbg|__wbindgen_[a-z_]+__|\.\/[\w.-]+_bg\.js|\.\/snippets\/.+)$/;
let bad = 0;
for (const file of process.argv.slice(2)) {
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(fs.readFileSync(file)));
  const wrong = imports.filter((i) => !ok.test(i.module));
  for (const i of wrong) console.error(`${file}: forbidden import ${i.module}.${i.name} (${i.kind})`);
  const mods = [...new Set(imports.map((i) => i.module))].join(', ') || 'none';
  console.log(`${file}: ${imports.length} imports from ${mods}${wrong.length ? ' - FAIL' : ''}`);
  bad += wrong.length;
}
process.exit(bad ? 1 : 0);
JS
