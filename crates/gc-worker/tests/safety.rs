//! What a collection must never do, each on a file store and on S3: prune a
//! repository nested under a pruned one, delete a blob that was referenced
//! within the grace period, prune a repository that a push reached just
//! before the window; and what it must do: collect stale uploads and
//! repositories emptied through the API. `gc-worker fsck` finds nothing
//! broken after each.

mod common;

use std::time::Duration;

use common::{
    Backend, admin, assert_store_sound, bytes_of, config, json_of, let_the_store_clock_tick,
    status_of,
};
use test_support::{
    Blob, HeldReplica, Image, Index, TestRegistry, push_blob, push_image, push_manifest,
    random_bytes, upload_first_chunk,
};
use tokio_util::sync::CancellationToken;

/// Runs a scenario on a file store, then on S3 where `moto_server` is.
macro_rules! on_both_backends {
    ($scenario:ident, $file:ident, $s3:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $file() {
            $scenario(Backend::file()).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $s3() {
            if let Some(backend) = Backend::s3().await {
                $scenario(backend).await;
            }
        }
    };
}

async fn collect(storage: &str, replicas: &[String]) -> gc_worker::Report {
    gc_worker::run_once(&config(storage, replicas), CancellationToken::new())
        .await
        .expect("collection")
}

async fn assert_pulls(base: &str, repository: &str, reference: &str, image: &Image) {
    assert_eq!(
        bytes_of(format!("{base}/v2/{repository}/manifests/{reference}")).await,
        image.manifest.bytes
    );
    for blob in image.blobs() {
        assert_eq!(
            bytes_of(format!("{base}/v2/{repository}/blobs/{}", blob.digest)).await,
            blob.bytes,
            "{repository}: blob {}",
            blob.digest
        );
    }
}

async fn delete(url: String) -> u16 {
    reqwest::Client::new()
        .delete(url)
        .send()
        .await
        .expect("DELETE")
        .status()
        .as_u16()
}

/// Two replicas of `backend`'s store, and `image` pushed to `repository`
/// through the first, then deleted: its blobs are garbage older than a
/// collection started now.
async fn two_replicas_and_garbage(
    backend: &Backend,
    repository: &str,
    image: &Image,
) -> (TestRegistry, TestRegistry) {
    let first = TestRegistry::start(&backend.storage).await;
    let second = TestRegistry::start(&backend.storage).await;
    push_image(&reqwest::Client::new(), &first.url, repository, "v1", image).await;
    let digest = image.manifest.digest.to_string();
    assert_eq!(
        delete(format!("{}/v2/{repository}/manifests/{digest}", first.url)).await,
        202
    );
    let_the_store_clock_tick().await;
    (first, second)
}

on_both_backends!(
    pruning_keeps_nested_repositories,
    pruning_keeps_nested_repositories_on_files,
    pruning_keeps_nested_repositories_on_s3
);

async fn pruning_keeps_nested_repositories(backend: Backend) {
    let registry = TestRegistry::start(&backend.storage).await;
    let (client, base) = (reqwest::Client::new(), registry.url.clone());
    let old = Image::random(1, 512);
    let nested = Image::random(2, 512);
    let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
    push_image(&client, &base, "team", "old", &old).await;
    push_image(&client, &base, "team/app", "v1", &nested).await;
    for child in &index.images {
        push_image(
            &client,
            &base,
            "team/app",
            &child.manifest.digest.to_string(),
            child,
        )
        .await;
    }
    push_manifest(&client, &base, "team/app", "multi", &index.manifest).await;
    assert_eq!(delete(format!("{base}/v2/team/manifests/old")).await, 202);
    let_the_store_clock_tick().await;

    let report = collect(&backend.storage, &[admin(&registry)]).await;
    assert_eq!(report.repositories_pruned, 1, "{report:?}");

    assert_pulls(&base, "team/app", "v1", &nested).await;
    assert_eq!(
        bytes_of(format!("{base}/v2/team/app/manifests/multi")).await,
        index.manifest.bytes
    );
    for child in &index.images {
        assert_pulls(&base, "team/app", &child.manifest.digest.to_string(), child).await;
    }
    let tags = json_of(format!("{base}/v2/team/app/tags/list")).await;
    assert_eq!(tags["tags"], serde_json::json!(["multi", "v1"]));
    assert_eq!(status_of(format!("{base}/v2/team/tags/list")).await, 404);
    let catalog = json_of(format!("{base}/v2/_catalog")).await;
    assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));
    for blob in old.blobs() {
        assert_eq!(
            status_of(format!("{base}/v2/team/blobs/{}", blob.digest)).await,
            404
        );
    }
    assert_store_sound(&backend.storage).await;
}

on_both_backends!(
    grace_protects_what_was_referenced_recently,
    grace_protects_what_was_referenced_recently_on_files,
    grace_protects_what_was_referenced_recently_on_s3
);

/// A blob's data can be much older than its newest reference: pushed again
/// after it was orphaned (the data exists, so it is not written again),
/// mounted, or closed from an upload whose first chunk came long ago.
async fn grace_protects_what_was_referenced_recently(backend: Backend) {
    let registry = TestRegistry::start(&backend.storage).await;
    let (client, base) = (reqwest::Client::new(), registry.url.clone());
    let orphan = Blob::new("application/octet-stream", random_bytes(4096));
    push_blob(&client, &base, "first", &orphan).await;
    assert_eq!(
        delete(format!("{base}/v2/first/blobs/{}", orphan.digest)).await,
        202
    );
    let chunked = Blob::new("application/octet-stream", random_bytes(8192));
    let location = upload_first_chunk(&client, &base, "chunked", chunked.bytes.clone()).await;

    // Old enough to be garbage by its data's age alone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    push_blob(&client, &base, "again", &orphan).await;
    let mounted = client
        .post(format!(
            "{base}/v2/mounted/blobs/uploads/?mount={}&from=again",
            orphan.digest
        ))
        .send()
        .await
        .expect("mount");
    assert_eq!(mounted.status(), 201);
    let separator = if location.contains('?') { '&' } else { '?' };
    let closed = client
        .put(format!("{location}{separator}digest={}", chunked.digest))
        .send()
        .await
        .expect("close");
    assert_eq!(closed.status(), 201);

    let mut graceful = config(&backend.storage, &[admin(&registry)]);
    graceful.grace = Duration::from_secs(2);
    gc_worker::run_once(&graceful, CancellationToken::new())
        .await
        .expect("collection");
    for repository in ["again", "mounted"] {
        assert_eq!(
            bytes_of(format!("{base}/v2/{repository}/blobs/{}", orphan.digest)).await,
            orphan.bytes,
            "{repository}"
        );
    }
    assert_eq!(
        bytes_of(format!("{base}/v2/chunked/blobs/{}", chunked.digest)).await,
        chunked.bytes
    );
    assert_store_sound(&backend.storage).await;
}

on_both_backends!(
    writes_just_before_the_window_survive,
    writes_just_before_the_window_survive_on_files,
    writes_just_before_the_window_survive_on_s3
);

/// A repository that looked empty when the collection read the store gets
/// a blob (201) and an upload session with a chunk (202) before the window
/// opens: neither may be lost, and the repository is not pruned.
async fn writes_just_before_the_window_survive(backend: Backend) {
    let registry = TestRegistry::start(&backend.storage).await;
    let (client, base) = (reqwest::Client::new(), registry.url.clone());
    let emptied = Image::random(1, 512);
    push_image(&client, &base, "race/x", "v1", &emptied).await;
    let digest = emptied.manifest.digest.to_string();
    assert_eq!(
        delete(format!("{base}/v2/race/x/manifests/{digest}")).await,
        202
    );

    let_the_store_clock_tick().await;
    let held = HeldReplica::start().await;
    let endpoints = [held.endpoint.clone(), admin(&registry)];
    let blob = Blob::new("application/octet-stream", random_bytes(2048));
    let chunk = random_bytes(1024);
    let writes = async {
        held.acquire_arrived().await;
        push_blob(&client, &base, "race/x", &blob).await;
        let location = upload_first_chunk(&client, &base, "race/x", chunk.clone()).await;
        held.let_go();
        location
    };
    let (report, location) = tokio::join!(collect(&backend.storage, &endpoints), writes);
    assert_eq!(report.repositories_pruned, 0, "{report:?}");
    assert!(
        !report.whole_store_relisted && report.repositories_relisted == 1,
        "the journals named the one repository written since the listing: {report:?}"
    );

    assert_eq!(
        bytes_of(format!("{base}/v2/race/x/blobs/{}", blob.digest)).await,
        blob.bytes
    );
    let progress = client.get(&location).send().await.expect("upload status");
    assert_eq!(progress.status(), 204, "the upload session survived");
    assert_eq!(progress.headers()["range"], "0-1023");
    let rest = random_bytes(1024);
    let whole = Blob::new("application/octet-stream", [chunk, rest.clone()].concat());
    let separator = if location.contains('?') { '&' } else { '?' };
    let closed = client
        .put(format!("{location}{separator}digest={}", whole.digest))
        .header("content-type", "application/octet-stream")
        .body(rest)
        .send()
        .await
        .expect("close");
    assert_eq!(
        closed.status(),
        201,
        "the upload completes after the window"
    );
    assert_store_sound(&backend.storage).await;
}

on_both_backends!(
    stale_uploads_and_emptied_repositories_go,
    stale_uploads_and_emptied_repositories_go_on_files,
    stale_uploads_and_emptied_repositories_go_on_s3
);

/// A push killed midway leaves an upload session in a repository with no
/// manifest; a repository emptied through the API keeps its layer links.
/// A collection removes both, and the repositories leave the catalog.
async fn stale_uploads_and_emptied_repositories_go(backend: Backend) {
    let registry = TestRegistry::start(&backend.storage).await;
    let (client, base) = (reqwest::Client::new(), registry.url.clone());
    let location = upload_first_chunk(&client, &base, "abandoned/x", random_bytes(1 << 20)).await;
    let gone = Image::random(1, 512);
    push_image(&client, &base, "gone/x", "v1", &gone).await;
    let digest = gone.manifest.digest.to_string();
    assert_eq!(
        delete(format!("{base}/v2/gone/x/manifests/{digest}")).await,
        202
    );

    let_the_store_clock_tick().await;
    let mut stale = config(&backend.storage, &[admin(&registry)]);
    stale.upload_max_age = Duration::ZERO;
    let report = gc_worker::run_once(&stale, CancellationToken::new())
        .await
        .expect("collection");
    assert_eq!(report.uploads_deleted, 1, "{report:?}");
    assert_eq!(report.repositories_pruned, 2, "{report:?}");
    assert_eq!(
        report.blobs_deleted, 3,
        "config, layer and manifest: {report:?}"
    );
    assert_eq!(status_of(location).await, 404, "the stale session is gone");
    let catalog = json_of(format!("{base}/v2/_catalog")).await;
    assert_eq!(catalog["repositories"], serde_json::json!([]));
    if let Some(directory) = backend.directory() {
        let repositories = directory.join("docker/registry/v2/repositories");
        let left: Vec<_> = std::fs::read_dir(&repositories)
            .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "left on disk: {left:?}");
    }
    assert_store_sound(&backend.storage).await;
}

on_both_backends!(
    a_replica_left_out_of_the_admin_endpoints_stops_the_collection,
    a_replica_left_out_of_the_admin_endpoints_stops_the_collection_on_files,
    a_replica_left_out_of_the_admin_endpoints_stops_the_collection_on_s3
);

/// Two replicas serve the store and gc-worker is told of one: the other
/// would keep writing through the window (it reads the lease in the store
/// only every ten seconds), so nothing is collected, the error names it,
/// and both replicas write again at once. Told of both, the same
/// collection runs.
async fn a_replica_left_out_of_the_admin_endpoints_stops_the_collection(backend: Backend) {
    let garbage = Image::random(1, 512);
    let (told, forgotten) = two_replicas_and_garbage(&backend, "left/out", &garbage).await;
    let client = reqwest::Client::new();

    let refused = gc_worker::run_once(
        &config(&backend.storage, &[admin(&told)]),
        CancellationToken::new(),
    )
    .await
    .expect_err("a collection that one replica was not told of");
    let message = format!("{refused:#}");
    assert!(
        message.contains(&forgotten.admin_addr.to_string())
            && message.contains("--admin-endpoints"),
        "the error names the replica left out and what to do: {message}"
    );
    for replica in [&told, &forgotten] {
        let layer = &garbage.layers[0];
        assert_eq!(
            status_of(format!(
                "{}/v2/left/out/blobs/{}",
                replica.url, layer.digest
            ))
            .await,
            200,
            "nothing was collected"
        );
        let started = test_support::start_upload(&client, &replica.url, "left/out").await;
        assert_eq!(started.status(), 202, "writable again at once");
    }

    let report = collect(&backend.storage, &[admin(&told), admin(&forgotten)]).await;
    assert_eq!(
        report.blobs_deleted, 3,
        "config, layer and manifest: {report:?}"
    );
    assert_store_sound(&backend.storage).await;
}

on_both_backends!(
    a_replica_that_wrote_and_stopped_before_the_window_is_not_missed,
    a_replica_that_wrote_and_stopped_before_the_window_is_not_missed_on_files,
    a_replica_that_wrote_and_stopped_before_the_window_is_not_missed_on_s3
);

/// A replica missing from `--admin-endpoints` pushes, between the
/// collection's listing and its window, an image whose blobs the store
/// holds as garbage, then stops. No live replica was left out when the
/// window opens, and the journals of those asked know nothing of the
/// push: the stopped replica's announcement still says it may have
/// written since the listing, so the whole store is listed again and the
/// image stays whole.
async fn a_replica_that_wrote_and_stopped_before_the_window_is_not_missed(backend: Backend) {
    let image = Image::random(2, 1024);
    let (told, untold) = two_replicas_and_garbage(&backend, "garbage/old", &image).await;
    let client = reqwest::Client::new();

    let held = HeldReplica::start().await;
    let endpoints = [held.endpoint.clone(), admin(&told)];
    let late_push = async {
        held.acquire_arrived().await;
        push_image(&client, &untold.url, "late/push", "v1", &image).await;
        untold.stop().await;
        // Past the store's clock slack: not live when the window opens.
        tokio::time::sleep(Duration::from_secs(3)).await;
        held.let_go();
    };
    let (report, ()) = tokio::join!(collect(&backend.storage, &endpoints), late_push);
    assert!(report.whole_store_relisted, "{report:?}");
    assert_pulls(&told.url, "late/push", "v1", &image).await;
    assert_store_sound(&backend.storage).await;
}

/// A replica that restarted between the listing and the window answers
/// under another id: what its predecessor wrote is in no journal, so the
/// whole store is listed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_restarted_before_the_window_has_the_whole_store_listed() {
    let backend = Backend::file();
    let registry = TestRegistry::start(&backend.storage).await;
    let image = Image::random(1, 512);
    push_image(
        &reqwest::Client::new(),
        &registry.url,
        "kept/app",
        "v1",
        &image,
    )
    .await;
    let held = HeldReplica::start().await;
    let endpoints = [held.endpoint.clone(), admin(&registry)];
    let restart = async {
        held.acquire_arrived().await;
        held.restart();
        held.let_go();
    };
    let (report, ()) = tokio::join!(collect(&backend.storage, &endpoints), restart);
    assert!(report.whole_store_relisted, "{report:?}");
    assert_pulls(&registry.url, "kept/app", "v1", &image).await;

    let report = collect(&backend.storage, &[admin(&registry)]).await;
    assert!(
        !report.whole_store_relisted && report.repositories_relisted == 0,
        "nothing was written since the listing: {report:?}"
    );
}

/// A push cut off by a killed replica leaves an incomplete multipart upload
/// on S3: a dry run counts it and a collection aborts it. (moto_server
/// dates every upload in 2010, so the age limit is covered by the unit
/// test of `sweep::is_abandoned`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_multipart_uploads_are_aborted_on_s3() {
    let Some(backend) = Backend::s3().await else {
        return;
    };
    let (moto, (bucket, prefix)) = (backend.s3_url().expect("S3"), backend.bucket.expect("S3"));
    let registry = TestRegistry::start(&backend.storage).await;
    let hex = "a1".repeat(32);
    let key = format!("{prefix}/docker/registry/v2/blobs/sha256/a1/{hex}/data");
    test_support::abandon_multipart_upload(moto, bucket, &key).await;
    test_support::abandon_multipart_upload(moto, bucket, "elsewhere/not-ours").await;
    // A key object_store cannot name (another tool's) is left alone and
    // stops no collection.
    let odd = format!("{prefix}/docker/registry/v2/repositories/lib/app//odd");
    test_support::abandon_multipart_upload(moto, bucket, &odd).await;

    let mut gc = config(&backend.storage, &[admin(&registry)]);
    gc.dry_run = true;
    let planned = gc_worker::run_once(&gc, CancellationToken::new())
        .await
        .expect("dry run");
    assert_eq!(planned.multipart_uploads_aborted, 1, "{planned:?}");
    gc.dry_run = false;
    let report = gc_worker::run_once(&gc, CancellationToken::new())
        .await
        .expect("collection");
    assert_eq!(report.multipart_uploads_aborted, 1, "{report:?}");
    let store = registry_storage::Store::open(&backend.storage).expect("store");
    let left = store.incomplete_multipart_uploads().await.expect("listing");
    assert!(left.is_empty(), "{left:?}");
    let reports = store.recent_gc_reports(5).await.expect("reports");
    assert_eq!(reports.len(), 1, "the collection's report is found");
}

/// Distribution keeps no referrers index, so an artifact pushed through it
/// is missing from the referrers API once Berth serves the store; a
/// collection rebuilds the index from the manifests it reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_written_by_distribution_gets_its_referrers_index() {
    let work = tempfile::tempdir().expect("temporary directory");
    let store = work.path().join("store");
    std::fs::create_dir_all(&store).expect("store directory");
    let Some(distribution) = test_support::start_docker_registry(&store).await else {
        return;
    };
    let client = reqwest::Client::new();
    let image = Image::random(1, 512);
    push_image(&client, &distribution.url, "app", "v1", &image).await;
    let signature = Image::artifact("application/vnd.example.signature", &image.manifest);
    for blob in signature.blobs() {
        push_blob(&client, &distribution.url, "app", blob).await;
    }
    let digest = signature.manifest.digest.to_string();
    push_manifest(
        &client,
        &distribution.url,
        "app",
        &digest,
        &signature.manifest,
    )
    .await;
    distribution.stop();

    let storage = store.to_str().expect("utf-8");
    let registry = TestRegistry::start(storage).await;
    let referrers_url = format!(
        "{}/v2/app/referrers/{}",
        registry.url, image.manifest.digest
    );
    assert_eq!(
        json_of(referrers_url.clone()).await["manifests"],
        serde_json::json!([])
    );
    let report = collect(storage, &[admin(&registry)]).await;
    assert_eq!(report.referrers_indexed, 1, "{report:?}");
    let listed = json_of(referrers_url).await;
    assert_eq!(listed["manifests"][0]["digest"], digest);
    assert_eq!(
        listed["manifests"][0]["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(
        collect(storage, &[admin(&registry)])
            .await
            .referrers_indexed,
        0,
        "indexed once"
    );
    assert_store_sound(storage).await;
}

on_both_backends!(
    what_kept_manifests_use_stays_servable,
    what_kept_manifests_use_stays_servable_on_files,
    what_kept_manifests_use_stays_servable_on_s3
);

/// A kept manifest may use an untagged manifest of its repository as a
/// layer (served through its revision link), or a foreign layer whose
/// bytes were pushed anyway (as `--allow-nondistributable-artifacts`
/// does): both stay servable after a collection.
async fn what_kept_manifests_use_stays_servable(backend: Backend) {
    let registry = TestRegistry::start(&backend.storage).await;
    let (client, base) = (reqwest::Client::new(), registry.url.clone());
    let inner = Image::random(1, 256);
    push_image(&client, &base, "r", "inner", &inner).await;
    assert_eq!(delete(format!("{base}/v2/r/manifests/inner")).await, 202);
    let foreign = Blob::new(
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        random_bytes(2048),
    );
    push_blob(&client, &base, "r", &foreign).await;
    let config = Blob::new("application/vnd.oci.image.config.v1+json", &b"{}"[..]);
    push_blob(&client, &base, "r", &config).await;
    let mut foreign_descriptor = foreign.descriptor();
    foreign_descriptor["urls"] = serde_json::json!(["https://example.com/layer"]);
    let outer = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": registry_core::media_types::OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [inner.manifest.descriptor(), foreign_descriptor],
    });
    let outer = Blob::new(registry_core::media_types::OCI_MANIFEST, outer.to_string());
    push_manifest(&client, &base, "r", "outer", &outer).await;
    let_the_store_clock_tick().await;

    collect(&backend.storage, &[admin(&registry)]).await;
    for blob in [&inner.manifest, &foreign, &config] {
        assert_eq!(
            bytes_of(format!("{base}/v2/r/blobs/{}", blob.digest)).await,
            blob.bytes,
            "{}",
            blob.media_type
        );
    }
    assert_store_sound(&backend.storage).await;
}

/// fsck compares what a manifest says of its blobs with what is stored,
/// and does not count a subject that was never pushed as a problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_finds_a_blob_of_the_wrong_size() {
    let backend = Backend::file();
    let registry = TestRegistry::start(&backend.storage).await;
    let client = reqwest::Client::new();
    let image = Image::random(1, 512);
    push_image(&client, &registry.url, "r", "v1", &image).await;
    let unpushed = Image::random(1, 16);
    let early = Image::artifact("application/vnd.example.sig", &unpushed.manifest);
    push_image(&client, &registry.url, "r", "early", &early).await;
    assert_store_sound(&backend.storage).await;

    let hex = image.layers[0].digest.hex().to_owned();
    let data = backend.directory().expect("a file store").join(format!(
        "docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    std::fs::write(&data, b"six bytes more than nothing").expect("overwrite");
    let store = registry_storage::Store::open(&backend.storage).expect("store");
    let findings = gc_worker::fsck::check(&store).await.expect("fsck");
    assert_eq!(findings.problems.len(), 1, "{findings:?}");
    assert!(findings.problems[0].contains("layers[0]"), "{findings:?}");
    assert_eq!(findings.absent_subjects, 1);
}

/// fsck lists every damaged object it finds and goes on to the next: a
/// tag link that is not a digest, a tag link that is a special file, and
/// manifest bytes that are not a manifest, in three repositories.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsck_lists_every_damaged_object_and_goes_on() {
    let backend = Backend::file();
    let registry = TestRegistry::start(&backend.storage).await;
    let client = reqwest::Client::new();
    let images: Vec<Image> = (0..4).map(|_| Image::random(1, 256)).collect();
    for (repository, image) in ["a", "b", "c", "sound"].into_iter().zip(&images) {
        push_image(&client, &registry.url, repository, "v1", image).await;
    }
    let root = backend
        .directory()
        .expect("a file store")
        .join("docker/registry/v2");
    let tag_link = |repository: &str| {
        root.join(format!(
            "repositories/{repository}/_manifests/tags/v1/current/link"
        ))
    };
    std::fs::write(tag_link("a"), b"not a digest").expect("overwrite a link");
    std::fs::remove_file(tag_link("b")).expect("remove a link");
    std::os::unix::fs::symlink("/dev/zero", tag_link("b")).expect("link to /dev/zero");
    let hex = images[2].manifest.digest.hex().to_owned();
    let data = root.join(format!("blobs/sha256/{}/{hex}/data", &hex[..2]));
    std::fs::write(&data, b"{ not json").expect("overwrite manifest bytes");

    let store = registry_storage::Store::open(&backend.storage).expect("store");
    let findings = gc_worker::fsck::check(&store).await.expect("fsck goes on");
    assert_eq!(findings.problems.len(), 3, "{findings:#?}");
    for (repository, what) in [("a", "tag v1"), ("b", "tag v1"), ("c", hex.as_str())] {
        assert!(
            findings
                .problems
                .iter()
                .any(|problem| problem.starts_with(&format!("{repository}: "))
                    && problem.contains(what)),
            "nothing about {repository}: {findings:#?}"
        );
    }
}
