//! The `gc-worker` binary: `run` once, or `serve` on a schedule.

use clap::Parser;
use gc_worker::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let shutdown = service_runtime::shutdown_on_signal();
    match cli.command {
        Command::Run(config) => {
            service_runtime::init_tracing(config.log_format);
            let report = gc_worker::run_once(&config, shutdown).await?;
            if !config.dry_run {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(())
        }
        Command::Serve {
            gc,
            schedule,
            listen,
        } => {
            service_runtime::init_tracing(gc.log_format);
            gc_worker::serve(gc, &schedule, Some(listen), shutdown).await
        }
    }
}
