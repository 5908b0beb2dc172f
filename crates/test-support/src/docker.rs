//! Debian's docker daemon for pushing and pulling (no containers are
//! started): vfs storage, no networking of its own, its own data and exec
//! roots and socket in a temporary directory, and a mount namespace in
//! which `/etc/hosts` and `/etc/docker` (so `certs.d`) are the test's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{Tool, is_root, require_tool, run_tool, with_mounts};

/// A running dockerd and the docker CLI that talks to it; stopped when
/// dropped.
#[derive(Debug)]
pub struct Docker {
    cli: Tool,
    socket: PathBuf,
    config: PathBuf,
    daemon: Child,
}

impl Docker {
    /// Starts dockerd trusting `ca` for the registry `registry` (a name
    /// with its port) and resolving names with `hosts`. `None` where docker
    /// is missing or the tests do not run as root (outside CI).
    pub async fn start(work: &Path, hosts: &Path, registry: &str, ca: &Path) -> Option<Docker> {
        let dockerd = require_tool("dockerd")?;
        let cli = require_tool("docker")?;
        if !is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "dockerd needs root in CI"
            );
            eprintln!("SKIPPED: the docker daemon needs root");
            return None;
        }
        let base = work.join("docker");
        let etc = base.join("etc");
        let certs = etc.join("certs.d").join(registry);
        std::fs::create_dir_all(&certs).expect("certs.d");
        std::fs::copy(ca, certs.join("ca.crt")).expect("the CA for dockerd");
        let (data, exec, config) = (base.join("data"), base.join("exec"), base.join("config"));
        for dir in [&data, &exec, &config] {
            std::fs::create_dir_all(dir).expect("docker directory");
        }
        let socket = base.join("docker.sock");
        let mut command = dockerd.command();
        command
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(["--bridge=none", "--config-file"])
            .arg(etc.join("daemon.json"))
            .arg("--data-root")
            .arg(&data)
            .arg("--exec-root")
            .arg(&exec)
            .arg("--pidfile")
            .arg(base.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()));
        std::fs::write(etc.join("daemon.json"), "{}").expect("daemon.json");
        let log = std::fs::File::create(base.join("dockerd.log")).expect("log");
        let daemon = with_mounts(&command, &[(hosts, "/etc/hosts"), (&etc, "/etc/docker")])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting dockerd");
        let docker = Docker {
            cli,
            socket,
            config,
            daemon,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !docker.socket.exists()
            || !docker
                .command(&["version"])
                .output()
                .is_ok_and(|out| out.status.success())
        {
            assert!(
                Instant::now() < deadline,
                "dockerd did not start: see {}",
                base.join("dockerd.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Some(docker)
    }

    /// `unix://<socket>`, for `skopeo copy ... docker-daemon:` (its
    /// `--dest-daemon-host`).
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.cli.command();
        command
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", &self.config)
            .args(args);
        command
    }

    /// Runs the docker CLI with `args`; returns its standard output.
    pub async fn run(&self, args: &[&str]) -> String {
        run_tool(self.command(args)).await
    }

    /// The docker CLI's outcome with `args`, success or not.
    pub fn output(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("docker")
    }

    /// Runs the docker CLI with `stdin` as its standard input.
    pub fn run_with_input(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("docker");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("writing stdin");
        child.wait_with_output().expect("docker")
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        // SIGTERM, so dockerd stops the containerd it started.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.daemon.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.daemon.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}
