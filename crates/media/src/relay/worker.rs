//! One relay worker: an OS thread with its own `mio` event loop over the
//! sockets of the sessions assigned to it. Per readiness it reads a batch,
//! checks and forwards each datagram, and sends the batch: no allocation,
//! lock or channel per packet. Commands from the control side arrive on a
//! channel and are taken when the loop's waker fires.

use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use tokio::sync::oneshot;

use super::continuity::Continuity;
use super::io::{BATCH, Batch};
use super::latch::Latch;
use super::ports::LegSockets;
use super::{LegShared, Remote};
use crate::rtp::{Packet, ReceiverStats, classify};

pub(crate) const WAKER: Token = Token(usize::MAX);

pub(crate) enum Command {
    AddLeg {
        session: u64,
        sockets: LegSockets,
        shared: Arc<LegShared>,
    },
    Connect {
        session: u64,
        a: usize,
        b: usize,
    },
    SetRemote {
        session: u64,
        leg: usize,
        remote: Remote,
    },
    RemoveSession {
        session: u64,
        done: Option<oneshot::Sender<()>>,
    },
    Barrier(oneshot::Sender<()>),
    Stop,
}

struct Leg {
    sockets: LegSockets,
    shared: Arc<LegShared>,
    peer: Option<usize>,
    rtp: Latch,
    rtcp: Latch,
    rtcp_mux: bool,
    clock_rate: u32,
    stats: ReceiverStats,
    out: Continuity,
}

/// Batches one socket may read before the others get their turn.
const BATCHES_PER_TURN: usize = 8;
/// Tags of queued datagrams.
const TAG_RTP: u8 = 0;
const TAG_RTCP: u8 = 1;
/// Queues of the egress leg's sockets.
const QUEUE_RTP: usize = 0;
const QUEUE_RTCP: usize = 1;

pub(crate) struct Worker {
    poll: Poll,
    commands: Receiver<Command>,
    epoch: Instant,
    legs: Vec<Option<Leg>>,
    free_slots: Vec<usize>,
    sessions: HashMap<u64, Vec<usize>>,
    /// What phase 1 kept of the current batch: `None` or the tag.
    kept: [Option<u8>; BATCH],
}

impl Worker {
    pub(crate) fn new(poll: Poll, commands: Receiver<Command>, epoch: Instant) -> Self {
        Self {
            poll,
            commands,
            epoch,
            legs: Vec::new(),
            free_slots: Vec::new(),
            sessions: HashMap::new(),
            kept: [None; BATCH],
        }
    }

    /// Runs until told to stop or the control side is gone.
    pub(crate) fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut batch = Batch::new();
        // Sockets left with datagrams after their turn (edge-triggered
        // readiness will not report them again): served next turn.
        let mut pending: Vec<Token> = Vec::with_capacity(1024);
        let mut again: Vec<Token> = Vec::with_capacity(1024);
        loop {
            let timeout = (!pending.is_empty()).then_some(Duration::ZERO);
            if let Err(error) = self.poll.poll(&mut events, timeout)
                && error.kind() != std::io::ErrorKind::Interrupted
            {
                // Nothing can be served without the poller.
                return;
            }
            if !self.take_commands() {
                return;
            }
            let ready = events.iter().map(|e| e.token()).filter(|&t| t != WAKER);
            for token in ready.chain(pending.drain(..)) {
                if self.serve(&mut batch, token.0 >> 1, token.0 & 1 == 1) {
                    again.push(token);
                }
            }
            std::mem::swap(&mut pending, &mut again);
        }
    }

    /// Applies every waiting command; false when the worker must stop.
    fn take_commands(&mut self) -> bool {
        loop {
            match self.commands.try_recv() {
                Ok(Command::Stop) | Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    return false;
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return true,
                Ok(command) => self.apply(command),
            }
        }
    }

    fn slot(&self, session: u64, leg: usize) -> Option<usize> {
        self.sessions.get(&session)?.get(leg).copied()
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::AddLeg {
                session,
                sockets,
                shared,
            } => {
                let slot = self.free_slots.pop().unwrap_or_else(|| {
                    self.legs.push(None);
                    self.legs.len() - 1
                });
                let registry = self.poll.registry();
                let rtp_fd = sockets.rtp.as_raw_fd();
                let rtcp_fd = sockets.rtcp.as_raw_fd();
                let registered = registry
                    .register(&mut SourceFd(&rtp_fd), Token(slot << 1), Interest::READABLE)
                    .and_then(|()| {
                        registry.register(
                            &mut SourceFd(&rtcp_fd),
                            Token(slot << 1 | 1),
                            Interest::READABLE,
                        )
                    });
                if registered.is_err() {
                    // Cannot happen for fresh sockets short of running out
                    // of kernel memory; the leg then stays silent and its
                    // idle time tells the edge.
                    self.free_slots.push(slot);
                    return;
                }
                self.legs[slot] = Some(Leg {
                    sockets,
                    shared,
                    peer: None,
                    rtp: Latch::default(),
                    rtcp: Latch::default(),
                    rtcp_mux: false,
                    clock_rate: 8000,
                    stats: ReceiverStats::new(),
                    out: Continuity::default(),
                });
                self.sessions.entry(session).or_default().push(slot);
            }
            Command::Connect { session, a, b } => {
                let (Some(sa), Some(sb)) = (self.slot(session, a), self.slot(session, b)) else {
                    return;
                };
                for (this, other) in [(sa, sb), (sb, sa)] {
                    let old = self.legs[this].as_ref().and_then(|l| l.peer);
                    if old == Some(other) {
                        continue;
                    }
                    if let Some(old) = old
                        && let Some(old_leg) = self.legs[old].as_mut()
                    {
                        old_leg.peer = None;
                    }
                    if let Some(leg) = self.legs[this].as_mut() {
                        leg.peer = Some(other);
                        // What this leg sends now comes from another leg.
                        leg.out.rebase();
                    }
                }
            }
            Command::SetRemote {
                session,
                leg,
                remote,
            } => {
                let Some(leg) = self.slot(session, leg).and_then(|s| self.legs[s].as_mut()) else {
                    return;
                };
                leg.rtp = Latch::new(Some(remote.rtp));
                leg.rtcp = Latch::new(Some(remote.rtcp));
                leg.rtcp_mux = remote.rtcp_mux;
                leg.clock_rate = remote.clock_rate.max(1);
            }
            Command::RemoveSession { session, done } => {
                for slot in self.sessions.remove(&session).unwrap_or_default() {
                    if let Some(leg) = self.legs[slot].take() {
                        let registry = self.poll.registry();
                        // Closing the sockets would deregister them too;
                        // explicit is clearer and frees the epoll entries now.
                        let _ = registry.deregister(&mut SourceFd(&leg.sockets.rtp.as_raw_fd()));
                        let _ = registry.deregister(&mut SourceFd(&leg.sockets.rtcp.as_raw_fd()));
                        if let Some(peer) = leg.peer
                            && let Some(peer) = self.legs[peer].as_mut()
                        {
                            peer.peer = None;
                        }
                        // Dropping `leg` closes both sockets, then frees the ports.
                    }
                    self.free_slots.push(slot);
                }
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Command::Barrier(done) => {
                let _ = done.send(());
            }
            Command::Stop => {}
        }
    }

    /// Serves one socket for a turn of at most [`BATCHES_PER_TURN`]
    /// batches (so that a flood on one port cannot starve the others):
    /// batches in, checks, forwards, batches out. Returns whether the
    /// socket may still hold datagrams.
    fn serve(&mut self, batch: &mut Batch, slot: usize, rtcp_socket: bool) -> bool {
        for _ in 0..BATCHES_PER_TURN {
            let Some(ingress) = self.legs.get_mut(slot).and_then(Option::as_mut) else {
                return false;
            };
            let fd = if rtcp_socket {
                ingress.sockets.rtcp.as_raw_fd()
            } else {
                ingress.sockets.rtp.as_raw_fd()
            };
            let n = match batch.receive(fd) {
                Ok(0) | Err(_) => return false,
                Ok(n) => n,
            };
            let now_ns = self.epoch.elapsed().as_nanos() as u64;
            // The arrival time in the stream's RTP clock (A.8 needs only
            // differences, so the wrap of u32 does not matter).
            let arrival =
                (u128::from(now_ns) * u128::from(ingress.clock_rate) / 1_000_000_000) as u32;

            // Phase 1: what arrived on the ingress leg.
            let (mut rtp_packets, mut rtp_bytes, mut rtcp_packets, mut rtcp_bytes) =
                (0u64, 0u64, 0u64, 0u64);
            let (mut invalid, mut strangers) = (0u64, 0u64);
            for i in 0..n {
                self.kept[i] = None;
                let received = batch.received(i);
                let Some(source) = received.source.filter(|_| !received.truncated) else {
                    invalid += 1;
                    continue;
                };
                let datagram = &batch.buffer(i)[..received.len];
                let tag = match classify(datagram) {
                    Ok(Packet::Rtp(_)) if rtcp_socket => {
                        invalid += 1;
                        continue;
                    }
                    Ok(Packet::Rtp(header)) => {
                        let endpoint = &mut ingress.rtp;
                        if !endpoint.accept(source) {
                            strangers += 1;
                            continue;
                        }
                        ingress.stats.update(
                            header.ssrc(),
                            header.sequence(),
                            header.timestamp(),
                            arrival,
                        );
                        rtp_packets += 1;
                        rtp_bytes += received.len as u64;
                        TAG_RTP
                    }
                    Ok(Packet::Rtcp(_)) => {
                        // RTCP on the RTP port is multiplexed (RFC 5761) and
                        // comes from the RTP source.
                        let endpoint = if rtcp_socket {
                            &mut ingress.rtcp
                        } else {
                            &mut ingress.rtp
                        };
                        if !endpoint.accept(source) {
                            strangers += 1;
                            continue;
                        }
                        rtcp_packets += 1;
                        rtcp_bytes += received.len as u64;
                        TAG_RTCP
                    }
                    Err(_) => {
                        invalid += 1;
                        continue;
                    }
                };
                self.kept[i] = Some(tag);
            }
            let shared = &ingress.shared;
            if rtp_packets + rtcp_packets > 0 {
                shared.last_packet_ns.store(now_ns, Relaxed);
            }
            shared.rtp_in.add(rtp_packets, rtp_bytes);
            shared.rtcp_in.add(rtcp_packets, rtcp_bytes);
            add(&shared.dropped_invalid, invalid);
            add(&shared.dropped_stranger, strangers);
            if rtp_packets > 0 {
                let reception = ingress.stats.reception();
                shared.received.store(reception.received, Relaxed);
                shared.expected.store(reception.expected, Relaxed);
                shared.jitter.store(reception.jitter, Relaxed);
            }
            let kept = rtp_packets + rtcp_packets;
            let peer = ingress.peer;

            // Phase 2: out of the egress leg.
            let Some(egress) = peer
                .and_then(|p| self.legs.get_mut(p))
                .and_then(Option::as_mut)
            else {
                ingress_unrouted(&self.legs, slot, kept);
                if n < BATCH {
                    return false;
                }
                continue;
            };
            let mut unrouted = 0u64;
            for i in 0..n {
                let Some(tag) = self.kept[i] else { continue };
                let len = batch.received(i).len;
                let (queue, endpoint) = match tag {
                    TAG_RTP => (QUEUE_RTP, &egress.rtp),
                    _ if egress.rtcp_mux => (QUEUE_RTP, &egress.rtp),
                    _ => (QUEUE_RTCP, &egress.rtcp),
                };
                let Some(to) = endpoint.raw_remote().copied() else {
                    unrouted += 1;
                    continue;
                };
                if tag == TAG_RTP {
                    egress
                        .out
                        .apply(&mut batch.buffer_mut(i)[..len], now_ns, egress.clock_rate);
                }
                batch.queue(queue, i, len, &to, tag);
            }
            let shared = &egress.shared;
            for (queue, fd) in [
                (QUEUE_RTP, egress.sockets.rtp.as_raw_fd()),
                (QUEUE_RTCP, egress.sockets.rtcp.as_raw_fd()),
            ] {
                let (mut rtp, mut rtcp, mut failed) = ((0u64, 0u64), (0u64, 0u64), 0u64);
                batch.flush(queue, fd, |len, tag, ok| match (ok, tag) {
                    (false, _) => failed += 1,
                    (true, TAG_RTP) => rtp = (rtp.0 + 1, rtp.1 + len as u64),
                    (true, _) => rtcp = (rtcp.0 + 1, rtcp.1 + len as u64),
                });
                shared.rtp_out.add(rtp.0, rtp.1);
                shared.rtcp_out.add(rtcp.0, rtcp.1);
                add(&shared.dropped_send, failed);
            }
            ingress_unrouted(&self.legs, slot, unrouted);
            if n < BATCH {
                return false;
            }
        }
        true
    }
}

/// Counts datagrams that arrived on a leg and had nowhere to go: no far
/// leg, or a far leg whose remote address is not known yet.
fn ingress_unrouted(legs: &[Option<Leg>], slot: usize, kept: u64) {
    if let Some(Some(leg)) = legs.get(slot) {
        add(&leg.shared.dropped_unrouted, kept);
    }
}

/// Adds to a counter, skipping the atomic operation for nothing.
fn add(counter: &AtomicU64, n: u64) {
    if n > 0 {
        counter.fetch_add(n, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;
    use std::sync::mpsc::channel;

    use super::*;
    use crate::relay::ports::PortPool;

    /// A pool of two pairs on 127.0.0.1 that were free a moment ago.
    fn pool() -> Arc<PortPool> {
        let first = (33_000..60_000u16)
            .step_by(4)
            .find(|&p| (p..p + 4).all(|q| UdpSocket::bind(("127.0.0.1", q)).is_ok()))
            .expect("four free ports");
        PortPool::new("127.0.0.1".parse().unwrap(), first, first + 3).unwrap()
    }

    #[test]
    fn a_flooded_socket_yields_after_its_turn_and_finishes_on_the_next() {
        let (_commands, receiver) = channel();
        let mut worker = Worker::new(Poll::new().unwrap(), receiver, Instant::now());
        let pool = pool();
        let far = UdpSocket::bind("127.0.0.1:0").unwrap();
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let far_addr = far.local_addr().unwrap();
        // Room for the whole flood in the socket buffers.
        socket2::SockRef::from(&far)
            .set_recv_buffer_size(2 << 20)
            .unwrap();
        for _ in 0..2 {
            let sockets = pool.allocate().unwrap();
            socket2::SockRef::from(&sockets.rtp)
                .set_recv_buffer_size(2 << 20)
                .unwrap();
            worker.apply(Command::AddLeg {
                session: 1,
                sockets,
                shared: Arc::default(),
            });
        }
        for leg in 0..2 {
            worker.apply(Command::SetRemote {
                session: 1,
                leg,
                remote: Remote {
                    rtp: far_addr,
                    rtcp: far_addr,
                    rtcp_mux: true,
                    clock_rate: 8000,
                },
            });
        }
        worker.apply(Command::Connect {
            session: 1,
            a: 0,
            b: 1,
        });
        let into_a = worker.legs[0]
            .as_ref()
            .unwrap()
            .sockets
            .rtp
            .local_addr()
            .unwrap();
        let flood = BATCHES_PER_TURN * BATCH + 44;
        for seq in 0..flood as u16 {
            let mut p = vec![0x80, 0];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&[0; 8]);
            far.send_to(&p, into_a).unwrap();
        }
        let mut batch = Batch::new();
        assert!(
            worker.serve(&mut batch, 0, false),
            "more is waiting after one turn"
        );
        assert!(
            !worker.serve(&mut batch, 0, false),
            "the rest fits in the next turn"
        );
        let shared = &worker.legs[1].as_ref().unwrap().shared;
        assert_eq!(shared.rtp_out.read().packets, flood as u64);
        let mut buf = [0u8; 64];
        for seq in 0..flood as u16 {
            let (n, _) = far.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[2..4], &seq.to_be_bytes(), "in order, none lost");
            assert_eq!(n, 12);
        }
    }
}
