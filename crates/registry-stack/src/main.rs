//! `registry-stack`: the whole registry on one machine, for trying Berth
//! out and for development. It runs auth-service, registry-api, ui-backend
//! and gc-worker (weekly) in one process, each on its own loopback port, talking
//! gRPC to each other exactly as in production (shared tokens included),
//! over one data directory.

mod first_start;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use service_runtime::LogFormat;
use service_runtime::token::SharedToken;
use tokio::net::TcpListener;

/// Every Berth service in one process, on loopback, over one data directory.
#[derive(Debug, clap::Parser)]
#[command(name = "registry-stack", version, about)]
struct Config {
    /// Directory for the store (`registry/`), the users (`htpasswd`) and
    /// the services' shared tokens (`admin-token`, `auth-token`,
    /// `proxy-token`).
    #[arg(long, env = "BERTH_DATA_DIR", default_value = "./data")]
    data_dir: PathBuf,

    /// Address of the registry HTTP API.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,

    /// Address of registry-api's admin gRPC port.
    #[arg(long, env = "REGISTRY_ADMIN_LISTEN", default_value = "127.0.0.1:5001")]
    admin_listen: SocketAddr,

    /// Address of the web UI (ui-backend).
    #[arg(long, env = "UI_LISTEN", default_value = "127.0.0.1:5080")]
    ui_listen: SocketAddr,

    /// Address of auth-service's gRPC port.
    #[arg(long, env = "AUTH_LISTEN", default_value = "127.0.0.1:5002")]
    auth_listen: SocketAddr,

    /// Proxies (addresses or CIDR ranges, comma separated) whose
    /// `X-Forwarded-For` names the client: a proxy put in front of the
    /// stack. None by default: every client connects directly.
    #[arg(long, env = "REGISTRY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = registry_api::parse_proxy)]
    trusted_proxies: Vec<ipnet::IpNet>,

    /// When gc-worker collects (cron: `min hour day month weekday`).
    #[arg(long, env = "GC_SCHEDULE", default_value = "0 3 * * SUN")]
    gc_schedule: String,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

async fn bind(address: SocketAddr, flag: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} ({flag})"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    service_runtime::init_tracing(config.log_format);
    service_runtime::http::raise_descriptor_limit();
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    gc_worker::parse_schedule(&config.gc_schedule)?;
    let htpasswd = config.data_dir.join("htpasswd");
    first_start::ensure_admin(&htpasswd, config.ui_listen)?;
    let admin_token = config.data_dir.join("admin-token");
    let auth_token = config.data_dir.join("auth-token");
    let proxy_token = config.data_dir.join("proxy-token");
    for token in [&admin_token, &auth_token, &proxy_token] {
        first_start::ensure_token(token)?;
    }

    let storage = config.data_dir.join("registry");
    let storage = storage
        .to_str()
        .context("--data-dir must be valid UTF-8")?
        .to_owned();
    let mut api = registry_api::Config::with_storage(storage.clone());
    api.listen = config.listen;
    api.admin_listen = config.admin_listen;
    api.auth_endpoint = Some(format!("http://{}", config.auth_listen).parse()?);
    api.admin_token_file = Some(admin_token.clone());
    api.auth_token_file = Some(auth_token.clone());
    api.proxy_token_file = Some(proxy_token.clone());
    api.trusted_proxies = config.trusted_proxies.clone();
    let auth_token = SharedToken::load(None, Some(&auth_token), "--auth-token")?;
    let auth_listener = bind(config.auth_listen, "--auth-listen").await?;
    let listener = bind(api.listen, "--listen").await?;
    let admin = bind(api.admin_listen, "--admin-listen").await?;
    let ui_listener = bind(config.ui_listen, "--ui-listen").await?;

    let shutdown = service_runtime::shutdown_on_signal();
    let auth = tokio::spawn(auth_service::run(
        htpasswd,
        None,
        auth_listener,
        auth_token,
        shutdown.clone(),
    ));
    let gc = gc_worker::GcConfig {
        storage,
        admin_endpoints: vec![format!("http://{}", config.admin_listen).parse()?],
        dry_run: false,
        delete_untagged: true,
        lease_ttl: std::time::Duration::from_secs(60),
        grace: std::time::Duration::from_secs(3600),
        upload_max_age: std::time::Duration::from_secs(24 * 3600),
        admin_token: None,
        admin_token_file: Some(admin_token.clone()),
        log_format: config.log_format,
    };
    let collector = gc_worker::serve(gc, &config.gc_schedule, None, shutdown.clone());
    let mut ui = ui_backend::Config::new(
        format!("http://{}", config.listen).parse()?,
        format!("http://{}", config.admin_listen).parse()?,
    );
    ui.admin_token_file = Some(admin_token.clone());
    ui.proxy_token_file = Some(proxy_token);
    ui.trusted_proxies = config.trusted_proxies.clone();
    ui.log_format = config.log_format;
    let ui = tokio::spawn(ui_backend::run(ui, ui_listener, shutdown.clone()));
    tracing::info!(
        registry = %format!("http://{}", config.listen),
        ui = %format!("http://{}", config.ui_listen),
        data = %config.data_dir.display(),
        "berth is up"
    );
    print!("{}", where_things_are(&config));
    let api = async {
        let served = registry_api::run(api, listener, admin, shutdown.clone()).await;
        shutdown.cancel();
        served
    };
    let (served, collected) = tokio::join!(api, collector);
    auth.await.context("auth-service task")??;
    ui.await.context("ui-backend task")??;
    collected.context("gc-worker")?;
    served?;
    Ok(())
}

/// What the stack prints once it listens: each service's address and how
/// to point clients at it.
fn where_things_are(config: &Config) -> String {
    let registry = config.listen;
    format!(
        "\nBerth is up (data in {data}):\n\
         \x20 registry     http://{registry}   log in as admin (or a user you added)\n\
         \x20 web UI       http://{ui}   open it in a browser, same user and password\n\
         \x20 admin gRPC   {admin}   internal: read-only windows, /metrics (token in {data}/admin-token)\n\
         \x20 auth-service {auth}   internal\n\
         The registry speaks plain HTTP on loopback; point clients at it with:\n\
         \x20 docker:  docker login {registry}   (docker allows plain HTTP to 127.0.0.1 by itself)\n\
         \x20 podman:  podman login --tls-verify=false {registry}\n\
         \x20 skopeo:  skopeo copy --dest-tls-verify=false --dest-creds admin:PASSWORD oci:./layout:v1 docker://{registry}/team/app:v1\n\
         Behind TLS and two public names, see deploy/README.md.\n\n",
        data = config.data_dir.display(),
        ui = config.ui_listen,
        admin = config.admin_listen,
        auth = config.auth_listen,
    )
}
