//! A parsed SIP message (RFC 3261 §7), borrowing from the bytes it was
//! parsed from.

use std::borrow::Cow;

use crate::headers;

/// A request method (RFC 3261 §7.1, case-sensitive). Methods no RFC of
/// ours knows are kept as [`Method::Extension`], so a UA can answer them
/// 501 (Not Implemented) and a proxy can forward them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method<'a> {
    Invite,
    Ack,
    Bye,
    Cancel,
    Register,
    Options,
    Info,
    Prack,
    Update,
    Subscribe,
    Notify,
    Refer,
    Message,
    Publish,
    Extension(&'a str),
}

impl<'a> Method<'a> {
    /// The method named `token` (already checked to be a token).
    pub fn from_token(token: &'a str) -> Self {
        match token {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "REGISTER" => Method::Register,
            "OPTIONS" => Method::Options,
            "INFO" => Method::Info,
            "PRACK" => Method::Prack,
            "UPDATE" => Method::Update,
            "SUBSCRIBE" => Method::Subscribe,
            "NOTIFY" => Method::Notify,
            "REFER" => Method::Refer,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Extension(other),
        }
    }

    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Register => "REGISTER",
            Method::Options => "OPTIONS",
            Method::Info => "INFO",
            Method::Prack => "PRACK",
            Method::Update => "UPDATE",
            Method::Subscribe => "SUBSCRIBE",
            Method::Notify => "NOTIFY",
            Method::Refer => "REFER",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Extension(token) => token,
        }
    }
}

/// `SIP/<major>.<minor>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub major: u32,
    pub minor: u32,
}

impl Version {
    /// SIP/2.0, the only version there is.
    pub const SIP_2_0: Version = Version { major: 2, minor: 0 };
}

/// The first line: a request's or a response's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine<'a> {
    Request {
        method: Method<'a>,
        /// The Request-URI as received (RFC 3261 §19.1; escapes kept).
        uri: &'a str,
        version: Version,
    },
    Response {
        version: Version,
        code: u16,
        reason: &'a str,
    },
}

/// One header field as received: its name (a compact form stays compact;
/// compare with [`Header::is`]) and its value without surrounding
/// whitespace, folded lines joined by one space (owned only then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

impl Header<'_> {
    /// Whether this is the header `canonical` (its full name), compact
    /// form or any case.
    pub fn is(&self, canonical: &str) -> bool {
        headers::is(self.name, canonical)
    }
}

/// A SIP message. Unknown headers are kept in order, as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message<'a> {
    pub start: StartLine<'a>,
    pub headers: Vec<Header<'a>>,
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The first header named `canonical`.
    pub fn header(&self, canonical: &str) -> Option<&Header<'a>> {
        self.headers.iter().find(|header| header.is(canonical))
    }

    /// Every header named `canonical`, in order.
    pub fn headers_named<'s>(
        &'s self,
        canonical: &'s str,
    ) -> impl Iterator<Item = &'s Header<'a>> + 's {
        self.headers
            .iter()
            .filter(move |header| header.is(canonical))
    }

    /// The request's method; `None` for a response.
    pub fn method(&self) -> Option<Method<'a>> {
        match &self.start {
            StartLine::Request { method, .. } => Some(*method),
            StartLine::Response { .. } => None,
        }
    }

    pub fn is_request(&self) -> bool {
        matches!(self.start, StartLine::Request { .. })
    }

    /// The CSeq's sequence number and method (checked by the parser).
    pub fn cseq(&self) -> Option<(u32, &str)> {
        let value = self.header("CSeq")?.value.as_ref();
        let (number, method) = value.split_once([' ', '\t'])?;
        Some((number.parse().ok()?, method.trim_start()))
    }
}
