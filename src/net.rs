//! Who is on the other end of a request: the client address and scheme, believing forwarded headers only
//! from trusted proxies.

use ipnet::IpNet;
use std::net::IpAddr;

/// The scheme the client used to reach Pawfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

/// The client behind a request, as far as Pawfile can trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientInfo {
    /// The client's address (for audit rows and rate limits).
    pub addr: IpAddr,
    /// The scheme the client used (for the Secure cookie decision).
    pub scheme: Scheme,
}

/// The proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` headers are believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trust the given addresses and networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether `addr` is one of the trusted proxies.
    pub fn trusts(&self, addr: IpAddr) -> bool {
        let addr = addr.to_canonical();
        self.0.iter().any(|net| net.contains(&addr))
    }

    /// Resolves the client of a request that arrived from `peer` over `direct_scheme`, with the given
    /// `X-Forwarded-For` header values (in order) and `X-Forwarded-Proto` value.
    ///
    /// Walks `X-Forwarded-For` from the right, skipping trusted proxies: the first untrusted hop is the
    /// client. Anything a client wrote to the left of that is ignored, so it cannot spoof its address.
    pub fn resolve(
        &self,
        peer: IpAddr,
        direct_scheme: Scheme,
        forwarded_for: &[&str],
        forwarded_proto: Option<&str>,
    ) -> ClientInfo {
        let peer = peer.to_canonical();
        if !self.trusts(peer) {
            return ClientInfo {
                addr: peer,
                scheme: direct_scheme,
            };
        }
        let hops = forwarded_for
            .iter()
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .filter(|hop| !hop.is_empty());
        let mut addr = peer;
        for hop in hops.collect::<Vec<_>>().into_iter().rev() {
            match parse_hop(hop) {
                Some(hop) => {
                    addr = hop;
                    if !self.trusts(hop) {
                        break;
                    }
                }
                None => break,
            }
        }
        let scheme = forwarded_proto
            .and_then(|value| value.split(',').next())
            .map(|value| value.trim().to_ascii_lowercase())
            .and_then(|value| match value.as_str() {
                "https" => Some(Scheme::Https),
                "http" => Some(Scheme::Http),
                _ => None,
            })
            .unwrap_or(direct_scheme);
        ClientInfo { addr, scheme }
    }
}

/// The address a client is known by for limits: an IPv4 address itself, an IPv6 address by its /64
/// (one subscriber's network: a client changes addresses within it at will).
pub fn address_group(addr: IpAddr) -> IpAddr {
    match addr.to_canonical() {
        IpAddr::V6(v6) => {
            let network = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(std::net::Ipv6Addr::from(network))
        }
        v4 => v4,
    }
}

/// How a client address appears in rate-limit keys: as [`address_group`] names it (`2001:db8::/64`
/// for IPv6).
pub fn limit_key(addr: IpAddr) -> String {
    match address_group(addr) {
        IpAddr::V6(network) => format!("{network}/64"),
        v4 => v4.to_string(),
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5678`, `[::1]:80`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(addr) = hop.parse::<IpAddr>() {
        return Some(addr.to_canonical());
    }
    hop.parse::<std::net::SocketAddr>()
        .ok()
        .map(|addr| addr.ip().to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::new(list.iter().map(|net| net.parse().unwrap()).collect())
    }

    #[test]
    fn ipv6_clients_are_grouped_by_their_64_and_ipv4_by_their_address() {
        assert_eq!(limit_key(ip("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64");
        assert_ne!(limit_key(ip("2001:db8:1:3::1")), "2001:db8:1:2::/64");
        assert_eq!(limit_key(ip("192.0.2.7")), "192.0.2.7");
        assert_eq!(limit_key(ip("::ffff:192.0.2.7")), "192.0.2.7");
        assert_eq!(address_group(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let client = TrustedProxies::default().resolve(
            ip("203.0.113.9"),
            Scheme::Http,
            &["198.51.100.1"],
            Some("https"),
        );
        assert_eq!(
            client,
            ClientInfo {
                addr: ip("203.0.113.9"),
                scheme: Scheme::Http
            }
        );
    }

    #[test]
    fn a_trusted_proxy_sets_address_and_scheme() {
        let client =
            proxies(&["10.0.0.0/8"]).resolve(ip("10.0.0.2"), Scheme::Http, &["198.51.100.7"], Some("HTTPS"));
        assert_eq!(
            client,
            ClientInfo {
                addr: ip("198.51.100.7"),
                scheme: Scheme::Https
            }
        );
    }

    #[test]
    fn spoofed_entries_left_of_the_client_are_ignored() {
        let client = proxies(&["10.0.0.0/8"]).resolve(
            ip("10.0.0.2"),
            Scheme::Http,
            &["1.1.1.1, 198.51.100.7", "10.0.0.3"],
            None,
        );
        assert_eq!(client.addr, ip("198.51.100.7"));
        assert_eq!(client.scheme, Scheme::Http);
    }

    #[test]
    fn ports_and_mapped_addresses_are_understood() {
        let trusted = proxies(&["127.0.0.1/32"]);
        let client = trusted.resolve(ip("::ffff:127.0.0.1"), Scheme::Http, &["198.51.100.7:4711"], None);
        assert_eq!(client.addr, ip("198.51.100.7"));
        let client = trusted.resolve(ip("127.0.0.1"), Scheme::Http, &["[2001:db8::1]:80"], None);
        assert_eq!(client.addr, ip("2001:db8::1"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_hop() {
        let client =
            proxies(&["10.0.0.0/8"]).resolve(ip("10.0.0.2"), Scheme::Http, &["nonsense"], Some("gopher"));
        assert_eq!(
            client,
            ClientInfo {
                addr: ip("10.0.0.2"),
                scheme: Scheme::Http
            }
        );
    }
}
