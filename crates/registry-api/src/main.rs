//! The `registry-api` binary: parse the configuration, bind, serve.

use anyhow::Context;
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = registry_api::Config::parse();
    service_runtime::init_tracing(config.log_format);
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
