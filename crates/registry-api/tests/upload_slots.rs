//! `--max-concurrent-uploads`: past that many upload bodies at once, an
//! upload waits for a slot instead of taking more memory, and goes through
//! once one is free; clients that only read are never held up.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use test_support::{Blob, TestRegistry, random_bytes};

/// `bytes` sent in ten pieces over about `seconds`.
fn slowly(bytes: Bytes, seconds: u64) -> reqwest::Body {
    let pieces: Vec<Bytes> = bytes
        .chunks(bytes.len().div_ceil(10))
        .map(Bytes::copy_from_slice)
        .collect();
    let pause = Duration::from_millis(seconds * 100);
    let stream = futures::stream::iter(pieces).then(move |piece| async move {
        tokio::time::sleep(pause).await;
        Ok::<_, std::io::Error>(piece)
    });
    reqwest::Body::wrap_stream(stream)
}

async fn monolithic(base: &str, blob: &Blob, body: reqwest::Body) -> (u16, Instant) {
    let url = format!("{base}/v2/team/app/blobs/uploads/?digest={}", blob.digest);
    let response = reqwest::Client::new()
        .post(url)
        .header("content-length", blob.bytes.len())
        .body(body)
        .send()
        .await
        .expect("push");
    (response.status().as_u16(), Instant::now())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_past_the_slots_wait_their_turn() {
    let store = tempfile::tempdir().expect("directory");
    let mut config = registry_api::Config::with_storage(store.path().to_str().expect("UTF-8"));
    config.max_concurrent_uploads = 2;
    let registry = TestRegistry::start_with(config).await;
    let blobs: Vec<Blob> = (0..3)
        .map(|_| Blob::new("application/octet-stream", random_bytes(100_000)))
        .collect();
    let base = registry.url.clone();
    let slow: Vec<_> = blobs[..2]
        .iter()
        .map(|blob| {
            let (base, blob) = (base.clone(), blob.clone());
            tokio::spawn(
                async move { monolithic(&base, &blob, slowly(blob.bytes.clone(), 3)).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let quick = monolithic(
        &base,
        &blobs[2],
        reqwest::Body::from(blobs[2].bytes.clone()),
    );
    let reads_meanwhile = async {
        let started = Instant::now();
        let answer = reqwest::get(format!("{base}/v2/")).await.expect("GET");
        assert_eq!(answer.status(), 200);
        started.elapsed()
    };
    let ((quick_status, quick_done), read_took) = tokio::join!(quick, reads_meanwhile);
    assert!(
        read_took < Duration::from_secs(1),
        "a read waited {read_took:?}"
    );
    assert_eq!(quick_status, 201);
    let mut first_slot_free = None::<Instant>;
    for pushing in slow {
        let (status, done) = pushing.await.expect("task");
        assert_eq!(status, 201);
        first_slot_free = Some(first_slot_free.map_or(done, |earlier| earlier.min(done)));
    }
    assert!(
        quick_done >= first_slot_free.expect("two uploads"),
        "the third upload ran beside the two that held the slots"
    );
    for blob in &blobs {
        let pulled = reqwest::get(format!("{base}/v2/team/app/blobs/{}", blob.digest))
            .await
            .expect("GET");
        assert_eq!(pulled.bytes().await.expect("bytes"), blob.bytes);
    }
}
