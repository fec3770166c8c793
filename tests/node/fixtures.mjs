// Fixtures shared by the Node tests of the call driver's loops (helpers.test.mjs,
// fetch.test.mjs): a recording registry, the driver's actions in short, a fake clock.
import assert from 'node:assert/strict'

/**
 * A structural RegistryLike over `reg` (a `Registry` or a `Store`) that logs every
 * input the helpers hand core through `handle` and every output: the driver's actions.
 */
export function recording(reg) {
  const inputs = []
  const nows = []
  const log = []
  return {
    inputs,
    nows,
    log,
    // answers as `reg` does: at once for a Registry, with a promise for a Store
    handle: (input, now) => {
      inputs.push(input)
      nows.push(now)
      const keep = (out) => (log.push(out), out)
      const out = reg.handle(input, now)
      return typeof out?.then === 'function' ? out.then(keep) : keep(out)
    },
    credential: (...a) => reg.credential(...a),
    report: (...a) => reg.report(...a),
    // a Store's single-flight refresh, when `reg` has it
    ...(reg.beginRefresh && {
      beginRefresh: (...a) => reg.beginRefresh(...a),
      confirmRefresh: (...a) => reg.confirmRefresh(...a),
      finishRefresh: (...a) => reg.finishRefresh(...a),
      abandonRefresh: (...a) => reg.abandonRefresh(...a),
    }),
  }
}

/** The driver's actions in short: `send b (billing)`, `sleep 5000 (rate_limit)`, ... */
export function steps(rec) {
  return rec.log.map((a, i) => {
    const why = a.reason ? ` (${a.reason})` : ''
    switch (a.type) {
      case 'send':
        return `send ${a.entry_id}${why}`
      case 'sleep':
        return `sleep ${a.until - rec.nows[i]}${why}`
      case 'refresh':
        return `refresh ${a.entry_id}@${a.generation}${why}`
      case 'probe':
        return `probe ${a.entry_id}${why}`
      case 'done':
        return `done ${a.entry_id}`
      case 'give_up':
        return `give_up${why}${a.status ? ` ${a.status}` : ''}${a.budget ? ` ${a.budget}` : ''}`
      default:
        return a.type
    }
  })
}

/** The `call_report`s the helpers sent, in short: `402`, `reset delivered`, ... */
export function reports(rec) {
  return rec.inputs
    .filter((i) => i.type === 'call_report')
    .map((i) => `${i.response.network_error ?? i.response.status}${i.delivered ? ' delivered' : ''}`)
}

/** A deterministic clock; `sleep` advances it and records the delays. */
export function fakeClock(start = 1000) {
  const clock = {
    t: start,
    slept: [],
    now: () => clock.t,
    sleep: async (ms) => {
      clock.slept.push(ms)
      clock.t += ms
    },
  }
  return clock
}

/** Health of one entry from `status`. */
export function entryStatus(reg, pool, id, now) {
  const p = reg.status(pool, now).pools.find((x) => x.pool === pool)
  return p.entries.find((e) => e.id === id)
}

/** A promise and the function that resolves it. */
export function gate() {
  let open
  const promise = new Promise((ok) => (open = ok))
  return { promise, open }
}

/** What `fn` throws, or fails. */
export async function thrown(fn) {
  try {
    await fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
}
