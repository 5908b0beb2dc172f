//! The `gc-worker` binary: `run` once, or `serve` on a schedule.

use anyhow::Context;
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
        Command::Fsck {
            storage,
            log_format,
        } => {
            service_runtime::init_tracing(log_format);
            let store = registry_storage::Store::open(&storage)
                .with_context(|| format!("--storage {storage}"))?;
            let findings = gc_worker::fsck::check(&store).await?;
            for problem in &findings.problems {
                println!("{problem}");
            }
            println!(
                "checked {} repositories, {} tags, {} manifests, {} blobs: {} problems, {} dangling layer links",
                findings.repositories,
                findings.tags,
                findings.manifests,
                findings.blobs,
                findings.problems.len(),
                findings.dangling_layer_links
            );
            if !findings.problems.is_empty() {
                std::process::exit(1);
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
