//! Client addresses: CIDR ranges, and finding the real client behind
//! trusted proxies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::Ipv4Net;

/// An IP address range such as `10.0.0.0/8`, or a single address. An
/// IPv4-mapped IPv6 range is kept as the IPv4 range it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet(ipnet::IpNet);

/// The text is not an IP address or CIDR range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IP address or CIDR range")]
pub struct IpNetError;

impl IpNet {
    /// Whether `ip` is in this range. IPv4-mapped IPv6 addresses count as
    /// their IPv4 address.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for IpNet {
    type Err = IpNetError;

    /// A CIDR range, or a bare address (a range of one).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bare = |_| s.parse::<IpAddr>().map(ipnet::IpNet::from);
        let net = s.parse().or_else(bare).map_err(|_| IpNetError)?;
        let ipnet::IpNet::V6(v6) = net else {
            return Ok(Self(net));
        };
        match (v6.addr().to_ipv4_mapped(), v6.prefix_len().checked_sub(96)) {
            (None, _) => Ok(Self(net)),
            (Some(v4), Some(prefix)) => Ok(Self(
                Ipv4Net::new(v4, prefix).map_err(|_| IpNetError)?.into(),
            )),
            // Reaches past the IPv4-mapped addresses: surely a mistake.
            (Some(_), None) => Err(IpNetError),
        }
    }
}

impl fmt::Display for IpNet {
    /// A range of one address is written as the bare address.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case `X-Forwarded-For` is read from the right, skipping trusted
/// proxies, and the first untrusted address is the client. An unreadable
/// entry stops the walk at the last trusted hop (it cannot be believed).
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|net| net.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(peer) {
        return peer;
    }
    let Some(header) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in header.rsplit(',') {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            return client;
        };
        client = canonical(ip);
        if !is_trusted(client) {
            return client;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_contain_what_they_should() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.200.3.4")));
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(net.contains(ip("::ffff:10.1.1.1")));
        let one: IpNet = "34.67.146.145".parse().unwrap();
        assert!(one.contains(ip("34.67.146.145")));
        assert!(!one.contains(ip("34.67.146.146")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8::1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["", "10.0.0.0/33", "10.0.0.0/", "x", "10.0.0.0/-1", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_mapped_ranges_are_their_ipv4_range() {
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().unwrap();
        assert_eq!(mapped, "10.0.0.0/8".parse().unwrap());
        assert!(mapped.contains(ip("10.9.9.9")) && !mapped.contains(ip("11.0.0.1")));
        assert_eq!(
            "::ffff:1.2.3.4".parse::<IpNet>().unwrap().to_string(),
            "1.2.3.4"
        );
        assert!("::ffff:10.0.0.0/8".parse::<IpNet>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = vec!["127.0.0.1".parse().unwrap(), "10.0.0.0/8".parse().unwrap()];
        let xff = Some("6.6.6.6, 34.67.146.145, 10.0.0.2");
        assert_eq!(
            client_ip(ip("127.0.0.1"), xff, &trusted),
            ip("34.67.146.145")
        );
        assert_eq!(client_ip(ip("9.9.9.9"), xff, &trusted), ip("9.9.9.9"));
        assert_eq!(client_ip(ip("127.0.0.1"), None, &trusted), ip("127.0.0.1"));
        assert_eq!(client_ip(ip("127.0.0.1"), xff, &[]), ip("127.0.0.1"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), Some("garbage, 10.0.0.3"), &trusted),
            ip("10.0.0.3")
        );
    }
}
