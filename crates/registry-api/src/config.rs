//! The registry-api configuration: flags, each with an environment variable
//! of the same meaning (flags win), as DESIGN.md's contract names them.

use std::net::SocketAddr;

use service_runtime::LogFormat;
use service_runtime::token::{SharedToken, TokenError};

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

    /// Longest wait on an S3-compatible store: no byte from it for this
    /// long, or failing answers retried for this long, and the client's
    /// request gets 503 UNAVAILABLE. A download that keeps moving is never
    /// cut.
    #[arg(long, env = "REGISTRY_STORAGE_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub storage_timeout: std::time::Duration,

    /// Answer blob GETs with a redirect (307) to a presigned URL of the S3
    /// store that lives this long (e.g. 5m), so the bytes go from the store
    /// straight to the client. Off by default; S3 stores only; read
    /// SECURITY.md's "Blob redirects" before turning it on.
    #[arg(long, env = "REGISTRY_REDIRECT_BLOBS", value_parser = humantime::parse_duration)]
    pub redirect_blobs: Option<std::time::Duration>,

    /// How often this replica announces itself in the store and reads the
    /// read-only lease there. gc-worker tells every replica of a window at
    /// once; this check catches what was recorded without telling it. A
    /// replica whose checks fail for twice this long refuses writes until
    /// one succeeds.
    #[arg(long, env = "REGISTRY_LEASE_CHECK_INTERVAL", default_value = "10s", value_parser = parse_check_interval)]
    pub lease_check_interval: std::time::Duration,

    /// Upload bodies copied at once; more wait their turn (up to 30 s, then
    /// 503). Each holds up to 8 MiB on a local store and about 24 MiB on
    /// S3, so this bounds the memory uploads take.
    #[arg(long, env = "REGISTRY_MAX_CONCURRENT_UPLOADS", default_value_t = 16)]
    pub max_concurrent_uploads: usize,

    /// Memory all blob pulls from a local store may hold at once, in MiB.
    /// A pull holds at most 1 MiB (a 512 KiB piece being sent and the next
    /// one); past the budget, pulls wait for pieces to be sent, so clients
    /// that take nothing cannot run the process out of memory.
    #[arg(long, env = "REGISTRY_MAX_PULL_MEMORY_MIB", default_value_t = registry_storage::DEFAULT_PULL_MEMORY_MIB, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pull_memory_mib: u64,

    /// gRPC endpoint of auth-service. Without it, access is anonymous.
    #[arg(long, env = "REGISTRY_AUTH_ENDPOINT")]
    pub auth_endpoint: Option<url::Url>,

    /// The token auth-service expects (its --token). Shows in `ps` as a
    /// flag: prefer --auth-token-file or the environment.
    #[arg(long, env = "REGISTRY_AUTH_TOKEN", hide_env_values = true)]
    pub auth_token: Option<String>,

    /// File holding the auth-service token (wins over --auth-token).
    #[arg(long, env = "REGISTRY_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<std::path::PathBuf>,

    /// Shared token every caller of the admin port (gc-worker, ui-backend,
    /// Prometheus on /metrics) must present. Shows in `ps` as a flag:
    /// prefer --admin-token-file or the environment.
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (wins over --admin-token).
    #[arg(long, env = "REGISTRY_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,

    /// Proxies (addresses or CIDR ranges, comma separated) whose
    /// `X-Forwarded-For` is believed: the edge HAProxy. From anyone else
    /// the header is ignored and the peer address is the client's.
    #[arg(long, env = "REGISTRY_TRUSTED_PROXIES", value_delimiter = ',', value_parser = crate::parse_proxy)]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// Shared token of proxies inside the network (ui-backend) whose
    /// `X-Forwarded-For` is believed wherever they connect from, when they
    /// present it in `Berth-Forwarder`. Shows in `ps` as a flag: prefer
    /// --proxy-token-file or the environment.
    #[arg(long, env = "REGISTRY_PROXY_TOKEN", hide_env_values = true)]
    pub proxy_token: Option<String>,

    /// File holding the proxy token (wins over --proxy-token).
    #[arg(long, env = "REGISTRY_PROXY_TOKEN_FILE")]
    pub proxy_token_file: Option<std::path::PathBuf>,

    /// Start refusing pushes and deletes (pulls keep working).
    #[arg(long, env = "REGISTRY_READ_ONLY_ON_BOOT")]
    pub read_only_on_boot: bool,

    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Ask the registry-api running at --listen for its /healthz instead of
    /// serving; exit 0 when healthy (for container health checks).
    #[arg(long)]
    pub healthcheck: bool,

    /// What the HTTP server allows a client (header and idle timeouts, the
    /// slowest request body, connection caps). Not a flag: the defaults
    /// are SECURITY.md's; tests shorten the times.
    #[arg(skip)]
    pub http_limits: service_runtime::http::Limits,
}

impl Config {
    /// The defaults, as `registry-api` with no flags and no environment.
    pub fn with_storage(storage: impl Into<String>) -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 5001)),
            storage: storage.into(),
            storage_timeout: std::time::Duration::from_secs(30),
            redirect_blobs: None,
            lease_check_interval: std::time::Duration::from_secs(10),
            max_concurrent_uploads: 16,
            max_pull_memory_mib: registry_storage::DEFAULT_PULL_MEMORY_MIB,
            auth_endpoint: None,
            auth_token: None,
            auth_token_file: None,
            admin_token: None,
            admin_token_file: None,
            trusted_proxies: Vec::new(),
            proxy_token: None,
            proxy_token_file: None,
            read_only_on_boot: false,
            log_format: LogFormat::Text,
            healthcheck: false,
            http_limits: service_runtime::http::Limits::default(),
        }
    }
}

impl Config {
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

    /// The auth-service token from `--auth-token-file` or `--auth-token`.
    pub fn auth_token(&self) -> Result<Option<SharedToken>, TokenError> {
        SharedToken::load(
            self.auth_token.as_deref(),
            self.auth_token_file.as_deref(),
            "--auth-token",
        )
    }
}

/// `--lease-check-interval`: a duration of at least a second, so one check
/// (an announcement and a lease read) fits in it.
fn parse_check_interval(text: &str) -> Result<std::time::Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|error| error.to_string())?;
    if interval < std::time::Duration::from_secs(1) {
        return Err(format!(
            "{text} is too short: a lease check needs at least 1s"
        ));
    }
    Ok(interval)
}
