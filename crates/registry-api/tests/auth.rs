//! registry-api behind auth-service, both on ephemeral ports: logins,
//! 401/403/429, the policy, reloads with the last-good rule, and
//! auth-service going away and coming back.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use test_support::{
    Image, TestAuth, TestRegistry, argon2id_line, bcrypt_line, eventually, push_image,
};

const POLICY: &str = r#"
[groups]
developers = ["alice", "bob"]

[[rule]]
repositories = ["team/**"]
groups = ["developers"]
actions = ["pull"]

[[rule]]
repositories = ["team/**"]
users = ["alice"]
actions = ["push", "delete"]

[[rule]]
repositories = ["public/**"]
anonymous = true
actions = ["pull"]
"#;

struct Setup {
    _dir: tempfile::TempDir,
    htpasswd: std::path::PathBuf,
    policy: std::path::PathBuf,
    auth: Option<TestAuth>,
    registry: TestRegistry,
    client: reqwest::Client,
}

async fn setup(with_policy: bool) -> Setup {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    let lines = [
        bcrypt_line("alice", "alice-password"),
        argon2id_line("bob", "bob-password"),
        "old:$apr1$salt$abcdefghijklmnopqrstuv".to_owned(),
    ];
    std::fs::write(&htpasswd, lines.join("\n")).expect("htpasswd");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, POLICY).expect("policy");
    let auth = TestAuth::start(&htpasswd, with_policy.then_some(policy.as_path())).await;
    let registry = TestRegistry::start_authenticated("memory://", &auth).await;
    Setup {
        _dir: dir,
        htpasswd,
        policy,
        auth: Some(auth),
        registry,
        client: reqwest::Client::new(),
    }
}

impl Setup {
    async fn get(&self, path: &str, user: Option<(&str, &str)>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.registry.url));
        if let Some((user, password)) = user {
            request = request.basic_auth(user, Some(password));
        }
        request.send().await.expect("request")
    }

    async fn push(&self, repository: &str, tag: &str, user: (&str, &str)) -> StatusCode {
        let image = Image::random(1, 100);
        let client = reqwest::Client::builder()
            .default_headers({
                use base64::Engine;
                let token = base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", user.0, user.1));
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert(
                    "authorization",
                    format!("Basic {token}").parse().expect("header"),
                );
                headers
            })
            .build()
            .expect("client");
        let response = client
            .post(format!(
                "{}/v2/{repository}/blobs/uploads/",
                self.registry.url
            ))
            .send()
            .await
            .expect("upload start");
        if response.status() != StatusCode::ACCEPTED {
            return response.status();
        }
        push_image(&client, &self.registry.url, repository, tag, &image).await;
        StatusCode::CREATED
    }
}

async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("JSON error body");
    body["errors"][0]["code"].as_str().expect("code").to_owned()
}

#[tokio::test]
async fn logins_get_401_until_credentials_are_right() {
    let setup = setup(false).await;
    let anonymous = setup.get("/v2/", None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers()["www-authenticate"],
        "Basic realm=\"Berth\""
    );
    assert_eq!(error_code(anonymous).await, "UNAUTHORIZED");

    assert_eq!(
        setup
            .get("/v2/", Some(("alice", "alice-password")))
            .await
            .status(),
        200
    );
    assert_eq!(
        setup
            .get("/v2/", Some(("bob", "bob-password")))
            .await
            .status(),
        200
    );
    assert_eq!(
        setup.get("/v2/", Some(("alice", "wrong"))).await.status(),
        401
    );
    assert_eq!(setup.get("/v2/", Some(("nobody", "x"))).await.status(), 401);
    let weak = setup.get("/v2/", Some(("old", "anything"))).await;
    assert_eq!(weak.status(), 401, "a weak-format user is never accepted");

    assert_eq!(
        setup.push("any/repo", "v1", ("bob", "bob-password")).await,
        StatusCode::CREATED
    );
    let pulled = setup
        .get("/v2/any/repo/tags/list", Some(("alice", "alice-password")))
        .await;
    assert_eq!(pulled.status(), 200);
    let anonymous_pull = setup.get("/v2/any/repo/tags/list", None).await;
    assert_eq!(anonymous_pull.status(), 401);
}

#[tokio::test]
async fn repeated_failures_are_refused_with_429() {
    let setup = setup(false).await;
    let started = Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(setup.get("/v2/", Some(("alice", "guess"))).await.status());
    }
    assert!(
        statuses[..3].iter().all(|status| *status == 401),
        "{statuses:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(500),
        "failures past the third are slowed"
    );
    let refused = setup.get("/v2/", Some(("alice", "alice-password"))).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(error_code(refused).await, "TOOMANYREQUESTS");
}

#[tokio::test]
async fn the_policy_grants_by_user_group_and_anonymous() {
    let setup = setup(true).await;
    assert_eq!(
        setup
            .push("team/app", "v1", ("alice", "alice-password"))
            .await,
        StatusCode::CREATED
    );
    assert_eq!(
        setup
            .push("public/base", "v1", ("alice", "alice-password"))
            .await,
        StatusCode::FORBIDDEN
    );
    let denied = setup.push("team/app", "v2", ("bob", "bob-password")).await;
    assert_eq!(denied, StatusCode::FORBIDDEN);

    let bob_pull = setup
        .get("/v2/team/app/manifests/v1", Some(("bob", "bob-password")))
        .await;
    assert_eq!(bob_pull.status(), 200);
    let bob_delete = setup
        .client
        .delete(format!("{}/v2/team/app/manifests/v1", setup.registry.url))
        .basic_auth("bob", Some("bob-password"))
        .send()
        .await
        .expect("delete");
    assert_eq!(bob_delete.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(bob_delete).await, "DENIED");

    let anonymous = setup.get("/v2/public/base/tags/list", None).await;
    assert_ne!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "anonymous pull of public/**"
    );
    let catalog: serde_json::Value = setup
        .get("/v2/_catalog", Some(("bob", "bob-password")))
        .await
        .json()
        .await
        .expect("catalog");
    assert_eq!(catalog["repositories"], serde_json::json!(["team/app"]));
}

#[tokio::test]
async fn reloads_apply_and_a_broken_file_keeps_the_last_good_one() {
    let setup = setup(true).await;
    let mut lines = std::fs::read_to_string(&setup.htpasswd).expect("htpasswd");
    lines.push_str(&format!("\n{}\n", bcrypt_line("carol", "carol-password")));
    std::fs::write(&setup.htpasswd, &lines).expect("htpasswd");
    eventually("carol's login", Duration::from_secs(15), async || {
        setup
            .get("/v2/", Some(("carol", "carol-password")))
            .await
            .status()
            == 200
    })
    .await;

    std::fs::write(&setup.htpasswd, "carol:plaintext\nalice:{SHA}x\n").expect("broken htpasswd");
    std::fs::write(&setup.policy, "[[rule]\n").expect("broken policy");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        setup
            .get("/v2/", Some(("carol", "carol-password")))
            .await
            .status(),
        200
    );
    assert_eq!(
        setup
            .get("/v2/team/app/tags/list", Some(("carol", "carol-password")))
            .await
            .status(),
        StatusCode::FORBIDDEN,
        "the last good policy stays in force"
    );
    let metrics = reqwest::get(format!("http://{}/metrics", setup.registry.admin_addr))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics");
    assert!(metrics.contains("auth_service_failed_reloads"), "{metrics}");
}

#[tokio::test]
async fn auth_service_away_means_503_and_recovery_when_it_returns() {
    let mut setup = setup(false).await;
    assert_eq!(
        setup
            .get("/v2/", Some(("alice", "alice-password")))
            .await
            .status(),
        200
    );
    let auth = setup.auth.take().expect("auth");
    let addr = auth.addr;
    auth.stop().await;
    let away = setup.get("/v2/", Some(("bob", "bob-password"))).await;
    assert_eq!(away.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(away).await, "UNAVAILABLE");
    let anonymous = setup.get("/v2/any/tags/list", None).await;
    assert_eq!(
        anonymous.status(),
        StatusCode::SERVICE_UNAVAILABLE,
        "never anonymous access"
    );

    setup.auth = Some(TestAuth::restart(addr, Path::new(&setup.htpasswd), None).await);
    eventually("recovery", Duration::from_secs(15), async || {
        setup
            .get("/v2/", Some(("bob", "bob-password")))
            .await
            .status()
            == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_with_creds_and_podman_login() {
    let Some(skopeo) = test_support::require_tool("skopeo") else {
        return;
    };
    let setup = setup(true).await;
    let work = tempfile::tempdir().expect("temporary directory");
    let host = setup.registry.host();
    let image = Image::random(1, 4096);
    let layout = work.path().join("layout");
    test_support::write_oci_layout(&layout, &[("v1", &image)], &[]);
    let skopeo_with = |args: Vec<String>| {
        let mut command = skopeo.command();
        command.args(args);
        test_support::run_tool(command)
    };
    skopeo_with(vec![
        "copy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-creds=alice:alice-password".into(),
        format!("oci:{}:v1", layout.display()),
        format!("docker://{host}/team/app:v1"),
    ])
    .await;
    let tags = skopeo_with(vec![
        "list-tags".into(),
        "--tls-verify=false".into(),
        "--creds=bob:bob-password".into(),
        format!("docker://{host}/team/app"),
    ])
    .await;
    assert!(tags.contains("\"v1\""), "{tags}");

    let Some(podman) = test_support::Podman::new(work.path(), &host) else {
        return;
    };
    podman
        .run_with_input(
            &[
                "login",
                "--tls-verify=false",
                "--username",
                "alice",
                "--password-stdin",
                &host,
            ],
            "alice-password\n",
        )
        .await;
    let name = format!("{host}/team/app:v2");
    podman.import(&layout, "v1", &name).await;
    podman.run(&["push", "--tls-verify=false", &name]).await;
    podman.run(&["rmi", "--all", "--force"]).await;
    podman.run(&["pull", "--tls-verify=false", &name]).await;
    let bob = setup
        .get("/v2/team/app/manifests/v2", Some(("bob", "bob-password")))
        .await;
    assert_eq!(bob.status(), 200);
}
