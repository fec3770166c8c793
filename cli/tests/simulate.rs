//! `credpool simulate`: the default run, determinism, scenario files, `--json` and `--svg`.

use std::path::PathBuf;

use assert_cmd::Command;
use serde_json::Value;

const COLUMNS: [&str; 11] = [
    "policy",
    "strategy",
    "store",
    "served",
    "failed",
    "429s",
    "wait s",
    "rotations",
    "refreshes",
    "fallbacks",
    "replays",
];

fn small() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios/small.json")
}

fn simulate(args: &[&str]) -> std::process::Output {
    let mut cmd = Command::cargo_bin("credpool").expect("binary");
    cmd.arg("simulate").args(args);
    cmd.output().expect("runs")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8")
}

/// The table rows (lines after the dashed rule, up to the blank line).
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().map(str::to_owned).collect())
        .collect()
}

#[test]
fn default_run_prints_the_whole_matrix() {
    let text = stdout(&simulate(&[]));
    let header = text
        .lines()
        .find(|l| l.starts_with("policy"))
        .expect("header line");
    for column in COLUMNS {
        assert!(header.contains(column), "missing column {column}: {header}");
    }
    let rows = table_rows(&text);
    // hermes and adaptive x four strategies with the store, plus two store-less baselines.
    assert_eq!(rows.len(), 10, "{text}");
    for policy in ["hermes", "adaptive"] {
        for strategy in ["fill_first", "round_robin", "least_used", "random"] {
            assert!(
                rows.iter()
                    .any(|r| r[0] == policy && r[1] == strategy && r[2] == "shared"),
                "no row {policy}/{strategy}"
            );
        }
    }
    for row in &rows {
        // policy strategy store + 8 numbers, served + failed = the 288 requests.
        assert_eq!(row.len(), 11, "{row:?}");
        let n = |i: usize| row[i].parse::<f64>().expect("number");
        assert_eq!(n(3) + n(4), 288.0, "{row:?}");
        if row[2] == "shared" {
            assert_eq!(row[10], "0", "a shared store never replays: {row:?}");
        }
    }
}

#[test]
fn json_and_svg_of_the_default_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let svg_path = dir.path().join("timeline.svg");
    let out = simulate(&["--json", "--svg", svg_path.to_str().expect("utf-8 path")]);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 10);
    let mut served = 0;
    for row in rows {
        for field in [
            "served",
            "failed",
            "rate_limited",
            "rotations",
            "refreshes",
            "fallbacks",
            "replays",
        ] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
        assert!(row["wait_s"].is_number());
        served += row["served"].as_u64().unwrap_or(0);
        match row["store"].as_str() {
            Some("shared") => assert_eq!(row["replays"], 0, "{row}"),
            Some("none") => {
                assert!(
                    row["replays"].as_u64() >= Some(1),
                    "naive agents replay: {row}"
                );
            }
            other => panic!("store {other:?}"),
        }
        assert!(
            row["refreshes"].as_u64() >= Some(1),
            "the OAuth key is refreshed: {row}"
        );
        assert!(
            row["fallbacks"].as_u64() >= Some(1),
            "the single key falls back: {row}"
        );
    }
    let svg = std::fs::read_to_string(&svg_path).expect("svg written");
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<g class=\"panel\">").count(), rows.len());
    assert_eq!(svg.matches("</g>").count(), rows.len());
    // One mark per served request, cooldown shading, fallback markers, a legend.
    assert_eq!(svg.matches("class=\"served\"").count() as u64, served);
    assert!(svg.matches("class=\"cool\"").count() > rows.len());
    assert!(svg.matches("class=\"dead\"").count() >= rows.len());
    assert!(svg.matches("<polygon class=\"fb\"").count() > rows.len());
    // Well-formed enough: every opened element closes or self-closes.
    let opened = svg.matches('<').count();
    let closed = svg.matches("/>").count() + 2 * svg.matches("</").count();
    assert_eq!(opened, closed, "unbalanced tags");
}

#[test]
fn same_seed_same_bytes_other_seed_same_shape() {
    let scenario = small();
    let path = scenario.to_str().expect("utf-8 path");
    let a = stdout(&simulate(&["--scenario", path, "--seed", "7"]));
    let b = stdout(&simulate(&["--scenario", path, "--seed", "7"]));
    assert_eq!(a, b);
    let c = stdout(&simulate(&["--scenario", path, "--seed", "8"]));
    let labels = |t: &str| -> Vec<Vec<String>> {
        table_rows(t).into_iter().map(|r| r[..3].to_vec()).collect()
    };
    assert_eq!(labels(&a), labels(&c));
    assert_eq!(labels(&a).len(), 6);
    assert_ne!(
        table_rows(&a),
        table_rows(&c),
        "another seed, other numbers"
    );
}

#[test]
fn custom_scenario_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tiny.json");
    std::fs::write(
        &file,
        r#"{"name": "tiny", "start_epoch_s": 1767268800, "agents": 1, "requests": 12,
            "rate_per_min": 60, "policies": ["adaptive"], "strategies": ["least_used"],
            "pools": [{"pool": "openrouter", "weight": 1,
                       "keys": [{"id": "a", "rpm": 3}, {"id": "b", "rpm": 3, "hint": "none"}]}]}"#,
    )
    .expect("write");
    let out = simulate(&["--scenario", file.to_str().expect("utf-8"), "--json"]);
    let report: Value = serde_json::from_str(&stdout(&out)).expect("valid JSON");
    assert_eq!(report["scenario"], "tiny");
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row["policy"], "adaptive");
    assert_eq!(row["strategy"], "least_used");
    assert_eq!(
        row["served"].as_u64().unwrap_or(0) + row["failed"].as_u64().unwrap_or(0),
        12
    );
    assert!(
        row["rate_limited"].as_u64() > Some(0),
        "6 rpm cannot serve 60 rpm: {row}"
    );
}

#[test]
fn bad_scenarios_exit_2_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let valid = std::fs::read_to_string(small()).expect("small.json");
    let cases = [
        ("not json", "{".to_owned(), "EOF"),
        (
            "unknown field",
            valid.replace("\"agents\"", "\"agentz\""),
            "agentz",
        ),
        (
            "unknown fallback pool",
            valid.replace(
                "\"outages\"",
                "\"fallback\": [{\"pool\": \"nowhere\"}], \"outages\"",
            ),
            "nowhere",
        ),
        (
            "bad policy",
            valid.replace("\"jitter_percent\": 0", "\"jitter_percent\": 500"),
            "jitter",
        ),
        (
            "zero agents",
            valid.replace("\"agents\": 2", "\"agents\": 0"),
            "agents",
        ),
    ];
    for (name, text, needle) in cases {
        let file = dir.path().join("bad.json");
        std::fs::write(&file, text).expect("write");
        let out = simulate(&["--scenario", file.to_str().expect("utf-8")]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{name}: {stderr}");
        assert!(stderr.contains("bad scenario"), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(out.stdout.is_empty(), "{name}");
    }
    let missing = simulate(&["--scenario", "/nonexistent/scenario.json"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn print_scenario_is_the_builtin_default() {
    let text = stdout(&simulate(&["--print-scenario"]));
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sim/scenarios/default.json"),
    )
    .expect("default.json");
    assert_eq!(text, shipped);
}

#[test]
fn a_quick_sweep_prints_a_row_per_variation_and_the_sums() {
    let scenario = small();
    let path = scenario.to_str().expect("utf-8 path");
    let text = stdout(&simulate(&["--scenario", path, "--sweep", "2"]));
    assert_eq!(
        text,
        stdout(&simulate(&["--scenario", path, "--sweep", "2"]))
    );
    assert!(
        text.contains("the scenario and 2 seeded variations"),
        "{text}"
    );
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("---"))
        .skip(1)
        .take_while(|l| !l.starts_with("---"))
        .collect();
    assert_eq!(rows.len(), 3, "variation 0 and two drawn: {text}");
    assert!(text.lines().any(|l| l.starts_with("sum")), "{text}");
    let json: Value = serde_json::from_str(&stdout(&simulate(&[
        "--scenario",
        path,
        "--sweep",
        "2",
        "--json",
    ])))
    .expect("json");
    assert_eq!(json["variations"].as_array().map(Vec::len), Some(3));
    assert!(json["variations"][1]["scenario"]["pools"].is_array());
    for bad in [
        &["--sweep", "0"][..],
        &["--sweep", "2", "--svg", "x.svg"][..],
    ] {
        assert_eq!(simulate(bad).status.code(), Some(2), "{bad:?}");
    }
}
