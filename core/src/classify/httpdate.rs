//! Hand-written date parsers: RFC 7231 IMF-fixdate and ISO 8601 / RFC 3339, to epoch ms.
//!
//! Only years 1970..=9999 are accepted, and an instant at or before the epoch is
//! rejected (a zero or negative absolute reset time carries no information).

use crate::time::{DAY, HOUR, MINUTE, Millis, SECOND};

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Days since 1970-01-01 of the proleptic Gregorian date `y-m-d` (H. Hinnant's algorithm).
pub(crate) const fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400); // [0, 399]
    let mp = (month as i64 + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

const fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

const fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A broken-down UTC wall-clock time, validated by [`Civil::to_millis`].
#[derive(Clone, Copy, Debug, Default)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    milli: u32,
    /// Offset east of UTC, in minutes (`+02:00` → 120).
    offset_minutes: i64,
}

impl Civil {
    /// Epoch milliseconds, or `None` for an invalid field or an instant at or before the epoch.
    fn to_millis(self) -> Option<Millis> {
        let valid = (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour <= 23
            && self.minute <= 59
            && self.second <= 60 // a leap second rolls into the next minute
            && self.milli <= 999
            && self.offset_minutes.abs() < 24 * 60;
        if !valid {
            return None;
        }
        // Bounded above: every term is small, so no overflow in i64.
        let ms = days_from_civil(self.year, self.month, self.day) * DAY as i64
            + i64::from(self.hour) * HOUR as i64
            + i64::from(self.minute) * MINUTE as i64
            + i64::from(self.second) * SECOND as i64
            + i64::from(self.milli)
            - self.offset_minutes * MINUTE as i64;
        if ms <= 0 {
            return None;
        }
        u64::try_from(ms).ok().map(Millis)
    }
}

/// A byte cursor over ASCII text; every read is bounds-checked.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    const fn new(s: &'a str) -> Self {
        Self {
            bytes: s.as_bytes(),
            pos: 0,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Consumes `c` if it is next.
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// Consumes exactly `n` ASCII digits.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut value: u32 = 0;
        for _ in 0..n {
            let c = self.peek().filter(u8::is_ascii_digit)?;
            value = value * 10 + u32::from(c - b'0');
            self.pos += 1;
        }
        Some(value)
    }

    /// Consumes a run of digits; returns the first three as milliseconds.
    fn fraction_millis(&mut self) -> Option<u32> {
        let mut milli = 0;
        let mut count = 0;
        while let Some(c) = self.peek().filter(u8::is_ascii_digit) {
            if count < 3 {
                milli = milli * 10 + u32::from(c - b'0');
            }
            count += 1;
            self.pos += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..3 {
            milli *= 10;
        }
        Some(milli)
    }

    fn done(&self) -> bool {
        self.pos >= self.bytes.len()
    }
}

/// Parses an ISO 8601 / RFC 3339 timestamp to epoch ms.
///
/// Accepted: `2025-01-01`, `2025-01-01T00:00Z`, `2025-01-01T00:00:00Z`,
/// `2025-01-01T00:00:00.123456+02:00`, `+0200`, `+02`, `t`/`z` lower-case, a
/// space instead of `T`. No offset means UTC. Surrounding ASCII whitespace is ignored.
pub(crate) fn parse_rfc3339(s: &str) -> Option<Millis> {
    let mut c = Cursor::new(s.trim_ascii());
    let mut t = Civil {
        year: i64::from(c.digits(4)?),
        ..Civil::default()
    };
    if !c.eat(b'-') {
        return None;
    }
    t.month = c.digits(2)?;
    if !c.eat(b'-') {
        return None;
    }
    t.day = c.digits(2)?;
    if c.done() {
        return t.to_millis();
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    t.hour = c.digits(2)?;
    if !c.eat(b':') {
        return None;
    }
    t.minute = c.digits(2)?;
    if c.eat(b':') {
        t.second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            t.milli = c.fraction_millis()?;
        }
    }
    if c.eat(b'Z') || c.eat(b'z') {
        // UTC
    } else if let Some(sign @ (b'+' | b'-')) = c.peek() {
        c.pos += 1;
        let hours = i64::from(c.digits(2)?);
        let minutes = if c.done() {
            0
        } else {
            c.eat(b':');
            i64::from(c.digits(2)?)
        };
        let offset = hours * 60 + minutes;
        t.offset_minutes = if sign == b'-' { -offset } else { offset };
    }
    if !c.done() {
        return None;
    }
    t.to_millis()
}

/// Parses an RFC 7231 IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) to epoch ms.
///
/// The weekday name is required in shape (three letters and a comma) but not
/// checked against the date; `UTC` is accepted for `GMT`. The obsolete RFC 850
/// and asctime forms are not accepted.
pub(crate) fn parse_http_date(s: &str) -> Option<Millis> {
    let mut parts = s.split_ascii_whitespace();
    let weekday = parts.next()?;
    let day = parts.next()?;
    let month = parts.next()?;
    let year = parts.next()?;
    let time = parts.next()?;
    let zone = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let weekday_ok = weekday.len() == 4
        && weekday.ends_with(',')
        && weekday.bytes().take(3).all(|b| b.is_ascii_alphabetic());
    if !weekday_ok || !(zone == "GMT" || zone == "UTC") || day.len() != 2 || year.len() != 4 {
        return None;
    }
    let month = MONTHS
        .iter()
        .position(|m| month.eq_ignore_ascii_case(m))
        .and_then(|i| u32::try_from(i + 1).ok())?;
    let mut c = Cursor::new(time);
    let hour = c.digits(2)?;
    let minute = c.eat(b':').then(|| c.digits(2)).flatten()?;
    let second = c.eat(b':').then(|| c.digits(2)).flatten()?;
    if !c.done() {
        return None;
    }
    Civil {
        year: i64::from(Cursor::new(year).digits(4)?),
        month,
        day: Cursor::new(day).digits(2)?,
        hour,
        minute,
        second,
        ..Civil::default()
    }
    .to_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2026, 1, 1), 20_454);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn rfc3339() {
        let jan1_2026 = 1_767_225_600_000;
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00Z"),
            Some(Millis(jan1_2026))
        );
        assert_eq!(parse_rfc3339("2026-01-01"), Some(Millis(jan1_2026)));
        assert_eq!(parse_rfc3339("2026-01-01t00:00z"), Some(Millis(jan1_2026)));
        assert_eq!(
            parse_rfc3339(" 2026-01-01 00:00:00 "),
            Some(Millis(jan1_2026))
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.123456Z"),
            Some(Millis(jan1_2026 + 123))
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T00:00:00.5Z"),
            Some(Millis(jan1_2026 + 500))
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T02:00:00+02:00"),
            Some(Millis(jan1_2026))
        );
        assert_eq!(
            parse_rfc3339("2025-12-31T19:00:00-0500"),
            Some(Millis(jan1_2026))
        );
        assert_eq!(
            parse_rfc3339("2026-01-01T01:00:00+01"),
            Some(Millis(jan1_2026))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:00:00Z"),
            Some(Millis(1_709_208_000_000))
        );
        for bad in [
            "",
            "2026",
            "2026-1-01",
            "2026-01-01T",
            "2026-01-01T24:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00Q",
            "2026-01-01T00:00:00Z trailing",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00.Z",
            "1970-01-01T00:00:00Z",
            "1969-12-31T00:00:00Z",
            "2026-01-01T00:00:00\u{0}Z",
            "２０２６-01-01",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn http_date() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Millis(784_111_777_000))
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 2026 00:00:00 GMT"),
            Some(Millis(1_767_225_600_000))
        );
        assert_eq!(
            parse_http_date("thu, 01 JAN 2026 00:00:00 UTC"),
            Some(Millis(1_767_225_600_000))
        );
        for bad in [
            "",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 06 Nov 1994 08:49:37 PST",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:3\u{7}GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }
}
