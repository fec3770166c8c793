// Panic safety across FFI, for a JS build made WITH the `test-panic` feature
// (scripts/test-panic.sh): `handle({type: '__test_panic'})` panics where core would run.
// CREDPOOL_PANIC_IMPL=napi|wasm, CREDPOOL_PANIC_MODULE=<path of the module to require>.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'

const impl = process.env.CREDPOOL_PANIC_IMPL
const { Registry } = createRequire(import.meta.url)(resolve(process.env.CREDPOOL_PANIC_MODULE))
const PANIC = { type: '__test_panic' }

function panicError(reg) {
  try {
    reg.handle(PANIC, 0)
  } catch (e) {
    return e
  }
  assert.fail('the forced panic did not throw')
}

function works(reg) {
  reg.handle({ type: 'add_entry', pool: 'p', entry: { access_token: 'sk-test' } }, 0)
  return reg.handle({ type: 'acquire', pool: 'p' }, 1).type
}

test(`${impl}: a panic becomes a catchable Error with code "internal"`, () => {
  const e = panicError(new Registry({ writer: 'w', seed: 1 }))
  assert.ok(e instanceof Error, `not an Error: ${e}`)
  assert.equal(e.code, 'internal', `code ${e.code}: ${e.message}`)
  assert.match(e.message, /panic/)
})

if (impl === 'napi') {
  test('napi: the same registry keeps working after the panic (unwinding is caught)', () => {
    const reg = new Registry({ writer: 'w', seed: 1 })
    reg.handle({ type: 'add_entry', pool: 'p', entry: { id: 'a', access_token: 'sk-test' } }, 0)
    for (let i = 0; i < 100; i++) assert.equal(panicError(reg).code, 'internal')
    assert.equal(reg.handle({ type: 'acquire', pool: 'p' }, 1).type, 'use')
    assert.equal(reg.exportState().pools.p.entries.length, 1)
  })
}

if (impl === 'wasm') {
  test('wasm: the registry that panicked is poisoned (its borrow never ends); it throws, never crashes', () => {
    const reg = new Registry({ writer: 'w', seed: 1 })
    panicError(reg)
    // panic = "abort": the wasm frames were abandoned mid-call, so wasm-bindgen's borrow flag
    // of this object stays set and every later call on it throws a plain Error.
    assert.throws(() => reg.handle({ type: 'status' }, 0), (e) => e instanceof Error && /recursive use|unsafe aliasing|borrow/i.test(e.message))
  })

  test('wasm: later panics still throw catchable errors, untyped; new registries keep working', () => {
    // The hook throws out of std's panic machinery, so std's panic count never returns to 0:
    // every later panic counts as a panic inside a panic and aborts WITHOUT the hook, i.e.
    // the bare trap `RuntimeError: unreachable` (no `code`). Each trap also leaks the
    // shadow-stack space of the abandoned frames. The instance still serves new registries.
    for (let i = 0; i < 200; i++) {
      const e = panicError(new Registry({ writer: 'w', seed: 1 }))
      assert.ok(e instanceof Error, `not an Error: ${e}`)
      assert.ok(e.code === 'internal' || (e instanceof WebAssembly.RuntimeError && /unreachable/.test(e.message)), `${e}`)
    }
    assert.equal(works(new Registry({ writer: 'w2', seed: 2 })), 'use')
  })
}
