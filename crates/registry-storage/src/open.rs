//! Opening a store from the `--storage` URL of the command-line contract:
//! `file:///path` (or a plain path), `s3://bucket/prefix?key=value`, and
//! `memory://`; optionally with a bound on how long a remote store may
//! keep a caller waiting.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};

use crate::Store;
use crate::s3::{S3, SharedClient};

/// Why a storage URL cannot be opened; each names what to fix.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("storage URL {0:?} is not a URL or a path")]
    BadUrl(String),
    #[error(
        "storage scheme {0:?} is not supported: use file:///path, s3://bucket/prefix or memory://"
    )]
    UnsupportedScheme(String),
    #[error("cannot create the storage directory {path}: {source}")]
    CreateDirectory {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage URL query key {0:?} is not an S3 option")]
    UnknownS3Option(String),
    #[error("storage URL {0:?} names no bucket")]
    MissingBucket(String),
    #[error("storage URL query key {key:?}: {source}")]
    BadS3Option {
        key: String,
        source: object_store::Error,
    },
    #[error("S3 prefix {prefix:?} cannot begin object keys: {reason}")]
    BadPrefix { prefix: String, reason: String },
    #[error("{0}")]
    Backend(#[from] object_store::Error),
}

/// A `--storage` value with every query value hidden, for messages and
/// logs: a storage URL may carry a secret key.
pub fn shown(location: &str) -> String {
    let Some((base, query)) = location.split_once('?') else {
        return location.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) => format!("{key}=..."),
            None => pair.to_owned(),
        })
        .collect();
    format!("{base}?{}", pairs.join("&"))
}

impl Store {
    /// Opens the store a `--storage` value names, with `object_store`'s
    /// own timeouts and retries for a remote store (minutes, for a
    /// collection that would rather wait than fail).
    pub fn open(location: &str) -> Result<Store, OpenError> {
        Store::open_bounded(location, None)
    }

    /// Opens the store a `--storage` value names; a remote store may keep a
    /// caller waiting about `limit` at most per request: no byte from it for
    /// that long, or failing answers retried for that long, fail the call.
    /// A long download that keeps moving is never cut. A local directory
    /// is the kernel's to bound.
    pub fn open_with_timeout(location: &str, limit: Duration) -> Result<Store, OpenError> {
        Store::open_bounded(location, Some(limit))
    }

    fn open_bounded(location: &str, limit: Option<Duration>) -> Result<Store, OpenError> {
        if !location.contains("://") {
            return open_directory(PathBuf::from(location));
        }
        let url = url::Url::parse(location).map_err(|_| OpenError::BadUrl(shown(location)))?;
        match url.scheme() {
            "memory" => Ok(Store::in_memory()),
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| OpenError::BadUrl(shown(location)))?;
                open_directory(path)
            }
            "s3" => open_s3(location, &url, limit),
            other => Err(OpenError::UnsupportedScheme(other.to_owned())),
        }
    }
}

fn open_directory(path: PathBuf) -> Result<Store, OpenError> {
    std::fs::create_dir_all(&path).map_err(|source| OpenError::CreateDirectory {
        path: path.clone(),
        source,
    })?;
    let path = std::fs::canonicalize(&path).map_err(|source| OpenError::CreateDirectory {
        path: path.clone(),
        source,
    })?;
    let objects = LocalFileSystem::new_with_prefix(&path)?.with_automatic_cleanup(true);
    let mut store = Store::new(Arc::new(objects), Path::default());
    store.local_root = Some(path);
    Ok(store)
}

fn open_s3(location: &str, url: &url::Url, limit: Option<Duration>) -> Result<Store, OpenError> {
    let bucket = url
        .host_str()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| OpenError::MissingBucket(shown(url.as_str())))?;
    let mut builder = match limit {
        Some(limit) => bounded_s3_builder(limit),
        None => AmazonS3Builder::from_env(),
    }
    .with_bucket_name(bucket);
    for (key, value) in url.query_pairs() {
        let option: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| OpenError::UnknownS3Option(key.to_string()))?;
        builder = builder.with_config(option, value);
    }
    let prefix = s3_prefix(location)?;
    let client = SharedClient::default();
    let s3 = builder
        .with_http_connector(client.clone())
        .build()
        .map_err(|error| naming_the_option(url, error))?;
    let s3 = Arc::new(s3);
    let client = client.last().ok_or_else(|| {
        OpenError::Backend(object_store::Error::Generic {
            store: "S3",
            source: "object_store built the store without an HTTP client".into(),
        })
    })?;
    let mut store = Store::new(s3.clone(), prefix);
    store.s3 = Some(Arc::new(S3::new(s3, bucket, client)));
    Ok(store)
}

/// The key prefix of `s3://bucket/prefix`, as its owner wrote it: escapes
/// such as `%20` are decoded, and the keys begin with exactly that text, as
/// they do for Distribution's `rootdirectory`.
fn s3_prefix(location: &str) -> Result<Path, OpenError> {
    // Read from the text: parsing the URL would resolve `..` (to another
    // tenant's prefix, or the bucket's root) where it must be refused.
    let after_scheme = location
        .split_once("://")
        .map_or(location, |(_, rest)| rest);
    let before_query = after_scheme.split(['?', '#']).next().unwrap_or_default();
    let written = before_query
        .split_once('/')
        .map_or("", |(_, path)| path)
        .trim_matches('/');
    let bad = |reason: String| OpenError::BadPrefix {
        prefix: written.to_owned(),
        reason,
    };
    let decoded = percent_encoding::percent_decode_str(written)
        .decode_utf8()
        .map_err(|_| bad("its percent-escapes are not UTF-8".to_owned()))?;
    Path::parse(decoded.as_ref()).map_err(|error| bad(error.to_string()))
}

/// The error object_store gave for a value it could not read, naming the
/// URL's key whose value it quotes (object_store names only the value).
fn naming_the_option(url: &url::Url, error: object_store::Error) -> OpenError {
    let message = error.to_string();
    let quoted = url
        .query_pairs()
        .find(|(_, value)| message.contains(&format!("{value:?}")));
    match quoted {
        Some((key, _)) => OpenError::BadS3Option {
            key: key.into_owned(),
            source: error,
        },
        None => OpenError::Backend(error),
    }
}

/// An S3 client that gives up on a request after about `limit`: a read
/// (the answer's head, or the next piece of its body) waits at most
/// `limit`, and failed attempts are retried for at most `limit`, so a
/// stalled or failing store is reported instead of holding the caller for
/// minutes. No bound on a whole request: a large blob may take as long as
/// it needs while its bytes keep coming. The `AWS_*` variables and the
/// URL's own keys (`timeout`, `read_timeout`, ...) still win.
fn bounded_s3_builder(limit: Duration) -> AmazonS3Builder {
    let client = ClientOptions::new()
        .with_timeout_disabled()
        .with_read_timeout(limit)
        .with_connect_timeout(limit.min(Duration::from_secs(5)));
    let retry = RetryConfig {
        retry_timeout: limit,
        backoff: BackoffConfig {
            max_backoff: (limit / 4).max(Duration::from_millis(100)),
            ..BackoffConfig::default()
        },
        ..RetryConfig::default()
    };
    let mut builder = AmazonS3Builder::new()
        .with_client_options(client)
        .with_retry(retry);
    // What `AmazonS3Builder::from_env` does, over the bounded defaults.
    for (key, value) in std::env::vars() {
        if let Some(option) = key
            .starts_with("AWS_")
            .then(|| key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>().ok())
            .flatten()
        {
            builder = builder.with_config(option, value);
        }
    }
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unknown_schemes_and_options() {
        assert!(matches!(
            Store::open("ftp://host/x"),
            Err(OpenError::UnsupportedScheme(_))
        ));
        assert!(matches!(
            Store::open("s3://bucket?colour=blue"),
            Err(OpenError::UnknownS3Option(key)) if key == "colour"
        ));
    }

    #[test]
    fn a_value_that_cannot_be_read_names_its_key() {
        for (key, value) in [
            ("timeout", "abc"),
            ("connect_timeout", "5"),
            ("allow_http", "maybe"),
        ] {
            let url = format!("s3://bucket/prefix?region=us-east-1&{key}={value}");
            let error = Store::open(&url).expect_err("a bad value");
            let message = error.to_string();
            assert!(
                message.starts_with(&format!("storage URL query key {key:?}")),
                "{message}"
            );
        }
    }

    #[test]
    fn messages_never_show_query_values() {
        let secret = "SuperSecretValue123";
        for url in [
            format!("s3:///prefix?access_key_id=a&secret_access_key={secret}"),
            format!("s3://[bad?secret_access_key={secret}"),
        ] {
            let message = Store::open(&url).expect_err("a bad URL").to_string();
            assert!(!message.contains(secret), "{message}");
            assert!(message.contains("secret_access_key=..."), "{message}");
        }
    }

    #[test]
    fn an_s3_prefix_begins_every_key_as_it_was_written() {
        for (url, root) in [
            ("s3://bucket", "docker/registry/v2"),
            (
                "s3://bucket/prod/registry/",
                "prod/registry/docker/registry/v2",
            ),
            (
                "s3://bucket/team%20registry+1?region=us-east-1",
                "team registry+1/docker/registry/v2",
            ),
            ("s3://bucket/100%25~x", "100%~x/docker/registry/v2"),
        ] {
            let store = Store::open(url).expect(url);
            assert_eq!(store.layout.root().as_ref(), root, "{url}");
        }
    }

    #[test]
    fn a_prefix_that_cannot_begin_keys_is_refused_by_name() {
        for (url, prefix) in [
            ("s3://bucket/a/%2E%2E%2Fb", "a/%2E%2E%2Fb"),
            (
                "s3://bucket/tenant-a/../tenant-b?region=x",
                "tenant-a/../tenant-b",
            ),
            ("s3://bucket/a/%2e%2E/b#x", "a/%2e%2E/b"),
            ("s3://bucket/./a", "./a"),
            ("s3://bucket/..", ".."),
            ("s3://bucket/a%2F%2Fb", "a%2F%2Fb"),
            ("s3://bucket/x%0Ay", "x%0Ay"),
            ("s3://bucket/%FF", "%FF"),
        ] {
            let error = Store::open(url).expect_err(url);
            assert!(
                matches!(&error, OpenError::BadPrefix { prefix: named, .. } if named == prefix),
                "{url}: {error}"
            );
        }
    }

    #[test]
    fn opens_directories_by_url_and_by_path() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let nested = dir.path().join("a/b");
        assert!(Store::open(nested.to_str().expect("utf-8 path")).is_ok());
        assert!(nested.is_dir());
        let url = format!("file://{}", dir.path().display());
        assert!(Store::open(&url).is_ok());
    }
}
