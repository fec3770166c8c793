// The Node conformance runner, one file for both JS implementations: every vector of
// tests/vectors plus the folders named in CREDPOOL_EXTRA_VECTORS (`:`-separated), with the
// semantics of tests/README.md.
// CREDPOOL_IMPL=napi|wasm picks the implementation (see impl.mjs).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join, resolve, dirname, basename } from 'node:path'
import { fileURLToPath } from 'node:url'
import { credpool } from './impl.mjs'

const { Registry } = credpool

const here = dirname(fileURLToPath(import.meta.url))
const dirs = [resolve(here, '../vectors')]
for (const extra of (process.env.CREDPOOL_EXTRA_VECTORS ?? '').split(':')) {
  if (extra) dirs.push(resolve(extra))
}

/** JSON equality, key order ignored, no missing or extra key. */
function jsonEqual(a, b) {
  if (a === b) return true
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
}

/** Subset match: every key of `expected` present in `actual` and matching; arrays same length. */
function subsetMismatch(expected, actual, path = '$') {
  if (expected === null || typeof expected !== 'object') {
    return expected === actual ? null : `${path}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual)) return `${path}: expected an array, got ${JSON.stringify(actual)}`
    if (expected.length !== actual.length) return `${path}: expected length ${expected.length}, got ${actual.length}`
    for (let i = 0; i < expected.length; i++) {
      const m = subsetMismatch(expected[i], actual[i], `${path}[${i}]`)
      if (m) return m
    }
    return null
  }
  if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) {
    return `${path}: expected an object, got ${JSON.stringify(actual)}`
  }
  for (const [k, v] of Object.entries(expected)) {
    if (!Object.hasOwn(actual, k)) return `${path}.${k}: missing`
    const m = subsetMismatch(v, actual[k], `${path}.${k}`)
    if (m) return m
  }
  return null
}

function runVector(v) {
  const options = { writer: v.writer ?? 'w1', seed: v.seed ?? 1 }
  if (v.state !== undefined) options.state = v.state
  const reg = new Registry(options)
  const setupAt = v.setup_at ?? 0
  for (const [i, input] of (v.setup ?? []).entries()) {
    try {
      reg.handle(input, setupAt)
    } catch (e) {
      assert.fail(`setup[${i}] failed: ${e.code}: ${e.message}`)
    }
  }
  for (const [i, step] of v.steps.entries()) {
    const where = `step ${i}${step.note ? ` (${step.note})` : ''}`
    let out
    try {
      out = reg.handle(step.input, step.at)
    } catch (e) {
      assert.ok(e instanceof Error, `${where}: thrown value is not an Error`)
      if (step.error !== undefined) {
        assert.equal(e.code, step.error, `${where}: wrong error code (message: ${e.message})`)
      } else {
        assert.fail(`${where}: unexpected error ${e.code}: ${e.message}`)
      }
      out = undefined
    }
    if (out !== undefined && step.error !== undefined) {
      assert.fail(`${where}: expected error ${step.error}, got ${JSON.stringify(out)}`)
    }
    if (step.expect !== undefined && !jsonEqual(step.expect, out)) {
      assert.fail(`${where}: output mismatch\n expected: ${JSON.stringify(step.expect)}\n   actual: ${JSON.stringify(out)}`)
    }
    if (step.state !== undefined) {
      const m = subsetMismatch(step.state, reg.exportState())
      if (m) assert.fail(`${where}: state mismatch at ${m}`)
    }
  }
}

let count = 0
for (const dir of dirs) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort()
  for (const file of files) {
    count++
    const path = join(dir, file)
    test(`${basename(dir)}/${file}`, () => runVector(JSON.parse(readFileSync(path, 'utf8'))))
  }
}
test('found vectors', () => assert.ok(count > 0, `no vectors in ${dirs.join(', ')}`))
