//! A floor under the speed of request bodies. The idle timeout never trips
//! on a body that trickles in a byte a second, and such a request would
//! hold its connection, and whatever the handler holds (an upload session,
//! a place among the writes a maintenance window waits for), for as long
//! as its sender likes. Here a body must bring at least
//! [`MinimumBodyRate::bytes_per_second`] on average over every
//! [`MinimumBodyRate::window`] of time the server spends waiting for it;
//! one that does not fails with [`BodyTooSlow`], which the handler answers
//! like any broken body. Time the server spends not asking for the body
//! (writing to the store, hashing) is not counted against the client.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::BoxError;
use axum::body::HttpBody;
use hyper::body::{Buf, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// The slowest a request body may arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinimumBodyRate {
    /// Bytes a second, averaged over each window.
    pub bytes_per_second: u64,
    /// How long the average is taken over: a client on a bad link may
    /// stall for a while as long as it catches up within the window.
    pub window: Duration,
}

impl MinimumBodyRate {
    /// Bytes a window must bring.
    fn required(&self) -> u64 {
        let bytes = self.bytes_per_second as f64 * self.window.as_secs_f64();
        bytes as u64
    }
}

/// A request body that arrived slower than its [`MinimumBodyRate`].
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body arrived too slowly ({received} bytes in {seconds} s; this server needs at least {bytes_per_second} bytes a second) and was cut off: send it over a faster link or in smaller chunks"
)]
pub struct BodyTooSlow {
    received: u64,
    seconds: u64,
    bytes_per_second: u64,
}

/// A request body held to a [`MinimumBodyRate`].
#[derive(Debug)]
pub struct RateLimitedBody<B> {
    inner: B,
    rate: MinimumBodyRate,
    peer: SocketAddr,
    /// Bytes received in the current window.
    received: u64,
    /// Time spent waiting for the client in the current window, up to the
    /// moment the wait in progress (if any) began.
    waited: Duration,
    /// When the wait in progress began.
    waiting_since: Option<Instant>,
    /// When the current window runs out, once the server has waited at all
    /// (most bodies are empty or arrive at once: no timer for them).
    window_end: Option<Pin<Box<Sleep>>>,
}

impl<B> RateLimitedBody<B> {
    pub fn new(inner: B, rate: MinimumBodyRate, peer: SocketAddr) -> Self {
        RateLimitedBody {
            inner,
            rate,
            peer,
            received: 0,
            waited: Duration::ZERO,
            waiting_since: None,
            window_end: None,
        }
    }

    /// Counts a wait that ended now.
    fn stop_waiting(&mut self) {
        if let Some(since) = self.waiting_since.take() {
            self.waited += since.elapsed();
        }
    }

    /// Called while the client is awaited: `Ready` with the error once a
    /// whole window went by without the bytes it needs.
    fn check_window(&mut self, cx: &mut Context<'_>) -> Poll<BodyTooSlow> {
        loop {
            let now = Instant::now();
            let since = *self.waiting_since.get_or_insert(now);
            let deadline = since + self.rate.window.saturating_sub(self.waited);
            let sleep = self
                .window_end
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
            if sleep.deadline() != deadline {
                sleep.as_mut().reset(deadline);
            }
            if sleep.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if self.received < self.rate.required() {
                tracing::warn!(
                    peer = %self.peer,
                    received = self.received,
                    window_seconds = self.rate.window.as_secs(),
                    bytes_per_second = self.rate.bytes_per_second,
                    "request body too slow; cut off"
                );
                return Poll::Ready(BodyTooSlow {
                    received: self.received,
                    seconds: self.rate.window.as_secs(),
                    bytes_per_second: self.rate.bytes_per_second,
                });
            }
            // The window brought enough: a new one starts now.
            self.received = 0;
            self.waited = Duration::ZERO;
            self.waiting_since = Some(now);
        }
    }
}

impl<B> HttpBody for RateLimitedBody<B>
where
    B: HttpBody + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stop_waiting();
                if let Some(Ok(frame)) = &frame
                    && let Some(data) = frame.data_ref()
                {
                    this.received += data.remaining() as u64;
                }
                Poll::Ready(frame.map(|frame| frame.map_err(Into::into)))
            }
            Poll::Pending => match this.check_window(cx) {
                Poll::Ready(too_slow) => Poll::Ready(Some(Err(too_slow.into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use tokio::sync::mpsc;
    use tokio_stream::wrappers::ReceiverStream;

    use super::*;

    type Sender = mpsc::Sender<Result<Bytes, std::io::Error>>;

    /// 100 bytes a second over half a second: 50 bytes a window.
    const RATE: MinimumBodyRate = MinimumBodyRate {
        bytes_per_second: 100,
        window: Duration::from_millis(500),
    };

    fn body() -> (Sender, RateLimitedBody<Body>) {
        let (sender, receiver) = mpsc::channel(4);
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        let stream = Body::from_stream(ReceiverStream::new(receiver));
        (sender, RateLimitedBody::new(stream, RATE, peer))
    }

    async fn send(sender: &Sender, bytes: usize) {
        let piece = Bytes::from(vec![0; bytes]);
        sender.send(Ok(piece)).await.expect("the body is read");
    }

    /// The next piece of data, `None` at the end.
    async fn next(body: &mut RateLimitedBody<Body>) -> Option<Result<usize, BoxError>> {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut *body).poll_frame(cx)).await?;
        Some(frame.map(|frame| frame.into_data().map_or(0, |data| data.len())))
    }

    #[tokio::test]
    async fn a_trickle_is_cut_off_when_its_window_ends() {
        let (sender, mut body) = body();
        let trickle = tokio::spawn(async move {
            loop {
                send(&sender, 1).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let started = Instant::now();
        let mut received = 0;
        let until_cut = async {
            loop {
                match next(&mut body).await {
                    Some(Ok(length)) => received += length,
                    Some(Err(error)) => break error,
                    None => panic!("the trickle ended"),
                }
            }
        };
        let error = tokio::time::timeout(RATE.window * 8, until_cut)
            .await
            .expect("the trickle was cut off");
        trickle.abort();
        assert!(error.is::<BodyTooSlow>(), "{error}");
        assert!(received < 50, "{received} bytes came in");
        let took = started.elapsed();
        assert!(
            took >= RATE.window && took < RATE.window * 4,
            "cut off after {took:?}"
        );
    }

    #[tokio::test]
    async fn a_slow_link_that_keeps_up_on_average_is_never_cut_off() {
        let (sender, mut body) = body();
        // 400 bytes a second, in bursts with pauses of half a window.
        tokio::spawn(async move {
            for _ in 0..12 {
                send(&sender, 100).await;
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        let mut received = 0;
        while let Some(piece) = next(&mut body).await {
            received += piece.expect("never cut off");
        }
        assert_eq!(received, 1200);
    }

    #[tokio::test]
    async fn time_the_server_spends_elsewhere_is_not_the_clients() {
        let (sender, mut body) = body();
        let busy = RATE.window * 4;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            send(&sender, 1).await;
            tokio::time::sleep(busy + Duration::from_millis(100)).await;
            send(&sender, 60).await;
        });
        assert_eq!(next(&mut body).await.expect("a piece").expect("data"), 1);
        // The handler is busy with the store for four windows, then reads
        // on: the client was waited for about 200 ms of them, not 2 s.
        tokio::time::sleep(busy).await;
        assert_eq!(next(&mut body).await.expect("a piece").expect("data"), 60);
        assert!(next(&mut body).await.is_none());
    }
}
