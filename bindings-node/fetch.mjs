// `credentialFetch`: a `fetch` that sends each request with a credential of a credpool pool,
// for SDKs that take a `fetch` option (openai, @anthropic-ai/sdk, the Vercel AI SDK's
// providers) and for plain fetch users:
//
//   new OpenAI({ apiKey: 'unused', fetch: credentialFetch(registry, 'openai') })
//
// Pure JS like helpers.mjs (it imports nothing native), so it runs over the napi `Registry`
// or `Store` and over the wasm build alike: Node, Deno, Bun, edge runtimes, browsers.
// Each request is one call of core's call driver, run by the same loop as `withCredential`
// (`driveCall`); this module only turns a `send` action into a request.

import { CredpoolError, driveCall } from './helpers.mjs'

/** Request headers that carry a credential: removed before the send's own are set. */
const AUTH_HEADERS = ['authorization', 'x-api-key']

/**
 * The parts of a `fetch(input, init)` request, with a body that can be sent again (a
 * stream body is read once here) and, for a JSON object body, its parsed form.
 */
async function requestParts(input, init) {
  const request = input !== null && typeof input === 'object' && !(input instanceof URL) && typeof input.url === 'string'
    ? input
    : undefined
  const url = request ? request.url : String(input)
  // As fetch does: `init.headers`, when given, replace the request's.
  const headers = new Headers(init.headers ?? request?.headers)
  let body = init.body
  if (body === undefined && request?.body) body = new Uint8Array(await request.arrayBuffer())
  else if (body !== null && typeof body === 'object' && typeof body.getReader === 'function') {
    body = new Uint8Array(await new Response(body).arrayBuffer())
  }
  const rest = { ...init }
  delete rest.headers
  delete rest.body
  delete rest.signal
  if (request && rest.method === undefined) rest.method = request.method
  return { url, headers, body, json: jsonObject(body), signal: init.signal ?? request?.signal ?? undefined, init: rest }
}

/** A string or byte body parsed as a JSON object, or undefined. */
function jsonObject(body) {
  let text = body
  if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(body)
    } catch {
      return undefined
    }
  }
  if (typeof text !== 'string') return undefined
  try {
    const value = JSON.parse(text)
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined
  } catch {
    return undefined
  }
}

/**
 * Presents a `send`'s credential as its `auth` says: the caller's `authorization` and
 * `x-api-key` go, `auth.header` is `auth.prefix` + the token, and each `auth.extra` header
 * is set, or appended (`,value`) to the caller's own unless it is already there.
 */
function authorize(headers, action) {
  if (!action.auth) {
    throw new CredpoolError('a send without auth: the engine predates routed calls (call_start api/url)', { code: 'internal' })
  }
  const { header, prefix = '', extra = {} } = action.auth
  for (const name of AUTH_HEADERS) headers.delete(name)
  if (action.access_token !== null && action.access_token !== undefined) headers.set(header, prefix + action.access_token)
  for (const [name, value] of Object.entries(extra)) {
    const have = headers.get(name)
    if (have === null || have.trim() === '') headers.set(name, value)
    else if (!have.split(',').some((v) => v.trim() === value)) headers.set(name, `${have},${value}`)
  }
}

/**
 * The request's identity for core (`call_start` `request_id`): a SHA-256 of its method,
 * URL and body, so that a client's retry of it (the same bytes again) names the same call.
 */
async function requestId(request) {
  const { body } = request
  const parts = [`${String(request.init.method ?? 'GET').toUpperCase()} ${request.url}\n`]
  if (typeof body === 'string' || body instanceof URLSearchParams) parts.push(String(body))
  else if (body instanceof ArrayBuffer || ArrayBuffer.isView(body) || body instanceof Blob) parts.push(body)
  else if (body !== undefined && body !== null) return undefined // a FormData: no identity, every send a new call
  const digest = await globalThis.crypto.subtle.digest('SHA-256', await new Blob(parts).arrayBuffer())
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Whether the request is its client's retry: the openai and Anthropic SDKs (Stainless
 * SDKs) send `x-stainless-retry-count` (0 on the first send, then 1, 2, ...).
 */
function isClientRetry(headers) {
  const count = Number(headers.get('x-stainless-retry-count') ?? 0)
  return Number.isInteger(count) && count > 0
}

/** Statuses whose responses have no body (a `Response` refuses one). */
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/**
 * `response` with `x-should-retry: false`: the openai and Anthropic SDKs (and any Stainless
 * SDK) honour it, so they do not retry a request the driver already gave up on.
 */
function noRetry(response) {
  const headers = new Headers(response.headers)
  headers.set('x-should-retry', 'false')
  return new Response(NULL_BODY.has(response.status) ? null : response.body, {
    status: response.status,
    statusText: response.statusText,
    headers,
  })
}

/**
 * A `fetch` that sends each request with credentials of `pool`, under one call of core's
 * call driver per request (SPEC §7). Per request:
 *
 * - `call_start` on `pool` with the JSON body's `model` (when it has one), the request's
 *   `url`, `options.api` (the API shape of the requests this fetch carries; left out, a
 *   request with an `anthropic-version` header is `anthropic`, any other leaves it to core)
 *   and the budgets, its `request_id` (a digest of method, URL and body) and, for an SDK's
 *   retry (`x-stainless-retry-count` ≥ 1), `client_retry`: the retry then continues the
 *   call that gave up, with the budgets it spent, not a new turn;
 * - `send`: the request goes to `options.fetch` (default `globalThis.fetch`) with the
 *   send's credential (`authorization` / `x-api-key` replaced as its `auth` says), to the
 *   send's `url` when core rewrote it (an entry's `base_url`), with the JSON body's
 *   `model` rewritten when a fallback asks for another one, and the caller's `signal`.
 *   An error status is reported with its headers and body (at most 64 KiB, read from a
 *   clone); a 2xx body is never read: it comes back as it streams (after its first chunk),
 *   and the call ends when it does. A failure midway is reported as delivered (nothing is
 *   resent) and reaches the reader;
 * - `sleep`: an abortable sleep; `refresh`: `options.refresh` as in `withCredential`;
 * - `done`: the response; `give_up`: the last provider response with
 *   `x-should-retry: false` (so an SDK does not retry it), the last network error
 *   rethrown, or, when nothing was sent, a `CredpoolError` `no_credential`.
 *
 * The caller's `AbortSignal` holds end to end (the send and every sleep): on abort the
 * call is cancelled (nothing marked) and the signal's reason thrown.
 *
 * @param {import('./helpers.d.mts').RegistryLike} registry
 * @param {string} pool
 * @param {import('./fetch.d.mts').CredentialFetchOptions} [options]
 * @returns {typeof fetch}
 */
export function credentialFetch(registry, pool, options = {}) {
  if (typeof pool !== 'string') throw new TypeError('credentialFetch(registry, pool, options): pool must be a string')
  const { fetch: inner, api, ...driver } = options
  return async function fetch(input, init = {}) {
    const request = await requestParts(input, init ?? {})
    const model = typeof request.json?.model === 'string' ? request.json.model : undefined
    const shape = api ?? (request.headers.has('anthropic-version') ? 'anthropic' : undefined)
    const send = (action) => {
      const headers = new Headers(request.headers)
      authorize(headers, action)
      let body = request.body
      if (action.model !== undefined && action.model !== null && model !== undefined && action.model !== model) {
        body = JSON.stringify({ ...request.json, model: action.model })
        headers.delete('content-length')
      }
      const target = action.url ?? request.url
      return (inner ?? globalThis.fetch)(target, { ...request.init, headers, body, signal: request.signal })
    }
    return driveCall(registry, pool, send, {
      ...driver,
      model,
      api: shape,
      url: request.url,
      requestId: await requestId(request),
      clientRetry: isClientRetry(request.headers),
      signal: request.signal,
      givenUp: noRetry,
    })
  }
}
