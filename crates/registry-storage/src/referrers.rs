//! The referrers index: for each subject digest, the descriptors of the
//! manifests in the repository that name it as their `subject`. Each entry
//! holds the referrer's descriptor JSON, which never changes since the
//! manifest it describes is content-addressed.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectStoreExt, PutPayload};
use registry_core::{Digest, RepositoryName};

use crate::{StorageError, Store};

/// How many entries are checked against their manifests at once.
const CHECK_CONCURRENCY: usize = 16;

impl Store {
    /// Records that `referrer` (described by `descriptor`, an OCI descriptor
    /// in JSON) refers to `subject`.
    pub async fn add_referrer(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
        descriptor: Bytes,
    ) -> Result<(), StorageError> {
        let key = self.layout.referrer(name, subject, referrer);
        self.objects.put(&key, PutPayload::from(descriptor)).await?;
        Ok(())
    }

    /// The descriptors of the manifests that refer to `subject`, ordered by
    /// referrer digest. Entries whose manifest has since gone are skipped.
    pub async fn referrers(
        &self,
        name: &RepositoryName,
        subject: &Digest,
    ) -> Result<Vec<Bytes>, StorageError> {
        let prefix = self.layout.referrers(name, subject);
        let mut keys: Vec<_> = self
            .objects
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_collect()
            .await?;
        keys.sort();
        futures::stream::iter(keys)
            .map(|key| async move {
                let referrer = referrer_digest(key.as_ref());
                let present = match &referrer {
                    Some(digest) => self.has_manifest(name, digest).await?,
                    None => false,
                };
                if !present {
                    return Ok(None);
                }
                match self.objects.get(&key).await {
                    Ok(result) => Ok(Some(result.bytes().await?)),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(other) => Err(StorageError::from(other)),
                }
            })
            .buffered(CHECK_CONCURRENCY)
            .try_filter_map(|entry| async move { Ok(entry) })
            .try_collect()
            .await
    }
}

/// `.../<algorithm>/<hex>/descriptor.json` → the referrer's digest.
fn referrer_digest(key: &str) -> Option<Digest> {
    let mut parts = key.rsplit('/').skip(1);
    let hex = parts.next()?;
    let algorithm = parts.next()?;
    format!("{algorithm}:{hex}").parse().ok()
}
