//! Session descriptions (RFC 4566) and the offer/answer rules (RFC 3264)
//! that a B2BUA anchoring media needs.
//!
//! Off the hot path: a description is parsed into owned, typed lines, in
//! their order, so that a rewrite changes only what it must and every line
//! it does not understand (bandwidth, keys, unknown attributes) is written
//! back as it came. Parsing is strict where a mistake would misroute media
//! or hide garbage (the `v=`/`o=`/`s=` header, `c=`, `m=`, `a=rtpmap`,
//! `a=ptime`, `a=rtcp`, unknown line types, a media section without a
//! connection address) and its error names the line, for a 488 response.
//! [`SessionDescription`]'s `Display` writes CRLF line endings.

mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::net::IpAddr;

use crate::MediaError;

/// One session description (RFC 4566 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDescription {
    pub origin: Origin,
    /// `s=`: may be a single space, as RFC 4566 §5.3 suggests for none.
    pub session_name: String,
    /// The session-level lines after `s=`, in order (`i= u= e= p= c= b=
    /// t= r= z= k= a=`).
    pub lines: Vec<Line>,
    pub media: Vec<Media>,
}

/// `o=<username> <sess-id> <sess-version> IN <addrtype> <address>`
/// (RFC 4566 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub username: String,
    pub session_id: u64,
    pub session_version: u64,
    pub address_type: AddressType,
    pub address: String,
}

/// The `IP4` / `IP6` address types of the `IN` network type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressType {
    Ip4,
    Ip6,
}

impl AddressType {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => Self::Ip4,
            IpAddr::V6(_) => Self::Ip6,
        }
    }
}

impl fmt::Display for AddressType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ip4 => "IP4",
            Self::Ip6 => "IP6",
        })
    }
}

/// `c=IN <addrtype> <address>` (RFC 4566 §5.7). `address` keeps a
/// multicast TTL or count suffix, or a host name, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub address_type: AddressType,
    pub address: String,
}

impl Connection {
    pub fn new(ip: IpAddr) -> Self {
        Self {
            address_type: AddressType::of(ip),
            address: ip.to_string(),
        }
    }

    /// The address as an IP address: `None` for a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        let base = self.address.split('/').next().unwrap_or_default();
        base.parse().ok()
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IN {} {}", self.address_type, self.address)
    }
}

/// A line of a session or media section other than `v= o= s= m=`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Connection(Connection),
    Attribute(Attribute),
    /// `i= u= e= p= b= t= r= z= k=`, kept as written.
    Other {
        kind: char,
        value: String,
    },
}

/// `a=` lines (RFC 4566 §6 and later RFCs) the edge reads or rewrites;
/// anything else is [`Attribute::Other`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attribute {
    Rtpmap(Rtpmap),
    /// `a=fmtp:<format> <parameters>`.
    Fmtp {
        format: String,
        parameters: String,
    },
    /// `a=ptime:<ms>`.
    Ptime(u32),
    Direction(Direction),
    /// `a=rtcp:<port> [IN <addrtype> <address>]` (RFC 3605).
    Rtcp(Rtcp),
    /// `a=rtcp-mux` (RFC 5761).
    RtcpMux,
    /// ICE (RFC 8839): `candidate`, `ice-*`, `remote-candidates`,
    /// `end-of-candidates`.
    Ice {
        name: String,
        value: Option<String>,
    },
    Other {
        name: String,
        value: Option<String>,
    },
}

/// `a=rtpmap:<payload type> <encoding>/<clock rate>[/<channels>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtpmap {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// The RTCP port (and address) of RFC 3605.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rtcp {
    pub port: u16,
    pub connection: Option<Connection>,
}

/// The media direction attributes of RFC 4566 §6 / RFC 3264 §5.1, seen
/// from the side that wrote the description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn sends(self) -> bool {
        matches!(self, Self::SendRecv | Self::SendOnly)
    }

    fn receives(self) -> bool {
        matches!(self, Self::SendRecv | Self::RecvOnly)
    }

    fn from_flags(sends: bool, receives: bool) -> Self {
        match (sends, receives) {
            (true, true) => Self::SendRecv,
            (true, false) => Self::SendOnly,
            (false, true) => Self::RecvOnly,
            (false, false) => Self::Inactive,
        }
    }

    /// The answer to an offered direction when the answerer is willing to
    /// do both (RFC 3264 §6.1): sendonly ↔ recvonly, sendrecv and
    /// inactive unchanged.
    pub fn answer(self) -> Self {
        self.answer_with(Self::SendRecv)
    }

    /// The answer when the answerer itself wants at most `local` (e.g.
    /// `SendOnly` to hold): it may send only what the offerer receives and
    /// receive only what the offerer sends (RFC 3264 §6.1).
    pub fn answer_with(self, local: Self) -> Self {
        Self::from_flags(
            self.receives() && local.sends(),
            self.sends() && local.receives(),
        )
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::SendRecv => "sendrecv",
            Self::SendOnly => "sendonly",
            Self::RecvOnly => "recvonly",
            Self::Inactive => "inactive",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One media section: its `m=` line and the lines under it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Media {
    /// `audio`, `video`, `image`, …
    pub kind: String,
    /// 0 for a rejected or disabled stream (RFC 3264 §6, §8.2).
    pub port: u16,
    /// The `/<number of ports>` suffix, rarely used.
    pub port_count: Option<u16>,
    /// `RTP/AVP`, `RTP/SAVP`, `udptl`, …
    pub protocol: String,
    pub formats: Vec<String>,
    pub lines: Vec<Line>,
}

/// A payload format of an RTP media section: from its `a=rtpmap`, or from
/// RFC 3551's static assignments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub payload_type: u8,
    pub encoding: String,
    pub clock_rate: u32,
    pub channels: Option<u16>,
}

/// RFC 3551 Table 4's static audio payload types (and the video ones, so
/// that a clock rate is known for every static type).
const STATIC_PAYLOAD_TYPES: &[(u8, &str, u32, Option<u16>)] = &[
    (0, "PCMU", 8000, Some(1)),
    (3, "GSM", 8000, Some(1)),
    (4, "G723", 8000, Some(1)),
    (5, "DVI4", 8000, Some(1)),
    (6, "DVI4", 16000, Some(1)),
    (7, "LPC", 8000, Some(1)),
    (8, "PCMA", 8000, Some(1)),
    (9, "G722", 8000, Some(1)),
    (10, "L16", 44100, Some(2)),
    (11, "L16", 44100, Some(1)),
    (12, "QCELP", 8000, Some(1)),
    (13, "CN", 8000, Some(1)),
    (14, "MPA", 90000, None),
    (15, "G728", 8000, Some(1)),
    (16, "DVI4", 11025, Some(1)),
    (17, "DVI4", 22050, Some(1)),
    (18, "G729", 8000, Some(1)),
    (25, "CelB", 90000, None),
    (26, "JPEG", 90000, None),
    (28, "nv", 90000, None),
    (31, "H261", 90000, None),
    (32, "MPV", 90000, None),
    (33, "MP2T", 90000, None),
    (34, "H263", 90000, None),
];

impl Media {
    fn attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.lines.iter().filter_map(|l| match l {
            Line::Attribute(a) => Some(a),
            _ => None,
        })
    }

    /// A rejected (or, in a later offer, disabled) stream: port 0.
    pub fn is_rejected(&self) -> bool {
        self.port == 0
    }

    /// This section's own `c=`, if it has one.
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(|l| match l {
            Line::Connection(c) => Some(c),
            _ => None,
        })
    }

    pub fn rtpmaps(&self) -> impl Iterator<Item = &Rtpmap> {
        self.attributes().filter_map(|a| match a {
            Attribute::Rtpmap(r) => Some(r),
            _ => None,
        })
    }

    /// The `a=fmtp` parameters of a format.
    pub fn fmtp(&self, format: &str) -> Option<&str> {
        self.attributes().find_map(|a| match a {
            Attribute::Fmtp {
                format: f,
                parameters,
            } if f == format => Some(parameters.as_str()),
            _ => None,
        })
    }

    pub fn ptime(&self) -> Option<u32> {
        self.attributes().find_map(|a| match a {
            Attribute::Ptime(ms) => Some(*ms),
            _ => None,
        })
    }

    /// This section's own direction attribute, if any.
    pub fn direction(&self) -> Option<Direction> {
        direction_of(&self.lines)
    }

    pub fn rtcp(&self) -> Option<&Rtcp> {
        self.attributes().find_map(|a| match a {
            Attribute::Rtcp(r) => Some(r),
            _ => None,
        })
    }

    pub fn rtcp_mux(&self) -> bool {
        self.attributes().any(|a| matches!(a, Attribute::RtcpMux))
    }

    /// The payload types of an RTP section's formats, in order; formats
    /// that are not numbers (a non-RTP protocol) are left out.
    pub fn payload_types(&self) -> impl Iterator<Item = u8> + '_ {
        self.formats.iter().filter_map(|f| f.parse().ok())
    }

    /// A format's codec: its `a=rtpmap`, else RFC 3551's static type.
    pub fn codec(&self, payload_type: u8) -> Option<Codec> {
        if let Some(r) = self.rtpmaps().find(|r| r.payload_type == payload_type) {
            return Some(Codec {
                payload_type,
                encoding: r.encoding.clone(),
                clock_rate: r.clock_rate,
                channels: r.channels,
            });
        }
        STATIC_PAYLOAD_TYPES
            .iter()
            .find(|(pt, ..)| *pt == payload_type)
            .map(|&(pt, encoding, clock_rate, channels)| Codec {
                payload_type: pt,
                encoding: encoding.to_owned(),
                clock_rate,
                channels,
            })
    }

    /// The codecs of the section's formats, in order of preference.
    pub fn codecs(&self) -> Vec<Codec> {
        self.payload_types()
            .filter_map(|pt| self.codec(pt))
            .collect()
    }

    /// The payload type of the first format that is `encoding/clock_rate`
    /// (encoding names compare case-insensitively, RFC 4855 §3).
    pub fn find_codec(&self, encoding: &str, clock_rate: u32) -> Option<u8> {
        self.codecs()
            .into_iter()
            .find(|c| c.encoding.eq_ignore_ascii_case(encoding) && c.clock_rate == clock_rate)
            .map(|c| c.payload_type)
    }

    /// The payload type of RFC 4733 telephone events at 8 kHz, if offered.
    pub fn telephone_event(&self) -> Option<u8> {
        self.find_codec("telephone-event", 8000)
    }

    fn set_rtcp(&mut self, rtcp: Option<Rtcp>) {
        let position = self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Attribute(Attribute::Rtcp(_))));
        match (position, rtcp) {
            (Some(i), Some(r)) => self.lines[i] = Line::Attribute(Attribute::Rtcp(r)),
            (Some(i), None) => {
                self.lines.remove(i);
            }
            (None, Some(r)) => self.lines.push(Line::Attribute(Attribute::Rtcp(r))),
            (None, None) => {}
        }
    }

    /// The port and `a=rtcp` half of anchoring (the `c=` is the caller's).
    fn move_to(&mut self, ip: IpAddr, port: u16, rtcp: RtcpRewrite) {
        self.port = port;
        match rtcp {
            RtcpRewrite::PortPlusOne if self.rtcp().is_some() => self.set_rtcp(Some(Rtcp {
                port: port.wrapping_add(1),
                connection: Some(Connection::new(ip)),
            })),
            RtcpRewrite::PortPlusOne => {}
            RtcpRewrite::Drop => self.set_rtcp(None),
        }
    }

    fn set_connection(&mut self, connection: Connection) {
        match self
            .lines
            .iter()
            .position(|l| matches!(l, Line::Connection(_)))
        {
            Some(i) => self.lines[i] = Line::Connection(connection),
            // RFC 4566 §5 order: m=, i=, c=, …
            None => {
                let at = self
                    .lines
                    .iter()
                    .position(|l| !matches!(l, Line::Other { kind: 'i', .. }))
                    .unwrap_or(self.lines.len());
                self.lines.insert(at, Line::Connection(connection));
            }
        }
    }
}

fn direction_of(lines: &[Line]) -> Option<Direction> {
    lines.iter().find_map(|l| match l {
        Line::Attribute(Attribute::Direction(d)) => Some(*d),
        _ => None,
    })
}

fn set_direction_in(lines: &mut Vec<Line>, direction: Direction) {
    match lines
        .iter()
        .position(|l| matches!(l, Line::Attribute(Attribute::Direction(_))))
    {
        Some(i) => lines[i] = Line::Attribute(Attribute::Direction(direction)),
        None => lines.push(Line::Attribute(Attribute::Direction(direction))),
    }
}

/// What to do with a rewritten media section's `a=rtcp` (RFC 3605).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpRewrite {
    /// Point it at the new port + 1 and address (the relay's RTCP socket).
    /// A section without `a=rtcp` keeps none: port + 1 is the default.
    PortPlusOne,
    /// Remove it.
    Drop,
}

/// What two sides agreed for one media section (RFC 3264 §6.1: an
/// answer lists only formats the offer had).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Agreement {
    /// G.711 µ-law was in both the offer and the answer.
    pub pcmu: bool,
    /// G.711 A-law was in both.
    pub pcma: bool,
    /// RFC 4733 events at 8 kHz were in both.
    pub telephone_event: Option<TelephoneEvent>,
}

/// The telephone-event payload types each side receives with (an SDP's
/// payload types are those its writer expects to receive, RFC 3264 §5.1;
/// an answerer should reuse the offer's, but may not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub offerer_receives: u8,
    pub answerer_receives: u8,
}

impl Agreement {
    pub fn between(offer: &Media, answer: &Media) -> Self {
        if offer.is_rejected() || answer.is_rejected() {
            return Self::default();
        }
        let both = |encoding| {
            offer.find_codec(encoding, 8000).is_some()
                && answer.find_codec(encoding, 8000).is_some()
        };
        Self {
            pcmu: both("PCMU"),
            pcma: both("PCMA"),
            telephone_event: offer.telephone_event().zip(answer.telephone_event()).map(
                |(offerer_receives, answerer_receives)| TelephoneEvent {
                    offerer_receives,
                    answerer_receives,
                },
            ),
        }
    }
}

impl SessionDescription {
    /// Parses a description; the error names the offending line.
    pub fn parse(text: &[u8]) -> Result<Self, MediaError> {
        parse::parse(text)
    }

    fn media_at(&self, index: usize) -> Result<&Media, MediaError> {
        self.media.get(index).ok_or(MediaError::NoSuchMedia {
            index,
            count: self.media.len(),
        })
    }

    fn media_at_mut(&mut self, index: usize) -> Result<&mut Media, MediaError> {
        let count = self.media.len();
        self.media
            .get_mut(index)
            .ok_or(MediaError::NoSuchMedia { index, count })
    }

    /// The session-level `c=`, if any.
    pub fn connection(&self) -> Option<&Connection> {
        self.lines.iter().find_map(|l| match l {
            Line::Connection(c) => Some(c),
            _ => None,
        })
    }

    /// The connection a media section uses: its own `c=`, else the
    /// session's (RFC 4566 §5.7).
    pub fn media_connection(&self, index: usize) -> Result<Option<&Connection>, MediaError> {
        Ok(self.media_at(index)?.connection().or(self.connection()))
    }

    /// Where the writer of this description receives a media section's
    /// RTP and RTCP (RFC 3605: `a=rtcp`, else port + 1; the RTP address
    /// when RTCP is multiplexed, RFC 5761): `None` for a rejected stream
    /// or a host name.
    pub fn media_endpoint(&self, index: usize) -> Result<Option<MediaEndpoint>, MediaError> {
        let media = self.media_at(index)?;
        let Some(ip) = self.media_connection(index)?.and_then(Connection::ip) else {
            return Ok(None);
        };
        if media.is_rejected() {
            return Ok(None);
        }
        let rtcp_mux = media.rtcp_mux();
        let rtcp = match media.rtcp() {
            _ if rtcp_mux => std::net::SocketAddr::new(ip, media.port),
            Some(r) => std::net::SocketAddr::new(
                r.connection.as_ref().and_then(Connection::ip).unwrap_or(ip),
                r.port,
            ),
            None => std::net::SocketAddr::new(ip, media.port.wrapping_add(1)),
        };
        Ok(Some(MediaEndpoint {
            rtp: std::net::SocketAddr::new(ip, media.port),
            rtcp,
            rtcp_mux,
        }))
    }

    /// A media section's effective direction: its own attribute, else
    /// the session's, else sendrecv (RFC 3264 §5.1).
    pub fn direction(&self, index: usize) -> Result<Direction, MediaError> {
        let media = self.media_at(index)?;
        Ok(media
            .direction()
            .or_else(|| direction_of(&self.lines))
            .unwrap_or(Direction::SendRecv))
    }

    /// Sets a media section's own direction attribute (replacing the one
    /// it has, or adding one).
    pub fn set_direction(&mut self, index: usize, direction: Direction) -> Result<(), MediaError> {
        set_direction_in(&mut self.media_at_mut(index)?.lines, direction);
        Ok(())
    }

    /// Points one media section at `ip`:`port`: its `m=` port, its `c=`
    /// (one is added to the section when the session-level `c=` is for
    /// all) and its `a=rtcp`. A rejected section stays rejected.
    pub fn anchor_media(
        &mut self,
        index: usize,
        ip: IpAddr,
        port: u16,
        rtcp: RtcpRewrite,
    ) -> Result<(), MediaError> {
        let media = self.media_at_mut(index)?;
        if media.is_rejected() {
            return Ok(());
        }
        media.set_connection(Connection::new(ip));
        media.move_to(ip, port, rtcp);
        Ok(())
    }

    /// Anchors the whole description at `ip`: the session-level `c=` and
    /// each media section (`ports[i]` for section `i`), so that no address
    /// of the other side is left in it. Rejected sections keep port 0.
    pub fn anchor(
        &mut self,
        ip: IpAddr,
        ports: &[u16],
        rtcp: RtcpRewrite,
    ) -> Result<(), MediaError> {
        if ports.len() != self.media.len() {
            return Err(MediaError::NoSuchMedia {
                index: ports.len().min(self.media.len()),
                count: self.media.len(),
            });
        }
        for line in &mut self.lines {
            if let Line::Connection(c) = line {
                *c = Connection::new(ip);
            }
        }
        let session_has_connection = self.connection().is_some();
        for (media, &port) in self.media.iter_mut().zip(ports) {
            // A section's own c= is rewritten even on a rejected stream;
            // one is added only where the session-level c= does not cover.
            if media.connection().is_some() || (!session_has_connection && !media.is_rejected()) {
                media.set_connection(Connection::new(ip));
            }
            if !media.is_rejected() {
                media.move_to(ip, port, rtcp);
            } else if rtcp == RtcpRewrite::Drop {
                media.set_rtcp(None);
            }
        }
        Ok(())
    }

    /// Marks a media section rejected (port 0, RFC 3264 §6).
    pub fn reject_media(&mut self, index: usize) -> Result<(), MediaError> {
        self.media_at_mut(index)?.port = 0;
        Ok(())
    }

    /// Removes every ICE attribute (RFC 8839), session and media level:
    /// the relay, not the far end, is this side's peer.
    pub fn strip_ice(&mut self) {
        let not_ice = |l: &Line| !matches!(l, Line::Attribute(Attribute::Ice { .. }));
        self.lines.retain(not_ice);
        for media in &mut self.media {
            media.lines.retain(not_ice);
        }
    }

    /// Writes the description without its `o=` line: what RFC 3264 §8
    /// compares to tell whether a new version is due.
    fn body_without_origin(&self) -> String {
        let mut text = String::new();
        self.write(&mut text, false)
            .expect("writing to a String cannot fail");
        text
    }

    fn write(&self, out: &mut impl fmt::Write, with_origin: bool) -> fmt::Result {
        out.write_str("v=0\r\n")?;
        if with_origin {
            let o = &self.origin;
            write!(
                out,
                "o={} {} {} IN {} {}\r\n",
                o.username, o.session_id, o.session_version, o.address_type, o.address
            )?;
        }
        write!(out, "s={}\r\n", self.session_name)?;
        write_lines(out, &self.lines)?;
        for m in &self.media {
            write!(out, "m={} {}", m.kind, m.port)?;
            if let Some(count) = m.port_count {
                write!(out, "/{count}")?;
            }
            write!(out, " {}", m.protocol)?;
            for f in &m.formats {
                write!(out, " {f}")?;
            }
            out.write_str("\r\n")?;
            write_lines(out, &m.lines)?;
        }
        Ok(())
    }
}

/// Where one side receives a media section's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaEndpoint {
    pub rtp: std::net::SocketAddr,
    pub rtcp: std::net::SocketAddr,
    pub rtcp_mux: bool,
}

fn write_lines(out: &mut impl fmt::Write, lines: &[Line]) -> fmt::Result {
    for line in lines {
        match line {
            Line::Connection(c) => write!(out, "c={c}\r\n")?,
            Line::Other { kind, value } => write!(out, "{kind}={value}\r\n")?,
            Line::Attribute(a) => {
                out.write_str("a=")?;
                match a {
                    Attribute::Rtpmap(r) => {
                        write!(
                            out,
                            "rtpmap:{} {}/{}",
                            r.payload_type, r.encoding, r.clock_rate
                        )?;
                        if let Some(ch) = r.channels {
                            write!(out, "/{ch}")?;
                        }
                    }
                    Attribute::Fmtp { format, parameters } => {
                        write!(out, "fmtp:{format} {parameters}")?
                    }
                    Attribute::Ptime(ms) => write!(out, "ptime:{ms}")?,
                    Attribute::Direction(d) => out.write_str(d.as_str())?,
                    Attribute::Rtcp(r) => {
                        write!(out, "rtcp:{}", r.port)?;
                        if let Some(c) = &r.connection {
                            write!(out, " {c}")?;
                        }
                    }
                    Attribute::RtcpMux => out.write_str("rtcp-mux")?,
                    Attribute::Ice { name, value } | Attribute::Other { name, value } => {
                        out.write_str(name)?;
                        if let Some(v) = value {
                            write!(out, ":{v}")?;
                        }
                    }
                }
                out.write_str("\r\n")?;
            }
        }
    }
    Ok(())
}

impl fmt::Display for SessionDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, true)
    }
}

/// Our own `o=` line for one leg of a call (RFC 3264 §8): the session id
/// stays fixed for the leg, and the version goes up by one only when the
/// rest of the description changed since the last one sent.
#[derive(Debug, Clone)]
pub struct LegOrigin {
    username: String,
    session_id: u64,
    version: u64,
    address: IpAddr,
    last_sent: Option<String>,
}

impl LegOrigin {
    /// `session_id` should be unique per leg (random, or from a clock);
    /// the first description stamped gets version 1.
    pub fn new(username: impl Into<String>, session_id: u64, address: IpAddr) -> Self {
        Self {
            username: username.into(),
            session_id,
            version: 0,
            address,
            last_sent: None,
        }
    }

    /// Puts our `o=` into a description about to be sent on this leg,
    /// bumping the version if its content changed, and returns the version.
    pub fn stamp(&mut self, sdp: &mut SessionDescription) -> u64 {
        let body = sdp.body_without_origin();
        if self.last_sent.as_deref() != Some(body.as_str()) {
            self.version += 1;
            self.last_sent = Some(body);
        }
        sdp.origin = Origin {
            username: self.username.clone(),
            session_id: self.session_id,
            session_version: self.version,
            address_type: AddressType::of(self.address),
            address: self.address.to_string(),
        };
        self.version
    }
}
