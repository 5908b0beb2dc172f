//! Opening a store from the `--storage` URL of the command-line contract:
//! `file:///path` (or a plain path), `s3://bucket/prefix?key=value`, and
//! `memory://`.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use crate::Store;

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
    #[error("cannot open the store: {0}")]
    Backend(#[from] object_store::Error),
}

impl Store {
    /// Opens the store a `--storage` value names.
    pub fn open(location: &str) -> Result<Store, OpenError> {
        if !location.contains("://") {
            return open_directory(PathBuf::from(location));
        }
        let url = url::Url::parse(location).map_err(|_| OpenError::BadUrl(location.to_owned()))?;
        match url.scheme() {
            "memory" => Ok(Store::in_memory()),
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|()| OpenError::BadUrl(location.to_owned()))?;
                open_directory(path)
            }
            "s3" => open_s3(&url),
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

fn open_s3(url: &url::Url) -> Result<Store, OpenError> {
    let bucket = url
        .host_str()
        .filter(|bucket| !bucket.is_empty())
        .ok_or_else(|| OpenError::MissingBucket(url.to_string()))?;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    for (key, value) in url.query_pairs() {
        let option: AmazonS3ConfigKey = key
            .parse()
            .map_err(|_| OpenError::UnknownS3Option(key.to_string()))?;
        builder = builder.with_config(option, value);
    }
    let prefix = Path::from(url.path().trim_matches('/'));
    let s3 = Arc::new(builder.build()?);
    let mut store = Store::new(s3.clone(), prefix);
    store.s3 = Some(s3);
    Ok(store)
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
    fn opens_directories_by_url_and_by_path() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let nested = dir.path().join("a/b");
        assert!(Store::open(nested.to_str().expect("utf-8 path")).is_ok());
        assert!(nested.is_dir());
        let url = format!("file://{}", dir.path().display());
        assert!(Store::open(&url).is_ok());
    }
}
