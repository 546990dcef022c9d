//! The edge's media plane: session descriptions, RTP and the relay that
//! anchors every call's media.
//!
//! - [`sdp`]: session descriptions (RFC 4566) and the offer/answer rules
//!   (RFC 3264) a B2BUA needs to anchor media: rewriting each leg's
//!   connection address and ports (RFC 3605 `a=rtcp`), dropping ICE
//!   (RFC 8839) since the relay is the peer, our own `o=` per leg, answer
//!   directions, and the agreed G.711 and telephone-event (RFC 4733)
//!   payload types.
//! - [`rtp`]: RTP and RTCP headers read and rewritten in place
//!   (RFC 3550 §5.1, §6.4; RTP/RTCP told apart as RFC 5761 §4 says), and
//!   receiver statistics (RFC 3550 Appendix A.1, A.3, A.8).
//! - [`quality`]: an MOS estimate by the ITU-T G.107 E-model for G.711
//!   (ITU-T G.113 Appendix I).
//! - [`relay`]: the RTP/RTCP relay: port pairs from a range (RFC 3550
//!   §11), symmetric RTP latching (RFC 4961), SSRC/sequence/timestamp
//!   continuity when a leg's far end changes (RFC 3550 §5.1, §8), RTCP
//!   multiplexed or not (RFC 5761), per-leg counters and statistics.
//!
//! The relay's hot path is ours. The webrtc-rs `rtp` crate parses every
//! packet into an owned structure (its payload a `Bytes`), allocating per
//! packet; the relay instead reads each datagram's header where it lies in
//! a preallocated buffer, rewrites at most three fields in place, and moves
//! packets with batched `recvmmsg`/`sendmmsg` from a few OS threads, with
//! no allocation, lock or channel per packet. Zero-copy readers such as
//! rtp-types remain the choice for RTP handled elsewhere.

mod error;
pub mod quality;
pub mod relay;
pub mod rtp;
pub mod sdp;

pub use error::MediaError;
