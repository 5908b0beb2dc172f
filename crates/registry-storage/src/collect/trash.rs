//! Removing many objects quickly inside a read-only window. On a local
//! filesystem, each object's directory (a blob's or a link's `<hex>/`) is
//! renamed in place to `<hex>.trash-<id>`, a name no reader or listing
//! ever takes for an object: one metadata operation in one directory,
//! which frees no blocks and, unlike a rename into another directory, does
//! not take the filesystem-wide rename lock, so threads rename in
//! parallel. Before renaming, the names are written down in the trash,
//! `berth/trash/<id>/`, which is destroyed after the window with everything
//! it names. A pruned repository's own directories (`_layers`,
//! `_manifests`, ...) are moved into the trash itself, since a name
//! beginning with `_` beside them still marks a repository. Elsewhere
//! objects are simply deleted.
//!
//! Renames run on blocking threads, which a dropped future does not stop:
//! [`Trash::halt`] stops them, so that nothing is taken out once the
//! window closes. Each also checks, right before it, that the window is
//! still secured ([`Trash::secure_until`]): a collector frozen mid-sweep
//! (SIGSTOP, a cgroup freezer, heavy swapping) and thawed after its lease
//! ran out takes nothing more out, whichever of its threads wakes first;
//! and checks again right after it, since a thread frozen between the
//! check and the rename renames once thawed: what a rename took out after
//! the deadline (by the ctime the kernel gave it, not by when the thread
//! looked) is put back, without overwriting anything written since.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use object_store::path::Path;
use registry_core::RepositoryName;
use tokio::sync::RwLock;

use crate::{StorageError, Store};

/// Objects taken out of the registry, to be destroyed later.
#[derive(Debug)]
pub struct Trash {
    /// Names this collection's trash and its renamed objects.
    id: String,
    directory: Option<std::path::PathBuf>,
    /// Trash of earlier collections that did not finish.
    leftovers: Mutex<Vec<std::path::PathBuf>>,
    /// Until when the read-only window is certainly open.
    secured_until: Arc<Mutex<Instant>>,
    /// Set by [`Trash::halt`]: no rename begins after it.
    halted: Arc<AtomicBool>,
    /// Held shared by every thread renaming into this trash.
    renaming: Arc<RwLock<()>>,
}

impl Trash {
    /// Stops taking objects out: renames not begun never begin, and this
    /// returns once those under way are done. Call it when the window
    /// closes, before the registry becomes writable.
    pub async fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
        let _no_renames_left = self.renaming.write().await;
    }

    /// Records that the read-only window is certainly open until
    /// `deadline`; nothing is taken out at or after it.
    pub fn secure_until(&self, deadline: Instant) {
        *lock(&self.secured_until) = deadline;
    }

    /// Fails once the trash is halted or the window may have closed: check
    /// before any other change a sweep makes.
    pub fn ensure_secured(&self) -> Result<(), StorageError> {
        ensure_secured(&self.halted, &self.secured_until).map_err(StorageError::from)
    }
}

/// Fails once the trash is halted or the window may have closed.
fn ensure_secured(halted: &AtomicBool, secured_until: &Mutex<Instant>) -> std::io::Result<()> {
    if halted.load(Ordering::SeqCst) || Instant::now() >= *lock(secured_until) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::Interrupted,
            "the read-only window may have closed: the collection stopped taking objects out",
        ));
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Store {
    /// A fresh trash for one collection, whose read-only window is
    /// certainly open until `secured_until`.
    pub fn trash(&self, secured_until: Instant) -> Trash {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let directory = self
            .local_root
            .as_ref()
            .map(|root| root.join(self.layout.trash().as_ref()).join(&id));
        Trash {
            id,
            directory,
            leftovers: Mutex::default(),
            secured_until: Arc::new(Mutex::new(secured_until)),
            halted: Arc::default(),
            renaming: Arc::default(),
        }
    }

    /// Takes objects out of the registry: on a local filesystem by renaming
    /// their directories (each holds just that object) in place, once their
    /// new names are written down in `trash`.
    pub async fn retire_objects(
        &self,
        trash: &Trash,
        paths: Vec<Path>,
    ) -> Result<(), StorageError> {
        let (Some(root), Some(directory)) = (&self.local_root, &trash.directory) else {
            trash.ensure_secured()?;
            self.delete_objects(paths).await?;
            return Ok(());
        };
        let suffix = format!(".{TRASHED}{}", trash.id);
        let mut written_down = String::new();
        let renames: Vec<(std::path::PathBuf, std::path::PathBuf)> = paths
            .iter()
            .filter_map(|path| {
                let (parent, _) = path.as_ref().rsplit_once('/')?;
                let renamed = format!("{parent}{suffix}");
                written_down.push_str(&renamed);
                written_down.push('\n');
                Some((root.join(parent), root.join(renamed)))
            })
            .collect();
        tokio::fs::create_dir_all(directory).await?;
        let list = directory.join(format!("{}{LIST}", uuid::Uuid::new_v4().simple()));
        tokio::fs::write(list, written_down).await?;
        rename_all(trash, renames).await
    }

    /// Takes a repository out of the registry: its own `_layers`,
    /// `_manifests`, `_uploads` and `_referrers`, never a repository nested
    /// under its name. On a local filesystem its directory goes too, with
    /// empty parents, unless a nested repository still lives there.
    pub async fn retire_repository(
        &self,
        trash: &Trash,
        name: &RepositoryName,
    ) -> Result<(), StorageError> {
        let own = self.layout.repository_own_directories(name);
        let (Some(root), Some(directory)) = (&self.local_root, &trash.directory) else {
            for prefix in &own {
                trash.ensure_secured()?;
                self.delete_prefix(prefix).await?;
            }
            return Ok(());
        };
        let into = directory.join(uuid::Uuid::new_v4().simple().to_string());
        tokio::fs::create_dir_all(&into).await?;
        let renames = own
            .iter()
            .enumerate()
            .map(|(index, prefix)| (root.join(prefix.as_ref()), into.join(index.to_string())))
            .collect();
        rename_all(trash, renames).await?;
        let repositories = root.join(self.layout.repositories().as_ref());
        let repository = root.join(self.layout.repository(name).as_ref());
        tokio::task::spawn_blocking(move || {
            // Removing a directory fails, as it should, while it holds anything.
            let mut directory = Some(repository.as_path());
            while let Some(current) = directory.filter(|current| *current != repositories) {
                if std::fs::remove_dir(current).is_err() {
                    break;
                }
                directory = current.parent();
            }
        })
        .await
        .map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Adopts the trash of collections killed midway. Call it while
    /// holding the read-only lease: only one collection holds it at a time,
    /// so every other trash then belongs to a collection that is gone.
    pub async fn adopt_leftover_trash(&self, trash: &Trash) -> Result<(), StorageError> {
        let (Some(root), Some(own)) = (&self.local_root, &trash.directory) else {
            return Ok(());
        };
        let all = root.join(self.layout.trash().as_ref());
        let own = own.clone();
        let leftovers = tokio::task::spawn_blocking(move || -> Vec<std::path::PathBuf> {
            std::fs::read_dir(&all)
                .into_iter()
                .flatten()
                .flatten()
                .map(|entry| entry.path())
                .filter(|path| *path != own)
                .collect()
        })
        .await
        .map_err(std::io::Error::other)?;
        lock(&trash.leftovers).extend(leftovers);
        Ok(())
    }

    /// Destroys what was retired, and the trash adopted: every object a
    /// trash names, then the trash. Dropping the future stops the
    /// destruction after the object at hand (what is left stays in the
    /// trash, for the next collection).
    pub async fn empty_trash(&self, trash: Trash) -> Result<(), StorageError> {
        let Some(root) = &self.local_root else {
            return Ok(());
        };
        let leftovers = trash
            .leftovers
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let stop = StopWhenDropped::default();
        for directory in trash.directory.into_iter().chain(leftovers) {
            let (root, stopped) = (root.clone(), stop.0.clone());
            tokio::task::spawn_blocking(move || destroy(&root, &directory, &stopped))
                .await
                .map_err(std::io::Error::other)??;
        }
        Ok(())
    }
}

/// Set once the future that holds it is dropped: blocking work it handed
/// out stops at the next step instead of running on unseen.
#[derive(Default)]
struct StopWhenDropped(Arc<AtomicBool>);

impl Drop for StopWhenDropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// What a retired object's directory is renamed to ends with this and the
/// trash's id.
const TRASHED: &str = "trash-";

/// Files of a trash that name renamed objects, one per line, relative to
/// the store's root.
const LIST: &str = ".list";

/// Destroys the objects a trash directory names, then the directory. Only
/// names that end as this trash's renamed objects do are destroyed,
/// whatever a damaged list says.
fn destroy(
    root: &std::path::Path,
    directory: &std::path::Path,
    stopped: &AtomicBool,
) -> std::io::Result<()> {
    let Some(id) = directory.file_name().and_then(|name| name.to_str()) else {
        return Ok(());
    };
    let suffix = format!(".{TRASHED}{id}");
    let entries = match std::fs::read_dir(directory) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        entries => entries?,
    };
    for entry in entries {
        let path = entry?.path();
        if !path.to_string_lossy().ends_with(LIST) {
            continue;
        }
        for renamed in std::fs::read_to_string(&path)?.lines() {
            if stopped.load(Ordering::SeqCst) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let safe = renamed.ends_with(&suffix)
                && !renamed.starts_with('/')
                && !renamed.split('/').any(|part| part == "..");
            if !safe {
                tracing::warn!(%renamed, list = %path.display(), "not destroying what a trash list names: not an object it renamed");
                continue;
            }
            remove_if_there(&root.join(renamed))?;
        }
    }
    remove_if_there(directory)
}

fn remove_if_there(directory: &std::path::Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(directory) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error),
        _ => Ok(()),
    }
}

/// Whether the rename that made `renamed` came at or after the deadline,
/// by the kernel's record of it (a rename sets the ctime), not by when this
/// thread got to ask: one frozen after its rename and before this check
/// renamed in time, and what it renamed may be another collector's to
/// destroy, or deleted by a client, by now.
fn renamed_late(
    renamed: &std::path::Path,
    secured_until: &Mutex<Instant>,
) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let deadline = *lock(secured_until);
    let now = Instant::now();
    if now < deadline {
        return Ok(false);
    }
    let metadata = std::fs::symlink_metadata(renamed)?;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(metadata.ctime()).unwrap_or(0),
            u32::try_from(metadata.ctime_nsec()).unwrap_or(0),
        );
    // The deadline on the wall clock: as far before now as on the monotonic one.
    let deadline = std::time::SystemTime::now() - (now - deadline);
    Ok(changed >= deadline)
}

/// Puts back what was renamed from `original` to `trashed`, never over
/// what was written there since: whole where nothing took its place, else
/// file by file, each linked back only where no file of its name is (a
/// tag moved since keeps its new target). What the trash keeps of it is
/// destroyed with the trash.
fn put_back(trashed: &std::path::Path, original: &std::path::Path) -> std::io::Result<()> {
    if let Some(parent) = original.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if !trashed.is_dir() {
        // A link fails where a file is; a rename would replace it.
        return match std::fs::hard_link(trashed, original) {
            Err(error) if error.kind() != std::io::ErrorKind::AlreadyExists => Err(error),
            _ => Ok(()),
        };
    }
    // A directory is renamed only onto nothing or an empty directory.
    if std::fs::rename(trashed, original).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(original)?;
    for entry in std::fs::read_dir(trashed)? {
        let entry = entry?;
        put_back(&entry.path(), &original.join(entry.file_name()))?;
    }
    Ok(())
}

/// Threads renaming at once.
const RENAME_THREADS: usize = 4;

/// Renames each `(from, to)`, on a few threads; one already gone is fine.
async fn rename_all(
    trash: &Trash,
    renames: Vec<(std::path::PathBuf, std::path::PathBuf)>,
) -> Result<(), StorageError> {
    let share = renames.len().div_ceil(RENAME_THREADS).max(1);
    let mut workers = Vec::new();
    for chunk in renames.chunks(share) {
        let chunk = chunk.to_vec();
        let halted = trash.halted.clone();
        let secured_until = trash.secured_until.clone();
        let renaming = trash.renaming.clone().read_owned().await;
        workers.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                let _renaming = renaming;
                for (from, to) in chunk {
                    ensure_secured(&halted, &secured_until)?;
                    match std::fs::rename(&from, &to) {
                        Ok(()) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(error) => return Err(error),
                    }
                    // Frozen between the check and the rename, and thawed
                    // after the window closed: what was taken out may be
                    // what a push used meanwhile.
                    if renamed_late(&to, &secured_until)? {
                        put_back(&to, &from)?;
                        return ensure_secured(&halted, &secured_until);
                    }
                }
                Ok(())
            },
        ));
    }
    for worker in workers {
        worker.await.map_err(std::io::Error::other)??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::{Duration, Instant};

    use super::{put_back, renamed_late};

    #[test]
    fn a_rename_is_late_by_when_it_happened_not_when_it_was_looked_at() {
        let root = tempfile::tempdir().expect("temporary directory");
        let (from, to) = (root.path().join("a"), root.path().join("a.trash-1"));
        std::fs::create_dir(&from).expect("directory");
        std::fs::rename(&from, &to).expect("renamed");
        std::thread::sleep(Duration::from_millis(100));
        let passed = Mutex::new(Instant::now() - Duration::from_millis(40));
        assert!(
            !renamed_late(&to, &passed).expect("checked"),
            "renamed before the deadline, looked at after it"
        );

        let deadline = Mutex::new(Instant::now());
        std::thread::sleep(Duration::from_millis(100));
        std::fs::rename(&to, &from).expect("renamed");
        assert!(renamed_late(&from, &deadline).expect("checked"));

        let ahead = Mutex::new(Instant::now() + Duration::from_secs(60));
        assert!(!renamed_late(&from, &ahead).expect("checked"));
    }

    fn write(path: &std::path::Path, text: &str) {
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("directories");
        std::fs::write(path, text).expect("written");
    }

    fn read(path: &std::path::Path) -> String {
        std::fs::read_to_string(path).expect("readable")
    }

    #[test]
    fn what_was_taken_out_late_goes_back_whole_where_nothing_took_its_place() {
        let root = tempfile::tempdir().expect("temporary directory");
        let trashed = root.path().join("blobs/ab/abcd.trash-1");
        write(&trashed.join("data"), "bytes");
        // A pruned repository's parents may be gone too.
        let original = root.path().join("repositories/gone/_layers");
        put_back(&trashed, &original).expect("put back");
        assert_eq!(read(&original.join("data")), "bytes");
        assert!(!trashed.exists());
    }

    #[test]
    fn what_was_written_since_wins_over_what_goes_back() {
        let root = tempfile::tempdir().expect("temporary directory");
        let trashed = root.path().join("_manifests.trash-1");
        let original = root.path().join("_manifests");
        write(&trashed.join("tags/v1/current/link"), "sha256:old");
        write(&trashed.join("revisions/sha256/old/link"), "sha256:old");
        write(&original.join("tags/v1/current/link"), "sha256:new");
        put_back(&trashed, &original).expect("put back");
        assert_eq!(read(&original.join("tags/v1/current/link")), "sha256:new");
        assert_eq!(
            read(&original.join("revisions/sha256/old/link")),
            "sha256:old"
        );
    }
}
