//! Who the client is, by address: the peer, unless the peer is a trusted
//! proxy, in which case the nearest address in `X-Forwarded-For` that is
//! not itself a trusted proxy. A client can prepend anything to the header,
//! but never past the proxies' own entries, so forged values are never
//! believed.
//!
//! A proxy is trusted by its address (the edge HAProxy, `--trusted-proxies`)
//! or by presenting the proxy token in [`FORWARDER_HEADER`] (ui-backend,
//! which sends each browser user's requests from its own address, wherever
//! it runs).

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::http::HeaderMap;
use ipnet::IpNet;

use crate::token::SharedToken;

/// The header in which a proxy presents the proxy token
/// (`Bearer <token>`).
pub const FORWARDER_HEADER: &str = "berth-forwarder";

/// The proxies whose `X-Forwarded-For` is believed.
#[derive(Debug, Default)]
pub struct TrustedProxies {
    ranges: Vec<IpNet>,
    /// The token that makes any peer a trusted proxy.
    token: Option<SharedToken>,
    /// Whether the hint about an untrusted forwarder was logged already.
    hinted: AtomicBool,
}

/// `--trusted-proxies` entries: an address or a CIDR range.
pub fn parse_proxy(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    text.parse::<IpNet>()
        .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{text:?} is neither an IP address nor a CIDR range"))
}

impl TrustedProxies {
    pub fn new(ranges: Vec<IpNet>) -> Self {
        TrustedProxies {
            ranges,
            token: None,
            hinted: AtomicBool::new(false),
        }
    }

    /// Also trusts any peer that presents `token` in [`FORWARDER_HEADER`].
    pub fn with_token(self, token: Option<SharedToken>) -> Self {
        TrustedProxies { token, ..self }
    }

    /// Whether the request was sent by a proxy holding the proxy token.
    fn presents_token(&self, headers: &HeaderMap) -> bool {
        let presented = headers.get(FORWARDER_HEADER).map(|value| value.as_bytes());
        self.token
            .as_ref()
            .is_some_and(|token| presented.is_some() && token.accepts(presented))
    }

    fn trusts(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.ranges.iter().any(|range| range.contains(&address))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer.map(canonical)?;
        let forwarded = forwarded_for(headers);
        if !self.trusts(peer) && !self.presents_token(headers) {
            if !forwarded.is_empty() && !self.hinted.swap(true, Ordering::Relaxed) {
                tracing::info!(%peer, "X-Forwarded-For from a peer that is not a trusted proxy is ignored; add the edge proxy to --trusted-proxies if this is it");
            }
            return Some(peer);
        }
        let mut client = peer;
        for entry in forwarded.iter().rev() {
            match entry {
                Some(address) if self.trusts(*address) => client = *address,
                Some(address) => return Some(*address),
                // An entry that does not parse: the proxy recorded something
                // odd, so stop at the last address known good.
                None => return Some(client),
            }
        }
        Some(client)
    }
}

/// Every `X-Forwarded-For` entry in order, `None` where one does not parse.
fn forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("?").split(','))
        .map(|entry| entry.trim().parse().ok().map(canonical))
        .collect()
}

/// The address one client is counted under, for limits: IPv4 as it is
/// (IPv4-mapped IPv6 as IPv4), IPv6 by its /64, which one machine usually
/// holds whole.
pub fn counted(address: IpAddr) -> IpAddr {
    match canonical(address) {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::from(segments)
        }
        v4 => v4,
    }
}

/// IPv4-mapped IPv6 addresses as IPv4, so one client has one key.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().expect("header value"));
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("address")
    }

    #[test]
    fn forwarded_addresses_count_only_from_trusted_proxies() {
        let proxies = TrustedProxies::new(vec![parse_proxy("10.0.0.0/24").expect("range")]);
        let forged = headers(&["1.2.3.4"]);
        assert_eq!(
            proxies.client(Some(ip("198.51.100.7")), &forged),
            Some(ip("198.51.100.7"))
        );
        let through_edge = headers(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), &through_edge),
            Some(ip("203.0.113.9"))
        );
        let two_proxies = headers(&["203.0.113.9", "10.0.0.3"]);
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), &two_proxies),
            Some(ip("203.0.113.9"))
        );
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), &HeaderMap::new()),
            Some(ip("10.0.0.2"))
        );
        let garbage = headers(&["not-an-address"]);
        assert_eq!(
            proxies.client(Some(ip("10.0.0.2")), &garbage),
            Some(ip("10.0.0.2"))
        );
        let mapped = proxies.client(Some(ip("::ffff:10.0.0.2")), &through_edge);
        assert_eq!(mapped, Some(ip("203.0.113.9")));
    }

    #[test]
    fn a_proxy_holding_the_token_is_trusted_from_anywhere() {
        let token = SharedToken::generate();
        let proxies = TrustedProxies::new(Vec::new()).with_token(Some(token.clone()));
        let mut forwarded = headers(&["203.0.113.9"]);
        assert_eq!(
            proxies.client(Some(ip("10.9.9.9")), &forwarded),
            Some(ip("10.9.9.9")),
            "no token, no trust"
        );
        forwarded.insert(FORWARDER_HEADER, "Bearer wrong".parse().expect("value"));
        assert_eq!(
            proxies.client(Some(ip("10.9.9.9")), &forwarded),
            Some(ip("10.9.9.9")),
            "a wrong token, no trust"
        );
        forwarded.insert(FORWARDER_HEADER, token.bearer().parse().expect("value"));
        assert_eq!(
            proxies.client(Some(ip("10.9.9.9")), &forwarded),
            Some(ip("203.0.113.9"))
        );
        let without = TrustedProxies::new(Vec::new());
        assert_eq!(
            without.client(Some(ip("10.9.9.9")), &forwarded),
            Some(ip("10.9.9.9")),
            "a token presented where none is configured is ignored"
        );
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a = ip("2001:db8:1:2::1");
        assert_eq!(counted(a), counted(ip("2001:db8:1:2:ffff::9")));
        assert_ne!(counted(a), counted(ip("2001:db8:1:3::1")));
        assert_eq!(counted(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }

    #[test]
    fn proxies_are_addresses_or_ranges() {
        assert_eq!(
            parse_proxy("127.0.0.1").expect("address").to_string(),
            "127.0.0.1/32"
        );
        assert!(parse_proxy("10.0.0.0/8").is_ok());
        assert!(parse_proxy("::1").is_ok());
        assert!(parse_proxy("proxy.example.com").is_err());
    }
}
