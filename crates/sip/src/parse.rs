//! The strict parser (RFC 3261 §7 and §25 grammar, §18.3 framing) with the
//! verdicts RFC 4475 expects of malformed messages.
//!
//! A message either parses whole or is [`Malformed`]: with the reason (a
//! stable label for `switchboard_edge_sip_malformed_total{reason}`), a
//! detail for the log, and the [`Refusal`]: the status to answer (400,
//! 413, 505) when it is a request whose Via, From, To, Call-ID and CSeq
//! could be read (so a response can be built from them), else a silent
//! drop (RFC 3261 §18.1.2/§18.2.1: malformed responses and requests no
//! response can be routed for are discarded).

use std::borrow::Cow;

use crate::headers::is_token;
use crate::message::{Header, Message, Method, StartLine, Version};
use crate::values;

/// How the bytes arrived: framing differs (RFC 3261 §18.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// One message per datagram (UDP): without Content-Length the body is
    /// the rest of the datagram; bytes past it are discarded.
    Datagram,
    /// A byte stream (TCP, TLS): Content-Length is mandatory and the next
    /// message follows the body.
    Stream,
}

/// Sizes past which a message is refused with 413.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The start line and headers.
    pub max_head: usize,
    pub max_body: usize,
    pub max_headers: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 16 * 1024,
            max_body: 64 * 1024,
            max_headers: 256,
        }
    }
}

/// What to do with a malformed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Answer with this status (400, 413 or 505).
    Respond(u16),
    /// Discard it: no response can or may be sent.
    Drop,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed<'a> {
    /// A stable label for metrics (`bad_start_line`, `version`, …).
    pub reason: &'static str,
    /// What exactly, for the log and the response's reason phrase.
    pub detail: String,
    pub refusal: Refusal,
    /// The request as far as it was read, to build the response from
    /// (its headers; no body), when [`Refusal::Respond`].
    pub request: Option<Box<Message<'a>>>,
}

/// Headers every request and response must carry (RFC 3261 §8.1.1; Max-
/// Forwards, also mandated there, is supplied by proxies when missing and
/// only checked when present).
const MANDATORY: [&str; 5] = ["Via", "From", "To", "Call-ID", "CSeq"];

/// Headers that may appear once only (RFC 3261 §7.3: only headers whose
/// grammar is a comma-separated list may repeat).
const SINGLE: [&str; 7] = [
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Length",
    "Content-Type",
];

/// A failure before the message is known well enough to decide between a
/// response and a drop.
struct Failure {
    reason: &'static str,
    detail: String,
    status: u16,
}

fn fail(reason: &'static str, status: u16, detail: impl Into<String>) -> Failure {
    Failure {
        reason,
        detail: detail.into(),
        status,
    }
}

/// Parses one message from the start of `bytes`. Returns the message and
/// how many bytes it took (with the CRLFs before it that RFC 3261 §7.5
/// says to ignore); on a [`Transport::Stream`], `Ok(None)` while the
/// message is not complete yet.
pub fn parse<'a>(
    bytes: &'a [u8],
    transport: Transport,
    limits: &Limits,
) -> Result<Option<(Message<'a>, usize)>, Malformed<'a>> {
    let skipped = leading_crlfs(bytes);
    let input = &bytes[skipped..];
    let Some(head_end) = find(input, b"\r\n\r\n") else {
        // A head of up to max_head bytes may still lack (the rest of) the
        // CRLF CRLF after it: up to max_head + 3 bytes, wait.
        if transport == Transport::Stream && input.len() < limits.max_head.saturating_add(4) {
            return Ok(None);
        }
        let (reason, status, detail) = if input.len() > limits.max_head {
            ("too_large", 413, "the headers are too long".to_owned())
        } else {
            (
                "no_end_of_headers",
                400,
                "no empty line ends the headers".to_owned(),
            )
        };
        return Err(refuse(input, fail(reason, status, detail), limits));
    };
    if head_end > limits.max_head {
        return Err(refuse(
            input,
            fail("too_large", 413, "the headers are too long"),
            limits,
        ));
    }
    let head = &input[..head_end];
    let rest = &input[head_end + 4..];
    let mut message = match parse_head(head, limits) {
        Ok(message) => message,
        Err((failure, partial)) => return Err(decide(failure, partial.map(|message| *message))),
    };
    let length = match content_length(&message) {
        Ok(length) => length,
        Err(failure) => return Err(decide(failure, Some(message))),
    };
    let body_length = match (length, transport) {
        (Some(length), _) if length > limits.max_body as u64 => {
            return Err(decide(
                fail(
                    "too_large",
                    413,
                    format!("a body of {length} bytes is over {}", limits.max_body),
                ),
                Some(message),
            ));
        }
        (Some(length), Transport::Datagram) => {
            let length = length as usize;
            if length > rest.len() {
                return Err(decide(
                    fail(
                        "content_length_mismatch",
                        400,
                        format!(
                            "Content-Length is {length} but the datagram holds {} bytes of body",
                            rest.len()
                        ),
                    ),
                    Some(message),
                ));
            }
            length
        }
        (None, Transport::Datagram) => {
            if rest.len() > limits.max_body {
                return Err(decide(
                    fail("too_large", 413, "the body is too large"),
                    Some(message),
                ));
            }
            rest.len()
        }
        (Some(length), Transport::Stream) => {
            let length = length as usize;
            if rest.len() < length {
                return Ok(None);
            }
            length
        }
        (None, Transport::Stream) => {
            return Err(decide(
                fail(
                    "content_length_missing",
                    400,
                    "Content-Length is mandatory on a stream transport",
                ),
                Some(message),
            ));
        }
    };
    message.body = &rest[..body_length];
    Ok(Some((message, skipped + head_end + 4 + body_length)))
}

fn leading_crlfs(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes[at..].starts_with(b"\r\n") {
        at += 2;
    }
    at
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// A failure of a message whose head could not be parsed at all: answered
/// only if enough of it reads as a request.
fn refuse<'a>(input: &'a [u8], failure: Failure, limits: &Limits) -> Malformed<'a> {
    // Read what can be read of the head (up to the limit) to see whether
    // a response can be built.
    let head_end = find(input, b"\r\n\r\n").unwrap_or(input.len().min(limits.max_head));
    let head = &input[..head_end.min(input.len())];
    let partial = match parse_head(head, limits) {
        Ok(message) => Some(message),
        Err((_, partial)) => partial.map(|message| *message),
    };
    decide(failure, partial)
}

/// Respond when the message is a request carrying what a response needs,
/// else drop.
fn decide(failure: Failure, message: Option<Message<'_>>) -> Malformed<'_> {
    let answerable = message
        .as_ref()
        .is_some_and(|message| message.is_request() && has_mandatory(message));
    Malformed {
        reason: failure.reason,
        detail: failure.detail,
        refusal: if answerable {
            Refusal::Respond(failure.status)
        } else {
            Refusal::Drop
        },
        request: if answerable {
            message.map(Box::new)
        } else {
            None
        },
    }
}

fn has_mandatory(message: &Message<'_>) -> bool {
    MANDATORY.iter().all(|name| message.header(name).is_some())
}

/// The start line and headers; on failure, the message as far as it was
/// read when its start line and headers could be (for the response).
fn parse_head<'a>(
    head: &'a [u8],
    limits: &Limits,
) -> Result<Message<'a>, (Failure, Option<Box<Message<'a>>>)> {
    let head = std::str::from_utf8(head)
        .map_err(|_| (fail("not_utf8", 400, "the headers are not UTF-8"), None))?;
    let mut lines = head.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let mut bad_line: Option<Failure> = None;
    let start = match start_line(first) {
        Ok(start) => start,
        Err(failure) => {
            // Answerable when only the Request-URI is at fault.
            let start = whitespace_in_request_uri(first).ok_or((failure, None))?;
            bad_line = Some(fail("bad_start_line", 400, "whitespace in the Request-URI"));
            start
        }
    };
    let mut headers: Vec<Header<'a>> = Vec::new();
    for line in lines {
        if line.contains(['\r', '\n']) {
            bad_line.get_or_insert(fail(
                "bare_line_break",
                400,
                "a bare CR or LF in the headers",
            ));
            continue;
        }
        if line.starts_with([' ', '\t']) {
            // Folding (RFC 3261 §7.3.1): continues the previous header.
            let Some(last) = headers.last_mut() else {
                bad_line.get_or_insert(fail(
                    "bad_header",
                    400,
                    "a continuation line before any header",
                ));
                continue;
            };
            let joined = format!("{} {}", last.value.trim_end(), line.trim());
            last.value = Cow::Owned(joined.trim().to_owned());
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            bad_line.get_or_insert(fail(
                "bad_header",
                400,
                format!("a header line without a colon: {:?}", truncate(line)),
            ));
            continue;
        };
        let name = name.trim_end_matches([' ', '\t']);
        if !is_token(name) {
            bad_line.get_or_insert(fail(
                "bad_header",
                400,
                format!("not a header name: {:?}", truncate(name)),
            ));
            continue;
        }
        headers.push(Header {
            name,
            value: Cow::Borrowed(value.trim_matches([' ', '\t'])),
        });
        if headers.len() > limits.max_headers {
            return Err((fail("too_large", 413, "too many headers"), None));
        }
    }
    let message = Message {
        start,
        headers,
        body: &[],
    };
    if let Some(failure) = bad_line {
        return Err((failure, Some(Box::new(message))));
    }
    if let StartLine::Request { version, .. } = &message.start
        && *version != Version::SIP_2_0
    {
        return Err((
            fail(
                "version",
                505,
                format!("SIP/{}.{} is not supported", version.major, version.minor),
            ),
            Some(Box::new(message)),
        ));
    }
    if let StartLine::Response { version, .. } = &message.start
        && *version != Version::SIP_2_0
    {
        return Err((fail("version", 505, "not SIP/2.0"), None));
    }
    if let Err(failure) = check_headers(&message) {
        return Err((failure, Some(Box::new(message))));
    }
    Ok(message)
}

fn truncate(text: &str) -> &str {
    let mut end = text.len().min(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn start_line(line: &str) -> Result<StartLine<'_>, Failure> {
    let bad = |detail: &str| fail("bad_start_line", 400, detail.to_owned());
    // Bytes, not `line[..4]`: a multi-byte character may straddle byte 4.
    if line
        .as_bytes()
        .get(..4)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case(b"SIP/"))
    {
        let mut parts = line.splitn(3, ' ');
        let version =
            version(parts.next().unwrap_or_default()).ok_or_else(|| bad("not a SIP version"))?;
        let code = parts.next().ok_or_else(|| bad("no status code"))?;
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("a status code is three digits"));
        }
        let code: u16 = code.parse().map_err(|_| bad("not a status code"))?;
        if !(100..=699).contains(&code) {
            return Err(bad("a status code is 100 to 699"));
        }
        let reason = parts.next().ok_or_else(|| bad("no reason phrase"))?;
        // The head is split at CRLFs only: a bare CR or LF left in the
        // reason phrase (§25.1 allows neither) would ride along with it.
        if reason.contains(['\r', '\n']) {
            return Err(bad("a bare CR or LF in the reason phrase"));
        }
        return Ok(StartLine::Response {
            version,
            code,
            reason,
        });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version_text] = parts.as_slice() else {
        return Err(bad(
            "a request line is a method, a Request-URI and the version, separated by single spaces",
        ));
    };
    if !is_token(method) {
        return Err(bad("the method is not a token"));
    }
    if !crate::uri::is_absolute_uri(uri) {
        return Err(bad("the Request-URI is not an absolute URI"));
    }
    let version = version(version_text).ok_or_else(|| bad("not a SIP version"))?;
    Ok(StartLine::Request {
        method: Method::from_token(method),
        uri,
        version,
    })
}

/// A request line whose method and version are clear but whose
/// Request-URI holds whitespace (RFC 4475's lwsruri: `sip:user@example.com;
/// lr`), read as such so the request can be answered 400. Extra spaces
/// between the elements (lwsstart, trws) are not this case.
fn whitespace_in_request_uri(line: &str) -> Option<StartLine<'_>> {
    let (method, rest) = line.split_once(' ')?;
    let (uri, version_text) = rest.rsplit_once(' ')?;
    let first_word = uri.split([' ', '\t']).next().unwrap_or_default();
    let shaped = is_token(method)
        && uri.trim_matches([' ', '\t']) == uri
        && crate::uri::is_absolute_uri(first_word)
        && first_word != uri;
    shaped.then_some(StartLine::Request {
        method: Method::from_token(method),
        uri,
        version: version(version_text)?,
    })
}

/// `"SIP" "/" 1*DIGIT "." 1*DIGIT` (the literal case-insensitive).
fn version(text: &str) -> Option<Version> {
    let numbers = text
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("SIP/"))
        .map(|_| &text[4..])?;
    let (major, minor) = numbers.split_once('.')?;
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(major) || !digits(minor) {
        return None;
    }
    Some(Version {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
    })
}

/// The mandatory headers, once each where only one is allowed, CSeq and
/// Max-Forwards in range, and every Via, From and To well-formed (what
/// the transaction and dialog layers read).
fn check_headers(message: &Message<'_>) -> Result<(), Failure> {
    for name in MANDATORY {
        if message.header(name).is_none() {
            return Err(fail(
                "missing_header",
                400,
                format!("the {name} header is missing"),
            ));
        }
    }
    for name in SINGLE {
        if message.headers_named(name).count() > 1 {
            return Err(fail(
                "repeated_header",
                400,
                format!("the {name} header appears more than once"),
            ));
        }
    }
    let cseq = message
        .header("CSeq")
        .map(|header| header.value.as_ref())
        .unwrap_or_default();
    let (number, method) = cseq
        .split_once([' ', '\t'])
        .map(|(number, method)| (number, method.trim_start()))
        .unwrap_or((cseq, ""));
    let number_ok = digits_below(number, 1 << 31);
    if !number_ok || !is_token(method) {
        return Err(fail(
            "bad_cseq",
            400,
            format!("CSeq {cseq:?} is not a number below 2^31 and a method"),
        ));
    }
    if let Some(request_method) = message.method()
        && method != request_method.as_str()
    {
        return Err(fail(
            "bad_cseq",
            400,
            format!(
                "the CSeq method {method} is not the request's {}",
                request_method.as_str()
            ),
        ));
    }
    if let Some(header) = message.header("Max-Forwards") {
        let value = header.value.as_ref();
        if !digits_below(value, 256) {
            return Err(fail(
                "bad_max_forwards",
                400,
                format!("Max-Forwards {value:?} is not 0 to 255"),
            ));
        }
    }
    for header in message.headers_named("Via") {
        values::parse_via(&header.value).map_err(|error| {
            fail(
                "bad_via",
                400,
                format!("Via {:?}: {error}", truncate(&header.value)),
            )
        })?;
    }
    for (name, reason) in [("From", "bad_from"), ("To", "bad_to")] {
        let value = message.header(name).map(|header| &header.value);
        if let Some(Err(error)) = value.map(|value| values::parse_name_addr(value)) {
            return Err(fail(reason, 400, format!("{name}: {error}")));
        }
    }
    Ok(())
}

/// Whether `text` is `1*DIGIT` (leading zeros allowed: RFC 4475's wsinv
/// sends `0068`) with a value below `limit`.
fn digits_below(text: &str, limit: u64) -> bool {
    let significant = text.trim_start_matches('0');
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && significant.len() <= 19
        && significant.parse::<u64>().unwrap_or(0) < limit
}

/// The Content-Length, if given: digits only (a sign, a fraction or an
/// empty value is a 400; a value too large to represent too).
fn content_length(message: &Message<'_>) -> Result<Option<u64>, Failure> {
    let Some(header) = message.header("Content-Length") else {
        return Ok(None);
    };
    let value = header.value.as_ref();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(fail(
            "bad_content_length",
            400,
            format!("Content-Length {:?} is not a number", truncate(value)),
        ));
    }
    value.parse::<u64>().map(Some).map_err(|_| {
        fail(
            "bad_content_length",
            400,
            "Content-Length is too large to be a length",
        )
    })
}
