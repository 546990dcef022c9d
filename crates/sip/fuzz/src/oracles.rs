//! The oracles: rsipstack 0.7.14 and ezk-sip-types 0.6.5, each taken as
//! far as its own stack goes before a message reaches its transaction
//! layer, so "accepted" means the same for all three parsers: framed,
//! start line and headers read, and the headers every transaction needs
//! (Via, From, To, Call-ID, CSeq) decoded.
//!
//! - rsipstack: `parse_message` (its UDP path) or `SipCodec` (its TCP/TLS
//!   framing), then `TransactionKey::from_request`/`from_response`, which
//!   its endpoint calls on every message it receives (a message whose key
//!   cannot be built is dropped there).
//! - ezk: ezk-sip-types has the pieces but not the framing, which lives
//!   in ezk-sip-core (not a dependency: it needs cmake and libclang). The
//!   datagram path below follows ezk-sip-core's `parse_complete_sip`
//!   (`PullParser` lines, `MessageLine`, `Line`, the body by
//!   Content-Length or the rest of the datagram), then its
//!   `BaseHeaders::extract_from` (Via list, From, To, Call-ID, CSeq).

use bytes::{Bytes, BytesMut};
use ezk_sip_types::_private_reexport::nom;
use ezk_sip_types::header::typed::{CSeq, CallID, ContentLength, FromTo, Via as EzkVia};
use ezk_sip_types::msg::{Line, MessageLine, PullParser};
use ezk_sip_types::parse::Parse;
use ezk_sip_types::{Headers, Name};
use rsipstack::sip::{HeadersExt, SipMessage};
use rsipstack::transaction::key::{TransactionKey, TransactionRole};
use rsipstack::transport::stream::{SipCodec, SipCodecType};
use tokio_util::codec::Decoder;

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::{Outcome, Summary};

thread_local! {
    static IN_ORACLE: Cell<bool> = const { Cell::new(false) };
}

/// Runs an oracle, turning a panic of its into [`Outcome::Panic`]:
/// libFuzzer's panic hook aborts the process, so it is bypassed while an
/// oracle runs (and only then).
fn guarded(oracle: impl FnOnce() -> Outcome) -> Outcome {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let fuzzer_hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !IN_ORACLE.with(Cell::get) {
                fuzzer_hook(info);
            }
        }));
    });
    IN_ORACLE.with(|flag| flag.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(oracle));
    IN_ORACLE.with(|flag| flag.set(false));
    result.unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|text| (*text).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        Outcome::Panic(crate::one_line(&message, 160))
    })
}

fn refuse(label: impl Into<String>, detail: impl std::fmt::Display) -> Outcome {
    Outcome::Refuse {
        label: label.into(),
        detail: crate::one_line(&detail.to_string(), 160),
    }
}

/// rsipstack on a datagram (its UDP transport hands the datagram to
/// `SipMessage::try_from`).
pub fn rsip_datagram(bytes: &[u8]) -> Outcome {
    guarded(|| rsip_datagram_unguarded(bytes))
}

fn rsip_datagram_unguarded(bytes: &[u8]) -> Outcome {
    match SipMessage::try_from(bytes) {
        Ok(message) => rsip_accept(&message),
        Err(error) => refuse(rsip_label(&error.to_string()), error),
    }
}

/// rsipstack on a stream: its `SipCodec` on the bytes received so far.
pub fn rsip_stream(bytes: &[u8]) -> Outcome {
    guarded(|| rsip_stream_unguarded(bytes))
}

fn rsip_stream_unguarded(bytes: &[u8]) -> Outcome {
    let mut buffer = BytesMut::from(bytes);
    let mut codec = SipCodec::new();
    // Its keep-alives (a CRLF pair, or two) come out as items of their
    // own; we skip them the same way (RFC 3261 §7.5, RFC 5626 §3.5.1).
    loop {
        match codec.decode(&mut buffer) {
            Ok(Some(SipCodecType::Message(message))) => return rsip_accept(&message),
            Ok(Some(_keepalive)) => continue,
            Ok(None) => return Outcome::Wait,
            Err(error) => {
                return refuse(format!("codec:{}", rsip_label(&error.to_string())), error);
            }
        }
    }
}

fn rsip_accept(message: &SipMessage) -> Outcome {
    let key = match message {
        SipMessage::Request(request) => {
            TransactionKey::from_request(request, TransactionRole::Server)
        }
        SipMessage::Response(response) => {
            TransactionKey::from_response(response, TransactionRole::Client)
        }
    };
    if let Err(error) = key {
        return refuse(format!("key:{}", rsip_label(&error.to_string())), error);
    }
    let (method, status, body) = match message {
        SipMessage::Request(request) => {
            (Some(request.method.to_string()), None, request.body.clone())
        }
        SipMessage::Response(response) => (
            None,
            Some(response.status_code.code()),
            response.body.clone(),
        ),
    };
    let cseq = message
        .cseq_header()
        .ok()
        .and_then(|cseq| Some((cseq.seq().ok()?, cseq.method().ok()?.to_string())));
    Outcome::Accept(Summary {
        method,
        status,
        call_id: message
            .call_id_header()
            .map(|id| id.value().trim().to_owned())
            .unwrap_or_default(),
        cseq,
        body,
    })
}

/// A stable label for an rsipstack error: its kind, without the data.
fn rsip_label(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    for (needle, label) in [
        ("separator", "no_end_of_headers"),
        ("utf-8", "utf8"),
        ("utf8", "utf8"),
        ("invalid method", "method"),
        ("version", "version"),
        ("unknown transport", "via_transport"),
        ("from tag", "from_tag"),
        ("missing header", "missing_header"),
        ("content-length", "content_length"),
        ("too large", "too_large"),
        ("via", "via"),
        ("cseq", "cseq"),
        ("status-line", "status_line"),
        ("request-line", "request_line"),
        ("uri", "uri"),
        ("host", "uri"),
        ("port", "uri"),
    ] {
        if lower.contains(needle) {
            return label.to_owned();
        }
    }
    // Otherwise the first words, without any data after a colon.
    let words: Vec<&str> = lower
        .split(':')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect();
    words.join("_")
}

/// ezk (ezk-sip-core's datagram parser over ezk-sip-types), then its
/// base headers.
pub fn ezk_datagram(bytes: &[u8]) -> Outcome {
    guarded(|| ezk_datagram_unguarded(bytes))
}

fn ezk_datagram_unguarded(bytes: &[u8]) -> Outcome {
    // parse_complete: keep-alives are not messages.
    if bytes == b"\r\n\r\n" || bytes == b"\r\n" {
        return refuse("keepalive", "a keep-alive");
    }
    let buffer = Bytes::copy_from_slice(bytes);
    let mut parser = PullParser::new(&buffer, 0);
    let mut message_line = None;
    let mut headers = Headers::new();
    for item in &mut parser {
        let Ok(line) = item else {
            return refuse("incomplete", "the head is incomplete");
        };
        let Ok(line) = std::str::from_utf8(line) else {
            return refuse("utf8", "a line is not UTF-8");
        };
        if message_line.is_none() {
            match MessageLine::parse(&buffer)(line) {
                Ok((_, parsed)) => message_line = Some(parsed),
                Err(_) => return refuse("start_line", format!("start line {line:?}")),
            }
        } else {
            match nom::Finish::finish(Line::parse(&buffer, line)) {
                Ok((_, parsed)) => headers.insert(parsed.name, parsed.value),
                Err(_) => return refuse("header_line", format!("header line {line:?}")),
            }
        }
    }
    let head_end = parser.head_end();
    let body = match headers.get_named::<ContentLength>() {
        Ok(length) if length.0 == 0 => Bytes::new(),
        Ok(length) if buffer.len() >= head_end + length.0 => {
            buffer.slice(head_end..head_end + length.0)
        }
        Ok(_) => return refuse("incomplete_body", "the body is shorter than Content-Length"),
        Err(_) => buffer.slice(head_end..),
    };
    let Some(line) = message_line else {
        return refuse("no_start_line", "no start line");
    };
    // BaseHeaders::extract_from.
    let via: Result<Vec<EzkVia>, _> = headers.get_named();
    if let Err(error) = via {
        return refuse(ezk_label("Via", error.is_missing()), error);
    }
    let from: Result<FromTo, _> = headers.get(Name::FROM);
    if let Err(error) = from {
        return refuse(ezk_label("From", error.is_missing()), error);
    }
    let to: Result<FromTo, _> = headers.get(Name::TO);
    if let Err(error) = to {
        return refuse(ezk_label("To", error.is_missing()), error);
    }
    let call_id: CallID = match headers.get_named() {
        Ok(call_id) => call_id,
        Err(error) => return refuse(ezk_label("Call-ID", error.is_missing()), error),
    };
    let cseq: CSeq = match headers.get_named() {
        Ok(cseq) => cseq,
        Err(error) => return refuse(ezk_label("CSeq", error.is_missing()), error),
    };
    let (method, status) = match &line {
        MessageLine::Request(request) => (Some(request.method.to_string()), None),
        MessageLine::Response(status) => (None, Some(status.code.into_u16())),
    };
    Outcome::Accept(Summary {
        method,
        status,
        call_id: call_id.0.to_string(),
        cseq: Some((cseq.cseq, cseq.method.to_string())),
        body: body.to_vec(),
    })
}

fn ezk_label(name: &str, missing: bool) -> String {
    format!("{}:{name}", if missing { "missing" } else { "malformed" })
}
