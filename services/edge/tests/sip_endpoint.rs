//! The edge's SIP transaction layer over real UDP, TCP, TLS and WebSocket
//! connections on loopback: what it answers by itself (retransmissions, 100 Trying,
//! CANCEL, malformed and unsupported requests), what it hands the
//! transaction user once, and the timers of INVITE transactions.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use rustls::pki_types::{CertificateDer, ServerName};
use switchboard_edge::sip::transport::{
    TlsConfigError, TlsListener, TransportOptions, Transports, tls_server_config,
};
use switchboard_edge::sip::{
    Endpoint, EndpointOptions, IncomingRequest, MALFORMED_METRIC, OutgoingResponse, Peer,
    TransactionId, TransactionUser,
};
use switchboard_sip::Method;
use switchboard_sip::transaction::Timers;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};

/// What the user saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    Request(String),
    Cancelled,
    Ack,
    TimedOut,
}

/// A user that answers OPTIONS 200, keeps INVITEs for the test to answer,
/// and implements nothing else but BYE.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Seen>>,
    /// Where each request came from, as the registrar would record it.
    peers: Mutex<Vec<String>>,
    invites: Mutex<Vec<IncomingRequest>>,
}

impl TransactionUser for Recorder {
    fn allows(&self, method: Method<'_>) -> bool {
        matches!(method, Method::Options | Method::Invite | Method::Bye)
    }

    fn supports(&self, option_tag: &str) -> bool {
        option_tag == "timer"
    }

    fn on_request(&self, request: IncomingRequest) {
        let method = request.message().method().unwrap().as_str().to_owned();
        self.seen
            .lock()
            .unwrap()
            .push(Seen::Request(method.clone()));
        self.peers.lock().unwrap().push(request.peer.to_string());
        if method == "INVITE" {
            self.invites.lock().unwrap().push(request);
        } else {
            request
                .respond(OutgoingResponse::new(200).header("Accept", "application/sdp"))
                .unwrap();
        }
    }

    fn on_cancelled(&self, invite: TransactionId) {
        self.seen.lock().unwrap().push(Seen::Cancelled);
        let invites = self.invites.lock().unwrap();
        let request = invites.iter().find(|request| request.id == invite).unwrap();
        request.respond(OutgoingResponse::new(487)).unwrap();
    }

    fn on_ack(&self, _ack: Bytes, _peer: Peer) {
        self.seen.lock().unwrap().push(Seen::Ack);
    }

    fn on_timeout(&self, _invite: TransactionId) {
        self.seen.lock().unwrap().push(Seen::TimedOut);
    }
}

impl Recorder {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn peers(&self) -> Vec<String> {
        self.peers.lock().unwrap().clone()
    }

    fn answer_invite(&self, index: usize, response: OutgoingResponse) {
        self.invites.lock().unwrap()[index]
            .respond(response)
            .unwrap();
    }
}

/// Short timers, so Timer G, H and J show within a test.
fn fast_timers() -> Timers {
    Timers {
        t1: Duration::from_millis(20),
        t2: Duration::from_millis(80),
        t4: Duration::from_millis(100),
    }
}

async fn start(timers: Timers) -> (Arc<Recorder>, Endpoint, Transports) {
    start_on(
        timers,
        TransportOptions {
            udp: Some(loopback()),
            tcp: Some(loopback()),
            ..TransportOptions::default()
        },
    )
    .await
}

async fn start_on(
    timers: Timers,
    options: TransportOptions,
) -> (Arc<Recorder>, Endpoint, Transports) {
    let user = Arc::new(Recorder::default());
    let endpoint = Endpoint::new(
        EndpointOptions {
            timers,
            ..EndpointOptions::default()
        },
        user.clone(),
    );
    let transports = Transports::bind(endpoint.clone(), &options).await.unwrap();
    (user, endpoint, transports)
}

/// An ephemeral port on loopback.
fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A request from `from` (its sent-by), with CRLF line ends and a
/// Content-Length.
fn request(method: &str, uri: &str, branch: &str, extra: &str, from: SocketAddr) -> Vec<u8> {
    format!(
        "{method} {uri} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:carrier@example.net>;tag=caller-1\r\n\
         To: <sip:+15550100@acme.sip.example.com>\r\n\
         Call-ID: call-{branch}\r\n\
         CSeq: 1 {method}\r\n\
         {extra}\
         Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

async fn udp_client() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

async fn receive(socket: &UdpSocket) -> String {
    let mut buffer = vec![0u8; 65_535];
    let (length, _) = tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
        .await
        .expect("an answer within 2 s")
        .unwrap();
    String::from_utf8(buffer[..length].to_vec()).unwrap()
}

/// Whether anything arrives within `wait`.
async fn quiet(socket: &UdpSocket, wait: Duration) -> bool {
    let mut buffer = vec![0u8; 65_535];
    tokio::time::timeout(wait, socket.recv_from(&mut buffer))
        .await
        .is_err()
}

fn status(response: &str) -> u16 {
    response[8..11].parse().unwrap()
}

/// Reads from a connection until what came satisfies `done`; fails if
/// that takes over 2 s or the connection closes first.
async fn read_until(stream: &mut (impl AsyncRead + Unpin), done: impl Fn(&str) -> bool) -> String {
    let mut received = Vec::new();
    let mut buffer = vec![0u8; 8192];
    while !done(&String::from_utf8_lossy(&received)) {
        let length = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .expect("answers within 2 s")
            .unwrap();
        assert!(length > 0, "closed early");
        received.extend_from_slice(&buffer[..length]);
    }
    String::from_utf8(received).unwrap()
}

/// A self-signed certificate for `edge.test`, in PEM files as an operator
/// would give them.
struct Certificate {
    _directory: tempfile::TempDir,
    chain: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn self_signed() -> Certificate {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["edge.test".to_owned()]).unwrap();
    let directory = tempfile::tempdir().unwrap();
    let chain = directory.path().join("edge.crt");
    let key = directory.path().join("edge.key");
    std::fs::write(&chain, cert.pem()).unwrap();
    std::fs::write(&key, signing_key.serialize_pem()).unwrap();
    Certificate {
        _directory: directory,
        chain,
        key,
        der: cert.der().clone(),
    }
}

/// A TLS listener on loopback serving `certificate`.
fn tls_listener(certificate: &Certificate) -> TlsListener {
    TlsListener {
        address: loopback(),
        config: tls_server_config(&certificate.chain, &certificate.key).unwrap(),
    }
}

/// A TLS client that trusts only `certificate`, connected to `address` as
/// `edge.test`.
async fn tls_connect(address: SocketAddr, certificate: &Certificate) -> TlsStream<TcpStream> {
    tls_connect_with(address, certificate, rustls::DEFAULT_VERSIONS).await
}

async fn tls_connect_with(
    address: SocketAddr,
    certificate: &Certificate,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate.der.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(address).await.unwrap();
    TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("edge.test").unwrap(), tcp)
        .await
        .unwrap()
}

/// A request over TLS (Via transport `TLS`, RFC 3261 §26.2) to a `sips:`
/// URI.
fn tls_request(branch: &str, from: SocketAddr) -> Vec<u8> {
    String::from_utf8(request(
        "OPTIONS",
        "sips:acme.sip.example.com",
        branch,
        "",
        from,
    ))
    .unwrap()
    .replacen("Via: SIP/2.0/UDP ", "Via: SIP/2.0/TLS ", 1)
    .into_bytes()
}

#[tokio::test]
async fn an_options_over_udp_is_answered_once_and_its_retransmission_gets_the_same_answer() {
    let (user, endpoint, transports) = start(Timers::default()).await;
    let (client, from) = udp_client().await;
    let options = request(
        "OPTIONS",
        "sip:acme.sip.example.com",
        "z9hG4bK-o1",
        "",
        from,
    );
    client
        .send_to(&options, transports.udp().unwrap())
        .await
        .unwrap();
    let first = receive(&client).await;
    assert!(first.starts_with("SIP/2.0 200 OK\r\n"), "{first}");
    assert!(first.contains(&format!("Via: SIP/2.0/UDP {from};branch=z9hG4bK-o1\r\n")));
    assert!(first.contains("To: <sip:+15550100@acme.sip.example.com>;tag="));
    assert!(first.contains("Accept: application/sdp\r\n"));

    client
        .send_to(&options, transports.udp().unwrap())
        .await
        .unwrap();
    let again = receive(&client).await;
    assert_eq!(again, first, "a retransmission gets the very same response");
    assert_eq!(user.seen(), vec![Seen::Request("OPTIONS".into())]);
    assert_eq!(endpoint.transactions(), 1, "kept for Timer J");
}

#[tokio::test]
async fn tcp_frames_by_content_length_across_reads_and_answers_keep_alives() {
    let (user, _endpoint, transports) = start(Timers::default()).await;
    let mut stream = TcpStream::connect(transports.tcp().unwrap()).await.unwrap();
    let from = stream.local_addr().unwrap();
    let one = request(
        "OPTIONS",
        "sip:acme.sip.example.com",
        "z9hG4bK-t1",
        "",
        from,
    );
    let two = request(
        "OPTIONS",
        "sip:acme.sip.example.com",
        "z9hG4bK-t2",
        "",
        from,
    );
    // The first split mid-header, the second in the same write as the
    // first's end, then a keep-alive ping.
    let mut bytes = one.clone();
    bytes.extend_from_slice(&two);
    bytes.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&bytes[..40]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream.write_all(&bytes[40..]).await.unwrap();

    let mut received = Vec::new();
    let mut buffer = vec![0u8; 8192];
    while received.windows(2).filter(|w| w == b"\r\n").count() < 1
        || String::from_utf8_lossy(&received)
            .matches("SIP/2.0 200 OK")
            .count()
            < 2
        || !received.ends_with(b"\r\n\r\n\r\n")
    {
        let length = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
            .await
            .expect("answers within 2 s")
            .unwrap();
        assert!(length > 0, "closed early");
        received.extend_from_slice(&buffer[..length]);
    }
    let text = String::from_utf8(received).unwrap();
    assert!(text.contains("branch=z9hG4bK-t1"));
    assert!(text.contains("branch=z9hG4bK-t2"));
    assert!(
        text.ends_with("Content-Length: 0\r\n\r\n\r\n"),
        "the pong follows: {text:?}"
    );
    assert_eq!(
        user.seen(),
        vec![
            Seen::Request("OPTIONS".into()),
            Seen::Request("OPTIONS".into())
        ]
    );
}

#[tokio::test]
async fn a_malformed_message_on_tcp_is_answered_and_the_connection_closed() {
    let (user, _endpoint, transports) = start(Timers::default()).await;
    let mut stream = TcpStream::connect(transports.tcp().unwrap()).await.unwrap();
    let from = stream.local_addr().unwrap();
    let text = String::from_utf8(request("OPTIONS", "sip:a@b", "z9hG4bK-v7", "", from))
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    stream.write_all(text.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut answer))
        .await
        .expect("closed within 2 s")
        .unwrap();
    assert!(answer.starts_with("SIP/2.0 505 "), "{answer}");
    assert!(user.seen().is_empty());
}

#[tokio::test]
async fn requests_the_user_cannot_take_are_refused_in_rfc_3261_order() {
    let (user, _endpoint, transports) = start(Timers::default()).await;
    let (client, from) = udp_client().await;
    let target = transports.udp().unwrap();
    let cases = [
        ("FOO", "sip:acme.sip.example.com", "", 501, None),
        (
            "SUBSCRIBE",
            "sip:acme.sip.example.com",
            "",
            405,
            Some("Allow: ACK, CANCEL, INVITE, BYE, OPTIONS\r\n"),
        ),
        ("OPTIONS", "tel:+15550100", "", 416, None),
        (
            "OPTIONS",
            "sip:acme.sip.example.com",
            "Require: timer, 100rel, foo\r\n",
            420,
            Some("Unsupported: 100rel, foo\r\n"),
        ),
    ];
    for (index, (method, uri, extra, code, header)) in cases.into_iter().enumerate() {
        let branch = format!("z9hG4bK-r{index}");
        client
            .send_to(&request(method, uri, &branch, extra, from), target)
            .await
            .unwrap();
        let answer = receive(&client).await;
        assert_eq!(status(&answer), code, "{method} {uri}: {answer}");
        if let Some(header) = header {
            assert!(answer.contains(header), "{answer}");
        }
    }
    assert!(user.seen().is_empty(), "{:?}", user.seen());
}

#[tokio::test]
async fn malformed_datagrams_are_answered_when_possible_dropped_otherwise_and_counted() {
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let user = Arc::new(Recorder::default());
    let endpoint = Endpoint::new(EndpointOptions::default(), user.clone());
    let (client, from) = udp_client().await;
    let server = Arc::new(std::net::UdpSocket::bind("127.0.0.1:0").unwrap());
    server.set_nonblocking(true).unwrap();
    let peer = Peer::Udp {
        socket: server.clone(),
        remote: from,
    };
    let good = String::from_utf8(request("OPTIONS", "sip:a@b", "z9hG4bK-m1", "", from)).unwrap();
    let wrong_version = good.replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    let no_call_id = good.replace("Call-ID: call-z9hG4bK-m1\r\n", "");
    metrics::with_local_recorder(&recorder, || {
        endpoint.receive(Bytes::from(wrong_version), peer.clone());
        endpoint.receive(Bytes::from(no_call_id), peer.clone());
        endpoint.receive(Bytes::from_static(b"\x00\x01garbage"), peer.clone());
    });
    let answer = receive(&client).await;
    assert!(answer.starts_with("SIP/2.0 505 "), "{answer}");
    assert!(
        quiet(&client, Duration::from_millis(200)).await,
        "only the 505 is answered"
    );
    let counted: u64 = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == MALFORMED_METRIC)
        .map(|(.., value)| match value {
            metrics_util::debugging::DebugValue::Counter(count) => count,
            _ => 0,
        })
        .sum();
    assert_eq!(counted, 3);
    assert!(user.seen().is_empty());
}

#[tokio::test]
async fn an_invite_gets_100_at_once_and_its_failure_is_resent_until_the_ack() {
    let (user, endpoint, transports) = start(fast_timers()).await;
    let (client, from) = udp_client().await;
    let target = transports.udp().unwrap();
    let invite = request(
        "INVITE",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-i1",
        "",
        from,
    );
    client.send_to(&invite, target).await.unwrap();
    assert_eq!(status(&receive(&client).await), 100);
    // A retransmitted INVITE gets the 100 again and reaches no one.
    client.send_to(&invite, target).await.unwrap();
    assert_eq!(status(&receive(&client).await), 100);
    assert_eq!(user.seen(), vec![Seen::Request("INVITE".into())]);

    user.answer_invite(0, OutgoingResponse::new(486));
    let busy = receive(&client).await;
    assert_eq!(status(&busy), 486);
    // Timer G: sent again after T1, then 2·T1.
    assert_eq!(receive(&client).await, busy);
    assert_eq!(receive(&client).await, busy);
    let ack = String::from_utf8(invite.clone())
        .unwrap()
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    client.send_to(ack.as_bytes(), target).await.unwrap();
    assert!(
        quiet(&client, Duration::from_millis(300)).await,
        "no resend after the ACK"
    );
    assert_eq!(
        user.seen(),
        vec![Seen::Request("INVITE".into())],
        "the ACK of a failure is the transaction's"
    );
    // Timer I ends the transaction (T4 = 100 ms).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(endpoint.transactions(), 0);
}

#[tokio::test]
async fn a_failure_never_acknowledged_times_out_with_timer_h() {
    let (user, endpoint, transports) = start(fast_timers()).await;
    let (client, from) = udp_client().await;
    let invite = request(
        "INVITE",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-h1",
        "",
        from,
    );
    client
        .send_to(&invite, transports.udp().unwrap())
        .await
        .unwrap();
    assert_eq!(status(&receive(&client).await), 100);
    user.answer_invite(0, OutgoingResponse::new(603));
    // 64·T1 = 1.28 s.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(
        user.seen(),
        vec![Seen::Request("INVITE".into()), Seen::TimedOut]
    );
    assert_eq!(endpoint.transactions(), 0);
}

#[tokio::test]
async fn cancel_ends_a_pending_invite_with_487_and_an_unknown_one_gets_481() {
    let (user, _endpoint, transports) = start(fast_timers()).await;
    let (client, from) = udp_client().await;
    let target = transports.udp().unwrap();
    let invite = request(
        "INVITE",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-c1",
        "",
        from,
    );
    client.send_to(&invite, target).await.unwrap();
    assert_eq!(status(&receive(&client).await), 100);
    let cancel = String::from_utf8(invite)
        .unwrap()
        .replacen("INVITE sip:", "CANCEL sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 CANCEL");
    client.send_to(cancel.as_bytes(), target).await.unwrap();
    let mut codes = vec![
        status(&receive(&client).await),
        status(&receive(&client).await),
    ];
    codes.sort();
    assert_eq!(
        codes,
        vec![200, 487],
        "200 to the CANCEL, 487 to the INVITE"
    );
    assert_eq!(
        user.seen(),
        vec![Seen::Request("INVITE".into()), Seen::Cancelled]
    );

    let stray = request(
        "CANCEL",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-c2",
        "",
        from,
    );
    client.send_to(&stray, target).await.unwrap();
    assert_eq!(status(&receive(&client).await), 481);
}

#[tokio::test]
async fn the_ack_of_a_2xx_goes_to_the_user() {
    let (user, _endpoint, transports) = start(fast_timers()).await;
    let (client, from) = udp_client().await;
    let target = transports.udp().unwrap();
    let invite = request(
        "INVITE",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-a1",
        "",
        from,
    );
    client.send_to(&invite, target).await.unwrap();
    assert_eq!(status(&receive(&client).await), 100);
    user.answer_invite(0, OutgoingResponse::new(200));
    let ok = receive(&client).await;
    assert_eq!(status(&ok), 200);
    // The ACK of a 2xx is its own transaction (new branch).
    let ack = String::from_utf8(request(
        "ACK",
        "sip:+15550100@acme.sip.example.com",
        "z9hG4bK-a2",
        "",
        from,
    ))
    .unwrap();
    client.send_to(ack.as_bytes(), target).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(user.seen(), vec![Seen::Request("INVITE".into()), Seen::Ack]);
}

/// A WebSocket handshake on `stream` to `url`, offering `subprotocol`.
async fn ws_handshake<S>(
    stream: S,
    url: &str,
    subprotocol: Option<&str>,
) -> Result<WebSocketStream<S>, tungstenite::Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut request = url.into_client_request().unwrap();
    if let Some(subprotocol) = subprotocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_str(subprotocol).unwrap(),
        );
    }
    let (websocket, response) = tokio_tungstenite::client_async(request, stream).await?;
    assert_eq!(
        response.headers().get("Sec-WebSocket-Protocol").unwrap(),
        "sip",
        "the server names the subprotocol it chose"
    );
    Ok(websocket)
}

/// A browser phone's connection to `address`, offering `sip`.
async fn ws_connect(address: SocketAddr) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(address).await.unwrap();
    ws_handshake(tcp, &format!("ws://{address}/"), Some("sip, chat"))
        .await
        .unwrap()
}

/// A request as a browser phone sends it (RFC 7118 §5.2 and its
/// examples): Via transport `WS` from an `.invalid` host, and no
/// Content-Length, which a WebSocket message does not need.
fn ws_request(method: &str, branch: &str) -> String {
    String::from_utf8(request(
        method,
        "sip:acme.sip.example.com",
        branch,
        "",
        SocketAddr::from(([192, 0, 2, 1], 5060)),
    ))
    .unwrap()
    .replacen(
        "Via: SIP/2.0/UDP 192.0.2.1:5060;",
        "Via: SIP/2.0/WS df7jal23ls0d.invalid;",
        1,
    )
    .replacen("Content-Length: 0\r\n", "", 1)
}

/// The next message on a WebSocket, within 2 s.
async fn ws_next<S>(websocket: &mut WebSocketStream<S>) -> Message
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    tokio::time::timeout(Duration::from_secs(2), websocket.next())
        .await
        .expect("a message within 2 s")
        .expect("the connection is open")
        .unwrap()
}

/// The next message on a WebSocket, which must be a text frame.
async fn ws_text<S>(websocket: &mut WebSocketStream<S>) -> String
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match ws_next(websocket).await {
        Message::Text(text) => text.to_string(),
        other => panic!("not a text frame: {other:?}"),
    }
}

#[tokio::test]
async fn options_over_tls_are_answered_and_pipelined_ones_framed() {
    let certificate = self_signed();
    let (user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            tls: Some(tls_listener(&certificate)),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut stream = tls_connect(transports.tls().unwrap(), &certificate).await;
    let from = stream.get_ref().0.local_addr().unwrap();
    // Two requests in one write, then a keep-alive ping.
    let mut bytes = tls_request("z9hG4bK-s1", from);
    bytes.extend_from_slice(&tls_request("z9hG4bK-s2", from));
    bytes.extend_from_slice(b"\r\n\r\n");
    stream.write_all(&bytes).await.unwrap();

    let text = read_until(&mut stream, |text| {
        text.matches("SIP/2.0 200 OK").count() == 2 && text.ends_with("\r\n\r\n\r\n")
    })
    .await;
    let answers: Vec<&str> = text.split_inclusive("Content-Length: 0\r\n\r\n").collect();
    assert!(answers[0].starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    assert!(answers[0].contains(&format!("Via: SIP/2.0/TLS {from};branch=z9hG4bK-s1\r\n")));
    assert!(answers[1].starts_with("SIP/2.0 200 OK\r\n"), "{text}");
    assert!(answers[1].contains("branch=z9hG4bK-s2"), "{text}");
    assert_eq!(answers[2], "\r\n", "the pong follows: {text:?}");
    assert_eq!(
        user.seen(),
        vec![
            Seen::Request("OPTIONS".into()),
            Seen::Request("OPTIONS".into())
        ]
    );
    assert_eq!(user.peers(), vec![format!("tls:{from}"); 2]);
}

#[tokio::test]
async fn a_phone_that_speaks_only_tls_1_2_is_served() {
    let certificate = self_signed();
    let (_user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            tls: Some(tls_listener(&certificate)),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut stream = tls_connect_with(
        transports.tls().unwrap(),
        &certificate,
        &[&rustls::version::TLS12],
    )
    .await;
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let from = stream.get_ref().0.local_addr().unwrap();
    stream
        .write_all(&tls_request("z9hG4bK-s3", from))
        .await
        .unwrap();
    let answer = read_until(&mut stream, |text| text.ends_with("\r\n\r\n")).await;
    assert_eq!(status(&answer), 200, "{answer}");
}

#[tokio::test]
async fn a_malformed_message_over_tls_is_answered_and_the_connection_closed() {
    let certificate = self_signed();
    let (user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            tls: Some(tls_listener(&certificate)),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut stream = tls_connect(transports.tls().unwrap(), &certificate).await;
    let from = stream.get_ref().0.local_addr().unwrap();
    let text = String::from_utf8(tls_request("z9hG4bK-s7", from))
        .unwrap()
        .replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    let mut bytes = text.into_bytes();
    // What follows a lost framing is never read.
    bytes.extend_from_slice(&tls_request("z9hG4bK-s8", from));
    stream.write_all(&bytes).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), stream.read_to_string(&mut answer))
        .await
        .expect("closed within 2 s")
        .expect("closed with a TLS close_notify");
    assert!(answer.starts_with("SIP/2.0 505 "), "{answer}");
    assert_eq!(answer.matches("SIP/2.0 ").count(), 1, "{answer}");
    assert!(user.seen().is_empty());
}

#[test]
fn a_tls_configuration_needs_a_certificate_and_its_own_key() {
    let certificate = self_signed();
    let other = self_signed();
    assert!(matches!(
        tls_server_config(&certificate.key, &certificate.key),
        Err(TlsConfigError::NoCertificate { .. })
    ));
    assert!(matches!(
        tls_server_config(&certificate.chain, &certificate.chain),
        Err(TlsConfigError::Key { .. })
    ));
    assert!(matches!(
        tls_server_config(&certificate.chain, &other.key),
        Err(TlsConfigError::Refused(rustls::Error::InconsistentKeys(_)))
    ));
    assert!(tls_server_config(&certificate.chain, &certificate.key).is_ok());
}

#[tokio::test]
async fn options_over_websocket_are_answered_in_one_text_frame_and_keep_alives_ponged() {
    let (user, endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            ws: Some(loopback()),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut websocket = ws_connect(transports.ws().unwrap()).await;
    let from = websocket.get_ref().local_addr().unwrap();
    websocket
        .send(Message::text(ws_request("OPTIONS", "z9hG4bK-w1")))
        .await
        .unwrap();
    let answer = ws_text(&mut websocket).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(
        answer.contains(
            "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bK-w1;received=127.0.0.1\r\n"
        )
    );
    assert!(
        answer.ends_with("Content-Length: 0\r\n\r\n"),
        "the whole response in one frame: {answer:?}"
    );
    assert_eq!(user.peers(), vec![format!("ws:{from}")]);
    assert_eq!(
        endpoint.transactions(),
        0,
        "reliable: no Timer J to wait for (RFC 3261 §17.2.2)"
    );

    // A binary frame carries a message too.
    websocket
        .send(Message::binary(ws_request("OPTIONS", "z9hG4bK-w2")))
        .await
        .unwrap();
    assert!(ws_text(&mut websocket).await.contains("branch=z9hG4bK-w2"));

    websocket
        .send(Message::Ping(Bytes::from_static(b"alive?")))
        .await
        .unwrap();
    assert_eq!(
        ws_next(&mut websocket).await,
        Message::Pong(Bytes::from_static(b"alive?"))
    );
    websocket.send(Message::text("\r\n\r\n")).await.unwrap();
    assert_eq!(ws_text(&mut websocket).await, "\r\n");
    assert_eq!(
        user.seen(),
        vec![
            Seen::Request("OPTIONS".into()),
            Seen::Request("OPTIONS".into())
        ]
    );
}

#[tokio::test]
async fn a_failure_over_websocket_is_not_retransmitted() {
    let (user, endpoint, transports) = start_on(
        fast_timers(),
        TransportOptions {
            udp: None,
            tcp: None,
            ws: Some(loopback()),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut websocket = ws_connect(transports.ws().unwrap()).await;
    let invite = ws_request("INVITE", "z9hG4bK-wi");
    websocket.send(Message::text(invite.clone())).await.unwrap();
    assert_eq!(status(&ws_text(&mut websocket).await), 100);
    user.answer_invite(0, OutgoingResponse::new(486));
    assert_eq!(status(&ws_text(&mut websocket).await), 486);
    // Over UDP Timer G would resend it at 20, 60 and 140 ms.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), websocket.next())
            .await
            .is_err(),
        "sent once"
    );
    let ack = invite
        .replacen("INVITE sip:", "ACK sip:", 1)
        .replace("CSeq: 1 INVITE", "CSeq: 1 ACK");
    websocket.send(Message::text(ack)).await.unwrap();
    // Messages on one connection are handled in order: once this is
    // answered, the ACK was.
    websocket
        .send(Message::text(ws_request("OPTIONS", "z9hG4bK-wo")))
        .await
        .unwrap();
    assert_eq!(status(&ws_text(&mut websocket).await), 200);
    assert_eq!(
        user.seen(),
        vec![
            Seen::Request("INVITE".into()),
            Seen::Request("OPTIONS".into())
        ],
        "the ACK of a failure is the transaction's"
    );
    assert_eq!(
        endpoint.transactions(),
        0,
        "no Timer I on a reliable transport"
    );
}

#[tokio::test]
async fn a_websocket_handshake_without_the_sip_subprotocol_is_refused() {
    let (user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            ws: Some(loopback()),
            ..TransportOptions::default()
        },
    )
    .await;
    let address = transports.ws().unwrap();
    for offered in [None, Some("chat")] {
        let tcp = TcpStream::connect(address).await.unwrap();
        match ws_handshake(tcp, &format!("ws://{address}/"), offered).await {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 400, "{offered:?}")
            }
            other => panic!("{offered:?}: not refused: {other:?}"),
        }
    }
    // A plain HTTP request is told to upgrade.
    let mut tcp = TcpStream::connect(address).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: edge.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(2), tcp.read_to_string(&mut answer))
        .await
        .expect("closed within 2 s")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 426 "), "{answer}");
    assert!(answer.contains("upgrade: websocket\r\n"), "{answer}");
    assert!(user.seen().is_empty());
}

#[tokio::test]
async fn a_malformed_message_over_websocket_is_answered_and_the_connection_stays_usable() {
    let (user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            ws: Some(loopback()),
            ..TransportOptions::default()
        },
    )
    .await;
    let mut websocket = ws_connect(transports.ws().unwrap()).await;
    let wrong_version =
        ws_request("OPTIONS", "z9hG4bK-wm").replacen("SIP/2.0\r\n", "SIP/7.0\r\n", 1);
    websocket.send(Message::text(wrong_version)).await.unwrap();
    assert_eq!(status(&ws_text(&mut websocket).await), 505);
    // No response can be routed for this one: dropped, silently.
    websocket
        .send(Message::binary(Bytes::from_static(b"\x00\x01garbage")))
        .await
        .unwrap();
    websocket
        .send(Message::text(ws_request("OPTIONS", "z9hG4bK-wn")))
        .await
        .unwrap();
    let answer = ws_text(&mut websocket).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    assert!(answer.contains("branch=z9hG4bK-wn"), "{answer}");
    assert_eq!(user.seen(), vec![Seen::Request("OPTIONS".into())]);
}

#[tokio::test]
async fn secure_websocket_carries_sip_over_tls() {
    let certificate = self_signed();
    let (user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: None,
            wss: Some(tls_listener(&certificate)),
            ..TransportOptions::default()
        },
    )
    .await;
    let tls = tls_connect(transports.wss().unwrap(), &certificate).await;
    let from = tls.get_ref().0.local_addr().unwrap();
    let mut websocket = ws_handshake(tls, "wss://edge.test/", Some("sip"))
        .await
        .unwrap();
    let options = ws_request("OPTIONS", "z9hG4bK-ws").replacen("SIP/2.0/WS ", "SIP/2.0/WSS ", 1);
    websocket.send(Message::text(options)).await.unwrap();
    let answer = ws_text(&mut websocket).await;
    assert!(answer.starts_with("SIP/2.0 200 OK\r\n"), "{answer}");
    // A WebSocket client names a made-up host (RFC 7118 §5): the answer says
    // where it really is (RFC 3261 §18.2.1).
    assert!(
        answer.contains(
            "Via: SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK-ws;received=127.0.0.1\r\n"
        ),
        "{answer}"
    );
    assert_eq!(user.peers(), vec![format!("wss:{from}")]);
}

#[tokio::test]
async fn websocket_connections_share_the_connection_limit_and_close_when_idle() {
    let (_user, _endpoint, transports) = start_on(
        Timers::default(),
        TransportOptions {
            udp: None,
            tcp: Some(loopback()),
            ws: Some(loopback()),
            idle_timeout: Duration::from_millis(300),
            max_connections: 1,
            ..TransportOptions::default()
        },
    )
    .await;
    let mut websocket = ws_connect(transports.ws().unwrap()).await;
    // The WebSocket holds the only slot: a TCP connection is closed at once.
    let mut tcp = TcpStream::connect(transports.tcp().unwrap()).await.unwrap();
    let mut buffer = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut buffer))
        .await
        .expect("closed before the idle timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // Silent for 300 ms: closed with a close frame.
    let started = tokio::time::Instant::now();
    assert!(
        matches!(ws_next(&mut websocket).await, Message::Close(_)),
        "a close frame"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn a_flooding_source_is_dropped_past_its_burst_and_others_still_answered() {
    let user = Arc::new(Recorder::default());
    let endpoint = Endpoint::new(
        EndpointOptions {
            per_source: Some(switchboard_edge::sip::flood::SourceLimit {
                burst: 5,
                per_second: 0.5,
                max_sources: 100,
            }),
            ..EndpointOptions::default()
        },
        user.clone(),
    );
    let transports = Transports::bind(
        endpoint,
        &TransportOptions {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tcp: None,
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    let target = transports.udp().unwrap();
    // A scanner: 20 OPTIONS at once, each a new transaction.
    let (scanner, from) = udp_client().await;
    for index in 0..20 {
        let branch = format!("z9hG4bK-flood-{index}");
        scanner
            .send_to(
                &request("OPTIONS", "sip:acme.sip.example.com", &branch, "", from),
                target,
            )
            .await
            .unwrap();
    }
    let mut answered = 0;
    while !quiet(&scanner, Duration::from_millis(300)).await {
        answered += 1;
    }
    assert_eq!(answered, 5, "only the burst is answered");
    // Another address is answered at once.
    let (neighbour, from) = {
        let socket = UdpSocket::bind("127.0.0.2:0").await.unwrap();
        let address = socket.local_addr().unwrap();
        (socket, address)
    };
    neighbour
        .send_to(
            &request(
                "OPTIONS",
                "sip:acme.sip.example.com",
                "z9hG4bK-n-1",
                "",
                from,
            ),
            target,
        )
        .await
        .unwrap();
    assert_eq!(status(&receive(&neighbour).await), 200);
}

#[tokio::test]
async fn a_phone_behind_nat_is_answered_where_it_is_and_told_so() {
    let (_user, _endpoint, transports) = start(Timers::default()).await;
    let (phone, from) = udp_client().await;
    // The phone believes it is 10.0.0.9:5060 and asks for rport (RFC 3581).
    let text = String::from_utf8(request(
        "OPTIONS",
        "sip:acme.sip.example.com",
        "z9hG4bK-nat",
        "",
        from,
    ))
    .unwrap()
    .replace(
        &format!("Via: SIP/2.0/UDP {from};branch=z9hG4bK-nat"),
        "Via: SIP/2.0/UDP 10.0.0.9:5060;rport;branch=z9hG4bK-nat",
    );
    phone
        .send_to(text.as_bytes(), transports.udp().unwrap())
        .await
        .unwrap();
    let answer = receive(&phone).await;
    assert!(
        answer.contains(&format!(
            "Via: SIP/2.0/UDP 10.0.0.9:5060;rport={};branch=z9hG4bK-nat;received=127.0.0.1\r\n",
            from.port()
        )),
        "{answer}"
    );
}

/// A user with a bug: it panics on a request naming `X-Crash`.
struct Crashes;

impl TransactionUser for Crashes {
    fn allows(&self, method: Method<'_>) -> bool {
        method == Method::Options
    }

    fn on_request(&self, request: IncomingRequest) {
        if request.message().header("X-Crash").is_some() {
            panic!("a bug in the transaction user");
        }
        request.respond(OutgoingResponse::new(200)).unwrap();
    }
}

#[tokio::test]
async fn a_panic_on_one_message_loses_that_message_only() {
    let endpoint = Endpoint::new(EndpointOptions::default(), Arc::new(Crashes));
    let transports = Transports::bind(
        endpoint,
        &TransportOptions {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tcp: None,
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    let (client, from) = udp_client().await;
    let target = transports.udp().unwrap();
    let crash = request(
        "OPTIONS",
        "sip:a@b",
        "z9hG4bK-crash",
        "X-Crash: 1\r\n",
        from,
    );
    client.send_to(&crash, target).await.unwrap();
    assert!(quiet(&client, Duration::from_millis(200)).await);
    let fine = request("OPTIONS", "sip:a@b", "z9hG4bK-fine", "", from);
    client.send_to(&fine, target).await.unwrap();
    assert_eq!(
        status(&receive(&client).await),
        200,
        "the UDP loop lives on"
    );
}
