//! registry-api replicas (the binary, as operators run it) killed with
//! SIGKILL in the middle of a push, on a file store and on S3
//! (`moto_server`): no partial blob ever becomes visible, a monolithic
//! push retried after the restart succeeds, and a chunked upload whose
//! replica died mid-`PATCH` resumes on another replica from the range that
//! one reports, into a blob that verifies.

use std::process::{Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use registry_storage::Store;
use test_support::{Blob, ChildServer, eventually, free_port, random_bytes};
use tokio::sync::mpsc::Sender;

const BINARY: &str = env!("CARGO_BIN_EXE_registry-api");
const REPOSITORY: &str = "crash/app";

/// A store both replicas share, and what keeps it alive.
enum Backend {
    Files(tempfile::TempDir),
    S3 { storage: String, _moto: ChildServer },
}

impl Backend {
    fn files() -> Self {
        Backend::Files(tempfile::tempdir().expect("temporary directory"))
    }

    /// `None` where `moto_server` is missing outside CI.
    async fn s3(bucket: &str) -> Option<Self> {
        let (moto, storage) = test_support::start_moto(bucket, "registry").await?;
        Some(Backend::S3 {
            storage,
            _moto: moto,
        })
    }

    fn storage(&self) -> String {
        match self {
            Backend::Files(directory) => directory.path().to_str().expect("utf-8").to_owned(),
            Backend::S3 { storage, .. } => storage.clone(),
        }
    }

    fn store(&self) -> Store {
        Store::open(&self.storage()).expect("the store")
    }

    /// Whether more than `acknowledged` bytes of an upload in progress
    /// have reached the store: on files, the session's data file has grown
    /// past them; on S3, a multipart upload has started.
    async fn holds_unacknowledged_bytes(&self, acknowledged: u64) -> bool {
        match self {
            Backend::Files(directory) => {
                let uploads = directory
                    .path()
                    .join("docker/registry/v2/repositories")
                    .join(REPOSITORY)
                    .join("_uploads");
                file_sizes(&uploads)
                    .into_iter()
                    .any(|size| size > acknowledged)
            }
            Backend::S3 { .. } => !self
                .store()
                .incomplete_multipart_uploads()
                .await
                .expect("listing multipart uploads")
                .is_empty(),
        }
    }

    /// Fails the test if any blob is stored.
    async fn assert_no_blob_stored(&self) {
        let blobs = self.store().scan_blobs().await.expect("listing blobs");
        assert!(blobs.is_empty(), "a partial blob is stored: {blobs:?}");
    }
}

/// The sizes of the files below `dir`.
fn file_sizes(dir: &std::path::Path) -> Vec<u64> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                file_sizes(&path)
            } else {
                entry
                    .metadata()
                    .map(|meta| meta.len())
                    .into_iter()
                    .collect()
            }
        })
        .collect()
}

/// A registry-api process over `storage` on fresh loopback ports.
async fn replica(storage: &str) -> ChildServer {
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(BINARY);
    command
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", storage)
        .stdin(Stdio::null());
    ChildServer::spawn(command, port, "/healthz", "registry-api").await
}

/// A request body the test feeds piece by piece.
fn fed_body() -> (Sender<std::io::Result<Bytes>>, reqwest::Body) {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    (sender, reqwest::Body::wrap_stream(stream))
}

/// Feeds `bytes` in 1 MiB pieces; stops early if the server is gone.
async fn feed(sender: &Sender<std::io::Result<Bytes>>, bytes: Bytes) {
    for start in (0..bytes.len()).step_by(1 << 20) {
        let piece = bytes.slice(start..(start + (1 << 20)).min(bytes.len()));
        if sender.send(Ok(piece)).await.is_err() {
            return;
        }
    }
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("request").status().as_u16()
}

async fn a_monolithic_push_killed_midway_leaves_nothing(backend: Backend) {
    let storage = backend.storage();
    let content = Blob::new("application/octet-stream", random_bytes(24 << 20));
    let first = replica(&storage).await;
    let url = format!(
        "{}/v2/{REPOSITORY}/blobs/uploads/?digest={}",
        first.url, content.digest
    );
    let (sender, body) = fed_body();
    let push = tokio::spawn(reqwest::Client::new().post(url).body(body).send());
    feed(&sender, content.bytes.slice(..14 << 20)).await;
    eventually(
        "part of the push reaching the store",
        Duration::from_secs(20),
        async || backend.holds_unacknowledged_bytes(0).await,
    )
    .await;
    first.stop();
    drop(sender);
    let cut = push.await.expect("the push task");
    assert!(
        cut.is_err() || !cut.expect("answer").status().is_success(),
        "a push cut off by a crash is never acknowledged"
    );

    let restarted = replica(&storage).await;
    let client = reqwest::Client::new();
    let blob_url = format!("{}/v2/{REPOSITORY}/blobs/{}", restarted.url, content.digest);
    assert_eq!(status_of(client.head(&blob_url)).await, 404);
    assert_eq!(status_of(client.get(&blob_url)).await, 404);
    backend.assert_no_blob_stored().await;
    let catalog: serde_json::Value = client
        .get(format!("{}/v2/_catalog", restarted.url))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog JSON");
    assert_eq!(catalog["repositories"], serde_json::json!([]), "{catalog}");

    let retried = client
        .post(format!(
            "{}/v2/{REPOSITORY}/blobs/uploads/?digest={}",
            restarted.url, content.digest
        ))
        .body(content.bytes.clone())
        .send()
        .await
        .expect("the retried push");
    assert_eq!(retried.status(), 201);
    let pulled = client.get(&blob_url).send().await.expect("GET");
    assert_eq!(pulled.status(), 200);
    assert!(
        pulled.bytes().await.expect("body") == content.bytes,
        "the retried push stored the blob exactly"
    );
}

async fn a_chunked_upload_resumes_on_another_replica(backend: Backend) {
    let storage = backend.storage();
    let content = Blob::new("application/octet-stream", random_bytes(24 << 20));
    let (first_chunk, second_chunk_end) = (3 << 20, 19 << 20);
    let (dying, surviving) = (replica(&storage).await, replica(&storage).await);
    let client = reqwest::Client::new();
    let location = test_support::upload_first_chunk(
        &client,
        &dying.url,
        REPOSITORY,
        content.bytes.slice(..first_chunk),
    )
    .await;
    let path = location
        .strip_prefix(&dying.url)
        .expect("the session on the first replica")
        .to_owned();

    let (sender, body) = fed_body();
    let patch = tokio::spawn(
        client
            .patch(&location)
            .header(
                "content-range",
                format!("{first_chunk}-{}", second_chunk_end - 1),
            )
            .body(body)
            .send(),
    );
    feed(&sender, content.bytes.slice(first_chunk..13 << 20)).await;
    eventually(
        "part of the second chunk reaching the store",
        Duration::from_secs(20),
        async || backend.holds_unacknowledged_bytes(first_chunk as u64).await,
    )
    .await;
    dying.stop();
    drop(sender);
    let cut = patch.await.expect("the PATCH task");
    assert!(
        cut.is_err() || !cut.expect("answer").status().is_success(),
        "a chunk cut off by a crash is never acknowledged"
    );

    let progress = client
        .get(format!("{}{path}", surviving.url))
        .send()
        .await
        .expect("the upload's status");
    assert_eq!(progress.status(), 204);
    let range = progress.headers()["range"]
        .to_str()
        .expect("Range")
        .to_owned();
    let resume_at: usize = range
        .strip_prefix("0-")
        .and_then(|last| last.parse::<usize>().ok())
        .map(|last| last + 1)
        .unwrap_or_else(|| panic!("a Range of 0-<last byte>: {range}"));
    assert!(
        (first_chunk..=13 << 20).contains(&resume_at),
        "the session holds the acknowledged chunk and at most what was sent after it: {range}"
    );
    backend.assert_no_blob_stored().await;

    let rest = client
        .patch(format!("{}{path}", surviving.url))
        .header(
            "content-range",
            format!("{resume_at}-{}", content.bytes.len() - 1),
        )
        .body(content.bytes.slice(resume_at..))
        .send()
        .await
        .expect("the resumed PATCH");
    assert_eq!(
        rest.status(),
        202,
        "{}",
        rest.text().await.unwrap_or_default()
    );
    let closed = client
        .put(format!("{}{path}?digest={}", surviving.url, content.digest))
        .send()
        .await
        .expect("close");
    assert_eq!(
        closed.status(),
        201,
        "{}",
        closed.text().await.unwrap_or_default()
    );
    let pulled = client
        .get(format!(
            "{}/v2/{REPOSITORY}/blobs/{}",
            surviving.url, content.digest
        ))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        pulled.headers()["docker-content-digest"],
        content.digest.to_string().as_str()
    );
    assert!(
        pulled.bytes().await.expect("body") == content.bytes,
        "the resumed upload verifies byte for byte"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monolithic_push_killed_midway_leaves_nothing_on_files() {
    a_monolithic_push_killed_midway_leaves_nothing(Backend::files()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monolithic_push_killed_midway_leaves_nothing_on_s3() {
    let Some(backend) = Backend::s3("berth-killed-push").await else {
        return;
    };
    a_monolithic_push_killed_midway_leaves_nothing(backend).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_resumes_on_another_replica_on_files() {
    a_chunked_upload_resumes_on_another_replica(Backend::files()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_resumes_on_another_replica_on_s3() {
    let Some(backend) = Backend::s3("berth-killed-chunk").await else {
        return;
    };
    a_chunked_upload_resumes_on_another_replica(backend).await;
}
