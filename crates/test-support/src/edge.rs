//! HAProxy in front of registry-api replicas (and ui-backend), running
//! `deploy/haproxy.cfg` itself with a fresh CA and certificate from
//! `deploy/make-cert.sh`, so the tests exercise what compose deploys; and
//! HAProxy terminating TLS in front of any one server (an S3 store), with
//! a certificate of that same throwaway CA.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::external::free_port;
use crate::{command_output, require_tool};

/// The registry's public name at the test edge.
pub const REGISTRY_NAME: &str = "registry.example.com";
/// The web UI's public name at the test edge.
pub const UI_NAME: &str = "docker.example.com";

/// A running HAProxy edge; killed when dropped.
#[derive(Debug)]
pub struct Edge {
    /// `127.0.0.1:<port>`, speaking TLS.
    pub host: String,
    /// The TLS port.
    pub port: u16,
    /// `127.0.0.1:<port>`, plain HTTP (answered with redirects).
    pub http_host: String,
    /// The CA that signed the edge's certificate, for clients to trust.
    pub ca: PathBuf,
    _haproxy: Haproxy,
}

/// TLS in front of one plain TCP server, under a certificate of a CA no
/// client trusts unless told to; killed when dropped.
#[derive(Debug)]
pub struct TlsFront {
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    _haproxy: Haproxy,
}

/// A running haproxy; killed when dropped.
#[derive(Debug)]
struct Haproxy(std::process::Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Haproxy {
    /// Runs `command` (haproxy in the foreground) and waits until it
    /// listens on `host`.
    async fn start(command: &mut Command, host: &str) -> Haproxy {
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting haproxy");
        let haproxy = Haproxy(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(host).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {host}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        haproxy
    }
}

/// A fresh throwaway CA and a certificate for `names` (and 127.0.0.1)
/// under `directory`, made by `deploy/make-cert.sh`.
fn make_certificates(directory: &Path, names: &[&str]) {
    command_output(
        Command::new("bash")
            .arg(workspace_root().join("deploy/make-cert.sh"))
            .arg(directory)
            .args(names),
    );
}

/// The workspace root, where `deploy/` lives.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/<name> sits two levels below the root")
        .to_owned()
}

impl Edge {
    /// Starts HAProxy on ephemeral ports in front of two replicas;
    /// `None` where haproxy or openssl are missing (outside CI).
    pub async fn start(work: &Path, api_1: &str, api_2: &str) -> Option<Edge> {
        Edge::start_with_ui(work, api_1, api_2, None).await
    }

    /// The same, with `ui` (ui-backend's `host:port`) behind
    /// [`UI_NAME`]; without one, the UI's name leads nowhere.
    pub async fn start_with_ui(
        work: &Path,
        api_1: &str,
        api_2: &str,
        ui: Option<&str>,
    ) -> Option<Edge> {
        let haproxy = require_tool("haproxy")?;
        require_tool("openssl")?;
        let certificates = work.join("edge-certs");
        make_certificates(&certificates, &[REGISTRY_NAME, UI_NAME]);
        let (port, http_port) = (free_port(), free_port());
        let host = format!("127.0.0.1:{port}");
        let nowhere = format!("127.0.0.1:{}", free_port());
        let mut command = haproxy.command();
        command
            .arg("-db")
            .arg("-f")
            .arg(workspace_root().join("deploy/haproxy.cfg"))
            .env("BERTH_EDGE_BIND", format!("127.0.0.1:{port}"))
            .env("BERTH_HTTP_BIND", format!("127.0.0.1:{http_port}"))
            .env("BERTH_TLS_CERT", certificates.join("berth.pem"))
            .env("BERTH_REGISTRY_NAME", REGISTRY_NAME)
            .env("BERTH_UI_NAME", UI_NAME)
            .env("BERTH_API_1", api_1)
            .env("BERTH_API_2", api_2)
            .env("BERTH_UI", ui.unwrap_or(&nowhere));
        let haproxy = Haproxy::start(&mut command, &host).await;
        Some(Edge {
            host,
            port,
            http_host: format!("127.0.0.1:{http_port}"),
            ca: certificates.join("ca.crt"),
            _haproxy: haproxy,
        })
    }
}

impl TlsFront {
    /// Starts HAProxy on an ephemeral port, terminating TLS and passing
    /// the bytes on to `upstream` (`host:port`); `None` where haproxy or
    /// openssl are missing (outside CI).
    pub async fn start(work: &Path, upstream: &str) -> Option<TlsFront> {
        let haproxy = require_tool("haproxy")?;
        require_tool("openssl")?;
        let certificates = work.join("tls-front-certs");
        make_certificates(&certificates, &["store.example.com"]);
        let host = format!("127.0.0.1:{}", free_port());
        let config = work.join("tls-front.cfg");
        let pem = certificates.join("berth.pem");
        std::fs::write(
            &config,
            format!(
                "defaults\n  mode tcp\n  timeout connect 5s\n  timeout client 5m\n  timeout server 5m\n\
                 frontend tls\n  bind {host} ssl crt {}\n  default_backend upstream\n\
                 backend upstream\n  server upstream {upstream}\n",
                pem.display()
            ),
        )
        .expect("writing the haproxy configuration");
        let mut command = haproxy.command();
        command.arg("-db").arg("-f").arg(&config);
        let haproxy = Haproxy::start(&mut command, &host).await;
        Some(TlsFront {
            url: format!("https://{host}"),
            _haproxy: haproxy,
        })
    }
}
