//! Accepting gRPC connections: every Berth gRPC server takes its sockets
//! from here, with `TCP_NODELAY` set so small calls are answered at once
//! rather than after a delayed ACK (about 40 ms on Linux).

use tokio::net::{TcpListener, TcpStream};
use tokio_stream::wrappers::TcpListenerStream;
use tokio_stream::{Stream, StreamExt};

/// The connections accepted on `listener`, ready for
/// `serve_with_incoming_shutdown`.
pub fn incoming(listener: TcpListener) -> impl Stream<Item = std::io::Result<TcpStream>> {
    TcpListenerStream::new(listener).map(|stream| {
        let stream = stream?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}
