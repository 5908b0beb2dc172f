//! The command line: serve (the default), or `hash-password`. Every flag
//! has an environment variable of the same meaning; flags win.

use std::net::SocketAddr;
use std::path::PathBuf;

use service_runtime::LogFormat;

/// htpasswd verification and repository permissions over gRPC.
#[derive(Debug, clap::Parser)]
#[command(name = "auth-service", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// Serving flags.
#[derive(Debug, clap::Args)]
pub struct ServeConfig {
    /// Address of the gRPC service.
    #[arg(long, env = "AUTH_LISTEN", default_value = "127.0.0.1:5002")]
    pub listen: SocketAddr,
    /// The htpasswd file (bcrypt or argon2id entries). Reloaded on change.
    #[arg(long, env = "AUTH_HTPASSWD")]
    pub htpasswd: Option<PathBuf>,
    /// Optional TOML policy of who may pull, push and delete where.
    #[arg(long, env = "AUTH_POLICY")]
    pub policy: Option<PathBuf>,
    /// Shared token callers (registry-api) must present. Required unless
    /// --listen is a loopback address. Shows in `ps` as a flag: prefer
    /// --token-file or the environment.
    #[arg(long, env = "AUTH_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the token (wins over --token).
    #[arg(long, env = "AUTH_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Log line format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Ask the auth-service running at --listen for its gRPC health instead
    /// of serving; exit 0 when healthy (for container health checks).
    #[arg(long)]
    pub healthcheck: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print an htpasswd line for USER; the password is read from standard
    /// input, or asked for twice on a terminal. Never pass it as an argument.
    HashPassword {
        /// A bcrypt hash, for files shared with Distribution or `htpasswd -B`.
        #[arg(long, conflicts_with = "argon2id")]
        bcrypt: bool,
        /// An argon2id hash (the default).
        #[arg(long)]
        argon2id: bool,
        /// The user name.
        user: String,
    },
}
