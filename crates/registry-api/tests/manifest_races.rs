//! Manifest writes to one repository that race each other: a tag push
//! against a delete by digest, on one replica and on two over one store.
//! Whatever the order the two land in, the store must end as one of the
//! two orders would leave it: a tag never names a manifest the repository
//! no longer has, and a tag moved away from a manifest is not deleted with
//! that manifest.

use reqwest::StatusCode;
use test_support::{Image, TestRegistry, push_blob, push_manifest};

/// Rounds of each race: the window is a few file operations wide, so one
/// round rarely hits it and a hundred nearly always do.
const ROUNDS: usize = 100;

/// The status of `GET /v2/<repository>/manifests/<reference>`.
async fn manifest_status(
    client: &reqwest::Client,
    base: &str,
    repository: &str,
    reference: &str,
) -> StatusCode {
    client
        .get(format!("{base}/v2/{repository}/manifests/{reference}"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("manifest GET")
        .status()
}

/// Sends `PUT <tag>` of `image`'s manifest to `put_to` and `DELETE <digest>`
/// of `deleted` to `delete_to`, at once; returns the two statuses.
async fn put_tag_and_delete(
    client: &reqwest::Client,
    (put_to, tag, image): (&str, &str, &Image),
    (delete_to, deleted): (&str, &str),
) -> (StatusCode, StatusCode) {
    let put = client
        .put(format!("{put_to}/v2/race/manifests/{tag}"))
        .header("content-type", &image.manifest.media_type)
        .body(image.manifest.bytes.clone())
        .send();
    let delete = client
        .delete(format!("{delete_to}/v2/race/manifests/{deleted}"))
        .send();
    let (put, delete) = tokio::join!(put, delete);
    (
        put.expect("manifest PUT").status(),
        delete.expect("manifest DELETE").status(),
    )
}

/// Pushes the blobs of each image into `race`.
async fn push_blobs(client: &reqwest::Client, base: &str, images: &[&Image]) {
    for image in images {
        for blob in image.blobs() {
            push_blob(client, base, "race", blob).await;
        }
    }
}

/// What must hold after a tag push raced a delete of its manifest.
#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// The tag and the manifest stand or fall together: one replica
    /// orders the two writes.
    BothOrNeither,
    /// A tag never names a manifest the repository no longer has: across
    /// replicas nothing orders the two, and the manifest may stay untagged.
    NoTagWithoutManifest,
}

/// Races `PUT race:latest` of a manifest against `DELETE` of the same
/// manifest by digest, sending the two to `put_to` and `delete_to`, and
/// checks `outcome` after each round on both.
async fn tag_push_against_its_delete(put_to: &str, delete_to: &str, outcome: Outcome) {
    let client = reqwest::Client::new();
    let image = Image::random(1, 64);
    push_blobs(&client, put_to, &[&image]).await;
    let digest = image.manifest.digest.to_string();
    for round in 0..ROUNDS {
        push_manifest(&client, put_to, "race", &digest, &image.manifest).await;
        let (put, delete) =
            put_tag_and_delete(&client, (put_to, "latest", &image), (delete_to, &digest)).await;
        assert_eq!(put, StatusCode::CREATED, "round {round}: the tag push");
        assert_eq!(delete, StatusCode::ACCEPTED, "round {round}: the delete");
        for base in [put_to, delete_to] {
            let by_tag = manifest_status(&client, base, "race", "latest").await;
            let by_digest = manifest_status(&client, base, "race", &digest).await;
            let held = match outcome {
                Outcome::BothOrNeither => by_tag == by_digest,
                Outcome::NoTagWithoutManifest => {
                    by_tag == StatusCode::NOT_FOUND || by_digest == StatusCode::OK
                }
            };
            assert!(
                held,
                "round {round}: the tag answers {by_tag} but its manifest {by_digest}"
            );
        }
        client
            .delete(format!("{put_to}/v2/race/manifests/latest"))
            .send()
            .await
            .expect("tag DELETE");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tag_push_racing_a_delete_of_its_manifest_leaves_both_or_neither() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    tag_push_against_its_delete(&registry.url, &registry.url, Outcome::BothOrNeither).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn across_two_replicas_a_tag_never_outlives_its_manifest() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let (a, b) = (
        TestRegistry::start(storage).await,
        TestRegistry::start(storage).await,
    );
    tag_push_against_its_delete(&a.url, &b.url, Outcome::NoTagWithoutManifest).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tag_moved_while_its_old_manifest_is_deleted_stays_moved() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    let base = registry.url.as_str();
    let client = reqwest::Client::new();
    let (old, new) = (Image::random(1, 64), Image::random(1, 64));
    push_blobs(&client, base, &[&old, &new]).await;
    let old_digest = old.manifest.digest.to_string();
    for round in 0..ROUNDS {
        push_manifest(&client, base, "race", "latest", &old.manifest).await;
        let (put, delete) =
            put_tag_and_delete(&client, (base, "latest", &new), (base, &old_digest)).await;
        assert_eq!(put, StatusCode::CREATED, "round {round}: the tag push");
        assert_eq!(delete, StatusCode::ACCEPTED, "round {round}: the delete");
        let tagged = client
            .get(format!("{base}/v2/race/manifests/latest"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .expect("manifest GET");
        assert_eq!(
            tagged.status(),
            StatusCode::OK,
            "round {round}: the moved tag was deleted with the manifest it left"
        );
        assert_eq!(
            tagged.headers()["docker-content-digest"],
            new.manifest.digest.to_string().as_str(),
            "round {round}"
        );
    }
}
