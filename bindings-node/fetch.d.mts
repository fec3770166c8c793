// Types of fetch.mjs (hand-written). The registry is referenced structurally, so the same
// `credentialFetch` type-checks against the napi `Registry` / `Store` and the wasm `Registry`.

import type { ApiShape, RegistryLike, WithCredentialOptions } from './helpers.mjs'

export type { ApiShape, RegistryLike }

/**
 * Options of {@link credentialFetch}: those of `withCredential` (budgets, clock, sleep,
 * refresh, session; per request) but `model` (each request's JSON body has it) and
 * `signal` (each request's own), plus the fetch that sends.
 */
export interface CredentialFetchOptions extends Omit<WithCredentialOptions, 'model' | 'signal' | 'api'> {
  /** The fetch that sends (default `globalThis.fetch`, looked up per request). */
  fetch?: (input: string, init: RequestInit) => Promise<Response>
  /**
   * The API shape of the requests (`openai` or `anthropic`): a send on a pool of another
   * shape gives up (`api_mismatch`). Left out: `anthropic` for a request with an
   * `anthropic-version` header, else core does not check.
   */
  api?: ApiShape
}

/**
 * A `fetch` that sends each request with credentials of `pool`, one call of core's call
 * driver per request: auth headers set per send (`authorization: Bearer`, `x-api-key`, or
 * OAuth Bearer with `anthropic-beta: oauth-2025-04-20`), the URL rewritten onto an
 * entry's `base_url`, the JSON body's `model` rewritten by a fallback; error statuses are
 * reported and core decides (retry, rotate, refresh, fall back, wait, give up). On a
 * give-up the last provider response comes back with `x-should-retry: false` (SDKs do not
 * retry it). For `new OpenAI({ apiKey: 'unused', fetch })`, `new Anthropic({ apiKey:
 * 'unused', fetch })`, `createOpenAI({ apiKey: 'unused', fetch })` and plain fetch.
 */
export declare function credentialFetch(
  registry: RegistryLike,
  pool: string,
  options?: CredentialFetchOptions,
): (input: string | URL | Request, init?: RequestInit) => Promise<Response>
