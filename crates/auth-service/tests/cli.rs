//! The `auth-service` binary: `hash-password` lines that verify, and a
//! broken policy refused at start with its line.

use std::io::Write;
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_auth-service");

fn hash_password(args: &[&str], password: &str) -> String {
    let mut child = Command::new(BINARY)
        .arg("hash-password")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("auth-service hash-password");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{password}\n").as_bytes())
        .expect("password");
    let output = child.wait_with_output().expect("output");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

#[test]
fn hash_password_prints_lines_that_verify() {
    let argon = hash_password(&["alice"], "correct horse");
    let (user, hash) = argon.split_once(':').expect("user:hash");
    assert_eq!(user, "alice");
    assert!(hash.starts_with("$argon2id$"), "{hash}");

    let bcrypt_line = hash_password(&["--bcrypt", "bob"], "battery staple");
    let (user, hash) = bcrypt_line.split_once(':').expect("user:hash");
    assert_eq!(user, "bob");
    assert!(bcrypt::verify("battery staple", hash).expect("bcrypt hash"));
    assert!(!bcrypt::verify("wrong", hash).expect("bcrypt hash"));
}

#[test]
fn the_password_never_comes_from_arguments() {
    let output = Command::new(BINARY)
        .args(["hash-password", "alice", "secret"])
        .output()
        .expect("auth-service");
    assert!(!output.status.success(), "an extra argument is refused");
}

#[test]
fn a_broken_policy_is_refused_at_start_with_its_line() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, "").expect("htpasswd");
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        "[[rule]]\nrepositories = [\"a\"]\nusers = [\"x\"]\nactions = [\"pull\", \"fly\"]\n",
    )
    .expect("policy");
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--htpasswd"])
        .arg(&htpasswd)
        .arg("--policy")
        .arg(&policy)
        .output()
        .expect("auth-service");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("line 4") && stderr.contains("fly"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_healthcheck_flag_asks_the_running_instance_over_grpc() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, test_support::bcrypt_line("alice", "pw") + "\n").expect("htpasswd");
    let auth = test_support::TestAuth::start(&htpasswd, None).await;
    let check = |listen: std::net::SocketAddr| {
        Command::new(BINARY)
            .arg("--healthcheck")
            .env("AUTH_LISTEN", listen.to_string())
            .output()
            .expect("auth-service --healthcheck")
    };
    let listen = auth.addr;
    let healthy = tokio::task::spawn_blocking(move || check(listen))
        .await
        .expect("thread");
    assert!(healthy.status.success(), "{healthy:?}");
    auth.stop().await;
    let gone = tokio::task::spawn_blocking(move || check(listen))
        .await
        .expect("thread");
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
}
