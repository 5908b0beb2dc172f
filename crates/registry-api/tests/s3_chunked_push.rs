//! A chunked push on S3 sends each byte to the store once: the chunks
//! become the parts of one multipart upload, copied on the store's side
//! when the upload closes, and the blob appears whole or not at all. What
//! cannot be joined that way (small chunks, a store that cannot copy parts)
//! is still stored right, by concatenating through the registry.

use bytes::Bytes;
use registry_storage::Store;
use test_support::{
    Blob, Fault, FaultProxy, TestRegistry, TlsFront, random_bytes, start_moto, start_upload,
};

const MIB: usize = 1 << 20;

/// Two replicas over one moto bucket, seen through a proxy that counts
/// the bytes carried to and from the store.
struct Setup {
    _moto: test_support::ChildServer,
    _tls: Option<(TlsFront, tempfile::TempDir)>,
    proxy: FaultProxy,
    storage: String,
    replicas: [TestRegistry; 2],
    client: reqwest::Client,
}

impl Setup {
    async fn start(bucket: &str) -> Option<Setup> {
        Setup::start_with(bucket, "registry", false).await
    }

    /// With `behind_tls`, the store answers over TLS under a certificate
    /// no client trusts, and the storage URL says
    /// `allow_invalid_certificates=true` (a lab MinIO's self-signed one).
    async fn start_with(bucket: &str, prefix: &str, behind_tls: bool) -> Option<Setup> {
        let (moto, direct) = start_moto(bucket, prefix).await?;
        let proxy = FaultProxy::start(&moto.url).await;
        let mut storage = proxy.storage_url(&direct);
        let mut tls = None;
        if behind_tls {
            let work = tempfile::tempdir().expect("temporary directory");
            let proxy_host = proxy.url.trim_start_matches("http://");
            let front = TlsFront::start(work.path(), proxy_host).await?;
            storage = storage
                .replace(&proxy.url, &front.url)
                .replace("allow_http=true", "allow_invalid_certificates=true");
            tls = Some((front, work));
        }
        let replicas = [
            TestRegistry::start(&storage).await,
            TestRegistry::start(&storage).await,
        ];
        Some(Setup {
            _moto: moto,
            _tls: tls,
            proxy,
            storage,
            replicas,
            client: reqwest::Client::new(),
        })
    }

    /// Opens a session in `repository` and sends `blob` in chunks of
    /// `sizes` (in turn to each replica); returns the session's location.
    async fn send_chunks(&self, repository: &str, blob: &Blob, sizes: &[usize]) -> String {
        assert_eq!(sizes.iter().sum::<usize>(), blob.bytes.len());
        let started = start_upload(&self.client, &self.replicas[0].url, repository).await;
        assert_eq!(started.status(), 202);
        assert_eq!(
            started.headers()["oci-chunk-min-length"],
            "5242880",
            "clients are told the chunk size S3 can join on its side"
        );
        let location = started.headers()["location"]
            .to_str()
            .expect("Location")
            .to_owned();
        let mut offset = 0;
        for (number, size) in sizes.iter().enumerate() {
            let replica = &self.replicas[number % 2];
            let piece = blob.bytes.slice(offset..offset + size);
            let patched = self
                .client
                .patch(format!("{}{location}", replica.url))
                .header("content-range", format!("{offset}-{}", offset + size - 1))
                .body(piece)
                .send()
                .await
                .expect("PATCH");
            assert_eq!(patched.status(), 202, "the chunk at {offset}");
            offset += size;
        }
        location
    }

    /// Closes the session on the second replica; returns the answer's status.
    async fn close(&self, location: &str, blob: &Blob) -> u16 {
        self.client
            .put(format!(
                "{}{location}?digest={}",
                self.replicas[1].url, blob.digest
            ))
            .send()
            .await
            .expect("PUT")
            .status()
            .as_u16()
    }

    /// [`Setup::close`], with the body bytes carried to and from the
    /// store meanwhile.
    async fn close_counting(&self, location: &str, blob: &Blob) -> (u16, u64, u64) {
        let (sent_before, received_before) = self.proxy.traffic();
        let status = self.close(location, blob).await;
        let (sent, received) = self.proxy.traffic();
        (status, sent - sent_before, received - received_before)
    }

    async fn blob_from_each_replica(&self, repository: &str, blob: &Blob) {
        for replica in &self.replicas {
            let url = format!("{}/v2/{repository}/blobs/{}", replica.url, blob.digest);
            let response = self.client.get(&url).send().await.expect("GET");
            assert_eq!(response.status(), 200, "{url}");
            let body: Bytes = response.bytes().await.expect("body");
            assert!(body == blob.bytes, "{url} answered other bytes");
        }
    }

    async fn blob_status(&self, repository: &str, blob: &Blob) -> u16 {
        let url = format!(
            "{}/v2/{repository}/blobs/{}",
            self.replicas[0].url, blob.digest
        );
        let response = self.client.head(&url).send().await.expect("HEAD");
        response.status().as_u16()
    }

    /// Pushes a blob in two chunks the store can join and checks that it
    /// did: the close sends no chunk again, and the blob is whole.
    async fn push_joined_on_the_store(&self, repository: &str) {
        let blob = Blob::new("application/octet-stream", random_bytes(12 * MIB));
        let location = self
            .send_chunks(repository, &blob, &[6 * MIB, 6 * MIB])
            .await;
        let (status, closing_sent, _) = self.close_counting(&location, &blob).await;
        assert_eq!(status, 201);
        assert!(
            closing_sent < 64 * 1024,
            "the chunks were copied on the store's side ({closing_sent} bytes sent)"
        );
        self.blob_from_each_replica(repository, &blob).await;
        self.no_incomplete_multipart_uploads().await;
    }

    /// No multipart upload left behind to be billed as storage.
    async fn no_incomplete_multipart_uploads(&self) {
        let store = Store::open(&self.storage).expect("the store");
        let left = store
            .incomplete_multipart_uploads()
            .await
            .expect("listing multipart uploads");
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}

#[tokio::test]
async fn a_chunked_push_sends_each_byte_to_the_store_once() {
    let Some(setup) = Setup::start("berth-part-copies").await else {
        return;
    };
    let blob = Blob::new("application/octet-stream", random_bytes(20 * MIB));
    let location = setup
        .send_chunks("parts/app", &blob, &[8 * MIB, 5 * MIB, 7 * MIB])
        .await;
    let (status, closing_sent, closing_received) = setup.close_counting(&location, &blob).await;
    assert_eq!(status, 201);
    assert!(
        closing_sent < 64 * 1024 && closing_received < 64 * 1024,
        "closing carried {closing_sent} bytes to the store and {closing_received} back: the chunks crossed again"
    );
    let (sent, _) = setup.proxy.traffic();
    assert!(
        sent < (20 * MIB + MIB) as u64,
        "{sent} bytes went to the store for a 20 MiB blob"
    );
    assert_eq!(
        setup.proxy.requests_matching("hashstates/sha256/0"),
        0,
        "no chunk waited for the hash state of no bytes"
    );
    setup.blob_from_each_replica("parts/app", &blob).await;
    let session = setup
        .client
        .get(format!("{}{location}", setup.replicas[0].url))
        .send()
        .await
        .expect("GET session");
    assert_eq!(session.status(), 404, "the closed session is gone");
    setup.no_incomplete_multipart_uploads().await;
}

/// Every request to the store goes out with the options the storage URL
/// gives it: the ones Berth signs itself (part copies when a chunked push
/// closes, the collector's listing of multipart uploads) as much as
/// object_store's own. They used to go out with a client of default
/// options, so a store behind a self-signed certificate took chunks but
/// refused every close.
#[tokio::test]
async fn the_storage_urls_client_options_hold_for_every_request() {
    let Some(setup) = Setup::start_with("berth-tls-store", "registry", true).await else {
        return;
    };
    assert!(
        setup.storage.contains("endpoint=https://"),
        "{}",
        setup.storage
    );
    setup.push_joined_on_the_store("parts/tls").await;
}

/// The source of a part copy is named in a header S3 reads percent-encoded:
/// a prefix with characters that need it is copied from as it is. The
/// storage URL's `%20` is a space in every key, as Distribution's
/// `rootdirectory` would have it, never `%20` nor `%2520`.
#[tokio::test]
async fn a_prefix_that_needs_encoding_is_copied_from_as_it_is() {
    let Some(setup) = Setup::start_with("berth-odd-prefix", "team%20registry+1", false).await
    else {
        return;
    };
    setup.push_joined_on_the_store("parts/odd").await;
    let listing = setup
        .client
        .get(format!("{}/berth-odd-prefix?list-type=2", setup._moto.url))
        .send()
        .await
        .expect("ListObjectsV2")
        .text()
        .await
        .expect("listing");
    let keys: Vec<&str> = listing
        .split("<Key>")
        .skip(1)
        .filter_map(|rest| rest.split("</Key>").next())
        .collect();
    assert!(!keys.is_empty(), "{listing}");
    for key in keys {
        assert!(key.starts_with("team registry+1/"), "{key}");
    }
}

#[tokio::test]
async fn small_chunks_are_joined_through_the_registry() {
    let Some(setup) = Setup::start("berth-small-chunks").await else {
        return;
    };
    let blob = Blob::new("application/octet-stream", random_bytes(10 * MIB + 3));
    let location = setup
        .send_chunks("parts/small", &blob, &[MIB, 7 * MIB, 2 * MIB + 3])
        .await;
    assert_eq!(setup.close(&location, &blob).await, 201);
    setup.blob_from_each_replica("parts/small", &blob).await;
    setup.no_incomplete_multipart_uploads().await;
}

#[tokio::test]
async fn a_store_that_cannot_copy_parts_still_gets_the_blob() {
    let Some(setup) = Setup::start("berth-no-part-copy").await else {
        return;
    };
    setup
        .proxy
        .set_faults(vec![Fault::failing_with_header("", "x-amz-copy-source")]);
    let blob = Blob::new("application/octet-stream", random_bytes(12 * MIB));
    let location = setup
        .send_chunks("parts/plain", &blob, &[6 * MIB, 6 * MIB])
        .await;
    let (status, closing_sent, _) = setup.close_counting(&location, &blob).await;
    assert_eq!(status, 201);
    assert!(
        closing_sent >= (12 * MIB) as u64,
        "the blob was joined through the registry ({closing_sent} bytes sent)"
    );
    setup.blob_from_each_replica("parts/plain", &blob).await;
    setup.no_incomplete_multipart_uploads().await;
}

#[tokio::test]
async fn a_close_that_fails_midway_shows_nothing_and_can_be_sent_again() {
    let Some(setup) = Setup::start("berth-failing-parts").await else {
        return;
    };
    let blob = Blob::new("application/octet-stream", random_bytes(16 * MIB));
    let location = setup
        .send_chunks("parts/retry", &blob, &[6 * MIB, 6 * MIB, 4 * MIB])
        .await;
    // Every part, copied or sent, fails: no way to join the chunks.
    setup.proxy.set_faults(vec![Fault::failing("partNumber")]);
    let status = setup.close(&location, &blob).await;
    assert!(
        (500..600).contains(&status),
        "a close the store refused answered {status}"
    );
    assert_eq!(
        setup.blob_status("parts/retry", &blob).await,
        404,
        "nothing is visible of a blob whose parts failed"
    );
    setup.proxy.set_faults(Vec::new());
    setup.no_incomplete_multipart_uploads().await;
    assert_eq!(setup.close(&location, &blob).await, 201);
    setup.blob_from_each_replica("parts/retry", &blob).await;
}

/// The store creates a chunk's commit but the answer is lost, and the
/// retry finds the commit existing: it is this chunk's own, so the chunk
/// stays and the push goes on (it used to be taken for a racing writer's,
/// the chunk deleted and the session left unusable).
#[tokio::test]
async fn a_commit_whose_answer_was_lost_is_recognised_as_its_own() {
    let Some(setup) = Setup::start("berth-lost-commit").await else {
        return;
    };
    setup.proxy.set_faults(vec![Fault::answers_lost(
        "/commits/",
        vec![axum::http::Method::PUT],
        1,
    )]);
    let blob = Blob::new("application/octet-stream", random_bytes(12 * MIB));
    let location = setup
        .send_chunks("parts/lost", &blob, &[6 * MIB, 6 * MIB])
        .await;
    assert_eq!(setup.close(&location, &blob).await, 201);
    setup.blob_from_each_replica("parts/lost", &blob).await;
}
