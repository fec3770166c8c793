// Which JS implementation a Node test runs against, chosen by CREDPOOL_IMPL:
//   napi  (default) the napi build in bindings-node/
//   wasm  the wasm nodejs build in $CREDPOOL_WASM_PKG (default $CREDPOOL_CACHE/wasm-pkg/nodejs)
// Both expose the same surface (Registry, errorCodes, version), so every test file is shared;
// the napi build adds the persisted `Store` (and `FileStore`, its deprecated alias).
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

const require = createRequire(import.meta.url)
const cache = process.env.CREDPOOL_CACHE ?? join(homedir(), '.cache/credpool')
const loaders = {
  // the package entry (main.js: the generated index.js plus the deprecated aliases)
  napi: () => require('../../bindings-node/main.js'),
  wasm: () =>
    require(join(resolve(process.env.CREDPOOL_WASM_PKG ?? join(cache, 'wasm-pkg/nodejs')), 'credpool_wasm.js')),
}

/** `napi` or `wasm`. */
export const impl = process.env.CREDPOOL_IMPL ?? 'napi'
if (!loaders[impl]) throw new Error(`CREDPOOL_IMPL must be napi or wasm, not ${impl}`)

/** The loaded package: `{ Registry, errorCodes, version }`. */
export const credpool = loaders[impl]()

/** Where `simulate` lives: for wasm the simulator's own module, credpool-wasm-sim (nodejs
 * build in $CREDPOOL_WASM_SIM_PKG, default $CREDPOOL_CACHE/wasm-sim-pkg/nodejs); napi has none. */
export const simulator = impl === 'wasm' ? loadSimulator() : credpool

function loadSimulator() {
  const file = join(resolve(process.env.CREDPOOL_WASM_SIM_PKG ?? join(cache, 'wasm-sim-pkg/nodejs')), 'credpool_wasm_sim.js')
  try {
    return require(file)
  } catch (e) {
    // Only the simulate tests need it: they fail with this error, the others still run.
    const missing = () => { throw new Error(`the simulator's wasm package is not loadable: ${e.message}`) }
    return { simulate: missing, defaultScenario: missing, scenarioPreset: missing }
  }
}
