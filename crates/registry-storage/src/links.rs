//! Link files: small objects whose whole content is a digest string.

use std::io::Read;
use std::time::SystemTime;

use bytes::Bytes;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::Digest;

use crate::{StorageError, Store};

/// The most a link is read of: a digest is at most a few hundred bytes.
const MAX_LINK: u64 = 4096;

impl Store {
    pub(crate) async fn write_link(&self, key: &Path, digest: &Digest) -> Result<(), StorageError> {
        let payload = PutPayload::from(digest.to_string().into_bytes());
        self.objects.put(key, payload).await?;
        Ok(())
    }

    /// The digest a link points at, or `None` when there is no link.
    pub async fn read_link(&self, key: &Path) -> Result<Option<Digest>, StorageError> {
        Ok(self.read_stamped_link(key).await?.map(|(digest, _)| digest))
    }

    /// The digest a link points at and when the link was last written, or
    /// `None` when there is no link.
    pub(crate) async fn read_stamped_link(
        &self,
        key: &Path,
    ) -> Result<Option<(Digest, SystemTime)>, StorageError> {
        let Some((bytes, written)) = self.read_link_object(key).await? else {
            return Ok(None);
        };
        let corrupt = |reason: String| StorageError::Corrupt {
            path: key.to_string(),
            reason,
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| corrupt(e.to_string()))?;
        let digest = text
            .trim()
            .parse()
            .map_err(|e: registry_core::DigestError| corrupt(e.to_string()))?;
        Ok(Some((digest, written)))
    }

    /// A link's bytes, with when it was last written; `None` when there is
    /// none. On a local filesystem in one blocking call (object_store takes
    /// two: one to open, one to read), which is most of what a manifest
    /// `GET` by tag and the collector's marking wait for. A link is read
    /// only up to [`MAX_LINK`] bytes: a larger one, or a special file (a
    /// link pointed at `/dev/zero`), is corrupt, not read without end.
    async fn read_link_object(
        &self,
        key: &Path,
    ) -> Result<Option<(Bytes, SystemTime)>, StorageError> {
        let too_large = || StorageError::Corrupt {
            path: key.to_string(),
            reason: format!("a link of more than {MAX_LINK} bytes, or not a file"),
        };
        let Some(root) = &self.local_root else {
            let result = match self.objects.get(key).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(other) => return Err(other.into()),
            };
            if result.meta.size > MAX_LINK {
                return Err(too_large());
            }
            let written = result.meta.last_modified.into();
            return Ok(Some((result.bytes().await?, written)));
        };
        let path = root.join(key.as_ref());
        let read = tokio::task::spawn_blocking(move || {
            let named = |error: std::io::Error| {
                std::io::Error::new(error.kind(), format!("{}: {error}", path.display()))
            };
            let file = std::fs::File::open(&path).map_err(named)?;
            let metadata = file.metadata().map_err(named)?;
            if metadata.is_dir() {
                // What object_store answers for a directory.
                return Err(std::io::Error::from(std::io::ErrorKind::NotFound));
            }
            let mut bytes = Vec::new();
            if metadata.is_file() && metadata.len() <= MAX_LINK {
                file.take(MAX_LINK + 1)
                    .read_to_end(&mut bytes)
                    .map_err(named)?;
            }
            if !metadata.is_file() || bytes.len() as u64 > MAX_LINK {
                return Err(std::io::ErrorKind::FileTooLarge.into());
            }
            Ok((Bytes::from(bytes), metadata.modified().map_err(named)?))
        })
        .await
        .map_err(std::io::Error::other)?;
        match read {
            Ok(found) => Ok(Some(found)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) if error.kind() == std::io::ErrorKind::FileTooLarge => Err(too_large()),
            Err(error) => Err(error.into()),
        }
    }

    /// Whether an object exists at `key`.
    pub(crate) async fn exists(&self, key: &Path) -> Result<bool, StorageError> {
        match self.objects.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(other) => Err(other.into()),
        }
    }

    /// Deletes one object; a missing object is not an error.
    pub(crate) async fn delete_object(&self, key: &Path) -> Result<(), StorageError> {
        match self.objects.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }

    /// Deletes every object under `prefix`, with the backend's batching; on
    /// a local filesystem, the directory with everything in it.
    pub(crate) async fn delete_prefix(&self, prefix: &Path) -> Result<(), StorageError> {
        use futures::{StreamExt, TryStreamExt};
        if let Some(root) = &self.local_root {
            return remove_directory(&root.join(prefix.as_ref())).await;
        }
        let locations = self
            .objects
            .list(Some(prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        let mut deleted = self.objects.delete_stream(locations);
        while let Some(result) = deleted.next().await {
            match result {
                Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    }
}

/// Removes a directory and everything in it; one that is gone already is
/// fine. A file written into it meanwhile (a hash state saved late by
/// another replica) makes the removal fail with "not empty": it is tried
/// again.
async fn remove_directory(directory: &std::path::Path) -> Result<(), StorageError> {
    let mut attempts = 0;
    loop {
        match tokio::fs::remove_dir_all(directory).await {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempts < 5 => {
                attempts += 1;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Links on a local store are read in one call of their own; they
    /// must answer what object_store's reads answer on every store.
    #[tokio::test]
    async fn local_links_read_as_object_store_reads_them() {
        let root = tempfile::tempdir().expect("temporary directory");
        let local = Store::open(root.path().to_str().expect("UTF-8")).expect("store");
        let memory = Store::in_memory();
        let digest = Digest::sha256_of(b"content");
        for store in [&local, &memory] {
            let key = Path::from("docker/registry/v2/some/link");
            assert!(store.read_link(&key).await.expect("read").is_none());
            store.write_link(&key, &digest).await.expect("written");
            let (read, written) = store
                .read_stamped_link(&key)
                .await
                .expect("read")
                .expect("a link");
            assert_eq!(read, digest);
            let age = SystemTime::now()
                .duration_since(written)
                .unwrap_or_default();
            assert!(age.as_secs() < 60, "written {age:?} ago");
            // A directory where a link would be is no link.
            let directory = Path::from("docker/registry/v2/some");
            assert!(store.read_link(&directory).await.expect("read").is_none());
        }
        let some = root.path().join("docker/registry/v2/some");
        std::os::unix::fs::symlink("/dev/zero", some.join("endless")).expect("symlink");
        std::fs::write(some.join("huge"), " ".repeat(8192)).expect("written");
        for name in ["endless", "huge"] {
            let key = Path::from(format!("docker/registry/v2/some/{name}"));
            assert!(
                matches!(
                    local.read_link(&key).await,
                    Err(StorageError::Corrupt { .. })
                ),
                "{name}"
            );
        }
        std::fs::write(some.join("bad"), "sha256:zz").expect("written");
        let bad = Path::from("docker/registry/v2/some/bad");
        assert!(matches!(
            local.read_link(&bad).await,
            Err(StorageError::Corrupt { .. })
        ));
    }
}
