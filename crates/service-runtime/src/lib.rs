//! What every Berth binary starts with: one tracing set-up with a log format
//! switch, a shutdown token cancelled on SIGTERM or Ctrl-C, and the
//! accepted connections of gRPC servers.

pub mod grpc;
mod shutdown;
mod telemetry;

pub use shutdown::shutdown_on_signal;
pub use telemetry::{LogFormat, init_tracing};
