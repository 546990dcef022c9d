//! The strict reader of RFC 4566 §5's grammar.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{
    AddressType, Attribute, Connection, Direction, Line, Media, Origin, Rtcp, Rtpmap,
    SessionDescription,
};
use crate::MediaError;

/// Line types allowed at session level after `s=` (RFC 4566 §5).
const SESSION_TYPES: &str = "iuepcbtrzka";
/// Line types allowed in a media section (RFC 4566 §5).
const MEDIA_TYPES: &str = "icbka";

/// ICE attributes (RFC 8839 §5), dropped when the relay anchors media.
const ICE_ATTRIBUTES: &[&str] = &[
    "candidate",
    "remote-candidates",
    "end-of-candidates",
    "ice-lite",
    "ice-mismatch",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-pacing",
];

pub(super) fn parse(text: &[u8]) -> Result<SessionDescription, MediaError> {
    let text = std::str::from_utf8(text).map_err(|e| {
        let line = text[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        MediaError::sdp(line, "not UTF-8 text")
    })?;
    // Lines end in CRLF; a bare LF is accepted (RFC 4566 §5 asks parsers to).
    let mut raw: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    while raw.last() == Some(&"") {
        raw.pop();
    }
    let mut lines = raw.into_iter().enumerate().map(|(i, l)| (i + 1, l));

    let mut next = |expected: char, what: &'static str| -> Result<(usize, String), MediaError> {
        let (number, line) = lines.next().ok_or(MediaError::SdpIncomplete(what))?;
        let (kind, value) = split_line(number, line)?;
        if kind != expected {
            return Err(MediaError::sdp(
                number,
                format!("expected {expected}= ({what}), found {kind}="),
            ));
        }
        Ok((number, value.to_owned()))
    };
    let (number, version) = next('v', "no v= line")?;
    if version != "0" {
        return Err(MediaError::sdp(
            number,
            format!("version {version:?}, not 0"),
        ));
    }
    let (number, origin) = next('o', "no o= line")?;
    let origin = parse_origin(number, &origin)?;
    let (_, session_name) = next('s', "no s= line")?;

    let mut sdp = SessionDescription {
        origin,
        session_name,
        lines: Vec::new(),
        media: Vec::new(),
    };
    let mut has_timing = false;
    let mut current: Option<(usize, Media)> = None;
    let mut media_starts = Vec::new();
    for (number, line) in lines {
        let (kind, value) = split_line(number, line)?;
        if kind == 'm' {
            if let Some((_, m)) = current.take() {
                sdp.media.push(m);
            }
            current = Some((number, parse_media(number, value)?));
            media_starts.push(number);
            continue;
        }
        let (allowed, where_) = match current {
            Some(_) => (MEDIA_TYPES, "a media section"),
            None => (SESSION_TYPES, "the session section"),
        };
        if !allowed.contains(kind) {
            let reason = if "vosm".contains(kind) || SESSION_TYPES.contains(kind) {
                format!("{kind}= is not allowed in {where_}")
            } else {
                format!("unknown line type {kind}=")
            };
            return Err(MediaError::sdp(number, reason));
        }
        let parsed = match kind {
            'c' => Line::Connection(parse_connection(number, value)?),
            'a' => Line::Attribute(parse_attribute(number, value)?),
            other => {
                if other == 't' {
                    has_timing = true;
                }
                Line::Other {
                    kind: other,
                    value: value.to_owned(),
                }
            }
        };
        let section = match current.as_mut() {
            Some((_, m)) => &mut m.lines,
            None => &mut sdp.lines,
        };
        if matches!(parsed, Line::Connection(_))
            && section.iter().any(|l| matches!(l, Line::Connection(_)))
        {
            return Err(MediaError::sdp(
                number,
                "a second c= line in the same section",
            ));
        }
        section.push(parsed);
    }
    if let Some((_, m)) = current.take() {
        sdp.media.push(m);
    }
    if !has_timing {
        return Err(MediaError::SdpIncomplete("no t= line"));
    }
    let session_connection = sdp.connection().is_some();
    for (media, number) in sdp.media.iter().zip(media_starts) {
        if !media.is_rejected() && !session_connection && media.connection().is_none() {
            return Err(MediaError::sdp(
                number,
                "media section has no c= line and the session has none",
            ));
        }
    }
    Ok(sdp)
}

fn split_line(number: usize, line: &str) -> Result<(char, &str), MediaError> {
    let mut chars = line.chars();
    match (chars.next(), chars.next()) {
        (Some(kind @ 'a'..='z'), Some('=')) => {
            let value = &line[2..];
            if value.contains(['\r', '\0']) {
                return Err(MediaError::sdp(number, "a CR or NUL inside the line"));
            }
            Ok((kind, value))
        }
        _ => Err(MediaError::sdp(
            number,
            format!("not a <type>=<value> line: {:?}", truncate(line)),
        )),
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(40) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

fn fields<'a, const N: usize>(
    number: usize,
    value: &'a str,
    what: &str,
) -> Result<[&'a str; N], MediaError> {
    let parts: Vec<&str> = value.split(' ').collect();
    parts.try_into().map_err(|parts: Vec<&str>| {
        MediaError::sdp(
            number,
            format!(
                "{what} has {} fields separated by single spaces, not {N}",
                parts.len()
            ),
        )
    })
}

fn parse_origin(number: usize, value: &str) -> Result<Origin, MediaError> {
    let [username, id, version, net, addr_type, address] = fields::<6>(number, value, "o=")?;
    let number_field = |text: &str, what: &str| {
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<u64>().map_err(|_| {
                MediaError::sdp(number, format!("o= {what} {text} does not fit 64 bits"))
            })
        } else {
            Err(MediaError::sdp(
                number,
                format!("o= {what} {text:?} is not a number"),
            ))
        }
    };
    let session_id = number_field(id, "session id")?;
    let session_version = number_field(version, "session version")?;
    let address_type = network(number, "o=", net, addr_type)?;
    if username.is_empty() || address.is_empty() {
        return Err(MediaError::sdp(number, "o= has an empty field"));
    }
    Ok(Origin {
        username: username.to_owned(),
        session_id,
        session_version,
        address_type,
        address: address.to_owned(),
    })
}

fn network(
    number: usize,
    what: &str,
    net: &str,
    addr_type: &str,
) -> Result<AddressType, MediaError> {
    if net != "IN" {
        return Err(MediaError::sdp(
            number,
            format!("{what} network type {net:?} is not IN"),
        ));
    }
    match addr_type {
        "IP4" => Ok(AddressType::Ip4),
        "IP6" => Ok(AddressType::Ip6),
        other => Err(MediaError::sdp(
            number,
            format!("{what} address type {other:?} is not IP4 or IP6"),
        )),
    }
}

fn parse_connection(number: usize, value: &str) -> Result<Connection, MediaError> {
    let [net, addr_type, address] = fields::<3>(number, value, "c=")?;
    connection(number, "c=", net, addr_type, address)
}

fn connection(
    number: usize,
    what: &str,
    net: &str,
    addr_type: &str,
    address: &str,
) -> Result<Connection, MediaError> {
    let address_type = network(number, what, net, addr_type)?;
    let base = address.split('/').next().unwrap_or_default();
    let valid = match address_type {
        AddressType::Ip4 => base.parse::<Ipv4Addr>().is_ok() || is_host_name(base),
        AddressType::Ip6 => base.parse::<Ipv6Addr>().is_ok() || is_host_name(base),
    };
    let suffix_ok = address
        .split('/')
        .skip(1)
        .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if !valid || !suffix_ok {
        return Err(MediaError::sdp(
            number,
            format!("{what} address {address:?} is not an {address_type} address"),
        ));
    }
    Ok(Connection {
        address_type,
        address: address.to_owned(),
    })
}

/// A fully qualified domain name as RFC 4566 §9 allows (letters, digits,
/// hyphens and dots; not all digits and dots, which would be a bad IPv4).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && s.bytes().any(|b| b.is_ascii_alphabetic())
        && s.parse::<IpAddr>().is_err()
}

fn parse_media(number: usize, value: &str) -> Result<Media, MediaError> {
    let mut parts = value.split(' ');
    let kind = parts.next().unwrap_or_default();
    let port_field = parts.next().unwrap_or_default();
    let protocol = parts.next().unwrap_or_default();
    let formats: Vec<String> = parts.map(str::to_owned).collect();
    if kind.is_empty()
        || protocol.is_empty()
        || formats.is_empty()
        || formats.iter().any(String::is_empty)
    {
        return Err(MediaError::sdp(
            number,
            "m= needs <media> <port> <proto> <fmt> ..., separated by single spaces",
        ));
    }
    let (port, count) = match port_field.split_once('/') {
        Some((p, c)) => (p, Some(c)),
        None => (port_field, None),
    };
    let port: u16 = parse_number(port)
        .ok_or_else(|| MediaError::sdp(number, format!("m= port {port:?} is not a port number")))?;
    let port_count = count
        .map(|c| {
            parse_number::<u16>(c).filter(|&n| n > 0).ok_or_else(|| {
                MediaError::sdp(number, format!("m= port count {c:?} is not a number"))
            })
        })
        .transpose()?;
    let not_a_payload_type = |f: &&String| parse_number::<u8>(f).is_none_or(|pt| pt > 127);
    if let Some(bad) = formats.iter().find(not_a_payload_type)
        && protocol.contains("RTP/")
    {
        return Err(MediaError::sdp(
            number,
            format!("m= format {bad:?} is not an RTP payload type (0-127)"),
        ));
    }
    Ok(Media {
        kind: kind.to_owned(),
        port,
        port_count,
        protocol: protocol.to_owned(),
        formats,
        lines: Vec::new(),
    })
}

/// A decimal number of digits only (no sign, no spaces).
fn parse_number<T: std::str::FromStr>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_attribute(number: usize, value: &str) -> Result<Attribute, MediaError> {
    let (name, value) = match value.split_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (value, None),
    };
    if name.is_empty() || name.contains(' ') {
        return Err(MediaError::sdp(
            number,
            format!("a= attribute name {name:?} is not a token"),
        ));
    }
    let need = |what: &str| {
        value.ok_or_else(|| MediaError::sdp(number, format!("a={name} needs a value ({what})")))
    };
    let attribute = match name {
        "rtpmap" => Attribute::Rtpmap(parse_rtpmap(
            number,
            need("<payload type> <encoding>/<clock rate>")?,
        )?),
        "fmtp" => {
            let v = need("<format> <parameters>")?;
            let (format, parameters) = v
                .split_once(' ')
                .ok_or_else(|| MediaError::sdp(number, "a=fmtp needs <format> <parameters>"))?;
            if format.is_empty() {
                return Err(MediaError::sdp(number, "a=fmtp has an empty format"));
            }
            Attribute::Fmtp {
                format: format.to_owned(),
                parameters: parameters.to_owned(),
            }
        }
        "ptime" => {
            let v = need("milliseconds")?;
            Attribute::Ptime(parse_number(v).filter(|&ms: &u32| ms > 0).ok_or_else(|| {
                MediaError::sdp(
                    number,
                    format!("a=ptime {v:?} is not a whole number of milliseconds"),
                )
            })?)
        }
        "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
            if value.is_some() {
                return Err(MediaError::sdp(number, format!("a={name} takes no value")));
            }
            Attribute::Direction(match name {
                "sendrecv" => Direction::SendRecv,
                "sendonly" => Direction::SendOnly,
                "recvonly" => Direction::RecvOnly,
                _ => Direction::Inactive,
            })
        }
        "rtcp" => Attribute::Rtcp(parse_rtcp(
            number,
            need("<port> [IN <addrtype> <address>]")?,
        )?),
        "rtcp-mux" => Attribute::RtcpMux,
        _ if ICE_ATTRIBUTES.contains(&name) => Attribute::Ice {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        },
        _ => Attribute::Other {
            name: name.to_owned(),
            value: value.map(str::to_owned),
        },
    };
    Ok(attribute)
}

fn parse_rtpmap(number: usize, value: &str) -> Result<Rtpmap, MediaError> {
    let bad = |why: &str| MediaError::sdp(number, format!("a=rtpmap:{value}: {why}"));
    let (pt, rest) = value
        .split_once(' ')
        .ok_or_else(|| bad("needs <payload type> <encoding>/<clock rate>"))?;
    let payload_type = parse_number::<u8>(pt)
        .filter(|&pt| pt <= 127)
        .ok_or_else(|| bad("payload type is not 0-127"))?;
    let mut parts = rest.split('/');
    let encoding = parts.next().unwrap_or_default();
    if encoding.is_empty()
        || !encoding
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(bad("encoding name is not a token"));
    }
    let clock_rate = parts
        .next()
        .and_then(parse_number::<u32>)
        .filter(|&r| r > 0)
        .ok_or_else(|| bad("clock rate is not a positive number"))?;
    let channels = parts
        .next()
        .map(|c| {
            parse_number::<u16>(c)
                .filter(|&n| n > 0)
                .ok_or_else(|| bad("channel count is not a positive number"))
        })
        .transpose()?;
    if parts.next().is_some() {
        return Err(bad("too many /-separated fields"));
    }
    Ok(Rtpmap {
        payload_type,
        encoding: encoding.to_owned(),
        clock_rate,
        channels,
    })
}

fn parse_rtcp(number: usize, value: &str) -> Result<Rtcp, MediaError> {
    let mut parts = value.split(' ');
    let port = parts.next().unwrap_or_default();
    let port = parse_number::<u16>(port).ok_or_else(|| {
        MediaError::sdp(number, format!("a=rtcp port {port:?} is not a port number"))
    })?;
    let rest: Vec<&str> = parts.collect();
    let connection = match rest.as_slice() {
        [] => None,
        [net, addr_type, address] => Some(connection(number, "a=rtcp", net, addr_type, address)?),
        _ => {
            return Err(MediaError::sdp(
                number,
                "a=rtcp needs <port> [IN <addrtype> <address>]",
            ));
        }
    };
    Ok(Rtcp { port, connection })
}
