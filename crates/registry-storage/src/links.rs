//! Link files: small objects whose whole content is a digest string.

use std::time::SystemTime;

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::Digest;

use crate::{StorageError, Store};

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
        let result = match self.objects.get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let written = result.meta.last_modified.into();
        let bytes = result.bytes().await?;
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
