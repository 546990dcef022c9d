//! The relay's per-packet path, in process and over loopback UDP.
//!
//! ```text
//! cargo bench -p switchboard-media --bench relay -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! In process (no system calls), on a 172-byte G.711 packet (12-byte
//! header, 160 bytes of 20 ms µ-law), each beside `copy`, the cost of
//! copying the packet once (a baseline: what any relay pays at least):
//! - `peek`: RTP/RTCP classification and header checks;
//! - `per_packet`: what a worker does per packet between `recvmmsg` and
//!   `sendmmsg`: peek, the latching decision on the source, continuity
//!   (pass-through: same source);
//! - `per_packet_rewrite`: the same after a change of source, so that
//!   sequence, timestamp and SSRC are rewritten.
//!
//! Over UDP on 127.0.0.1, a burst of 32 packets from one socket to
//! another, received in full (throughput in packets/s):
//! - `udp_direct`: socket to socket (the kernel's own cost);
//! - `udp_relayed`: through one relay session (one worker).

use std::hint::black_box;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchboard_media::relay::{Continuity, Latch, LegId, Relay, RelayOptions, Remote};
use switchboard_media::rtp::{Packet, classify};

const BURST: usize = 32;

fn pcmu(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0xd5; 160]);
    p
}

/// Peek, latch decision, continuity: the worker's per-packet steps.
fn per_packet(
    packet: &mut [u8],
    source: SocketAddr,
    latch: &mut Latch,
    out: &mut Continuity,
    now_ns: u64,
) -> bool {
    match classify(packet) {
        Ok(Packet::Rtp(_)) if latch.accept(source) => {
            out.apply(packet, now_ns, 8000);
            true
        }
        _ => false,
    }
}

fn in_process(c: &mut Criterion) {
    let source: SocketAddr = "192.0.2.10:40000".parse().unwrap();
    let mut group = c.benchmark_group("packet");
    group.throughput(Throughput::Elements(1));

    let packet = pcmu(1, 0xaaaa);
    let mut copy = vec![0u8; packet.len()];
    group.bench_function("copy", |b| {
        b.iter(|| copy.copy_from_slice(black_box(&packet)));
    });
    group.bench_function("peek", |b| {
        b.iter(|| matches!(classify(black_box(&packet)), Ok(Packet::Rtp(_))));
    });

    let mut latch = Latch::new(Some(source));
    let mut out = Continuity::default();
    let mut buf = pcmu(1, 0xaaaa);
    let mut now = 0u64;
    group.bench_function("per_packet", |b| {
        b.iter(|| {
            now += 20_000_000;
            per_packet(black_box(&mut buf), source, &mut latch, &mut out, now)
        });
    });

    // A source change first, so that every packet after it is rewritten.
    let mut latch = Latch::new(Some(source));
    let mut out = Continuity::default();
    per_packet(&mut pcmu(1, 0xaaaa), source, &mut latch, &mut out, 0);
    let incoming = pcmu(900, 0xbbbb);
    let mut buf = incoming.clone();
    let mut now = 0u64;
    group.bench_function("per_packet_rewrite", |b| {
        b.iter(|| {
            now += 20_000_000;
            // Restore the incoming header: the rewrite must run each time.
            buf[..12].copy_from_slice(&incoming[..12]);
            per_packet(black_box(&mut buf), source, &mut latch, &mut out, now)
        });
    });
    group.finish();
}

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn burst(from: &UdpSocket, to: SocketAddr, into: &UdpSocket, packets: &[Vec<u8>]) {
    for p in packets {
        from.send_to(p, to).unwrap();
    }
    let mut buf = [0u8; 2048];
    for _ in packets {
        into.recv_from(&mut buf)
            .expect("a packet of the burst was lost");
    }
}

/// A free even/odd pair range for the relay, outside the ephemeral ports.
fn free_ports() -> std::ops::RangeInclusive<u16> {
    (20_000..32_000u16)
        .step_by(4)
        .find(|&p| (p..p + 4).all(|q| UdpSocket::bind(("127.0.0.1", q)).is_ok()))
        .map(|p| p..=p + 3)
        .expect("four free ports")
}

fn over_udp(c: &mut Criterion) {
    let packets: Vec<Vec<u8>> = (0..BURST as u16).map(|s| pcmu(s, 0xaaaa)).collect();
    let mut group = c.benchmark_group("udp");
    group.throughput(Throughput::Elements(BURST as u64));

    let (a, b) = (socket(), socket());
    let to_b = b.local_addr().unwrap();
    group.bench_function("udp_direct", |bench| {
        bench.iter(|| burst(&a, to_b, &b, &packets))
    });

    let relay = Relay::start(RelayOptions {
        bind: "127.0.0.1".parse().unwrap(),
        advertise: None,
        ports: free_ports(),
        workers: 1,
    })
    .unwrap();
    let session = relay.create_session(2).unwrap();
    for (leg, phone) in [(LegId(0), &a), (LegId(1), &b)] {
        let addr = phone.local_addr().unwrap();
        session
            .set_remote(
                leg,
                Remote {
                    rtp: addr,
                    rtcp: addr,
                    rtcp_mux: true,
                    clock_rate: 8000,
                },
            )
            .unwrap();
    }
    session.connect(LegId(0), LegId(1)).unwrap();
    let into_relay = session.local(LegId(0)).unwrap().rtp;
    group.bench_function("udp_relayed", |bench| {
        bench.iter(|| burst(&a, into_relay, &b, &packets))
    });
    group.finish();
}

criterion_group!(benches, in_process, over_udp);
criterion_main!(benches);
