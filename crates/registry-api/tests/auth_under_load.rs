//! auth-service restarted, then stopped and started again, while clients
//! keep pulling and pushing (each from its own address behind a trusted
//! proxy, as behind the edge). A request with wrong credentials or none is
//! never served. A login registry-api verified in the last minute keeps
//! working from its cache while auth-service is away; any other login gets
//! 503, never 401 or 429; and once auth-service is back, every client is
//! served again without restarting registry-api.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use test_support::{Blob, Image, TestAuth, TestRegistry, bcrypt_line, eventually, push_image};
use tokio_util::sync::CancellationToken;

const REPOSITORY: &str = "team/app";

/// Where the run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
enum Phase {
    Up,
    Restarting,
    Stopped,
    Back,
}

/// Who is asking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Client {
    /// alice, pulling an image.
    Puller,
    /// bob, pushing blobs.
    Pusher,
    /// alice's name with a wrong password.
    Guesser,
    /// No credentials.
    Anonymous,
    /// carol, logging in for the first time while auth-service is away.
    Newcomer,
}

impl Client {
    /// The client's own address, as the edge forwards it.
    fn address(self) -> &'static str {
        match self {
            Client::Puller => "192.0.2.1",
            Client::Pusher => "192.0.2.2",
            Client::Guesser => "192.0.2.3",
            Client::Anonymous => "192.0.2.4",
            Client::Newcomer => "192.0.2.5",
        }
    }

    fn credentials(self) -> Option<(&'static str, &'static str)> {
        match self {
            Client::Puller => Some(("alice", "alice-password")),
            Client::Pusher => Some(("bob", "bob-password")),
            Client::Guesser => Some(("alice", "a-guess")),
            Client::Anonymous => None,
            Client::Newcomer => Some(("carol", "carol-password")),
        }
    }

    /// Pause between requests: guessing slowly enough that the address
    /// limits never lock the guesser itself out of answers.
    fn pause(self) -> Duration {
        match self {
            Client::Guesser => Duration::from_millis(300),
            _ => Duration::from_millis(10),
        }
    }
}

/// One answer: who asked, in which phase it was asked and answered, and
/// the status.
#[derive(Clone, Copy, Debug)]
struct Seen {
    client: Client,
    asked: Phase,
    answered: Phase,
    status: u16,
}

struct Run {
    registry: TestRegistry,
    image: Image,
    phase: AtomicU8,
    seen: Mutex<Vec<Seen>>,
}

impl Run {
    fn phase(&self) -> Phase {
        match self.phase.load(Ordering::SeqCst) {
            0 => Phase::Up,
            1 => Phase::Restarting,
            2 => Phase::Stopped,
            _ => Phase::Back,
        }
    }

    fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// One request of `client`'s kind.
    async fn request(&self, http: &reqwest::Client, client: Client) -> u16 {
        let base = &self.registry.url;
        let request = match client {
            Client::Puller => {
                let layer = &self.image.layers[0];
                http.get(format!("{base}/v2/{REPOSITORY}/blobs/{}", layer.digest))
            }
            Client::Pusher => {
                let blob = Blob::new("application/octet-stream", test_support::random_bytes(512));
                http.post(format!(
                    "{base}/v2/{REPOSITORY}/blobs/uploads/?digest={}",
                    blob.digest
                ))
                .body(blob.bytes)
            }
            Client::Anonymous => http.get(format!("{base}/v2/{REPOSITORY}/manifests/v1")),
            Client::Guesser | Client::Newcomer => http.get(format!("{base}/v2/")),
        };
        let request = request.header("x-forwarded-for", client.address());
        let request = match client.credentials() {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        request.send().await.expect("a response").status().as_u16()
    }

    /// Sends `client`'s requests until `stop`, recording every answer.
    async fn keep_asking(self: Arc<Self>, client: Client, stop: CancellationToken) {
        let http = reqwest::Client::new();
        while !stop.is_cancelled() {
            let asked = self.phase();
            let status = self.request(&http, client).await;
            self.seen.lock().expect("never poisoned").push(Seen {
                client,
                asked,
                answered: self.phase(),
                status,
            });
            tokio::time::sleep(client.pause()).await;
        }
    }

    fn statuses(&self, client: Client, within: Phase) -> Vec<u16> {
        self.seen
            .lock()
            .expect("never poisoned")
            .iter()
            .filter(|seen| seen.client == client && seen.asked == within && seen.answered == within)
            .map(|seen| seen.status)
            .collect()
    }

    fn all_seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("never poisoned").clone()
    }
}

async fn start(htpasswd: &std::path::Path) -> (TestAuth, Arc<Run>) {
    let auth = TestAuth::start(htpasswd, None).await;
    let mut config = registry_api::Config::with_storage("memory://");
    config.auth_endpoint = Some(auth.url.parse().expect("auth URL"));
    config.trusted_proxies = vec![registry_api::parse_proxy("127.0.0.1").expect("a proxy")];
    let registry = TestRegistry::start_with(config).await;
    let image = Image::random(1, 2048);
    let alice = {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode("alice:alice-password");
        let header = format!("Basic {token}").parse().expect("header");
        reqwest::Client::builder()
            .default_headers(
                [(reqwest::header::AUTHORIZATION, header)]
                    .into_iter()
                    .collect(),
            )
            .build()
            .expect("client")
    };
    push_image(&alice, &registry.url, REPOSITORY, "v1", &image).await;
    let run = Arc::new(Run {
        registry,
        image,
        phase: AtomicU8::new(Phase::Up as u8),
        seen: Mutex::default(),
    });
    (auth, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_service_restarted_and_stopped_under_load() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let htpasswd = directory.path().join("htpasswd");
    let users = [
        bcrypt_line("alice", "alice-password"),
        bcrypt_line("bob", "bob-password"),
        bcrypt_line("carol", "carol-password"),
    ];
    std::fs::write(&htpasswd, users.join("\n")).expect("htpasswd");
    let (auth, run) = start(&htpasswd).await;
    let addr = auth.addr;
    let stop = CancellationToken::new();
    let mut clients = Vec::new();
    for client in [
        Client::Puller,
        Client::Pusher,
        Client::Guesser,
        Client::Anonymous,
    ] {
        clients.push(tokio::spawn(run.clone().keep_asking(client, stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    run.enter(Phase::Restarting);
    auth.stop().await;
    let auth = TestAuth::restart(addr, &htpasswd, None).await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    run.enter(Phase::Stopped);
    auth.stop().await;
    clients.push(tokio::spawn(
        run.clone().keep_asking(Client::Newcomer, stop.clone()),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;

    run.enter(Phase::Back);
    let _auth = TestAuth::restart(addr, &htpasswd, None).await;
    eventually(
        "the newcomer's first login once auth-service is back",
        Duration::from_secs(15),
        async || run.statuses(Client::Newcomer, Phase::Back).contains(&200),
    )
    .await;
    let settled = run.all_seen().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    for client in clients {
        client.await.expect("a client");
    }

    let seen = run.all_seen();
    let mut by_client: HashMap<Client, Vec<u16>> = HashMap::new();
    for answer in &seen {
        by_client
            .entry(answer.client)
            .or_default()
            .push(answer.status);
        let allowed: &[u16] = match answer.client {
            Client::Puller => &[200, 503],
            Client::Pusher => &[201, 503],
            Client::Newcomer => &[200, 503],
            Client::Guesser => &[401, 429, 503],
            Client::Anonymous => &[401, 503],
        };
        assert!(
            allowed.contains(&answer.status),
            "{answer:?}: only {allowed:?} may answer this client"
        );
    }
    let stopped = run.statuses(Client::Newcomer, Phase::Stopped);
    assert!(stopped.len() >= 20, "the newcomer kept trying: {stopped:?}");
    assert!(
        stopped.iter().all(|status| *status == 503),
        "a login nobody verified is 503 while auth-service is away: {stopped:?}"
    );
    for client in [Client::Puller, Client::Pusher, Client::Newcomer] {
        let last: Vec<u16> = seen[settled..]
            .iter()
            .filter(|answer| answer.client == client)
            .map(|answer| answer.status)
            .collect();
        assert!(!last.is_empty(), "{client:?} asked nothing at the end");
        assert!(
            last.iter().all(|status| *status < 300),
            "{client:?} is served again once auth-service is back: {last:?}"
        );
    }
    for client in [
        Client::Puller,
        Client::Pusher,
        Client::Guesser,
        Client::Anonymous,
    ] {
        assert!(
            by_client
                .get(&client)
                .is_some_and(|statuses| statuses.len() >= 5),
            "{client:?} kept asking"
        );
    }
}
