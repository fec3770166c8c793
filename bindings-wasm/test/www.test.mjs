// Browser tests of the config preview page (bindings-wasm/www) in Debian's chromium via
// playwright-core (scripts/setup-browser.sh). A tiny static server on 127.0.0.1 (random
// port) serves the page, the engine's web build as pkg/ and the simulator's web build
// (bindings-wasm-sim) as sim/, and counts the bytes it sends.
//   CREDPOOL_WASM_WEB=<web build> CREDPOOL_WASM_SIM_WEB=<sim web build> \
//     node --test bindings-wasm/test/www.test.mjs
// Screenshots: ${CREDPOOL_TEST_OUTPUT:-$CREDPOOL_CACHE/test-output}/www/*.png
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { readFileSync } from 'node:fs'
import { readFile, readdir, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '../..')
const cache = process.env.CREDPOOL_CACHE ?? path.join(homedir(), '.cache/credpool')
const pkgDir = path.resolve(process.env.CREDPOOL_WASM_WEB ?? path.join(cache, 'wasm-pkg/web'))
const simDir = path.resolve(process.env.CREDPOOL_WASM_SIM_WEB ?? path.join(cache, 'wasm-sim-pkg/web'))
const wwwDir = path.join(root, 'bindings-wasm/www')
const outDir = path.join(process.env.CREDPOOL_TEST_OUTPUT ?? path.join(cache, 'test-output'), 'www')
const tools = process.env.CREDPOOL_NODE_TOOLS ?? path.join(cache, 'node-tools')
const { chromium } = createRequire(path.join(tools, '/'))('playwright-core')

const types = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json',
}

// ---------- the static server ----------

/** Every response the server sent: { path, status, bytes }. */
const served = []
const server = http.createServer(async (req, res) => {
  const p = decodeURIComponent(new URL(req.url, 'http://x').pathname)
  let file = null
  if (!p.includes('..') && !p.includes('\0')) {
    if (p === '/') file = path.join(wwwDir, 'index.html')
    else if (p.startsWith('/pkg/')) file = path.join(pkgDir, p.slice(5))
    else if (p.startsWith('/sim/')) file = path.join(simDir, p.slice(5))
    else file = path.join(wwwDir, p.slice(1))
  }
  try {
    if (!file) throw new Error('bad path')
    const body = await readFile(file)
    served.push({ path: p, status: 200, bytes: body.length })
    res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' }).end(body)
  } catch {
    served.push({ path: p, status: 404, bytes: 0 })
    res.writeHead(404).end()
  }
})

let origin
let ctx
let page
let profile
const requests = []
const problems = [] // page errors and console errors (CSP violations are console errors)
const shots = []

before(async () => {
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  origin = `http://127.0.0.1:${server.address().port}`
  await mkdir(outDir, { recursive: true })
  profile = await mkdtemp(path.join(tmpdir(), 'credpool-www-'))
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-quic', '--no-first-run', '--disable-sync'],
  })
  page = ctx.pages()[0] ?? (await ctx.newPage())
  page.on('request', (r) => requests.push({ url: r.url(), type: r.resourceType() }))
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`))
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`) })
  await page.goto(`${origin}/`)
  await page.waitForSelector('#ready[data-ready="true"]', { timeout: 60_000 })
})

after(async () => {
  await ctx?.close().catch(() => {})
  server.close()
  if (profile) await rm(profile, { recursive: true, force: true })
  const files = served.filter((s) => s.status === 200)
  const total = files.reduce((n, s) => n + s.bytes, 0)
  console.log(`# page files loaded (${files.length}): ${[...new Set(files.map((s) => s.path))].join(' ')}`)
  console.log(`# total transfer: ${total} bytes (${(total / 1024).toFixed(1)} KiB)`)
  for (const s of shots) console.log(`# screenshot: ${s}`)
})

// ---------- helpers ----------

async function shot(name) {
  const file = path.join(outDir, `${name}.png`)
  await page.screenshot({ path: file, fullPage: true })
  shots.push(file)
}

async function loadConfig(doc) {
  const text = typeof doc === 'string' ? doc : JSON.stringify(doc, null, 2)
  await page.fill('#config', text)
  await page.click('#load')
}

async function select(id, value) {
  await page.selectOption(id, value)
}

async function setInput(id, value) {
  await page.fill(id, String(value))
  await page.dispatchEvent(id, 'change')
}

const texts = (sel) => page.$$eval(sel, (els) => els.map((e) => e.textContent.trim()))
const attrs = (sel, name) => page.$$eval(sel, (els, n) => els.map((e) => e.getAttribute(n)), name)

async function errors() {
  return page.$$eval('#errors li', (els) => els.map((e) => ({
    code: e.dataset.code, field: e.dataset.field, message: e.querySelector('.message').textContent,
  })))
}

async function lastOutput() {
  const outs = await texts('#steps li.step pre.output')
  return JSON.parse(outs.at(-1))
}

async function stepCount() {
  return (await page.$$('#steps li.step')).length
}

function jsonEqual(a, b) {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
}

/** The vector runners' `state` matching (tests/README.md), skipping secrets (masked). */
function subsetMismatch(e, a, p = '$') {
  if (e === null || typeof e !== 'object') return e === a ? null : `${p}: expected ${JSON.stringify(e)}, got ${JSON.stringify(a)}`
  if (Array.isArray(e)) {
    if (!Array.isArray(a) || e.length !== a.length) return `${p}: expected an array of ${e.length}`
    for (let i = 0; i < e.length; i++) { const m = subsetMismatch(e[i], a[i], `${p}[${i}]`); if (m) return m }
    return null
  }
  if (a === null || typeof a !== 'object') return `${p}: expected an object`
  for (const [k, v] of Object.entries(e)) {
    if (/(^|_)(token|key|secret)$/.test(k)) continue
    if (!Object.hasOwn(a, k)) return `${p}.${k}: missing`
    const m = subsetMismatch(v, a[k], `${p}.${k}`)
    if (m) return m
  }
  return null
}

function secretsOf(value, out = new Set()) {
  if (Array.isArray(value)) for (const v of value) secretsOf(v, out)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && v.length > 0 && /(^|_)(token|key|secret)$/.test(k) && k !== 'token_type') out.add(v)
      else secretsOf(v, out)
    }
  }
  return out
}

/** No secret of `doc` in the serialized DOM nor in the editor's value. */
async function assertNoSecrets(doc, what = '') {
  const html = await page.content()
  const editor = await page.$eval('#config', (e) => e.value)
  for (const s of secretsOf(doc)) {
    assert.ok(!html.includes(s), `${what}: secret ${s.slice(0, 4)}… appears in the DOM`)
    assert.ok(!editor.includes(s), `${what}: secret ${s.slice(0, 4)}… left unmasked in the editor`)
  }
}

const SIMPLE = {
  pool: 'openrouter',
  strategy: 'fill_first',
  now: 1_000_000,
  entries: [
    { id: 'a', label: 'main', access_token: 'sk-or-v1-secret-aaaaaaaaaaaaaaaa-1111' },
    { id: 'b', label: 'backup', access_token: 'sk-or-v1-secret-bbbbbbbbbbbbbbbb-2222' },
    { id: 'c', label: 'team', access_token: 'sk-or-v1-secret-cccccccccccccccc-3333' },
  ],
}

// ---------- tests ----------

test('a config loads: entries, masked secrets, next selections per strategy', async () => {
  await loadConfig(SIMPLE)
  assert.deepEqual(await errors(), [])
  assert.deepEqual(await attrs('#entries tbody tr', 'data-id'), ['a', 'b', 'c'])
  const secrets = await texts('#entries td.secret')
  assert.deepEqual(secrets, ['sk-o…1111', 'sk-o…2222', 'sk-o…3333'])
  assert.deepEqual(await attrs('#selections li', 'data-entry'), Array(8).fill('a'))
  await assertNoSecrets(SIMPLE)
  await shot('01-loaded-fill-first')

  await select('#strategy', 'round_robin')
  assert.deepEqual(await attrs('#selections li', 'data-entry'), ['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b'])
  assert.match(await page.textContent('#summary'), /strategy round_robin/)
  await shot('02-round-robin')
  await select('#strategy', '')
  // The editor keeps working with the masked secrets: reloading gives the same state.
  await page.click('#load')
  assert.deepEqual(await errors(), [])
  assert.deepEqual(await attrs('#selections li', 'data-entry'), Array(8).fill('a'))
})

test('what happens if: 429 twice under the hermes preset, clock +1 h, undo', async () => {
  await loadConfig(SIMPLE)
  await page.click('[data-event="429"]') // no open lease: acquire, then report
  assert.equal(await stepCount(), 2)
  const outs = (await texts('#steps li.step pre.output')).map((t) => JSON.parse(t))
  assert.deepEqual(outs[0], { type: 'use', entry_id: 'a', lease_id: 1, changed: true })
  assert.deepEqual(outs[1], { type: 'retry_same', entry_id: 'a', lease_id: 1, delay_ms: 5000, reason: 'rate_limit', changed: false })
  assert.match((await texts('#steps li.step .decision'))[1], /retry the same entry a after 5 s/)
  assert.equal(await page.inputValue('#lease'), '1')

  await page.click('[data-event="429"]')
  assert.deepEqual(await lastOutput(), { type: 'use', entry_id: 'b', lease_id: 2, reason: 'rate_limit', changed: true })
  const rowA = await page.$eval('#entries tr[data-id="a"]', (tr) => ({ cls: tr.className, avail: tr.querySelector('.available').textContent }))
  assert.match(rowA.cls, /health-(rate_limited|exhausted)/)
  assert.match(rowA.avail, /in 1 h/)
  assert.deepEqual((await attrs('#selections li', 'data-entry')).slice(0, 2), ['b', 'b'])
  const changes = await texts('#steps li.step.last .changes li')
  assert.ok(changes.some((c) => /openrouter\.entries\/a\.status: "ok" → "exhausted"/.test(c)), changes.join('\n'))
  await shot('03-what-if-429')

  await page.click('[data-event="clock"]')
  const tick = await lastOutput()
  assert.equal(tick.type, 'ticked')
  assert.deepEqual(tick.recovered, [{ pool: 'openrouter', entry_id: 'a' }])
  assert.equal(await page.inputValue('#clock'), String(1_000_000 + 3_600_000))
  assert.deepEqual(await attrs('#selections li', 'data-entry'), Array(8).fill('a'))
  await shot('04-what-if-clock')

  await page.click('#undo') // the tick
  assert.equal(await page.inputValue('#clock'), '1000000')
  await page.click('#undo') // the second 429
  assert.equal(await stepCount(), 2)
  assert.equal(await page.inputValue('#lease'), '1')
  assert.match(await page.$eval('#entries tr[data-id="a"]', (tr) => tr.className), /health-available/)
  // After undo the lease is still open in the engine (rebuilt by replay): 429 again rotates.
  await page.click('[data-event="429"]')
  assert.deepEqual(await lastOutput(), { type: 'use', entry_id: 'b', lease_id: 2, reason: 'rate_limit', changed: true })

  // The adaptive preset rotates on the first 429.
  await select('#preset', 'adaptive')
  assert.equal(await stepCount(), 0)
  await page.click('[data-event="429_usage"]')
  const usage = await lastOutput()
  assert.equal(usage.type, 'use')
  assert.equal(usage.entry_id, 'b')
  assert.equal(usage.reason, 'usage_limit')
  await select('#preset', '')
})

test('an invalid config shows each error with its field and the engine code', async () => {
  await loadConfig({
    pool: 'openrouter',
    strategy: 'fill_frist',
    entries: [
      { id: 'a', access_token: 'sk-or-v1-secret-invalid-aaaaaaaaaaaa' },
      { id: 'b', auth_type: 'apikey', access_token: 'sk-or-v1-secret-invalid-bbbbbbbbbbbb' },
      { id: 'c', acces_token: 'sk-or-v1-secret-invalid-cccccccccccc' },
      { id: 'a', access_token: 'sk-or-v1-secret-invalid-dddddddddddd' },
      { id: 'e', priority: 1.5, access_token: 'sk-or-v1-secret-invalid-eeeeeeeeeeee' },
    ],
  })
  const errs = await errors()
  const by = Object.fromEntries(errs.map((e) => [e.field, e]))
  assert.deepEqual(Object.keys(by).sort(), ['entries[1].auth_type', 'entries[2].acces_token', 'entries[3].id', 'entries[4].priority', 'strategy'])
  assert.equal(by.strategy.code, 'invalid_input')
  // The engine never echoes the refused value (it may be a secret put in the wrong field).
  assert.match(by.strategy.message, /unknown variant `…`, expected one of `fill_first`/)
  assert.doesNotMatch(by.strategy.message, /fill_frist/)
  assert.equal(by['entries[1].auth_type'].code, 'invalid_input')
  assert.match(by['entries[1].auth_type'].message, /expected `api_key` or `oauth`/)
  assert.match(by['entries[2].acces_token'].message, /unknown field `acces_token`/)
  assert.equal(by['entries[3].id'].code, 'duplicate_entry')
  assert.equal(await page.$$eval('#entries tbody tr', (r) => r.length), 0)
  await assertNoSecrets({ x: [{ access_token: 'sk-or-v1-secret-invalid-aaaaaaaaaaaa' }] })
  await shot('05-invalid-simple')

  await loadConfig({ pool: 'openrouter', policy: { preset: 'hermes', cooldown_rate_limit: 5 }, entries: [] })
  assert.deepEqual(await errors(), [{ code: 'invalid_policy', field: 'policy.cooldown_rate_limit', message: 'unknown policy field `cooldown_rate_limit`' }])

  await loadConfig({ pool: 'custom:', entries: [] })
  assert.deepEqual((await errors()).map((e) => [e.code, e.field]), [['invalid_pool_key', 'pool']])

  // A state document: the engine's error, narrowed to the entry and field.
  const state = {
    format: 'credpool', schema_version: 1,
    pools: { openrouter: { strategy: 'fill_first', entries: [
      { id: 'a', access_token: 'sk-or-v1-secret-state-aaaaaaaaaaaa', status: 'ok' },
      { id: 'b', access_token: 'sk-or-v1-secret-state-bbbbbbbbbbbb', status: 'weird' },
    ] } },
  }
  await loadConfig(state)
  const [stateErr] = await errors()
  assert.equal(stateErr.code, 'invalid_state')
  assert.equal(stateErr.field, 'pools.openrouter.entries[1].status')
  assert.match(stateErr.message, /unknown variant `…`, expected one of `ok`/)
  await shot('06-invalid-state')

  await loadConfig({ format: 'credpool', schema_version: 99, pools: {} })
  assert.equal((await errors())[0].code, 'unsupported_schema_version')

  await loadConfig('{\n  "pool": "openrouter",\n  "entries": [\n    {"id": "a",}\n  ]\n}')
  const [syntax] = await errors()
  assert.equal(syntax.code, 'invalid_json')
  assert.equal(syntax.field, 'JSON line 4, column 16')

  await loadConfig({ credential_pool: { openrouter: [{ id: 3 }] } })
  assert.deepEqual((await errors()).map((e) => [e.code, e.field]), [['invalid_state', 'credential_pool.openrouter[0].id']])
})

test('a Hermes auth.json imports through importHermes, secrets stay masked', async () => {
  const fixtures = (await readdir(path.join(root, 'tests/hermes'))).filter((f) => f.endsWith('.json')).sort()
  assert.ok(fixtures.includes('openrouter.json'))
  await setInput('#clock', 1_787_075_000_000)
  for (const f of fixtures) {
    const text = await readFile(path.join(root, 'tests/hermes', f), 'utf8')
    const doc = JSON.parse(text)
    await loadConfig(text)
    assert.deepEqual(await errors(), [], f)
    assert.match(await page.textContent('#summary'), /Hermes auth\.json \(imported\)/, f)
    // Pool keys come back normalised by the engine (`OpenRouter` → `openrouter`); a provider
    // with suppressed sources only is imported as an empty pool that carries them.
    const pools = await attrs('#pool option', 'value')
    const keyOf = (k) => k.toLowerCase()
    const imported = new Set([...Object.keys(doc.credential_pool), ...Object.keys(doc.suppressed_sources ?? {})].map(keyOf))
    assert.deepEqual(pools.sort(), [...imported].sort(), f)
    const shown = await page.inputValue('#pool')
    const expected = Object.entries(doc.credential_pool).filter(([k]) => keyOf(k) === shown).flatMap(([, v]) => v)
    assert.equal(await page.$$eval('#entries tbody tr', (r) => r.length), expected.length, f)
    await assertNoSecrets(doc, f)
    if (f === 'openrouter.json') {
      await select('#pool', 'openrouter') // the first pool is copilot's, empty but for its suppression
      assert.deepEqual(await attrs('#entries tbody tr', 'data-id'), ['a1b2c3', 'd4e5f6', '0f9e8d'])
      const cells = await texts('#entries td.secret')
      assert.equal(cells[0], 'sk-o…1c2d')
      assert.match(cells[1], /not stored \(sha256:12ab34cd56ef7890\)/)
      const avail = await texts('#entries td.available')
      assert.match(avail[0], /^2026-08-18 18:00:00Z \(in 16 min 40 s\)$/)
      assert.equal(avail[2], 'now')
      assert.equal((await attrs('#selections li', 'data-entry'))[0], '0f9e8d')
      await shot('07-hermes-openrouter')
    }
  }
  // The credential_pool section alone imports the same way.
  const doc = JSON.parse(await readFile(path.join(root, 'tests/hermes/anthropic.json'), 'utf8'))
  await loadConfig(doc.credential_pool)
  assert.deepEqual(await errors(), [])
  assert.match(await page.textContent('#summary'), /credential_pool section/)
  assert.equal(await page.$$eval('#entries tbody tr', (r) => r.length), 3)
  await assertNoSecrets(doc)
  await shot('08-hermes-section-anthropic')
})

/** A vector the what-if panel can replay: one pool, add_entry / configure_pool setup,
 * acquire / report / release steps on that pool, each with `expect` or `error`. */
function convert(v) {
  if (v.state) return null
  const setup = v.setup ?? []
  const pool = setup[0]?.pool
  if (!pool) return null
  const doc = { pool, writer: v.writer ?? 'w1', seed: v.seed ?? 1, now: v.setup_at ?? 0, entries: [] }
  let configured = false
  for (const input of setup) {
    if (input.pool !== pool) return null
    if (input.type === 'add_entry') doc.entries.push(input.entry)
    else if (input.type === 'configure_pool' && !configured && doc.entries.length === 0) {
      configured = true
      for (const k of ['strategy', 'policy', 'fallback']) if (k in input) doc[k] = input[k]
    } else return null
  }
  const allowed = { acquire: ['type', 'pool'], report: ['type', 'pool', 'lease_id', 'response'], release: ['type', 'pool', 'lease_id'] }
  for (const s of v.steps) {
    const keys = allowed[s.input.type]
    if (!keys || s.input.pool !== pool || !Object.keys(s.input).every((k) => keys.includes(k))) return null
    if (s.input.type !== 'acquire' && !Number.isSafeInteger(s.input.lease_id)) return null
    if (!('expect' in s) && !('error' in s)) return null
  }
  return doc
}

const BUTTONS = {
  200: { status: 200 }, 429: { status: 429 }, 402: { status: 402 }, 401: { status: 401 },
  403: { status: 403 }, '5xx': { status: 503 },
  '429_usage': { status: 429, body: { error: { type: 'usage_limit_reached', message: 'The usage limit has been reached' } } },
}

test('the page shows the same decisions as the vectors (the Rust runner\'s spec)', async () => {
  const dir = path.join(root, 'tests/vectors')
  const names = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort()
  const required = ['out_billing_402_rotates_at_once', 'rate_limit_hermes_retry_then_rotate', 'pol_all_exhausted_wait_until_earliest']
  const ran = []
  let compared = 0
  for (const name of names) {
    const v = JSON.parse(await readFile(path.join(dir, name), 'utf8'))
    const doc = convert(v)
    if (!doc) continue
    await loadConfig(doc)
    assert.deepEqual(await errors(), [], name)
    for (const [i, s] of v.steps.entries()) {
      const where = `${name} step ${i}`
      await setInput('#clock', s.at)
      const before = await stepCount()
      if (s.input.type === 'acquire') {
        await page.click('[data-event="acquire"]')
      } else {
        await page.fill('#lease', String(s.input.lease_id))
        if (s.input.type === 'release') await page.click('[data-event="release"]')
        else {
          const button = Object.keys(BUTTONS).find((b) => jsonEqual(BUTTONS[b], s.input.response))
          if (button) await page.click(`[data-event="${button}"]`)
          else {
            await page.fill('#custom-response', JSON.stringify(s.input.response))
            await page.click('[data-event="custom"]')
          }
        }
      }
      assert.equal(await stepCount(), before + 1, `${where}: one step shown`)
      const out = await lastOutput()
      if ('error' in s) assert.equal(out.error, s.error, where)
      else assert.deepEqual(out, s.expect, where)
      if (s.state) {
        const shown = JSON.parse(await page.$eval('#steps li.step.last pre.state', (e) => e.textContent))
        const m = subsetMismatch(s.state, shown)
        assert.equal(m, null, `${where}: state ${m}`)
      }
      compared++
    }
    ran.push(name.replace(/\.json$/, ''))
    if (name.startsWith('pol_all_exhausted_wait_until_earliest')) await shot('09-vector-pol_all_exhausted_wait_until_earliest')
  }
  for (const r of required) assert.ok(ran.includes(r), `${r} was not replayed through the page`)
  console.log(`# ${ran.length} vectors (${compared} steps) replayed through the what-if panel: ${ran.join(', ')}`)
})

test('the engine\'s module has no simulator in it (it is the separate sim/ module)', async () => {
  const exports = (dir, name) => WebAssembly.Module.exports(new WebAssembly.Module(
    readFileSync(path.join(dir, name)))).map((e) => e.name)
  const engine = exports(pkgDir, 'credpool_wasm_bg.wasm')
  assert.ok(engine.includes('version') && engine.some((n) => n.startsWith('registry_')), `${engine}`)
  for (const name of ['simulate', 'defaultScenario', 'scenarioPreset']) assert.ok(!engine.includes(name), name)
  assert.ok(exports(simDir, 'credpool_wasm_sim_bg.wasm').includes('simulate'))
})

test('the timeline chart renders the engine\'s simulation', async () => {
  const hasSim = await page.$eval('#timeline-section', (s) => !s.hidden)
  assert.ok(hasSim, 'the simulator module (sim/) did not load')
  await page.waitForSelector('#timeline img', { timeout: 120_000 })
  const src = await page.$eval('#timeline img', (i) => i.getAttribute('src'))
  assert.match(src, /^data:image\/svg\+xml/)
  const ok = await page.$eval('#timeline img', (i) => i.complete && i.naturalWidth > 0)
  assert.ok(ok, 'the SVG image decoded')
  assert.ok(await page.$$eval('#sim-rows tbody tr', (r) => r.length) > 0)
  await page.$eval('#timeline-section', (s) => s.scrollIntoView())
  const file = path.join(outDir, '10-timeline.png')
  await page.locator('#timeline-section').screenshot({ path: file })
  shots.push(file)
})

test('only the page\'s own files were requested; no errors, no CSP violation', async () => {
  assert.ok(requests.length > 0)
  const own = new Set(['/', '/index.html', '/style.css', '/app.js', '/config.js', '/examples.js',
    '/pkg/credpool_wasm.js', '/pkg/credpool_wasm_bg.wasm',
    '/sim/credpool_wasm_sim.js', '/sim/credpool_wasm_sim_bg.wasm'])
  for (const r of requests) {
    if (r.url.startsWith('data:')) continue // decoded in the page, not a request
    const u = new URL(r.url)
    assert.equal(u.origin, origin, `request to another origin: ${r.url}`)
    // wasm-bindgen's inline_js snippets of the two modules are page files too (the
    // simulator's: the shared output conversion of bindings-wasm/src/js.rs).
    const snippet = /^\/(pkg\/snippets\/credpool-wasm|sim\/snippets\/credpool-wasm-sim)-[0-9a-f]+\/inline\d+\.js$/.test(u.pathname)
    assert.ok(own.has(u.pathname) || snippet, `unexpected request: ${r.url}`)
  }
  assert.ok(served.every((s) => s.status === 200), `404s: ${served.filter((s) => s.status !== 200).map((s) => s.path)}`)
  assert.deepEqual(problems, [])
  const csp = await page.$eval('meta[http-equiv="Content-Security-Policy"]', (m) => m.content)
  assert.match(csp, /default-src 'self'; script-src 'self' 'wasm-unsafe-eval'/)
})
