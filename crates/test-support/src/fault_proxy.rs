//! A slow, unreliable network between a registry and its S3 store: an HTTP
//! proxy on a loopback port that forwards to `moto_server`, delaying,
//! failing or holding without an answer the requests that match a rule.
//! Rules change while it runs. It counts the body bytes it carries each
//! way, so a test can tell how often a blob's bytes crossed to the store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// What happens to requests whose method and decoded path and query
/// match.
#[derive(Clone, Debug, Default)]
pub struct Fault {
    /// A substring of the percent-decoded path and query, e.g.
    /// `maintenance/lease` (S3 listings name their prefix in the query).
    pub matching: String,
    /// Methods the rule applies to; empty: every method.
    pub methods: Vec<axum::http::Method>,
    /// A header the request must carry for the rule to apply, e.g.
    /// `x-amz-copy-source`; empty: any request.
    pub header: String,
    /// Waited after the upstream answered, before the answer is passed on:
    /// the client sees the state from when its request arrived, late.
    pub delay: Duration,
    /// The share of matching requests answered 500 without forwarding.
    pub error_rate: f64,
    /// Matching requests are forwarded and carried out, but their answer
    /// is lost: the client gets 500, as when a connection drops after the
    /// store acted. Only the first `lost_answers` matching requests.
    pub lost_answers: usize,
    /// Matching requests get no answer while this rule is in force, as
    /// from a store that hangs; once it is lifted they are answered 503
    /// without being forwarded.
    pub stall: bool,
}

impl Fault {
    /// Delays matching reads (`GET`, `HEAD`) by `delay`.
    pub fn slow_reads(matching: &str, delay: Duration) -> Self {
        Fault {
            matching: matching.to_owned(),
            methods: vec![axum::http::Method::GET, axum::http::Method::HEAD],
            delay,
            ..Fault::default()
        }
    }

    /// Answers every matching request 500, as a failing store does.
    pub fn failing(matching: &str) -> Self {
        Fault {
            matching: matching.to_owned(),
            error_rate: 1.0,
            ..Fault::default()
        }
    }

    /// Holds every matching request without an answer while in force.
    pub fn stalled(matching: &str) -> Self {
        Fault {
            matching: matching.to_owned(),
            stall: true,
            ..Fault::default()
        }
    }

    /// Carries out the first `count` matching requests but answers them
    /// 500, as a connection lost after the store acted.
    pub fn answers_lost(matching: &str, methods: Vec<axum::http::Method>, count: usize) -> Self {
        Fault {
            matching: matching.to_owned(),
            methods,
            lost_answers: count,
            ..Fault::default()
        }
    }

    /// Answers every matching request carrying `header` 500.
    pub fn failing_with_header(matching: &str, header: &str) -> Self {
        Fault {
            header: header.to_owned(),
            ..Fault::failing(matching)
        }
    }

    fn applies_to(&self, request: &Target) -> bool {
        let decoded = url::form_urlencoded::parse(request.target.as_bytes())
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("&");
        (self.methods.is_empty() || self.methods.contains(&request.method))
            && (self.header.is_empty() || request.headers.contains_key(self.header.as_str()))
            && (request.target.contains(&self.matching) || decoded.contains(&self.matching))
    }
}

/// What the rules look at in a request: its method, path and query, and
/// which headers it carries.
#[derive(Debug)]
struct Target {
    method: axum::http::Method,
    target: String,
    headers: axum::http::HeaderMap,
}

impl Target {
    fn of(request: &Request) -> Self {
        Target {
            method: request.method().clone(),
            target: request
                .uri()
                .path_and_query()
                .map(|target| target.as_str().to_owned())
                .unwrap_or_default(),
            headers: request.headers().clone(),
        }
    }
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    faults: Mutex<Vec<Fault>>,
    shutdown: CancellationToken,
    /// Body bytes forwarded to the store.
    sent: Arc<AtomicU64>,
    /// Body bytes the store answered with.
    received: Arc<AtomicU64>,
    /// The path and query of every request, in order.
    seen: Mutex<Vec<String>>,
}

impl Shared {
    fn matching(&self, request: &Target) -> Vec<Fault> {
        self.faults
            .lock()
            .expect("never poisoned")
            .iter()
            .filter(|fault| fault.applies_to(request))
            .cloned()
            .collect()
    }

    /// Whether `request`'s answer is to be lost, counting it against the
    /// first rule that loses answers.
    fn take_lost_answer(&self, request: &Target) -> bool {
        let mut faults = self.faults.lock().expect("never poisoned");
        match faults
            .iter_mut()
            .find(|fault| fault.lost_answers > 0 && fault.applies_to(request))
        {
            Some(fault) => {
                fault.lost_answers -= 1;
                true
            }
            None => false,
        }
    }

    /// Waits while a rule stalls `request`, or until the proxy stops.
    async fn hold_while_stalled(&self, request: &Target) {
        while self.matching(request).iter().any(|fault| fault.stall) {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }
}

/// The proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
}

impl FaultProxy {
    /// Forwards to `upstream` (`http://127.0.0.1:<port>`), faultless until
    /// [`FaultProxy::set_faults`].
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let shutdown = CancellationToken::new();
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            faults: Mutex::new(Vec::new()),
            shutdown: shutdown.clone(),
            sent: Arc::default(),
            received: Arc::default(),
            seen: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(shared.clone());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .expect("the fault proxy");
        });
        FaultProxy {
            url,
            shared,
            shutdown,
        }
    }

    /// Replaces the rules.
    pub fn set_faults(&self, faults: Vec<Fault>) {
        *self.shared.faults.lock().expect("never poisoned") = faults;
    }

    /// Body bytes carried so far: (to the store, from the store).
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.shared.sent.load(Ordering::Relaxed),
            self.shared.received.load(Ordering::Relaxed),
        )
    }

    /// How many requests so far had `part` in their percent-decoded path
    /// or query.
    pub fn requests_matching(&self, part: &str) -> usize {
        let seen = self.shared.seen.lock().expect("never poisoned");
        seen.iter()
            .filter(|target| {
                url::form_urlencoded::parse(target.as_bytes())
                    .any(|(key, value)| key.contains(part) || value.contains(part))
                    || target.contains(part)
            })
            .count()
    }

    /// `storage` (an `s3://` URL naming the upstream as its endpoint) with
    /// this proxy as the endpoint instead.
    pub fn storage_url(&self, storage: &str) -> String {
        let upstream = url::form_urlencoded::byte_serialize(self.shared.upstream.as_bytes())
            .collect::<String>();
        let through = storage
            .replace(
                &format!("endpoint={}", self.shared.upstream),
                &format!("endpoint={}", self.url),
            )
            .replace(
                &format!("endpoint={upstream}"),
                &format!("endpoint={}", self.url),
            );
        assert_ne!(
            through, storage,
            "{storage} does not name {} as its endpoint",
            self.shared.upstream
        );
        through
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn forward(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let target = Target::of(&request);
    shared
        .seen
        .lock()
        .expect("never poisoned")
        .push(target.target.clone());
    let matching = shared.matching(&target);
    if matching.iter().any(|fault| fault.stall) {
        shared.hold_while_stalled(&target).await;
        let body =
            "<Error><Code>ServiceUnavailable</Code><Message>held by the test</Message></Error>";
        return (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    }
    let fails = matching
        .iter()
        .any(|fault| fault.error_rate > 0.0 && rand::rng().random_bool(fault.error_rate.min(1.0)));
    if fails {
        let body =
            "<Error><Code>InternalError</Code><Message>injected by the test</Message></Error>";
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    let delay: Duration = matching.iter().map(|fault| fault.delay).sum();
    let answer_lost = shared.take_lost_answer(&target);
    let (parts, body) = request.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|target| target.as_str())
        .unwrap_or("/");
    let mut headers = parts.headers;
    let length = headers.remove(axum::http::header::CONTENT_LENGTH);
    for hop_by_hop in [
        axum::http::header::TRANSFER_ENCODING,
        axum::http::header::CONNECTION,
    ] {
        headers.remove(hop_by_hop);
    }
    let mut upstream = shared
        .client
        .request(parts.method, format!("{}{target}", shared.upstream))
        .headers(headers)
        .body(reqwest::Body::wrap_stream(counted(
            body.into_data_stream(),
            shared.sent.clone(),
        )));
    if let Some(length) = length {
        upstream = upstream.header(axum::http::header::CONTENT_LENGTH, length);
    }
    let answered = upstream.send().await;
    tokio::time::sleep(delay).await;
    if answer_lost {
        let body =
            "<Error><Code>InternalError</Code><Message>answer lost by the test</Message></Error>";
        return (StatusCode::INTERNAL_SERVER_ERROR, body).into_response();
    }
    match answered {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != axum::http::header::TRANSFER_ENCODING
                    && name != axum::http::header::CONNECTION
                {
                    response = response.header(name, value);
                }
            }
            response
                .body(Body::from_stream(counted(
                    answer.bytes_stream(),
                    shared.received.clone(),
                )))
                .unwrap_or_else(|error| {
                    (StatusCode::BAD_GATEWAY, error.to_string()).into_response()
                })
        }
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

/// `stream`, adding the length of each piece to `count` as it passes.
fn counted<E>(
    stream: impl futures::Stream<Item = Result<bytes::Bytes, E>>,
    count: Arc<AtomicU64>,
) -> impl futures::Stream<Item = Result<bytes::Bytes, E>> {
    use futures::StreamExt;
    stream.inspect(move |piece| {
        if let Ok(piece) = piece {
            count.fetch_add(piece.len() as u64, Ordering::Relaxed);
        }
    })
}
