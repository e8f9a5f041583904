//! Where a call comes from ("from where" of the audit log): the TCP peer, or — when the peer is one of the
//! configured trusted proxies (`--trusted-proxies`: the ingress controller's or load balancer's networks) — the
//! client address those proxies recorded in `X-Forwarded-For`.
//!
//! Every proxy appends the address it received the request from, so the header is read from the right: the
//! rightmost address that is not itself a trusted proxy is the client. What stands left of it was written by
//! somebody untrusted (possibly the client itself) and is never believed. Without trusted proxies the header is
//! ignored altogether, so nobody can choose the address the audit log records.
//!
//! Written by hand (a few lines over `ipnet`): the crates that extract client addresses for axum pick one fixed
//! position of the header (leftmost or rightmost), not "rightmost outside these networks", which is what a chain
//! of proxies (load balancer, then ingress controller) needs.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

const FORWARDED_FOR: &str = "x-forwarded-for";

/// The networks whose `X-Forwarded-For` is believed; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    pub fn new(nets: Vec<IpNet>) -> TrustedProxies {
        TrustedProxies(nets)
    }

    /// One network: CIDR (`10.0.0.0/8`, `fd00::/8`) or a single address (`10.0.0.7`).
    pub fn parse_net(text: &str) -> Result<IpNet, String> {
        let text = text.trim();
        text.parse::<IpNet>()
            .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
            .map_err(|_| format!("\"{text}\" is neither an IP address nor a CIDR network (e.g. 10.0.0.0/8)"))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d.
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        // Several header lines count as one list, in order (RFC 9110, section 5.3).
        let hops: Vec<&str> = headers
            .get_all(FORWARDED_FOR)
            .iter()
            .map(|v| v.to_str().unwrap_or(""))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        for hop in hops.iter().rev() {
            // A hop that is no address (a proxy's obfuscated identifier, garbage): the proxy before it is the
            // last one known, so it stands for the client.
            let Some(ip) = parse_hop(hop) else { break };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }

    /// [`TrustedProxies::client`] as the audit log records it; `None` without a peer (not served over TCP).
    pub fn source(&self, peer: Option<SocketAddr>, headers: &HeaderMap) -> Option<String> {
        peer.map(|p| self.client(p.ip(), headers).to_string())
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port (`203.0.113.7:41234`, `[2001:db8::1]:443`), as
/// some load balancers write it.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let ip = hop.parse::<IpAddr>().ok().or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| TrustedProxies::parse_net(n).unwrap()).collect())
    }

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(FORWARDED_FOR, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let none = TrustedProxies::default();
        assert_eq!(none.client(ip("10.0.0.5"), &headers(&["203.0.113.7"])), ip("10.0.0.5"));
    }

    #[test]
    fn an_untrusted_peer_cannot_choose_its_address() {
        let t = trusted(&["10.0.0.0/8"]);
        assert_eq!(t.client(ip("198.51.100.9"), &headers(&["203.0.113.7"])), ip("198.51.100.9"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = trusted(&["10.0.0.0/8", "192.0.2.1"]);
        // Client-written garbage and a forged address on the left are skipped.
        let h = headers(&["1.2.3.4, 203.0.113.7", "192.0.2.1"]);
        assert_eq!(t.client(ip("10.1.2.3"), &h), ip("203.0.113.7"));
        assert_eq!(t.client(ip("10.1.2.3"), &headers(&["203.0.113.7:41234"])), ip("203.0.113.7"));
        assert_eq!(t.client(ip("10.1.2.3"), &headers(&["[2001:db8::1]:443"])), ip("2001:db8::1"));
        // Only trusted hops: the leftmost of them.
        assert_eq!(t.client(ip("10.1.2.3"), &headers(&["10.9.9.9, 192.0.2.1"])), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.1.2.3"), &HeaderMap::new()), ip("10.1.2.3"));
        // A malformed hop ends the walk at the last trusted address.
        assert_eq!(t.client(ip("10.1.2.3"), &headers(&["203.0.113.7, unknown"])), ip("10.1.2.3"));
    }

    #[test]
    fn mapped_ipv4_peers_and_single_addresses() {
        let t = trusted(&["127.0.0.1"]);
        assert_eq!(t.client(ip("::ffff:127.0.0.1"), &headers(&["203.0.113.7"])), ip("203.0.113.7"));
        assert!(TrustedProxies::parse_net("fd00::/8").is_ok());
        let err = TrustedProxies::parse_net("10.0.0.0/33").unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse_net("proxy.local").is_err());
    }
}
