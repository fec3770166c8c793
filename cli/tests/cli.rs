//! End-to-end tests of the `credpool` binary over temporary stores.

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The binary under test.
const BIN: &str = env!("CARGO_BIN_EXE_credpool");

/// Every secret the tests use: none may ever appear in any output.
const SECRETS: &[&str] = &[
    "sk-or-first-SECRET",
    "sk-or-second-SECRET",
    "sk-or-third-SECRET",
    "sk-env-openrouter-SECRET",
    "tg-config-SECRET",
    "sk-hermes-SECRET",
    "rt-hermes-SECRET",
];

/// A temporary store and helpers to run the binary against it.
struct Env {
    dir: TempDir,
    store: PathBuf,
}

impl Env {
    /// A fresh temporary directory with `pools.sqlite` (not created yet) in it.
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("pools.sqlite");
        Self { dir, store }
    }

    /// A command with a clean environment and `--store`.
    fn cmd(&self) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().arg("--store").arg(&self.store);
        cmd
    }

    /// Runs `args` (with `stdin`), checking that no secret is in the output.
    fn run_with(&self, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
        let mut cmd = self.cmd();
        cmd.args(args).write_stdin(stdin);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run credpool");
        assert_no_secret(&output);
        output
    }

    /// Runs `args`, expecting success; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, "", &[])
    }

    /// Runs `args` with `stdin` and `envs`, expecting success; returns stdout.
    fn ok_with(&self, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> String {
        let output = self.run_with(args, stdin, envs);
        assert!(
            output.status.success(),
            "credpool {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Runs `args`, expecting exit `code`, a one-line error ending in `[error]`, nothing on
    /// stdout, and the store's bytes unchanged; returns the error line.
    fn fails(&self, args: &[&str], code: i32, error: &str) -> String {
        let before = self.bytes();
        let output = self.run_with(args, "", &[]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "credpool {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8(output.stderr).expect("utf-8");
        assert_one_line_error(&stderr, error);
        assert!(output.stdout.is_empty(), "stdout: {:?}", output.stdout);
        assert_eq!(self.bytes(), before, "the store changed");
        stderr
    }

    /// The store's bytes, its write-ahead log's appended (`None`: no file).
    fn bytes(&self) -> Option<Vec<u8>> {
        store_bytes(&self.store)
    }

    /// The store's bytes as text (secrets are stored as text: a search finds them).
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes().unwrap_or_default()).into_owned()
    }

    /// `list --json` parsed.
    fn list_json(&self) -> Value {
        serde_json::from_str(&self.ok(&["list", "--json"])).expect("json")
    }

    /// The entries of `pool` from `list --json`.
    fn entries(&self, pool: &str) -> Vec<Value> {
        self.list_json()["pools"]
            .as_array()
            .expect("pools")
            .iter()
            .find(|p| p["pool"] == pool)
            .map(|p| p["entries"].as_array().expect("entries").clone())
            .unwrap_or_default()
    }

    /// Adds the three openrouter keys `first`, `second`, `third`.
    fn three_keys(&self) {
        self.ok(&[
            "add",
            "openrouter",
            "--api-key",
            "sk-or-first-SECRET",
            "--label",
            "first",
        ]);
        // From a pipe: the non-terminal form of the no-echo prompt.
        self.ok_with(
            &["add", "openrouter", "--label", "second"],
            "sk-or-second-SECRET\n",
            &[],
        );
        self.ok(&[
            "add",
            "openrouter",
            "--api-key",
            "sk-or-third-SECRET",
            "--label",
            "third",
        ]);
    }

    /// A file in the temporary directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Fails when any of [`SECRETS`] is in the output.
fn assert_no_secret(output: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    for secret in SECRETS {
        assert!(!text.contains(secret), "secret {secret} printed: {text}");
    }
}

/// The bytes of the store at `path` and of its write-ahead log (`None`: no store file).
fn store_bytes(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = std::fs::read(path).ok()?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    Some(bytes)
}

/// [`store_bytes`] as text (secrets are stored as text: a search finds them).
fn store_text(path: &Path) -> String {
    String::from_utf8_lossy(&store_bytes(path).unwrap_or_default()).into_owned()
}

/// Checks the error format: one line, `credpool: ... [code]`.
fn assert_one_line_error(stderr: &str, code: &str) {
    assert_eq!(stderr.lines().count(), 1, "not one line: {stderr:?}");
    assert!(stderr.starts_with("credpool: "), "{stderr}");
    assert!(
        stderr.trim_end().ends_with(&format!("[{code}]")),
        "expected [{code}]: {stderr}"
    );
}

/// Writes `value` as JSON to `path`.
fn write_json(path: &Path, value: &Value) {
    std::fs::write(path, serde_json::to_vec_pretty(value).expect("json")).expect("write");
}

/// `--help` documents the exit statuses, the error format and every subcommand.
#[test]
fn help_documents_exit_codes_and_targets() {
    let output = Command::new(BIN).arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    for needle in [
        "Exit status:",
        "2  usage error",
        "3  the store stayed locked",
        "4  a data file is not valid",
        "credpool: <message> [<code>]",
        "list",
        "import-hermes",
        "export-hermes",
        "simulate",
    ] {
        assert!(help.contains(needle), "help lacks {needle}: {help}");
    }
}

/// No subcommand and no terminal: help on stderr, exit 2, nothing written.
#[test]
fn no_subcommand_without_a_terminal_prints_help_and_exits_2() {
    let env = Env::new();
    let output = env.run_with(&[], "", &[]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Usage: credpool"), "{stderr}");
    assert!(output.stdout.is_empty());
    assert!(env.bytes().is_none());
}

/// `add` (flag and piped key) then `list` / `list --json`: columns, marker, no secrets.
#[test]
fn add_and_list_show_entries_without_secrets() {
    let env = Env::new();
    assert!(env.ok(&["list"]).contains("No credentials yet"));
    env.three_keys();
    let text = env.ok(&["list"]);
    assert!(
        text.contains("openrouter (3 credentials, strategy fill_first, policy hermes):"),
        "{text}"
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].starts_with("  #1  first"), "{text}");
    assert!(lines[1].contains("api_key"), "{text}");
    assert!(
        lines[1].contains("priority=0 manual  available ←"),
        "{text}"
    );
    assert!(lines[2].starts_with("  #2  second"), "{text}");
    assert!(!lines[2].contains('←'), "{text}");
    assert!(lines[3].contains("priority=2"), "{text}");
    assert_eq!(text.matches('←').count(), 1);

    let entries = env.entries("openrouter");
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["label"], "first");
    assert_eq!(entries[0]["index"], 1);
    assert_eq!(entries[0]["next"], true);
    assert_eq!(entries[1]["health"], "available");
    assert!(entries[0]["id"].as_str().is_some_and(|id| id.len() == 6));
    // One provider only; an unknown-but-known provider lists nothing.
    assert!(env.ok(&["list", "or"]).starts_with("openrouter (3"));
    assert_eq!(
        env.ok(&["list", "anthropic"]),
        "No credentials for anthropic.\n"
    );
    let json: Value = serde_json::from_str(&env.ok(&["list", "anthropic", "--json"])).unwrap();
    assert_eq!(json["pools"], json!([]));
    // The store does hold the keys (list just never shows them).
    assert!(env.text().contains("sk-or-second-SECRET"));
}

/// `add --json`, --priority, --base-url; an empty key is refused.
#[test]
fn add_json_and_options() {
    let env = Env::new();
    let out = env.ok(&[
        "add",
        "openrouter",
        "--api-key",
        "sk-or-first-SECRET",
        "--priority",
        "7",
        "--base-url",
        "https://proxy.example/v1/",
        "--json",
    ]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["pool"], "openrouter");
    assert_eq!(json["entry"]["label"], "api-key-1");
    assert_eq!(json["entry"]["priority"], 7);
    // An empty key is refused, nothing written.
    let stderr = {
        let out = env.run_with(&["add", "openrouter"], "\n", &[]);
        assert_eq!(out.status.code(), Some(2));
        String::from_utf8(out.stderr).unwrap()
    };
    assert_one_line_error(&stderr, "invalid_entry");
}

/// An unknown provider is a usage error with a "did you mean".
#[test]
fn unknown_provider_suggests_the_closest_name() {
    let env = Env::new();
    let err = env.fails(
        &["add", "openruter", "--api-key", "sk-or-first-SECRET"],
        2,
        "unknown_provider",
    );
    assert!(err.contains("did you mean 'openrouter'"), "{err}");
    let err = env.fails(&["list", "antropic"], 2, "unknown_provider");
    assert!(err.contains("did you mean 'anthropic'"), "{err}");
    let err = env.fails(&["reset", "zzzzzzzzzz"], 2, "unknown_provider");
    assert!(err.contains("known providers: openrouter"), "{err}");
    assert!(env.bytes().is_none());
}

/// Aliases resolve; custom endpoints by name (`custom:<name>`), URL required when new.
#[test]
fn aliases_and_custom_endpoints() {
    let env = Env::new();
    env.ok(&["add", "or", "--api-key", "sk-or-first-SECRET"]);
    assert_eq!(env.entries("openrouter").len(), 1);
    // A new custom endpoint needs its URL.
    let err = env.fails(
        &["add", "custom:box", "--api-key", "tg-config-SECRET"],
        2,
        "invalid_input",
    );
    assert!(err.contains("--base-url"), "{err}");
    // A name with --base-url is a custom endpoint, normalised as Hermes does.
    let out = env.ok(&[
        "add",
        "Together AI",
        "--base-url",
        "https://api.together.ai/v1",
        "--api-key",
        "tg-config-SECRET",
    ]);
    assert!(
        out.starts_with("Added custom:together-ai credential #1"),
        "{out}"
    );
    // Later, the bare name finds the custom pool; the URL is reused.
    env.ok_with(&["add", "together ai"], "sk-or-third-SECRET\n", &[]);
    assert_eq!(env.entries("custom:together-ai").len(), 2);
    env.ok(&["remove", "Together AI", "2"]);
    assert_eq!(env.entries("custom:together-ai").len(), 1);
}

/// Targets: id, case-insensitive label (ambiguity is an error), 1-based index.
#[test]
fn targets_resolve_by_id_label_and_index() {
    let env = Env::new();
    env.three_keys();
    let entries = env.entries("openrouter");
    let id_of_third = entries[2]["id"].as_str().unwrap().to_owned();
    // By id.
    let out = env.ok(&["remove", "openrouter", &id_of_third]);
    assert!(
        out.starts_with("Removed openrouter credential #3 (third, id "),
        "{out}"
    );
    // By label, case-insensitively.
    env.ok(&["reset", "openrouter", "SECOND"]);
    // By index.
    let out = env.ok(&["priority", "openrouter", "2", "-1"]);
    assert!(out.contains("now #1"), "{out}");
    assert_eq!(env.entries("openrouter")[0]["label"], "second");
    // Unknown targets: a label, an index, an id; nothing written.
    env.fails(&["remove", "openrouter", "nope"], 2, "unknown_target");
    let err = env.fails(&["remove", "openrouter", "9"], 2, "unknown_target");
    assert!(err.contains("no credential #9"), "{err}");
    env.fails(&["priority", "openrouter", "0", "3"], 2, "unknown_target");
    // A label shared by two entries is ambiguous; the index still works.
    env.ok(&[
        "add",
        "openrouter",
        "--api-key",
        "sk-or-third-SECRET",
        "--label",
        "First",
    ]);
    let err = env.fails(&["remove", "openrouter", "first"], 2, "ambiguous_label");
    assert!(err.contains("use the index or id"), "{err}");
    env.fails(&["reset", "openrouter", "FIRST"], 2, "ambiguous_label");
    env.ok(&["remove", "openrouter", "3"]);
    assert_eq!(env.entries("openrouter").len(), 2);
    env.ok(&["remove", "openrouter", "first"]);
    // A pool the store lacks.
    env.fails(&["remove", "anthropic", "1"], 2, "unknown_pool");
}

/// A Hermes auth.json with an exhausted, an auth-failed and a dead entry.
fn hermes_fixture(now_s: f64) -> Value {
    json!({
        "version": 1,
        "active_provider": "openrouter",
        "providers": { "nous": { "label": "kept as is" } },
        "credential_pool": {
            "openrouter": [
                {
                    "id": "aaa111", "label": "limited", "auth_type": "api_key", "priority": 0,
                    "source": "manual", "access_token": "sk-hermes-SECRET",
                    "last_status": "exhausted", "last_status_at": now_s,
                    "last_error_code": 429, "last_error_reason": "rate_limit_exceeded",
                    "last_error_reset_at": now_s + 7_500.0
                },
                {
                    "id": "bbb222", "label": "refused", "auth_type": "api_key", "priority": 1,
                    "source": "manual", "access_token": "sk-or-first-SECRET",
                    "last_status": "exhausted", "last_status_at": now_s,
                    "last_error_code": 401, "last_error_reset_at": now_s + 250.0
                },
                {
                    "id": "ccc333", "label": "gone", "auth_type": "oauth", "priority": 2,
                    "source": "manual:device_code", "access_token": "sk-or-second-SECRET",
                    "refresh_token": "rt-hermes-SECRET",
                    "last_status": "dead", "last_status_at": now_s
                },
                {
                    "id": "ddd444", "label": "healthy", "auth_type": "api_key", "priority": 3,
                    "source": "manual", "access_token": "sk-or-third-SECRET"
                }
            ]
        }
    })
}

/// The wall clock in epoch seconds (Hermes' time unit).
fn now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Rate-limited / auth-failed / dead texts with time left, and `reset` of one or all.
#[test]
fn statuses_show_time_left_and_reset_clears_them() {
    let env = Env::new();
    let auth = env.path("auth.json");
    write_json(&auth, &hermes_fixture(now_s()));
    let out = env.ok(&["import-hermes", auth.to_str().unwrap()]);
    assert!(
        out.starts_with("Imported 4 credential(s) in 1 pool(s)"),
        "{out}"
    );
    let text = env.ok(&["list"]);
    let line = |label: &str| {
        text.lines()
            .find(|l| l.contains(label))
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        line("limited").contains("rate-limited rate_limit_exceeded (429) (2h 4m left)")
            || line("limited").contains("(2h 5m left)"),
        "{text}"
    );
    assert!(line("refused").contains("auth failed (401) (4m"), "{text}");
    assert!(
        line("refused").ends_with("(re-auth may be required)"),
        "{text}"
    );
    assert!(line("gone").contains("dead (re-login required)"), "{text}");
    assert!(line("gone").contains("oauth"), "{text}");
    assert!(
        line("gone").contains(" device_code "),
        "manual: prefix hidden: {text}"
    );
    assert!(line("healthy").ends_with("available ←"), "{text}");
    // Reset one entry, then the whole pool.
    let out = env.ok(&["reset", "openrouter", "limited"]);
    assert!(out.contains("status and cooldowns cleared"), "{out}");
    assert_eq!(env.entries("openrouter")[0]["health"], "available");
    assert_eq!(env.entries("openrouter")[0]["next"], true);
    let out = env.ok(&["reset", "openrouter"]);
    assert_eq!(
        out,
        "Reset openrouter: cleared the status of 2 credential(s)\n"
    );
    let json: Value = serde_json::from_str(&env.ok(&["reset", "openrouter", "--json"])).unwrap();
    assert_eq!(json["cleared"], 0);
    assert!(
        env.entries("openrouter")
            .iter()
            .all(|e| e["health"] == "available")
    );
}

/// `strategy` and `policy`: print the current value, set one, refuse bad values.
#[test]
fn strategy_and_policy() {
    let env = Env::new();
    assert_eq!(
        env.ok(&["strategy", "openrouter"]),
        "fill_first (default)\n"
    );
    assert_eq!(env.ok(&["policy", "openrouter"]), "hermes (default)\n");
    env.three_keys();
    assert_eq!(env.ok(&["strategy", "openrouter"]), "fill_first\n");
    assert_eq!(
        env.ok(&["strategy", "openrouter", "round_robin"]),
        "Strategy of openrouter: round_robin\n"
    );
    env.ok(&["strategy", "openrouter", "least-used"]);
    let json: Value = serde_json::from_str(&env.ok(&["strategy", "openrouter", "--json"])).unwrap();
    assert_eq!(json["strategy"], "least_used");
    assert_eq!(
        env.ok(&["policy", "or", "adaptive"]),
        "Policy of openrouter: adaptive\n"
    );
    assert_eq!(env.ok(&["policy", "openrouter"]), "adaptive\n");
    assert!(
        env.ok(&["list"])
            .contains("strategy least_used, policy adaptive")
    );
    // Bad values are usage errors (clap), nothing written.
    let before = env.bytes();
    let out = env.run_with(&["strategy", "openrouter", "fastest"], "", &[]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.run_with(&["policy", "openrouter", "lazy"], "", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(env.bytes(), before);
}

/// `seed` from the environment and a config of custom endpoints; idempotent.
#[test]
fn seed_adopts_env_and_config() {
    let env = Env::new();
    let config = env.path("seed.json");
    write_json(
        &config,
        &json!({"custom_providers": [
            {"name": "Together", "base_url": "https://api.together.ai/v1", "api_key": "tg-config-SECRET"},
            {"name": "Box", "base_url": "http://localhost:8080/v1", "api_key_env": "BOX_KEY"}
        ]}),
    );
    let vars = [
        ("OPENROUTER_API_KEY", "sk-env-openrouter-SECRET"),
        ("BOX_KEY", "sk-or-third-SECRET"),
    ];
    let out = env.ok_with(&["seed", "--config", config.to_str().unwrap()], "", &vars);
    assert!(
        out.contains("Added openrouter credential from env:OPENROUTER_API_KEY"),
        "{out}"
    );
    assert!(
        out.contains("Added custom:together credential from config:Together"),
        "{out}"
    );
    assert!(
        out.contains("Added custom:box credential from config:Box"),
        "{out}"
    );
    // Idempotent.
    let out = env.ok_with(&["seed", "--config", config.to_str().unwrap()], "", &vars);
    assert_eq!(out, "Nothing new to seed.\n");
    // --no-env ignores provider variables; --json reports.
    let out = env.ok_with(
        &["seed", "--no-env", "--json"],
        "",
        &[("ANTHROPIC_API_KEY", "sk-or-first-SECRET")],
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["added"], json!([]));
    let out = env.ok_with(
        &["seed", "--json"],
        "",
        &[("ANTHROPIC_API_KEY", "sk-or-first-SECRET")],
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["added"][0]["pool"], "anthropic");
    assert_eq!(json["added"][0]["source"], "env:ANTHROPIC_API_KEY");
    // The rest of the environment never reaches the store.
    env.ok_with(&["seed"], "", &[("UNRELATED_TOKEN", "sk-or-second-SECRET")]);
    assert!(!env.text().contains("sk-or-second-SECRET"));
    // A config of the wrong shape is a usage error; invalid JSON a data error.
    let bad = env.path("bad-seed.json");
    write_json(&bad, &json!({"custom_providers": [{"nom": "x"}]}));
    env.fails(
        &["seed", "--config", bad.to_str().unwrap()],
        2,
        "invalid_input",
    );
    std::fs::write(&bad, "{oops").unwrap();
    env.fails(
        &["seed", "--config", bad.to_str().unwrap()],
        4,
        "invalid_state",
    );
}

/// The new user's path (Hermes scenario 59): `seed`, `remove`, `seed` again must not bring
/// the key back; `list` shows the suppression; `add` lifts it.
#[test]
fn a_removed_seeded_key_stays_removed_until_add() {
    let env = Env::new();
    let vars = [("OPENROUTER_API_KEY", "sk-env-openrouter-SECRET")];
    env.ok_with(&["seed"], "", &vars);
    assert_eq!(env.entries("openrouter").len(), 1);
    let out = env.ok(&["remove", "openrouter", "1"]);
    assert!(out.starts_with("Removed openrouter credential #1"), "{out}");
    let out = env.ok_with(&["seed"], "", &vars);
    assert!(
        out.contains("Skipped env:OPENROUTER_API_KEY for openrouter: suppressed"),
        "{out}"
    );
    assert!(out.ends_with("Nothing new to seed.\n"), "{out}");
    assert!(env.entries("openrouter").is_empty(), "the key came back");
    let list = env.ok(&["list"]);
    assert!(
        list.contains("openrouter (0 credentials")
            && list.contains(
                "suppressed (seed skips them; `credpool add openrouter` re-enables): env:OPENROUTER_API_KEY"
            ),
        "{list}"
    );
    let json = env.list_json();
    assert_eq!(
        json["pools"][0]["suppressed_sources"],
        json!(["env:OPENROUTER_API_KEY"])
    );
    env.ok(&["add", "openrouter", "--api-key", "sk-or-first-SECRET"]);
    assert!(!env.ok(&["list"]).contains("suppressed"));
    let out = env.ok_with(&["seed"], "", &vars);
    assert!(
        out.contains("Added openrouter credential from env:OPENROUTER_API_KEY"),
        "{out}"
    );
    assert_eq!(env.entries("openrouter").len(), 2);
}

/// `seed` reads `.env` beside the store (or `--env-file`), and its values beat the process
/// environment (Hermes scenario 57, reference 6.3).
#[test]
fn seed_prefers_the_env_file_over_the_shell() {
    let env = Env::new();
    let shell = [("OPENROUTER_API_KEY", "sk-or-first-SECRET")];
    std::fs::write(
        env.path(".env"),
        "# edited after the shell exported the old key\nexport OPENROUTER_API_KEY=\"sk-or-second-SECRET\"\n",
    )
    .unwrap();
    let out = env.ok_with(&["seed", "--json"], "", &shell);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["added"][0]["source"], "env:OPENROUTER_API_KEY");
    let id = json["added"][0]["entry_id"].as_str().unwrap().to_owned();
    // The entry holds the .env key: the store keeps its fingerprint only (a borrowed source).
    let state = env.ok(&["export-hermes"]);
    let doc: Value = serde_json::from_str(&state).unwrap();
    let row = &doc["credential_pool"]["openrouter"][0];
    assert_eq!(row["id"], id.as_str());
    assert_eq!(
        row["secret_fingerprint"],
        fingerprint("sk-or-second-SECRET"),
        "the shell's stale key shadowed .env"
    );
    // --env-file names another file; a missing one is an error; --no-env skips the default.
    let other = env.path("other.env");
    std::fs::write(&other, "OPENROUTER_API_KEY=sk-or-third-SECRET\n").unwrap();
    let out = env.ok_with(
        &["seed", "--env-file", other.to_str().unwrap(), "--json"],
        "",
        &shell,
    );
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["updated"][0]["entry_id"], id.as_str());
    env.fails(&["seed", "--env-file", "/nonexistent/.env"], 1, "io");
    let out = env.ok_with(&["seed", "--no-env", "--json"], "", &shell);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["updated"], json!([]));
    assert_eq!(json["added"], json!([]));
}

/// `sha256:<16 hex>` of a secret, as core fingerprints it.
fn fingerprint(secret: &str) -> String {
    credpool_core::Secret::new(secret)
        .fingerprint()
        .as_str()
        .to_owned()
}

/// `import-hermes` merges an auth.json; `export-hermes` writes one (0600, base kept).
#[test]
fn import_and_export_hermes() {
    let env = Env::new();
    let auth = env.path("auth.json");
    write_json(&auth, &hermes_fixture(now_s()));
    env.ok(&["import-hermes", auth.to_str().unwrap()]);
    env.ok(&[
        "add",
        "openrouter",
        "--api-key",
        "sk-env-openrouter-SECRET",
        "--label",
        "added",
    ]);
    let out = env.ok(&["import-hermes", auth.to_str().unwrap(), "--json"]);
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["imported"]["entries"], 4);
    assert_eq!(env.entries("openrouter").len(), 5, "merged, not replaced");

    let exported = env.path("out/auth.json");
    std::fs::create_dir_all(exported.parent().unwrap()).unwrap();
    let out = env.ok(&[
        "export-hermes",
        "--base",
        auth.to_str().unwrap(),
        "-o",
        exported.to_str().unwrap(),
    ]);
    assert!(
        out.starts_with("Wrote 5 credential(s) in 1 pool(s) to"),
        "{out}"
    );
    let doc: Value = serde_json::from_slice(&std::fs::read(&exported).unwrap()).unwrap();
    assert_eq!(doc["providers"]["nous"]["label"], "kept as is");
    assert_eq!(doc["active_provider"], "openrouter");
    let pool = doc["credential_pool"]["openrouter"].as_array().unwrap();
    assert_eq!(pool.len(), 5);
    assert!(
        pool.iter()
            .any(|e| e["access_token"] == "sk-env-openrouter-SECRET")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // To a non-terminal stdout (the one command whose output holds secrets).
    let out = env.cmd().arg("export-hermes").output().unwrap();
    assert!(out.status.success());
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["version"], 1);
    assert!(doc.get("providers").is_none());
    // The exported file imports back into a fresh store.
    let other = Env::new();
    other.ok(&["import-hermes", exported.to_str().unwrap()]);
    assert_eq!(other.entries("openrouter").len(), 5);
    // Bad inputs: a credpool state document is not an auth.json; invalid JSON; a missing
    // file.
    let state = env.path("state.json");
    write_json(
        &state,
        &json!({"format": "credpool", "schema_version": 1, "pools": {}}),
    );
    env.fails(
        &["import-hermes", state.to_str().unwrap()],
        4,
        "foreign_document",
    );
    let bad = env.path("bad.json");
    std::fs::write(&bad, "[1,").unwrap();
    env.fails(
        &["import-hermes", bad.to_str().unwrap()],
        4,
        "invalid_state",
    );
    env.fails(&["import-hermes", "/nonexistent/auth.json"], 1, "io");
    env.fails(
        &[
            "export-hermes",
            "--base",
            bad.to_str().unwrap(),
            "-o",
            "x.json",
        ],
        4,
        "invalid_state",
    );
}

/// Imported pools keep their Hermes strategy (config.yaml `credential_pool_strategies`,
/// read beside the auth.json or from --config; an unknown value is fill_first as in
/// Hermes), and auth.json `suppressed_sources` arrive as suppressions that `seed` honours.
#[test]
fn import_hermes_keeps_strategies_and_suppressions() {
    let env = Env::new();
    let home = env.path("hermes");
    std::fs::create_dir_all(&home).unwrap();
    let auth = home.join("auth.json");
    let mut doc = hermes_fixture(now_s());
    doc["suppressed_sources"] = json!({"openrouter": ["env:OPENROUTER_API_KEY"]});
    write_json(&auth, &doc);
    std::fs::write(
        home.join("config.yaml"),
        "model:\n  provider: openrouter\ncredential_pool_strategies:\n  openrouter: round_robin\n  anthropic: least_used\n",
    )
    .unwrap();
    let out = env.ok(&["import-hermes", auth.to_str().unwrap()]);
    assert!(out.contains("Strategy of openrouter: round_robin"), "{out}");
    let pools = env.list_json()["pools"].as_array().unwrap().clone();
    let openrouter = pools.iter().find(|p| p["pool"] == "openrouter").unwrap();
    assert_eq!(openrouter["strategy"], "round_robin");
    assert_eq!(
        openrouter["suppressed_sources"],
        json!(["env:OPENROUTER_API_KEY"])
    );
    assert!(
        pools.iter().all(|p| p["pool"] != "anthropic"),
        "a strategy alone creates no pool"
    );
    let out = env.ok_with(
        &["seed"],
        "",
        &[("OPENROUTER_API_KEY", "sk-env-openrouter-SECRET")],
    );
    assert!(out.contains("Skipped env:OPENROUTER_API_KEY"), "{out}");
    // --config names the file; an unknown strategy reads as fill_first.
    let other = env.path("other.yaml");
    std::fs::write(
        &other,
        "credential_pool_strategies: {openrouter: weighted}\n",
    )
    .unwrap();
    env.ok(&[
        "import-hermes",
        auth.to_str().unwrap(),
        "--config",
        other.to_str().unwrap(),
    ]);
    assert_eq!(env.list_json()["pools"][0]["strategy"], "fill_first");
    env.fails(
        &[
            "import-hermes",
            auth.to_str().unwrap(),
            "--config",
            "/nonexistent/config.yaml",
        ],
        1,
        "io",
    );
}

/// A corrupt, foreign or too-new store: exit 4, one line, bytes unchanged.
#[test]
fn corrupt_store_fails_in_one_line_and_stays_untouched() {
    let env = Env::new();
    for corrupt in [
        &b"{not json"[..],
        br#"{"hello": "world"}"#,
        br#"{"format": "credpool", "schema_version": 999, "pools": {}}"#,
    ] {
        std::fs::write(&env.store, corrupt).unwrap();
        for args in [
            &["list"][..],
            &["add", "openrouter", "--api-key", "sk-or-first-SECRET"],
            &["reset", "openrouter"],
            &["strategy", "openrouter", "random"],
            &["seed"],
        ] {
            let output = env.run_with(args, "", &[]);
            assert_eq!(output.status.code(), Some(4), "{args:?}");
            let stderr = String::from_utf8(output.stderr).unwrap();
            assert_eq!(stderr.lines().count(), 1, "{stderr}");
            assert!(stderr.starts_with("credpool: "), "{stderr}");
            assert!(!stderr.contains("Store::"), "{stderr}");
            assert_eq!(env.bytes().as_deref(), Some(corrupt));
        }
    }
    let err = {
        std::fs::write(&env.store, b"{not json").unwrap();
        env.fails(&["list"], 4, "invalid_state")
    };
    assert!(err.contains("is not valid JSON"), "{err}");
    assert!(err.contains("left untouched"), "{err}");
}

/// A store lock held by another process (flock): exit 3, one line, bytes unchanged.
#[test]
fn a_locked_store_times_out_in_one_line() {
    let env = Env::new();
    env.three_keys();
    let lock_path = format!("{}.lock", env.store.display());
    let lock = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let start = std::time::Instant::now();
    let err = env.fails(
        &["--lock-timeout-ms", "300", "reset", "openrouter"],
        3,
        "lock_timeout",
    );
    assert!(start.elapsed() >= std::time::Duration::from_millis(300));
    assert!(err.contains("stayed locked by another process"), "{err}");
    env.fails(
        &[
            "add",
            "openrouter",
            "--api-key",
            "x",
            "--lock-timeout-ms",
            "100",
        ],
        3,
        "lock_timeout",
    );
    // Reading needs no lock.
    assert!(env.ok(&["list"]).contains("first"));
    lock.unlock().unwrap();
    env.ok(&["--lock-timeout-ms", "300", "reset", "openrouter"]);
}

/// A refresh ticket held by this process holds the refresh lock only: the CLI's writes go
/// on meanwhile, and a second refresh of the store waits for it (exit 3 past the timeout).
#[test]
fn a_refresh_in_progress_holds_the_refresh_lock_only() {
    use credpool_core::{EntryId, PoolKey};
    use credpool_store::{RefreshStart, Store, StoreOptions};

    let env = Env::new();
    // An OAuth entry whose token is already expired: it needs a refresh.
    env.ok_with(
        &["add", "anthropic", "--type", "oauth", "--expires-in", "0"],
        "sk-hermes-SECRET\nrt-hermes-SECRET\n",
        &[],
    );
    let entry = &env.entries("anthropic")[0];
    assert_eq!(entry["auth_type"], "oauth");
    let id = EntryId::parse(entry["id"].as_str().unwrap()).unwrap();
    let pool = PoolKey::parse("anthropic").unwrap();
    let mut store = Store::open_path(&env.store, StoreOptions::new("test", 1)).unwrap();
    let RefreshStart::Needed(ticket) = store
        .begin_refresh(credpool_store::now(), &pool, &id, 0, None)
        .unwrap()
    else {
        panic!("a refresh should be needed");
    };
    env.ok(&["--lock-timeout-ms", "200", "reset", "anthropic"]);
    let mut options = StoreOptions::new("other", 2);
    options.lock_timeout = std::time::Duration::from_millis(200);
    let mut other = Store::open_path(&env.store, options).unwrap();
    let err = other
        .begin_refresh(credpool_store::now(), &pool, &id, 0, None)
        .unwrap_err();
    assert_eq!(err.code().as_str(), "lock_timeout");
    drop(ticket);
    env.ok(&["remove", "anthropic", "1"]);
    assert!(env.entries("anthropic").is_empty());
}

/// `CREDPOOL_HOME` picks the default store; no home at all is a one-line io error.
#[test]
fn credpool_home_sets_the_default_store() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .env_clear()
        .env("CREDPOOL_HOME", dir.path())
        .args(["add", "openrouter", "--api-key", "sk-or-first-SECRET"])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(dir.path().join("pools.sqlite").exists());
    let output = Command::new(BIN)
        .env_clear()
        .env("CREDPOOL_HOME", dir.path())
        .args(["list"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("api-key-1"));
    // No CREDPOOL_HOME, XDG_CONFIG_HOME or HOME: a clear runtime error.
    let output = Command::new(BIN).env_clear().arg("list").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_one_line_error(&stderr, "io");
}

/// The interactive menu, through a real pseudo-terminal.
#[cfg(unix)]
mod interactive {
    use super::*;
    use rexpect::session::{PtySession, spawn_command};

    /// Spawns `credpool` on a pty with echo ON (rexpect turns it off), so a secret typed
    /// at a prompt would show if the prompt did not hide it.
    fn spawn(env: &Env) -> PtySession {
        spawn_args(env, "")
    }

    /// [`spawn`] with arguments (already shell-quoted).
    fn spawn_args(env: &Env, args: &str) -> PtySession {
        let mut cmd = std::process::Command::new("sh");
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CREDPOOL_HOME", env.dir.path())
            .arg("-c")
            .arg(format!("stty echo; exec '{BIN}' {args}"));
        spawn_command(cmd, Some(15_000)).expect("spawn")
    }

    /// `add` on a terminal prompts without echo; `export-hermes` refuses a terminal stdout.
    #[test]
    fn subcommands_on_a_terminal() {
        let env = Env::new();
        let mut p = spawn_args(&env, "add openrouter --label tty");
        p.exp_string("API key for openrouter (input hidden): ")
            .unwrap();
        p.send_line("sk-or-second-SECRET").unwrap();
        let rest = p.exp_eof().unwrap();
        assert!(!rest.contains("sk-or-second-SECRET"), "echoed: {rest:?}");
        assert!(
            rest.contains("Added openrouter credential #1: \"tty\""),
            "{rest}"
        );
        assert_eq!(env_entries(&env)[0]["label"], "tty");

        let before = store_bytes(&env.dir.path().join("pools.sqlite")).unwrap();
        let mut p = spawn_args(&env, "export-hermes");
        let out = p.exp_eof().unwrap();
        assert!(out.contains("[secrets_to_terminal]"), "{out}");
        assert!(!out.contains("sk-or-second-SECRET"), "{out}");
        let status = p.process().wait().unwrap();
        assert_eq!(
            status,
            rexpect::process::wait::WaitStatus::Exited(p.process().child_pid, 2)
        );
        let after = store_bytes(&env.dir.path().join("pools.sqlite")).unwrap();
        assert_eq!(before, after);
    }

    /// The openrouter entries of the store under `env`'s CREDPOOL_HOME.
    fn env_entries(env: &Env) -> Vec<Value> {
        let out = Command::new(BIN)
            .env_clear()
            .env("CREDPOOL_HOME", env.dir.path())
            .args(["list", "openrouter", "--json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        json["pools"][0]["entries"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Menu: add a key typed at a no-echo prompt (not echoed), reset, strategy, exit.
    #[test]
    fn add_reset_strategy_exit() {
        let env = Env::new();
        let mut p = spawn(&env);
        p.exp_string("Credential Pool Status").unwrap();
        p.exp_string("No credentials yet").unwrap();
        p.exp_string("5. Exit").unwrap();
        p.exp_string("Choice [1-5]: ").unwrap();
        p.send_line("1").unwrap();
        p.exp_string("Provider (blank to cancel): ").unwrap();
        p.send_line("openrouter").unwrap();
        let (echoed, _) = p
            .exp_regex(r"API key or OAuth login\? \[1/2/3\]: ")
            .unwrap();
        assert!(echoed.contains("openrouter"), "echo is on: {echoed:?}");
        assert!(echoed.contains("supports both API keys and OAuth login"));
        p.send_line("1").unwrap();
        p.exp_string("API key (input hidden): ").unwrap();
        p.send_line("sk-or-first-SECRET").unwrap();
        let typed = p.exp_string("Label / account name (optional): ").unwrap();
        assert!(!typed.contains("sk-or-first-SECRET"), "echoed: {typed:?}");
        p.send_line("typed").unwrap();
        let added = p.exp_string("Choice [1-5]: ").unwrap();
        assert!(
            added.contains("Added openrouter credential #1: \"typed\""),
            "{added}"
        );
        assert!(added.contains("#1  typed"), "{added}");
        assert!(!added.contains("sk-or-first-SECRET"));
        // Reset cooldowns (the only pool is the default).
        p.send_line("3").unwrap();
        p.exp_string("Provider [openrouter]: ").unwrap();
        p.send_line("").unwrap();
        p.exp_string("Reset openrouter: cleared the status of 0 credential(s)")
            .unwrap();
        p.exp_string("Choice [1-5]: ").unwrap();
        // Set strategy.
        p.send_line("4").unwrap();
        p.exp_string("Provider [openrouter]: ").unwrap();
        p.send_line("or").unwrap();
        let menu = p.exp_string("Choice [1-4] (blank to cancel): ").unwrap();
        assert!(menu.contains("Cycle through keys evenly"), "{menu}");
        // rexpect decodes the pty byte by byte (Latin-1).
        let marked: String = "then next ←".bytes().map(char::from).collect();
        assert!(
            menu.contains(&marked),
            "the current strategy is marked: {menu}"
        );
        p.send_line("2").unwrap();
        p.exp_string("Strategy of openrouter: round_robin").unwrap();
        let status = p.exp_string("Choice [1-5]: ").unwrap();
        assert!(status.contains("strategy round_robin"), "{status}");
        p.send_line("5").unwrap();
        p.exp_eof().unwrap();

        let store = store_text(&env.dir.path().join("pools.sqlite"));
        assert!(store.contains("sk-or-first-SECRET"), "the key was stored");
        assert!(store.contains("\"round_robin\""), "{store}");
        let out = Command::new(BIN)
            .env_clear()
            .env("CREDPOOL_HOME", env.dir.path())
            .args(["list", "--json"])
            .output()
            .unwrap();
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["pools"][0]["entries"][0]["label"], "typed");
    }

    /// Menu: an OAuth login runs `credpool login`'s flow (the provider's real authorize
    /// URL); a pasted code of another login is refused in one line and the menu comes back.
    #[test]
    fn oauth_login_from_the_menu() {
        let env = Env::new();
        let mut p = spawn(&env);
        p.exp_string("Choice [1-5]: ").unwrap();
        p.send_line("1").unwrap();
        p.exp_string("Provider (blank to cancel): ").unwrap();
        p.send_line("anthropic").unwrap();
        p.exp_string("[1/2/3]: ").unwrap();
        p.send_line("2").unwrap();
        p.exp_string("(optional, default from the login): ")
            .unwrap();
        p.send_line("").unwrap();
        p.exp_string("Open https://claude.ai/oauth/authorize?code=true&client_id=9d1c250a-e61b-44d9-88ed-5944d1962f5e&response_type=code")
            .unwrap();
        p.exp_string("(code#state, hidden): ").unwrap();
        p.send_line("code#another-login").unwrap();
        p.exp_string("state mismatch").unwrap();
        p.exp_string("Choice [1-5]: ").unwrap();
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
    }

    /// Menu: did-you-mean, OAuth tokens pasted at hidden prompts, remove by label, EOF.
    #[test]
    fn oauth_paste_remove_and_errors() {
        let env = Env::new();
        let mut p = spawn(&env);
        p.exp_string("Choice [1-5]: ").unwrap();
        // An unknown provider: one error line, the menu comes back.
        p.send_line("1").unwrap();
        p.exp_string("Provider (blank to cancel): ").unwrap();
        p.send_line("antropic").unwrap();
        p.exp_string("did you mean 'anthropic'?").unwrap();
        p.exp_string("Choice [1-5]: ").unwrap();
        // OAuth: tokens pasted at hidden prompts.
        p.send_line("1").unwrap();
        p.exp_string("Provider (blank to cancel): ").unwrap();
        p.send_line("anthropic").unwrap();
        p.exp_string("[1/2/3]: ").unwrap();
        p.send_line("3").unwrap();
        p.exp_string("Complete the login with anthropic's own tool")
            .unwrap();
        p.exp_string("Access token (input hidden): ").unwrap();
        p.send_line("sk-hermes-SECRET").unwrap();
        let typed = p
            .exp_string("Refresh token (input hidden, blank if none): ")
            .unwrap();
        assert!(!typed.contains("sk-hermes-SECRET"));
        p.send_line("rt-hermes-SECRET").unwrap();
        let typed = p.exp_string("(blank if unknown): ").unwrap();
        assert!(!typed.contains("rt-hermes-SECRET"));
        p.send_line("3600").unwrap();
        p.exp_string("Label / account name (optional): ").unwrap();
        p.send_line("me@example.com").unwrap();
        let added = p.exp_string("Choice [1-5]: ").unwrap();
        assert!(added.contains("me@example.com"), "{added}");
        assert!(added.contains("oauth"), "{added}");
        assert!(added.contains("pasted_oauth"), "{added}");
        // Remove it by label.
        p.send_line("2").unwrap();
        p.exp_string("Provider [anthropic]: ").unwrap();
        p.send_line("").unwrap();
        p.exp_string("Remove #, id, or label (blank to cancel): ")
            .unwrap();
        p.send_line("ME@example.com").unwrap();
        p.exp_string("Removed anthropic credential #1 (me@example.com")
            .unwrap();
        p.exp_string("No credentials yet").unwrap();
        p.exp_string("Choice [1-5]: ").unwrap();
        // End of input ends the session cleanly.
        p.send_control('d').unwrap();
        p.exp_eof().unwrap();
        let store = store_text(&env.dir.path().join("pools.sqlite"));
        assert!(
            !store.contains("rt-hermes-SECRET"),
            "removed entries keep no secret"
        );
    }
}
