//! In process: manifest push and pull with content negotiation, validation
//! errors, deletion by tag and digest, tags and catalog pagination, and the
//! referrers API.

use axum::http::{Method, StatusCode};
use registry_core::media_types::{DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST};
use test_support::{Blob, Image, Index, TestApp};

#[tokio::test]
async fn a_pushed_image_pulls_by_tag_and_digest() {
    let app = TestApp::new();
    let image = Image::random(2, 100);
    let digest = image.manifest.digest.to_string();
    let put = app.put_manifest("r", "v1", &image.manifest).await;
    assert_eq!(put.error_code(), "MANIFEST_BLOB_UNKNOWN");
    assert!(put.json()["errors"][0]["detail"]["digest"].is_string());

    app.push_image("r", "v1", &image).await;
    for reference in ["v1", digest.as_str()] {
        let get = app.get(&format!("/v2/r/manifests/{reference}")).await;
        assert_eq!(get.status, StatusCode::OK);
        assert_eq!(get.body, image.manifest.bytes);
        assert_eq!(get.header("content-type"), Some(OCI_MANIFEST));
        assert_eq!(get.header("docker-content-digest"), Some(digest.as_str()));
        let head = app.head(&format!("/v2/r/manifests/{reference}")).await;
        assert_eq!(head.status, StatusCode::OK);
        assert_eq!(
            head.header("content-length"),
            Some(image.manifest.bytes.len().to_string().as_str())
        );
        assert!(head.body.is_empty());
    }
    let by_blob_endpoint = app.get(&format!("/v2/r/blobs/{digest}")).await;
    assert_eq!(by_blob_endpoint.body, image.manifest.bytes);
}

#[tokio::test]
async fn docker_manifests_keep_their_media_type() {
    let app = TestApp::new();
    let image = Image::random_docker(1, 10);
    app.push_image("d", "latest", &image).await;
    let get = app.get("/v2/d/manifests/latest").await;
    assert_eq!(get.header("content-type"), Some(DOCKER_MANIFEST));
}

#[tokio::test]
async fn accept_negotiation_for_tags() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    app.push_image("r", "v1", &image).await;
    let accept = |value| [("accept", value)];
    let refused = app
        .send(
            Method::GET,
            "/v2/r/manifests/v1",
            &accept(DOCKER_MANIFEST),
            "",
        )
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
    assert_eq!(refused.error_code(), "MANIFEST_UNKNOWN");
    let two_headers = app
        .send(
            Method::GET,
            "/v2/r/manifests/v1",
            &[("accept", DOCKER_MANIFEST), ("accept", OCI_MANIFEST)],
            "",
        )
        .await;
    assert_eq!(two_headers.status, StatusCode::OK);
    let wildcard = app
        .send(Method::GET, "/v2/r/manifests/v1", &accept("*/*"), "")
        .await;
    assert_eq!(wildcard.status, StatusCode::OK);
    let by_digest = format!("/v2/r/manifests/{}", image.manifest.digest);
    let exact = app
        .send(Method::GET, &by_digest, &accept(DOCKER_MANIFEST), "")
        .await;
    assert_eq!(exact.status, StatusCode::OK, "a digest names exact content");
}

#[tokio::test]
async fn invalid_manifests_are_refused_with_their_codes() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    for blob in image.blobs() {
        app.push_blob("r", blob).await;
    }
    let wrong_digest = format!("/v2/r/manifests/{}", Blob::new("x", "other").digest);
    let put = app
        .send(
            Method::PUT,
            &wrong_digest,
            &[("content-type", OCI_MANIFEST)],
            image.manifest.bytes.clone(),
        )
        .await;
    assert_eq!(put.error_code(), "DIGEST_INVALID");

    let garbage = app
        .send(
            Method::PUT,
            "/v2/r/manifests/x",
            &[("content-type", OCI_MANIFEST)],
            "not json",
        )
        .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.error_code(), "MANIFEST_INVALID");

    let mismatch = app
        .send(
            Method::PUT,
            "/v2/r/manifests/x",
            &[("content-type", OCI_INDEX)],
            image.manifest.bytes.clone(),
        )
        .await;
    assert_eq!(mismatch.error_code(), "MANIFEST_INVALID");

    let schema1 = r#"{"schemaVersion":1,"name":"r","tag":"x","fsLayers":[]}"#;
    let old = app
        .send(Method::PUT, "/v2/r/manifests/x", &[], schema1)
        .await;
    assert_eq!(old.error_code(), "MANIFEST_INVALID");

    let huge = format!(
        r#"{{"schemaVersion":2,"pad":"{}"}}"#,
        "a".repeat(5 * 1024 * 1024)
    );
    let too_big = app
        .send(
            Method::PUT,
            "/v2/r/manifests/x",
            &[("content-type", OCI_MANIFEST)],
            huge,
        )
        .await;
    assert_eq!(too_big.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(too_big.error_code(), "MANIFEST_INVALID");

    assert_eq!(
        app.get("/v2/r/manifests/x").await.error_code(),
        "MANIFEST_UNKNOWN"
    );
}

#[tokio::test]
async fn an_index_needs_its_children_first() {
    let app = TestApp::new();
    let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
    let early = app.put_manifest("multi", "latest", &index.manifest).await;
    assert_eq!(early.error_code(), "MANIFEST_BLOB_UNKNOWN");
    for image in &index.images {
        app.push_image("multi", &image.manifest.digest.to_string(), image)
            .await;
    }
    let put = app.put_manifest("multi", "latest", &index.manifest).await;
    assert_eq!(put.status, StatusCode::CREATED);
    let get = app.get("/v2/multi/manifests/latest").await;
    assert_eq!(get.header("content-type"), Some(OCI_INDEX));
    assert_eq!(get.body, index.manifest.bytes);
}

#[tokio::test]
async fn deleting_a_tag_untags_and_deleting_a_digest_removes() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    app.push_image("r", "a", &image).await;
    app.put_manifest("r", "b", &image.manifest).await;
    let by_digest = format!("/v2/r/manifests/{}", image.manifest.digest);

    assert_eq!(
        app.delete("/v2/r/manifests/a").await.status,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        app.get("/v2/r/manifests/a").await.error_code(),
        "MANIFEST_UNKNOWN"
    );
    assert_eq!(app.get(&by_digest).await.status, StatusCode::OK);
    assert_eq!(
        app.delete("/v2/r/manifests/a").await.error_code(),
        "MANIFEST_UNKNOWN"
    );

    assert_eq!(app.delete(&by_digest).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.get(&by_digest).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("/v2/r/manifests/b").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get("/v2/r/tags/list").await.json()["tags"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn tags_and_catalog_paginate_in_lexical_order() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    app.push_image("zeta", "v10", &image).await;
    for tag in ["v2", "latest", "v1"] {
        app.put_manifest("zeta", tag, &image.manifest).await;
    }
    for repository in ["alpha", "beta/nested/deep"] {
        app.push_image(repository, "x", &image).await;
    }

    let all = app.get("/v2/zeta/tags/list").await;
    assert_eq!(
        all.json(),
        serde_json::json!({"name": "zeta", "tags": ["latest", "v1", "v10", "v2"]})
    );
    assert_eq!(all.header("link"), None);

    let first = app.get("/v2/zeta/tags/list?n=2").await;
    assert_eq!(first.json()["tags"], serde_json::json!(["latest", "v1"]));
    assert_eq!(
        first.header("link"),
        Some("</v2/zeta/tags/list?n=2&last=v1>; rel=\"next\"")
    );
    let second = app.get("/v2/zeta/tags/list?n=2&last=v1").await;
    assert_eq!(second.json()["tags"], serde_json::json!(["v10", "v2"]));

    let catalog = app.get("/v2/_catalog?n=2").await;
    assert_eq!(
        catalog.json()["repositories"],
        serde_json::json!(["alpha", "beta/nested/deep"])
    );
    assert_eq!(
        catalog.header("link"),
        Some("</v2/_catalog?n=2&last=beta%2Fnested%2Fdeep>; rel=\"next\"")
    );
    let rest = app.get("/v2/_catalog?n=2&last=beta%2Fnested%2Fdeep").await;
    assert_eq!(rest.json()["repositories"], serde_json::json!(["zeta"]));
    assert_eq!(
        app.get("/v2/_catalog?n=x").await.error_code(),
        "PAGINATION_NUMBER_INVALID"
    );
    assert_eq!(
        app.get("/v2/nothing/tags/list").await.error_code(),
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn referrers_list_manifests_by_subject() {
    let app = TestApp::new();
    let image = Image::random(1, 10);
    app.push_image("r", "v1", &image).await;
    let signature = Image::artifact("application/vnd.example.signature", &image.manifest);
    let sbom = Image::artifact("application/vnd.example.sbom", &image.manifest);
    for artifact in [&signature, &sbom] {
        for blob in artifact.blobs() {
            app.push_blob("r", blob).await;
        }
        let reference = artifact.manifest.digest.to_string();
        let put = app.put_manifest("r", &reference, &artifact.manifest).await;
        assert_eq!(put.status, StatusCode::CREATED);
        assert_eq!(
            put.header("oci-subject"),
            Some(image.manifest.digest.to_string().as_str())
        );
    }
    let uri = format!("/v2/r/referrers/{}", image.manifest.digest);
    let all = app.get(&uri).await;
    assert_eq!(all.header("content-type"), Some(OCI_INDEX));
    let manifests = all.json()["manifests"]
        .as_array()
        .expect("manifests")
        .clone();
    assert_eq!(manifests.len(), 2);
    let signature_entry = manifests
        .iter()
        .find(|entry| entry["digest"] == signature.manifest.digest.to_string())
        .expect("the signature is listed");
    assert_eq!(
        signature_entry["artifactType"],
        "application/vnd.example.signature"
    );
    assert_eq!(signature_entry["size"], signature.manifest.bytes.len());
    assert_eq!(
        signature_entry["annotations"]["org.opencontainers.image.title"],
        "signature"
    );

    let filtered = app
        .get(&format!("{uri}?artifactType=application/vnd.example.sbom"))
        .await;
    assert_eq!(filtered.header("oci-filters-applied"), Some("artifactType"));
    assert_eq!(
        filtered.json()["manifests"].as_array().map(Vec::len),
        Some(1)
    );

    let delete = app
        .delete(&format!("/v2/r/manifests/{}", sbom.manifest.digest))
        .await;
    assert_eq!(delete.status, StatusCode::ACCEPTED);
    assert_eq!(
        app.get(&uri).await.json()["manifests"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let unknown = app
        .get(&format!("/v2/r/referrers/{}", Blob::new("x", "y").digest))
        .await;
    assert_eq!(unknown.status, StatusCode::OK);
    assert_eq!(unknown.json()["manifests"], serde_json::json!([]));
}
