//! The files in force: the htpasswd file and the optional policy, loaded at
//! start and reloaded when they change (file watching, with polling as a
//! fallback). A changed file that cannot be used leaves the last good one in
//! force and says so loudly.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use notify::Watcher;
use tokio_util::sync::CancellationToken;

use crate::htpasswd::Users;
use crate::policy::{Policy, PolicyError};

/// How often the files are compared with what is loaded, whatever the
/// watcher says (it can miss events on network filesystems and editors'
/// rename-over-write).
const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// One consistent pair of files.
#[derive(Debug)]
pub struct Loaded {
    pub users: Users,
    pub policy: Option<Policy>,
    /// Random at start, bumped on every successful reload.
    pub generation: u64,
    contents: (Vec<u8>, Option<Vec<u8>>),
}

/// Why the files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} line {line} is not UTF-8 text (binary garbage, or another encoding): write the file as UTF-8"
    )]
    NotText { path: PathBuf, line: usize },
    #[error(
        "{path} line {line} (user {user:?}): {reason}. The file looks cut off or mangled, so none of it is used: mend that line"
    )]
    Damaged {
        path: PathBuf,
        line: usize,
        user: String,
        reason: &'static str,
    },
    #[error("{path}: no line holds a usable user (see the warnings above)")]
    NoUsers { path: PathBuf },
    #[error(
        "{path} has become empty (or was read while being rewritten); the users loaded before stay in force"
    )]
    Emptied { path: PathBuf },
    #[error("policy {path}: {source}")]
    Policy { path: PathBuf, source: PolicyError },
}

/// The files in force, shared by the gRPC handlers and the reloader.
#[derive(Debug)]
pub struct Files {
    htpasswd: PathBuf,
    policy: Option<PathBuf>,
    current: RwLock<Arc<Loaded>>,
    failed_reloads: AtomicU64,
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_owned(),
        source,
    })
}

/// `bytes` as text, or the error naming the first line that is not.
fn as_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a str, LoadError> {
    std::str::from_utf8(bytes).map_err(|error| {
        let before = &bytes[..error.valid_up_to()];
        LoadError::NotText {
            path: path.to_owned(),
            line: before.iter().filter(|byte| **byte == b'\n').count() + 1,
        }
    })
}

fn parse(
    htpasswd: &Path,
    policy: Option<&Path>,
    contents: (Vec<u8>, Option<Vec<u8>>),
    generation: u64,
) -> Result<Loaded, LoadError> {
    let text = as_text(htpasswd, &contents.0)?;
    let users = Users::parse(text);
    // A hash of a kind taken that is not whole: the file was cut off (read
    // mid-write?) or mangled, and its other lines are not to be trusted
    // either.
    if let Some(damaged) = users.refused.iter().find(|refused| refused.damaged) {
        return Err(LoadError::Damaged {
            path: htpasswd.to_owned(),
            line: damaged.line,
            user: damaged.user.clone(),
            reason: damaged.reason,
        });
    }
    for refused in &users.refused {
        tracing::warn!(
            file = %htpasswd.display(),
            line = refused.line,
            user = ?refused.user,
            reason = refused.reason,
            "htpasswd line refused"
        );
    }
    // Every line that is not blank or a comment is a user or refused.
    if users.is_empty() && !users.refused.is_empty() {
        return Err(LoadError::NoUsers {
            path: htpasswd.to_owned(),
        });
    }
    let policy = match (policy, &contents.1) {
        (Some(path), Some(bytes)) => Some(Policy::parse(as_text(path, bytes)?).map_err(
            |source| LoadError::Policy {
                path: path.to_owned(),
                source,
            },
        )?),
        _ => None,
    };
    Ok(Loaded {
        users,
        policy,
        generation,
        contents,
    })
}

impl Files {
    /// Loads both files; any problem is an error (the service refuses to start).
    pub fn load(htpasswd: PathBuf, policy: Option<PathBuf>) -> Result<Files, LoadError> {
        let contents = (read(&htpasswd)?, policy.as_deref().map(read).transpose()?);
        // A fresh start of the generations on every start, so a caller's
        // cache never outlives a restart that changed the files.
        let loaded = parse(&htpasswd, policy.as_deref(), contents, rand::random())?;
        tracing::info!(
            users = loaded.users.len(),
            refused = loaded.users.refused.len(),
            policy = loaded.policy.is_some(),
            "credentials loaded"
        );
        Ok(Files {
            htpasswd,
            policy,
            current: RwLock::new(Arc::new(loaded)),
            failed_reloads: AtomicU64::new(0),
        })
    }

    pub fn current(&self) -> Arc<Loaded> {
        self.current
            .read()
            .expect("the lock is never poisoned")
            .clone()
    }

    pub fn failed_reloads(&self) -> u64 {
        self.failed_reloads.load(Ordering::Relaxed)
    }

    /// Loads the files again if their bytes changed.
    pub fn reload_if_changed(&self) {
        let current = self.current();
        let contents = match read(&self.htpasswd).and_then(|htpasswd| {
            let policy = self.policy.as_deref().map(read).transpose()?;
            Ok((htpasswd, policy))
        }) {
            Ok(contents) => contents,
            Err(error) => return self.refuse(&error),
        };
        if contents == current.contents {
            return;
        }
        // A file read mid-write (truncated, not yet refilled) must not wipe
        // every user out; an empty file is never a reload worth taking.
        let emptied = !current.users.is_empty()
            && std::str::from_utf8(&contents.0).is_ok_and(|text| {
                text.lines().all(|line| {
                    let line = line.trim();
                    line.is_empty() || line.starts_with('#')
                })
            });
        if emptied {
            return self.refuse(&LoadError::Emptied {
                path: self.htpasswd.clone(),
            });
        }
        match parse(
            &self.htpasswd,
            self.policy.as_deref(),
            contents,
            current.generation.wrapping_add(1),
        ) {
            Ok(loaded) => {
                tracing::info!(
                    generation = loaded.generation,
                    users = loaded.users.len(),
                    refused = loaded.users.refused.len(),
                    "credentials reloaded"
                );
                *self.current.write().expect("the lock is never poisoned") = Arc::new(loaded);
            }
            Err(error) => self.refuse(&error),
        }
    }

    fn refuse(&self, error: &LoadError) {
        let failures = self.failed_reloads.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::error!(
            %error,
            failed_reloads = failures,
            "RELOAD REFUSED: the last good credentials and policy stay in force until the files are fixed"
        );
    }

    /// Reloads on change until `shutdown`: on watcher events, and on a timer.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let (events, mut changed) = tokio::sync::mpsc::channel::<()>(1);
        let watcher = notify::recommended_watcher(move |_event: notify::Result<notify::Event>| {
            let _ = events.try_send(());
        });
        let _watcher = match watcher {
            Ok(mut watcher) => {
                let directories: Vec<&Path> = std::iter::once(self.htpasswd.as_path())
                    .chain(self.policy.as_deref())
                    .filter_map(Path::parent)
                    .map(|parent| {
                        if parent.as_os_str().is_empty() {
                            Path::new(".")
                        } else {
                            parent
                        }
                    })
                    .collect();
                for directory in directories {
                    if let Err(error) =
                        watcher.watch(directory, notify::RecursiveMode::NonRecursive)
                    {
                        tracing::warn!(%error, directory = %directory.display(), "not watching; polling only");
                    }
                }
                Some(watcher)
            }
            Err(error) => {
                tracing::warn!(%error, "file watching unavailable; polling only");
                None
            }
        };
        let mut poll = tokio::time::interval(POLL_INTERVAL);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = poll.tick() => {}
                Some(()) = changed.recv() => {
                    // Let an editor finish writing before reading.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let files = self.clone();
            let _ = tokio::task::spawn_blocking(move || files.reload_if_changed()).await;
        }
    }
}
