//! SIP over UDP, TCP (RFC 3261 §18), TLS (§26.2, [`TlsListener`]) and
//! WebSocket (RFC 7118, [`TransportOptions::ws`]) on tokio: each datagram
//! is one message, and so is each WebSocket message; a TCP or TLS
//! connection is framed by Content-Length, which the parser requires
//! there. A stream whose framing is lost (a malformed message) is answered
//! if it can be and closed, since nothing after it can be trusted to start
//! a message. RFC 5626's double-CRLF keep-alive on a connection gets its
//! single-CRLF pong (§4.4.1). Every connection counts against one budget
//! ([`TransportOptions::max_connections`]) and closes when idle.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use switchboard_sip::{Transport, parse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::{Endpoint, Peer};

mod tls;
mod websocket;

pub use tls::{TlsConfigError, TlsListener, tls_client_config, tls_server_config};

/// Where to listen, and the bounds of connections.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    pub udp: Option<SocketAddr>,
    pub tcp: Option<SocketAddr>,
    /// SIP over TLS (RFC 3261 §26.2), usually on port 5061.
    pub tls: Option<TlsListener>,
    /// SIP over WebSocket (RFC 7118), for browser phones.
    pub ws: Option<SocketAddr>,
    /// SIP over secure WebSocket (RFC 7118, Via transport `WSS`).
    pub wss: Option<TlsListener>,
    /// A connection with no message for this long is closed; so is one
    /// whose TLS or WebSocket handshake takes longer.
    pub idle_timeout: Duration,
    /// Connections (of every transport together) past this many are
    /// closed as they are accepted.
    pub max_connections: usize,
}

impl Default for TransportOptions {
    fn default() -> Self {
        Self {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 5060))),
            tls: None,
            ws: None,
            wss: None,
            idle_timeout: Duration::from_secs(300),
            max_connections: 10_000,
        }
    }
}

/// The bound listeners; dropping it stops them (open connections too).
pub struct Transports {
    udp: Option<SocketAddr>,
    tcp: Option<SocketAddr>,
    tls: Option<SocketAddr>,
    ws: Option<SocketAddr>,
    wss: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

/// Messages waiting to be written on one connection.
const WRITE_QUEUE: usize = 256;
/// Big enough for any datagram (RFC 3261 §18.1.1 keeps requests over
/// UDP well below; a larger one is refused by the parser's limits).
const DATAGRAM: usize = 65_535;

impl Transports {
    /// Binds what `options` names and starts serving `endpoint`.
    pub async fn bind(endpoint: Endpoint, options: &TransportOptions) -> io::Result<Self> {
        let mut tasks = JoinSet::new();
        let mut udp = None;
        if let Some(address) = options.udp {
            let socket = std::net::UdpSocket::bind(address)?;
            socket.set_nonblocking(true)?;
            let sender = Arc::new(socket.try_clone()?);
            endpoint.attach_udp(sender.clone());
            let socket = UdpSocket::from_std(socket)?;
            udp = Some(socket.local_addr()?);
            tasks.spawn(serve_udp(endpoint.clone(), socket, sender));
        }
        let slots = Arc::new(Semaphore::new(options.max_connections));
        let idle = options.idle_timeout;
        let mut listen = async |address: SocketAddr, service: Service| {
            let listener = TcpListener::bind(address).await?;
            let bound = listener.local_addr()?;
            tasks.spawn(serve_listener(
                endpoint.clone(),
                listener,
                service,
                slots.clone(),
                idle,
            ));
            io::Result::Ok(bound)
        };
        let mut tcp = None;
        if let Some(address) = options.tcp {
            tcp = Some(listen(address, Service::Stream { tls: None }).await?);
        }
        let mut tls = None;
        if let Some(listener) = &options.tls {
            let acceptor = TlsAcceptor::from(listener.config.clone());
            let service = Service::Stream {
                tls: Some(acceptor),
            };
            tls = Some(listen(listener.address, service).await?);
        }
        let mut ws = None;
        if let Some(address) = options.ws {
            ws = Some(listen(address, Service::WebSocket { tls: None }).await?);
        }
        let mut wss = None;
        if let Some(listener) = &options.wss {
            let acceptor = TlsAcceptor::from(listener.config.clone());
            let service = Service::WebSocket {
                tls: Some(acceptor),
            };
            wss = Some(listen(listener.address, service).await?);
        }
        Ok(Self {
            udp,
            tcp,
            tls,
            ws,
            wss,
            tasks,
        })
    }

    pub fn udp(&self) -> Option<SocketAddr> {
        self.udp
    }

    pub fn tcp(&self) -> Option<SocketAddr> {
        self.tcp
    }

    pub fn tls(&self) -> Option<SocketAddr> {
        self.tls
    }

    pub fn ws(&self) -> Option<SocketAddr> {
        self.ws
    }

    pub fn wss(&self) -> Option<SocketAddr> {
        self.wss
    }

    /// Stops listening and closes every connection.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

async fn serve_udp(endpoint: Endpoint, socket: UdpSocket, sender: Arc<std::net::UdpSocket>) {
    let mut buffer = vec![0u8; DATAGRAM];
    loop {
        match socket.recv_from(&mut buffer).await {
            Ok((length, remote)) => {
                let peer = Peer::Udp {
                    socket: sender.clone(),
                    remote,
                };
                endpoint.receive(Bytes::copy_from_slice(&buffer[..length]), peer);
            }
            // ICMP port unreachable from an earlier send surfaces here on
            // some systems; the socket itself is fine.
            Err(error) => tracing::debug!(%error, "SIP UDP receive failed"),
        }
    }
}

/// The edge's own connections to peers that take requests over TCP or TLS
/// (carriers' trunks): opened on first use, served like accepted ones
/// (framed by Content-Length, answered on, closed when idle), and reused
/// while they stay open, as RFC 3261 §18.1.1 asks of a client. Cheap to
/// clone.
#[derive(Clone)]
pub struct Connector {
    endpoint: Endpoint,
    tls: Arc<rustls::ClientConfig>,
    idle: Duration,
    /// Where peers named by host are found.
    locator: crate::trunks::reach::Locator,
    /// One connection attempt at a time, so two calls to one carrier
    /// share the connection instead of racing to open two.
    opening: Arc<tokio::sync::Mutex<()>>,
}

/// How long a connection (and its TLS handshake) may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Connector {
    /// Connects for `endpoint`, checking TLS servers against `tls`'s roots
    /// ([`tls_client_config`]); connections close after `idle` without a
    /// message.
    pub fn new(endpoint: Endpoint, tls: Arc<rustls::ClientConfig>, idle: Duration) -> Self {
        Self {
            endpoint,
            tls,
            idle,
            locator: crate::trunks::reach::Locator::default(),
            opening: Arc::default(),
        }
    }

    /// Finds peers named by host with `locator` (the system's name
    /// servers otherwise).
    pub fn with_locator(mut self, locator: crate::trunks::reach::Locator) -> Self {
        self.locator = locator;
        self
    }

    pub fn locator(&self) -> &crate::trunks::reach::Locator {
        &self.locator
    }

    /// The open connection to `remote` (over TLS, checked as `server`,
    /// when given), or a new one.
    pub async fn connect(
        &self,
        remote: SocketAddr,
        server: Option<rustls::pki_types::ServerName<'static>>,
    ) -> io::Result<Peer> {
        let name = match server {
            Some(_) => format!("tls:{remote}"),
            None => format!("tcp:{remote}"),
        };
        if let Some(peer) = self.endpoint.connection_peer(&name) {
            return Ok(peer);
        }
        let _opening = self.opening.lock().await;
        if let Some(peer) = self.endpoint.connection_peer(&name) {
            return Ok(peer);
        }
        let timed_out = || io::Error::new(io::ErrorKind::TimedOut, "connecting timed out");
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(remote))
            .await
            .map_err(|_| timed_out())??;
        let _ = stream.set_nodelay(true);
        let (opened, peer) = oneshot::channel();
        let (endpoint, idle) = (self.endpoint.clone(), self.idle);
        match server {
            None => {
                let (reader, writer) = stream.into_split();
                tokio::spawn(serve_stream(
                    endpoint,
                    reader,
                    writer,
                    remote,
                    false,
                    idle,
                    Some(opened),
                ));
            }
            Some(server) => {
                let connector = TlsConnector::from(self.tls.clone());
                let stream =
                    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server, stream))
                        .await
                        .map_err(|_| timed_out())??;
                let (reader, writer) = tokio::io::split(stream);
                tokio::spawn(serve_stream(
                    endpoint,
                    reader,
                    writer,
                    remote,
                    true,
                    idle,
                    Some(opened),
                ));
            }
        }
        peer.await
            .map_err(|_| io::Error::new(io::ErrorKind::ConnectionAborted, "closed at once"))
    }
}

/// What an accepted connection speaks.
#[derive(Clone)]
enum Service {
    /// SIP framed by Content-Length, over TCP or, with an acceptor, TLS.
    Stream { tls: Option<TlsAcceptor> },
    /// SIP over WebSocket, over TCP or, with an acceptor, TLS.
    WebSocket { tls: Option<TlsAcceptor> },
}

/// Accepts connections while the connection budget `slots` (shared by
/// every connection listener) has room, and serves each on its own task.
async fn serve_listener(
    endpoint: Endpoint,
    listener: TcpListener,
    service: Service,
    slots: Arc<Semaphore>,
    idle: Duration,
) {
    let mut connections = JoinSet::new();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "SIP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(%remote, "too many SIP connections; closed at once");
            continue;
        };
        // Forget finished connections as new ones come.
        while connections.try_join_next().is_some() {}
        let endpoint = endpoint.clone();
        let service = service.clone();
        connections.spawn(async move {
            serve_connection(endpoint, stream, remote, service, idle).await;
            drop(slot);
        });
    }
}

async fn serve_connection(
    endpoint: Endpoint,
    stream: TcpStream,
    remote: SocketAddr,
    service: Service,
    idle: Duration,
) {
    let _ = stream.set_nodelay(true);
    match service {
        Service::Stream { tls: None } => {
            let (reader, writer) = stream.into_split();
            serve_stream(endpoint, reader, writer, remote, false, idle, None).await;
        }
        Service::Stream {
            tls: Some(acceptor),
        } => {
            let Some(stream) = tls_handshake(&acceptor, stream, remote, idle).await else {
                return;
            };
            let (reader, writer) = tokio::io::split(stream);
            serve_stream(endpoint, reader, writer, remote, true, idle, None).await;
        }
        Service::WebSocket { tls: None } => {
            websocket::serve(endpoint, stream, remote, false, idle).await;
        }
        Service::WebSocket {
            tls: Some(acceptor),
        } => {
            let Some(stream) = tls_handshake(&acceptor, stream, remote, idle).await else {
                return;
            };
            websocket::serve(endpoint, stream, remote, true, idle).await;
        }
    }
}

/// The server side of a TLS handshake, bounded by `idle`.
async fn tls_handshake(
    acceptor: &TlsAcceptor,
    stream: TcpStream,
    remote: SocketAddr,
    idle: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(idle, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "SIP TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%remote, "SIP TLS handshake timed out");
            None
        }
    }
}

/// What the buffered bytes of a connection hold next.
enum Frame {
    /// A complete message of this many bytes.
    Message(usize),
    /// A keep-alive ping (RFC 5626 §3.5.1): four bytes.
    Ping,
    /// Not enough bytes yet.
    Incomplete,
    /// Malformed: answered (or dropped); the connection closes.
    Refused,
}

/// One connection of a byte-stream transport (TCP, or TLS when `tls`),
/// given as its two halves: frames messages by Content-Length, answers
/// keep-alives, and writes what is sent to the peer on a task of its own.
async fn serve_stream<R, W>(
    endpoint: Endpoint,
    mut reader: R,
    mut writer: W,
    remote: SocketAddr,
    tls: bool,
    idle: Duration,
    opened: Option<oneshot::Sender<Peer>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (sender, mut outgoing) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let writing = tokio::spawn(async move {
        while let Some(bytes) = outgoing.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });
    let peer = Peer::Stream {
        remote,
        writer: sender,
        tls,
    };
    endpoint.connection_opened(&peer);
    if let Some(opened) = opened {
        let _ = opened.send(peer.clone());
    }
    let limits = endpoint.options().limits;
    let mut buffer = BytesMut::with_capacity(8 * 1024);
    'connection: loop {
        loop {
            let frame = if buffer.starts_with(b"\r\n\r\n") {
                Frame::Ping
            } else {
                match parse(&buffer, Transport::Stream, &limits) {
                    Ok(Some((_, length))) => Frame::Message(length),
                    Ok(None) => Frame::Incomplete,
                    Err(malformed) => {
                        endpoint.refuse(&malformed, &peer);
                        Frame::Refused
                    }
                }
            };
            match frame {
                Frame::Message(length) => {
                    endpoint.receive(buffer.split_to(length).freeze(), peer.clone())
                }
                Frame::Ping => {
                    buffer.advance(4);
                    peer.send(Bytes::from_static(b"\r\n"));
                }
                Frame::Incomplete => break,
                Frame::Refused => break 'connection,
            }
        }
        match tokio::time::timeout(idle, reader.read_buf(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(_)) => {}
        }
    }
    endpoint.connection_closed(&peer);
    // Transactions still hold the sender until they end; the writer
    // finishes what is queued once the last one lets go.
    drop(peer);
    drop(reader);
    let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
}
