//! `.env` files for `credpool seed`: read as Hermes reads `~/.hermes/.env` (reference
//! §6.3, `get_env_prefer_dotenv`): a value in the file beats the process environment, so
//! a stale shell export cannot shadow an edited file; an unresolved `op://` reference in
//! the file loses to a value the environment has.
//!
//! The format is the common one (python-dotenv's): `KEY=value` lines, an optional
//! `export ` prefix, `#` comments (whole lines, or after a space in an unquoted value),
//! single quotes taken literally, double quotes with `\n`, `\t`, `\\` and `\"` escapes.
//! Values stay on one line. A line that is not an assignment is skipped; a key given twice
//! keeps its last value.

use std::collections::BTreeMap;
use std::path::Path;

use crate::exit::CliResult;

/// Reads the `.env` file at `path`; `None` when it does not exist.
pub(crate) fn read(path: &Path) -> CliResult<Option<BTreeMap<String, String>>> {
    Ok(crate::files::read(path)?.map(|bytes| parse(&String::from_utf8_lossy(&bytes))))
}

/// The assignments of a `.env` text.
pub(crate) fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(assignment).collect()
}

/// The value `name` seeds from: the file's, unless it is an unresolved `op://` reference
/// and the environment has one; else the environment's.
pub(crate) fn prefer_file(file: Option<&String>, env: Option<String>) -> Option<String> {
    match (file, env) {
        (Some(file), Some(env)) if file.trim_start().starts_with("op://") => Some(env),
        (Some(file), _) => Some(file.clone()),
        (None, env) => env,
    }
}

fn assignment(line: &str) -> Option<(String, String)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let line = line.strip_prefix("export ").map_or(line, str::trim_start);
    let (key, raw) = line.split_once('=')?;
    let key = key.trim();
    let valid_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-');
    valid_key.then(|| (key.to_owned(), value(raw.trim())))
}

fn value(raw: &str) -> String {
    if let Some(rest) = raw.strip_prefix('\'') {
        return rest.split_once('\'').map_or(rest, |(v, _)| v).to_owned();
    }
    if let Some(rest) = raw.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                },
                c => out.push(c),
            }
        }
        return out;
    }
    let unquoted = match raw.find(" #").or_else(|| raw.find("\t#")) {
        Some(at) => &raw[..at],
        None => raw,
    };
    unquoted.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let text = "\
# a comment
OPENROUTER_API_KEY=sk-or-plain
export OPENAI_API_KEY = sk-openai  # trailing comment
ANTHROPIC_API_KEY='sk-ant # not a comment'
GROQ_API_KEY=\"sk-\\\"groq\\\"\"
not an assignment
=no-key
EMPTY=
OPENROUTER_API_KEY=sk-or-last
";
        let env = parse(text);
        assert_eq!(env["OPENROUTER_API_KEY"], "sk-or-last");
        assert_eq!(env["OPENAI_API_KEY"], "sk-openai");
        assert_eq!(env["ANTHROPIC_API_KEY"], "sk-ant # not a comment");
        assert_eq!(env["GROQ_API_KEY"], "sk-\"groq\"");
        assert_eq!(env["EMPTY"], "");
        assert_eq!(env.len(), 5);
    }

    #[test]
    fn the_file_wins_except_an_unresolved_reference() {
        let file = "sk-file".to_owned();
        let reference = "op://vault/item/field".to_owned();
        assert_eq!(
            prefer_file(Some(&file), Some("sk-shell".into())),
            Some(file.clone())
        );
        assert_eq!(prefer_file(Some(&file), None), Some(file));
        assert_eq!(
            prefer_file(Some(&reference), Some("sk-shell".into())),
            Some("sk-shell".into())
        );
        assert_eq!(prefer_file(Some(&reference), None), Some(reference));
        assert_eq!(
            prefer_file(None, Some("sk-shell".into())),
            Some("sk-shell".into())
        );
    }
}
