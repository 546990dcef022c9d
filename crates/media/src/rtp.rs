//! RTP and RTCP headers read in place (RFC 3550 §5.1, §6.4), the RTP/RTCP
//! demultiplexing rule of RFC 5761 §4, and in-place rewrites of the fields
//! the relay changes for stream continuity.
//!
//! Nothing here allocates or panics on outside input: a datagram is either
//! a well-formed header over a slice of it, or [`Malformed`] with the reason.

mod stats;

pub use stats::{ReceiverStats, Reception};

/// Length of the fixed RTP header (RFC 3550 §5.1), and so of the shortest
/// RTP packet.
pub const RTP_HEADER_LEN: usize = 12;
/// Length of the RTCP common header (RFC 3550 §6.4.1).
pub const RTCP_HEADER_LEN: usize = 4;

/// Why a datagram is neither a well-formed RTP nor RTCP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than the header its first bytes announce.
    TooShort,
    /// The version field is not 2.
    Version(u8),
    /// The padding bit is set but the padding count is zero or runs into
    /// the header (RFC 3550 §5.1).
    Padding,
    /// The RTCP length field runs past the datagram (RFC 3550 §6.4.1).
    RtcpLength,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort => f.write_str("shorter than its header"),
            Self::Version(v) => write!(f, "version {v}, not 2"),
            Self::Padding => f.write_str("padding count does not fit the packet"),
            Self::RtcpLength => f.write_str("RTCP length runs past the datagram"),
        }
    }
}

impl std::error::Error for Malformed {}

/// What a datagram on an RTP port is, by RFC 5761 §4: an RTCP packet type
/// (192–223) occupies the second byte where RTP has the marker bit and a
/// payload type of 64–95, which RTP must therefore not use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    Rtp(RtpHeader<'a>),
    Rtcp(RtcpHeader),
}

/// Classifies and checks one datagram.
pub fn classify(datagram: &[u8]) -> Result<Packet<'_>, Malformed> {
    match datagram.get(1) {
        Some(192..=223) => RtcpHeader::peek(datagram).map(Packet::Rtcp),
        _ => RtpHeader::peek(datagram).map(Packet::Rtp),
    }
}

/// The header of one RTP packet (RFC 3550 §5.1), read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader<'a> {
    packet: &'a [u8],
    payload_offset: usize,
    payload_end: usize,
}

impl<'a> RtpHeader<'a> {
    /// Checks the version, the CSRC list, the header extension and the
    /// padding against the datagram's length.
    pub fn peek(packet: &'a [u8]) -> Result<Self, Malformed> {
        if packet.len() < RTP_HEADER_LEN {
            return Err(Malformed::TooShort);
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(Malformed::Version(version));
        }
        let csrc_count = usize::from(packet[0] & 0x0f);
        let mut offset = RTP_HEADER_LEN + 4 * csrc_count;
        if packet[0] & 0x10 != 0 {
            // RFC 3550 §5.3.1: 16 bits profile-defined, 16 bits length in
            // 32-bit words, not counting this 4-byte header.
            let words = packet
                .get(offset + 2..offset + 4)
                .ok_or(Malformed::TooShort)?;
            offset += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
        }
        if offset > packet.len() {
            return Err(Malformed::TooShort);
        }
        let mut payload_end = packet.len();
        if packet[0] & 0x20 != 0 {
            let padding = usize::from(packet[packet.len() - 1]);
            if padding == 0 || padding > packet.len() - offset {
                return Err(Malformed::Padding);
            }
            payload_end -= padding;
        }
        Ok(Self {
            packet,
            payload_offset: offset,
            payload_end,
        })
    }

    pub fn version(&self) -> u8 {
        self.packet[0] >> 6
    }

    pub fn padding(&self) -> bool {
        self.packet[0] & 0x20 != 0
    }

    pub fn extension(&self) -> bool {
        self.packet[0] & 0x10 != 0
    }

    pub fn csrc_count(&self) -> u8 {
        self.packet[0] & 0x0f
    }

    pub fn marker(&self) -> bool {
        self.packet[1] & 0x80 != 0
    }

    pub fn payload_type(&self) -> u8 {
        self.packet[1] & 0x7f
    }

    pub fn sequence(&self) -> u16 {
        u16::from_be_bytes([self.packet[2], self.packet[3]])
    }

    pub fn timestamp(&self) -> u32 {
        u32::from_be_bytes([
            self.packet[4],
            self.packet[5],
            self.packet[6],
            self.packet[7],
        ])
    }

    pub fn ssrc(&self) -> u32 {
        u32::from_be_bytes([
            self.packet[8],
            self.packet[9],
            self.packet[10],
            self.packet[11],
        ])
    }

    /// The CSRC identifiers (RFC 3550 §5.1), in order.
    pub fn csrcs(&self) -> impl Iterator<Item = u32> + 'a {
        let list =
            &self.packet[RTP_HEADER_LEN..RTP_HEADER_LEN + 4 * usize::from(self.csrc_count())];
        list.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
    }

    /// Where the payload starts: after the CSRCs and the header extension.
    pub fn payload_offset(&self) -> usize {
        self.payload_offset
    }

    /// The payload, without padding.
    pub fn payload(&self) -> &'a [u8] {
        &self.packet[self.payload_offset..self.payload_end]
    }
}

/// Rewrites an RTP packet's sequence number in place. The caller has
/// checked the packet with [`RtpHeader::peek`]; a shorter slice is left
/// unchanged.
pub fn set_sequence(packet: &mut [u8], sequence: u16) {
    if let Some(field) = packet.get_mut(2..4) {
        field.copy_from_slice(&sequence.to_be_bytes());
    }
}

/// Rewrites an RTP packet's timestamp in place (see [`set_sequence`]).
pub fn set_timestamp(packet: &mut [u8], timestamp: u32) {
    if let Some(field) = packet.get_mut(4..8) {
        field.copy_from_slice(&timestamp.to_be_bytes());
    }
}

/// Rewrites an RTP packet's SSRC in place (see [`set_sequence`]).
pub fn set_ssrc(packet: &mut [u8], ssrc: u32) {
    if let Some(field) = packet.get_mut(8..12) {
        field.copy_from_slice(&ssrc.to_be_bytes());
    }
}

/// The common header of the first packet of an RTCP compound packet
/// (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtcpHeader {
    /// 200 SR, 201 RR, 202 SDES, 203 BYE, 204 APP (RFC 3550); 205–207 are
    /// later feedback and XR types, all relayed alike.
    pub packet_type: u8,
    /// Reception report count, source count or subtype.
    pub count: u8,
    /// The first packet's length in bytes, header included.
    pub length: usize,
    /// The sender's SSRC, when the packet is long enough to carry one.
    pub ssrc: Option<u32>,
}

impl RtcpHeader {
    /// Checks the version and that the first packet's length fits the
    /// datagram.
    pub fn peek(packet: &[u8]) -> Result<Self, Malformed> {
        if packet.len() < RTCP_HEADER_LEN {
            return Err(Malformed::TooShort);
        }
        let version = packet[0] >> 6;
        if version != 2 {
            return Err(Malformed::Version(version));
        }
        let length = 4 * (usize::from(u16::from_be_bytes([packet[2], packet[3]])) + 1);
        if length > packet.len() {
            return Err(Malformed::RtcpLength);
        }
        let ssrc = packet
            .get(4..8)
            .filter(|_| length >= 8)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]));
        Ok(Self {
            packet_type: packet[1],
            count: packet[0] & 0x1f,
            length,
            ssrc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn reads_every_field_of_a_pcmu_packet() {
        let mut p = rtp(0xabcd, 0x0102_0304, 0xdead_beef, &[0xff; 160]);
        p[1] = 0x80; // marker, PT 0
        let h = RtpHeader::peek(&p).unwrap();
        assert_eq!(h.version(), 2);
        assert!(h.marker());
        assert_eq!(h.payload_type(), 0);
        assert_eq!(h.sequence(), 0xabcd);
        assert_eq!(h.timestamp(), 0x0102_0304);
        assert_eq!(h.ssrc(), 0xdead_beef);
        assert_eq!(h.payload_offset(), 12);
        assert_eq!(h.payload().len(), 160);
        assert!(!h.padding() && !h.extension());
    }

    #[test]
    fn payload_starts_after_csrcs_and_extension_and_excludes_padding() {
        let mut p = vec![0xb2, 101]; // V=2, P, X, CC=2; PT 101
        p.extend_from_slice(&[0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        p.extend_from_slice(&[0, 0, 0, 7, 0, 0, 0, 8]); // CSRCs
        p.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        p.extend_from_slice(&[9, 9, 9, 9]); // payload
        p.extend_from_slice(&[0, 0, 3]); // padding of 3
        let h = RtpHeader::peek(&p).unwrap();
        assert_eq!(h.csrcs().collect::<Vec<_>>(), vec![7, 8]);
        assert_eq!(h.payload_offset(), 12 + 8 + 8);
        assert_eq!(h.payload(), &[9, 9, 9, 9]);
    }

    #[test]
    fn refuses_short_packets_wrong_versions_and_bad_padding_or_extension() {
        assert_eq!(RtpHeader::peek(&[0x80; 11]), Err(Malformed::TooShort));
        assert_eq!(RtpHeader::peek(&[]), Err(Malformed::TooShort));
        let mut v1 = rtp(1, 1, 1, &[]);
        v1[0] = 0x40;
        assert_eq!(RtpHeader::peek(&v1), Err(Malformed::Version(1)));
        let mut csrcs = rtp(1, 1, 1, &[0; 8]);
        csrcs[0] |= 0x03; // 3 CSRCs = 12 bytes, only 8 follow
        assert_eq!(RtpHeader::peek(&csrcs), Err(Malformed::TooShort));
        let mut ext = rtp(1, 1, 1, &[0xbe, 0xde, 0, 5]);
        ext[0] |= 0x10; // 5 words announced, none follow
        assert_eq!(RtpHeader::peek(&ext), Err(Malformed::TooShort));
        let mut ext_cut = rtp(1, 1, 1, &[0xbe]);
        ext_cut[0] |= 0x10;
        assert_eq!(RtpHeader::peek(&ext_cut), Err(Malformed::TooShort));
        let mut pad0 = rtp(1, 1, 1, &[1, 2, 0]);
        pad0[0] |= 0x20;
        assert_eq!(RtpHeader::peek(&pad0), Err(Malformed::Padding));
        let mut pad_big = rtp(1, 1, 1, &[1, 2, 4]);
        pad_big[0] |= 0x20;
        assert_eq!(RtpHeader::peek(&pad_big), Err(Malformed::Padding));
    }

    #[test]
    fn no_prefix_of_a_packet_panics() {
        let mut p = vec![0xbf, 0x7f];
        p.extend_from_slice(&[0xff; 80]);
        for len in 0..=p.len() {
            let _ = classify(&p[..len]);
        }
        for first in 0..=255u8 {
            for len in 0..20 {
                let mut d = vec![0xffu8; len];
                if let Some(b) = d.first_mut() {
                    *b = first;
                }
                let _ = classify(&d);
            }
        }
    }

    #[test]
    fn rtcp_packet_types_are_told_from_rtp_by_the_second_byte() {
        // An RTCP receiver report with no report blocks: 8 bytes.
        let rr = [0x80, 201, 0, 1, 0x11, 0x22, 0x33, 0x44];
        match classify(&rr).unwrap() {
            Packet::Rtcp(h) => {
                assert_eq!(h.packet_type, 201);
                assert_eq!(h.length, 8);
                assert_eq!(h.ssrc, Some(0x1122_3344));
            }
            other => panic!("not RTCP: {other:?}"),
        }
        // A sender report's second byte is 200; RTP with the marker set and
        // PT 72 has the same byte, which RFC 5761 §4 reserves for RTCP.
        assert!(matches!(
            classify(&[0x80, 200, 0, 0]).unwrap(),
            Packet::Rtcp(_)
        ));
        // Marker + PT 0 (0x80) and PT 96 (0x60, 0xe0 with marker) stay RTP.
        for second in [0x80, 0x60, 0xe0, 191, 224] {
            let mut p = rtp(1, 1, 1, &[0; 4]);
            p[1] = second;
            assert!(matches!(classify(&p).unwrap(), Packet::Rtp(_)), "{second}");
        }
    }

    #[test]
    fn rtcp_length_beyond_the_datagram_is_refused() {
        assert_eq!(
            RtcpHeader::peek(&[0x80, 201, 0, 1, 0, 0]),
            Err(Malformed::RtcpLength)
        );
        assert_eq!(RtcpHeader::peek(&[0x80, 201, 0]), Err(Malformed::TooShort));
        assert_eq!(
            RtcpHeader::peek(&[0x40, 201, 0, 0]),
            Err(Malformed::Version(1))
        );
    }

    #[test]
    fn rewrites_change_only_their_field() {
        let original = rtp(10, 20, 30, &[5; 20]);
        let mut p = original.clone();
        set_sequence(&mut p, 0xfffe);
        set_timestamp(&mut p, 0xffff_fff0);
        set_ssrc(&mut p, 0x0102_0304);
        let h = RtpHeader::peek(&p).unwrap();
        assert_eq!(
            (h.sequence(), h.timestamp(), h.ssrc()),
            (0xfffe, 0xffff_fff0, 0x0102_0304)
        );
        assert_eq!(p[..2], original[..2]);
        assert_eq!(p[12..], original[12..]);
        let mut short = vec![0x80, 0, 1];
        set_ssrc(&mut short, 7);
        assert_eq!(short, vec![0x80, 0, 1]);
    }
}
