//! podman as root with vfs storage, isolated in a temporary directory (its
//! own storage, run root, registries.conf, containers.conf), so tests never
//! touch the machine's images. The test registry is either marked insecure
//! (plain HTTP) or reached by its public name with TLS verified.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Tool, is_root, require_tool, run_tool};

/// An isolated podman; `None` where podman or skopeo is missing or the
/// tests do not run as root (outside CI).
#[derive(Debug)]
pub struct Podman {
    podman: Tool,
    skopeo: Tool,
    root: PathBuf,
    run: PathBuf,
    config: PathBuf,
    /// The `/etc/hosts` podman sees, when names are the test's own.
    hosts: Option<PathBuf>,
}

impl Podman {
    /// podman for a plain-HTTP registry at `registry_host`.
    pub fn new(work: &Path, registry_host: &str) -> Option<Podman> {
        Podman::with_registries(
            work,
            format!("[[registry]]\nlocation = \"{registry_host}\"\ninsecure = true\n"),
        )
    }

    /// podman that resolves names with `hosts` as its `/etc/hosts` and
    /// talks TLS to every registry, verifying certificates against the CA
    /// given with `--cert-dir`.
    pub fn verifying(work: &Path, hosts: &Path) -> Option<Podman> {
        let mut podman = Podman::with_registries(work, String::new())?;
        podman.hosts = Some(hosts.to_owned());
        Some(podman)
    }

    fn with_registries(work: &Path, registries: String) -> Option<Podman> {
        let podman = require_tool("podman")?;
        let skopeo = require_tool("skopeo")?;
        if !is_root() {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "podman with vfs storage needs root in CI"
            );
            eprintln!("SKIPPED: podman tests need root");
            return None;
        }
        let (root, run, config) = (
            work.join("podman-root"),
            work.join("podman-run"),
            work.join("podman-config"),
        );
        std::fs::create_dir_all(config.join("tmp")).expect("podman config directory");
        let write = |name: &str, text: String| {
            std::fs::write(config.join(name), text).expect("podman config")
        };
        write(
            "registries.conf",
            format!(
                "unqualified-search-registries = []\nshort-name-mode = \"disabled\"\n{registries}"
            ),
        );
        write(
            "storage.conf",
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                root.display(),
                run.display()
            ),
        );
        write("auth.json", "{}".to_owned());
        write(
            "containers.conf",
            format!(
                "[engine]\ntmp_dir = \"{}\"\nevents_logger = \"none\"\n",
                config.join("tmp").display()
            ),
        );
        Some(Podman {
            podman,
            skopeo,
            root,
            run,
            config,
            hosts: None,
        })
    }

    fn with_env(&self, mut command: Command) -> Command {
        command
            .env(
                "CONTAINERS_REGISTRIES_CONF",
                self.config.join("registries.conf"),
            )
            .env("CONTAINERS_STORAGE_CONF", self.config.join("storage.conf"))
            .env("CONTAINERS_CONF", self.config.join("containers.conf"))
            .env("REGISTRY_AUTH_FILE", self.config.join("auth.json"));
        command
    }

    /// podman with the isolated storage and `args`.
    fn podman(&self, args: &[&str]) -> Command {
        let mut command = self.with_env(self.podman.command());
        command
            .arg("--root")
            .arg(&self.root)
            .arg("--runroot")
            .arg(&self.run)
            .args(["--storage-driver", "vfs"])
            .args(args);
        match &self.hosts {
            Some(hosts) => crate::with_hosts(&command, hosts),
            None => command,
        }
    }

    /// Runs podman with `args`; returns its standard output.
    pub async fn run(&self, args: &[&str]) -> String {
        run_tool(self.podman(args)).await
    }

    /// Runs podman with `args` and `stdin` as its standard input.
    pub async fn run_with_input(&self, args: &[&str], stdin: &str) -> String {
        let mut command = self.podman(args);
        let input = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = command
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("starting podman");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("writing stdin");
            let output = child.wait_with_output().expect("podman");
            assert!(
                output.status.success(),
                "podman failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
        .await
        .expect("podman thread")
    }

    /// Copies `oci:<layout>:<tag>` into podman's storage as `name`.
    pub async fn import(&self, layout: &Path, tag: &str, name: &str) {
        let mut command = self.with_env(self.skopeo.command());
        command
            .arg("copy")
            .arg(format!("oci:{}:{tag}", layout.display()))
            .arg(format!(
                "containers-storage:[vfs@{}+{}]{name}",
                self.root.display(),
                self.run.display()
            ));
        run_tool(command).await;
    }
}
