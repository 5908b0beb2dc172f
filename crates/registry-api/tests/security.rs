//! What an attacker tries against logins and the internal ports: locking
//! everyone out from one address, forging `X-Forwarded-For`, guessing in
//! parallel, outliving a restart of auth-service with a cached login,
//! calling auth-service or the admin port without their tokens, and
//! reading `/metrics` from outside.

use std::net::IpAddr;
use std::time::Duration;

use registry_proto::auth::VerifyRequest;
use registry_proto::auth::authenticator_client::AuthenticatorClient;
use registry_proto::maintenance::StatusRequest;
use registry_proto::maintenance::maintenance_client::MaintenanceClient;
use service_runtime::token::SharedToken;
use test_support::{Edge, TestAuth, TestRegistry, bcrypt_line, eventually};

/// auth-service with alice and bob, and one registry-api replica behind it
/// believing `X-Forwarded-For` from `trusted`.
struct Secured {
    dir: tempfile::TempDir,
    auth: TestAuth,
    registry: TestRegistry,
}

async fn secured(trusted: &[&str], token: Option<SharedToken>) -> Secured {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    let lines = [
        bcrypt_line("alice", "alice-password"),
        bcrypt_line("bob", "bob-password"),
    ];
    std::fs::write(&htpasswd, lines.join("\n")).expect("htpasswd");
    let auth = TestAuth::start_with_token(&htpasswd, None, token.clone()).await;
    let mut config = registry_api::Config::with_storage("memory://");
    config.auth_endpoint = Some(auth.url.parse().expect("URL"));
    config.auth_token = token.map(|token| token.expose().to_owned());
    config.trusted_proxies = trusted
        .iter()
        .map(|proxy| proxy.parse().expect("CIDR"))
        .collect();
    let registry = TestRegistry::start_with(config).await;
    Secured {
        dir,
        auth,
        registry,
    }
}

/// A client whose connections come from `source` (any 127.x.y.z works on
/// loopback), accepting the edge's self-signed certificate.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().expect("address"))
        .tls_danger_accept_invalid_certs(true)
        .build()
        .expect("client")
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    forwarded: Option<&str>,
) -> u16 {
    let mut request = client
        .get(format!("{base}/v2/"))
        .basic_auth(user, Some(password));
    if let Some(forwarded) = forwarded {
        request = request.header("x-forwarded-for", forwarded);
    }
    request.send().await.expect("GET /v2/").status().as_u16()
}

/// A guesser from one address (also forging `X-Forwarded-For` with every
/// attempt) is refused; alice and bob, from their own addresses, log in.
async fn a_guesser_locks_out_only_itself(base: &str) {
    let (attacker, alice) = (client_from("127.0.0.2"), client_from("127.0.0.3"));
    let mut statuses = Vec::new();
    for attempt in 0..12 {
        let forged = format!("198.51.100.{attempt}");
        statuses.push(login(&attacker, base, "alice", "guess", Some(&forged)).await);
    }
    for sprayed in 0..5 {
        let forged = format!("203.0.113.{sprayed}");
        login(
            &attacker,
            base,
            &format!("nobody{sprayed}"),
            "x",
            Some(&forged),
        )
        .await;
    }
    assert!(
        statuses[..3].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        statuses[10..].iter().all(|status| *status == 429),
        "forged X-Forwarded-For must not reset the count: {statuses:?}"
    );
    assert_eq!(
        login(&attacker, base, "alice", "alice-password", None).await,
        429,
        "the guesser is refused even with the right password"
    );
    assert_eq!(
        login(&alice, base, "alice", "alice-password", None).await,
        200
    );
    assert_eq!(login(&alice, base, "bob", "bob-password", None).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_locks_out_only_itself_on_a_direct_connection() {
    let secured = secured(&[], None).await;
    a_guesser_locks_out_only_itself(&secured.registry.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guesser_locks_out_only_itself_behind_the_edge() {
    let secured = secured(&["127.0.0.1/32"], None).await;
    let host = secured.registry.host();
    let Some(edge) = Edge::start(secured.dir.path(), &host, &host).await else {
        return;
    };
    let base = format!("https://{}", edge.host);
    let chosen = client_from("127.0.0.6")
        .get(format!("{base}/v2/"))
        .header("x-request-id", "chosen-by-the-client")
        .send()
        .await
        .expect("GET");
    let request_id = chosen.headers()["x-request-id"].to_str().expect("text");
    assert_ne!(
        request_id, "chosen-by-the-client",
        "the edge names requests itself"
    );
    a_guesser_locks_out_only_itself(&base).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_guesses_cannot_outrun_the_limit() {
    let secured = secured(&[], None).await;
    let (client, base) = (client_from("127.0.0.4"), secured.registry.url.clone());
    // Distinct guesses: requests with the same credentials share one check.
    let passwords: Vec<String> = (0..60)
        .map(|guess| match guess {
            59 => "alice-password".to_owned(),
            _ => format!("guess-{guess}"),
        })
        .collect();
    let guesses = passwords
        .iter()
        .map(|password| login(&client, &base, "alice", password, None));
    let statuses = futures::future::join_all(guesses).await;
    let refused = statuses.iter().filter(|status| **status == 429).count();
    assert!(
        refused >= 50,
        "only {refused} of 60 concurrent guesses were refused: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_login_does_not_outlive_a_restart_of_auth_service() {
    let secured = secured(&[], None).await;
    let (client, base) = (client_from("127.0.0.5"), secured.registry.url.clone());
    assert_eq!(
        login(&client, &base, "alice", "alice-password", None).await,
        200
    );
    let address = secured.auth.addr;
    secured.auth.stop().await;
    let htpasswd = secured.dir.path().join("htpasswd");
    std::fs::write(&htpasswd, bcrypt_line("alice", "new-password")).expect("htpasswd");
    let _restarted = TestAuth::restart(address, &htpasswd, None).await;
    eventually(
        "the old password refused",
        Duration::from_secs(6),
        async || login(&client, &base, "alice", "alice-password", None).await == 401,
    )
    .await;
    assert_eq!(
        login(&client, &base, "alice", "new-password", None).await,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_service_answers_only_callers_with_its_token() {
    let token = SharedToken::generate();
    let secured = secured(&[], Some(token.clone())).await;
    assert_eq!(
        login(
            &reqwest::Client::new(),
            &secured.registry.url,
            "alice",
            "alice-password",
            None
        )
        .await,
        200,
        "registry-api presents the token"
    );
    let mut direct = AuthenticatorClient::connect(secured.auth.url.clone())
        .await
        .expect("auth-service");
    let guess = || VerifyRequest {
        username: "alice".into(),
        password: "alice-password".into(),
        client_address: String::new(),
    };
    let refused = direct.verify(guess()).await.expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut wrong = tonic::Request::new(guess());
    SharedToken::generate().attach(&mut wrong);
    let refused = direct.verify(wrong).await.expect_err("wrong token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);

    let mut without = registry_api::Config::with_storage("memory://");
    without.auth_endpoint = Some(secured.auth.url.parse().expect("URL"));
    let tokenless = TestRegistry::start_with(without).await;
    assert_eq!(
        login(
            &reqwest::Client::new(),
            &tokenless.url,
            "alice",
            "alice-password",
            None
        )
        .await,
        503,
        "a replica without the token gets no answers, and never anonymous access"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_maintenance_are_on_the_admin_port_behind_its_token() {
    let token = SharedToken::generate();
    let mut config = registry_api::Config::with_storage("memory://");
    config.admin_token = Some(token.expose().to_owned());
    let registry = TestRegistry::start_with(config).await;
    reqwest::get(format!("{}/v2/", registry.url))
        .await
        .expect("GET");
    let public = reqwest::get(format!("{}/metrics", registry.url))
        .await
        .expect("GET");
    assert_eq!(public.status(), 404, "no metrics through the edge");

    let metrics_url = format!("http://{}/metrics", registry.admin_addr);
    let client = reqwest::Client::new();
    let anonymous = client.get(&metrics_url).send().await.expect("GET");
    assert_eq!(anonymous.status(), 401);
    let wrong = client
        .get(&metrics_url)
        .header("authorization", format!("{}x", token.bearer()))
        .send()
        .await
        .expect("GET");
    assert_eq!(wrong.status(), 401);
    let scraped = client
        .get(&metrics_url)
        .header("authorization", token.bearer())
        .send()
        .await
        .expect("GET");
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await.expect("text");
    assert!(
        text.contains("http_requests_total{route=\"base\",method=\"GET\",status=\"200\"}"),
        "{text}"
    );

    let mut admin = MaintenanceClient::connect(format!("http://{}", registry.admin_addr))
        .await
        .expect("admin port");
    let refused = admin.status(StatusRequest {}).await.expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut request = tonic::Request::new(StatusRequest {});
    token.attach(&mut request);
    admin.status(request).await.expect("with the token");
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", registry.admin_addr))
            .expect("endpoint")
            .connect()
            .await
            .expect("admin port");
    let health = tonic_health::pb::health_client::HealthClient::new(channel)
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .expect("health needs no token");
    assert_eq!(health.into_inner().status, 1);
}
