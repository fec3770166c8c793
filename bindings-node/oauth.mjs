// The built-in OAuth refresher of the helpers: core builds each provider's token request
// (`token_request`) and reads the answer (`token_response`); this module only carries out
// the HTTP with `fetch`, bounded in time and size. The request holds the refresh token: it
// is never logged, and errors name the failure, not the body.

/** Longest wait for a token endpoint, in ms. */
export const TIMEOUT_MS = 20_000
/** Most characters of a token endpoint's answer kept (an answer is a few hundred bytes). */
export const MAX_ANSWER_CHARS = 64 * 1024

/**
 * A refresh callback for `registry` (a `Registry` or `Store`) that refreshes with the
 * entry's built-in refresher; `now` is the helpers' clock.
 * @param {{ handle(input: object, now?: number): any }} registry
 * @param {() => number} now
 */
export function builtinRefresh(registry, now) {
  return async (credential) => {
    const entry = { pool: credential.pool, entry_id: credential.entryId }
    const request = await registry.handle({ type: 'token_request', ...entry }, now())
    const response = await post(request)
    const answer = await registry.handle({ type: 'token_response', ...entry, response }, now())
    return answer.result
  }
}

/** POSTs the request; the answer as core's `response` (status and text, or a network error). */
async function post({ url, headers, body }) {
  let answer
  try {
    answer = await fetch(url, { method: 'POST', headers, body, redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS) })
  } catch (error) {
    return { network_error: `${error?.name ?? 'Error'}: ${error?.cause?.code ?? 'unreachable'}` }
  }
  const reader = answer.body?.getReader()
  const decoder = new TextDecoder()
  let text = ''
  try {
    while (reader && text.length < MAX_ANSWER_CHARS) {
      const { done, value } = await reader.read()
      if (done) break
      text += decoder.decode(value, { stream: true })
    }
  } catch (error) {
    return { network_error: `${error?.name ?? 'Error'}: the answer was cut off` }
  } finally {
    reader?.cancel().catch(() => {})
  }
  return { status: answer.status, body: text.slice(0, MAX_ANSWER_CHARS) }
}
