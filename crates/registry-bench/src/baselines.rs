//! What the machine itself can do, measured in the same run: sha256 on one
//! core (every pushed byte must be hashed) and a plain `sendfile` transfer
//! over loopback (the ceiling of a pull). Each is the best of its runs: noise
//! on a shared machine only ever slows a run down, and a baseline is meant
//! to be what the machine can do.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Instant;

use rand::RngCore;
use registry_core::{Algorithm, DigestHasher};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::transfers::download;

/// MiB/s of sha256 over a buffer in memory, on the calling thread.
pub fn sha256_throughput(repetitions: usize) -> f64 {
    let mut buffer = vec![0u8; 256 << 20];
    rand::rng().fill_bytes(&mut buffer);
    let runs: Vec<f64> = (0..repetitions)
        .map(|_| {
            let started = Instant::now();
            let mut hasher = DigestHasher::new(Algorithm::Sha256);
            hasher.update(&buffer);
            std::hint::black_box(hasher.finish());
            256.0 / started.elapsed().as_secs_f64()
        })
        .collect();
    best(&runs)
}

/// MiB/s of the file sent with `sendfile(2)` behind a minimal HTTP header,
/// received by the same client as the registry pulls.
pub async fn sendfile_throughput(path: &Path, repetitions: usize) -> anyhow::Result<f64> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/blob", listener.local_addr()?);
    let size = std::fs::metadata(path)?.len();
    let path = path.to_owned();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let path = path.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 4096];
                while !head.windows(4).any(|window| window == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(read) => head.extend_from_slice(&buffer[..read]),
                    }
                }
                let header = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
                );
                if socket.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let Ok(socket) = socket.into_std() else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || send_whole_file(&socket, &path, size))
                    .await;
            });
        }
    });
    let mut runs = Vec::new();
    for _ in 0..repetitions {
        runs.push(download(&url, size).await?);
    }
    server.abort();
    Ok(best(&runs))
}

fn send_whole_file(socket: &std::net::TcpStream, path: &Path, size: u64) -> std::io::Result<()> {
    socket.set_nonblocking(false)?;
    let file = std::fs::File::open(path)?;
    let mut offset: i64 = 0;
    while (offset as u64) < size {
        let remaining = (size - offset as u64).min(1 << 30) as usize;
        let sent = nix::sys::sendfile::sendfile(
            socket.as_fd(),
            file.as_fd(),
            Some(&mut offset),
            remaining,
        )?;
        if sent == 0 {
            break;
        }
    }
    Ok(())
}

fn best(runs: &[f64]) -> f64 {
    runs.iter().copied().fold(f64::NAN, f64::max)
}
