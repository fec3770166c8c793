// Idiomatic JS helpers over a credpool `Registry` (napi or wasm build alike).
//
// Pure JS: nothing here imports the native module; every function takes the registry
// object (a `Registry`, or a `Store`: `FileStore` is its deprecated alias, the same class)
// and uses only its public methods. There is no policy here either: `withCredential` is a
// loop over core's call driver (`handle` with `call_*` inputs), which decides; the helpers
// translate provider responses into reports and do the one action core answers.

import { builtinRefresh } from './oauth.mjs'

/** Most body bytes read from a response for a report. */
const MAX_BODY_BYTES = 64 * 1024

/** The constructor names on `value`'s prototype chain (structural detection, no imports). */
function classNames(value) {
  const names = []
  for (let p = Object.getPrototypeOf(value); p && names.length < 16; p = Object.getPrototypeOf(p)) {
    const name = p.constructor?.name
    if (typeof name === 'string' && name) names.push(name)
  }
  return names
}

/** Transport error codes (Node, undici) and the `network_error` kind they report as. */
const NETWORK_CODES = {
  ECONNREFUSED: 'connect',
  ENOTFOUND: 'connect',
  EAI_AGAIN: 'connect',
  EHOSTUNREACH: 'connect',
  ENETUNREACH: 'connect',
  EHOSTDOWN: 'connect',
  UND_ERR_CONNECT_TIMEOUT: 'timeout',
  ECONNRESET: 'reset',
  EPIPE: 'reset',
  ECONNABORTED: 'reset',
  UND_ERR_SOCKET: 'reset',
  UND_ERR_CLOSED: 'reset',
  ETIMEDOUT: 'timeout',
  ESOCKETTIMEDOUT: 'timeout',
  UND_ERR_HEADERS_TIMEOUT: 'timeout',
  UND_ERR_BODY_TIMEOUT: 'timeout',
}

/** The network kind of an error or of one of its causes (depth-limited), or null. */
function networkKind(err) {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 8; e = e.cause, depth++) {
    if (e.name === 'TimeoutError') return 'timeout'
    if (typeof e.code === 'string' && Object.hasOwn(NETWORK_CODES, e.code)) return NETWORK_CODES[e.code]
  }
  return null
}

/** `true` for a fetch `Response` (or a structurally identical object from another realm). */
function isResponse(value) {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof value.status === 'number' &&
    typeof value.clone === 'function' &&
    typeof value.ok === 'boolean' &&
    value.headers !== null &&
    typeof value.headers === 'object' &&
    typeof value.headers.get === 'function'
  )
}

/** Headers of any common shape as a plain object with lower-cased names, or undefined. */
function plainHeaders(headers) {
  if (headers === null || typeof headers !== 'object') return undefined
  const out = {}
  const add = (name, value) => {
    if (value === undefined || value === null) return
    out[String(name).toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
  }
  if (typeof headers.forEach === 'function' && !Array.isArray(headers)) {
    // Headers, Map
    headers.forEach((value, name) => add(name, value))
  } else if (Array.isArray(headers)) {
    for (const pair of headers) if (Array.isArray(pair) && pair.length === 2) add(pair[0], pair[1])
  } else {
    for (const [name, value] of Object.entries(headers)) add(name, value)
  }
  return Object.keys(out).length ? out : undefined
}

/** Text bounded to MAX_BODY_BYTES. */
function boundedText(text) {
  if (text.length <= MAX_BODY_BYTES / 4) return text
  const bytes = new TextEncoder().encode(text)
  return bytes.length <= MAX_BODY_BYTES ? text : new TextDecoder().decode(bytes.subarray(0, MAX_BODY_BYTES))
}

/** Body text parsed as JSON when it parses, else the text; undefined when empty. */
function parsedBody(text) {
  if (text === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** Reads at most MAX_BODY_BYTES of a clone of `response`; the original stays unread. */
async function readBody(response) {
  let clone
  try {
    if (response.bodyUsed) return undefined
    clone = response.clone()
  } catch {
    return undefined
  }
  if (!clone.body) return undefined
  const reader = clone.body.getReader()
  const chunks = []
  let total = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      total += value.byteLength
      if (total >= MAX_BODY_BYTES) {
        // Not awaited: cancelling one branch of a tee settles only once both are cancelled.
        reader.cancel().catch(() => {})
        break
      }
    }
  } catch {
    // A body that fails mid-way still gives what was read.
  }
  const bytes = new Uint8Array(Math.min(total, MAX_BODY_BYTES))
  let offset = 0
  for (const chunk of chunks) {
    if (offset >= bytes.length) break
    const part = chunk.subarray(0, bytes.length - offset)
    bytes.set(part, offset)
    offset += part.length
  }
  return parsedBody(new TextDecoder().decode(bytes))
}

/** A plain body value bounded for a report. */
function plainBody(body) {
  if (body === undefined || body === null) return undefined
  if (typeof body === 'string') return parsedBody(boundedText(body))
  return body
}

/**
 * What a provider call produced, as the `response` of a credpool report:
 * `{ status?, headers?, body?, network_error? }`, or `null` when `value` is unrelated to a
 * provider call (a bug in the caller's code, a user abort of the `openai` SDK).
 *
 * Understands:
 * - a fetch `Response`: status, headers (plain object, lower-cased names) and, for an
 *   error status (>= 400), the body read from `response.clone()` (JSON when it parses,
 *   else text, at most 64 KiB). Success bodies are not read, so a streamed 2xx body is
 *   never held back; the original response is left unread either way;
 * - the `openai` SDK's `APIError` family (detected structurally, no import): status,
 *   headers and `{ error: err.error }` as the body; `APIConnectionError` and
 *   `APIConnectionTimeoutError` become `network_error`;
 * - fetch network failures (`TypeError: fetch failed` with a `cause`), `AbortError` and
 *   `TimeoutError` DOMExceptions, and errors carrying a Node/undici transport code
 *   (`ECONNREFUSED`, `ECONNRESET`, ...): `network_error` (`connect`, `reset`, `timeout`,
 *   `abort` or `network`);
 * - an error with a `response` that is a fetch `Response` (as some HTTP clients throw);
 * - a plain object (or an error) with a numeric `status`, or with a `network_error`
 *   string: `status`, `headers`, `body` and `network_error` taken from it.
 *
 * @param {unknown} value A `Response`, a thrown error, or a plain `{ status, headers?, body? }`.
 * @returns {Promise<import('./helpers.d.mts').ResponseInfo | null>}
 */
export async function responseInfo(value) {
  if (value === null || typeof value !== 'object') return null
  if (isResponse(value)) {
    const info = { status: value.status }
    const headers = plainHeaders(value.headers)
    if (headers) info.headers = headers
    if (value.status >= 400) {
      const body = await readBody(value)
      if (body !== undefined) info.body = body
    }
    return info
  }
  const names = value instanceof Error || typeof value.name === 'string' ? classNames(value) : []
  const isNamed = (n) => names.includes(n) || value.name === n
  // openai SDK (and other Stainless SDKs): APIError family.
  if (isNamed('APIUserAbortError')) return null
  if (isNamed('APIConnectionTimeoutError')) return { network_error: 'timeout' }
  if (isNamed('APIConnectionError')) return { network_error: networkKind(value.cause) ?? 'connect' }
  const apiError = isNamed('APIError') || (value instanceof Error && 'error' in value && 'headers' in value)
  if (apiError && typeof value.status === 'number') {
    const info = { status: value.status }
    const headers = plainHeaders(value.headers)
    if (headers) info.headers = headers
    if (value.error !== undefined && value.error !== null) info.body = { error: value.error }
    return info
  }
  // fetch and DOM-style failures.
  if (value.name === 'AbortError') return { network_error: 'abort' }
  if (value.name === 'TimeoutError') return { network_error: 'timeout' }
  if (value instanceof TypeError && value.cause !== undefined && /fetch failed|network/i.test(value.message)) {
    return { network_error: networkKind(value.cause) ?? 'network' }
  }
  const kind = networkKind(value)
  if (kind) return { network_error: kind }
  if (isResponse(value.response)) return responseInfo(value.response)
  // Plain `{ status, headers?, body? }` (or an error carrying them).
  if (typeof value.status === 'number' || typeof value.network_error === 'string') {
    const info = {}
    if (typeof value.status === 'number') info.status = value.status
    if (typeof value.network_error === 'string') info.network_error = value.network_error
    const headers = plainHeaders(value.headers)
    if (headers) info.headers = headers
    const body = plainBody(value.body)
    if (body !== undefined) info.body = body
    if (typeof value.model === 'string') info.model = value.model
    return info
  }
  return null
}

/**
 * Reports a provider response (or thrown provider error) against a lease and returns
 * core's decision: `registry.report(pool, leaseId, await responseInfo(response), now)`.
 *
 * @param {import('./helpers.d.mts').RegistryLike} registry
 * @param {string} pool
 * @param {number} leaseId
 * @param {unknown} response Anything {@link responseInfo} understands.
 * @param {number} [now] Clock in ms (default: the binding's wall clock).
 * @returns {Promise<import('./helpers.d.mts').Decision>}
 * @throws {TypeError} when `response` is not something {@link responseInfo} understands.
 */
export async function reportResponse(registry, pool, leaseId, response, now) {
  const info = await responseInfo(response)
  if (info === null) {
    throw new TypeError('reportResponse: not a provider response or provider error')
  }
  return registry.report(pool, leaseId, info, now)
}

/**
 * The error the helpers throw themselves, shaped like the bindings' errors: an `Error`
 * with a stable `code` and, when a driver action caused it, that `action`.
 * Codes: `no_credential` (the call gave up before `fn` produced anything: nothing usable,
 * or a wait or budget the call may not spend; or an OAuth refresh core asked for with no
 * `refresh` callback given) and `internal`. Both are in core's `errorCodes()`.
 */
export class CredpoolError extends Error {
  /**
   * @param {string} message
   * @param {{ code: string, action?: object, cause?: unknown }} details
   */
  constructor(message, { code, action, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'CredpoolError'
    this.code = code
    if (action !== undefined) this.action = action
  }
}

const inspectSymbol = Symbol.for('nodejs.util.inspect.custom')

/**
 * An entry's secrets for one request. The tokens live in private fields behind getters,
 * so `JSON.stringify`, `console.log` / `util.inspect` (even with `showHidden`),
 * `Object.keys` and spreading never show them.
 */
export class Credential {
  #accessToken
  #refreshToken

  /**
   * @param {object} fields `{ pool, model, entryId, leaseId, authType, baseUrl, generation?, expiresAt? }`
   * @param {string | undefined} accessToken
   * @param {string | undefined} refreshToken
   */
  constructor(fields, accessToken, refreshToken) {
    this.pool = fields.pool
    this.model = fields.model
    this.entryId = fields.entryId
    this.leaseId = fields.leaseId
    this.authType = fields.authType
    this.baseUrl = fields.baseUrl
    this.generation = fields.generation
    this.expiresAt = fields.expiresAt
    this.#accessToken = accessToken
    this.#refreshToken = refreshToken
    Object.freeze(this)
  }

  /** The API key or OAuth access token (not enumerable, never serialised). */
  get accessToken() {
    return this.#accessToken
  }

  /** The OAuth refresh token, if any (not enumerable, never serialised). */
  get refreshToken() {
    return this.#refreshToken
  }

  /** JSON form without the secrets. */
  toJSON() {
    return { ...this, accessToken: '[redacted]' }
  }

  /** `util.inspect` / `console.log` form without the secrets. */
  [inspectSymbol](depth, options, inspect) {
    const shown = { ...this, accessToken: '[redacted]' }
    return `Credential ${typeof inspect === 'function' ? inspect(shown, options) : JSON.stringify(shown)}`
  }
}

/** The `Credential` of a driver `send` action. */
function sendCredential(action) {
  return new Credential(
    {
      pool: action.pool,
      model: action.model,
      entryId: action.entry_id,
      leaseId: action.lease_id,
      authType: action.auth_type,
      baseUrl: action.base_url,
    },
    action.access_token ?? undefined,
    undefined,
  )
}

/** The `Credential` a refresh callback gets, from a `credential` output (only OAuth entries refresh). */
function refreshCredential(c, pool, model, leaseId) {
  return new Credential(
    {
      pool,
      model,
      entryId: c.entry_id,
      leaseId,
      authType: 'oauth',
      baseUrl: c.base_url,
      generation: c.generation,
      expiresAt: c.expires_at,
    },
    c.access_token ?? undefined,
    c.refresh_token ?? undefined,
  )
}

/** `setTimeout` as a promise, rejecting with the signal's reason on abort. */
function defaultSleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** The `call_start` input: the options the driver takes, in its snake_case, when given. */
function callStart(pool, options) {
  const input = { type: 'call_start', pool }
  const names = {
    model: 'model',
    session: 'session',
    maxSends: 'max_sends',
    maxWaitMs: 'max_wait_ms',
    maxTotalWaitMs: 'max_total_wait_ms',
    maxHops: 'max_hops',
    api: 'api',
    url: 'url',
    requestId: 'request_id',
    clientRetry: 'client_retry',
    probe: 'probe',
    spread: 'spread',
    canRefresh: 'can_refresh',
  }
  for (const [option, field] of Object.entries(names)) {
    if (options[option] !== undefined && options[option] !== null) input[field] = options[option]
  }
  return input
}

/**
 * Calls `fn(arg)`: `{ value, info }` for what it returned (a fetch `Response` as
 * {@link responseInfo} reads it, anything else as a success), `{ error, info }` for a
 * provider error it threw. Anything else it throws, and anything once `signal` aborted,
 * is rethrown.
 */
async function produce(fn, arg, signal) {
  let value
  try {
    value = await fn(arg)
  } catch (error) {
    const info = signal?.aborted ? null : await responseInfo(error)
    if (info === null) throw error
    return { error, info }
  }
  return { value, info: isResponse(value) ? await responseInfo(value) : { status: 200 } }
}

/** `true` for a 2xx `Response` whose body is there to be read. */
function hasBody(value) {
  return (
    isResponse(value) &&
    value.ok &&
    typeof value.body?.getReader === 'function' &&
    !value.bodyUsed &&
    !value.body.locked
  )
}

/** What a failure of a response body reports as (any read failure is a transport one). */
async function bodyFailure(error) {
  const info = await responseInfo(error)
  return info?.network_error ? { network_error: info.network_error } : { network_error: networkKind(error) ?? 'network' }
}

/**
 * `response` again, its body handed through from `reader` (whose `first` read is done):
 * `end(info)` is called once, before the caller sees the end — `info` is the response's
 * report when the body ends, the failure's when it fails (the error still reaches the
 * reader), `null` when the caller cancels it.
 */
function tracked(response, info, reader, first, end) {
  let pending = first
  let ended = false
  const once = async (outcome) => {
    if (ended) return
    ended = true
    await end(outcome)
  }
  const body = new ReadableStream({
    async pull(controller) {
      let chunk
      try {
        chunk = pending ?? (await reader.read())
      } catch (error) {
        await once(await bodyFailure(error))
        controller.error(error)
        return
      }
      pending = null
      if (!chunk.done) return controller.enqueue(chunk.value)
      await once(info)
      controller.close()
    },
    async cancel(reason) {
      await once(null)
      await reader.cancel(reason)
    },
  })
  return new Response(body, response)
}

/** Cancels the body of a response nobody will read. */
function discard(value) {
  if (isResponse(value) && !value.bodyUsed) value.body?.cancel?.().catch?.(() => {})
}

/**
 * Runs `fn` with credentials of `pool` under one call of core's call driver (SPEC §7):
 * starts the call, does the one action core answers, reports what it produced, and
 * repeats. Every rule (retry, rotation, refresh, fallback, wait, the budgets) is core's.
 *
 * Actions:
 * - `send`: `fn(credential)` runs; what it returned or threw is reported with
 *   {@link responseInfo}: a returned 429/402/401 `Response` is a 429/402/401 like a thrown
 *   `RateLimitError`. A value that is not a `Response` is a success. `fn` throwing anything
 *   else (a bug) cancels the call (nothing marked) and the error is rethrown.
 * - `sleep`: `options.sleep(until - now())`, then the call resumes.
 * - `refresh`: `options.refresh(credential)` with the entry's refresh token; over a store
 *   (`beginRefresh`), single-flight across processes: a token another process already
 *   rotated is adopted and `refresh` not called. Without a `refresh` callback the call
 *   starts with `can_refresh: 'built_in'` and core's built-in refreshers serve the
 *   providers that have one (`oauth.mjs` carries out their HTTP); for other OAuth entries
 *   core passes over an expiring key and marks and rotates on a 401. A throwing `refresh`
 *   cancels the call and its error is rethrown (its token counts as sent: SECURITY.md).
 * - `done`: `fn`'s value is returned.
 * - `give_up`: the last provider error `fn` threw is rethrown, else the last `Response` it
 *   returned is returned as fetch would (check `response.ok`), else a
 *   {@link CredpoolError} `no_credential` is thrown with the `action`.
 *
 * A 2xx `Response` with a body is a stream: once its first chunk arrived (a failure before
 * that is an ordinary outcome, and may be retried) it is returned at once as a new
 * `Response` over the same body, status and headers, and the call stays open until the
 * body ends (reported as the success), fails (reported as delivered: the call ends, the
 * error reaches the reader, nothing is resent) or the caller cancels it (the call is
 * cancelled). Bodies of responses not returned are cancelled. `options.signal` aborting
 * cancels the call and throws its reason.
 *
 * @template T
 * @param {import('./helpers.d.mts').RegistryLike} registry
 * @param {string} pool
 * @param {(credential: Credential) => T | Promise<T>} fn
 * @param {import('./helpers.d.mts').WithCredentialOptions} [options]
 * @returns {Promise<T>}
 */
export async function withCredential(registry, pool, fn, options = {}) {
  if (options.maxAttempts !== undefined) {
    throw new TypeError('withCredential: maxAttempts is gone; the call driver budgets sends with maxSends')
  }
  return driveCall(registry, pool, (action) => fn(sendCredential(action)), options)
}

/**
 * One call of core's call driver (SPEC §7), the loop every helper here runs: starts a
 * call on `pool` (`call_start` with the options the driver takes: `model`, `session`,
 * `api`, `url` and the budgets), does the one action core answers, reports what it
 * produced, and repeats. Every rule (retry, rotation, refresh, fallback, wait, the
 * budgets) is core's; {@link withCredential} and `credentialFetch` (`./fetch.mjs`) differ
 * only in `attempt`, the send.
 *
 * - `send`: `attempt(action)` runs; what it returned or threw is reported with
 *   {@link responseInfo} (a value that is not a `Response` is a success). It throwing
 *   anything else (a bug) cancels the call (nothing marked) and the error is rethrown.
 * - `sleep`: `options.sleep(until - now(), signal)`, then the call resumes.
 * - `refresh`: `options.refresh(credential)`; over a store (`beginRefresh`) single-flight
 *   across processes. Without a callback, core's built-in refreshers serve the providers
 *   that have one (`can_refresh: 'built_in'`); a throwing `refresh` cancels the call.
 * - `done`: the last send's value (or its error, rethrown).
 * - `give_up`: the last provider error rethrown, else `options.givenUp(response)` of the
 *   last `Response` (default: the response itself), else {@link CredpoolError} `no_credential`.
 *
 * A 2xx `Response` with a body comes back at its first chunk as a new `Response` over the
 * same body; the call ends when that body does (see {@link withCredential}).
 * `options.signal` aborting cancels the call and throws its reason.
 *
 * @template T
 * @param {import('./helpers.d.mts').RegistryLike} registry
 * @param {string} pool
 * @param {(action: import('./wire.js').ActionOutput & { type: 'send' }) => T | Promise<T>} attempt
 * @param {import('./helpers.d.mts').DriveCallOptions} [options]
 * @returns {Promise<T>}
 */
export async function driveCall(registry, pool, attempt, options = {}) {
  const { now = () => Date.now(), sleep = defaultSleep, probe, signal, givenUp = (response) => response } = options
  // Without a refresh callback, core's built-in refreshers serve the providers that have one.
  const refresh = options.refresh ?? builtinRefresh(registry, now)
  // A `Registry` answers at once, a `Store` with a promise: always a promise here.
  const handle = async (input) => registry.handle(input, now())
  signal?.throwIfAborted()
  const canRefresh = options.refresh === undefined ? 'built_in' : undefined
  let action = await handle(callStart(pool, { ...options, probe: typeof probe === 'function' || undefined, canRefresh }))
  const call = { call_id: action.call_id }
  /** Whether the call is ours to cancel: until it ends, or a returned stream takes it. */
  let open = true
  /** The model of the last send (a refresh's credential carries it). */
  let model = options.model
  /** What the last send produced: `{ value, info }` or `{ error, info }`. */
  let last
  const cancel = () => handle({ type: 'call_cancel', ...call }).catch(() => {})
  const report = (response, delivered) => handle({ type: 'call_report', ...call, response, ...(delivered && { delivered }) })
  try {
    for (;;) {
      switch (action.type) {
        case 'send': {
          signal?.throwIfAborted()
          model = action.model
          discard(last?.value) // a new send: the last response will not be returned
          last = await produce(attempt, action, signal)
          if (hasBody(last.value)) {
            const reader = last.value.body.getReader()
            let first
            try {
              first = await reader.read()
            } catch (error) {
              if (signal?.aborted) throw error
              // Nothing reached the caller: an outcome like any other.
              last = { error, info: await bodyFailure(error) }
              action = await report(last.info)
              continue
            }
            if (!first.done) {
              const end = (info) => (info && !signal?.aborted ? report(info, true) : cancel()).catch(() => {})
              open = false
              return tracked(last.value, last.info, reader, first, end)
            }
            last.value = new Response(null, last.value) // read to its (empty) end
          }
          action = await report(last.info)
          continue
        }
        case 'sleep':
          await sleep(Math.max(0, action.until - now()), signal)
          signal?.throwIfAborted()
          action = await handle({ type: 'call_resume', ...call })
          continue
        case 'refresh': {
          if (typeof refresh !== 'function') {
            throw new CredpoolError(
              `entry ${action.entry_id} of ${action.pool} needs an OAuth refresh and no refresh callback was given`,
              { code: 'no_credential', action },
            )
          }
          const { pool: at, entry_id: entryId, generation, lease_id: leaseId } = action
          const fresh = (c) => refresh(refreshCredential(c, at, model, leaseId))
          if (typeof registry.beginRefresh === 'function') {
            // Core records the refresh (or the adoption) on the call's lease; resume follows it.
            await refreshWithStore(registry, at, entryId, generation, leaseId, fresh, now)
            signal?.throwIfAborted()
            action = await handle({ type: 'call_resume', ...call })
          } else {
            const result = await fresh(await registry.credential(at, entryId, now()))
            signal?.throwIfAborted()
            action = await handle({ type: 'call_refreshed', ...call, result })
          }
          continue
        }
        case 'probe': {
          // A key benched by a rate limit for long: the host asks its provider early.
          const restored = Boolean(await probe(sendCredential({ ...action, model })))
          signal?.throwIfAborted()
          action = await handle({ type: 'call_probed', ...call, restored })
          continue
        }
        case 'done':
          open = false
          if (last && 'error' in last) throw last.error
          return last?.value
        case 'give_up':
          open = false
          if (last && 'error' in last) throw last.error
          if (isResponse(last?.value)) return givenUp(last.value)
          throw new CredpoolError(
            `no credential for ${pool}: ${action.reason}${action.status ? ` (${action.status})` : ''}${action.budget ? `, ${action.budget} reached` : ''}`,
            { code: 'no_credential', action },
          )
        default:
          throw new CredpoolError(`unknown action type ${action.type}`, { code: 'internal', action })
      }
    }
  } catch (error) {
    if (open) await cancel()
    discard(last?.value)
    throw error
  }
}

/**
 * The helpers bound to one registry and pool, with default options.
 *
 * @example
 * const openrouter = new CredentialPool(registry, 'openrouter', { maxSends: 3 })
 * const res = await openrouter.withCredential((c) => fetch(url, { headers: { authorization: `Bearer ${c.accessToken}` } }))
 */
export class CredentialPool {
  /**
   * @param {import('./helpers.d.mts').RegistryLike} registry
   * @param {string} pool
   * @param {import('./helpers.d.mts').WithCredentialOptions} [defaults]
   */
  constructor(registry, pool, defaults = {}) {
    this.registry = registry
    this.pool = pool
    this.defaults = defaults
  }

  /**
   * {@link withCredential} on this pool; `options` override the defaults.
   * @template T
   * @param {(credential: Credential) => T | Promise<T>} fn
   * @param {import('./helpers.d.mts').WithCredentialOptions} [options]
   * @returns {Promise<T>}
   */
  withCredential(fn, options = {}) {
    return withCredential(this.registry, this.pool, fn, { ...this.defaults, ...options })
  }

  /**
   * {@link reportResponse} on this pool.
   * @param {number} leaseId
   * @param {unknown} response
   * @param {number} [now]
   * @returns {Promise<import('./helpers.d.mts').Decision>}
   */
  reportResponse(leaseId, response, now) {
    return reportResponse(this.registry, this.pool, leaseId, response, now)
  }
}

/**
 * The whole single-flight OAuth refresh over a napi `Store` (SQLite or Redis; `FileStore`,
 * its deprecated alias, is the same class; a `refresh` decision's `entry_id`, `generation`
 * and `lease_id`): `beginRefresh` takes the refresh lock; when another process already
 * rotated the token, its decision comes back (`fn` is not called); otherwise
 * `confirmRefresh` checks, right before the refresh token is used, that the lock is still
 * held (a Redis lock whose lease ran out is retaken, or the token rotated meanwhile
 * adopted), then `fn(credential)` refreshes — it runs while the lock is held, so no other
 * process replays the single-use refresh token — and its `RefreshOutcome` is recorded with
 * `finishRefresh`. When `fn` throws, the refresh is abandoned (lock released, nothing
 * recorded) and the error is rethrown. Other calls on the store go on meanwhile.
 *
 * @param {import('./helpers.d.mts').StoreLike} store
 * @param {string} pool
 * @param {string} entryId
 * @param {number} generation
 * @param {number | null | undefined} leaseId
 * @param {(credential: import('./wire.js').CredentialOutput) => import('./wire.js').RefreshOutcome | Promise<import('./wire.js').RefreshOutcome>} fn
 * @param {() => number} [now] Clock in ms for each step (default: the store's wall clock).
 * @returns {Promise<import('./helpers.d.mts').Decision>}
 */
export async function refreshWithStore(store, pool, entryId, generation, leaseId, fn, now) {
  let start = await store.beginRefresh(pool, entryId, generation, leaseId ?? null, now?.())
  if (start.type === 'needed' && typeof store.confirmRefresh === 'function') {
    start = await store.confirmRefresh(start.ticket, now?.())
  }
  if (start.type === 'adopted') return start.decision
  let outcome
  try {
    outcome = await fn(start.credential)
  } catch (e) {
    store.abandonRefresh(start.ticket)
    throw e
  }
  return store.finishRefresh(start.ticket, outcome, now?.())
}
