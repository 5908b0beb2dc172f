//! What every Berth binary starts with: one tracing set-up with a log format
//! switch, a shutdown token cancelled on SIGTERM or Ctrl-C, the accepted
//! connections of gRPC servers, HTTP serving with limits, `--healthcheck`,
//! Prometheus metrics, the shared tokens between services, and who a
//! client is behind proxies.

pub mod client_address;
pub mod grpc;
pub mod healthcheck;
pub mod http;
pub mod metrics;
mod shutdown;
mod telemetry;
pub mod token;

pub use shutdown::shutdown_on_signal;
pub use telemetry::{LogFormat, init_tracing};
