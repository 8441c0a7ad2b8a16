//! Outgoing-request targets: which addresses a webhook may reach.
//!
//! A service that calls URLs on behalf of many teams must not become a way into its own
//! network. With [`TargetPolicy::DenyPrivate`] a target is checked twice:
//!
//! - when a job is saved ([`TargetGuard::vet`]): a literal address in any spelling the URL
//!   parser accepts (it normalises `0x7f.1`, `017700000001`, `2130706433`, `127.1`, ...) and
//!   every address a name resolves to;
//! - when a call connects (the executor's resolver keeps only the addresses
//!   [`is_internal`] allows, and connects only to one of them), so a name that resolves to a
//!   public address at save time and to a private one later (DNS rebinding) is refused.
//!
//! Redirects are never followed, and the client uses no proxy.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::domain::TargetUrl;
use crate::ports::Resolver;

/// The validation message for a refused target.
pub const PRIVATE_TARGET: &str = "must not target private or internal addresses";

/// Whether webhooks may reach private and internal addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TargetPolicy {
    /// Any address (the embedded default, for development against local services).
    #[default]
    AllowPrivate,
    /// Public unicast addresses only (the hosted default; `krafter serve --deny-private-targets`).
    DenyPrivate,
}

/// Checks targets against a policy, resolving names with `resolver`.
#[derive(Clone)]
pub struct TargetGuard {
    policy: TargetPolicy,
    resolver: Arc<dyn Resolver>,
}

/// How long a save waits for a name to resolve. A name that does not resolve in time is
/// accepted (it may be created later); the connect-time check still applies.
const SAVE_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

impl TargetGuard {
    pub fn new(policy: TargetPolicy, resolver: Arc<dyn Resolver>) -> Self {
        Self { policy, resolver }
    }

    pub fn policy(&self) -> TargetPolicy {
        self.policy
    }

    pub fn resolver(&self) -> &Arc<dyn Resolver> {
        &self.resolver
    }

    /// The save-time check: `Err(PRIVATE_TARGET)` for a refused literal address, a
    /// `localhost` name, or a name with any internal address.
    pub async fn vet(&self, url: &TargetUrl) -> Result<(), &'static str> {
        if self.policy == TargetPolicy::AllowPrivate {
            return Ok(());
        }
        match url.url().host() {
            Some(url::Host::Ipv4(ip)) => refuse_if(is_internal(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => refuse_if(is_internal(IpAddr::V6(ip))),
            Some(url::Host::Domain(name)) => {
                if is_local_name(name) {
                    return Err(PRIVATE_TARGET);
                }
                let lookup = self.resolver.resolve(name);
                match tokio::time::timeout(SAVE_LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(addrs)) => refuse_if(addrs.iter().any(|a| is_internal(a.ip()))),
                    Ok(Err(e)) => {
                        debug!(host = name, error = %e, "target name did not resolve at save");
                        Ok(())
                    }
                    Err(_) => {
                        debug!(host = name, "target name lookup timed out at save");
                        Ok(())
                    }
                }
            }
            None => Err(PRIVATE_TARGET),
        }
    }

    /// The connect-time check of a literal address (names go through [`Self::allowed`]).
    pub fn literal_refused(&self, url: &url::Url) -> Option<IpAddr> {
        if self.policy == TargetPolicy::AllowPrivate {
            return None;
        }
        let ip = match url.host()? {
            url::Host::Ipv4(ip) => IpAddr::V4(ip),
            url::Host::Ipv6(ip) => IpAddr::V6(ip),
            url::Host::Domain(_) => return None,
        };
        is_internal(ip).then_some(ip)
    }

    /// The connect-time filter: the addresses a call may connect to.
    pub fn allowed(&self, addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        match self.policy {
            TargetPolicy::AllowPrivate => addrs,
            TargetPolicy::DenyPrivate => {
                addrs.into_iter().filter(|a| !is_internal(a.ip())).collect()
            }
        }
    }
}

fn refuse_if(internal: bool) -> Result<(), &'static str> {
    if internal {
        Err(PRIVATE_TARGET)
    } else {
        Ok(())
    }
}

/// `localhost` and its subdomains always mean this machine (RFC 6761), whatever DNS says.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// True for every address a webhook must not reach under [`TargetPolicy::DenyPrivate`]:
/// anything that is not public unicast, and the IPv6 forms that embed such an IPv4 address.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => is_internal_v6(v6),
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0                                   // "this network", 0.0.0.0
        || a == 10                           // private
        || a == 127                          // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64.0.0/10
        || (a == 169 && b == 254)            // link-local, incl. 169.254.169.254 (metadata)
        || (a == 172 && (16..32).contains(&b)) // private
        || (a == 192 && b == 0 && c == 0)    // IETF protocol assignments (192.0.0.0/24)
        || (a == 192 && b == 0 && c == 2)    // TEST-NET-1
        || (a == 192 && b == 88 && c == 99)  // 6to4 relay anycast
        || (a == 192 && b == 168)            // private
        || (a == 198 && (b == 18 || b == 19)) // benchmarking 198.18.0.0/15
        || (a == 198 && b == 51 && c == 100) // TEST-NET-2
        || (a == 203 && b == 0 && c == 113)  // TEST-NET-3
        || a >= 224 // multicast 224/4, reserved 240/4, broadcast 255.255.255.255
}

fn is_internal_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    // Forms that carry an IPv4 address: judge by that address.
    if let Some(v4) = embedded_v4(&ip) {
        return is_internal_v4(v4);
    }
    ip.is_unspecified()                      // ::
        || ip.is_loopback()                  // ::1
        || s[0] & 0xfe00 == 0xfc00           // unique local fc00::/7 (incl. fd00:ec2::254)
        || s[0] & 0xffc0 == 0xfe80           // link-local fe80::/10
        || s[0] & 0xffc0 == 0xfec0           // site-local fec0::/10 (deprecated)
        || s[0] & 0xff00 == 0xff00           // multicast ff00::/8
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation 2001:db8::/32
        || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments 2001::/23 (incl. Teredo)
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 0x0001) // local-use NAT64 64:ff9b:1::/48
        || s[0..5] == [0, 0, 0, 0, 0] // the rest of ::/80 (reserved)
}

/// The IPv4 address inside IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// IPv4-translated (`::ffff:0:a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`) and 6to4 (`2002:AABB:CCDD::`)
/// addresses.
fn embedded_v4(ip: &Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = || Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(tail()),
        [0, 0, 0, 0, 0xffff, 0, _, _] => Some(tail()),
        // `::` and `::1` are themselves, not 0.0.0.0 and 0.0.0.1.
        [0, 0, 0, 0, 0, 0, 0, 0 | 1] => None,
        [0, 0, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x0064, 0xff9b, 0, 0, 0, 0, _, _] => Some(tail()),
        [0x2002, hi, lo, ..] => Some(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn internal(s: &str) -> bool {
        is_internal(s.parse().unwrap())
    }

    #[test]
    fn every_non_public_ipv4_range_is_internal() {
        for ip in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(internal(ip), "{ip} must be internal");
        }
    }

    #[test]
    fn public_ipv4_neighbours_of_internal_ranges_are_allowed() {
        for ip in [
            "1.1.1.1",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.1",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.1",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "203.0.114.1",
            "223.255.255.255",
            "93.184.216.34",
        ] {
            assert!(!internal(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn every_non_public_ipv6_range_is_internal() {
        for ip in [
            "::",
            "::1",
            "fc00::1",
            "fd00:ec2::254",
            "fdff:ffff::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff0e::1",
            "100::1",
            "2001:db8::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "64:ff9b:1::a",
            // IPv4 inside IPv6.
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0:10.1.1.1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::0.0.0.2",
            "64:ff9b::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::192.168.0.1",
            "2002:7f00:1::",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::",
            "::ffff:100.64.0.1",
            "::ffff:255.255.255.255",
        ] {
            assert!(internal(ip), "{ip} must be internal");
        }
    }

    #[test]
    fn public_ipv6_and_embedded_public_ipv4_are_allowed() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:93.184.216.34",
            "64:ff9b::93.184.216.34",
            "2002:5db8:d822::1",
        ] {
            assert!(!internal(ip), "{ip} must be allowed");
        }
    }

    #[test]
    fn localhost_names_are_local_in_every_case_and_with_a_trailing_dot() {
        for name in [
            "localhost",
            "LOCALHOST",
            "localhost.",
            "api.localhost",
            "a.b.LocalHost.",
        ] {
            assert!(is_local_name(name), "{name}");
        }
        for name in ["localhost.example.com", "notlocalhost", "example.com"] {
            assert!(!is_local_name(name), "{name}");
        }
    }
}
