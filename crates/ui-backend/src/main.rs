//! The `ui-backend` binary: parse the configuration, bind, serve.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use service_runtime::token::warn_if_on_command_line;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = ui_backend::Config::command().get_matches();
    let config =
        ui_backend::Config::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if config.healthcheck {
        service_runtime::healthcheck::exit(service_runtime::healthcheck::http(config.listen));
    }
    service_runtime::init_tracing(config.log_format);
    service_runtime::http::raise_descriptor_limit();
    warn_if_on_command_line(&matches, "admin_token", "--admin-token");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let shutdown = service_runtime::shutdown_on_signal();
    ui_backend::run(config, listener, shutdown).await
}
