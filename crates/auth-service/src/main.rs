//! The `auth-service` binary: serve, or print an htpasswd line.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use auth_service::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use service_runtime::token::SharedToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    match cli.command {
        Some(Command::HashPassword { bcrypt, user, .. }) => hash_password(&user, bcrypt),
        None => serve(cli.serve, &matches).await,
    }
}

async fn serve(
    config: auth_service::ServeConfig,
    matches: &clap::ArgMatches,
) -> anyhow::Result<()> {
    if config.healthcheck {
        service_runtime::healthcheck::exit(service_runtime::healthcheck::grpc(config.listen).await);
    }
    service_runtime::init_tracing(config.log_format);
    service_runtime::token::warn_if_on_command_line(matches, "token", "--token");
    let token = SharedToken::load(
        config.token.as_deref(),
        config.token_file.as_deref(),
        "--token",
    )?;
    let htpasswd = config
        .htpasswd
        .context("--htpasswd (AUTH_HTPASSWD) is required: the file of users to check")?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {} (--listen)", config.listen))?;
    let shutdown = service_runtime::shutdown_on_signal();
    auth_service::run(htpasswd, config.policy, listener, token, shutdown).await?;
    Ok(())
}

fn hash_password(user: &str, bcrypt: bool) -> anyhow::Result<()> {
    if user.is_empty() || user.contains(':') || user.contains(char::is_whitespace) {
        bail!("user {user:?} must be non-empty, without ':' or spaces");
    }
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("password for {user}: "))?;
        let second = rpassword::prompt_password("again: ")?;
        if first != second {
            bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    let hash = if bcrypt {
        auth_service::hashing::bcrypt(&password)?
    } else {
        auth_service::hashing::argon2id(&password)
    };
    println!("{user}:{hash}");
    Ok(())
}
