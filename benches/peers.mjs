// credpool's Node binding next to the closest npm peer doing the same operations, in one
// process:
//   node benches/peers.mjs [--json] [--quick]
// Run by scripts/bench.sh, which installs the peer from npm into $CREDPOOL_CACHE/node-peers
// (never vendored): `key-carousel` ("Resilient LLM key pool with cooldown rotation and
// automatic failover"), whose `LlmKeyPool.run(task)` picks a key, runs the task, and on a
// classified failure cools the key down and runs the task again with the next one.
// credpool's equivalent is `withCredential(registry, pool, fn)` from the package's helpers
// (the napi build), so both sides run the same async shape: pick, call, report, rotate.
//
// Operations, at pool sizes 10, 100 and 1,000 (medians of per-operation timings, each op
// awaited; whatever keeps a pool from running dry happens outside the timer):
// - `run → ok`: the task returns at once. key-carousel picks the least recently used key
//   (a rotation); credpool runs `round_robin`.
// - `run → 429 → rotate → ok`: the first attempt throws an error with `status: 429`, the
//   second returns. credpool's clock moves 2 h per op (past the adaptive policy's 1 h cap),
//   key-carousel's cooldown runs on the wall clock, so its cooled key is cleared
//   (`clearCooldown`) outside the timer.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'

import { withCredential } from '../bindings-node/helpers.mjs'
import { credpool } from '../tests/node/impl.mjs'

const SIZES = [10, 100, 1_000]
const HOUR_MS = 3_600_000
const quick = process.argv.includes('--quick') || !['', '0', undefined].includes(process.env.CREDPOOL_BENCH_QUICK)
const asJson = process.argv.includes('--json') || !['', '0', undefined].includes(process.env.CREDPOOL_BENCH_JSON)
const budgetMs = quick ? 200 : 1_000
const maxOps = 20_000

const rows = []
const notes = []
const log = (line) => (asJson ? process.stderr : process.stdout).write(`${line}\n`)

/** Median ns of `op` (awaited) over a time budget; `restore` runs untimed after each op. */
async function measure(op, restore = async () => {}) {
  for (let i = 0; i < 3; i++) {
    await op()
    await restore()
  }
  const samples = []
  const deadline = performance.now() + budgetMs
  while (samples.length < maxOps && (samples.length < 5 || performance.now() < deadline)) {
    const start = process.hrtime.bigint()
    await op()
    samples.push(Number(process.hrtime.bigint() - start))
    await restore()
  }
  samples.sort((a, b) => a - b)
  return samples[samples.length >> 1]
}

function record(peer, op, n, ns) {
  rows.push({ peer, op, n, ns: Math.round(ns * 10) / 10 })
  log(`${peer.padEnd(13)} ${op.padEnd(28)} ${String(n).padStart(6)} entries ${ns.toFixed(0).padStart(12)} ns`)
}

/** An error a provider SDK would throw for a 429 (both sides read `status`). */
const rateLimited = () => Object.assign(new Error('429 Too Many Requests: rate limit exceeded'), { status: 429 })

async function benchCredpool() {
  for (const n of SIZES) {
    const reg = new credpool.Registry({ writer: 'bench', seed: 1 })
    reg.configurePool('openrouter', { strategy: 'round_robin', policy: { preset: 'adaptive', jitter_percent: 0 } }, 0)
    for (let i = 0; i < n; i++) reg.addEntry('openrouter', { id: `k${i}`, access_token: `sk-or-${i}`, priority: i }, 0)
    let clock = 1_000
    const now = () => clock
    const ok = async () => 'ok'
    record('credpool', 'run → ok', n, await measure(async () => {
      clock += 1
      await withCredential(reg, 'openrouter', ok, { now })
    }))
    record('credpool', 'run → 429 → rotate → ok', n, await measure(async () => {
      clock += 2 * HOUR_MS
      let first = true
      await withCredential(reg, 'openrouter', async () => {
        if (first) {
          first = false
          throw rateLimited()
        }
        return 'ok'
      }, { now })
    }))
  }
}

async function loadKeyCarousel() {
  const cache = process.env.CREDPOOL_CACHE ?? join(homedir(), '.cache/credpool')
  const require = createRequire(join(process.env.CREDPOOL_NODE_PEERS ?? join(cache, 'node-peers'), 'package.json'))
  try {
    // Its CommonJS build; the version from the package.json next to it (not exported).
    const module = require('key-carousel')
    const manifest = join(dirname(dirname(require.resolve('key-carousel'))), 'package.json')
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'))
    return { module, version }
  } catch (error) {
    notes.push(`key-carousel did not load (${error.code ?? error.message}): install it with scripts/bench.sh`)
    return null
  }
}

async function benchKeyCarousel() {
  const loaded = await loadKeyCarousel()
  if (!loaded) return
  const { LlmKeyPool } = loaded.module
  notes.push(
    `key-carousel ${loaded.version} from npm: \`LlmKeyPool.run\` in memory (no \`storagePath\`); ` +
      'it rebuilds and sorts its candidate list on every pick, so its cost grows with the pool.',
  )
  const silent = { debug() {}, info() {}, warn() {}, error() {} }
  for (const n of SIZES) {
    const profiles = Array.from({ length: n }, (_, i) => ({ id: `k${i}`, provider: 'openrouter', apiKey: `sk-or-${i}` }))
    const pool = new LlmKeyPool({ profiles, logger: silent })
    const ok = async () => 'ok'
    record('key-carousel', 'run → ok', n, await measure(() => pool.run(ok, { provider: 'openrouter' })))
    let cooled = null
    record('key-carousel', 'run → 429 → rotate → ok', n, await measure(
      async () => {
        let first = true
        const result = await pool.run(async () => {
          if (first) {
            first = false
            throw rateLimited()
          }
          return 'ok'
        }, { provider: 'openrouter' })
        if (result.attempts.length !== 1) throw new Error(`expected one failed attempt, got ${result.attempts.length}`)
        cooled = result.attempts[0].profileId
      },
      async () => {
        if (cooled) await pool.clearCooldown(cooled)
      },
    ))
  }
}

await benchCredpool()
await benchKeyCarousel()
if (asJson) {
  process.stdout.write(`${JSON.stringify({ bench: 'peers', lang: 'node', sizes: SIZES, rows, notes })}\n`)
}
