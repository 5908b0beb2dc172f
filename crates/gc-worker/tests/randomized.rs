//! The proof of the collector's safety: clients push (nested repositories,
//! multi-arch indexes, artifacts with a subject, cross-repository mounts,
//! chunked uploads hopping between two replicas), pull, and delete tags and
//! manifests, while `gc-worker --delete-untagged --grace 0s` collects again
//! and again. Every push a client was told is stored stays whole: no pull
//! of it ever fails, it pulls byte for byte at the end, and
//! `gc-worker fsck` finds nothing broken. On a file store, and on S3 with
//! every read of the store slowed down.
//!
//! The operations are drawn from a seed printed at the start;
//! `BERTH_RANDOMIZED_SEED=<seed>` draws the same ones again (the
//! interleaving with the collector still varies).

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, admin, assert_store_sound, config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{RequestBuilder, Response};
use test_support::{Blob, Fault, FaultProxy, Image, Index, TestRegistry};
use tokio_util::sync::CancellationToken;

/// Clients pushing at once, and what each does.
const CLIENTS: usize = 3;
const OPERATIONS: usize = 30;
const REPOSITORIES: &[&str] = &["team", "team/app", "team/app/web", "solo"];

/// What a push stored: a manifest, the blobs it names and the child
/// manifests it lists (pushed by digest).
#[derive(Clone, Debug)]
struct Tree {
    manifest: Blob,
    blobs: Vec<Blob>,
    children: Vec<Tree>,
}

impl From<&Image> for Tree {
    fn from(image: &Image) -> Self {
        Tree {
            manifest: image.manifest.clone(),
            blobs: image.blobs().cloned().collect(),
            children: Vec::new(),
        }
    }
}

/// A tag a client was told is stored.
#[derive(Clone, Debug)]
struct Tagged {
    repository: &'static str,
    tag: String,
    tree: Tree,
}

/// An artifact whose subject was tagged when it was pushed.
#[derive(Clone, Debug)]
struct Referrer {
    repository: &'static str,
    subject: registry_core::Digest,
    artifact: Tree,
}

#[derive(Debug, Default)]
struct Counts {
    pushes: AtomicUsize,
    pulls: AtomicUsize,
    deletes: AtomicUsize,
    refused: AtomicUsize,
    collections: AtomicUsize,
}

/// A client of both replicas that retries what a read-only window refused,
/// as docker and podman do.
struct Client {
    http: reqwest::Client,
    replicas: [String; 2],
    counts: &'static Counts,
}

impl Client {
    fn base(&self, rng: &mut StdRng) -> &str {
        &self.replicas[rng.random_range(0..2)]
    }

    /// Sends the request `make` builds until it is not refused with 503.
    async fn send(&self, make: impl Fn() -> RequestBuilder) -> Response {
        loop {
            let response = make().send().await.expect("request");
            if response.status() != 503 {
                return response;
            }
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    }

    /// Stores a blob: monolithic, chunked across both replicas, or mounted
    /// from `mount_from` (falling back to a normal upload).
    async fn push_blob(
        &self,
        rng: &mut StdRng,
        repository: &str,
        blob: &Blob,
        mount_from: Option<&str>,
    ) {
        let base = self.base(rng).to_owned();
        if let Some(from) = mount_from {
            let url = format!(
                "{base}/v2/{repository}/blobs/uploads/?mount={}&from={from}",
                blob.digest
            );
            let mounted = self.send(|| self.http.post(&url)).await;
            if mounted.status() == 201 {
                return;
            }
            assert_eq!(mounted.status(), 202, "mount of {}", blob.digest);
        }
        if rng.random_bool(0.5) {
            let url = format!(
                "{base}/v2/{repository}/blobs/uploads/?digest={}",
                blob.digest
            );
            let stored = self
                .send(|| self.http.post(&url).body(blob.bytes.clone()))
                .await;
            assert_eq!(stored.status(), 201, "monolithic push of {}", blob.digest);
            return;
        }
        let start = format!("{base}/v2/{repository}/blobs/uploads/");
        let started = self.send(|| self.http.post(&start)).await;
        assert_eq!(started.status(), 202);
        let mut location = started.headers()["location"]
            .to_str()
            .expect("text")
            .to_owned();
        let middle = blob.bytes.len() / 2;
        for (index, piece) in [&blob.bytes[..middle], &blob.bytes[middle..]]
            .into_iter()
            .enumerate()
        {
            let replica = &self.replicas[index % 2];
            let offset = if index == 0 { 0 } else { middle };
            let range = format!("{offset}-{}", offset + piece.len() - 1);
            let url = format!("{replica}{location}");
            let piece = Bytes::copy_from_slice(piece);
            let patched = self
                .send(|| {
                    self.http
                        .patch(&url)
                        .header("content-range", &range)
                        .body(piece.clone())
                })
                .await;
            assert_eq!(patched.status(), 202, "chunk {index} of {}", blob.digest);
            location = patched.headers()["location"]
                .to_str()
                .expect("text")
                .to_owned();
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{location}{separator}digest={}",
            self.replicas[0], blob.digest
        );
        let closed = self.send(|| self.http.put(&url)).await;
        let status = closed.status();
        let body = closed.text().await.unwrap_or_default();
        assert_eq!(status, 201, "closing the upload of {}: {body}", blob.digest);
    }

    /// Pushes a tree under `reference`; when a collection took something
    /// it needs between its parts (grace is 0), pushes it all again.
    async fn push_tree(
        &self,
        rng: &mut StdRng,
        repository: &str,
        reference: &str,
        tree: &Tree,
        mount_from: Option<&str>,
    ) {
        for _attempt in 0..20 {
            for child in &tree.children {
                Box::pin(self.push_tree(
                    rng,
                    repository,
                    &child.manifest.digest.to_string(),
                    child,
                    None,
                ))
                .await;
            }
            for blob in &tree.blobs {
                self.push_blob(rng, repository, blob, mount_from).await;
            }
            let url = format!("{}/v2/{repository}/manifests/{reference}", self.base(rng));
            let stored = self
                .send(|| {
                    self.http
                        .put(&url)
                        .header("content-type", &tree.manifest.media_type)
                        .body(tree.manifest.bytes.clone())
                })
                .await;
            let status = stored.status();
            let body = stored.text().await.unwrap_or_default();
            if status == 201 {
                self.counts.pushes.fetch_add(1, Ordering::Relaxed);
                return;
            }
            assert!(
                status == 400 && body.contains("MANIFEST_BLOB_UNKNOWN"),
                "pushing {repository}:{reference}: {status} {body}"
            );
        }
        panic!("{repository}:{reference} could not be pushed in 20 attempts");
    }

    /// Pulls a tree as a client would; every part must be there.
    async fn pull_tree(&self, base: &str, repository: &str, reference: &str, tree: &Tree) {
        let manifest = self
            .http
            .get(format!("{base}/v2/{repository}/manifests/{reference}"))
            .header("accept", &tree.manifest.media_type)
            .send()
            .await
            .expect("GET");
        assert_eq!(
            manifest.status(),
            200,
            "{repository}:{reference} lost its manifest"
        );
        assert_eq!(manifest.bytes().await.expect("body"), tree.manifest.bytes);
        for blob in &tree.blobs {
            let url = format!("{base}/v2/{repository}/blobs/{}", blob.digest);
            let pulled = self.http.get(&url).send().await.expect("GET");
            assert_eq!(
                pulled.status(),
                200,
                "{repository}:{reference} lost blob {}",
                blob.digest
            );
            assert_eq!(pulled.bytes().await.expect("body"), blob.bytes);
        }
        for child in &tree.children {
            Box::pin(self.pull_tree(base, repository, &child.manifest.digest.to_string(), child))
                .await;
        }
        self.counts.pulls.fetch_add(1, Ordering::Relaxed);
    }
}

fn small_image(rng: &mut StdRng, architecture: &str) -> Image {
    let mut image = Image::random_for(architecture);
    if rng.random_bool(0.5) {
        image = Image::random(rng.random_range(1..3), rng.random_range(256..4096));
    }
    image
}

/// One client's run: its own tags (so the model is exact), shared
/// repositories.
async fn client_run(
    client: &Client,
    number: usize,
    seed: u64,
    tagged: &Mutex<Vec<Tagged>>,
    referrers: &Mutex<Vec<Referrer>>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(number as u64));
    let mine = |entry: &Tagged| entry.tag.starts_with(&format!("c{number}-"));
    for operation in 0..OPERATIONS {
        let repository = REPOSITORIES[rng.random_range(0..REPOSITORIES.len())];
        let tag = format!("c{number}-{}", rng.random_range(0..6));
        let own: Vec<Tagged> = tagged
            .lock()
            .expect("model")
            .iter()
            .filter(|entry| mine(entry))
            .cloned()
            .collect();
        match rng.random_range(0..100) {
            0..30 => {
                let image = small_image(&mut rng, "amd64");
                let tree = Tree::from(&image);
                client
                    .push_tree(&mut rng, repository, &tag, &tree, None)
                    .await;
                record(tagged, repository, tag, tree);
            }
            30..40 => {
                let index = Index::new(vec![
                    small_image(&mut rng, "amd64"),
                    small_image(&mut rng, "arm64"),
                ]);
                let tree = Tree {
                    manifest: index.manifest.clone(),
                    blobs: Vec::new(),
                    children: index.images.iter().map(Tree::from).collect(),
                };
                client
                    .push_tree(&mut rng, repository, &tag, &tree, None)
                    .await;
                record(tagged, repository, tag, tree);
            }
            40..50 if !own.is_empty() => {
                let subject = &own[rng.random_range(0..own.len())];
                let artifact =
                    Image::artifact("application/vnd.example.sbom", &subject.tree.manifest);
                let tree = Tree::from(&artifact);
                let reference = artifact.manifest.digest.to_string();
                client
                    .push_tree(&mut rng, subject.repository, &reference, &tree, None)
                    .await;
                referrers.lock().expect("model").push(Referrer {
                    repository: subject.repository,
                    subject: subject.tree.manifest.digest.clone(),
                    artifact: tree,
                });
            }
            50..60 if !own.is_empty() => {
                let source = &own[rng.random_range(0..own.len())];
                let Some(layer) = source.tree.blobs.last().cloned() else {
                    continue;
                };
                let config = Blob::new(
                    "application/vnd.oci.image.config.v1+json",
                    format!("{{\"n\":{operation}}}"),
                );
                let manifest = serde_json::json!({
                    "schemaVersion": 2,
                    "mediaType": registry_core::media_types::OCI_MANIFEST,
                    "config": config.descriptor(),
                    "layers": [layer.descriptor()],
                });
                let tree = Tree {
                    manifest: Blob::new(
                        registry_core::media_types::OCI_MANIFEST,
                        manifest.to_string(),
                    ),
                    blobs: vec![config, layer],
                    children: Vec::new(),
                };
                client
                    .push_tree(&mut rng, repository, &tag, &tree, Some(source.repository))
                    .await;
                record(tagged, repository, tag, tree);
            }
            60..70 if !own.is_empty() => {
                let victim = own[rng.random_range(0..own.len())].clone();
                forget(tagged, |entry| {
                    entry.repository == victim.repository && entry.tag == victim.tag
                });
                let url = format!(
                    "{}/v2/{}/manifests/{}",
                    client.base(&mut rng),
                    victim.repository,
                    victim.tag
                );
                let deleted = client.send(|| client.http.delete(&url)).await;
                assert_eq!(
                    deleted.status(),
                    202,
                    "untagging {}:{}",
                    victim.repository,
                    victim.tag
                );
                client.counts.deletes.fetch_add(1, Ordering::Relaxed);
            }
            70..80 if !own.is_empty() => {
                let victim = own[rng.random_range(0..own.len())].clone();
                let digest = victim.tree.manifest.digest.clone();
                forget(tagged, |entry| {
                    entry.repository == victim.repository && entry.tree.manifest.digest == digest
                });
                let url = format!(
                    "{}/v2/{}/manifests/{digest}",
                    client.base(&mut rng),
                    victim.repository
                );
                let deleted = client.send(|| client.http.delete(&url)).await;
                assert_eq!(
                    deleted.status(),
                    202,
                    "deleting {}@{digest}",
                    victim.repository
                );
                client.counts.deletes.fetch_add(1, Ordering::Relaxed);
            }
            _ if !own.is_empty() => {
                let entry = &own[rng.random_range(0..own.len())];
                let base = client.base(&mut rng).to_owned();
                client
                    .pull_tree(&base, entry.repository, &entry.tag, &entry.tree)
                    .await;
            }
            _ => {}
        }
    }
}

fn record(tagged: &Mutex<Vec<Tagged>>, repository: &'static str, tag: String, tree: Tree) {
    let mut tagged = tagged.lock().expect("model");
    tagged.retain(|entry| !(entry.repository == repository && entry.tag == tag));
    tagged.push(Tagged {
        repository,
        tag,
        tree,
    });
}

fn forget(tagged: &Mutex<Vec<Tagged>>, gone: impl Fn(&Tagged) -> bool) {
    tagged.lock().expect("model").retain(|entry| !gone(entry));
}

async fn pushes_survive_repeated_collections(backend: Backend, slow_reads: Option<&FaultProxy>) {
    let seed = std::env::var("BERTH_RANDOMIZED_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    eprintln!("BERTH_RANDOMIZED_SEED={seed}");
    let storage = match slow_reads {
        Some(proxy) => proxy.storage_url(&backend.storage),
        None => backend.storage.clone(),
    };
    let (a, b) = (
        TestRegistry::start(&storage).await,
        TestRegistry::start(&storage).await,
    );
    if let Some(proxy) = slow_reads {
        proxy.set_faults(vec![Fault::slow_reads("", Duration::from_millis(15))]);
    }
    let counts: &'static Counts = Box::leak(Box::default());
    let client = Client {
        http: reqwest::Client::new(),
        replicas: [a.url.clone(), b.url.clone()],
        counts,
    };
    let (tagged, referrers) = (Mutex::new(Vec::new()), Mutex::new(Vec::new()));
    let done = AtomicBool::new(false);
    let gc = config(&storage, &[admin(&a), admin(&b)]);
    let collections = async {
        let mut rng = StdRng::seed_from_u64(seed);
        while !done.load(Ordering::SeqCst) {
            gc_worker::run_once(&gc, CancellationToken::new())
                .await
                .expect("a collection");
            counts.collections.fetch_add(1, Ordering::Relaxed);
            // Back to back, collections with no grace would take the blobs
            // of every push before its manifest arrives.
            tokio::time::sleep(Duration::from_millis(rng.random_range(50..400))).await;
        }
    };
    let clients = async {
        let runs =
            (0..CLIENTS).map(|number| client_run(&client, number, seed, &tagged, &referrers));
        futures::future::join_all(runs).await;
        done.store(true, Ordering::SeqCst);
    };
    tokio::join!(collections, clients);
    gc_worker::run_once(&gc, CancellationToken::new())
        .await
        .expect("the last collection");

    let tagged = tagged.into_inner().expect("model");
    for entry in &tagged {
        for base in &client.replicas {
            client
                .pull_tree(base, entry.repository, &entry.tag, &entry.tree)
                .await;
        }
    }
    for referrer in referrers.into_inner().expect("model") {
        let subject_tagged = tagged.iter().any(|entry| {
            entry.repository == referrer.repository
                && entry.tree.manifest.digest == referrer.subject
        });
        if !subject_tagged {
            continue;
        }
        let reference = referrer.artifact.manifest.digest.to_string();
        client
            .pull_tree(&a.url, referrer.repository, &reference, &referrer.artifact)
            .await;
        let listed: serde_json::Value = client
            .http
            .get(format!(
                "{}/v2/{}/referrers/{}",
                a.url, referrer.repository, referrer.subject
            ))
            .send()
            .await
            .expect("referrers")
            .json()
            .await
            .expect("JSON");
        assert!(
            listed["manifests"]
                .as_array()
                .expect("list")
                .iter()
                .any(|entry| entry["digest"] == reference),
            "{reference} is missing from the referrers of {}",
            referrer.subject
        );
    }
    assert_store_sound(&storage).await;
    eprintln!(
        "pushes {}, pulls {}, deletes {}, writes refused with 503 {}, collections {}, tags kept {}",
        counts.pushes.load(Ordering::Relaxed),
        counts.pulls.load(Ordering::Relaxed),
        counts.deletes.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.collections.load(Ordering::Relaxed),
        tagged.len()
    );
    assert!(
        counts.collections.load(Ordering::Relaxed) >= 3,
        "the collector barely ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_survive_repeated_collections_on_files() {
    pushes_survive_repeated_collections(Backend::file(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_survive_repeated_collections_on_slow_s3() {
    let Some(backend) = Backend::s3().await else {
        return;
    };
    let proxy = FaultProxy::start(backend.s3_url().expect("S3")).await;
    pushes_survive_repeated_collections(backend, Some(&proxy)).await;
}
