// The built-in OAuth refresher of the helpers against a mock token endpoint on 127.0.0.1:
// core builds each request and reads each answer, the helpers only carry out the HTTP
// (fetch). The mock issues single-use, rotating refresh tokens and records every replay;
// the tests fail on any, also with processes refreshing one login concurrently.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { credpool, impl } from './impl.mjs'
import { withCredential } from '../../bindings-node/helpers.mjs'

const { Registry, oauthProviders } = credpool

/** A token endpoint issuing rotating single-use refresh tokens (`expiresIn` s). */
async function mockOAuth(expiresIn = 3600) {
  const state = { valid: new Set(['rt-0']), used: new Set(), revoked: new Set(), replays: [], requests: [], issued: 0 }
  const server = createServer((req, res) => {
    let raw = ''
    req.on('data', (chunk) => (raw += chunk))
    req.on('end', () => {
      const json = (req.headers['content-type'] ?? '').startsWith('application/json')
      const fields = json ? JSON.parse(raw) : Object.fromEntries(new URLSearchParams(raw))
      state.requests.push({ fields, headers: req.headers })
      const token = fields.refresh_token ?? req.headers['x-nous-refresh-token']
      const send = (status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (fields.grant_type !== 'refresh_token' || !token) return send(400, { error: 'invalid_request' })
      if (state.revoked.has(token)) return send(400, { error: 'invalid_grant', error_description: `${token} was revoked` })
      if (state.used.has(token)) {
        state.replays.push(token)
        return send(400, { error: 'invalid_grant', error_description: 'refresh token reused' })
      }
      if (!state.valid.has(token)) return send(400, { error: 'invalid_grant' })
      state.valid.delete(token)
      state.used.add(token)
      state.issued += 1
      state.valid.add(`rt-${state.issued}`)
      send(200, { access_token: `at-${state.issued}`, refresh_token: `rt-${state.issued}`, expires_in: expiresIn })
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${server.address().port}/oauth/token`
  state.close = () => new Promise((resolve) => server.close(resolve))
  return state
}

/** An OAuth entry whose token expired and whose login recorded the mock's endpoint. */
const login = (url, extra = {}) => ({
  id: 'o',
  auth_type: 'oauth',
  access_token: 'at-0',
  refresh_token: 'rt-0',
  expires_at: 1000,
  extra: { token_url: url, ...extra },
})
const clock = { now: () => 10_000, sleep: async () => {} }

test('the built-in providers are core\'s', () => {
  assert.deepEqual(oauthProviders(), ['anthropic', 'openai-codex', 'xai-oauth', 'nous', 'qwen-oauth', 'minimax-oauth'])
})

test('an expired Anthropic login refreshes with no host code: JSON body, the client id, the rotated pair kept', async () => {
  const oauth = await mockOAuth()
  after(oauth.close)
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('anthropic', login(oauth.url), 0)
  assert.equal(await withCredential(reg, 'anthropic', (c) => c.accessToken, clock), 'at-1')
  assert.deepEqual(oauth.requests.map((r) => r.fields), [
    { grant_type: 'refresh_token', refresh_token: 'rt-0', client_id: '9d1c250a-e61b-44d9-88ed-5944d1962f5e' },
  ])
  assert.equal(oauth.requests[0].headers['content-type'], 'application/json')
  const cred = reg.credential('anthropic', 'o', 10_001)
  assert.deepEqual([cred.refresh_token, cred.generation, cred.expires_at], ['rt-1', 1, 10_000 + 3_600_000])
  assert.deepEqual(oauth.replays, [])
})

test('Nous: a form body, the refresh token in the x-nous-refresh-token header', async () => {
  const oauth = await mockOAuth()
  after(oauth.close)
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('nous', login(oauth.url), 0)
  assert.equal(await withCredential(reg, 'nous', (c) => c.accessToken, clock), 'at-1')
  assert.deepEqual(oauth.requests[0].fields, { grant_type: 'refresh_token', client_id: 'hermes-cli' })
  assert.equal(oauth.requests[0].headers['x-nous-refresh-token'], 'rt-0')
})

test('a revoked login is marked dead with the provider\'s reason (no token in it) and the call goes on with the next key', async () => {
  const oauth = await mockOAuth()
  after(oauth.close)
  oauth.revoked.add('rt-0')
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('openai-codex', login(oauth.url), 0)
  reg.addEntry('openai-codex', { id: 'k', access_token: 'sk-test-k' }, 0)
  assert.equal(await withCredential(reg, 'openai-codex', (c) => c.entryId, clock), 'k')
  const entry = reg.exportState().pools['openai-codex'].entries[0]
  assert.equal(entry.status, 'dead')
  assert.equal(entry.last_error.reason, 'invalid_grant')
  assert.ok(!JSON.stringify(entry.last_error).includes('rt-0'))
})

test('an unreachable token endpoint benches the login without consuming its token', async () => {
  const reg = new Registry({ writer: 'w1', seed: 1 })
  reg.addEntry('qwen-oauth', login('http://127.0.0.1:9/oauth/token'), 0)
  reg.addEntry('qwen-oauth', { id: 'k', access_token: 'sk-test-k' }, 0)
  assert.equal(await withCredential(reg, 'qwen-oauth', (c) => c.entryId, clock), 'k')
  const entry = reg.exportState().pools['qwen-oauth'].entries[0]
  assert.deepEqual([entry.status, entry.last_error.reason, entry.refresh_token, entry.token_generation], ['exhausted', 'network_error', 'rt-0', 0])
})

const worker = `
const { Store } = (await import(process.argv[1])).default
const { withCredential } = await import(process.argv[2])
const store = await Store.open(process.argv[3], {})
for (let i = 0; i < 6; i++) {
  const token = await withCredential(store, 'openai-codex', (c) => c.accessToken)
  if (!token.startsWith('at-')) throw new Error('no refreshed token: ' + token)
}
console.log('ok')
`

test('processes refreshing one login over a Store never replay its refresh token', { skip: impl === 'wasm' && 'the wasm build has no persisted store' }, async () => {
  // Tokens expire within the refresh skew: every call of every process refreshes, or
  // adopts the token another process just rotated.
  const oauth = await mockOAuth(60)
  after(oauth.close)
  const dir = mkdtempSync(join(tmpdir(), 'credpool-oauth-test-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'pools.sqlite')
  const store = await credpool.Store.open(path, { writer: 'setup' })
  await store.addEntry('openai-codex', login(oauth.url), 0)
  const main = new URL('../../bindings-node/main.js', import.meta.url).pathname
  const helpers = new URL('../../bindings-node/helpers.mjs', import.meta.url).href
  const runs = Array.from({ length: 3 }, () => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', worker, main, helpers, path], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => (code === 0 && out.trim() === 'ok' ? resolve() : reject(new Error(`worker exited ${code}: ${err.slice(-2000)}`))))
  }))
  await Promise.all(runs)
  assert.deepEqual(oauth.replays, [])
  const reader = await credpool.Store.open(path, { writer: 'reader' })
  const cred = await reader.credential('openai-codex', 'o')
  assert.ok(oauth.issued >= 1)
  assert.deepEqual([cred.generation, cred.refresh_token], [oauth.issued, `rt-${oauth.issued}`])
})
