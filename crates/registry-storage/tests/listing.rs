//! Listing: the catalog walk yields repositories in lexical order from any
//! point (names where `-` and `.` sort between `a` and `a/b` included, and
//! directories that are not repositories left out), on a local store and
//! through `object_store`; and the pages after a tag list's first read the
//! list the first page made until this replica changes a tag.

use bytes::Bytes;
use registry_core::{Digest, RepositoryName, Tag};
use registry_storage::Store;

const REPOSITORIES: &[&str] = &[
    "a", "a-b", "a.b", "a/b", "a/b/c", "a/b-c", "a/b.c", "a__b", "a0", "ab", "b", "b/a", "c/d/e",
    "z",
];

async fn tag(store: &Store, repository: &str, tag: &str) {
    let name: RepositoryName = repository.parse().expect("name");
    let manifest = format!(r#"{{"schemaVersion":2,"repository":"{repository}","tag":"{tag}"}}"#);
    let digest = Digest::sha256_of(manifest.as_bytes());
    let tag: Tag = tag.parse().expect("tag");
    store
        .put_manifest(&name, &digest, Bytes::from(manifest), Some(&tag), None)
        .await
        .expect("manifest");
}

/// A store with [`REPOSITORIES`], and directories that hold no
/// repository (an upload only, an empty parent).
async fn populated(store: &Store) {
    for repository in REPOSITORIES {
        tag(store, repository, "v1").await;
    }
    let uploads_only: RepositoryName = "a/uploads-only".parse().expect("name");
    store.create_upload(&uploads_only).await.expect("upload");
}

async fn names(store: &Store, after: Option<&str>, batch: usize) -> Vec<String> {
    let mut walk = store.walk_repositories(after);
    let mut found = Vec::new();
    loop {
        let next = walk.next_batch(batch).await.expect("walk");
        if next.is_empty() {
            return found;
        }
        assert!(next.len() <= batch);
        found.extend(next.iter().map(ToString::to_string));
    }
}

async fn walks_in_lexical_order(store: &Store) {
    populated(store).await;
    let mut expected: Vec<String> = REPOSITORIES.iter().map(|name| (*name).to_owned()).collect();
    expected.sort();
    assert_eq!(names(store, None, usize::MAX).await, expected);
    assert_eq!(names(store, None, 1).await, expected, "one at a time");
    for (index, last) in expected.iter().enumerate() {
        assert_eq!(
            names(store, Some(last), 3).await,
            expected[index + 1..],
            "after {last}"
        );
    }
    for between in ["", "a/", "a/b/", "a-", "a/a", "a/z", "b0", "c", "zz", "~"] {
        let after: Vec<String> = expected
            .iter()
            .filter(|name| name.as_str() > between)
            .cloned()
            .collect();
        assert_eq!(
            names(store, Some(between), 2).await,
            after,
            "after {between:?}"
        );
    }
    assert_eq!(
        store.repositories().await.expect("all"),
        expected
            .iter()
            .map(|name| name.parse().expect("name"))
            .collect::<Vec<RepositoryName>>()
    );
}

#[tokio::test]
async fn the_catalog_walks_in_lexical_order_on_a_local_store() {
    let directory = tempfile::tempdir().expect("directory");
    let store = Store::open(directory.path().to_str().expect("UTF-8")).expect("store");
    walks_in_lexical_order(&store).await;
}

#[tokio::test]
async fn the_catalog_walks_in_lexical_order_through_object_store() {
    walks_in_lexical_order(&Store::in_memory()).await;
}

fn listed(tags: &[Tag]) -> Vec<&str> {
    tags.iter().map(Tag::as_str).collect()
}

#[tokio::test]
async fn pages_after_the_first_read_the_first_pages_list_until_a_tag_changes_here() {
    let directory = tempfile::tempdir().expect("directory");
    let path = directory.path().to_str().expect("UTF-8");
    let (here, other_replica) = (
        Store::open(path).expect("store"),
        Store::open(path).expect("store"),
    );
    let name: RepositoryName = "team/app".parse().expect("name");
    tag(&here, "team/app", "v1").await;
    let first = here
        .tag_list(&name, false)
        .await
        .expect("list")
        .expect("exists");
    assert_eq!(listed(&first), ["v1"]);

    tag(&other_replica, "team/app", "v2").await;
    let continuing = here
        .tag_list(&name, true)
        .await
        .expect("list")
        .expect("exists");
    assert_eq!(
        listed(&continuing),
        ["v1"],
        "a walk sees the list its first page made"
    );
    let fresh = here
        .tag_list(&name, false)
        .await
        .expect("list")
        .expect("exists");
    assert_eq!(listed(&fresh), ["v1", "v2"], "a first page lists afresh");

    let v1: Tag = "v1".parse().expect("tag");
    assert!(here.delete_tag(&name, &v1).await.expect("delete"));
    let continuing = here
        .tag_list(&name, true)
        .await
        .expect("list")
        .expect("exists");
    assert_eq!(
        listed(&continuing),
        ["v2"],
        "this replica's own change shows at once"
    );
    tag(&here, "team/app", "v3").await;
    let continuing = here
        .tag_list(&name, true)
        .await
        .expect("list")
        .expect("exists");
    assert_eq!(listed(&continuing), ["v2", "v3"]);

    let unknown: RepositoryName = "team/none".parse().expect("name");
    assert!(here.tag_list(&unknown, true).await.expect("list").is_none());
}
