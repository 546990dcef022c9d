//! The relay over real UDP sockets on 127.0.0.1: fake endpoints stream
//! RTP and RTCP through it and read what arrives.

use std::net::{SocketAddr, UdpSocket};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use switchboard_media::MediaError;
use switchboard_media::relay::{LegId, MediaSession, Relay, RelayOptions, Remote};
use switchboard_media::rtp::RtpHeader;
use switchboard_media::sdp::{Agreement, Direction, LegOrigin, RtcpRewrite, SessionDescription};

/// A range of `pairs` even/odd port pairs that were all free a moment
/// ago, below Linux's ephemeral range (32768+) that `127.0.0.1:0` sockets
/// of other tests draw from.
fn free_range(pairs: u16) -> RangeInclusive<u16> {
    free_range_on("127.0.0.1", pairs)
}

fn free_range_on(ip: &str, pairs: u16) -> RangeInclusive<u16> {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // A test process needs at most ~220 ports (all tests, `cargo test`);
    // processes side by side (nextest) start in different places.
    let base = 20_000 + (std::process::id() % 47) as u16 * 250;
    loop {
        let start = base + NEXT.fetch_add(pairs * 2, Ordering::SeqCst);
        assert!(start < 32_000, "no free port range found");
        let range = start..=start + pairs * 2 - 1;
        let free = range
            .clone()
            .all(|port| UdpSocket::bind((ip, port)).is_ok());
        if free {
            return range;
        }
    }
}

fn relay(pairs: u16, workers: usize) -> Relay {
    Relay::start(RelayOptions {
        bind: "127.0.0.1".parse().unwrap(),
        advertise: None,
        ports: free_range(pairs),
        workers,
    })
    .unwrap()
}

/// A fake phone: an RTP and an RTCP socket.
struct Phone {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl Phone {
    fn new() -> Self {
        Self::on("127.0.0.1")
    }

    fn on(ip: &str) -> Self {
        let bind = || {
            let s = UdpSocket::bind((ip, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s
        };
        Self {
            rtp: bind(),
            rtcp: bind(),
        }
    }

    fn remote(&self) -> Remote {
        Remote {
            rtp: self.rtp.local_addr().unwrap(),
            rtcp: self.rtcp.local_addr().unwrap(),
            rtcp_mux: false,
            clock_rate: 8000,
        }
    }
}

fn rtp(seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// An RTCP receiver report with no report blocks.
fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

fn recv(socket: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 2048];
    let (n, from) = socket.recv_from(&mut buf).expect("a datagram within 5 s");
    (buf[..n].to_vec(), from)
}

/// Waits (5 s at most) until `condition` holds: the relay counts a packet
/// it sent after the kernel took it, a moment after the receiver may
/// already have it, and packets on different sockets are served in no
/// guaranteed order.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "not within 5 s: {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn fields(packet: &[u8]) -> (u16, u32, u32) {
    let h = RtpHeader::peek(packet).unwrap();
    (h.sequence(), h.timestamp(), h.ssrc())
}

/// A session of two legs connected, each pointed at its phone's SDP address.
fn call(relay: &Relay, a: &Phone, b: &Phone) -> MediaSession {
    let session = relay.create_session(2).unwrap();
    session.set_remote(LegId(0), a.remote()).unwrap();
    session.set_remote(LegId(1), b.remote()).unwrap();
    session.connect(LegId(0), LegId(1)).unwrap();
    session
}

#[test]
fn endpoints_receive_the_exact_bytes_in_both_directions() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );
    assert_eq!(leg_a.rtp.port() % 2, 0);
    assert_eq!(leg_a.rtcp.port(), leg_a.rtp.port() + 1);
    assert_ne!(leg_a.rtp, leg_b.rtp);

    for seq in 0..20u16 {
        let payload: Vec<u8> = (0..160).map(|i| (i as u16 * 7 + seq) as u8).collect();
        let sent = rtp(seq, u32::from(seq) * 160, 0x1111, &payload);
        a.rtp.send_to(&sent, leg_a.rtp).unwrap();
        let (got, from) = recv(&b.rtp);
        assert_eq!(got, sent, "A→B packet {seq}");
        assert_eq!(from, leg_b.rtp, "sent from B's leg");

        let reply = rtp(seq + 500, u32::from(seq) * 160 + 7, 0x2222, &payload[..80]);
        b.rtp.send_to(&reply, leg_b.rtp).unwrap();
        let (got, from) = recv(&a.rtp);
        assert_eq!(got, reply, "B→A packet {seq}");
        assert_eq!(from, leg_a.rtp);
    }
    eventually("A's leg counts its 20th packet out", || {
        session.stats(LegId(0)).unwrap().rtp_out.packets == 20
    });
    let stats_a = session.stats(LegId(0)).unwrap();
    let stats_b = session.stats(LegId(1)).unwrap();
    assert_eq!(stats_a.rtp_in.packets, 20);
    assert_eq!(stats_a.rtp_in.bytes, 20 * (12 + 160));
    assert_eq!(stats_b.rtp_out.packets, 20);
    assert_eq!(stats_b.rtp_out.bytes, 20 * (12 + 160));
    assert_eq!(stats_a.rtp_out.bytes, 20 * (12 + 80));
    assert_eq!(stats_b.rtp_in.packets, 20);
    assert_eq!(stats_a.dropped, Default::default());
}

/// The edge's use of SDP and the relay together: each side's description
/// points the relay at the phone, and is rewritten to the relay's ports
/// before it goes to the other side.
#[test]
fn an_offer_and_answer_anchored_at_the_relay_carry_rtp_and_rtcp() {
    let relay = relay(4, 1);
    let (caller, callee) = (Phone::new(), Phone::new());
    let port = |s: &UdpSocket| s.local_addr().unwrap().port();
    let offer_text = format!(
        "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {} RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na=rtcp:{}\r\na=ptime:20\r\n",
        port(&caller.rtp),
        port(&caller.rtcp)
    );
    let mut offer = SessionDescription::parse(offer_text.as_bytes()).unwrap();
    let session = relay.create_session(2).unwrap();
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );
    let caller_at = offer.media_endpoint(0).unwrap().unwrap();
    session
        .set_remote(LegId(0), Remote::from_endpoint(caller_at, 8000))
        .unwrap();
    offer
        .anchor(
            relay.advertised_ip(),
            &[leg_b.rtp.port()],
            RtcpRewrite::PortPlusOne,
        )
        .unwrap();
    LegOrigin::new("switchboard", 7, relay.advertised_ip()).stamp(&mut offer);
    let callee_gets = SessionDescription::parse(offer.to_string().as_bytes()).unwrap();
    let callee_sends_to = callee_gets.media_endpoint(0).unwrap().unwrap();
    assert_eq!(
        (callee_sends_to.rtp, callee_sends_to.rtcp),
        (leg_b.rtp, leg_b.rtcp)
    );

    let answer_text = format!(
        "v=0\r\no=- 3391540046 1209735043 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
         t=0 0\r\nm=audio {} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=rtcp:{}\r\na={}\r\n",
        port(&callee.rtp),
        port(&callee.rtcp),
        callee_gets.direction(0).unwrap().answer()
    );
    let mut answer = SessionDescription::parse(answer_text.as_bytes()).unwrap();
    let agreed = Agreement::between(&offer.media[0], &answer.media[0]);
    assert!(agreed.pcmu && !agreed.pcma);
    assert_eq!(
        agreed.telephone_event.map(|t| t.answerer_receives),
        Some(101)
    );
    let callee_at = answer.media_endpoint(0).unwrap().unwrap();
    session
        .set_remote(LegId(1), Remote::from_endpoint(callee_at, 8000))
        .unwrap();
    answer
        .anchor(
            relay.advertised_ip(),
            &[leg_a.rtp.port()],
            RtcpRewrite::PortPlusOne,
        )
        .unwrap();
    LegOrigin::new("switchboard", 8, relay.advertised_ip()).stamp(&mut answer);
    let caller_gets = SessionDescription::parse(answer.to_string().as_bytes()).unwrap();
    assert_eq!(caller_gets.direction(0).unwrap(), Direction::SendRecv);
    let caller_sends_to = caller_gets.media_endpoint(0).unwrap().unwrap();
    assert_eq!(
        (caller_sends_to.rtp, caller_sends_to.rtcp),
        (leg_a.rtp, leg_a.rtcp)
    );
    session.connect(LegId(0), LegId(1)).unwrap();

    // Each phone sends where its SDP says, and hears the other.
    caller
        .rtp
        .send_to(&rtp(1, 0, 0xa, &[0xff; 160]), caller_sends_to.rtp)
        .unwrap();
    assert_eq!(recv(&callee.rtp).0, rtp(1, 0, 0xa, &[0xff; 160]));
    callee
        .rtp
        .send_to(&rtp(1, 0, 0xb, &[0x7f; 160]), callee_sends_to.rtp)
        .unwrap();
    assert_eq!(recv(&caller.rtp).0, rtp(1, 0, 0xb, &[0x7f; 160]));
    caller
        .rtcp
        .send_to(&rtcp_rr(0xa), caller_sends_to.rtcp)
        .unwrap();
    assert_eq!(recv(&callee.rtcp).0, rtcp_rr(0xa));
    callee
        .rtcp
        .send_to(&rtcp_rr(0xb), callee_sends_to.rtcp)
        .unwrap();
    assert_eq!(recv(&caller.rtcp).0, rtcp_rr(0xb));
}

#[test]
fn media_is_relayed_over_ipv6() {
    let relay = Relay::start(RelayOptions {
        bind: "::1".parse().unwrap(),
        advertise: None,
        ports: free_range_on("::1", 2),
        workers: 1,
    })
    .unwrap();
    let (a, b) = (Phone::on("::1"), Phone::on("::1"));
    let session = call(&relay, &a, &b);
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );
    assert!(leg_a.rtp.is_ipv6());
    a.rtp
        .send_to(&rtp(1, 0, 0xa, b"over v6"), leg_a.rtp)
        .unwrap();
    assert_eq!(recv(&b.rtp), (rtp(1, 0, 0xa, b"over v6"), leg_b.rtp));
    b.rtcp.send_to(&rtcp_rr(0xb), leg_b.rtcp).unwrap();
    assert_eq!(recv(&a.rtcp), (rtcp_rr(0xb), leg_a.rtcp));
}

#[test]
fn a_leg_latches_to_the_source_of_its_first_packet_and_again_after_new_sdp() {
    let relay = relay(4, 1);
    let (sdp_a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &sdp_a, &b);
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );

    // The caller is behind NAT: its packets come from another address
    // than its SDP's.
    let natted = Phone::new();
    natted
        .rtp
        .send_to(&rtp(1, 160, 0xa, b"hello"), leg_a.rtp)
        .unwrap();
    assert_eq!(recv(&b.rtp).0, rtp(1, 160, 0xa, b"hello"));
    b.rtp.send_to(&rtp(9, 90, 0xb, b"back"), leg_b.rtp).unwrap();
    let (got, from) = recv(&natted.rtp);
    assert_eq!((got, from), (rtp(9, 90, 0xb, b"back"), leg_a.rtp));

    // A re-INVITE gives a new SDP address: the leg latches again.
    let moved = Phone::new();
    session.set_remote(LegId(0), sdp_a.remote()).unwrap();
    moved
        .rtp
        .send_to(&rtp(2, 320, 0xa, b"moved"), leg_a.rtp)
        .unwrap();
    assert_eq!(recv(&b.rtp).0, rtp(2, 320, 0xa, b"moved"));
    b.rtp
        .send_to(&rtp(10, 250, 0xb, b"again"), leg_b.rtp)
        .unwrap();
    assert_eq!(recv(&moved.rtp).0, rtp(10, 250, 0xb, b"again"));
    assert_eq!(session.stats(LegId(0)).unwrap().dropped.stranger, 0);
}

#[test]
fn before_any_packet_the_far_end_gets_media_at_its_sdp_address() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    // B has sent nothing: A's packets go to B's SDP address.
    a.rtp
        .send_to(
            &rtp(1, 1, 1, b"early"),
            session.local(LegId(0)).unwrap().rtp,
        )
        .unwrap();
    assert_eq!(recv(&b.rtp).0, rtp(1, 1, 1, b"early"));
}

#[test]
fn rtcp_is_relayed_between_the_odd_ports_and_to_a_multiplexing_end() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );

    a.rtcp.send_to(&rtcp_rr(0xa), leg_a.rtcp).unwrap();
    let (got, from) = recv(&b.rtcp);
    assert_eq!((got, from), (rtcp_rr(0xa), leg_b.rtcp));
    b.rtcp.send_to(&rtcp_rr(0xb), leg_b.rtcp).unwrap();
    let (got, from) = recv(&a.rtcp);
    assert_eq!((got, from), (rtcp_rr(0xb), leg_a.rtcp));

    // B now multiplexes RTCP on its RTP port (RFC 5761).
    session
        .set_remote(
            LegId(1),
            Remote {
                rtcp_mux: true,
                ..b.remote()
            },
        )
        .unwrap();
    a.rtcp.send_to(&rtcp_rr(0xc), leg_a.rtcp).unwrap();
    let (got, from) = recv(&b.rtp);
    assert_eq!((got, from), (rtcp_rr(0xc), leg_b.rtp));
    // …and its RTCP, arriving on the RTP port, reaches A's RTCP port.
    b.rtp.send_to(&rtcp_rr(0xd), leg_b.rtp).unwrap();
    assert_eq!(recv(&a.rtcp).0, rtcp_rr(0xd));

    eventually("A's leg counts its second RTCP packet out", || {
        session.stats(LegId(0)).unwrap().rtcp_out.packets == 2
    });
    let stats = session.stats(LegId(0)).unwrap();
    assert_eq!(stats.rtcp_in.packets, 2);
    assert_eq!(stats.rtp_in.packets, 0);
    assert_eq!(stats.rtp_out.packets, 0);
}

#[test]
fn a_transfer_gives_the_caller_one_continuous_stream() {
    let relay = relay(6, 1);
    let (caller, agent1, agent2) = (Phone::new(), Phone::new(), Phone::new());
    let session = call(&relay, &caller, &agent1);
    let mut session = session;
    let leg2 = session.add_leg().unwrap();
    session.set_remote(leg2, agent2.remote()).unwrap();
    let to_agent1 = session.local(LegId(1)).unwrap().rtp;
    let to_agent2 = session.local(leg2).unwrap().rtp;

    // Agent 1 talks: passed through unchanged.
    for seq in 4000..4010u16 {
        let sent = rtp(seq, 10_000 + u32::from(seq - 4000) * 160, 0xa1a1, &[1; 160]);
        agent1.rtp.send_to(&sent, to_agent1).unwrap();
        assert_eq!(recv(&caller.rtp).0, sent);
    }
    // Transferred to agent 2, whose stream has its own numbering.
    session.connect(LegId(0), leg2).unwrap();
    let mut last = (4009u16, 10_000 + 9 * 160, 0xa1a1);
    for seq in 17..27u16 {
        let sent = rtp(seq, 777_000 + u32::from(seq - 17) * 160, 0xb2b2, &[2; 160]);
        agent2.rtp.send_to(&sent, to_agent2).unwrap();
        let (got, _) = recv(&caller.rtp);
        let (out_seq, out_ts, out_ssrc) = fields(&got);
        assert_eq!(out_ssrc, 0xa1a1, "the caller keeps hearing one SSRC");
        assert_eq!(out_seq, last.0.wrapping_add(1), "sequence continues");
        assert!(
            out_ts.wrapping_sub(last.1) >= 1 && out_ts.wrapping_sub(last.1) < 8000,
            "timestamp moves on"
        );
        if seq > 17 {
            assert_eq!(
                out_ts.wrapping_sub(last.1),
                160,
                "agent 2's own spacing is kept"
            );
        }
        assert_eq!(got[12..], [2; 160]);
        last = (out_seq, out_ts, out_ssrc);
    }
    // The caller's stream now reaches agent 2; agent 1 is cut off.
    caller
        .rtp
        .send_to(
            &rtp(1, 1, 0xc0c0, b"to two"),
            session.local(LegId(0)).unwrap().rtp,
        )
        .unwrap();
    assert_eq!(recv(&agent2.rtp).0, rtp(1, 1, 0xc0c0, b"to two"));
    agent1
        .rtp
        .send_to(&rtp(4010, 0, 0xa1a1, b"late"), to_agent1)
        .unwrap();
    agent2
        .rtp
        .send_to(&rtp(27, 777_000 + 10 * 160, 0xb2b2, b"next"), to_agent2)
        .unwrap();
    let (got, _) = recv(&caller.rtp);
    assert_eq!(&got[12..], b"next");
    eventually("agent 1's packet is dropped as unrouted", || {
        session.stats(LegId(1)).unwrap().dropped.unrouted == 1
    });
    eventually("the caller's leg counts 21 packets out", || {
        session.stats(LegId(0)).unwrap().rtp_out.packets == 21
    });
}

#[test]
fn a_leg_reconnected_to_its_former_source_hears_it_continue_without_a_gap() {
    let relay = relay(6, 1);
    let (caller, agent1, agent2) = (Phone::new(), Phone::new(), Phone::new());
    let mut session = call(&relay, &caller, &agent1);
    let leg2 = session.add_leg().unwrap();
    session.set_remote(leg2, agent2.remote()).unwrap();
    let from_caller = session.local(LegId(0)).unwrap().rtp;
    let send = |seq: u16| {
        caller
            .rtp
            .send_to(
                &rtp(seq, u32::from(seq) * 160, 0xca11, &[9; 160]),
                from_caller,
            )
            .unwrap();
    };

    for seq in 1..=5 {
        send(seq);
        assert_eq!(
            fields(&recv(&agent1.rtp).0),
            (seq, u32::from(seq) * 160, 0xca11)
        );
    }
    // Agent 1 consults agent 2 (the caller goes to agent 2 meanwhile)…
    session.connect(LegId(0), leg2).unwrap();
    for seq in 6..=10 {
        send(seq);
        recv(&agent2.rtp);
    }
    // …and takes the caller back: agent 1 hears 6 after 5, not 11.
    session.connect(LegId(0), LegId(1)).unwrap();
    send(11);
    let (seq, ts, ssrc) = fields(&recv(&agent1.rtp).0);
    assert_eq!((seq, ssrc), (6, 0xca11));
    assert!(ts > 5 * 160, "the timestamp moves on: {ts}");
    send(12);
    assert_eq!(fields(&recv(&agent1.rtp).0), (7, ts + 160, 0xca11));
}

#[test]
fn a_stranger_after_latching_and_non_rtp_are_dropped_and_counted() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    let leg_a = session.local(LegId(0)).unwrap();
    a.rtp.send_to(&rtp(1, 0, 7, b"first"), leg_a.rtp).unwrap();
    assert_eq!(recv(&b.rtp).0, rtp(1, 0, 7, b"first"));
    a.rtcp.send_to(&rtcp_rr(7), leg_a.rtcp).unwrap();
    assert_eq!(recv(&b.rtcp).0, rtcp_rr(7));

    // Both ports are latched to A now.
    let stranger = Phone::new();
    stranger
        .rtp
        .send_to(&rtp(2, 0, 7, b"injected"), leg_a.rtp)
        .unwrap();
    stranger.rtcp.send_to(&rtcp_rr(66), leg_a.rtcp).unwrap();
    a.rtp.send_to(b"GET / HTTP/1.1\r\n\r\n", leg_a.rtp).unwrap();
    a.rtp.send_to(&[0x40; 20], leg_a.rtp).unwrap(); // version 1
    a.rtp.send_to(&[0x80, 0, 1], leg_a.rtp).unwrap(); // too short
    a.rtcp.send_to(&rtp(3, 0, 7, b""), leg_a.rtcp).unwrap(); // RTP on the RTCP port
    a.rtp.send_to(&rtp(4, 0, 7, b"second"), leg_a.rtp).unwrap();
    a.rtcp.send_to(&rtcp_rr(8), leg_a.rtcp).unwrap();

    // What arrives next on each port is A's, sent after the rest on the
    // same socket: the rest was dropped.
    assert_eq!(recv(&b.rtp).0, rtp(4, 0, 7, b"second"));
    assert_eq!(recv(&b.rtcp).0, rtcp_rr(8));
    let stats = session.stats(LegId(0)).unwrap();
    assert_eq!(stats.dropped.stranger, 2, "{stats:?}");
    assert_eq!(stats.dropped.invalid, 4, "{stats:?}");
    assert_eq!(stats.rtp_in.packets, 2);
    assert_eq!(stats.rtcp_in.packets, 2);
    eventually("B's leg counts A's two packets out", || {
        session.stats(LegId(1)).unwrap().rtp_out.packets == 2
    });
}

#[test]
fn loss_and_jitter_are_read_back() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    let (leg_a, leg_b) = (
        session.local(LegId(0)).unwrap(),
        session.local(LegId(1)).unwrap(),
    );

    // A: 1..=50 with 10, 20 and 30 skipped; its timestamps advance 20 ms a
    // packet while the packets arrive all at once: a large jitter.
    let mut sent = 0;
    for seq in (1..=50u16).filter(|s| s % 10 != 0 || *s > 30) {
        a.rtp
            .send_to(&rtp(seq, u32::from(seq) * 160, 0xa, &[0; 160]), leg_a.rtp)
            .unwrap();
        sent += 1;
    }
    // B: the same burst with a constant timestamp: next to no jitter.
    for seq in 1..=50u16 {
        b.rtp
            .send_to(&rtp(seq, 0, 0xb, &[0; 160]), leg_b.rtp)
            .unwrap();
    }
    for _ in 0..sent {
        recv(&b.rtp);
    }
    for _ in 0..50 {
        recv(&a.rtp);
    }
    let stats = session.stats(LegId(0)).unwrap();
    // Counted from 2 (1 is the probation packet): 2..=50, 3 lost.
    assert_eq!(stats.reception.expected, 49, "{stats:?}");
    assert_eq!(stats.reception.received, 46);
    assert_eq!(stats.reception.lost, 3);
    assert!((stats.reception.fraction_lost - 3.0 / 49.0).abs() < 1e-9);
    // |D| is close to 160 for every packet: J approaches 160 (J += (|D| - J)/16).
    assert!((90..=200).contains(&stats.reception.jitter), "{stats:?}");
    assert!(stats.jitter_ms() > 12.0);
    let calm = session.stats(LegId(1)).unwrap();
    assert_eq!((calm.reception.expected, calm.reception.lost), (49, 0));
    assert!(calm.reception.jitter < 80, "{calm:?}");
    use switchboard_media::quality::Concealment;
    assert!(calm.mos(Duration::from_millis(20), Concealment::Plc) > 4.4);
    assert!(stats.mos(Duration::from_millis(20), Concealment::Plc) < 4.0);
}

#[tokio::test]
async fn closing_or_dropping_a_session_frees_its_ports() {
    let relay = relay(4, 2);
    let session = relay.create_session(2).unwrap();
    let port = session.local(LegId(0)).unwrap().rtp.port();
    assert_eq!(relay.pairs_in_use(), 2);
    assert!(
        UdpSocket::bind(("127.0.0.1", port)).is_err(),
        "bound while in use"
    );
    // Closed from another task: sessions move between the edge's tasks.
    tokio::spawn(session.close()).await.unwrap().unwrap();
    assert_eq!(relay.pairs_in_use(), 0);
    // The sockets are really closed: the ports can be bound again.
    drop(UdpSocket::bind(("127.0.0.1", port)).unwrap());
    drop(UdpSocket::bind(("127.0.0.1", port + 1)).unwrap());

    let session = relay.create_session(3).unwrap();
    assert_eq!(relay.pairs_in_use(), 3);
    drop(session);
    relay.sync().await.unwrap();
    assert_eq!(relay.pairs_in_use(), 0);
}

#[tokio::test]
async fn a_full_port_range_is_a_clear_error_and_recovers() {
    let relay = relay(2, 1);
    let mut session = relay.create_session(2).unwrap();
    match session.add_leg() {
        Err(MediaError::PortsExhausted { first, last, .. }) => assert_eq!(last - first, 3),
        other => panic!("expected the range to be full: {other:?}"),
    }
    assert!(matches!(
        relay.create_session(1),
        Err(MediaError::PortsExhausted { .. })
    ));
    session.close().await.unwrap();
    let again = relay.create_session(2).unwrap();
    assert_eq!(again.legs().count(), 2);
}

#[test]
fn legs_are_checked() {
    let relay = relay(4, 1);
    let session = relay.create_session(2).unwrap();
    assert!(matches!(
        session.connect(LegId(0), LegId(0)),
        Err(MediaError::SelfConnection(0))
    ));
    assert!(matches!(
        session.connect(LegId(0), LegId(2)),
        Err(MediaError::NoSuchLeg(2))
    ));
    assert!(matches!(
        session.stats(LegId(5)),
        Err(MediaError::NoSuchLeg(5))
    ));
    assert!(
        Relay::start(RelayOptions {
            bind: "0.0.0.0".parse().unwrap(),
            advertise: None,
            ports: free_range(2),
            workers: 1,
        })
        .is_err()
    );
}

#[test]
fn idle_legs_are_reported_and_traffic_resets_the_clock() {
    let relay = relay(4, 1);
    let (a, b) = (Phone::new(), Phone::new());
    let session = call(&relay, &a, &b);
    // Idle time is what is measured here: let some pass before A speaks.
    std::thread::sleep(Duration::from_millis(100));
    a.rtp
        .send_to(&rtp(1, 0, 1, b"x"), session.local(LegId(0)).unwrap().rtp)
        .unwrap();
    recv(&b.rtp);
    // Garbage on B's leg does not count as B being alive.
    let leg_b = session.local(LegId(1)).unwrap().rtp;
    b.rtp.send_to(b"not media", leg_b).unwrap();
    eventually("the garbage is counted", || {
        session.stats(LegId(1)).unwrap().dropped.invalid == 1
    });
    let idle_a = session.idle_for(LegId(0)).unwrap();
    let idle_b = session.idle_for(LegId(1)).unwrap();
    assert!(idle_b >= Duration::from_millis(100), "{idle_b:?}");
    assert!(
        idle_b - idle_a >= Duration::from_millis(90),
        "A's packet reset its clock: {idle_a:?} vs {idle_b:?}"
    );
    assert_eq!(
        session.inactive_legs(idle_a + Duration::from_millis(45)),
        vec![LegId(1)]
    );
    assert_eq!(
        session.inactive_legs(Duration::ZERO),
        vec![LegId(0), LegId(1)]
    );
    assert!(session.inactive_legs(Duration::from_secs(3600)).is_empty());
}

#[test]
fn many_concurrent_sessions_relay_across_several_workers() {
    const SESSIONS: usize = 24;
    const PACKETS: u16 = 20;
    let relay = relay(SESSIONS as u16 * 2, 3);
    assert_eq!(relay.workers(), 3);
    let calls: Vec<(Phone, Phone, MediaSession)> = (0..SESSIONS)
        .map(|_| {
            let (a, b) = (Phone::new(), Phone::new());
            let session = call(&relay, &a, &b);
            (a, b, session)
        })
        .collect();
    std::thread::scope(|scope| {
        for (index, (a, b, session)) in calls.iter().enumerate() {
            scope.spawn(move || {
                let (leg_a, leg_b) = (
                    session.local(LegId(0)).unwrap(),
                    session.local(LegId(1)).unwrap(),
                );
                for seq in 0..PACKETS {
                    let ssrc = index as u32;
                    a.rtp
                        .send_to(&rtp(seq, 0, ssrc, &[index as u8; 160]), leg_a.rtp)
                        .unwrap();
                    b.rtp
                        .send_to(&rtp(seq, 0, ssrc + 1000, &[seq as u8; 160]), leg_b.rtp)
                        .unwrap();
                }
                for seq in 0..PACKETS {
                    let (got, _) = recv(&b.rtp);
                    assert_eq!(
                        fields(&got).2,
                        index as u32,
                        "session {index}: another call's packet"
                    );
                    assert_eq!(got[12..], [index as u8; 160]);
                    let (got, _) = recv(&a.rtp);
                    assert_eq!(fields(&got), (seq, 0, index as u32 + 1000));
                }
            });
        }
    });
    for (_, _, session) in &calls {
        eventually("every leg counts its packets out", || {
            let stats = session.stats(LegId(0)).unwrap();
            stats.rtp_in.packets == u64::from(PACKETS)
                && stats.rtp_out.packets == u64::from(PACKETS)
        });
    }
    assert_eq!(relay.pairs_in_use(), SESSIONS * 2);
}
