//! What Berth asks of S3 beyond `ObjectStore`: requests object_store has no
//! call for (listing incomplete multipart uploads, copying a byte range of
//! one object into a part of another on the store's side), signed with the
//! store's own credentials and sent by object_store's own HTTP client, so
//! they go out with every client option of the storage URL (certificates,
//! proxy, timeouts) as object_store's requests do.

use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use object_store::ClientOptions;
use object_store::aws::AmazonS3;
use object_store::client::{HttpClient, HttpConnector, HttpRequestBody, ReqwestConnector};
use object_store::path::Path;
use object_store::signer::{Method, SignedUrlOptions, Signer};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::StorageError;

/// What a key keeps unencoded in `x-amz-copy-source`, which S3 decodes:
/// unreserved characters and the `/` between segments.
const KEY_CHARACTERS_ENCODED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// How long a signed request stays valid; it is sent at once.
const SIGNED_FOR: Duration = Duration::from_secs(300);

/// One S3 bucket as object_store sees it, and what is needed to send it
/// the requests object_store cannot.
#[derive(Debug)]
pub(crate) struct S3 {
    pub(crate) store: Arc<AmazonS3>,
    bucket: String,
    client: HttpClient,
}

/// Makes object_store's HTTP clients as it would itself, from the options
/// it is given, and keeps the last one made. Building an `AmazonS3` makes
/// its clients for credentials first and the one for the bucket last, so
/// once built, [`SharedClient::last`] is the bucket's.
#[derive(Clone, Debug, Default)]
pub(crate) struct SharedClient(Arc<Mutex<Option<HttpClient>>>);

impl HttpConnector for SharedClient {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = ReqwestConnector::default().connect(options)?;
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(client.clone());
        Ok(client)
    }
}

impl SharedClient {
    /// The client made last, if any was.
    pub(crate) fn last(&self) -> Option<HttpClient> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The parts of S3's `CopyPartResult` that matter here.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CopyPartResult {
    e_tag: String,
}

pub(crate) fn backend(reason: String) -> StorageError {
    StorageError::Backend(object_store::Error::Generic {
        store: "S3",
        source: reason.into(),
    })
}

impl S3 {
    /// `client` is the one `store` sends its own requests with.
    pub(crate) fn new(store: Arc<AmazonS3>, bucket: &str, client: HttpClient) -> Self {
        S3 {
            store,
            bucket: bucket.to_owned(),
            client,
        }
    }

    /// Sends one request signed for `key`, and returns the body of its
    /// successful answer; `what` names it in errors.
    pub(crate) async fn send_signed(
        &self,
        method: Method,
        key: &Path,
        options: SignedUrlOptions,
        what: &str,
    ) -> Result<String, StorageError> {
        let url = self
            .store
            .signed_url_opts(method.clone(), key, SIGNED_FOR, &options)
            .await?;
        let mut request = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .body(HttpRequestBody::empty())
            .map_err(|error| backend(format!("{what}: {error}")))?;
        *request.headers_mut() = options.signed_headers;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|error| backend(format!("{what}: {error}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .bytes()
            .await
            .map_err(|error| backend(format!("{what}: {error}")))?;
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Err(backend(format!("{what} answered {status}: {text}")));
        }
        Ok(text.into_owned())
    }

    /// Copies `range` of the object at `source` into part `part` (from 1)
    /// of the multipart upload `upload_id` of `target`, on the store's side:
    /// no byte passes through here. Returns the part's ETag.
    pub(crate) async fn copy_part(
        &self,
        target: &Path,
        upload_id: &str,
        part: usize,
        source: &Path,
        range: Range<u64>,
    ) -> Result<String, StorageError> {
        let what = format!("copying {source} bytes {range:?} into part {part} of {target}");
        let copy_source = format!("{}/{}", self.bucket, encode_key(source));
        let copy_range = format!("bytes={}-{}", range.start, range.end - 1);
        let options = SignedUrlOptions::default()
            .with_query([
                ("partNumber", part.to_string()),
                ("uploadId", upload_id.to_owned()),
            ])
            .with_signed_header(
                HeaderName::from_static("x-amz-copy-source"),
                header_value(&copy_source)?,
            )
            .with_signed_header(
                HeaderName::from_static("x-amz-copy-source-range"),
                header_value(&copy_range)?,
            );
        let text = self
            .send_signed(Method::PUT, target, options, &what)
            .await?;
        // S3 may answer 200 and report a failed copy in the body.
        let result: CopyPartResult = quick_xml::de::from_str(&text)
            .map_err(|error| backend(format!("{what}: unreadable answer ({error}): {text}")))?;
        Ok(result.e_tag)
    }
}

/// `key` as S3 reads it back from a percent-encoded header.
fn encode_key(key: &Path) -> String {
    utf8_percent_encode(key.as_ref(), KEY_CHARACTERS_ENCODED).to_string()
}

fn header_value(value: &str) -> Result<HeaderValue, StorageError> {
    HeaderValue::from_str(value).map_err(|error| backend(format!("header {value:?}: {error}")))
}
