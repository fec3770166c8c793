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
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint(pub String);

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
        Self(hex)
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
        assert_eq!(fp.0, "sha256:ba7816bf8f01cfea");
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
