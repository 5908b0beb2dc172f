//! auth-service as an attacker meets it: no answers without the token,
//! no start beyond loopback without one, the same time for unknown and
//! known users of every hash kind, bursts of logins queued rather than
//! failed, and user names that cannot forge log lines.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use registry_proto::auth::VerifyRequest;
use registry_proto::auth::authenticator_client::AuthenticatorClient;
use service_runtime::token::SharedToken;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const BINARY: &str = env!("CARGO_BIN_EXE_auth-service");

/// auth-service in this process over `lines`, presenting `token`.
async fn serve(lines: &[String], token: Option<SharedToken>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, lines.join("\n")).expect("htpasswd");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(auth_service::run(
        htpasswd,
        None,
        listener,
        token,
        CancellationToken::new(),
    ));
    (dir, url)
}

fn bcrypt_line(user: &str, cost: u32) -> String {
    format!(
        "{user}:{}",
        bcrypt::hash("the password", cost).expect("bcrypt")
    )
}

fn verify(user: &str, password: &str) -> VerifyRequest {
    VerifyRequest {
        username: user.to_owned(),
        password: password.to_owned(),
        client_address: "192.0.2.7".to_owned(),
    }
}

async fn connect(url: &str) -> AuthenticatorClient<tonic::transport::Channel> {
    for _ in 0..100 {
        if let Ok(client) = AuthenticatorClient::connect(url.to_owned()).await {
            return client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("auth-service did not answer at {url}");
}

/// The median and the 90th percentile of `calls` wrong-password checks of
/// `user`.
async fn check_times(
    client: &mut AuthenticatorClient<tonic::transport::Channel>,
    user: &str,
    calls: usize,
) -> [Duration; 2] {
    let mut times = Vec::new();
    for _ in 0..calls {
        let started = Instant::now();
        client.verify(verify(user, "wrong")).await.expect("verify");
        times.push(started.elapsed());
    }
    times.sort();
    [times[calls / 2], times[calls * 9 / 10]]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_users_take_as_long_as_known_users_of_every_kind() {
    let argon = format!("argon:{}", auth_service::hashing::argon2id("the password"));
    let lines = [bcrypt_line("cheap", 4), bcrypt_line("dear", 9), argon];
    let (_dir, url) = serve(&lines, None).await;
    let mut client = connect(&url).await;
    let unknown = check_times(&mut client, "nobody", 11).await;
    for known in ["cheap", "dear", "argon"] {
        let took = check_times(&mut client, known, 11).await;
        for (known_time, unknown_time) in took.iter().zip(&unknown) {
            let (low, high) = (known_time.min(unknown_time), known_time.max(unknown_time));
            assert!(
                high.as_secs_f64() <= low.as_secs_f64() * 1.2 + 0.005,
                "{known} took {took:?} (median, 90th percentile), an unknown user {unknown:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_logins_is_queued_not_refused() {
    let lines: Vec<String> = (0..10)
        .map(|user| bcrypt_line(&format!("user{user}"), 6))
        .collect();
    let (_dir, url) = serve(&lines, None).await;
    let client = connect(&url).await;
    let logins = (0..100).map(|call| {
        let mut client = client.clone();
        async move {
            client
                .verify(verify(&format!("user{}", call % 10), "the password"))
                .await
                .map(|answer| answer.into_inner().outcome)
        }
    });
    let answers = futures::future::join_all(logins).await;
    let accepted = answers
        .iter()
        .filter(|answer| matches!(answer, Ok(outcome) if *outcome == 1))
        .count();
    assert_eq!(accepted, 100, "{answers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_token_there_is_no_answer() {
    let token = SharedToken::generate();
    let (_dir, url) = serve(&[bcrypt_line("alice", 4)], Some(token.clone())).await;
    let mut client = connect(&url).await;
    let refused = client.verify(verify("alice", "the password")).await;
    assert_eq!(
        refused.expect_err("no token").code(),
        tonic::Code::Unauthenticated
    );
    let mut request = tonic::Request::new(verify("alice", "the password"));
    token.attach(&mut request);
    assert_eq!(
        client
            .verify(request)
            .await
            .expect("token")
            .into_inner()
            .outcome,
        1
    );
}

#[test]
fn it_will_not_listen_beyond_loopback_without_a_token() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, bcrypt_line("alice", 4)).expect("htpasswd");
    let output = Command::new(BINARY)
        .args(["--listen", "0.0.0.0:0", "--htpasswd"])
        .arg(&htpasswd)
        .env_remove("AUTH_TOKEN")
        .env_remove("AUTH_TOKEN_FILE")
        .output()
        .expect("auth-service");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--token-file"), "{stderr}");

    let empty = dir.path().join("token");
    std::fs::write(&empty, "\n").expect("token file");
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--htpasswd"])
        .arg(&htpasswd)
        .arg("--token-file")
        .arg(&empty)
        .output()
        .expect("auth-service");
    assert!(!output.status.success(), "an empty token file is refused");
    assert!(String::from_utf8_lossy(&output.stderr).contains("is empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_names_cannot_forge_log_lines_and_unknown_ones_are_not_logged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, bcrypt_line("alice", 4)).expect("htpasswd");
    let port = test_support::free_port();
    let mut child = Command::new(BINARY)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--htpasswd"])
        .arg(&htpasswd)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("auth-service");
    let mut client = connect(&format!("http://127.0.0.1:{port}")).await;
    let forged = "alice\n2026-01-01T00:00:00Z  INFO login accepted user=\"root\"";
    client.verify(verify(forged, "x")).await.expect("verify");
    client
        .verify(verify("MyS3cretPassw0rd", "x"))
        .await
        .expect("verify");
    client
        .verify(verify("alice", "wrong"))
        .await
        .expect("verify");
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("2026-01-01")),
        "a user name forged a log line:\n{logs}"
    );
    assert!(
        !logs.contains("MyS3cretPassw0rd"),
        "an unknown user name was logged:\n{logs}"
    );
    assert!(
        logs.contains("unknown user") && logs.contains("192.0.2.7"),
        "{logs}"
    );
    assert!(logs.contains("wrong password"), "{logs}");
}

/// A users file read while an editor rewrites it (truncated, not yet
/// refilled) must not log everyone out: an emptied file is refused and the
/// users loaded before stay in force.
#[test]
fn an_emptied_users_file_keeps_the_users_loaded() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, bcrypt_line("alice", 4)).expect("htpasswd");
    let files = auth_service::Files::load(htpasswd.clone(), None).expect("load");
    std::fs::write(&htpasswd, "").expect("truncate");
    files.reload_if_changed();
    assert!(files.current().users.verify("alice", "the password"));
    assert_eq!(files.failed_reloads(), 1);
    std::fs::write(
        &htpasswd,
        format!("# just a comment\n{}", bcrypt_line("bob", 4)),
    )
    .expect("rewrite");
    files.reload_if_changed();
    assert!(
        files.current().users.verify("bob", "the password"),
        "a real change still applies"
    );
}
