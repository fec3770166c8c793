// A local mock of the OpenAI and Anthropic HTTP APIs (node:http on 127.0.0.1) for the
// tests of credentialFetch with the real SDKs. It answers with the providers' real
// headers and bodies: OpenAI chat.completions JSON and SSE (`data:` chunks, `data: [DONE]`),
// Anthropic messages JSON and SSE events, each provider's error shape and rate-limit
// headers. It records, per request, the credential and the headers that carried it.
import { createServer } from 'node:http'

/** The credential a request carried: `{ scheme, key }` from `authorization` or `x-api-key`. */
function credentialOf(headers) {
  const bearer = /^Bearer (.+)$/.exec(headers.authorization ?? '')
  if (bearer) return { scheme: 'bearer', key: bearer[1] }
  if (headers['x-api-key']) return { scheme: 'x-api-key', key: headers['x-api-key'] }
  return { scheme: null, key: null }
}

const sse = (data) => `data: ${JSON.stringify(data)}\n\n`
const event = (type, data) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`

/** OpenAI rate-limit headers (durations as OpenAI writes them: `1s`, `6m0s`, `20ms`). */
export function openaiLimits({ remaining = 59, reset = '1s' } = {}) {
  return {
    'x-ratelimit-limit-requests': '60',
    'x-ratelimit-remaining-requests': String(remaining),
    'x-ratelimit-reset-requests': reset,
    'x-ratelimit-limit-tokens': '150000',
    'x-ratelimit-remaining-tokens': '149990',
    'x-ratelimit-reset-tokens': '4ms',
  }
}

/** Anthropic rate-limit headers (`reset` is an RFC 3339 instant). */
export function anthropicLimits({ remaining = 49, reset = new Date(Date.now() + 1000) } = {}) {
  return {
    'anthropic-ratelimit-requests-limit': '50',
    'anthropic-ratelimit-requests-remaining': String(remaining),
    'anthropic-ratelimit-requests-reset': new Date(reset).toISOString().replace(/\.\d+Z$/, 'Z'),
    'anthropic-ratelimit-tokens-limit': '40000',
    'anthropic-ratelimit-tokens-remaining': '39990',
    'anthropic-ratelimit-tokens-reset': new Date(reset).toISOString().replace(/\.\d+Z$/, 'Z'),
  }
}

/**
 * A 200: `json` as JSON, or, when the request streams, the `first` events, then (once
 * they are written) the `rest`, or with `failMidway` the connection cut instead.
 */
function success(res, hit, headers, { json, first, rest, failMidway }) {
  if (!hit.stream) {
    res.writeHead(200, { 'content-type': 'application/json', ...headers })
    return res.end(JSON.stringify(json))
  }
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...headers })
  res.write(first.join(''), () => {
    if (failMidway) return setTimeout(() => res.socket?.destroy(), 20)
    res.end(rest.join(''))
  })
}

/** Replies: each `(res, hit)` writes a whole response. */
export const reply = {
  /** An OpenAI chat completion (JSON, or SSE chunks ending `data: [DONE]` when the request streams). */
  openai: (text = 'hi', { failMidway = false } = {}) => (res, hit) => {
    const id = `chatcmpl-${hit.n}`
    const created = 1733480000
    const model = hit.model ?? 'gpt-4o-mini'
    const chunk = (delta, finish = null) =>
      sse({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_test', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })
    const [word, ...words] = text.split(' ')
    success(res, hit, { 'x-request-id': `req_${hit.n}`, 'openai-processing-ms': '12', ...openaiLimits() }, {
      json: {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null, annotations: [] }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: 9, completion_tokens: 1, total_tokens: 10 },
        service_tier: 'default',
        system_fingerprint: 'fp_test',
      },
      first: [chunk({ role: 'assistant', content: '', refusal: null }), chunk({ content: word })],
      rest: [...words.map((w) => chunk({ content: ` ${w}` })), chunk({}, 'stop'), 'data: [DONE]\n\n'],
      failMidway,
    })
  },
  /** An OpenAI error in OpenAI's shape. */
  openaiError: (status, error, headers = {}) => (res, hit) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-request-id': `req_${hit.n}`, ...headers })
    res.end(JSON.stringify({ error: { param: null, ...error } }))
  },
  /** An Anthropic message (JSON, or its SSE events when the request streams). */
  anthropic: (text = 'hi', { failMidway = false } = {}) => (res, hit) => {
    const id = `msg_${String(hit.n).padStart(24, '0')}`
    const model = hit.model ?? 'claude-sonnet-4-5'
    const delta = (t) => event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } })
    const [word, ...words] = text.split(' ')
    success(res, hit, { 'request-id': `req_${hit.n}`, 'anthropic-organization-id': 'org-test', ...anthropicLimits() }, {
      json: {
        id,
        type: 'message',
        role: 'assistant',
        model,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: 9, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      },
      first: [
        event('message_start', {
          message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 9, output_tokens: 1 } },
        }),
        event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
        event('ping', {}),
        delta(word),
      ],
      rest: [
        ...words.map((w) => delta(` ${w}`)),
        event('content_block_stop', { index: 0 }),
        event('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: words.length + 1 } }),
        event('message_stop', {}),
      ],
      failMidway,
    })
  },
  /** An Anthropic error in Anthropic's shape. */
  anthropicError: (status, type, message, headers = {}) => (res, hit) => {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${hit.n}`, ...headers })
    res.end(JSON.stringify({ type: 'error', error: { type, message }, request_id: `req_${hit.n}` }))
  },
}

/** Common errors, as the providers send them. */
export const errors = {
  /** OpenAI 429 with its rate-limit headers (reset in `reset`) and `retry-after`. */
  openai429: ({ reset = '20s', retryAfter = '20' } = {}) =>
    reply.openaiError(
      429,
      { message: 'Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): Limit 60, Used 60, Requested 1. Please try again in 20s.', type: 'requests', code: 'rate_limit_exceeded' },
      { ...openaiLimits({ remaining: 0, reset }), ...(retryAfter && { 'retry-after': retryAfter }) },
    ),
  /** OpenAI 401 for a wrong key (OpenAI echoes a masked key). */
  openai401: () => (res, hit) =>
    reply.openaiError(401, {
      message: `Incorrect API key provided: ${hit.key?.slice(0, 3)}****${hit.key?.slice(-2)}. You can find your API key at https://platform.openai.com/account/api-keys.`,
      type: 'invalid_request_error',
      code: 'invalid_api_key',
    })(res, hit),
  /** OpenRouter's 402 (OpenAI-compatible shape, numeric code). */
  openai402: () => reply.openaiError(402, { message: 'Insufficient credits. Add more using https://openrouter.ai/settings/credits', code: 402 }),
  /** OpenAI 403 (unsupported region). */
  openai403: () => reply.openaiError(403, { message: 'Country, region, or territory not supported', type: 'request_forbidden', code: 'unsupported_country_region_territory' }),
  /** Anthropic 429 with `retry-after` and its request reset instant. */
  anthropic429: ({ reset, retryAfter = '20' } = {}) =>
    reply.anthropicError(429, 'rate_limit_error', 'This request would exceed the rate limit for your organization of 50 requests per minute.', {
      ...anthropicLimits({ remaining: 0, reset }),
      'retry-after': retryAfter,
    }),
  anthropic401: (message = 'invalid x-api-key') => reply.anthropicError(401, 'authentication_error', message),
  anthropic403: () => reply.anthropicError(403, 'permission_error', 'Your API key does not have permission to use the specified resource.'),
  anthropic529: () => reply.anthropicError(529, 'overloaded_error', 'Overloaded'),
}

/**
 * Starts the mock provider. `provider.script(hit)` picks each reply (default: success in
 * the request's API shape); `provider.hits` records every request:
 * `{ n, method, path, scheme, key, authorization, xApiKey, beta, retryCount, model, stream }`.
 */
export async function startProvider() {
  const provider = {
    url: '',
    hits: [],
    script: null,
    reset(script = null) {
      this.hits = []
      this.script = script
    },
    /** Hits per key: `{ key: count }`. */
    perKey() {
      const out = {}
      for (const h of this.hits) out[h.key] = (out[h.key] ?? 0) + 1
      return out
    },
    async stop() {
      server.closeAllConnections?.()
      await new Promise((ok) => server.close(ok))
    },
  }
  const server = createServer((req, res) => {
    res.on('error', () => {})
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      let body = {}
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')
      } catch {}
      const { scheme, key } = credentialOf(req.headers)
      const hit = {
        n: provider.hits.length + 1,
        method: req.method,
        path: req.url,
        scheme,
        key,
        authorization: req.headers.authorization ?? null,
        xApiKey: req.headers['x-api-key'] ?? null,
        beta: req.headers['anthropic-beta'] ?? null,
        retryCount: req.headers['x-stainless-retry-count'] ?? null,
        model: typeof body.model === 'string' ? body.model : null,
        stream: body.stream === true,
      }
      provider.hits.push(hit)
      const anthropic = req.url.endsWith('/messages')
      const answer = provider.script?.(hit) ?? (anthropic ? reply.anthropic() : reply.openai())
      answer(res, hit)
    })
  })
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok))
  provider.url = `http://127.0.0.1:${server.address().port}`
  return provider
}
