//! The `gc-worker` binary: `run` once, `serve` on a schedule, `fsck`, or
//! `lease status|release`.

use clap::{CommandFactory, FromArgMatches};
use gc_worker::{Cli, Command};
use service_runtime::token::warn_if_on_command_line;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    if let Command::Serve {
        listen,
        healthcheck: true,
        ..
    } = &cli.command
    {
        service_runtime::healthcheck::exit(service_runtime::healthcheck::http(*listen));
    }
    let log_format = match &cli.command {
        Command::Run(config) | Command::Serve { gc: config, .. } => config.log_format,
        Command::Fsck { log_format, .. } => *log_format,
        Command::Lease { .. } => service_runtime::LogFormat::Text,
    };
    service_runtime::init_tracing(log_format);
    if let (Command::Run(_) | Command::Serve { .. }, Some((_, arguments))) =
        (&cli.command, matches.subcommand())
    {
        warn_if_on_command_line(arguments, "admin_token", "--admin-token");
    }
    let shutdown = service_runtime::shutdown_on_signal();
    match cli.command {
        Command::Run(config) => {
            let report = gc_worker::run_once(&config, shutdown).await?;
            if !config.dry_run {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Command::Lease { action, storage } => {
            let store = gc_worker::open_store(&storage)?;
            let text = match action {
                gc_worker::LeaseAction::Status => gc_worker::lease_admin::status(&store).await?,
                gc_worker::LeaseAction::Release { lease_id } => {
                    gc_worker::lease_admin::release(&store, &lease_id).await?
                }
            };
            print!("{text}");
            Ok(())
        }
        Command::Fsck { storage, .. } => {
            let store = gc_worker::open_store(&storage)?;
            let findings = gc_worker::fsck::check(&store).await?;
            print!("{}", findings.describe());
            if !findings.problems.is_empty() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Serve {
            gc,
            schedule,
            listen,
            ..
        } => gc_worker::serve(gc, &schedule, Some(listen), shutdown).await,
    }
}
