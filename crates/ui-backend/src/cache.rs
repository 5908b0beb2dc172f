//! ui-backend's two kinds of memory. Content addressed by digest
//! (manifests, image configs) never changes: it is kept in a cache bounded
//! by bytes, per repository (a digest is only ever shown as read through a
//! repository that has it). Lists that change (the catalog, tags, what a tag points at, a
//! manifest's referrers) are kept only for [`FRESH_FOR`], so nothing shown
//! is older than that. Both make concurrent askers of one key wait for one
//! fetch. Who may see an entry is decided before it is looked up: see
//! `inspect.rs`.

use std::hash::Hash;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use sha2::Sha256;

use crate::model::{ImageConfig, Manifest};
use crate::registry::Credentials;

/// How long a list read from the registry is shown before it is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(3);

/// A parsed manifest and what it was served as.
#[derive(Debug)]
pub struct ManifestDoc {
    pub media_type: String,
    pub size: u64,
    pub manifest: Manifest,
}

/// Something addressed by digest.
#[derive(Clone, Debug)]
pub enum Content {
    Manifest(Arc<ManifestDoc>),
    Config(Arc<ImageConfig>),
}

/// What is cached (manifest or config), the repository it was read
/// through, and its digest.
type ContentKey = (u8, String, String);
/// The size of the JSON it was parsed from, and the parsed content.
type SizedContent = (u64, Content);

#[derive(Clone, Debug)]
struct SourceBytes;

impl Weighter<ContentKey, SizedContent> for SourceBytes {
    fn weight(&self, key: &ContentKey, value: &SizedContent) -> u64 {
        // Parsed documents take about what their JSON took, plus the key.
        value.0 + (key.1.len() + key.2.len()) as u64 + 256
    }
}

/// Content by digest, bounded by bytes.
#[derive(Clone)]
pub struct DigestCache(Arc<Cache<ContentKey, SizedContent, SourceBytes>>);

impl std::fmt::Debug for DigestCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCache")
            .field("entries", &self.0.len())
            .field("bytes", &self.0.weight())
            .finish()
    }
}

const MANIFEST: u8 = 0;
const CONFIG: u8 = 1;

impl DigestCache {
    pub fn new(capacity_bytes: u64) -> Self {
        let expected = usize::try_from(capacity_bytes / 2048).unwrap_or(usize::MAX);
        DigestCache(Arc::new(Cache::with_weighter(
            expected.max(64),
            capacity_bytes,
            SourceBytes,
        )))
    }

    /// The manifest `digest` of `repository`, fetched (and parsed) once.
    pub async fn manifest<E>(
        &self,
        repository: &str,
        digest: &str,
        fetch: impl Future<Output = Result<(u64, Arc<ManifestDoc>), E>>,
    ) -> Result<Arc<ManifestDoc>, E> {
        let fetch = async {
            let (size, doc) = fetch.await?;
            Ok((size, Content::Manifest(doc)))
        };
        match self
            .get_or_fetch((MANIFEST, repository.to_owned(), digest.to_owned()), fetch)
            .await?
        {
            Content::Manifest(doc) => Ok(doc),
            Content::Config(_) => unreachable!("manifest keys hold manifests"),
        }
    }

    /// Forgets the manifest `digest` of `repository`.
    pub fn forget_manifest(&self, repository: &str, digest: &str) {
        self.0
            .remove(&(MANIFEST, repository.to_owned(), digest.to_owned()));
    }

    /// The image config `digest` of `repository`, fetched (and parsed) once.
    pub async fn config<E>(
        &self,
        repository: &str,
        digest: &str,
        fetch: impl Future<Output = Result<(u64, Arc<ImageConfig>), E>>,
    ) -> Result<Arc<ImageConfig>, E> {
        let fetch = async {
            let (size, config) = fetch.await?;
            Ok((size, Content::Config(config)))
        };
        match self
            .get_or_fetch((CONFIG, repository.to_owned(), digest.to_owned()), fetch)
            .await?
        {
            Content::Config(config) => Ok(config),
            Content::Manifest(_) => unreachable!("config keys hold configs"),
        }
    }

    async fn get_or_fetch<E>(
        &self,
        key: ContentKey,
        fetch: impl Future<Output = Result<SizedContent, E>>,
    ) -> Result<Content, E> {
        let (_, content) = self.0.get_or_insert_async(&key, fetch).await?;
        Ok(content)
    }
}

/// About how many bytes a cached value holds, for bounding caches by
/// memory rather than by count.
pub trait Weigh {
    fn weigh(&self) -> u64;
}

impl Weigh for Arc<Vec<String>> {
    fn weigh(&self) -> u64 {
        self.iter()
            .map(|entry| entry.len() as u64 + 24)
            .sum::<u64>()
            + 64
    }
}

#[derive(Clone, Debug)]
struct FreshWeight;

impl<K, V: Weigh> Weighter<K, (Instant, V)> for FreshWeight {
    fn weight(&self, _key: &K, value: &(Instant, V)) -> u64 {
        // The key and the entry's own bookkeeping.
        value.1.weigh() + 128
    }
}

/// Values that are shown for [`FRESH_FOR`], then read again; bounded by
/// bytes.
#[derive(Debug)]
pub struct Fresh<K: Eq + Hash, V: Clone>(Cache<K, (Instant, V), FreshWeight>);

impl<K: Eq + Hash + Clone, V: Clone + Weigh> Fresh<K, V> {
    pub fn new(capacity_bytes: u64) -> Self {
        let expected = usize::try_from(capacity_bytes / 256).unwrap_or(usize::MAX);
        Fresh(Cache::with_weighter(
            expected.max(16),
            capacity_bytes,
            FreshWeight,
        ))
    }

    /// The value for `key` if it is fresh, else what `fetch` gives (one
    /// fetch for all who ask at once).
    pub async fn get_or_fetch<E>(
        &self,
        key: K,
        fetch: impl Future<Output = Result<V, E>>,
    ) -> Result<V, E> {
        if let Some((read_at, value)) = self.0.get(&key) {
            if read_at.elapsed() < FRESH_FOR {
                return Ok(value);
            }
            self.0.remove_if(&key, |(at, _)| *at == read_at);
        }
        let fetch = async { Ok((Instant::now(), fetch.await?)) };
        let (_, value) = self.0.get_or_insert_async(&key, fetch).await?;
        Ok(value)
    }

    /// Forgets `key` (after a change made through the UI).
    pub fn forget(&self, key: &K) {
        self.0.remove(key);
    }
}

/// Who is asking, as a keyed hash of their `Authorization` header: per-user
/// cache entries never hold the credentials themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UserKey([u8; 32]);

/// The key of [`UserKey`]'s hash, random for each start.
#[derive(Clone)]
pub struct UserKeys(Hmac<Sha256>);

impl std::fmt::Debug for UserKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserKeys(..)")
    }
}

impl Default for UserKeys {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        UserKeys(Hmac::new_from_slice(&secret).expect("HMAC takes any key length"))
    }
}

impl UserKeys {
    pub fn of(&self, user: &Credentials) -> UserKey {
        let mut mac = self.0.clone();
        mac.update(user.as_bytes());
        UserKey(mac.finalize().into_bytes().into())
    }
}
