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
        match (&self.0, &other.0) {
            // Unused inline bytes are always zero, so whole arrays compare.
            (Repr::Inline { len: la, bytes: a }, Repr::Inline { len: lb, bytes: b }) => {
                la == lb && a == b
            }
            _ => self.as_bytes() == other.as_bytes(),
        }
    }
}

impl Eq for ShortStr {}

impl PartialOrd for ShortStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Orders as the text does (byte order of UTF-8 is code-point order).
///
/// Two inline texts compare first as their zero-padded bytes read as three big-endian
/// words (no call, no loop), which is the order of the texts whenever the padded bytes
/// differ: at the first difference either both texts have a byte there, or the shorter
/// one ended and the longer one continues (so the shorter is its prefix). Texts equal
/// once padded differ only in trailing zero bytes: the longer is the greater.
impl Ord for ShortStr {
    fn cmp(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            // Equal once padded: the texts differ at most in trailing zero bytes, so the
            // longer one is greater.
            (Repr::Inline { len: la, bytes: a }, Repr::Inline { len: lb, bytes: b }) => {
                words(a).cmp(&words(b)).then(la.cmp(lb))
            }
            _ => self.as_bytes().cmp(other.as_bytes()),
        }
    }
}

/// The inline bytes as big-endian words, in order.
fn words(bytes: &[u8; INLINE]) -> (u64, u64, u64) {
    let mut tail = [0; 8];
    tail[..INLINE - 16].copy_from_slice(&bytes[16..]);
    let word = |at: usize| {
        let mut chunk = [0; 8];
        chunk.copy_from_slice(&bytes[at..at + 8]);
        u64::from_be_bytes(chunk)
    };
    (word(0), word(8), u64::from_be_bytes(tail))
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

impl ShortStr {
    /// A fast 64-bit hash of the text for core's own hash tables (multiply-mix of the
    /// inline words, as `wyhash` folds them). Not keyed: core's tables hold ids the
    /// operator chose, and the same text always hashes the same.
    pub(crate) fn fast_hash(&self) -> u64 {
        const K: [u64; 3] = [
            0xa076_1d64_78bd_642f,
            0xe703_7ed1_a0b4_28db,
            0x8ebc_6af0_9c88_c6e3,
        ];
        let mix = |a: u64, b: u64| {
            let wide = u128::from(a) * u128::from(b);
            // Folding the 128-bit product keeps every input bit's influence.
            #[allow(clippy::cast_possible_truncation)]
            let (low, high) = (wide as u64, (wide >> 64) as u64);
            low ^ high
        };
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let (a, b, c) = words(bytes);
                mix(a ^ K[0], b ^ K[1]) ^ mix(c ^ K[2], u64::from(*len) ^ K[0])
            }
            Repr::Heap(text) => text
                .bytes()
                .fold(K[2], |hash, byte| mix(hash ^ u64::from(byte), K[1])),
        }
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

    #[test]
    fn word_order_is_byte_order_even_with_zero_bytes() {
        let texts = [
            "", "\0", "a", "a\0", "a\0b", "ab", "a\u{1}", "k10", "k9", "zz\0\0",
        ];
        for a in texts {
            for b in texts {
                let (x, y) = (ShortStr::new(a), ShortStr::new(b));
                assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()), "{a:?} vs {b:?}");
                assert_eq!(x == y, a == b);
                if a == b {
                    assert_eq!(x.fast_hash(), y.fast_hash());
                }
            }
        }
    }
}
