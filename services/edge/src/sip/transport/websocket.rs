//! SIP over WebSocket (RFC 7118), for browser phones: an HTTP/1.1 GET
//! upgraded to a WebSocket (RFC 6455 §4) that must offer the `sip`
//! subprotocol (RFC 7118 §4.1), then one whole SIP message per WebSocket
//! message, text or binary (§4.2). A message is parsed as a datagram is
//! (no Content-Length needed) but on a reliable transport, so nothing is
//! retransmitted; and since a malformed message loses no framing, it is
//! answered (or dropped) and the connection stays up. A message that is
//! only RFC 5626's double-CRLF keep-alive gets its single-CRLF pong
//! (browser SIP stacks send it besides WebSocket pings). Pings, pongs and
//! the closing handshake are tungstenite's.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{
    ErrorResponse, Request, Response, write_response,
};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error, Message, Utf8Bytes, error::ProtocolError};

use super::WRITE_QUEUE;
use crate::sip::{Endpoint, Peer};

/// The subprotocol RFC 7118 §4.1 registers.
const SUBPROTOCOL: &str = "sip";

/// Serves one accepted connection (TCP, or TLS when `tls`): the
/// handshake, then SIP messages until the peer closes, errs or stays
/// silent for `idle`.
pub(super) async fn serve<S>(
    endpoint: Endpoint,
    mut stream: S,
    remote: SocketAddr,
    tls: bool,
    idle: Duration,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // No WebSocket message can be larger than the largest SIP message.
    let limits = endpoint.options().limits;
    let largest = limits.max_head + limits.max_body;
    let config = WebSocketConfig::default()
        .max_message_size(Some(largest))
        .max_frame_size(Some(largest));
    let handshake =
        tokio_tungstenite::accept_hdr_async_with_config(&mut stream, offers_sip, Some(config));
    let websocket = match tokio::time::timeout(idle, handshake).await {
        Ok(Ok(websocket)) => websocket,
        Ok(Err(error)) => {
            tracing::debug!(%remote, %error, "SIP WebSocket handshake refused");
            if let Some(response) = refusal(&error) {
                let mut bytes = Vec::new();
                if write_response(&mut bytes, &response).is_ok() {
                    bytes.extend_from_slice(response.body().as_deref().unwrap_or("").as_bytes());
                    let _ = stream.write_all(&bytes).await;
                    let _ = stream.shutdown().await;
                }
            }
            return;
        }
        Err(_) => {
            tracing::debug!(%remote, "SIP WebSocket handshake timed out");
            return;
        }
    };

    let (sender, mut outgoing) = mpsc::channel::<Bytes>(WRITE_QUEUE);
    let peer = Peer::WebSocket {
        remote,
        writer: sender,
        tls,
    };
    endpoint.connection_opened(&peer);
    let (mut sink, mut source) = websocket.split();
    // Each message sent is one frame: text when it is UTF-8 (a SIP
    // message is, unless its body is not), binary otherwise.
    let writing = async move {
        while let Some(bytes) = outgoing.recv().await {
            let message = match Utf8Bytes::try_from(bytes.clone()) {
                Ok(text) => Message::Text(text),
                Err(_) => Message::Binary(bytes),
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    };
    let reading = async {
        loop {
            let bytes = match tokio::time::timeout(idle, source.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => Bytes::from(text),
                Ok(Some(Ok(Message::Binary(bytes)))) => bytes,
                // Pongs to pings are queued by tungstenite and sent as it
                // reads on; a close is answered the same way, then the
                // stream ends.
                Ok(Some(Ok(
                    Message::Ping(_) | Message::Pong(_) | Message::Close(_) | Message::Frame(_),
                ))) => continue,
                Ok(Some(Err(error))) => {
                    tracing::debug!(%remote, %error, "SIP WebSocket read failed");
                    break;
                }
                Ok(None) | Err(_) => break,
            };
            if bytes.as_ref() == b"\r\n\r\n" {
                peer.send(Bytes::from_static(b"\r\n"));
            } else {
                endpoint.receive(bytes, peer.clone());
            }
        }
    };
    tokio::pin!(writing);
    let written_out = tokio::select! {
        () = reading => false,
        // The connection can no longer be written to.
        () = &mut writing => true,
    };
    endpoint.connection_closed(&peer);
    if written_out {
        return;
    }
    // Transactions still hold the sender until they end; the writer
    // finishes what is queued once the last one lets go.
    drop(peer);
    let _ = tokio::time::timeout(Duration::from_secs(5), writing).await;
}

/// Accepts the upgrade only when the client offers `sip`, and says so in
/// the response (RFC 7118 §4.1); refuses it with 400 otherwise.
#[expect(
    clippy::result_large_err,
    reason = "the signature of tungstenite's handshake callback"
)]
fn offers_sip(request: &Request, mut response: Response) -> Result<Response, ErrorResponse> {
    let offered = request
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if offered {
        response.headers_mut().insert(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static(SUBPROTOCOL),
        );
        Ok(response)
    } else {
        Err(plain(
            StatusCode::BAD_REQUEST,
            "the WebSocket subprotocol sip is required (RFC 7118)",
        ))
    }
}

/// The HTTP answer to a request tungstenite refused before our callback
/// saw it: 426 to one that is no WebSocket upgrade or not of version 13,
/// saying what to upgrade to (RFC 9110 §15.5.22, RFC 6455 §4.2.2); 400 to
/// any other malformed one. None when the connection failed, or when the
/// answer was already sent (the callback's).
fn refusal(error: &Error) -> Option<ErrorResponse> {
    match error {
        Error::Protocol(
            ProtocolError::MissingConnectionUpgradeHeader
            | ProtocolError::MissingUpgradeWebSocketHeader
            | ProtocolError::MissingSecWebSocketVersionHeader,
        ) => {
            let mut response = plain(
                StatusCode::UPGRADE_REQUIRED,
                "SIP over WebSocket version 13 (RFC 7118) only",
            );
            let headers = response.headers_mut();
            headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            headers.insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            headers.insert(
                header::CONNECTION,
                HeaderValue::from_static("Upgrade, close"),
            );
            Some(response)
        }
        Error::Protocol(_) | Error::Capacity(_) | Error::HttpFormat(_) | Error::Utf8(_) => {
            Some(plain(StatusCode::BAD_REQUEST, "not a WebSocket handshake"))
        }
        _ => None,
    }
}

/// A response with a short text body, closing the connection.
fn plain(status: StatusCode, text: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(text.to_owned()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(text.len()));
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
