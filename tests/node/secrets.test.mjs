// Secret hygiene: every conformance vector (tests/vectors) run with recognisable secrets
// (every access_token / refresh_token / api_key and every seed env value rewritten to
// `sk-CANARY-<n>-…`), scanning every channel that must never carry one: outputs other than
// `credential` (reveal) and `state`, the borrowed (`env:` / `config:`) entries of exported
// state, `status`, thrown errors (message, String(), stack, util.inspect), util.inspect of
// the registry. Plus (napi only): the Node Store writes its SQLite database with mode 0600,
// and neither a borrowed secret nor a removed one reaches the disk.
// CREDPOOL_IMPL=napi|wasm picks the implementation (impl.mjs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { inspect } from 'node:util'
import { credpool, impl } from './impl.mjs'

const { Registry } = credpool
const here = dirname(fileURLToPath(import.meta.url))
const vectorsDir = resolve(here, '../vectors')
const SECRET_KEYS = new Set(['access_token', 'refresh_token', 'api_key'])

/** A copy of `v` with every secret replaced by a canary (the same original → the same canary). */
export function canarize(v, map = new Map(), inEnv = false) {
  const canary = (s) => {
    if (!map.has(s)) map.set(s, `sk-CANARY-${map.size + 1}-${s}`)
    return map.get(s)
  }
  if (Array.isArray(v)) return v.map((x) => canarize(x, map))
  if (v === null || typeof v !== 'object') return v
  const out = {}
  for (const [k, x] of Object.entries(v)) {
    if ((SECRET_KEYS.has(k) || inEnv) && typeof x === 'string' && x !== '') out[k] = canary(x)
    else out[k] = canarize(x, map, k === 'env' && x !== null && typeof x === 'object' && !Array.isArray(x))
  }
  return out
}

function clean(text, channel) {
  const at = String(text).indexOf('CANARY')
  if (at >= 0) assert.fail(`canary leaked into ${channel}: …${String(text).slice(Math.max(0, at - 80), at + 40)}…`)
}

/** Exported state: owned entries may carry their secrets, borrowed ones never. */
function checkState(state, channel) {
  for (const [pool, p] of Object.entries(state?.pools ?? {})) {
    for (const e of p.entries ?? []) {
      if (/^(env|config):/.test(e.source ?? '')) clean(JSON.stringify(e), `${channel} borrowed entry ${pool}/${e.id}`)
    }
  }
}

function checkError(e, where) {
  assert.ok(e instanceof Error, `${where}: thrown value is not an Error`)
  for (const [channel, text] of [['message', e.message], ['String(err)', String(e)], ['stack', e.stack], ['inspect(err)', inspect(e)]]) {
    clean(text, `${where} ${channel}`)
  }
}

function checkOutput(out, where) {
  if (['credential', 'send', 'probe', 'token_request', 'token_outcome'].includes(out.type)) return 1 // the outputs that hand over a secret
  if (out.type === 'state') {
    checkState(out.state, where)
    return 0
  }
  clean(JSON.stringify(out), `${where} output`)
  clean(inspect(out, { depth: 10 }), `${where} inspect(output)`)
  return 0
}

let revealed = 0
const files = readdirSync(vectorsDir).filter((f) => f.endsWith('.json')).sort()
for (const file of files) {
  test(`secrets::${basename(file, '.json')}`, () => {
    const v = canarize(JSON.parse(readFileSync(join(vectorsDir, file), 'utf8')))
    let reg
    try {
      reg = new Registry({ writer: v.writer ?? 'w1', seed: v.seed ?? 1, ...(v.state ? { state: v.state } : {}) })
    } catch (e) {
      checkError(e, 'new Registry')
      return
    }
    const steps = [...(v.setup ?? []).map((input) => ({ at: v.setup_at ?? 0, input })), ...v.steps]
    for (const [i, step] of steps.entries()) {
      const where = `step ${i} (${step.input?.type})`
      try {
        revealed += checkOutput(reg.handle(step.input, step.at), where)
      } catch (e) {
        if (e?.code === 'ERR_ASSERTION') throw e
        checkError(e, where)
      }
      clean(inspect(reg, { depth: 10 }), `${where} inspect(registry)`)
      clean(JSON.stringify(reg.status(undefined, step.at)), `${where} status`)
      const state = reg.exportState()
      checkState(state, `${where} exportState`)
    }
    // Methods that build their input in the binding, with a canary where a name belongs.
    for (const call of [
      () => reg.addEntry('p', { access_token: 'sk-CANARY-x'.repeat(3000) }),
      () => reg.addEntry('p', { access_token: ['sk-CANARY-in-array'] }),
      () => reg.addEntry('p', { access_token: 'sk-CANARY-bad-type', auth_type: 'sk-CANARY-as-enum' }),
      () => reg.refreshResult({ pool: 'p', entry_id: 'a', generation: 0, result: { type: 'refreshed', access_token: 42 } }),
      () => reg.sync({ format: 'credpool', schema_version: 1, pools: { p: { entries: [{ id: 'a', access_token: 7, refresh_token: 'sk-CANARY-r' }] } } }),
    ]) {
      try {
        checkOutput(call(), 'extra call')
      } catch (e) {
        if (e?.code === 'ERR_ASSERTION') throw e
        checkError(e, 'extra call')
      }
    }
  })
}

test('secrets::the rewrite reached the outputs meant to carry secrets', () => {
  assert.ok(revealed > 0, 'no reveal output carried a canary: the rewrite or the scan is broken')
})

test('secrets::JSON.stringify of state with borrowed entries carries no borrowed secret', () => {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.seed({ OPENROUTER_API_KEY: 'sk-CANARY-env-1' }, { custom_providers: [{ name: 'c', base_url: 'https://c.example/v1', api_key: 'sk-CANARY-cfg-1' }] }, 0)
  reg.addEntry('openrouter', { id: 'own', access_token: 'sk-CANARY-owned' }, 0)
  const text = JSON.stringify(reg.exportState())
  assert.ok(text.includes('sk-CANARY-owned'), 'owned entries keep their secret')
  assert.ok(!text.includes('sk-CANARY-env-1') && !text.includes('sk-CANARY-cfg-1'), text)
  assert.ok(JSON.stringify(reg.credential('openrouter', JSON.parse(text).pools.openrouter.entries[0].id)).includes('CANARY'))
})

test('secrets::Store writes its database 0600, and no borrowed or removed secret reaches the disk', { skip: impl === 'wasm' ? 'the wasm build has no persisted store' : false }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-secrets-'))
  try {
    const path = join(dir, 'pools.sqlite')
    const store = await credpool.Store.open(path, { writer: 'w1', seed: 1, durable: false })
    const seeded = await store.seed({ OPENROUTER_API_KEY: 'sk-CANARY-env-1' }, { custom_providers: [{ name: 'c', base_url: 'https://c.example/v1', api_key: 'sk-CANARY-cfg-1' }] }, 0)
    assert.equal(seeded.added.length, 2, 'one env: and one config: entry')
    await store.addEntry('openrouter', { id: 'own', access_token: 'sk-CANARY-owned' }, 0)
    await store.addEntry('openrouter', { id: 'gone', access_token: 'sk-CANARY-removed', priority: 9 }, 0)
    // every pool used, so the borrowed entries' rows are written again (counters, leases)
    for (const { pool } of (await store.status(null, 1)).pools) {
      const use = await store.acquire(pool, null, 2)
      assert.equal(use.type, 'use', pool)
      await store.report(pool, use.lease_id, { status: 200 }, 3)
    }
    // the database and its write-ahead log, where rows live (-shm holds only the log's index)
    const disk = () => Buffer.concat([path, `${path}-wal`].filter((f) => existsSync(f)).map((f) => readFileSync(f))).toString('latin1')
    assert.ok(disk().includes('sk-CANARY-removed'), 'the scan reads what is stored: an owned secret is')
    await store.removeEntry('openrouter', 'gone', 4)
    const files = [path, `${path}-wal`, `${path}-shm`].filter((f) => existsSync(f))
    for (const file of files) assert.equal(statSync(file).mode & 0o777, 0o600, file)
    assert.ok(disk().includes('sk-CANARY-owned'), 'owned secrets are stored')
    const text = disk()
    for (const secret of ['sk-CANARY-env-1', 'sk-CANARY-cfg-1', 'sk-CANARY-removed']) {
      assert.ok(!text.includes(secret), `${secret.slice(0, 14)}… is on disk`)
    }
    clean(inspect(store, { depth: 10 }), 'inspect(Store)')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
