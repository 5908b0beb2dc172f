//! What every Berth binary starts with: one tracing set-up with a log format
//! switch, a shutdown token cancelled on SIGTERM or Ctrl-C, the accepted
//! connections of gRPC servers, and secrets given inline or as a file.

pub mod grpc;
mod secret;
mod shutdown;
mod telemetry;

pub use secret::inline_or_file;
pub use shutdown::shutdown_on_signal;
pub use telemetry::{LogFormat, init_tracing};
