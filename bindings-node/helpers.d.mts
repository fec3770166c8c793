// Types of helpers.mjs (hand-written). The registry is referenced structurally, so the
// same helpers type-check against the napi `Registry` and the wasm `Registry`.

import type { CredentialOutput, DecisionOutput, HintUsed, RefreshOutcome, ResponseInfo } from './wire.js'

export type { CredentialOutput, HintUsed, RefreshOutcome, ResponseInfo }

/** What the host should do next (core `Decision`, plus `changed`). */
export type Decision = DecisionOutput

/**
 * The registry methods the helpers use: a napi or wasm `Registry`, or a `FileStore` (its
 * methods return promises, which the helpers await; with a `FileStore`, `refresh` runs
 * single-flight across processes through `beginRefresh` / `confirmRefresh` / `finishRefresh`).
 */
export interface RegistryLike {
  acquire(pool: string, opts?: { model?: string; session?: string } | null, now?: number | null): any
  report(pool: string, leaseId: number, response: ResponseInfo, now?: number | null): any
  refreshResult(
    result: { pool: string; entry_id: string; generation: number; lease_id?: number; result: RefreshOutcome },
    now?: number | null,
  ): any
  credential(pool: string, entryId: string, now?: number | null): any
  release(pool: string, leaseId: number, now?: number | null): any
  beginRefresh?(pool: string, entryId: string, generation: number, leaseId?: number | null, now?: number | null): Promise<any>
  confirmRefresh?(ticket: number, now?: number | null): Promise<any>
  finishRefresh?(ticket: number, outcome: RefreshOutcome, now?: number | null): Promise<any>
  abandonRefresh?(ticket: number): boolean
}

/**
 * An entry's secrets for one request. `accessToken` and `refreshToken` are getters over
 * private fields: `JSON.stringify`, `util.inspect` and spreading never show them.
 */
export declare class Credential {
  private constructor()
  readonly pool: string
  readonly model: string | undefined
  readonly entryId: string
  readonly leaseId: number
  readonly baseUrl: string | undefined
  readonly generation: number
  readonly expiresAt: number | undefined
  /** The API key or OAuth access token. */
  get accessToken(): string | undefined
  /** The OAuth refresh token, if any. */
  get refreshToken(): string | undefined
  /** The enumerable fields, with `accessToken: '[redacted]'`. */
  toJSON(): Record<string, unknown>
}

/** Options of {@link withCredential}. */
export interface WithCredentialOptions {
  /** Model of the request (acquire option; also `credential.model`). */
  model?: string
  /** Session key for sticky selection (acquire option). */
  session?: string
  /** Most calls of `fn` (default 5); also the most `wait`s. */
  maxAttempts?: number
  /** Longest single `wait` or `retry_same` delay to sleep through, in ms (default 60 000). */
  maxWaitMs?: number
  /** Clock in ms (default `Date.now`). */
  now?: () => number
  /** Sleeps `ms` (default: a `setTimeout` promise that rejects when `signal` aborts). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /** Performs an OAuth refresh when core asks for one. Without it, a `refresh` decision throws. */
  refresh?: (credential: Credential) => RefreshOutcome | Promise<RefreshOutcome>
  /** Aborts the loop: the open lease is released and the signal's reason thrown. */
  signal?: AbortSignal
}

/** Errors thrown by the helpers themselves (`no_credential`, `internal`). */
export declare class CredpoolError extends Error {
  constructor(message: string, details: { code: string; decision?: Decision; cause?: unknown })
  readonly name: 'CredpoolError'
  readonly code: 'no_credential' | 'internal' | (string & {})
  /** The decision that ended the loop, when one did. */
  readonly decision?: Decision
}

/**
 * What a provider call produced, as a credpool report `response`, or `null` when `value`
 * is unrelated (a bug, a user abort). Understands fetch `Response`s, the `openai` SDK's
 * `APIError` family, fetch network failures, abort/timeout `DOMException`s, and plain
 * `{ status, headers?, body? }` objects.
 */
export declare function responseInfo(value: unknown): Promise<ResponseInfo | null>

/** Reports `response` against a lease; throws `TypeError` when it is not a provider response. */
export declare function reportResponse(
  registry: RegistryLike,
  pool: string,
  leaseId: number,
  response: unknown,
  now?: number,
): Promise<Decision>

/**
 * Runs `fn` with a credential of `pool`, following core's decisions (rotate, retry,
 * refresh, fall back, wait) until success; returns `fn`'s result (for a fetch `Response`,
 * the last one, even when not ok), or rethrows the last provider error.
 * Throws {@link CredpoolError} `no_credential` when nothing could be tried.
 */
export declare function withCredential<T>(
  registry: RegistryLike,
  pool: string,
  fn: (credential: Credential) => T | Promise<T>,
  options?: WithCredentialOptions,
): Promise<T>

/** The helpers bound to one registry and pool, with default options. */
export declare class CredentialPool {
  constructor(registry: RegistryLike, pool: string, defaults?: WithCredentialOptions)
  readonly registry: RegistryLike
  readonly pool: string
  readonly defaults: WithCredentialOptions
  withCredential<T>(fn: (credential: Credential) => T | Promise<T>, options?: WithCredentialOptions): Promise<T>
  reportResponse(leaseId: number, response: unknown, now?: number): Promise<Decision>
}

/** The `FileStore` methods `refreshWithStore` uses (napi package only). */
export interface FileStoreLike {
  beginRefresh(
    pool: string,
    entryId: string,
    generation: number,
    leaseId?: number | null,
    now?: number | null,
  ): Promise<{ type: 'adopted'; decision: Decision } | { type: 'needed'; ticket: number; credential: CredentialOutput }>
  confirmRefresh(
    ticket: number,
    now?: number | null,
  ): Promise<{ type: 'adopted'; decision: Decision } | { type: 'needed'; ticket: number; credential: CredentialOutput }>
  finishRefresh(ticket: number, outcome: RefreshOutcome, now?: number | null): Promise<Decision>
  abandonRefresh(ticket: number): boolean
}

/**
 * The single-flight refresh over a `FileStore` (file or Redis): begin (lock) → confirm (the
 * lock still holds) → `fn(credential)` (only when no other process rotated the token yet)
 * → finish; abandons (releases the lock, records nothing) and rethrows when `fn` throws.
 */
export declare function refreshWithStore(
  store: FileStoreLike,
  pool: string,
  entryId: string,
  generation: number,
  leaseId: number | null | undefined,
  fn: (credential: CredentialOutput) => RefreshOutcome | Promise<RefreshOutcome>,
): Promise<Decision>
