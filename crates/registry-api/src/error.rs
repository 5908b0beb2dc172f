//! The API's error type and its one conversion to an HTTP response: the
//! spec's JSON error body. A 5xx says little to the client; the log says
//! everything.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use registry_core::{ErrorCode, RegistryError};
use registry_storage::{StorageError, UploadError};

/// A failed request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError::Registry(RegistryError::new(code, message))
    }

    /// The HTTP status the error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Registry(error) => error.status,
            ApiError::Storage(error) => storage_failure(error).status,
        }
    }
}

/// Seconds a client is asked to wait before retrying when the store does
/// not answer.
const STORE_RETRY_AFTER_SECONDS: u64 = 5;

/// What the client is told about a failure of the store: 507 when it is
/// full (nothing was stored; retrying will not help until space is freed),
/// 503 `UNAVAILABLE` with `Retry-After` when it does not answer, 500
/// `UNKNOWN` for anything else. The log says which object and why.
fn storage_failure(error: &StorageError) -> RegistryError {
    if error.is_store_full() {
        RegistryError::new(
            ErrorCode::Unknown,
            "the registry's store is full, so nothing was stored; ask its operator to free space (delete unused tags and collect garbage), then push again",
        )
        .with_status(507)
    } else if error.is_store_unavailable() {
        RegistryError::new(
            ErrorCode::Unavailable,
            "the registry's store is not answering; retry shortly",
        )
        .with_detail(serde_json::json!({ "retryAfterSeconds": STORE_RETRY_AFTER_SECONDS }))
    } else {
        RegistryError::new(ErrorCode::Unknown, "internal storage error")
    }
}

impl From<UploadError> for ApiError {
    fn from(error: UploadError) -> Self {
        let message = error.to_string();
        match error {
            UploadError::Unknown => ApiError::new(ErrorCode::BlobUploadUnknown, message),
            UploadError::OutOfOrder { .. } => ApiError::Registry(
                RegistryError::new(ErrorCode::BlobUploadInvalid, message).with_status(416),
            ),
            UploadError::Inconsistent => ApiError::new(ErrorCode::BlobUploadInvalid, message),
            UploadError::Busy => ApiError::Registry(
                RegistryError::new(ErrorCode::BlobUploadInvalid, message).with_status(409),
            ),
            UploadError::DigestMismatch { .. } => ApiError::new(ErrorCode::DigestInvalid, message),
            UploadError::Storage(StorageError::Body(source))
                if crate::write_cut::is_cut_by_window(&source) =>
            {
                ApiError::Registry(
                    RegistryError::new(
                        ErrorCode::Unavailable,
                        crate::write_cut::CutByWindow.to_string(),
                    )
                    .with_detail(serde_json::json!({ "retryAfterSeconds": 1 })),
                )
            }
            UploadError::Storage(StorageError::Body(source)) => ApiError::new(
                ErrorCode::BlobUploadInvalid,
                format!("the request body could not be read: {source}"),
            ),
            UploadError::Storage(storage) => ApiError::Storage(storage),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = match self {
            ApiError::Registry(error) => error,
            ApiError::Storage(error) => {
                let answer = storage_failure(&error);
                tracing::error!(%error, status = answer.status, "storage failure");
                answer
            }
        };
        let status =
            StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut entry =
            serde_json::json!({ "code": error.code.as_str(), "message": error.message });
        if let Some(detail) = &error.detail {
            entry["detail"] = detail.clone();
        }
        let body = serde_json::json!({ "errors": [entry] }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if error.code == ErrorCode::Unauthorized {
            let challenge = format!("Basic realm=\"{}\"", crate::auth::REALM);
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.insert(header::WWW_AUTHENTICATE, value);
            }
        }
        if let Some(seconds) = error
            .detail
            .as_ref()
            .and_then(|detail| detail.get("retryAfterSeconds"))
            .and_then(serde_json::Value::as_u64)
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
