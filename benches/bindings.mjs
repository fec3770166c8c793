// Cost of one acquire+report pair through a JS binding, next to a no-op call (`version()`)
// through the same binding: the ratio is what the binding adds on top of FFI itself.
//   CREDPOOL_IMPL=napi|wasm node benches/bindings.mjs [iterations] [--json]
// With --json (or CREDPOOL_BENCH_JSON=1) the table goes to stderr and stdout gets one JSON
// line for benches/report.py. The rows live in bindings-suite.mjs (shared with Chromium).
// Figures are medians of 7 rounds, measured in this one run (compare ratios, not ns).
import { credpool, impl } from '../tests/node/impl.mjs'
import { printBindingBench, runBindingBench } from './bindings-suite.mjs'

const asJson = process.argv.includes('--json') || !['', '0', undefined].includes(process.env.CREDPOOL_BENCH_JSON)
const args = process.argv.slice(2).filter((a) => a !== '--json')
const iterations = Number(args[0] ?? 20_000)

const rows = runBindingBench(credpool, iterations, () => Number(process.hrtime.bigint()))
printBindingBench(impl, iterations, rows, asJson)
