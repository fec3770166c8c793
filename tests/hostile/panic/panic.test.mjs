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

test(`${impl}: the same registry keeps working after the panic (unwinding is caught)`, () => {
  const reg = new Registry({ writer: 'w', seed: 1 })
  reg.handle({ type: 'add_entry', pool: 'p', entry: { id: 'a', access_token: 'sk-test' } }, 0)
  for (let i = 0; i < 100; i++) assert.equal(panicError(reg).code, 'internal')
  assert.equal(reg.handle({ type: 'acquire', pool: 'p' }, 1).type, 'use')
  assert.equal(reg.exportState().pools.p.entries.length, 1)
})

if (impl === 'wasm') {
  test('wasm: every panic, not only the first, is a typed internal error; nothing leaks', () => {
    // panic = "unwind": each panic unwinds to the export's catch_unwind, so std's panic
    // count returns to 0, the shadow stack pointer is restored and wasm-bindgen's borrow of
    // the object ends. Thousands of panics in a row would overflow the shadow stack or
    // trap (`unreachable`) if any of that leaked.
    const other = new Registry({ writer: 'w2', seed: 2 })
    for (let i = 0; i < 5000; i++) {
      const reg = i % 2 ? other : new Registry({ writer: 'w', seed: 1 })
      const e = panicError(reg)
      assert.ok(!(e instanceof WebAssembly.RuntimeError), `trap at panic ${i}: ${e}`)
      assert.equal(e.name, 'CredpoolError', `panic ${i}: ${e}`)
      assert.equal(e.code, 'internal', `panic ${i}: ${e.code} ${e.message}`)
    }
    assert.equal(works(other), 'use')
    assert.equal(works(new Registry({ writer: 'w3', seed: 3 })), 'use')
    // The convenience methods run through the same guard and still work.
    assert.equal(other.acquire('p', undefined, 2).type, 'use')
  })
}
