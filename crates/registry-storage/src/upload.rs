//! The upload path: blob upload sessions, kept entirely in the store so
//! that a chunked upload may hop between replicas, and the machinery that
//! carries a push's bytes (pooled blocks, hashing beside the copy, direct
//! writes on a filesystem, multipart writes on an object store).
//!
//! A session is a directory `_uploads/<id>/` holding `startedat` (RFC 3339,
//! as Distribution writes it), the received bytes under `chunks/`, and
//! `hashstates/sha256/<offset>`: the sha256 state after the first `offset`
//! bytes, so the next chunk and the final check continue hashing without
//! reading earlier chunks again. A missing state (a crash between two
//! writes) is recovered by hashing the bytes once more.
//!
//! On an object store each chunk is one object, named by its start offset
//! and a nonce, so two writers never share a key. Once written, a chunk is
//! committed by creating `commits/<start>` (holding its nonce) only if
//! absent: of two writers racing for one offset (a client's retry landing
//! on another replica while the original is still running), one commits
//! and the other gets 409 and removes its chunk, and the session carries
//! on. Chunks without a commit are ignored. Closing concatenates the
//! committed chunks: on S3 by copying them on the store's side into the
//! parts of one multipart upload (see `part_copies`), so each byte crosses
//! the registry once. On a local filesystem the bytes go to one file that
//! each chunk is appended to under a lock (see `local_append`), and
//! closing is a rename.

mod api;
pub(crate) mod block;
mod direct_write;
mod hash_state;
pub(crate) mod hashing;
mod id;
pub(crate) mod local_append;
mod part_copies;
pub(crate) mod pending_hash;
mod session;
pub(crate) mod writer;

pub use api::UploadStatus;
pub use id::UploadId;
