//! Multipart uploads on S3 that were never completed: a replica killed
//! during a push leaves one behind, invisible to every listing yet billed
//! as storage until it is aborted. The collector lists them under the
//! registry tree and aborts the old ones. Other backends have none.

use std::time::SystemTime;

use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::signer::{Method, SignedUrlOptions};

use crate::s3::backend;
use crate::{StorageError, Store};

/// One multipart upload that was started and not completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncompleteUpload {
    /// The object key it would have written, exactly as S3 listed it.
    pub key: Path,
    pub upload_id: String,
    /// When it started, on the store's clock.
    pub initiated: SystemTime,
}

/// The parts of S3's `ListMultipartUploadsResult` that matter here.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Listing {
    #[serde(default)]
    upload: Vec<ListedUpload>,
    #[serde(default)]
    is_truncated: bool,
    next_key_marker: Option<String>,
    next_upload_id_marker: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListedUpload {
    key: String,
    upload_id: String,
    initiated: String,
}

impl Store {
    /// Every incomplete multipart upload under the registry tree; none
    /// where the store is not S3.
    pub async fn incomplete_multipart_uploads(
        &self,
    ) -> Result<Vec<IncompleteUpload>, StorageError> {
        let Some(s3) = &self.s3 else {
            return Ok(Vec::new());
        };
        let prefix = format!("{}/", self.layout.root());
        let mut found = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            let mut query = vec![("uploads", String::new()), ("prefix", prefix.clone())];
            if let Some((key, upload_id)) = markers.take() {
                query.push(("key-marker", key));
                query.push(("upload-id-marker", upload_id));
            }
            let options = SignedUrlOptions::default().with_query(query);
            let text = s3
                .send_signed(
                    Method::GET,
                    &Path::default(),
                    options,
                    "listing multipart uploads",
                )
                .await?;
            let listing: Listing = quick_xml::de::from_str(&text)
                .map_err(|error| backend(format!("unreadable multipart listing: {error}")))?;
            for upload in listing.upload {
                let initiated =
                    humantime::parse_rfc3339_weak(&upload.initiated).map_err(|error| {
                        backend(format!("Initiated {:?}: {error}", upload.initiated))
                    })?;
                // Only a key object_store names exactly can be aborted
                // through it; no Berth replica writes any other.
                let key = match Path::parse(&upload.key) {
                    Ok(key) if key.as_ref() == upload.key => key,
                    _ => {
                        tracing::warn!(key = %upload.key, upload_id = %upload.upload_id, "an incomplete multipart upload Berth did not start is left alone; abort it with `aws s3api abort-multipart-upload`");
                        continue;
                    }
                };
                found.push(IncompleteUpload {
                    key,
                    upload_id: upload.upload_id,
                    initiated,
                });
            }
            match (
                listing.is_truncated,
                listing.next_key_marker,
                listing.next_upload_id_marker,
            ) {
                (true, Some(key), Some(upload_id)) => markers = Some((key, upload_id)),
                _ => return Ok(found),
            }
        }
    }

    /// Aborts an incomplete multipart upload, freeing its parts.
    pub async fn abort_multipart_upload(
        &self,
        upload: &IncompleteUpload,
    ) -> Result<(), StorageError> {
        let Some(s3) = &self.s3 else {
            return Ok(());
        };
        match s3
            .store
            .abort_multipart(&upload.key, &upload.upload_id)
            .await
        {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}
