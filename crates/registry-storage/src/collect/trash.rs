//! Removing many objects quickly inside a read-only window. On a local
//! filesystem, each object's directory (a blob's or a link's `<hex>/`, or a
//! repository's own `_layers`, `_manifests`, ...) is renamed into
//! `berth/trash/<id>/`: one metadata
//! operation that frees no blocks, so it costs no discard and little
//! journal time. The trash is emptied after the window. Elsewhere objects
//! are simply deleted.
//!
//! Renames run on blocking threads, which a dropped future does not stop:
//! [`Trash::halt`] stops them, so that nothing is taken out once the
//! window closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use object_store::path::Path;
use registry_core::RepositoryName;
use tokio::sync::RwLock;

use crate::{StorageError, Store};

/// Objects taken out of the registry, to be destroyed later.
#[derive(Debug)]
pub struct Trash {
    directory: Option<std::path::PathBuf>,
    /// Trash of earlier collections that did not finish.
    leftovers: Vec<std::path::PathBuf>,
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
}

impl Store {
    /// A fresh trash for one collection.
    pub fn trash(&self) -> Trash {
        let directory = self.local_root.as_ref().map(|root| {
            root.join(self.layout.trash().as_ref())
                .join(uuid::Uuid::new_v4().simple().to_string())
        });
        Trash {
            directory,
            leftovers: Vec::new(),
            halted: Arc::default(),
            renaming: Arc::default(),
        }
    }

    /// Takes objects out of the registry: on a local filesystem by moving
    /// their directories (each holds just that object) into `trash`.
    pub async fn retire_objects(
        &self,
        trash: &Trash,
        paths: Vec<Path>,
    ) -> Result<(), StorageError> {
        let (Some(root), Some(directory)) = (&self.local_root, &trash.directory) else {
            self.delete_objects(paths).await?;
            return Ok(());
        };
        let parents: Vec<std::path::PathBuf> = paths
            .iter()
            .filter_map(|path| root.join(path.as_ref()).parent().map(ToOwned::to_owned))
            .collect();
        move_into(trash, directory, parents).await
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
                self.delete_prefix(prefix).await?;
            }
            return Ok(());
        };
        let directories = own
            .iter()
            .map(|prefix| root.join(prefix.as_ref()))
            .collect();
        move_into(trash, directory, directories).await?;
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
    pub async fn adopt_leftover_trash(&self, trash: &mut Trash) -> Result<(), StorageError> {
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
        trash.leftovers.extend(leftovers);
        Ok(())
    }

    /// Destroys what was retired, and the trash adopted.
    pub async fn empty_trash(&self, trash: Trash) -> Result<(), StorageError> {
        for directory in trash.directory.into_iter().chain(trash.leftovers) {
            match tokio::fs::remove_dir_all(&directory).await {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error.into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Threads renaming at once, each into its own subdirectory of the trash.
const RENAME_THREADS: usize = 4;

/// Objects renamed into one directory of the trash. Inserting into a large
/// directory costs more than creating a new one: at 15,000 entries a
/// directory took each rename a third longer.
const ENTRIES_PER_DIRECTORY: usize = 512;

async fn move_into(
    trash: &Trash,
    target: &std::path::Path,
    directories: Vec<std::path::PathBuf>,
) -> Result<(), StorageError> {
    let share = directories.len().div_ceil(RENAME_THREADS).max(1);
    let batch = uuid::Uuid::new_v4().simple().to_string();
    let mut workers = Vec::new();
    for (thread, chunk) in directories.chunks(share).enumerate() {
        let target = target.join(format!("{batch}-{thread}"));
        let chunk = chunk.to_vec();
        let halted = trash.halted.clone();
        let renaming = trash.renaming.clone().read_owned().await;
        workers.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                let _renaming = renaming;
                let mut into = target.clone();
                for (index, directory) in chunk.into_iter().enumerate() {
                    if halted.load(Ordering::SeqCst) {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::Interrupted,
                            "the collection stopped taking objects out",
                        ));
                    }
                    if index % ENTRIES_PER_DIRECTORY == 0 {
                        into = target.join((index / ENTRIES_PER_DIRECTORY).to_string());
                        std::fs::create_dir_all(&into)?;
                    }
                    match std::fs::rename(&directory, into.join(index.to_string())) {
                        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                            return Err(error);
                        }
                        _ => {}
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
