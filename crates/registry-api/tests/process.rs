//! The `registry-api` binary as operators run it: configuration from flags
//! and environment, `--help`, health, and a graceful stop on SIGTERM that
//! lets an in-flight upload finish.

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use test_support::{ChildServer, free_port};

const BINARY: &str = env!("CARGO_BIN_EXE_registry-api");

#[test]
fn help_names_every_flag_of_the_contract() {
    let output = Command::new(BINARY)
        .arg("--help")
        .output()
        .expect("registry-api --help");
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--listen",
        "--admin-listen",
        "--storage",
        "--auth-endpoint",
        "--read-only-on-boot",
        "--log-format",
        "REGISTRY_STORAGE",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn a_bad_flag_value_names_the_flag() {
    for (flag, value) in [
        ("--listen", "not-an-address"),
        ("--max-pull-memory-mib", "0"),
        ("--max-pull-memory-mib", "lots"),
    ] {
        let output = Command::new(BINARY)
            .args([flag, value])
            .output()
            .expect("registry-api");
        assert!(!output.status.success(), "{flag} {value}");
        assert!(
            String::from_utf8_lossy(&output.stderr).contains(flag),
            "{flag} {value}"
        );
    }
}

#[tokio::test]
async fn sigterm_lets_an_in_flight_upload_finish() {
    let store = tempfile::tempdir().expect("temporary directory");
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(BINARY);
    command
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", store.path())
        .stdin(Stdio::null());
    let server = ChildServer::spawn(command, port, "/healthz", "registry-api").await;
    let client = reqwest::Client::new();
    let started = test_support::start_upload(&client, &server.url, "r").await;
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();

    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let patch = tokio::spawn(
        client
            .patch(format!("{}{location}", server.url))
            .body(body)
            .send(),
    );
    sender
        .send(Ok(Bytes::from_static(b"first half ")))
        .await
        .expect("send");
    tokio::time::sleep(Duration::from_millis(200)).await;

    let killed = Command::new("kill")
        .args(["-TERM", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    tokio::time::sleep(Duration::from_millis(200)).await;
    sender
        .send(Ok(Bytes::from_static(b"second half")))
        .await
        .expect("send");
    drop(sender);

    let response = patch
        .await
        .expect("task")
        .expect("the in-flight PATCH is answered");
    assert_eq!(response.status(), 202);
    assert_eq!(response.headers()["range"], "0-21");
    let refused = reqwest::get(format!("{}/v2/", server.url)).await;
    assert!(
        refused.is_err(),
        "a stopping server accepts no new connections"
    );
}

/// A replica killed during a monolithic push to S3 leaves a multipart
/// upload that nothing completes: the store lists it (for the collector)
/// and can abort it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_push_to_s3_leaves_an_upload_the_store_can_abort() {
    let Some((_moto, storage)) = test_support::start_moto("berth-killed", "registry").await else {
        return;
    };
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(BINARY);
    command
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", &storage)
        .stdin(Stdio::null());
    let server = ChildServer::spawn(command, port, "/healthz", "registry-api").await;
    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let digest = format!("sha256:{}", "ab".repeat(32));
    let push = tokio::spawn(
        reqwest::Client::new()
            .post(format!(
                "{}/v2/r/blobs/uploads/?digest={digest}",
                server.url
            ))
            .body(body)
            .send(),
    );
    let piece = Bytes::from(test_support::random_bytes(1 << 20));
    for _ in 0..24 {
        sender.send(Ok(piece.clone())).await.expect("send");
    }
    let store = registry_storage::Store::open(&storage).expect("store");
    test_support::eventually(
        "a part of the push reaching the store",
        Duration::from_secs(20),
        async || {
            !store
                .incomplete_multipart_uploads()
                .await
                .expect("listing")
                .is_empty()
        },
    )
    .await;
    server.stop();
    drop(sender);
    let _ = push.await;

    let left = store.incomplete_multipart_uploads().await.expect("listing");
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].key.as_ref().ends_with("/data"), "{left:?}");
    store.abort_multipart_upload(&left[0]).await.expect("abort");
    assert!(
        store
            .incomplete_multipart_uploads()
            .await
            .expect("listing")
            .is_empty()
    );
}

/// Starts the binary with `args` until it serves, then stops it; returns
/// what it logged. Ports are picked free and bound a moment later, so a
/// start that lost its port to another test is tried again on others.
async fn logs_of_a_start(args: &[&str]) -> String {
    for _attempt in 0..5 {
        match start_and_stop(args).await {
            Ok(log) => return log,
            Err(log) if log.contains("Address already in use") => continue,
            Err(log) => panic!("registry-api did not serve:\n{log}"),
        }
    }
    panic!("registry-api found no free ports in 5 attempts");
}

async fn start_and_stop(args: &[&str]) -> Result<String, String> {
    let store = tempfile::tempdir().expect("temporary directory");
    let (port, admin) = (free_port(), free_port());
    let log = store.path().join("log");
    let mut child = Command::new(BINARY)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--storage"])
        .arg(store.path().join("store"))
        .args(args)
        .args(["--admin-listen", &format!("0.0.0.0:{admin}")])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("registry-api");
    let started = std::time::Instant::now();
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        let exited = child.try_wait().expect("the child's state");
        if exited.is_some() || started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("({exited:?}) {log}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(std::fs::read_to_string(&log).expect("log"))
}

#[tokio::test]
async fn an_open_admin_port_and_a_token_in_ps_are_warned_about() {
    let open = logs_of_a_start(&[]).await;
    assert!(open.contains("has no token"), "{open}");
    let in_ps = logs_of_a_start(&["--admin-token", "s3cret-in-ps"]).await;
    assert!(in_ps.contains("shows in `ps`"), "{in_ps}");
    assert!(
        !in_ps.contains("s3cret-in-ps"),
        "the token itself is never logged"
    );
    assert!(!in_ps.contains("has no token"));
}

#[test]
fn an_empty_admin_token_file_is_refused() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let token = dir.path().join("admin-token");
    std::fs::write(&token, "\n").expect("token file");
    let output = Command::new(BINARY)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
            "--storage",
        ])
        .arg(dir.path().join("store"))
        .arg("--admin-token-file")
        .arg(&token)
        .output()
        .expect("registry-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--admin-token-file") && stderr.contains("is empty"),
        "{stderr}"
    );
}

/// `registry-api --healthcheck` with the serving instance's own settings.
fn healthcheck(port: u16) -> std::process::Output {
    Command::new(BINARY)
        .arg("--healthcheck")
        .env("REGISTRY_LISTEN", format!("0.0.0.0:{port}"))
        .output()
        .expect("registry-api --healthcheck")
}

#[tokio::test]
async fn the_healthcheck_flag_asks_the_running_instance() {
    let store = tempfile::tempdir().expect("temporary directory");
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(BINARY);
    command
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", store.path())
        .stdin(Stdio::null());
    let server = ChildServer::spawn(command, port, "/healthz", "registry-api").await;
    let healthy = tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .expect("thread");
    assert!(healthy.status.success(), "{healthy:?}");
    server.stop();
    let gone = tokio::task::spawn_blocking(move || healthcheck(port))
        .await
        .expect("thread");
    assert_eq!(gone.status.code(), Some(1), "{gone:?}");
    assert!(String::from_utf8_lossy(&gone.stderr).contains("unhealthy"));
}
