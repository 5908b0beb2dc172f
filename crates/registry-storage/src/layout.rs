//! Where every object lives: the `registry:2` key layout, in one place.

use object_store::path::Path;
use registry_core::{Digest, RepositoryName, Tag};

use crate::UploadId;

/// Key builder for the registry tree under a root prefix.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    base: String,
    /// Berth's own records, beside the registry tree.
    berth: String,
}

impl Layout {
    pub(crate) fn new(root: Path) -> Self {
        let root = root.as_ref();
        let prefix = if root.is_empty() {
            String::new()
        } else {
            format!("{root}/")
        };
        Layout {
            base: format!("{prefix}docker/registry/v2"),
            berth: format!("{prefix}berth"),
        }
    }

    /// Where the numbered states of the read-only lease live.
    pub(crate) fn lease_states(&self) -> Path {
        Path::from(format!("{}/maintenance/lease", self.berth))
    }

    /// One state of the lease, zero-padded so keys sort by version.
    pub(crate) fn lease_state(&self, version: u64) -> Path {
        Path::from(format!(
            "{}/maintenance/lease/{version:020}.json",
            self.berth
        ))
    }

    /// Where the replicas serving the store announce themselves.
    pub(crate) fn replicas(&self) -> Path {
        Path::from(format!("{}/replicas", self.berth))
    }

    pub(crate) fn replica(&self, id: &str) -> Path {
        Path::from(format!("{}/replicas/{id}.json", self.berth))
    }

    pub(crate) fn trash(&self) -> Path {
        Path::from(format!("{}/trash", self.berth))
    }

    /// Written to read the store's clock.
    pub(crate) fn clock(&self) -> Path {
        Path::from(format!("{}/gc/clock", self.berth))
    }

    pub(crate) fn gc_report(&self, name: &str) -> Path {
        Path::from(format!("{}/{name}.json", self.gc_reports()))
    }

    pub(crate) fn gc_reports(&self) -> Path {
        Path::from(format!("{}/gc/reports", self.berth))
    }

    fn key(&self, tail: std::fmt::Arguments<'_>) -> Path {
        Path::from(format!("{}/{tail}", self.base))
    }

    pub(crate) fn root(&self) -> Path {
        Path::from(self.base.as_str())
    }

    pub(crate) fn blob_data(&self, digest: &Digest) -> Path {
        let (algorithm, hex) = (digest.algorithm(), digest.hex());
        self.key(format_args!("blobs/{algorithm}/{}/{hex}/data", &hex[..2]))
    }

    pub(crate) fn blobs(&self) -> Path {
        self.key(format_args!("blobs"))
    }

    pub(crate) fn repositories(&self) -> Path {
        self.key(format_args!("repositories"))
    }

    pub(crate) fn repository(&self, name: &RepositoryName) -> Path {
        self.key(format_args!("repositories/{name}"))
    }

    /// What belongs to one repository and nothing nested under its name:
    /// its `_layers`, `_manifests`, `_uploads` and `_referrers`.
    pub(crate) fn repository_own_directories(&self, name: &RepositoryName) -> [Path; 4] {
        ["_layers", "_manifests", "_uploads", "_referrers"]
            .map(|own| self.key(format_args!("repositories/{name}/{own}")))
    }

    pub(crate) fn layer_link(&self, name: &RepositoryName, digest: &Digest) -> Path {
        let (algorithm, hex) = (digest.algorithm(), digest.hex());
        self.key(format_args!(
            "repositories/{name}/_layers/{algorithm}/{hex}/link"
        ))
    }

    pub(crate) fn revision_link(&self, name: &RepositoryName, digest: &Digest) -> Path {
        let (algorithm, hex) = (digest.algorithm(), digest.hex());
        self.key(format_args!(
            "repositories/{name}/_manifests/revisions/{algorithm}/{hex}/link"
        ))
    }

    pub(crate) fn tags(&self, name: &RepositoryName) -> Path {
        self.key(format_args!("repositories/{name}/_manifests/tags"))
    }

    pub(crate) fn tag(&self, name: &RepositoryName, tag: &Tag) -> Path {
        self.key(format_args!("repositories/{name}/_manifests/tags/{tag}"))
    }

    pub(crate) fn tag_current(&self, name: &RepositoryName, tag: &Tag) -> Path {
        self.key(format_args!(
            "repositories/{name}/_manifests/tags/{tag}/current/link"
        ))
    }

    pub(crate) fn tag_index_entry(
        &self,
        name: &RepositoryName,
        tag: &Tag,
        digest: &Digest,
    ) -> Path {
        let (algorithm, hex) = (digest.algorithm(), digest.hex());
        self.key(format_args!(
            "repositories/{name}/_manifests/tags/{tag}/index/{algorithm}/{hex}/link"
        ))
    }

    pub(crate) fn upload(&self, name: &RepositoryName, id: &impl std::fmt::Display) -> Path {
        self.key(format_args!("repositories/{name}/_uploads/{id}"))
    }

    pub(crate) fn upload_started_at(&self, name: &RepositoryName, id: &UploadId) -> Path {
        self.key(format_args!("repositories/{name}/_uploads/{id}/startedat"))
    }

    /// A chunk's key names its first byte's offset (zero-padded, so keys
    /// sort by offset) and a nonce, so two writers never share a key.
    pub(crate) fn upload_chunk(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        start: u64,
        nonce: &str,
    ) -> Path {
        self.key(format_args!(
            "repositories/{name}/_uploads/{id}/chunks/{start:020}.{nonce}"
        ))
    }

    /// The record that the chunk starting at `start` is the one written by
    /// its nonce: created only if absent, so of two writers racing for the
    /// same offset exactly one wins.
    pub(crate) fn upload_commit(&self, name: &RepositoryName, id: &UploadId, start: u64) -> Path {
        self.key(format_args!(
            "repositories/{name}/_uploads/{id}/commits/{start:020}"
        ))
    }

    /// The sha256 state after hashing the first `offset` bytes of an upload.
    pub(crate) fn upload_hash_state(
        &self,
        name: &RepositoryName,
        id: &UploadId,
        offset: u64,
    ) -> Path {
        self.key(format_args!(
            "repositories/{name}/_uploads/{id}/hashstates/sha256/{offset}"
        ))
    }

    /// Berth's referrers index: under `_referrers`, a directory Distribution
    /// neither lists nor collects.
    pub(crate) fn referrers(&self, name: &RepositoryName, subject: &Digest) -> Path {
        let (algorithm, hex) = (subject.algorithm(), subject.hex());
        self.key(format_args!(
            "repositories/{name}/_referrers/{algorithm}/{hex}"
        ))
    }

    pub(crate) fn referrer(
        &self,
        name: &RepositoryName,
        subject: &Digest,
        referrer: &Digest,
    ) -> Path {
        let (algorithm, hex) = (referrer.algorithm(), referrer.hex());
        let base = self.referrers(name, subject);
        Path::from(format!("{base}/{algorithm}/{hex}/descriptor.json"))
    }
}
