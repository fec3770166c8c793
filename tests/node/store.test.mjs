// FileStore (napi only: the browser/wasm build has no file store): persistence shared by
// processes, coded errors, single-flight refresh, and an event loop the lock never blocks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { credpool, impl } from './impl.mjs'
import { refreshWithStore, withCredential } from '../../bindings-node/helpers.mjs'

const skip = impl === 'wasm' ? 'the wasm build has no file store' : false
const { FileStore } = credpool

function tempPath() {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-store-test-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'pools.json')
}

function open(path, writer, options = {}) {
  return FileStore.open(path, { writer, seed: 1, durable: false, ...options })
}

async function codeOf(promise) {
  try {
    await promise
  } catch (e) {
    assert.ok(e instanceof Error, 'rejects with a real Error')
    return e.code
  }
  assert.fail('expected a rejection')
}

function entryIds(path, pool) {
  return JSON.parse(readFileSync(path, 'utf8')).pools[pool].entries.map((e) => e.id)
}

async function withTwoKeys(path) {
  const store = await open(path, 'w1')
  await store.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
  await store.addEntry('openrouter', { id: 'b', access_token: 'sk-b', priority: 1 }, 0)
  return store
}

/** An oauth entry whose token expires at 100000: an acquire then asks for a refresh. */
async function withOauth(path) {
  const store = await open(path, 'w1')
  await store.addEntry(
    'anthropic',
    { id: 'o', auth_type: 'oauth', access_token: 'at0', refresh_token: 'rt0', expires_at: 100_000 },
    0,
  )
  return store
}

/** Runs a child that holds the flock on `<path>.lock` for `ms`; resolves once it holds it,
 * with `{ exited }` (a promise of the child's exit code). */
async function holdLock(path, ms) {
  const script = [
    'import fcntl, sys, time',
    'f = open(sys.argv[1] + ".lock", "a+")',
    'fcntl.flock(f, fcntl.LOCK_EX)',
    'print("locked", flush=True)',
    'time.sleep(float(sys.argv[2]) / 1000)',
  ].join('\n')
  const child = spawn('python3', ['-c', script, path, String(ms)], { stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('exit', (code) => resolve(code))
  })
  await new Promise((resolve, reject) => {
    child.on('error', reject)
    child.stdout.on('data', (chunk) => chunk.toString().includes('locked') && resolve())
    child.on('exit', () => reject(new Error('lock holder exited before locking')))
  })
  return { exited }
}

test('persist, then reopen', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  assert.equal(store.path, path)
  assert.ok(existsSync(path))
  assert.deepEqual(entryIds(path, 'openrouter'), ['a', 'b'])
  const use = await store.acquire('openrouter', null, 1000)
  assert.equal(use.entry_id, 'a')
  await store.report('openrouter', use.lease_id, { status: 200 }, 1100)

  const again = await open(path, 'w1')
  const status = await again.status('openrouter', 2000)
  assert.deepEqual(status.pools[0].entries.map((e) => [e.id, e.request_count]), [['a', 1], ['b', 0]])
  const cred = await again.credential('openrouter', 'b', 2000)
  assert.equal(cred.access_token, 'sk-b')
  const state = await again.exportState()
  assert.equal(state.format, 'credpool')
})

test('opening does not create the file; a missing file is an empty registry', { skip }, async () => {
  const path = tempPath()
  const store = await open(path, 'w1')
  assert.equal((await store.status()).pools.length, 0)
  assert.equal(await store.reload(), false)
  assert.ok(!existsSync(path))
})

test('two stores on one path never clobber each other', { skip }, async () => {
  const path = tempPath()
  const one = await open(path, 'w1')
  const two = await open(path, 'w2', { seed: 2 })
  await Promise.all([
    one.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0),
    two.addEntry('openrouter', { id: 'b', access_token: 'sk-b' }, 0),
    one.addEntry('anthropic', { id: 'c', access_token: 'sk-c' }, 0),
    two.addEntry('openai', { id: 'd', access_token: 'sk-d' }, 0),
  ])
  assert.deepEqual(entryIds(path, 'openrouter').sort(), ['a', 'b'])
  assert.deepEqual(entryIds(path, 'anthropic'), ['c'])
  assert.deepEqual(entryIds(path, 'openai'), ['d'])
  // each sees the other's writes
  assert.equal((await one.credential('openai', 'd', 1)).access_token, 'sk-d')
  assert.equal((await two.credential('anthropic', 'c', 1)).access_token, 'sk-c')
})

test('a 402 benched in one store is not handed out by the other', { skip }, async () => {
  const path = tempPath()
  const one = await withTwoKeys(path)
  const two = await open(path, 'w2', { seed: 2 })
  const use = await one.acquire('openrouter', null, 1000)
  assert.equal(use.entry_id, 'a')
  const next = await one.report('openrouter', use.lease_id, { status: 402 }, 1100)
  assert.equal(next.entry_id, 'b')
  for (let i = 0; i < 3; i++) {
    const other = await two.acquire('openrouter', null, 1200 + i)
    assert.equal(other.entry_id, 'b', 'the benched entry stays benched in the other store')
    await two.release('openrouter', other.lease_id, 1300 + i)
  }
})

test('no write when nothing changed (mtime and bytes)', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  const before = { bytes: readFileSync(path), mtime: statSync(path).mtimeMs, ino: statSync(path).ino }
  await sleep(30)
  assert.equal((await store.tick(5000)).changed, false)
  await store.status(null, 5000)
  await store.exportState()
  await store.credential('openrouter', 'a', 5000)
  await store.checkRefresh('openrouter', 'a', 0, 5000).catch(() => {}) // not an oauth entry
  assert.equal(await codeOf(store.removeEntry('openrouter', 'zz', 5000)), 'unknown_entry')
  assert.equal(await store.reload(), false)
  const after = statSync(path)
  assert.deepEqual(readFileSync(path), before.bytes)
  assert.equal(after.mtimeMs, before.mtime)
  assert.equal(after.ino, before.ino)
  // and a change does write
  await store.setPriority('openrouter', 'b', -1, 5000)
  assert.notDeepEqual(readFileSync(path), before.bytes)
})

test('a corrupt file: code invalid_state, bytes untouched; moveAside on request', { skip }, async () => {
  const path = tempPath()
  writeFileSync(path, '{"format": "credpool", oops')
  const bytes = readFileSync(path)
  assert.equal(await codeOf(open(path, 'w1')), 'invalid_state')
  assert.deepEqual(readFileSync(path), bytes)

  // a file that turns corrupt under an open store: the write is refused, bytes kept
  const other = tempPath()
  const store = await withTwoKeys(other)
  writeFileSync(other, 'not json at all')
  assert.equal(await codeOf(store.acquire('openrouter', null, 10)), 'invalid_state')
  assert.equal(await codeOf(store.status()), 'invalid_state')
  assert.equal(readFileSync(other, 'utf8'), 'not json at all')

  const moved = FileStore.moveAside(path)
  assert.ok(moved.startsWith(`${path}.corrupt-`), moved)
  assert.ok(!existsSync(path))
  assert.deepEqual(readFileSync(moved), bytes)
  const fresh = await open(path, 'w1')
  assert.equal((await fresh.status()).pools.length, 0)
  assert.equal(await codeOf(Promise.resolve().then(() => FileStore.moveAside(path))), 'io')
})

test('an unknown schema_version: code unsupported_schema_version', { skip }, async () => {
  const path = tempPath()
  await withTwoKeys(path)
  const doc = JSON.parse(readFileSync(path, 'utf8'))
  doc.schema_version = 999
  writeFileSync(path, JSON.stringify(doc))
  const bytes = readFileSync(path)
  assert.equal(await codeOf(open(path, 'w1')), 'unsupported_schema_version')
  assert.deepEqual(readFileSync(path), bytes)
})

test('bad arguments reject with coded errors', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  assert.equal(await codeOf(store.acquire('openrouter', null, -1)), 'invalid_clock')
  assert.equal(await codeOf(store.acquire('nous', null, 0)), 'unknown_pool')
  assert.equal(await codeOf(store.handle({ type: 'nope' }, 0)), 'invalid_input')
  assert.equal(await codeOf(store.report('openrouter', 42, { status: 200 }, 0)), 'unknown_lease')
  assert.equal(await codeOf(store.acquire('openrouter', 'x', 0)), 'invalid_input')
  assert.equal(await codeOf(open(path, 'w1', { lockTimeoutMs: -1 })), 'invalid_input')
  assert.equal(await codeOf(open(path, 'w1', { seed: 1.5 })), 'invalid_input')
  assert.equal(await codeOf(store.finishRefresh(77, { type: 'adopted' })), 'invalid_input')
  assert.equal(await codeOf(store.finishRefresh(1, { type: 'refreshed' })), 'invalid_input')
  assert.equal(store.abandonRefresh(77), false)
})

test('the Registry surface: every method answers like Registry', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  const reg = new credpool.Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
  reg.addEntry('openrouter', { id: 'b', access_token: 'sk-b', priority: 1 }, 0)
  const steps = [
    ['configurePool', 'openrouter', { strategy: 'round_robin' }, 1],
    ['setPriority', 'openrouter', 'b', -5, 2],
    ['acquire', 'openrouter', { model: 'm' }, 3],
    ['release', 'openrouter', 1, 4],
    ['beginTurn', null, 5],
    ['tick', 6],
    ['reset', 'openrouter', null, 7],
    ['seed', { OPENAI_API_KEY: 'sk-env' }, undefined, 8],
    ['removeEntry', 'openai', 'env-openai_api_key', 9],
    ['handle', { type: 'status', pool: 'openrouter' }, 10],
  ]
  for (const [method, ...args] of steps) {
    let want
    try {
      want = reg[method](...args)
    } catch (e) {
      assert.equal(await codeOf(store[method](...args)), e.code, method)
      continue
    }
    assert.deepEqual(await store[method](...args), want, method)
  }
  assert.equal((await store.sync(reg.exportState(), 11)).type, 'synced')
  assert.deepEqual((await store.exportState()).pools, reg.exportState().pools)
})

test('lockTimeoutMs: a lock held elsewhere ends in lock_timeout', { skip }, async () => {
  const path = tempPath()
  const holder = await withOauth(path)
  const waiter = await open(path, 'w2', { lockTimeoutMs: 150 })
  const decision = await holder.acquire('anthropic', null, 1000)
  assert.equal(decision.type, 'refresh')
  const start = await holder.beginRefresh('anthropic', 'o', 0, decision.lease_id, 1100)
  assert.equal(start.type, 'needed')
  const t0 = Date.now()
  assert.equal(await codeOf(waiter.acquire('anthropic', null, 1200)), 'lock_timeout')
  assert.ok(Date.now() - t0 >= 140)
  // read-only calls take no lock
  assert.equal((await waiter.status('anthropic', 1200)).type, 'status')
  assert.equal(holder.abandonRefresh(start.ticket), true)
  assert.equal(holder.abandonRefresh(start.ticket), false)
  assert.equal((await waiter.acquire('anthropic', null, 1300)).type, 'refresh')
})

test('an open ticket holds this store too: queued calls wait, then run once it ends', { skip }, async () => {
  const path = tempPath()
  const store = await withOauth(path)
  const decision = await store.acquire('anthropic', null, 1000)
  const start = await store.beginRefresh('anthropic', 'o', 0, decision.lease_id, 1100)
  assert.equal(start.type, 'needed')
  let done = false
  const queued = store.addEntry('openrouter', { id: 'k', access_token: 'sk-k' }, 1200).then((r) => {
    done = true
    return r
  })
  // reads still run
  assert.equal((await store.credential('anthropic', 'o', 1150)).access_token, 'at0')
  await sleep(50)
  assert.equal(done, false, 'the write waits for the ticket')
  const finished = await store.finishRefresh(start.ticket, { type: 'refreshed', access_token: 'at1', refresh_token: 'rt1', expires_at: 1_795_458_420_321 }, 1300)
  assert.deepEqual(finished, { type: 'use', entry_id: 'o', lease_id: decision.lease_id, reason: 'refreshed', changed: true })
  assert.equal((await queued).type, 'entry_added')
  assert.equal(await codeOf(store.finishRefresh(start.ticket, { type: 'adopted' })), 'invalid_input')

  // a forgotten ticket: queued writes give up after lockTimeoutMs
  const shortPath = tempPath()
  await withOauth(shortPath)
  const short = await open(shortPath, 'w1', { lockTimeoutMs: 100 })
  const refresh = await short.acquire('anthropic', null, 1000)
  assert.equal(refresh.type, 'refresh')
  const s2 = await short.beginRefresh('anthropic', refresh.entry_id, refresh.generation, refresh.lease_id, 1001)
  assert.equal(s2.type, 'needed')
  assert.equal(await codeOf(short.tick(1002)), 'lock_timeout')
  assert.equal(short.abandonRefresh(s2.ticket), true)
  assert.equal((await short.tick(1003)).type, 'ticked')
})

test('single-flight refresh: the first store refreshes, the second adopts, fn runs once', { skip }, async () => {
  const path = tempPath()
  const one = await withOauth(path)
  const two = await open(path, 'w2', { seed: 2 })
  const d1 = await one.acquire('anthropic', null, 1000)
  const d2 = await two.acquire('anthropic', null, 1000)
  assert.equal(d1.type, 'refresh')
  assert.equal(d2.type, 'refresh')
  assert.equal(d1.generation, 0)
  assert.equal(d2.generation, 0)
  const calls = []
  const fn = async (credential) => {
    calls.push(credential.refresh_token)
    await sleep(100)
    return { type: 'refreshed', access_token: 'at1', refresh_token: 'rt1', expires_at: 10_000_000 }
  }
  const [r1, r2] = await Promise.all([
    refreshWithStore(one, 'anthropic', 'o', d1.generation, d1.lease_id, fn),
    (async () => {
      await sleep(20) // the first one is inside fn, holding the lock
      return refreshWithStore(two, 'anthropic', 'o', d2.generation, d2.lease_id, fn)
    })(),
  ])
  assert.deepEqual(calls, ['rt0'])
  assert.equal(r1.reason, 'refreshed')
  assert.equal(r2.reason, 'adopted')
  assert.equal(r2.type, 'use')
  const cred = await two.credential('anthropic', 'o', 2000)
  assert.equal(cred.access_token, 'at1')
  assert.equal(cred.generation, 1)
})

test('refreshWithStore abandons when fn throws (lock released, nothing recorded)', { skip }, async () => {
  const path = tempPath()
  const store = await withOauth(path)
  const other = await open(path, 'w2', { lockTimeoutMs: 200 })
  const d = await store.acquire('anthropic', null, 1000)
  const boom = new Error('network down')
  await assert.rejects(
    refreshWithStore(store, 'anthropic', 'o', d.generation, d.lease_id, async () => {
      throw boom
    }),
    (e) => e === boom,
  )
  // the lock is free: another store writes at once
  assert.equal((await other.tick(1100)).type, 'ticked')
  assert.equal((await other.credential('anthropic', 'o', 1100)).generation, 0)
  assert.equal((await store.checkRefresh('anthropic', 'o', 0, 1200)).needed, true)
})

test('default path: $CREDPOOL_HOME/pools.json', { skip }, async () => {
  const dir = join(tempPath(), '..', 'home')
  const saved = process.env.CREDPOOL_HOME
  process.env.CREDPOOL_HOME = dir
  try {
    const store = await FileStore.open(null, { writer: 'w1', seed: 1 })
    assert.equal(store.path, join(dir, 'pools.json'))
    await store.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
    assert.deepEqual(entryIds(join(dir, 'pools.json'), 'openrouter'), ['a'])
    const defaults = await FileStore.open()
    assert.equal(defaults.path, join(dir, 'pools.json'))
  } finally {
    if (saved === undefined) delete process.env.CREDPOOL_HOME
    else process.env.CREDPOOL_HOME = saved
  }
})

test('the event loop is never blocked by the lock', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  const { exited } = await holdLock(path, 800) // a child process holds the flock for 800 ms
  let childDone = false
  const child = exited.then((code) => {
    childDone = true
    return code
  })
  let ticks = 0
  const timer = setInterval(() => ticks++, 10)
  const t0 = Date.now()
  try {
    const use = await store.acquire('openrouter', null, 1000)
    const waited = Date.now() - t0
    assert.equal(use.type, 'use')
    assert.ok(ticks >= 20, `the event loop kept ticking during the wait (${ticks} ticks in ${waited} ms)`)
    assert.ok(waited >= 500, `the acquire waited for the lock (${waited} ms)`)
    assert.equal(await child, 0)
    assert.ok(childDone)
  } finally {
    clearInterval(timer)
  }
})

test('store.pool(key): the store calls bound to one pool, persisted', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  const pool = store.pool('openrouter')
  assert.equal(pool.key, 'openrouter')
  const use = await pool.acquire(undefined, 1000)
  assert.equal(use.entry_id, 'a')
  assert.equal((await pool.credential('a', 1000)).access_token, 'sk-a')
  const next = await pool.report(use.lease_id, { status: 402 }, 1100)
  assert.equal(next.entry_id, 'b')
  assert.equal((await pool.release(next.lease_id, 1200)).type, 'released')
  assert.equal((await pool.status(1300)).pools[0].entries.length, 2)
  const other = await open(path, 'w2')
  assert.equal((await other.acquire('openrouter', undefined, 1400)).entry_id, 'b')
})

test('withCredential over FileStores: one refresh across stores, the other adopts', { skip }, async () => {
  const path = tempPath()
  const a = await open(path, 'wa')
  await a.addEntry('anthropic', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1_000 }, 0)
  const b = await open(path, 'wb')
  const refreshed = []
  const refresh = async (credential) => {
    refreshed.push(credential.refreshToken)
    return { type: 'refreshed', access_token: 'at-1', refresh_token: 'rt-1', expires_at: 1_795_458_420_321 }
  }
  let clock = 2_000
  const options = { refresh, now: () => clock++ }
  const seen = []
  seen.push(await withCredential(a, 'anthropic', async (c) => c.accessToken, options))
  seen.push(await withCredential(b, 'anthropic', async (c) => c.accessToken, options))
  assert.deepEqual(seen, ['at-1', 'at-1'])
  assert.deepEqual(refreshed, ['rt-0'], 'the second store found the rotated token and never refreshed')
})

test('a 70,000-entry state syncs into a FileStore and exports back (past napi-rs value cap)', { skip }, async () => {
  const { Registry } = credpool
  const registry = new Registry({ writer: 'big', seed: 1 })
  const entries = Array.from({ length: 70_000 }, (_, i) => ({ type: 'add_entry', pool: 'openrouter', entry: { id: `k${i}`, access_token: `sk-${i}` } }))
  for (const input of entries) registry.handle(input, 0)
  const store = await open(tempPath(), 'w1')
  assert.equal((await store.sync(registry.exportState(), 1)).type, 'synced')
  const state = await store.exportState()
  assert.equal(state.pools.openrouter.entries.length, 70_000)
})
