//! Presigned URLs of blobs on an S3 store, for a registry that sends
//! clients to the store for blob bytes (`registry-api --redirect-blobs`)
//! instead of carrying them itself.

use std::time::Duration;

use object_store::signer::{Method, Signer};
use registry_core::Digest;

use crate::{StorageError, Store};

/// The longest time S3 lets a presigned URL live.
const LONGEST_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why blob redirects cannot be turned on; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum RedirectError {
    #[error(
        "--redirect-blobs needs an S3 store (s3://...): a {0} store has no URLs to send clients to"
    )]
    NotS3(&'static str),
    #[error("--redirect-blobs {0:?}: a presigned URL must live between 1 second and 7 days")]
    Expiry(Duration),
}

impl Store {
    /// Makes [`Store::blob_redirect`] sign URLs that live `expiry`.
    pub fn redirect_blobs(&mut self, expiry: Duration) -> Result<(), RedirectError> {
        if self.s3.is_none() {
            let kind = if self.local_root.is_some() {
                "filesystem"
            } else {
                "memory"
            };
            return Err(RedirectError::NotS3(kind));
        }
        if expiry < Duration::from_secs(1) || expiry > LONGEST_EXPIRY {
            return Err(RedirectError::Expiry(expiry));
        }
        self.redirect_expiry = Some(expiry);
        Ok(())
    }

    /// A presigned `GET` URL of the blob's bytes in the store, when
    /// redirects are on. Signing is local: the store is not asked.
    pub async fn blob_redirect(&self, digest: &Digest) -> Result<Option<url::Url>, StorageError> {
        let (Some(s3), Some(expiry)) = (&self.s3, self.redirect_expiry) else {
            return Ok(None);
        };
        let url = s3
            .store
            .signed_url(Method::GET, &self.layout.blob_data(digest), expiry)
            .await?;
        Ok(Some(url))
    }
}
