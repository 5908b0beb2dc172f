//! registry-api on a real socket against clients that misbehave at the
//! HTTP level: bodies shorter or longer than their `Content-Length`,
//! headers and bodies sent a byte a second, header values of a megabyte.
//! Nothing half-sent is stored, an upload session survives (or can be
//! cancelled), the server's limits cut the slow ones off, and other
//! clients are served all along. (10,000 idle connections: see
//! `idle_connections.rs`.)

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use service_runtime::http::{Limits, MinimumBodyRate};
use test_support::{Blob, TestRegistry, files_under, random_bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The header timeout and body window of the servers here: seconds, not
/// the production minute, so the tests take seconds.
const HEADER_TIMEOUT: Duration = Duration::from_secs(2);
const BODY_WINDOW: Duration = Duration::from_secs(2);

/// registry-api over a store in a temporary directory, with short limits.
struct Server {
    registry: TestRegistry,
    root: tempfile::TempDir,
    client: reqwest::Client,
}

async fn server() -> Server {
    let root = tempfile::tempdir().expect("temporary directory");
    let mut config =
        registry_api::Config::with_storage(root.path().to_str().expect("a UTF-8 path"));
    config.http_limits = Limits {
        header_timeout: HEADER_TIMEOUT,
        body_rate: MinimumBodyRate {
            bytes_per_second: 1024,
            window: BODY_WINDOW,
        },
        ..Limits::default()
    };
    let registry = TestRegistry::start_with(config).await;
    Server {
        registry,
        root,
        client: reqwest::Client::new(),
    }
}

impl Server {
    fn address(&self) -> SocketAddr {
        self.registry.addr
    }

    fn files(&self) -> BTreeSet<PathBuf> {
        files_under(self.root.path())
    }

    async fn status(&self, path: &str) -> u16 {
        let url = format!("{}{path}", self.registry.url);
        let response = self.client.head(url).send().await.expect("HEAD");
        response.status().as_u16()
    }

    /// Opens an upload session; returns its path.
    async fn session(&self) -> String {
        let url = format!("{}/v2/r/blobs/uploads/", self.registry.url);
        let response = self.client.post(url).send().await.expect("POST");
        assert_eq!(response.status(), 202);
        response.headers()["location"]
            .to_str()
            .expect("Location")
            .to_owned()
    }

    /// The `Range` an upload session reports.
    async fn uploaded(&self, session: &str) -> String {
        let url = format!("{}{session}", self.registry.url);
        let response = self.client.get(url).send().await.expect("GET");
        assert_eq!(response.status(), 204, "the session is still there");
        response.headers()["range"]
            .to_str()
            .expect("Range")
            .to_owned()
    }

    /// The bytes of `blob` as the registry serves them.
    async fn pull(&self, blob: &Blob) -> bytes::Bytes {
        let url = format!("{}/v2/r/blobs/{}", self.registry.url, blob.digest);
        let response = self.client.get(url).send().await.expect("GET");
        assert_eq!(response.status(), 200);
        response.bytes().await.expect("the blob")
    }

    /// Sends `request` whole and answers what came back.
    async fn send(&self, method: reqwest::Method, path: &str, body: Vec<u8>) -> u16 {
        let url = format!("{}{path}", self.registry.url);
        let response = self.client.request(method, url).body(body).send().await;
        response.expect("the request").status().as_u16()
    }
}

/// The request line and headers of a request with a body of `length`.
fn head(method: &str, path: &str, length: usize) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: registry\r\nContent-Length: {length}\r\n\r\n")
}

/// Writes `bytes`, closes the sending side (a client that gave up), and
/// returns everything the server answered before closing.
async fn send_then_close(address: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream.shutdown().await.expect("close the sending side");
    read_until_closed(&mut stream, Duration::from_secs(20)).await
}

/// Writes `bytes` and returns everything the server answered until it
/// closed the connection.
async fn send(address: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    read_until_closed(&mut stream, Duration::from_secs(20)).await
}

/// What the server sends until it closes the connection, within `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await;
    let read = read.unwrap_or_else(|_| {
        panic!(
            "the server kept the connection open for {limit:?}; it sent: {}",
            String::from_utf8_lossy(&answer)
        )
    });
    // A reset after the answer is a close too.
    if let Err(error) = read {
        assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    }
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_shorter_than_its_content_length_stores_nothing() {
    let server = server().await;
    let blob = Blob::new("application/octet-stream", random_bytes(2000));
    let half = &blob.bytes[..1000];
    let before = server.files();

    let monolithic = format!("/v2/r/blobs/uploads/?digest={}", blob.digest);
    let request = [head("POST", &monolithic, 2000).as_bytes(), half].concat();
    let answer = send_then_close(server.address(), &request).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert_eq!(
        server.status(&format!("/v2/r/blobs/{}", blob.digest)).await,
        404
    );
    assert_eq!(server.files(), before, "the monolithic push left files");

    // A chunk cut short: the session holds what it held before and takes
    // the chunk again.
    let session = server.session().await;
    let request = [head("PATCH", &session, 2000).as_bytes(), half].concat();
    let answer = send_then_close(server.address(), &request).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert_eq!(server.uploaded(&session).await, "0-0");
    let first = blob.bytes[..1500].to_vec();
    assert_eq!(
        server.send(reqwest::Method::PATCH, &session, first).await,
        202
    );
    assert_eq!(server.uploaded(&session).await, "0-1499");

    // The closing PUT cut short: still nothing published, and the session
    // closes when the last part comes whole.
    let close = format!("{session}?digest={}", blob.digest);
    let request = [head("PUT", &close, 500).as_bytes(), &blob.bytes[1500..1700]].concat();
    let answer = send_then_close(server.address(), &request).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert_eq!(
        server.status(&format!("/v2/r/blobs/{}", blob.digest)).await,
        404
    );
    assert_eq!(server.uploaded(&session).await, "0-1499");
    let last = blob.bytes[1500..].to_vec();
    assert_eq!(server.send(reqwest::Method::PUT, &close, last).await, 201);
    assert_eq!(server.pull(&blob).await, blob.bytes);

    // A session whose chunk was cut short can be cancelled, leaving nothing.
    let before = server.files();
    let session = server.session().await;
    let request = [head("PATCH", &session, 2000).as_bytes(), half].concat();
    send_then_close(server.address(), &request).await;
    assert_eq!(
        server
            .send(reqwest::Method::DELETE, &session, Vec::new())
            .await,
        204
    );
    assert_eq!(server.files(), before, "the cancelled session left files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_content_length_are_not_the_blobs() {
    let server = server().await;
    let blob = Blob::new("application/octet-stream", random_bytes(1000));
    let push = format!("/v2/r/blobs/uploads/?digest={}", blob.digest);

    // What follows the body is the next request on the connection.
    let next = b"GET /v2/ HTTP/1.1\r\nHost: registry\r\nConnection: close\r\n\r\n";
    let request = [head("POST", &push, 1000).as_bytes(), &blob.bytes, next].concat();
    let answer = send(server.address(), &request).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    let second = answer
        .match_indices("HTTP/1.1 ")
        .nth(1)
        .unwrap_or_else(|| panic!("no second answer: {answer}"));
    assert!(answer[second.0..].starts_with("HTTP/1.1 200"), "{answer}");

    // Garbage after the body is a bad request of its own, not blob bytes.
    let other = Blob::new("application/octet-stream", random_bytes(1000));
    let push = format!("/v2/r/blobs/uploads/?digest={}", other.digest);
    let garbage = random_bytes(500);
    let request = [head("POST", &push, 1000).as_bytes(), &other.bytes, &garbage].concat();
    let answer = send(server.address(), &request).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    for stored in [&blob, &other] {
        assert_eq!(server.pull(stored).await, stored.bytes);
    }
    assert_eq!(server.status("/v2/").await, 200, "the server answers on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_a_second_are_cut_off_at_the_header_timeout() {
    let server = server().await;
    let mut slow = TcpStream::connect(server.address()).await.expect("connect");
    let started = Instant::now();
    let trickle = async {
        for byte in b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n" {
            if slow.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    };
    tokio::time::timeout(HEADER_TIMEOUT * 5, trickle)
        .await
        .expect("the server stopped taking the headers");
    let answer = read_until_closed(&mut slow, HEADER_TIMEOUT * 2).await;
    let took = started.elapsed();
    assert!(!answer.contains(" 200 "), "{answer}");
    assert!(
        took >= HEADER_TIMEOUT && took < HEADER_TIMEOUT * 4,
        "cut off after {took:?}"
    );
    assert_eq!(server.status("/v2/").await, 200);
}

/// Starts sending `request` (its head at once, then its body a byte every
/// 200 ms) and returns what the server answered and when.
async fn trickle_body(address: SocketAddr, head: String) -> (String, Duration) {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let (mut reading, mut writing) = stream.into_split();
    let started = Instant::now();
    let trickle = tokio::spawn(async move {
        while writing.write_all(b"x").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(BODY_WINDOW * 10, reading.read_to_end(&mut answer)).await;
    trickle.abort();
    assert!(read.is_ok(), "the trickle held its connection");
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_a_second_is_cut_off_and_lets_go_of_its_session() {
    let server = server().await;
    let before = server.files();
    let session = server.session().await;

    let (answer, took) = trickle_body(server.address(), head("PATCH", &session, 100_000)).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    assert!(
        answer.is_empty()
            || answer.contains("BLOB_UPLOAD_INVALID") && answer.contains("too slowly"),
        "{answer}"
    );
    assert!(
        took >= BODY_WINDOW && took < BODY_WINDOW * 4,
        "cut off after {took:?}"
    );
    // The session is free again: nothing kept, the next chunk taken, and
    // a cancel leaves nothing behind.
    assert_eq!(server.uploaded(&session).await, "0-0");
    let chunk = random_bytes(5000);
    assert_eq!(
        server.send(reqwest::Method::PATCH, &session, chunk).await,
        202
    );
    assert_eq!(
        server
            .send(reqwest::Method::DELETE, &session, Vec::new())
            .await,
        204
    );
    assert_eq!(server.files(), before, "the session left files");

    let digest = Blob::new("x", random_bytes(10)).digest;
    let push = format!("/v2/r/blobs/uploads/?digest={digest}");
    let before = server.files();
    let (answer, _) = trickle_body(server.address(), head("POST", &push, 100_000)).await;
    assert!(!answer.starts_with("HTTP/1.1 2"), "{answer}");
    assert_eq!(server.files(), before, "the cut monolithic push left files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_that_keeps_up_on_average_is_not_cut_off() {
    let server = server().await;
    let blob = Blob::new("application/octet-stream", random_bytes(16 * 1024));
    let push = format!("/v2/r/blobs/uploads/?digest={}", blob.digest);
    let mut stream = TcpStream::connect(server.address()).await.expect("connect");
    let request = format!(
        "POST {push} HTTP/1.1\r\nHost: registry\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        blob.bytes.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    // 4 KiB a second, each burst followed by a stall of a second: four
    // times the floor on average, with pauses of half a window.
    for burst in blob.bytes.chunks(4096) {
        stream.write_all(burst).await.expect("write");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_megabyte_header_gets_431_and_others_are_served() {
    let server = server().await;
    let big = format!(
        "GET /v2/ HTTP/1.1\r\nHost: registry\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1024 * 1024)
    );
    let many: String = (0..2000)
        .map(|index| format!("X-Many-{index}: x\r\n"))
        .collect();
    let many = format!("GET /v2/ HTTP/1.1\r\nHost: registry\r\n{many}\r\n");
    for request in [big, many] {
        let mut stream = TcpStream::connect(server.address()).await.expect("connect");
        let (mut reading, mut writing) = stream.split();
        // The server may answer and close before it has read it all.
        let written = async {
            let _ = writing.write_all(request.as_bytes()).await;
        };
        let mut answer = Vec::new();
        let (_, read) = tokio::join!(
            written,
            tokio::time::timeout(Duration::from_secs(10), reading.read_to_end(&mut answer))
        );
        assert!(read.is_ok(), "the connection stayed open");
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
            "{answer}"
        );
        assert_eq!(server.status("/v2/").await, 200, "others are served");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_in_clear_text_is_not_spoken() {
    // HTTP/2 would escape the header timeout, stay open on PINGs, and carry
    // many uploads on one connection past the per-client cap.
    let server = server().await;
    let mut preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    preface.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    let answer = send(server.address(), &preface).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
        "the server answered an HTTP/2 preface with {answer:?}"
    );
    assert_eq!(server.status("/v2/").await, 200);
}
