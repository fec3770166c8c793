// credpool config preview: everything runs on the wasm engine in this tab.
// The page's own registry only changes through the "what happens if" panel; every other
// view is computed on a scratch Registry built from its exported state.
import init, * as wasm from './pkg/credpool_wasm.js'
// The simulator (timeline) is its own wasm module (bindings-wasm-sim), loaded next to the
// engine; the engine's module stays small. `sim` stays null when it cannot load.
let sim = null
import { SecretVault, buildRegistry, detectKind, mask, masked, parseJson } from './config.js'
import { examples } from './examples.js'

const $ = (sel) => document.querySelector(sel)
const HOUR = 3_600_000

const EVENTS = {
  200: { label: '200 OK', response: { status: 200 } },
  429: { label: '429', response: { status: 429 } },
  '429_usage': {
    label: '429 usage limit',
    response: { status: 429, body: { error: { type: 'usage_limit_reached', message: 'The usage limit has been reached' } } },
  },
  402: { label: '402', response: { status: 402 } },
  401: { label: '401', response: { status: 401 } },
  403: { label: '403', response: { status: 403 } },
  '5xx': { label: '503', response: { status: 503 } },
}

const vault = new SecretVault()
/** The loaded config: { kind, doc, state (as loaded), writer, seed }. */
let loaded = null
/** After the strategy/preset choice: the state the what-if panel starts from. */
let base = null // { state, clock, pool }
let registry = null
/** What-if history: groups of steps; each step keeps the exported state after it. */
let groups = []

// ---------- small helpers ----------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') e.className = v
    else if (k === 'text') e.textContent = v
    else if (k.startsWith('data-')) e.setAttribute(k, v)
    else e[k] = v
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c)
  return e
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return '—'
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.000Z$/, 'Z').replace(/\.(\d{3})Z$/, '.$1Z')
}

function fmtDuration(ms) {
  const neg = ms < 0
  let s = Math.round(Math.abs(ms) / 1000)
  if (s === 0) return Math.abs(ms) < 1 ? '0 s' : `${Math.abs(ms)} ms`
  const parts = []
  for (const [unit, n] of [['d', 86400], ['h', 3600], ['min', 60], ['s', 1]]) {
    if (s >= n) {
      parts.push(`${Math.floor(s / n)} ${unit}`)
      s %= n
    }
    if (parts.length === 2) break
  }
  return (neg ? '-' : '') + parts.join(' ')
}

function relative(at, now) {
  return at > now ? `in ${fmtDuration(at - now)}` : `${fmtDuration(now - at)} ago`
}

function clock() {
  const v = Number($('#clock').value)
  return Number.isSafeInteger(v) && v >= 0 ? v : 0
}

function setClock(ms) {
  $('#clock').value = String(ms)
  $('#clock-text').textContent = fmtTime(ms)
}

function currentPool() {
  return $('#pool').value
}

function scratch(state = registry.exportState()) {
  return new wasm.Registry({ writer: loaded.writer, seed: loaded.seed, state })
}

function errorOf(e) {
  return { code: e?.code ?? 'internal', message: String(e?.message ?? e) }
}

function describe(out, now) {
  switch (out.type) {
    case 'use':
      return `use ${out.entry_id} (lease ${out.lease_id})${out.reason ? ` — rotated: ${out.reason}` : ''}${hintText(out.hint, now)}`
    case 'retry_same':
      return `retry the same entry ${out.entry_id} after ${fmtDuration(out.delay_ms)} (lease ${out.lease_id} stays open; ${out.reason})${hintText(out.hint, now)}`
    case 'refresh':
      return `refresh the OAuth token of ${out.entry_id} first (generation ${out.generation}, lease ${out.lease_id}; ${out.reason})`
    case 'fallback':
      return `fall back to ${out.pool}${out.model ? ` / ${out.model}` : ''} for the rest of the turn (${out.reason}); primary back ${out.primary_back_at === null ? 'unknown' : `at ${fmtTime(out.primary_back_at)}`}`
    case 'wait':
      return `wait until ${fmtTime(out.until)} (${relative(out.until, now)}; ${out.reason})${hintText(out.hint, now)}`
    case 'fail':
      return `fail this request: ${out.reason}${out.status ? ` (status ${out.status})` : ''}`
    case 'done':
      return 'done: success, the lease is settled'
    case 'released':
      return `lease ${out.lease_id} released (nothing marked)`
    case 'ticked':
      return `clock moved; recovered: ${out.recovered.map((r) => r.entry_id).join(', ') || 'none'}; next wake-up ${out.next_wakeup === null ? 'none' : `at ${fmtTime(out.next_wakeup)}`}`
    default:
      return out.type
  }
}

function hintText(hint, now) {
  if (!hint) return ''
  return `; hint from ${hint.source}: ${fmtTime(hint.at)} (${relative(hint.at, now)})${hint.clamped ? ', clamped' : ''}`
}

// ---------- config ----------

function showErrors(errors) {
  const ul = $('#errors')
  ul.replaceChildren(
    ...errors.map((e) =>
      el('li', { 'data-code': e.code, 'data-field': e.field },
        el('span', { class: 'field', text: e.field }), ': ',
        el('span', { class: 'message', text: e.message }), ' ',
        el('code', { class: 'code', text: e.code }))),
  )
}

/** Swaps secrets in the editor for their mask tokens (the secrets stay in `vault`). */
function hideSecretsInEditor(doc) {
  const ta = $('#config')
  const text = vault.hide(ta.value, doc)
  if (text !== ta.value) {
    const pos = ta.selectionStart
    const delta = text.length - ta.value.length
    ta.value = text
    ta.selectionStart = ta.selectionEnd = Math.max(0, Math.min(text.length, pos + delta))
  }
}

let inputTimer
/** The editor text last loaded: typing that changes nothing reloads nothing. */
let loadedText = null

/** Parses the editor and (re)builds everything. `hide`: mask secrets in the editor;
 * `force`: reload even when the text did not change (the Load button). */
function loadConfig({ hide = true, force = true } = {}) {
  clearTimeout(inputTimer)
  if (!force && $('#config').value === loadedText) return
  if (hide) {
    const parsed = parseJson($('#config').value)
    if (!parsed.error) hideSecretsInEditor(parsed.value)
  }
  const text = $('#config').value
  loadedText = text
  if (!text.trim()) {
    loaded = null
    showErrors([])
    clearViews('Paste or open a config.')
    return
  }
  const parsed = parseJson(text)
  if (parsed.error) return fail([parsed.error])
  const doc = vault.unmask(parsed.value)
  if (detectKind(doc) === 'simple' && Number.isSafeInteger(doc.now) && doc.now >= 0) setClock(doc.now)
  const built = buildRegistry(wasm, doc, clock())
  if (built.errors.length) return fail(built.errors)
  const state = built.registry.exportState()
  built.registry.free()
  loaded = { kind: built.kind, doc, state, writer: built.writer, seed: built.seed }
  const pools = Object.keys(state.pools ?? {})
  const select = $('#pool')
  const keep = select.value
  select.replaceChildren(...pools.map((p) => el('option', { value: p, text: p })))
  if (pools.includes(keep)) select.value = keep
  showErrors([])
  rebuild()
}

function fail(errors) {
  loaded = null
  showErrors(errors)
  clearViews(`Fix the ${errors.length === 1 ? 'error' : `${errors.length} errors`} above to see the preview.`)
}

function clearViews(message) {
  registry?.free()
  registry = null
  base = null
  groups = []
  $('#summary').textContent = message
  $('#entries tbody').replaceChildren()
  $('#selections').replaceChildren()
  $('#steps').replaceChildren()
  $('#lease').value = ''
}

/** Applies the strategy / preset choice to the selected pool; resets the what-if panel. */
function rebuild() {
  if (!loaded) return
  registry?.free()
  registry = null
  groups = []
  $('#steps').replaceChildren()
  $('#lease').value = ''
  const pool = currentPool()
  if (!pool) return clearViews('The config has no pool.')
  const r = new wasm.Registry({ writer: loaded.writer, seed: loaded.seed, state: loaded.state })
  const config = {}
  const strategy = $('#strategy').value
  const preset = $('#preset').value
  if (strategy) config.strategy = strategy
  if (preset) {
    const overrides = loaded.kind === 'simple' && loaded.doc.policy && typeof loaded.doc.policy === 'object' ? loaded.doc.policy : {}
    config.policy = { ...overrides, preset }
  }
  if (Object.keys(config).length) {
    try {
      r.configurePool(pool, config, clock())
    } catch (e) {
      r.free()
      return fail([{ ...errorOf(e), field: e.code === 'invalid_policy' ? 'policy' : 'strategy' }])
    }
  }
  registry = r
  base = { state: r.exportState(), clock: clock(), pool }
  renderAll()
}

// ---------- views ----------

function renderAll() {
  if (!registry) return
  const now = clock()
  setClock(now)
  const state = registry.exportState()
  const pool = currentPool()
  const poolDoc = state.pools[pool]
  const status = scratch(state).status(pool, now).pools[0]
  const kinds = { simple: 'simple form', state: 'credpool state document', hermes: 'Hermes auth.json (imported)', section: 'Hermes credential_pool section (imported)' }
  $('#summary').textContent =
    `${kinds[loaded.kind]}: pool ${pool} — strategy ${status.strategy}, policy ${status.policy}` +
    `${poolDoc.fallback?.length ? `, fallback ${poolDoc.fallback.map((f) => f.pool + (f.model ? `/${f.model}` : '')).join(' → ')}` : ''}` +
    ` — ${status.entries.length} entries; writer ${loaded.writer}, seed ${loaded.seed}`
  renderEntries(status, poolDoc, now)
  renderSelections(state, pool, now, new Map(status.entries.map((e) => [e.id, e.label])))
}

function secretCell(entry) {
  if (!entry) return '—'
  const parts = []
  if (entry.access_token) parts.push(mask(entry.access_token))
  if (entry.refresh_token) parts.push(`refresh ${mask(entry.refresh_token)}`)
  if (parts.length === 0) return entry.secret_fingerprint ? `not stored (${entry.secret_fingerprint})` : 'none'
  return parts.join(', ')
}

function renderEntries(status, poolDoc, now) {
  const byId = new Map((poolDoc.entries ?? []).map((e) => [e.id, e]))
  const rows = status.entries.map((s) => {
    const doc = byId.get(s.id)
    let available
    if (s.health === 'available') available = 'now'
    else if (s.until !== undefined) available = `${fmtTime(s.until)} (${relative(s.until, now)})`
    else if (s.health === 'dead' || s.health === 'auth_failed') available = 'never (until reset or new token)'
    else if (s.health === 'no_secret') available = 'never (no secret here)'
    else available = '—'
    return el('tr', { class: `health-${s.health}${s.next ? ' next' : ''}`, 'data-id': s.id },
      el('td', { text: `${s.index}${s.next ? ' ▶' : ''}` }),
      el('td', { text: s.id }),
      el('td', { text: s.label }),
      el('td', { text: s.auth_type }),
      el('td', { text: String(s.priority) }),
      el('td', { text: s.source }),
      el('td', { class: 'secret', text: secretCell(doc) }),
      el('td', { class: 'health', text: s.text }),
      el('td', { class: 'available', text: available }),
      el('td', { text: String(s.request_count) }))
  })
  $('#entries tbody').replaceChildren(...rows)
}

function renderSelections(state, pool, now, labels) {
  const n = Math.max(1, Math.min(50, Number($('#count').value) || 8))
  const r = scratch(state)
  const items = []
  try {
    for (let i = 0; i < n; i++) {
      const d = r.acquire(pool, {}, now)
      const text = d.type === 'use'
        ? `${d.entry_id} (${labels.get(d.entry_id) ?? ''})${d.reason ? ` — ${d.reason}` : ''}`
        : describe(d, now)
      const li = el('li', { 'data-type': d.type, 'data-entry': d.entry_id }, text)
      items.push(li)
      if (d.type === 'use') r.report(pool, d.lease_id, { status: 200 }, now)
      else break
    }
  } catch (e) {
    const { code, message } = errorOf(e)
    items.push(el('li', { class: 'error', 'data-type': 'error' }, `${code}: ${message}`))
  }
  r.free()
  $('#selections').replaceChildren(...items)
}

/** Changed leaves between two exported states (secrets masked, entries named by id). */
function stateDiff(before, after) {
  const flat = (v, path, out) => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => flat(x, `${path}/${x && typeof x === 'object' && 'id' in x ? x.id : i}`, out))
    } else if (v && typeof v === 'object') {
      if (Object.keys(v).length === 0) out.set(path, '{}')
      for (const [k, x] of Object.entries(v)) flat(x, path ? `${path}.${k}` : k, out)
    } else out.set(path, JSON.stringify(v))
    return out
  }
  const a = flat(masked(before?.pools ?? {}), '', new Map())
  const b = flat(masked(after?.pools ?? {}), '', new Map())
  const lines = []
  for (const [k, v] of b) if (a.get(k) !== v) lines.push(`${k}: ${a.get(k) ?? '(new)'} → ${v}`)
  for (const k of a.keys()) if (!b.has(k)) lines.push(`${k}: ${a.get(k)} → (gone)`)
  return lines
}

function renderSteps() {
  let n = 0
  const items = []
  for (const [gi, g] of groups.entries()) {
    for (const s of g.steps) {
      n++
      const last = gi === groups.length - 1 && s === g.steps[g.steps.length - 1]
      const out = s.output
      const diff = stateDiff(s.before, s.state)
      items.push(el('li', { class: `step${s.error ? ' error' : ''}${last ? ' last' : ''}`, 'data-step': String(n), 'data-type': s.error ? 'error' : out.type },
        el('div', { class: 'what' },
          el('span', { class: 'at', text: `t=${s.at} (${fmtTime(s.at)})` }), ' ',
          el('span', { class: 'input', text: s.label })),
        el('div', { class: 'decision', text: s.error ? `error ${s.error.code}: ${s.error.message}` : describe(out, s.at) }),
        el('pre', { class: 'output', text: JSON.stringify(s.error ? { error: s.error.code, message: s.error.message } : out) }),
        el('details', { class: 'changes' },
          el('summary', { text: diff.length ? `state: ${diff.length} change${diff.length === 1 ? '' : 's'}` : 'state: unchanged' }),
          el('ul', {}, diff.map((d) => el('li', { text: d }))),
          el('details', {}, el('summary', { text: 'full state (secrets masked)' }),
            el('pre', { class: 'state', text: JSON.stringify(masked(s.state), null, 1) })))))
    }
  }
  $('#steps').replaceChildren(...items)
  $('#steps').lastElementChild?.scrollIntoView?.({ block: 'nearest' })
}

// ---------- what happens if ----------

function step(group, input, at, label) {
  const before = registry.exportState()
  let output = null
  let error = null
  try {
    output = registry.handle(input, at)
  } catch (e) {
    error = errorOf(e)
  }
  const s = { input, at, label, output, error, before, state: registry.exportState() }
  group.steps.push(s)
  if (output) {
    if ('lease_id' in output && ['use', 'retry_same', 'refresh'].includes(output.type)) $('#lease').value = String(output.lease_id)
    else if (['done', 'fail', 'wait', 'fallback', 'released'].includes(output.type)) $('#lease').value = ''
  }
  return s
}

function whatIf(event) {
  if (!registry) return
  const pool = currentPool()
  const group = { before: { clock: clock(), lease: $('#lease').value }, steps: [] }
  let at = clock()
  const lease = () => (Number.isSafeInteger(Number($('#lease').value)) && $('#lease').value !== '' ? Number($('#lease').value) : null)
  if (event === 'clock') {
    at += HOUR
    setClock(at)
    step(group, { type: 'tick' }, at, 'clock +1 h, tick')
  } else if (event === 'acquire') {
    step(group, { type: 'acquire', pool }, at, `acquire ${pool}`)
  } else if (event === 'release') {
    if (lease() === null) return
    step(group, { type: 'release', pool, lease_id: lease() }, at, `release lease ${lease()}`)
  } else {
    let response
    let label
    if (event === 'custom') {
      const parsed = parseJson($('#custom-response').value || '{}')
      if (parsed.error) {
        showErrors([{ ...parsed.error, field: `custom response: ${parsed.error.field}` }])
        return
      }
      response = parsed.value
      label = `response ${JSON.stringify(response)}`
    } else {
      response = EVENTS[event].response
      label = EVENTS[event].label
    }
    if (lease() === null) {
      const s = step(group, { type: 'acquire', pool }, at, `acquire ${pool} (no open lease)`)
      if (!s.output || !('lease_id' in s.output)) return commit(group)
    }
    const id = lease()
    step(group, { type: 'report', pool, lease_id: id, response }, at, `report ${label} on lease ${id}`)
  }
  commit(group)
}

function commit(group) {
  if (group.steps.length === 0) return
  groups.push(group)
  renderSteps()
  renderAll()
}

/** Undo: rebuild from the starting state and replay every remaining input (leases and
 * turn budgets are not part of the exported state, so replaying keeps them exact); the
 * result must equal the exported state kept on the stack. */
function undo() {
  if (!base || groups.length === 0) return
  const g = groups.pop()
  registry.free()
  registry = new wasm.Registry({ writer: loaded.writer, seed: loaded.seed, state: base.state })
  for (const { steps } of groups) for (const s of steps) {
    try { registry.handle(s.input, s.at) } catch { /* replayed as it happened */ }
  }
  const expected = groups.length ? groups.at(-1).steps.at(-1).state : base.state
  if (JSON.stringify(registry.exportState()) !== JSON.stringify(expected)) {
    console.warn('undo: the replayed state differs from the saved one; using the saved one')
    registry.free()
    registry = new wasm.Registry({ writer: loaded.writer, seed: loaded.seed, state: expected })
  }
  setClock(g.before.clock)
  $('#lease').value = g.before.lease
  renderSteps()
  renderAll()
}

// ---------- timeline (simulate) ----------

async function runSimulation() {
  const note = $('#timeline-note')
  const seed = Number($('#sim-seed').value) || 0
  const which = $('#scenario').value
  note.textContent = 'running…'
  await new Promise((r) => setTimeout(r, 0))
  let result
  const t0 = performance.now()
  try {
    const custom = $('#scenario-json').value.trim()
    let scenario = which
    if (custom) {
      const parsed = parseJson(custom)
      if (parsed.error) throw Object.assign(new Error(`${parsed.error.field}: ${parsed.error.message}`), { code: 'invalid_json' })
      scenario = parsed.value
    }
    result = sim.simulate(scenario, seed)
  } catch (e) {
    const { code, message } = errorOf(e)
    note.textContent = `error ${code}: ${message}`
    $('#timeline').replaceChildren()
    return
  }
  const ms = Math.round(performance.now() - t0)
  note.textContent = `${result.scenario}: ${result.requests} requests, ${result.agents} agents, seed ${result.seed} (${ms} ms in this tab). ${result.description ?? ''}`
  // The SVG carries its own <style>; as an image it renders exactly, and the page's
  // style-src CSP stays strict.
  const img = el('img', { alt: `timeline of ${result.scenario}`, src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(result.svg)}` })
  $('#timeline').replaceChildren(img)
  const cols = ['policy', 'strategy', 'store', 'served', 'failed', 'rate_limited', 'wait_s', 'rotations', 'refreshes', 'fallbacks', 'replays']
  $('#sim-rows thead').replaceChildren(el('tr', {}, cols.map((c) => el('th', { text: c }))))
  $('#sim-rows tbody').replaceChildren(...result.rows.map((r) => el('tr', {}, cols.map((c) => el('td', { text: String(r[c] ?? '') })))))
}

/** Loads the simulator's module (./sim/); false when it is not there. */
async function loadSimulator() {
  try {
    const mod = await import('./sim/credpool_wasm_sim.js')
    await mod.default()
    sim = mod
    return true
  } catch (e) {
    console.warn(`timeline unavailable: ${e.message}`)
    return false
  }
}

function setupTimeline() {
  if (typeof sim?.simulate !== 'function') return false
  $('#timeline-section').hidden = false
  $('#simulate').addEventListener('click', runSimulation)
  const showPreset = () => {
    $('#scenario-json').value = JSON.stringify(sim.scenarioPreset($('#scenario').value), null, 2)
  }
  $('#scenario').addEventListener('change', () => {
    showPreset()
    runSimulation()
  })
  showPreset()
  return true
}

// ---------- wiring ----------

async function main() {
  const simulator = loadSimulator() // in parallel with the engine
  await init()
  $('#engine').textContent = `credpool-core ${wasm.version()}, WebAssembly`
  setClock(Math.floor(Date.now() / 1000) * 1000)
  const exampleSelect = $('#example')
  for (const [key, ex] of Object.entries(examples)) exampleSelect.append(el('option', { value: key, text: ex.label }))
  exampleSelect.addEventListener('change', () => {
    const ex = examples[exampleSelect.value]
    if (!ex) return
    $('#config').value = JSON.stringify(ex.doc, null, 2)
    loadConfig()
  })
  $('#file').addEventListener('change', async () => {
    const file = $('#file').files[0]
    if (!file) return
    $('#config').value = await file.text()
    $('#file').value = ''
    loadConfig()
  })
  // Typing previews after a pause (secrets are masked in the editor on blur, paste and
  // Load, not while typing them).
  $('#config').addEventListener('input', () => {
    exampleSelect.value = ''
    clearTimeout(inputTimer)
    inputTimer = setTimeout(() => loadConfig({ hide: false, force: false }), 300)
  })
  $('#config').addEventListener('paste', () => setTimeout(() => loadConfig({ force: false }), 0))
  $('#config').addEventListener('blur', () => {
    const parsed = parseJson($('#config').value)
    if (parsed.error) return
    const before = $('#config').value
    hideSecretsInEditor(parsed.value)
    if (before === loadedText) loadedText = $('#config').value // same config, now masked
  })
  $('#config').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault()
      loadConfig()
    }
  })
  $('#load').addEventListener('click', () => loadConfig())
  for (const id of ['#pool', '#strategy', '#preset']) $(id).addEventListener('change', rebuild)
  $('#clock').addEventListener('change', renderAll)
  $('#count').addEventListener('change', renderAll)
  for (const b of document.querySelectorAll('[data-event]')) b.addEventListener('click', () => whatIf(b.dataset.event))
  $('#undo').addEventListener('click', undo)
  $('#restart').addEventListener('click', () => {
    if (base) setClock(base.clock)
    rebuild()
  })
  $('#config').value = JSON.stringify(examples.simple.doc, null, 2)
  exampleSelect.value = 'simple'
  loadConfig()
  await simulator
  const timeline = setupTimeline()
  $('#ready').textContent = 'ready'
  $('#ready').dataset.ready = 'true'
  if (timeline) setTimeout(runSimulation, 0)
}

main().catch((e) => {
  $('#ready').textContent = `the engine failed to load: ${e.message}`
  $('#ready').dataset.ready = 'error'
  throw e
})
