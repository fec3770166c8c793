// The binding bench (bindings-suite.mjs) on the wasm web build inside headless Chromium
// (Debian's chromium through playwright-core, scripts/setup-browser.sh): same rows, same
// output as benches/bindings.mjs, impl `wasm-chromium`.
//   eval "$(scripts/setup-browser.sh)"; node benches/bindings-chromium.mjs [iterations] [--json]
// Env: CREDPOOL_WASM_WEB (default ~/.cache/credpool/wasm-pkg/web).
import http from 'node:http'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { printBindingBench } from './bindings-suite.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const cache = process.env.CREDPOOL_CACHE ?? path.join(homedir(), '.cache/credpool')
const pkgDir = path.resolve(process.env.CREDPOOL_WASM_WEB ?? path.join(cache, 'wasm-pkg/web'))
const tools = process.env.CREDPOOL_NODE_TOOLS ?? path.join(cache, 'node-tools')
const { chromium } = createRequire(path.join(tools, '/'))('playwright-core')

const asJson = process.argv.includes('--json') || !['', '0', undefined].includes(process.env.CREDPOOL_BENCH_JSON)
const args = process.argv.slice(2).filter((a) => a !== '--json')
const iterations = Number(args[0] ?? 20_000)
if (!Number.isInteger(iterations) || iterations < 1) throw new Error(`iterations must be a positive integer, got ${args[0]}`)

// performance.now() in the page: coarse in Chromium (microseconds), fine over whole rounds.
const page = `<!doctype html><meta charset="utf-8"><title>credpool bench</title>
<script type="module">
import init, * as credpool from '/pkg/credpool_wasm.js'
import { runBindingBench } from '/bench/bindings-suite.mjs'
try {
  await init()
  window.__bench = { rows: runBindingBench(credpool, ${iterations}, () => performance.now() * 1e6) }
} catch (e) {
  window.__bench = { error: String(e && e.stack || e) }
}
</script>`
const types = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm' }
const server = http.createServer(async (req, res) => {
  const p = decodeURIComponent(new URL(req.url, 'http://x').pathname)
  try {
    if (p.includes('..') || p.includes('\0')) throw new Error('bad path')
    if (p === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page)
    let file
    if (p.startsWith('/pkg/')) file = path.join(pkgDir, p.slice(5))
    else if (p === '/bench/bindings-suite.mjs') file = path.join(here, 'bindings-suite.mjs')
    else throw new Error('not found')
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(await readFile(file))
  } catch (e) {
    res.writeHead(404).end(String(e.message))
  }
})
await new Promise((ok) => server.listen(0, '127.0.0.1', ok))

const profile = await mkdtemp(path.join(tmpdir(), 'credpool-bench-chromium-'))
let ctx
let code = 1
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync'],
  })
  const tab = ctx.pages()[0] ?? (await ctx.newPage())
  tab.on('pageerror', (e) => console.error('pageerror:', e.message))
  await tab.goto(`http://127.0.0.1:${server.address().port}/`)
  await tab.waitForFunction(() => window.__bench !== undefined, null, { timeout: 600_000 })
  const result = await tab.evaluate(() => window.__bench)
  if (result.error) throw new Error(`bench failed in the page: ${result.error}`)
  printBindingBench('wasm-chromium', iterations, result.rows, asJson)
  code = 0
} catch (e) {
  console.error(e)
} finally {
  await ctx?.close().catch(() => {})
  server.close()
  await rm(profile, { recursive: true, force: true })
}
process.exit(code)
