// Idiomatic JS helpers over a credpool `Registry` (napi or wasm build alike).
//
// Pure JS: nothing here imports the native module; every function takes the registry
// object and uses only its public methods (`acquire`, `report`, `refreshResult`,
// `credential`, `release`). There is no policy here either: core decides, the helpers
// translate provider responses into reports and follow the decisions core returns.

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
 * with a stable `code` and, when a decision caused it, that `decision`.
 * Codes: `no_credential` (nothing usable: the acquire decision was `fail`, a `wait` beyond
 * the budget, a fallback loop, or an OAuth refresh core asked for with no `refresh`
 * callback given) and `internal`. Both are in core's `errorCodes()`.
 */
export class CredpoolError extends Error {
  /**
   * @param {string} message
   * @param {{ code: string, decision?: object, cause?: unknown }} details
   */
  constructor(message, { code, decision, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause })
    this.name = 'CredpoolError'
    this.code = code
    if (decision !== undefined) this.decision = decision
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
   * @param {object} fields `{ pool, model, entryId, leaseId, baseUrl, generation, expiresAt }`
   * @param {string | undefined} accessToken
   * @param {string | undefined} refreshToken
   */
  constructor(fields, accessToken, refreshToken) {
    this.pool = fields.pool
    this.model = fields.model
    this.entryId = fields.entryId
    this.leaseId = fields.leaseId
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

/** Reveals the entry's secrets through `registry.credential` (a `Registry` or a `FileStore`). */
async function reveal(registry, pool, model, entryId, leaseId, now) {
  return credentialFrom(await registry.credential(pool, entryId, now), pool, model, leaseId)
}

/** A `Credential` from a `credential` output. */
function credentialFrom(c, pool, model, leaseId) {
  return new Credential(
    {
      pool,
      model,
      entryId: c.entry_id,
      leaseId,
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

/** Decision types that leave a lease open. */
const LEASED = new Set(['use', 'retry_same', 'refresh'])

/**
 * Runs `fn` with a credential of `pool`, following core's decisions until it succeeds or
 * core (or a budget) says stop.
 *
 * Loop: acquire; on `use` (or `retry_same`, after sleeping `delay_ms`) reveal the entry
 * with `registry.credential` and call `fn(credential)`, then:
 * - `fn` returns a fetch `Response`: it is reported; on `done` it is returned. When the
 *   helpers stop without `done` (core answered `fail`, or a budget ran out), the last
 *   `Response` is returned as fetch would (check `response.ok`); a discarded response's
 *   body is cancelled.
 * - `fn` returns anything else: success (`{ status: 200 }`) is reported and the value is
 *   returned.
 * - `fn` throws a provider error (see {@link responseInfo}): it is reported and the
 *   decision followed; when core answers `fail` or a budget runs out, it is rethrown.
 * - `fn` throws anything else (a bug), or `options.signal` aborted: the lease is released
 *   with `registry.release` (nothing marked) and the error rethrown.
 *
 * Decisions: `fallback` switches to its pool (and model, when it names one) and acquires
 * again; `wait` sleeps until `until` when that is at most `maxWaitMs` away; `refresh`
 * calls `options.refresh(credential)` and sends the `RefreshOutcome` it returns
 * (`refreshed`, `failed` or `adopted`) with `registry.refreshResult`; a refresh callback
 * that throws ends the loop with its error (the lease is released, nothing is marked).
 * A `retry_same` delay or `wait` longer than `maxWaitMs`, more than `maxAttempts` calls of
 * `fn`, or more than `maxAttempts` waits ends the loop. When nothing was called yet,
 * the end is a {@link CredpoolError} with code `no_credential` and the `decision`.
 * Any lease still open when the loop ends is released.
 *
 * @template T
 * @param {import('./helpers.d.mts').RegistryLike} registry
 * @param {string} pool
 * @param {(credential: Credential) => T | Promise<T>} fn
 * @param {import('./helpers.d.mts').WithCredentialOptions} [options]
 * @returns {Promise<T>}
 */
export async function withCredential(registry, pool, fn, options = {}) {
  const {
    model,
    session,
    maxAttempts = 5,
    maxWaitMs = 60_000,
    now = () => Date.now(),
    sleep = defaultSleep,
    refresh,
    signal,
  } = options
  let current = { pool, model }
  /** Pools visited through `fallback` during this call, to stop on a loop. */
  const visited = new Set([pool])
  /** The lease core holds open for us, `{ pool, leaseId }`, or null. */
  let open = null
  /** What the last call of `fn` produced: `{ response }` or `{ error }`. */
  let last = null
  let attempts = 0
  let waits = 0

  const acquire = () => {
    const opts = {}
    if (current.model !== undefined && current.model !== null) opts.model = current.model
    if (session !== undefined && session !== null) opts.session = session
    return registry.acquire(current.pool, opts, now())
  }
  /** Ends the loop without success: the last provider outcome, else a CredpoolError. */
  const stop = (decision, why) => {
    if (last?.error !== undefined) throw last.error
    if (last?.response !== undefined) return last.response
    throw new CredpoolError(`no credential for ${current.pool}: ${why}`, { code: 'no_credential', decision })
  }
  /** Sleeps `ms` when within budget; false when it is not. */
  const pause = async (ms) => {
    if (!(ms <= maxWaitMs)) return false
    if (ms > 0) await sleep(ms, signal)
    signal?.throwIfAborted()
    return true
  }
  /** Discards a response that will not be returned. */
  const discard = (response) => {
    if (response && response !== last?.response) response.body?.cancel?.().catch?.(() => {})
  }

  try {
    signal?.throwIfAborted()
    let decision = await acquire()
    for (;;) {
      open = LEASED.has(decision.type) ? { pool: current.pool, leaseId: decision.lease_id } : null
      switch (decision.type) {
        case 'done':
          // Only a report answers `done`, handled below; treat a stray one as the end.
          return stop(decision, 'done without a result')
        case 'fail':
          return stop(decision, `${decision.reason}${decision.status ? ` (${decision.status})` : ''}`)
        case 'wait': {
          if (++waits > maxAttempts) return stop(decision, 'too many waits')
          const ms = decision.until - now()
          if (!(await pause(ms))) return stop(decision, `wait of ${ms} ms exceeds maxWaitMs`)
          decision = await acquire()
          continue
        }
        case 'fallback': {
          if (visited.has(decision.pool)) return stop(decision, `fallback loop through ${decision.pool}`)
          visited.add(decision.pool)
          current = { pool: decision.pool, model: decision.model ?? current.model }
          decision = await acquire()
          continue
        }
        case 'refresh': {
          if (typeof refresh !== 'function') {
            throw new CredpoolError(`entry ${decision.entry_id} of ${current.pool} needs an OAuth refresh and no refresh callback was given`, {
              code: 'no_credential',
              decision,
            })
          }
          const { entry_id: entryId, generation, lease_id: leaseId } = decision
          if (typeof registry.beginRefresh === 'function') {
            // A FileStore: single-flight across processes. Under the store's lock, a token
            // another process already rotated is adopted instead of refreshed again.
            let start = await registry.beginRefresh(current.pool, entryId, generation, leaseId, now())
            if (start.type === 'needed' && typeof registry.confirmRefresh === 'function') {
              // Right before the refresh token is used: the lock must still be held (a
              // Redis lock's lease may have run out; then the rotated token is adopted).
              start = await registry.confirmRefresh(start.ticket, now())
            }
            if (start.type === 'adopted') {
              decision = start.decision
              continue
            }
            let result
            try {
              result = await refresh(credentialFrom(start.credential, current.pool, current.model, leaseId))
            } catch (error) {
              registry.abandonRefresh(start.ticket)
              throw error
            }
            decision = await registry.finishRefresh(start.ticket, result, now())
            continue
          }
          const credential = await reveal(registry, current.pool, current.model, entryId, leaseId, now())
          const result = await refresh(credential)
          signal?.throwIfAborted()
          decision = await registry.refreshResult(
            { pool: current.pool, entry_id: entryId, generation, lease_id: leaseId, result },
            now(),
          )
          continue
        }
        case 'retry_same':
          if (!(await pause(decision.delay_ms))) {
            return stop(decision, `retry delay of ${decision.delay_ms} ms exceeds maxWaitMs`)
          }
        // falls through
        case 'use': {
          if (attempts >= maxAttempts) return stop(decision, 'maxAttempts reached')
          attempts++
          signal?.throwIfAborted()
          const credential = await reveal(registry, current.pool, current.model, decision.entry_id, decision.lease_id, now())
          let value
          let info
          try {
            value = await fn(credential)
          } catch (error) {
            if (signal?.aborted) throw error
            info = await responseInfo(error)
            if (info === null) throw error
            const previous = last?.response
            last = { error }
            discard(previous)
          }
          if (info === undefined) {
            if (!isResponse(value)) {
              await registry.report(current.pool, decision.lease_id, { status: 200 }, now())
              open = null
              return value
            }
            info = await responseInfo(value)
            const previous = last?.response
            last = { response: value }
            discard(previous)
          }
          decision = await registry.report(current.pool, decision.lease_id, info, now())
          if (decision.type === 'done') {
            open = null
            if (last.error !== undefined) throw last.error
            return last.response
          }
          continue
        }
        default:
          throw new CredpoolError(`unknown decision type ${decision.type}`, { code: 'internal', decision })
      }
    }
  } finally {
    if (open) {
      try {
        await registry.release(open.pool, open.leaseId, now())
      } catch {
        // The lease is gone already; nothing to undo.
      }
    }
  }
}

/**
 * The helpers bound to one registry and pool, with default options.
 *
 * @example
 * const openrouter = new CredentialPool(registry, 'openrouter', { maxAttempts: 3 })
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
 * The whole single-flight OAuth refresh over a napi `FileStore` (a file or Redis store; a
 * `refresh` decision's `entry_id`, `generation` and `lease_id`): `beginRefresh` takes the
 * lock; when another process already rotated the token, its decision comes back (`fn` is
 * not called); otherwise `confirmRefresh` checks, right before the refresh token is used,
 * that the lock is still held (a Redis lock whose lease ran out is retaken, or the token
 * rotated meanwhile adopted), then `fn(credential)` refreshes — it runs while the lock is
 * held, so no other process replays the single-use refresh token — and its
 * `RefreshOutcome` is recorded with `finishRefresh`. When `fn` throws, the refresh is
 * abandoned (lock released, nothing recorded) and the error is rethrown.
 *
 * @param {import('./helpers.d.mts').FileStoreLike} store
 * @param {string} pool
 * @param {string} entryId
 * @param {number} generation
 * @param {number | null | undefined} leaseId
 * @param {(credential: import('./wire.js').CredentialOutput) => import('./wire.js').RefreshOutcome | Promise<import('./wire.js').RefreshOutcome>} fn
 * @returns {Promise<import('./helpers.d.mts').Decision>}
 */
export async function refreshWithStore(store, pool, entryId, generation, leaseId, fn) {
  let start = await store.beginRefresh(pool, entryId, generation, leaseId ?? null)
  if (start.type === 'needed') start = await store.confirmRefresh(start.ticket)
  if (start.type === 'adopted') return start.decision
  let outcome
  try {
    outcome = await fn(start.credential)
  } catch (e) {
    store.abandonRefresh(start.ticket)
    throw e
  }
  return store.finishRefresh(start.ticket, outcome)
}
