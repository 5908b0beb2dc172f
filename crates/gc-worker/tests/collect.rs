//! Garbage collection end to end: registry-api replicas on ephemeral
//! ports, images pushed over HTTP, then gc-worker with `--delete-untagged`.
//! Every tagged image (single-arch, multi-arch, with referrers) still pulls
//! byte for byte, the garbage is gone from the store, emptied repositories
//! leave the catalog, and the registry is writable afterwards.

use std::time::Duration;

mod common;

use common::{admin, bytes_of, config, status_of};
use test_support::{Image, Index, TestRegistry, push_blob, push_image, push_manifest, start_moto};
use tokio_util::sync::CancellationToken;

/// What was pushed, and what must survive or go.
struct Scenario {
    kept_images: Vec<(String, Image)>,
    kept_index: Index,
    signature: Image,
    overwritten: Image,
    deleted: Image,
}

async fn push_scenario(base: &str) -> Scenario {
    let client = reqwest::Client::new();
    let overwritten = Image::random(2, 2048);
    let current = Image::random(2, 2048);
    let second = Image::random(1, 2048);
    push_image(&client, base, "team/app", "v1", &overwritten).await;
    push_image(&client, base, "team/app", "v1", &current).await;
    push_image(&client, base, "team/app", "v2", &second).await;

    let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
    for child in &index.images {
        for blob in child.blobs() {
            push_blob(&client, base, "team/multi", blob).await;
        }
        push_manifest(
            &client,
            base,
            "team/multi",
            &child.manifest.digest.to_string(),
            &child.manifest,
        )
        .await;
    }
    push_manifest(&client, base, "team/multi", "latest", &index.manifest).await;

    let signature = Image::artifact("application/vnd.example.signature", &second.manifest);
    for blob in signature.blobs() {
        push_blob(&client, base, "team/app", blob).await;
    }
    push_manifest(
        &client,
        base,
        "team/app",
        &signature.manifest.digest.to_string(),
        &signature.manifest,
    )
    .await;

    let deleted = Image::random(1, 2048);
    push_image(&client, base, "old/project", "x", &deleted).await;
    let untag = client
        .delete(format!("{base}/v2/old/project/manifests/x"))
        .send()
        .await
        .expect("untag");
    assert_eq!(untag.status(), 202);
    common::let_the_store_clock_tick().await;
    Scenario {
        kept_images: vec![("v1".into(), current), ("v2".into(), second)],
        kept_index: index,
        signature,
        overwritten,
        deleted,
    }
}

async fn assert_collected(base: &str, scenario: &Scenario) {
    for (tag, image) in &scenario.kept_images {
        assert_eq!(
            bytes_of(format!("{base}/v2/team/app/manifests/{tag}")).await,
            image.manifest.bytes
        );
        for blob in image.blobs() {
            assert_eq!(
                bytes_of(format!("{base}/v2/team/app/blobs/{}", blob.digest)).await,
                blob.bytes
            );
        }
    }
    let index = &scenario.kept_index;
    assert_eq!(
        bytes_of(format!("{base}/v2/team/multi/manifests/latest")).await,
        index.manifest.bytes
    );
    for child in &index.images {
        let digest = &child.manifest.digest;
        assert_eq!(
            bytes_of(format!("{base}/v2/team/multi/manifests/{digest}")).await,
            child.manifest.bytes,
            "an index's children stay"
        );
        for blob in child.blobs() {
            assert_eq!(
                bytes_of(format!("{base}/v2/team/multi/blobs/{}", blob.digest)).await,
                blob.bytes
            );
        }
    }
    let signature = &scenario.signature.manifest;
    assert_eq!(
        bytes_of(format!("{base}/v2/team/app/manifests/{}", signature.digest)).await,
        signature.bytes,
        "referrers stay"
    );
    let referrers: serde_json::Value = reqwest::get(format!(
        "{base}/v2/team/app/referrers/{}",
        scenario.kept_images[1].1.manifest.digest
    ))
    .await
    .expect("referrers")
    .json()
    .await
    .expect("JSON");
    assert_eq!(
        referrers["manifests"][0]["digest"],
        signature.digest.to_string()
    );

    let gone = &scenario.overwritten;
    assert_eq!(
        status_of(format!(
            "{base}/v2/team/app/manifests/{}",
            gone.manifest.digest
        ))
        .await,
        404
    );
    for blob in gone.blobs() {
        assert_eq!(
            status_of(format!("{base}/v2/team/app/blobs/{}", blob.digest)).await,
            404
        );
    }
    let catalog: serde_json::Value = reqwest::get(format!("{base}/v2/_catalog"))
        .await
        .expect("catalog")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        catalog["repositories"],
        serde_json::json!(["team/app", "team/multi"])
    );
    let writable = test_support::start_upload(&reqwest::Client::new(), base, "team/app").await;
    assert_eq!(writable.status(), 202, "writable again after the window");
}

/// Files under the store's blobs/ directory.
fn blob_files(root: &std::path::Path) -> Vec<String> {
    fn walk(dir: &std::path::Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else {
                found.push(path.display().to_string());
            }
        }
    }
    let mut found = Vec::new();
    walk(&root.join("docker/registry/v2/blobs"), &mut found);
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_untagged_collects_garbage_and_keeps_every_tagged_image() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let (a, b) = (
        TestRegistry::start(storage).await,
        TestRegistry::start(storage).await,
    );
    let scenario = push_scenario(&a.url).await;
    let before = blob_files(store.path());

    let mut dry = config(storage, &[admin(&a), admin(&b)]);
    dry.dry_run = true;
    let planned = gc_worker::run_once(&dry, CancellationToken::new())
        .await
        .expect("dry run");
    assert_eq!(
        blob_files(store.path()),
        before,
        "a dry run changes nothing"
    );
    assert_eq!(planned.manifests_deleted, 2);

    let report = gc_worker::run_once(
        &config(storage, &[admin(&a), admin(&b)]),
        CancellationToken::new(),
    )
    .await
    .expect("collection");
    assert_eq!(report.manifests_deleted, 2, "{report:?}");
    assert_eq!(report.repositories_pruned, 1);
    let expected_blobs =
        scenario.overwritten.blobs().count() + 1 + scenario.deleted.blobs().count() + 1;
    assert_eq!(report.blobs_deleted, expected_blobs, "{report:?}");
    assert_eq!(
        blob_files(store.path()).len(),
        before.len() - expected_blobs
    );
    assert!(report.window_ms <= report.total_ms);
    for replica in [&a, &b] {
        assert_collected(&replica.url, &scenario).await;
    }
    common::assert_store_sound(storage).await;
    let stored_report = std::fs::read(store.path().join("berth/gc/reports/latest.json"))
        .expect("report in the store");
    let stored: serde_json::Value = serde_json::from_slice(&stored_report).expect("report JSON");
    assert_eq!(stored["blobs_deleted"], expected_blobs);

    let again = gc_worker::run_once(
        &config(storage, &[admin(&a), admin(&b)]),
        CancellationToken::new(),
    )
    .await
    .expect("second run");
    assert_eq!(again.blobs_deleted, 0, "nothing left to collect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grace_period_keeps_fresh_garbage() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let registry = TestRegistry::start(storage).await;
    let scenario = push_scenario(&registry.url).await;
    let mut graceful = config(storage, &[admin(&registry)]);
    graceful.grace = Duration::from_secs(3600);
    let report = gc_worker::run_once(&graceful, CancellationToken::new())
        .await
        .expect("collection");
    assert_eq!(report.blobs_deleted, 0);
    assert_eq!(report.manifests_deleted, 0);
    let digest = &scenario.overwritten.manifest.digest;
    assert_eq!(
        status_of(format!("{}/v2/team/app/manifests/{digest}", registry.url)).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_refuses_the_lease_stops_the_collection() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let registry = TestRegistry::start(storage).await;
    let scenario = push_scenario(&registry.url).await;
    let mut gc = config(storage, &[admin(&registry)]);
    gc.admin_endpoints
        .push("http://127.0.0.1:1".parse().expect("URL"));
    let failed = gc_worker::run_once(&gc, CancellationToken::new()).await;
    assert!(
        failed.is_err(),
        "an unreachable replica must stop the collection"
    );
    let digest = &scenario.overwritten.manifest.digest;
    assert_eq!(
        status_of(format!("{}/v2/team/app/manifests/{digest}", registry.url)).await,
        200,
        "nothing was swept"
    );
    let writable =
        test_support::start_upload(&reqwest::Client::new(), &registry.url, "team/app").await;
    assert_eq!(
        writable.status(),
        202,
        "the lease taken on the first replica was released"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_on_s3() {
    let Some((_moto, storage)) = start_moto("berth-gc", "gc").await else {
        return;
    };
    let registry = TestRegistry::start(&storage).await;
    let scenario = push_scenario(&registry.url).await;
    let report = gc_worker::run_once(
        &config(&storage, &[admin(&registry)]),
        CancellationToken::new(),
    )
    .await
    .expect("collection");
    assert_eq!(report.manifests_deleted, 2, "{report:?}");
    assert_collected(&registry.url, &scenario).await;
    common::assert_store_sound(&storage).await;
}
