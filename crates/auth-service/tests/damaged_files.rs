//! The users and policy files when they cannot be used: a directory or a
//! dangling link in the file's place (as root, `chmod` would not stop a
//! read), binary garbage, a bcrypt or argon2id hash cut off. At start
//! auth-service refuses to run with an error naming the file and the line;
//! on reload the last good files stay in force and the refusal is logged
//! naming them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use registry_proto::auth::authenticator_client::AuthenticatorClient;
use registry_proto::auth::{AuthorizeRequest, StatusRequest, VerifyRequest};
use test_support::{bcrypt_line, eventually, free_port};
use tonic::transport::Channel;

const BINARY: &str = env!("CARGO_BIN_EXE_auth-service");

/// A policy giving alice pull on `team/**`.
const POLICY: &str =
    "[[rule]]\nrepositories = [\"team/**\"]\nusers = [\"alice\"]\nactions = [\"pull\"]\n";

/// What can be wrong with a file, and what the error names besides the
/// file itself.
#[derive(Clone, Copy, Debug)]
enum Damage {
    /// A directory where the file should be.
    Directory,
    /// A link to a file that does not exist.
    DanglingLink,
    /// Bytes that are not text on the second line.
    BinaryGarbage,
    /// The second user's bcrypt hash ends early.
    BcryptCutOff,
    /// The second user's argon2id hash ends inside its salt.
    Argon2idCutOff,
    /// A policy that is not TOML on its second line.
    NotToml,
}

impl Damage {
    /// Puts the damaged file at `path` in place of the good one, in one
    /// rename where it can (a directory cannot replace a file so).
    fn apply(self, path: &Path) {
        let good_line = bcrypt_line("alice", "alice-password");
        let text = match self {
            Damage::Directory => {
                std::fs::remove_file(path).expect("the good file");
                return std::fs::create_dir(path).expect("a directory");
            }
            Damage::DanglingLink => {
                let link = path.with_extension("link");
                std::os::unix::fs::symlink(path.with_extension("gone"), &link).expect("a link");
                return std::fs::rename(link, path).expect("the link in place");
            }
            Damage::BinaryGarbage => {
                [b"# users\n".as_slice(), &[0xff, 0xfe, 0x00, 0x9f, b'\n']].concat()
            }
            Damage::BcryptCutOff => {
                let whole = bcrypt_line("bob", "bob-password");
                format!("{good_line}\n{}\n", &whole[..40]).into_bytes()
            }
            Damage::Argon2idCutOff => {
                let cut = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0";
                format!("{good_line}\nbob:{cut}\n").into_bytes()
            }
            Damage::NotToml => b"[[rule]]\nrepositories = [\"team/**\"\n".to_vec(),
        };
        replace(path, &text);
    }

    /// What the error must say besides the file's path.
    fn named(self) -> &'static str {
        match self {
            Damage::Directory => "directory",
            Damage::DanglingLink => "No such file",
            Damage::BinaryGarbage
            | Damage::BcryptCutOff
            | Damage::Argon2idCutOff
            | Damage::NotToml => "line 2",
        }
    }
}

/// Writes `bytes` to `path` in one rename, over a file, a link or (moved
/// aside first) a directory.
fn replace(path: &Path, bytes: &[u8]) {
    let staged = path.with_extension("staged");
    std::fs::write(&staged, bytes).expect("the new file");
    if path.is_dir() {
        std::fs::rename(path, path.with_extension("aside")).expect("the directory aside");
    }
    std::fs::rename(staged, path).expect("the new file in place");
}

const USERS_DAMAGES: [Damage; 5] = [
    Damage::Directory,
    Damage::DanglingLink,
    Damage::BinaryGarbage,
    Damage::BcryptCutOff,
    Damage::Argon2idCutOff,
];
const POLICY_DAMAGES: [Damage; 4] = [
    Damage::Directory,
    Damage::DanglingLink,
    Damage::BinaryGarbage,
    Damage::NotToml,
];

/// A directory with a good users file and policy.
fn good_files() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let htpasswd = dir.path().join("htpasswd");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&htpasswd, bcrypt_line("alice", "alice-password") + "\n").expect("htpasswd");
    std::fs::write(&policy, POLICY).expect("policy");
    (dir, htpasswd, policy)
}

fn serve_command(htpasswd: &Path, policy: &Path, port: u16) -> Command {
    let mut command = Command::new(BINARY);
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--htpasswd"])
        .arg(htpasswd)
        .arg("--policy")
        .arg(policy)
        .args(["--log-format", "json"])
        .stdin(Stdio::null());
    command
}

/// Runs auth-service, which must exit with an error within 20 s; returns
/// what it printed.
fn failed_start(htpasswd: &Path, policy: &Path) -> String {
    let mut child = serve_command(htpasswd, policy, free_port())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("auth-service");
    let started = Instant::now();
    while child.try_wait().expect("the child's state").is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("auth-service started with a damaged file");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("its output");
    assert!(!output.status.success());
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn a_damaged_file_stops_the_start_naming_the_file_and_line() {
    for damage in USERS_DAMAGES {
        let (_dir, htpasswd, policy) = good_files();
        damage.apply(&htpasswd);
        let printed = failed_start(&htpasswd, &policy);
        let file = htpasswd.display().to_string();
        assert!(
            printed.contains(&file) && printed.contains(damage.named()),
            "users file {damage:?}: {printed}"
        );
    }
    for damage in POLICY_DAMAGES {
        let (_dir, htpasswd, policy) = good_files();
        damage.apply(&policy);
        let printed = failed_start(&htpasswd, &policy);
        let file = policy.display().to_string();
        assert!(
            printed.contains(&file) && printed.contains(damage.named()),
            "policy {damage:?}: {printed}"
        );
    }
}

/// auth-service as a child process logging to a file.
struct Running {
    child: std::process::Child,
    log: PathBuf,
    client: AuthenticatorClient<Channel>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Running {
    async fn start(dir: &Path, htpasswd: &Path, policy: &Path) -> Running {
        let port = free_port();
        let log = dir.join("log");
        let child = serve_command(htpasswd, policy, port)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("the log file"))
            .spawn()
            .expect("auth-service");
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            if let Ok(client) = AuthenticatorClient::connect(url.clone()).await {
                break client;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "auth-service did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Running { child, log, client }
    }

    fn logged(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The generation of the files in force: it moves on every reload.
    async fn generation(&mut self) -> u64 {
        let status = self.client.status(StatusRequest {}).await.expect("status");
        status.into_inner().generation
    }

    async fn logs_in(&mut self, user: &str, password: &str) -> bool {
        let request = VerifyRequest {
            username: user.to_owned(),
            password: password.to_owned(),
            client_address: "192.0.2.1".to_owned(),
        };
        self.client
            .verify(request)
            .await
            .expect("verify")
            .into_inner()
            .outcome
            == 1
    }

    async fn alice_may_pull_from_team(&mut self) -> bool {
        let request = AuthorizeRequest {
            principal: "alice".to_owned(),
            repositories: vec!["team/app".to_owned()],
        };
        let answer = self.client.authorize(request).await.expect("authorize");
        answer.into_inner().grants[0].actions == [1]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_reload_the_last_good_files_stay_in_force_and_the_refusal_names_the_line() {
    let (dir, htpasswd, policy) = good_files();
    let mut running = Running::start(dir.path(), &htpasswd, &policy).await;
    assert!(running.logs_in("alice", "alice-password").await);
    let generation = running.generation().await;
    let good_users = std::fs::read(&htpasswd).expect("htpasswd");
    let damages = USERS_DAMAGES
        .iter()
        .map(|damage| (*damage, &htpasswd))
        .chain(POLICY_DAMAGES.iter().map(|damage| (*damage, &policy)));
    for (damage, file) in damages {
        let logged_before = running.logged().len();
        damage.apply(file);
        let names_it = |line: &str| {
            line.contains("RELOAD REFUSED")
                && line.contains(&file.display().to_string())
                && line.contains(damage.named())
        };
        eventually(
            &format!("{damage:?} in {} refused", file.display()),
            Duration::from_secs(10),
            async || running.logged()[logged_before..].lines().any(names_it),
        )
        .await;
        assert_eq!(
            running.generation().await,
            generation,
            "{damage:?} was loaded"
        );
        assert!(
            running.logs_in("alice", "alice-password").await,
            "{damage:?}"
        );
        assert!(running.alice_may_pull_from_team().await, "{damage:?}");
        // Mended to the very bytes loaded: nothing to reload.
        let good = if *file == policy {
            POLICY.as_bytes()
        } else {
            good_users.as_slice()
        };
        replace(file, good);
    }
    // A good change still applies.
    std::fs::write(&htpasswd, bcrypt_line("bob", "bob-password") + "\n").expect("htpasswd");
    eventually("bob's file loaded", Duration::from_secs(10), async || {
        running.logs_in("bob", "bob-password").await
    })
    .await;
}
