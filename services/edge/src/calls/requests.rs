//! The requests the B2BUA writes on its legs: the INVITE that rings a
//! phone (RFC 3261 §8.1.1), requests inside a dialog (§12.2.1.1: BYE,
//! re-INVITE) and the ACK of a 2xx (§13.2.2.4, its own transaction-less
//! request with the INVITE's CSeq number).
//!
//! Each leg has identifiers of its own (Call-ID, tags, Via branch,
//! Contact): nothing of one leg's routing is written into the other's
//! (topology hiding); only the session description and the caller's
//! number cross.

use switchboard_sip::dialog::Dialog;

/// A prefix of every branch the edge writes, after RFC 3261's magic
/// cookie: a request that comes back with one in its Via has looped
/// through us (§16.3 item 4, loop detection).
pub const BRANCH_PREFIX: &str = "z9hG4bK-sb-";

/// Where the edge is reached on a leg: its `sent-by` (`host:port`) and the
/// Via transport token (`UDP`, `TCP`, …).
#[derive(Debug, Clone)]
pub struct Local {
    pub sent_by: String,
    pub transport: &'static str,
}

impl Local {
    /// The edge's Contact URI on this leg.
    pub fn contact(&self) -> String {
        let transport = self.transport.to_ascii_lowercase();
        if transport == "udp" {
            format!("<sip:edge@{}>", self.sent_by)
        } else {
            format!("<sip:edge@{};transport={transport}>", self.sent_by)
        }
    }

    /// A Via of this leg with a fresh branch.
    pub fn via(&self) -> String {
        format!(
            "SIP/2.0/{} {};branch={};rport",
            self.transport,
            self.sent_by,
            branch()
        )
    }
}

/// A fresh branch (§8.1.1.7).
pub fn branch() -> String {
    format!("{BRANCH_PREFIX}{:016x}", rand::random::<u64>())
}

/// A fresh tag (§19.3).
pub fn tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A fresh Call-ID (§8.1.1.4).
pub fn call_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// One leg's dialog as the edge holds it: the state of §12 and the
/// parties as the From and To of its requests write them (without tags).
#[derive(Debug, Clone)]
pub struct LegDialog {
    pub dialog: Dialog,
    pub local_party: String,
    pub remote_party: String,
}

/// A new INVITE to `target`: `from` and `to` are name-addrs without tags,
/// `extra` more headers (Call-Info, …), `sdp` the offer (or empty).
#[allow(clippy::too_many_arguments)]
pub fn invite(
    local: &Local,
    target: &str,
    from: &str,
    from_tag: &str,
    to: &str,
    call_id: &str,
    max_forwards: u8,
    extra: &[(&str, &str)],
    sdp: &[u8],
) -> Vec<u8> {
    invite_numbered(
        local,
        target,
        from,
        from_tag,
        to,
        call_id,
        1,
        max_forwards,
        extra,
        sdp,
    )
}

/// [`invite`] with CSeq number `seq`: the same INVITE sent again with
/// credentials after a challenge takes the next number (§22.2).
#[allow(clippy::too_many_arguments)]
pub fn invite_numbered(
    local: &Local,
    target: &str,
    from: &str,
    from_tag: &str,
    to: &str,
    call_id: &str,
    seq: u32,
    max_forwards: u8,
    extra: &[(&str, &str)],
    sdp: &[u8],
) -> Vec<u8> {
    let mut out = format!(
        "INVITE {target} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: {max_forwards}\r\n\
         From: {from};tag={from_tag}\r\n\
         To: {to}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} INVITE\r\n\
         Contact: {contact}\r\n\
         Allow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\n",
        via = local.via(),
        contact = local.contact(),
    );
    finish(&mut out, extra, sdp)
}

/// A request of `method` inside `leg`'s dialog, with the dialog's next
/// CSeq (§12.2.1.1): to the remote target, through its route set (loose
/// routing, RFC 3261 §16.12).
pub fn in_dialog(
    local: &Local,
    leg: &mut LegDialog,
    method: &str,
    extra: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let seq = leg.dialog.next_local_seq();
    let mut out = start(local, leg, method, seq);
    if method.eq_ignore_ascii_case("INVITE") || method.eq_ignore_ascii_case("UPDATE") {
        out.push_str(&format!("Contact: {}\r\n", local.contact()));
    }
    finish(&mut out, extra, body)
}

/// The ACK of a 2xx to the INVITE of CSeq `seq` on `leg` (§13.2.2.4).
pub fn ack(local: &Local, leg: &LegDialog, seq: u32) -> Vec<u8> {
    let mut out = start(local, leg, "ACK", seq);
    finish(&mut out, &[], b"")
}

fn start(local: &Local, leg: &LegDialog, method: &str, seq: u32) -> String {
    let dialog = &leg.dialog;
    let mut out = format!(
        "{method} {target} SIP/2.0\r\n\
         Via: {via}\r\n\
         Max-Forwards: 70\r\n\
         From: {local_party};tag={local_tag}\r\n\
         To: {remote_party};tag={remote_tag}\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {seq} {method}\r\n",
        target = dialog.remote_target,
        via = local.via(),
        local_party = leg.local_party,
        local_tag = dialog.id.local_tag,
        remote_party = leg.remote_party,
        remote_tag = dialog.id.remote_tag,
        call_id = dialog.id.call_id,
    );
    for route in &dialog.route_set {
        out.push_str(&format!("Route: {route}\r\n"));
    }
    out
}

fn finish(out: &mut String, extra: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    for (name, value) in extra {
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            continue;
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    let typed = extra
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("Content-Type"));
    if !body.is_empty() && !typed {
        out.push_str("Content-Type: application/sdp\r\n");
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = std::mem::take(out).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

#[cfg(test)]
mod tests {
    use switchboard_sip::matching::DialogId;
    use switchboard_sip::{Limits, Method, Transport, parse};

    use super::*;

    fn local() -> Local {
        Local {
            sent_by: "192.0.2.1:5060".into(),
            transport: "UDP",
        }
    }

    #[test]
    fn an_invite_parses_and_carries_only_its_own_leg() {
        let bytes = invite(
            &local(),
            "sip:alice@198.51.100.7:5062",
            "\"+441632960000\" <sip:+441632960000@acme.sip.localhost>",
            "abc",
            "<sip:alice@198.51.100.7:5062>",
            "call-1",
            69,
            &[("Call-Info", "<sip:edge>;answer-after=0")],
            b"v=0\r\n",
        );
        let (message, _) = parse(&bytes, Transport::Stream, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(message.method(), Some(Method::Invite));
        assert_eq!(message.header("Max-Forwards").unwrap().value, "69");
        assert!(message.header("Via").unwrap().value.contains(BRANCH_PREFIX));
        assert_eq!(
            message.header("Contact").unwrap().value,
            "<sip:edge@192.0.2.1:5060>"
        );
        assert_eq!(message.body, b"v=0\r\n");
        assert_eq!(message.cseq(), Some((1, "INVITE")));
    }

    #[test]
    fn requests_in_a_dialog_count_up_and_follow_its_route() {
        let mut leg = LegDialog {
            dialog: Dialog {
                id: DialogId {
                    call_id: "c1".into(),
                    local_tag: "l".into(),
                    remote_tag: "r".into(),
                },
                local_seq: Some(1),
                remote_seq: None,
                remote_target: "sip:bob@203.0.113.9".into(),
                route_set: vec!["<sip:proxy.example;lr>".into()],
                early: false,
            },
            local_party: "<sip:edge@192.0.2.1>".into(),
            remote_party: "<sip:bob@example>".into(),
        };
        let bye = in_dialog(&local(), &mut leg, "BYE", &[], b"");
        let (message, _) = parse(&bye, Transport::Stream, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(message.cseq(), Some((2, "BYE")));
        assert_eq!(
            message.header("Route").unwrap().value,
            "<sip:proxy.example;lr>"
        );
        assert_eq!(
            message.header("To").unwrap().value,
            "<sip:bob@example>;tag=r"
        );
        let ack = ack(&local(), &leg, 1);
        let (message, _) = parse(&ack, Transport::Stream, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(message.cseq(), Some((1, "ACK")));
        assert_eq!(
            message.header("From").unwrap().value,
            "<sip:edge@192.0.2.1>;tag=l"
        );
    }

    #[test]
    fn a_header_with_a_line_break_is_left_out() {
        let bytes = invite(
            &local(),
            "sip:a@b",
            "<sip:x@y>",
            "t",
            "<sip:a@b>",
            "c",
            70,
            &[("X-Evil", "a\r\nBYE sip:x SIP/2.0")],
            b"",
        );
        assert!(!String::from_utf8(bytes).unwrap().contains("X-Evil"));
    }
}
