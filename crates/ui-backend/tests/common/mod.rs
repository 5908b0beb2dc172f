//! What the UI tests share: a registry with users and a policy, its UI,
//! and calls to the JSON API as a user.

#![allow(dead_code)] // Each test file uses its own part.

use base64::Engine;
use serde_json::{Value, json};
use test_support::{Image, Index, TestAuth, TestRegistry, TestUi, argon2id_line};

/// A registry with users `alice` (everything) and `bob` (pull in `team/**`
/// only), and its UI.
pub struct World {
    pub _dir: tempfile::TempDir,
    pub storage: String,
    pub auth: TestAuth,
    pub registry: TestRegistry,
    pub ui: TestUi,
    pub http: reqwest::Client,
}

const POLICY: &str = r#"
[[rule]]
repositories = ["**"]
users = ["alice"]
actions = ["pull", "push", "delete"]

[[rule]]
repositories = ["team/**"]
users = ["bob"]
actions = ["pull"]
"#;

impl World {
    pub async fn start() -> World {
        World::start_on(None, None).await
    }

    /// The same world over `storage` (the default: a directory of its
    /// own), with blob `GET`s redirected to the store for `redirect`.
    pub async fn start_on(storage: Option<String>, redirect: Option<std::time::Duration>) -> World {
        let dir = tempfile::tempdir().expect("temporary directory");
        let htpasswd = dir.path().join("htpasswd");
        let lines = [
            argon2id_line("alice", "alice-pw"),
            argon2id_line("bob", "bob-pw"),
        ];
        std::fs::write(&htpasswd, lines.join("\n") + "\n").expect("htpasswd");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, POLICY).expect("policy");
        let storage =
            storage.unwrap_or_else(|| dir.path().join("store").to_str().expect("utf-8").to_owned());
        let auth = TestAuth::start(&htpasswd, Some(&policy)).await;
        // As deployed: ui-backend passes each browser's address on with the
        // proxy token, behind an edge (here, whatever connects from
        // loopback) that names the browser in X-Forwarded-For.
        let proxy_token = dir.path().join("proxy-token");
        std::fs::write(&proxy_token, "a-proxy-token-for-tests\n").expect("token");
        let mut config = registry_api::Config::with_storage(&storage);
        config.auth_endpoint = Some(auth.url.parse().expect("auth URL"));
        config.proxy_token_file = Some(proxy_token.clone());
        config.redirect_blobs = redirect;
        let registry = TestRegistry::start_with(config).await;
        let mut config = ui_backend::Config::new(
            registry.url.parse().expect("registry URL"),
            format!("http://{}", registry.admin_addr)
                .parse()
                .expect("admin URL"),
        );
        config.proxy_token_file = Some(proxy_token);
        config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("a range")];
        let ui = TestUi::start_with(config).await;
        World {
            _dir: dir,
            storage,
            auth,
            registry,
            ui,
            http: reqwest::Client::new(),
        }
    }

    /// A push client logged in as `alice`.
    pub fn pusher(&self) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            basic("alice", "alice-pw").parse().expect("header"),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .expect("client")
    }

    /// Pushes `image` as alice under `reference` (a tag or its digest).
    pub async fn push(&self, repository: &str, reference: &str, image: &Image) {
        let url = &self.registry.url;
        test_support::push_image(&self.pusher(), url, repository, reference, image).await;
    }

    /// Pushes an index of `amd` and a random arm64 image under `tag`, then
    /// deletes the arm64 child: an index with a missing platform.
    pub async fn push_index_missing_arm(&self, repository: &str, tag: &str, amd: &Image) {
        let arm = Image::random_for("arm64");
        for child in [amd, &arm] {
            self.push(repository, &child.manifest.digest.to_string(), child)
                .await;
        }
        let index = Index::new(vec![amd.clone(), arm.clone()]);
        let (pusher, base) = (self.pusher(), &self.registry.url);
        test_support::push_manifest(&pusher, base, repository, tag, &index.manifest).await;
        let deleted = pusher
            .delete(format!(
                "{base}/v2/{repository}/manifests/{}",
                arm.manifest.digest
            ))
            .send()
            .await
            .expect("DELETE");
        assert_eq!(deleted.status(), 202);
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        user: Option<(&str, &str)>,
        path: &str,
    ) -> (u16, Value) {
        call(&self.http, &self.ui.url, method, user, path).await
    }

    /// Opens a read-only window of a minute on the registry, and waits
    /// until the UI's status (read every few seconds) shows it.
    pub async fn open_window(&self, reason: &str) {
        use registry_proto::maintenance::AcquireReadOnlyRequest;
        use registry_proto::maintenance::maintenance_client::MaintenanceClient;
        let admin = format!("http://{}", self.registry.admin_addr);
        let mut maintenance = MaintenanceClient::connect(admin).await.expect("admin port");
        maintenance
            .acquire_read_only(AcquireReadOnlyRequest {
                lease_id: "ui-test".into(),
                holder: "gc-worker@test".into(),
                ttl_seconds: 60,
                reason: reason.into(),
            })
            .await
            .expect("a read-only window");
        tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    }

    /// Runs one collection with `--grace 0s`, as gc-worker would.
    pub async fn collect(&self, delete_untagged: bool) -> gc_worker::Report {
        let admin = format!("http://{}", self.registry.admin_addr);
        let config = gc_worker::GcConfig {
            storage: self.storage.clone(),
            admin_endpoints: vec![admin.parse().expect("URL")],
            dry_run: false,
            delete_untagged,
            lease_ttl: std::time::Duration::from_secs(10),
            grace: std::time::Duration::ZERO,
            upload_max_age: std::time::Duration::from_secs(3600),
            admin_token: None,
            admin_token_file: None,
            log_format: service_runtime::LogFormat::Text,
        };
        gc_worker::run_once(&config, tokio_util::sync::CancellationToken::new())
            .await
            .expect("a collection")
    }

    /// A call from the browser at `client`, as the edge forwards it.
    pub async fn call_from(&self, client: &str, user: (&str, &str), path: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.ui.url))
            .header("authorization", basic(user.0, user.1))
            .header("x-forwarded-for", client)
            .send()
            .await
            .expect("UI request");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, user: (&str, &str), path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, Some(user), path).await
    }
}

/// One `/api/v1` call; the status and the JSON body.
pub async fn call(
    http: &reqwest::Client,
    ui: &str,
    method: reqwest::Method,
    user: Option<(&str, &str)>,
    path: &str,
) -> (u16, Value) {
    let mut request = http.request(method, format!("{ui}/api/v1/{path}"));
    if let Some((name, password)) = user {
        request = request.header("authorization", basic(name, password));
    }
    let response = request.send().await.expect("UI request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

pub const ALICE: (&str, &str) = ("alice", "alice-pw");
pub const BOB: (&str, &str) = ("bob", "bob-pw");

pub fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// An image whose config has a creation time, history and run settings.
pub fn described_image(created: &str) -> Image {
    Image::random(2, 2048).with_config(json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "author": "<b>builder</b>",
        "config": {
            "User": "app",
            "Env": ["PATH=/usr/bin", "MODE=prod"],
            "Entrypoint": ["/app"],
            "Cmd": ["--serve"],
            "WorkingDir": "/srv",
            "ExposedPorts": { "8080/tcp": {} },
            "Volumes": { "/data": {} },
            "Labels": { "org.opencontainers.image.source": "<script>alert(1)</script>" },
        },
        "rootfs": { "type": "layers", "diff_ids": [] },
        "history": [
            { "created": created, "created_by": "ADD rootfs /" },
            { "created": created, "created_by": "ENV MODE=prod", "empty_layer": true },
            { "created": created, "created_by": "COPY app /app" },
        ],
    }))
}
