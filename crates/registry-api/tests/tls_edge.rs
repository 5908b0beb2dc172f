//! The deployed topology on loopback: HAProxy with `deploy/haproxy.cfg`
//! terminating TLS in front of two registry-api replicas over one store,
//! with skopeo pushing and pulling through it.

use test_support::{Edge, Image, TestRegistry, require_tool, run_tool, write_oci_layout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_through_the_tls_edge() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let work = tempfile::tempdir().expect("temporary directory");
    let store = work.path().join("store");
    let storage = store.to_str().expect("utf-8");
    let (a, b) = (
        TestRegistry::start(storage).await,
        TestRegistry::start(storage).await,
    );
    let Some(edge) = Edge::start(work.path(), &a.host(), &b.host()).await else {
        return;
    };

    let image = Image::random(3, 64 * 1024);
    let layout = work.path().join("layout");
    write_oci_layout(&layout, &[("v1", &image)], &[]);
    let remote = format!("docker://{}/edge/app:v1", edge.host);
    let skopeo_with = |args: Vec<String>| {
        let mut command = skopeo.command();
        command.args(args);
        run_tool(command)
    };
    // TLS without verification: the certificate is self-signed.
    skopeo_with(vec![
        "copy".into(),
        "--dest-tls-verify=false".into(),
        format!("oci:{}:v1", layout.display()),
        remote.clone(),
    ])
    .await;
    let raw = skopeo_with(vec![
        "inspect".into(),
        "--raw".into(),
        "--tls-verify=false".into(),
        remote,
    ])
    .await;
    assert_eq!(raw.as_bytes(), &image.manifest.bytes[..]);

    let plain_http = reqwest::get(format!("http://{}/v2/", edge.host)).await;
    assert!(
        plain_http.map_or(true, |response| !response.status().is_success()),
        "the edge must not serve plain HTTP"
    );
    for replica in [&a, &b] {
        let manifest = reqwest::get(format!("{}/v2/edge/app/manifests/v1", replica.url))
            .await
            .expect("manifest GET")
            .bytes()
            .await
            .expect("manifest body");
        assert_eq!(manifest, image.manifest.bytes);
    }
}
