//! `cargo run --release` as a newcomer meets it: the first start creates an
//! admin user with a random password, shows it once, and requires it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::free_port;

const BINARY: &str = env!("CARGO_BIN_EXE_registry-stack");

struct Stack {
    child: std::process::Child,
    url: String,
    /// `http://127.0.0.1:<admin port>`.
    admin_url: String,
    /// The web UI.
    ui_url: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the stack; returns it and what it printed before serving.
async fn start(data: &std::path::Path) -> (Stack, Vec<String>) {
    let (listen, admin, auth, ui) = (free_port(), free_port(), free_port(), free_port());
    let mut child = Command::new(BINARY)
        .arg("--data-dir")
        .arg(data)
        .arg("--listen")
        .arg(format!("127.0.0.1:{listen}"))
        .arg("--admin-listen")
        .arg(format!("127.0.0.1:{admin}"))
        .arg("--auth-listen")
        .arg(format!("127.0.0.1:{auth}"))
        .arg("--ui-listen")
        .arg(format!("127.0.0.1:{ui}"))
        .args(["--gc-schedule", "* * * * * *"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("registry-stack");
    let stdout = child.stdout.take().expect("stdout");
    let url = format!("http://127.0.0.1:{listen}");
    let admin_url = format!("http://127.0.0.1:{admin}");
    let stack = Stack {
        child,
        url,
        admin_url,
        ui_url: format!("http://127.0.0.1:{ui}"),
    };
    for _ in 0..200 {
        if reqwest::get(format!("{}/healthz", stack.url)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let printed = tokio::task::spawn_blocking(move || {
        // The banners are printed before serving, the last one ending with
        // the deployment guide; the pipe stays open, so read only that far.
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|read| read > 0) {
            lines.push(line.trim_end().to_owned());
            if line.contains("deploy/README.md") {
                break;
            }
            line.clear();
        }
        lines
    });
    let printed = tokio::time::timeout(Duration::from_secs(2), printed)
        .await
        .map(|lines| lines.expect("reader"))
        .unwrap_or_default();
    (stack, printed)
}

#[tokio::test]
async fn the_first_start_creates_an_admin_and_shows_the_password_once() {
    let data = tempfile::tempdir().expect("temporary directory");
    let (stack, printed) = start(data.path()).await;
    let banner = printed.join("\n");
    let password = banner
        .split("password `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or_else(|| panic!("no password in {banner:?}"))
        .to_owned();
    assert!(password.len() >= 20);
    assert!(
        banner.contains(&stack.ui_url),
        "the banner says where the UI is: {banner:?}"
    );
    for client in ["docker login", "podman login", "skopeo copy"] {
        assert!(
            banner.contains(client),
            "the banner says how to use {client}: {banner}"
        );
    }
    let htpasswd = std::fs::read_to_string(data.path().join("htpasswd")).expect("htpasswd");
    assert!(htpasswd.starts_with("admin:$argon2id$"));
    assert!(!htpasswd.contains(&password));

    let client = reqwest::Client::new();
    let anonymous = client
        .get(format!("{}/v2/", stack.url))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);
    let admin = client
        .get(format!("{}/v2/", stack.url))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .expect("GET");
    assert_eq!(admin.status(), 200);
    let report = data.path().join("registry/berth/gc/reports/latest.json");
    test_support::eventually(
        "a scheduled collection",
        Duration::from_secs(10),
        async || report.exists(),
    )
    .await;
    for secret in ["htpasswd", "admin-token", "auth-token", "proxy-token"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(data.path().join(secret))
            .expect(secret)
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "{secret} is readable by its owner only"
        );
    }
    let token = std::fs::read_to_string(data.path().join("admin-token")).expect("admin token");
    assert!(token.trim().len() >= 32);
    let metrics = format!("{}/metrics", stack.admin_url);
    let anonymous = client.get(&metrics).send().await.expect("GET");
    assert_eq!(
        anonymous.status(),
        401,
        "the stack's admin port needs its token"
    );
    let scraped = client
        .get(&metrics)
        .bearer_auth(token.trim())
        .send()
        .await
        .expect("GET");
    assert_eq!(scraped.status(), 200);

    // The web UI logs in as the registry's admin and shows the collection
    // gc-worker ran, read from the admin port with the generated token.
    let session = client
        .get(format!("{}/api/v1/session", stack.ui_url))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .expect("GET");
    assert_eq!(session.status(), 200);
    let status: serde_json::Value = client
        .get(format!("{}/api/v1/status", stack.ui_url))
        .basic_auth("admin", Some(&password))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert!(status["latest_gc"]["started_at"].is_string(), "{status}");
    drop(stack);

    let (again, printed) = start(data.path()).await;
    assert!(
        !printed.join("\n").contains(&password),
        "the password is never shown again"
    );

    // The stack has no proxy in front: a client forging X-Forwarded-For
    // with every guess is still one client, and is stopped.
    let mut statuses = Vec::new();
    for guess in 0..11 {
        let status = client
            .get(format!("{}/v2/", again.url))
            .basic_auth("admin", Some(format!("guess-{guess}")))
            .header("x-forwarded-for", format!("198.51.100.{guess}"))
            .send()
            .await
            .expect("GET")
            .status();
        statuses.push(status.as_u16());
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}
