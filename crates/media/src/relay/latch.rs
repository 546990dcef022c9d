//! Symmetric RTP (RFC 4961) latching, for far ends behind NAT: a leg
//! sends to the address its SDP gave until a packet arrives, then to that
//! packet's source, and accepts packets from that source only. Used
//! separately for a leg's RTP and RTCP ports.

use std::net::SocketAddr;

use super::io::RawAddr;

/// Where one port of a leg sends, and whom it accepts.
#[derive(Clone, Copy, Default)]
pub struct Latch {
    remote: Option<RawAddr>,
    latched: bool,
}

impl std::fmt::Debug for Latch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Latch")
            .field("remote", &self.remote())
            .field("latched", &self.latched)
            .finish()
    }
}

impl Latch {
    /// Unlatched, sending to the SDP's address if there is one.
    pub fn new(sdp_address: Option<SocketAddr>) -> Self {
        Self {
            remote: sdp_address.map(RawAddr::new),
            latched: false,
        }
    }

    /// Whether a packet from `source` is accepted. The first packet's
    /// source becomes the remote address; after that, only it is.
    pub fn accept(&mut self, source: SocketAddr) -> bool {
        if !self.latched {
            if self.remote.is_none_or(|r| r.addr != source) {
                self.remote = Some(RawAddr::new(source));
            }
            self.latched = true;
            return true;
        }
        self.remote.is_some_and(|r| r.addr == source)
    }

    /// Where packets for the far end go now.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote.map(|r| r.addr)
    }

    pub fn is_latched(&self) -> bool {
        self.latched
    }

    pub(crate) fn raw_remote(&self) -> Option<&RawAddr> {
        self.remote.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_source_wins_over_the_sdp_address_and_then_only_it() {
        let mut latch = Latch::new(Some(addr("192.0.2.1:4000")));
        assert_eq!(latch.remote(), Some(addr("192.0.2.1:4000")));
        assert!(!latch.is_latched());
        assert!(latch.accept(addr("198.51.100.9:61000")));
        assert!(latch.is_latched());
        assert_eq!(latch.remote(), Some(addr("198.51.100.9:61000")));
        assert!(latch.accept(addr("198.51.100.9:61000")));
        assert!(
            !latch.accept(addr("192.0.2.1:4000")),
            "not even the SDP's address"
        );
        assert!(
            !latch.accept(addr("198.51.100.9:61001")),
            "another port is another source"
        );
    }

    #[test]
    fn without_an_sdp_address_the_first_packet_gives_one() {
        let mut latch = Latch::new(None);
        assert_eq!(latch.remote(), None);
        assert!(latch.accept(addr("[2001:db8::5]:5004")));
        assert_eq!(latch.remote(), Some(addr("[2001:db8::5]:5004")));
    }
}
