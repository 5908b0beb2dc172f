//! HAProxy in front of registry-api replicas (and ui-backend), running
//! `deploy/haproxy.cfg` itself with a fresh CA and certificate from
//! `deploy/make-cert.sh`, so the tests exercise what compose deploys.

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
    child: std::process::Child,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
        let root = workspace_root();
        let certificates = work.join("edge-certs");
        command_output(
            Command::new("bash")
                .arg(root.join("deploy/make-cert.sh"))
                .arg(&certificates)
                .args([REGISTRY_NAME, UI_NAME]),
        );
        let (port, http_port) = (free_port(), free_port());
        let nowhere = format!("127.0.0.1:{}", free_port());
        let child = haproxy
            .command()
            .arg("-db")
            .arg("-f")
            .arg(root.join("deploy/haproxy.cfg"))
            .env("BERTH_EDGE_BIND", format!("127.0.0.1:{port}"))
            .env("BERTH_HTTP_BIND", format!("127.0.0.1:{http_port}"))
            .env("BERTH_TLS_CERT", certificates.join("berth.pem"))
            .env("BERTH_REGISTRY_NAME", REGISTRY_NAME)
            .env("BERTH_UI_NAME", UI_NAME)
            .env("BERTH_API_1", api_1)
            .env("BERTH_API_2", api_2)
            .env("BERTH_UI", ui.unwrap_or(&nowhere))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting haproxy");
        let edge = Edge {
            host: format!("127.0.0.1:{port}"),
            port,
            http_host: format!("127.0.0.1:{http_port}"),
            ca: certificates.join("ca.crt"),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(&edge.host).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy did not listen on {}",
                edge.host
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some(edge)
    }
}
