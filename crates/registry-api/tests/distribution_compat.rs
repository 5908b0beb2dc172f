//! The registry:2 layout in both directions: a store Debian's
//! `docker-registry` (CNCF Distribution 2.8.2) wrote is served by Berth, and
//! a store Berth wrote is served by `docker-registry`.

use std::path::Path;

use test_support::{
    Image, Index, TestRegistry, Tool, require_tool, run_tool, start_docker_registry,
    write_oci_layout,
};

struct Fixture {
    image: Image,
    index: Index,
    _work: tempfile::TempDir,
    layout: std::path::PathBuf,
    store: std::path::PathBuf,
    skopeo: Tool,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let skopeo = require_tool("skopeo")?;
        let work = tempfile::tempdir().expect("temporary directory");
        let image = Image::random(2, 2048);
        let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
        let layout = work.path().join("layout");
        write_oci_layout(&layout, &[("single", &image)], &[("multi", &index)]);
        let store = work.path().join("store");
        std::fs::create_dir_all(&store).expect("store directory");
        Some(Fixture {
            image,
            index,
            layout,
            store,
            skopeo,
            _work: work,
        })
    }

    async fn skopeo(&self, args: Vec<String>) -> String {
        let mut command = self.skopeo.command();
        command.args(args);
        run_tool(command).await
    }

    async fn push_both(&self, host: &str) {
        for (tag, all) in [("single", false), ("multi", true)] {
            let mut args = vec!["copy".to_owned(), "--dest-tls-verify=false".to_owned()];
            if all {
                args.push("--all".to_owned());
            }
            args.push(format!("oci:{}:{tag}", self.layout.display()));
            args.push(format!("docker://{host}/compat/app:{tag}"));
            self.skopeo(args).await;
        }
    }

    /// Pulls both images from `host` and checks every byte.
    async fn pull_and_compare(&self, host: &str, out: &Path) {
        for (tag, manifest) in [
            ("single", &self.image.manifest),
            ("multi", &self.index.manifest),
        ] {
            let raw = self
                .skopeo(vec![
                    "inspect".into(),
                    "--raw".into(),
                    "--tls-verify=false".into(),
                    format!("docker://{host}/compat/app:{tag}"),
                ])
                .await;
            assert_eq!(raw.as_bytes(), &manifest.bytes[..], "manifest {tag}");
        }
        self.skopeo(vec![
            "copy".into(),
            "--all".into(),
            "--src-tls-verify=false".into(),
            format!("docker://{host}/compat/app:multi"),
            format!("oci:{}:multi", out.display()),
        ])
        .await;
        for child in &self.index.images {
            for blob in child.blobs().chain([&child.manifest]) {
                let path = out.join("blobs/sha256").join(blob.digest.hex());
                assert_eq!(std::fs::read(path).expect("pulled blob"), blob.bytes);
            }
        }
        let tags = self
            .skopeo(vec![
                "list-tags".into(),
                "--tls-verify=false".into(),
                format!("docker://{host}/compat/app"),
            ])
            .await;
        let tags: serde_json::Value = serde_json::from_str(&tags).expect("list-tags JSON");
        let mut tags: Vec<String> = serde_json::from_value(tags["Tags"].clone()).expect("tags");
        tags.sort();
        assert_eq!(tags, ["multi", "single"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn berth_serves_what_docker_registry_wrote() {
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let Some(distribution) = start_docker_registry(&fixture.store).await else {
        return;
    };
    fixture.push_both(&distribution.host()).await;
    distribution.stop();

    let berth = TestRegistry::start(fixture.store.to_str().expect("utf-8")).await;
    let out = fixture.store.with_extension("pulled-from-berth");
    fixture.pull_and_compare(&berth.host(), &out).await;
    let catalog: serde_json::Value = reqwest::get(format!("{}/v2/_catalog", berth.url))
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog JSON");
    assert_eq!(catalog["repositories"], serde_json::json!(["compat/app"]));
    berth.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_registry_serves_what_berth_wrote() {
    let Some(fixture) = Fixture::new() else {
        return;
    };
    let berth = TestRegistry::start(fixture.store.to_str().expect("utf-8")).await;
    fixture.push_both(&berth.host()).await;
    berth.stop().await;

    let data = |blob: &test_support::Blob| {
        let hex = blob.digest.hex();
        fixture
            .store
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    };
    for blob in fixture.image.blobs().chain([&fixture.image.manifest]) {
        assert_eq!(std::fs::read(data(blob)).expect("blob on disk"), blob.bytes);
    }
    let uploads = fixture
        .store
        .join("docker/registry/v2/repositories/compat/app/_uploads");
    let leftovers = std::fs::read_dir(&uploads)
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(leftovers, 0, "finished uploads leave nothing behind");

    let Some(distribution) = start_docker_registry(&fixture.store).await else {
        return;
    };
    let out = fixture.store.with_extension("pulled-from-distribution");
    fixture.pull_and_compare(&distribution.host(), &out).await;
}
