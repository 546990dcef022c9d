//! Which addresses a webhook may be sent to: the guard against server-side
//! request forgery (SSRF). A tenant must not be able to make the platform
//! call its own internals (loopback, the cluster's private networks, cloud
//! metadata at 169.254.169.254, …), so every address an endpoint's host
//! resolves to must be a public unicast address, both when the endpoint is
//! registered and at every attempt (so DNS rebinding gains nothing).
//!
//! Ranges from the IANA special-purpose registries (RFC 6890 and updates):
//! IPv4 this-network 0/8, private 10/8, 172.16/12, 192.168/16 (RFC 1918),
//! shared CGNAT 100.64/10 (RFC 6598), loopback 127/8, link-local 169.254/16,
//! IETF protocol assignments 192.0.0/24, documentation 192.0.2/24,
//! 198.51.100/24, 203.0.113/24 (RFC 5737), benchmarking 198.18/15,
//! multicast 224/4, reserved 240/4 and broadcast; IPv6 unspecified,
//! loopback, multicast, link-local fe80::/10, site-local fec0::/10,
//! unique-local fc00::/7, documentation 2001:db8::/32, local-use NAT64
//! 64:ff9b:1::/48 (RFC 8215: translates to whatever the local network
//! means, so the IPv4 address it carries proves nothing), Teredo 2001::/32
//! (RFC 4380: a tunnel whose relay reaches the embedded, obfuscated IPv4
//! server and client), and IPv4 addresses embedded in IPv6 (mapped `::ffff:0:0/96`, compatible `::/96`, NAT64
//! `64:ff9b::/96`, 6to4 `2002::/16`) judged as the IPv4 address they carry.
//! Written with `std` only: the rules are a short table.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why `address` may not receive webhooks, or `None` if it is a public
/// unicast address.
pub fn forbidden_reason(address: IpAddr) -> Option<&'static str> {
    match address {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(address: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = address.octets();
    if address.is_unspecified() || a == 0 {
        Some("an unspecified (0.0.0.0/8) address")
    } else if address.is_loopback() {
        Some("a loopback address")
    } else if address.is_private() {
        Some("a private address")
    } else if a == 100 && (b & 0xc0) == 64 {
        Some("a shared (CGNAT) address")
    } else if address.is_link_local() {
        Some("a link-local address")
    } else if a == 192 && b == 0 && c == 0 {
        Some("an IETF protocol address")
    } else if address.is_documentation() {
        Some("a documentation address")
    } else if a == 198 && (b & 0xfe) == 18 {
        Some("a benchmarking address")
    } else if address.is_broadcast() {
        Some("the broadcast address")
    } else if address.is_multicast() {
        Some("a multicast address")
    } else if a >= 240 {
        Some("a reserved address")
    } else {
        None
    }
}

fn forbidden_v6(address: Ipv6Addr) -> Option<&'static str> {
    let segments = address.segments();
    if address.is_unspecified() {
        Some("an unspecified address")
    } else if address.is_loopback() {
        Some("a loopback address")
    } else if let Some(v4) = embedded_v4(address) {
        forbidden_v4(v4)
    } else if address.is_multicast() {
        Some("a multicast address")
    } else if address.is_unicast_link_local() {
        Some("a link-local address")
    } else if (segments[0] & 0xffc0) == 0xfec0 {
        Some("a site-local address")
    } else if address.is_unique_local() {
        Some("a unique-local address")
    } else if segments[0] == 0x2001 && segments[1] == 0x0db8 {
        Some("a documentation address")
    } else if segments[..3] == [0x64, 0xff9b, 0x1] {
        Some("a local-use NAT64 address")
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        Some("a Teredo address")
    } else {
        None
    }
}

/// The IPv4 address an IPv6 address stands for, in the forms that reach
/// an IPv4 host.
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let octets = address.octets();
    let last_four = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if let Some(mapped) = address.to_ipv4_mapped() {
        Some(mapped)
    } else if segments[..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated); `::` and `::1` are handled before.
        Some(last_four)
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(last_four)
    } else if segments[0] == 0x2002 {
        Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(text: &str) -> Option<&'static str> {
        forbidden_reason(text.parse().unwrap())
    }

    #[test]
    fn non_public_ipv4_ranges_are_forbidden() {
        for address in [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "169.254.169.254",
            "192.0.0.8",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(reason(address).is_some(), "{address} should be forbidden");
        }
    }

    #[test]
    fn public_ipv4_addresses_are_allowed() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "198.17.255.255",
            "198.20.0.1",
            "192.0.1.1",
        ] {
            assert_eq!(reason(address), None, "{address} should be allowed");
        }
    }

    #[test]
    fn non_public_ipv6_ranges_are_forbidden() {
        for address in [
            "::",
            "::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "fc00::1",
            "fd12:3456::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2002:c0a8:101::1",
            "64:ff9b:1::808:808",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(reason(address).is_some(), "{address} should be forbidden");
        }
    }

    #[test]
    fn public_ipv6_addresses_are_allowed() {
        for address in [
            "2606:4700:4700::1111",
            "2a00:1450:4007:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "64:ff9b:2::1",
            "2001:1::1",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(reason(address), None, "{address} should be allowed");
        }
    }

    #[test]
    fn the_reason_names_the_range() {
        assert_eq!(reason("127.0.0.1"), Some("a loopback address"));
        assert_eq!(reason("::ffff:192.168.0.1"), Some("a private address"));
        assert_eq!(reason("169.254.169.254"), Some("a link-local address"));
        assert_eq!(reason("64:ff9b:1::1"), Some("a local-use NAT64 address"));
        assert_eq!(reason("2001::1"), Some("a Teredo address"));
    }
}
