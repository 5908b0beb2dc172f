//! HAProxy in front of registry-api replicas, running `deploy/haproxy.cfg`
//! itself with a fresh self-signed certificate from `deploy/make-cert.sh`,
//! so the tests exercise what compose deploys.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::external::free_port;
use crate::{command_output, require_tool};

/// A running HAProxy edge; killed when dropped.
#[derive(Debug)]
pub struct Edge {
    /// `127.0.0.1:<port>`, speaking TLS.
    pub host: String,
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
    /// Starts HAProxy on an ephemeral port in front of two replicas;
    /// `None` where haproxy or openssl are missing (outside CI).
    pub async fn start(work: &Path, api_1: &str, api_2: &str) -> Option<Edge> {
        let haproxy = require_tool("haproxy")?;
        require_tool("openssl")?;
        let root = workspace_root();
        let certificate = work.join("edge.pem");
        command_output(
            Command::new("bash")
                .arg(root.join("deploy/make-cert.sh"))
                .arg(&certificate)
                .arg("localhost"),
        );
        let port = free_port();
        let child = haproxy
            .command()
            .arg("-db")
            .arg("-f")
            .arg(root.join("deploy/haproxy.cfg"))
            .env("BERTH_EDGE_BIND", format!("127.0.0.1:{port}"))
            .env("BERTH_TLS_CERT", &certificate)
            .env("BERTH_API_1", api_1)
            .env("BERTH_API_2", api_2)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting haproxy");
        let edge = Edge {
            host: format!("127.0.0.1:{port}"),
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
