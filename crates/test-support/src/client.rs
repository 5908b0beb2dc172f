//! A minimal push client over reqwest, for setting up test fixtures.

use crate::{Blob, Image};

/// `POST`s a new upload session in `repository`.
pub async fn start_upload(
    client: &reqwest::Client,
    base: &str,
    repository: &str,
) -> reqwest::Response {
    client
        .post(format!("{base}/v2/{repository}/blobs/uploads/"))
        .send()
        .await
        .expect("upload start request")
}

/// Pushes one blob with `POST` then a single `PUT ?digest=` carrying the
/// whole blob, the flow every registry supports (Distribution 2.8 does not
/// complete a monolithic `POST ?digest=`).
pub async fn push_blob(client: &reqwest::Client, base: &str, repository: &str, blob: &Blob) {
    let started = start_upload(client, base, repository).await;
    assert_eq!(
        started.status(),
        202,
        "starting the upload of {}",
        blob.digest
    );
    let location = started.headers()["location"]
        .to_str()
        .expect("Location")
        .to_owned();
    let location = if location.starts_with("http") {
        location
    } else {
        format!("{base}{location}")
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let response = client
        .put(format!("{location}{separator}digest={}", blob.digest))
        .header("content-type", "application/octet-stream")
        .body(blob.bytes.clone())
        .send()
        .await
        .expect("blob push request");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "pushing blob {}: {body}", blob.digest);
}

/// Pushes a manifest under `reference` (a tag or a digest).
pub async fn push_manifest(
    client: &reqwest::Client,
    base: &str,
    repository: &str,
    reference: &str,
    manifest: &Blob,
) {
    let response = client
        .put(format!("{base}/v2/{repository}/manifests/{reference}"))
        .header("content-type", &manifest.media_type)
        .body(manifest.bytes.clone())
        .send()
        .await
        .expect("manifest push request");
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 201, "pushing manifest {reference}: {body}");
}

/// Pushes an image's blobs and its manifest under `tag`.
pub async fn push_image(
    client: &reqwest::Client,
    base: &str,
    repository: &str,
    tag: &str,
    image: &Image,
) {
    for blob in image.blobs() {
        push_blob(client, base, repository, blob).await;
    }
    push_manifest(client, base, repository, tag, &image.manifest).await;
}

/// Opens an upload session in `repository` and sends `chunk` as its first
/// `PATCH` (which must be accepted); returns the session's absolute URL,
/// to continue or close it.
pub async fn upload_first_chunk(
    client: &reqwest::Client,
    base: &str,
    repository: &str,
    chunk: impl Into<reqwest::Body>,
) -> String {
    let session = start_upload(client, base, repository).await;
    assert_eq!(session.status(), 202, "starting an upload in {repository}");
    let location = session.headers()["location"].to_str().expect("Location");
    let patched = client
        .patch(format!("{base}{location}"))
        .header("content-type", "application/octet-stream")
        .body(chunk)
        .send()
        .await
        .expect("PATCH");
    assert_eq!(patched.status(), 202, "the first chunk in {repository}");
    let location = patched.headers()["location"].to_str().expect("Location");
    format!("{base}{location}")
}
