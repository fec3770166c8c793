// Cost of one acquire+report pair through a JS binding, next to a no-op call (`version()`)
// through the same binding: the ratio is what the binding adds on top of FFI itself.
//   CREDPOOL_IMPL=napi|wasm node benches/bindings.mjs [iterations] [--json]
// With --json (or CREDPOOL_BENCH_JSON=1) the table goes to stderr and stdout gets one JSON
// line for benches/report.py.
// Figures are medians of 7 rounds, measured in this one run (compare ratios, not ns).
import { credpool, impl } from '../tests/node/impl.mjs'

const { Registry, version } = credpool
const asJson = process.argv.includes('--json') || !['', '0', undefined].includes(process.env.CREDPOOL_BENCH_JSON)
const args = process.argv.slice(2).filter((a) => a !== '--json')
const iterations = Number(args[0] ?? 20_000)

function registry() {
  const reg = new Registry({ writer: 'bench', seed: 1 })
  for (let i = 0; i < 8; i++) reg.addEntry('openrouter', { id: `k${i}`, access_token: `sk-bench-${i}` }, 0)
  return reg
}

/** Median ns per call of `fn` over 7 rounds of `iterations` calls. */
function measure(fn) {
  for (let i = 0; i < Math.min(iterations, 2_000); i++) fn(i) // warm up
  const rounds = []
  for (let r = 0; r < 7; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn(i)
    rounds.push(Number(process.hrtime.bigint() - start) / iterations)
  }
  return rounds.sort((a, b) => a - b)[3]
}

const reg = registry()
let now = 1_000
const noop = measure(() => version())
const pair = measure(() => {
  const use = reg.acquire('openrouter', undefined, ++now)
  reg.report('openrouter', use.lease_id, { status: 200 }, now)
})
const handlePair = measure(() => {
  const use = reg.handle({ type: 'acquire', pool: 'openrouter' }, ++now)
  reg.handle({ type: 'report', pool: 'openrouter', lease_id: use.lease_id, response: { status: 200 } }, now)
})
// Where the pair's time goes: the same calls with a smaller input or output.
const acquireRelease = measure(() => {
  const use = reg.acquire('openrouter', undefined, ++now)
  reg.release('openrouter', use.lease_id, now)
})
const entryId = reg.acquire('openrouter', undefined, ++now).entry_id
const credential = measure(() => reg.credential('openrouter', entryId, now))
const rotatePair = measure(() => {
  const use = reg.acquire('openrouter', { model: 'm', session: 's' }, ++now)
  reg.report('openrouter', use.lease_id, { status: 200, headers: { 'x-request-id': 'r' } }, now)
})
const rows = [
  ['no-op call (version)', noop],
  ['acquire + report', pair],
  ['handle(acquire) + handle(report)', handlePair],
  ['acquire + release', acquireRelease],
  ['credential (reveal)', credential],
  ['acquire(opts) + report(headers)', rotatePair],
]
const log = asJson ? console.error : console.log
log(`credpool ${impl} binding, ${iterations} iterations x 7 rounds, median ns/op`)
for (const [name, ns] of rows) {
  log(`${name.padEnd(34)} ${ns.toFixed(0).padStart(9)} ns  ${(ns / noop).toFixed(1).padStart(7)}x no-op`)
}
if (asJson) {
  const record = { bench: 'bindings', impl, iterations, rows: rows.map(([name, ns]) => ({ name, ns: Math.round(ns * 10) / 10 })) }
  console.log(JSON.stringify(record))
}
