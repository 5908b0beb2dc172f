//! Removing many objects quickly inside a read-only window. On a local
//! filesystem, each object's directory (a blob's or a link's `<hex>/`, or a
//! repository's own `_layers`, `_manifests`, ...) is renamed into
//! `berth/trash/<id>/`: one metadata
//! operation that frees no blocks, so it costs no discard and little
//! journal time. The trash is emptied after the window. Elsewhere objects
//! are simply deleted.

use object_store::path::Path;
use registry_core::RepositoryName;

use crate::{StorageError, Store};

/// Objects taken out of the registry, to be destroyed later.
#[derive(Debug)]
pub struct Trash {
    directory: Option<std::path::PathBuf>,
    /// Trash of earlier collections that did not finish.
    leftovers: Vec<std::path::PathBuf>,
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
        move_into(directory.clone(), parents).await
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
        move_into(directory.clone(), directories).await?;
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

async fn move_into(
    trash: std::path::PathBuf,
    directories: Vec<std::path::PathBuf>,
) -> Result<(), StorageError> {
    let share = directories.len().div_ceil(RENAME_THREADS).max(1);
    let batch = uuid::Uuid::new_v4().simple().to_string();
    let mut workers = Vec::new();
    for (thread, chunk) in directories.chunks(share).enumerate() {
        let target = trash.join(format!("{batch}-{thread}"));
        let chunk = chunk.to_vec();
        workers.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                std::fs::create_dir_all(&target)?;
                for (index, directory) in chunk.into_iter().enumerate() {
                    match std::fs::rename(&directory, target.join(index.to_string())) {
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
