//! A minimal HTTP/1.1 client for the transfers: the request body goes out
//! with `sendfile(2)` straight from the blob file and the response body is
//! read into one buffer, so the client spends as little of the
//! machine's two cores as possible and the registries get the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{Context, bail};

/// Bytes of a response body kept for error messages.
const KEPT_BODY: usize = 1024;

/// Status and headers of a response; the body was read and counted.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body_bytes: u64,
    /// The start of the body, kept to explain error answers.
    pub body_start: Vec<u8>,
}

impl Response {
    /// Fails unless the status is `expected`, naming the request and what
    /// the server answered.
    pub fn expect(&self, expected: u16, request: &str) -> anyhow::Result<()> {
        if self.status != expected {
            bail!(
                "{request} answered {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body_start)
            );
        }
        Ok(())
    }

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
    let (host, _) = split_url(url)?;
    Connection::open(host)?.request(method, url, headers, body)
}

/// `host:port` and the path of an `http://` URL.
fn split_url(url: &str) -> anyhow::Result<(&str, String)> {
    let rest = url.strip_prefix("http://").context("only http:// URLs")?;
    Ok(rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(host, path)| {
            (host, format!("/{path}"))
        }))
}

/// A keep-alive connection, as container clients use for the requests of
/// one push.
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(host: &str) -> anyhow::Result<Self> {
        let stream = TcpStream::connect(host).with_context(|| format!("connecting to {host}"))?;
        Ok(Connection {
            reader: BufReader::with_capacity(1 << 20, stream),
        })
    }

    /// Sends one request to `url` (on this connection's host) and reads the
    /// whole response.
    pub fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<FileBody<'_>>,
    ) -> anyhow::Result<Response> {
        let (host, path) = split_url(url)?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\n\r\n",
            body.map_or(0, |body| body.length)
        ));
        let mut stream = self.reader.get_ref();
        stream.write_all(head.as_bytes())?;
        if let Some(body) = body {
            send_file(stream, body)?;
        }
        self.read_response(method == "HEAD")
    }

    /// Reads a response's head, then exactly its `Content-Length` bytes (to
    /// the end of the stream when it has none).
    fn read_response(&mut self, head_only: bool) -> anyhow::Result<Response> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
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
            body_start: Vec::new(),
        };
        if head_only {
            return Ok(response);
        }
        let length: Option<u64> = response
            .header("content-length")
            .map(str::parse)
            .transpose()
            .context("bad Content-Length")?;
        let mut buffer = vec![0u8; 1 << 20];
        while length.is_none_or(|length| response.body_bytes < length) {
            let wanted = length.map_or(buffer.len() as u64, |length| {
                (length - response.body_bytes).min(buffer.len() as u64)
            });
            let read = self.reader.read(&mut buffer[..wanted as usize])?;
            if read == 0 {
                if length.is_some() {
                    bail!("the connection closed inside a response body");
                }
                break;
            }
            let keep = read.min(KEPT_BODY.saturating_sub(response.body_start.len()));
            response.body_start.extend_from_slice(&buffer[..keep]);
            response.body_bytes += read as u64;
        }
        Ok(response)
    }
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
