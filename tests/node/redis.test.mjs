// Store over Redis (napi only): `Store.open('redis://...')` opens credpool-store's
// RedisStore. Against a real server: CREDPOOL_REDIS_URL names one (scripts/test-redis.sh
// starts it and sets the variable); without it these tests are skipped, saying so. The
// outage and password tests start their own redis-server on a free loopback port
// (CREDPOOL_REDIS_SERVER, else `redis-server` on PATH), so they can kill and restart it.
// The SQLite-store test of the same surface (location, hasPending, flush, confirmRefresh)
// always runs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import { credpool, impl } from './impl.mjs'
import { refreshWithStore, withCredential } from '../../bindings-node/helpers.mjs'

const { Store } = credpool
const URL = process.env.CREDPOOL_REDIS_URL
const noStore = impl === 'wasm' ? 'the wasm build has no store' : false
const skip =
  noStore || (URL ? false : 'CREDPOOL_REDIS_URL is not set (scripts/test-redis.sh runs these against a redis-server it starts)')
const SERVER = process.env.CREDPOOL_REDIS_SERVER ?? 'redis-server'

let namespaces = 0
/** The test server's URL with a namespace no other test (or run) uses. */
function freshUrl() {
  const sep = URL.includes('?') ? '&' : '?'
  return `${URL}${sep}namespace=node-${process.pid}-${Date.now()}-${namespaces++}`
}

function open(location, writer, options = {}) {
  return Store.open(location, { writer, seed: 1, reconnectIntervalMs: 0, ...options })
}

async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    assert.ok(e instanceof Error, 'rejects with a real Error')
    return e
  }
  assert.fail('expected a rejection')
}

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** A redis-server child on a free loopback port (append-only file, so a restart keeps data). */
class Server {
  static async start(args = []) {
    const server = new Server(await freePort(), args)
    await server.restart()
    return server
  }

  constructor(port, args) {
    this.port = port
    this.args = args
    this.dir = mkdtempSync(join(tmpdir(), 'credpool-redis-node-'))
    this.child = null
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`
  }

  async restart() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir,
      '--appendonly', 'yes', '--appendfsync', 'always', ...this.args]
    const child = spawn(SERVER, args, { stdio: 'ignore' })
    this.child = child
    const exited = new Promise((resolve) => child.once('exit', resolve))
    this.exited = exited
    // Up when a TCP connect succeeds and the store opens (the server answers commands).
    for (let i = 0; i < 200; i++) {
      if (child.exitCode !== null) throw new Error(`${SERVER} exited ${child.exitCode}`)
      if (await reachable(this.port)) return
      await sleep(25)
    }
    throw new Error('redis-server did not start')
  }

  /** SIGKILL: the server is gone at once (mid-run loss). */
  async kill() {
    if (!this.child) return
    this.child.kill('SIGKILL')
    await this.exited
    this.child = null
  }

  async stop() {
    await this.kill()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

async function reachable(port) {
  const { connect } = await import('node:net')
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    socket.once('data', (data) => {
      socket.destroy()
      resolve(data.toString().startsWith('+PONG') || data.toString().startsWith('-NOAUTH'))
    })
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('error', () => resolve(false))
  })
}

async function twoKeys(store, pool = 'p') {
  await store.configurePool(pool, { strategy: 'fill_first' })
  await store.addEntry(pool, { id: 'k0', access_token: 'sk-redis-0' })
  await store.addEntry(pool, { id: 'k1', access_token: 'sk-redis-1' })
}

test('SQLite store: location is the path, path is set, nothing pending, flush is a no-op, confirm keeps the ticket', { skip: noStore }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-redis-sqlite-'))
  try {
    const path = join(dir, 'pools.sqlite')
    const store = await open(path, 'w')
    assert.equal(store.location, path)
    assert.equal(store.path, path)
    assert.equal(store.hasPending(), false)
    await store.addEntry('o', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1000 })
    assert.equal(await store.flush(), null)
    const d = await store.acquire('o', {}, 2000)
    assert.equal(d.type, 'refresh')
    const start = await store.beginRefresh('o', 'o', d.generation, d.lease_id, 2000)
    assert.equal(start.type, 'needed')
    const confirmed = await store.confirmRefresh(start.ticket, 2000)
    assert.equal(confirmed.type, 'needed')
    assert.equal(confirmed.ticket, start.ticket)
    assert.equal(confirmed.credential.refresh_token, 'rt-0')
    const done = await store.finishRefresh(start.ticket, { type: 'refreshed', access_token: 'at-1', refresh_token: 'rt-1' }, 2000)
    assert.equal(done.reason, 'refreshed')
    assert.equal((await rejection(store.confirmRefresh(start.ticket))).code, 'invalid_input')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})

test('unreachable Redis at open: a coded io error naming the address, never the password', { skip }, async () => {
  const port = await freePort()
  const e = await rejection(open(`redis://user:pw-s3cret-9@127.0.0.1:${port}`, 'w', { connectTimeoutMs: 300 }))
  assert.equal(e.code, 'io')
  assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`))
  for (const text of [e.message, String(e), e.stack, inspect(e)]) assert.ok(!text.includes('pw-s3cret-9'), text)
})

test('invalid options and namespace are invalid_input', { skip }, async () => {
  assert.equal((await rejection(open(URL, 'w', { ioTimeoutMs: -1 }))).code, 'invalid_input')
  assert.equal((await rejection(open(URL, 'w', { namespace: 'has space' }))).code, 'invalid_input')
})

test('two stores on one URL see each other\'s marks; location has no path', { skip }, async () => {
  const url = freshUrl()
  const a = await open(url, 'wa')
  const b = await open(url, 'wb')
  assert.equal(a.path, null)
  assert.equal(a.location, URL)
  await twoKeys(a)
  const d = await b.acquire('p')
  assert.equal(d.entry_id, 'k0', 'b sees the entries a added')
  const marked = await b.report('p', d.lease_id, { status: 402 })
  assert.notEqual(marked.entry_id, 'k0', `402 benches k0: ${JSON.stringify(marked)}`)
  const next = await a.acquire('p')
  assert.equal(next.entry_id, 'k1', 'a does not hand out the entry b benched')
  const status = await a.status('p')
  const k0 = status.pools[0].entries.find((e) => e.id === 'k0')
  assert.equal(k0.health, 'exhausted', JSON.stringify(k0))
  // A third process opening later loads everything.
  const c = await open(url, 'wc')
  const state = await c.exportState()
  assert.deepEqual(state.pools.p.entries.map((e) => e.id), ['k0', 'k1'])
  assert.equal(a.hasPending(), false)
})

test('refresh is single-flight across stores: one refreshes, the other adopts', { skip }, async () => {
  const url = freshUrl()
  const setup = await open(url, 'setup')
  await setup.addEntry('o', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1000 })
  const stores = [await open(url, 'wa'), await open(url, 'wb'), await open(url, 'wc')]
  const decisions = await Promise.all(stores.map((s) => s.acquire('o', {}, 2000)))
  for (const d of decisions) assert.equal(d.type, 'refresh')
  const used = []
  const results = await Promise.all(
    stores.map((s, i) =>
      refreshWithStore(s, 'o', 'o', decisions[i].generation, decisions[i].lease_id, async (cred) => {
        used.push(cred.refresh_token)
        await sleep(50) // the provider round trip, lock held
        return { type: 'refreshed', access_token: `at-${i + 1}`, refresh_token: `rt-${i + 1}`, expires_at: Date.now() + 3_600_000 }
      }),
    ),
  )
  assert.deepEqual(used, ['rt-0'], 'the refresh token was used once')
  assert.deepEqual(results.map((d) => d.reason).sort(), ['adopted', 'adopted', 'refreshed'])
  const cred = await stores[0].credential('o', 'o')
  assert.notEqual(cred.refresh_token, 'rt-0')
})

test('withCredential over Redis stores at once: one refresh, everyone gets the new token', { skip }, async () => {
  const url = freshUrl()
  const setup = await open(url, 'setup')
  await setup.addEntry('o', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1000 })
  const stores = [await open(url, 'wa'), await open(url, 'wb')]
  const refreshed = []
  const refresh = async (credential) => {
    refreshed.push(credential.refreshToken)
    await sleep(50)
    return { type: 'refreshed', access_token: 'at-1', refresh_token: 'rt-1', expires_at: Date.now() + 3_600_000 }
  }
  const seen = await Promise.all(stores.map((s) => withCredential(s, 'o', async (c) => c.accessToken, { refresh })))
  assert.deepEqual(seen, ['at-1', 'at-1'])
  assert.deepEqual(refreshed, ['rt-0'])
})

test('a holder that stalled past its lease adopts at confirm instead of replaying the token', { skip }, async () => {
  const url = freshUrl()
  const setup = await open(url, 'setup')
  await setup.addEntry('o', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1000 })
  const slow = await open(url, 'slow', { refreshLeaseMs: 100 })
  const fast = await open(url, 'fast')
  const ds = await slow.acquire('o', {}, 2000)
  const df = await fast.acquire('o', {}, 2000)
  const stalled = await slow.beginRefresh('o', 'o', ds.generation, ds.lease_id, 2000)
  assert.equal(stalled.type, 'needed')
  await sleep(300) // the lease runs out
  const d = await refreshWithStore(fast, 'o', 'o', df.generation, df.lease_id, () => ({
    type: 'refreshed', access_token: 'at-1', refresh_token: 'rt-1', expires_at: Date.now() + 3_600_000,
  }))
  assert.equal(d.reason, 'refreshed')
  const confirmed = await slow.confirmRefresh(stalled.ticket)
  assert.equal(confirmed.type, 'adopted', 'the stalled holder must not use rt-0')
  assert.equal(confirmed.decision.reason, 'adopted')
  assert.equal(slow.abandonRefresh(stalled.ticket), false, 'the ticket is spent')
})

test('an abandoned Redis ticket releases the lock at once', { skip }, async () => {
  const url = freshUrl()
  const setup = await open(url, 'setup')
  await setup.addEntry('o', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0', expires_at: 1000 })
  const a = await open(url, 'wa', { lockTimeoutMs: 500 })
  const b = await open(url, 'wb', { lockTimeoutMs: 5000 })
  const da = await a.acquire('o', {}, 2000)
  const db = await b.acquire('o', {}, 2000)
  const held = await a.beginRefresh('o', 'o', da.generation, da.lease_id, 2000)
  assert.equal(held.type, 'needed')
  // While a holds it, a's own other calls still run (Redis: only beginRefresh waits).
  assert.equal((await a.status('o')).type, 'status')
  const waiting = b.beginRefresh('o', 'o', db.generation, db.lease_id, 2000)
  await sleep(100)
  assert.equal(a.abandonRefresh(held.ticket), true)
  const got = await waiting
  assert.equal(got.type, 'needed', 'b took the released lock (long before its 30 s lease ran out)')
  b.abandonRefresh(got.ticket)
})

test('Redis killed mid-run: decisions go on, marks queue, and are merged once it is back', { skip }, async () => {
  const server = await Server.start()
  try {
    const options = { connectTimeoutMs: 300, ioTimeoutMs: 300 }
    const store = await open(server.url, 'w', options)
    await twoKeys(store)
    assert.equal(store.hasPending(), false)
    await server.kill()
    const d = await store.acquire('p')
    assert.equal(d.type, 'use', 'acquire decides on the last known state')
    assert.equal(d.entry_id, 'k0')
    await store.report('p', d.lease_id, { status: 429, headers: { 'retry-after': '600' } })
    assert.equal(store.hasPending(), true, 'the mark waits for Redis')
    const next = await store.acquire('p')
    assert.equal(next.entry_id, 'k1', 'the local mark is honoured while Redis is down')
    await store.report('p', next.lease_id, { status: 200 })
    const refused = await rejection(store.flush())
    assert.equal(refused.code, 'io')
    assert.equal(store.hasPending(), true)
    await server.restart()
    await store.flush()
    assert.equal(store.hasPending(), false)
    const other = await open(server.url, 'other', options)
    const k0 = (await other.status('p')).pools[0].entries.find((e) => e.id === 'k0')
    assert.ok(typeof k0.health === 'string' && k0.health !== 'available', `the queued 429 reached Redis: ${JSON.stringify(k0)}`)
    assert.equal((await other.acquire('p')).entry_id, 'k1')
  } finally {
    await server.stop()
  }
})

test('a password URL: location and inspect redact it; a wrong password is an error without it', { skip }, async () => {
  const server = await Server.start(['--requirepass', 'pw-s3cret-7'])
  try {
    const store = await open(`redis://:pw-s3cret-7@127.0.0.1:${server.port}`, 'w')
    assert.equal(store.location, `redis://***@127.0.0.1:${server.port}`)
    await store.addEntry('p', { id: 'k', access_token: 'sk-inside' })
    for (const text of [inspect(store), inspect(store.pool('p')), JSON.stringify(store)]) {
      assert.ok(!text.includes('pw-s3cret-7') && !text.includes('sk-inside'), text)
    }
    const e = await rejection(open(`redis://:pw-wrong-5@127.0.0.1:${server.port}`, 'w'))
    assert.ok(['io', 'invalid_input'].includes(e.code), e.code)
    for (const text of [e.message, String(e), e.stack, inspect(e)]) assert.ok(!text.includes('pw-wrong-5'), text)
  } finally {
    await server.stop()
  }
})
