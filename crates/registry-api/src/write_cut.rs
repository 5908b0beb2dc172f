//! Cutting off request bodies still arriving when a maintenance window has
//! waited long enough for the writes in flight. A client trickling a chunk
//! just above the minimum body rate could otherwise hold off every garbage
//! collection (the window waits for writes to finish, then gives up). The
//! body ends with an error, never early: nothing of the chunk is stored, and
//! the client is told to retry it after the window.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, BodyDataStream};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// Why a request body stopped: a maintenance window began.
#[derive(Debug, thiserror::Error)]
#[error("the upload was cut off because a maintenance window began; retry it when the window ends")]
pub struct CutByWindow;

/// Whether `error`, or anything it wraps, is [`CutByWindow`].
pub fn is_cut_by_window(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.is::<CutByWindow>() {
            return true;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && io.get_ref().is_some_and(|inner| is_cut_by_window(inner))
        {
            return true;
        }
        current = error.source();
    }
    false
}

/// `body`, failing with [`CutByWindow`] once `cut` is cancelled.
pub fn cut_when(body: Body, cut: CancellationToken) -> Body {
    Body::from_stream(CutOff {
        inner: body.into_data_stream(),
        cut: Box::pin(cut.cancelled_owned()),
        done: false,
    })
}

struct CutOff {
    inner: BodyDataStream,
    cut: Pin<Box<WaitForCancellationFutureOwned>>,
    done: bool,
}

impl Stream for CutOff {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.cut.as_mut().poll(context).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(std::io::Error::other(CutByWindow))));
        }
        self.inner
            .poll_next_unpin(context)
            .map(|piece| piece.map(|piece| piece.map_err(std::io::Error::other)))
    }
}
