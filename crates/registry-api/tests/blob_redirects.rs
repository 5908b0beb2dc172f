//! `--redirect-blobs`: blob `GET`s answered with a 307 to a presigned URL
//! of the S3 store (`moto_server`), which serves the bytes, ranges too; a
//! `HEAD` is still answered by the registry; a blob the repository does not
//! link is never signed; skopeo pulls through the redirects; a store that
//! is not S3 is refused at start, naming the flag.

use std::process::Command;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use test_support::{Image, TestRegistry, push_image, require_tool, run_tool, start_moto};

const BINARY: &str = env!("CARGO_BIN_EXE_registry-api");

#[tokio::test]
async fn blob_gets_go_to_the_store_and_heads_stay_here() {
    let Some((moto, storage)) = start_moto("berth-redirect", "store").await else {
        return;
    };
    let mut config = registry_api::Config::with_storage(&storage);
    config.redirect_blobs = Some(Duration::from_secs(120));
    let registry = TestRegistry::start_with(config).await;
    let image = Image::random(2, 70_000);
    let client = reqwest::Client::new();
    push_image(&client, &registry.url, "team/app", "v1", &image).await;
    let manual = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .expect("client");

    for blob in image.blobs() {
        let url = format!("{}/v2/team/app/blobs/{}", registry.url, blob.digest);
        let redirected = manual.get(&url).send().await.expect("GET");
        assert_eq!(redirected.status(), StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(
            redirected.headers()["docker-content-digest"],
            blob.digest.to_string().as_str()
        );
        let location = redirected.headers()["location"]
            .to_str()
            .expect("text")
            .to_owned();
        assert!(location.starts_with(&moto.url), "{location}");
        assert!(location.contains("X-Amz-Signature"), "{location}");
        assert!(redirected.bytes().await.expect("body").is_empty());

        let from_store = client.get(&location).send().await.expect("store GET");
        assert_eq!(from_store.status(), 200);
        assert_eq!(from_store.bytes().await.expect("bytes"), blob.bytes);
        let followed = client.get(&url).send().await.expect("followed GET");
        assert_eq!(followed.bytes().await.expect("bytes"), blob.bytes);
        let ranged = client
            .get(&url)
            .header("range", "bytes=1-10")
            .send()
            .await
            .expect("ranged GET");
        assert_eq!(ranged.status(), 206);
        assert_eq!(
            ranged.bytes().await.expect("bytes"),
            blob.bytes.slice(1..11)
        );

        let head = manual.head(&url).send().await.expect("HEAD");
        assert_eq!(head.status(), 200, "HEAD is answered here");
        assert_eq!(
            head.headers()["content-length"],
            blob.bytes.len().to_string().as_str()
        );
    }

    let elsewhere = format!(
        "{}/v2/team/other/blobs/{}",
        registry.url, image.layers[0].digest
    );
    let refused = manual.get(&elsewhere).send().await.expect("GET");
    assert_eq!(
        refused.status(),
        404,
        "a blob the repository lacks is never signed"
    );
    assert!(refused.headers().get("location").is_none());

    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let work = tempfile::tempdir().expect("directory");
    let pulled = work.path().join("pulled");
    let mut copy = skopeo.command();
    copy.args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{}/team/app:v1", registry.host()))
        .arg(format!("oci:{}:v1", pulled.display()));
    run_tool(copy).await;
    for blob in image.blobs() {
        let path = pulled.join("blobs/sha256").join(blob.digest.hex());
        assert_eq!(std::fs::read(path).expect("pulled blob"), blob.bytes);
    }
}

#[test]
fn a_store_that_is_not_s3_is_refused_naming_the_flag() {
    let directory = tempfile::tempdir().expect("directory");
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .arg("--storage")
        .arg(directory.path())
        .args(["--redirect-blobs", "5m"])
        .output()
        .expect("registry-api");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--redirect-blobs needs an S3 store"),
        "{stderr}"
    );
}
