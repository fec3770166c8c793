// The wire format of credpool-core (core/src/wire.rs) as TypeScript types: snake_case
// JSON tagged by `type`. Both JS packages (`credpool`, napi; `credpool-wasm`,
// wasm-bindgen) inline this file into their `.d.ts`, so one type contract serves both.
// scripts/check-wire-types.sh keeps the input and output tags in step with wire.rs.

/** Epoch milliseconds (0..=2^53). */
export type Millis = number

/** Every stable error code (`errorCodes()` returns them in this order). */
export type ErrorCode =
  | 'invalid_input'
  | 'invalid_clock'
  | 'invalid_pool_key'
  | 'unknown_pool'
  | 'unknown_entry'
  | 'unknown_lease'
  | 'unknown_call'
  | 'duplicate_entry'
  | 'invalid_entry'
  | 'invalid_policy'
  | 'invalid_state'
  | 'unsupported_schema_version'
  | 'foreign_document'
  | 'stale_refresh'
  | 'not_refreshable'
  | 'too_large'
  | 'no_credential'
  | 'lock_timeout'
  | 'io'
  | 'internal'

/** The error every method throws: a real `Error` with a stable `code`. */
export interface CredpoolError extends Error {
  code: ErrorCode
}

/** How a pool picks among its available entries. */
export type Strategy = 'fill_first' | 'round_robin' | 'least_used' | 'random'

/** How the credential authenticates. */
export type AuthType = 'api_key' | 'oauth'

/** What kind of outcome a reported response is. */
export type OutcomeClass =
  | 'success'
  | 'rate_limit'
  | 'usage_limit'
  | 'billing'
  | 'billing_unverified'
  | 'auth'
  | 'auth_terminal'
  | 'forbidden'
  | 'entitlement'
  | 'model_entitlement'
  | 'server_error'
  | 'network_error'
  | 'upstream_rate_limit'
  | 'not_found'
  | 'client_error'

/** Why a decision was taken. */
export type Reason =
  | OutcomeClass
  | 'all_cooling_down'
  | 'all_keys_busy'
  | 'no_usable_entry'
  | 'token_expiring'
  | 'refreshed'
  | 'adopted'
  | 'refresh_failed'
  | 'refresh_cap'
  | 'api_mismatch'
  | 'no_base_url'
  | 'quota_restored'

/** Where a provider reset hint came from. */
export type HintSource =
  | 'retry_after'
  | 'x_ratelimit_reset'
  | 'x_ratelimit_reset_requests'
  | 'x_ratelimit_reset_tokens'
  | 'anthropic_ratelimit_reset'
  | 'body_resets_at'
  | 'body_reset_at'
  | 'body_resets_in_seconds'
  | 'body_retry_after'
  | 'google_retry_delay'
  | 'google_quota_reset_delay'
  | 'message'

/** The provider hint a delay or cooldown came from, after clamping. */
export interface HintUsed {
  source: HintSource
  at: Millis
  clamped: boolean
}

/** A step of a pool's fallback chain. */
export interface FallbackTarget {
  pool: string
  model?: string
}

/** What the host should do next. */
export type Decision =
  | { type: 'use'; entry_id: string; lease_id: number; reason?: Reason; hint?: HintUsed }
  | { type: 'retry_same'; entry_id: string; lease_id: number; delay_ms: number; reason: Reason; hint?: HintUsed }
  | { type: 'refresh'; entry_id: string; lease_id: number; generation: number; reason: Reason }
  | { type: 'fallback'; pool: string; model?: string; reason: Reason; primary_back_at: Millis | null }
  | { type: 'wait'; until: Millis; reason: Reason; hint?: HintUsed }
  | { type: 'fail'; reason: Reason; status?: number }
  | { type: 'done' }

/** Every output says whether persisted state changed (write it back only then). */
export interface Changed {
  changed: boolean
}

/** `acquire`, `report` and `refresh_result` answer a decision. */
export type DecisionOutput = Decision & Changed

/** A provider response (or transport failure) to report. */
export interface ResponseInfo {
  status?: number
  /** Transport failure kind: `timeout`, `connect`, `reset`, ... (with no `status`). */
  network_error?: string
  /** Names compare case-insensitively; an object or `[name, value]` pairs. */
  headers?: Record<string, string | number> | Array<[string, string]>
  /** Text, or already-parsed JSON. */
  body?: unknown
  model?: string
}

/** A credential to add. Secrets are accepted here and never echoed back. */
export interface NewEntry {
  id?: string
  label?: string
  auth_type?: AuthType
  priority?: number
  /** `manual` (default), `env:<VAR>` or `config:<name>` (borrowed: never exported). */
  source?: string
  access_token?: string
  refresh_token?: string
  expires_at?: Millis
  base_url?: string
  extra?: Record<string, unknown>
}

/** How a refresh the host performed ended. */
export type RefreshOutcome =
  | { type: 'refreshed'; access_token: string; refresh_token?: string; expires_at?: Millis }
  | { type: 'failed'; terminal?: boolean; reason?: string; message?: string }
  | { type: 'adopted' }

/** The `refresh_result` input (without its `type`). */
export interface RefreshResultInput {
  pool: string
  entry_id: string
  generation: number
  lease_id?: number
  result: RefreshOutcome
}

/** Policy: a preset plus field overrides (see core/src/policy.rs for every field). */
export type PolicyInput = { preset?: 'hermes' | 'adaptive' } & Record<string, unknown>

/** A custom endpoint for `seed`. */
export interface CustomProvider {
  name?: string
  base_url: string
  api_key?: string
  api_key_env?: string
}

/** Every input `handle` accepts. */
export type Input =
  | { type: 'configure_pool'; pool: string; strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }
  | { type: 'add_entry'; pool: string; entry: NewEntry }
  | { type: 'remove_entry'; pool: string; entry_id: string }
  | { type: 'reset'; pool: string; entry_id?: string }
  | { type: 'set_priority'; pool: string; entry_id: string; priority: number }
  | {
      type: 'acquire'
      pool: string
      model?: string
      session?: string
      spread?: boolean
      /** Which OAuth entries the host can refresh (default true: all; 'built_in': those of a
       * provider with a built-in refresher; false: none). Others are passed over while
       * their token needs a refresh. */
      can_refresh?: boolean | 'built_in'
    }
  | { type: 'report'; pool: string; lease_id?: number; entry_id?: string; response: ResponseInfo }
  | { type: 'release'; pool: string; lease_id: number }
  | ({ type: 'refresh_result' } & RefreshResultInput)
  | { type: 'check_refresh'; pool: string; entry_id: string; generation: number }
  /** The built-in refresher's request for an entry (providers: anthropic, openai-codex,
   * xai-oauth, nous, qwen-oauth, minimax-oauth, or the entry's `extra.oauth_provider`). */
  | { type: 'token_request'; pool: string; entry_id: string }
  /** Reads the token endpoint's answer to `token_request`. */
  | { type: 'token_response'; pool: string; entry_id: string; response: ResponseInfo }
  /** Records that the refresh token of `generation` is about to be sent (persist, then send). */
  | { type: 'refresh_send'; pool: string; entry_id: string; generation: number }
  | { type: 'begin_turn'; pool?: string }
  | { type: 'tick' }
  | { type: 'sync'; state: StateDocument }
  | { type: 'export_state' }
  | { type: 'status'; pool?: string }
  | { type: 'seed'; env?: Record<string, string>; config?: { custom_providers?: CustomProvider[] } }
  | { type: 'reveal'; pool: string; entry_id: string }
  | ({ type: 'call_start' } & CallStartInput)
  | { type: 'call_report'; call_id: number; response: ResponseInfo; delivered?: boolean }
  | { type: 'call_probed'; call_id: number; restored: boolean }
  | { type: 'call_refreshed'; call_id: number; result: RefreshOutcome }
  | { type: 'call_resume'; call_id: number }
  | { type: 'call_cancel'; call_id: number }

/** The `call_start` input (without its `type`): one user request on a pool, and its budgets. */
export interface CallStartInput {
  pool: string
  model?: string
  session?: string
  /** Provider sends in the call (default: usable entries of the pool and its chain, plus 3). */
  max_sends?: number
  /** Longest single wait or retry delay (default 60 000 ms); a longer one gives up. */
  max_wait_ms?: number
  /** All waits of the call together (default 120 000 ms). */
  max_total_wait_ms?: number
  /** Fallback hops (default and maximum: the primary's chain length). */
  max_hops?: number
  /** The API shape of the request the host holds: sends then carry `api` and `auth`. */
  api?: Api
  /** The request's URL: sends then carry the `url` to send to (on the entry's `base_url`). */
  url?: string
  /** The host's identity of the request (a digest of its method, URL and body). */
  request_id?: string
  /** The request is its client's retry (`x-stainless-retry-count` ≥ 1): it continues the
   * call of its `request_id` that gave up, if one is kept, instead of a new turn. */
  client_retry?: boolean
  /** The host can probe a rate-limit bench (a `probe` action, answered by `call_probed`). */
  probe?: boolean
  /** Spread concurrent calls: each acquire picks a usable entry with the fewest open leases. */
  spread?: boolean
  /** Which OAuth entries the host can refresh (default true: all; 'built_in': those of a
   * provider with a built-in refresher; false: none). Others are passed over while their
   * token needs a refresh, and a 401 on one marks and rotates instead of a `refresh`. */
  can_refresh?: boolean | 'built_in'
}

/** The HTTP API shape a pool's endpoints speak (undeclared: `anthropic` for the pool named
 * `anthropic`, else `openai`). */
export type Api = 'openai' | 'anthropic'

/** Where a routed send's credential goes: delete `authorization` and `x-api-key`, set
 * `header` to `prefix` + the token, add each `extra` header (appending to one present). */
export interface Auth {
  header: 'authorization' | 'x-api-key'
  prefix: string
  extra: Record<string, string>
}

/** The budget that ended a call. */
export type Budget = 'max_sends' | 'max_wait_ms' | 'max_total_wait_ms' | 'max_hops'

/** The call driver's one next action for the host (SPEC §7). */
export type Action =
  | {
      type: 'send'
      call_id: number
      pool: string
      model?: string
      entry_id: string
      auth_type: AuthType
      lease_id: number
      access_token: string | null
      base_url?: string
      reason?: Reason
      /** A routed call's (`api` or `url` given): the send's pool's shape. */
      api?: Api
      /** A routed call's: where the credential goes. */
      auth?: Auth
      /** A call with `url`: the URL to send to. */
      url?: string
    }
  | { type: 'probe'; call_id: number; pool: string; entry_id: string; auth_type: AuthType; access_token: string | null; base_url?: string; reason: Reason }
  | { type: 'sleep'; call_id: number; until: Millis; reason: Reason; hint?: HintUsed }
  | { type: 'refresh'; call_id: number; pool: string; entry_id: string; lease_id: number; generation: number; reason: Reason }
  | { type: 'done'; call_id: number; pool: string; entry_id: string }
  | { type: 'give_up'; call_id: number; reason: Reason; status?: number; until?: Millis; budget?: Budget }

/** An action with its `changed` flag. */
export type ActionOutput = Action & Changed

/** The persistable state document (`format: "credpool"`); treat it as opaque JSON. */
export interface StateDocument {
  format: 'credpool'
  schema_version: number
  [field: string]: unknown
}

/** An entry's health in words a person acts on. */
export type Health = 'available' | 'rate_limited' | 'auth_failed' | 'exhausted' | 'dead' | 'no_secret'

/** One entry's status line. */
export interface EntryStatus {
  index: number
  id: string
  label: string
  auth_type: AuthType
  priority: number
  source: string
  health: Health
  until?: Millis
  text: string
  request_count: number
  next: boolean
}

/** One pool's status. */
export interface PoolStatus {
  pool: string
  strategy: Strategy
  policy: 'hermes' | 'adaptive'
  entries: EntryStatus[]
  /** Seeding sources suppressed by a removal (`add_entry` lifts them); absent when none. */
  suppressed_sources?: string[]
}

/** An entry a `seed` added, updated or removed. */
export interface SeededEntry {
  pool: string
  entry_id: string
  source: string
}

/** A source a `seed` skipped because a removal suppressed it. */
export interface SuppressedSource {
  pool: string
  source: string
}

/** An entry's secrets, as `credential` / `reveal` hand them to the host. */
export interface CredentialOutput extends Changed {
  type: 'credential'
  entry_id: string
  access_token: string | null
  refresh_token?: string
  expires_at?: Millis
  base_url?: string
  generation: number
}

/** Replies to inputs that are not decisions. */
export type Reply =
  | { type: 'pool_configured'; pool: string }
  | { type: 'entry_added'; entry_id: string }
  | { type: 'entry_removed'; entry_id: string }
  | { type: 'released'; lease_id: number }
  | { type: 'reset'; count: number }
  | { type: 'entry_updated'; entry_id: string }
  | { type: 'refresh_check'; needed: boolean }
  /** POST `body` with `headers` to `url` (both hold the refresh token: never log them). */
  | { type: 'token_request'; url: string; headers: Record<string, string>; body: string }
  /** The outcome to report (`refresh_result` / `call_refreshed`). */
  | { type: 'token_outcome'; result: RefreshOutcome }
  /** `send`: recorded, send it; `adopt`: the token is newer already; `interrupted`: an
   * earlier send of this token never settled, never send it (report `refresh_interrupted`). */
  | { type: 'refresh_send_recorded'; verdict: 'send' | 'adopt' | 'interrupted' }
  | { type: 'turn_begun'; restored: string[] }
  | { type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null }
  | { type: 'synced' }
  | { type: 'state'; state: StateDocument }
  | { type: 'status'; pools: PoolStatus[] }
  | { type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[]; removed?: SeededEntry[]; suppressed?: SuppressedSource[] }
  | Omit<CredentialOutput, 'changed'>
  | { type: 'call_cancelled'; call_id: number }

/** Whatever `handle` answers. */
export type Output = (Decision | Action | Reply) & Changed

/** The status reply. */
export type StatusOutput = { type: 'status'; pools: PoolStatus[] } & Changed
