//! A call's media, anchored at the edge's relay (issue 22): each side of
//! the call sends and receives RTP at the edge, never at the other side.
//!
//! Every session description that crosses the B2BUA is rewritten for the
//! leg it goes to (RFC 3264 offer/answer through a media relay, as
//! rtpengine does for Kamailio): its first audio stream points at the
//! relay's port pair facing that leg (`c=`, `m=` port, `a=rtcp`), every
//! other stream is declined (port 0: a contact center carries voice),
//! ICE attributes are dropped (the relay is the peer), and the `o=` line
//! is the edge's own per leg, its version raised only when the content
//! changes (§8). What the description says of its writer (address, port,
//! RTCP, codec clock) becomes where the relay sends that side's media,
//! until symmetric RTP latches to where its packets really come from.
//!
//! A call holds one [`MediaSession`] of two relay legs, connected to each
//! other: one faces the caller (a carrier, or the agent's phone for an
//! outbound call), one faces the other side (the agent's phones, all of
//! them while they ring; the trunk of an outbound call). Dropping the
//! call's [`CallMedia`] frees its ports.
//!
//! An INVITE without a body (a delayed offer, RFC 3261 §13.2.1) is not
//! anchored: its media passes as the phones negotiate it.

use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use switchboard_acd::ContactId;
use switchboard_events::proto::MediaQuality;
use switchboard_media::MediaError;
use switchboard_media::quality::Concealment;
use switchboard_media::relay::{LegId, MediaSession, Relay, Remote};
use switchboard_media::sdp::{LegOrigin, RtcpRewrite, SessionDescription};

/// Which side of the call a session description comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaSide {
    /// The caller's leg: the carrier, or the phone of an agent dialing out.
    Caller,
    /// The other legs: the agent's phones, or an outbound call's trunk.
    Callee,
}

/// The relay the edge anchors calls at, and when a call's media counts as
/// gone.
#[derive(Clone)]
pub struct MediaOptions {
    pub relay: Relay,
    /// A connected call whose caller or callee sent no RTP or RTCP for this
    /// long is hung up (a phone that lost power, a carrier that dropped the
    /// call without a BYE).
    pub timeout: Duration,
}

/// The relay leg facing one side, and the `o=` line the edge writes to it.
struct Facing {
    leg: LegId,
    port: u16,
    origin: LegOrigin,
}

/// One call's anchored media.
pub(super) struct CallMedia {
    session: MediaSession,
    caller: Facing,
    callee: Facing,
    ip: IpAddr,
    /// The caller's offer, rewritten for the callee's side.
    offer_for_callee: Bytes,
}

impl CallMedia {
    /// Anchors the call whose caller offered `offer`: two relay legs,
    /// connected, the caller's leg sending to the offer's address. An
    /// offer that cannot be read, or has no audio stream, is refused with
    /// the reason (the INVITE's 488).
    pub(super) fn anchor(relay: &Relay, offer: &[u8]) -> Result<Self, AnchorError> {
        let parsed = SessionDescription::parse(offer).map_err(AnchorError::Offer)?;
        audio_stream(&parsed)?;
        let session = relay.create_session(2).map_err(AnchorError::Relay)?;
        let ip = relay.advertised_ip();
        let facing = |leg: LegId| -> Result<Facing, AnchorError> {
            let port = session.local(leg).map_err(AnchorError::Relay)?.rtp.port();
            Ok(Facing {
                leg,
                port,
                origin: LegOrigin::new("switchboard", rand::random::<u32>().into(), ip),
            })
        };
        let (caller, callee) = (facing(LegId(0))?, facing(LegId(1))?);
        session
            .connect(caller.leg, callee.leg)
            .map_err(AnchorError::Relay)?;
        let mut media = Self {
            session,
            caller,
            callee,
            ip,
            offer_for_callee: Bytes::new(),
        };
        media.offer_for_callee = media.pass(MediaSide::Caller, offer)?;
        Ok(media)
    }

    /// The caller's offer as the callee's side gets it.
    pub(super) fn offer_for_callee(&self) -> Bytes {
        self.offer_for_callee.clone()
    }

    /// A session description from `from` (an offer or an answer), as the
    /// other side gets it; the relay sends `from`'s media where it says.
    pub(super) fn pass(&mut self, from: MediaSide, sdp: &[u8]) -> Result<Bytes, AnchorError> {
        let mut parsed = SessionDescription::parse(sdp).map_err(AnchorError::Offer)?;
        let audio = audio_stream(&parsed)?;
        let (source, target) = match from {
            MediaSide::Caller => (&self.caller, &mut self.callee),
            MediaSide::Callee => (&self.callee, &mut self.caller),
        };
        if let Some(endpoint) = parsed.media_endpoint(audio).map_err(AnchorError::Offer)? {
            let clock_rate = parsed.media[audio]
                .codecs()
                .first()
                .map_or(8000, |codec| codec.clock_rate);
            self.session
                .set_remote(source.leg, Remote::from_endpoint(endpoint, clock_rate))
                .map_err(AnchorError::Relay)?;
        }
        let mut ports = vec![0; parsed.media.len()];
        ports[audio] = target.port;
        for index in 0..parsed.media.len() {
            if index != audio {
                parsed.reject_media(index).map_err(AnchorError::Offer)?;
            }
        }
        parsed
            .anchor(self.ip, &ports, RtcpRewrite::PortPlusOne)
            .map_err(AnchorError::Offer)?;
        parsed.strip_ice();
        target.origin.stamp(&mut parsed);
        Ok(Bytes::from(parsed.to_string()))
    }

    /// What the relay received from the caller's side and from the
    /// callee's, for the call's record.
    pub(super) fn quality(&self) -> (Option<MediaQuality>, Option<MediaQuality>) {
        let of = |leg: LegId| {
            self.session.stats(leg).ok().map(|stats| MediaQuality {
                packets_received: stats.reception.received,
                packets_expected: stats.reception.expected,
                packets_lost: stats.reception.lost,
                fraction_lost: stats.reception.fraction_lost,
                jitter_ms: stats.jitter_ms(),
                mos: stats.mos(Duration::ZERO, Concealment::Plc),
            })
        };
        (of(self.caller.leg), of(self.callee.leg))
    }

    /// Whether neither side's media went silent for `timeout`: RTP or
    /// RTCP from the caller and from the callee (a held call still sends
    /// RTCP, RFC 3550 §6.2).
    pub(super) fn alive(&self, timeout: Duration) -> bool {
        self.session.inactive_legs(timeout).is_empty()
    }
}

/// Calls ended because their media stopped, by the edge's media timeout.
pub const MEDIA_TIMEOUT_METRIC: &str = "switchboard_edge_calls_media_timeout_total";

impl super::B2bua {
    /// Hangs up every connected call whose caller or callee sent no RTP
    /// or RTCP for the media timeout (counted from the answer at the
    /// earliest): BYE to both legs, the end reported as the edge's.
    pub(super) async fn end_silent_calls(&self) {
        let Some(options) = self.inner.media.get() else {
            return;
        };
        let timeout = options.timeout;
        let now = Utc::now();
        let silent: Vec<ContactId> =
            self.lock()
                .calls
                .iter()
                .filter(|(_, call)| {
                    matches!(call.phase, super::Phase::Connected { .. })
                        && call.facts.answered.is_some_and(|(_, at)| {
                            (now - at).to_std().unwrap_or_default() >= timeout
                        })
                        && call
                            .media
                            .as_ref()
                            .is_some_and(|media| !media.alive(timeout))
                })
                .map(|(id, _)| *id)
                .collect();
        for call in silent {
            tracing::info!(%call, ?timeout, "no media from one side of the call; hanging up");
            metrics::counter!(MEDIA_TIMEOUT_METRIC).increment(1);
            self.hang_up(call, None).await;
        }
    }
}

/// The index of the description's first audio stream that is not
/// declined.
fn audio_stream(sdp: &SessionDescription) -> Result<usize, AnchorError> {
    sdp.media
        .iter()
        .position(|media| media.kind == "audio" && !media.is_rejected())
        .ok_or(AnchorError::NoAudio)
}

/// Why a call's media could not be anchored.
#[derive(Debug, thiserror::Error)]
pub(super) enum AnchorError {
    /// The session description cannot be read or rewritten: 488.
    #[error("{0}")]
    Offer(MediaError),
    /// It offers no audio stream: 488.
    #[error("SDP: no audio stream is offered")]
    NoAudio,
    /// The relay has no ports left, or is stopped: 503.
    #[error("{0}")]
    Relay(MediaError),
}

impl AnchorError {
    /// The SIP status that refuses the INVITE (RFC 3261 §21.4.26: 488 Not
    /// Acceptable Here for a session description the edge cannot take).
    pub(super) fn status(&self) -> u16 {
        match self {
            AnchorError::Offer(_) | AnchorError::NoAudio => 488,
            AnchorError::Relay(_) => 503,
        }
    }
}
