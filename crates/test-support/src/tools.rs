//! External tools (skopeo, podman, docker-registry, moto_server, ...):
//! a test that needs one skips with a clear message where it is missing,
//! unless `CI=true`, where a missing tool fails the test.

use std::path::PathBuf;
use std::process::Command;

/// An external program found on `PATH`.
#[derive(Clone, Debug)]
pub struct Tool {
    pub path: PathBuf,
}

impl Tool {
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }
}

/// The tool, or `None` (and a skip message) where it is missing outside CI.
///
/// # Panics
/// Where the tool is missing and `CI=true`.
pub fn require_tool(name: &str) -> Option<Tool> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    match found {
        Some(path) => Some(Tool { path }),
        None if std::env::var("CI").is_ok_and(|value| value == "true") => {
            panic!("{name} is required in CI but is not installed (.ci/run installs it)")
        }
        None => {
            eprintln!("SKIPPED: {name} is not installed; install it to run this test");
            None
        }
    }
}

/// Runs a command to completion and returns its standard output, failing
/// the test with everything it printed when it fails.
pub fn command_output(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|error| panic!("cannot run {:?}: {error}", command.get_program()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{:?} {:?} failed with {}:\n{}\n{}",
        command.get_program(),
        command.get_args().collect::<Vec<_>>(),
        output.status,
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// [`command_output`] on a blocking thread, so servers on the test's own
/// runtime keep answering while the tool runs.
pub async fn run_tool(mut command: Command) -> String {
    tokio::task::spawn_blocking(move || command_output(&mut command))
        .await
        .expect("the tool's thread")
}

/// Whether the tests run as root (podman with vfs storage needs it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Waits until `check` holds, failing the test after `limit`.
pub async fn eventually(
    what: &str,
    limit: std::time::Duration,
    mut check: impl AsyncFnMut() -> bool,
) {
    let deadline = std::time::Instant::now() + limit;
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `command`, run in a mount namespace of its own in which `/etc/hosts` is
/// `hosts`: names resolve as the test says, and no DNS server is asked.
/// Needs root (the tests that use it run as root in CI).
pub fn with_hosts(command: &Command, hosts: &std::path::Path) -> Command {
    with_mounts(command, &[(hosts, "/etc/hosts")])
}

/// `command`, run in a mount namespace of its own in which each source
/// path is bind-mounted over its target (which must exist). Needs root.
pub fn with_mounts(command: &Command, mounts: &[(&std::path::Path, &str)]) -> Command {
    let arguments = mounts
        .iter()
        .flat_map(|(source, target)| [source.as_os_str(), std::ffi::OsStr::new(target)]);
    in_mount_namespace(
        command,
        r#"while [ "$1" != "--" ]; do mount --bind "$1" "$2" || exit 1; shift 2; done; shift; exec "$@""#,
        arguments,
    )
}

/// `command`, run in a mount namespace of its own in which a tmpfs of
/// `size` (`mount`'s `size=` option, e.g. `16m`) is mounted over `target`
/// (which must exist): a small filesystem that fills up, gone with the
/// process. The test reaches it through `/proc/<pid>/root`. Needs root.
pub fn with_tmpfs(command: &Command, target: &std::path::Path, size: &str) -> Command {
    in_mount_namespace(
        command,
        r#"mount -t tmpfs -o "size=$1" berth-test "$2" || exit 1; shift 3; exec "$@""#,
        [std::ffi::OsStr::new(size), target.as_os_str()],
    )
}

/// `command` run by `sh -c script` in a new mount namespace (private, so
/// nothing mounted there shows outside), with `arguments`, then `--` and
/// the command line as the script's positional parameters.
fn in_mount_namespace<'a>(
    command: &Command,
    script: &str,
    arguments: impl IntoIterator<Item = &'a std::ffi::OsStr>,
) -> Command {
    let mut wrapped = Command::new("unshare");
    wrapped
        .args(["--mount", "--", "sh", "-c", script, "sh"])
        .args(arguments)
        .arg("--")
        .arg(command.get_program())
        .args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    if let Some(directory) = command.get_current_dir() {
        wrapped.current_dir(directory);
    }
    wrapped
}
