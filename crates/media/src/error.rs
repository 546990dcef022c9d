use std::net::IpAddr;

use thiserror::Error;

/// Why a media operation failed. SDP errors carry the line they refer to,
/// so the SIP layer can answer 488 Not Acceptable Here with a reason that
/// names it.
#[derive(Debug, Error)]
pub enum MediaError {
    /// A session description that RFC 4566 does not allow, or that the
    /// relay cannot anchor (a network type other than `IN`, …).
    #[error("SDP line {line}: {reason}")]
    Sdp { line: usize, reason: String },
    /// A session description missing a line RFC 4566 requires.
    #[error("SDP: {0}")]
    SdpIncomplete(&'static str),
    /// An SDP operation named a media section that does not exist.
    #[error("SDP has no media section {index} (it has {count})")]
    NoSuchMedia { index: usize, count: usize },
    /// Relay options that cannot work.
    #[error("invalid relay options: {0}")]
    InvalidOptions(String),
    /// Every even port of the range is in use (or could not be bound).
    #[error("no free RTP port pair left in {first}-{last} on {ip}")]
    PortsExhausted { ip: IpAddr, first: u16, last: u16 },
    /// A session operation named a leg the session does not have.
    #[error("the media session has no leg {0}")]
    NoSuchLeg(usize),
    /// A leg cannot be connected to itself.
    #[error("leg {0} cannot be connected to itself")]
    SelfConnection(usize),
    /// The relay's worker threads are gone (the relay was shut down).
    #[error("the media relay is stopped")]
    Stopped,
    /// A system call failed outside the per-packet path (bind, poll, spawn).
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
}

impl MediaError {
    pub(crate) fn sdp(line: usize, reason: impl Into<String>) -> Self {
        Self::Sdp {
            line,
            reason: reason.into(),
        }
    }
}
