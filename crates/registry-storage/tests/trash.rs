//! The trash of a collection: once halted, nothing more is taken out of
//! the registry, even by renames a dropped sweep had already handed to
//! threads (the registry becomes writable right after).

use std::time::Duration;

use registry_core::Digest;
use registry_storage::Store;

/// Blobs written as files, many enough that renaming them all takes far
/// longer than the sweep is given.
const BLOBS: usize = 20_000;

fn write_blobs(root: &std::path::Path) {
    for index in 0..BLOBS {
        let digest = Digest::sha256_of(index.to_string().as_bytes());
        let hex = digest.hex();
        let directory = root
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex);
        std::fs::create_dir_all(&directory).expect("blob directory");
        std::fs::write(directory.join("data"), index.to_string()).expect("blob data");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_taken_out_once_the_trash_is_halted() {
    let root = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(root.path().to_str().expect("UTF-8 path")).expect("store");
    let setup = root.path().to_owned();
    tokio::task::spawn_blocking(move || write_blobs(&setup))
        .await
        .expect("written");
    let paths = store
        .scan_blobs()
        .await
        .expect("listed")
        .into_iter()
        .map(|blob| blob.listed.path)
        .collect();
    let trash = store.trash();

    let sweep = store.retire_objects(&trash, paths);
    let dropped = tokio::time::timeout(Duration::from_millis(5), sweep).await;
    assert!(dropped.is_err(), "the sweep was still running when dropped");
    trash.halt().await;

    let left = store.scan_blobs().await.expect("listed").len();
    assert!(left > 0, "the sweep was stopped before it took everything");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        store.scan_blobs().await.expect("listed").len(),
        left,
        "blobs were taken out after the trash was halted"
    );
}
