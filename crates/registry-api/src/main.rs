//! The `registry-api` binary: parse the configuration, bind, serve.

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches};
use service_runtime::token::warn_if_on_command_line;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = registry_api::Config::command().get_matches();
    let config =
        registry_api::Config::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if config.healthcheck {
        service_runtime::healthcheck::exit(service_runtime::healthcheck::http(config.listen));
    }
    service_runtime::init_tracing(config.log_format);
    service_runtime::http::raise_descriptor_limit();
    warn_if_on_command_line(&matches, "admin_token", "--admin-token");
    warn_if_on_command_line(&matches, "auth_token", "--auth-token");
    warn_if_on_command_line(&matches, "proxy_token", "--proxy-token");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let admin_listener = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--admin-listen)", config.admin_listen))?;
    let shutdown = service_runtime::shutdown_on_signal();
    registry_api::run(config, listener, admin_listener, shutdown).await?;
    Ok(())
}
