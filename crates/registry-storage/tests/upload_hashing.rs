//! Chunked uploads whose hashing runs on after each chunk is answered: the
//! next chunk continues the running hash on the same store, resumes from a
//! saved state or from the stored bytes elsewhere, and a chunk that fails
//! midway leaves both the bytes and the hash as they were.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use rand::RngCore;
use registry_core::{Digest, RepositoryName};
use registry_storage::{ByteStream, Store, UploadError, UploadId};

fn random_bytes(length: usize) -> Vec<u8> {
    let mut bytes = vec![0; length];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

/// `bytes` as a body arriving in pieces of at most `piece` bytes.
fn body(bytes: &[u8], piece: usize) -> ByteStream {
    let pieces: Vec<std::io::Result<Bytes>> = bytes
        .chunks(piece)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    futures::stream::iter(pieces).boxed()
}

/// A body that delivers `bytes` and then breaks, like a client cut off.
fn broken_body(bytes: &[u8]) -> ByteStream {
    body(bytes, 64 << 10)
        .chain(futures::stream::once(async {
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "client went away",
            ))
        }))
        .boxed()
}

fn name() -> RepositoryName {
    "library/chunks".parse().expect("a valid name")
}

fn open(root: &Path) -> Store {
    Store::open(root.to_str().expect("a UTF-8 path")).expect("opening the store")
}

fn hash_states(root: &Path, id: &UploadId) -> PathBuf {
    root.join(format!(
        "docker/registry/v2/repositories/{}/_uploads/{id}/hashstates/sha256",
        name()
    ))
}

/// Waits until the hash state after `offset` bytes is saved.
async fn saved_state(root: &Path, id: &UploadId, offset: u64) {
    let path = hash_states(root, id).join(offset.to_string());
    for _ in 0..500 {
        if path.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no hash state saved at {}", path.display());
}

async fn stored(store: &Store, digest: &Digest) -> Vec<u8> {
    let read = store
        .read_blob(digest, None)
        .await
        .expect("reading the blob");
    let pieces: Vec<Bytes> = read.body.try_collect().await.expect("the blob's bytes");
    pieces.concat()
}

/// Appends `data[range]` and checks the answer.
async fn append(store: &Store, id: &UploadId, data: &[u8], range: std::ops::Range<usize>) {
    let appended = store
        .append_upload(
            &name(),
            id,
            Some(range.start as u64),
            body(&data[range.clone()], 300_001),
        )
        .await
        .expect("appending a chunk");
    assert_eq!(appended, range.start as u64..range.end as u64);
}

#[tokio::test]
async fn chunks_continue_a_running_hash_or_resume_from_the_store() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let root = directory.path();
    let data = random_bytes((10 << 20) + 4097);
    let id = open(root).create_upload(&name()).await.expect("a session");
    let cuts = [
        0,
        (3 << 20) + 17,
        (8 << 20) - 3,
        (8 << 20) - 2,
        9 << 20,
        data.len(),
    ];

    // Back to back on one store: the second chunk continues the first's hash.
    let first = open(root);
    append(&first, &id, &data, cuts[0]..cuts[1]).await;
    append(&first, &id, &data, cuts[1]..cuts[2]).await;
    // A store that never saw the upload resumes from the saved state,
    // which ends exactly where the chunk starts.
    saved_state(root, &id, cuts[2] as u64).await;
    append(&open(root), &id, &data, cuts[2]..cuts[3]).await;
    // With every saved state lost, the bytes are hashed again from disk.
    saved_state(root, &id, cuts[3] as u64).await;
    std::fs::remove_dir_all(hash_states(root, &id)).expect("removing the states");
    append(&open(root), &id, &data, cuts[3]..cuts[4]).await;
    let last = open(root);
    append(&last, &id, &data, cuts[4]..cuts[5]).await;

    let digest = Digest::sha256_of(&data);
    let size = last
        .complete_upload(&name(), &id, &digest, None)
        .await
        .expect("closing with the right digest");
    assert_eq!(size, data.len() as u64);
    assert!(stored(&last, &digest).await == data);
}

#[tokio::test]
async fn two_replicas_taking_turns_without_waiting_agree_on_the_digest() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let replicas = [open(directory.path()), open(directory.path())];
    let data = random_bytes((12 << 20) + 5);
    let id = replicas[0].create_upload(&name()).await.expect("a session");
    let step = (2 << 20) + 1001;
    for (turn, start) in (0..data.len()).step_by(step).enumerate() {
        let end = (start + step).min(data.len());
        append(&replicas[turn % 2], &id, &data, start..end).await;
    }
    let wrong = Digest::sha256_of(b"something else");
    let mismatch = replicas[1]
        .complete_upload(&name(), &id, &wrong, None)
        .await
        .expect_err("a wrong digest is refused");
    assert!(
        matches!(mismatch, UploadError::DigestMismatch { computed, .. } if computed == Digest::sha256_of(&data))
    );
}

#[tokio::test]
async fn a_chunk_cut_off_midway_leaves_the_upload_as_it_was() {
    let directory = tempfile::tempdir().expect("temporary directory");
    for store in [Store::in_memory(), open(directory.path())] {
        let data = random_bytes((6 << 20) + 333);
        let id = store.create_upload(&name()).await.expect("a session");
        let middle = (3 << 20) + 1;
        append(&store, &id, &data, 0..middle).await;
        // The cut-off chunk starts while the first one is still being hashed.
        let failed = store
            .append_upload(
                &name(),
                &id,
                Some(middle as u64),
                broken_body(&data[middle..middle + (2 << 20)]),
            )
            .await;
        assert!(failed.is_err(), "a broken body fails its chunk");
        let status = store
            .upload_status(&name(), &id)
            .await
            .expect("the session");
        assert_eq!(
            status.offset, middle as u64,
            "nothing of the broken chunk is kept"
        );
        append(&store, &id, &data, middle..data.len()).await;
        let digest = Digest::sha256_of(&data);
        store
            .complete_upload(&name(), &id, &digest, None)
            .await
            .expect("the digest covers exactly the kept bytes");
        assert!(stored(&store, &digest).await == data);
    }
}

#[tokio::test]
async fn settling_waits_for_every_answered_chunk_to_save_its_hash() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = open(directory.path());
    let data = random_bytes(8 << 20);
    let id = store.create_upload(&name()).await.expect("a session");
    append(&store, &id, &data, 0..data.len()).await;
    store.settle_uploads().await;
    assert!(
        hash_states(directory.path(), &id)
            .join(data.len().to_string())
            .exists(),
        "the state is saved once uploads are settled"
    );
}
