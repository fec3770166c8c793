//! Secrets (API keys, OAuth tokens): redacted everywhere except where the host asks for them.

use std::fmt;

use sha2::{Digest, Sha256};

/// A secret string. Its `Debug` is `Secret(REDACTED)`; it has no `Display` and no
/// `Serialize`: the only way out is [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Box<str>);

impl Secret {
    /// Wraps `value` as a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret text, for the host to put on the wire. Never log it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Stable non-reversible identifier of this secret (`sha256:<16 hex>`).
    #[must_use]
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(self.expose())
    }

    /// Masked form for people: first 4 and last 4 characters when long enough.
    #[must_use]
    pub fn masked(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        if chars.len() < 12 {
            return "****".to_owned();
        }
        let head: String = chars.iter().take(4).collect();
        let tail: String = chars.iter().skip(chars.len() - 4).collect();
        format!("{head}…{tail}")
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(REDACTED)")
    }
}

/// `sha256:` followed by the first 16 hex digits of the SHA-256 of a secret.
///
/// Carries a hash of its text, computed once, so that the pool's sibling index can tell
/// whether an entry's fingerprint changed without reading the text again.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint {
    text: String,
    hash: u64,
}

impl Fingerprint {
    /// Fingerprint of `secret`.
    #[must_use]
    pub fn of(secret: &str) -> Self {
        let digest = Sha256::digest(secret.as_bytes());
        let mut hex = String::with_capacity(7 + 16);
        hex.push_str("sha256:");
        for byte in digest.iter().take(8) {
            hex.push(char::from(HEX[usize::from(byte >> 4)]));
            hex.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        Self::from_text(hex)
    }

    /// A fingerprint as stored (e.g. a borrowed entry's `secret_fingerprint`).
    #[must_use]
    pub fn from_text(text: String) -> Self {
        // FNV-1a: small and allocation-free.
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        Self { text, hash }
    }

    /// The text, `sha256:<16 hex digits>`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The text, owned.
    #[must_use]
    pub fn into_string(self) -> String {
        self.text
    }

    /// The hash of the text (the pool's sibling index key).
    pub(crate) const fn hash(&self) -> u64 {
        self.hash
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Fingerprint").field(&self.text).finish()
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("sk-live-very-secret");
        assert_eq!(format!("{secret:?}"), "Secret(REDACTED)");
        assert_eq!(format!("{:?}", Some(secret)), "Some(Secret(REDACTED))");
    }

    #[test]
    fn fingerprint_is_stable_and_short() {
        let fp = Fingerprint::of("abc");
        assert_eq!(fp.as_str(), "sha256:ba7816bf8f01cfea");
    }

    #[test]
    fn masked_shows_ends_only() {
        assert_eq!(
            Secret::new("sk-or-v1-0123456789abcdef").masked(),
            "sk-o…cdef"
        );
        assert_eq!(Secret::new("short").masked(), "****");
    }
}
