//! The parser on whole messages: what RFC 3261 accepts, and the verdict
//! RFC 4475 §3.1.2 expects of each kind of malformed message.

use switchboard_sip::{Limits, Method, Refusal, StartLine, Transport, Version, parse};

/// `text` with `\n` line ends turned into SIP's CRLF.
fn sip(text: &str) -> Vec<u8> {
    text.replace('\n', "\r\n").into_bytes()
}

const INVITE: &str = "INVITE sip:agent@acme.sip.example.com SIP/2.0
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds
Max-Forwards: 70
To: <sip:agent@acme.sip.example.com>
From: \"Caller\" <sip:+12125550199@carrier.example.net>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.1
CSeq: 314159 INVITE
Contact: <sip:+12125550199@192.0.2.1>
Content-Type: application/sdp
Content-Length: 4

v=0
";

fn datagram(text: &str) -> Vec<u8> {
    sip(text)
}

#[test]
fn a_well_formed_invite_parses_without_copying() {
    let bytes = datagram(INVITE);
    let (message, used) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(used, bytes.len() - 1, "the body is Content-Length bytes");
    assert_eq!(
        message.start,
        StartLine::Request {
            method: Method::Invite,
            uri: "sip:agent@acme.sip.example.com",
            version: Version::SIP_2_0
        }
    );
    assert_eq!(message.body, b"v=0\r");
    assert_eq!(message.cseq(), Some((314159, "INVITE")));
    let call_id = message.header("Call-ID").unwrap();
    assert!(matches!(call_id.value, std::borrow::Cow::Borrowed(_)));
    assert_eq!(call_id.value, "a84b4c76e66710@192.0.2.1");
}

#[test]
fn folded_lines_compact_names_and_unknown_headers_are_understood() {
    let text = "OPTIONS sip:acme.sip.example.com SIP/2.0
v: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bKfold
t: <sip:acme.sip.example.com>
f: <sip:probe@example.net>;tag=1
i: fold-1
CSeq: 7
\tOPTIONS
Subject: first line
  second line
X-Unknown-Header: kept as is
l: 0

";
    let bytes = sip(text);
    let (message, _) = parse(&bytes, Transport::Stream, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(message.cseq(), Some((7, "OPTIONS")));
    assert_eq!(
        message.header("Subject").unwrap().value,
        "first line second line"
    );
    assert_eq!(message.header("Via").unwrap().name, "v");
    assert_eq!(
        message.header("x-unknown-header").unwrap().value,
        "kept as is"
    );
    assert_eq!(message.headers.len(), 8, "every header kept, in order");
}

#[test]
fn integers_with_leading_zeros_are_their_value() {
    let text = INVITE
        .replace("Max-Forwards: 70", "Max-Forwards: 0068")
        .replace("314159 INVITE", "0000000000009 INVITE");
    let bytes = sip(&text);
    let (message, _) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(message.cseq(), Some((9, "INVITE")));
    assert_eq!(
        verdict(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 000256")),
        ("bad_max_forwards", Refusal::Respond(400))
    );
}

#[test]
fn an_extension_method_is_kept_for_a_501() {
    let text = INVITE
        .replace("INVITE sip:", "NEWMETHOD sip:")
        .replace("314159 INVITE", "314159 NEWMETHOD");
    let bytes = sip(&text);
    let (message, _) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(message.method(), Some(Method::Extension("NEWMETHOD")));
}

#[test]
fn escaped_uris_and_leading_crlfs_are_accepted() {
    let text = format!(
        "\n\n{}",
        INVITE.replace(
            "INVITE sip:agent@acme.sip.example.com",
            "INVITE sip:%61gent@acme.sip.example.com;transport=udp?Subject=hi%20there"
        )
    );
    let bytes = sip(&text);
    let (message, used) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(used, bytes.len() - 1);
    let StartLine::Request { uri, .. } = message.start else {
        panic!("a request")
    };
    assert_eq!(
        uri,
        "sip:%61gent@acme.sip.example.com;transport=udp?Subject=hi%20there"
    );
}

/// The verdict on `text` as a datagram: the reason and what to do.
fn verdict(text: &str) -> (&'static str, Refusal) {
    let bytes = sip(text);
    let malformed = parse(&bytes, Transport::Datagram, &Limits::default()).unwrap_err();
    if let Refusal::Respond(_) = malformed.refusal {
        assert!(
            malformed.request.is_some(),
            "a response is built from the request"
        );
    }
    (malformed.reason, malformed.refusal)
}

#[test]
fn an_unknown_sip_version_is_505() {
    assert_eq!(
        verdict(&INVITE.replace("sip.example.com SIP/2.0", "sip.example.com SIP/7.0")),
        ("version", Refusal::Respond(505))
    );
}

#[test]
fn a_bad_content_length_is_400() {
    for value in ["-999", "9999999999999999999999", "4.0", "", "four"] {
        assert_eq!(
            verdict(&INVITE.replace("Content-Length: 4", &format!("Content-Length: {value}"))),
            ("bad_content_length", Refusal::Respond(400)),
            "{value:?}"
        );
    }
    assert_eq!(
        verdict(&INVITE.replace("Content-Length: 4", "Content-Length: 50")),
        ("content_length_mismatch", Refusal::Respond(400))
    );
}

#[test]
fn a_header_line_without_a_colon_is_400_not_dropped() {
    assert_eq!(
        verdict(&INVITE.replace("Max-Forwards: 70\n", "Max-Forwards: 70\nNoColonHere\n")),
        ("bad_header", Refusal::Respond(400))
    );
}

#[test]
fn missing_repeated_or_inconsistent_headers_are_400() {
    assert_eq!(
        verdict(&INVITE.replace("Call-ID: a84b4c76e66710@192.0.2.1\n", "")),
        ("missing_header", Refusal::Drop),
        "without a Call-ID no response can be built"
    );
    assert_eq!(
        verdict(&INVITE.replace(
            "Call-ID: a84b4c76e66710@192.0.2.1\n",
            "Call-ID: a@b\ni: c@d\n"
        )),
        ("repeated_header", Refusal::Respond(400))
    );
    assert_eq!(
        verdict(&INVITE.replace("314159 INVITE", "314159 BYE")),
        ("bad_cseq", Refusal::Respond(400))
    );
    assert_eq!(
        verdict(&INVITE.replace("314159 INVITE", "36893488147419103232 INVITE")),
        ("bad_cseq", Refusal::Respond(400))
    );
    assert_eq!(
        verdict(&INVITE.replace("Max-Forwards: 70", "Max-Forwards: 300")),
        ("bad_max_forwards", Refusal::Respond(400))
    );
}

#[test]
fn a_malformed_via_from_or_to_is_400() {
    for (from, to, reason) in [
        (
            "192.0.2.1:5060;branch=z9hG4bK776asdhds",
            "192.0.2.1:5060;;,;,,",
            "bad_via",
        ),
        ("\"Caller\" <sip:", "Caller, Esq. <sip:", "bad_from"),
        (
            "To: <sip:agent@acme.sip.example.com>",
            "To: \"Agent <sip:agent@acme.sip.example.com>",
            "bad_to",
        ),
    ] {
        assert_eq!(
            verdict(&INVITE.replace(from, to)),
            (reason, Refusal::Respond(400)),
            "{to:?}"
        );
    }
}

#[test]
fn whitespace_in_the_request_uri_is_400() {
    for uri in [
        "sip:agent@acme.sip.example.com; transport=udp",
        "sip:agent@acme.sip.example.com;\ttransport=udp",
    ] {
        let text = INVITE.replace("sip:agent@acme.sip.example.com SIP", &format!("{uri} SIP"));
        assert_eq!(
            verdict(&text),
            ("bad_start_line", Refusal::Respond(400)),
            "{uri:?}"
        );
    }
}

#[test]
fn a_garbled_request_line_is_dropped_when_no_response_can_be_built() {
    assert_eq!(
        verdict(&INVITE.replace(
            "INVITE sip:agent@acme.sip.example.com SIP/2.0",
            "INVITE  sip:agent@acme.sip.example.com  SIP/2.0"
        )),
        ("bad_start_line", Refusal::Drop)
    );
    assert_eq!(
        verdict(&INVITE.replace("sip:agent@acme.sip.example.com SIP", "agent SIP")),
        ("bad_start_line", Refusal::Drop)
    );
}

#[test]
fn a_malformed_response_is_dropped() {
    let response = "SIP/2.0 2000 OK
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds
To: <sip:agent@acme.sip.example.com>;tag=a
From: <sip:+12125550199@carrier.example.net>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.1
CSeq: 314159 INVITE
Content-Length: 0

";
    assert_eq!(verdict(response), ("bad_start_line", Refusal::Drop));
    assert_eq!(
        verdict(
            &response
                .replace("SIP/2.0 2000", "SIP/2.0 200")
                .replace("Content-Length: 0", "Content-Length: -1")
        ),
        ("bad_content_length", Refusal::Drop)
    );
}

#[test]
fn sizes_past_the_limits_are_413() {
    let limits = Limits {
        max_body: 2,
        ..Limits::default()
    };
    let bytes = sip(INVITE);
    let malformed = parse(&bytes, Transport::Datagram, &limits).unwrap_err();
    assert_eq!(
        (malformed.reason, malformed.refusal),
        ("too_large", Refusal::Respond(413))
    );
}

#[test]
fn a_stream_waits_for_whole_messages_and_needs_content_length() {
    let one = sip(INVITE);
    let mut two = one.clone();
    two.truncate(one.len() - 1); // exactly Content-Length bytes of body
    two.extend_from_slice(&one);
    // Cut anywhere before the end of the first message: wait for more.
    for cut in [10, one.len() / 2, one.len() - 4] {
        assert_eq!(
            parse(&two[..cut], Transport::Stream, &Limits::default()),
            Ok(None)
        );
    }
    let (first, used) = parse(&two, Transport::Stream, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(first.body, b"v=0\r");
    let (second, _) = parse(&two[used..], Transport::Stream, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(second.cseq(), Some((314159, "INVITE")));
    let without_length = sip(&INVITE.replace("Content-Length: 4\n", ""));
    let malformed = parse(&without_length, Transport::Stream, &Limits::default()).unwrap_err();
    assert_eq!(
        (malformed.reason, malformed.refusal),
        ("content_length_missing", Refusal::Respond(400))
    );
}

#[test]
fn a_datagram_without_content_length_takes_the_rest_and_extra_bytes_are_discarded() {
    let bytes = sip(&INVITE.replace("Content-Length: 4\n", ""));
    let (message, _) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(message.body, b"v=0\r\n");
    let bytes = sip(&INVITE.replace("Content-Length: 4", "Content-Length: 2"));
    let (message, _) = parse(&bytes, Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(message.body, b"v=");
}

#[test]
fn garbage_never_panics() {
    let samples: [&[u8]; 6] = [
        b"",
        b"\r\n\r\n",
        b"\xff\xfe\r\n\r\n",
        b"SIP/2.0\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\n: empty name\r\n\r\n",
        b"INVITE sip:a SIP/2.0\r\n\tfolded first\r\n\r\n",
    ];
    for sample in samples {
        for transport in [Transport::Datagram, Transport::Stream] {
            let _ = parse(sample, transport, &Limits::default());
        }
    }
}

/// Found by `scripts/fuzz-sip` (the `parse` target): a start line whose
/// fourth byte is inside a multi-byte UTF-8 character made the check for
/// a status line (`SIP/`) slice the line mid-character and panic, a crash
/// any datagram could cause. It is a garbled request line: dropped.
#[test]
fn a_multibyte_character_across_the_fourth_byte_of_the_start_line_is_no_panic() {
    for first_line in [
        "ABC\u{e9} sip:a@b SIP/2.0",
        "IN\u{20ac}REGISTER sip:example.com SIP/2.0",
        "SI\u{1f4de} 200 OK",
        "SIP\u{e9}2.0 200 OK",
    ] {
        let text = INVITE.replace("INVITE sip:agent@acme.sip.example.com SIP/2.0", first_line);
        assert_eq!(
            verdict(&text),
            ("bad_start_line", Refusal::Drop),
            "{first_line:?}"
        );
        let bytes = sip(&text);
        assert!(parse(&bytes, Transport::Stream, &Limits::default()).is_err());
    }
}

/// Found by `scripts/fuzz-sip` (the `differential` target: ezk and
/// rsipstack split at the bare LF where we did not): the head is split at
/// CRLFs, and a bare CR or LF in a response's reason phrase stayed in it,
/// so a response whose status line carried `\nVia: …` was accepted with
/// that text as its reason phrase (a header smuggled past every check,
/// for whoever logs or forwards the phrase). RFC 3261 §25.1's
/// Reason-Phrase has no CR or LF: a malformed response, dropped.
#[test]
fn a_bare_cr_or_lf_in_a_reason_phrase_is_refused() {
    let response = "SIP/2.0 503 Service Unavailable
Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds
To: <sip:agent@acme.sip.example.com>;tag=a
From: <sip:+12125550199@carrier.example.net>;tag=1928301774
Call-ID: a84b4c76e66710@192.0.2.1
CSeq: 314159 INVITE
Content-Length: 0

";
    let crlf = String::from_utf8(sip(response)).unwrap();
    assert!(parse(crlf.as_bytes(), Transport::Datagram, &Limits::default()).is_ok());
    // Line ends are CRLF but for the bare CR or LF in the reason phrase.
    for smuggled in [
        "Unavailable\nVia: SIP/2.0/TCP evil",
        "Unavailable\rX",
        "K\n\rOVia: x",
    ] {
        let text = crlf.replace("Unavailable", smuggled);
        let malformed =
            parse(text.as_bytes(), Transport::Datagram, &Limits::default()).unwrap_err();
        assert_eq!(
            (malformed.reason, malformed.refusal),
            ("bad_start_line", Refusal::Drop),
            "{smuggled:?}"
        );
    }
}

/// Found by the `parse` target's property that every prefix of a message
/// a stream accepts waits for more (on an input made for it: five
/// minutes of fuzzing had not reached a head of exactly the limit): a
/// head of exactly `max_head` bytes was accepted whole, but refused 413
/// when the stream had delivered it and only part of the CRLF CRLF after
/// it, so a TCP segment ending there cost the connection.
#[test]
fn a_stream_waits_for_a_head_of_exactly_the_limit_whatever_the_cut() {
    let message = sip(INVITE);
    let head_length = message.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let limits = Limits {
        max_head: head_length,
        ..Limits::default()
    };
    let (_, used) = parse(&message, Transport::Stream, &limits)
        .unwrap()
        .unwrap();
    assert_eq!(used, message.len() - 1, "the body is Content-Length bytes");
    for cut in 0..used {
        assert_eq!(
            parse(&message[..cut], Transport::Stream, &limits),
            Ok(None),
            "cut after {cut} of {used} bytes"
        );
    }
    // One byte more of head is too long, as soon as that can be known.
    let limits = Limits {
        max_head: head_length - 1,
        ..Limits::default()
    };
    let malformed = parse(&message, Transport::Stream, &limits).unwrap_err();
    assert_eq!(malformed.reason, "too_large");
    let malformed = parse(&message[..head_length + 3], Transport::Stream, &limits).unwrap_err();
    assert_eq!(malformed.reason, "too_large");
}
