//! The gc-worker binary as cron runs it: killed outright inside its window,
//! the registry is writable again once the lease runs out and the next run
//! completes; and a store written by Debian's docker-registry is collected
//! correctly and still served by both registries.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::data_files;
use test_support::{
    HeldReplica, Image, TestRegistry, require_tool, run_tool, start_docker_registry,
    write_oci_layout,
};

const BINARY: &str = env!("CARGO_BIN_EXE_gc-worker");

fn gc_command(storage: &str, registry: &TestRegistry, extra: &[&str]) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["run", "--storage", storage, "--admin-endpoints"])
        .arg(format!("http://{}", registry.admin_addr))
        .args(["--grace", "0s", "--delete-untagged"])
        .args(extra)
        .stdin(Stdio::null());
    command
}

async fn upload_status(registry: &TestRegistry) -> u16 {
    test_support::start_upload(&reqwest::Client::new(), &registry.url, "r")
        .await
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_inside_the_window_the_lease_runs_out_and_the_next_run_completes() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let registry = TestRegistry::start(storage).await;
    for index in 0..300 {
        let hex = format!("{:064x}", index + 1);
        let dir = store
            .path()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(&hex);
        std::fs::create_dir_all(&dir).expect("blob directory");
        std::fs::write(dir.join("data"), b"garbage").expect("blob");
    }
    // A second replica that takes the lease only when told: gc-worker is
    // held inside its window, the real replica read-only, until killed.
    let held = HeldReplica::start().await;
    let extra = [
        "--lease-ttl",
        "3s",
        "--admin-endpoints",
        held.endpoint.as_str(),
    ];
    let mut child = gc_command(storage, &registry, &extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gc-worker");
    let deadline = Instant::now() + Duration::from_secs(20);
    while upload_status(&registry).await != 503 {
        assert!(
            Instant::now() < deadline,
            "gc-worker never made the registry read-only"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "gc-worker finished before it could be killed inside its window"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().expect("SIGKILL");
    let killed_at = Instant::now();
    let _ = child.wait();
    assert_eq!(
        upload_status(&registry).await,
        503,
        "killed inside the window"
    );

    while upload_status(&registry).await != 202 {
        assert!(
            killed_at.elapsed() < Duration::from_secs(8),
            "still read-only long after the lease's time to live"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let output = gc_command(storage, &registry, &[])
        .output()
        .expect("gc-worker");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("report JSON");
    assert!(report["window_ms"].as_u64().is_some());
    let left = data_files(&store.path().join("docker/registry/v2/blobs"));
    assert_eq!(left, 0, "the next run collected every unreferenced blob");
    let trash = std::fs::read_dir(store.path().join("berth/trash"))
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(trash, 0, "the next run leaves no trash of its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_by_docker_registry_is_collected() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let store = work.path().join("store");
    std::fs::create_dir_all(&store).expect("store");
    let Some(distribution) = start_docker_registry(&store).await else {
        return;
    };
    let (first, second, third) = (
        Image::random(2, 4096),
        Image::random(2, 4096),
        Image::random(1, 4096),
    );
    let layout = work.path().join("layout");
    write_oci_layout(
        &layout,
        &[("first", &first), ("second", &second), ("third", &third)],
        &[],
    );
    let copy = |tag: &str, destination: String| {
        let mut command = skopeo.command();
        command
            .args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(destination);
        run_tool(command)
    };
    copy(
        "first",
        format!("docker://{}/legacy/app:v1", distribution.host()),
    )
    .await;
    copy(
        "second",
        format!("docker://{}/legacy/app:v1", distribution.host()),
    )
    .await;
    copy(
        "third",
        format!("docker://{}/legacy/app:v2", distribution.host()),
    )
    .await;
    distribution.stop();

    let storage = store.to_str().expect("utf-8");
    let registry = TestRegistry::start(storage).await;
    let output = gc_command(storage, &registry, &[])
        .output()
        .expect("gc-worker");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("report JSON");
    assert_eq!(report["manifests_deleted"], 1, "{report}");
    assert_eq!(
        report["blobs_deleted"], 4,
        "first's manifest, config and two layers: {report}"
    );
    let gone = reqwest::get(format!(
        "{}/v2/legacy/app/manifests/{}",
        registry.url, first.manifest.digest
    ))
    .await
    .expect("GET");
    assert_eq!(gone.status(), 404);
    registry.stop().await;

    let Some(distribution) = start_docker_registry(&store).await else {
        return;
    };
    for (tag, image) in [("v1", &second), ("v2", &third)] {
        let pulled = work.path().join(format!("pulled-{tag}"));
        let mut command = skopeo.command();
        command
            .args(["copy", "--src-tls-verify=false"])
            .arg(format!("docker://{}/legacy/app:{tag}", distribution.host()))
            .arg(format!("oci:{}:{tag}", pulled.display()));
        run_tool(command).await;
        for blob in image.blobs().chain([&image.manifest]) {
            let path = pulled.join("blobs/sha256").join(blob.digest.hex());
            assert_eq!(
                std::fs::read(path).expect("pulled blob"),
                blob.bytes,
                "docker-registry serves the collected store"
            );
        }
    }
}

fn lease_command(storage: &str, args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(["lease", "--storage", storage])
        .args(args)
        .output()
        .expect("gc-worker lease")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_and_ends_a_window_whose_gc_worker_is_gone() {
    use registry_proto::maintenance::AcquireReadOnlyRequest;
    use registry_proto::maintenance::maintenance_client::MaintenanceClient;
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8").to_owned();
    // Replicas see a release recorded in the store at their next check.
    let mut config = registry_api::Config::with_storage(&storage);
    config.lease_check_interval = Duration::from_secs(1);
    let registry = TestRegistry::start_with(config).await;
    let quiet = lease_command(&storage, &["status"]);
    assert!(
        String::from_utf8_lossy(&quiet.stdout).contains("writable"),
        "{quiet:?}"
    );

    // A gc-worker took an hour's window and died.
    let mut admin = MaintenanceClient::connect(format!("http://{}", registry.admin_addr))
        .await
        .expect("admin port");
    admin
        .acquire_read_only(AcquireReadOnlyRequest {
            lease_id: "stuck-window".into(),
            holder: "gc-worker@gone".into(),
            ttl_seconds: 3600,
            reason: "garbage collection".into(),
        })
        .await
        .expect("a window");
    assert_eq!(upload_status(&registry).await, 503);
    let status = lease_command(&storage, &["status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("stuck-window")
            && shown.contains("gc-worker@gone")
            && shown.contains("IN FORCE"),
        "{shown}"
    );

    let wrong = lease_command(&storage, &["release", "another-window"]);
    assert!(!wrong.status.success());
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("stuck-window"),
        "{wrong:?}"
    );
    assert_eq!(
        upload_status(&registry).await,
        503,
        "a wrong id ends nothing"
    );

    let released = lease_command(&storage, &["release", "stuck-window"]);
    assert!(released.status.success(), "{released:?}");
    assert!(String::from_utf8_lossy(&released.stdout).contains("released"));
    test_support::eventually("writes to resume", Duration::from_secs(5), async || {
        upload_status(&registry).await == 202
    })
    .await;
    let again = lease_command(&storage, &["release", "stuck-window"]);
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("already over"),
        "{again:?}"
    );
}
