// Browser conformance: serves the web build + page/index.html + tests/vectors on
// 127.0.0.1 (random port), runs the page in headless chromium (playwright-core from
// scripts/setup-browser.sh) and prints `N passed, M failed`; exits non-zero on failure.
// Env: CREDPOOL_WASM_WEB (default ~/.cache/credpool/wasm-pkg/web).
import http from 'node:http'
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const cache = process.env.CREDPOOL_CACHE ?? path.join(homedir(), '.cache/credpool')
const pkgDir = path.resolve(process.env.CREDPOOL_WASM_WEB ?? path.join(cache, 'wasm-pkg/web'))
const vectorsDir = path.resolve(here, '../../tests/vectors')
const pageDir = path.join(here, 'page')
const tools = process.env.CREDPOOL_NODE_TOOLS ?? path.join(cache, 'node-tools')
const { chromium } = createRequire(path.join(tools, '/'))('playwright-core')

const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' }
const safe = (s) => !s.includes('..') && !s.includes('\0')

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, 'http://x')
    let p = decodeURIComponent(url.pathname)
    if (!safe(p)) throw Object.assign(new Error('bad path'), { status: 400 })
    let file
    if (p === '/' || p === '/index.html') file = path.join(pageDir, 'index.html')
    else if (p === '/vectors/') {
      const names = (await readdir(vectorsDir)).filter((f) => f.endsWith('.json')).sort()
      res.writeHead(200, { 'content-type': types['.json'] }).end(JSON.stringify(names))
      return
    } else if (p.startsWith('/vectors/')) file = path.join(vectorsDir, p.slice(9))
    else if (p.startsWith('/pkg/')) file = path.join(pkgDir, p.slice(5))
    else throw Object.assign(new Error('not found'), { status: 404 })
    const body = await readFile(file)
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body)
  } catch (e) {
    res.writeHead(e.status ?? 404).end(String(e.message))
  }
})
await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
const port = server.address().port

const profile = await mkdtemp(path.join(tmpdir(), 'credpool-chromium-'))
let code = 1
let ctx
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  })
  const page = ctx.pages()[0] ?? (await ctx.newPage())
  page.on('pageerror', (e) => console.error('pageerror:', e.message))
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.waitForFunction(() => window.__credpoolResult !== undefined, null, { timeout: 60_000 })
  const r = await page.evaluate(() => window.__credpoolResult)
  for (const f of r.failures) console.error('FAIL', f)
  console.log(`${r.passed} passed, ${r.failed} failed`)
  code = r.failed === 0 && r.passed > 0 ? 0 : 1
} catch (e) {
  console.error(e)
} finally {
  await ctx?.close().catch(() => {})
  server.close()
  await rm(profile, { recursive: true, force: true })
}
process.exit(code)
