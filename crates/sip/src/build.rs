//! Writing messages: a response to a request (RFC 3261 §8.2.6.2: the Via
//! headers in order, From, To with a tag added when it has none, Call-ID
//! and CSeq copied) — what the edge answers a malformed or refused
//! request with before any transaction user sees it; and the two requests
//! a client transaction derives from its INVITE: the ACK of a failure
//! (§17.1.1.3) and the CANCEL (§9.1).

use std::fmt::Write as _;

use crate::message::Message;

/// The standard reason phrase of `code` (RFC 3261 §21 and later RFCs for
/// the codes the edge sends), or a generic one per class.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        484 => "Address Incomplete",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        603 => "Decline",
        _ => match code / 100 {
            1 => "Provisional",
            2 => "Success",
            3 => "Redirection",
            4 => "Client Error",
            5 => "Server Error",
            _ => "Global Failure",
        },
    }
}

/// A response with status `code` to `request`, with no body. `to_tag` is
/// added to the To header when it has no tag (a final response must
/// carry one, §8.2.6.2). A reason phrase with a CR or LF is replaced by
/// the standard one.
pub fn response_to(
    request: &Message<'_>,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
) -> Vec<u8> {
    response_with(request, None, code, reason, to_tag, &[], b"")
}

/// [`response_to`] with the first Via header's value replaced by `top_via`
/// when given (see [`received_via`]), more headers (after the ones copied
/// from the request; a name or value with a CR or LF is left out, so
/// nothing can add a line) and a body, whose length Content-Length states.
pub fn response_with(
    request: &Message<'_>,
    top_via: Option<&str>,
    code: u16,
    reason: &str,
    to_tag: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let reason = if reason.is_empty() || reason.contains(['\r', '\n']) {
        reason_phrase(code)
    } else {
        reason
    };
    let mut out = String::with_capacity(512);
    let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
    for (index, via) in request.headers_named("Via").enumerate() {
        match (index, top_via) {
            (0, Some(top)) if !top.contains(['\r', '\n']) => {
                let _ = write!(out, "Via: {top}\r\n");
            }
            _ => {
                let _ = write!(out, "Via: {}\r\n", via.value);
            }
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        let Some(header) = request.header(name) else {
            continue;
        };
        let value = header.value.as_ref();
        match (name, to_tag) {
            ("To", Some(tag)) if !has_tag(value) => {
                let _ = write!(out, "To: {value};tag={tag}\r\n");
            }
            _ => {
                let _ = write!(out, "{name}: {value}\r\n");
            }
        }
    }
    for (name, value) in headers {
        if name.contains(['\r', '\n']) || value.contains(['\r', '\n']) {
            continue;
        }
        let _ = write!(out, "{name}: {value}\r\n");
    }
    let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

fn has_tag(value: &str) -> bool {
    crate::values::parse_name_addr(value).is_ok_and(|to| to.tag().is_some())
}

/// The first Via header of `request` as its responses carry it back to
/// `source` (RFC 3261 §18.2.1, RFC 3581 §4): the top entry gets
/// `received=<source address>` when its sent-by host is not that address
/// or it asks for `rport`, and a valueless `rport` gets the source port,
/// so a phone behind NAT learns the address it is seen at. `None` when
/// nothing changes (or the Via does not parse).
pub fn received_via(request: &Message<'_>, source: std::net::SocketAddr) -> Option<String> {
    let header = request.header("Via")?;
    let entries = crate::values::split_list(&header.value).ok()?;
    let top = crate::values::parse_via(entries.first()?)
        .ok()?
        .into_iter()
        .next()?;
    let ip = source.ip().to_string();
    let host = top.host.trim_start_matches('[').trim_end_matches(']');
    let wants_rport = top.param("rport") == Some(None);
    if host.eq_ignore_ascii_case(&ip) && !wants_rport {
        return None;
    }
    let (name, version) = top.protocol;
    let mut entry = format!("{name}/{version}/{} {}", top.transport, top.host);
    if let Some(port) = top.port {
        let _ = write!(entry, ":{port}");
    }
    for (param, value) in &top.params {
        if param.eq_ignore_ascii_case("received") {
            continue;
        }
        if param.eq_ignore_ascii_case("rport") && value.is_none() {
            let _ = write!(entry, ";rport={}", source.port());
            continue;
        }
        match value {
            Some(value) if crate::headers::is_token(value) => {
                let _ = write!(entry, ";{param}={value}");
            }
            Some(value) => {
                let _ = write!(entry, ";{param}=\"{}\"", value.replace(['\\', '"'], ""));
            }
            None => {
                let _ = write!(entry, ";{param}");
            }
        }
    }
    let _ = write!(entry, ";received={ip}");
    let rest: Vec<&str> = entries[1..].iter().map(|entry| entry.trim()).collect();
    Some(if rest.is_empty() {
        entry
    } else {
        format!("{entry}, {}", rest.join(", "))
    })
}

/// The start line, the INVITE's top Via only, and the headers a request
/// derived from `invite` copies (§9.1, §17.1.1.3): Route, From, Call-ID;
/// To from `to` (the response's, with its tag, for an ACK).
fn derived_request(invite: &Message<'_>, method: &str, to: Option<&str>) -> Option<Vec<u8>> {
    let crate::message::StartLine::Request { uri, .. } = &invite.start else {
        return None;
    };
    let (number, _) = invite.cseq()?;
    let via = invite.header("Via")?;
    let top_via = crate::values::split_list(&via.value)
        .ok()?
        .into_iter()
        .next()?
        .trim();
    let mut out = String::with_capacity(512);
    let _ = write!(out, "{method} {uri} SIP/2.0\r\nVia: {top_via}\r\n");
    for route in invite.headers_named("Route") {
        let _ = write!(out, "Route: {}\r\n", route.value);
    }
    let _ = write!(out, "Max-Forwards: 70\r\n");
    let _ = write!(out, "From: {}\r\n", invite.header("From")?.value);
    let to = match to {
        Some(to) => to.to_owned(),
        None => invite.header("To")?.value.to_string(),
    };
    let _ = write!(out, "To: {to}\r\n");
    let _ = write!(out, "Call-ID: {}\r\n", invite.header("Call-ID")?.value);
    let _ = write!(out, "CSeq: {number} {method}\r\nContent-Length: 0\r\n\r\n");
    Some(out.into_bytes())
}

/// The ACK of a final failure `response` to `invite` (§17.1.1.3): the
/// INVITE's Request-URI, top Via, Route, From, Call-ID and CSeq number,
/// and the response's To (with the tag it added). `None` if either lacks
/// what that needs.
pub fn ack_for_failure(invite: &Message<'_>, response: &Message<'_>) -> Option<Vec<u8>> {
    let to = response.header("To")?;
    derived_request(invite, "ACK", Some(&to.value))
}

/// The CANCEL of `invite` (§9.1): its Request-URI, top Via (so it matches
/// the INVITE's transaction at the next hop), Route, From, To, Call-ID and
/// CSeq number.
pub fn cancel_for(invite: &Message<'_>) -> Option<Vec<u8>> {
    derived_request(invite, "CANCEL", None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Refusal, Transport, parse};

    #[test]
    fn a_refused_request_is_answered_from_its_own_headers() {
        let text = "INVITE sip:agent@acme.example.com SIP/7.0
v: SIP/2.0/UDP carrier.example.net;branch=z9hG4bK-1
Via: SIP/2.0/UDP origin.example.net;branch=z9hG4bK-0
f: <sip:+12125550199@carrier.example.net>;tag=caller
t: <sip:agent@acme.example.com>
i: call-1
CSeq: 1 INVITE
l: 0

"
        .replace('\n', "\r\n");
        let malformed =
            parse(text.as_bytes(), Transport::Datagram, &Limits::default()).unwrap_err();
        assert_eq!(malformed.refusal, Refusal::Respond(505));
        let request = malformed.request.unwrap();
        let response = response_to(&request, 505, "", Some("edge-1"));
        let response = String::from_utf8(response).unwrap();
        assert_eq!(
            response,
            "SIP/2.0 505 Version Not Supported\r\n\
             Via: SIP/2.0/UDP carrier.example.net;branch=z9hG4bK-1\r\n\
             Via: SIP/2.0/UDP origin.example.net;branch=z9hG4bK-0\r\n\
             From: <sip:+12125550199@carrier.example.net>;tag=caller\r\n\
             To: <sip:agent@acme.example.com>;tag=edge-1\r\n\
             Call-ID: call-1\r\n\
             CSeq: 1 INVITE\r\n\
             Content-Length: 0\r\n\r\n"
        );
        // What we write parses back.
        let (parsed, _) = parse(response.as_bytes(), Transport::Stream, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(parsed.cseq(), Some((1, "INVITE")));
    }

    #[test]
    fn a_to_tag_is_never_doubled_and_reasons_cannot_inject_lines() {
        let text = "BYE sip:a@b SIP/2.0
Via: SIP/2.0/UDP h;branch=z9hG4bK-2
From: <sip:x@y>;tag=1
To: <sip:a@b>;tag=2
Call-ID: c
CSeq: 2 BYE
Content-Length: 0

"
        .replace('\n', "\r\n");
        let (request, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let response =
            String::from_utf8(response_to(&request, 481, "Gone\r\nX-Evil: 1", Some("3"))).unwrap();
        assert!(response.starts_with("SIP/2.0 481 Call/Transaction Does Not Exist\r\n"));
        assert!(response.contains("To: <sip:a@b>;tag=2\r\n"));
        assert!(!response.contains("X-Evil"));
    }

    #[test]
    fn the_ack_of_a_failure_and_the_cancel_copy_what_rfc_3261_says() {
        let invite = "INVITE sip:agent@192.0.2.7:5062 SIP/2.0
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-out-1, SIP/2.0/UDP inner;branch=z9hG4bK-x
Route: <sip:proxy.example.com;lr>
Max-Forwards: 70
From: <sip:+12125550199@acme.sip.example.com>;tag=edge
To: <sip:agent@acme.sip.example.com>
Call-ID: leg-2
CSeq: 7 INVITE
Contact: <sip:edge.example.com>
Content-Length: 0

"
        .replace('\n', "\r\n");
        let busy = "SIP/2.0 486 Busy Here
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-out-1
From: <sip:+12125550199@acme.sip.example.com>;tag=edge
To: <sip:agent@acme.sip.example.com>;tag=phone-9
Call-ID: leg-2
CSeq: 7 INVITE
Content-Length: 0

"
        .replace('\n', "\r\n");
        let (invite, _) = parse(invite.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let (busy, _) = parse(busy.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let ack = String::from_utf8(ack_for_failure(&invite, &busy).unwrap()).unwrap();
        assert_eq!(
            ack,
            "ACK sip:agent@192.0.2.7:5062 SIP/2.0\r\n\
             Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-out-1\r\n\
             Route: <sip:proxy.example.com;lr>\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:+12125550199@acme.sip.example.com>;tag=edge\r\n\
             To: <sip:agent@acme.sip.example.com>;tag=phone-9\r\n\
             Call-ID: leg-2\r\n\
             CSeq: 7 ACK\r\n\
             Content-Length: 0\r\n\r\n"
        );
        let cancel = String::from_utf8(cancel_for(&invite).unwrap()).unwrap();
        assert!(cancel.starts_with("CANCEL sip:agent@192.0.2.7:5062 SIP/2.0\r\n"));
        assert!(cancel.contains("To: <sip:agent@acme.sip.example.com>\r\n"));
        assert!(cancel.contains("CSeq: 7 CANCEL\r\n"));
        let (parsed, _) = parse(cancel.as_bytes(), Transport::Stream, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            crate::matching::client_key(&parsed).unwrap().branch,
            "z9hG4bK-out-1",
            "the CANCEL carries the INVITE's branch"
        );
    }

    #[test]
    fn responses_say_where_the_request_came_from() {
        let request = |via: &str| {
            format!(
                "REGISTER sip:acme.sip.example.com SIP/2.0\r\nVia: {via}\r\nFrom: <sip:a@acme.sip.example.com>;tag=1\r\n\
                 To: <sip:a@acme.sip.example.com>\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let source: std::net::SocketAddr = "203.0.113.7:40123".parse().unwrap();
        let parsed = |text: &str| {
            parse(text.as_bytes(), Transport::Datagram, &Limits::default())
                .unwrap()
                .unwrap()
                .0
                .header("Via")
                .map(|via| via.value.to_string())
        };
        // RFC 3581 §4's example: rport asked for, behind NAT.
        let text = request(
            "SIP/2.0/UDP 10.1.1.1:4540;rport;branch=z9hG4bK-1, SIP/2.0/UDP proxy;branch=z9hG4bK-0",
        );
        let (message, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let top = received_via(&message, source).unwrap();
        assert_eq!(
            top,
            "SIP/2.0/UDP 10.1.1.1:4540;rport=40123;branch=z9hG4bK-1;received=203.0.113.7, SIP/2.0/UDP proxy;branch=z9hG4bK-0"
        );
        let response = String::from_utf8(response_with(
            &message,
            Some(&top),
            200,
            "",
            Some("t"),
            &[],
            b"",
        ))
        .unwrap();
        assert!(response.contains(&format!("Via: {top}\r\n")), "{response}");
        assert_eq!(response.matches("Via:").count(), 1);
        // A host name in sent-by: received only (RFC 3261 §18.2.1).
        let text = request("SIP/2.0/UDP phone.example.com;branch=z9hG4bK-2");
        let (message, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            received_via(&message, source).unwrap(),
            "SIP/2.0/UDP phone.example.com;branch=z9hG4bK-2;received=203.0.113.7"
        );
        // Sent from where it says, no rport: unchanged.
        let text = request("SIP/2.0/UDP 203.0.113.7:40123;branch=z9hG4bK-3");
        let (message, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(received_via(&message, source), None);
        assert!(parsed(&text).is_some());
    }
}
