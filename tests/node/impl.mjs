// Which JS implementation a Node test runs against, chosen by CREDPOOL_IMPL:
//   napi  (default) the napi build in bindings-node/
//   wasm  the wasm nodejs build in $CREDPOOL_WASM_PKG (default $CREDPOOL_CACHE/wasm-pkg/nodejs)
// Both expose the same surface (Registry, errorCodes, version), so every test file is shared.
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

const require = createRequire(import.meta.url)
const cache = process.env.CREDPOOL_CACHE ?? join(homedir(), '.cache/credpool')
const loaders = {
  napi: () => require('../../bindings-node/index.js'),
  wasm: () =>
    require(join(resolve(process.env.CREDPOOL_WASM_PKG ?? join(cache, 'wasm-pkg/nodejs')), 'credpool_wasm.js')),
}

/** `napi` or `wasm`. */
export const impl = process.env.CREDPOOL_IMPL ?? 'napi'
if (!loaders[impl]) throw new Error(`CREDPOOL_IMPL must be napi or wasm, not ${impl}`)

/** The loaded package: `{ Registry, errorCodes, version }`. */
export const credpool = loaders[impl]()
