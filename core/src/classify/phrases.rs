//! Reset times written in prose inside an error message (already ASCII-lower-cased).
//!
//! - retry phrases: "retry after 30 seconds", "retry in 2 minutes", "try again in 1m30s",
//!   "please try again in 6.5 seconds", "try again after 20s", "wait 45 seconds";
//! - reset phrases, only when no retry phrase gave a delay: "resets in 2h 5m",
//!   "Resets in 4hr 5min", "reset in 30s";
//! - then an absolute "resets at 2026-01-01T00:00:00Z" (RFC 3339).
//!
//! Within a group the earliest phrase in the text that is followed by a
//! readable duration wins. A phrase must start a word ("await" is not "wait").
//! Fillers between phrase and number are skipped: `about`, `approximately`,
//! `roughly`, `at least`, `for`, `~`, `:`.

use super::duration::{go_duration_prefix, phrase_duration_prefix};
use super::httpdate::parse_rfc3339;
use crate::time::Millis;

const RETRY_PHRASES: &[&str] = &[
    "retry after",
    "retry in",
    "try again in",
    "try again after",
    "wait",
];
const RESET_PHRASES: &[&str] = &["resets in", "reset in", "resets after"];
const RESET_AT_PHRASES: &[&str] = &["resets at", "reset at"];
const FILLERS: &[&str] = &[
    "about ",
    "approximately ",
    "roughly ",
    "at least ",
    "for ",
    "~",
];

/// The delay (ms) of the first retry phrase, else of the first reset phrase.
pub(crate) fn delay(lower: &str) -> Option<u64> {
    earliest_delay(lower, RETRY_PHRASES).or_else(|| earliest_delay(lower, RESET_PHRASES))
}

/// The instant of a "resets at <RFC 3339>" phrase.
pub(crate) fn reset_instant(lower: &str) -> Option<Millis> {
    RESET_AT_PHRASES.iter().find_map(|phrase| {
        occurrences(lower, phrase).find_map(|rest| {
            let token = rest.trim_start().split_ascii_whitespace().next()?;
            parse_rfc3339(token.trim_end_matches([',', '.', ';', ')']))
        })
    })
}

/// The delay (ms) of the first `quotaResetDelay: 1500ms` / `"quotaResetDelay": "4h5m3s"`.
pub(crate) fn quota_reset_delay(lower: &str) -> Option<u64> {
    occurrences(lower, "quotaresetdelay").find_map(|rest| {
        let value = rest.trim_start_matches([':', '"', '\'', '=', ' ', '\t']);
        go_duration_prefix(value).map(|(ms, _)| ms)
    })
}

/// The earliest (by position) `phrases` occurrence followed by a readable duration.
fn earliest_delay(lower: &str, phrases: &[&str]) -> Option<u64> {
    phrases
        .iter()
        .filter_map(|phrase| {
            lower
                .match_indices(phrase)
                .filter(|&(at, _)| starts_word(lower, at))
                .find_map(|(at, _)| {
                    let rest = lower.get(at + phrase.len()..)?;
                    phrase_duration_prefix(skip_fillers(rest)).map(|ms| (at, ms))
                })
        })
        .min_by_key(|&(at, _)| at)
        .map(|(_, ms)| ms)
}

/// The text after each word-starting occurrence of `phrase`.
fn occurrences<'a>(lower: &'a str, phrase: &'a str) -> impl Iterator<Item = &'a str> {
    lower
        .match_indices(phrase)
        .filter(|&(at, _)| starts_word(lower, at))
        .filter_map(|(at, _)| lower.get(at + phrase.len()..))
}

/// Whether byte `at` of `s` begins a word.
fn starts_word(s: &str, at: usize) -> bool {
    at == 0
        || s.as_bytes()
            .get(at - 1)
            .is_none_or(|b| !b.is_ascii_alphanumeric() && *b != b'_')
}

/// `s` without leading blanks, colons and filler words.
fn skip_fillers(mut s: &str) -> &str {
    for _ in 0..=FILLERS.len() {
        s = s.trim_start_matches([' ', '\t', ':']);
        match FILLERS.iter().find_map(|f| s.strip_prefix(f)) {
            Some(rest) => s = rest,
            None => break,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_and_reset_phrases() {
        let cases: &[(&str, u64)] = &[
            ("please try again in 20s.", 20_000),
            ("try again in 1m30s", 90_000),
            ("please try again in 6.5 seconds.", 6_500),
            ("please try again in 600ms.", 600),
            ("retry after 30 seconds", 30_000),
            ("retry after: 30", 30_000),
            ("retry in 2 minutes", 120_000),
            ("please wait 45 seconds before retrying", 45_000),
            ("wait for about 10 seconds", 10_000),
            ("your limit resets in 2h 5m", 7_500_000),
            ("resets in 4hr 5min", 14_700_000),
            ("try again after ~5 min", 300_000),
            // The explicit retry wins over "resets in", wherever it is.
            ("quota resets in 2h. retry after 30s", 30_000),
            // A phrase without a duration does not stop the search.
            ("please wait a moment and retry in 5 seconds", 5_000),
        ];
        for &(text, ms) in cases {
            assert_eq!(delay(text), Some(ms), "{text:?}");
        }
        for none in [
            "",
            "await 5 seconds",
            "retrying in 5 seconds",
            "try again later",
            "wait 3 requests",
            "resets in",
        ] {
            assert_eq!(delay(none), None, "{none:?}");
        }
    }

    #[test]
    fn reset_at_phrase() {
        assert_eq!(
            reset_instant("your quota resets at 2026-01-01t00:00:00z."),
            Some(Millis(1_767_225_600_000))
        );
        assert_eq!(reset_instant("resets at 3pm"), None);
    }

    #[test]
    fn quota_reset_delays() {
        assert_eq!(quota_reset_delay("quotaresetdelay: 1500ms"), Some(1_500));
        assert_eq!(
            quota_reset_delay(r#"{"quotaresetdelay": "4h5m3s"}"#),
            Some(14_703_000)
        );
        assert_eq!(quota_reset_delay("quotaresetdelay: soon"), None);
    }
}
