//! The deployed topology, whole, on loopback: Debian's HAProxy running
//! `deploy/haproxy.cfg` with a certificate from `deploy/make-cert.sh` for
//! both public names, two registry-api replicas over one `moto_server`
//! bucket, auth-service, ui-backend and gc-worker, with the tokens compose
//! gives them. Clients verify the edge's certificate against the test CA
//! only; both names resolve to 127.0.0.1 (reqwest's `resolve`; skopeo and
//! podman run with an `/etc/hosts` of their own), and no DNS server is ever
//! asked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use test_support::{
    Docker, Edge, Image, Index, Podman, REGISTRY_NAME, TestAuth, TestRegistry, TestUi, UI_NAME,
    argon2id_line, is_root, require_tool, run_tool, start_moto, with_hosts, write_oci_layout,
};

const USER: &str = "alice";
const PASSWORD: &str = "alice-password";

struct Topology {
    work: tempfile::TempDir,
    storage: String,
    replicas: [TestRegistry; 2],
    edge: Edge,
    admin_token: std::path::PathBuf,
    _auth: TestAuth,
    _ui: TestUi,
    _moto: test_support::ChildServer,
}

fn write_token(dir: &Path, name: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("{name}-{}\n", rand_hex())).expect("token");
    path
}

fn rand_hex() -> String {
    test_support::random_bytes(16)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Topology {
    async fn start() -> Option<Topology> {
        let (moto, storage) = start_moto("berth-topology", "registry").await?;
        let work = tempfile::tempdir().expect("temporary directory");
        let htpasswd = work.path().join("htpasswd");
        std::fs::write(&htpasswd, argon2id_line(USER, PASSWORD) + "\n").expect("htpasswd");
        let auth_token = write_token(work.path(), "auth-token");
        let admin_token = write_token(work.path(), "admin-token");
        let proxy_token = write_token(work.path(), "proxy-token");
        let token = service_runtime::token::SharedToken::load(None, Some(&auth_token), "--token")
            .expect("token");
        let auth = TestAuth::start_with_token(&htpasswd, None, token).await;
        let replica = || {
            let mut config = registry_api::Config::with_storage(&storage);
            config.auth_endpoint = Some(auth.url.parse().expect("URL"));
            config.auth_token_file = Some(auth_token.clone());
            config.admin_token_file = Some(admin_token.clone());
            config.proxy_token_file = Some(proxy_token.clone());
            config.trusted_proxies = vec!["127.0.0.1/32".parse().expect("range")];
            config
        };
        let replicas = [
            TestRegistry::start_with(replica()).await,
            TestRegistry::start_with(replica()).await,
        ];
        let mut ui = ui_backend::Config::new(
            replicas[0].url.parse().expect("URL"),
            format!("http://{}", replicas[0].admin_addr)
                .parse()
                .expect("URL"),
        );
        ui.admin_token_file = Some(admin_token.clone());
        ui.proxy_token_file = Some(proxy_token);
        ui.trusted_proxies = vec!["127.0.0.1/32".parse().expect("range")];
        ui.public_name = Some(REGISTRY_NAME.to_owned());
        let ui = TestUi::start_with(ui).await;
        let edge = Edge::start_with_ui(
            work.path(),
            &replicas[0].host(),
            &replicas[1].host(),
            Some(&ui.addr.to_string()),
        )
        .await?;
        Some(Topology {
            work,
            storage,
            replicas,
            edge,
            admin_token,
            _auth: auth,
            _ui: ui,
            _moto: moto,
        })
    }

    /// `registry.example.com:<port>`, as clients name the registry.
    fn registry(&self) -> String {
        format!("{REGISTRY_NAME}:{}", self.edge.port)
    }

    /// A client that trusts the test CA only, with both names at the edge.
    fn https(&self) -> reqwest::Client {
        self.client(|builder| builder)
    }

    /// The same, set up further by `configure`.
    fn client(
        &self,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> reqwest::Client {
        let ca = std::fs::read(&self.edge.ca).expect("CA");
        let edge: SocketAddr = self.edge.host.parse().expect("address");
        let builder = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("a PEM certificate")])
            .resolve(REGISTRY_NAME, edge)
            .resolve(UI_NAME, edge)
            .redirect(reqwest::redirect::Policy::none());
        configure(builder).build().expect("client")
    }

    fn registry_url(&self, path: &str) -> String {
        format!("https://{}{path}", self.registry())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_deployed_topology_with_verified_tls_and_a_window_under_load() {
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the topology test needs root in CI (its clients get an /etc/hosts of their own)"
        );
        eprintln!("SKIPPED: the topology test needs root");
        return;
    }
    let Some(topology) = Topology::start().await else {
        return;
    };
    let https = topology.https();

    // Both names answer with verified TLS; a client without the CA is refused.
    let ping = https
        .get(topology.registry_url("/v2/"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("the registry through the edge");
    assert_eq!(ping.status(), 200);
    let untrusting = reqwest::Client::builder()
        .resolve(REGISTRY_NAME, topology.edge.host.parse().expect("address"))
        .build()
        .expect("client");
    assert!(
        untrusting
            .get(topology.registry_url("/v2/"))
            .send()
            .await
            .is_err(),
        "a client that does not trust the CA is refused"
    );
    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("http://{}/v2/", topology.edge.http_host))
        .header("host", REGISTRY_NAME)
        .send()
        .await
        .expect("plain HTTP");
    assert_eq!(redirect.status(), 301);
    let location = redirect.headers()["location"].to_str().expect("ASCII");
    assert!(location.starts_with("https://"), "{location}");

    // skopeo pushes with the CA only, through the registry's name.
    let layout = topology.work.path().join("layout");
    let image = Image::random(3, 256 * 1024);
    write_oci_layout(&layout, &[("v1", &image)], &[]);
    let certs = topology.work.path().join("certs.d");
    std::fs::create_dir_all(&certs).expect("cert dir");
    std::fs::copy(&topology.edge.ca, certs.join("ca.crt")).expect("CA");
    let hosts = topology.work.path().join("hosts");
    std::fs::write(
        &hosts,
        format!("127.0.0.1 localhost {REGISTRY_NAME} {UI_NAME}\n"),
    )
    .expect("hosts");
    let destination = format!("docker://{}/team/app:v1", topology.registry());
    let skopeo_copy = |extra: &[&str], to: &str| {
        let mut command = skopeo.command();
        command
            .args(["copy", "--dest-creds", &format!("{USER}:{PASSWORD}")])
            .args(extra)
            .arg(format!("oci:{}:v1", layout.display()))
            .arg(to);
        with_hosts(&command, &hosts)
    };
    let refused = skopeo_copy(&[], &destination).output().expect("skopeo");
    let complaint = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && complaint.contains("certificate"),
        "skopeo without the CA refuses the edge's certificate: {complaint}"
    );
    let cert_dir = certs.to_str().expect("UTF-8").to_owned();
    run_tool(skopeo_copy(&["--dest-cert-dir", &cert_dir], &destination)).await;

    // podman logs in, pulls it back and pushes a copy, with the CA only.
    if let Some(podman) = Podman::verifying(topology.work.path(), &hosts) {
        podman
            .run_with_input(
                &[
                    "login",
                    "--cert-dir",
                    &cert_dir,
                    "-u",
                    USER,
                    "--password-stdin",
                    &topology.registry(),
                ],
                PASSWORD,
            )
            .await;
        let reference = format!("{}/team/app:v1", topology.registry());
        podman
            .run(&["pull", "--cert-dir", &cert_dir, &reference])
            .await;
        let listed = podman.run(&["images", "--format", "{{.Digest}}"]).await;
        assert!(
            listed.contains(&image.manifest.digest.to_string()),
            "{listed}"
        );
        let copy = format!("{}/team/podman:v1", topology.registry());
        podman.run(&["tag", &reference, &copy]).await;
        podman.run(&["push", "--cert-dir", &cert_dir, &copy]).await;
        let pushed = https
            .head(topology.registry_url("/v2/team/podman/manifests/v1"))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("HEAD");
        assert_eq!(pushed.status(), 200, "podman pushed through the edge");
    }

    docker_pushes_and_pulls_the_right_platform(&topology, &hosts, &cert_dir, &layout).await;

    // The UI answers through its own name, for a logged-in user.
    let repositories = https
        .get(format!(
            "https://{UI_NAME}:{}/api/v1/repositories",
            topology.edge.port
        ))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("the UI through the edge");
    assert_eq!(repositories.status(), 200);
    let body: serde_json::Value = repositories.json().await.expect("JSON");
    assert_eq!(body["repositories"][0]["name"], "team/app", "{body}");
    let metrics = https
        .get(format!("https://{UI_NAME}:{}/metrics", topology.edge.port))
        .send()
        .await
        .expect("GET");
    assert_eq!(metrics.status(), 404, "the UI's metrics stay internal");

    // The admin gRPC is not behind the edge: a Maintenance call there
    // reaches the registry's HTTP API, which knows no such path.
    let admin_call = https
        .post(topology.registry_url("/registry.maintenance.v1.Maintenance/Status"))
        .header("content-type", "application/grpc")
        .body(vec![0u8; 5])
        .send()
        .await
        .expect("POST");
    assert_eq!(admin_call.status(), 404);

    chunked_upload_crosses_both_replicas(&topology, &https).await;
    window_under_live_pulls(&topology, &https, &image).await;
}

/// The docker CLI (Debian's daemon, trusting the test CA through
/// `/etc/docker/certs.d/<name:port>/ca.crt`) logs in, pushes and pulls by
/// the registry's name, and `--platform` picks the right child of an index.
async fn docker_pushes_and_pulls_the_right_platform(
    topology: &Topology,
    hosts: &Path,
    cert_dir: &str,
    layout: &Path,
) {
    let registry = topology.registry();
    let Some(docker) =
        Docker::start(topology.work.path(), hosts, &registry, &topology.edge.ca).await
    else {
        return;
    };
    let Some(skopeo) = require_tool("skopeo") else {
        return;
    };
    let login = docker.run_with_input(
        &["login", "-u", USER, "--password-stdin", &registry],
        PASSWORD,
    );
    assert!(login.status.success(), "docker login: {login:?}");
    let loaded = format!("{registry}/team/docker:v1");
    let mut load = skopeo.command();
    load.args(["copy", "--dest-daemon-host", &docker.host()])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker-daemon:{loaded}"));
    run_tool(load).await;
    docker.run(&["push", &loaded]).await;
    docker.run(&["image", "rm", &loaded]).await;
    docker.run(&["pull", &loaded]).await;

    let index = Index::new(vec![Image::random_for("amd64"), Image::random_for("arm64")]);
    let multi_layout = topology.work.path().join("multi-layout");
    write_oci_layout(&multi_layout, &[], &[("v1", &index)]);
    let multi = format!("{registry}/team/multi:v1");
    let mut push = skopeo.command();
    push.args([
        "copy",
        "--all",
        "--dest-creds",
        &format!("{USER}:{PASSWORD}"),
    ])
    .args(["--dest-cert-dir", cert_dir])
    .arg(format!("oci:{}:v1", multi_layout.display()))
    .arg(format!("docker://{multi}"));
    run_tool(with_hosts(&push, hosts)).await;
    docker
        .run(&["pull", "--platform", "linux/arm64", &multi])
        .await;
    let architecture = docker
        .run(&["image", "inspect", "--format", "{{.Architecture}}", &multi])
        .await;
    assert_eq!(
        architecture.trim(),
        "arm64",
        "--platform picked the arm64 child"
    );
}

/// A chunked upload through the balancer, one connection per request: its
/// chunks land on both replicas, and the blob is right.
async fn chunked_upload_crosses_both_replicas(topology: &Topology, https: &reqwest::Client) {
    let before = patch_counts(topology).await;
    let fresh = topology.client(|builder| builder.pool_max_idle_per_host(0));
    let blob = test_support::random_bytes(6 << 20);
    let started = fresh
        .post(topology.registry_url("/v2/team/chunked/blobs/uploads/"))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("POST");
    assert_eq!(started.status(), 202);
    let mut location = started.headers()["location"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    for (index, chunk) in blob.chunks(1 << 20).enumerate() {
        let start = index << 20;
        let response = fresh
            .patch(topology.registry_url(&location))
            .basic_auth(USER, Some(PASSWORD))
            .header("content-type", "application/octet-stream")
            .header(
                "content-range",
                format!("{start}-{}", start + chunk.len() - 1),
            )
            .body(chunk.to_vec())
            .send()
            .await
            .expect("PATCH");
        assert_eq!(response.status(), 202, "chunk {index}");
        location = response.headers()["location"]
            .to_str()
            .expect("ASCII")
            .to_owned();
    }
    let digest = registry_core::Digest::sha256_of(&blob);
    let separator = if location.contains('?') { '&' } else { '?' };
    let closed = fresh
        .put(topology.registry_url(&format!("{location}{separator}digest={digest}")))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("PUT");
    assert_eq!(closed.status(), 201);
    let after = patch_counts(topology).await;
    assert!(
        after[0] > before[0] && after[1] > before[1],
        "chunks on both replicas: {before:?} -> {after:?}"
    );
    let pulled = https
        .get(topology.registry_url(&format!("/v2/team/chunked/blobs/{digest}")))
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .expect("body");
    assert!(pulled == blob, "the blob pulled is the blob pushed");
}

/// `PATCH` requests each replica answered, from its `/metrics`.
async fn patch_counts(topology: &Topology) -> [u64; 2] {
    let token = std::fs::read_to_string(&topology.admin_token).expect("token");
    let mut counts = [0; 2];
    for (count, replica) in counts.iter_mut().zip(&topology.replicas) {
        let text = reqwest::Client::new()
            .get(format!("http://{}/metrics", replica.admin_addr))
            .bearer_auth(token.trim())
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text");
        *count = text
            .lines()
            .filter(|line| {
                line.starts_with("http_requests_total") && line.contains("method=\"PATCH\"")
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64;
    }
    counts
}

/// gc-worker opens and closes a window across both replicas while pulls
/// run through the edge: no pull fails, pushes in the window get 503 with
/// `Retry-After`, and pushes succeed after it.
async fn window_under_live_pulls(topology: &Topology, https: &reqwest::Client, image: &Image) {
    // Garbage to collect, so the window lasts long enough to be seen.
    for index in 0..40 {
        let garbage = Image::random(1, 1024 + index);
        test_support::push_blob(
            &authed(topology),
            &format!("https://{}", topology.registry()),
            "team/garbage",
            &garbage.layers[0],
        )
        .await;
    }
    let running = Arc::new(AtomicBool::new(true));
    let (pulls, pull_failures) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let (refused, retry_after_missing) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    let puller = {
        let (https, running, pulls, failures) = (
            https.clone(),
            running.clone(),
            pulls.clone(),
            pull_failures.clone(),
        );
        let url = topology.registry_url(&format!("/v2/team/app/blobs/{}", image.layers[0].digest));
        let expected = image.layers[0].bytes.clone();
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let got = https
                    .get(&url)
                    .basic_auth(USER, Some(PASSWORD))
                    .send()
                    .await;
                let good = match got {
                    Ok(response) if response.status() == 200 => {
                        response.bytes().await.is_ok_and(|bytes| bytes == expected)
                    }
                    _ => false,
                };
                pulls.fetch_add(1, Ordering::Relaxed);
                if !good {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let pusher = {
        let (https, running, refused, missing) = (
            https.clone(),
            running.clone(),
            refused.clone(),
            retry_after_missing.clone(),
        );
        let url = topology.registry_url("/v2/team/app/blobs/uploads/");
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                if let Ok(response) = https
                    .post(&url)
                    .basic_auth(USER, Some(PASSWORD))
                    .send()
                    .await
                    && response.status() == 503
                {
                    refused.fetch_add(1, Ordering::Relaxed);
                    if response.headers().get("retry-after").is_none() {
                        missing.fetch_add(1, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let gc = gc_worker::GcConfig {
        storage: topology.storage.clone(),
        admin_endpoints: topology
            .replicas
            .iter()
            .map(|replica| {
                format!("http://{}", replica.admin_addr)
                    .parse()
                    .expect("URL")
            })
            .collect(),
        dry_run: false,
        delete_untagged: true,
        lease_ttl: Duration::from_secs(20),
        grace: Duration::ZERO,
        upload_max_age: Duration::from_secs(3600),
        admin_token: None,
        admin_token_file: Some(topology.admin_token.clone()),
        log_format: service_runtime::LogFormat::Text,
    };
    let report = gc_worker::run_once(&gc, tokio_util::sync::CancellationToken::new())
        .await
        .expect("a collection across both replicas");
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    puller.await.expect("puller");
    pusher.await.expect("pusher");
    // Blobs written in the second the collection read the store's clock
    // stay (grace counts whole seconds on S3); the rest go.
    assert!(report.blobs_deleted > 0, "{report:?}");
    assert!(pulls.load(Ordering::Relaxed) > 10, "the pulls kept running");
    assert_eq!(
        pull_failures.load(Ordering::Relaxed),
        0,
        "not one pull failed"
    );
    assert!(
        refused.load(Ordering::Relaxed) > 0,
        "pushes in the window were refused"
    );
    assert_eq!(
        retry_after_missing.load(Ordering::Relaxed),
        0,
        "each refusal says when to retry"
    );
    test_support::eventually(
        "pushes to succeed again",
        Duration::from_secs(5),
        async || {
            https
                .post(topology.registry_url("/v2/team/app/blobs/uploads/"))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await
                .is_ok_and(|response| response.status() == 202)
        },
    )
    .await;
}

/// A client through the edge that logs in with every request.
fn authed(topology: &Topology) -> reqwest::Client {
    use base64::Engine;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Basic {credentials}").parse().expect("header");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    topology.client(|builder| builder.default_headers(headers))
}
