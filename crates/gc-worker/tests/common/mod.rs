//! What the garbage collection tests share: a collection's configuration,
//! the two backends every scenario runs on, reads a client would make, and
//! the store checker run after every scenario.

#![allow(dead_code)] // Each test file uses its own part.

use std::time::Duration;

use gc_worker::GcConfig;
use registry_storage::Store;
use test_support::{ChildServer, start_moto};

/// A store for one scenario: a directory, or a bucket of `moto_server`.
pub struct Backend {
    pub storage: String,
    /// The bucket and the key prefix of the store, on S3.
    pub bucket: Option<(&'static str, &'static str)>,
    _directory: Option<tempfile::TempDir>,
    _server: Option<ChildServer>,
}

impl Backend {
    pub fn file() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        Backend {
            storage: directory.path().to_str().expect("utf-8").to_owned(),
            bucket: None,
            _directory: Some(directory),
            _server: None,
        }
    }

    /// `None` where `moto_server` is missing outside CI. The prefix holds
    /// `~`, which object_store encodes when it builds a key from text: the
    /// keys must begin with it as written all the same, everywhere the
    /// collector lists or aborts.
    pub async fn s3() -> Option<Self> {
        let (server, storage) = start_moto("berth-gc", "gc~store").await?;
        Some(Backend {
            storage,
            bucket: Some(("berth-gc", "gc~store")),
            _directory: None,
            _server: Some(server),
        })
    }

    /// `moto_server`'s address, on S3.
    pub fn s3_url(&self) -> Option<&str> {
        self._server.as_ref().map(|server| server.url.as_str())
    }

    /// The local directory, for a file store.
    pub fn directory(&self) -> Option<&std::path::Path> {
        self._directory.as_ref().map(tempfile::TempDir::path)
    }
}

/// `--delete-untagged --grace 0s` against `endpoints` (admin gRPC URLs).
pub fn config(storage: &str, endpoints: &[String]) -> GcConfig {
    GcConfig {
        storage: storage.to_owned(),
        admin_endpoints: endpoints
            .iter()
            .map(|endpoint| endpoint.parse().expect("URL"))
            .collect(),
        dry_run: false,
        delete_untagged: true,
        lease_ttl: Duration::from_secs(10),
        grace: Duration::ZERO,
        upload_max_age: Duration::from_secs(24 * 3600),
        admin_token: None,
        admin_token_file: None,
        log_format: service_runtime::LogFormat::Text,
    }
}

/// The admin endpoint of a replica, for [`config`].
pub fn admin(replica: &test_support::TestRegistry) -> String {
    format!("http://{}", replica.admin_addr)
}

/// Waits until what was written so far is older than a collection started
/// now, on a store that keeps times to the second (S3): writes within the
/// second a collection starts in count as young.
pub async fn let_the_store_clock_tick() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

pub async fn status_of(url: String) -> u16 {
    reqwest::get(url).await.expect("GET").status().as_u16()
}

pub async fn bytes_of(url: String) -> bytes::Bytes {
    let response = reqwest::get(&url).await.expect("GET");
    assert_eq!(response.status(), 200, "{url}");
    response.bytes().await.expect("body")
}

pub async fn json_of(url: String) -> serde_json::Value {
    reqwest::get(&url)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON")
}

/// Fails the test with every problem `gc-worker fsck` finds.
pub async fn assert_store_sound(storage: &str) {
    let store = Store::open(storage).expect("store");
    let findings = gc_worker::fsck::check(&store).await.expect("fsck");
    assert!(
        findings.problems.is_empty(),
        "the store is broken:\n{}",
        findings.problems.join("\n")
    );
    assert_eq!(findings.dangling_layer_links, 0, "{findings:?}");
}

/// Files named `data` (blob contents) below `dir`.
pub fn data_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            if path.is_dir() {
                data_files(&path)
            } else {
                usize::from(path.file_name().is_some_and(|name| name == "data"))
            }
        })
        .sum()
}
