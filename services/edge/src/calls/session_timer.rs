//! Session timers (RFC 4028) on the caller's leg, so that a call whose BYE
//! was lost, or whose carrier is gone, does not stay up for ever.
//!
//! A carrier's INVITE that supports `timer` or asks for a Session-Expires
//! is answered with the session interval (the carrier's, at most the
//! edge's [`CallOptions::session_expires`](super::CallOptions), never below
//! either side's Min-SE) and `Require: timer`; one asking for less than the
//! edge's Min-SE gets 422 with the edge's (§9). The refresher is the one the
//! carrier named, else the carrier (`uac`):
//! - when the carrier refreshes, each re-INVITE or UPDATE it sends restarts
//!   the interval; without one, the edge ends the call on both legs
//!   min(32 s, interval/3) before it expires (§10);
//! - when the edge refreshes (`refresher=uas`), it sends an UPDATE every
//!   half interval (§7.4); one that times out or finds no dialog (408, 481)
//!   ends the call.

use std::time::{Duration, Instant};

use bytes::Bytes;
use switchboard_sip::Message;

use super::{B2bua, CallOptions, Phase, Side, requests};
use crate::sip::{ClientEvent, OutgoingResponse};

/// Who refreshes the session (§7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refresher {
    /// The carrier, with re-INVITE or UPDATE.
    Carrier,
    /// The edge, with UPDATE.
    Edge,
}

/// A negotiated session timer of the caller's leg.
#[derive(Debug, Clone, Copy)]
pub(super) struct SessionTimer {
    pub interval: Duration,
    pub refresher: Refresher,
    /// The carrier supports `timer`: answers carry `Require: timer`.
    pub required: bool,
    /// The last refresh (or the answer).
    pub refreshed_at: Instant,
}

impl SessionTimer {
    /// `Session-Expires` of the edge's answers (§9).
    pub fn header_value(&self) -> String {
        let refresher = match self.refresher {
            Refresher::Carrier => "uac",
            Refresher::Edge => "uas",
        };
        format!("{};refresher={refresher}", self.interval.as_secs())
    }

    /// When the edge, not refreshing, gives up on the session (§10).
    fn deadline(&self) -> Instant {
        let margin = Duration::from_secs(32).min(self.interval / 3);
        self.refreshed_at + self.interval - margin
    }
}

/// What a carrier's INVITE gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Negotiation {
    /// No session timer (the carrier supports none).
    None,
    Timer {
        interval: Duration,
        refresher: Refresher,
        required: bool,
    },
    /// 422: the interval asked for is below the edge's Min-SE.
    TooSmall,
}

/// The delta-seconds of a `Session-Expires` or `Min-SE` value, and its
/// `refresher` parameter.
fn seconds_and_refresher(value: &str) -> Option<(u64, Option<String>)> {
    let mut parts = value.split(';');
    let seconds = parts.next()?.trim().parse().ok()?;
    let refresher = parts.find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("refresher")
            .then(|| value.trim().to_ascii_lowercase())
    });
    Some((seconds, refresher))
}

/// The session timer of a new call from `request` (§9).
pub(super) fn negotiate(request: &Message<'_>, options: &CallOptions) -> Negotiation {
    let supports_timer = request
        .headers_named("Supported")
        .flat_map(|header| header.value.split(','))
        .any(|option| option.trim().eq_ignore_ascii_case("timer"));
    let asked = request
        .header("Session-Expires")
        .and_then(|header| seconds_and_refresher(&header.value));
    let their_min = request
        .header("Min-SE")
        .and_then(|header| seconds_and_refresher(&header.value))
        .map_or(0, |(seconds, _)| seconds);
    let our_min = options.min_se.as_secs();
    let (interval, refresher) = match asked {
        Some((seconds, _)) if seconds < our_min => return Negotiation::TooSmall,
        Some((seconds, refresher)) => (
            seconds
                .min(options.session_expires.as_secs())
                .max(their_min)
                .max(our_min),
            refresher,
        ),
        None if supports_timer => (
            options
                .session_expires
                .as_secs()
                .max(their_min)
                .max(our_min),
            None,
        ),
        None => return Negotiation::None,
    };
    let refresher = match refresher.as_deref() {
        Some("uas") => Refresher::Edge,
        Some(_) => Refresher::Carrier,
        // Only a carrier that supports timers can refresh (§9).
        None if supports_timer => Refresher::Carrier,
        None => Refresher::Edge,
    };
    Negotiation::Timer {
        interval: Duration::from_secs(interval),
        refresher,
        required: supports_timer,
    }
}

/// The 422 for an interval below `min_se` (§9).
pub(super) fn too_small(min_se: Duration) -> OutgoingResponse {
    OutgoingResponse::new(422).header("Min-SE", min_se.as_secs().to_string())
}

impl B2bua {
    /// A refresh from the carrier arrived: the interval starts again.
    pub(super) fn session_refreshed(&self, call: super::ContactId) {
        if let Some(entry) = self.lock().calls.get_mut(&call)
            && let Some(timer) = entry.session.as_mut()
        {
            timer.refreshed_at = Instant::now();
        }
    }

    /// Watches the answered call's session timer until the call ends:
    /// refreshes it when the edge is the refresher, ends the call when a
    /// refresh is missing or fails.
    pub(super) fn watch_session(&self, call: super::ContactId) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let Some(timer) = this
                    .lock()
                    .calls
                    .get(&call)
                    .filter(|entry| matches!(entry.phase, Phase::Connected { .. }))
                    .and_then(|entry| entry.session)
                else {
                    return;
                };
                match timer.refresher {
                    Refresher::Carrier => {
                        let deadline = timer.deadline();
                        if Instant::now() < deadline {
                            tokio::time::sleep_until(deadline.into()).await;
                            continue;
                        }
                        tracing::info!(%call, "the carrier did not refresh the session; ending the call");
                        metrics::counter!(super::CALLS_METRIC, "outcome" => "session_expired")
                            .increment(1);
                        this.hang_up(call, None).await;
                        return;
                    }
                    Refresher::Edge => {
                        tokio::time::sleep_until((timer.refreshed_at + timer.interval / 2).into())
                            .await;
                        if !this.refresh_caller(call).await {
                            tracing::info!(%call, "the caller's leg did not take the session refresh; ending the call");
                            metrics::counter!(super::CALLS_METRIC, "outcome" => "session_expired")
                                .increment(1);
                            this.hang_up(call, None).await;
                            return;
                        }
                        this.session_refreshed(call);
                    }
                }
            }
        });
    }

    /// Sends the caller's leg an UPDATE refresh (RFC 3311, no body);
    /// whether the dialog is still there. Only a timeout, 408 or 481 say
    /// it is not (RFC 5057 §5.1); any other answer keeps the session.
    async fn refresh_caller(&self, call: super::ContactId) -> bool {
        let (Some(endpoint), Some(local)) = (self.endpoint().cloned(), self.local().cloned())
        else {
            return false;
        };
        let (peer, bytes) = {
            let mut table = self.lock();
            let Some(entry) = table.calls.get_mut(&call) else {
                return false;
            };
            let Some(timer) = entry.session else {
                return false;
            };
            let peer = entry.caller.peer.clone();
            let Some(dialog) = entry.caller.dialog.as_mut() else {
                return false;
            };
            let session_expires = timer.header_value();
            let bytes = requests::in_dialog(
                &super::local_for(&local, &peer),
                dialog,
                "UPDATE",
                &[
                    ("Session-Expires", &session_expires),
                    ("Supported", "timer"),
                ],
                b"",
            );
            (peer, bytes)
        };
        let Ok(mut outgoing) = endpoint.send_request(Bytes::from(bytes), peer) else {
            return false;
        };
        while let Some(event) = outgoing.next().await {
            match event {
                ClientEvent::Response(bytes) => {
                    let code = super::parse_bytes(&bytes)
                        .map_or(0, |response| super::status_of(&response));
                    if code >= 200 {
                        return !matches!(code, 408 | 481);
                    }
                }
                ClientEvent::TimedOut => return false,
            }
        }
        false
    }

    /// The session headers of the edge's 2xx to the caller (its answer,
    /// and its answers to the caller's refreshes), if a timer runs.
    pub(super) fn session_headers(&self, call: super::ContactId) -> Vec<(&'static str, String)> {
        let Some(timer) = self.lock().calls.get(&call).and_then(|entry| entry.session) else {
            return Vec::new();
        };
        let mut headers = vec![("Session-Expires", timer.header_value())];
        if timer.required {
            headers.push(("Require", "timer".to_owned()));
        }
        headers
    }
}

/// Whether `side`'s in-dialog `method` refreshes the caller's session.
pub(super) fn is_refresh(side: Side, method: &str) -> bool {
    side == Side::Caller && matches!(method, "INVITE" | "UPDATE")
}

#[cfg(test)]
mod tests {
    use switchboard_sip::{Limits, Transport, parse};

    use super::*;

    fn invite(extra: &str) -> Vec<u8> {
        format!(
            "INVITE sip:+15550001111@edge SIP/2.0\r\nVia: SIP/2.0/UDP c;branch=z9hG4bKst\r\n\
             From: <sip:a@c>;tag=1\r\nTo: <sip:b@edge>\r\nCall-ID: st\r\nCSeq: 1 INVITE\r\n\
             {extra}Content-Length: 0\r\n\r\n"
        )
        .into_bytes()
    }

    fn negotiated(extra: &str) -> Negotiation {
        let bytes = invite(extra);
        let (message, _) = parse(&bytes, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        negotiate(&message, &CallOptions::default())
    }

    fn timer(seconds: u64, refresher: Refresher) -> Negotiation {
        Negotiation::Timer {
            interval: Duration::from_secs(seconds),
            refresher,
            required: true,
        }
    }

    #[test]
    fn the_interval_and_refresher_follow_rfc_4028() {
        assert_eq!(negotiated(""), Negotiation::None);
        // Supported alone: the edge's interval, the carrier refreshes.
        assert_eq!(
            negotiated("Supported: 100rel, timer\r\n"),
            timer(1800, Refresher::Carrier)
        );
        // Asked for: kept when shorter, shortened when longer, compact
        // form and refresher honoured.
        assert_eq!(
            negotiated("Supported: timer\r\nSession-Expires: 600;refresher=uac\r\n"),
            timer(600, Refresher::Carrier)
        );
        assert_eq!(
            negotiated("k: timer\r\nx: 7200\r\n"),
            timer(1800, Refresher::Carrier)
        );
        assert_eq!(
            negotiated("Supported: timer\r\nSession-Expires: 900;refresher=uas\r\n"),
            timer(900, Refresher::Edge)
        );
        // A proxy asked for it, the carrier cannot refresh: the edge does.
        assert_eq!(
            negotiated("Session-Expires: 900\r\n"),
            Negotiation::Timer {
                interval: Duration::from_secs(900),
                refresher: Refresher::Edge,
                required: false,
            }
        );
        // Never below either Min-SE; below the edge's, refused.
        assert_eq!(
            negotiated("Supported: timer\r\nSession-Expires: 1000\r\nMin-SE: 1200\r\n"),
            timer(1200, Refresher::Carrier)
        );
        assert_eq!(
            negotiated("Supported: timer\r\nSession-Expires: 30\r\n"),
            Negotiation::TooSmall
        );
    }

    #[test]
    fn the_edge_gives_up_a_little_before_the_session_expires() {
        let now = Instant::now();
        let timer = |seconds| SessionTimer {
            interval: Duration::from_secs(seconds),
            refresher: Refresher::Carrier,
            required: true,
            refreshed_at: now,
        };
        assert_eq!(timer(1800).deadline(), now + Duration::from_secs(1768));
        assert_eq!(timer(90).deadline(), now + Duration::from_secs(60));
        assert_eq!(timer(1800).header_value(), "1800;refresher=uac");
    }
}
