// Example configs for the preview page (made-up secrets).
export const examples = {
  simple: {
    label: 'Simple form: three OpenRouter keys',
    doc: {
      pool: 'openrouter',
      strategy: 'fill_first',
      policy: { preset: 'hermes' },
      entries: [
        { id: 'primary', label: 'primary', access_token: 'sk-or-v1-example-primary-0123456789abcdef' },
        { id: 'backup', label: 'backup', access_token: 'sk-or-v1-example-backup-fedcba9876543210' },
        { id: 'team', label: 'team key', access_token: 'sk-or-v1-example-team-00112233445566' },
      ],
    },
  },
  fallback: {
    label: 'Simple form: one Anthropic login, a fallback pool, adaptive policy',
    doc: {
      pool: 'anthropic',
      strategy: 'round_robin',
      policy: { preset: 'adaptive', cooldown_rate_limit_ms: 120000 },
      fallback: [{ pool: 'openrouter', model: 'anthropic/claude-sonnet-4' }],
      entries: [
        { id: 'work', label: 'work account', access_token: 'sk-ant-api03-example-work-key-abcdefgh' },
        { id: 'home', label: 'home account', access_token: 'sk-ant-api03-example-home-key-ijklmnop' },
      ],
    },
  },
  hermes: {
    label: 'Hermes auth.json (credential_pool)',
    doc: {
      version: 1,
      active_provider: 'openrouter',
      credential_pool: {
        openrouter: [
          {
            id: 'a1b2c3', label: 'primary', auth_type: 'api_key', priority: 0, source: 'manual',
            access_token: 'sk-or-v1-example-hermes-primary-2468ace', last_status: 'exhausted',
            last_error_code: 429, failure_reason: 'rate_limit', request_count: 12,
          },
          {
            id: 'd4e5f6', label: 'OPENROUTER_API_KEY', auth_type: 'api_key', priority: 1,
            source: 'env:OPENROUTER_API_KEY', secret_fingerprint: 'sha256:12ab34cd56ef7890', request_count: 3,
          },
          {
            id: '0f9e8d', label: 'backup-key', auth_type: 'api_key', priority: 2, source: 'manual',
            access_token: 'sk-or-v1-example-hermes-backup-13579bdf', last_status: 'ok', request_count: 0,
          },
        ],
      },
    },
  },
}
