//! Short text stored inline: comparing, hashing and cloning it touches no heap memory.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

/// Longest text stored inline.
const INLINE: usize = 22;

/// Text of up to 22 bytes held inline (longer text on the heap); orders and compares as
/// the text does. Used for entry ids and writer names, which sit in large indexes and in
/// every entry, where a pointer to chase is a cache miss.
#[derive(Clone)]
pub(crate) struct ShortStr(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<str>),
}

impl ShortStr {
    /// `text`, inline when it fits.
    pub(crate) fn new(text: &str) -> Self {
        let len = text.len();
        if len <= INLINE
            && let Ok(short) = u8::try_from(len)
        {
            let mut bytes = [0; INLINE];
            bytes[..len].copy_from_slice(text.as_bytes());
            Self(Repr::Inline { len: short, bytes })
        } else {
            Self(Repr::Heap(text.into()))
        }
    }

    /// The empty text (usable in constants).
    pub(crate) const fn empty() -> Self {
        Self(Repr::Inline {
            len: 0,
            bytes: [0; INLINE],
        })
    }

    /// The text.
    pub(crate) fn as_str(&self) -> &str {
        match &self.0 {
            // The inline bytes are a copy of a whole `str`, so always UTF-8.
            Repr::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Repr::Heap(text) => text,
        }
    }

    /// The text's bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Repr::Heap(text) => text.as_bytes(),
        }
    }
}

impl PartialEq for ShortStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for ShortStr {}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders as the text does (byte order of UTF-8 is code-point order).
impl Ord for ShortStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for ShortStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Hash for ShortStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `str` hashes: the bytes, then a terminator.
        state.write(self.as_bytes());
        state.write_u8(0xff);
    }
}

#[cfg(test)]
mod tests {
    use super::ShortStr;

    #[test]
    fn inline_and_heap_text_compare_as_text() {
        let texts = [
            "",
            "a",
            "k1",
            "abcdefghijklmnopqrstuv",
            "abcdefghijklmnopqrstuvw",
            "é",
        ];
        for a in texts {
            let short = ShortStr::new(a);
            assert_eq!(short.as_str(), a);
            for b in texts {
                assert_eq!(short.cmp(&ShortStr::new(b)), a.cmp(b), "{a} vs {b}");
            }
        }
        assert_eq!(ShortStr::empty(), ShortStr::new(""));
    }
}
