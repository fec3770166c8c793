//! The Rust runner of the hostile input corpus (`tests/hostile/*.json`, format:
//! `tests/hostile/README.md`). Every case must end in its expected typed error or a defined
//! result, within its time bound, with no panic, and leave the registry usable; no error
//! message, `Debug` text or non-secret output may contain a canary secret (`CANARY`).
//!
//! Rust's host path is JSON text: a case is serialised and parsed back with `serde_json`
//! when it holds something only text can carry (nesting placeholders, lone surrogates,
//! invalid UTF-8), and a parse failure is the outcome `host_rejects`.
//!
//! `secrets::<vector>` trials run every conformance vector with its secrets rewritten to
//! canaries and scan every channel that must not carry one (see [`secret_trials`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use credpool_core::{Millis, Options, Registry};
use libtest_mimic::{Arguments, Failed, Trial};
use serde_json::{Map, Value, json};

const RUNTIME: &str = "rust";
const DEFAULT_MAX_MS: u64 = 10_000;
const DEFAULT_NOW: u64 = 1_000;

type Timings = Arc<Mutex<Vec<(Duration, String)>>>;

fn main() {
    let args = Arguments::from_args();
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .join("hostile");
    let timings: Timings = Arc::default();
    let mut trials = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    if files.is_empty() {
        trials.push(Trial::test("hostile::no_cases", || {
            Err(Failed::from("no case files in tests/hostile"))
        }));
    }
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let doc: Value = match std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        {
            Ok(doc) => doc,
            Err(e) => {
                trials.push(Trial::test(format!("hostile::{stem}"), move || {
                    Err(Failed::from(e))
                }));
                continue;
            }
        };
        for case in expand_cases(&doc) {
            let name = format!("hostile::{stem}::{}", str_of(&case, "name"));
            let timings = Arc::clone(&timings);
            trials.push(Trial::test(name.clone(), move || {
                let started = Instant::now();
                let result = run_case(&case);
                timings
                    .lock()
                    .map_err(|_| Failed::from("timings lock"))?
                    .push((started.elapsed(), name));
                result.map_err(Failed::from)
            }));
        }
    }
    secret_trials(&dir, &mut trials);
    let conclusion = libtest_mimic::run(&args, trials);
    if let Ok(mut t) = timings.lock() {
        t.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (d, name) in t.iter().take(5) {
            println!("slowest: {:>8.1} ms  {name}", d.as_secs_f64() * 1e3);
        }
    }
    conclusion.exit();
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

// ---- case expansion (identical in every runner; see README) ----

/// The cases of one file, `mutate` cases expanded into one case per (field, value).
fn expand_cases(doc: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    for case in doc
        .get("cases")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(mutate) = case.get("mutate") else {
            out.push(case.clone());
            continue;
        };
        let template = mutate.get("template").cloned().unwrap_or(Value::Null);
        let values = mutate
            .get("values")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let free: Vec<&str> = mutate
            .get("free")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let lenient = mutate.get("lenient").cloned().unwrap_or(Value::Null);
        let mut paths = Vec::new();
        field_paths(&template, "", &mut paths);
        for (path, original) in paths {
            if free.contains(&path.as_str()) {
                continue;
            }
            for value in &values {
                if json_type(value) == json_type(&original) {
                    continue;
                }
                let mut input = template.clone();
                set_at(&mut input, &path, value.clone());
                let mut c = case.clone();
                if let Some(map) = c.as_object_mut() {
                    map.remove("mutate");
                    let name = format!("{}{path}={value}", str_of(case, "name"));
                    map.insert("name".into(), Value::String(name));
                    map.insert("input".into(), input);
                    // serde's lenient forms (a struct from an array, a numeric header value).
                    let accepted = lenient
                        .get(&path)
                        .and_then(Value::as_array)
                        .is_some_and(|t| t.iter().any(|t| t.as_str() == Some(json_type(value))));
                    if accepted
                        && let Some(Value::Array(codes)) =
                            map.get_mut("expect").and_then(|e| e.get_mut("one_of"))
                    {
                        codes.push(Value::String("ok".into()));
                    }
                }
                out.push(c);
            }
        }
    }
    out
}

/// Every field path of an input (objects recursed, `type` at the top skipped), in order.
fn field_paths(value: &Value, prefix: &str, out: &mut Vec<(String, Value)>) {
    let Value::Object(map) = value else { return };
    for (k, v) in map {
        if prefix.is_empty() && k == "type" {
            continue;
        }
        let path = format!("{prefix}/{k}");
        out.push((path.clone(), v.clone()));
        if matches!(v, Value::Object(m) if !m.is_empty()) {
            field_paths(v, &path, out);
        }
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Sets the value at a JSON pointer (parent must exist; `-` appends to an array).
fn set_at(root: &mut Value, pointer: &str, value: Value) {
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let Some(target) = root.pointer_mut(parent) else {
        return;
    };
    match target {
        Value::Object(map) => {
            map.insert(last.to_owned(), value);
        }
        Value::Array(items) => match last.parse::<usize>() {
            Ok(i) if i < items.len() => items[i] = value,
            _ => items.push(value),
        },
        other => *other = value,
    }
}

/// Replaces `{i}` in every string of `template` by `i`.
fn with_index(template: &Value, i: usize) -> Value {
    match template {
        Value::String(s) => Value::String(s.replace("{i}", &i.to_string())),
        Value::Array(items) => Value::Array(items.iter().map(|v| with_index(v, i)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), with_index(v, i)))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn usize_of(v: &Value, key: &str) -> usize {
    v.get(key)
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0)
}

/// A case with its generators applied. Values only JSON text can hold are left as
/// placeholders, listed in the second item with the raw text each stands for.
fn generate(case: &Value) -> (Value, Vec<(String, Vec<u8>)>) {
    let mut case = case.clone();
    let mut raw = Vec::new();
    let gens = case
        .get("generate")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for g in gens {
        let at = str_of(&g, "at").to_owned();
        let spec = g.get("value").cloned().unwrap_or(Value::Null);
        let value = if let Some(s) = spec.get("string") {
            Value::String(str_of(s, "repeat").repeat(usize_of(s, "times")))
        } else if let Some(a) = spec.get("array") {
            let item = a.get("item").cloned().unwrap_or(Value::Null);
            Value::Array(
                (0..usize_of(a, "count"))
                    .map(|i| with_index(&item, i))
                    .collect(),
            )
        } else if let Some(o) = spec.get("object") {
            let value = o.get("value").cloned().unwrap_or(Value::Null);
            let key = str_of(o, "key");
            let map: Map<String, Value> = (0..usize_of(o, "count"))
                .map(|i| (key.replace("{i}", &i.to_string()), with_index(&value, i)))
                .collect();
            Value::Object(map)
        } else if let Some(n) = spec.get("nest") {
            let depth = usize_of(n, "depth");
            let leaf =
                serde_json::to_string(n.get("leaf").unwrap_or(&Value::Null)).unwrap_or_default();
            let (open, close) = if str_of(n, "kind") == "object" {
                (format!("{{\"{}\":", str_of(n, "key")), "}")
            } else {
                ("[".to_owned(), "]")
            };
            let mut text = open.repeat(depth).into_bytes();
            text.extend_from_slice(leaf.as_bytes());
            text.extend_from_slice(close.repeat(depth).as_bytes());
            let marker = format!("\u{1}RAW{}\u{1}", raw.len());
            raw.push((marker.clone(), text));
            Value::String(marker)
        } else {
            Value::Null
        };
        set_at(&mut case, &at, value);
    }
    specials(&mut case, &mut raw);
    (case, raw)
}

/// `{"special": ...}` markers: text-only values become placeholders.
fn specials(value: &mut Value, raw: &mut Vec<(String, Vec<u8>)>) {
    match value {
        Value::Object(map) if map.len() == 1 && map.contains_key("special") => {
            let text: Vec<u8> = match map.get("special").and_then(Value::as_str) {
                Some("lone_surrogate") => b"\"a\\ud800b\"".to_vec(),
                Some("invalid_utf8") => b"\"\xff\xfe\xc3\x28\"".to_vec(),
                _ => b"null".to_vec(),
            };
            let marker = format!("\u{1}RAW{}\u{1}", raw.len());
            raw.push((marker.clone(), text));
            *value = Value::String(marker);
        }
        Value::Object(map) => map.values_mut().for_each(|v| specials(v, raw)),
        Value::Array(items) => items.iter_mut().for_each(|v| specials(v, raw)),
        _ => {}
    }
}

/// Parses `value` back through JSON text with its placeholders substituted
/// (the Rust host path); `Err` is the parser's message.
fn through_text(value: Value, raw: &[(String, Vec<u8>)]) -> Result<Value, String> {
    let mut text = serde_json::to_vec(&value).map_err(|e| e.to_string())?;
    let mut used = false;
    for (marker, replacement) in raw {
        let quoted = serde_json::to_vec(&Value::String(marker.clone())).unwrap_or_default();
        if let Some(pos) = find(&text, &quoted) {
            text.splice(pos..pos + quoted.len(), replacement.iter().copied());
            used = true;
        }
    }
    if !used {
        return Ok(value);
    }
    drop(value);
    serde_json::from_slice(&text).map_err(|e| e.to_string())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---- running a case ----

enum Now {
    At(u64),
    NotRepresentable,
}

fn now_of(case: &Value) -> Now {
    match case.get("now") {
        None => Now::At(DEFAULT_NOW),
        Some(Value::Number(n)) => n.as_u64().map_or(Now::NotRepresentable, Now::At),
        Some(Value::String(s)) => match s.as_str() {
            "2^53" => Now::At(1 << 53),
            "2^53+1" => Now::At((1 << 53) + 1),
            "2^64-1" => Now::At(u64::MAX),
            other => other.parse().map_or(Now::NotRepresentable, Now::At),
        },
        Some(_) => Now::NotRepresentable,
    }
}

fn expectation(case: &Value) -> Value {
    case.get("expect_by_runtime")
        .and_then(|e| e.get(RUNTIME))
        .or_else(|| case.get("expect"))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `Ok(outcome)` (`ok`, an error code, `host_rejects`, `not_representable`) plus the
/// output type; `Err` for a broken invariant (canary leaked, registry unusable, ...).
fn run_case(case: &Value) -> Result<(), String> {
    let (generated, raw) = generate(case);
    let expect = expectation(case);
    let max = Duration::from_millis(
        case.get("max_ms")
            .and_then(Value::as_u64)
            .unwrap_or(DEFAULT_MAX_MS),
    );
    let started = Instant::now();
    let (outcome, output_type) = outcome(&generated, &raw)?;
    let elapsed = started.elapsed();
    if std::env::var_os("CREDPOOL_HOSTILE_VERBOSE").is_some() {
        eprintln!(
            "outcome {}: {outcome} {} ({} ms)",
            str_of(case, "name"),
            output_type.as_deref().unwrap_or(""),
            elapsed.as_millis()
        );
    }
    check_expect(&expect, &outcome, output_type.as_deref())?;
    if elapsed > max {
        return Err(format!(
            "took {} ms, bound {} ms",
            elapsed.as_millis(),
            max.as_millis()
        ));
    }
    Ok(())
}

fn outcome(case: &Value, raw: &[(String, Vec<u8>)]) -> Result<(String, Option<String>), String> {
    let options = Options {
        writer: "w1".into(),
        seed: 1,
    };
    let state = match case.get("state") {
        Some(s) => match through_text(s.clone(), raw) {
            Ok(s) => Some(s),
            Err(_) => return Ok(("host_rejects".into(), None)),
        },
        None => None,
    };
    let mut registry = match state {
        Some(state) => match Registry::from_state(&state, options) {
            Ok(r) => r,
            Err(e) => {
                check_clean(&format!("{e} {e:?}"), "state error")?;
                return Ok((e.code().as_str().to_owned(), None));
            }
        },
        None => Registry::new(options).map_err(|e| e.to_string())?,
    };
    let setup_at = case.get("setup_at").and_then(Value::as_u64).unwrap_or(0);
    for (i, input) in case
        .get("setup")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        registry
            .handle_value(Millis(setup_at), input.clone())
            .map_err(|e| format!("setup[{i}] failed: {} ({e})", e.code().as_str()))?;
    }
    let Now::At(now) = now_of(case) else {
        return Ok(("not_representable".into(), None));
    };
    let input = case.get("input").cloned().unwrap_or(Value::Null);
    let Ok(input) = through_text(input, raw) else {
        return Ok(("host_rejects".into(), None));
    };
    let result = registry.handle_value(Millis(now), input);
    let outcome = match &result {
        Ok(output) => {
            let value = serde_json::to_value(output).map_err(|e| e.to_string())?;
            let kind = str_of(&value, "type").to_owned();
            if kind != "credential" && kind != "state" {
                check_clean(&value.to_string(), "output")?;
            }
            check_clean(&format!("{output:?}"), "output Debug")?;
            ("ok".to_owned(), Some(kind))
        }
        Err(e) => {
            check_clean(&format!("{e} {e:?}"), "error Display/Debug")?;
            (e.code().as_str().to_owned(), None)
        }
    };
    drop(result);
    // The registry stays usable whatever happened.
    let status = registry
        .handle_value(Millis(now), json!({"type": "status"}))
        .map_err(|e| format!("registry unusable after the case: {e}"))?;
    check_clean(
        &serde_json::to_string(&status).unwrap_or_default(),
        "status",
    )?;
    check_clean(&format!("{registry:?}"), "Registry Debug")?;
    serde_json::to_string(&registry.export_state()).map_err(|e| e.to_string())?;
    Ok(outcome)
}

fn check_clean(text: &str, channel: &str) -> Result<(), String> {
    if text.contains("CANARY") {
        let at = text.find("CANARY").unwrap_or(0);
        let from = text[..at]
            .char_indices()
            .rev()
            .nth(60)
            .map_or(0, |(i, _)| i);
        let snippet: String = text[from..].chars().take(120).collect();
        return Err(format!(
            "a canary secret leaked into {channel}: …{snippet}…"
        ));
    }
    Ok(())
}

fn check_expect(expect: &Value, outcome: &str, output_type: Option<&str>) -> Result<(), String> {
    let allowed: Vec<&str> = if expect.get("ok").is_some() {
        vec!["ok"]
    } else if let Some(code) = expect.get("error").and_then(Value::as_str) {
        vec![code]
    } else {
        expect
            .get("one_of")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    };
    if !allowed.contains(&outcome) {
        return Err(format!("expected {expect}, got `{outcome}`"));
    }
    if let (Some(want), Some(got)) = (expect.get("type").and_then(Value::as_str), output_type)
        && want != got
    {
        return Err(format!("expected output type {want}, got {got}"));
    }
    Ok(())
}

// ---- secret hygiene over every conformance vector ----

const SECRET_KEYS: [&str; 3] = ["access_token", "refresh_token", "api_key"];

/// One trial per vector of `tests/vectors`: every secret (`access_token`, `refresh_token`,
/// `api_key`, seed `env` values) becomes `sk-CANARY-<n>-<original>`; then no error's
/// Display/Debug, no output's Debug (a `reveal` included: `Secret` is redacted), no
/// output's JSON other than `credential`, `send` and `state`, no borrowed entry of exported state,
/// no `status` and no `Debug` of the registry may contain `CANARY`.
fn secret_trials(hostile_dir: &std::path::Path, trials: &mut Vec<Trial>) {
    let vectors = hostile_dir.with_file_name("vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&vectors)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|x| x == "json"));
    files.sort();
    let all = files.clone();
    trials.push(Trial::test("secrets::rewrite_reaches_reveal", move || {
        let mut revealed = 0;
        for path in &all {
            revealed += run_canarized(path)?;
        }
        if revealed == 0 {
            return Err(Failed::from(
                "no reveal output carried a canary: the rewrite or the scan is broken",
            ));
        }
        Ok(())
    }));
    for path in files {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        trials.push(Trial::test(format!("secrets::{stem}"), move || {
            run_canarized(&path).map(|_| ())
        }));
    }
}

fn run_canarized(path: &std::path::Path) -> Result<usize, Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let vector: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut map = std::collections::HashMap::new();
    let vector = canarize(&vector, &mut map, false);
    scan_vector(&vector).map_err(Failed::from)
}

fn canarize(v: &Value, map: &mut std::collections::HashMap<String, String>, in_env: bool) -> Value {
    match v {
        Value::Array(items) => {
            Value::Array(items.iter().map(|x| canarize(x, map, false)).collect())
        }
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, x)| {
                    let value = match x {
                        Value::String(s)
                            if !s.is_empty() && (in_env || SECRET_KEYS.contains(&k.as_str())) =>
                        {
                            let next = map.len() + 1;
                            Value::String(
                                map.entry(s.clone())
                                    .or_insert_with(|| format!("sk-CANARY-{next}-{s}"))
                                    .clone(),
                            )
                        }
                        _ => canarize(x, map, k == "env" && x.is_object()),
                    };
                    (k.clone(), value)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Runs a canarized vector, scanning every channel; returns how many `reveal` outputs
/// carried a canary (proof the rewrite reached the secrets).
fn scan_vector(vector: &Value) -> Result<usize, String> {
    let options = Options {
        writer: str_of(vector, "writer")
            .chars()
            .take(256)
            .collect::<String>(),
        seed: vector.get("seed").and_then(Value::as_u64).unwrap_or(1),
    };
    let options = if options.writer.is_empty() {
        Options {
            writer: "w1".into(),
            ..options
        }
    } else {
        options
    };
    let mut registry = match vector.get("state") {
        Some(state) => match Registry::from_state(state, options) {
            Ok(r) => r,
            Err(e) => return check_clean(&format!("{e} {e:?}"), "state error").map(|()| 0),
        },
        None => Registry::new(options).map_err(|e| e.to_string())?,
    };
    let setup_at = vector.get("setup_at").and_then(Value::as_u64).unwrap_or(0);
    let mut steps: Vec<(u64, Value)> = vector
        .get("setup")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|input| (setup_at, input.clone()))
        .collect();
    for step in vector
        .get("steps")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let at = step.get("at").and_then(Value::as_u64).unwrap_or(0);
        steps.push((at, step.get("input").cloned().unwrap_or(Value::Null)));
    }
    let mut revealed = 0;
    for (i, (at, input)) in steps.into_iter().enumerate() {
        let kind = str_of(&input, "type").to_owned();
        let where_ = format!("step {i} ({kind})");
        match registry.handle_value(Millis(at), input) {
            Ok(output) => {
                check_clean(&format!("{output:?}"), &format!("{where_} output Debug"))?;
                let value = serde_json::to_value(&output).map_err(|e| e.to_string())?;
                match str_of(&value, "type") {
                    // The outputs that hand the host a secret to put on the wire (a token
                    // request, and a token answer's new pair to report back).
                    "credential" | "send" | "probe" | "token_request" | "token_outcome" => {
                        revealed += usize::from(value.to_string().contains("CANARY"));
                    }
                    "state" => check_borrowed(&value["state"], &where_)?,
                    _ => check_clean(&value.to_string(), &format!("{where_} output"))?,
                }
            }
            Err(e) => check_clean(&format!("{e} {e:?}"), &format!("{where_} error"))?,
        }
        check_clean(
            &format!("{registry:?}"),
            &format!("{where_} Registry Debug"),
        )?;
        let status = registry
            .handle_value(Millis(at), json!({"type": "status"}))
            .map_err(|e| e.to_string())?;
        check_clean(&serde_json::to_string(&status).unwrap_or_default(), &where_)?;
        let state = serde_json::to_value(registry.export_state()).map_err(|e| e.to_string())?;
        check_borrowed(&state, &format!("{where_} export_state"))?;
    }
    Ok(revealed)
}

/// Borrowed entries (`env:`, `config:`) of a state document carry no secret.
fn check_borrowed(state: &Value, channel: &str) -> Result<(), String> {
    for pool in state
        .get("pools")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|p| p.values())
    {
        for entry in pool
            .get("entries")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let source = str_of(entry, "source");
            if source.starts_with("env:") || source.starts_with("config:") {
                check_clean(&entry.to_string(), &format!("{channel} borrowed entry"))?;
            }
        }
    }
    Ok(())
}
