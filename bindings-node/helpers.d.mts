// Types of helpers.mjs (hand-written). The registry is referenced structurally, so the
// same helpers type-check against the napi `Registry` and the wasm `Registry`.

import type {
  ActionOutput,
  Api,
  AuthType,
  CredentialOutput,
  DecisionOutput,
  HintUsed,
  Input,
  RefreshOutcome,
  ResponseInfo,
} from './wire.js'

export type { ActionOutput, CredentialOutput, HintUsed, RefreshOutcome, ResponseInfo }

/** What the host should do next (core `Decision`, plus `changed`). */
export type Decision = DecisionOutput

/**
 * The registry methods the helpers use: a napi or wasm `Registry`, or a napi `Store` (its
 * methods return promises, which the helpers await). `withCredential` drives a call with
 * `handle` (`call_*` inputs) and reads a refreshing entry's tokens with `credential`; with
 * a `Store` (`beginRefresh` present), its refresh runs single-flight across processes
 * through `beginRefresh` / `confirmRefresh` / `finishRefresh`. `reportResponse` uses `report`.
 */
export interface RegistryLike {
  handle(input: Input, now?: number | null): any
  credential(pool: string, entryId: string, now?: number | null): any
  report(pool: string, leaseId: number, response: ResponseInfo, now?: number | null): any
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
  /** The pool of the send (another than the one asked for after a fallback). */
  readonly pool: string
  /** The model of the send (a fallback step may rewrite it), if any. */
  readonly model: string | undefined
  readonly entryId: string
  readonly leaseId: number
  /** How to present `accessToken` (`x-api-key` or Bearer is the host's mapping). */
  readonly authType: AuthType
  readonly baseUrl: string | undefined
  /** The token generation (set on the credential a `refresh` callback gets). */
  readonly generation: number | undefined
  /** When the access token expires (set on the credential a `refresh` callback gets). */
  readonly expiresAt: number | undefined
  /** The API key or OAuth access token. */
  get accessToken(): string | undefined
  /** The OAuth refresh token (only on the credential a `refresh` callback gets). */
  get refreshToken(): string | undefined
  /** The enumerable fields, with `accessToken: '[redacted]'`. */
  toJSON(): Record<string, unknown>
}

/**
 * Options of {@link withCredential}. The budgets are the call driver's inputs (SPEC §7);
 * left out, core's defaults apply (the same in every language).
 */
export interface WithCredentialOptions {
  /** Model of the request (also `credential.model`, until a fallback rewrites it). */
  model?: string
  /** Session key for sticky selection. */
  session?: string
  /** Provider sends in the call, resends after a refresh included (default: usable entries of the pool and its fallback chain, plus 3). */
  maxSends?: number
  /** Longest single wait or retry delay, in ms (default 60 000); a longer one gives up. */
  maxWaitMs?: number
  /** All waits of the call together, in ms (default 120 000). */
  maxTotalWaitMs?: number
  /** Fallback hops (default and maximum: the pool's fallback chain length). */
  maxHops?: number
  /** Clock in ms (default `Date.now`). */
  now?: () => number
  /** Sleeps `ms` (default: a `setTimeout` promise that rejects when `signal` aborts). */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
  /**
   * Performs an OAuth refresh when core asks for one. Without it, calls start with
   * `can_refresh: 'built_in'`: entries of a provider with a built-in refresher
   * (`oauthProviders()`) refresh by core's request and answer over `fetch`; other OAuth
   * entries are passed over while they need a refresh, and a 401 on one marks and rotates.
   */
  refresh?: (credential: Credential) => RefreshOutcome | Promise<RefreshOutcome>
  /**
   * Asks the provider whether a key benched by a rate or usage limit for long (over the
   * policy's `quota_probe_interval_ms`, 5 min) is usable again, e.g. Codex's usage
   * endpoint; `true` reopens it and the call sends on it. Given, the call gets this chance
   * before waiting or giving up on such a key (at most once per key per interval).
   */
  probe?: (credential: Credential) => boolean | Promise<boolean>
  /** Concurrent calls (parallel sub-agents) each take a usable key with the fewest open leases. */
  spread?: boolean
  /** Aborts the call: it is cancelled (nothing marked) and the signal's reason thrown. */
  signal?: AbortSignal
  /**
   * The API shape of the request `fn` sends. Given, a send on a pool of another shape
   * ends the call (`give_up`, reason `api_mismatch`); left out, core does not check.
   */
  api?: ApiShape
}

/** The API shape of a request or a pool (a pool's is its `configurePool` `api`). */
export type ApiShape = Api

/** Options of {@link driveCall}: {@link WithCredentialOptions}, plus what the transport knows. */
export interface DriveCallOptions extends WithCredentialOptions {
  /** The request's full URL (core answers each `send` with the `url` to send to). */
  url?: string
  /** The request's identity (a digest of its method, URL and body), kept by a call that gives up. */
  requestId?: string
  /** The request is its client's retry: it continues the given-up call of its `requestId`. */
  clientRetry?: boolean
  /** What a give-up returns instead of the last provider `Response` (default: that response). */
  givenUp?: (response: Response) => Response
}

/** Errors thrown by the helpers themselves (`no_credential`, `internal`). */
export declare class CredpoolError extends Error {
  constructor(message: string, details: { code: string; action?: ActionOutput; cause?: unknown })
  readonly name: 'CredpoolError'
  readonly code: 'no_credential' | 'internal' | (string & {})
  /** The driver action that ended the call (`give_up`, or a `refresh` with no callback), when one did. */
  readonly action?: ActionOutput
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
 * Runs `fn` with credentials of `pool` under one call of core's call driver (it decides:
 * rotate, retry, refresh, fall back, wait, give up); returns `fn`'s result. A returned
 * error `Response` is an outcome like a thrown provider error. When the call gives up, the
 * last provider error is rethrown, else the last `Response` returned (check `ok`), else
 * {@link CredpoolError} `no_credential` is thrown. A 2xx `Response` with a body comes back
 * as a new `Response` over the same body: the call ends when that body does (read it or
 * cancel it).
 */
export declare function withCredential<T>(
  registry: RegistryLike,
  pool: string,
  fn: (credential: Credential) => T | Promise<T>,
  options?: WithCredentialOptions,
): Promise<T>

/**
 * One call of core's call driver, the loop under {@link withCredential} and
 * `credentialFetch`: `attempt(action)` performs each `send` core asks for; its result (or
 * a provider error it throws) is reported, and core's next action done (sleep, refresh,
 * resend, give up). Resolves like {@link withCredential}.
 */
export declare function driveCall<T>(
  registry: RegistryLike,
  pool: string,
  attempt: (action: Extract<ActionOutput, { type: 'send' }>) => T | Promise<T>,
  options?: DriveCallOptions,
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

/** The `Store` methods `refreshWithStore` uses (napi package only). */
export interface StoreLike {
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

/** @deprecated use `StoreLike` (the class `FileStore` is now `Store`). */
export type FileStoreLike = StoreLike

/**
 * The single-flight refresh over a `Store` (SQLite or Redis): begin (lock) → confirm (the
 * lock still holds) → `fn(credential)` (only when no other process rotated the token yet)
 * → finish; abandons (releases the lock, records nothing) and rethrows when `fn` throws.
 */
export declare function refreshWithStore(
  store: StoreLike,
  pool: string,
  entryId: string,
  generation: number,
  leaseId: number | null | undefined,
  fn: (credential: CredentialOutput) => RefreshOutcome | Promise<RefreshOutcome>,
  now?: () => number,
): Promise<Decision>
