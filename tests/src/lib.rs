//! The Rust runner of the shared conformance vectors (format: `tests/README.md`).

use std::path::{Path, PathBuf};

use credpool_core::{Millis, Options, Registry};
use serde_json::Value;

/// Vector files in `dir`, sorted by name.
pub fn vector_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// The folders to run: the shared `tests/vectors` plus any in `CREDPOOL_EXTRA_VECTORS`
/// (a path list separated like `PATH`).
///
/// The crate folder is read at run time (cargo sets `CARGO_MANIFEST_DIR` for tests): a
/// test binary reused from a shared target dir must read this clone's vectors, not the
/// folder it was first compiled in.
pub fn vector_dirs() -> Vec<PathBuf> {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    let mut dirs = vec![crate_dir.join("vectors")];
    if let Some(extra) = std::env::var_os("CREDPOOL_EXTRA_VECTORS") {
        dirs.extend(std::env::split_paths(&extra).filter(|p| !p.as_os_str().is_empty()));
    }
    dirs
}

/// Runs one vector document; `Err` describes the first mismatch.
pub fn run_vector(vector: &Value) -> Result<(), String> {
    let writer = vector
        .get("writer")
        .and_then(Value::as_str)
        .unwrap_or("w1")
        .to_owned();
    let seed = vector.get("seed").and_then(Value::as_u64).unwrap_or(1);
    let options = Options { writer, seed };
    let mut registry = match vector.get("state") {
        Some(state) => {
            Registry::from_state(state, options).map_err(|e| format!("initial state: {e}"))?
        }
        None => Registry::new(options).map_err(|e| format!("options: {e}"))?,
    };
    let setup_at = vector.get("setup_at").and_then(Value::as_u64).unwrap_or(0);
    for (i, input) in array(vector, "setup").iter().enumerate() {
        registry
            .handle_value(Millis(setup_at), input.clone())
            .map_err(|e| format!("setup[{i}]: {} ({e})", e.code().as_str()))?;
    }
    for (i, step) in array(vector, "steps").iter().enumerate() {
        run_step(&mut registry, step).map_err(|e| format!("step {i}: {e}"))?;
    }
    Ok(())
}

fn run_step(registry: &mut Registry, step: &Value) -> Result<(), String> {
    let at = step
        .get("at")
        .and_then(Value::as_u64)
        .ok_or("step without integer `at`")?;
    let input = step.get("input").cloned().ok_or("step without `input`")?;
    let result = registry.handle_value(Millis(at), input);
    match (result, step.get("error")) {
        (Ok(output), None) => {
            let actual = serde_json::to_value(&output).map_err(|e| e.to_string())?;
            if let Some(expected) = step.get("expect")
                && &actual != expected
            {
                return Err(format!(
                    "output\n  expected: {expected}\n    actual: {actual}"
                ));
            }
        }
        (Ok(output), Some(code)) => {
            let actual = serde_json::to_value(&output).unwrap_or_default();
            return Err(format!("expected error {code}, got {actual}"));
        }
        (Err(e), Some(code)) => {
            if code.as_str() != Some(e.code().as_str()) {
                return Err(format!(
                    "expected error {code}, got {} ({e})",
                    e.code().as_str()
                ));
            }
        }
        (Err(e), None) => return Err(format!("unexpected error {} ({e})", e.code().as_str())),
    }
    if let Some(expected) = step.get("state") {
        let actual = serde_json::to_value(registry.export_state()).map_err(|e| e.to_string())?;
        subset_match(expected, &actual, "state")?;
    }
    Ok(())
}

fn array<'a>(value: &'a Value, key: &str) -> &'a [Value] {
    value
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// `expected` matches `actual` when every key of every expected object is present and
/// matches, arrays have the same length and match element by element, and scalars are equal.
pub fn subset_match(expected: &Value, actual: &Value, path: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => want.iter().try_for_each(|(k, v)| {
            let here = format!("{path}.{k}");
            let got = have
                .get(k)
                .ok_or_else(|| format!("{here}: missing (expected {v})"))?;
            subset_match(v, got, &here)
        }),
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(format!(
                    "{path}: expected {} items, got {}: {actual}",
                    want.len(),
                    have.len()
                ));
            }
            want.iter()
                .zip(have)
                .enumerate()
                .try_for_each(|(i, (w, h))| subset_match(w, h, &format!("{path}[{i}]")))
        }
        _ if expected == actual => Ok(()),
        _ => Err(format!("{path}: expected {expected}, got {actual}")),
    }
}
