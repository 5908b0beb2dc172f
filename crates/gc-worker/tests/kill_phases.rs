//! gc-worker killed outright (SIGKILL) as it enters each phase of a run,
//! and stopped (SIGTERM) while it destroys the trash, told apart by the
//! line it logs there: reading the store before the
//! window, marking, sweeping, and destroying the trash after the window.
//! After every kill the registry is writable again within the lease's time
//! to live, every tagged image still pulls byte for byte, the store checks
//! clean, and the next run finishes the work: the garbage is gone and no
//! trash is left.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::{assert_store_sound, bytes_of, data_files};
use test_support::{Image, TestRegistry, push_image};

const BINARY: &str = env!("CARGO_BIN_EXE_gc-worker");

/// The lease's time to live in these runs: short, so a killed run's
/// window ends soon.
const LEASE_TTL: Duration = Duration::from_secs(3);

/// Blobs nothing references, written straight into the store: enough that
/// every phase lasts well beyond the moment it is killed in (over two of
/// the sweep's batches: at 6,000, a quick machine renamed all but a few hundred
/// between the first batch's log line and the SIGSTOP it triggers).
const GARBAGE_BLOBS: usize = 9_000;
/// Repositories holding nothing but a layer link to one of those blobs,
/// written straight into the store: what marking lists and sweeping prunes.
const GARBAGE_REPOSITORIES: usize = 400;

/// A phase, by the line gc-worker logs entering it and the line it logs
/// entering the next one.
struct Phase {
    entered: &'static str,
    next: &'static str,
    /// Whether the read-only lease is held during the phase.
    inside_the_window: bool,
    /// Whether a kill there leaves retired objects in the trash for the
    /// next run to destroy.
    leaves_trash: bool,
}

const BEFORE_THE_WINDOW: Phase = Phase {
    entered: "reading the store before the window",
    next: "registry read-only",
    inside_the_window: false,
    leaves_trash: false,
};
const MARKING: Phase = Phase {
    entered: "marking what the tags reach",
    next: "sweeping what nothing kept references",
    inside_the_window: true,
    leaves_trash: false,
};
const SWEEPING: Phase = Phase {
    entered: "sweeping what nothing kept references",
    next: "registry read-write again",
    inside_the_window: true,
    leaves_trash: false,
};
const DESTROYING_THE_TRASH: Phase = Phase {
    entered: "destroying the trash",
    next: "garbage collected",
    inside_the_window: false,
    leaves_trash: true,
};

/// A file store holding tagged images, an untagged one and many orphaned
/// blobs, served by one replica.
struct Store {
    directory: tempfile::TempDir,
    registry: TestRegistry,
    tagged: Vec<(&'static str, Image)>,
}

impl Store {
    async fn with_garbage() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let storage = directory.path().to_str().expect("utf-8").to_owned();
        let registry = TestRegistry::start(&storage).await;
        let client = reqwest::Client::new();
        let tagged = vec![
            ("v1", Image::random(2, 4096)),
            ("v2", Image::random(1, 70_000)),
        ];
        for (tag, image) in &tagged {
            push_image(&client, &registry.url, "keep/app", tag, image).await;
        }
        let untagged = Image::random(2, 4096);
        push_image(&client, &registry.url, "keep/app", "old", &untagged).await;
        let untag = client
            .delete(format!("{}/v2/keep/app/manifests/old", registry.url))
            .send()
            .await
            .expect("DELETE tag");
        assert_eq!(untag.status(), 202);
        let blobs = directory.path().join("docker/registry/v2/blobs/sha256");
        for index in 0..GARBAGE_BLOBS {
            let hex = format!("{:064x}", index + 1);
            let blob = blobs.join(&hex[..2]).join(&hex);
            std::fs::create_dir_all(&blob).expect("blob directory");
            std::fs::write(blob.join("data"), b"garbage").expect("blob");
            if index < GARBAGE_REPOSITORIES {
                let link = directory
                    .path()
                    .join(format!("docker/registry/v2/repositories/gone/{index}"))
                    .join("_layers/sha256")
                    .join(&hex);
                std::fs::create_dir_all(&link).expect("link directory");
                std::fs::write(link.join("link"), format!("sha256:{hex}")).expect("link");
            }
        }
        Store {
            directory,
            registry,
            tagged,
        }
    }

    fn storage(&self) -> &str {
        self.directory.path().to_str().expect("utf-8")
    }

    fn gc_command(&self) -> Command {
        let mut command = Command::new(BINARY);
        command
            .args(["run", "--storage", self.storage(), "--admin-endpoints"])
            .arg(format!("http://{}", self.registry.admin_addr))
            .args(["--grace", "0s", "--delete-untagged", "--lease-ttl"])
            .arg(humantime::format_duration(LEASE_TTL).to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        command
    }

    /// The blobs every tagged image needs, manifests included.
    fn kept_blobs(&self) -> usize {
        self.tagged
            .iter()
            .map(|(_, image)| image.blobs().count() + 1)
            .sum()
    }

    async fn assert_every_tagged_image_pulls(&self) {
        let base = format!("{}/v2/keep/app", self.registry.url);
        for (tag, image) in &self.tagged {
            let manifest = bytes_of(format!("{base}/manifests/{tag}")).await;
            assert_eq!(manifest, image.manifest.bytes, "the manifest of {tag}");
            for blob in image.blobs() {
                let bytes = bytes_of(format!("{base}/blobs/{}", blob.digest)).await;
                assert!(
                    bytes == blob.bytes,
                    "{} of {tag} came back different",
                    blob.digest
                );
            }
        }
    }

    async fn accepts_pushes(&self) -> bool {
        test_support::start_upload(&reqwest::Client::new(), &self.registry.url, "keep/app")
            .await
            .status()
            == 202
    }

    fn files_named_data(&self, below: &str) -> usize {
        data_files(&self.directory.path().join(below))
    }
}

/// The rest of a child's log.
type LogLines = std::io::Lines<std::io::BufReader<std::process::ChildStderr>>;

/// Reads `child`'s log up to the first line containing `marker`; returns
/// what it logged so far and the rest of the log.
fn read_log_until(child: &mut Child, marker: &str) -> (String, LogLines) {
    let log = std::io::BufReader::new(child.stderr.take().expect("piped standard error"));
    let mut lines = log.lines();
    let mut logged = String::new();
    for line in lines.by_ref() {
        let line = line.expect("a log line");
        logged.push_str(&line);
        logged.push('\n');
        if line.contains(marker) {
            break;
        }
    }
    (logged, lines)
}

/// Reads `child`'s log until it enters `phase`, sends it `SIG<name>`
/// there, and returns everything it logged until it ended.
fn signal_on_entering(mut child: Child, phase: &Phase, name: &str) -> String {
    let (mut logged, lines) = read_log_until(&mut child, phase.entered);
    match name {
        // At once: marking lasts a few milliseconds, less than starting `kill`.
        "KILL" => child.kill().expect("SIGKILL"),
        other => signal(&child, other),
    }
    // The pipe closes once the process is gone.
    for line in lines {
        logged.push_str(&line.expect("a log line"));
        logged.push('\n');
    }
    let status = child.wait().expect("the signalled gc-worker");
    assert!(
        logged.contains(phase.entered),
        "gc-worker ended ({status}) without entering the phase:\n{logged}"
    );
    assert!(
        !logged.contains(phase.next),
        "SIG{name} came after the phase had ended, or did not end it:\n{logged}"
    );
    assert!(
        !status.success(),
        "stopped by SIG{name}, gc-worker reports failure"
    );
    logged
}

/// gc-worker is sent `SIG<signal>` as it enters `phase`; then the registry,
/// the store and the next run must be as the module says.
async fn killed_while(phase: Phase, signal: &'static str) {
    let store = Store::with_garbage().await;
    let child = store
        .gc_command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gc-worker");
    let killed = tokio::task::spawn_blocking(move || {
        let logged = signal_on_entering(child, &phase, signal);
        (Instant::now(), logged, phase)
    });
    let (killed_at, logged, phase) = killed.await.expect("the log reader");

    if phase.leaves_trash {
        assert!(
            store.files_named_data("docker/registry/v2/blobs") > store.kept_blobs(),
            "killed while destroying the trash, some retired blobs are left:\n{logged}"
        );
    }
    if phase.inside_the_window {
        assert!(
            !store.accepts_pushes().await,
            "killed inside the window, the registry stays read-only until the lease runs out"
        );
    }
    while !store.accepts_pushes().await {
        assert!(
            killed_at.elapsed() < LEASE_TTL + Duration::from_secs(5),
            "still read-only long after the lease's time to live:\n{logged}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.assert_every_tagged_image_pulls().await;
    assert_store_sound(store.storage()).await;

    let next = store.gc_command().output().expect("the next gc-worker");
    assert!(
        next.status.success(),
        "the next run: {}",
        String::from_utf8_lossy(&next.stderr)
    );
    assert_eq!(
        store.files_named_data("docker/registry/v2/blobs"),
        store.kept_blobs(),
        "the next run freed every unreferenced blob"
    );
    assert_eq!(
        store.files_named_data("berth/trash"),
        0,
        "the next run destroyed every trash, its own and the killed run's"
    );
    store.assert_every_tagged_image_pulls().await;
    assert_store_sound(store.storage()).await;
    assert!(store.accepts_pushes().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_the_window() {
    killed_while(BEFORE_THE_WINDOW, "KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_marking() {
    killed_while(MARKING, "KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_sweeping() {
    killed_while(SWEEPING, "KILL").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_destroying_the_trash() {
    killed_while(DESTROYING_THE_TRASH, "KILL").await;
}

/// SIGTERM (an orchestrator stopping the pod) while the trash is destroyed
/// stops the run there: the trash is out of every reader's view, and the
/// next run destroys the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_while_destroying_the_trash() {
    killed_while(DESTROYING_THE_TRASH, "TERM").await;
}

/// Every file below `directory` that the registry serves, by path (not
/// what a collection retired, which it destroys after its window).
fn files_below(directory: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(directory).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().contains(".trash-") {
            continue;
        }
        if path.is_dir() {
            files.extend(files_below(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

fn signal(child: &Child, name: &str) {
    let sent = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(sent.success(), "SIG{name} sent");
}

/// A collector frozen mid-sweep (a cgroup freezer, SIGSTOP, swapping) and
/// thawed after its lease ran out must take nothing more out: the registry
/// was writable meanwhile, so whatever it removed could be what a push
/// just used. Its rename threads may wake before anything else in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_while_sweeping_takes_nothing_out_once_thawed_after_its_lease() {
    let store = Store::with_garbage().await;
    let mut child = store
        .gc_command()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gc-worker");
    let (mut logged, lines) = read_log_until(&mut child, "retiring a batch of blobs");
    signal(&child, "STOP");
    let frozen_at = Instant::now();
    while !store.accepts_pushes().await {
        assert!(
            frozen_at.elapsed() < LEASE_TTL + Duration::from_secs(5),
            "still read-only long after the frozen collector's lease ran out:\n{logged}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let registry = store.directory.path().join("docker/registry/v2");
    let before_the_thaw = files_below(&registry);
    assert!(
        files_below(&registry.join("blobs")).len() > store.kept_blobs() + 1000,
        "frozen with much left to sweep:\n{logged}"
    );

    signal(&child, "CONT");
    let rest: Vec<String> = lines.map(|line| line.expect("a log line")).collect();
    logged.push_str(&rest.join("\n"));
    let status = child.wait().expect("the thawed gc-worker");
    assert!(
        !status.success(),
        "the lease ran out; the run failed:\n{logged}"
    );
    let after_the_thaw = files_below(&registry);
    let taken: Vec<_> = before_the_thaw
        .iter()
        .filter(|path| !after_the_thaw.contains(path))
        .collect();
    assert!(
        taken.is_empty(),
        "{} objects were taken out after the thaw, e.g. {:?}:\n{logged}",
        taken.len(),
        taken.first()
    );
    store.assert_every_tagged_image_pulls().await;
    assert_store_sound(store.storage()).await;
}
