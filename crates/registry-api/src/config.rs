//! The registry-api configuration: flags, each with an environment variable
//! of the same meaning (flags win), as DESIGN.md's contract names them.

use std::net::SocketAddr;

use service_runtime::LogFormat;

/// The OCI Distribution API over a blob store.
#[derive(Clone, Debug, clap::Parser)]
#[command(name = "registry-api", version, about)]
pub struct Config {
    /// Address of the registry HTTP API.
    #[arg(long, env = "REGISTRY_LISTEN", default_value = "127.0.0.1:5000")]
    pub listen: SocketAddr,

    /// Address of the admin gRPC port (health; later the maintenance
    /// lease). Internal network only: never route it through the edge proxy.
    #[arg(long, env = "REGISTRY_ADMIN_LISTEN", default_value = "127.0.0.1:5001")]
    pub admin_listen: SocketAddr,

    /// Where blobs and metadata live: file:///path (or a plain path),
    /// s3://bucket/prefix?endpoint=...&region=..., or memory:// for tests.
    #[arg(long, env = "REGISTRY_STORAGE", default_value = "./data/registry")]
    pub storage: String,

    /// gRPC endpoint of auth-service. Without it, access is anonymous.
    #[arg(long, env = "REGISTRY_AUTH_ENDPOINT")]
    pub auth_endpoint: Option<url::Url>,

    /// Shared token the admin gRPC callers (gc-worker) must present.
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (wins over --admin-token).
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,

    /// Start refusing pushes and deletes (pulls keep working).
    #[arg(long, env = "REGISTRY_READ_ONLY_ON_BOOT")]
    pub read_only_on_boot: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl Config {
    /// The defaults, as `registry-api` with no flags and no environment.
    pub fn with_storage(storage: impl Into<String>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 5001)),
            storage: storage.into(),
            auth_endpoint: None,
            admin_token: None,
            admin_token_file: None,
            read_only_on_boot: false,
            log_format: LogFormat::Text,
        }
    }
}

impl Config {
    /// The admin token from `--admin-token-file` or `--admin-token`.
    pub fn admin_token(&self) -> Result<Option<String>, crate::ServeError> {
        let file = self.admin_token_file.as_deref();
        // An error names the file: only reading one can fail.
        service_runtime::inline_or_file(self.admin_token.as_deref(), file).map_err(|error| {
            let path = self.admin_token_file.clone().unwrap_or_default();
            crate::ServeError::AdminTokenFile(path, error)
        })
    }
}
