//! The RTP/RTCP relay: the hot path of the edge's media.
//!
//! A [`Relay`] is started from [`RelayOptions`]: the IP address to bind,
//! the address to advertise in SDP (it may differ, behind 1:1 NAT), an
//! even-start port range and a number of worker threads. Each
//! [`MediaSession`] (one per call) lives on one worker and has two or more
//! legs; each leg has an even RTP port and the odd RTCP port above it
//! (RFC 3550 §11) from the range, returned when the session is closed or
//! dropped.
//!
//! Forwarding: two legs are connected; what arrives on leg A's socket is
//! sent from leg B's socket to B's far end, and the reverse. Connecting a
//! leg to another (a transfer) disconnects both from their former peers.
//!
//! - **Symmetric RTP** (for phones behind NAT): a leg's far end starts as
//!   its SDP's address and is latched to the source of the first packet
//!   that arrives, separately for RTP and RTCP; a new SDP address
//!   ([`MediaSession::set_remote`]) latches again. Once latched, packets
//!   from any other source are dropped and counted.
//! - **Continuity**: the RTP a leg sends keeps one SSRC and continuous
//!   sequence numbers and timestamps when its source changes (a transfer,
//!   a re-INVITE) or it is reconnected (back to a former peer); otherwise
//!   packets pass unchanged.
//! - **RTCP is relayed as it is**: its SSRCs are not rewritten (not needed
//!   yet). After a source change a receiver therefore gets RTP under the
//!   first source's SSRC but sender reports under the new source's own,
//!   and its receiver reports name an SSRC the new source does not know.
//!   RTCP multiplexed on the RTP port (RFC 5761) is recognised and sent to
//!   the far end's RTCP address, or its RTP address when it multiplexes.
//! - Anything that is neither RTP nor RTCP (RFC 3550 header checks) is
//!   never forwarded.
//!
//! Workers are OS threads, each with its own `mio` loop; they read with
//! `recvmmsg` and write with `sendmmsg` into buffers allocated once, with
//! no allocation, lock or channel per packet. Control calls (safe to make
//! from async code: they bind sockets or send a command, and never wait
//! for a worker unless they are `async`) reach a worker over a channel and
//! its waker; counters are atomics updated once per batch and read on
//! demand. Dropping the last handle of a relay joins its workers.

mod continuity;
mod io;
mod latch;
mod ports;
mod worker;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Poll, Waker};
use tokio::sync::oneshot;

use crate::MediaError;
use crate::quality::{self, Concealment};
use crate::rtp::Reception;
use crate::sdp::MediaEndpoint;
pub use continuity::Continuity;
pub use latch::Latch;
use ports::PortPool;
use worker::{Command, WAKER, Worker};

/// How to start a [`Relay`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// The address the sockets bind to.
    pub bind: IpAddr,
    /// The address written into SDP; `None` advertises `bind` (which then
    /// must not be unspecified).
    pub advertise: Option<IpAddr>,
    /// Ports for RTP (even) and RTCP (the odd one above).
    pub ports: RangeInclusive<u16>,
    /// Worker threads; 0 for one per core.
    pub workers: usize,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            advertise: None,
            ports: 20000..=29999,
            workers: 0,
        }
    }
}

/// A leg of a [`MediaSession`], numbered from 0 in order of creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LegId(pub usize);

impl fmt::Display for LegId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a leg's far end receives media, as its SDP says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remote {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
    /// RTCP goes to the RTP address (RFC 5761).
    pub rtcp_mux: bool,
    /// The RTP clock of the leg's codec (8000 for G.711), for jitter and
    /// for the timestamp gap across a change of source.
    pub clock_rate: u32,
}

impl Remote {
    pub fn from_endpoint(endpoint: MediaEndpoint, clock_rate: u32) -> Self {
        Self {
            rtp: endpoint.rtp,
            rtcp: endpoint.rtcp,
            rtcp_mux: endpoint.rtcp_mux,
            clock_rate,
        }
    }
}

/// Packets and bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flow {
    pub packets: u64,
    pub bytes: u64,
}

/// Datagrams a leg received and did not forward, by reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Drops {
    /// From a source other than the latched one.
    pub stranger: u64,
    /// Neither RTP nor RTCP, RTP on the RTCP port, or truncated.
    pub invalid: u64,
    /// No far leg connected, or its far end's address is not known yet.
    pub unrouted: u64,
    /// Sent from this leg but refused by the kernel (socket buffer full).
    pub send_failed: u64,
}

/// A leg's counters and receiver statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LegStats {
    /// RTP received from the leg's far end (accepted packets).
    pub rtp_in: Flow,
    /// RTP sent to the leg's far end.
    pub rtp_out: Flow,
    pub rtcp_in: Flow,
    pub rtcp_out: Flow,
    pub dropped: Drops,
    /// RFC 3550 receiver statistics of the RTP received.
    pub reception: Reception,
    /// The clock `reception.jitter` counts in.
    pub clock_rate: u32,
    /// Since the last RTP or RTCP packet was accepted from the far end
    /// (or since the leg was created): strangers and garbage do not keep
    /// a dead call alive.
    pub idle_for: Duration,
}

impl LegStats {
    /// Interarrival jitter in milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        f64::from(self.reception.jitter) * 1000.0 / f64::from(self.clock_rate.max(1))
    }

    /// The E-model's MOS for the audio this leg received (G.711), with
    /// the one-way delay measured elsewhere (RTCP round trips).
    pub fn mos(&self, one_way_delay: Duration, concealment: Concealment) -> f64 {
        quality::mos(
            self.reception.fraction_lost,
            one_way_delay.as_secs_f64() * 1000.0,
            concealment,
        )
    }
}

#[derive(Debug, Default)]
pub(crate) struct FlowCounter {
    packets: AtomicU64,
    bytes: AtomicU64,
}

impl FlowCounter {
    pub(crate) fn add(&self, packets: u64, bytes: u64) {
        if packets > 0 {
            self.packets.fetch_add(packets, Relaxed);
            self.bytes.fetch_add(bytes, Relaxed);
        }
    }

    fn read(&self) -> Flow {
        Flow {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }
}

/// A leg's counters, written by its worker and read by the control side.
/// Each is exact; read together they may be a batch apart.
#[derive(Debug, Default)]
pub(crate) struct LegShared {
    pub(crate) rtp_in: FlowCounter,
    pub(crate) rtp_out: FlowCounter,
    pub(crate) rtcp_in: FlowCounter,
    pub(crate) rtcp_out: FlowCounter,
    pub(crate) dropped_stranger: AtomicU64,
    pub(crate) dropped_invalid: AtomicU64,
    pub(crate) dropped_unrouted: AtomicU64,
    pub(crate) dropped_send: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) expected: AtomicU64,
    pub(crate) jitter: AtomicU32,
    pub(crate) clock_rate: AtomicU32,
    /// Nanoseconds since the relay's epoch.
    pub(crate) last_packet_ns: AtomicU64,
}

struct WorkerHandle {
    commands: Sender<Command>,
    waker: Waker,
}

impl WorkerHandle {
    fn send(&self, command: Command) -> Result<(), MediaError> {
        self.commands
            .send(command)
            .map_err(|_| MediaError::Stopped)?;
        self.waker.wake().map_err(|source| MediaError::Io {
            what: "waking a relay worker",
            source,
        })
    }
}

struct Inner {
    advertise: IpAddr,
    pool: Arc<PortPool>,
    workers: Vec<WorkerHandle>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_worker: AtomicUsize,
    next_session: AtomicU64,
    epoch: Instant,
}

impl Inner {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        for worker in &self.workers {
            let _ = worker.send(Command::Stop);
        }
        let threads = std::mem::take(
            self.threads
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// A running relay. Cloning shares it; its workers stop when the last
/// clone and the last session are gone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("advertise", &self.inner.advertise)
            .field("workers", &self.inner.workers.len())
            .field("pairs_in_use", &self.inner.pool.in_use())
            .finish()
    }
}

impl Relay {
    /// Checks the options and starts the workers.
    pub fn start(options: RelayOptions) -> Result<Self, MediaError> {
        let advertise = options.advertise.unwrap_or(options.bind);
        if advertise.is_unspecified() {
            return Err(MediaError::InvalidOptions(format!(
                "bind address {} is unspecified: give an address to advertise",
                options.bind
            )));
        }
        let pool = PortPool::new(options.bind, *options.ports.start(), *options.ports.end())?;
        let count = match options.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let epoch = Instant::now();
        let mut workers = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for index in 0..count {
            match spawn_worker(index, epoch) {
                Ok((handle, thread)) => {
                    workers.push(handle);
                    threads.push(thread);
                }
                Err(error) => {
                    for worker in &workers {
                        let _ = worker.send(Command::Stop);
                    }
                    for thread in threads {
                        let _ = thread.join();
                    }
                    return Err(error);
                }
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                advertise,
                pool,
                workers,
                threads: Mutex::new(threads),
                next_worker: AtomicUsize::new(0),
                next_session: AtomicU64::new(1),
                epoch,
            }),
        })
    }

    /// The address to put in SDP.
    pub fn advertised_ip(&self) -> IpAddr {
        self.inner.advertise
    }

    pub fn workers(&self) -> usize {
        self.inner.workers.len()
    }

    /// Port pairs bound now (two per leg).
    pub fn pairs_in_use(&self) -> usize {
        self.inner.pool.in_use()
    }

    /// A session with `legs` legs, on the next worker in turn. When the
    /// range runs out, the legs already bound are freed again.
    pub fn create_session(&self, legs: usize) -> Result<MediaSession, MediaError> {
        let inner = &self.inner;
        let worker = inner.next_worker.fetch_add(1, Relaxed) % inner.workers.len();
        let mut session = MediaSession {
            relay: Arc::clone(inner),
            id: inner.next_session.fetch_add(1, Relaxed),
            worker,
            legs: Vec::new(),
            closed: false,
        };
        for _ in 0..legs {
            session.add_leg()?;
        }
        Ok(session)
    }

    /// Resolves once every worker has applied every command sent before
    /// it (closings of dropped sessions included).
    pub async fn sync(&self) -> Result<(), MediaError> {
        let mut waits = Vec::with_capacity(self.inner.workers.len());
        for worker in &self.inner.workers {
            let (done, wait) = oneshot::channel();
            worker.send(Command::Barrier(done))?;
            waits.push(wait);
        }
        for wait in waits {
            wait.await.map_err(|_| MediaError::Stopped)?;
        }
        Ok(())
    }
}

fn spawn_worker(
    index: usize,
    epoch: Instant,
) -> Result<(WorkerHandle, JoinHandle<()>), MediaError> {
    let poll = Poll::new().map_err(|source| MediaError::Io {
        what: "creating a relay worker's poller",
        source,
    })?;
    let waker = Waker::new(poll.registry(), WAKER).map_err(|source| MediaError::Io {
        what: "creating a relay worker's waker",
        source,
    })?;
    let (commands, receiver) = channel();
    let worker = Worker::new(poll, receiver, epoch);
    let thread = std::thread::Builder::new()
        .name(format!("media-relay-{index}"))
        .spawn(move || worker.run())
        .map_err(|source| MediaError::Io {
            what: "starting a relay worker",
            source,
        })?;
    Ok((WorkerHandle { commands, waker }, thread))
}

struct LegHandle {
    rtp_port: u16,
    shared: Arc<LegShared>,
}

/// Where the relay receives a leg's media: what goes into that leg's SDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalEndpoint {
    pub rtp: SocketAddr,
    pub rtcp: SocketAddr,
}

/// The media of one call. Dropping it releases its ports (after its
/// worker has closed the sockets); [`MediaSession::close`] waits for that.
pub struct MediaSession {
    relay: Arc<Inner>,
    id: u64,
    worker: usize,
    legs: Vec<LegHandle>,
    closed: bool,
}

impl fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaSession")
            .field("id", &self.id)
            .field("worker", &self.worker)
            .field(
                "rtp_ports",
                &self.legs.iter().map(|l| l.rtp_port).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl MediaSession {
    fn handle(&self) -> &WorkerHandle {
        &self.relay.workers[self.worker]
    }

    fn leg(&self, leg: LegId) -> Result<&LegHandle, MediaError> {
        self.legs.get(leg.0).ok_or(MediaError::NoSuchLeg(leg.0))
    }

    /// Binds a new leg (e.g. the target of a transfer).
    pub fn add_leg(&mut self) -> Result<LegId, MediaError> {
        let sockets = self.relay.pool.allocate()?;
        let shared = Arc::new(LegShared::default());
        shared.clock_rate.store(8000, Relaxed);
        shared.last_packet_ns.store(self.relay.now_ns(), Relaxed);
        let rtp_port = sockets.lease.port;
        self.handle().send(Command::AddLeg {
            session: self.id,
            sockets,
            shared: Arc::clone(&shared),
        })?;
        self.legs.push(LegHandle { rtp_port, shared });
        Ok(LegId(self.legs.len() - 1))
    }

    pub fn legs(&self) -> impl Iterator<Item = LegId> + '_ {
        (0..self.legs.len()).map(LegId)
    }

    /// The relay's address and ports for a leg, to put in its SDP.
    pub fn local(&self, leg: LegId) -> Result<LocalEndpoint, MediaError> {
        let port = self.leg(leg)?.rtp_port;
        Ok(LocalEndpoint {
            rtp: SocketAddr::new(self.relay.advertise, port),
            rtcp: SocketAddr::new(self.relay.advertise, port + 1),
        })
    }

    /// Forwards between `a` and `b`, both ways; their former peers are
    /// left unconnected (their packets are dropped as unrouted).
    pub fn connect(&self, a: LegId, b: LegId) -> Result<(), MediaError> {
        self.leg(a)?;
        self.leg(b)?;
        if a == b {
            return Err(MediaError::SelfConnection(a.0));
        }
        self.handle().send(Command::Connect {
            session: self.id,
            a: a.0,
            b: b.0,
        })
    }

    /// Sets where a leg's far end receives media (from its SDP), and
    /// latches again on the next packet.
    pub fn set_remote(&self, leg: LegId, remote: Remote) -> Result<(), MediaError> {
        self.leg(leg)?
            .shared
            .clock_rate
            .store(remote.clock_rate.max(1), Relaxed);
        self.handle().send(Command::SetRemote {
            session: self.id,
            leg: leg.0,
            remote,
        })
    }

    pub fn stats(&self, leg: LegId) -> Result<LegStats, MediaError> {
        let s = &self.leg(leg)?.shared;
        let received = s.received.load(Relaxed);
        let expected = s.expected.load(Relaxed);
        let lost = i64::try_from(expected).unwrap_or(i64::MAX)
            - i64::try_from(received).unwrap_or(i64::MAX);
        Ok(LegStats {
            rtp_in: s.rtp_in.read(),
            rtp_out: s.rtp_out.read(),
            rtcp_in: s.rtcp_in.read(),
            rtcp_out: s.rtcp_out.read(),
            dropped: Drops {
                stranger: s.dropped_stranger.load(Relaxed),
                invalid: s.dropped_invalid.load(Relaxed),
                unrouted: s.dropped_unrouted.load(Relaxed),
                send_failed: s.dropped_send.load(Relaxed),
            },
            reception: Reception {
                received,
                expected,
                lost,
                fraction_lost: if expected == 0 {
                    0.0
                } else {
                    lost.max(0) as f64 / expected as f64
                },
                jitter: s.jitter.load(Relaxed),
            },
            clock_rate: s.clock_rate.load(Relaxed),
            idle_for: self.idle(s),
        })
    }

    fn idle(&self, shared: &LegShared) -> Duration {
        Duration::from_nanos(
            self.relay
                .now_ns()
                .saturating_sub(shared.last_packet_ns.load(Relaxed)),
        )
    }

    /// Time since the far end's last accepted RTP or RTCP packet (or since
    /// the leg was created).
    pub fn idle_for(&self, leg: LegId) -> Result<Duration, MediaError> {
        Ok(self.idle(&self.leg(leg)?.shared))
    }

    /// The legs idle for at least `timeout`: the edge's media timeout.
    pub fn inactive_legs(&self, timeout: Duration) -> Vec<LegId> {
        self.legs()
            .filter(|&leg| self.idle(&self.legs[leg.0].shared) >= timeout)
            .collect()
    }

    /// Closes the sockets and frees the ports, resolving when done.
    pub async fn close(mut self) -> Result<(), MediaError> {
        self.closed = true;
        let (done, wait) = oneshot::channel();
        self.handle().send(Command::RemoveSession {
            session: self.id,
            done: Some(done),
        })?;
        wait.await.map_err(|_| MediaError::Stopped)
    }
}

impl Drop for MediaSession {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.handle().send(Command::RemoveSession {
                session: self.id,
                done: None,
            });
        }
    }
}
