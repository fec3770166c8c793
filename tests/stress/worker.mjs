// Stress worker over the Node binding's Store (driven by tests/stress/run.py).
//
//   node worker.mjs <store> <writer> <ops> <seed> <log> <refresh-log>
//
// `<store>` is a file path or a Redis URL (`redis://host:port?namespace=NAME`): both open
// with `Store.open(location)`. The same operations and log lines as
// store/examples/stress_worker.rs: one line per acknowledged operation, one synchronous
// write per line (a SIGKILL never leaves half a line). The refresh callback appends
// `use <entry> <old> <new> <writer>` to the shared refresh log (O_APPEND) before it returns
// the new pair. `STRESS_REFRESH_LEASE_MS` sets a Redis refresh lock's lease (default 2000).
//
// Over Redis, an outage is ridden out like the Rust worker does: every call acknowledged
// while Redis was unreachable (its marks queued) is logged `queued`; a refresh, an open or
// a flush that fails with `io` is logged `unavailable` and retried every 20 ms for up to
// 60 s; the store is flushed before a reopen and at the end.

import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const require = createRequire(import.meta.url)
const { Store } = require(join(root, 'bindings-node', 'index.js'))
const { refreshWithStore } = await import(join(root, 'bindings-node', 'helpers.mjs'))

const [storePath, writer, opsText, seedText, logPath, refreshLogPath] = process.argv.slice(2)
if (!refreshLogPath) {
  console.error('usage: worker.mjs <store> <writer> <ops> <seed> <log> <refresh-log>')
  process.exit(2)
}
const ops = Number(opsText)
const seed = Number(BigInt(seedText) % 2n ** 52n)
const refreshLatency = Number(process.env.STRESS_REFRESH_MS ?? 2)

// mulberry32: enough randomness for choosing operations.
let state = (seed ^ 0x6d2b79f5) >>> 0
function below(n) {
  state = (state + 0x6d2b79f5) >>> 0
  let t = state
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (((t ^ (t >>> 14)) >>> 0) % n)
}

const logFd = openSync(logPath, 'a')
const log = (line) => writeSync(logFd, `${line}\n`)

/** One store call; a `lock_timeout` (the input did not happen) is logged and retried; a
 * call acknowledged while changes wait for Redis is logged `queued`. */
let slowest = 0
async function call(fn) {
  for (;;) {
    const start = performance.now()
    try {
      const out = await fn()
      if (store.hasPending()) log('queued')
      return out
    } catch (e) {
      if (e?.code !== 'lock_timeout') throw e
      log('lock_timeout')
    } finally {
      slowest = Math.max(slowest, performance.now() - start)
    }
  }
}

/** How long an outage is ridden out. */
const PATIENCE_MS = 60_000

/** Runs `fn` until it does not fail with `io` (Redis unreachable; `PATIENCE_MS` at most),
 * logging `unavailable` for each failed try; `lock_timeout` is logged and retried too. */
async function untilUp(fn) {
  const since = performance.now()
  for (;;) {
    const start = performance.now()
    try {
      return await fn()
    } catch (e) {
      if (e?.code === 'lock_timeout') {
        log('lock_timeout')
      } else if (e?.code === 'io' && performance.now() - since < PATIENCE_MS) {
        log('unavailable')
        await sleep(20)
      } else {
        throw e
      }
    } finally {
      slowest = Math.max(slowest, performance.now() - start)
    }
  }
}

function expect(decision, type) {
  if (decision.type !== type) throw new Error(`expected a ${type} decision, got ${JSON.stringify(decision)}`)
  return decision
}

const durable = process.env.STRESS_DURABLE !== '0'
const refreshLeaseMs = Number(process.env.STRESS_REFRESH_LEASE_MS ?? 2000)
const open = () => Store.open(storePath, { writer, seed, durable, refreshLeaseMs })
let store = await untilUp(open)
const live = []
let added = 0

async function refresh(n) {
  const d = await call(() => store.acquire('oauth'))
  if (d.type !== 'refresh') {
    // Every OAuth entry died of an interrupted refresh (a worker killed mid-send).
    expect(d, 'fail')
    log('oauth_unavailable')
    return
  }
  log(`select oauth ${d.entry_id}`)
  // A moment between the decision and the refresh, so other processes can act on the
  // same stale token meanwhile (the adopt path).
  await sleep(below(3))
  const newRt = `rt-${writer}-${n}`
  const newAt = `at-${writer}-${n}`
  const decision = await untilUp(() =>
    refreshWithStore(store, 'oauth', d.entry_id, d.generation, d.lease_id, async (cred) => {
      appendFileSync(refreshLogPath, `use ${d.entry_id} ${cred.refresh_token ?? '-'} ${newRt} ${writer}\n`)
      await sleep(refreshLatency) // the provider round trip (the lock is held meanwhile)
      return { type: 'refreshed', access_token: newAt, refresh_token: newRt, expires_at: Date.now() - 1 }
    }),
  )
  if (decision.reason === 'refresh_failed') {
    // An earlier send of this token never settled (its worker was killed): the token is
    // never sent again, the entry is dead, and the request rotates.
    log(`interrupted ${d.entry_id}`)
    if (decision.type === 'use') {
      log(`select oauth ${decision.entry_id}`)
      expect(await call(() => store.report('oauth', decision.lease_id, { status: 200 })), 'done')
    }
    return
  }
  expect(decision, 'use')
  if (decision.entry_id !== d.entry_id) throw new Error(`refresh of ${d.entry_id} answered use ${decision.entry_id}`)
  if (decision.reason === 'refreshed') log(`refreshed ${d.entry_id} ${newRt}`)
  else if (decision.reason === 'adopted') log(`adopted ${d.entry_id}`)
  else throw new Error(`refresh answered reason ${decision.reason}`)
  expect(await call(() => store.report('oauth', decision.lease_id, { status: 200 })), 'done')
}

try {
  for (let n = 0; n < ops; n++) {
    const roll = below(100)
    if (roll < 40) {
      const d = expect(await call(() => store.acquire('keys')), 'use')
      log(`select keys ${d.entry_id}`)
      expect(await call(() => store.report('keys', d.lease_id, { status: 200 })), 'done')
    } else if (roll < 62) {
      await refresh(n)
    } else if (roll < 75) {
      const id = `${writer}-${added++}`
      await call(() => store.addEntry('churn', { id, access_token: `sk-${id}` }))
      log(`add ${id}`)
      live.push(id)
    } else if (roll < 87) {
      if (live.length === 0) continue
      const i = below(live.length)
      const id = live[i]
      live[i] = live[live.length - 1]
      live.pop()
      log(`removing ${id}`)
      await call(() => store.removeEntry('churn', id))
      log(`remove ${id}`)
    } else if (roll < 93) {
      const pool = below(2) === 0 ? 'keys' : 'oauth'
      await call(() => store.reset(pool))
      log(`reset ${pool}`)
    } else {
      // A restart: a fresh store from the file (or Redis), so nothing survives only in
      // memory.
      await untilUp(() => store.flush())
      store = await untilUp(open)
      log('reopen')
    }
  }
  await untilUp(() => store.flush())
  log(`slowest ${Math.floor(slowest)}`)
  log('finished')
  closeSync(logFd)
} catch (e) {
  console.error(`worker.mjs ${writer}: ${e?.code ?? ''} ${e?.stack ?? e}`)
  process.exit(1)
}
