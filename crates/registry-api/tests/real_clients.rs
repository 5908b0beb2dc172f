//! Real servers on ephemeral ports, driven by real clients: skopeo, podman
//! (as root, vfs storage) and the `oci-client` crate.

use std::path::Path;

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use test_support::{Image, Index, Podman, TestRegistry, require_tool, run_tool, write_oci_layout};

/// The digest and tag of every manifest in an OCI layout's index.json.
fn layout_manifests(dir: &Path) -> Vec<(String, String)> {
    let index = std::fs::read(dir.join("index.json")).expect("index.json");
    let index: serde_json::Value = serde_json::from_slice(&index).expect("index.json is JSON");
    index["manifests"]
        .as_array()
        .expect("manifests")
        .iter()
        .map(|entry| {
            let tag = entry["annotations"]["org.opencontainers.image.ref.name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            (entry["digest"].as_str().expect("digest").to_owned(), tag)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_copies_inspects_lists_and_deletes() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let storage = work.path().join("store");
    let registry = TestRegistry::start(storage.to_str().expect("utf-8")).await;
    let image = Image::random(2, 4096);
    let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
    let layout = work.path().join("layout");
    write_oci_layout(&layout, &[("single", &image)], &[("multi", &index)]);
    let source = |tag: &str| format!("oci:{}:{tag}", layout.display());
    let remote = |tag: &str| format!("docker://{}/team/app:{tag}", registry.host());
    let skopeo_with = |args: &[&str]| {
        let mut command = skopeo.command();
        command.args(args);
        run_tool(command)
    };

    skopeo_with(&[
        "copy",
        "--dest-tls-verify=false",
        &source("single"),
        &remote("v1"),
    ])
    .await;
    skopeo_with(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &source("multi"),
        &remote("multi"),
    ])
    .await;

    let raw = skopeo_with(&["inspect", "--raw", "--tls-verify=false", &remote("v1")]).await;
    assert_eq!(raw.as_bytes(), &image.manifest.bytes[..]);
    let raw_index =
        skopeo_with(&["inspect", "--raw", "--tls-verify=false", &remote("multi")]).await;
    assert_eq!(raw_index.as_bytes(), &index.manifest.bytes[..]);
    let inspect = skopeo_with(&["inspect", "--tls-verify=false", &remote("v1")]).await;
    let inspect: serde_json::Value = serde_json::from_str(&inspect).expect("inspect JSON");
    assert_eq!(inspect["Digest"], image.manifest.digest.to_string());
    assert_eq!(inspect["Architecture"], "amd64");

    let tags = skopeo_with(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/team/app", registry.host()),
    ])
    .await;
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("list-tags JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["multi", "v1"]));

    let pulled = work.path().join("pulled");
    let destination = format!("oci:{}:multi", pulled.display());
    skopeo_with(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &remote("multi"),
        &destination,
    ])
    .await;
    assert_eq!(
        layout_manifests(&pulled),
        vec![(index.manifest.digest.to_string(), "multi".to_owned())]
    );
    for child in &index.images {
        let blob = pulled
            .join("blobs/sha256")
            .join(child.manifest.digest.hex());
        assert_eq!(
            std::fs::read(blob).expect("child manifest pulled"),
            child.manifest.bytes
        );
        for layer in &child.layers {
            let blob = pulled.join("blobs/sha256").join(layer.digest.hex());
            assert_eq!(std::fs::read(blob).expect("layer pulled"), layer.bytes);
        }
    }

    skopeo_with(&["delete", "--tls-verify=false", &remote("v1")]).await;
    let tags = skopeo_with(&[
        "list-tags",
        "--tls-verify=false",
        &format!("docker://{}/team/app", registry.host()),
    ])
    .await;
    let tags: serde_json::Value = serde_json::from_str(&tags).expect("list-tags JSON");
    assert_eq!(tags["Tags"], serde_json::json!(["multi"]));
    registry.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn podman_pushes_and_pulls() {
    let work = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start("memory://").await;
    let host = registry.host();
    let Some(podman) = Podman::new(work.path(), &host) else {
        return;
    };
    let image = Image::random(1, 2048);
    let layout = work.path().join("layout");
    write_oci_layout(&layout, &[("v1", &image)], &[]);
    let name = format!("{host}/podman/app:v1");
    podman.import(&layout, "v1", &name).await;

    podman.run(&["push", "--tls-verify=false", &name]).await;
    podman.run(&["rmi", "--all", "--force"]).await;
    podman.run(&["pull", "--tls-verify=false", &name]).await;
    let listed = podman
        .run(&["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .await;
    assert!(listed.lines().any(|line| line == name), "{listed}");

    let tags: serde_json::Value = reqwest::get(format!("{}/v2/podman/app/tags/list", registry.url))
        .await
        .expect("tags request")
        .json()
        .await
        .expect("tags JSON");
    assert_eq!(tags["tags"], serde_json::json!(["v1"]));
    registry.stop().await;
}

#[tokio::test]
async fn oci_client_pushes_and_pulls() {
    let registry = TestRegistry::start("memory://").await;
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..ClientConfig::default()
    });
    let reference: Reference = format!("{}/crate/client:v1", registry.host())
        .parse()
        .expect("reference");
    let image = Image::random(2, 1024 * 1024);
    let layers: Vec<ImageLayer> = image
        .layers
        .iter()
        .map(|layer| ImageLayer::oci_v1_gzip(layer.bytes.to_vec(), None))
        .collect();
    let config = Config::oci_v1(image.config.bytes.to_vec(), None);
    client
        .push(&reference, &layers, config, &RegistryAuth::Anonymous, None)
        .await
        .expect("oci-client push");

    let pulled = client
        .pull(
            &reference,
            &RegistryAuth::Anonymous,
            vec![oci_client::manifest::IMAGE_LAYER_GZIP_MEDIA_TYPE],
        )
        .await
        .expect("oci-client pull");
    assert_eq!(pulled.layers.len(), 2);
    // oci-client fetches layers concurrently and returns them as they
    // arrive, so match them by content, not by position.
    for pushed in &image.layers {
        assert!(
            pulled.layers.iter().any(|layer| layer.data == pushed.bytes),
            "layer {} came back",
            pushed.digest
        );
    }
    assert_eq!(pulled.config.data, image.config.bytes);
    let tags = client
        .list_tags(&reference, &RegistryAuth::Anonymous, None, None)
        .await
        .expect("oci-client tags");
    assert_eq!(tags.tags, ["v1"]);
    registry.stop().await;
}
