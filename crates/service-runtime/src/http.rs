//! Serving HTTP with the limits hyper's defaults lack, for every Berth HTTP
//! service that may be reached without the edge in front (`registry-stack`
//! binds registry-api and the UI directly): a client must send its request
//! headers within [`HEADER_TIMEOUT`], a connection on which nothing moves
//! either way for [`IDLE_TIMEOUT`] is closed, a request body must arrive at
//! [`BODY_RATE`] or faster, and at most [`max_connections`] are open at
//! once (more wait in the kernel's queue), so connections held open on
//! purpose can neither pile up forever nor exhaust the process's file
//! descriptors. One client address (an IPv6 /64) may hold at most
//! [`PER_CLIENT`] of them, so a single client cannot take every slot and
//! starve the others; trusted proxies (the edge, which carries everybody's
//! connections) are exempt. SIGTERM stops accepting and lets requests in
//! flight finish. Handlers see the peer as `ConnectInfo<SocketAddr>`.

mod body_rate;
mod idle_timeout;

pub use body_rate::{BodyTooSlow, MinimumBodyRate, RateLimitedBody};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use idle_timeout::IdleTimeout;

/// How long a client may take to send a request's headers, the first or
/// the next on a kept-alive connection.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay open with nothing read or written: an
/// idle keep-alive connection, or one that never sends a byte.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The slowest a request body may arrive: 1 KiB a second on average over
/// each minute the server waits for it. A push over a link a hundred
/// times slower than a bad mobile connection still gets through; a client
/// sending a byte a second is cut off after a minute.
pub const BODY_RATE: MinimumBodyRate = MinimumBodyRate {
    bytes_per_second: 1024,
    window: Duration::from_secs(60),
};
/// Connections one client address may have open at once.
pub const PER_CLIENT: usize = 128;
/// Connections open at once at most, whatever the descriptor limit.
const MOST_CONNECTIONS: u64 = 16_384;

/// Connections to allow open at once: three quarters of the descriptors
/// this process may have (the rest are for the store, auth-service and
/// logs), at most [`MOST_CONNECTIONS`].
pub fn max_connections() -> usize {
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).unwrap_or((1024, 1024));
    usize::try_from((soft / 4 * 3).clamp(64, MOST_CONNECTIONS)).unwrap_or(1024)
}

/// Raises this process's soft limit on open descriptors to its hard limit,
/// as Go programs do at start, so the connection cap is not needlessly low
/// on hosts whose soft limit is the historical 1024 (`select()` needed it;
/// nothing here uses `select()`). Returns the soft limit now in force.
pub fn raise_descriptor_limit() -> u64 {
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft >= hard {
        return soft;
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => hard,
        Err(error) => {
            tracing::warn!(%error, soft, hard, "cannot raise the open-file limit; fewer connections will be served at once");
            soft
        }
    }
}

/// How long a stop waits for requests in flight.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);

/// What one HTTP server allows its clients. [`Limits::default`] is what
/// the services run with (SECURITY.md lists it); tests shorten the times.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// How long a request's headers may take to arrive.
    pub header_timeout: Duration,
    /// How long a connection may go with nothing read or written.
    pub idle_timeout: Duration,
    /// The slowest a request body may arrive.
    pub body_rate: MinimumBodyRate,
    /// Connections open at once, from everybody; `None` for
    /// [`max_connections`] as the descriptor limit stands when serving
    /// starts (after [`raise_descriptor_limit`]).
    pub connections: Option<usize>,
    /// Connections open at once from one client address.
    pub per_client: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: HEADER_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            body_rate: BODY_RATE,
            connections: None,
            per_client: PER_CLIENT,
        }
    }
}

/// Serves `router` on `listener` with the default [`Limits`] until
/// `shutdown` is cancelled; clients in `proxies` are not held to
/// [`PER_CLIENT`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    proxies: &[IpNet],
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, Limits::default(), proxies, shutdown).await
}

/// [`serve`] with other limits.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    proxies: &[IpNet],
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let connections = limits.connections.unwrap_or_else(max_connections);
    tracing::debug!(connections, "connections allowed open at once");
    let slots = Arc::new(Semaphore::new(connections));
    let clients = Arc::new(Clients {
        open: Mutex::default(),
        limit: limits.per_client,
        exempt: proxies.to_vec(),
    });
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: every client and the edge speak it, and HTTP/2 in
    // clear text would escape the header timeout (hyper applies it to
    // HTTP/1 only), keep idle connections alive with PINGs, and let one
    // connection carry hundreds of uploads past the per-client cap.
    let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or similar: wait, do not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(client) = clients.enter(peer.ip()) else {
            // Closed at once: its slot goes back to everybody else.
            tracing::debug!(%peer, "too many connections from one client; closing");
            continue;
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
        let body_rate = limits.body_rate;
        let service = router.clone().map_request(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let mut request = request.map(|body| RateLimitedBody::new(body, body_rate, peer));
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection = builder
            .serve_connection(
                TokioIo::new(IdleTimeout::new(stream, limits.idle_timeout)),
                TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, %peer, "connection ended with an error");
            }
            drop(client);
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_LIMIT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN_LIMIT:?}; stopping anyway");
    }
    Ok(())
}

/// Open connections per client address.
struct Clients {
    open: Mutex<HashMap<IpAddr, usize>>,
    limit: usize,
    exempt: Vec<IpNet>,
}

impl Clients {
    /// Counts a connection from `ip`, or `None` when that client has its
    /// limit open already.
    fn enter(self: &Arc<Self>, ip: IpAddr) -> Option<ClientConnection> {
        let key = crate::client_address::counted(ip);
        if self.exempt.iter().any(|range| range.contains(&ip)) {
            return Some(ClientConnection { clients: None, key });
        }
        let mut open = self.open.lock().expect("never poisoned");
        let count = open.entry(key).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(ClientConnection {
            clients: Some(Arc::clone(self)),
            key,
        })
    }
}

/// One counted connection; uncounted when dropped.
struct ClientConnection {
    clients: Option<Arc<Clients>>,
    key: IpAddr,
}

impl Drop for ClientConnection {
    fn drop(&mut self) {
        let Some(clients) = &self.clients else {
            return;
        };
        let mut open = clients.open.lock().expect("never poisoned");
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn server(limits: Limits) -> (SocketAddr, CancellationToken) {
        served(limits, Vec::new()).await
    }

    async fn served(limits: Limits, proxies: Vec<IpNet>) -> (SocketAddr, CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let router = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move { serve_with(listener, router, limits, &proxies, stop).await });
        (address, shutdown)
    }

    async fn get_root(address: SocketAddr) -> String {
        let mut stream = TcpStream::connect(address).await.expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let limits = Limits {
            header_timeout: Duration::from_millis(500),
            idle_timeout: Duration::from_secs(10),
            connections: Some(8),
            per_client: 8,
            ..Limits::default()
        };
        let (address, _shutdown) = server(limits).await;
        let mut slow = TcpStream::connect(address).await.expect("connect");
        slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
            .await
            .expect("write");
        let started = Instant::now();
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut rest)).await;
        assert!(read.is_ok(), "the server closed the connection");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(
            get_root(address).await.ends_with("127.0.0.1"),
            "handlers see the peer"
        );
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_for_a_free_slot() {
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_millis(500),
            connections: Some(2),
            per_client: 8,
            ..Limits::default()
        };
        let (address, _shutdown) = server(limits).await;
        let _held = [
            TcpStream::connect(address).await.expect("connect"),
            TcpStream::connect(address).await.expect("connect"),
        ];
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        let answer = get_root(address).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(
            started.elapsed() >= Duration::from_millis(300),
            "the third connection waited until an idle one was closed"
        );
    }

    #[tokio::test]
    async fn one_client_cannot_take_every_slot() {
        let limits = Limits {
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
            connections: Some(16),
            per_client: 4,
            ..Limits::default()
        };
        let (address, _shutdown) = server(limits).await;
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(TcpStream::connect(address).await.expect("connect"));
        }
        // A fifth connection from the same address is closed at once.
        let mut fifth = TcpStream::connect(address).await.expect("connect");
        let _ = fifth.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let mut answer = Vec::new();
        let read =
            tokio::time::timeout(Duration::from_secs(5), fifth.read_to_end(&mut answer)).await;
        assert!(
            read.is_ok() && answer.is_empty(),
            "closed without an answer"
        );
        // Once one is let go, the client is served again.
        held.pop();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(get_root(address).await.starts_with("HTTP/1.1 200"));
        // A trusted proxy carries everybody's connections: not limited.
        let (proxied, _stop) = served(limits, vec!["127.0.0.1/32".parse().expect("range")]).await;
        let mut many = Vec::new();
        for _ in 0..8 {
            many.push(TcpStream::connect(proxied).await.expect("connect"));
        }
        assert!(get_root(proxied).await.starts_with("HTTP/1.1 200"));
    }
}
