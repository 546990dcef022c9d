//! Requests the edge sends (client transactions, RFC 3261 §17.1), to a
//! "phone" that is a raw socket on loopback: retransmissions until
//! answered, responses back to the sender, failures of an INVITE ACKed by
//! the transaction, Timer B, CANCEL held until a provisional response,
//! 2xx retransmissions passed up, and requests over a connection the phone
//! opened (no retransmissions there).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use switchboard_edge::sip::transport::{TransportOptions, Transports};
use switchboard_edge::sip::{
    ClientEvent, Endpoint, EndpointOptions, IncomingRequest, OutgoingRequest, OutgoingResponse,
    Peer, SendError, TransactionUser,
};
use switchboard_sip::build::response_to;
use switchboard_sip::transaction::Timers;
use switchboard_sip::{Limits, Method, Transport, parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// Answers OPTIONS, and remembers the peer of each request.
#[derive(Default)]
struct Phones {
    peers: Mutex<Vec<Peer>>,
}

impl TransactionUser for Phones {
    fn allows(&self, method: Method<'_>) -> bool {
        method == Method::Options
    }

    fn on_request(&self, request: IncomingRequest) {
        self.peers.lock().unwrap().push(request.peer.clone());
        request.respond(OutgoingResponse::new(200)).unwrap();
    }
}

fn fast_timers() -> Timers {
    Timers {
        t1: Duration::from_millis(20),
        t2: Duration::from_millis(80),
        t4: Duration::from_millis(100),
    }
}

async fn start() -> (Arc<Phones>, Endpoint, Transports) {
    let user = Arc::new(Phones::default());
    let endpoint = Endpoint::new(
        EndpointOptions {
            timers: fast_timers(),
            ..EndpointOptions::default()
        },
        user.clone(),
    );
    let transports = Transports::bind(
        endpoint.clone(),
        &TransportOptions {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tcp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    (user, endpoint, transports)
}

fn request(method: &str, branch: &str, phone: SocketAddr, edge: SocketAddr) -> Bytes {
    Bytes::from(format!(
        "{method} sip:agent@{phone} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {edge};branch={branch}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:+12125550199@acme.sip.example.com>;tag=edge-1\r\n\
         To: <sip:agent@acme.sip.example.com>\r\n\
         Call-ID: {branch}-call\r\n\
         CSeq: 1 {method}\r\n\
         Contact: <sip:edge@{edge}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

async fn phone() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    (socket, address)
}

async fn receive(socket: &UdpSocket) -> (String, SocketAddr) {
    let mut buffer = vec![0u8; 65_535];
    let (length, from) =
        tokio::time::timeout(Duration::from_secs(2), socket.recv_from(&mut buffer))
            .await
            .expect("a message within 2 s")
            .unwrap();
    (String::from_utf8(buffer[..length].to_vec()).unwrap(), from)
}

async fn quiet(socket: &UdpSocket, wait: Duration) -> bool {
    let mut buffer = vec![0u8; 65_535];
    tokio::time::timeout(wait, socket.recv_from(&mut buffer))
        .await
        .is_err()
}

/// The phone's response with `code` to `request` (its text), To tag
/// `phone-tag` on everything but 100.
fn answer(request: &str, code: u16) -> Vec<u8> {
    let (message, _) = parse(request.as_bytes(), Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    response_to(&message, code, "", (code > 100).then_some("phone-tag"))
}

async fn next(outgoing: &mut OutgoingRequest) -> ClientEvent {
    tokio::time::timeout(Duration::from_secs(3), outgoing.next())
        .await
        .expect("an event within 3 s")
        .expect("the transaction reports")
}

fn code_of(event: &ClientEvent) -> u16 {
    match event {
        ClientEvent::Response(bytes) => {
            std::str::from_utf8(&bytes[8..11]).unwrap().parse().unwrap()
        }
        ClientEvent::TimedOut => 408,
    }
}

#[tokio::test]
async fn a_request_is_resent_until_answered_and_the_answer_reaches_its_sender() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let mut options = endpoint
        .send_request(
            request("OPTIONS", "z9hG4bK-o-1", at, edge),
            endpoint.udp_peer(at).unwrap(),
        )
        .unwrap();
    let (first, from) = receive(&phone).await;
    assert_eq!(from, edge, "sent from the edge's own socket");
    let (again, _) = receive(&phone).await;
    assert_eq!(again, first, "Timer E resends it");
    phone.send_to(&answer(&first, 200), edge).await.unwrap();
    assert_eq!(code_of(&next(&mut options).await), 200);
    assert!(
        quiet(&phone, Duration::from_millis(200)).await,
        "no resend after the answer"
    );
}

#[tokio::test]
async fn an_invites_failure_is_acked_by_its_transaction_each_time_it_comes() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let mut invite = endpoint
        .send_request(
            request("INVITE", "z9hG4bK-i-1", at, edge),
            endpoint.udp_peer(at).unwrap(),
        )
        .unwrap();
    let (text, _) = receive(&phone).await;
    phone.send_to(&answer(&text, 180), edge).await.unwrap();
    assert_eq!(code_of(&next(&mut invite).await), 180);
    let busy = answer(&text, 486);
    phone.send_to(&busy, edge).await.unwrap();
    assert_eq!(code_of(&next(&mut invite).await), 486);
    let (ack, _) = receive(&phone).await;
    assert!(
        ack.starts_with(&format!("ACK sip:agent@{at} SIP/2.0\r\n")),
        "{ack}"
    );
    assert!(
        ack.contains("branch=z9hG4bK-i-1\r\n"),
        "the INVITE's branch: {ack}"
    );
    assert!(
        ack.contains(";tag=phone-tag\r\n"),
        "the response's To: {ack}"
    );
    assert!(ack.contains("CSeq: 1 ACK\r\n"));
    // The phone did not hear the ACK and sends the 486 again.
    phone.send_to(&busy, edge).await.unwrap();
    let (again, _) = receive(&phone).await;
    assert_eq!(again, ack);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), invite.next())
            .await
            .is_err(),
        "the sender heard the failure once"
    );
}

#[tokio::test]
async fn an_unanswered_invite_times_out_with_timer_b() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let mut invite = endpoint
        .send_request(
            request("INVITE", "z9hG4bK-b-1", at, edge),
            endpoint.udp_peer(at).unwrap(),
        )
        .unwrap();
    // 64·T1 = 1.28 s.
    assert_eq!(next(&mut invite).await, ClientEvent::TimedOut);
    let mut sent = 0;
    while !quiet(&phone, Duration::from_millis(10)).await {
        sent += 1;
    }
    assert!(sent >= 5, "Timer A resent it ({sent} times)");
}

#[tokio::test]
async fn cancel_waits_for_a_provisional_response_then_the_487_is_acked() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let mut invite = endpoint
        .send_request(
            request("INVITE", "z9hG4bK-c-1", at, edge),
            endpoint.udp_peer(at).unwrap(),
        )
        .unwrap();
    endpoint.cancel(invite.id).unwrap();
    let (text, _) = receive(&phone).await;
    assert!(text.starts_with("INVITE "));
    // Only the INVITE (and its retransmissions) until the phone rings.
    let (resent, _) = receive(&phone).await;
    assert!(
        resent.starts_with("INVITE "),
        "no CANCEL before a provisional response"
    );
    phone.send_to(&answer(&text, 180), edge).await.unwrap();
    assert_eq!(code_of(&next(&mut invite).await), 180);
    let cancel = loop {
        let (message, _) = receive(&phone).await;
        if message.starts_with("CANCEL ") {
            break message;
        }
    };
    assert!(cancel.contains("branch=z9hG4bK-c-1\r\n") && cancel.contains("CSeq: 1 CANCEL\r\n"));
    phone.send_to(&answer(&cancel, 200), edge).await.unwrap();
    phone.send_to(&answer(&text, 487), edge).await.unwrap();
    assert_eq!(code_of(&next(&mut invite).await), 487);
    let ack = loop {
        let (message, _) = receive(&phone).await;
        if message.starts_with("ACK ") {
            break message;
        }
    };
    assert!(ack.contains("CSeq: 1 ACK\r\n"));
}

#[tokio::test]
async fn every_2xx_of_an_invite_reaches_its_sender_for_the_dialog_to_ack() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let mut invite = endpoint
        .send_request(
            request("INVITE", "z9hG4bK-2-1", at, edge),
            endpoint.udp_peer(at).unwrap(),
        )
        .unwrap();
    let (text, _) = receive(&phone).await;
    let ok = answer(&text, 200);
    phone.send_to(&ok, edge).await.unwrap();
    phone.send_to(&ok, edge).await.unwrap();
    assert_eq!(code_of(&next(&mut invite).await), 200);
    assert_eq!(code_of(&next(&mut invite).await), 200);
    assert!(
        quiet(&phone, Duration::from_millis(150)).await,
        "the transaction ACKs no 2xx"
    );
}

#[tokio::test]
async fn a_request_goes_over_the_connection_the_phone_opened_without_resends() {
    let (user, endpoint, transports) = start().await;
    let mut stream = TcpStream::connect(transports.tcp().unwrap()).await.unwrap();
    let at = stream.local_addr().unwrap();
    let edge = transports.tcp().unwrap();
    // The phone speaks first (as a REGISTER would): its connection is known.
    stream
        .write_all(&request("OPTIONS", "z9hG4bK-p-1", edge, at))
        .await
        .unwrap();
    let mut buffer = vec![0u8; 8192];
    let length = stream.read(&mut buffer).await.unwrap();
    assert!(buffer[..length].starts_with(b"SIP/2.0 200 "));
    let peer = user.peers.lock().unwrap()[0].clone();
    assert_eq!(peer.remote(), at);

    let mut options = endpoint
        .send_request(request("OPTIONS", "z9hG4bK-t-1", at, edge), peer)
        .unwrap();
    let length = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buffer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(buffer[..length].to_vec()).unwrap();
    assert!(text.starts_with("OPTIONS sip:agent@"), "{text}");
    // No resend over a reliable transport, even unanswered for 4·T1.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer))
            .await
            .is_err()
    );
    stream.write_all(&answer(&text, 200)).await.unwrap();
    assert_eq!(code_of(&next(&mut options).await), 200);
}

#[tokio::test]
async fn requests_that_cannot_be_sent_are_refused_before_anything_goes_out() {
    let (_user, endpoint, transports) = start().await;
    let (phone, at) = phone().await;
    let edge = transports.udp().unwrap();
    let peer = endpoint.udp_peer(at).unwrap();
    assert_eq!(
        endpoint
            .send_request(request("ACK", "z9hG4bK-a-1", at, edge), peer.clone())
            .err(),
        Some(SendError::Ack)
    );
    assert!(matches!(
        endpoint.send_request(request("OPTIONS", "no-cookie", at, edge), peer.clone()),
        Err(SendError::Malformed(_))
    ));
    assert!(matches!(
        endpoint.send_request(Bytes::from_static(b"garbage"), peer.clone()),
        Err(SendError::Malformed(_))
    ));
    let _first = endpoint
        .send_request(request("OPTIONS", "z9hG4bK-d-1", at, edge), peer.clone())
        .unwrap();
    assert_eq!(
        endpoint
            .send_request(request("OPTIONS", "z9hG4bK-d-1", at, edge), peer)
            .err(),
        Some(SendError::Duplicate)
    );
    let (only, _) = receive(&phone).await;
    assert!(only.contains("branch=z9hG4bK-d-1"));
}
