//! In process: a pushed manifest is stored only when it can be served and
//! collected as what it was checked as: one kind, every descriptor's size
//! true, and references that cannot exist answered as unknown.

use axum::http::{Method, StatusCode};
use registry_core::media_types::{OCI_INDEX, OCI_MANIFEST};
use serde_json::json;
use test_support::{Blob, Image, Index, TestApp};

fn body(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("JSON")
}

async fn put(
    app: &TestApp,
    reference: &str,
    content_type: &str,
    manifest: Vec<u8>,
) -> test_support::TestResponse {
    let uri = format!("/v2/r/manifests/{reference}");
    app.send(
        Method::PUT,
        &uri,
        &[("content-type", content_type)],
        manifest,
    )
    .await
}

#[tokio::test]
async fn an_image_that_also_names_manifests_is_refused() {
    let app = TestApp::new();
    let image = Image::random(1, 100);
    for blob in image.blobs() {
        app.push_blob("r", blob).await;
    }
    let ambiguous = json!({
        "schemaVersion": 2,
        "config": image.config.descriptor(),
        "layers": [image.layers[0].descriptor()],
        "manifests": [],
    });
    let response = put(&app, "v1", OCI_MANIFEST, body(&ambiguous)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "MANIFEST_INVALID");
    assert_eq!(
        app.get("/v2/r/manifests/v1").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_manifest_without_media_type_is_served_as_what_it_was_checked_as() {
    let app = TestApp::new();
    let image = Image::random(1, 100);
    for blob in image.blobs() {
        app.push_blob("r", blob).await;
    }
    let plain = json!({
        "schemaVersion": 2,
        "config": image.config.descriptor(),
        "layers": [image.layers[0].descriptor()],
    });
    let response = put(&app, "v1", OCI_MANIFEST, body(&plain)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
    let served = app.get("/v2/r/manifests/v1").await;
    assert_eq!(served.header("content-type"), Some(OCI_MANIFEST));
    let as_index = put(&app, "v2", OCI_INDEX, body(&plain)).await;
    assert_eq!(as_index.error_code(), "MANIFEST_INVALID");
}

/// Pushes `image`'s blobs and returns its manifest JSON for editing.
async fn pushed_blobs_of(app: &TestApp, image: &Image) -> serde_json::Value {
    for blob in image.blobs() {
        app.push_blob("r", blob).await;
    }
    serde_json::from_slice(&image.manifest.bytes).expect("manifest JSON")
}

#[tokio::test]
async fn a_descriptor_with_the_wrong_size_is_refused_naming_it() {
    let app = TestApp::new();
    let big = Blob::new(
        "application/vnd.oci.image.layer.v1.tar+gzip",
        test_support::random_bytes(100_000),
    );
    let mut image = Image::random(1, 100);
    image.layers.push(big);
    let mut manifest = pushed_blobs_of(&app, &image).await;
    manifest["layers"] = json!(
        image
            .layers
            .iter()
            .map(Blob::descriptor)
            .collect::<Vec<_>>()
    );
    manifest["layers"][1]["size"] = json!(5);
    let response = put(&app, "v1", OCI_MANIFEST, body(&manifest)).await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "MANIFEST_INVALID");
    let error = &response.json()["errors"][0];
    assert_eq!(error["detail"]["field"], "layers[1]");
    assert!(
        error["message"].as_str().unwrap_or("").contains("100000"),
        "{error}"
    );

    manifest["layers"][1]["size"] = json!(100_000);
    manifest["config"]["size"] = json!(image.config.bytes.len() + 1);
    let response = put(&app, "v1", OCI_MANIFEST, body(&manifest)).await;
    assert_eq!(response.json()["errors"][0]["detail"]["field"], "config");

    manifest["config"]["size"] = json!(image.config.bytes.len());
    let response = put(&app, "v1", OCI_MANIFEST, body(&manifest)).await;
    assert_eq!(response.status, StatusCode::CREATED, "{response:?}");
}

#[tokio::test]
async fn index_children_and_a_present_subject_must_have_their_size() {
    let app = TestApp::new();
    let index = Index::new(vec![Image::random_for("amd64")]);
    let child = &index.images[0];
    app.push_image("r", &child.manifest.digest.to_string(), child)
        .await;
    let mut wrong =
        serde_json::from_slice::<serde_json::Value>(&index.manifest.bytes).expect("JSON");
    wrong["manifests"][0]["size"] = json!(child.manifest.bytes.len() - 1);
    let response = put(&app, "multi", OCI_INDEX, body(&wrong)).await;
    assert_eq!(response.error_code(), "MANIFEST_INVALID");
    assert_eq!(
        response.json()["errors"][0]["detail"]["field"],
        "manifests[0]"
    );

    let signature = Image::artifact("application/vnd.example.sig", &child.manifest);
    let mut manifest = pushed_blobs_of(&app, &signature).await;
    manifest["subject"]["size"] = json!(1);
    let response = put(&app, "sig", OCI_MANIFEST, body(&manifest)).await;
    assert_eq!(response.json()["errors"][0]["detail"]["field"], "subject");

    // A subject not pushed yet is fine, whatever size it claims.
    let absent = Image::random(1, 10);
    let early = Image::artifact("application/vnd.example.sig", &absent.manifest);
    app.push_image("r", "early", &early).await;
}

#[tokio::test]
async fn a_reference_that_cannot_exist_is_unknown_and_cannot_be_pushed() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    app.push_image("r", "v1", &image).await;
    for bad in [".INVALID_NAME", "-x", "sha256:zz"] {
        let uri = format!("/v2/r/manifests/{bad}");
        for method in [Method::GET, Method::HEAD, Method::DELETE] {
            let response = app.send(method.clone(), &uri, &[], "").await;
            assert_eq!(response.status, StatusCode::NOT_FOUND, "{method} {bad}");
            if method != Method::HEAD {
                assert_eq!(response.error_code(), "MANIFEST_UNKNOWN", "{method} {bad}");
            }
        }
    }
    let tag = put(
        &app,
        ".INVALID_NAME",
        OCI_MANIFEST,
        image.manifest.bytes.to_vec(),
    )
    .await;
    assert_eq!(tag.status, StatusCode::BAD_REQUEST);
    assert_eq!(tag.error_code(), "TAG_INVALID");
    let digest = put(
        &app,
        "sha256:zz",
        OCI_MANIFEST,
        image.manifest.bytes.to_vec(),
    )
    .await;
    assert_eq!(digest.error_code(), "DIGEST_INVALID");
}
