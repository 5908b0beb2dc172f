//! A file store that fills up: registry-api (the binary) runs in a mount
//! namespace of its own over a 16 MiB tmpfs. The push that does not fit is
//! answered 507 with the spec's JSON error body saying the store is full,
//! nothing of it becomes visible, earlier images still pull, `/healthz`
//! stays 200 (pulls work, so the edge must keep routing), and once space
//! is freed pushes succeed again without a restart. Needs root (a mount
//! namespace); skipped elsewhere unless `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use bytes::Bytes;
use registry_core::Digest;
use test_support::{Blob, ChildServer, Image, free_port, is_root, require_tool, with_tmpfs};

const BINARY: &str = env!("CARGO_BIN_EXE_registry-api");
const REPOSITORY: &str = "full/app";
/// The tmpfs the store lives on.
const STORE_SIZE: &str = "16m";
/// Taken out of the tmpfs before the pushes, and given back to free space.
const FILLER_BYTES: usize = 5 << 20;
/// Each pushed image's one layer.
const LAYER_BYTES: usize = 3 << 20;

/// Whether the test can make a mount namespace here; prints why not.
///
/// # Panics
/// Where it cannot and `CI=true`.
fn mount_namespaces_available() -> bool {
    if require_tool("unshare").is_none() {
        return false;
    }
    if is_root() {
        return true;
    }
    assert!(
        !std::env::var("CI").is_ok_and(|value| value == "true"),
        "the full-store test needs root in CI (a mount namespace with a small tmpfs)"
    );
    eprintln!("SKIPPED: a mount namespace with a small tmpfs needs root");
    false
}

/// registry-api over a store on a tmpfs of its own, and the store's path
/// as this process sees it (through the server's `/proc/<pid>/root`).
async fn registry_on_a_small_tmpfs(directory: &Path) -> (ChildServer, PathBuf) {
    let store = directory.join("store");
    std::fs::create_dir_all(&store).expect("the mount point");
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new(BINARY);
    command
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", &store)
        .stdin(Stdio::null());
    let wrapped = with_tmpfs(&command, &store, STORE_SIZE);
    let server = ChildServer::spawn(wrapped, port, "/healthz", "registry-api").await;
    let seen_from_here = PathBuf::from(format!("/proc/{}/root", server.pid()))
        .join(store.strip_prefix("/").expect("an absolute path"));
    (server, seen_from_here)
}

/// A status and the JSON error body of a refused request.
struct Refusal {
    status: u16,
    body: serde_json::Value,
}

/// Pushes `image` (each blob in one `POST ?digest=`, then the manifest);
/// the first refusal, if any.
async fn push(client: &reqwest::Client, base: &str, tag: &str, image: &Image) -> Option<Refusal> {
    let mut requests = image
        .blobs()
        .map(|blob| {
            client
                .post(format!(
                    "{base}/v2/{REPOSITORY}/blobs/uploads/?digest={}",
                    blob.digest
                ))
                .body(blob.bytes.clone())
        })
        .collect::<Vec<_>>();
    requests.push(
        client
            .put(format!("{base}/v2/{REPOSITORY}/manifests/{tag}"))
            .header("content-type", &image.manifest.media_type)
            .body(image.manifest.bytes.clone()),
    );
    for request in requests {
        let response = request.send().await.expect("push request");
        let status = response.status().as_u16();
        if status != 201 {
            let body = response.json().await.unwrap_or(serde_json::Value::Null);
            return Some(Refusal { status, body });
        }
    }
    None
}

async fn pull(client: &reqwest::Client, url: String) -> (u16, Bytes) {
    let response = client.get(&url).send().await.expect("GET");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body"))
}

async fn assert_pulls(client: &reqwest::Client, base: &str, tag: &str, image: &Image) {
    let (status, manifest) = pull(client, format!("{base}/v2/{REPOSITORY}/manifests/{tag}")).await;
    assert_eq!(status, 200, "the manifest of {tag}");
    assert_eq!(manifest, image.manifest.bytes);
    for blob in image.blobs() {
        let (status, bytes) = pull(
            client,
            format!("{base}/v2/{REPOSITORY}/blobs/{}", blob.digest),
        )
        .await;
        assert_eq!(status, 200, "{} of {tag}", blob.digest);
        assert!(
            bytes == blob.bytes,
            "{} of {tag} came back different",
            blob.digest
        );
    }
}

/// Fails the test unless every blob in the store holds exactly the bytes
/// its name says: nothing partial was ever published.
fn assert_every_blob_whole(store: &Path) {
    let blobs = store.join("docker/registry/v2/blobs/sha256");
    for file in test_support::files_under(&blobs) {
        let hex = file
            .parent()
            .and_then(Path::file_name)
            .and_then(|name| name.to_str())
            .expect("blobs/sha256/<hex[0:2]>/<hex>/data");
        let bytes = std::fs::read(blobs.join(&file)).expect("a blob");
        assert_eq!(
            Digest::sha256_of(&bytes).hex(),
            hex,
            "{} holds other bytes than its name says",
            file.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_push_that_does_not_fit_is_refused_cleanly_and_pushes_resume_once_space_is_freed() {
    if !mount_namespaces_available() {
        return;
    }
    let directory = tempfile::tempdir().expect("temporary directory");
    let (server, store) = registry_on_a_small_tmpfs(directory.path()).await;
    let filler = store.join("filler");
    std::fs::write(&filler, vec![7u8; FILLER_BYTES]).expect("taking space");
    let client = reqwest::Client::new();

    let mut pushed = Vec::new();
    let (refused_image, refusal) = loop {
        let image = Image::random(1, LAYER_BYTES);
        let tag = format!("v{}", pushed.len());
        match push(&client, &server.url, &tag, &image).await {
            None => pushed.push((tag, image)),
            Some(refusal) => break (image, refusal),
        }
        assert!(pushed.len() < 16, "a {STORE_SIZE} store never filled up");
    };
    assert!(
        !pushed.is_empty(),
        "the store was full before the first push"
    );
    assert_eq!(refusal.status, 507, "{}", refusal.body);
    let error = &refusal.body["errors"][0];
    assert_eq!(error["code"], "UNKNOWN", "{}", refusal.body);
    let message = error["message"].as_str().expect("a message");
    assert!(message.contains("store is full"), "{message}");

    let layer = &refused_image.layers[0];
    let head = client
        .head(format!(
            "{}/v2/{REPOSITORY}/blobs/{}",
            server.url, layer.digest
        ))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status(), 404, "nothing of the refused push is visible");
    assert_every_blob_whole(&store);
    let uploads = store.join(format!(
        "docker/registry/v2/repositories/{REPOSITORY}/_uploads"
    ));
    assert!(
        !uploads.exists() || test_support::files_under(&uploads).is_empty(),
        "the refused upload left its bytes behind"
    );
    for (tag, image) in &pushed {
        assert_pulls(&client, &server.url, tag, image).await;
    }
    let health = client
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200, "a full store still serves pulls");

    std::fs::remove_file(&filler).expect("freeing space");
    let retried = push(&client, &server.url, "after", &refused_image).await;
    assert!(
        retried.is_none(),
        "the push that did not fit, once space was freed: {:?}",
        retried.map(|refusal| refusal.body)
    );
    assert_pulls(&client, &server.url, "after", &refused_image).await;
    let small = Blob::new("application/octet-stream", test_support::random_bytes(1000));
    test_support::push_blob(&client, &server.url, REPOSITORY, &small).await;
    assert_every_blob_whole(&store);
}
