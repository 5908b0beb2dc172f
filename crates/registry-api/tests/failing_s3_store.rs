//! An S3 store that fails: a proxy in front of `moto_server` answers every
//! request 500, or holds every request without an answer. Pushes and pulls
//! get 503 `UNAVAILABLE` with the spec's JSON error body and `Retry-After`
//! within a bounded time (`--storage-timeout`), `/healthz` answers 503 at
//! once, and when the store is back everything works again without a
//! restart, over a store `gc-worker fsck` finds sound.

use std::time::{Duration, Instant};

use registry_storage::Store;
use test_support::{
    Blob, Fault, FaultProxy, Image, TestRegistry, eventually, push_image, start_moto,
};

const REPOSITORY: &str = "flaky/app";
/// `--storage-timeout` in these tests.
const STORAGE_TIMEOUT: Duration = Duration::from_secs(2);
/// The longest a request may take while the store fails: a few store
/// calls, each bounded by the timeout.
const ANSWERED_WITHIN: Duration = Duration::from_secs(15);

/// What a client saw of one request.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
    took: Duration,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let started = Instant::now();
    let response = tokio::time::timeout(ANSWERED_WITHIN * 2, request.send())
        .await
        .expect("an answer while the store fails")
        .expect("a response");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().expect("Retry-After").to_owned());
    let body = response.text().await.expect("body");
    Answer {
        status,
        retry_after,
        body,
        took: started.elapsed(),
    }
}

/// Fails the test unless `answer` is a prompt 503 `UNAVAILABLE` with the
/// spec's error body (`HEAD` answers carry no body).
fn assert_unavailable(what: &str, answer: &Answer, head: bool) {
    assert_eq!(answer.status, 503, "{what}: {}", answer.body);
    assert!(
        answer.took < ANSWERED_WITHIN,
        "{what} took {:?} while the store failed",
        answer.took
    );
    assert!(answer.retry_after.is_some(), "{what}: no Retry-After");
    if head {
        return;
    }
    let body: serde_json::Value = serde_json::from_str(&answer.body)
        .unwrap_or_else(|_| panic!("{what}: not the spec's JSON error body: {}", answer.body));
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{what}: {body}");
    let message = body["errors"][0]["message"].as_str().expect("a message");
    assert!(
        message.contains("store is not answering"),
        "{what}: {message}"
    );
}

async fn assert_pulls(base: &str, tag: &str, image: &Image) {
    let client = reqwest::Client::new();
    let manifest = client
        .get(format!("{base}/v2/{REPOSITORY}/manifests/{tag}"))
        .send()
        .await
        .expect("GET manifest");
    assert_eq!(manifest.status(), 200, "the manifest of {tag}");
    assert_eq!(manifest.bytes().await.expect("body"), image.manifest.bytes);
    for blob in image.blobs() {
        let pulled = client
            .get(format!("{base}/v2/{REPOSITORY}/blobs/{}", blob.digest))
            .send()
            .await
            .expect("GET blob");
        assert_eq!(pulled.status(), 200, "{} of {tag}", blob.digest);
        assert!(pulled.bytes().await.expect("body") == blob.bytes);
    }
}

async fn a_failing_store_gets_clean_answers_and_recovers(bucket: &str, fault: Fault) {
    let Some((moto, direct)) = start_moto(bucket, "registry").await else {
        return;
    };
    let proxy = FaultProxy::start(&moto.url).await;
    let mut config = registry_api::Config::with_storage(proxy.storage_url(&direct));
    config.storage_timeout = STORAGE_TIMEOUT;
    // The outage below lasts about 20 s on a loaded machine, as long as the
    // default interval's view of the lease: writes would then be refused
    // for the lease (maintenance.rs tests that) rather than for the store.
    config.lease_check_interval = Duration::from_secs(60);
    let registry = TestRegistry::start_with(config).await;
    let client = reqwest::Client::new();
    let base = registry.url.clone();
    let before = Image::random(2, 4096);
    push_image(&client, &base, REPOSITORY, "before", &before).await;

    proxy.set_faults(vec![fault]);
    let health = answer(client.get(format!("{base}/healthz"))).await;
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.took < Duration::from_secs(3),
        "/healthz took {:?}",
        health.took
    );
    let after = Image::random(1, 4096);
    let layer = &after.layers[0];
    let blobs = format!("{base}/v2/{REPOSITORY}/blobs");
    let refused = [
        (
            "a monolithic blob push",
            client
                .post(format!("{blobs}/uploads/?digest={}", layer.digest))
                .body(layer.bytes.clone()),
        ),
        (
            "an upload session",
            client.post(format!("{blobs}/uploads/")),
        ),
        (
            "a manifest push",
            client
                .put(format!("{base}/v2/{REPOSITORY}/manifests/before"))
                .header("content-type", &before.manifest.media_type)
                .body(before.manifest.bytes.clone()),
        ),
        (
            "a manifest pull",
            client.get(format!("{base}/v2/{REPOSITORY}/manifests/before")),
        ),
        (
            "a blob pull",
            client.get(format!("{blobs}/{}", before.layers[0].digest)),
        ),
        (
            "a tags list",
            client.get(format!("{base}/v2/{REPOSITORY}/tags/list")),
        ),
        ("the catalog", client.get(format!("{base}/v2/_catalog"))),
    ];
    for (what, request) in refused {
        assert_unavailable(what, &answer(request).await, false);
    }
    let head = answer(client.head(format!("{blobs}/{}", before.config.digest))).await;
    assert_unavailable("a blob HEAD", &head, true);

    proxy.set_faults(Vec::new());
    eventually("/healthz to recover", Duration::from_secs(10), async || {
        answer(client.get(format!("{base}/healthz"))).await.status == 200
    })
    .await;
    push_image(&client, &base, REPOSITORY, "after", &after).await;
    let large = Blob::new(
        "application/octet-stream",
        test_support::random_bytes(10 << 20),
    );
    test_support::push_blob(&client, &base, REPOSITORY, &large).await;
    assert_pulls(&base, "before", &before).await;
    assert_pulls(&base, "after", &after).await;
    let store = Store::open(&direct).expect("the store behind the proxy");
    let findings = gc_worker::fsck::check(&store).await.expect("fsck");
    assert!(
        findings.problems.is_empty(),
        "the store is broken:\n{}",
        findings.problems.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_answering_500_to_everything() {
    a_failing_store_gets_clean_answers_and_recovers("berth-failing", Fault::failing("")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_stalls_every_request() {
    a_failing_store_gets_clean_answers_and_recovers("berth-stalled", Fault::stalled("")).await;
}
