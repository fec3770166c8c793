// The JS helpers (bindings-node/helpers.mjs) against either implementation, with real
// objects: fetch `Response`s, a local HTTP server hit by real `fetch`, and the real
// `openai` SDK against that server.
//   CREDPOOL_IMPL=napi  (default) the napi build in bindings-node/
//   CREDPOOL_IMPL=wasm  the wasm nodejs build in $CREDPOOL_WASM_PKG
//                       (default $CREDPOOL_CACHE/wasm-pkg/nodejs)
// Needs `npm install` in tests/node (the `openai` devDependency).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { join, resolve } from 'node:path'
import { createRequire } from 'node:module'
import { homedir } from 'node:os'
import { inspect, format } from 'node:util'
import OpenAI from 'openai'
import {
  responseInfo,
  reportResponse,
  withCredential,
  CredentialPool,
  CredpoolError,
} from '../../bindings-node/helpers.mjs'

const require = createRequire(import.meta.url)
const impl = process.env.CREDPOOL_IMPL ?? 'napi'
const cache = process.env.CREDPOOL_CACHE ?? join(homedir(), '.cache/credpool')
const modules = {
  napi: () => require('../../bindings-node/index.js'),
  wasm: () => require(join(resolve(process.env.CREDPOOL_WASM_PKG ?? join(cache, 'wasm-pkg/nodejs')), 'credpool_wasm.js')),
}
if (!modules[impl]) throw new Error(`CREDPOOL_IMPL must be napi or wasm, not ${impl}`)
const { Registry } = modules[impl]()

// ---------------------------------------------------------------------------------------
// Fixtures

/** A registry with `entries` (`[id, token, extra?]`) in `pool`, added at 0. */
function makeRegistry(entries = [['a', 'sk-test-a'], ['b', 'sk-test-b']], pool = 'openrouter', setup = []) {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  for (const input of setup) reg.handle(input, 0)
  for (const [id, token, extra] of entries) reg.addEntry(pool, { id, access_token: token, ...extra }, 0)
  return reg
}

/**
 * A structural RegistryLike over `reg` that logs every decision core returns to the
 * helpers (acquire / report / refreshResult) and every release.
 */
function recording(reg) {
  const log = []
  const calls = []
  const keep = (d) => {
    log.push(d)
    return d
  }
  return {
    log,
    calls,
    acquire: (...a) => keep(reg.acquire(...a)),
    report: (pool, leaseId, response, now) => {
      calls.push({ report: response })
      return keep(reg.report(pool, leaseId, response, now))
    },
    refreshResult: (...a) => keep(reg.refreshResult(...a)),
    credential: (...a) => reg.credential(...a),
    release: (pool, leaseId, now) => {
      calls.push({ release: leaseId })
      return reg.release(pool, leaseId, now)
    },
  }
}

/** Decisions without `changed` (the vectors' subject here is the decision itself). */
function decisions(log) {
  return log.map(({ changed, ...d }) => d)
}

/** A deterministic clock; `sleep` advances it and records the delays. */
function fakeClock(start = 1000) {
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
function entryStatus(reg, pool, id, now) {
  const p = reg.status(pool, now).pools.find((x) => x.pool === pool)
  return p.entries.find((e) => e.id === id)
}

// A local provider: answers the scripted replies in order (then 200), recording the
// Authorization header of every request.
const server = {
  http: null,
  url: '',
  script: [],
  seen: [],
  reset(script) {
    this.script = [...script]
    this.seen = []
  },
}
/** A port with nothing listening (a server bound then closed). */
let closedPort

before(async () => {
  server.http = createServer((req, res) => {
    let raw = ''
    req.on('data', (c) => (raw += c))
    req.on('end', () => {
      if (req.url !== '/v1/chat/completions') {
        // probes (aborted fetches may still arrive) neither consume the script nor count
        res.writeHead(404).end()
        return
      }
      server.seen.push(req.headers.authorization ?? null)
      const reply = server.script.shift() ?? {
        status: 200,
        body: {
          id: 'chatcmpl-1',
          object: 'chat.completion',
          created: 1,
          model: 'gpt-test',
          choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
        },
      }
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

/** What `fn` throws, or fails. */
async function thrown(fn) {
  try {
    await fn()
  } catch (e) {
    return e
  }
  assert.fail('expected a throw')
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

test('withCredential + fetch: 402 rotates to the other key; the server saw both keys', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 402, body: { error: { message: 'Insufficient credits' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  assert.equal((await res.json()).object, 'chat.completion')
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'use', entry_id: 'b', lease_id: 2, reason: 'billing' },
    { type: 'done' },
  ])
  assert.deepEqual(clock.slept, [])
})

test('withCredential + fetch: hermes 429 retries the same key after 5 s, then rotates (rate_limit_hermes_retry_then_rotate)', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 429 }, { status: 429 }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.ok, true)
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-a'), bearer('sk-test-b')])
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'retry_same', entry_id: 'a', lease_id: 1, delay_ms: 5000, reason: 'rate_limit' },
    { type: 'use', entry_id: 'b', lease_id: 2, reason: 'rate_limit' },
    { type: 'done' },
  ])
  assert.deepEqual(clock.slept, [5000])
})

test('withCredential + fetch: Retry-After 20 sleeps exactly the hint', async () => {
  const reg = recording(makeRegistry())
  const clock = fakeClock()
  server.reset([{ status: 429, headers: { 'retry-after': '20' } }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  assert.deepEqual(clock.slept, [20000])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-a')])
  assert.equal(reg.log[1].hint.source, 'retry_after')
})

test('withCredential + fetch: a 400 client error fails without a mark and returns the response', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  server.reset([{ status: 400, body: { error: { message: 'bad request' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, fakeClock())
  assert.equal(res.status, 400)
  assert.deepEqual(await res.json(), { error: { message: 'bad request' } })
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'fail', reason: 'client_error', status: 400 },
  ])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
})

test('withCredential + fetch: sole key, two 429s, wait 60 s then succeed (out_rate_limit_sole_key_retry_then_wait_60s)', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  const clock = fakeClock()
  server.reset([{ status: 429 }, { status: 429 }])
  const res = await withCredential(reg, 'openrouter', callFetch, clock)
  assert.equal(res.status, 200)
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'retry_same', entry_id: 'a', lease_id: 1, delay_ms: 5000, reason: 'rate_limit' },
    { type: 'wait', until: 66000, reason: 'rate_limit' },
    { type: 'use', entry_id: 'a', lease_id: 2 },
    { type: 'done' },
  ])
  assert.deepEqual(clock.slept, [5000, 60000])
})

test('withCredential + fetch: a wait beyond maxWaitMs returns the last 429 response', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  server.reset([{ status: 429 }, { status: 429, body: { error: { message: 'still limited' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, { ...fakeClock(), maxWaitMs: 10_000 })
  assert.equal(res.status, 429)
  assert.deepEqual(await res.json(), { error: { message: 'still limited' } })
  assert.equal(reg.log.at(-1).type, 'wait')
  // the next acquire waits too: no credential, and the decision says why
  const err = await thrown(() => withCredential(reg, 'openrouter', callFetch, { ...fakeClock(9000), maxWaitMs: 10_000 }))
  assert.ok(err instanceof CredpoolError)
  assert.equal(err.code, 'no_credential')
  assert.equal(err.decision.type, 'wait')
  assert.equal(err.decision.reason, 'all_cooling_down')
})

test('withCredential: fallback switches pool and model (fb_rate_limit_sole_key_falls_back_at_once)', async () => {
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
      seen.push([c.pool, c.model, c.entryId])
      return callFetch(c)
    },
    { ...fakeClock(), model: 'gpt-test' },
  )
  assert.equal(res.status, 200)
  assert.deepEqual(seen, [
    ['openrouter', 'gpt-test', 'a'],
    ['anthropic', 'claude', 'c'],
  ])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-ant-c')])
  assert.deepEqual(
    decisions(rec.log).map((d) => d.type),
    ['use', 'fallback', 'use', 'done'],
  )
  assert.equal(rec.log[1].pool, 'anthropic')
})

test('withCredential: a non-Response value reports success and is returned', async () => {
  const reg = recording(makeRegistry())
  const value = await withCredential(reg, 'openrouter', async (c) => ({ answer: 42, entry: c.entryId }), fakeClock())
  assert.deepEqual(value, { answer: 42, entry: 'a' })
  assert.deepEqual(reg.calls, [{ report: { status: 200 } }])
  assert.deepEqual(decisions(reg.log), [{ type: 'use', entry_id: 'a', lease_id: 1 }, { type: 'done' }])
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
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'use', entry_id: 'b', lease_id: 2, reason: 'billing' },
    { type: 'done' },
  ])
  assert.deepEqual(clock.slept, [])
})

test('withCredential + openai: 401 on an api key marks it and rotates (out_auth_401_api_key_marks_300s_and_rotates)', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 401, body: { error: { message: 'Incorrect API key provided', code: 'invalid_api_key' } } }])
  const completion = await withCredential(reg, 'openrouter', (c) => callOpenAI(c), fakeClock())
  assert.equal(completion.object, 'chat.completion')
  assert.deepEqual(decisions(reg.log).slice(0, 2), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'use', entry_id: 'b', lease_id: 2, reason: 'auth' },
  ])
  assert.deepEqual(server.seen, [bearer('sk-test-a'), bearer('sk-test-b')])
})

test('withCredential + openai: RateLimitError is rethrown when the budget runs out', async () => {
  const reg = recording(makeRegistry([['a', 'sk-test-a']]))
  server.reset([{ status: 429 }, { status: 429 }])
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c), { ...fakeClock(), maxWaitMs: 10_000 }))
  assert.ok(err instanceof OpenAI.RateLimitError)
  assert.deepEqual(
    decisions(reg.log).map((d) => d.type),
    ['use', 'retry_same', 'wait'],
  )
})

test('withCredential + openai: BadRequestError on fail is rethrown', async () => {
  const reg = recording(makeRegistry())
  server.reset([{ status: 400, body: { error: { message: 'bad model' } } }])
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c), fakeClock()))
  assert.ok(err instanceof OpenAI.BadRequestError)
  assert.equal(reg.log.at(-1).type, 'fail')
})

test('withCredential + openai: APIConnectionError retries the same key without a mark, then is rethrown and the lease released', async () => {
  const raw = makeRegistry()
  const reg = recording(raw)
  const clock = fakeClock()
  const closed = `http://127.0.0.1:${closedPort}/v1`
  const err = await thrown(() => withCredential(reg, 'openrouter', (c) => callOpenAI(c, closed), { ...clock, maxAttempts: 2 }))
  assert.ok(err instanceof OpenAI.APIConnectionError)
  assert.deepEqual(decisions(reg.log).slice(0, 2), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'retry_same', entry_id: 'a', lease_id: 1, delay_ms: 5000, reason: 'network_error' },
  ])
  assert.deepEqual(reg.calls.slice(0, 2), [{ report: { network_error: 'connect' } }, { report: { network_error: 'connect' } }])
  // the lease core left open after the last report was released
  const lastLease = reg.log.at(-1).lease_id
  if (lastLease !== undefined) {
    assert.deepEqual(reg.calls.at(-1), { release: lastLease })
    assert.throws(() => raw.report('openrouter', lastLease, { status: 200 }, clock.t), (e) => e.code === 'unknown_lease')
  }
  assert.equal(entryStatus(raw, 'openrouter', 'a', clock.t).health, 'available')
})

// ---------------------------------------------------------------------------------------
// OAuth refresh

const oauthSetup = [
  ['a', 'oauth-access-a', { auth_type: 'oauth', refresh_token: 'oauth-refresh-a' }],
  ['b', 'sk-test-b'],
]

test('withCredential: 401 on an oauth entry refreshes and retries under the same lease (refresh_401_oauth_refreshed_uses_same_lease)', async () => {
  const reg = recording(makeRegistry(oauthSetup))
  const refreshed = []
  server.reset([{ status: 401, body: { error: { message: 'token expired' } } }])
  const res = await withCredential(reg, 'openrouter', callFetch, {
    ...fakeClock(),
    refresh: async (credential) => {
      refreshed.push([credential.entryId, credential.generation, credential.refreshToken])
      return { type: 'refreshed', access_token: 'oauth-access-a2', refresh_token: 'oauth-refresh-a2' }
    },
  })
  assert.equal(res.status, 200)
  assert.deepEqual(refreshed, [['a', 0, 'oauth-refresh-a']])
  assert.deepEqual(server.seen, [bearer('oauth-access-a'), bearer('oauth-access-a2')])
  assert.deepEqual(decisions(reg.log), [
    { type: 'use', entry_id: 'a', lease_id: 1 },
    { type: 'refresh', entry_id: 'a', lease_id: 1, generation: 0, reason: 'auth' },
    { type: 'use', entry_id: 'a', lease_id: 1, reason: 'refreshed' },
    { type: 'done' },
  ])
})

test('withCredential: a refresh decision without a refresh callback throws and releases the lease', async () => {
  const raw = makeRegistry(oauthSetup)
  const reg = recording(raw)
  server.reset([{ status: 401 }])
  const err = await thrown(() => withCredential(reg, 'openrouter', callFetch, fakeClock()))
  assert.ok(err instanceof CredpoolError)
  assert.equal(err.code, 'no_credential')
  assert.equal(err.decision.type, 'refresh')
  assert.deepEqual(reg.calls.at(-1), { release: 1 })
  assert.throws(() => raw.report('openrouter', 1, { status: 200 }, 5000), (e) => e.code === 'unknown_lease')
})

// ---------------------------------------------------------------------------------------
// Bugs, secrecy, empty pools, aborts

test('withCredential: an unrelated exception releases the lease, marks nothing and is rethrown', async () => {
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
  assert.deepEqual(reg.calls, [{ release: 1 }])
  const a = entryStatus(raw, 'openrouter', 'a', 2000)
  assert.equal(a.health, 'available')
  assert.equal(a.next, true)
  const state = raw.exportState().pools.openrouter.entries.find((e) => e.id === 'a')
  assert.equal(state.status, 'ok')
  assert.equal(state.cooldown_until ?? null, null)
  assert.equal(state.last_error ?? null, null)
  assert.throws(() => raw.report('openrouter', 1, { status: 200 }, 2000), (e) => e.code === 'unknown_lease')
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
  assert.equal(credential.generation, 0)
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
  assert.deepEqual(err.decision, { type: 'fail', reason: 'no_usable_entry', changed: false })
  assert.equal(called, false)
})

test('an abort signal releases the lease and rethrows its reason', async () => {
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
  assert.deepEqual(reg.calls, [{ release: 1 }])
  assert.equal(entryStatus(raw, 'openrouter', 'a', 2000).health, 'available')
})

test('CredentialPool binds registry, pool and defaults', async () => {
  const reg = recording(makeRegistry())
  const pool = new CredentialPool(reg, 'openrouter', { ...fakeClock(), maxAttempts: 1 })
  server.reset([{ status: 402 }])
  // one attempt only: the 402 response comes back and the rotated lease is released
  const res = await pool.withCredential(callFetch)
  assert.equal(res.status, 402)
  assert.deepEqual(reg.calls.at(-1), { release: 2 })
  const ok = await pool.withCredential(callFetch, { maxAttempts: 3 })
  assert.equal(ok.status, 200)
})
