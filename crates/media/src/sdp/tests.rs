//! Real-world descriptions: what SIPp, baresip, a carrier's SBC, an ICE
//! client (linphone) send, an IPv6 one, and RFC 3264 §10.1's answer that
//! rejects a stream.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::*;

fn crlf(text: &str) -> String {
    text.replace('\n', "\r\n")
}

fn parse(text: &str) -> SessionDescription {
    SessionDescription::parse(crlf(text).as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

const SIPP_UAC: &str = "v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
";

const BARESIP: &str = "v=0
o=- 3391540046 1209735043 IN IP4 192.168.1.20
s=-
c=IN IP4 192.168.1.20
t=0 0
m=audio 10770 RTP/AVP 96 9 0 8 101
b=AS:96
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp-rsize
a=ptime:20
a=sendrecv
a=label:1
a=ssrc:1797473929 cname:dfd9e5c4-6d49-4f2c-a1a4-0e6e2d5b7c31
";

const CARRIER: &str = "v=0
o=Sonus_UAC 207863 364853 IN IP4 203.0.113.10
s=SIP Media Capabilities
t=0 0
m=audio 17590 RTP/AVP 18 0 8 100 101
c=IN IP4 203.0.113.11
b=AS:80
a=rtpmap:18 G729/8000
a=fmtp:18 annexb=no
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:100 telephone-event/16000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:17591
a=sendrecv
a=maxptime:30
a=ptime:20
";

const LINPHONE_ICE: &str = "v=0
o=linphone 1502 3347 IN IP4 192.168.0.5
s=Talk
c=IN IP4 198.51.100.7
t=0 0
a=ice-ufrag:Yb2x
a=ice-pwd:asd88fgpdd777uzjYhagZg
a=ice-options:trickle
m=audio 51000 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=rtcp:51001 IN IP4 198.51.100.7
a=candidate:1 1 UDP 2130706431 192.168.0.5 7078 typ host
a=candidate:1 2 UDP 2130706430 192.168.0.5 7079 typ host
a=candidate:2 1 UDP 1694498815 198.51.100.7 51000 typ srflx raddr 192.168.0.5 rport 7078
a=candidate:2 2 UDP 1694498814 198.51.100.7 51001 typ srflx raddr 192.168.0.5 rport 7079
a=end-of-candidates
a=rtcp-fb:* trr-int 1000
";

const IPV6: &str = "v=0
o=- 20518 0 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 49170 RTP/AVP 8 0 101
a=rtpmap:101 telephone-event/8000
a=rtcp:49171 IN IP6 2001:db8::10
a=rtcp-mux
a=recvonly
";

/// RFC 3264 §10.1: the answer declines the video stream with port 0.
const REJECTED_VIDEO: &str = "v=0
o=bob 2808844564 2808844564 IN IP4 host.biloxi.example.com
s= 
c=IN IP4 192.0.2.2
t=0 0
m=audio 49174 RTP/AVP 0
a=rtpmap:0 PCMU/8000
m=video 0 RTP/AVP 31
a=rtpmap:31 H261/90000
m=video 0 RTP/AVP 32
c=IN IP4 192.0.2.2
";

const ALL: &[&str] = &[
    SIPP_UAC,
    BARESIP,
    CARRIER,
    LINPHONE_ICE,
    IPV6,
    REJECTED_VIDEO,
];

#[test]
fn every_sample_writes_back_byte_for_byte_with_crlf() {
    for sample in ALL {
        assert_eq!(parse(sample).to_string(), crlf(sample));
    }
}

#[test]
fn bare_lf_input_is_accepted_and_written_with_crlf() {
    let sdp = SessionDescription::parse(SIPP_UAC.as_bytes()).unwrap();
    assert_eq!(sdp.to_string(), crlf(SIPP_UAC));
}

#[test]
fn sipp_offer_uses_the_session_level_connection() {
    let sdp = parse(SIPP_UAC);
    assert_eq!(sdp.origin.session_id, 53655765);
    assert_eq!(sdp.origin.session_version, 2353687637);
    assert!(sdp.media[0].connection().is_none());
    let c = sdp.media_connection(0).unwrap().unwrap();
    assert_eq!(c.ip(), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let endpoint = sdp.media_endpoint(0).unwrap().unwrap();
    assert_eq!(
        endpoint.rtp,
        "127.0.0.1:6000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        endpoint.rtcp,
        "127.0.0.1:6001".parse::<SocketAddr>().unwrap()
    );
    assert!(!endpoint.rtcp_mux);
    assert_eq!(sdp.direction(0).unwrap(), Direction::SendRecv);
    assert_eq!(sdp.media[0].find_codec("pcmu", 8000), Some(0));
}

#[test]
fn baresip_offer_reads_codecs_fmtp_ptime_and_direction() {
    let sdp = parse(BARESIP);
    let m = &sdp.media[0];
    assert_eq!(m.kind, "audio");
    assert_eq!(m.protocol, "RTP/AVP");
    let opus = m.codec(96).unwrap();
    assert_eq!(
        (opus.encoding.as_str(), opus.clock_rate, opus.channels),
        ("opus", 48000, Some(2))
    );
    assert_eq!(m.fmtp("96"), Some("stereo=1;sprop-stereo=1"));
    assert_eq!(m.fmtp("101"), Some("0-15"));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.direction(), Some(Direction::SendRecv));
    assert_eq!(m.telephone_event(), Some(101));
    let order: Vec<_> = m.codecs().into_iter().map(|c| c.encoding).collect();
    assert_eq!(order, ["opus", "G722", "PCMU", "PCMA", "telephone-event"]);
}

#[test]
fn carrier_offer_picks_the_8khz_telephone_event_and_its_media_level_rtcp() {
    let sdp = parse(CARRIER);
    let m = &sdp.media[0];
    assert_eq!(m.telephone_event(), Some(101), "not the 16 kHz one (100)");
    assert_eq!(m.rtcp().map(|r| r.port), Some(17591));
    assert_eq!(m.ptime(), Some(20));
    assert_eq!(m.fmtp("18"), Some("annexb=no"));
    assert!(sdp.connection().is_none());
    let endpoint = sdp.media_endpoint(0).unwrap().unwrap();
    assert_eq!(
        endpoint.rtp,
        "203.0.113.11:17590".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn agreement_reads_g711_and_telephone_events_from_both_sides() {
    let offer = parse(CARRIER);
    // Our answer kept PCMA and events, with another events payload type.
    let answer = parse(
        "v=0
o=- 1 1 IN IP4 10.0.0.1
s=-
c=IN IP4 10.0.0.1
t=0 0
m=audio 20000 RTP/AVP 8 96
a=rtpmap:96 telephone-event/8000
",
    );
    let agreed = Agreement::between(&offer.media[0], &answer.media[0]);
    assert!(agreed.pcma);
    assert!(!agreed.pcmu);
    assert_eq!(
        agreed.telephone_event,
        Some(TelephoneEvent {
            offerer_receives: 101,
            answerer_receives: 96
        })
    );
    let sipp = parse(SIPP_UAC);
    let agreed = Agreement::between(&offer.media[0], &sipp.media[0]);
    assert!(agreed.pcmu && !agreed.pcma);
    assert_eq!(agreed.telephone_event, None);
}

#[test]
fn a_rejected_stream_is_port_zero_and_agrees_on_nothing() {
    let answer = parse(REJECTED_VIDEO);
    assert!(!answer.media[0].is_rejected());
    assert!(answer.media[1].is_rejected());
    assert_eq!(answer.media_endpoint(1).unwrap(), None);
    assert_eq!(answer.origin.address, "host.biloxi.example.com");
    let mut offer = answer.clone();
    offer.media[1].port = 51372;
    assert_eq!(
        Agreement::between(&offer.media[1], &answer.media[1]),
        Agreement::default()
    );
    let mut sipp = parse(SIPP_UAC);
    sipp.reject_media(0).unwrap();
    assert!(sipp.to_string().contains("m=audio 0 RTP/AVP 0\r\n"));
    assert!(matches!(
        sipp.reject_media(1),
        Err(MediaError::NoSuchMedia { index: 1, count: 1 })
    ));
}

#[test]
fn strip_ice_removes_only_ice_attributes() {
    let mut sdp = parse(LINPHONE_ICE);
    sdp.strip_ice();
    let expected = "v=0
o=linphone 1502 3347 IN IP4 192.168.0.5
s=Talk
c=IN IP4 198.51.100.7
t=0 0
m=audio 51000 RTP/AVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=rtcp:51001 IN IP4 198.51.100.7
a=rtcp-fb:* trr-int 1000
";
    assert_eq!(sdp.to_string(), crlf(expected));
}

#[test]
fn anchoring_a_session_level_connection_changes_only_c_and_the_port() {
    let mut sdp = parse(SIPP_UAC);
    sdp.anchor(
        "10.0.0.1".parse().unwrap(),
        &[30000],
        RtcpRewrite::PortPlusOne,
    )
    .unwrap();
    let expected = SIPP_UAC
        .replace("c=IN IP4 127.0.0.1", "c=IN IP4 10.0.0.1")
        .replace("m=audio 6000", "m=audio 30000");
    assert_eq!(sdp.to_string(), crlf(&expected));
}

#[test]
fn anchoring_rewrites_a_media_level_connection_and_rtcp_to_port_plus_one() {
    let mut sdp = parse(CARRIER);
    sdp.anchor(
        "10.0.0.1".parse().unwrap(),
        &[30002],
        RtcpRewrite::PortPlusOne,
    )
    .unwrap();
    let expected = CARRIER
        .replace("m=audio 17590", "m=audio 30002")
        .replace("c=IN IP4 203.0.113.11", "c=IN IP4 10.0.0.1")
        .replace("a=rtcp:17591", "a=rtcp:30003 IN IP4 10.0.0.1");
    assert_eq!(sdp.to_string(), crlf(&expected));
    let endpoint = sdp.media_endpoint(0).unwrap().unwrap();
    assert_eq!(
        endpoint.rtcp,
        "10.0.0.1:30003".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn anchoring_can_drop_rtcp_and_switches_ipv6_to_ipv4() {
    let mut sdp = parse(IPV6);
    sdp.anchor("10.0.0.1".parse().unwrap(), &[30004], RtcpRewrite::Drop)
        .unwrap();
    let text = sdp.to_string();
    assert!(text.contains("\r\nc=IN IP4 10.0.0.1\r\n"), "{text}");
    assert!(
        text.contains("\r\nm=audio 30004 RTP/AVP 8 0 101\r\n"),
        "{text}"
    );
    assert!(!text.contains("a=rtcp:"), "{text}");
    assert!(text.contains("a=rtcp-mux\r\na=recvonly\r\n"), "{text}");
    assert!(
        !text.contains("2001:db8::10\r\nt="),
        "the session c= still names the peer: {text}"
    );
}

#[test]
fn anchoring_one_media_section_adds_its_own_connection_after_i() {
    let mut sdp = parse(REJECTED_VIDEO);
    sdp.anchor_media(
        0,
        "10.0.0.1".parse().unwrap(),
        30006,
        RtcpRewrite::PortPlusOne,
    )
    .unwrap();
    assert_eq!(
        sdp.media[0].lines[0],
        Line::Connection(Connection::new("10.0.0.1".parse().unwrap()))
    );
    assert_eq!(sdp.media[0].port, 30006);
    assert_eq!(
        sdp.media_connection(1).unwrap().unwrap().address,
        "192.0.2.2"
    );
    // A rejected section stays rejected.
    sdp.anchor_media(
        1,
        "10.0.0.1".parse().unwrap(),
        30008,
        RtcpRewrite::PortPlusOne,
    )
    .unwrap();
    assert_eq!(sdp.media[1].port, 0);
}

#[test]
fn anchoring_keeps_rejected_streams_at_port_zero_and_hides_their_address() {
    let mut sdp = parse(REJECTED_VIDEO);
    sdp.anchor(
        "10.0.0.1".parse().unwrap(),
        &[30010, 30012, 30014],
        RtcpRewrite::PortPlusOne,
    )
    .unwrap();
    let text = sdp.to_string();
    assert!(text.contains("m=audio 30010 RTP/AVP 0\r\n"), "{text}");
    assert!(text.contains("m=video 0 RTP/AVP 31\r\n"), "{text}");
    assert!(
        text.contains("m=video 0 RTP/AVP 32\r\nc=IN IP4 10.0.0.1\r\n"),
        "{text}"
    );
    assert!(!text.contains("192.0.2.2"), "{text}");
    assert!(matches!(
        sdp.anchor("10.0.0.1".parse().unwrap(), &[1], RtcpRewrite::Drop),
        Err(MediaError::NoSuchMedia { .. })
    ));
}

#[test]
fn rtcp_mux_puts_rtcp_on_the_rtp_port() {
    let sdp = parse(IPV6);
    let endpoint = sdp.media_endpoint(0).unwrap().unwrap();
    assert!(endpoint.rtcp_mux);
    assert_eq!(endpoint.rtcp, endpoint.rtp);
    assert_eq!(
        endpoint.rtp,
        "[2001:db8::10]:49170".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn direction_falls_back_to_session_level_then_sendrecv() {
    let mut sdp = parse(&SIPP_UAC.replace("t=0 0\n", "t=0 0\na=sendonly\n"));
    assert_eq!(sdp.direction(0).unwrap(), Direction::SendOnly);
    sdp.set_direction(0, Direction::Inactive).unwrap();
    assert_eq!(sdp.direction(0).unwrap(), Direction::Inactive);
    assert!(
        sdp.to_string()
            .ends_with("a=rtpmap:0 PCMU/8000\r\na=inactive\r\n")
    );
    assert_eq!(parse(IPV6).direction(0).unwrap(), Direction::RecvOnly);
    assert_eq!(parse(SIPP_UAC).direction(0).unwrap(), Direction::SendRecv);
}

#[test]
fn answer_directions_follow_rfc_3264_section_6_1() {
    use Direction::*;
    assert_eq!(SendRecv.answer(), SendRecv);
    assert_eq!(SendOnly.answer(), RecvOnly);
    assert_eq!(RecvOnly.answer(), SendOnly);
    assert_eq!(Inactive.answer(), Inactive);
    // An answerer putting the call on hold only sends.
    assert_eq!(SendRecv.answer_with(SendOnly), SendOnly);
    assert_eq!(SendOnly.answer_with(SendOnly), Inactive);
    assert_eq!(RecvOnly.answer_with(RecvOnly), Inactive);
    assert_eq!(SendOnly.answer_with(RecvOnly), RecvOnly);
}

#[test]
fn our_origin_keeps_the_session_id_and_bumps_the_version_only_on_change() {
    let ip: IpAddr = "10.0.0.1".parse().unwrap();
    let mut origin = LegOrigin::new("switchboard", 4242, ip);
    let mut sdp = parse(BARESIP);
    assert_eq!(origin.stamp(&mut sdp), 1);
    assert!(
        sdp.to_string()
            .contains("\r\no=switchboard 4242 1 IN IP4 10.0.0.1\r\n")
    );
    // The same content again (a re-INVITE for a session refresh).
    let mut again = parse(BARESIP);
    assert_eq!(origin.stamp(&mut again), 1);
    // Hold: the direction changed.
    again.set_direction(0, Direction::SendOnly).unwrap();
    assert_eq!(origin.stamp(&mut again), 2);
    assert_eq!(again.origin.session_id, 4242);
    assert_eq!(origin.stamp(&mut again), 2);
}

/// Each malformed description, the line its error names, and words of
/// the reason.
#[test]
fn garbage_is_refused_with_the_line_and_the_reason() {
    let cases: &[(&str, Option<usize>, &str)] = &[
        ("", None, "no v= line"),
        ("o=- 1 1 IN IP4 1.2.3.4\n", Some(1), "expected v="),
        ("v=1\n", Some(1), "version \"1\""),
        ("v=0\no=- 1 1 IN IP4\n", Some(2), "o= has 5 fields"),
        (
            "v=0\no=- x 1 IN IP4 1.2.3.4\n",
            Some(2),
            "session id \"x\" is not a number",
        ),
        (
            "v=0\no=- 1 99999999999999999999 IN IP4 1.2.3.4\n",
            Some(2),
            "does not fit 64 bits",
        ),
        (
            "v=0\no=- 1 1 ATM NSAP 1.2.3.4\n",
            Some(2),
            "network type \"ATM\"",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\nt=0 0\n",
            Some(3),
            "expected s=",
        ),
        ("v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\n", None, "no t= line"),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 999.1.1.1\nt=0 0\n",
            Some(4),
            "not an IP4 address",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 2001:db8::1\nt=0 0\n",
            Some(4),
            "not an IP4 address",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP5 1.2.3.4\nt=0 0\n",
            Some(4),
            "address type \"IP5\"",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nx=what\n",
            Some(5),
            "unknown line type x=",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\n\nm=audio 1 RTP/AVP 0\n",
            Some(5),
            "not a <type>=<value> line",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nGARBAGE\n",
            Some(5),
            "not a <type>=<value> line",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 70000 RTP/AVP 0\n",
            Some(6),
            "port \"70000\"",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP\n",
            Some(6),
            "m= needs",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 200\n",
            Some(6),
            "format \"200\"",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\nt=0 0\n",
            Some(7),
            "t= is not allowed in a media section",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\na=rtpmap:0 PCMU\n",
            Some(7),
            "clock rate",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\na=rtpmap:300 X/8000\n",
            Some(7),
            "payload type is not 0-127",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\na=ptime:abc\n",
            Some(7),
            "a=ptime \"abc\"",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\na=rtcp:x\n",
            Some(7),
            "a=rtcp port",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nc=IN IP4 1.2.3.4\nt=0 0\nm=audio 5000 RTP/AVP 0\na=sendrecv:yes\n",
            Some(7),
            "takes no value",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\n",
            Some(5),
            "no c= line",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\nc=IN IP4 1.2.3.4\nc=IN IP4 1.2.3.5\n",
            Some(7),
            "a second c= line",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=-\nt=0 0\nm=audio 5000 RTP/AVP 0\nc=IN IP4 1.2.3.4\na=fmtp:0\n",
            Some(7),
            "a=fmtp needs",
        ),
        (
            "v=0\no=- 1 1 IN IP4 1.2.3.4\ns=\u{0}\n",
            Some(3),
            "a CR or NUL inside the line",
        ),
    ];
    for (text, line, reason) in cases {
        let error = SessionDescription::parse(text.as_bytes()).expect_err(text);
        let message = error.to_string();
        match (line, &error) {
            (Some(expected), MediaError::Sdp { line, .. }) => {
                assert_eq!(line, expected, "{text:?}: {message}")
            }
            (None, MediaError::SdpIncomplete(_)) => {}
            _ => panic!("{text:?}: unexpected {message}"),
        }
        assert!(
            message.contains(reason),
            "{text:?}: {message:?} lacks {reason:?}"
        );
    }
}

#[test]
fn bytes_that_are_not_utf8_are_refused_naming_their_line() {
    let mut text = b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=".to_vec();
    text.extend_from_slice(&[0xff, 0xfe, b'\r', b'\n']);
    match SessionDescription::parse(&text) {
        Err(MediaError::Sdp { line: 3, reason }) => assert!(reason.contains("UTF-8")),
        other => panic!("{other:?}"),
    }
}
