//! Reference servers run beside ours as child processes on ephemeral
//! loopback ports: Debian's `docker-registry` (CNCF Distribution 2.8.2) and
//! `moto_server` (an S3 protocol server).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::require_tool;

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct ChildServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub port: u16,
    child: Child,
}

impl ChildServer {
    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts `command` (already told to listen on `port`) and waits until
    /// `ready_path` answers (an empty path: until the port accepts).
    pub async fn spawn(mut command: Command, port: u16, ready_path: &str, name: &str) -> Self {
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {name}: {error}"));
        let url = format!("http://127.0.0.1:{port}");
        wait_until_ready(&format!("{url}{ready_path}"), &mut child, name).await;
        ChildServer { url, port, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process and waits for it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that was free a moment ago, for servers that cannot be
/// handed a bound socket.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port");
    listener.local_addr().expect("bound address").port()
}

/// Waits until `url` answers HTTP without a server error (a 401 counts:
/// the server is up), or, for `url` without a path, until the port accepts
/// connections (gRPC servers).
async fn wait_until_ready(url: &str, child: &mut Child, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let tcp_only = url
        .strip_prefix("http://")
        .filter(|rest| !rest.contains('/'));
    loop {
        let ready = match tcp_only {
            Some(address) => tokio::net::TcpStream::connect(address).await.is_ok(),
            None => reqwest::get(url)
                .await
                .is_ok_and(|response| !response.status().is_server_error()),
        };
        if ready {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status} before it answered {url}");
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not answer {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Debian's `docker-registry` serving the filesystem store at `root`, with
/// deletes enabled; `None` where it is not installed (outside CI).
pub async fn start_docker_registry(root: &Path) -> Option<ChildServer> {
    start_distribution(root, &filesystem_storage(root), None).await
}

/// The same, checking every request against a (bcrypt) htpasswd file.
pub async fn start_docker_registry_with_htpasswd(
    root: &Path,
    htpasswd: &Path,
) -> Option<ChildServer> {
    start_distribution(root, &filesystem_storage(root), Some(htpasswd)).await
}

/// `docker-registry` on bucket `bucket` of the `moto_server` at
/// `moto_url`, under `prefix`; its config is written beside `work`. With
/// `redirect`, blob `GET`s are sent to presigned URLs of the store (its
/// default on S3); without, it serves the bytes itself.
pub async fn start_docker_registry_on_s3(
    work: &Path,
    moto_url: &str,
    (bucket, prefix): (&str, &str),
    redirect: bool,
) -> Option<ChildServer> {
    let mut storage = format!(
        "  s3:\n    region: us-east-1\n    regionendpoint: {moto_url}\n    bucket: {bucket}\n    \
         rootdirectory: /{prefix}\n    accesskey: test\n    secretkey: test\n    secure: false\n    \
         v4auth: true\n"
    );
    if !redirect {
        storage.push_str("  redirect:\n    disable: true\n");
    }
    start_distribution(work, &storage, None).await
}

fn filesystem_storage(root: &Path) -> String {
    format!("  filesystem:\n    rootdirectory: {}\n", root.display())
}

/// `docker-registry` with `storage` (the YAML under `storage:`), its
/// config written beside `root`.
async fn start_distribution(
    root: &Path,
    storage: &str,
    htpasswd: Option<&Path>,
) -> Option<ChildServer> {
    let tool = require_tool("docker-registry")?;
    let port = free_port();
    let config = root.with_extension(format!("{port}.distribution.yml"));
    let auth = htpasswd.map_or(String::new(), |path| {
        format!(
            "auth:\n  htpasswd:\n    realm: berth-bench\n    path: {}\n",
            path.display()
        )
    });
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n{storage}  delete:\n    enabled: true\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-tests\n{auth}"
        ),
    )
    .expect("writing the docker-registry config");
    let mut command = tool.command();
    // Its AWS SDK refuses to start with a CA bundle set (its HTTP client
    // cannot take one), and the stores here speak plain HTTP on loopback.
    command
        .arg("serve")
        .arg(&config)
        .env_remove("AWS_CA_BUNDLE");
    Some(ChildServer::spawn(command, port, "/v2/", "docker-registry").await)
}

/// `moto_server` with an empty bucket `bucket`; `None` where it is not
/// installed (outside CI). Returns the server and the `--storage` URL of
/// the bucket under `prefix`.
pub async fn start_moto(bucket: &str, prefix: &str) -> Option<(ChildServer, String)> {
    let tool = require_tool("moto_server")?;
    let port = free_port();
    let mut command = tool.command();
    command.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    let server = ChildServer::spawn(command, port, "/moto-api/", "moto_server").await;
    let url = &server.url;
    let created = reqwest::Client::new()
        .put(format!("{url}/{bucket}"))
        .send()
        .await
        .expect("creating the bucket");
    assert!(
        created.status().is_success(),
        "creating bucket {bucket}: {}",
        created.status()
    );
    let storage = format!(
        "s3://{bucket}/{prefix}?endpoint={url}&region=us-east-1&allow_http=true\
         &access_key_id=test&secret_access_key=test"
    );
    Some((server, storage))
}

/// Starts a multipart upload of `key` in `bucket` on `moto_server` at
/// `moto_url` and uploads one part, never completing it: what a replica
/// killed during a push to S3 leaves behind.
pub async fn abandon_multipart_upload(moto_url: &str, bucket: &str, key: &str) {
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{moto_url}/{bucket}/{key}?uploads"))
        .send()
        .await
        .expect("CreateMultipartUpload");
    assert!(created.status().is_success(), "{}", created.status());
    let text = created.text().await.expect("body");
    let upload_id = text
        .split("<UploadId>")
        .nth(1)
        .and_then(|rest| rest.split("</UploadId>").next())
        .unwrap_or_else(|| panic!("no UploadId in {text}"));
    let part = client
        .put(format!(
            "{moto_url}/{bucket}/{key}?partNumber=1&uploadId={upload_id}"
        ))
        .body(crate::random_bytes(1 << 20))
        .send()
        .await
        .expect("UploadPart");
    assert!(part.status().is_success(), "{}", part.status());
}
