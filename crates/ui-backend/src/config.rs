//! The ui-backend configuration: flags, each with an environment variable
//! of the same meaning (flags win), as DESIGN.md's contract names them.

use std::net::SocketAddr;

use service_runtime::LogFormat;
use service_runtime::token::{SharedToken, TokenError};

/// Berth's web UI and its JSON API.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "ui-backend", version, about)]
pub struct Config {
    /// Address of the web UI and its JSON API (`/api/v1`).
    #[arg(long, env = "UI_LISTEN", default_value = "127.0.0.1:5080")]
    pub listen: SocketAddr,

    /// registry-api's HTTP API (a replica, or the edge in front of them).
    #[arg(long, env = "UI_REGISTRY_URL", default_value = "http://127.0.0.1:5000")]
    pub registry_url: url::Url,

    /// One registry-api replica's admin gRPC port, for the read-only state
    /// and the garbage collection reports.
    #[arg(
        long,
        env = "UI_ADMIN_ENDPOINT",
        default_value = "http://127.0.0.1:5001"
    )]
    pub admin_endpoint: url::Url,

    /// The admin port's shared token. Shows in `ps` as a flag: prefer
    /// --admin-token-file or the environment.
    #[arg(long, env = "UI_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (wins over --admin-token).
    #[arg(long, env = "UI_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,

    /// The registry's name in the pull commands the UI shows
    /// (`registry.example.com`); by default the host of --registry-url.
    #[arg(long, env = "UI_PUBLIC_NAME")]
    pub public_name: Option<String>,

    /// Proxies (addresses or CIDR ranges, comma separated) whose
    /// `X-Forwarded-For` names the browser: the edge HAProxy. ui-backend
    /// passes each user's address on to registry-api, so failed log-ins
    /// count against the user who made them, not against every UI user.
    #[arg(long, env = "UI_TRUSTED_PROXIES", value_delimiter = ',', value_parser = service_runtime::client_address::parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The token registry-api's --proxy-token expects, presented so that
    /// registry-api believes the user addresses ui-backend passes on.
    /// Shows in `ps` as a flag: prefer --proxy-token-file or the
    /// environment.
    #[arg(long, env = "UI_PROXY_TOKEN", hide_env_values = true)]
    pub proxy_token: Option<String>,

    /// File holding the proxy token (wins over --proxy-token).
    #[arg(long, env = "UI_PROXY_TOKEN_FILE")]
    pub proxy_token_file: Option<std::path::PathBuf>,

    /// Memory for manifests, image configs and other content addressed by
    /// digest, in MiB.
    #[arg(long, env = "UI_CACHE_SIZE_MIB", default_value_t = 32, value_parser = clap::value_parser!(u64).range(1..=65536))]
    pub cache_size_mib: u64,

    /// Requests to registry-api in flight at once, over all users.
    #[arg(long, env = "UI_REGISTRY_CONCURRENCY", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub registry_concurrency: u32,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Ask the ui-backend running at --listen for its /healthz instead of
    /// serving; exit 0 when healthy (for container health checks).
    #[arg(long)]
    pub healthcheck: bool,
}

impl Config {
    /// The defaults, as `ui-backend` with no flags, talking to `registry`.
    pub fn new(registry_url: url::Url, admin_endpoint: url::Url) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5080)),
            registry_url,
            admin_endpoint,
            admin_token: None,
            admin_token_file: None,
            public_name: None,
            trusted_proxies: Vec::new(),
            proxy_token: None,
            proxy_token_file: None,
            cache_size_mib: 32,
            registry_concurrency: 64,
            log_format: LogFormat::Text,
            healthcheck: false,
        }
    }

    /// The admin token from `--admin-token-file` or `--admin-token`.
    pub fn admin_token(&self) -> Result<Option<SharedToken>, TokenError> {
        SharedToken::load(
            self.admin_token.as_deref(),
            self.admin_token_file.as_deref(),
            "--admin-token",
        )
    }

    /// The proxy token from `--proxy-token-file` or `--proxy-token`.
    pub fn proxy_token(&self) -> Result<Option<SharedToken>, TokenError> {
        SharedToken::load(
            self.proxy_token.as_deref(),
            self.proxy_token_file.as_deref(),
            "--proxy-token",
        )
    }

    /// The name shown in pull commands.
    pub fn public_name(&self) -> String {
        if let Some(name) = &self.public_name {
            return name.clone();
        }
        let host = self.registry_url.host_str().unwrap_or("localhost");
        match self.registry_url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        }
    }
}
