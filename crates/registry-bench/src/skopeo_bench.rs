//! A whole image pulled by a real client: `skopeo copy` of a 20-layer
//! image (layers of 4 KiB to 64 MiB, gzip of random files) from each
//! registry to a fresh local OCI layout, after the same image was pushed to
//! both. Wall time, and where it goes: skopeo's own CPU time and the
//! registry's, side by side.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, ensure};
use test_support::{Image, write_oci_layout};

use crate::Registries;
use crate::report::{Report, median};

const LAYERS: u32 = 20;
const SMALLEST: f64 = 4096.0;
const LARGEST: f64 = 64.0 * 1024.0 * 1024.0;

/// Layer sizes growing geometrically from [`SMALLEST`] to [`LARGEST`].
fn layer_sizes() -> Vec<usize> {
    let ratio = (LARGEST / SMALLEST).powf(1.0 / f64::from(LAYERS - 1));
    (0..LAYERS)
        .map(|index| (SMALLEST * ratio.powi(index as i32)) as usize)
        .collect()
}

/// CPU seconds a process has used so far (user and system).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .context("a /proc stat line")?
        .1
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// CPU seconds used by reaped children of this process.
fn children_cpu_seconds() -> f64 {
    use nix::sys::resource::{UsageWho, getrusage};
    getrusage(UsageWho::RUSAGE_CHILDREN).map_or(0.0, |usage| {
        let seconds = |time: nix::sys::time::TimeVal| {
            time.tv_sec() as f64 + time.tv_usec() as f64 / 1_000_000.0
        };
        seconds(usage.user_time()) + seconds(usage.system_time())
    })
}

fn skopeo(args: &[String]) -> anyhow::Result<()> {
    let output = Command::new("skopeo")
        .args(args)
        .output()
        .context("skopeo")?;
    ensure!(
        output.status.success(),
        "skopeo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

pub async fn compare(
    registries: &Registries,
    scratch: &Path,
    repetitions: usize,
    report: &mut Report,
) -> anyhow::Result<()> {
    eprintln!("skopeo: building a {LAYERS}-layer image");
    let image = Image::with_layer_sizes(&layer_sizes());
    let layout = scratch.join("skopeo-layout");
    write_oci_layout(&layout, &[("v1", &image)], &[]);
    let mut walls = [Vec::new(), Vec::new()];
    let mut client_cpu = [Vec::new(), Vec::new()];
    let mut server_cpu = [Vec::new(), Vec::new()];
    for (_, server, _) in registries.servers() {
        let host = server.url.trim_start_matches("http://");
        skopeo(&[
            "copy".into(),
            "--dest-tls-verify=false".into(),
            format!("oci:{}:v1", layout.display()),
            format!("docker://{host}/bench/image:v1"),
        ])?;
    }
    for repetition in 0..repetitions {
        eprintln!("skopeo pull round {}/{repetitions}", repetition + 1);
        for (index, (_, server, _)) in registries.servers().into_iter().enumerate() {
            let host = server.url.trim_start_matches("http://");
            let destination = scratch.join(format!("skopeo-pulled-{index}-{repetition}"));
            let (client_before, server_before) =
                (children_cpu_seconds(), cpu_seconds(server.pid())?);
            let started = Instant::now();
            skopeo(&[
                "copy".into(),
                "--src-tls-verify=false".into(),
                format!("docker://{host}/bench/image:v1"),
                format!("oci:{}:v1", destination.display()),
            ])?;
            walls[index].push(started.elapsed().as_secs_f64());
            client_cpu[index].push(children_cpu_seconds() - client_before);
            server_cpu[index].push(cpu_seconds(server.pid())? - server_before);
            std::fs::remove_dir_all(&destination)?;
        }
    }
    let label = format!("skopeo copy of a {LAYERS}-layer image (4 KiB to 64 MiB)");
    report.ceiling_ratio(
        &format!("{label}: wall time (s)"),
        median(&walls[0]),
        median(&walls[1]),
        1.0,
    );
    for (index, name) in ["berth", "docker-registry"].into_iter().enumerate() {
        report.info(
            &format!("{label}: skopeo's CPU pulling from {name} (s)"),
            median(&client_cpu[index]),
        );
        report.info(
            &format!("{label}: {name}'s CPU serving it (s)"),
            median(&server_cpu[index]),
        );
    }
    Ok(())
}
