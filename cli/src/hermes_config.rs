//! The one part of a Hermes `config.yaml` that `import-hermes` reads: the pool strategies
//! (`credential_pool_strategies`, reference §1.4).
//!
//! Not a YAML parser: it reads that top-level key written as a block mapping of
//! `provider: strategy` lines (how Hermes writes it) or as a one-line flow mapping
//! (`{openrouter: round_robin}`), with optional quotes and `#` comments. Anything else in
//! the file is skipped.

use std::collections::BTreeMap;

/// The top-level key holding the strategies.
const KEY: &str = "credential_pool_strategies";

/// Provider → strategy value, as written (map them with `credpool_core::hermes_strategy`).
pub(crate) fn pool_strategies(yaml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = yaml.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line
            .strip_prefix(KEY)
            .and_then(|r| r.trim_start().strip_prefix(':'))
        else {
            continue;
        };
        let inline = uncomment(rest).trim();
        if let Some(flow) = inline.strip_prefix('{').and_then(|f| f.strip_suffix('}')) {
            out.extend(flow.split(',').filter_map(pair));
            continue;
        }
        for line in lines.by_ref() {
            let text = uncomment(line);
            if text.trim().is_empty() {
                continue;
            }
            if !line.starts_with([' ', '\t']) {
                break;
            }
            out.extend(pair(text));
        }
        break;
    }
    out
}

/// `key: value` with optional quotes.
fn pair(text: &str) -> Option<(String, String)> {
    let (key, value) = text.rsplit_once(':')?;
    let (key, value) = (unquote(key), unquote(value));
    (!key.is_empty() && !value.is_empty()).then(|| (key.to_owned(), value.to_owned()))
}

fn unquote(text: &str) -> &str {
    let text = text.trim();
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .or_else(|| text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')))
        .unwrap_or(text)
}

/// The line without a `#` comment (one starting the line or after a space).
fn uncomment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    line.find(" #").map_or(line, |at| &line[..at])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_flow_forms() {
        let yaml = "\
model:
  provider: openrouter
credential_pool_strategies:   # per provider
  openrouter: round_robin
  # a comment
  \"anthropic\": 'least_used'

  custom:together.ai: random
toolsets: [web]
";
        let got = pool_strategies(yaml);
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(got["openrouter"], "round_robin");
        assert_eq!(got["anthropic"], "least_used");
        assert_eq!(got["custom:together.ai"], "random");
        let flow =
            pool_strategies("credential_pool_strategies: {openrouter: random, nous: fill_first}\n");
        assert_eq!(flow["openrouter"], "random");
        assert_eq!(flow["nous"], "fill_first");
        assert!(pool_strategies("model: x\n").is_empty());
    }
}
