// credentialFetch (bindings-node/fetch.mjs) with the real SDKs agents use (openai,
// @anthropic-ai/sdk, the Vercel AI SDK) and plain fetch, against a mock provider on
// 127.0.0.1 that answers with the providers' real headers, bodies and error shapes
// (mock-provider.mjs) and records which credential each request carried and how.
// Runs against either implementation (CREDPOOL_IMPL=napi or wasm): fetch.mjs imports
// nothing native, which is what lets Deno, Bun and edge runtimes use it over the wasm build.
// Needs `npm install` in tests/node (the SDK devDependencies).
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { inspect } from 'node:util'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import OpenAI from 'openai'
import Anthropic from '@anthropic-ai/sdk'
import { generateText, streamText } from 'ai'
import { createOpenAI } from '@ai-sdk/openai'
import { credpool } from './impl.mjs'
import { credentialFetch } from '../../bindings-node/fetch.mjs'
import { CredpoolError } from '../../bindings-node/helpers.mjs'
import { recording, steps, reports, fakeClock, entryStatus, thrown } from './fixtures.mjs'
import { startProvider, reply, errors } from './mock-provider.mjs'

const { Registry } = credpool

/** Every secret the tests hand the registry contains this (the secret scans look for it). */
const SECRET = 'SECRET'

/** A registry with `entries` (`[pool, id, token, extra?]`), added at 0, after `pools` (`[pool, config]`). */
function makeRegistry(entries, pools = []) {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  for (const [pool, config] of pools) reg.configurePool(pool, config, 0)
  for (const [pool, id, token, extra] of entries) reg.addEntry(pool, { id, access_token: token, ...extra }, 0)
  return reg
}

const KEYS = { a: `sk-${SECRET}-a`, b: `sk-${SECRET}-b`, c: `sk-${SECRET}-c` }
const ANT = { x: `sk-ant-api03-${SECRET}-x`, y: `sk-ant-api03-${SECRET}-y` }
const OAUTH = { access: `sk-ant-oat01-${SECRET}-1`, refresh: `sk-ant-ort01-${SECRET}-1`, access2: `sk-ant-oat01-${SECRET}-2` }

/** OpenAI-shape pool `openai` with keys a and b. */
const openaiKeys = () => makeRegistry([['openai', 'a', KEYS.a], ['openai', 'b', KEYS.b]])

let provider
before(async () => {
  provider = await startProvider()
})
after(async () => {
  await provider.stop()
})

const chat = { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] }
const message = { model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] }

/** The `openai` SDK on the mock with `fetch` (default retry settings unless `extra` says). */
const openai = (fetch, extra = {}) => new OpenAI({ apiKey: 'unused', baseURL: `${provider.url}/v1`, fetch, ...extra })
/** The Anthropic SDK on the mock with `fetch`. */
const anthropic = (fetch, extra = {}) => new Anthropic({ apiKey: 'unused', baseURL: provider.url, fetch, ...extra })

/** Replies by key: `{ [key]: reply }`, else the default success. */
const byKey = (replies) => (hit) => replies[hit.key]?.(hit) ?? null
/** Replies in order (then the default success). */
const inOrder = (...replies) => {
  const queue = [...replies]
  return () => queue.shift() ?? null
}

// ---------------------------------------------------------------------------------------
// openai SDK

test('openai SDK: the one-line drop-in sends Bearer with the pool key, never the SDK apiKey', async () => {
  const reg = recording(openaiKeys())
  provider.reset()
  const client = openai(credentialFetch(reg, 'openai'))
  const completion = await client.chat.completions.create(chat)
  assert.equal(completion.choices[0].message.content, 'hi')
  assert.deepEqual(
    provider.hits.map((h) => [h.path, h.authorization, h.xApiKey, h.model]),
    [['/v1/chat/completions', `Bearer ${KEYS.a}`, null, 'gpt-4o-mini']],
  )
  assert.deepEqual(steps(reg), ['send a', 'done a'])
  const start = reg.inputs[0]
  assert.deepEqual(
    [start.type, start.pool, start.model, start.url],
    ['call_start', 'openai', 'gpt-4o-mini', `${provider.url}/v1/chat/completions`],
  )
})

test('openai SDK: a 429 with real rate-limit headers is retried as the policy says, then rotates; the benched key gets nothing after', async () => {
  const raw = openaiKeys()
  const reg = recording(raw)
  const clock = fakeClock()
  provider.reset(byKey({ [KEYS.a]: () => errors.openai429({ reset: '20s', retryAfter: '20' }) }))
  const client = openai(credentialFetch(reg, 'openai', clock))
  for (let i = 0; i < 3; i++) await client.chat.completions.create(chat)
  // hermes (the default policy): the hint's wait, the same key once more, then the other key
  assert.deepEqual(steps(reg), [
    'send a',
    'sleep 20000 (rate_limit)',
    'send a (rate_limit)',
    'send b (rate_limit)',
    'done b',
    'send b',
    'done b',
    'send b',
    'done b',
  ])
  assert.deepEqual(clock.slept, [20000])
  assert.deepEqual(provider.hits.map((h) => h.key), [KEYS.a, KEYS.a, KEYS.b, KEYS.b, KEYS.b])
  // the SDK never retried: every request is its first try
  assert.ok(provider.hits.every((h) => h.retryCount === '0'))
  assert.equal(entryStatus(raw, 'openai', 'a', clock.t).health, 'rate_limited')
})

test('openai SDK: a 402 (OpenRouter credits) rotates at once', async () => {
  const reg = recording(openaiKeys())
  provider.reset(byKey({ [KEYS.a]: errors.openai402 }))
  await openai(credentialFetch(reg, 'openai', fakeClock())).chat.completions.create(chat)
  assert.deepEqual(steps(reg), ['send a', 'send b (billing)', 'done b'])
  assert.deepEqual(reports(reg), ['402', '200 delivered'])
  assert.deepEqual(provider.hits.map((h) => h.key), [KEYS.a, KEYS.b])
})

test('openai SDK: a 401 on an API key marks it and rotates; later requests skip it', async () => {
  const reg = recording(openaiKeys())
  provider.reset(byKey({ [KEYS.a]: errors.openai401 }))
  const client = openai(credentialFetch(reg, 'openai', fakeClock()))
  await client.chat.completions.create(chat)
  await client.chat.completions.create(chat)
  assert.deepEqual(provider.hits.map((h) => h.key), [KEYS.a, KEYS.b, KEYS.b])
  assert.deepEqual(steps(reg).slice(0, 2), ['send a', 'send b (auth)'])
})

test('openai SDK: a 403 is reported with its body and core decides', async () => {
  const reg = recording(openaiKeys())
  provider.reset(byKey({ [KEYS.a]: errors.openai403 }))
  await openai(credentialFetch(reg, 'openai', fakeClock())).chat.completions.create(chat)
  const report = reg.inputs.find((i) => i.type === 'call_report')
  assert.equal(report.response.status, 403)
  assert.equal(report.response.body.error.code, 'unsupported_country_region_territory')
  assert.equal(report.response.headers['content-type'], 'application/json')
  assert.deepEqual(provider.hits.map((h) => h.key), [KEYS.a, KEYS.b])
})

test('openai SDK: a stream that completes comes back as it streams and ends the call done', async () => {
  const reg = recording(openaiKeys())
  provider.reset()
  const stream = await openai(credentialFetch(reg, 'openai')).chat.completions.create({
    ...chat,
    stream: true,
  })
  assert.deepEqual(steps(reg), ['send a'], 'the call stays open while the body streams')
  let text = ''
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
  assert.equal(text, 'hi')
  assert.deepEqual(steps(reg), ['send a', 'done a'])
  assert.deepEqual(reports(reg), ['200 delivered'])
  assert.equal(provider.hits[0].stream, true)
})

test('openai SDK: a stream that fails midway is reported as delivered; nothing is resent, the SDK does not retry', async () => {
  const reg = recording(openaiKeys())
  provider.reset(inOrder(reply.openai('one two three', { failMidway: true })))
  const stream = await openai(credentialFetch(reg, 'openai')).chat.completions.create({ ...chat, stream: true })
  let text = ''
  const err = await thrown(async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? ''
  })
  assert.ok(err instanceof Error)
  assert.equal(text, 'one')
  assert.equal(provider.hits.length, 1)
  assert.deepEqual(reports(reg), ['reset delivered'])
  assert.deepEqual(steps(reg), ['send a', 'give_up (network_error)'])
})

test('openai SDK, default retries: every key rate limited → one 429 back with x-should-retry: false, no SDK retry, no request to a benched key', async () => {
  const reg = recording(openaiKeys())
  const clock = fakeClock()
  provider.reset(() => errors.openai429({ reset: '6m0s', retryAfter: '360' }))
  const client = openai(credentialFetch(reg, 'openai', clock)) // maxRetries: the SDK default (2)
  const err = await thrown(() => client.chat.completions.create(chat))
  assert.ok(err instanceof OpenAI.RateLimitError, String(err))
  assert.equal(err.status, 429)
  assert.equal(err.headers.get('x-should-retry'), 'false')
  assert.ok(provider.hits.every((h) => h.retryCount === '0'), 'the SDK did not retry')
  const sent = provider.perKey()
  assert.deepEqual(Object.keys(sent).sort(), [KEYS.a, KEYS.b])
  assert.ok(sent[KEYS.a] === 1 && sent[KEYS.b] === 1, JSON.stringify(sent))
  assert.deepEqual(clock.slept, [], 'a 6 min wait is beyond maxWaitMs: no sleep')
  // the next request: both keys benched, nothing is sent at all
  const again = await thrown(() => client.chat.completions.create(chat))
  assert.ok(again instanceof OpenAI.APIConnectionError, String(again))
  assert.ok(again.cause instanceof CredpoolError && again.cause.code === 'no_credential', String(again.cause))
  assert.equal(provider.hits.length, 2, 'no request to a benched key, SDK retries included')
})

test('openai SDK: 100 concurrent requests over 3 keys, one rate limited: none lost, the limited key benched and nothing sent to it after its first 429', async () => {
  const raw = makeRegistry(
    [['openai', 'a', KEYS.a], ['openai', 'b', KEYS.b], ['openai', 'c', KEYS.c]],
    [['openai', { strategy: 'round_robin', policy: { preset: 'adaptive' } }]],
  )
  const reg = recording(raw)
  provider.reset(byKey({ [KEYS.b]: () => errors.openai429({ reset: '20s', retryAfter: '20' }) }))
  const client = openai(credentialFetch(reg, 'openai'))
  const results = await Promise.all(Array.from({ length: 100 }, () => client.chat.completions.create(chat)))
  assert.equal(results.length, 100)
  assert.ok(results.every((r) => r.choices[0].message.content === 'hi'))
  const hits = provider.perKey()
  const successes = provider.hits.filter((h) => h.key !== KEYS.b).length
  assert.equal(successes, 100, 'every request answered once by a good key')
  // the 429'd key: only the requests already in flight when its first 429 came back
  const firstLimit = reg.inputs.findIndex((i) => i.type === 'call_report' && i.response.status === 429)
  const sendsToB = reg.log.map((a, i) => [a, i]).filter(([a]) => a.type === 'send' && a.entry_id === 'b')
  assert.equal(hits[KEYS.b], sendsToB.length)
  assert.ok(sendsToB.every(([, i]) => i < firstLimit), 'no send to b after its first 429')
  assert.ok(provider.hits.every((h) => h.retryCount === '0'), 'the SDK never retried')
  assert.equal(entryStatus(raw, 'openai', 'b', Date.now()).health, 'rate_limited')
  // a second wave while b is benched: nothing reaches it
  provider.reset(byKey({ [KEYS.b]: () => errors.openai429({ reset: '20s', retryAfter: '20' }) }))
  await Promise.all(Array.from({ length: 100 }, () => client.chat.completions.create(chat)))
  assert.equal(provider.hits.length, 100)
  assert.equal(provider.perKey()[KEYS.b], undefined)
})

test('openai SDK, default (hermes) policy: 100 concurrent requests, one key rate limited: one same-key retry at a time, the key benched once', async () => {
  const raw = makeRegistry(
    [['openai', 'a', KEYS.a], ['openai', 'b', KEYS.b], ['openai', 'c', KEYS.c]],
    [['openai', { strategy: 'round_robin' }]],
  )
  const reg = recording(raw)
  const clock = fakeClock()
  provider.reset(byKey({ [KEYS.b]: () => errors.openai429({ reset: '20s', retryAfter: '20' }) }))
  const client = openai(credentialFetch(reg, 'openai', clock))
  const results = await Promise.all(Array.from({ length: 100 }, () => client.chat.completions.create(chat)))
  assert.ok(results.every((r) => r.choices[0].message.content === 'hi'))
  assert.equal(provider.hits.filter((h) => h.key !== KEYS.b).length, 100, 'every request answered once by a good key')
  assert.ok(provider.hits.every((h) => h.retryCount === '0'), 'the SDK never retried')
  // Hermes retries a first 429 on the same key once: one call sleeps for it, every other
  // 429 on b benches it instead of retrying too, so b is never hammered.
  const sleeps = reg.log.filter((a) => a.type === 'sleep')
  assert.equal(sleeps.length, 1, 'one same-key retry at a time')
  const firstLimit = reg.inputs.findIndex((i) => i.type === 'call_report' && i.response.status === 429)
  const sendsToB = reg.log.map((a, i) => [a, i]).filter(([a]) => a.type === 'send' && a.entry_id === 'b')
  const late = sendsToB.filter(([, i]) => i > firstLimit)
  assert.ok(late.length <= 1, `at most the one retry reaches b after its first 429 (${late.length})`)
  const b = raw.exportState().pools.openai.entries.find((e) => e.id === 'b')
  assert.equal(b.status, 'exhausted')
  assert.ok(b.failure_streak <= 2, `b marked once, plus once for the retry after its bench (${b.failure_streak})`)
})

// ---------------------------------------------------------------------------------------
// Anthropic SDK

test('Anthropic SDK: an API key goes as x-api-key (no Bearer); a 429 rotates to the other key', async () => {
  const reg = recording(makeRegistry([['anthropic', 'x', ANT.x], ['anthropic', 'y', ANT.y]]))
  const clock = fakeClock()
  provider.reset(byKey({ [ANT.x]: () => errors.anthropic429({ reset: clock.t + 20000, retryAfter: '20' }) }))
  const client = anthropic(credentialFetch(reg, 'anthropic', clock))
  const msg = await client.messages.create(message)
  assert.deepEqual(msg.content, [{ type: 'text', text: 'hi' }])
  assert.ok(provider.hits.every((h) => h.scheme === 'x-api-key' && h.authorization === null && h.beta === null))
  assert.equal(provider.hits.at(-1).key, ANT.y)
  assert.equal(provider.hits[0].path, '/v1/messages')
  assert.equal(reg.inputs[0].api, 'anthropic', 'the anthropic-version header says the shape')
  const report = reg.inputs.find((i) => i.type === 'call_report')
  assert.equal(report.response.body.error.type, 'rate_limit_error')
  assert.ok(report.response.headers['anthropic-ratelimit-requests-reset'])
})

test('Anthropic SDK: a 529 overloaded is retried on the same key without a mark', async () => {
  const raw = makeRegistry([['anthropic', 'x', ANT.x], ['anthropic', 'y', ANT.y]])
  const reg = recording(raw)
  const clock = fakeClock()
  provider.reset(inOrder(errors.anthropic529()))
  await anthropic(credentialFetch(reg, 'anthropic', clock)).messages.create(message)
  assert.deepEqual(provider.hits.map((h) => h.key), [ANT.x, ANT.x])
  assert.equal(entryStatus(raw, 'anthropic', 'x', clock.t).health, 'available')
})

test('Anthropic SDK: a 403 permission error is reported in Anthropic shape and core decides', async () => {
  const reg = recording(makeRegistry([['anthropic', 'x', ANT.x], ['anthropic', 'y', ANT.y]]))
  provider.reset(byKey({ [ANT.x]: errors.anthropic403 }))
  await anthropic(credentialFetch(reg, 'anthropic', fakeClock())).messages.create(message)
  const report = reg.inputs.find((i) => i.type === 'call_report')
  assert.deepEqual([report.response.status, report.response.body.error.type], [403, 'permission_error'])
  assert.deepEqual(provider.hits.map((h) => h.key), [ANT.x, ANT.y])
})

test('Anthropic SDK: an OAuth entry goes as Bearer with anthropic-beta oauth; a 401 refreshes and resends with the new token', async () => {
  const reg = recording(
    makeRegistry([['anthropic', 'o', OAUTH.access, { auth_type: 'oauth', refresh_token: OAUTH.refresh }]]),
  )
  provider.reset(inOrder(errors.anthropic401('OAuth token has expired.')))
  const refreshed = []
  const fetch = credentialFetch(reg, 'anthropic', {
    ...fakeClock(),
    refresh: async (credential) => {
      refreshed.push([credential.entryId, credential.refreshToken === OAUTH.refresh])
      return { type: 'refreshed', access_token: OAUTH.access2, refresh_token: `sk-ant-ort01-${SECRET}-2` }
    },
  })
  // the SDK's own beta header: the OAuth beta is appended to it
  const msg = await anthropic(fetch).beta.messages.create({ ...message, betas: ['prompt-caching-2024-07-31'] })
  assert.equal(msg.content[0].text, 'hi')
  assert.deepEqual(refreshed, [['o', true]])
  assert.deepEqual(
    provider.hits.map((h) => [h.authorization, h.xApiKey, h.beta]),
    [
      [`Bearer ${OAUTH.access}`, null, 'prompt-caching-2024-07-31,oauth-2025-04-20'],
      [`Bearer ${OAUTH.access2}`, null, 'prompt-caching-2024-07-31,oauth-2025-04-20'],
    ],
  )
  assert.deepEqual(steps(reg), ['send o', 'refresh o@0 (auth)', 'send o (refreshed)', 'done o'])
  // without an SDK beta header, the OAuth beta is set on its own
  provider.reset()
  await anthropic(fetch).messages.create(message)
  assert.equal(provider.hits[0].beta, 'oauth-2025-04-20')
})

test('Anthropic SDK: a stream that completes, then one that fails midway (reported delivered, not resent)', async () => {
  const reg = recording(makeRegistry([['anthropic', 'x', ANT.x], ['anthropic', 'y', ANT.y]]))
  const client = anthropic(credentialFetch(reg, 'anthropic'))
  provider.reset()
  const types = []
  let text = ''
  for await (const e of await client.messages.create({ ...message, stream: true })) {
    types.push(e.type)
    if (e.type === 'content_block_delta') text += e.delta.text
  }
  assert.deepEqual(types, ['message_start', 'content_block_start', 'content_block_delta', 'content_block_stop', 'message_delta', 'message_stop'])
  assert.equal(text, 'hi')
  assert.deepEqual(steps(reg), ['send x', 'done x'])

  provider.reset(inOrder(reply.anthropic('one two', { failMidway: true })))
  text = ''
  const err = await thrown(async () => {
    for await (const e of await client.messages.create({ ...message, stream: true })) {
      if (e.type === 'content_block_delta') text += e.delta.text
    }
  })
  assert.ok(err instanceof Error)
  assert.equal(text, 'one')
  assert.equal(provider.hits.length, 1, 'nothing resent')
  assert.deepEqual(reports(reg).slice(1), ['reset delivered'])
})

test('Anthropic SDK, default retries: every key rate limited → the 429 comes back once, no SDK retry', async () => {
  const reg = recording(makeRegistry([['anthropic', 'x', ANT.x], ['anthropic', 'y', ANT.y]]))
  const clock = fakeClock()
  provider.reset(() => errors.anthropic429({ reset: clock.t + 600_000, retryAfter: '600' }))
  const err = await thrown(() => anthropic(credentialFetch(reg, 'anthropic', clock)).messages.create(message))
  assert.ok(err instanceof Anthropic.RateLimitError, String(err))
  assert.deepEqual(provider.hits.map((h) => [h.key, h.retryCount]), [[ANT.x, '0'], [ANT.y, '0']])
})

// ---------------------------------------------------------------------------------------
// Vercel AI SDK

test('Vercel AI SDK: createOpenAI({ fetch }) generateText rotates past a 402; streamText streams', async () => {
  const reg = recording(openaiKeys())
  provider.reset(byKey({ [KEYS.a]: errors.openai402 }))
  const provide = createOpenAI({ apiKey: 'unused', baseURL: `${provider.url}/v1`, fetch: credentialFetch(reg, 'openai', fakeClock()) })
  const { text } = await generateText({ model: provide.chat('gpt-4o-mini'), prompt: 'hi' })
  assert.equal(text, 'hi')
  assert.deepEqual(provider.hits.map((h) => [h.key, h.scheme]), [[KEYS.a, 'bearer'], [KEYS.b, 'bearer']])

  provider.reset(inOrder(reply.openai('streamed back to you')))
  const result = streamText({ model: provide.chat('gpt-4o-mini'), prompt: 'hi' })
  let streamed = ''
  for await (const part of result.textStream) streamed += part
  assert.equal(streamed, 'streamed back to you')
  assert.deepEqual(provider.hits.map((h) => [h.key, h.stream]), [[KEYS.b, true]])
})

test('Vercel AI SDK, default retries: every key rate limited → its one retry is a new call that sends nothing', async () => {
  const reg = recording(openaiKeys())
  provider.reset(() => errors.openai429({ reset: '6m0s', retryAfter: '360' }))
  const provide = createOpenAI({ apiKey: 'unused', baseURL: `${provider.url}/v1`, fetch: credentialFetch(reg, 'openai') })
  const err = await thrown(() => generateText({ model: provide.chat('gpt-4o-mini'), prompt: 'hi' }))
  // the AI SDK ignores x-should-retry: it retried, and that call found both keys benched
  assert.ok(err.errors?.at(-1) instanceof CredpoolError, String(err))
  assert.deepEqual(provider.perKey(), { [KEYS.a]: 1, [KEYS.b]: 1 })
  assert.deepEqual(steps(reg), ['send a', 'send b (rate_limit)', 'give_up (rate_limit) 429 max_wait_ms', 'give_up (all_cooling_down) max_wait_ms'])
})

// ---------------------------------------------------------------------------------------
// Routing: base_url, fallback model, API shapes

test('fallback: a 402 moves the request onto the fallback entry base_url, with its key and the step model', async () => {
  const raw = makeRegistry(
    [
      ['openai', 'a', KEYS.a],
      ['openrouter', 'r', `sk-or-v1-${SECRET}-r`, { base_url: `${provider.url}/router/api/v1` }],
    ],
    [['openai', { fallback: [{ pool: 'openrouter', model: 'openai/gpt-4o-mini' }] }]],
  )
  const reg = recording(raw)
  provider.reset(byKey({ [KEYS.a]: errors.openai402 }))
  const completion = await openai(credentialFetch(reg, 'openai', fakeClock())).chat.completions.create(chat)
  assert.equal(completion.choices[0].message.content, 'hi')
  assert.deepEqual(
    provider.hits.map((h) => [h.path, h.key, h.model]),
    [
      ['/v1/chat/completions', KEYS.a, 'gpt-4o-mini'],
      ['/router/api/v1/chat/completions', `sk-or-v1-${SECRET}-r`, 'openai/gpt-4o-mini'],
    ],
  )
  assert.deepEqual(steps(reg), ['send a', 'send r', 'done r'])
})

test('fallback to a pool entry without base_url gives up (no_base_url): the 402 comes back, the SDK does not retry', async () => {
  const reg = recording(
    makeRegistry(
      [['openai', 'a', KEYS.a], ['openrouter', 'r', `sk-or-v1-${SECRET}-r`]],
      [['openai', { fallback: [{ pool: 'openrouter', model: 'openai/gpt-4o-mini' }] }]],
    ),
  )
  provider.reset(byKey({ [KEYS.a]: errors.openai402 }))
  const err = await thrown(() => openai(credentialFetch(reg, 'openai', fakeClock())).chat.completions.create(chat))
  assert.equal(err.status, 402)
  assert.equal(err.headers.get('x-should-retry'), 'false')
  assert.deepEqual(steps(reg), ['send a', 'give_up (no_base_url) 402'])
  assert.deepEqual(provider.hits.map((h) => h.key), [KEYS.a])
})

test('an Anthropic-shape request on an OpenAI-shape pool gives up before sending (api_mismatch)', async () => {
  const reg = recording(openaiKeys())
  provider.reset()
  const fetch = credentialFetch(reg, 'openai', fakeClock())
  const err = await thrown(() => fetch(`${provider.url}/v1/messages`, { method: 'POST', headers: { 'anthropic-version': '2023-06-01' }, body: JSON.stringify(message) }))
  assert.ok(err instanceof CredpoolError, String(err))
  assert.equal(err.code, 'no_credential')
  assert.equal(err.action.reason, 'api_mismatch')
  assert.equal(reg.inputs[0].api, 'anthropic')
  assert.equal(provider.hits.length, 0)
  // `api` given explicitly: the same
  const explicit = credentialFetch(reg, 'openai', { api: 'anthropic' })
  const again = await thrown(() => explicit(`${provider.url}/v1/messages`, { method: 'POST', body: '{}' }))
  assert.equal(again.action?.reason, 'api_mismatch')
})

test('an OAuth entry on an OpenAI-shape pool is a plain Bearer (no Anthropic beta)', async () => {
  const reg = recording(makeRegistry([['openai', 'o', `oauth-${SECRET}`, { auth_type: 'oauth', refresh_token: `rt-${SECRET}` }]]))
  provider.reset()
  await openai(credentialFetch(reg, 'openai')).chat.completions.create(chat)
  assert.deepEqual([provider.hits[0].authorization, provider.hits[0].beta], [`Bearer oauth-${SECRET}`, null])
})

// ---------------------------------------------------------------------------------------
// Plain fetch, abort, secrets

test('plain fetch: a Request input, headers of the caller kept, auth replaced', async () => {
  const reg = recording(openaiKeys())
  provider.reset()
  const fetch = credentialFetch(reg, 'openai')
  const request = new Request(`${provider.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer caller-key', 'content-type': 'application/json', 'x-trace': 't1' },
    body: JSON.stringify(chat),
  })
  const res = await fetch(request)
  assert.equal(res.status, 200)
  assert.equal((await res.json()).object, 'chat.completion')
  assert.deepEqual([provider.hits[0].authorization, provider.hits[0].model], [`Bearer ${KEYS.a}`, 'gpt-4o-mini'])
  assert.equal(reg.inputs[0].model, 'gpt-4o-mini')
})

test('openai and Anthropic SDKs, default retries: an SDK retry after a connection error continues the call that gave up, and sends nothing past its budget', async () => {
  // Every request is dropped: the driver resends once (maxSends 2), gives up and rethrows the
  // network error. Each SDK retry carries x-stainless-retry-count and continues that call,
  // whose sends are spent: it gives up with no send (a new call per retry would send 2 more).
  const drop = () => (res) => res.socket?.destroy()
  const cases = [
    [(f) => openai(f).chat.completions.create(chat), OpenAI.APIConnectionError],
    [(f) => anthropic(f).messages.create(message), Anthropic.APIConnectionError],
  ]
  for (const [request, ConnectionError] of cases) {
    const reg = recording(makeRegistry([['openai', 'a', KEYS.a]]))
    provider.reset(drop)
    const err = await thrown(() => request(credentialFetch(reg, 'openai', { ...fakeClock(), maxSends: 2, api: 'openai' })))
    assert.ok(err instanceof ConnectionError && err.cause instanceof CredpoolError, String(err))
    assert.deepEqual(provider.hits.map((h) => h.retryCount), ['0', '0'])
    const ends = reg.log.filter((a) => a.type === 'give_up').map((a) => `${a.call_id} ${a.reason} ${a.budget}`)
    assert.deepEqual(ends, Array(3).fill('1 network_error max_sends'))
    assert.deepEqual(reg.inputs.filter((i) => i.client_retry).length, 2)
  }
})

test('openai SDK: a probe reopens a key benched for hours by a usage limit, within the same SDK call', async () => {
  // Codex-style: the only key answers a 5 h usage limit; the fetch's probe (the host asking
  // the provider's usage endpoint) says it is lifted, so the request is resent on it.
  const usageLimit = () =>
    reply.openaiError(429, { type: 'usage_limit_reached', message: 'The usage limit has been reached', resets_in_seconds: 18000 })
  const reg = recording(makeRegistry([['openai-codex', 'a', KEYS.a]]))
  provider.reset(inOrder(usageLimit()))
  const probed = []
  const probe = async (credential) => (probed.push([credential.entryId, credential.accessToken]), true)
  const client = openai(credentialFetch(reg, 'openai-codex', { ...fakeClock(), probe }))
  const completion = await client.chat.completions.create(chat)
  assert.equal(completion.choices[0].message.content, 'hi')
  assert.deepEqual(probed, [['a', KEYS.a]])
  assert.deepEqual(steps(reg), ['send a', 'probe a (usage_limit)', 'send a (quota_restored)', 'done a'])
  assert.deepEqual(provider.perKey(), { [KEYS.a]: 2 })
})

test('plain fetch: a network error is reported as one and rethrown when the call gives up', async () => {
  const reg = recording(openaiKeys())
  const closed = await startProvider()
  const url = `${closed.url}/v1/chat/completions`
  await closed.stop()
  const fetch = credentialFetch(reg, 'openai', { ...fakeClock(), maxSends: 2 })
  const err = await thrown(() => fetch(url, { method: 'POST', body: JSON.stringify(chat) }))
  assert.ok(err instanceof TypeError && /fetch failed/.test(err.message), String(err))
  assert.deepEqual(reports(reg), ['connect', 'connect'])
  assert.match(steps(reg).at(-1), /^give_up/)
})

test('an AbortSignal aborting during a sleep cancels the call at once (openai SDK and plain fetch)', async () => {
  const raw = makeRegistry([['openai', 'a', KEYS.a]])
  for (const via of ['sdk', 'fetch']) {
    const reg = recording(raw)
    provider.reset(inOrder(errors.openai429({ reset: '20s', retryAfter: '20' })))
    const fetch = credentialFetch(reg, 'openai') // the default, timer-based sleep
    const controller = new AbortController()
    const reason = new Error('user stopped it')
    setTimeout(() => controller.abort(reason), 100)
    const started = Date.now()
    const err = await thrown(() =>
      via === 'sdk'
        ? openai(fetch).chat.completions.create(chat, { signal: controller.signal })
        : fetch(`${provider.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(chat), signal: controller.signal }),
    )
    assert.ok(Date.now() - started < 5000, `${via}: did not sleep the 20 s`)
    if (via === 'fetch') assert.equal(err, reason)
    else assert.ok(err instanceof OpenAI.APIUserAbortError, String(err))
    assert.deepEqual(steps(reg), ['send a', 'sleep 20000 (rate_limit)', 'call_cancelled'], via)
    assert.equal(provider.hits.length, 1)
    // nothing marked by the cancel: the key is as the 429 left it
    assert.equal(entryStatus(raw, 'openai', 'a', Date.now()).health, 'available')
  }
})

test('no secret in thrown errors (message, JSON, inspect) or in console output, SDK debug logging on', async () => {
  const seen = []
  const logger = { debug: (...a) => seen.push(a), info: (...a) => seen.push(a), warn: (...a) => seen.push(a), error: (...a) => seen.push(a) }
  const original = {}
  for (const name of ['log', 'info', 'warn', 'error', 'debug']) {
    original[name] = console[name]
    console[name] = (...a) => seen.push(a)
  }
  const errs = []
  try {
    const reg = openaiKeys()
    const clock = fakeClock()
    provider.reset(() => errors.openai401())
    errs.push(await thrown(() => openai(credentialFetch(reg, 'openai', clock), { logger, logLevel: 'debug' }).chat.completions.create(chat)))
    // now both keys are dead: nothing to send
    errs.push(await thrown(() => credentialFetch(reg, 'openai', clock)(`${provider.url}/v1/chat/completions`, { method: 'POST' })))
    const ant = makeRegistry([['anthropic', 'o', OAUTH.access, { auth_type: 'oauth', refresh_token: OAUTH.refresh }]])
    provider.reset(() => errors.anthropic401('OAuth token has expired.'))
    errs.push(await thrown(() => anthropic(credentialFetch(ant, 'anthropic'), { logger, logLevel: 'debug' }).messages.create(message)))
  } finally {
    Object.assign(console, original)
  }
  assert.ok(errs[1] instanceof CredpoolError && errs[1].code === 'no_credential', String(errs[1]))
  // no refresh callback: the expired OAuth key is marked, and the provider's 401 comes back
  assert.ok(errs[2] instanceof Anthropic.AuthenticationError && errs[2].status === 401, String(errs[2]))
  assert.ok(seen.length > 0, 'the SDK logged')
  for (const e of errs) {
    for (const text of [e.message, JSON.stringify(e), inspect(e, { depth: 8, showHidden: true }), String(e.stack)]) {
      assert.ok(!text.includes(SECRET), `a secret in ${text.slice(0, 200)}`)
    }
  }
  const logged = inspect(seen, { depth: 8 })
  assert.ok(!logged.includes(SECRET), 'a secret in console or SDK log output')
})

test("README: the drop-in example runs with the real SDKs (their default endpoints routed to the mock)", async () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
  const code = /<!-- example: typescript-fetch -->\s*\n```ts\n([\s\S]*?)\n```/.exec(readme)?.[1]
  assert.ok(code, 'README.md has the typescript-fetch example')
  // the engine under test (napi or wasm) and the fetch module of this tree
  const source = code
    .replace("import { Registry } from 'credpool'", `import { credpool } from ${JSON.stringify(new URL('./impl.mjs', import.meta.url).href)}\nconst { Registry } = credpool`)
    .replace("from 'credpool/fetch'", `from ${JSON.stringify(new URL('../../bindings-node/fetch.mjs', import.meta.url).href)}`)
  assert.ok(!/from 'credpool/.test(source))
  // beside this file, so that 'openai' and '@anthropic-ai/sdk' resolve from tests/node
  const file = new URL(`./.readme-fetch-${process.pid}.mjs`, import.meta.url)
  writeFileSync(file, source)
  const realFetch = globalThis.fetch
  globalThis.fetch = (url, init) => realFetch(String(url).replace(/^https:\/\/api\.(openai|anthropic)\.com/, provider.url), init)
  const printed = []
  const log = console.log
  console.log = (...a) => printed.push(a.join(' '))
  provider.reset()
  try {
    await import(file.href)
  } finally {
    console.log = log
    globalThis.fetch = realFetch
    rmSync(file, { force: true })
  }
  assert.deepEqual(printed, ['hi text'])
  assert.deepEqual(
    provider.hits.map((h) => [h.path, h.authorization, h.xApiKey]),
    [
      ['/v1/chat/completions', 'Bearer sk-first', null],
      ['/v1/messages', null, 'sk-ant-work'],
    ],
  )
})
