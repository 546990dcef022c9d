//! What our parser must keep on any input (the `parse` target): it never
//! panics, every slice of what it returns lies inside the input (it never
//! reads past it), and what it accepts is self-consistent. A broken
//! property panics with what broke, so libFuzzer saves the input as a
//! crash.

use std::borrow::Cow;

use switchboard_sip::build::{ack_for_failure, cancel_for, response_to};
use switchboard_sip::dialog::Dialog;
use switchboard_sip::matching::{client_key, dialog_id, server_key};
use switchboard_sip::uri::parse_sip_uri;
use switchboard_sip::values::{parse_name_addr, parse_via};
use switchboard_sip::{Limits, Message, Method, Refusal, StartLine, Transport, parse};

/// The transports and limits every input is parsed with: the defaults,
/// and limits small enough for the fuzzer to reach their edges.
pub const CONFIGS: [(Transport, Limits); 4] = [
    (Transport::Datagram, DEFAULT),
    (Transport::Stream, DEFAULT),
    (Transport::Datagram, SMALL),
    (Transport::Stream, SMALL),
];

pub const DEFAULT: Limits = Limits {
    max_head: 16 * 1024,
    max_body: 64 * 1024,
    max_headers: 256,
};

pub const SMALL: Limits = Limits {
    max_head: 200,
    max_body: 32,
    max_headers: 8,
};

/// Limits no re-serialized message of ours reaches (re-serializing may
/// lengthen a head by a few bytes: `Name:v` becomes `Name: v`).
const ROOMY: Limits = Limits {
    max_head: usize::MAX,
    max_body: usize::MAX,
    max_headers: usize::MAX,
};

/// Every property, on every configuration, and with limits at the
/// input's own sizes (its head exactly `max_head` bytes, …), so that the
/// edges of the limits are reached on every input with a head.
pub fn check(input: &[u8]) {
    for (transport, limits) in &CONFIGS {
        check_one(input, *transport, limits);
    }
    let skipped = leading_crlfs(input);
    if let Some(head) = find(&input[skipped..], b"\r\n\r\n") {
        let exact = Limits {
            max_head: head,
            max_body: input.len() - skipped - head - 4,
            max_headers: input[skipped..skipped + head]
                .windows(2)
                .filter(|w| w == b"\r\n")
                .count(),
        };
        for transport in [Transport::Datagram, Transport::Stream] {
            check_one(input, transport, &exact);
        }
    }
}

fn check_one(input: &[u8], transport: Transport, limits: &Limits) {
    let first = parse(input, transport, limits);
    let again = parse(input, transport, limits);
    assert_eq!(first, again, "parsing is deterministic");
    match first {
        Ok(Some((message, used))) => accepted(input, transport, limits, &message, used),
        Ok(None) => {
            assert_eq!(transport, Transport::Stream, "only a stream waits");
            // Waiting is only for an incomplete head within the limit or
            // an incomplete body.
        }
        Err(malformed) => {
            match malformed.refusal {
                Refusal::Respond(status) => {
                    assert!(
                        [400, 413, 505].contains(&status),
                        "an unexpected status {status}"
                    );
                    let request = malformed
                        .request
                        .as_deref()
                        .expect("a response is built from the request");
                    assert!(request.is_request(), "only requests are answered");
                    within_message(input, request);
                    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
                        assert!(request.header(name).is_some(), "answered without {name}");
                    }
                    // Building the answer never panics (whether it parses
                    // depends on how malformed the request's headers are).
                    let response = response_to(request, status, malformed.detail.as_str(), None);
                    let _ = parse(&response, Transport::Stream, &ROOMY);
                }
                Refusal::Drop => assert!(malformed.request.is_none()),
            }
            assert!(!malformed.reason.is_empty());
        }
    }
}

/// The properties of an accepted message.
fn accepted(
    input: &[u8],
    transport: Transport,
    limits: &Limits,
    message: &Message<'_>,
    used: usize,
) {
    assert!(
        used > 0 && used <= input.len(),
        "consumed {used} of {}",
        input.len()
    );
    within_message(input, message);
    no_line_breaks(message);
    let skipped = leading_crlfs(input);
    let rest = &input[skipped..];
    let head_len = find(rest, b"\r\n\r\n").expect("an accepted head ends with an empty line");
    assert!(
        head_len <= limits.max_head,
        "a head over the limit accepted"
    );
    assert!(
        message.headers.len() <= limits.max_headers,
        "too many headers accepted"
    );
    assert!(
        message.body.len() <= limits.max_body,
        "a body over the limit accepted"
    );
    // The body is the bytes right after the head, and the message ends
    // where the body does.
    let body_start = skipped + head_len + 4;
    assert_eq!(
        message.body.as_ptr() as usize,
        input.as_ptr() as usize + body_start,
        "the body starts right after the head"
    );
    assert_eq!(
        body_start + message.body.len(),
        used,
        "the message ends with its body"
    );
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        assert!(message.header(name).is_some(), "accepted without {name}");
    }
    // Content-Length agrees with the body; without one, a datagram's
    // body is the rest of it and a stream is refused.
    match message.header("Content-Length") {
        Some(header) => {
            let length: u64 = header
                .value
                .parse()
                .expect("an accepted Content-Length is a number");
            assert_eq!(
                length,
                message.body.len() as u64,
                "Content-Length is the body's length"
            );
        }
        None => {
            assert_eq!(
                transport,
                Transport::Datagram,
                "a stream message without Content-Length accepted"
            );
            assert_eq!(
                used,
                input.len(),
                "without Content-Length a datagram's body is the rest"
            );
        }
    }
    if let StartLine::Request {
        method, version, ..
    } = &message.start
    {
        assert_eq!(
            *version,
            switchboard_sip::Version::SIP_2_0,
            "only SIP/2.0 requests are accepted"
        );
        let (_, cseq_method) = message.cseq().expect("an accepted CSeq reads");
        assert_eq!(
            cseq_method,
            method.as_str(),
            "the CSeq method is the request's"
        );
        assert_eq!(
            Method::from_token(method.as_str()),
            *method,
            "a method reads back as itself"
        );
    }
    for via in message.headers_named("Via") {
        parse_via(&via.value).expect("an accepted Via reads");
    }
    for name in ["From", "To"] {
        parse_name_addr(&message.header(name).expect("checked above").value)
            .expect("an accepted From and To read");
    }

    reserialized(message, transport);
    transports_agree(input, transport, limits, message, used);
    if transport == Transport::Stream {
        prefixes_wait(input, limits, skipped + head_len, used);
    }
    layers_above(message);
}

/// Writing the start line, the headers (`name: value`) and the body back
/// out, with the Content-Length the message had, and parsing that again
/// gives the same message.
fn reserialized(message: &Message<'_>, transport: Transport) {
    let mut out = Vec::new();
    match &message.start {
        StartLine::Request { method, uri, .. } => {
            out.extend_from_slice(format!("{} {} SIP/2.0\r\n", method.as_str(), uri).as_bytes());
        }
        StartLine::Response {
            version,
            code,
            reason,
        } => {
            out.extend_from_slice(
                format!(
                    "SIP/{}.{} {code} {reason}\r\n",
                    version.major, version.minor
                )
                .as_bytes(),
            );
        }
    }
    for header in &message.headers {
        out.extend_from_slice(format!("{}: {}\r\n", header.name, header.value).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(message.body);
    let (again, used) = match parse(&out, transport, &ROOMY) {
        Ok(Some(parsed)) => parsed,
        other => panic!(
            "re-serialized, an accepted message is no longer accepted: {other:?}\n{:?}",
            String::from_utf8_lossy(&out)
        ),
    };
    assert_eq!(used, out.len(), "the re-serialized message is read whole");
    assert_eq!(
        again.start, message.start,
        "the start line survives re-serialization"
    );
    let names = |m: &Message<'_>| -> Vec<(String, String)> {
        m.headers
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_string()))
            .collect()
    };
    assert_eq!(
        names(&again),
        names(message),
        "the headers survive re-serialization"
    );
    assert_eq!(
        again.body, message.body,
        "the body survives re-serialization"
    );
}

/// A message a stream accepts is the same message as a datagram of
/// exactly its bytes, and a datagram with a Content-Length is the same
/// message on a stream.
fn transports_agree(
    input: &[u8],
    transport: Transport,
    limits: &Limits,
    message: &Message<'_>,
    used: usize,
) {
    let other = match transport {
        Transport::Stream => Transport::Datagram,
        Transport::Datagram if message.header("Content-Length").is_some() => Transport::Stream,
        Transport::Datagram => return,
    };
    match parse(&input[..used], other, limits) {
        Ok(Some((again, again_used))) => {
            assert_eq!(again_used, used, "{other:?} reads as many bytes");
            assert_eq!(&again, message, "{other:?} reads the same message");
        }
        result => {
            panic!("accepted on {transport:?}, its own bytes are not on {other:?}: {result:?}")
        }
    }
}

/// Every strict prefix of a message a stream accepts waits for more:
/// a message must not be refused for arriving in pieces.
fn prefixes_wait(input: &[u8], limits: &Limits, head_end: usize, used: usize) {
    let mut cuts = vec![
        used - 1,
        used / 2,
        head_end,
        head_end + 1,
        head_end + 2,
        head_end + 3,
    ];
    // The neighbourhood of the head limit, where "too long" is decided.
    let limit_at = leading_crlfs(input) + limits.max_head;
    cuts.extend(limit_at.saturating_sub(1)..=limit_at + 4);
    for cut in cuts {
        if cut == 0 || cut >= used || cut < leading_crlfs(input) {
            continue;
        }
        let result = parse(&input[..cut], Transport::Stream, limits);
        assert!(
            matches!(result, Ok(None)),
            "a stream message of {used} bytes accepted whole is refused after {cut}: {:?}",
            result.err().map(|m| (m.reason, m.detail))
        );
    }
}

/// What the layers above do with an accepted message never panics, and
/// what they write back parses.
fn layers_above(message: &Message<'_>) {
    let _ = client_key(message);
    let _ = dialog_id(message, true);
    let _ = dialog_id(message, false);
    if let StartLine::Request { method, uri, .. } = &message.start {
        let _ = parse_sip_uri(uri);
        let _ = server_key(message);
        let _ = Dialog::as_uas(message, "fuzz", false);
        let response = response_to(message, 486, "", Some("fuzz"));
        let (parsed, _) = match parse(&response, Transport::Stream, &ROOMY) {
            Ok(Some(parsed)) => parsed,
            other => panic!(
                "our response to an accepted request does not parse: {other:?}\n{:?}",
                String::from_utf8_lossy(&response)
            ),
        };
        assert_eq!(
            parsed.cseq(),
            message.cseq(),
            "the response's CSeq is the request's"
        );
        if *method == Method::Invite {
            let cancel = cancel_for(message).expect("an accepted INVITE can be cancelled");
            if let Err(error) = parse(&cancel, Transport::Stream, &ROOMY) {
                panic!(
                    "our CANCEL of an accepted INVITE does not parse: {error:?}\n{:?}",
                    String::from_utf8_lossy(&cancel)
                );
            }
            let ack = ack_for_failure(message, &parsed).expect("a failure can be ACKed");
            if let Err(error) = parse(&ack, Transport::Stream, &ROOMY) {
                panic!(
                    "our ACK of a failure to an accepted INVITE does not parse: {error:?}\n{:?}",
                    String::from_utf8_lossy(&ack)
                );
            }
        }
    } else {
        // As a UAC's view of a dialog from a response to some request.
        let request = b"INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        let (request, _) = parse(request, Transport::Stream, &DEFAULT)
            .expect("a fixed request")
            .expect("complete");
        let _ = Dialog::as_uac(&request, message);
    }
}

/// No CR or LF is left in what an accepted message's lines hold: the
/// head is split at CRLFs only, and a bare one would smuggle a line.
fn no_line_breaks(message: &Message<'_>) {
    let parts: Vec<&str> = match &message.start {
        StartLine::Request { method, uri, .. } => vec![method.as_str(), uri],
        StartLine::Response { reason, .. } => vec![reason],
    };
    for part in parts.into_iter().chain(
        message
            .headers
            .iter()
            .flat_map(|h| [h.name, h.value.as_ref()]),
    ) {
        assert!(
            !part.contains(['\r', '\n']),
            "a bare CR or LF accepted in {part:?}"
        );
    }
}

/// Every slice `message` borrows lies inside `input`.
fn within_message(input: &[u8], message: &Message<'_>) {
    match &message.start {
        StartLine::Request { method, uri, .. } => {
            within(input, method.as_str().as_bytes(), "the method");
            within(input, uri.as_bytes(), "the Request-URI");
        }
        StartLine::Response { reason, .. } => within(input, reason.as_bytes(), "the reason"),
    }
    for header in &message.headers {
        within(input, header.name.as_bytes(), "a header name");
        if let Cow::Borrowed(value) = &header.value {
            within(input, value.as_bytes(), "a header value");
        }
    }
    within(input, message.body, "the body");
}

fn within(input: &[u8], part: &[u8], what: &str) {
    let (start, end) = (
        input.as_ptr() as usize,
        input.as_ptr() as usize + input.len(),
    );
    let (part_start, part_end) = (part.as_ptr() as usize, part.as_ptr() as usize + part.len());
    // A known method is a static string, and an empty slice (a refused
    // request's body) points anywhere: only borrowed ones are checked.
    if part.is_empty() || (what == "the method" && !(start..=end).contains(&part_start)) {
        return;
    }
    assert!(
        part_start >= start && part_end <= end,
        "{what} lies outside the input"
    );
}

fn leading_crlfs(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes[at..].starts_with(b"\r\n") {
        at += 2;
    }
    at
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}
