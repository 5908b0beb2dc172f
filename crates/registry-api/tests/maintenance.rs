//! The read-only lease through the admin gRPC port: writes refused with 503
//! while pulls work, on every replica of the store (and one restarted inside
//! the window), the lease ending by itself, only the holder renewing or
//! releasing, and the admin token; replicas that check the store only at
//! their interval when idle, and stop writing when they cannot check.

use std::time::Duration;

use registry_proto::maintenance::maintenance_client::MaintenanceClient;
use registry_proto::maintenance::{
    AcquireReadOnlyRequest, ReleaseReadOnlyRequest, RenewReadOnlyRequest, StatusRequest,
};
use test_support::{Fault, FaultProxy, Image, TestRegistry, eventually, push_image, start_moto};
use tonic::Code;

async fn admin(registry: &TestRegistry) -> MaintenanceClient<tonic::transport::Channel> {
    MaintenanceClient::connect(format!("http://{}", registry.admin_addr))
        .await
        .expect("admin port")
}

fn acquire(lease_id: &str, holder: &str, ttl_seconds: u64) -> AcquireReadOnlyRequest {
    AcquireReadOnlyRequest {
        lease_id: lease_id.to_owned(),
        holder: holder.to_owned(),
        ttl_seconds,
        reason: "garbage collection".to_owned(),
    }
}

/// A replica that checks the lease in the store every `interval`.
async fn replica_checking_every(storage: &str, interval: Duration) -> TestRegistry {
    let mut config = registry_api::Config::with_storage(storage);
    config.lease_check_interval = interval;
    TestRegistry::start_with(config).await
}

/// A replica on a `moto_server` bucket seen through a fault proxy,
/// checking the lease every `interval` and giving up on the store after
/// 2 s, once it takes writes; `None` where moto is missing outside CI.
async fn checking_replica_behind_a_proxy(
    bucket: &str,
    interval: Duration,
) -> Option<(test_support::ChildServer, FaultProxy, TestRegistry)> {
    let (moto, storage) = start_moto(bucket, "registry").await?;
    let proxy = FaultProxy::start(&moto.url).await;
    let mut config = registry_api::Config::with_storage(proxy.storage_url(&storage));
    config.lease_check_interval = interval;
    config.storage_timeout = Duration::from_secs(2);
    let registry = TestRegistry::start_with(config).await;
    eventually(
        "the replica accepting writes",
        Duration::from_secs(10),
        async || upload_start(&registry).await.status() == 202,
    )
    .await;
    Some((moto, proxy, registry))
}

/// Waits for the replica behind `proxy` to begin a lease check (each one
/// first announces the replica), and returns about when it did.
async fn a_lease_check_begins(proxy: &FaultProxy) -> tokio::time::Instant {
    let announcements = proxy.requests_matching("berth/replicas/");
    eventually("a lease check", Duration::from_secs(10), async || {
        proxy.requests_matching("berth/replicas/") > announcements
    })
    .await;
    tokio::time::Instant::now()
}

async fn upload_start(registry: &TestRegistry) -> reqwest::Response {
    test_support::start_upload(&reqwest::Client::new(), &registry.url, "r").await
}

#[tokio::test]
async fn a_lease_stops_writes_on_every_replica_and_keeps_pulls() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    // Told only `a`: `b` learns of the window at its next check.
    let (a, b) = (
        TestRegistry::start(storage).await,
        replica_checking_every(storage, Duration::from_secs(1)).await,
    );
    let image = Image::random(1, 100);
    push_image(&reqwest::Client::new(), &a.url, "r", "v1", &image).await;

    let lease = admin(&a)
        .await
        .acquire_read_only(acquire("lease-1", "gc-test", 60))
        .await
        .expect("acquire")
        .into_inner();
    assert_eq!(lease.holder, "gc-test");
    let refused = upload_start(&a).await;
    assert_eq!(refused.status(), 503);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("text")
        .parse()
        .expect("seconds");
    assert!((1..=61).contains(&retry_after), "{retry_after}");
    let body: serde_json::Value = refused.json().await.expect("error body");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("maintenance")
    );
    let base = reqwest::get(format!("{}/v2/", a.url)).await.expect("base");
    assert!(
        base.headers()["berth-mode"]
            .to_str()
            .expect("text")
            .starts_with("read-only; until=")
    );

    eventually(
        "the other replica refusing writes",
        Duration::from_secs(10),
        async || upload_start(&b).await.status() == 503,
    )
    .await;
    let pulled = reqwest::get(format!("{}/v2/r/manifests/v1", b.url))
        .await
        .expect("pull");
    assert_eq!(pulled.status(), 200, "pulls work during the window");
    let deleted = reqwest::Client::new()
        .delete(format!("{}/v2/r/manifests/v1", b.url))
        .send()
        .await
        .expect("delete");
    assert_eq!(deleted.status(), 503);

    let c = replica_checking_every(storage, Duration::from_secs(1)).await;
    assert_eq!(
        upload_start(&c).await.status(),
        503,
        "a replica started inside the window is read-only"
    );

    let status = admin(&b)
        .await
        .status(StatusRequest {})
        .await
        .expect("status")
        .into_inner();
    assert!(status.read_only);
    assert_eq!(status.lease.expect("lease").lease_id, "lease-1");

    let stranger = admin(&b)
        .await
        .release_read_only(ReleaseReadOnlyRequest {
            lease_id: "other".into(),
            holder: "intruder".into(),
        })
        .await
        .expect_err("only the holder releases");
    assert_eq!(stranger.code(), Code::PermissionDenied);
    let other = admin(&b)
        .await
        .acquire_read_only(acquire("lease-2", "other-gc", 60))
        .await
        .expect_err("one window at a time");
    assert_eq!(other.code(), Code::FailedPrecondition);

    admin(&b)
        .await
        .release_read_only(ReleaseReadOnlyRequest {
            lease_id: "lease-1".into(),
            holder: "gc-test".into(),
        })
        .await
        .expect("release");
    assert_eq!(upload_start(&b).await.status(), 202);
    eventually(
        "every replica writable again",
        Duration::from_secs(10),
        async || upload_start(&a).await.status() == 202 && upload_start(&c).await.status() == 202,
    )
    .await;
}

#[tokio::test]
async fn an_unrenewed_lease_ends_by_itself_and_renewal_extends_it() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    let mut client = admin(&registry).await;
    client
        .acquire_read_only(acquire("short", "gc", 2))
        .await
        .expect("acquire");
    assert_eq!(upload_start(&registry).await.status(), 503);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let renewed = client
        .renew_read_only(RenewReadOnlyRequest {
            lease_id: "short".into(),
            holder: "gc".into(),
            ttl_seconds: 2,
        })
        .await
        .expect("renew")
        .into_inner();
    assert!(renewed.expires_at_unix_ms > registry_storage::now_unix_ms() + 1500);
    let wrong = client
        .renew_read_only(RenewReadOnlyRequest {
            lease_id: "short".into(),
            holder: "someone".into(),
            ttl_seconds: 2,
        })
        .await
        .expect_err("only the holder renews");
    assert_eq!(wrong.code(), Code::PermissionDenied);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        upload_start(&registry).await.status(),
        503,
        "still inside the renewed lease"
    );
    eventually(
        "the lease running out",
        Duration::from_secs(10),
        async || upload_start(&registry).await.status() == 202,
    )
    .await;
    let late = client
        .renew_read_only(RenewReadOnlyRequest {
            lease_id: "short".into(),
            holder: "gc".into(),
            ttl_seconds: 2,
        })
        .await
        .expect_err("an expired lease is not renewed");
    assert_eq!(late.code(), Code::FailedPrecondition);
}

#[tokio::test]
async fn the_admin_token_guards_the_admin_port() {
    let mut config = registry_api::Config::with_storage("memory://");
    config.admin_token = Some("s3cret-token".into());
    let registry = TestRegistry::start_with(config).await;
    let refused = admin(&registry)
        .await
        .status(StatusRequest {})
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), Code::Unauthenticated);
    let mut request = tonic::Request::new(StatusRequest {});
    request.metadata_mut().insert(
        "authorization",
        "Bearer s3cret-token".parse().expect("metadata"),
    );
    let status = admin(&registry)
        .await
        .status(request)
        .await
        .expect("with the token")
        .into_inner();
    assert!(!status.read_only);
}

/// A read of the lease that the store answers slowly must not undo a lease
/// granted while it was under way (it used to reopen writes for a second).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_read_of_the_lease_never_reopens_writes() {
    let Some((moto, storage)) = start_moto("lease-race", "registry").await else {
        return;
    };
    let proxy = FaultProxy::start(&moto.url).await;
    let registry =
        replica_checking_every(&proxy.storage_url(&storage), Duration::from_secs(1)).await;
    eventually(
        "the replica accepting writes",
        Duration::from_secs(10),
        async || upload_start(&registry).await.status() == 202,
    )
    .await;
    proxy.set_faults(vec![Fault::slow_reads(
        "maintenance/lease",
        Duration::from_millis(400),
    )]);
    let mut client = admin(&registry).await;
    for round in 0..8u64 {
        // A different moment of the replica's one-second reading cycle each round.
        tokio::time::sleep(Duration::from_millis(137 * round % 1000)).await;
        let lease_id = format!("lease-{round}");
        client
            .acquire_read_only(acquire(&lease_id, "gc-test", 30))
            .await
            .expect("acquire");
        let watched = std::time::Instant::now();
        while watched.elapsed() < Duration::from_millis(1300) {
            let status = upload_start(&registry).await.status();
            assert_eq!(
                status,
                503,
                "round {round}: a write was accepted {:?} into the window",
                watched.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        client
            .release_read_only(ReleaseReadOnlyRequest {
                lease_id,
                holder: "gc-test".into(),
            })
            .await
            .expect("release");
        assert_eq!(
            upload_start(&registry).await.status(),
            202,
            "round {round}: released"
        );
    }
}

/// An idle replica announces itself and reads the lease once per check
/// interval (ten seconds by default), not every second; a notice over the
/// admin port takes effect at once all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_replica_reads_the_store_only_at_its_check_interval() {
    let Some((moto, storage)) = start_moto("idle-replica", "registry").await else {
        return;
    };
    let proxy = FaultProxy::start(&moto.url).await;
    let registry = TestRegistry::start(&proxy.storage_url(&storage)).await;
    eventually(
        "the replica accepting writes",
        Duration::from_secs(10),
        async || upload_start(&registry).await.status() == 202,
    )
    .await;
    let (lease_reads, announcements) = (
        proxy.requests_matching("maintenance/lease"),
        proxy.requests_matching("berth/replicas"),
    );
    assert!(
        lease_reads >= 1 && announcements >= 1,
        "checked once at start: {lease_reads} lease reads, {announcements} announcements"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        (
            proxy.requests_matching("maintenance/lease"),
            proxy.requests_matching("berth/replicas")
        ),
        (lease_reads, announcements),
        "an idle replica left the store alone for 4 s"
    );
    let mut client = admin(&registry).await;
    let lease = client
        .acquire_read_only(acquire("notice", "gc-test", 30))
        .await
        .expect("acquire")
        .into_inner();
    assert!(!lease.replica_id.is_empty(), "the answer names the replica");
    assert_eq!(upload_start(&registry).await.status(), 503, "told: at once");
    client
        .release_read_only(ReleaseReadOnlyRequest {
            lease_id: "notice".into(),
            holder: "gc-test".into(),
        })
        .await
        .expect("release");
    assert_eq!(upload_start(&registry).await.status(), 202);

    let checking =
        replica_checking_every(&proxy.storage_url(&storage), Duration::from_secs(1)).await;
    let before = proxy.requests_matching("maintenance/lease");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(
        proxy.requests_matching("maintenance/lease") >= before + 3,
        "a one-second interval checks every second (the count above is not blind)"
    );
    drop(checking);
}

/// A replica whose lease checks fail for two intervals refuses writes (a
/// window may have opened that it was not told of); once the store answers
/// again, the next write asks for a check, waits for it and is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_cannot_check_the_lease_stops_writing() {
    let Some((_moto, proxy, registry)) =
        checking_replica_behind_a_proxy("unchecked-replica", Duration::from_secs(1)).await
    else {
        return;
    };
    proxy.set_faults(vec![Fault::failing("berth/")]);
    let cut_off = std::time::Instant::now();
    eventually(
        "writes refused once the checks have failed for two intervals",
        Duration::from_secs(10),
        async || upload_start(&registry).await.status() == 503,
    )
    .await;
    assert!(
        cut_off.elapsed() >= Duration::from_millis(900),
        "one failed check is not enough to stop writes ({:?})",
        cut_off.elapsed()
    );
    let refused = upload_start(&registry).await;
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: serde_json::Value = refused.json().await.expect("error body");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .expect("message")
            .contains("maintenance state"),
        "{body}"
    );
    let pulled = reqwest::get(format!("{}/v2/", registry.url))
        .await
        .expect("base");
    assert_eq!(pulled.status(), 200, "reads go on");
    proxy.set_faults(Vec::new());
    // The check under way gives up within the storage timeout; the next
    // write asks for a check and waits for it instead of being refused.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        upload_start(&registry).await.status(),
        202,
        "the first write after the store is back is served"
    );
}

/// A store answering again before the view goes stale renews it in time:
/// a failed check is retried within a second, not at the next interval
/// (which falls when the view goes stale), so a write in flight across
/// the outage goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_back_before_the_view_goes_stale_keeps_writes_going() {
    let interval = Duration::from_secs(4);
    let Some((_moto, proxy, registry)) =
        checking_replica_behind_a_proxy("renewed-view", interval).await
    else {
        return;
    };
    let (_url, trickle) = trickling_upload(&registry).await;
    // Start just after a check, so the next falls inside the outage.
    let checked = a_lease_check_begins(&proxy).await;
    tokio::time::sleep_until(checked + Duration::from_secs(3)).await;
    proxy.set_faults(vec![Fault::failing("berth/")]);
    // Longer than the storage timeout: the check at 4 s gives up.
    tokio::time::sleep_until(checked + Duration::from_millis(6500)).await;
    proxy.set_faults(Vec::new());
    // The check before the outage vouched for 8 s.
    tokio::time::sleep_until(checked + interval * 2 + Duration::from_secs(1)).await;
    assert!(
        !trickle.is_finished(),
        "the upload was cut off though the store answered before the view went stale: {:?}",
        trickle.await
    );
    assert_eq!(upload_start(&registry).await.status(), 202);
    trickle.abort();
}

/// An upload still arriving when the replica's view of the lease goes
/// stale (its checks failing or hanging for two intervals) is cut off at
/// once, even while a check still waits on the store: gc-worker no longer
/// counts the replica as one that may write.
async fn an_upload_is_cut_off_when_the_view_goes_stale(bucket: &str, fault: Fault) {
    let interval = Duration::from_secs(1);
    let Some((_moto, proxy, registry)) = checking_replica_behind_a_proxy(bucket, interval).await
    else {
        return;
    };
    let (_url, trickle) = trickling_upload(&registry).await;
    a_lease_check_begins(&proxy).await;
    proxy.set_faults(vec![fault]);
    let faulted = std::time::Instant::now();
    let cut = tokio::time::timeout(Duration::from_secs(15), trickle)
        .await
        .expect("cut off within a few seconds of the view going stale")
        .expect("task")
        .expect("answered");
    assert_eq!(cut.status(), 503);
    // The check just seen vouched for two intervals; the next one hangs
    // or fails for the storage timeout (2 s) and more.
    assert!(
        faulted.elapsed() < interval * 2 + Duration::from_millis(700),
        "cut off {:?} after the store stopped answering",
        faulted.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_still_arriving_when_the_view_goes_stale_is_cut_off() {
    an_upload_is_cut_off_when_the_view_goes_stale("stale-view-cut", Fault::failing("berth/")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_is_cut_off_on_time_while_a_check_hangs() {
    an_upload_is_cut_off_when_the_view_goes_stale("hung-check-cut", Fault::stalled("berth/")).await;
}

/// A replica started inside a window reads the lease once, and is not
/// told of its renewals: when its copy runs out while the holder keeps
/// renewing through another replica, it checks the store before taking a
/// write, rather than reopening in the middle of the window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_of_the_lease_running_out_does_not_reopen_writes_while_it_is_renewed() {
    let store = tempfile::tempdir().expect("temporary directory");
    let storage = store.path().to_str().expect("utf-8");
    let told = TestRegistry::start(storage).await;
    let mut client = admin(&told).await;
    client
        .acquire_read_only(acquire("renewed", "gc-test", 2))
        .await
        .expect("acquire");
    let untold = TestRegistry::start(storage).await;
    let watched = std::time::Instant::now();
    let mut last_renewal = watched;
    while watched.elapsed() < Duration::from_secs(6) {
        if last_renewal.elapsed() >= Duration::from_millis(500) {
            client
                .renew_read_only(RenewReadOnlyRequest {
                    lease_id: "renewed".into(),
                    holder: "gc-test".into(),
                    ttl_seconds: 2,
                })
                .await
                .expect("renew");
            last_renewal = std::time::Instant::now();
        }
        let status = upload_start(&untold).await.status();
        assert_eq!(
            status,
            503,
            "a write was taken {:?} into a window still being renewed",
            watched.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .release_read_only(ReleaseReadOnlyRequest {
            lease_id: "renewed".into(),
            holder: "gc-test".into(),
        })
        .await
        .expect("release");
    eventually(
        "the untold replica writable once a check finds the window over",
        Duration::from_secs(5),
        async || upload_start(&untold).await.status() == 202,
    )
    .await;
}

/// A chunk that arrives a KiB every tenth of a second and never ends: fast
/// enough for the minimum body rate, slow enough to outlast any wait.
fn endless_trickle() -> reqwest::Body {
    let piece = bytes::Bytes::from(vec![7u8; 1024]);
    let pieces = futures::StreamExt::then(futures::stream::repeat(piece), |piece| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        Ok::<_, std::io::Error>(piece)
    });
    reqwest::Body::wrap_stream(pieces)
}

/// Opens an upload session and starts a `PATCH` of an endless trickle on
/// it; returns the session's URL and the request's answer to come.
async fn trickling_upload(
    registry: &TestRegistry,
) -> (
    String,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
) {
    let started = upload_start(registry).await;
    let location = started.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let url = format!("{}{location}", registry.url);
    let trickle = tokio::spawn({
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .patch(&url)
                .header("content-range", "0-999999")
                .header("content-length", "1000000")
                .body(endless_trickle())
                .send()
                .await
        }
    });
    (url, trickle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upload_is_cut_off_rather_than_holding_off_the_window() {
    let store = tempfile::tempdir().expect("temporary directory");
    let registry = TestRegistry::start(store.path().to_str().expect("utf-8")).await;
    let client = reqwest::Client::new();
    let (url, trickle) = trickling_upload(&registry).await;
    tokio::time::sleep(Duration::from_secs(1)).await;

    let began = std::time::Instant::now();
    let lease = admin(&registry)
        .await
        .acquire_read_only(acquire("cut", "gc-test", 60))
        .await
        .expect("the window begins despite the trickle");
    assert!(
        began.elapsed() < Duration::from_secs(25),
        "{:?}",
        began.elapsed()
    );
    let cut = trickle.await.expect("task").expect("answered");
    assert_eq!(cut.status(), 503);
    let body: serde_json::Value = cut.json().await.expect("error body");
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    admin(&registry)
        .await
        .release_read_only(ReleaseReadOnlyRequest {
            lease_id: lease.into_inner().lease_id,
            holder: "gc-test".to_owned(),
        })
        .await
        .expect("release");

    // Nothing of the cut chunk was kept; the session takes it again.
    let status = client.get(&url).send().await.expect("status");
    assert_eq!(status.status(), 204);
    assert_eq!(status.headers()["range"], "0-0");
    let blob = test_support::Blob::new("application/octet-stream", vec![3u8; 5000]);
    let resumed = client
        .patch(&url)
        .header("content-range", "0-4999")
        .body(blob.bytes.clone())
        .send()
        .await
        .expect("PATCH");
    assert_eq!(resumed.status(), 202);
    let next = resumed.headers()["location"]
        .to_str()
        .expect("text")
        .to_owned();
    let separator = if next.contains('?') { '&' } else { '?' };
    let closed = client
        .put(format!(
            "{}{next}{separator}digest={}",
            registry.url, blob.digest
        ))
        .send()
        .await
        .expect("PUT");
    assert_eq!(closed.status(), 201);
}
