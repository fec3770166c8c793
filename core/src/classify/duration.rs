//! Hand-written number and duration parsers (no regex, no floats).
//!
//! - [`parse_decimal`]: `30`, `1.5` (no sign, no exponent; `-5`, `1e400`, `NaN` are rejected).
//! - [`parse_go_duration`]: Go/OpenAI/Google durations `6m0s`, `1.5s`, `20ms`, `1h2m3.5s`, `34s`.
//! - [`phrase_duration_prefix`]: prose durations `2h 5m`, `4hr 5min`, `6.5 seconds`, `1m30s`.
//!
//! Everything is computed in nanoseconds as `u128` with checked arithmetic and
//! returned in whole milliseconds; a value that does not fit `u64` ms is rejected.

/// Fraction digits kept (nanosecond precision); further digits are read and ignored.
const MAX_FRACTION_DIGITS: u32 = 9;

const NS_PER_MS: u128 = 1_000_000;
const NS_PER_SECOND: u128 = 1_000 * NS_PER_MS;
const NS_PER_MINUTE: u128 = 60 * NS_PER_SECOND;
const NS_PER_HOUR: u128 = 60 * NS_PER_MINUTE;
const NS_PER_DAY: u128 = 24 * NS_PER_HOUR;

/// Go duration units (`time.ParseDuration`), longest spellings first where prefixes overlap.
const GO_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", NS_PER_MS),
    ("s", NS_PER_SECOND),
    ("m", NS_PER_MINUTE),
    ("h", NS_PER_HOUR),
];

/// Unit words accepted in prose (already ASCII-lower-cased by the caller).
const PHRASE_UNITS: &[(&str, u128)] = &[
    ("ms", NS_PER_MS),
    ("msec", NS_PER_MS),
    ("msecs", NS_PER_MS),
    ("millisecond", NS_PER_MS),
    ("milliseconds", NS_PER_MS),
    ("s", NS_PER_SECOND),
    ("sec", NS_PER_SECOND),
    ("secs", NS_PER_SECOND),
    ("second", NS_PER_SECOND),
    ("seconds", NS_PER_SECOND),
    ("m", NS_PER_MINUTE),
    ("min", NS_PER_MINUTE),
    ("mins", NS_PER_MINUTE),
    ("minute", NS_PER_MINUTE),
    ("minutes", NS_PER_MINUTE),
    ("h", NS_PER_HOUR),
    ("hr", NS_PER_HOUR),
    ("hrs", NS_PER_HOUR),
    ("hour", NS_PER_HOUR),
    ("hours", NS_PER_HOUR),
    ("d", NS_PER_DAY),
    ("day", NS_PER_DAY),
    ("days", NS_PER_DAY),
];

/// A non-negative decimal number as written (`12`, `1.5`), without sign or exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decimal {
    /// The integer part.
    pub(crate) int: u64,
    /// The fraction digits kept, as an integer (`1.25` → 25).
    frac: u64,
    /// How many fraction digits `frac` holds (`1.25` → 2).
    frac_digits: u32,
}

impl Decimal {
    /// True for `0`, `0.0`, `0.000`.
    pub(crate) const fn is_zero(self) -> bool {
        self.int == 0 && self.frac == 0
    }

    /// `self × unit_ns` in nanoseconds, the fraction truncated to whole nanoseconds.
    fn times_ns(self, unit_ns: u128) -> Option<u128> {
        let whole = u128::from(self.int).checked_mul(unit_ns)?;
        let frac = u128::from(self.frac).checked_mul(unit_ns)? / 10u128.pow(self.frac_digits);
        whole.checked_add(frac)
    }

    /// `self` read as seconds, in whole milliseconds.
    pub(crate) fn seconds_to_ms(self) -> Option<u64> {
        ns_to_ms(self.times_ns(NS_PER_SECOND)?)
    }
}

/// Whole milliseconds of `ns`, when that fits a `u64`.
fn ns_to_ms(ns: u128) -> Option<u64> {
    u64::try_from(ns / NS_PER_MS).ok()
}

/// Reads a decimal at the start of `s`; returns it and the bytes consumed.
///
/// Needs at least one leading digit; a `.` is only consumed when a digit follows
/// (so the full stop of "in 20." is left alone). `None` when the integer part
/// overflows `u64`.
pub(crate) fn decimal_prefix(s: &str) -> Option<(Decimal, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut int: u64 = 0;
    while let Some(&c) = bytes.get(i)
        && c.is_ascii_digit()
    {
        int = int.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut frac: u64 = 0;
    let mut frac_digits = 0;
    if bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while let Some(&c) = bytes.get(i)
            && c.is_ascii_digit()
        {
            if frac_digits < MAX_FRACTION_DIGITS {
                frac = frac * 10 + u64::from(c - b'0');
                frac_digits += 1;
            }
            i += 1;
        }
    }
    Some((
        Decimal {
            int,
            frac,
            frac_digits,
        },
        i,
    ))
}

/// Parses all of `s` (surrounding ASCII whitespace ignored) as a [`Decimal`].
pub(crate) fn parse_decimal(s: &str) -> Option<Decimal> {
    let s = s.trim_ascii();
    match decimal_prefix(s)? {
        (d, used) if used == s.len() => Some(d),
        _ => None,
    }
}

/// Parses all of `s` as a decimal number of seconds, in milliseconds.
pub(crate) fn parse_seconds(s: &str) -> Option<u64> {
    parse_decimal(s)?.seconds_to_ms()
}

/// Reads a Go-style duration at the start of `s` (`6m0s`, `1.5s`, `1500ms`, or a bare `0`).
///
/// Returns milliseconds and the bytes consumed; no whitespace is allowed inside.
pub(crate) fn go_duration_prefix(s: &str) -> Option<(u64, usize)> {
    let mut pos = 0;
    let mut total: u128 = 0;
    let mut tokens = 0;
    while let Some(rest) = s.get(pos..)
        && let Some((value, used)) = decimal_prefix(rest)
    {
        let after = rest.get(used..).unwrap_or_default();
        let Some((unit_ns, unit_len)) = GO_UNITS
            .iter()
            .find(|(name, _)| after.starts_with(name))
            .map(|&(name, ns)| (ns, name.len()))
        else {
            // Go accepts a bare "0" as the whole duration.
            if tokens == 0 && value.is_zero() {
                return Some((0, pos + used));
            }
            break;
        };
        total = total.checked_add(value.times_ns(unit_ns)?)?;
        pos += used + unit_len;
        tokens += 1;
    }
    if tokens == 0 {
        return None;
    }
    Some((ns_to_ms(total)?, pos))
}

/// Parses all of `s` (surrounding ASCII whitespace ignored) as a Go-style duration, in ms.
pub(crate) fn parse_go_duration(s: &str) -> Option<u64> {
    let s = s.trim_ascii();
    match go_duration_prefix(s)? {
        (ms, used) if used == s.len() => Some(ms),
        _ => None,
    }
}

/// Reads a prose duration at the start of lower-cased `s`: `20s`, `1m30s`, `2h 5m`,
/// `4hr 5min`, `6.5 seconds`, `2 hours and 5 minutes`.
///
/// A single number without a unit (`retry after 30`) is seconds. Reading stops
/// at the first token that is not `<number><unit>`; an unknown unit on the
/// first token (`wait 3 requests`) yields `None`. Returns milliseconds.
pub(crate) fn phrase_duration_prefix(s: &str) -> Option<u64> {
    let mut pos = 0;
    let mut total: u128 = 0;
    let mut tokens = 0;
    while let Some(rest) = s.get(pos..)
        && let Some((value, used)) = decimal_prefix(rest)
    {
        let after_number = rest.get(used..).unwrap_or_default();
        let after_space = after_number.trim_start_matches([' ', '\t']);
        let word_len = after_space
            .bytes()
            .take_while(u8::is_ascii_alphabetic)
            .count();
        let word = after_space.get(..word_len).unwrap_or_default();
        let unit = PHRASE_UNITS
            .iter()
            .find(|(name, _)| *name == word)
            .map(|&(_, ns)| ns);
        let Some(unit_ns) = unit else {
            if tokens == 0 && word.is_empty() {
                return ns_to_ms(value.times_ns(NS_PER_SECOND)?);
            }
            break;
        };
        total = total.checked_add(value.times_ns(unit_ns)?)?;
        tokens += 1;
        let consumed = rest.len() - after_space.len() + word_len;
        pos += consumed;
        pos += separator_len(s.get(pos..).unwrap_or_default());
    }
    if tokens == 0 {
        return None;
    }
    ns_to_ms(total)
}

/// Length of the separator between prose duration parts: spaces, commas, "and".
fn separator_len(s: &str) -> usize {
    let trimmed = s.trim_start_matches([' ', '\t', ',']);
    let trimmed = trimmed
        .strip_prefix("and ")
        .map_or(trimmed, |t| t.trim_start_matches([' ', '\t']));
    s.len() - trimmed.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(parse_seconds("30"), Some(30_000));
        assert_eq!(parse_seconds(" 1.5 "), Some(1_500));
        assert_eq!(parse_seconds("0.0015"), Some(1));
        assert_eq!(parse_seconds("2.123456789123"), Some(2_123));
        assert_eq!(parse_seconds("0"), Some(0));
        for bad in [
            "",
            " ",
            "-5",
            "+5",
            "1e400",
            "NaN",
            "inf",
            ".5",
            "5.",
            "1,5",
            "30s",
            "3 0",
            "99999999999999999999999",
        ] {
            assert_eq!(parse_seconds(bad), None, "{bad:?}");
        }
        // Fits u64 as a number but not as milliseconds.
        assert_eq!(parse_seconds("18446744073709551615"), None);
        assert!(parse_decimal("0.000").is_some_and(Decimal::is_zero));
        assert_eq!(
            parse_decimal("1767225600").map(|d| d.int),
            Some(1_767_225_600)
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("6m0s"), Some(360_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500));
        assert_eq!(parse_go_duration("20ms"), Some(20));
        assert_eq!(parse_go_duration("1h2m3.5s"), Some(3_723_500));
        assert_eq!(parse_go_duration("34s"), Some(34_000));
        assert_eq!(parse_go_duration("4h5m3s"), Some(14_703_000));
        assert_eq!(parse_go_duration("1500ms"), Some(1_500));
        assert_eq!(parse_go_duration("2500000us"), Some(2_500));
        assert_eq!(parse_go_duration("3000000µs"), Some(3_000));
        assert_eq!(parse_go_duration("999999ns"), Some(0));
        assert_eq!(parse_go_duration("0"), Some(0));
        assert_eq!(parse_go_duration("0.000s"), Some(0));
        for bad in [
            "",
            "s",
            "5",
            "-1s",
            "1e3s",
            "1.5",
            "6m 0s",
            "5x",
            "1s-",
            "1d",
            "99999999999999999999999s",
            "18446744073709551615h",
        ] {
            assert_eq!(parse_go_duration(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn go_duration_prefixes() {
        assert_eq!(go_duration_prefix("1500ms\", next"), Some((1_500, 6)));
        assert_eq!(go_duration_prefix("0 and more"), Some((0, 1)));
        assert_eq!(go_duration_prefix("x1s"), None);
    }

    #[test]
    fn phrase_durations() {
        let cases: &[(&str, u64)] = &[
            ("20s", 20_000),
            ("1m30s", 90_000),
            ("6.5 seconds.", 6_500),
            ("600ms.", 600),
            ("30 seconds", 30_000),
            ("2 minutes", 120_000),
            ("2h 5m", 7_500_000),
            ("4hr 5min", 14_700_000),
            ("2 hours and 5 minutes", 7_500_000),
            ("1 hour, 2 minutes, 3 seconds", 3_723_000),
            ("1 day", 86_400_000),
            ("30", 30_000),
            ("30. thanks", 30_000),
            ("45 seconds 500 requests", 45_000),
        ];
        for &(text, ms) in cases {
            assert_eq!(phrase_duration_prefix(text), Some(ms), "{text:?}");
        }
        for bad in ["", "soon", "3 requests", "-5s", "99999999999999999999999s"] {
            assert_eq!(phrase_duration_prefix(bad), None, "{bad:?}");
        }
    }
}
