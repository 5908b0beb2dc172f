//! Several replicas over one store, the S3 backend, and uploads that are cut
//! off: what must hold when the store is the only shared state.

use bytes::Bytes;
use futures::StreamExt;
use test_support::{Blob, Image, TestRegistry, push_image, random_bytes, start_moto};

/// Pushes `content` as a chunked upload, sending each chunk to the next
/// replica in turn, and closes it on the last one.
async fn chunked_upload_across(
    replicas: &[&TestRegistry],
    repository: &str,
    content: &Blob,
    chunk: usize,
) {
    let client = reqwest::Client::new();
    let started = test_support::start_upload(&client, &replicas[0].url, repository).await;
    assert_eq!(started.status(), 202);
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();
    let mut offset = 0;
    for (number, piece) in content.bytes.chunks(chunk).enumerate() {
        let replica = replicas[number % replicas.len()];
        let end = offset + piece.len() - 1;
        let patched = client
            .patch(format!("{}{location}", replica.url))
            .header("content-range", format!("{offset}-{end}"))
            .body(Bytes::copy_from_slice(piece))
            .send()
            .await
            .expect("upload chunk");
        assert_eq!(patched.status(), 202, "chunk at {offset}");
        assert_eq!(patched.headers()["range"], format!("0-{end}").as_str());
        offset = end + 1;
    }
    let last = replicas[replicas.len() - 1];
    let finished = client
        .put(format!("{}{location}?digest={}", last.url, content.digest))
        .send()
        .await
        .expect("upload close");
    assert_eq!(finished.status(), 201);
}

async fn fetch(url: String) -> Bytes {
    let response = reqwest::get(&url).await.expect("GET");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("body")
}

#[tokio::test]
async fn two_replicas_over_one_store_are_one_registry() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let (a, b) = (
        TestRegistry::start(storage).await,
        TestRegistry::start(storage).await,
    );
    let content = Blob::new("application/octet-stream", random_bytes(5 * 1000 + 3));
    chunked_upload_across(&[&a, &b], "shared/repo", &content, 1000).await;
    for replica in [&a, &b] {
        let body = fetch(format!(
            "{}/v2/shared/repo/blobs/{}",
            replica.url, content.digest
        ))
        .await;
        assert_eq!(body, content.bytes);
    }

    let image = Image::random(1, 100);
    push_image(&reqwest::Client::new(), &a.url, "shared/repo", "v1", &image).await;
    let manifest = fetch(format!("{}/v2/shared/repo/manifests/v1", b.url)).await;
    assert_eq!(manifest, image.manifest.bytes);
}

#[tokio::test]
async fn an_upload_cut_off_midway_leaves_nothing_visible() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    let content = Blob::new("application/octet-stream", random_bytes(12 * 1024 * 1024));
    let pieces: Vec<std::io::Result<Bytes>> = vec![
        Ok(content.bytes.slice(..9 * 1024 * 1024)),
        Err(std::io::Error::other("client gave up")),
    ];
    let body = reqwest::Body::wrap_stream(futures::stream::iter(pieces));
    let client = reqwest::Client::new();
    let cut = client
        .post(format!(
            "{}/v2/r/blobs/uploads/?digest={}",
            registry.url, content.digest
        ))
        .body(body)
        .send()
        .await;
    assert!(cut.is_err() || !cut.expect("response").status().is_success());

    let started = test_support::start_upload(&client, &registry.url, "r").await;
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();
    let first = client
        .patch(format!("{}{location}", registry.url))
        .body(content.bytes.slice(..1000))
        .send()
        .await
        .expect("first chunk");
    assert_eq!(first.status(), 202);
    let pieces: Vec<std::io::Result<Bytes>> = vec![
        Ok(content.bytes.slice(1000..2000)),
        Err(std::io::Error::other("client gave up")),
    ];
    let _ = client
        .patch(format!("{}{location}", registry.url))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await;
    let status = client
        .get(format!("{}{location}", registry.url))
        .send()
        .await
        .expect("upload status");
    assert_eq!(
        status.headers()["range"],
        "0-999",
        "the cut chunk did not count"
    );

    let blobs = store.path().join("docker/registry/v2/blobs");
    let files: Vec<_> = walk(&blobs);
    assert!(
        files.is_empty(),
        "nothing may appear under blobs/: {files:?}"
    );
    let head = client
        .head(format!("{}/v2/r/blobs/{}", registry.url, content.digest))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 404);
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[tokio::test]
async fn the_s3_backend_serves_the_whole_api() {
    let Some((_moto, storage)) = start_moto("berth-test", "registry/root").await else {
        return;
    };
    let (a, b) = (
        TestRegistry::start(&storage).await,
        TestRegistry::start(&storage).await,
    );
    let client = reqwest::Client::new();

    let image = Image::random(2, 64 * 1024);
    push_image(&client, &a.url, "s3/app", "v1", &image).await;
    let large = Blob::new("application/octet-stream", random_bytes(20 * 1024 * 1024));
    chunked_upload_across(&[&a, &b], "s3/app", &large, 12 * 1024 * 1024).await;

    let manifest = fetch(format!("{}/v2/s3/app/manifests/v1", b.url)).await;
    assert_eq!(manifest, image.manifest.bytes);
    for layer in &image.layers {
        assert_eq!(
            fetch(format!("{}/v2/s3/app/blobs/{}", b.url, layer.digest)).await,
            layer.bytes
        );
    }
    let mut stream = reqwest::get(format!("{}/v2/s3/app/blobs/{}", a.url, large.digest))
        .await
        .expect("large GET")
        .bytes_stream();
    let mut received = Vec::with_capacity(large.bytes.len());
    while let Some(piece) = stream.next().await {
        received.extend_from_slice(&piece.expect("large body"));
    }
    assert!(
        received == large.bytes,
        "the large blob came back different"
    );

    let catalog: serde_json::Value = client
        .get(format!("{}/v2/_catalog", b.url))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog JSON");
    assert_eq!(catalog["repositories"], serde_json::json!(["s3/app"]));
    let deleted = client
        .delete(format!("{}/v2/s3/app/manifests/v1", b.url))
        .send()
        .await
        .expect("delete tag");
    assert_eq!(deleted.status(), 202);
    let tags: serde_json::Value = client
        .get(format!("{}/v2/s3/app/tags/list", a.url))
        .send()
        .await
        .expect("tags")
        .json()
        .await
        .expect("tags JSON");
    assert_eq!(tags["tags"], serde_json::json!([]));
}

/// A body that arrives slowly, so two requests carrying it overlap.
fn slow_body(bytes: Bytes) -> reqwest::Body {
    let pieces: Vec<std::io::Result<Bytes>> = bytes
        .chunks(bytes.len().div_ceil(4))
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    let stream = futures::stream::iter(pieces).then(|piece| async move {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        piece
    });
    reqwest::Body::wrap_stream(stream)
}

/// A client's retry of a chunk reaches another replica while the original
/// is still being written: one of them is stored, the other answered 409,
/// and the session carries on, on S3 as on a file store.
async fn a_racing_retry_leaves_the_session_usable(storage: &str) {
    let (a, b) = (
        TestRegistry::start(storage).await,
        TestRegistry::start(storage).await,
    );
    let client = reqwest::Client::new();
    let started = test_support::start_upload(&client, &a.url, "race/chunks").await;
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();
    let first = Bytes::from(random_bytes(64 * 1024));
    let patch = |replica: &TestRegistry| {
        client
            .patch(format!("{}{location}", replica.url))
            .header("content-range", format!("0-{}", first.len() - 1))
            .body(slow_body(first.clone()))
            .send()
    };
    let (original, retry) = tokio::join!(patch(&a), patch(&b));
    let mut statuses = [
        original.expect("original").status().as_u16(),
        retry.expect("retry").status().as_u16(),
    ];
    statuses.sort_unstable();
    assert!(
        statuses == [202, 409] || statuses == [202, 416],
        "one chunk is stored, the other refused: {statuses:?}"
    );
    let progress = client
        .get(format!("{}{location}", b.url))
        .send()
        .await
        .expect("status");
    assert_eq!(progress.status(), 204);
    assert_eq!(
        progress.headers()["range"],
        format!("0-{}", first.len() - 1).as_str()
    );
    let rest = Bytes::from(random_bytes(1000));
    let whole = Blob::new("application/octet-stream", [first, rest.clone()].concat());
    let closed = client
        .put(format!("{}{location}?digest={}", a.url, whole.digest))
        .body(rest)
        .send()
        .await
        .expect("close");
    assert_eq!(
        closed.status(),
        201,
        "{}",
        closed.text().await.unwrap_or_default()
    );
    let body = fetch(format!("{}/v2/race/chunks/blobs/{}", b.url, whole.digest)).await;
    assert_eq!(body, whole.bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racing_retry_leaves_the_session_usable_on_files() {
    let store = tempfile::tempdir().expect("temporary directory");
    a_racing_retry_leaves_the_session_usable(store.path().to_str().expect("utf-8")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_racing_retry_leaves_the_session_usable_on_s3() {
    let Some((_moto, storage)) = start_moto("berth-race", "registry").await else {
        return;
    };
    a_racing_retry_leaves_the_session_usable(&storage).await;
}
