//! Where every object lives: the `registry:2` key layout, in one place.

use std::fmt::Arguments;

use object_store::path::{Path, PathPart};
use registry_core::{Digest, RepositoryName, Tag};

use crate::UploadId;

/// Key builder for the registry tree under a root prefix. The root is used
/// as it is: a prefix is stored as its owner wrote it, never encoded again.
#[derive(Clone, Debug)]
pub(crate) struct Layout {
    base: Path,
    /// Berth's own records, beside the registry tree.
    berth: Path,
}

/// `dir` followed by the segments of `tail`, each encoded as object_store
/// encodes one segment (names, tags and digests never need it).
fn join(dir: &Path, tail: Arguments<'_>) -> Path {
    let tail = tail.to_string();
    dir.parts()
        .chain(tail.split('/').map(PathPart::from))
        .collect()
}

impl Layout {
    pub(crate) fn new(root: Path) -> Self {
        Layout {
            base: join(&root, format_args!("docker/registry/v2")),
            berth: join(&root, format_args!("berth")),
        }
    }

    /// Where the numbered states of the read-only lease live.
    pub(crate) fn lease_states(&self) -> Path {
        join(&self.berth, format_args!("maintenance/lease"))
    }

    /// One state of the lease, zero-padded so keys sort by version.
    pub(crate) fn lease_state(&self, version: u64) -> Path {
        join(
            &self.berth,
            format_args!("maintenance/lease/{version:020}.json"),
        )
    }

    /// Where the replicas serving the store announce themselves.
    pub(crate) fn replicas(&self) -> Path {
        join(&self.berth, format_args!("replicas"))
    }

    pub(crate) fn replica(&self, id: &str) -> Path {
        join(&self.berth, format_args!("replicas/{id}.json"))
    }

    pub(crate) fn trash(&self) -> Path {
        join(&self.berth, format_args!("trash"))
    }

    /// Written to read the store's clock.
    pub(crate) fn clock(&self) -> Path {
        join(&self.berth, format_args!("gc/clock"))
    }

    pub(crate) fn gc_report(&self, name: &str) -> Path {
        join(&self.gc_reports(), format_args!("{name}.json"))
    }

    pub(crate) fn gc_reports(&self) -> Path {
        join(&self.berth, format_args!("gc/reports"))
    }

    fn key(&self, tail: Arguments<'_>) -> Path {
        join(&self.base, tail)
    }

    pub(crate) fn root(&self) -> Path {
        self.base.clone()
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
        join(&base, format_args!("{algorithm}/{hex}/descriptor.json"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:4b825dc642cb6eb9a060e54bf8d69288fbee4904d69e2f8e4c1d9a1c0a1f7a2c";

    #[test]
    fn the_root_is_used_as_written_and_never_encoded_again() {
        let root = Path::parse("team x/100%/a+b").expect("root");
        let layout = Layout::new(root);
        let digest: Digest = DIGEST.parse().expect("digest");
        assert_eq!(
            layout.blob_data(&digest).as_ref(),
            format!(
                "team x/100%/a+b/docker/registry/v2/blobs/sha256/4b/{}/data",
                digest.hex()
            )
        );
        assert_eq!(
            layout.gc_report("2026-12-02").as_ref(),
            "team x/100%/a+b/berth/gc/reports/2026-12-02.json"
        );
        let name: RepositoryName = "library/alpine".parse().expect("name");
        assert_eq!(
            layout.referrer(&name, &digest, &digest).as_ref(),
            format!(
                "team x/100%/a+b/docker/registry/v2/repositories/library/alpine/_referrers/sha256/{hex}/sha256/{hex}/descriptor.json",
                hex = digest.hex()
            )
        );
    }

    #[test]
    fn without_a_root_keys_start_at_the_registry_tree() {
        let layout = Layout::new(Path::default());
        assert_eq!(layout.root().as_ref(), "docker/registry/v2");
        assert_eq!(layout.clock().as_ref(), "berth/gc/clock");
    }
}
