// Config loading for the preview page: recognises the accepted documents, builds a
// Registry through the engine, and turns the engine's coded errors into
// { code, field, message } with the field path where it can be found.
// Pure module (no DOM): the page passes the wasm exports in.

/** Keys of the simple form. */
export const SIMPLE_KEYS = ['pool', 'strategy', 'policy', 'fallback', 'entries', 'writer', 'seed', 'now']

/** Keys whose string values are secrets (masked in the page, kept in memory only). */
const SECRET_KEY = /(^|_)(token|key|secret|password)$/i

export function isSecretKey(key) {
  return SECRET_KEY.test(key) && key !== 'token_type'
}

/** `sk-o…1c2d`: first 4 and last 4 characters; short secrets show less. */
export function mask(secret) {
  const s = String(secret)
  if (s.length >= 12) return `${s.slice(0, 4)}…${s.slice(-4)}`
  return `${s.slice(0, Math.min(4, Math.floor(s.length / 3)))}…`
}

/** Every string under a secret-looking key, anywhere in a parsed JSON value. */
export function findSecrets(value, out = new Set()) {
  if (Array.isArray(value)) for (const v of value) findSecrets(v, out)
  else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === 'string' && v.length > 0 && isSecretKey(k)) out.add(v)
      else findSecrets(v, out)
    }
  }
  return out
}

/** A deep copy with every secret-looking string replaced by its mask (for display). */
export function masked(value) {
  if (Array.isArray(value)) return value.map(masked)
  if (value && typeof value === 'object') {
    const out = {}
    for (const [k, v] of Object.entries(value)) {
      out[k] = typeof v === 'string' && isSecretKey(k) ? mask(v) : masked(v)
    }
    return out
  }
  return value
}

/**
 * The editor never keeps a secret in the DOM: secrets are swapped for unique mask tokens
 * (`sk-o…1c2d`, `sk-o…1c2d~2` on a collision) and the token → secret table lives in
 * this object only. `unmask` puts them back into a parsed document.
 */
export class SecretVault {
  constructor() {
    this.byToken = new Map()
    this.bySecret = new Map()
  }

  tokenFor(secret) {
    let token = this.bySecret.get(secret)
    if (token) return token
    const base = mask(secret)
    token = base
    for (let n = 2; this.byToken.has(token); n++) token = `${base}~${n}`
    this.byToken.set(token, secret)
    this.bySecret.set(secret, token)
    return token
  }

  /** Replaces every secret of `doc` found in `text` with its token; returns the new text. */
  hide(text, doc) {
    let out = text
    for (const secret of findSecrets(doc)) {
      if (this.byToken.has(secret)) continue // already a token
      const inJson = JSON.stringify(secret).slice(1, -1)
      out = out.split(`"${inJson}"`).join(JSON.stringify(this.tokenFor(secret)))
    }
    return out
  }

  /** A deep copy of `doc` with tokens replaced by the secrets they stand for. */
  unmask(doc) {
    if (Array.isArray(doc)) return doc.map((v) => this.unmask(v))
    if (doc && typeof doc === 'object') {
      const out = {}
      for (const [k, v] of Object.entries(doc)) out[k] = this.unmask(v)
      return out
    }
    if (typeof doc === 'string' && this.byToken.has(doc)) return this.byToken.get(doc)
    return doc
  }
}

/** JSON.parse with the error located as `line L, column C`. */
export function parseJson(text) {
  try {
    return { value: JSON.parse(text) }
  } catch (e) {
    const msg = String(e.message)
    let pos = Number(/position (\d+)/.exec(msg)?.[1])
    let line, column
    const lc = /line (\d+) column (\d+)/.exec(msg)
    if (lc) [line, column] = [Number(lc[1]), Number(lc[2])]
    else if (Number.isFinite(pos)) {
      const before = text.slice(0, pos).split('\n')
      line = before.length
      column = before[before.length - 1].length + 1
    } else if (/end of (JSON )?input/i.test(msg)) {
      const lines = text.split('\n')
      line = lines.length
      column = lines[lines.length - 1].length + 1
    }
    const field = line ? `JSON line ${line}, column ${column}` : 'JSON'
    return { error: { code: 'invalid_json', field, message: msg.replace(/^JSON\.parse: /, '') } }
  }
}

/** Which kind of document this is: `state`, `hermes`, `section` or `simple`. */
export function detectKind(doc) {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null
  if ('format' in doc || 'schema_version' in doc) return 'state'
  if ('credential_pool' in doc) return 'hermes'
  if ('entries' in doc || 'pool' in doc) return 'simple'
  if ('pools' in doc) return 'state'
  const values = Object.values(doc)
  if (values.length > 0 && values.every(Array.isArray)) return 'section'
  return null
}

/**
 * Adds `.field` to a coded engine error: the path `base` plus the key the message names
 * (`unknown field \`x\``, `missing field \`x\``), else the one key whose removal makes
 * `probe(objectWithoutIt)` succeed (the engine never quotes the value it refused: values
 * may be secrets), else the key holding a value the message quotes.
 */
export function locate(obj, base, message, probe) {
  const join = (k) => (base ? `${base}.${k}` : k)
  const named = /(?:unknown|missing) (?:policy )?field `([^`]+)`/.exec(message)
  if (named) return join(named[1])
  if (probe && obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const k of Object.keys(obj)) {
      const { [k]: _, ...without } = obj
      if (probe(without)) return join(k)
    }
  }
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    const quoted = /`([^`]*)`/.exec(message)?.[1] ?? /string "([^"]*)"/.exec(message)?.[1]
    if (quoted !== undefined) {
      for (const [k, v] of Object.entries(obj)) {
        if (v !== null && typeof v !== 'object' && String(v) === quoted) return join(k)
      }
    }
    if (/policy|preset/.test(message) && 'policy' in obj) return join('policy')
    if (/entry id/.test(message) && 'id' in obj) return join('id')
    if (/access_token|refresh_token/.test(message)) return join('access_token')
  }
  return base || '(document)'
}

/** Whether `fn` runs without throwing. */
function succeeds(fn) {
  try {
    fn()
    return true
  } catch {
    return false
  }
}

function coded(e, field) {
  return { code: e?.code ?? 'internal', field, message: String(e?.message ?? e) }
}

/**
 * Builds a Registry for a parsed document. Returns { registry, kind, writer, seed, now,
 * errors }. `wasm` is the module namespace (Registry, importHermes); `now` the page clock.
 */
export function buildRegistry(wasm, doc, now) {
  const kind = detectKind(doc)
  if (!kind) {
    return {
      errors: [{
        code: 'invalid_input',
        field: '(document)',
        message: 'not a config this page reads: expected a credpool state document ' +
          '({"format": "credpool", ...}), a Hermes auth.json (with "credential_pool"), its ' +
          'credential_pool section ({"<pool>": [entries]}) or the simple form ({"pool", "entries", ...})',
      }],
    }
  }
  if (kind === 'simple') return buildSimple(wasm, doc, now)
  const writer = 'preview'
  const seed = 1
  let state = doc
  if (kind === 'hermes' || kind === 'section') {
    const auth = kind === 'hermes' ? doc : { credential_pool: doc }
    try {
      state = wasm.importHermes(auth, now)
    } catch (e) {
      const path = /^((?:credential_pool)[^\s]*)\s/.exec(e.message)?.[1]
      const field = path ? (kind === 'section' ? path.replace(/^credential_pool\.?/, '') : path) : 'credential_pool'
      return { kind, errors: [coded(e, field)] }
    }
  }
  try {
    const registry = new wasm.Registry({ writer, seed, state })
    return { kind, registry, writer, seed, now, errors: [] }
  } catch (e) {
    return { kind, errors: [coded(e, locateState(wasm, state, e))] }
  }
}

/** Narrows a state error to a pool, then an entry, by asking the engine about each part. */
function locateState(wasm, state, err) {
  const fails = (s) => {
    try {
      new wasm.Registry({ writer: 'preview', seed: 1, state: s }).free?.()
      return false
    } catch {
      return true
    }
  }
  if (!state || typeof state !== 'object' || err.code !== 'invalid_state') return locate(state, '', err.message)
  const pools = state.pools
  if (!pools || typeof pools !== 'object' || Array.isArray(pools)) return locate(state, '', err.message)
  if (fails({ ...state, pools: {} })) return locate(state, '', err.message)
  for (const [name, pool] of Object.entries(pools)) {
    if (!pool || typeof pool !== 'object' || !Array.isArray(pool.entries)) {
      if (fails({ ...state, pools: { [name]: pool } })) {
        return locate(pool, `pools.${name}`, err.message, (p) => !fails({ ...state, pools: { [name]: p } }))
      }
      continue
    }
    if (fails({ ...state, pools: { [name]: { ...pool, entries: [] } } })) {
      return locate(pool, `pools.${name}`, err.message, (p) => !fails({ ...state, pools: { [name]: { ...p, entries: [] } } }))
    }
    for (const [i, entry] of pool.entries.entries()) {
      if (fails({ ...state, pools: { [name]: { ...pool, entries: [entry] } } })) {
        const alone = (e) => !fails({ ...state, pools: { [name]: { ...pool, entries: [e] } } })
        return locate(entry, `pools.${name}.entries[${i}]`, err.message, alone)
      }
    }
  }
  return locate(state, '', err.message)
}

/** The simple form: { pool, strategy?, policy?, fallback?, entries: [NewEntry], writer?, seed?, now? }. */
function buildSimple(wasm, doc, pageNow) {
  const errors = []
  for (const k of Object.keys(doc)) {
    if (!SIMPLE_KEYS.includes(k)) {
      errors.push({ code: 'invalid_input', field: k, message: `unknown field \`${k}\`, expected one of ${SIMPLE_KEYS.map((x) => `\`${x}\``).join(', ')}` })
    }
  }
  if (typeof doc.pool !== 'string') {
    errors.push({ code: 'invalid_pool_key', field: 'pool', message: 'pool is required: a provider key such as "openrouter"' })
  }
  if (!Array.isArray(doc.entries)) {
    errors.push({ code: 'invalid_input', field: 'entries', message: 'entries must be an array of credentials ({ "id", "access_token", ... })' })
  }
  let now = pageNow
  if ('now' in doc) {
    if (Number.isSafeInteger(doc.now) && doc.now >= 0) now = doc.now
    else errors.push({ code: 'invalid_clock', field: 'now', message: 'now must be an integer number of ms in 0..=2^53' })
  }
  const writer = doc.writer ?? 'preview'
  const seed = doc.seed ?? 1
  let registry
  try {
    registry = new wasm.Registry({ writer, seed })
  } catch (e) {
    errors.push(coded(e, /seed/.test(e.message) ? 'seed' : 'writer'))
  }
  if (!registry || errors.length) {
    registry?.free?.()
    return { kind: 'simple', errors }
  }
  const config = {}
  for (const k of ['strategy', 'policy', 'fallback']) if (k in doc) config[k] = doc[k]
  try {
    registry.configurePool(doc.pool, config, now)
  } catch (e) {
    let field
    if (e.code === 'invalid_pool_key') field = 'pool'
    else if (e.code === 'invalid_policy') {
      field = locate(doc.policy, 'policy', e.message)
    } else if (/fallback|missing field `pool`/.test(e.message) && 'fallback' in doc) {
      field = 'fallback'
      if (Array.isArray(doc.fallback)) {
        for (const [i, f] of doc.fallback.entries()) {
          try {
            new wasm.Registry({ writer, seed }).configurePool(doc.pool, { fallback: [f] }, now)
          } catch (e2) {
            field = locate(f, `fallback[${i}]`, e2.message)
            break
          }
        }
      }
    } else field = locate(config, '', e.message, (without) => succeeds(() => new wasm.Registry({ writer, seed }).configurePool(doc.pool, without, now)))
    errors.push(coded(e, field))
  }
  // Entries are checked even when the pool settings failed, so every error shows at once.
  for (const [i, entry] of errors.some((e) => e.code === 'invalid_pool_key') ? [] : doc.entries.entries()) {
    try {
      registry.addEntry(doc.pool, entry, now)
    } catch (e) {
      const probe = (without) => succeeds(() => new wasm.Registry({ writer, seed }).addEntry(doc.pool, without, now))
      let field = locate(entry, `entries[${i}]`, e.message, probe)
      if (e.code === 'duplicate_entry') field = `entries[${i}].id`
      errors.push(coded(e, field))
    }
  }
  if (errors.length) {
    registry.free?.()
    return { kind: 'simple', errors }
  }
  return { kind: 'simple', registry, writer, seed, now, errors }
}
