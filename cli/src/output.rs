//! What the commands print: the pool table (`list`, the interactive status) and JSON.
//!
//! Nothing here ever receives a secret: the table and the JSON are built from core's
//! `status` reply, which carries ids, labels, sources and health only.

use std::fmt::Write as _;

use credpool_core::{EntryStatus, PoolStatus};
use serde::Serialize;
use serde_json::Value;

/// The marker on the entry the next plain acquire would pick.
pub(crate) const NEXT_MARKER: &str = "←";

/// The snake_case wire name of a serde enum value (`api_key`, `fill_first`, ...).
pub(crate) fn wire_name(value: &impl Serialize) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::from("?"),
    }
}

/// One pool as text: a header, then one line per entry, then a blank line.
///
/// ```text
/// openrouter (2 credentials, strategy fill_first, policy hermes):
///   #1  OPENROUTER_API_KEY   api_key id=3f9a1c priority=0 env:OPENROUTER_API_KEY  available ←
///   #2  backup-key           api_key id=77b2e0 priority=1 manual  rate-limited (429) (2h 5m left)
///   suppressed (seed skips them; `credpool add openrouter` re-enables): config:Together.ai
/// ```
pub(crate) fn pool_table(pool: &PoolStatus) -> String {
    let mut out = String::new();
    let count = pool.entries.len();
    let _ = writeln!(
        out,
        "{} ({count} credential{}, strategy {}, policy {}):",
        pool.pool,
        if count == 1 { "" } else { "s" },
        wire_name(&pool.strategy),
        wire_name(&pool.policy),
    );
    for entry in &pool.entries {
        let _ = writeln!(out, "{}", entry_line(entry));
    }
    if !pool.suppressed_sources.is_empty() {
        let _ = writeln!(
            out,
            "  suppressed (seed skips them; `credpool add {}` re-enables): {}",
            pool.pool,
            shown(&pool.suppressed_sources.join(", "))
        );
    }
    out
}

/// One entry's line of the table (no secret: label, type, id, priority, source, status).
pub(crate) fn entry_line(entry: &EntryStatus) -> String {
    let source = entry
        .source
        .strip_prefix("manual:")
        .unwrap_or(&entry.source);
    let marker = if entry.next {
        format!(" {NEXT_MARKER}")
    } else {
        String::new()
    };
    format!(
        "  #{:<2} {:<20} {:<7} id={} priority={} {}  {}{}",
        entry.index,
        shown(&entry.label),
        wire_name(&entry.auth_type),
        shown(entry.id.as_str()),
        entry.priority,
        shown(source),
        shown(&entry.text),
        marker
    )
}

/// `text` safe to print on a terminal: control characters (escape sequences, carriage
/// returns) and the invisible bidirectional overrides are shown escaped (`\u{1b}`),
/// never obeyed. Text from a store or a provider passes through here before it is shown.
pub(crate) fn shown(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if unsafe_char(c) {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Every pool with entries or suppressed sources as text, or a hint when there is none.
pub(crate) fn pools_text(pools: &[PoolStatus]) -> String {
    let mut out = String::new();
    let shown = |p: &&PoolStatus| !p.entries.is_empty() || !p.suppressed_sources.is_empty();
    for pool in pools.iter().filter(shown) {
        out.push_str(&pool_table(pool));
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str("No credentials yet. Add one with `credpool add <provider>`.\n");
    }
    out
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        Err(e) => eprintln!("credpool: cannot serialise the output ({e}) [internal]"),
    }
}
