//! `rediss://`: the Redis store over TLS against a real `redis-server` listening with TLS on
//! loopback, with a certificate authority and a server certificate made at test time
//! (`openssl`). The store trusts the CA given as `tls_ca_file`; a server whose certificate
//! another CA signed is refused, and so is plain text to the TLS port.
//!
//! `#[ignore]`d like the other server tests: `scripts/test-redis.sh` runs them with
//! `--include-ignored` (`CREDPOOL_REDIS_SERVER` names another `redis-server` binary).
#![cfg(feature = "redis")]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use credpool_core::{ErrorCode, Millis};
use credpool_store::{Store, StoreOptions};
use serde_json::{Value, json};

const NEEDS: &str = "needs redis-server and openssl (scripts/test-redis.sh)";

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?} failed");
}

/// A certificate authority (`{name}.pem`, `{name}.key`) in `dir`.
fn make_ca(dir: &Path, name: &str) -> PathBuf {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            &format!("/CN=credpool test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
    dir.join(format!("{name}.pem"))
}

/// A server certificate for 127.0.0.1 signed by the CA `ca` (`server.pem`, `server.key`).
fn make_server_cert(dir: &Path, ca: &str) {
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-days",
            "1",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

/// A `redis-server` listening with TLS only, on a free loopback port; killed on drop.
struct TlsServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

impl TlsServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        make_ca(dir.path(), "ca");
        make_server_cert(dir.path(), "ca");
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let binary =
            std::env::var("CREDPOOL_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        let child = Command::new(binary)
            .args([
                "--port",
                "0",
                "--tls-port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .args([
                "--tls-auth-clients",
                "no",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--tls-cert-file")
            .arg(dir.path().join("server.pem"))
            .arg("--tls-key-file")
            .arg(dir.path().join("server.key"))
            .arg("--tls-ca-cert-file")
            .arg(dir.path().join("ca.pem"))
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (scripts/test-redis.sh installs it)");
        let server = Self { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server (TLS) did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn options(writer: &str, ca: Option<PathBuf>) -> StoreOptions {
    let mut options = StoreOptions::new(writer, 7);
    options.connect_timeout = Duration::from_secs(2);
    options.io_timeout = Duration::from_secs(2);
    options.tls_ca_file = ca;
    options
}

fn run(store: &mut Store, now: u64, input: Value) -> Value {
    serde_json::to_value(store.handle_value(Millis(now), input).unwrap()).unwrap()
}

#[test]
#[ignore = "needs redis-server and openssl (scripts/test-redis.sh)"]
fn rediss_with_the_servers_ca_shares_state() {
    let _ = NEEDS;
    let server = TlsServer::start();
    let url = format!("rediss://127.0.0.1:{}?namespace=tls", server.port);
    let mut a = Store::open(&url, options("a", Some(server.ca()))).unwrap();
    run(
        &mut a,
        0,
        json!({"type": "configure_pool", "pool": "openai", "strategy": "round_robin"}),
    );
    for id in ["k1", "k2"] {
        run(
            &mut a,
            0,
            json!({"type": "add_entry", "pool": "openai",
                "entry": {"id": id, "access_token": format!("sk-tls-{id}")}}),
        );
    }
    let mut b = Store::open(&url, options("b", Some(server.ca()))).unwrap();
    let d = run(&mut b, 1, json!({"type": "acquire", "pool": "openai"}));
    assert_eq!(d["type"], "use", "{d}");
    let lease = d["lease_id"].as_u64().unwrap();
    let d = run(
        &mut b,
        1,
        json!({"type": "report", "pool": "openai", "lease_id": lease,
            "response": {"status": 429, "headers": {"retry-after": "3600"}}}),
    );
    assert_eq!(d["type"], "use", "a 429 rotates: {d}");
    // A's next look sees B's cooldown: the state went through the TLS server.
    a.reload().unwrap();
    let status = run(&mut a, 2, json!({"type": "status", "pool": "openai"}));
    let cooling = status["pools"][0]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["health"] == "rate_limited")
        .count();
    assert_eq!(cooling, 1, "{status}");
    assert!(
        !format!("{a:?}").contains("sk-tls-"),
        "Debug never shows secrets"
    );
}

#[test]
#[ignore = "needs redis-server and openssl (scripts/test-redis.sh)"]
fn a_server_signed_by_another_ca_is_refused() {
    let server = TlsServer::start();
    let other = tempfile::tempdir().unwrap();
    let wrong = make_ca(other.path(), "other");
    let url = format!("rediss://user:hunter2@127.0.0.1:{}", server.port);
    let e = Store::open(&url, options("w", Some(wrong))).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    let text = e.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(
        !text.contains("hunter2"),
        "the password never appears: {text}"
    );
    // Neither the system's CAs (the default) trust the test CA.
    let e = Store::open(&url, options("w", None)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    // Plain text to the TLS port is no Redis either.
    let plain = format!("redis://127.0.0.1:{}", server.port);
    let e = Store::open(&plain, options("w", None)).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
}

#[test]
fn a_ca_file_needs_a_tls_url_and_a_readable_file() {
    let e = Store::open(
        "redis://127.0.0.1:1",
        options("w", Some("/nonexistent.pem".into())),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidInput, "{e}");
    let e = Store::open(
        "rediss://127.0.0.1:1",
        options("w", Some("/nonexistent.pem".into())),
    )
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Io, "{e}");
    assert!(e.to_string().contains("/nonexistent.pem"), "{e}");
}
