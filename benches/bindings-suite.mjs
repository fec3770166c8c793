// The binding bench's operations, shared by Node (benches/bindings.mjs) and headless
// Chromium (benches/bindings-chromium.mjs): one acquire+report pair and the calls that
// split it, next to a no-op call (`version()`) through the same binding.

/**
 * Runs every row on `credpool` (a napi or wasm module: `Registry`, `version`) and returns
 * `[name, median ns per call]` pairs. `clockNs()` reads a monotonic clock in ns.
 */
export function runBindingBench(credpool, iterations, clockNs) {
  const { Registry, version } = credpool

  /** Median ns per call of `fn` over 7 rounds of `iterations` calls. */
  function measure(fn) {
    for (let i = 0; i < Math.min(iterations, 2_000); i++) fn(i) // warm up
    const rounds = []
    for (let r = 0; r < 7; r++) {
      const start = clockNs()
      for (let i = 0; i < iterations; i++) fn(i)
      rounds.push((clockNs() - start) / iterations)
    }
    return rounds.sort((a, b) => a - b)[3]
  }

  const reg = new Registry({ writer: 'bench', seed: 1 })
  for (let i = 0; i < 8; i++) reg.addEntry('openrouter', { id: `k${i}`, access_token: `sk-bench-${i}` }, 0)
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
  return [
    ['no-op call (version)', noop],
    ['acquire + report', pair],
    ['handle(acquire) + handle(report)', handlePair],
    ['acquire + release', acquireRelease],
    ['credential (reveal)', credential],
    ['acquire(opts) + report(headers)', rotatePair],
  ]
}

/** Prints the rows as a table (`log`) and, with `asJson`, one JSON line for report.py. */
export function printBindingBench(impl, iterations, rows, asJson) {
  const noop = rows[0][1]
  const log = asJson ? console.error : console.log
  log(`credpool ${impl} binding, ${iterations} iterations x 7 rounds, median ns/op`)
  for (const [name, ns] of rows) {
    log(`${name.padEnd(34)} ${ns.toFixed(0).padStart(9)} ns  ${(ns / noop).toFixed(1).padStart(7)}x no-op`)
  }
  if (asJson) {
    const record = { bench: 'bindings', impl, iterations, rows: rows.map(([name, ns]) => ({ name, ns: Math.round(ns * 10) / 10 })) }
    console.log(JSON.stringify(record))
  }
}
