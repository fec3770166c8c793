// simulate (wasm only: the napi build does not expose it): the browser's config preview runs
// the same engine as `credpool simulate` (crate credpool-sim), so the same scenario and seed
// give the same rows, and the same SVG, as the CLI's `--json` and `--svg`.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { simulator as credpool, impl } from './impl.mjs'

const skip = impl === 'wasm' || typeof credpool.simulate === 'function' ? false : `${impl} has no simulate`
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const scenarios = join(root, 'sim/scenarios')
const cache = process.env.CREDPOOL_CACHE ?? join(homedir(), '.cache/credpool')

/** `credpool simulate <args>`: the binary in $CREDPOOL_CLI, else through cargo (which builds
 * the CLI when stale); stdout. */
function cli(args) {
  const [command, prefix] = process.env.CREDPOOL_CLI
    ? [process.env.CREDPOOL_CLI, []]
    : ['cargo', ['run', '-q', '-p', 'credpool-cli', '--']]
  return execFileSync(command, [...prefix, 'simulate', ...args], {
    cwd: root,
    env: { ...process.env, CARGO_TARGET_DIR: process.env.CARGO_TARGET_DIR ?? join(cache, 'target') },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
    timeout: 600_000,
  })
}

function cliJson(args) {
  return JSON.parse(cli(['--json', ...args]))
}

function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-simulate-test-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const small = () => JSON.parse(readFileSync(join(scenarios, 'small.json'), 'utf8'))

function codeOf(fn) {
  try {
    fn()
  } catch (e) {
    assert.ok(e instanceof Error, 'throws a real Error')
    assert.equal(e.name, 'CredpoolError')
    return e.code
  }
  assert.fail('did not throw')
}

test('same scenario and seed: the rows and the SVG of the CLI', { skip }, () => {
  for (const seed of [1, 7]) {
    const dir = tempDir()
    const svgPath = join(dir, 'timeline.svg')
    const expected = cliJson(['--seed', String(seed), '--scenario', join(scenarios, 'small.json'), '--svg', svgPath])
    const result = credpool.simulate(small(), seed)
    for (const field of ['scenario', 'description', 'seed', 'requests', 'agents']) {
      assert.deepEqual(result[field], expected[field], field)
    }
    assert.deepEqual(result.rows, expected.rows, `rows of seed ${seed}`)
    assert.equal(result.svg, readFileSync(svgPath, 'utf8'), `svg of seed ${seed}`)
    assert.deepEqual(credpool.simulate('small', seed).rows, result.rows, 'the small preset is small.json')
  }
})

test('the preview preset: every incident, quickly', { skip }, (t) => {
  const started = performance.now()
  const result = credpool.simulate('preview', 1)
  t.diagnostic(`preview preset (${result.rows.length} rows x ${result.requests} requests): ${(performance.now() - started).toFixed(0)} ms`)
  assert.deepEqual(result.rows, cliJson(['--scenario', join(scenarios, 'preview.json')]).rows)
  for (const events of result.timeline.rows) {
    const outcomes = new Set(events.requests.map((r) => r.outcome))
    assert.deepEqual([...outcomes].sort(), ['auth', 'rate_limited', 'served', 'server_error'])
    assert.ok(events.cooldowns.some((w) => w.dead) && events.cooldowns.some((w) => !w.dead))
    assert.ok(events.fallbacks.length > 0)
  }
})

test('the default scenario, in a browser-sized time', { skip }, (t) => {
  const expected = cliJson([])
  const started = performance.now()
  const result = credpool.simulate()
  const ms = performance.now() - started
  t.diagnostic(`default scenario (${result.rows.length} rows x ${result.requests} requests): ${ms.toFixed(0)} ms`)
  assert.deepEqual(result.rows, expected.rows)
  assert.equal(result.seed, 1)
  assert.deepEqual(credpool.simulate(null, 1).rows, expected.rows)
  assert.deepEqual(credpool.simulate(credpool.defaultScenario(), 1).rows, expected.rows)
  assert.ok(ms < 30_000, `${ms} ms`)
})

test('the timeline is what the rows count', { skip }, () => {
  const scenario = credpool.defaultScenario()
  const result = credpool.simulate(scenario, 3)
  const { timeline } = result
  assert.equal(timeline.start_ms, scenario.start_epoch_s * 1000)
  assert.equal(timeline.agents, scenario.agents)
  assert.deepEqual(
    timeline.keys,
    scenario.pools.flatMap((p) => p.keys.map((k) => ({ pool: p.pool, key: k.id }))),
  )
  const keys = new Set(timeline.keys.map((k) => k.key))
  assert.equal(timeline.rows.length, result.rows.length)
  timeline.rows.forEach((events, i) => {
    const row = result.rows[i]
    assert.deepEqual([events.policy, events.strategy, events.store], [row.policy, row.strategy, row.store])
    const count = (outcome) => events.requests.filter((r) => r.outcome === outcome).length
    assert.equal(count('served'), row.served)
    assert.equal(count('rate_limited'), row.rate_limited)
    assert.equal(events.fallbacks.length, row.fallbacks)
    assert.ok(events.end_ms <= timeline.end_ms)
    for (const r of events.requests) {
      assert.ok(keys.has(r.key), r.key)
      assert.ok(r.agent >= 0 && r.agent < scenario.agents)
      assert.ok(r.t_ms >= 0 && r.t_ms <= events.end_ms)
      assert.ok(['served', 'rate_limited', 'auth', 'server_error'].includes(r.outcome))
    }
    for (const w of events.cooldowns) {
      assert.ok(keys.has(w.key), w.key)
      assert.equal(w.dead, w.until_ms === null)
      if (!w.dead) assert.ok(w.until_ms >= w.from_ms)
    }
    for (const f of events.fallbacks) assert.deepEqual([f.from, f.to], ['anthropic', 'openrouter'])
    assert.ok(events.cooldowns.length > 0, 'keys are benched')
  })
  assert.ok(result.svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'))
  assert.equal(result.svg.split('<g class="panel">').length - 1, result.rows.length)
})

test('defaultScenario is sim/scenarios/default.json; bad input is a coded error', { skip }, () => {
  assert.deepEqual(credpool.defaultScenario(), JSON.parse(readFileSync(join(scenarios, 'default.json'), 'utf8')))
  for (const name of ['default', 'small', 'preview']) {
    assert.deepEqual(credpool.scenarioPreset(name), JSON.parse(readFileSync(join(scenarios, `${name}.json`), 'utf8')))
  }
  assert.equal(codeOf(() => credpool.scenarioPreset('huge')), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate({ ...small(), agents: 0 })), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate({ ...small(), agentz: 2 })), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate('huge')), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate(small(), -1)), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate(small(), 1.5)), 'invalid_input')
  assert.equal(codeOf(() => credpool.simulate(42)), 'invalid_input')
})
