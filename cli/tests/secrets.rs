//! Secret hygiene of the `credpool` binary: a store holding canary secrets
//! (`sk-CANARY-…`), then every read and management command, with and without `--json`,
//! their errors, corrupted stores and hostile config files. No canary may reach stdout or
//! stderr; the store file is mode 0600 and never holds a borrowed (`env:`, `config:`) secret.

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_credpool");

struct Env {
    dir: TempDir,
    store: PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = dir.path().join("pools.sqlite");
        Self { dir, store }
    }

    /// Runs `args` (stdin, env), asserting no canary in stdout or stderr.
    fn run(&self, args: &[&str], stdin: &str, envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.env_clear().arg("--store").arg(&self.store);
        cmd.args(args).write_stdin(stdin);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let output = cmd.output().expect("run credpool");
        for (name, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains("CANARY"),
                "credpool {args:?} printed a canary on {name}: {text}"
            );
        }
        output
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args, "", &[]);
        assert!(
            output.status.success(),
            "credpool {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// Runs `args` expecting a failure; returns stderr.
    fn fails(&self, args: &[&str], stdin: &str) -> String {
        let output = self.run(args, stdin, &[]);
        assert!(!output.status.success(), "credpool {args:?} succeeded");
        String::from_utf8(output.stderr).expect("utf-8")
    }

    fn store_text(&self) -> String {
        // The database and its write-ahead log (secrets are stored as text).
        let mut bytes = std::fs::read(&self.store).unwrap_or_default();
        let mut wal = self.store.as_os_str().to_owned();
        wal.push("-wal");
        bytes.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn with_canaries(&self) {
        self.ok(&[
            "add",
            "openrouter",
            "--api-key",
            "sk-CANARY-1-openrouter-key",
            "--label",
            "one",
        ]);
        self.run(
            &["add", "openrouter", "--label", "two"],
            "sk-CANARY-2-piped-key\n",
            &[],
        );
        self.ok(&["add", "anthropic", "--api-key", "sk-CANARY-3-anthropic-key"]);
        self.ok(&[
            "add",
            "custom:box",
            "--api-key",
            "sk-CANARY-4-custom",
            "--base-url",
            "http://localhost:9/v1",
        ]);
    }
}

/// Every read and management command, plain and `--json`.
#[test]
fn commands_and_json_never_print_a_canary() {
    let env = Env::new();
    env.with_canaries();
    for args in [
        vec!["list"],
        vec!["list", "--json"],
        vec!["list", "openrouter"],
        vec!["list", "openrouter", "--json"],
        vec!["strategy", "openrouter"],
        vec!["strategy", "openrouter", "round_robin", "--json"],
        vec!["policy", "openrouter"],
        vec!["policy", "openrouter", "--json"],
        vec!["priority", "openrouter", "one", "5", "--json"],
        vec!["reset", "openrouter", "--json"],
        vec!["reset", "openrouter", "1"],
        vec!["remove", "anthropic", "1", "--json"],
        vec!["list", "--json"],
    ] {
        env.ok(&args);
    }
    // `list --json` describes entries by id, label, fingerprint: never the secret.
    let json: Value = serde_json::from_str(&env.ok(&["list", "--json"])).expect("json");
    assert!(!json.to_string().contains("CANARY"));
    // The owned secrets are in the store (that is its job), and it is private.
    assert!(env.store_text().contains("sk-CANARY-1-openrouter-key"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&env.store)
            .expect("store")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "store mode {mode:o}");
    }
}

/// `add` errors: oversized, empty, multi-line keys, unknown providers, bad options.
#[test]
fn add_errors_never_echo_the_key() {
    let env = Env::new();
    env.with_canaries();
    let huge = format!("sk-CANARY-{}", "x".repeat(20_000));
    env.fails(&["add", "openrouter", "--api-key", &huge], "");
    env.fails(&["add", "openrouter"], &format!("{huge}\n"));
    env.fails(
        &["add", "openruter", "--api-key", "sk-CANARY-typo-provider"],
        "",
    );
    env.fails(
        &[
            "add",
            "openrouter",
            "--api-key",
            "sk-CANARY-6",
            "--base-url",
            "http://x/\u{1}",
        ],
        "",
    );
    // Nothing refused reached the store.
    let store = env.store_text();
    assert!(!store.contains("sk-CANARY-6") && !store.contains("typo-provider"));
}

/// A corrupted or hostile store file: errors name the problem, never the content.
#[test]
fn corrupted_stores_never_echo_their_secrets() {
    let env = Env::new();
    let entry = |extra: Value| {
        let mut e = json!({"id": "a", "access_token": "sk-CANARY-store-1"});
        if let (Some(e), Value::Object(x)) = (e.as_object_mut(), extra) {
            e.extend(x);
        }
        json!({"format": "credpool", "schema_version": 1, "pools": {"openrouter": {"entries": [e]}}})
    };
    let docs = [
        entry(json!({"auth_type": "sk-CANARY-as-auth-type"})),
        entry(json!({"status": "sk-CANARY-as-status"})),
        entry(json!({"refresh_token": 12345, "label": ["sk-CANARY-in-label"]})),
        entry(json!({"failure_class": "sk-CANARY-as-class"})),
        json!({"format": "credpool", "schema_version": 1, "pools": {"openrouter": {"strategy": "sk-CANARY-strategy", "entries": []}}}),
        json!({"format": "credpool", "schema_version": 1, "pools": {"openrouter": {"entries": [{"id": "a", "access_token": {"sk-CANARY-as-key": 1}}]}}}),
    ];
    for doc in docs {
        std::fs::write(&env.store, serde_json::to_vec(&doc).expect("json")).expect("write");
        env.fails(&["list"], "");
        env.fails(&["list", "--json"], "");
    }
    // Not JSON at all, with a secret right where the parser stops.
    std::fs::write(&env.store, b"{\"pools\": sk-CANARY-raw-text }").expect("write");
    env.fails(&["list"], "");
}

/// `seed` adopts env and config keys as borrowed entries: their secrets never reach the
/// store file or any output; a hostile config file is refused without echoing.
#[test]
fn seed_keeps_borrowed_secrets_out_of_the_store() {
    let env = Env::new();
    let config = env.dir.path().join("seed.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&json!({"custom_providers": [
            {"name": "Box", "base_url": "http://localhost:8080/v1", "api_key": "sk-CANARY-config-key"}
        ]}))
        .expect("json"),
    )
    .expect("write");
    let config = config.to_str().expect("utf-8 path");
    for args in [
        vec!["seed", "--config", config],
        vec!["seed", "--config", config, "--json"],
    ] {
        let out = env.run(&args, "", &[("OPENROUTER_API_KEY", "sk-CANARY-env-key")]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    env.ok(&["list", "--json"]);
    let store = env.store_text();
    assert!(store.contains("env:OPENROUTER_API_KEY"), "{store}");
    assert!(
        !store.contains("CANARY"),
        "a borrowed secret was persisted: {store}"
    );
    let bad = env.dir.path().join("bad.json");
    std::fs::write(
        &bad,
        serde_json::to_vec(
            &json!({"custom_providers": [{"base_url": 7, "api_key": "sk-CANARY-bad"}]}),
        )
        .expect("json"),
    )
    .expect("write");
    env.fails(&["seed", "--config", bad.to_str().expect("utf-8 path")], "");
}
