//! Routing a request a host holds onto a credential: the API shape a pool speaks, the
//! headers its credentials go in, and the URL a request goes to on an entry's endpoint.
//!
//! Transports and `fetch` wrappers send requests an SDK built; these rules are the same for
//! every language, so they live here: a host copies the action's fields onto the request.

use serde::{Deserialize, Serialize};

use crate::entry::AuthType;
use crate::pool_key::PoolKey;

/// The HTTP API shape a pool's endpoints speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Api {
    /// OpenAI-compatible (`/v1/chat/completions`, `/v1/responses`, ...): OpenAI, OpenRouter,
    /// Nous, most custom endpoints. Base URLs include the version (`.../v1`).
    Openai,
    /// Anthropic Messages (`/v1/messages`). Base URLs stop before the version.
    Anthropic,
}

impl Api {
    /// A pool's shape: the declared one, else `anthropic` for the pool named `anthropic`,
    /// else `openai`.
    #[must_use]
    pub fn of_pool(declared: Option<Self>, pool: &PoolKey) -> Self {
        match declared {
            Some(api) => api,
            None if pool.as_str() == "anthropic" => Self::Anthropic,
            None => Self::Openai,
        }
    }
}

/// Where a credential goes on the request (never the credential itself).
///
/// The host deletes any `authorization` and `x-api-key` header already on the request, sets
/// `header` to `prefix` + the access token, and adds each `extra` header (appending
/// `,value` to one already there that lacks it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Auth {
    /// The header name (lower case).
    pub header: &'static str,
    /// What goes before the token (`"Bearer "` or nothing).
    pub prefix: &'static str,
    /// Further headers this kind of credential needs, name → value.
    pub extra: std::collections::BTreeMap<&'static str, &'static str>,
}

/// The beta flag Anthropic requires on requests authorised by an OAuth (Claude) login.
pub const ANTHROPIC_OAUTH_BETA: &str = "oauth-2025-04-20";

impl Auth {
    /// The auth of a credential of `auth_type` on an endpoint of shape `api`: Anthropic API
    /// keys go in `x-api-key`; Anthropic OAuth tokens are Bearer tokens with the OAuth beta
    /// flag; every other credential is a Bearer token.
    #[must_use]
    pub fn of(api: Api, auth_type: AuthType) -> Self {
        let mut extra = std::collections::BTreeMap::new();
        let (header, prefix) = match (api, auth_type) {
            (Api::Anthropic, AuthType::ApiKey) => ("x-api-key", ""),
            (Api::Anthropic, _) => {
                extra.insert("anthropic-beta", ANTHROPIC_OAUTH_BETA);
                ("authorization", "Bearer ")
            }
            _ => ("authorization", "Bearer "),
        };
        Self {
            header,
            prefix,
            extra,
        }
    }
}

/// `url` moved onto an entry's endpoint `base_url`, for a request of shape `api`.
///
/// The request's path below its API root is kept with its query: for `openai` that is the
/// part after the first version segment (`v1`, `v1beta`, ...), since OpenAI-compatible base
/// URLs include the version; for `anthropic` the whole path, since Anthropic base URLs
/// stop before it. `https://api.openai.com/v1/chat/completions` on
/// `https://openrouter.ai/api/v1` is `https://openrouter.ai/api/v1/chat/completions`.
#[must_use]
pub fn rebase_url(url: &str, base_url: &str, api: Api) -> String {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let tail_at = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let tail = &url[tail_at..];
    let path_end = tail.find(['?', '#']).unwrap_or(tail.len());
    let (path, rest) = tail.split_at(path_end);
    let below_root = match api {
        Api::Anthropic => path,
        Api::Openai => version_end(path).map_or(path, |end| &path[end..]),
    };
    format!("{}{below_root}{rest}", base_url.trim_end_matches('/'))
}

/// The end of the first version segment of `path` (`/v1`, `/v1beta`, `/v2alpha1`), if any.
fn version_end(path: &str) -> Option<usize> {
    let mut at = 0;
    for segment in path.split('/') {
        let end = at + segment.len();
        let digits = segment.strip_prefix('v').map(|s| {
            let numeric = s.bytes().take_while(u8::is_ascii_digit).count();
            (numeric, &s[numeric..])
        });
        if let Some((n, suffix)) = digits
            && n > 0
            && (suffix.is_empty()
                || ["alpha", "beta"].iter().any(|tag| {
                    suffix
                        .strip_prefix(tag)
                        .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
                }))
        {
            return Some(end);
        }
        at = end + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_paths_keep_what_is_below_the_version() {
        let cases = [
            (
                "https://api.openai.com/v1/chat/completions",
                "https://openrouter.ai/api/v1/",
                "https://openrouter.ai/api/v1/chat/completions",
            ),
            (
                "http://127.0.0.1:9/v1/responses?stream=true",
                "http://127.0.0.1:8/v1",
                "http://127.0.0.1:8/v1/responses?stream=true",
            ),
            (
                "https://g.example/v1beta/models?x=1",
                "https://h.example/v1beta",
                "https://h.example/v1beta/models?x=1",
            ),
            (
                "https://x.example/chat",
                "https://y.example/v1",
                "https://y.example/v1/chat",
            ),
            (
                "https://x.example",
                "https://y.example/v1",
                "https://y.example/v1",
            ),
            (
                "https://x.example/vendor/v1x/a",
                "https://y.example",
                "https://y.example/vendor/v1x/a",
            ),
        ];
        for (url, base, want) in cases {
            assert_eq!(rebase_url(url, base, Api::Openai), want, "{url} on {base}");
        }
    }

    #[test]
    fn anthropic_paths_are_kept_whole() {
        assert_eq!(
            rebase_url(
                "http://127.0.0.1:9/v1/messages?beta=true",
                "https://api.anthropic.com/",
                Api::Anthropic
            ),
            "https://api.anthropic.com/v1/messages?beta=true"
        );
    }

    #[test]
    fn auth_by_shape_and_type() {
        let key = Auth::of(Api::Anthropic, AuthType::ApiKey);
        assert_eq!(
            (key.header, key.prefix, key.extra.len()),
            ("x-api-key", "", 0)
        );
        let oauth = Auth::of(Api::Anthropic, AuthType::Oauth);
        assert_eq!((oauth.header, oauth.prefix), ("authorization", "Bearer "));
        assert_eq!(
            oauth.extra.get("anthropic-beta"),
            Some(&ANTHROPIC_OAUTH_BETA)
        );
        let bearer = Auth::of(Api::Openai, AuthType::Oauth);
        assert_eq!((bearer.header, bearer.extra.len()), ("authorization", 0));
    }
}
