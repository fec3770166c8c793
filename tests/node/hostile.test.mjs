// The Node runner of the hostile input corpus (tests/hostile/*.json, format in
// tests/hostile/README.md), for both JS implementations (CREDPOOL_IMPL=napi|wasm, impl.mjs).
// Every case must end in its expected typed error or a defined result within its time
// bound, leave the registry usable, and leak no canary secret (`CANARY`) into an error's
// message, String(), stack or util.inspect(), nor into a non-secret output.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { credpool, impl } from './impl.mjs'

const { Registry } = credpool
const codes = new Set(credpool.errorCodes())
const here = dirname(fileURLToPath(import.meta.url))
const dir = resolve(here, '../hostile')
const DEFAULT_MAX_MS = 10_000
const DEFAULT_NOW = 1000

// ---- case expansion (identical in every runner; see README) ----

const jsonType = (v) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

function fieldPaths(value, prefix, out) {
  if (jsonType(value) !== 'object') return out
  for (const [k, v] of Object.entries(value)) {
    if (prefix === '' && k === 'type') continue
    const path = `${prefix}/${k}`
    out.push([path, v])
    if (jsonType(v) === 'object' && Object.keys(v).length > 0) fieldPaths(v, path, out)
  }
  return out
}

function setAt(root, pointer, value) {
  const parts = pointer.split('/').slice(1)
  const last = parts.pop()
  let target = root
  for (const p of parts) target = target[Array.isArray(target) ? Number(p) : p]
  if (Array.isArray(target) && (last === '-' || Number(last) >= target.length)) target.push(value)
  else target[Array.isArray(target) ? Number(last) : last] = value
}

function expandCases(doc) {
  const out = []
  for (const c of doc.cases) {
    if (!c.mutate) {
      out.push(c)
      continue
    }
    const { template, values, free = [], lenient = {} } = c.mutate
    for (const [path, original] of fieldPaths(template, '', [])) {
      if (free.includes(path)) continue
      for (const value of values) {
        if (jsonType(value) === jsonType(original)) continue
        const input = structuredClone(template)
        setAt(input, path, value)
        const expect = structuredClone(c.expect)
        if ((lenient[path] ?? []).includes(jsonType(value)) && expect.one_of) expect.one_of.push('ok')
        const { mutate, ...rest } = c
        out.push({ ...rest, name: `${c.name}${path}=${JSON.stringify(value)}`, input, expect })
      }
    }
  }
  return out
}

const withIndex = (t, i) =>
  typeof t === 'string'
    ? t.replaceAll('{i}', String(i))
    : Array.isArray(t)
      ? t.map((x) => withIndex(x, i))
      : t !== null && typeof t === 'object'
        ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, withIndex(v, i)]))
        : t

function nest({ depth, kind, key, leaf }) {
  let v = leaf
  for (let i = 0; i < depth; i++) v = kind === 'object' ? { [key]: v } : [v]
  return v
}

const SPECIALS = {
  lone_surrogate: () => 'a\uD800b',
  invalid_utf8: () => new Uint8Array([0xff, 0xfe, 0xc3, 0x28]),
}

function specials(v) {
  if (Array.isArray(v)) return v.map(specials)
  if (v !== null && typeof v === 'object') {
    const keys = Object.keys(v)
    if (keys.length === 1 && keys[0] === 'special') return SPECIALS[v.special]()
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, specials(x)]))
  }
  return v
}

function generate(c) {
  c = specials(structuredClone(c))
  for (const g of c.generate ?? []) {
    const s = g.value
    let value
    if (s.string) value = s.string.repeat.repeat(s.string.times)
    else if (s.array) value = Array.from({ length: s.array.count }, (_, i) => withIndex(s.array.item, i))
    else if (s.object) {
      value = {}
      for (let i = 0; i < s.object.count; i++) value[s.object.key.replaceAll('{i}', String(i))] = withIndex(s.object.value, i)
    } else if (s.nest) value = nest(s.nest)
    setAt(c, g.at, value)
  }
  return c
}

const NOW = { NaN, Infinity, '-Infinity': -Infinity, '2^53': 2 ** 53, '2^53+1': 2 ** 53 + 1, '2^64': 2 ** 64, '2^64-1': 2 ** 64 - 1 }
const nowOf = (c) => (c.now === undefined ? DEFAULT_NOW : typeof c.now === 'number' ? c.now : (NOW[c.now] ?? Number(c.now)))

// ---- running a case ----

function clean(text, channel) {
  const at = String(text).indexOf('CANARY')
  if (at >= 0) assert.fail(`a canary secret leaked into ${channel}: …${String(text).slice(Math.max(0, at - 60), at + 60)}…`)
}

/** The outcome of a thrown value: its credpool code, or `host_rejects` for napi's own nesting limit. */
function errorOutcome(e) {
  assert.ok(e instanceof Error, `thrown value is not an Error: ${inspect(e)}`)
  for (const [channel, text] of [['message', e.message], ['String(err)', String(e)], ['stack', e.stack], ['inspect(err)', inspect(e)]]) {
    clean(text, channel)
  }
  if (codes.has(e.code)) return e.code
  // napi-rs's own serde_json conversion limits (128 levels, 1,000,000 values) reject first.
  if (impl === 'napi' && e.code === 'InvalidArg' && /nesting depth|value count/.test(e.message)) return 'host_rejects'
  assert.fail(`untyped error (code ${e.code}): ${e.message}`)
}

function outcome(c) {
  let reg
  try {
    reg = new Registry({ writer: 'w1', seed: 1, ...(c.state !== undefined ? { state: c.state } : {}) })
  } catch (e) {
    return [errorOutcome(e), undefined, null]
  }
  for (const [i, input] of (c.setup ?? []).entries()) {
    try {
      reg.handle(input, c.setup_at ?? 0)
    } catch (e) {
      assert.fail(`setup[${i}] failed: ${e.code}: ${e.message}`)
    }
  }
  const now = nowOf(c)
  let result
  try {
    const out = reg.handle(c.input, now)
    if (!['credential', 'send', 'state', 'token_request', 'token_outcome'].includes(out.type)) {
      clean(JSON.stringify(out), 'output')
      clean(inspect(out, { depth: 5 }), 'inspect(output)')
    }
    result = ['ok', out.type, reg]
  } catch (e) {
    result = [errorOutcome(e), undefined, reg]
  }
  clean(inspect(reg), 'inspect(registry)')
  return result
}

function allowed(expect) {
  if (expect.ok) return ['ok']
  if (expect.error) return [expect.error]
  return expect.one_of
}

const timings = []
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
for (const file of files) {
  const doc = JSON.parse(readFileSync(join(dir, file), 'utf8'))
  for (const c of expandCases(doc)) {
    const name = `${basename(file, '.json')}::${c.name}`
    // A case naming a known bug of this implementation runs as a TODO (reported, not failing).
    const todo = c.known_bug?.[impl]
    test(name, todo ? { todo: `KNOWN BUG: ${todo}` } : {}, () => {
      const g = generate(c)
      const expect = c.expect_by_runtime?.[impl] ?? c.expect
      const started = performance.now()
      const [got, type, reg] = outcome(g)
      const ms = performance.now() - started
      timings.push([ms, name])
      if (process.env.CREDPOOL_HOSTILE_VERBOSE) console.log(`outcome ${c.name}: ${got} ${type ?? ''} (${ms.toFixed(0)} ms)`)
      assert.ok(allowed(expect).includes(got), `expected ${JSON.stringify(expect)}, got ${got}`)
      if (expect.type) assert.equal(type, expect.type)
      assert.ok(ms <= (c.max_ms ?? DEFAULT_MAX_MS), `took ${ms.toFixed(0)} ms, bound ${c.max_ms ?? DEFAULT_MAX_MS} ms`)
      // The registry stays usable whatever happened.
      if (reg) {
        const status = reg.handle({ type: 'status' }, 2 ** 53)
        clean(JSON.stringify(status), 'status')
        reg.exportState()
      }
      // And a fresh registry works in the same process (wasm: the instance is not poisoned).
      new Registry({ writer: 'w2', seed: 2 }).handle({ type: 'tick' }, 0)
    })
  }
}

after(() => {
  timings.sort((a, b) => b[0] - a[0])
  for (const [ms, name] of timings.slice(0, 5)) console.log(`slowest (${impl}): ${ms.toFixed(1)} ms  ${name}`)
})
