//! Dialogs (RFC 3261 §12): the state two user agents share from an
//! INVITE's 1xx-with-tag or 2xx until a BYE — the id, both CSeq counters,
//! the remote target and the route set — created on either side, updated
//! by target refreshes, and checked for requests out of order.

use crate::matching::{self, DialogId};
use crate::message::{Message, Method};
use crate::values::{self, Error};

/// A dialog as one side sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub id: DialogId,
    /// The CSeq of this side's last request (§12.2.1.1 increments it).
    pub local_seq: Option<u32>,
    /// The CSeq of the peer's last request, to refuse older ones.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go: the peer's Contact URI.
    pub remote_target: String,
    /// Route headers of in-dialog requests, in sending order.
    pub route_set: Vec<String>,
    /// Whether the dialog is early (a 1xx created it).
    pub early: bool,
}

fn contact_uri(message: &Message<'_>) -> Result<String, Error> {
    let contact = message.header("Contact").ok_or("no Contact")?;
    let first = values::split_list(&contact.value)?
        .into_iter()
        .next()
        .ok_or("an empty Contact")?;
    Ok(values::parse_name_addr(first)?.uri.to_owned())
}

fn record_route(message: &Message<'_>) -> Result<Vec<String>, Error> {
    let mut routes = Vec::new();
    for header in message.headers_named("Record-Route") {
        for entry in values::split_list(&header.value)? {
            routes.push(entry.to_owned());
        }
    }
    Ok(routes)
}

impl Dialog {
    /// The UAC's dialog from a response with a To tag (1xx: early, 2xx:
    /// confirmed) to `request` (§12.1.2): the route set is the
    /// Record-Route reversed, the remote target the response's Contact.
    pub fn as_uac(request: &Message<'_>, response: &Message<'_>) -> Result<Self, Error> {
        let id = matching::dialog_id(response, true)?.ok_or("the response has no To tag")?;
        let (seq, _) = request.cseq().ok_or("no valid CSeq")?;
        let code = match response.start {
            crate::message::StartLine::Response { code, .. } => code,
            _ => return Err("not a response"),
        };
        let mut route_set = record_route(response)?;
        route_set.reverse();
        Ok(Self {
            id,
            local_seq: Some(seq),
            remote_seq: None,
            remote_target: contact_uri(response)?,
            route_set,
            early: (100..200).contains(&code),
        })
    }

    /// The UAS's dialog from a dialog-creating `request` it answers with
    /// `local_tag` (§12.1.1): the route set is the Record-Route as
    /// received, the remote target the request's Contact.
    pub fn as_uas(request: &Message<'_>, local_tag: &str, early: bool) -> Result<Self, Error> {
        let from = values::parse_name_addr(&request.header("From").ok_or("no From")?.value)?;
        let remote_tag = from.tag().ok_or("the From has no tag")?;
        let (seq, _) = request.cseq().ok_or("no valid CSeq")?;
        Ok(Self {
            id: DialogId {
                call_id: request
                    .header("Call-ID")
                    .ok_or("no Call-ID")?
                    .value
                    .to_string(),
                local_tag: local_tag.to_owned(),
                remote_tag: remote_tag.to_owned(),
            },
            local_seq: None,
            remote_seq: Some(seq),
            remote_target: contact_uri(request)?,
            route_set: record_route(request)?,
            early,
        })
    }

    /// The CSeq of this side's next in-dialog request (§12.2.1.1). ACK
    /// and CANCEL reuse the request's number instead.
    pub fn next_local_seq(&mut self) -> u32 {
        let next = self
            .local_seq
            .map_or(1, |seq| seq.wrapping_add(1) & 0x7fff_ffff);
        self.local_seq = Some(next);
        next
    }

    /// Checks an in-dialog request from the peer (§12.2.2): one whose
    /// CSeq is lower than the last is out of order (answer 500); an ACK
    /// or CANCEL does not move the counter. A target-refresh request
    /// (re-INVITE, UPDATE) with a Contact replaces the remote target.
    pub fn on_request(&mut self, request: &Message<'_>) -> Result<(), OutOfOrder> {
        let Some((seq, _)) = request.cseq() else {
            return Err(OutOfOrder);
        };
        let method = request.method();
        if !matches!(method, Some(Method::Ack | Method::Cancel)) {
            if self.remote_seq.is_some_and(|last| seq < last) {
                return Err(OutOfOrder);
            }
            self.remote_seq = Some(seq);
        }
        if matches!(method, Some(Method::Invite | Method::Update))
            && let Ok(target) = contact_uri(request)
        {
            self.remote_target = target;
        }
        Ok(())
    }

    /// A 2xx confirms an early dialog (§12.1.2 / §13.2.2.4).
    pub fn confirm(&mut self) {
        self.early = false;
    }
}

/// An in-dialog request older than the last one (answer 500, §12.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfOrder;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Transport, parse};

    fn parsed(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    const INVITE: &str = "INVITE sip:agent@192.0.2.4 SIP/2.0
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-a
From: <sip:edge@acme.example.com>;tag=edge
To: <sip:agent@acme.example.com>
Call-ID: leg-1
CSeq: 10 INVITE
Contact: <sip:edge@198.51.100.1:5060>
Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>
Content-Length: 0

";

    const OK: &str = "SIP/2.0 200 OK
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-a
From: <sip:edge@acme.example.com>;tag=edge
To: <sip:agent@acme.example.com>;tag=phone
Call-ID: leg-1
CSeq: 10 INVITE
Contact: \"Agent\" <sip:agent@192.0.2.4:5062;transport=udp>
Record-Route: <sip:p1.example.com;lr>
Record-Route: <sip:p2.example.com;lr>
Content-Length: 0

";

    #[test]
    fn both_sides_build_the_same_dialog_mirrored() {
        let invite = parsed(INVITE);
        let ok = parsed(OK);
        let limits = Limits::default();
        let (invite, _) = parse(&invite, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        let (ok, _) = parse(&ok, Transport::Datagram, &limits).unwrap().unwrap();

        let mut uac = Dialog::as_uac(&invite, &ok).unwrap();
        assert_eq!(uac.id.local_tag, "edge");
        assert_eq!(uac.id.remote_tag, "phone");
        assert_eq!(uac.remote_target, "sip:agent@192.0.2.4:5062;transport=udp");
        assert_eq!(
            uac.route_set,
            vec!["<sip:p2.example.com;lr>", "<sip:p1.example.com;lr>"],
            "the UAC reverses the Record-Route"
        );
        assert!(!uac.early);
        assert_eq!(uac.next_local_seq(), 11);

        let uas = Dialog::as_uas(&invite, "phone", false).unwrap();
        assert_eq!(uas.id.local_tag, "phone");
        assert_eq!(uas.id.remote_tag, "edge");
        assert_eq!(uas.remote_target, "sip:edge@198.51.100.1:5060");
        assert_eq!(
            uas.route_set,
            vec!["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
        );
        assert_eq!(uas.remote_seq, Some(10));
    }

    #[test]
    fn older_requests_are_out_of_order_and_reinvites_refresh_the_target() {
        let invite = parsed(INVITE);
        let limits = Limits::default();
        let (invite, _) = parse(&invite, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        let mut uas = Dialog::as_uas(&invite, "phone", false).unwrap();
        let reinvite = parsed(
            &INVITE
                .replace("CSeq: 10 INVITE", "CSeq: 11 INVITE")
                .replace("198.51.100.1:5060", "198.51.100.9:5070"),
        );
        let (reinvite, _) = parse(&reinvite, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        uas.on_request(&reinvite).unwrap();
        assert_eq!(uas.remote_target, "sip:edge@198.51.100.9:5070");
        assert_eq!(uas.remote_seq, Some(11));
        let old = parsed(
            &INVITE
                .replace("INVITE sip:", "BYE sip:")
                .replace("CSeq: 10 INVITE", "CSeq: 9 BYE"),
        );
        let (old, _) = parse(&old, Transport::Datagram, &limits).unwrap().unwrap();
        assert_eq!(uas.on_request(&old), Err(OutOfOrder));
        assert_eq!(uas.remote_seq, Some(11), "unchanged");
        let ack = parsed(
            &INVITE
                .replace("INVITE sip:", "ACK sip:")
                .replace("CSeq: 10 INVITE", "CSeq: 11 ACK"),
        );
        let (ack, _) = parse(&ack, Transport::Datagram, &limits).unwrap().unwrap();
        assert_eq!(uas.on_request(&ack), Ok(()));
    }

    #[test]
    fn a_provisional_response_with_a_tag_makes_an_early_dialog() {
        let invite = parsed(INVITE);
        let ringing = parsed(&OK.replace("SIP/2.0 200 OK", "SIP/2.0 180 Ringing"));
        let limits = Limits::default();
        let (invite, _) = parse(&invite, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        let (ringing, _) = parse(&ringing, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        let mut dialog = Dialog::as_uac(&invite, &ringing).unwrap();
        assert!(dialog.early);
        dialog.confirm();
        assert!(!dialog.early);
        let untagged = parsed(&OK.replace(";tag=phone", ""));
        let (untagged, _) = parse(&untagged, Transport::Datagram, &limits)
            .unwrap()
            .unwrap();
        assert!(
            Dialog::as_uac(&invite, &untagged).is_err(),
            "no To tag, no dialog"
        );
    }
}
