//! The soak, and the proof of the collector's safety: clients push
//! (nested repositories, multi-arch indexes, artifacts with a subject,
//! cross-repository mounts, chunked uploads hopping between two replicas),
//! pull, and delete tags and manifests, while `gc-worker --delete-untagged
//! --grace 0s` opens a window and collects every second or two. Clients
//! wait out a 503 for its `Retry-After`, as docker and podman do, and push
//! again what a failed request left unfinished. Every push a client was
//! told is stored stays whole: no pull of it ever fails, it pulls byte for
//! byte at the end, and `gc-worker fsck` finds nothing broken. On a file
//! store, and on S3 with every read and write of the store slowed down and
//! some answered 500.
//!
//! Each store runs for `BERTH_SOAK_SECONDS` (20 by default, what CI runs;
//! `just soak` runs for an hour). The operations are drawn from a seed
//! printed at the start; `BERTH_SOAK_SEED=<seed>` draws the same ones again
//! (the interleaving with the collector still varies). The end prints the
//! counts; any error fails the run after all of them are printed.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{Backend, admin, assert_store_sound, config};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Method, RequestBuilder, Response};
use test_support::{Blob, Fault, FaultProxy, Image, Index, TestRegistry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Clients pushing and pulling at once.
const CLIENTS: usize = 4;
const REPOSITORIES: &[&str] = &["team", "team/app", "team/app/web", "solo"];
/// Times a client sends one request that the store failed (5xx other than
/// 503), or pushes one blob or tree again, before it counts an error.
const ATTEMPTS: usize = 20;

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

/// What a soak did, printed at its end.
#[derive(Debug, Default)]
struct Counts {
    pushes: AtomicU64,
    pulls: AtomicU64,
    deletes: AtomicU64,
    refused: AtomicU64,
    store_failures: AtomicU64,
    collections: AtomicU64,
    collections_failed: AtomicU64,
    bytes_freed: AtomicU64,
    errors: Mutex<Vec<String>>,
}

impl Counts {
    fn add(counter: &AtomicU64, amount: u64) {
        counter.fetch_add(amount, Ordering::Relaxed);
    }

    /// Records something that must never happen, and goes on.
    fn error(&self, message: String) {
        eprintln!("ERROR {message}");
        self.errors.lock().expect("counts").push(message);
    }

    fn print(&self, store: &str, seconds: u64, tags_kept: usize) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        eprintln!(
            "soak on {store} for {seconds} s: pushes {}, pulls {}, deletes {}, \
             writes refused with 503 {}, store failures answered 5xx {}, \
             GC runs {} ({} failed), bytes freed {}, tags kept {tags_kept}, errors {}",
            get(&self.pushes),
            get(&self.pulls),
            get(&self.deletes),
            get(&self.refused),
            get(&self.store_failures),
            get(&self.collections),
            get(&self.collections_failed),
            get(&self.bytes_freed),
            self.errors.lock().expect("counts").len(),
        );
    }
}

/// A client of both replicas.
struct Client {
    http: reqwest::Client,
    replicas: [String; 2],
    counts: &'static Counts,
}

impl Client {
    fn base(&self, rng: &mut StdRng) -> &str {
        &self.replicas[rng.random_range(0..2)]
    }

    /// Sends the request `make` builds; a 503 is sent again after its
    /// `Retry-After`, and a request the store failed (500, 502) a moment
    /// later, as docker and podman do. `None` when it never got through.
    async fn send(&self, make: impl Fn() -> RequestBuilder) -> Option<Response> {
        let mut failures = 0;
        loop {
            let response = make().send().await.expect("the replicas are up");
            match response.status().as_u16() {
                503 => {
                    Counts::add(&self.counts.refused, 1);
                    let seconds = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok()?.parse().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(seconds)).await;
                }
                500 | 502 if failures < ATTEMPTS => {
                    failures += 1;
                    Counts::add(&self.counts.store_failures, 1);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => return Some(response),
            }
        }
    }

    /// Sends and expects `status`; anything else is returned as a failure
    /// naming `what`.
    async fn expect(
        &self,
        what: &str,
        status: u16,
        make: impl Fn() -> RequestBuilder,
    ) -> Result<Response, String> {
        let response = self.send(make).await.expect("sent");
        if response.status() == status {
            return Ok(response);
        }
        let got = response.status();
        let body = response.text().await.unwrap_or_default();
        Err(format!("{what}: {got} {body}"))
    }

    /// Stores a blob: monolithic, chunked across both replicas, or mounted
    /// from `mount_from` (falling back to a normal upload).
    async fn push_blob(
        &self,
        rng: &mut StdRng,
        repository: &str,
        blob: &Blob,
        mount_from: Option<&str>,
    ) -> Result<(), String> {
        let base = self.base(rng).to_owned();
        let digest = &blob.digest;
        if let Some(from) = mount_from {
            let url = format!("{base}/v2/{repository}/blobs/uploads/?mount={digest}&from={from}");
            let mounted = self.send(|| self.http.post(&url)).await.expect("sent");
            match mounted.status().as_u16() {
                201 => return Ok(()),
                202 => {}
                other => return Err(format!("mounting {digest}: {other}")),
            }
        }
        if rng.random_bool(0.5) {
            let url = format!("{base}/v2/{repository}/blobs/uploads/?digest={digest}");
            self.expect(&format!("monolithic push of {digest}"), 201, || {
                self.http.post(&url).body(blob.bytes.clone())
            })
            .await?;
            return Ok(());
        }
        let start = format!("{base}/v2/{repository}/blobs/uploads/");
        let started = self
            .expect("starting an upload", 202, || self.http.post(&start))
            .await?;
        let mut location = location_of(&started);
        let middle = blob.bytes.len() / 2;
        for (index, piece) in [&blob.bytes[..middle], &blob.bytes[middle..]]
            .into_iter()
            .enumerate()
        {
            let offset = if index == 0 { 0 } else { middle };
            let range = format!("{offset}-{}", offset + piece.len() - 1);
            let url = format!("{}{location}", self.replicas[index % 2]);
            let piece = Bytes::copy_from_slice(piece);
            let patched = self
                .expect(&format!("chunk {index} of {digest}"), 202, || {
                    self.http
                        .patch(&url)
                        .header("content-range", &range)
                        .body(piece.clone())
                })
                .await?;
            location = location_of(&patched);
        }
        let separator = if location.contains('?') { '&' } else { '?' };
        let url = format!("{}{location}{separator}digest={digest}", self.replicas[0]);
        self.expect(&format!("closing the upload of {digest}"), 201, || {
            self.http.put(&url)
        })
        .await?;
        Ok(())
    }

    /// Pushes a tree under `reference`. What a failed request left
    /// unfinished, or a collection took between the parts (grace is 0), is
    /// pushed again; `false` when it never got through.
    async fn push_tree(
        &self,
        rng: &mut StdRng,
        repository: &str,
        reference: &str,
        tree: &Tree,
        mount_from: Option<&str>,
    ) -> bool {
        let mut last = String::new();
        for _attempt in 0..ATTEMPTS {
            match self
                .push_tree_once(rng, repository, reference, tree, mount_from)
                .await
            {
                Ok(()) => {
                    Counts::add(&self.counts.pushes, 1);
                    return true;
                }
                Err(failure) => last = failure,
            }
        }
        self.counts.error(format!(
            "{repository}:{reference} could not be pushed in {ATTEMPTS} attempts: {last}"
        ));
        false
    }

    async fn push_tree_once(
        &self,
        rng: &mut StdRng,
        repository: &str,
        reference: &str,
        tree: &Tree,
        mount_from: Option<&str>,
    ) -> Result<(), String> {
        for child in &tree.children {
            let child_reference = child.manifest.digest.to_string();
            Box::pin(self.push_tree_once(rng, repository, &child_reference, child, None)).await?;
        }
        for blob in &tree.blobs {
            self.push_blob(rng, repository, blob, mount_from).await?;
        }
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base(rng));
        self.expect(&format!("pushing {repository}:{reference}"), 201, || {
            self.http
                .put(&url)
                .header("content-type", &tree.manifest.media_type)
                .body(tree.manifest.bytes.clone())
        })
        .await?;
        Ok(())
    }

    /// Pulls a tree as a client would; a part missing or different is an
    /// error.
    async fn pull_tree(&self, base: &str, repository: &str, reference: &str, tree: &Tree) {
        if let Err(failure) = self.pull_tree_once(base, repository, reference, tree).await {
            self.counts.error(failure);
        }
        Counts::add(&self.counts.pulls, 1);
    }

    async fn pull_tree_once(
        &self,
        base: &str,
        repository: &str,
        reference: &str,
        tree: &Tree,
    ) -> Result<(), String> {
        let url = format!("{base}/v2/{repository}/manifests/{reference}");
        let what = format!("pulling the manifest of {repository}:{reference}");
        let manifest = self
            .expect(&what, 200, || {
                self.http
                    .get(&url)
                    .header("accept", &tree.manifest.media_type)
            })
            .await?;
        if manifest.bytes().await.ok().as_ref() != Some(&tree.manifest.bytes) {
            return Err(format!("{what}: other bytes than were pushed"));
        }
        for blob in &tree.blobs {
            let url = format!("{base}/v2/{repository}/blobs/{}", blob.digest);
            let what = format!("pulling blob {} of {repository}:{reference}", blob.digest);
            let pulled = self.expect(&what, 200, || self.http.get(&url)).await?;
            if pulled.bytes().await.ok().as_ref() != Some(&blob.bytes) {
                return Err(format!("{what}: other bytes than were pushed"));
            }
        }
        for child in &tree.children {
            let child_reference = child.manifest.digest.to_string();
            Box::pin(self.pull_tree_once(base, repository, &child_reference, child)).await?;
        }
        Ok(())
    }

    /// Deletes a tag or a manifest the model already forgot.
    async fn delete(&self, rng: &mut StdRng, repository: &str, reference: &str) {
        let url = format!("{}/v2/{repository}/manifests/{reference}", self.base(rng));
        match self.send(|| self.http.delete(&url)).await.expect("sent") {
            deleted if deleted.status() == 202 => Counts::add(&self.counts.deletes, 1),
            // A retry of a delete the store carried out before failing.
            gone if gone.status() == 404
                && self.counts.store_failures.load(Ordering::Relaxed) > 0 => {}
            other => self.counts.error(format!(
                "deleting {repository}:{reference}: {}",
                other.status()
            )),
        }
    }
}

fn location_of(response: &Response) -> String {
    response.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned()
}

fn small_image(rng: &mut StdRng, architecture: &str) -> Image {
    let mut image = Image::random_for(architecture);
    if rng.random_bool(0.5) {
        image = Image::random(rng.random_range(1..3), rng.random_range(256..4096));
    }
    image
}

/// One client's run until `deadline`: its own tags (so the model is
/// exact), shared repositories.
async fn client_run(
    client: &Client,
    number: usize,
    seed: u64,
    deadline: Instant,
    tagged: &Mutex<Vec<Tagged>>,
    referrers: &Mutex<Vec<Referrer>>,
) {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_add(number as u64));
    let mine = |entry: &Tagged| entry.tag.starts_with(&format!("c{number}-"));
    let mut operation = 0;
    while Instant::now() < deadline {
        operation += 1;
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
                if client
                    .push_tree(&mut rng, repository, &tag, &tree, None)
                    .await
                {
                    record(tagged, repository, tag, tree);
                }
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
                if client
                    .push_tree(&mut rng, repository, &tag, &tree, None)
                    .await
                {
                    record(tagged, repository, tag, tree);
                }
            }
            40..50 if !own.is_empty() => {
                let subject = &own[rng.random_range(0..own.len())];
                let artifact =
                    Image::artifact("application/vnd.example.sbom", &subject.tree.manifest);
                let tree = Tree::from(&artifact);
                let reference = artifact.manifest.digest.to_string();
                if client
                    .push_tree(&mut rng, subject.repository, &reference, &tree, None)
                    .await
                {
                    referrers.lock().expect("model").push(Referrer {
                        repository: subject.repository,
                        subject: subject.tree.manifest.digest.clone(),
                        artifact: tree,
                    });
                }
            }
            50..60 if !own.is_empty() => {
                let source = &own[rng.random_range(0..own.len())];
                let Some(layer) = source.tree.blobs.last().cloned() else {
                    continue;
                };
                let config = Blob::new(
                    "application/vnd.oci.image.config.v1+json",
                    format!("{{\"client\":{number},\"n\":{operation}}}"),
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
                if client
                    .push_tree(&mut rng, repository, &tag, &tree, Some(source.repository))
                    .await
                {
                    record(tagged, repository, tag, tree);
                }
            }
            60..70 if !own.is_empty() => {
                let victim = own[rng.random_range(0..own.len())].clone();
                forget(tagged, |entry| {
                    entry.repository == victim.repository && entry.tag == victim.tag
                });
                client
                    .delete(&mut rng, victim.repository, &victim.tag)
                    .await;
            }
            70..80 if !own.is_empty() => {
                let victim = own[rng.random_range(0..own.len())].clone();
                let digest = victim.tree.manifest.digest.clone();
                forget(tagged, |entry| {
                    entry.repository == victim.repository && entry.tree.manifest.digest == digest
                });
                client
                    .delete(&mut rng, victim.repository, &digest.to_string())
                    .await;
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

/// Reads and writes of the store slowed down, and some answered 500.
fn unreliable_store() -> Vec<Fault> {
    vec![
        Fault::slow_reads("", Duration::from_millis(15)),
        Fault {
            methods: vec![Method::PUT, Method::POST, Method::DELETE],
            delay: Duration::from_millis(25),
            ..Fault::default()
        },
        Fault {
            error_rate: 0.03,
            ..Fault::default()
        },
    ]
}

fn soak_seconds() -> u64 {
    std::env::var("BERTH_SOAK_SECONDS")
        .ok()
        .and_then(|seconds| seconds.parse().ok())
        .unwrap_or(20)
}

async fn soak(name: &str, backend: Backend, proxy: Option<&FaultProxy>) {
    let seed = std::env::var("BERTH_SOAK_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(rand::random::<u64>);
    let seconds = soak_seconds();
    eprintln!("soak on {name}: BERTH_SOAK_SEED={seed} BERTH_SOAK_SECONDS={seconds}");
    let storage = match proxy {
        Some(proxy) => proxy.storage_url(&backend.storage),
        None => backend.storage.clone(),
    };
    let (a, b) = (
        TestRegistry::start(&storage).await,
        TestRegistry::start(&storage).await,
    );
    if let Some(proxy) = proxy {
        proxy.set_faults(unreliable_store());
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
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let collections = async {
        let mut rng = StdRng::seed_from_u64(seed);
        while !done.load(Ordering::SeqCst) {
            match gc_worker::run_once(&gc, CancellationToken::new()).await {
                Ok(report) => Counts::add(&counts.bytes_freed, report.bytes_freed),
                // The store failed it: the next run finishes the work.
                Err(error) if proxy.is_some() => {
                    eprintln!("a collection failed: {error:#}");
                    Counts::add(&counts.collections_failed, 1);
                }
                Err(error) => counts.error(format!("a collection failed: {error:#}")),
            }
            Counts::add(&counts.collections, 1);
            // Back to back, collections with no grace would take the blobs
            // of every push before its manifest arrives.
            tokio::time::sleep(Duration::from_millis(rng.random_range(300..2000))).await;
        }
    };
    let clients = async {
        let runs = (0..CLIENTS)
            .map(|number| client_run(&client, number, seed, deadline, &tagged, &referrers));
        futures::future::join_all(runs).await;
        done.store(true, Ordering::SeqCst);
    };
    tokio::join!(collections, clients);

    // The end: a reliable store, a last collection, then every tag pulls
    // from both replicas and the store checks sound.
    if let Some(proxy) = proxy {
        proxy.set_faults(Vec::new());
    }
    let last = gc_worker::run_once(&gc, CancellationToken::new())
        .await
        .expect("the last collection");
    Counts::add(&counts.bytes_freed, last.bytes_freed);
    Counts::add(&counts.collections, 1);
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
        if subject_tagged {
            check_referrer(&client, &a.url, &referrer).await;
        }
    }
    assert_store_sound(&storage).await;
    counts.print(name, seconds, tagged.len());
    let errors = counts.errors.lock().expect("counts");
    assert!(
        errors.is_empty(),
        "{} errors:\n{}",
        errors.len(),
        errors.join("\n")
    );
    assert!(
        counts.collections.load(Ordering::Relaxed) >= 3,
        "the collector barely ran"
    );
}

/// The artifact of a tagged subject pulls and is listed among its
/// referrers.
async fn check_referrer(client: &Client, base: &str, referrer: &Referrer) {
    let reference = referrer.artifact.manifest.digest.to_string();
    client
        .pull_tree(base, referrer.repository, &reference, &referrer.artifact)
        .await;
    let url = format!(
        "{base}/v2/{}/referrers/{}",
        referrer.repository, referrer.subject
    );
    let listed: serde_json::Value = client
        .http
        .get(url)
        .send()
        .await
        .expect("referrers")
        .json()
        .await
        .expect("JSON");
    let found = listed["manifests"]
        .as_array()
        .is_some_and(|list| list.iter().any(|entry| entry["digest"] == reference));
    if !found {
        client.counts.error(format!(
            "{reference} is missing from the referrers of {}",
            referrer.subject
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_files() {
    soak("files", Backend::file(), None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_on_an_unreliable_s3() {
    let Some(backend) = Backend::s3().await else {
        return;
    };
    let proxy = FaultProxy::start(backend.s3_url().expect("S3")).await;
    soak("S3 (slow, some 500s)", backend, Some(&proxy)).await;
}
