//! gc-worker's command line: `run` once or `serve` on a schedule, with the
//! same flags; `fsck` and `lease` for operators. Each flag has an
//! environment variable of the same meaning.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use service_runtime::LogFormat;
use service_runtime::token::SharedToken;

/// Garbage collection inside a read-only window that always ends.
#[derive(Debug, clap::Parser)]
#[command(name = "gc-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Collect once and exit (non-zero on failure).
    Run(GcConfig),
    /// Collect on a cron schedule, with /metrics and /healthz on --listen.
    Serve {
        #[command(flatten)]
        gc: GcConfig,
        /// When to collect: a cron expression (`min hour day month weekday`,
        /// seconds optional first), e.g. `0 3 * * SUN` for Sundays at 03:00 UTC.
        #[arg(long, env = "GC_SCHEDULE", default_value = "0 3 * * SUN")]
        schedule: String,
        /// Address of /metrics and /healthz.
        #[arg(long, env = "GC_LISTEN", default_value = "127.0.0.1:5003")]
        listen: SocketAddr,
        /// Ask the gc-worker serving at --listen for its /healthz instead of
        /// serving; exit 0 when healthy (for container health checks).
        #[arg(long)]
        healthcheck: bool,
    },
    /// See or end the read-only window, straight in the store: works when
    /// gc-worker (or every replica) is gone.
    Lease {
        #[command(subcommand)]
        action: LeaseAction,
        /// The store registry-api serves (same URL forms as its --storage).
        #[arg(
            long,
            env = "GC_STORAGE",
            default_value = "./data/registry",
            global = true
        )]
        storage: String,
    },
    /// Check the store: every tag resolves, every manifest's blobs,
    /// children and subject exist, no referrers entry dangles. Reads only;
    /// exits non-zero when something is broken.
    Fsck {
        /// The store registry-api serves (same URL forms as its --storage).
        #[arg(long, env = "GC_STORAGE", default_value = "./data/registry")]
        storage: String,
        /// Log line format.
        #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
}

/// What `gc-worker lease` does.
#[derive(Debug, clap::Subcommand)]
pub enum LeaseAction {
    /// Print the newest read-only window: its id, holder, reason, and
    /// whether it is in force and until when.
    Status,
    /// End the window LEASE_ID (from `lease status`) now; every replica is
    /// writable again at its next lease check (registry-api's
    /// --lease-check-interval, 10 s by default). Only for a window whose
    /// gc-worker is gone: one still running may go on deleting until the
    /// window's end.
    Release {
        /// The id `lease status` prints.
        lease_id: String,
    },
}

/// What one collection does.
#[derive(Clone, Debug, clap::Args)]
pub struct GcConfig {
    /// The store registry-api serves (same URL forms as its --storage).
    #[arg(long, env = "GC_STORAGE", default_value = "./data/registry")]
    pub storage: String,
    /// Every registry-api replica's admin gRPC address, comma separated.
    #[arg(
        long,
        env = "GC_ADMIN_ENDPOINTS",
        value_delimiter = ',',
        required = true
    )]
    pub admin_endpoints: Vec<url::Url>,
    /// Print what would go, per repository; take no lease, change nothing.
    #[arg(long, env = "GC_DRY_RUN")]
    pub dry_run: bool,
    /// Also remove manifests no tag reaches (never an index's children,
    /// nor referrers of a kept manifest).
    #[arg(long, env = "GC_DELETE_UNTAGGED")]
    pub delete_untagged: bool,
    /// Time to live of the read-only lease; renewed while working. If
    /// gc-worker dies, the registry is writable again at most this long after.
    #[arg(long, env = "GC_LEASE_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub lease_ttl: Duration,
    /// Nothing younger than this is deleted, so pushes racing the window
    /// cannot lose a blob.
    #[arg(long, env = "GC_GRACE", default_value = "1h", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Upload sessions older than this are removed.
    #[arg(long, env = "GC_UPLOAD_MAX_AGE", default_value = "24h", value_parser = humantime::parse_duration)]
    pub upload_max_age: Duration,
    /// The admin token registry-api expects, if it is configured with one.
    /// Shows in `ps` as a flag: prefer --admin-token-file or the environment.
    #[arg(long, env = "GC_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// File holding the admin token (wins over --admin-token).
    #[arg(long, env = "GC_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl GcConfig {
    /// The admin token from `--admin-token-file` or `--admin-token`.
    pub fn admin_token(&self) -> anyhow::Result<Option<SharedToken>> {
        Ok(SharedToken::load(
            self.admin_token.as_deref(),
            self.admin_token_file.as_deref(),
            "--admin-token",
        )?)
    }
}
