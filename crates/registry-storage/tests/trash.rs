//! The trash of a collection: once halted, nothing more is taken out of
//! the registry, even by renames a dropped sweep had already handed to
//! threads (the registry becomes writable right after).

use std::time::{Duration, Instant};

use object_store::path::Path;
use registry_core::Digest;
use registry_storage::Store;

/// Blobs written as files, many enough that renaming them all takes far
/// longer than the sweep is given.
const BLOBS: usize = 20_000;

/// A store of [`BLOBS`] blobs, and the paths of their data.
async fn store_of_blobs() -> (tempfile::TempDir, Store, Vec<Path>) {
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
    (root, store, paths)
}

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
    let (_root, store, paths) = store_of_blobs().await;
    let trash = store.trash(Instant::now() + Duration::from_secs(600));

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

#[tokio::test]
async fn nothing_is_taken_out_once_the_window_may_have_closed() {
    let (_root, store, paths) = store_of_blobs().await;
    // Secured until a moment that has passed by the time any rename
    // thread looks, as for a collector frozen past its lease.
    let trash = store.trash(Instant::now());

    let refused = store.retire_objects(&trash, paths).await;
    assert!(refused.is_err(), "the sweep says it stopped");
    assert_eq!(store.scan_blobs().await.expect("listed").len(), BLOBS);
    assert!(trash.ensure_secured().is_err());
    trash.secure_until(Instant::now() + Duration::from_secs(600));
    assert!(trash.ensure_secured().is_ok(), "a renewal secures it again");
}

/// The blob directories below `root` whose name is a retired object's.
fn retired_directories(root: &std::path::Path) -> usize {
    let blobs = root.join("docker/registry/v2/blobs/sha256");
    std::fs::read_dir(blobs)
        .expect("blob prefixes")
        .flatten()
        .flat_map(|prefix| std::fs::read_dir(prefix.path()).expect("a prefix"))
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().contains(".trash-"))
        .count()
}

#[tokio::test]
async fn retired_blobs_are_gone_at_once_and_destroyed_with_the_trash() {
    let root = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(root.path().to_str().expect("UTF-8 path")).expect("store");
    let kept = Digest::sha256_of(b"kept");
    let retired = Digest::sha256_of(b"retired");
    for digest in [&kept, &retired] {
        let hex = digest.hex();
        let directory = root
            .path()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex);
        std::fs::create_dir_all(&directory).expect("blob directory");
        std::fs::write(directory.join("data"), "bytes").expect("blob data");
    }
    let path = store
        .scan_blobs()
        .await
        .expect("listed")
        .into_iter()
        .find(|blob| blob.digest == retired)
        .expect("the blob to retire")
        .listed
        .path;
    let trash = store.trash(Instant::now() + Duration::from_secs(600));
    store
        .retire_objects(&trash, vec![path])
        .await
        .expect("retired");

    assert_eq!(store.blob_size(&retired).await.expect("read"), None);
    assert_eq!(store.blob_size(&kept).await.expect("read"), Some(5));
    let listed: Vec<Digest> = store
        .scan_blobs()
        .await
        .expect("listed")
        .into_iter()
        .map(|blob| blob.digest)
        .collect();
    assert_eq!(listed, vec![kept.clone()], "a retired blob is never listed");
    assert_eq!(retired_directories(root.path()), 1, "kept until emptied");

    store.empty_trash(trash).await.expect("emptied");
    assert_eq!(retired_directories(root.path()), 0);
    assert_eq!(store.blob_size(&kept).await.expect("read"), Some(5));
    let trash_left = std::fs::read_dir(root.path().join("berth/trash"))
        .expect("the trash directory")
        .count();
    assert_eq!(trash_left, 0, "the trash itself is destroyed");
}

#[tokio::test]
async fn a_damaged_trash_list_destroys_nothing_that_collection_did_not_retire() {
    let root = tempfile::tempdir().expect("temporary directory");
    let store = Store::open(root.path().to_str().expect("UTF-8 path")).expect("store");
    let live = Digest::sha256_of(b"live");
    let hex = live.hex();
    let relative = format!("docker/registry/v2/blobs/sha256/{}/{hex}", &hex[..2]);
    std::fs::create_dir_all(root.path().join(&relative)).expect("blob directory");
    std::fs::write(root.path().join(&relative).join("data"), "bytes").expect("blob data");
    let outside = tempfile::tempdir().expect("a directory outside the store");
    let killed = "0123456789abcdef0123456789abcdef";
    let leftover = root.path().join("berth/trash").join(killed);
    std::fs::create_dir_all(&leftover).expect("a killed collection's trash");
    // Named as that collection's would be, but outside the store.
    let victim = outside.path().join(format!("victim.trash-{killed}"));
    std::fs::create_dir_all(&victim).expect("a directory outside the store");
    let outside_name = outside.path().file_name().expect("a name");
    let damaged = [
        relative.clone(),
        format!("{relative}.trash-someone-else"),
        victim.display().to_string(),
        format!(
            "../{}/victim.trash-{killed}",
            outside_name.to_string_lossy()
        ),
    ];
    std::fs::write(leftover.join("names.list"), damaged.join("\n")).expect("list");

    let trash = store.trash(Instant::now() + Duration::from_secs(600));
    store.adopt_leftover_trash(&trash).await.expect("adopted");
    store.empty_trash(trash).await.expect("emptied");

    assert_eq!(store.blob_size(&live).await.expect("read"), Some(5));
    assert!(victim.exists(), "nothing outside the store is destroyed");
    assert!(!leftover.exists(), "the killed collection's trash is gone");
}
