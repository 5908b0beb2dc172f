//! registry-api's HTTP API as ui-backend uses it: every request carries the
//! browser user's own `Authorization` header, waits for one of a bounded
//! number of slots, and turns the registry's answer (OCI error bodies
//! included) into data or an [`UpstreamError`].

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use bytes::Bytes;
use service_runtime::client_address::FORWARDER_HEADER;
use service_runtime::token::SharedToken;
use tokio::sync::Semaphore;

/// Every manifest type the UI can show, for `Accept`.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.docker.distribution.manifest.v2+json, */*;q=0.1";

/// The largest manifest, image config or listing ui-backend reads.
const MAX_DOCUMENT: usize = 8 << 20;
/// How long one request to registry-api may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why registry-api did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the registry at {url} cannot be reached: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    #[error("{0}")]
    ReadOnly(String),
    /// 503 for another reason (auth-service unreachable, the store down).
    #[error("{0}")]
    Unavailable(String),
    #[error("the registry answered {status} to {what}: {message}")]
    Unexpected {
        status: StatusCode,
        what: String,
        message: String,
    },
}

/// The browser user: their credentials, passed on as they came, and their
/// address, passed on in `X-Forwarded-For`.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    authorization: Option<HeaderValue>,
    client: Option<IpAddr>,
}

impl Credentials {
    pub fn new(headers: &HeaderMap, client: Option<IpAddr>) -> Self {
        Credentials {
            authorization: headers.get(header::AUTHORIZATION).cloned(),
            client,
        }
    }

    /// Whether the browser sent credentials at all.
    pub fn is_present(&self) -> bool {
        self.authorization.is_some()
    }

    /// The header's bytes, for keying per-user caches (never stored as is).
    pub fn as_bytes(&self) -> &[u8] {
        self.authorization
            .as_ref()
            .map_or(&[], HeaderValue::as_bytes)
    }
}

/// What a `HEAD` of a manifest says.
#[derive(Clone, Debug)]
pub struct ManifestHead {
    pub digest: String,
    pub media_type: String,
    /// When the tag was last pointed at the manifest (by tag only).
    pub pushed: Option<SystemTime>,
}

/// A manifest's bytes and the media type it was served with.
#[derive(Clone, Debug)]
pub struct Document {
    pub media_type: String,
    pub bytes: Bytes,
}

/// registry-api, as one user sees it.
#[derive(Clone, Debug)]
pub struct Registry {
    http: reqwest::Client,
    base: url::Url,
    slots: Arc<Semaphore>,
    /// Presented so that registry-api believes the user addresses passed on.
    proxy_token: Option<SharedToken>,
}

impl Registry {
    pub fn new(
        base: url::Url,
        concurrency: usize,
        proxy_token: Option<SharedToken>,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(concurrency)
            .build()?;
        Ok(Registry {
            http,
            base,
            slots: Arc::new(Semaphore::new(concurrency)),
            proxy_token,
        })
    }

    pub fn base(&self) -> &url::Url {
        &self.base
    }

    /// `GET /v2/`: whether the credentials are good.
    pub async fn check(&self, user: &Credentials) -> Result<(), UpstreamError> {
        self.send(Method::GET, "/v2/", &[], user, "the log-in")
            .await
            .map(drop)
    }

    /// Every repository the user may pull, in name order.
    pub async fn catalog(&self, user: &Credentials) -> Result<Vec<String>, UpstreamError> {
        #[derive(serde::Deserialize)]
        struct Catalog {
            #[serde(default)]
            repositories: Vec<String>,
        }
        self.all_pages("/v2/_catalog", user, "the catalog", |page: Catalog| {
            page.repositories
        })
        .await
    }

    /// Every tag of a repository, in name order.
    pub async fn tags(
        &self,
        user: &Credentials,
        repository: &str,
    ) -> Result<Vec<String>, UpstreamError> {
        #[derive(serde::Deserialize)]
        struct Tags {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let path = format!("/v2/{repository}/tags/list");
        let what = format!("the tags of {repository}");
        self.all_pages(&path, user, &what, |page: Tags| {
            page.tags.unwrap_or_default()
        })
        .await
    }

    /// `HEAD` of a manifest by tag or digest.
    pub async fn head_manifest(
        &self,
        user: &Credentials,
        repository: &str,
        reference: &str,
    ) -> Result<ManifestHead, UpstreamError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let what = format!("{repository}:{reference}");
        let response = self.send(Method::HEAD, &path, &[], user, &what).await?;
        let headers = response.headers();
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        let digest = text("docker-content-digest").ok_or_else(|| UpstreamError::Unexpected {
            status: response.status(),
            what: what.clone(),
            message: "no Docker-Content-Digest header".to_owned(),
        })?;
        Ok(ManifestHead {
            digest,
            media_type: text("content-type").unwrap_or_default(),
            pushed: text("last-modified").and_then(|date| httpdate::parse_http_date(&date).ok()),
        })
    }

    /// A manifest's bytes, by digest.
    pub async fn manifest(
        &self,
        user: &Credentials,
        repository: &str,
        digest: &str,
    ) -> Result<Document, UpstreamError> {
        let path = format!("/v2/{repository}/manifests/{digest}");
        let what = format!("{repository}@{digest}");
        let response = self.send(Method::GET, &path, &[], user, &what).await?;
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = read_limited(response, &what).await?;
        Ok(Document { media_type, bytes })
    }

    /// A small blob (an image config), by digest.
    pub async fn blob(
        &self,
        user: &Credentials,
        repository: &str,
        digest: &str,
    ) -> Result<Bytes, UpstreamError> {
        let path = format!("/v2/{repository}/blobs/{digest}");
        let what = format!("blob {digest} of {repository}");
        let response = self.send(Method::GET, &path, &[], user, &what).await?;
        read_limited(response, &what).await
    }

    /// The OCI 1.1 referrers index of a manifest.
    pub async fn referrers(
        &self,
        user: &Credentials,
        repository: &str,
        digest: &str,
    ) -> Result<Bytes, UpstreamError> {
        let path = format!("/v2/{repository}/referrers/{digest}");
        let what = format!("the referrers of {repository}@{digest}");
        let response = self.send(Method::GET, &path, &[], user, &what).await?;
        read_limited(response, &what).await
    }

    /// Deletes a tag (untags it) or a manifest by digest.
    pub async fn delete_manifest(
        &self,
        user: &Credentials,
        repository: &str,
        reference: &str,
    ) -> Result<(), UpstreamError> {
        let path = format!("/v2/{repository}/manifests/{reference}");
        let what = format!("deleting {repository}:{reference}");
        self.send(Method::DELETE, &path, &[], user, &what)
            .await
            .map(drop)
    }

    /// `GET /v2/` without credentials: whether registry-api answers at all.
    pub async fn reachable(&self) -> bool {
        let url = self.url("/v2/", &[]);
        self.http.get(url).send().await.is_ok()
    }

    /// Follows `Link: <...>; rel="next"` through every page of a listing.
    async fn all_pages<P: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        user: &Credentials,
        what: &str,
        entries: impl Fn(P) -> Vec<String>,
    ) -> Result<Vec<String>, UpstreamError> {
        let mut all = Vec::new();
        let mut query = vec![("n".to_owned(), "10000".to_owned())];
        loop {
            let pairs: Vec<(&str, &str)> = query
                .iter()
                .map(|(key, value)| (key.as_str(), value.as_str()))
                .collect();
            let response = self.send(Method::GET, path, &pairs, user, what).await?;
            let next = next_page(response.headers());
            let bytes = read_limited(response, what).await?;
            let page: P =
                serde_json::from_slice(&bytes).map_err(|error| UpstreamError::Unexpected {
                    status: StatusCode::OK,
                    what: what.to_owned(),
                    message: format!("not the expected JSON: {error}"),
                })?;
            all.extend(entries(page));
            match next {
                Some(next) if next != query => query = next,
                _ => return Ok(all),
            }
        }
    }

    /// Sends one request in one of the bounded slots; any status but 2xx
    /// becomes an error.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        user: &Credentials,
        what: &str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url(path, query);
        let mut request = self.http.request(method, url);
        if let Some(authorization) = &user.authorization {
            request = request.header(header::AUTHORIZATION, authorization.clone());
        }
        if let Some(client) = user.client {
            request = request.header("x-forwarded-for", client.to_string());
        }
        if let Some(token) = &self.proxy_token {
            request = request.header(FORWARDER_HEADER, token.bearer());
        }
        if path.contains("/manifests/") {
            request = request.header(header::ACCEPT, MANIFEST_TYPES);
        }
        let _slot = self
            .slots
            .acquire()
            .await
            .expect("the semaphore is never closed");
        metrics::counter!("ui_registry_requests_total").increment(1);
        let response = transmit(request, self.base.as_str()).await?;
        if response.status() == StatusCode::TEMPORARY_REDIRECT
            && let Some(target) = self.redirect_target(&response)
        {
            // A presigned URL of the store (`registry-api --redirect-blobs`):
            // it needs no credentials, and the store is never shown the
            // user's.
            let origin = format!("{}://{}", target.scheme(), target.authority());
            let followed = transmit(self.http.get(target), &origin).await?;
            return successful(followed, what).await;
        }
        successful(response, what).await
    }

    /// Where a blob `GET` was sent (`registry-api --redirect-blobs`),
    /// resolved against the registry's URL.
    fn redirect_target(&self, response: &reqwest::Response) -> Option<url::Url> {
        let location = response.headers().get(header::LOCATION)?.to_str().ok()?;
        self.base.join(location).ok()
    }

    fn url(&self, path: &str, query: &[(&str, &str)]) -> url::Url {
        let mut url = self.base.clone();
        url.set_path(path);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }
}

/// The query of the next page from a `Link` header, if there is one.
fn next_page(headers: &HeaderMap) -> Option<Vec<(String, String)>> {
    let link = headers.get(header::LINK)?.to_str().ok()?;
    let target = link.split(';').next()?.trim();
    let target = target.strip_prefix('<')?.strip_suffix('>')?;
    let query = target.split_once('?')?.1;
    Some(
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect(),
    )
}

/// Reads a body of at most [`MAX_DOCUMENT`] bytes.
/// Sends `request` to `origin` (named in the error when it cannot be
/// reached).
async fn transmit(
    request: reqwest::RequestBuilder,
    origin: &str,
) -> Result<reqwest::Response, UpstreamError> {
    request
        .send()
        .await
        .map_err(|error| UpstreamError::Unreachable {
            url: origin.to_owned(),
            reason: error_chain(&error),
        })
}

/// The response when it succeeded, else the error it tells of.
async fn successful(
    response: reqwest::Response,
    what: &str,
) -> Result<reqwest::Response, UpstreamError> {
    if response.status().is_success() {
        return Ok(response);
    }
    Err(upstream_error(response, what).await)
}

async fn read_limited(response: reqwest::Response, what: &str) -> Result<Bytes, UpstreamError> {
    if response
        .content_length()
        .is_some_and(|length| length > MAX_DOCUMENT as u64)
    {
        return Err(too_large(what));
    }
    let mut response = response;
    let mut body = bytes::BytesMut::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|error| UpstreamError::Unreachable {
                url: what.to_owned(),
                reason: error_chain(&error),
            })?;
        let Some(chunk) = chunk else {
            return Ok(body.freeze());
        };
        if body.len() + chunk.len() > MAX_DOCUMENT {
            return Err(too_large(what));
        }
        body.extend_from_slice(&chunk);
    }
}

fn too_large(what: &str) -> UpstreamError {
    UpstreamError::Unexpected {
        status: StatusCode::OK,
        what: what.to_owned(),
        message: format!(
            "larger than {} MiB, which the UI does not read",
            MAX_DOCUMENT >> 20
        ),
    }
}

/// The error a non-2xx answer means, with the registry's own message.
async fn upstream_error(response: reqwest::Response, what: &str) -> UpstreamError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(header::RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .unwrap_or(1);
    let body = response.bytes().await.unwrap_or_default();
    let message = oci_message(&body);
    match status {
        StatusCode::UNAUTHORIZED => UpstreamError::Unauthorized(
            "the user name or password is wrong, or the log-in has expired".to_owned(),
        ),
        StatusCode::FORBIDDEN => UpstreamError::Forbidden(
            message.unwrap_or_else(|| format!("the registry's policy does not allow {what}")),
        ),
        StatusCode::NOT_FOUND => UpstreamError::NotFound(
            message.unwrap_or_else(|| format!("{what} does not exist or you may not pull it")),
        ),
        StatusCode::TOO_MANY_REQUESTS => UpstreamError::TooManyRequests {
            message: message
                .unwrap_or_else(|| "too many failed log-ins from this client".to_owned()),
            retry_after,
        },
        StatusCode::SERVICE_UNAVAILABLE => match message {
            Some(message) if message.contains("read-only") => UpstreamError::ReadOnly(message),
            Some(message) => UpstreamError::Unavailable(message),
            None => UpstreamError::Unavailable(format!("the registry cannot answer {what} now")),
        },
        _ => UpstreamError::Unexpected {
            status,
            what: what.to_owned(),
            message: message.unwrap_or_else(|| "no error message".to_owned()),
        },
    }
}

/// The first message of an OCI error body.
fn oci_message(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        message: String,
    }
    let errors: Errors = serde_json::from_slice(body).ok()?;
    errors
        .errors
        .into_iter()
        .map(|entry| entry.message)
        .find(|message| !message.is_empty())
}

/// An error with its sources, for messages.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
