// The JS helpers (bindings-node/helpers.mjs) against either implementation, with real
// objects: fetch `Response`s, a local HTTP server hit by real `fetch`, and the real
// `openai` SDK against that server. `withCredential` is a loop over core's call driver,
// so its tests read the driver's actions.
//   CREDPOOL_IMPL=napi  (default) the napi build in bindings-node/
//   CREDPOOL_IMPL=wasm  the wasm nodejs build in $CREDPOOL_WASM_PKG
//                       (default $CREDPOOL_CACHE/wasm-pkg/nodejs)
// Needs `npm install` in tests/node (the `openai` devDependency).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { inspect, format } from 'node:util'
import OpenAI from 'openai'
import { credpool, impl } from './impl.mjs'
import {
  responseInfo,
  reportResponse,
  withCredential,
  CredentialPool,
  CredpoolError,
} from '../../bindings-node/helpers.mjs'
import { recording, steps, reports, fakeClock, entryStatus, gate, thrown } from './fixtures.mjs'

const { Registry, Store } = credpool

// ---------------------------------------------------------------------------------------
// Fixtures

/** A registry with `entries` (`[id, token, extra?]`) in `pool`, added at 0. */
function makeRegistry(entries = [['a', 'sk-test-a'], ['b', 'sk-test-b']], pool = 'openrouter', setup = []) {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  for (const input of setup) reg.handle(input, 0)
  for (const [id, token, extra] of entries) reg.addEntry(pool, { id, access_token: token, ...extra }, 0)
  return reg
}

const OK = {
  status: 200,
  body: {
    id: 'chatcmpl-1',
    object: 'chat.completion',
    created: 1,
    model: 'gpt-test',
    choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
  },
}

// A local provider: answers `route(authorization)` when it gives a reply, else the
// scripted replies in order, then 200; records the Authorization header of every request.
// A reply `{ stream(res) }` writes the response itself.
const server = {
  http: null,
  url: '',
  script: [],
  route: null,
  seen: [],
  reset(script, route = null) {
    this.script = [...script]
    this.route = route
    this.seen = []
  },
}
/** A port with nothing listening (a server bound then closed). */
let closedPort

before(async () => {
  server.http = createServer((req, res) => {
    res.on('error', () => {})
    let raw = ''
    req.on('data', (c) => (raw += c))
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions') {
        // probes (aborted fetches may still arrive) neither consume the script nor count
        res.writeHead(404).end()
        return
      }
      const auth = req.headers.authorization ?? null
      server.seen.push(auth)
      const reply = server.route?.(auth) ?? server.script.shift() ?? OK
      if (reply.stream) return reply.stream(res)
      const body = typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body ?? {})
      res.writeHead(reply.status, {
        'content-type': typeof reply.body === 'string' ? 'text/plain' : 'application/json',
        ...reply.headers,
      })
      res.end(body)
    })
  })
  await new Promise((ok) => server.http.listen(0, '127.0.0.1', ok))
  server.url = `http://127.0.0.1:${server.http.address().port}`
  const probe = createServer()
  await new Promise((ok) => probe.listen(0, '127.0.0.1', ok))
  closedPort = probe.address().port
  await new Promise((ok) => probe.close(ok))
})

after(async () => {
  server.http.closeAllConnections?.()
  await new Promise((ok) => server.http.close(ok))
})

/** One server-sent event of an OpenAI chat completion stream. */
const sse = (content) =>
  `data: ${JSON.stringify({
    id: 'chatcmpl-1',
    object: 'chat.completion.chunk',
    created: 1,
    model: 'gpt-test',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  })}\n\n`

/**
 * A streamed 200 (`text/event-stream`): writes the first event, waits for `gate`, writes
 * the others and `[DONE]`; with `fail`, the connection is cut after the first event
 * instead (`fail: 'before'`: after the headers, before any body byte).
 */
function streamed(contents, { gate = Promise.resolve(), fail = null } = {}) {
  return {
    stream: async (res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
      if (fail === 'before') {
        res.flushHeaders()
        setTimeout(() => res.socket?.destroy(), 50)
        return
      }
      await new Promise((ok) => res.write(sse(contents[0]), ok))
      await gate
      if (fail) return res.socket?.destroy()
      for (const content of contents.slice(1)) res.write(sse(content))
      res.end('data: [DONE]\n\n')
    },
  }
}

/** `fetch` the local provider with the credential, as a host would. */
function callFetch(credential) {
  return fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${credential.accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-test', messages: [] }),
  })
}

/** A chat completion through the real `openai` SDK against `baseURL`. */
function callOpenAI(credential, baseURL = `${server.url}/v1`) {
  const client = new OpenAI({ apiKey: credential.accessToken, baseURL, maxRetries: 0, timeout: 5000 })
  return client.chat.completions.create({ model: 'gpt-test', messages: [{ role: 'user', content: 'hi' }] })
}

/** `report` on a lease must fail: the call released it. */
function assertReleased(raw, pool, leaseId, now) {
  assert.throws(() => raw.report(pool, leaseId, { status: 200 }, now), (e) => e.code === 'unknown_lease')
}

const bearer = (key) => `Bearer ${key}`
const quota = {
  error: {
    message: 'You exceeded your current quota, please check your plan and billing details.',
    type: 'insufficient_quota',
    param: null,
    code: 'insufficient_quota',
  },
}

// ---------------------------------------------------------------------------------------
// responseInfo

test('responseInfo: a fetch Response (status, lower-cased headers, JSON body, original unread)', async () => {
  const body = { error: { message: 'slow down' } }
  const res = new Response(JSON.stringify(body), { status: 429, headers: { 'Retry-After': '20', 'X-Thing': 'y' } })
  const info = await responseInfo(res)
  assert.equal(info.status, 429)
  assert.equal(info.headers['retry-after'], '20')
  assert.equal(info.headers['x-thing'], 'y')
  assert.ok(!Object.keys(info.headers).some((k) => k !== k.toLowerCase()))
  assert.deepEqual(info.body, body)
  assert.equal(res.bodyUsed, false)
  assert.deepEqual(await res.json(), body)
})

test('responseInfo: text bodies, 64 KiB bound, success bodies not read', async () => {
  assert.deepEqual(await responseInfo(new Response('upstream exploded', { status: 502 })), {
    status: 502,
    headers: { 'content-type': 'text/plain;charset=UTF-8' },
    body: 'upstream exploded',
  })
  const big = await responseInfo(new Response('x'.repeat(200_000), { status: 500 }))
  assert.equal(typeof big.body, 'string')
  assert.equal(big.body.length, 64 * 1024)
  const ok = await responseInfo(new Response(JSON.stringify({ fine: true }), { status: 200 }))
  assert.equal(ok.status, 200)
  assert.equal(ok.body, undefined)
  // a body already consumed: status and headers only
  const used = new Response('gone', { status: 503 })
  await used.text()
  assert.deepEqual(await responseInfo(used), { status: 503, headers: { 'content-type': 'text/plain;charset=UTF-8' } })
})

test('responseInfo: real fetch against the local server, and fetch network failures', async () => {
  server.reset([{ status: 402, headers: { 'Retry-After': '7' }, body: { error: { message: 'no credit' } } }])
  const info = await responseInfo(await callFetch({ accessToken: 'sk-x' }))
  assert.equal(info.status, 402)
  assert.equal(info.headers['retry-after'], '7')
  assert.deepEqual(info.body, { error: { message: 'no credit' } })

  const failed = await thrown(() => fetch(`http://127.0.0.1:${closedPort}/v1`))
  assert.equal(failed.name, 'TypeError')
  assert.deepEqual(await responseInfo(failed), { network_error: 'connect' })

  const timedOut = await thrown(() => fetch(`${server.url}/v1`, { signal: AbortSignal.timeout(0) }))
  assert.deepEqual(await responseInfo(timedOut), { network_error: 'timeout' })
  const controller = new AbortController()
  controller.abort()
  const aborted = await thrown(() => fetch(`${server.url}/v1`, { signal: controller.signal }))
  assert.equal(aborted.name, 'AbortError')
  assert.deepEqual(await responseInfo(aborted), { network_error: 'abort' })
  assert.deepEqual(await responseInfo(new DOMException('t', 'TimeoutError')), { network_error: 'timeout' })
})

test('responseInfo: the openai SDK error family', async () => {
  server.reset([{ status: 429, headers: { 'retry-after': '20' }, body: quota }])
  const rate = await thrown(() => callOpenAI({ accessToken: 'sk-x' }))
  assert.ok(rate instanceof OpenAI.RateLimitError)
  const info = await responseInfo(rate)
  assert.equal(info.status, 429)
  assert.equal(info.headers['retry-after'], '20')
  assert.deepEqual(info.body, quota)

  server.reset([{ status: 401, body: { error: { message: 'bad key', code: 'invalid_api_key' } } }])
  const auth = await thrown(() => callOpenAI({ accessToken: 'sk-x' }))
  assert.ok(auth instanceof OpenAI.AuthenticationError)
  assert.equal((await responseInfo(auth)).status, 401)

  const conn = await thrown(() => callOpenAI({ accessToken: 'sk-x' }, `http://127.0.0.1:${closedPort}/v1`))
  assert.ok(conn instanceof OpenAI.APIConnectionError)
  assert.deepEqual(await responseInfo(conn), { network_error: 'connect' })
  assert.deepEqual(await responseInfo(new OpenAI.APIConnectionTimeoutError()), { network_error: 'timeout' })
  // the caller's own abort is no provider outcome
  assert.equal(await responseInfo(new OpenAI.APIUserAbortError()), null)
})

test('responseInfo: plain objects; null for unrelated values', async () => {
  assert.deepEqual(await responseInfo({ status: 402 }), { status: 402 })
  assert.deepEqual(await responseInfo({ status: 429, headers: { 'Retry-After': '3' }, body: '{"a":1}' }), {
    status: 429,
    headers: { 'retry-after': '3' },
    body: { a: 1 },
  })
  assert.deepEqual(await responseInfo({ network_error: 'reset' }), { network_error: 'reset' })
  for (const v of [new Error('bug'), new RangeError('x'), new TypeError('undefined is not a function'), 'str', 42, null, undefined, {}]) {
    assert.equal(await responseInfo(v), null, inspect(v))
  }
})

// ---------------------------------------------------------------------------------------
// reportResponse

test('reportResponse: a real 402 Response rotates to the other key (out_billing_402_rotates_at_once)', async () => {
  const reg = makeRegistry()
  const use = reg.acquire('openrouter', {}, 1000)
  assert.equal(use.entry_id, 'a')
  const next = await reportResponse(reg, 'openrouter', use.lease_id, new Response('{}', { status: 402 }), 2000)
  assert.deepEqual(next, { type: 'use', entry_id: 'b', lease_id: 2, changed: true, reason: 'billing' })
  assert.equal(entryStatus(reg, 'openrouter', 'a', 2000).health === 'available', false)
  await assert.rejects(reportResponse(reg, 'openrouter', 2, new Error('bug'), 2000), TypeError)
})

test('reportResponse: Retry-After 20 retries the same key with the hint (cls_retry_after_20_...)', async () => {
  const reg = makeRegistry()
  const use = reg.acquire('openrouter', {}, 1000)
  const res = new Response(JSON.stringify({ error: { message: 'rate limited' } }), { status: 429, headers: { 'retry-after': '20' } })
  const d = await new CredentialPool(reg, 'openrouter').reportResponse(use.lease_id, res, 2000)
  assert.deepEqual(d, {
    type: 'retry_same',
    entry_id: 'a',
    lease_id: 1,
    delay_ms: 20000,
    reason: 'rate_limit',
    hint: { source: 'retry_after', at: 22000, clamped: false },
    changed: false,
  })
})

// ---------------------------------------------------------------------------------------
// withCredential with fetch

test('withCredential + fetch: a returned 402 rotates to the other key; the server saw both keys', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 402, body: { error: { message: 'Insufficient credits' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  assert.equal((await res.json()).object, 'chat.completion')
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
  assert.deepEqual(steps(reg), ['send a', 'send b (billing)', 'done b'])
  assert.deepEqual(reports(reg), ['402', '200 delivered'])
  assert.deepEqual(clock.slept, [])
})

test('withCredential + fetch: a returned 401 on an api key marks it and rotates (call_returned_401_api_key_rotates)', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  server.reset([{ status: 401, body: { error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(steps(reg), ['send a', 'send b (auth)', 'done b'])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'auth_failed')
})

test('withCredential + fetch: returned 429s rotate, and a benched key is not called again in that call', async () => {
  const raw = makeRegistry([['a', 'sk-test-a'], ['b', 'sk-test-b'], ['c', 'sk-test-c']])
  const reg = recording(raw)
  const clock = fakeClock()
  // a and b are rate limited whatever happens; c answers.
  server.reset([], (auth) => (auth === bearer('sk-test-c') ? undefined : { status: 429, body: { error: { message: 'Rate limit reached' } } }))
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  // hermes: the first 429 retries the same key, the second marks it and rotates
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-a'), bearer('sk-test-b'), bearer('sk-test-b'), bearer('sk-test-c')])
  assert.deepEqual(steps(reg), [
    'send a',
    'sleep 5000 (rate_limit)',
    'send a (rate_limit)',
    'send b (rate_limit)',
    'sleep 10000 (rate_limit)',
    'send b (rate_limit)',
    'send c (rate_limit)',
    'done c',
  ])
  assert.deepEqual(reports(reg), ['429', '429', '429', '429', '200 delivered'])
  for (const id of ['a', 'b']) assert.equal(entryStatus(raw, 'openrouter', id, clock.t).health, 'rate_limited')
  assert.deepEqual(clock.slept, [5000, 10000])

  // The next call, with c limited too: the benched a and b are not called, c is, and when
  // the call gives up its last 429 comes back as fetch would.
  server.reset([], () => ({ status: 429, body: { error: { message: 'Rate limit reached' } } }))
  const again = recording(raw)
  const limited = await withCredential(again, 'openrouter', callFetch, fakeClock(clock.t))
  assert.equal(limited.status, 429)
  assert.deepEqual(await limited.json(), { error: { message: 'Rate limit reached' } })
  assert.ok(!server.seen.includes(bearer('sk-test-a')) && !server.seen.includes(bearer('sk-test-b')), server.seen.join())
  assert.equal(again.log.at(-1).type, 'give_up')
})

test('withCredential + fetch: hermes 429 retries the same key after 5 s, then rotates (call_returned_429_retries_same_then_rotates)', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 429 }, { status: 429 }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.ok, true)
  await res.arrayBuffer()
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-a'), bearer('sk-test-b')])
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (rate_limit)', 'send a (rate_limit)', 'send b (rate_limit)', 'done b'])
  assert.deepEqual(clock.slept, [5000])
})

test('withCredential + fetch: Retry-After 20 sleeps exactly the hint', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 429, headers: { 'retry-after': '20' } }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(clock.slept, [20000])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-a')])
  assert.equal(reg.log[1].hint.source, 'retry_after')
})

test('withCredential + fetch: a 400 client error gives up without a mark and returns the response', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  server.reset([{ status: 400, body: { error: { message: 'bad request' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 400)
  assert.deepEqual(await res.json(), { error: { message: 'bad request' } })
  assert.deepEqual(steps(reg), ['send a', 'give_up (client_error) 400'])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
  assertReleased(raw, 'openrouter', 1, 2000)
})

test('withCredential + fetch: sole key, two 429s, wait 60 s then succeed', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  const clock = fakeClock()
  server.reset([{ status: 429 }, { status: 429 }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (rate_limit)', 'send a (rate_limit)', 'sleep 60000 (rate_limit)', 'send a', 'done a'])
  assert.deepEqual(clock.slept, [5000, 60000])
})

test('withCredential + fetch: a wait beyond maxWaitMs returns the last 429 response', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  server.reset([{ status: 429 }, { status: 429, body: { error: { message: 'still limited' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, { ...fakeClock(), maxWaitMs: 10_000 })
  assert.equal(res.status, 429)
  assert.deepEqual(await res.json(), { error: { message: 'still limited' } })
  assert.equal(steps(reg).at(-1), 'give_up (rate_limit) 429 max_wait_ms')
  assert.deepEqual(reg.inputs[0], { type: 'call_start', pool: 'openrouter', max_wait_ms: 10_000, can_refresh: 'built_in' })
  // the next call finds the key cooling down: no credential, and the action says why and until when
  const err = await thrown(() => withCredential(reg, 'openrouter', callFetch, { ...fakeClock(9000), maxWaitMs: 10_000 }))
  assert.ok(err instanceof CredpoolError)
  assert.equal(err.code, 'no_credential')
  assert.equal(err.action.type, 'give_up')
  assert.equal(err.action.reason, 'all_cooling_down')
  assert.equal(err.action.budget, 'max_wait_ms')
  assert.equal(typeof err.action.until, 'number')
})

test('withCredential: budgets are the driver inputs, omitted when not given', async () => {
  const reg = recording(makeRegistry())
  await withCredential(reg, 'openrouter', () => 'ok', fakeClock())
  await withCredential(reg, 'openrouter', () => 'ok', {
    ...fakeClock(),
    model: 'gpt-test',
    session: 's1',
    maxSends: 2,
    maxWaitMs: 1000,
    maxTotalWaitMs: 3000,
    maxHops: 0,
  })
  const starts = reg.inputs.filter((i) => i.type === 'call_start')
  assert.deepEqual(starts, [
    { type: 'call_start', pool: 'openrouter', can_refresh: 'built_in' },
    { type: 'call_start', pool: 'openrouter', model: 'gpt-test', session: 's1', max_sends: 2, max_wait_ms: 1000, max_total_wait_ms: 3000, max_hops: 0, can_refresh: 'built_in' },
  ])
  await withCredential(reg, 'openrouter', () => 'ok', { ...fakeClock(), refresh: () => ({ type: 'failed' }) })
  assert.deepEqual(reg.inputs.filter((i) => i.type === 'call_start').at(-1), { type: 'call_start', pool: 'openrouter' })
  await assert.rejects(withCredential(reg, 'openrouter', () => 'ok', { maxAttempts: 3 }), TypeError)
})

test('withCredential: fallback switches pool and model (call_fallback_switches_pool_and_model)', async () => {
  const reg = makeRegistry([['a', 'sk-test-a']], 'openrouter', [
    { type: 'configure_pool', pool: 'openrouter', fallback: [{ pool: 'anthropic', model: 'claude' }] },
  ])
  reg.addEntry('anthropic', { id: 'c', access_token: 'sk-ant-c' }, 0)
  const rec = recording(reg)
  const seen = []
  server.reset([{ status: 429 }])
  const res = await withCredential(
    rec,
    'openrouter',
    (c) => {
      seen.push([c.pool, c.model, c.entryId, c.authType])
      return callFetch(c)
    },
    { ...fakeClock(), model: 'gpt-test' },
  )
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(seen, [
    ['openrouter', 'gpt-test', 'a', 'api_key'],
    ['anthropic', 'claude', 'c', 'api_key'],
  ])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-ant-c')])
  assert.deepEqual(steps(rec), ['send a', 'send c', 'done c'])
  assert.equal(rec.log[1].pool, 'anthropic')
})

test('withCredential: a non-Response value reports success and is returned', async () => {
  const reg = recording(makeRegistry())
  const value = await withCredential(reg, 'openrouter', async (c) => ({ answer: 42, entry: c.entryId }), fakeClock())
  assert.deepEqual(value, { answer: 42, entry: 'a' })
  assert.deepEqual(reg.inputs.slice(1), [{ type: 'call_report', call_id: 1, response: { status: 200 } }])
  assert.deepEqual(steps(reg), ['send a', 'done a'])
})

// ---------------------------------------------------------------------------------------
// withCredential with the openai SDK

test('withCredential + openai: insufficient_quota 429 is billing and rotates at once', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a'], ['b', 'sk-test-b']], 'openai'))
  const clock = fakeClock()
  server.reset([{ status: 429, body: quota }])
  const completion = await withCredential(reg, 'openai', (c) => callOpenAI(c), clock)
  assert.equal(completion.choices[0].message.content, 'hi')
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
  assert.deepEqual(steps(reg), ['send a', 'send b (billing)', 'done b'])
  assert.deepEqual(clock.slept, [])
})

test('withCredential + openai: 401 on an api key marks it and rotates', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 401, body: { error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } } }])
  const completion = await withCredential(reg, 'openrouter', (c) => callOpenAI(c), fakeClock())
  assert.equal(completion.object, 'chat.completion')
  assert.deepEqual(steps(reg), ['send a', 'send b (auth)', 'done b'])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
})

test('withCredential + openai: a 402 rotates', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 402, body: { error: { message: 'Insufficient credits' } } }])
  const completion = await withCredential(reg, 'openrouter', (c) => callOpenAI(c), fakeClock())
  assert.equal(completion.object, 'chat.completion')
  assert.deepEqual(steps(reg), ['send a', 'send b (billing)', 'done b'])
})

test('withCredential + openai: RateLimitError is rethrown when the call gives up', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  server.reset([{ status: 429 }, { status: 429 }])
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c), { ...fakeClock(), maxWaitMs: 10_000 }))
  assert.ok(err instanceof OpenAI.RateLimitError)
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (rate_limit)', 'send a (rate_limit)', 'give_up (rate_limit) 429 max_wait_ms'])
})

test('withCredential + openai: BadRequestError on give_up is rethrown', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 400, body: { error: { message: 'bad model' } } }])
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c), fakeClock()))
  assert.ok(err instanceof OpenAI.BadRequestError)
  assert.equal(steps(reg).at(-1), 'give_up (client_error) 400')
})

test('withCredential + openai: APIConnectionError retries the same key without a mark until maxSends, then is rethrown and the lease released', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  const clock = fakeClock()
  const closed = `http://127.0.0.1:${closedPort}/v1`
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c, closed), { ...clock, maxSends: 2 }))
  assert.ok(err instanceof OpenAI.APIConnectionError)
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (network_error)', 'send a (network_error)', 'give_up (network_error) max_sends'])
  assert.deepEqual(reports(reg), ['connect', 'connect'])
  assertReleased(raw, 'openrouter', 1, clock.t)
  assert.equal(entryStatus(raw, 'openrouter', 'a', clock.t).health, 'available')
})

// ---------------------------------------------------------------------------------------
// OAuth refresh

const oauthSetup = [
  ['a', 'oauth-access-a', { auth_type: 'oauth', refresh_token: 'oauth-refresh-a' }],
  ['b', 'sk-test-b'],
]

test('withCredential: 401 on an oauth entry refreshes and resends under the same lease (call_oauth_401_refresh_then_done)', async () => {
  const reg = recording(makeRegistry(oauthSetup))
  const refreshed = []
  server.reset([{ status: 401, body: { error: { message: 'token expired' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, {
    ...fakeClock(),
    refresh: async (credential) => {
      refreshed.push([credential.entryId, credential.generation, credential.refreshToken, credential.authType])
      return { type: 'refreshed', access_token: 'oauth-access-a2', refresh_token: 'oauth-refresh-a2' }
    },
  })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(refreshed, [['a', 0, 'oauth-refresh-a', 'oauth']])
  assert.deepEqual(server.seen, [bearer('oauth-access-a'), bearer('oauth-access-a2')])
  assert.deepEqual(steps(reg), ['send a', 'refresh a@0 (auth)', 'send a (refreshed)', 'done a'])
  assert.equal(reg.inputs[2].type, 'call_refreshed')
  assert.equal(reg.log[2].lease_id, reg.log[0].lease_id)
})

test('withCredential: an oauth entry answering one 401 per call refreshes on every call (each call has its own refresh budget)', async () => {
  const raw = makeRegistry([['a', 'at-0', { auth_type: 'oauth', refresh_token: 'rt-0' }]])
  const clock = fakeClock()
  let requests = 0
  // every call's first request is refused: the token expired since the call before
  server.reset([], () => (++requests % 2 === 1 ? { status: 401, body: { error: { message: 'token expired' } } } : undefined))
  const refreshed = []
  const refresh = async (credential) => {
    const n = refreshed.push([credential.generation, credential.refreshToken])
    return { type: 'refreshed', access_token: `at-${n}`, refresh_token: `rt-${n}` }
  }
  for (let call = 1; call <= 5; call++) {
    const reg = recording(raw)
    const res = await withCredential(reg, 'openrouter', callFetch, { ...clock, refresh })
    assert.equal(res.status, 200, `call ${call}`)
    await res.arrayBuffer()
    assert.deepEqual(steps(reg), ['send a', 'refresh a@' + (call - 1) + ' (auth)', 'send a (refreshed)', 'done a'], `call ${call}`)
    clock.t += 1000
  }
  assert.deepEqual(refreshed, [[0, 'rt-0'], [1, 'rt-1'], [2, 'rt-2'], [3, 'rt-3'], [4, 'rt-4']])
  assert.equal(server.seen.at(-1), bearer('at-5'))
  assert.equal(entryStatus(raw, 'openrouter', 'a', clock.t).health, 'available')
})

test('withCredential without a refresh callback: the call starts with can_refresh built_in, so a 401 on an OAuth key of a pool without a built-in refresher is marked and rotated, never a refresh', async () => {
  const raw = makeRegistry(oauthSetup)
  const reg = recording(raw)
  server.reset([{ status: 401 }])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 200)
  assert.equal(reg.inputs[0].can_refresh, 'built_in') // openrouter has no built-in refresher
  assert.ok(!steps(reg).some((s) => s.startsWith('refresh')), steps(reg).join(', '))
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'auth_failed')
})

test('withCredential: a refresh callback that throws cancels the call and its error comes back', async () => {
  const raw = makeRegistry(oauthSetup)
  const reg = recording(raw)
  server.reset([{ status: 401 }])
  const boom = new Error('oauth endpoint down')
  const err = await thrown(() =>
    withCredential(reg, 'openrouter', callFetch, {
      ...fakeClock(),
      refresh: () => {
        throw boom
      },
    }),
  )
  assert.equal(err, boom)
  assert.deepEqual(steps(reg), ['send a', 'refresh a@0 (auth)', 'call_cancelled'])
  assertReleased(raw, 'openrouter', 1, 5000)
})

test('withCredential over a Store: a refresh adopts the token another process rotated meanwhile, never replaying it', { skip: impl === 'wasm' && 'the wasm build has no persisted store' }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'credpool-helpers-test-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'pools.sqlite')
  const open = (writer) => Store.open(path, { writer, seed: 1, durable: false })
  const mine = await open('mine')
  await mine.addEntry('anthropic', { id: 'o', auth_type: 'oauth', access_token: 'at-0', refresh_token: 'rt-0' }, 0)
  const other = await open('other')
  // the provider accepts only the rotated token
  server.reset([], (auth) => (auth === bearer('at-1') ? undefined : { status: 401, body: { type: 'error', error: { type: 'authentication_error', message: 'token expired' } } }))
  const refreshedBy = []
  const refreshAs = (who) => async (credential) => {
    refreshedBy.push([who, credential.refreshToken])
    return { type: 'refreshed', access_token: 'at-1', refresh_token: 'rt-1' }
  }
  let clock = 2_000
  const now = () => clock++
  // Between our call hearing `refresh` (for generation 0) and our taking the store's lock,
  // another process (its own store on the same database) hits the same 401 and rotates.
  const rec = recording(mine)
  const handle = rec.handle
  rec.handle = async (input, at) => {
    const out = await handle(input, at)
    if (out.type === 'refresh' && refreshedBy.length === 0) {
      const theirs = await withCredential(other, 'anthropic', callFetch, { refresh: refreshAs('other'), now })
      assert.equal(theirs.status, 200)
      await theirs.arrayBuffer()
    }
    return out
  }
  const res = await withCredential(rec, 'anthropic', callFetch, { refresh: refreshAs('mine'), now })
  assert.equal(res.status, 200)
  await res.arrayBuffer()
  assert.deepEqual(refreshedBy, [['other', 'rt-0']], 'rt-0 was used once, by the other process; ours adopted')
  assert.deepEqual(server.seen, [bearer('at-0'), bearer('at-0'), bearer('at-1'), bearer('at-1')])
  assert.deepEqual(steps(rec), ['send o', 'refresh o@0 (auth)', 'send o (adopted)', 'done o'])
  assert.equal(rec.inputs[2].type, 'call_resume')
  assert.equal((await mine.credential('anthropic', 'o')).refresh_token, 'rt-1')
})

// ---------------------------------------------------------------------------------------
// Streams

/**
 * A call whose provider streams `Hel`, then (once `rest.open()`) `lo` and `[DONE]`, or
 * with `fail: 'midway'` cuts the connection instead: the registry, its recording, the gate
 * and the `Response` withCredential returned.
 */
async function streamCall(fail = null) {
  const raw = makeRegistry()
  const reg = recording(raw)
  const rest = gate()
  server.reset([streamed(['Hel', 'lo'], { gate: rest.promise, fail })])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 200)
  return { raw, reg, rest, res }
}

test('withCredential + fetch: a stream comes back at its first chunk and is reported done only at its end', async () => {
  const { reg, rest, res } = await streamCall()
  assert.equal(res.headers.get('content-type'), 'text/event-stream')
  // the call is still open: nothing reported yet
  assert.deepEqual(steps(reg), ['send a'])
  assert.deepEqual(reports(reg), [])
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let text = (await reader.read()).value
  assert.match(text, /"content":"Hel"/)
  assert.deepEqual(reports(reg), [])
  rest.open()
  for (let chunk; !(chunk = await reader.read()).done; ) text += chunk.value
  assert.match(text, /"content":"lo"/)
  assert.match(text, /data: \[DONE\]/)
  assert.deepEqual(reports(reg), ['200 delivered'])
  assert.deepEqual(steps(reg), ['send a', 'done a'])
  assert.deepEqual(server.seen, [bearer('sk-test-a')])
})

test('withCredential + fetch: a stream that fails midway ends the call with the error, nothing resent, no mark for a network error', async () => {
  const { raw, reg, rest: cut, res } = await streamCall('midway')
  const reader = res.body.getReader()
  assert.match(new TextDecoder().decode((await reader.read()).value), /Hel/)
  cut.open()
  const err = await thrown(async () => {
    for (;;) if ((await reader.read()).done) break
  })
  assert.deepEqual(await responseInfo(err), { network_error: 'reset' })
  assert.deepEqual(reports(reg), ['reset delivered'])
  assert.deepEqual(steps(reg), ['send a', 'give_up (network_error)'])
  assert.deepEqual(server.seen, [bearer('sk-test-a')])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
  assertReleased(raw, 'openrouter', 1, 2000)
})

test('withCredential + fetch: a 2xx whose body fails before its first byte is an ordinary outcome, retried', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([streamed(['never'], { fail: 'before' })])
  const statuses = []
  const res = await withCredential(
    reg,
    'openrouter',
    async (c) => {
      const r = await callFetch(c)
      statuses.push(r.status)
      return r
    },
    clock,
  )
  assert.equal(res.status, 200)
  assert.equal((await res.json()).object, 'chat.completion')
  assert.deepEqual(statuses, [200, 200])
  assert.deepEqual(reports(reg), ['reset', '200 delivered'])
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (network_error)', 'send a (network_error)', 'done a'])
})

test('withCredential + fetch: a caller that cancels the stream cancels the call (no mark)', async () => {
  const { raw, reg, rest, res } = await streamCall()
  await res.body.cancel(new Error('enough'))
  rest.open()
  assert.deepEqual(steps(reg), ['send a', 'call_cancelled'])
  assert.deepEqual(reports(reg), [])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
  assertReleased(raw, 'openrouter', 1, 2000)
})

test('withCredential + fetch: a 2xx without a body is reported at once', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ stream: (res) => res.writeHead(204).end() }])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 204)
  assert.deepEqual(steps(reg), ['send a', 'done a'])
  assert.deepEqual(reports(reg), ['204'])
})

// ---------------------------------------------------------------------------------------
// Bugs, secrecy, empty pools, aborts

test('withCredential: an unrelated exception cancels the call, marks nothing and is rethrown', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  const bug = new TypeError('cannot read properties of undefined')
  const err = await thrown(() =>
    withCredential(
      reg,
      'openrouter',
      () => {
        throw bug
      },
      fakeClock(),
    ),
  )
  assert.equal(err, bug)
  assert.deepEqual(
    reg.inputs.map((i) => i.type),
    ['call_start', 'call_cancel'],
  )
  const a = entryStatus(raw, 'openrouter', 'a', 2000)
  assert.equal(a.health, 'available')
  assert.equal(a.next, true)
  const state = raw.exportState().pools.openrouter.entries.find((e) => e.id === 'a')
  assert.equal(state.status, 'ok')
  assert.equal(state.cooldown_until ?? null, null)
  assert.equal(state.last_error ?? null, null)
  assertReleased(raw, 'openrouter', 1, 2000)
})

test('an unrelated exception after a returned error response discards that response body', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 402, body: { error: { message: 'Insufficient credits' } } }])
  let first
  const bug = new Error('bug')
  const err = await thrown(() =>
    withCredential(
      reg,
      'openrouter',
      async (c) => {
        if (first) throw bug
        first = await callFetch(c)
        return first
      },
      fakeClock(),
    ),
  )
  assert.equal(err, bug)
  assert.equal(first.bodyUsed, true, 'the discarded 402 body was cancelled')
})

test('the credential never shows its key: JSON.stringify, util.inspect, console formatting, spreading', async () => {
  const reg = makeRegistry([['a', 'sk-secret-a-123']])
  let credential
  const out = await withCredential(reg, 'openrouter', (c) => {
    credential = c
    return 'ok'
  }, fakeClock())
  assert.equal(out, 'ok')
  assert.equal(credential.accessToken, 'sk-secret-a-123')
  assert.equal(credential.entryId, 'a')
  assert.equal(credential.leaseId, 1)
  assert.equal(credential.pool, 'openrouter')
  assert.equal(credential.authType, 'api_key')
  assert.ok(!Object.keys(credential).includes('accessToken'))
  const texts = [
    JSON.stringify(credential),
    JSON.stringify({ nested: [credential] }),
    inspect(credential),
    inspect(credential, { showHidden: true, depth: 10, getters: true }),
    inspect({ nested: credential }, { showHidden: true }),
    format('%o %O %j %s', credential, credential, credential, credential),
    String(credential),
    JSON.stringify({ ...credential }),
    inspect({ ...credential }, { showHidden: true }),
  ]
  for (const text of texts) assert.ok(!text.includes('sk-secret-a-123'), text)
  assert.match(inspect(credential), /redacted/)
  assert.match(JSON.stringify(credential), /"entryId":"a"/)
})

test('the refresh credential never shows its tokens either', async () => {
  const reg = makeRegistry([['a', 'at-secret-0', { auth_type: 'oauth', refresh_token: 'rt-secret-0' }]])
  server.reset([{ status: 401 }])
  let seen
  await withCredential(reg, 'openrouter', callFetch, {
    ...fakeClock(),
    refresh: (credential) => {
      seen = credential
      return { type: 'refreshed', access_token: 'at-1' }
    },
  })
  assert.equal(seen.refreshToken, 'rt-secret-0')
  for (const text of [JSON.stringify(seen), inspect(seen, { showHidden: true, getters: true }), JSON.stringify({ ...seen })]) {
    assert.ok(!text.includes('secret'), text)
  }
})

test('no_credential on an empty pool; fn is never called', async () => {
  const reg = makeRegistry([], 'openrouter', [{ type: 'configure_pool', pool: 'openrouter' }])
  let called = false
  const err = await thrown(() =>
    withCredential(reg, 'openrouter', () => {
      called = true
    }, fakeClock()),
  )
  assert.ok(err instanceof CredpoolError)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'CredpoolError')
  assert.equal(err.code, 'no_credential')
  assert.deepEqual(err.action, { type: 'give_up', call_id: 1, reason: 'no_usable_entry', changed: false })
  assert.equal(called, false)
})

test('an abort signal cancels the call and rethrows its reason', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  const controller = new AbortController()
  const err = await thrown(() =>
    withCredential(
      reg,
      'openrouter',
      (c) => {
        controller.abort(new Error('user cancelled'))
        return fetch(`${server.url}/v1`, { signal: controller.signal, headers: { authorization: bearer(c.accessToken) } })
      },
      { ...fakeClock(), signal: controller.signal },
    ),
  )
  assert.equal(err.message, 'user cancelled')
  assert.deepEqual(steps(reg), ['send a', 'call_cancelled'])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
  assertReleased(raw, 'openrouter', 1, 2000)
})

test('an abort during a sleep (the default, timer-based) cancels the call at once', async () => {
  const raw = makeRegistry([['a', 'sk-test-a']])
  const reg = recording(raw)
  const controller = new AbortController()
  server.reset([{ status: 429 }])
  const started = Date.now()
  setTimeout(() => controller.abort(new Error('stop waiting')), 50)
  const err = await thrown(() => withCredential(reg, 'openrouter', callFetch, { signal: controller.signal }))
  assert.equal(err.message, 'stop waiting')
  assert.ok(Date.now() - started < 4000, 'did not sleep the 5 s retry delay')
  assert.deepEqual(steps(reg), ['send a', 'sleep 5000 (rate_limit)', 'call_cancelled'])
  assertReleased(raw, 'openrouter', 1, Date.now())
})

test('CredentialPool binds registry, pool and defaults', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  const pool = new CredentialPool(reg, 'openrouter', { ...fakeClock(), maxSends: 1 })
  server.reset([{ status: 402 }])
  // one send only: the 402 response comes back and the rotated lease is released
  const res = await pool.withCredential(callFetch)
  assert.equal(res.status, 402)
  assert.equal(steps(reg).at(-1), 'give_up (billing) 402 max_sends')
  assertReleased(raw, 'openrouter', 2, 5000)
  const ok = await pool.withCredential(callFetch, { maxSends: 3 })
  assert.equal(ok.status, 200)
})

test('withCredential spread: concurrent calls (parallel sub-agents) take different keys; plain calls keep fill_first', async () => {
  for (const [spread, want] of [[true, ['a', 'b']], [false, ['a', 'a']]]) {
    const reg = makeRegistry()
    const seen = []
    let open
    const opened = new Promise((resolve) => (open = resolve))
    const work = async (credential) => {
      seen.push(credential.entryId)
      await opened // both calls hold their key at once
      return 'done'
    }
    const calls = [withCredential(reg, 'openrouter', work, { spread }), withCredential(reg, 'openrouter', work, { spread })]
    while (seen.length < 2) await new Promise((resolve) => setImmediate(resolve))
    open()
    assert.deepEqual(await Promise.all(calls), ['done', 'done'])
    assert.deepEqual(seen, want, `spread: ${spread}`)
  }
})
