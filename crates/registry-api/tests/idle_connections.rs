//! The `registry-api` binary under 10,000 idle connections from many
//! loopback addresses (one address may hold only 128): it raises its own
//! open-file limit at start, holds them all, and answers a normal client
//! promptly all the while. It runs as a child process started with the
//! historical soft limit of 1024 descriptors, so the limit it works with
//! is its own and the raise is what lets it cope.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::{ChildServer, free_port};
use tokio::net::{TcpSocket, TcpStream};

const BINARY: &str = env!("CARGO_BIN_EXE_registry-api");

/// Idle connections held open, spread over 127.0.0.2 to 127.0.0.90.
const IDLE: usize = 10_000;
const FIRST_SOURCE: u8 = 2;
const LAST_SOURCE: u8 = 90;

/// The soft and hard `Max open files` of process `pid`.
fn open_file_limits(pid: u32) -> (u64, u64) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("/proc limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("a Max open files line");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    (numbers[0], numbers[1])
}

fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .count()
}

/// Whether this host lets the test and the server hold the connections;
/// `false` (and a skip message) where it does not, outside CI.
fn enough_descriptors() -> bool {
    let needed = IDLE as u64 + 1_000;
    let limit = service_runtime::http::raise_descriptor_limit();
    if limit >= needed {
        return true;
    }
    let message = format!(
        "this process may open {limit} files, the test needs {needed}: raise the hard limit (ulimit -Hn)"
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
    eprintln!("SKIPPED: {message}");
    false
}

/// Opens a connection from `source`, failing the test if the server
/// stops accepting.
async fn connect_from(source: IpAddr, server: SocketAddr, opened: usize) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("a socket");
    socket
        .bind(SocketAddr::new(source, 0))
        .expect("binding a loopback source address");
    tokio::time::timeout(Duration::from_secs(5), socket.connect(server))
        .await
        .unwrap_or_else(|_| panic!("the server stopped accepting after {opened} connections"))
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_idle_connections_leave_a_normal_client_served() {
    if !enough_descriptors() {
        return;
    }
    let store = tempfile::tempdir().expect("temporary directory");
    let (port, admin) = (free_port(), free_port());
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -S -n 1024 && exec "$0""#, BINARY])
        .env("REGISTRY_LISTEN", format!("127.0.0.1:{port}"))
        .env("REGISTRY_ADMIN_LISTEN", format!("127.0.0.1:{admin}"))
        .env("REGISTRY_STORAGE", store.path())
        .stdin(Stdio::null());
    let server = ChildServer::spawn(command, port, "/healthz", "registry-api").await;
    let (soft, hard) = open_file_limits(server.pid());
    assert_eq!(soft, hard, "registry-api raised its soft limit from 1024");

    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let sources: Vec<IpAddr> = (FIRST_SOURCE..=LAST_SOURCE)
        .map(|last| IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))
        .collect();
    let mut idle = Vec::with_capacity(IDLE);
    for index in 0..IDLE {
        let source = sources[index % sources.len()];
        idle.push(connect_from(source, address, index).await);
    }
    test_support::eventually(
        "registry-api holding every idle connection",
        Duration::from_secs(20),
        async || open_descriptors(server.pid()) >= IDLE,
    )
    .await;

    let client = reqwest::Client::new();
    for _ in 0..5 {
        let started = Instant::now();
        let answer = client
            .get(format!("{}/v2/", server.url))
            .send()
            .await
            .expect("GET /v2/");
        assert_eq!(answer.status(), 200);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
    }
    assert!(
        open_descriptors(server.pid()) >= IDLE,
        "the idle connections are still held"
    );
    drop(idle);
}
