//! Redaction of provider text before it is stored or shown (control characters, which a
//! terminal would obey, become spaces too). Providers echo keys back
//! ("Incorrect API key provided: sk-..."), so a message may hold a secret: every word of
//! it that is a secret the pool knows (its fingerprint is in the pool's index, borrowed
//! keys included), one of the entry's own tokens, or shaped like a key is replaced.

use crate::entry::Entry;
use crate::registry::Pool;
use crate::secret::Fingerprint;

/// What a redacted word becomes.
pub(crate) const REDACTED: &str = "[redacted]";

/// Prefixes of API keys and tokens in common use.
const KEY_PREFIXES: &[&str] = &[
    "sk-",
    "sk_",
    "rk_",
    "pk_",
    "xai-",
    "gsk_",
    "hf_",
    "ghp_",
    "gho_",
    "github_pat_",
    "AIza",
    "ya29.",
    "eyJ",
];

/// Shortest word treated as a possible secret.
const MIN_SECRET_CHARS: usize = 12;

/// `text` with the secrets of `pool` (and `entry`'s tokens) and key-shaped words redacted.
pub(crate) fn redact(text: &str, pool: &Pool, entry: Option<&Entry>) -> String {
    let own: Vec<&str> = entry
        .into_iter()
        .flat_map(|e| [&e.token.access, &e.token.refresh])
        .flatten()
        .map(|s| s.expose())
        .collect();
    scrub(text, &own, |word| {
        !pool.with_fingerprint(&Fingerprint::of(word)).is_empty()
    })
}

/// `text` with `own` secrets and key-shaped words redacted (no pool to consult).
pub(crate) fn redact_text(text: &str, own: &[&str]) -> String {
    scrub(text, own, |_| false)
}

/// `text` with every occurrence of `own`, and every word that is `known` or key-shaped,
/// replaced by [`REDACTED`], and control characters (terminal escapes) by spaces.
fn scrub(text: &str, own: &[&str], known: impl Fn(&str) -> bool) -> String {
    let mut out: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    for secret in own.iter().filter(|s| !s.is_empty()) {
        out = out.replace(secret, REDACTED);
    }
    let secrets: Vec<String> = words(&out)
        .filter(|word| word.len() >= MIN_SECRET_CHARS && (key_shaped(word) || known(word)))
        .map(str::to_owned)
        .collect();
    for secret in secrets {
        out = out.replace(&secret, REDACTED);
    }
    out
}

/// The runs of key characters (letters, digits, `-`, `_`, `.`) of `text`, trailing dots
/// left out (a sentence's full stop).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| !word.is_empty())
}

/// Whether `word` looks like an API key or token.
fn key_shaped(word: &str) -> bool {
    let has_digit = word.bytes().any(|b| b.is_ascii_digit());
    let has_letter = word.bytes().any(|b| b.is_ascii_alphabetic());
    KEY_PREFIXES
        .iter()
        .any(|p| word.starts_with(p) && word.len() >= p.len() + 16)
        || (word.len() >= 40 && has_digit && has_letter && !word.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_shapes() {
        assert!(key_shaped("sk-proj-abcdefghijklmnop1234"));
        assert!(key_shaped("AIzaSyA1234567890abcdefghij"));
        assert!(!key_shaped("sk-short"));
        assert!(!key_shaped("invalid_api_key"));
        assert!(!key_shaped("https://platform.openai.com/account/api-keys"));
        let words: Vec<&str> = words("key: sk-abc. Done").collect();
        assert_eq!(words, ["key", "sk-abc", "Done"]);
    }
}
