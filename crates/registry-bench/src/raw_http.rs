//! A minimal HTTP/1.1 client for the transfers: the request body goes out
//! with `sendfile(2)` straight from the blob file and the response body is
//! read into one reused buffer, so the client spends as little of the
//! machine's two cores as possible and the registries get the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, bail};

/// Status and headers of a response; the body was read and counted.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A part of a file sent as the request body.
#[derive(Clone, Copy, Debug)]
pub struct FileBody<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub length: u64,
}

/// Sends one request on a fresh connection to `url` (`http://host:port/path`).
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Option<FileBody<'_>>,
) -> anyhow::Result<Response> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        });
    let mut stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\n\r\n",
        body.map_or(0, |body| body.length)
    ));
    stream.write_all(head.as_bytes())?;
    if let Some(body) = body {
        send_file(&stream, body)?;
    }
    read_response(stream, method == "HEAD")
}

fn send_file(stream: &TcpStream, body: FileBody<'_>) -> anyhow::Result<()> {
    let file = std::fs::File::open(body.path)?;
    let mut offset = i64::try_from(body.offset)?;
    let end = body.offset + body.length;
    while (offset as u64) < end {
        let remaining = usize::try_from((end - offset as u64).min(1 << 30))?;
        let sent = nix::sys::sendfile::sendfile(
            stream.as_fd(),
            file.as_fd(),
            Some(&mut offset),
            remaining,
        )?;
        if sent == 0 {
            bail!("the file ended early");
        }
    }
    Ok(())
}

fn read_response(stream: TcpStream, head_only: bool) -> anyhow::Result<Response> {
    let mut reader = BufReader::with_capacity(1 << 20, stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let mut response = Response {
        status,
        headers,
        body_bytes: 0,
    };
    if head_only {
        return Ok(response);
    }
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            return Ok(response);
        }
        response.body_bytes += read as u64;
    }
}
