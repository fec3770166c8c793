//! Resolving what the user typed: provider names (aliases, custom endpoints, "did you
//! mean") and entry targets (id, then label, then 1-based index).

use credpool_core::EntryStatus;
use credpool_core::PROVIDERS;
use credpool_core::PoolKey;
use credpool_core::{CUSTOM_PREFIX, custom_name};

use crate::exit::{CliError, CliResult};

/// Alternative spellings of known providers (as Hermes accepts them).
const ALIASES: &[(&str, &str)] = &[
    ("or", "openrouter"),
    ("open-router", "openrouter"),
    ("claude", "anthropic"),
    ("codex", "openai-codex"),
    ("google", "gemini"),
    ("grok", "xai"),
    ("grok-oauth", "xai-oauth"),
    ("x-ai-oauth", "xai-oauth"),
    ("xai-grok-oauth", "xai-oauth"),
    ("qwen", "qwen-oauth"),
    ("minimax", "minimax-oauth"),
    ("kimi", "kimi-coding"),
    ("glm", "zai"),
];

/// Resolves a provider name to a pool key.
///
/// In order: a known provider id or alias; an explicit `custom:<name>`; a pool that
/// exists in the store (`existing`), by key or by the bare name of a `custom:` pool; and,
/// when `new_custom` is set (`add --base-url`), any other name as `custom:<name>`.
/// Anything else is an `unknown_provider` usage error suggesting the closest names.
pub(crate) fn resolve_provider(
    raw: &str,
    existing: &[PoolKey],
    new_custom: bool,
) -> CliResult<PoolKey> {
    let name = raw.trim().to_lowercase();
    if name.is_empty() {
        return Err(CliError::usage(
            "unknown_provider",
            "the provider name is empty",
        ));
    }
    let name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == name)
        .map_or(name.as_str(), |(_, id)| id);
    if PROVIDERS.iter().any(|p| p.id == name) || name.starts_with(CUSTOM_PREFIX) {
        return Ok(PoolKey::parse(name)?);
    }
    if let Some(key) = existing.iter().find(|k| k.as_str() == name) {
        return Ok(key.clone());
    }
    let as_custom = format!("{CUSTOM_PREFIX}{}", custom_name(name));
    if let Some(key) = existing.iter().find(|k| k.as_str() == as_custom) {
        return Ok(key.clone());
    }
    if new_custom {
        return Ok(PoolKey::parse(&as_custom)?);
    }
    let mut candidates: Vec<String> = PROVIDERS.iter().map(|p| p.id.to_owned()).collect();
    candidates.extend(existing.iter().map(|k| k.as_str().to_owned()));
    let suggestions = did_you_mean(name, &candidates);
    let hint = if suggestions.is_empty() {
        format!(
            "known providers: {}; a custom endpoint is `custom:<name>` (add it with --base-url)",
            PROVIDERS
                .iter()
                .map(|p| p.id)
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        format!(
            "did you mean {}?",
            suggestions
                .iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(" or ")
        )
    };
    Err(CliError::usage(
        "unknown_provider",
        format!("unknown provider '{}'; {hint}", clip(raw.trim())),
    ))
}

/// Resolves `target` among a pool's entries: exact id, then case-insensitive label
/// (several matches: `ambiguous_label`), then a 1-based index; else `unknown_target`.
pub(crate) fn resolve_target<'a>(
    pool: &PoolKey,
    entries: &'a [EntryStatus],
    target: &str,
) -> CliResult<&'a EntryStatus> {
    let target = target.trim();
    if let Some(entry) = entries.iter().find(|e| e.id.as_str() == target) {
        return Ok(entry);
    }
    let wanted = target.to_lowercase();
    let by_label: Vec<&EntryStatus> = entries
        .iter()
        .filter(|e| e.label.to_lowercase() == wanted)
        .collect();
    match by_label.as_slice() {
        [one] => return Ok(one),
        [] => {}
        _ => {
            return Err(CliError::usage(
                "ambiguous_label",
                format!(
                    "ambiguous credential label \"{}\" in {pool} ({} entries); use the index or id instead",
                    clip(target),
                    by_label.len()
                ),
            ));
        }
    }
    if !target.is_empty() && target.bytes().all(|b| b.is_ascii_digit()) {
        return target
            .parse::<usize>()
            .ok()
            .and_then(|n| entries.iter().find(|e| e.index == n))
            .ok_or_else(|| {
                CliError::usage(
                    "unknown_target",
                    format!(
                        "no credential #{} in {pool} (it has {})",
                        clip(target),
                        entries.len()
                    ),
                )
            });
    }
    Err(CliError::usage(
        "unknown_target",
        format!(
            "no credential matching \"{}\" in {pool} (give an id, a label or a 1-based index)",
            clip(target)
        ),
    ))
}

/// Up to three `candidates` close to `name` (similarity ≥ 0.5, as Hermes' difflib cutoff),
/// closest first.
pub(crate) fn did_you_mean(name: &str, candidates: &[String]) -> Vec<String> {
    let mut scored: Vec<(usize, &String)> = candidates
        .iter()
        .filter_map(|c| {
            let distance = edit_distance(name, c);
            let longest = name.chars().count().max(c.chars().count()).max(1);
            // similarity = 1 - distance / longest ≥ 0.5
            (distance * 2 <= longest).then_some((distance, c))
        })
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(3).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance over characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Shortens user input quoted in messages.
fn clip(text: &str) -> String {
    const MAX: usize = 64;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("openrouter", "openrouter"), 0);
    }

    #[test]
    fn suggestions() {
        let known: Vec<String> = ["openrouter", "openai", "anthropic"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(did_you_mean("openruter", &known), vec!["openrouter"]);
        assert_eq!(did_you_mean("antropic", &known), vec!["anthropic"]);
        assert!(did_you_mean("zzzzzz", &known).is_empty());
    }

    #[test]
    fn providers() {
        let key = |raw: &str, new| resolve_provider(raw, &[], new).map(|k| k.to_string());
        assert_eq!(key("OR", false).unwrap(), "openrouter");
        assert_eq!(
            key("custom:Together AI", false).unwrap(),
            "custom:together-ai"
        );
        assert_eq!(key("Together AI", true).unwrap(), "custom:together-ai");
        let err = key("openruter", false).unwrap_err();
        assert!(err.message.contains("did you mean 'openrouter'"), "{err}");
        let existing = [PoolKey::parse("custom:box").unwrap()];
        assert_eq!(
            resolve_provider("Box", &existing, false).unwrap().as_str(),
            "custom:box"
        );
    }
}
