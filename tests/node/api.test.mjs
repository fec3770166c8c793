// The JS API of both packages (CREDPOOL_IMPL=napi|wasm, see impl.mjs): one test file for
// one surface.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { readFileSync } from 'node:fs'
import { credpool } from './impl.mjs'

const { Registry, errorCodes, version } = credpool

function registry() {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('openrouter', { id: 'a', access_token: 'sk-test-a' }, 0)
  reg.addEntry('openrouter', { id: 'b', access_token: 'sk-test-b', priority: 1 }, 0)
  return reg
}

function codeOf(fn) {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof Error, 'thrown value is a real Error')
    return e.code
  }
  assert.fail('expected a throw')
}

test('acquire / report round trip', () => {
  const reg = registry()
  const use = reg.acquire('openrouter', null, 1000)
  assert.equal(use.type, 'use')
  assert.equal(use.entry_id, 'a')
  assert.equal(use.lease_id, 1)
  assert.equal(use.changed, true)
  const done = reg.report('openrouter', use.lease_id, { status: 200 }, 1100)
  assert.deepEqual(done, { type: 'done', changed: done.changed })
  // the lease is settled: reporting again is misuse
  assert.equal(codeOf(() => reg.report('openrouter', use.lease_id, { status: 200 }, 1200)), 'unknown_lease')
})

test('402 rotates to the next entry', () => {
  const reg = registry()
  const use = reg.acquire('openrouter', {}, 1000)
  const next = reg.report('openrouter', use.lease_id, { status: 402 }, 1100)
  assert.equal(next.type, 'use')
  assert.equal(next.entry_id, 'b')
})

test('handle takes wire inputs and defaults now to the wall clock', () => {
  const reg = registry()
  const out = reg.handle({ type: 'acquire', pool: 'openrouter' })
  assert.equal(out.type, 'use')
  const status = reg.status('openrouter')
  assert.equal(status.type, 'status')
  assert.equal(reg.beginTurn().type, 'turn_begun')
})

test('unknown lease: Error with code unknown_lease', () => {
  const reg = registry()
  let err
  try {
    reg.report('openrouter', 42, { status: 200 }, 1000)
  } catch (e) {
    err = e
  }
  assert.ok(err instanceof Error)
  assert.equal(err.code, 'unknown_lease')
  assert.equal(typeof err.message, 'string')
})

test('other error codes', () => {
  const reg = registry()
  assert.equal(codeOf(() => reg.acquire('nous', null, 0)), 'unknown_pool')
  assert.equal(codeOf(() => reg.handle({ type: 'nope' }, 0)), 'invalid_input')
  assert.equal(codeOf(() => reg.handle('acquire', 0)), 'invalid_input')
  assert.equal(codeOf(() => reg.addEntry('openrouter', { id: 'a', access_token: 'x' }, 0)), 'duplicate_entry')
  assert.equal(codeOf(() => reg.removeEntry('openrouter', 'zz', 0)), 'unknown_entry')
  assert.equal(codeOf(() => new Registry({ seed: -1 })), 'invalid_input')
})

test('bad now: code invalid_clock', () => {
  const reg = registry()
  for (const now of [NaN, -1, 2 ** 60, 1.5, Infinity, -Infinity]) {
    assert.equal(codeOf(() => reg.acquire('openrouter', null, now)), 'invalid_clock', `now = ${now}`)
    assert.equal(codeOf(() => reg.handle({ type: 'tick' }, now)), 'invalid_clock', `now = ${now}`)
  }
  // 0 and 2^53 are the bounds
  reg.handle({ type: 'tick' }, 0)
  reg.handle({ type: 'tick' }, 2 ** 53)
})

test('a failed input leaves the registry as it was', () => {
  const reg = registry()
  const before = JSON.stringify(reg.exportState())
  assert.equal(codeOf(() => reg.report('openrouter', 7, { status: 200 }, 10)), 'unknown_lease')
  assert.equal(JSON.stringify(reg.exportState()), before)
})

test('no secret in inspect or in the exported state of an env: entry', () => {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('openai', { id: 'e', source: 'env:OPENAI_API_KEY', access_token: 'sk-secret-env-123' }, 0)
  reg.acquire('openai', null, 1)
  for (const text of [inspect(reg, { depth: 10, showHidden: true }), String(reg), JSON.stringify(reg.exportState())]) {
    assert.ok(!text.includes('sk-secret-env-123'), text)
  }
  // status output carries no secret either
  assert.ok(!JSON.stringify(reg.status()).includes('sk-secret-env-123'))
})

test('state round trip and sync', () => {
  const reg = registry()
  const state = reg.exportState()
  assert.equal(typeof state, 'object')
  const copy = new Registry({ writer: 'w2', seed: 2, state })
  assert.deepEqual(copy.exportState().pools, state.pools)
  assert.equal(copy.sync(state, 5).type, 'synced')
  assert.equal(reg.reset('openrouter', null, 5).type, 'reset')
})

test('defaults: random writer and seed', () => {
  const a = new Registry()
  const b = new Registry({})
  a.addEntry('openrouter', { access_token: 'sk-x' }, 0)
  b.addEntry('openrouter', { access_token: 'sk-x' }, 0)
  assert.equal(typeof a.exportState(), 'object')
})

test('errorCodes lists every stable code', () => {
  const codes = errorCodes()
  assert.ok(Array.isArray(codes))
  for (const c of ['invalid_input', 'invalid_clock', 'unknown_lease', 'internal']) assert.ok(codes.includes(c), c)
  assert.equal(new Set(codes).size, codes.length)
})

test('errorCodes matches core ErrorCode::as_str (drift)', async () => {
  const src = readFileSync(new URL('../../core/src/error.rs', import.meta.url), 'utf8')
  const body = src.slice(src.indexOf('pub const fn as_str'), src.indexOf('/// An error from core'))
  const fromCore = [...body.matchAll(/=> "([a-z_]+)"/g)].map((m) => m[1])
  assert.deepEqual(errorCodes(), fromCore)
})

test('version names the core crate version', () => {
  const cargo = readFileSync(new URL('../../Cargo.toml', import.meta.url), 'utf8')
  assert.equal(version(), cargo.match(/^version = "([^"]+)"/m)[1])
})

test('release closes a lease without marking the entry', () => {
  const reg = registry()
  const use = reg.acquire('openrouter', undefined, 1000)
  assert.deepEqual(reg.release('openrouter', use.lease_id, 1100), { type: 'released', lease_id: use.lease_id, changed: false })
  assert.equal(codeOf(() => reg.release('openrouter', use.lease_id, 1200)), 'unknown_lease')
  assert.equal(reg.acquire('openrouter', undefined, 1300).entry_id, use.entry_id)
})

test('credential hands out the secret; nothing else does', () => {
  const reg = registry()
  const use = reg.acquire('openrouter', undefined, 1000)
  const cred = reg.credential('openrouter', use.entry_id, 1000)
  assert.equal(cred.type, 'credential')
  assert.equal(cred.access_token, 'sk-test-a')
  assert.equal(cred.generation, 0)
  assert.equal(codeOf(() => reg.credential('openrouter', 'nope', 1000)), 'unknown_entry')
})

test('configurePool, setPriority, tick, checkRefresh, seed', () => {
  const reg = registry()
  const configured = reg.configurePool('openrouter', { strategy: 'round_robin', policy: { preset: 'adaptive' }, fallback: [{ pool: 'anthropic' }] }, 0)
  assert.deepEqual(configured, { type: 'pool_configured', pool: 'openrouter', changed: true })
  assert.equal(reg.status('openrouter', 0).pools[0].strategy, 'round_robin')
  assert.equal(codeOf(() => reg.configurePool('openrouter', { strategy: 'best' }, 0)), 'invalid_input')
  assert.deepEqual(reg.setPriority('openrouter', 'b', -5, 0), { type: 'entry_updated', entry_id: 'b', changed: true })
  assert.equal(reg.acquire('openrouter', undefined, 10).entry_id, 'b')
  assert.deepEqual(reg.tick(20), { type: 'ticked', recovered: [], next_wakeup: null, changed: false })
  assert.equal(codeOf(() => reg.checkRefresh('openrouter', 'a', 0, 30)), 'not_refreshable')
  const seeded = reg.seed({ OPENAI_API_KEY: 'sk-env-openai' }, undefined, 40)
  assert.equal(seeded.type, 'seeded')
  assert.deepEqual(seeded.added.map((e) => [e.pool, e.source]), [['openai', 'env:OPENAI_API_KEY']])
})

test('optional arguments may be omitted', () => {
  const reg = new Registry()
  reg.addEntry('openrouter', { access_token: 'sk-x' })
  assert.equal(reg.acquire('openrouter').type, 'use')
  assert.equal(reg.configurePool('openrouter').type, 'pool_configured')
  assert.equal(reg.seed().type, 'seeded')
  assert.equal(reg.status().type, 'status')
})

test('importHermes / exportHermes: a Hermes auth.json round trip', () => {
  const { importHermes, exportHermes } = credpool
  const hermesDir = new URL('../hermes/', import.meta.url)
  const openrouter = JSON.parse(readFileSync(new URL('openrouter.json', hermesDir), 'utf8'))
  const state = importHermes(openrouter, 1787075000000)
  assert.equal(state.format, 'credpool')
  const reg = new Registry({ writer: 'w1', seed: 1, state })
  // the primary is exhausted until its reset_at (1787076000 s), the backup serves meanwhile
  assert.equal(reg.acquire('openrouter', null, 1787075999000).entry_id, '0f9e8d')
  const out = exportHermes(reg.exportState(), openrouter, 1787076000000)
  assert.deepEqual(out.providers, openrouter.providers)
  assert.deepEqual(out.suppressed_sources, openrouter.suppressed_sources)
  assert.deepEqual(
    out.credential_pool.openrouter.map((e) => [e.id, e.priority, e.last_status, e.last_error_reset_at]),
    [
      ['a1b2c3', 0, 'exhausted', 1787076000],
      ['d4e5f6', 1, 'exhausted', null],
      ['0f9e8d', 2, 'ok', null],
    ],
  )
  assert.deepEqual(importHermes(exportHermes(state), 1787075000000), state)

  // A legacy file with an env: secret on disk: it never crosses the converter.
  const legacy = JSON.parse(readFileSync(new URL('legacy-mixed.json', hermesDir), 'utf8'))
  const legacyState = importHermes(legacy, 1787075000000)
  const text = JSON.stringify(exportHermes(new Registry({ state: legacyState }).exportState(), legacy))
  assert.ok(!text.includes('LEAKED'), 'a borrowed (env:) secret was exported')
  assert.ok(!JSON.stringify(legacyState).includes('LEAKED'))
  assert.ok(text.includes('"secret_fingerprint"'))

  assert.equal(codeOf(() => importHermes({ credential_pool: [] })), 'invalid_state')
  assert.equal(codeOf(() => importHermes({})), 'foreign_document')
  assert.equal(codeOf(() => importHermes(state)), 'foreign_document')
  assert.equal(codeOf(() => exportHermes(openrouter)), 'foreign_document')
  assert.equal(codeOf(() => importHermes(openrouter, -1)), 'invalid_clock')
})
