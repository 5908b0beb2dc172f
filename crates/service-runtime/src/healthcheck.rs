//! `--healthcheck`: every binary can ask the instance of itself that runs
//! at its configured address whether it is healthy, and exit 0 or 1, so a
//! container image needs no curl for its health checks.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Where to reach a service listening on `listen`: a wildcard address is
/// reached over loopback.
pub fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// `GET /healthz` on the HTTP service at `listen`: healthy on 200.
pub fn http(listen: SocketAddr) -> Result<(), String> {
    let address = reachable(listen);
    let mut stream = TcpStream::connect_timeout(&address, TIMEOUT)
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|error| error.to_string())?;
    write!(
        stream,
        "GET /healthz HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|error| format!("cannot ask {address}: {error}"))?;
    let mut answer = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(|error| format!("no answer from {address}: {error}"))?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{address}/healthz answered {status:?}"))
    }
}

/// gRPC health of the service at `listen`: healthy when it says SERVING.
pub async fn grpc(listen: SocketAddr) -> Result<(), String> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::health_client::HealthClient;
    let address = reachable(listen);
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}"))
        .map_err(|error| error.to_string())?
        .connect_timeout(TIMEOUT)
        .timeout(TIMEOUT)
        .connect()
        .await
        .map_err(|error| format!("cannot connect to {address}: {error}"))?;
    let answer = HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .map_err(|status| format!("{address} health: {}", status.message()))?
        .into_inner();
    if answer.status == ServingStatus::Serving as i32 {
        Ok(())
    } else {
        Err(format!(
            "{address} is not serving (status {})",
            answer.status
        ))
    }
}

/// Prints the outcome and exits: 0 when healthy, 1 otherwise.
pub fn exit(outcome: Result<(), String>) -> ! {
    match outcome {
        Ok(()) => {
            println!("healthy");
            std::process::exit(0)
        }
        Err(reason) => {
            eprintln!("unhealthy: {reason}");
            std::process::exit(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_are_reached_over_loopback() {
        let any: SocketAddr = "0.0.0.0:5000".parse().expect("address");
        assert_eq!(reachable(any), "127.0.0.1:5000".parse().expect("address"));
        let any6: SocketAddr = "[::]:5000".parse().expect("address");
        assert_eq!(reachable(any6), "[::1]:5000".parse().expect("address"));
        let fixed: SocketAddr = "10.1.2.3:5000".parse().expect("address");
        assert_eq!(reachable(fixed), fixed);
    }

    #[test]
    fn nothing_listening_is_unhealthy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        assert!(http(address).is_err());
    }
}
