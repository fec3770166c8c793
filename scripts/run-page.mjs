// Serves a directory on 127.0.0.1 (random port), opens one page of it in headless Debian
// chromium (playwright-core from scripts/setup-browser.sh) and waits until the element
// `selector` contains `expected`; prints that element's text. Exits non-zero on a page
// error, a timeout or a mismatch.
//   node scripts/run-page.mjs <dir> <page> <selector> <expected>
import http from 'node:http'
import { readFile, mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'

const [dir, pagePath, selector, expected] = process.argv.slice(2)
if (!expected) {
  console.error('usage: run-page.mjs <dir> <page> <selector> <expected>')
  process.exit(2)
}
const root = path.resolve(dir)
const cache = process.env.CREDPOOL_CACHE ?? path.join(homedir(), '.cache/credpool')
const tools = process.env.CREDPOOL_NODE_TOOLS ?? path.join(cache, 'node-tools')
const { chromium } = createRequire(path.join(tools, '/'))('playwright-core')
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' }

const server = http.createServer(async (req, res) => {
  const file = path.join(root, decodeURIComponent(new URL(req.url, 'http://x').pathname))
  if (!file.startsWith(root + path.sep)) return res.writeHead(400).end()
  try {
    const body = await readFile(file)
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body)
  } catch {
    res.writeHead(404).end()
  }
})
await new Promise((ok) => server.listen(0, '127.0.0.1', ok))

const profile = await mkdtemp(path.join(tmpdir(), 'credpool-chromium-'))
let code = 1
let ctx
try {
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run', '--disable-sync'],
  })
  const page = ctx.pages()[0] ?? (await ctx.newPage())
  const errors = []
  page.on('pageerror', (e) => errors.push(e.message))
  // The browser asks for /favicon.ico on its own; that 404 is not the page's error.
  page.on('console', (m) => m.type() === 'error' && !m.location().url.endsWith('/favicon.ico') && errors.push(m.text()))
  await page.goto(`http://127.0.0.1:${server.address().port}/${pagePath.replace(/^\//, '')}`)
  await page.waitForFunction(
    ([s, want]) => document.querySelector(s)?.textContent.includes(want),
    [selector, expected],
    { timeout: 30_000 },
  ).catch(() => {})
  const text = await page.evaluate((s) => document.querySelector(s)?.textContent ?? '', selector)
  console.log(text.trim())
  for (const e of errors) console.error('page error:', e)
  code = errors.length === 0 && text.includes(expected) ? 0 : 1
  if (!text.includes(expected)) console.error(`${selector} never contained ${JSON.stringify(expected)}`)
} finally {
  await ctx?.close().catch(() => {})
  server.close()
  await rm(profile, { recursive: true, force: true })
}
process.exit(code)
