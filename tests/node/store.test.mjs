// Store (napi only: the browser/wasm build has no persisted store) over an SQLite database:
// persistence shared by processes, coded errors, refused files left untouched, the migration
// of a JSON store of an earlier version, single-flight refresh that blocks no other write,
// and an event loop the lock never blocks. `FileStore` is the class's deprecated alias.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { credpool, impl } from './impl.mjs'
import { refreshWithStore, withCredential } from '../../bindings-node/helpers.mjs'

const skip = impl === 'wasm' ? 'the wasm build has no persisted store' : false
const { Store } = credpool
const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1')

const tempDirs = []
process.on('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
})

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-store-test-'))
  tempDirs.push(dir)
  return dir
}

function tempPath() {
  return join(tempDir(), 'pools.sqlite')
}

function open(path, writer, options = {}) {
  return Store.open(path, { writer, seed: 1, durable: false, ...options })
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

/** The state as a fresh process reads it: a new store on `path` (its own connection and
 * locks), exported. */
async function exported(path) {
  return (await open(path, 'reader')).exportState()
}

async function entryIds(path, pool) {
  return (await exported(path)).pools[pool].entries.map((e) => e.id)
}

/** Runs `sql` on the SQLite database at `path` with Python's sqlite3 (another SQLite
 * client than the store's: a foreign database, a newer layout, damaged rows). */
function sqlite(path, sql) {
  const script = 'import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.executescript(sys.argv[2])\nc.commit()\nc.close()'
  const run = spawnSync('python3', ['-c', script, path, sql], { encoding: 'utf8' })
  assert.equal(run.status, 0, `python3 sqlite3 failed: ${run.error ?? run.stderr}`)
}

/** The bytes of the database and of its write-ahead log (`-wal`; missing: none). */
function dbBytes(path) {
  const wal = `${path}-wal`
  return Buffer.concat([readFileSync(path), existsSync(wal) ? readFileSync(wal) : Buffer.alloc(0)])
}

/** A JSON store file of an earlier version (`pools.json`, schema 1), written by hand: two
 * pools, a benched key with its counters, a tombstone, an OAuth entry with its tokens. */
function legacyDocument() {
  return {
    format: 'credpool',
    schema_version: 1,
    pools: {
      openrouter: {
        strategy: 'round_robin',
        config_updated_at: 5,
        round_robin: { priority: 0, entry_id: 'a', at: 1000 },
        entries: [
          {
            id: 'a',
            label: 'first',
            access_token: 'sk-legacy-a',
            status: 'exhausted',
            status_at: 1001,
            last_error: { code: 402, reason: null, message: null },
            cooldown_until: 3_601_001,
            failure_class: 'billing',
            failure_streak: 1,
            request_counts: { old: 3, other: 2 },
          },
          { id: 'c', access_token: 'sk-legacy-c', priority: 1, request_counts: { old: 1 } },
        ],
        removed: { b: 1002 },
      },
      anthropic: {
        entries: [
          {
            id: 'o',
            auth_type: 'oauth',
            access_token: 'at-legacy',
            refresh_token: 'rt-legacy',
            expires_at: 5_000_000,
            token_generation: 4,
            token_updated_at: 900,
          },
        ],
      },
    },
  }
}

async function withTwoKeys(path) {
  const store = await open(path, 'w1')
  await store.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
  await store.addEntry('openrouter', { id: 'b', access_token: 'sk-b', priority: 1 }, 0)
  return store
}

/** An oauth entry whose token expired at 1000 (written at 0): an acquire then asks for a refresh. */
async function withOauth(path) {
  const store = await open(path, 'w1')
  await store.addEntry(
    'anthropic',
    { id: 'o', auth_type: 'oauth', access_token: 'at0', refresh_token: 'rt0', expires_at: 1_000 },
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
  assert.equal(store.location, path)
  assert.deepEqual(readFileSync(path).subarray(0, 16), SQLITE_MAGIC, 'an SQLite database')
  assert.deepEqual(await entryIds(path, 'openrouter'), ['a', 'b'])
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
  assert.deepEqual((await entryIds(path, 'openrouter')).sort(), ['a', 'b'])
  assert.deepEqual(await entryIds(path, 'anthropic'), ['c'])
  assert.deepEqual(await entryIds(path, 'openai'), ['d'])
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

test('no write when nothing changed (mtime and bytes of the database and its log)', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  const before = { bytes: dbBytes(path), mtime: statSync(path).mtimeMs, ino: statSync(path).ino }
  await sleep(30)
  assert.equal((await store.tick(5000)).changed, false)
  await store.status(null, 5000)
  await store.exportState()
  await store.credential('openrouter', 'a', 5000)
  await store.checkRefresh('openrouter', 'a', 0, 5000).catch(() => {}) // not an oauth entry
  assert.equal(await codeOf(store.removeEntry('openrouter', 'zz', 5000)), 'unknown_entry')
  assert.equal(await store.reload(), false)
  const after = statSync(path)
  assert.deepEqual(dbBytes(path), before.bytes)
  assert.equal(after.mtimeMs, before.mtime)
  assert.equal(after.ino, before.ino)
  // and a change does write
  await store.setPriority('openrouter', 'b', -1, 5000)
  assert.notDeepEqual(dbBytes(path), before.bytes)
})

test('a corrupt file: code invalid_state, bytes untouched; moveAside on request', { skip }, async () => {
  const path = tempPath()
  writeFileSync(path, '{"format": "credpool", oops')
  const bytes = readFileSync(path)
  assert.equal(await codeOf(open(path, 'w1')), 'invalid_state')
  assert.deepEqual(readFileSync(path), bytes)
  assert.ok(!existsSync(`${path}.db`), 'nothing was migrated')

  const moved = Store.moveAside(path)
  assert.ok(moved.startsWith(`${path}.corrupt-`), moved)
  assert.ok(!existsSync(path))
  assert.deepEqual(readFileSync(moved), bytes)
  const fresh = await open(path, 'w1')
  assert.equal((await fresh.status()).pools.length, 0)
  assert.equal(await codeOf(Promise.resolve().then(() => Store.moveAside(path))), 'io')
})

test('rows damaged under an open store: its writes and reads refuse with invalid_state, nothing written', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  // Another client damages a row, stamped as another process's write would be.
  sqlite(
    path,
    "UPDATE meta SET value = value + 1 WHERE key = 'stamp'; " +
      "UPDATE entries SET doc = 'not json at all', stamp = (SELECT value FROM meta WHERE key = 'stamp') WHERE id = 'a';",
  )
  const bytes = dbBytes(path)
  assert.equal(await codeOf(store.acquire('openrouter', null, 10)), 'invalid_state')
  assert.equal(await codeOf(store.addEntry('openrouter', { id: 'z', access_token: 'sk-z' }, 11)), 'invalid_state')
  assert.equal(await codeOf(store.status()), 'invalid_state')
  assert.deepEqual(dbBytes(path), bytes, 'the damaged database was not written')
  assert.equal(await codeOf(open(path, 'w2')), 'invalid_state', 'a new store refuses it at open')
})

test('a database overwritten in place under an open store: the write is refused, bytes kept', { skip }, async () => {
  const path = tempPath()
  const store = await withTwoKeys(path)
  writeFileSync(path, 'not json at all')
  assert.equal(await codeOf(store.acquire('openrouter', null, 10)), 'invalid_state')
  assert.equal(readFileSync(path, 'utf8'), 'not json at all')
})

test('files that are no credpool store are refused with a code and left untouched', { skip }, async () => {
  const dir = tempDir()
  // A foreign SQLite database.
  const foreign = join(dir, 'foreign.sqlite')
  sqlite(foreign, "CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('hi');")
  // A foreign JSON document (a Hermes auth.json).
  const hermes = join(dir, 'auth.json')
  writeFileSync(hermes, '{"credential_pool": {}}')
  // The marker of a moved store naming no database beside it.
  const marker = join(dir, 'pools.json')
  writeFileSync(marker, JSON.stringify({ format: 'credpool', schema_version: 2, moved_to: '../elsewhere.sqlite' }))
  for (const [path, code] of [
    [foreign, 'foreign_document'],
    [hermes, 'foreign_document'],
    [marker, 'invalid_state'],
  ]) {
    const bytes = readFileSync(path)
    assert.equal(await codeOf(open(path, 'w1')), code, path)
    assert.deepEqual(readFileSync(path), bytes, `${path} changed`)
  }
  assert.ok(!existsSync(join(dir, 'pools.sqlite')) && !existsSync(join(dir, 'auth.sqlite')), 'nothing was migrated')
})

test('a newer layout or schema_version: code unsupported_schema_version, left untouched', { skip }, async () => {
  // A credpool database of a newer layout.
  const path = tempPath()
  await withTwoKeys(path)
  sqlite(path, "UPDATE meta SET value = 99 WHERE key = 'layout';")
  const bytes = dbBytes(path)
  assert.equal(await codeOf(open(path, 'w1')), 'unsupported_schema_version')
  assert.deepEqual(dbBytes(path), bytes)

  // A JSON store of a newer schema_version: neither migrated nor touched.
  const json = join(tempDir(), 'pools.json')
  writeFileSync(json, JSON.stringify({ ...legacyDocument(), schema_version: 999 }))
  const text = readFileSync(json)
  assert.equal(await codeOf(open(json, 'w1')), 'unsupported_schema_version')
  assert.deepEqual(readFileSync(json), text)
  assert.ok(!existsSync(join(json, '..', 'pools.sqlite')), 'no database was created')
})

test('a JSON store of an earlier version migrates losslessly on open; the marker left behind is followed', { skip }, async () => {
  const dir = tempDir()
  const json = join(dir, 'pools.json')
  const doc = legacyDocument()
  writeFileSync(json, JSON.stringify(doc, null, 2), { mode: 0o600 })
  const want = new credpool.Registry({ writer: 'w0', seed: 1, state: doc }).exportState()

  const store = await open(json, 'w1')
  const database = join(dir, 'pools.sqlite')
  assert.equal(store.path, database, 'the store is the database the JSON store moved to')
  assert.equal(store.location, database)
  assert.deepEqual(readFileSync(database).subarray(0, 16), SQLITE_MAGIC)
  assert.deepEqual(await store.exportState(), want, 'the migrated state is what the JSON store held')
  assert.deepEqual(await exported(database), want, 'as a fresh process reads it')

  const text = readFileSync(json, 'utf8')
  const marker = JSON.parse(text)
  assert.equal(marker.format, 'credpool')
  assert.equal(marker.schema_version, 2)
  assert.equal(marker.moved_to, 'pools.sqlite')
  for (const secret of ['sk-legacy-a', 'sk-legacy-c', 'at-legacy', 'rt-legacy']) {
    assert.ok(!text.includes(secret), 'the marker keeps no secret')
  }

  // Opening the old path again follows the marker to the same database; writes are shared.
  const again = await open(json, 'w2', { seed: 2 })
  assert.equal(again.path, database)
  assert.deepEqual(await again.exportState(), want)
  await again.addEntry('openrouter', { id: 'd', access_token: 'sk-d' }, 2000)
  assert.equal((await store.credential('openrouter', 'd', 2001)).access_token, 'sk-d')
  assert.equal(readFileSync(json, 'utf8'), text, 'the marker is not rewritten')
  const use = await store.acquire('openrouter', null, 2002)
  assert.notEqual(use.entry_id, 'a', 'the benched key stays benched after the move')

  // A state document exactly as the JSON store of an earlier version wrote it (core's
  // canonical export) comes back identical; a JSON store whose name already ends in
  // .sqlite moves to `<name>.db`.
  const registry = new credpool.Registry({ writer: 'old', seed: 1 })
  registry.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
  registry.addEntry('openrouter', { id: 'b', access_token: 'sk-b', priority: 1 }, 0)
  const used = registry.acquire('openrouter', null, 1000)
  registry.report('openrouter', used.lease_id, { status: 429 }, 1001)
  registry.seed({ OPENAI_API_KEY: 'sk-env' }, undefined, 1002)
  const canonical = registry.exportState()
  const odd = join(tempDir(), 'legacy.sqlite')
  writeFileSync(odd, JSON.stringify(canonical))
  const moved = await open(odd, 'w1')
  assert.equal(moved.path, `${odd}.db`)
  assert.deepEqual(await moved.exportState(), canonical)
  assert.equal(JSON.parse(readFileSync(odd, 'utf8')).moved_to, 'legacy.sqlite.db')
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
  await withOauth(path)
  const waiter = await open(path, 'w2', { lockTimeoutMs: 150 })
  const { exited } = await holdLock(path, 1000) // another process holds the store's lock
  const t0 = Date.now()
  assert.equal(await codeOf(waiter.acquire('anthropic', null, 1200)), 'lock_timeout')
  assert.ok(Date.now() - t0 >= 140)
  // read-only calls take no lock
  assert.equal((await waiter.status('anthropic', 1200)).type, 'status')
  assert.equal(await exited, 0)
  assert.equal((await waiter.acquire('anthropic', null, 1300)).type, 'refresh')
})

test('a refresh ticket blocks no other write: another store on the path acquires and reports meanwhile; only its beginRefresh waits', { skip }, async () => {
  const path = tempPath()
  const holder = await withOauth(path)
  await holder.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
  await holder.addEntry('openrouter', { id: 'b', access_token: 'sk-b', priority: 1 }, 0)
  const other = await open(path, 'w2', { seed: 2, lockTimeoutMs: 150 })
  const decision = await holder.acquire('anthropic', null, 1000)
  assert.equal(decision.type, 'refresh')
  const start = await holder.beginRefresh('anthropic', 'o', 0, decision.lease_id, 1100)
  assert.equal(start.type, 'needed')

  // The other store's writes neither wait for the ticket nor time out (lockTimeoutMs 150).
  const use = await other.acquire('openrouter', null, 1200)
  assert.equal(use.entry_id, 'a')
  const next = await other.report('openrouter', use.lease_id, { status: 402 }, 1210)
  assert.equal(next.entry_id, 'b')
  await other.report('openrouter', next.lease_id, { status: 200 }, 1220)
  assert.equal((await other.addEntry('openai', { id: 'k', access_token: 'sk-k' }, 1230)).type, 'entry_added')
  const refreshing = await other.acquire('anthropic', null, 1240)
  assert.equal(refreshing.type, 'refresh', 'the other store is told to refresh too')
  // ... but its refresh waits for the lock the ticket holds.
  const t0 = Date.now()
  assert.equal(
    await codeOf(other.beginRefresh('anthropic', 'o', refreshing.generation, refreshing.lease_id, 1250)),
    'lock_timeout',
  )
  assert.ok(Date.now() - t0 >= 140)

  const done = await holder.finishRefresh(start.ticket, { type: 'refreshed', access_token: 'at1', refresh_token: 'rt1', expires_at: 10_000_000 }, 1300)
  assert.equal(done.reason, 'refreshed')
  // Nothing was lost on either side.
  const status = await holder.status('openrouter', 1400)
  assert.deepEqual(
    status.pools[0].entries.map((e) => [e.id, e.request_count]),
    [['a', 1], ['b', 1]],
  )
  assert.equal((await holder.credential('openai', 'k', 1400)).access_token, 'sk-k')
  const adopted = await other.beginRefresh('anthropic', 'o', refreshing.generation, refreshing.lease_id, 1500)
  assert.equal(adopted.type, 'adopted', 'the other store adopts the rotated token')
  assert.equal((await other.credential('anthropic', 'o', 1500)).access_token, 'at1')
})

test("an open ticket holds only this store's refreshes: other calls run at once, a second beginRefresh waits", { skip }, async () => {
  const path = tempPath()
  const store = await withOauth(path)
  const decision = await store.acquire('anthropic', null, 1000)
  const start = await store.beginRefresh('anthropic', 'o', 0, decision.lease_id, 1100)
  assert.equal(start.type, 'needed')
  // writes and reads run while the ticket is out
  assert.equal((await store.addEntry('openrouter', { id: 'k', access_token: 'sk-k' }, 1200)).type, 'entry_added')
  assert.equal((await store.credential('anthropic', 'o', 1150)).access_token, 'at0')
  let done = false
  const queued = store.beginRefresh('anthropic', 'o', 0, decision.lease_id, 1250).then((r) => {
    done = true
    return r
  })
  assert.equal((await store.tick(1260)).type, 'ticked', 'a later write overtakes the waiting beginRefresh')
  await sleep(50)
  assert.equal(done, false, 'the second beginRefresh waits for the ticket')
  const finished = await store.finishRefresh(start.ticket, { type: 'refreshed', access_token: 'at1', refresh_token: 'rt1', expires_at: 1_795_458_420_321 }, 1300)
  assert.deepEqual(finished, { type: 'use', entry_id: 'o', lease_id: decision.lease_id, reason: 'refreshed', changed: true })
  assert.equal((await queued).type, 'adopted', 'then it runs, and adopts the token just rotated')
  assert.equal(await codeOf(store.finishRefresh(start.ticket, { type: 'adopted' })), 'invalid_input')

  // a forgotten ticket: a queued beginRefresh gives up after lockTimeoutMs
  const shortPath = tempPath()
  await withOauth(shortPath)
  const short = await open(shortPath, 'w1', { lockTimeoutMs: 100 })
  const refresh = await short.acquire('anthropic', null, 1000)
  assert.equal(refresh.type, 'refresh')
  const s2 = await short.beginRefresh('anthropic', refresh.entry_id, refresh.generation, refresh.lease_id, 1001)
  assert.equal(s2.type, 'needed')
  assert.equal((await short.tick(1002)).type, 'ticked')
  assert.equal(await codeOf(short.beginRefresh('anthropic', refresh.entry_id, refresh.generation, refresh.lease_id, 1003)), 'lock_timeout')
  assert.equal(short.abandonRefresh(s2.ticket), true)
  const s3 = await short.beginRefresh('anthropic', refresh.entry_id, refresh.generation, refresh.lease_id, 1004)
  assert.equal(s3.type, 'needed')
  assert.equal(short.abandonRefresh(s3.ticket), true)
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

test('refreshWithStore: fn throwing frees the lock, and its token counts as sent: the next refresh never sends it', { skip }, async () => {
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
  // the refresh lock is free: another store takes it at once
  const start = await other.beginRefresh('anthropic', 'o', 0, null, 1100)
  assert.equal(start.type, 'needed')
  assert.equal((await other.credential('anthropic', 'o', 1100)).generation, 0)
  // but fn may have sent rt0 before it threw: confirming finds that send unsettled, so
  // rt0 is never sent again and the entry asks for a new login
  const confirmed = await other.confirmRefresh(start.ticket, 1200)
  assert.equal(confirmed.type, 'adopted')
  assert.equal(confirmed.decision.type, 'fail')
  const entry = (await other.status('anthropic', 1300)).pools[0].entries[0]
  assert.equal(entry.health, 'dead')
})

/** Runs `fn` with the environment variables of `vars` set (`undefined`: unset), then
 * restores them. */
async function withEnv(vars, fn) {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]))
  const set = (values) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  set(vars)
  try {
    return await fn()
  } finally {
    set(saved)
  }
}

test('default path: $CREDPOOL_HOME/pools.sqlite, else $XDG_CONFIG_HOME/credpool/pools.sqlite', { skip }, async () => {
  const dir = join(tempDir(), 'home')
  await withEnv({ CREDPOOL_HOME: dir }, async () => {
    const store = await Store.open(null, { writer: 'w1', seed: 1 })
    assert.equal(store.path, join(dir, 'pools.sqlite'))
    await store.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)
    assert.deepEqual(await entryIds(join(dir, 'pools.sqlite'), 'openrouter'), ['a'])
    const defaults = await Store.open()
    assert.equal(defaults.path, join(dir, 'pools.sqlite'))
    assert.equal((await defaults.credential('openrouter', 'a', 1)).access_token, 'sk-a')
  })
  const xdg = tempDir()
  await withEnv({ CREDPOOL_HOME: undefined, XDG_CONFIG_HOME: xdg }, async () => {
    const store = await Store.open()
    assert.equal(store.path, join(xdg, 'credpool', 'pools.sqlite'))
    assert.ok(!existsSync(store.path), 'opening creates nothing')
  })
})

test('default path: the pools.json of an earlier version found there is migrated into pools.sqlite', { skip }, async () => {
  const dir = tempDir()
  const doc = legacyDocument()
  writeFileSync(join(dir, 'pools.json'), JSON.stringify(doc))
  await withEnv({ CREDPOOL_HOME: dir }, async () => {
    const store = await Store.open(null, { writer: 'w1', seed: 1 })
    assert.equal(store.path, join(dir, 'pools.sqlite'))
    assert.deepEqual(await store.exportState(), new credpool.Registry({ writer: 'w0', seed: 1, state: doc }).exportState())
    assert.equal(JSON.parse(readFileSync(join(dir, 'pools.json'), 'utf8')).schema_version, 2)
    const again = await Store.open(null, { writer: 'w2', seed: 2 })
    assert.equal(again.path, join(dir, 'pools.sqlite'))
  })
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

test('withCredential over Stores: one refresh across stores, the other adopts', { skip }, async () => {
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

test('a 70,000-entry state syncs into a Store and exports back (past napi-rs value cap)', { skip }, async () => {
  const { Registry } = credpool
  const registry = new Registry({ writer: 'big', seed: 1 })
  const entries = Array.from({ length: 70_000 }, (_, i) => ({ type: 'add_entry', pool: 'openrouter', entry: { id: `k${i}`, access_token: `sk-${i}` } }))
  for (const input of entries) registry.handle(input, 0)
  const store = await open(tempPath(), 'w1')
  assert.equal((await store.sync(registry.exportState(), 1)).type, 'synced')
  const state = await store.exportState()
  assert.equal(state.pools.openrouter.entries.length, 70_000)
})

test('FileStore, the name of an earlier version, is the very Store class (deprecated alias)', { skip }, async () => {
  const require = createRequire(import.meta.url)
  assert.equal(typeof Store, 'function')
  assert.equal(credpool.FileStore, Store)
  // the package entry, required and imported (a named ES import needs a static export)
  const main = require('../../bindings-node/main.js')
  assert.equal(main.FileStore, main.Store)
  const { FileStore, Store: ImportedStore } = await import(new URL('../../bindings-node/main.js', import.meta.url).href)
  assert.equal(FileStore, ImportedStore)
  assert.equal(ImportedStore, Store)
  const store = await FileStore.open(tempPath(), { writer: 'w1', seed: 1, durable: false })
  assert.ok(store instanceof Store)
  assert.equal((await store.addEntry('openrouter', { id: 'a', access_token: 'sk-a' }, 0)).type, 'entry_added')
})

test('a store path that is not a regular file (a FIFO) is refused at once with io, never blocking', { skip }, async () => {
  const path = tempPath()
  assert.equal(spawnSync('mkfifo', [path]).status, 0)
  assert.equal(await codeOf(open(path, 'w1', { lockTimeoutMs: 200 })), 'io')
})
