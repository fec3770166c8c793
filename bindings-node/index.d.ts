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

/**
 * Which binding artifact the generated loader actually loaded: `'native'` for
 * a native addon, otherwise the `platformArchABI` of the WASI flavor. Every
 * flavor napi-rs can build is listed, because `NAPI_RS_NATIVE_LIBRARY_PATH`
 * can point the loader at a WASI artifact this package does not build itself.
 */
export declare const __napiBindingTarget: 'native' | 'wasm32-wasi' | 'wasm32-wasip1'

/** A credential registry: all pools of one process. */
export declare class Registry {
  /** `new Registry({ writer?, seed?, state? })`. */
  constructor(options?: RegistryOptions | undefined | null)
  /** The persistable state document (contains the secrets of non-`env:` entries). */
  exportState(): StateDocument
  /** Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: the wall clock). */
  handle(input: Input, now?: number | undefined | null): Output
  /** `acquire`: pick an entry for a request. */
  acquire(pool: string, opts?: { model?: string; session?: string; spread?: boolean; can_refresh?: boolean | 'built_in' }, now?: number | undefined | null): DecisionOutput
  /** `report`: a request's outcome against its lease. */
  report(pool: string, leaseId: number, response: ResponseInfo, now?: number | undefined | null): DecisionOutput
  /** `release`: close a lease with no outcome (nothing is marked). */
  release(pool: string, leaseId: number, now?: number | undefined | null): { type: 'released'; lease_id: number } & Changed
  /** `reveal`: an entry's secrets, to send the request with (the only output carrying them). */
  credential(pool: string, entryId: string, now?: number | undefined | null): CredentialOutput
  /** `begin_turn`: restore pools from their fallback (one pool, or all). */
  beginTurn(pool?: string | undefined | null, now?: number | undefined | null): { type: 'turn_begun'; restored: string[] } & Changed
  /**
   * `refresh_result`: how the refresh a `refresh` decision asked for ended (on a
   * `Store`, prefer `beginRefresh` / `finishRefresh`: single-flight across processes).
   */
  refreshResult(result: RefreshResultInput, now?: number | undefined | null): DecisionOutput
  /** `check_refresh`: whether a refresh from `generation` is still needed. */
  checkRefresh(pool: string, entryId: string, generation: number, now?: number | undefined | null): { type: 'refresh_check'; needed: boolean } & Changed
  /** `sync`: merge another writer's exported state (read as JSON text: no size cap). */
  sync(state: StateDocument, now?: number | undefined | null): { type: 'synced' } & Changed
  /** `status`: status for humans (one pool, or all). */
  status(pool?: string | undefined | null, now?: number | undefined | null): StatusOutput
  /** `tick`: let time pass; expired cooldowns clear and the next deadline is named. */
  tick(now?: number | undefined | null): { type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed
  /** `configure_pool`: create the pool if missing and set its strategy, policy, fallback, API shape. */
  configurePool(pool: string, config?: { strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }, now?: number | undefined | null): { type: 'pool_configured'; pool: string } & Changed
  /** `add_entry`: add a credential (creating the pool). */
  addEntry(pool: string, entry: NewEntry, now?: number | undefined | null): { type: 'entry_added'; entry_id: string } & Changed
  /** `remove_entry`: remove a credential for good (tombstoned). */
  removeEntry(pool: string, entryId: string, now?: number | undefined | null): { type: 'entry_removed'; entry_id: string } & Changed
  /** `set_priority`: move an entry (lower is preferred). */
  setPriority(pool: string, entryId: string, priority: number, now?: number | undefined | null): { type: 'entry_updated'; entry_id: string } & Changed
  /** `reset`: clear status and cooldowns of one entry, or of every entry of the pool. */
  reset(pool: string, entryId?: string | undefined | null, now?: number | undefined | null): { type: 'reset'; count: number } & Changed
  /** `seed`: adopt credentials from an environment map and custom providers. */
  seed(env?: Record<string, string>, config?: { custom_providers?: CustomProvider[] }, now?: number | undefined | null): { type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed
}

/**
 * A persisted registry shared with other processes: through an SQLite database (one row
 * per entry, shared by the processes of one machine), or through Redis when opened with a
 * `redis://` URL. (The package entry, `main.js`, also exports it as `FileStore`, deprecated.)
 */
export declare class Store {
  /**
   * Opens the store at `location`: a `redis://` / `rediss://` URL
   * (`redis://[user:password@]host[:port][/db][?namespace=NAME]`) opens the Redis store,
   * anything else is the path of an SQLite database (default:
   * `$CREDPOOL_HOME/pools.sqlite`, else `$XDG_CONFIG_HOME/credpool/pools.sqlite`, else
   * `~/.config/credpool/pools.sqlite`). A database is loaded if it exists, without
   * creating it (the first write creates it, mode 0600). A JSON store of an earlier
   * version (`pools.json`) is migrated on open into `pools.sqlite` next to it, and the
   * JSON file becomes a marker naming the database (`schema_version` 2), which later
   * opens follow and older builds refuse; the default path falls back to such a
   * `pools.json` when there is no `pools.sqlite` yet. A file that is no credpool store
   * rejects with `invalid_state` / `foreign_document` / `unsupported_schema_version` /
   * ... and is left untouched. Redis unreachable at open rejects with `io`.
   */
  static open(location?: string | undefined | null, options?: StoreOptions | undefined | null): Promise<Store>
  /** Moves a (corrupt) store file aside as `<path>.corrupt-<epoch ms>`; returns the new path. */
  static moveAside(path: string): string
  /**
   * The database file (`null` for a Redis store): for a migrated JSON store, the
   * database it moved to.
   */
  get path(): string | null
  /** Where the store lives: the database path, or the Redis URL without credentials. */
  get location(): string
  /**
   * Whether changes wait to reach Redis (decided while it was unreachable; as of the
   * last settled call). Always false for an SQLite store, which never queues.
   */
  hasPending(): boolean
  /**
   * Writes the changes queued while Redis was unreachable; rejects with `io` when Redis
   * still cannot be reached (they stay queued). A no-op for an SQLite store. Call it
   * before the process exits so nothing stays only in memory. Resolves to `null`.
   */
  flush(): Promise<null>
  /**
   * Merges in what other processes wrote since the last look; whether anything new was
   * merged.
   */
  reload(): Promise<boolean>
  /** The state document, as of the store now (contains the secrets of non-`env:` entries). */
  exportState(): Promise<StateDocument>
  /**
   * Step one of the single-flight refresh a `refresh` decision asks for. Takes the
   * refresh lock (the database's, or the entry's Redis refresh lock) and either adopts a
   * token another process already rotated (`adopted`, lock released) or answers `needed`
   * with a ticket that HOLDS the lock: `confirmRefresh(ticket)` right before using the
   * refresh token, refresh `credential`, then `finishRefresh(ticket, outcome)` — or
   * `abandonRefresh(ticket)`. Meanwhile other calls go on, here and in other processes;
   * only another `beginRefresh` waits for the lock. Redis unreachable: rejects with `io`
   * (a refresh never proceeds without the lock).
   */
  beginRefresh(pool: string, entryId: string, generation: number, leaseId?: number | undefined | null, now?: number | undefined | null): Promise<{ type: 'adopted'; decision: DecisionOutput } | { type: 'needed'; ticket: number; credential: CredentialOutput }>
  /**
   * Right before the refresh token is used: checks that `ticket` still holds the lock
   * and renews a Redis lock's lease. A Redis holder that stalled past its lease lost the
   * lock: then a token another process rotated meanwhile is adopted (`adopted`; the
   * ticket is spent and `fn` must not run), or the lock is taken again (`needed`, same
   * ticket number). An SQLite refresh lock always holds (`needed` at once). Rejects
   * with `io` when Redis is unreachable (the ticket is spent, its lock released).
   */
  confirmRefresh(ticket: number, now?: number | undefined | null): Promise<{ type: 'adopted'; decision: DecisionOutput } | { type: 'needed'; ticket: number; credential: CredentialOutput }>
  /**
   * Step two: records how the refresh ended (the new token pair, or the failure),
   * writes it, and releases the lock. The ticket is spent even when this rejects.
   */
  finishRefresh(ticket: number, outcome: RefreshOutcome, now?: number | undefined | null): Promise<DecisionOutput>
  /**
   * Drops a refresh ticket: nothing changes, and the lock is released (by the store's
   * worker, before any job posted later runs). Returns whether the ticket was still
   * open.
   */
  abandonRefresh(ticket: number): boolean
  /** A view of one pool of this store: the same calls without the `pool` argument. */
  pool(key: string): StorePool
  /** Applies one wire input (`{ type: "acquire", ... }`) at `now` (default: the wall clock). */
  handle(input: Input, now?: number | undefined | null): Promise<Output>
  /** `acquire`: pick an entry for a request. */
  acquire(pool: string, opts?: { model?: string; session?: string; spread?: boolean; can_refresh?: boolean | 'built_in' }, now?: number | undefined | null): Promise<DecisionOutput>
  /** `report`: a request's outcome against its lease. */
  report(pool: string, leaseId: number, response: ResponseInfo, now?: number | undefined | null): Promise<DecisionOutput>
  /** `release`: close a lease with no outcome (nothing is marked). */
  release(pool: string, leaseId: number, now?: number | undefined | null): Promise<{ type: 'released'; lease_id: number } & Changed>
  /** `reveal`: an entry's secrets, to send the request with (the only output carrying them). */
  credential(pool: string, entryId: string, now?: number | undefined | null): Promise<CredentialOutput>
  /** `begin_turn`: restore pools from their fallback (one pool, or all). */
  beginTurn(pool?: string | undefined | null, now?: number | undefined | null): Promise<{ type: 'turn_begun'; restored: string[] } & Changed>
  /**
   * `refresh_result`: how the refresh a `refresh` decision asked for ended (on a
   * `Store`, prefer `beginRefresh` / `finishRefresh`: single-flight across processes).
   */
  refreshResult(result: RefreshResultInput, now?: number | undefined | null): Promise<DecisionOutput>
  /** `check_refresh`: whether a refresh from `generation` is still needed. */
  checkRefresh(pool: string, entryId: string, generation: number, now?: number | undefined | null): Promise<{ type: 'refresh_check'; needed: boolean } & Changed>
  /** `sync`: merge another writer's exported state (read as JSON text: no size cap). */
  sync(state: StateDocument, now?: number | undefined | null): Promise<{ type: 'synced' } & Changed>
  /** `status`: status for humans (one pool, or all). */
  status(pool?: string | undefined | null, now?: number | undefined | null): Promise<StatusOutput>
  /** `tick`: let time pass; expired cooldowns clear and the next deadline is named. */
  tick(now?: number | undefined | null): Promise<{ type: 'ticked'; recovered: Array<{ pool: string; entry_id: string }>; next_wakeup: Millis | null } & Changed>
  /** `configure_pool`: create the pool if missing and set its strategy, policy, fallback, API shape. */
  configurePool(pool: string, config?: { strategy?: Strategy; policy?: PolicyInput; fallback?: FallbackTarget[]; api?: Api }, now?: number | undefined | null): Promise<{ type: 'pool_configured'; pool: string } & Changed>
  /** `add_entry`: add a credential (creating the pool). */
  addEntry(pool: string, entry: NewEntry, now?: number | undefined | null): Promise<{ type: 'entry_added'; entry_id: string } & Changed>
  /** `remove_entry`: remove a credential for good (tombstoned). */
  removeEntry(pool: string, entryId: string, now?: number | undefined | null): Promise<{ type: 'entry_removed'; entry_id: string } & Changed>
  /** `set_priority`: move an entry (lower is preferred). */
  setPriority(pool: string, entryId: string, priority: number, now?: number | undefined | null): Promise<{ type: 'entry_updated'; entry_id: string } & Changed>
  /** `reset`: clear status and cooldowns of one entry, or of every entry of the pool. */
  reset(pool: string, entryId?: string | undefined | null, now?: number | undefined | null): Promise<{ type: 'reset'; count: number } & Changed>
  /** `seed`: adopt credentials from an environment map and custom providers. */
  seed(env?: Record<string, string>, config?: { custom_providers?: CustomProvider[] }, now?: number | undefined | null): Promise<{ type: 'seeded'; added: SeededEntry[]; updated: SeededEntry[] } & Changed>
}

/** One pool of a [`Store`] (`store.pool(key)`): the store's calls bound to that pool. */
export declare class StorePool {
  /** The pool key. */
  get key(): string
  /** `acquire` on this pool. */
  acquire(opts?: { model?: string; session?: string }, now?: number | undefined | null): Promise<DecisionOutput>
  /** `report` on this pool. */
  report(leaseId: number, response: ResponseInfo, now?: number | undefined | null): Promise<DecisionOutput>
  /** `release` on this pool. */
  release(leaseId: number, now?: number | undefined | null): Promise<{ type: 'released'; lease_id: number } & Changed>
  /** `credential` on this pool. */
  credential(entryId: string, now?: number | undefined | null): Promise<CredentialOutput>
  /** `status` of this pool. */
  status(now?: number | undefined | null): Promise<StatusOutput>
  /** `add_entry` to this pool. */
  addEntry(entry: NewEntry, now?: number | undefined | null): Promise<{ type: 'entry_added'; entry_id: string } & Changed>
  /** `reset` one entry of this pool, or all. */
  reset(entryId?: string | undefined | null, now?: number | undefined | null): Promise<{ type: 'reset'; count: number } & Changed>
}

/** Every stable error code, in core's declaration order. */
export declare function errorCodes(): ErrorCode[]

/**
 * `exportHermes(state, base?, now?)`: writes a Hermes `auth.json` object (`version: 1` and
 * `credential_pool`) from a credpool state document. With `base` (an existing `auth.json`),
 * its other top-level keys are kept and only `credential_pool` is replaced. Borrowed sources
 * carry no secret, only `secret_fingerprint`; removed entries are left out.
 */
export declare function exportHermes(state: StateDocument, base?: Record<string, unknown> | null, now?: number | undefined | null): Record<string, unknown>

/**
 * `importHermes(authJson, now?)`: converts the `credential_pool` section of a Hermes
 * `auth.json` (parsed) into a credpool state document for `new Registry({ state })`.
 * Hermes times (epoch seconds) become ms; borrowed sources (`env:*`, `config:*`, ...)
 * keep only their fingerprint; the `providers` singletons are not imported.
 * Throws `invalid_state`, `foreign_document`, `unsupported_schema_version` or `too_large`.
 */
export declare function importHermes(authJson: Record<string, unknown>, now?: number | undefined | null): StateDocument

/**
 * The providers with a built-in OAuth refresher (pool keys, or an entry's
 * `extra.oauth_provider`): `token_request` builds their refresh requests.
 */
export declare function oauthProviders(): Array<string>

/** Options of `new Registry(...)`. */
export interface RegistryOptions {
  /** This process's writer id (default: 12 random hex characters). */
  writer?: string
  /** PRNG seed, a non-negative safe integer (default: from OS randomness). */
  seed?: number
  /** An exported state document to start from. */
  state?: StateDocument
}

/** Options of `Store.open(location, options)`. */
export interface StoreOptions {
  /** This process's writer id (default: 12 random hex characters). */
  writer?: string
  /** PRNG seed, a non-negative safe integer (default: from OS randomness). */
  seed?: number
  /**
   * Longest wait for the database's lock (or a refresh lock), in ms, before a
   * `lock_timeout` error (default 10000).
   */
  lockTimeoutMs?: number
  /**
   * SQLite only: fsync writes (default true): tokens, entries and configuration before
   * the call resolves, counters, statuses and leases within 1 s (a power loss forgets at
   * most that much of them). `false`: never fsync (the OS writes when it will; a crash
   * of the process alone still loses nothing).
   */
  durable?: boolean
  /**
   * Redis only: the key namespace (`credpool:{namespace}:...`) when the URL names none
   * (`?namespace=...`); default `default`.
   */
  namespace?: string
  /** Redis only: longest wait to connect, in ms (default 2000). */
  connectTimeoutMs?: number
  /** Redis only: longest wait for one command's reply, in ms (default 2000). */
  ioTimeoutMs?: number
  /**
   * Redis only: lease of a refresh lock, in ms; a holder that stalls longer loses it
   * (default 30000).
   */
  refreshLeaseMs?: number
  /**
   * Redis only: after a failed connect, calls decide on local state without trying
   * again for this long, in ms (default 1000).
   */
  reconnectIntervalMs?: number
  /**
   * Redis over TLS (`rediss://`) only: a PEM file of the certificate authorities to
   * trust instead of the system's.
   */
  tlsCaFile?: string
}

/** The version of credpool-core inside this build (also the cheapest call into the addon). */
export declare function version(): string
