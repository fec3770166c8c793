// One type contract for both JS packages: scripts/test-packages.sh compiles this file with
// `tsc --strict` twice, with 'credpool-under-test' replaced by 'credpool' (napi) and by
// 'credpool-wasm' (its Node build), against the .d.ts files in the packed tarballs.
import { Registry, errorCodes, version } from 'credpool-under-test'
import type {
  CredentialOutput,
  Decision,
  DecisionOutput,
  ErrorCode,
  Output,
  StateDocument,
  StatusOutput,
} from 'credpool-under-test'
import { withCredential, reportResponse, responseInfo } from 'credpool-under-test/helpers'
import { credentialFetch } from 'credpool-under-test/fetch'
import type { CredentialFetchOptions } from 'credpool-under-test/fetch'

const registry: Registry = new Registry({ writer: 'contract', seed: 1 })
registry.configurePool('openrouter', { strategy: 'round_robin', policy: { preset: 'adaptive' } }, 0)
const added: { type: 'entry_added'; entry_id: string; changed: boolean } = registry.addEntry('openrouter', { access_token: 'sk-x' }, 0)
const decision: DecisionOutput = registry.acquire('openrouter', { model: 'gpt-4o' }, 1)
if (decision.type === 'use') {
  const lease: number = decision.lease_id
  const cred: CredentialOutput = registry.credential('openrouter', decision.entry_id, 1)
  const next: Decision = registry.report('openrouter', lease, { status: 429, headers: { 'retry-after': '20' } }, 2)
  void cred
  void next
}
const output: Output = registry.handle({ type: 'tick' }, 3)
const status: StatusOutput = registry.status('openrouter', 4)
const health: string = status.pools[0].entries[0].health
const state: StateDocument = registry.exportState()
registry.sync(state, 5)
const codes: ErrorCode[] = errorCodes()
const v: string = version()
const info: Promise<unknown> = responseInfo(new Response('', { status: 402 }))
const done: Promise<string> = withCredential(registry, 'openrouter', async (c) => c.entryId)
const reported: Promise<Decision> = reportResponse(registry, 'openrouter', 1, new Response('', { status: 200 }))
// credentialFetch: a fetch for SDKs' `fetch` option, over the same registry
const fetchOptions: CredentialFetchOptions = { api: 'openai', maxSends: 3, refresh: async (c) => ({ type: 'refreshed', access_token: `${c.entryId}-new` }) }
const credFetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response> = credentialFetch(registry, 'openrouter', fetchOptions)
const sdkFetch: typeof fetch = credFetch
const fetched: Promise<Response> = credFetch('https://openrouter.ai/api/v1/chat/completions', { method: 'POST', body: '{}' })
void [added, output, health, codes, v, info, done, reported, sdkFetch, fetched]
// @ts-expect-error: the API shapes are a closed set
credentialFetch(registry, 'openrouter', { api: 'gemini' })
// @ts-expect-error: an unknown input type is a type error
registry.handle({ type: 'no_such_input' })
// @ts-expect-error: strategies are a closed set
registry.configurePool('openrouter', { strategy: 'best' })
