//! `registry-stack`: the whole registry on one machine, for trying Berth
//! out and for development. Today it runs registry-api over `./data`; each
//! service joins it, on its own loopback port, as it lands.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use service_runtime::LogFormat;

/// Every Berth service in one process, on loopback, over one data directory.
#[derive(Debug, clap::Parser)]
#[command(name = "registry-stack", version, about)]
struct Config {
    /// Directory for the store and the service files.
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,

    /// Address of the registry HTTP API.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,

    /// Address of registry-api's admin gRPC port.
    #[arg(long, env = "REGISTRY_ADMIN_LISTEN", default_value = "127.0.0.1:5001")]
    admin_listen: SocketAddr,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    service_runtime::init_tracing(config.log_format);
    let storage = config.data_dir.join("registry");
    let storage = storage
        .to_str()
        .context("--data-dir must be valid UTF-8")?
        .to_owned();
    let mut api = registry_api::Config::with_storage(storage);
    api.listen = config.listen;
    api.admin_listen = config.admin_listen;
    let listener = tokio::net::TcpListener::bind(api.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", api.listen))?;
    let admin = tokio::net::TcpListener::bind(api.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (--admin-listen)", api.admin_listen))?;
    tracing::info!(
        registry = %format!("http://{}", api.listen),
        data = %config.data_dir.display(),
        "berth is up: push with `skopeo copy --dest-tls-verify=false ... docker://{}/NAME:TAG`",
        api.listen
    );
    let shutdown = service_runtime::shutdown_on_signal();
    registry_api::run(api, listener, admin, shutdown).await?;
    Ok(())
}
