//! In process: blob reads, monolithic and chunked uploads, mounts, and every
//! error path of the blob endpoints, over the in-memory store.

use axum::http::{Method, StatusCode};
use test_support::{Blob, TestApp, random_bytes};

fn blob(size: usize) -> Blob {
    Blob::new("application/octet-stream", random_bytes(size))
}

#[tokio::test]
async fn base_endpoint_announces_the_api_version() {
    let app = TestApp::new();
    let response = app.get("/v2/").await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(
        response.header("docker-distribution-api-version"),
        Some("registry/2.0")
    );
    assert!(response.header("x-request-id").is_some());
    let unknown = app.get("/v2/a/unknown/b").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.error_code(), "UNSUPPORTED");
}

#[tokio::test]
async fn monolithic_push_then_head_get_and_ranges() {
    let app = TestApp::new();
    let content = blob(1000);
    app.push_blob("team/app", &content).await;
    let uri = format!("/v2/team/app/blobs/{}", content.digest);

    let head = app.head(&uri).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), Some("1000"));
    assert_eq!(
        head.header("docker-content-digest"),
        Some(content.digest.to_string().as_str())
    );
    assert!(head.body.is_empty());

    let get = app.get(&uri).await;
    assert_eq!(get.body, content.bytes);

    let partial = app
        .send(Method::GET, &uri, &[("range", "bytes=10-19")], "")
        .await;
    assert_eq!(partial.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(partial.header("content-range"), Some("bytes 10-19/1000"));
    assert_eq!(partial.body, content.bytes.slice(10..20));

    let suffix = app
        .send(Method::GET, &uri, &[("range", "bytes=-5")], "")
        .await;
    assert_eq!(suffix.body, content.bytes.slice(995..));

    for range in ["bytes=1000-", "bytes=0-1,4-5", "lines=1-2"] {
        let refused = app.send(Method::GET, &uri, &[("range", range)], "").await;
        assert_eq!(refused.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(refused.header("content-range"), Some("bytes */1000"));
    }
}

#[tokio::test]
async fn large_blobs_stream_with_ranges_as_small_ones_do() {
    let app = TestApp::new();
    let content = blob(300 * 1024);
    app.push_blob("team/app", &content).await;
    let uri = format!("/v2/team/app/blobs/{}", content.digest);
    assert_eq!(app.get(&uri).await.body, content.bytes);
    let partial = app
        .send(Method::GET, &uri, &[("range", "bytes=100000-100009")], "")
        .await;
    assert_eq!(partial.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        partial.header("content-range"),
        Some(format!("bytes 100000-100009/{}", 300 * 1024).as_str())
    );
    assert_eq!(partial.body, content.bytes.slice(100_000..100_010));
}

#[tokio::test]
async fn a_blob_is_only_visible_in_repositories_that_link_it() {
    let app = TestApp::new();
    let content = blob(10);
    app.push_blob("one", &content).await;
    // Served (and so kept in memory) through `one` first: memory is never
    // a way around the repository's link.
    let served = app.get(&format!("/v2/one/blobs/{}", content.digest)).await;
    assert_eq!(served.body, content.bytes);
    let other = app.get(&format!("/v2/two/blobs/{}", content.digest)).await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.error_code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn a_wrong_digest_is_refused_and_stores_nothing() {
    let app = TestApp::new();
    let content = blob(100);
    let claimed = blob(100).digest;
    let response = app
        .send(
            Method::POST,
            &format!("/v2/r/blobs/uploads/?digest={claimed}"),
            &[],
            content.bytes.clone(),
        )
        .await;
    assert_eq!(response.status, StatusCode::BAD_REQUEST);
    assert_eq!(response.error_code(), "DIGEST_INVALID");
    assert!(
        app.state
            .store
            .blob_size(&claimed)
            .await
            .expect("store")
            .is_none()
    );
    assert!(
        app.state
            .store
            .blob_size(&content.digest)
            .await
            .expect("store")
            .is_none()
    );
}

#[tokio::test]
async fn chunked_upload_with_status_and_out_of_order_chunks() {
    let app = TestApp::new();
    let content = blob(3000);
    let start = app
        .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
        .await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header("range"), Some("0-0"));
    let location = start.header("location").expect("Location").to_owned();
    let uuid = start
        .header("docker-upload-uuid")
        .expect("Docker-Upload-UUID");
    assert!(location.ends_with(uuid));

    let first = app
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "0-999"), ("content-length", "1000")],
            content.bytes.slice(..1000),
        )
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), Some("0-999"));

    let gap = app
        .send(
            Method::PATCH,
            &location,
            &[("content-range", "2000-2999")],
            content.bytes.slice(2000..),
        )
        .await;
    assert_eq!(gap.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(gap.error_code(), "BLOB_UPLOAD_INVALID");

    let second = app
        .send(
            Method::PATCH,
            &location,
            &[],
            content.bytes.slice(1000..2000),
        )
        .await;
    assert_eq!(second.header("range"), Some("0-1999"));

    let status = app.get(&location).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), Some("0-1999"));

    let finish = app
        .send(
            Method::PUT,
            &format!("{location}?digest={}", content.digest),
            &[("content-range", "2000-2999")],
            content.bytes.slice(2000..),
        )
        .await;
    assert_eq!(finish.status, StatusCode::CREATED, "{finish:?}");
    assert_eq!(
        finish.header("location"),
        Some(format!("/v2/r/blobs/{}", content.digest).as_str())
    );
    let get = app.get(&format!("/v2/r/blobs/{}", content.digest)).await;
    assert_eq!(get.body, content.bytes);
    assert_eq!(app.get(&location).await.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn large_chunks_are_streamed_and_concatenated() {
    let app = TestApp::new();
    let content = blob(20 * 1024 * 1024 + 17);
    let start = app
        .send(Method::POST, "/v2/big/blobs/uploads/", &[], "")
        .await;
    let location = start.header("location").expect("Location").to_owned();
    let split = 9 * 1024 * 1024;
    let patch = app
        .send(Method::PATCH, &location, &[], content.bytes.slice(..split))
        .await;
    assert_eq!(patch.status, StatusCode::ACCEPTED);
    let finish = app
        .send(
            Method::PUT,
            &format!("{location}?digest={}", content.digest),
            &[],
            content.bytes.slice(split..),
        )
        .await;
    assert_eq!(finish.status, StatusCode::CREATED, "{finish:?}");
    let get = app.get(&format!("/v2/big/blobs/{}", content.digest)).await;
    assert_eq!(get.body.len(), content.bytes.len());
    assert!(get.body == content.bytes, "the blob came back different");
}

#[tokio::test]
async fn closing_an_upload_with_the_wrong_digest_cancels_it() {
    let app = TestApp::new();
    let content = blob(100);
    let location = app
        .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
        .await
        .header("location")
        .expect("Location")
        .to_owned();
    let wrong = blob(1).digest;
    let finish = app
        .send(
            Method::PUT,
            &format!("{location}?digest={wrong}"),
            &[],
            content.bytes.clone(),
        )
        .await;
    assert_eq!(finish.error_code(), "DIGEST_INVALID");
    assert!(
        app.state
            .store
            .blob_size(&wrong)
            .await
            .expect("store")
            .is_none()
    );
    assert_eq!(app.get(&location).await.status, StatusCode::NOT_FOUND);

    let location = app
        .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
        .await
        .header("location")
        .expect("Location")
        .to_owned();
    let missing_digest = app.send(Method::PUT, &location, &[], "").await;
    assert_eq!(missing_digest.error_code(), "DIGEST_INVALID");
    let cancel = app.delete(&location).await;
    assert_eq!(cancel.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(&location).await.error_code(), "BLOB_UPLOAD_UNKNOWN");
    assert_eq!(
        app.delete(&location).await.error_code(),
        "BLOB_UPLOAD_UNKNOWN"
    );
}

#[tokio::test]
async fn mounts_link_existing_blobs_or_fall_back_to_a_session() {
    let app = TestApp::new();
    let content = blob(50);
    app.push_blob("source", &content).await;
    let digest = &content.digest;

    let mounted = app
        .send(
            Method::POST,
            &format!("/v2/target/blobs/uploads/?mount={digest}&from=source"),
            &[],
            "",
        )
        .await;
    assert_eq!(mounted.status, StatusCode::CREATED);
    assert_eq!(
        app.get(&format!("/v2/target/blobs/{digest}")).await.body,
        content.bytes
    );

    let anywhere = app
        .send(
            Method::POST,
            &format!("/v2/third/blobs/uploads/?mount={digest}"),
            &[],
            "",
        )
        .await;
    assert_eq!(anywhere.status, StatusCode::CREATED);

    let not_in_source = app
        .send(
            Method::POST,
            &format!("/v2/fourth/blobs/uploads/?mount={digest}&from=empty"),
            &[],
            "",
        )
        .await;
    assert_eq!(not_in_source.status, StatusCode::ACCEPTED);
    assert!(not_in_source.header("docker-upload-uuid").is_some());
    assert_eq!(
        app.head(&format!("/v2/fourth/blobs/{digest}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn deleting_a_blob_unlinks_it_from_one_repository() {
    let app = TestApp::new();
    let content = blob(10);
    app.push_blob("a", &content).await;
    app.push_blob("b", &content).await;
    let uri = format!("/v2/a/blobs/{}", content.digest);
    assert_eq!(app.delete(&uri).await.status, StatusCode::ACCEPTED);
    assert_eq!(app.head(&uri).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.delete(&uri).await.error_code(), "BLOB_UNKNOWN");
    let still = app.head(&format!("/v2/b/blobs/{}", content.digest)).await;
    assert_eq!(still.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_names_digests_and_methods_get_their_codes() {
    let app = TestApp::new();
    assert_eq!(
        app.get("/v2/UPPER/tags/list").await.error_code(),
        "NAME_INVALID"
    );
    assert_eq!(
        app.get("/v2/a/blobs/sha256:abc").await.error_code(),
        "DIGEST_INVALID"
    );
    assert_eq!(
        app.get("/v2/a/blobs/md5:abc").await.error_code(),
        "DIGEST_INVALID"
    );
    let uploads = app.get("/v2/a/blobs/uploads/not-a-uuid").await;
    assert_eq!(uploads.error_code(), "BLOB_UPLOAD_UNKNOWN");
    let method = app.send(Method::PUT, "/v2/_catalog", &[], "").await;
    assert_eq!(method.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(method.error_code(), "UNSUPPORTED");
}

#[tokio::test]
async fn read_only_refuses_writes_and_serves_reads() {
    let app = TestApp::new();
    let content = blob(10);
    app.push_blob("r", &content).await;
    app.state.write_gate.set_read_only(true);
    let refused = app
        .send(Method::POST, "/v2/r/blobs/uploads/", &[], "")
        .await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.error_code(), "UNAVAILABLE");
    assert!(refused.header("retry-after").is_some());
    let delete = app.delete(&format!("/v2/r/blobs/{}", content.digest)).await;
    assert_eq!(delete.status, StatusCode::SERVICE_UNAVAILABLE);
    let read = app.get(&format!("/v2/r/blobs/{}", content.digest)).await;
    assert_eq!(read.body, content.bytes);
}

#[tokio::test]
async fn metrics_are_not_on_the_public_port() {
    let app = TestApp::new();
    assert_eq!(app.get("/metrics").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
}

/// A chunk whose body is still arriving holds the session: a close racing
/// it is answered 409 instead of publishing a file the chunk then writes
/// into, and the session carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_racing_a_slow_chunk_never_publishes_a_file_still_written() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = test_support::TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    let client = reqwest::Client::new();
    let base = registry.url.clone();
    let first = Blob::new("application/octet-stream", test_support::random_bytes(5000));
    let location = test_support::upload_first_chunk(&client, &base, "r", first.bytes.clone()).await;

    let (sender, receiver) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(1);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(receiver));
    let slow = tokio::spawn(
        client
            .patch(&location)
            .header("content-range", "5000-6023")
            .header("content-length", "1024")
            .body(body)
            .send(),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let close = client
        .put(format!("{location}?digest={}", first.digest))
        .send()
        .await
        .expect("PUT");
    assert_eq!(close.status(), 409, "a chunk is still being written");
    let rest = test_support::random_bytes(1024);
    sender.send(Ok(rest.clone().into())).await.expect("send");
    drop(sender);
    assert_eq!(slow.await.expect("task").expect("PATCH").status(), 202);
    let head = client
        .head(format!("{base}/v2/r/blobs/{}", first.digest))
        .send()
        .await
        .expect("HEAD");
    assert_eq!(
        head.status(),
        404,
        "nothing was published under the first part's digest"
    );

    let whole = Blob::new(
        "application/octet-stream",
        [first.bytes.to_vec(), rest].concat(),
    );
    let closed = client
        .put(format!("{location}?digest={}", whole.digest))
        .send()
        .await
        .expect("PUT");
    assert_eq!(closed.status(), 201);
    let pulled = client
        .get(format!("{base}/v2/r/blobs/{}", whole.digest))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert_eq!(pulled, whole.bytes);
}
