//! The grammar of the header values a transaction and a dialog need (RFC
//! 3261 §25.1): Via (`sent-protocol sent-by *(; via-params)`, comma
//! lists) and the name-addr / addr-spec forms of From, To and Contact
//! with their parameters (`tag`, …). Zero-copy: every part borrows from
//! the value.

use crate::headers::{is_token, is_token_char};

/// A generic parameter: `name [= value]` (value unquoted when it was a
/// quoted string; escapes kept).
pub type Param<'a> = (&'a str, Option<&'a str>);

/// One `via-parm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via<'a> {
    /// `SIP/2.0` as sent (name and version).
    pub protocol: (&'a str, &'a str),
    /// `UDP`, `TCP`, `TLS`, `WS`, … as sent.
    pub transport: &'a str,
    /// A host name, an IPv4 address or a bracketed IPv6 reference.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Vec<Param<'a>>,
}

impl<'a> Via<'a> {
    /// The parameter `name` (case-insensitive), if present: `Some(None)`
    /// for one without a value.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        param(&self.params, name)
    }

    /// The transaction's branch (RFC 3261 §8.1.1.7).
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }
}

/// From, To, Contact (one entry), Route and Record-Route entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr<'a> {
    /// The display name, without its quotes when it was quoted.
    pub display: Option<&'a str>,
    /// The URI, without the angle brackets.
    pub uri: &'a str,
    /// The header's parameters (after the URI), `tag` among them.
    pub params: Vec<Param<'a>>,
}

impl<'a> NameAddr<'a> {
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        param(&self.params, name)
    }

    /// The dialog tag (RFC 3261 §19.3).
    pub fn tag(&self) -> Option<&'a str> {
        self.param("tag").flatten()
    }
}

fn param<'a>(params: &[Param<'a>], name: &str) -> Option<Option<&'a str>> {
    params
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .map(|(_, value)| *value)
}

/// Why a value does not parse (for a 400's reason).
pub type Error = &'static str;

/// Calls `visit` with the position of every byte of `text` outside
/// quoted strings (escapes inside them honoured), and whether it is
/// inside angle brackets. Fails on an unterminated quote or bracket.
fn scan_outside_quotes(text: &str, mut visit: impl FnMut(usize, u8, bool)) -> Result<(), Error> {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (at, byte) in text.bytes().enumerate() {
        if quoted {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => quoted = true,
            b'<' => angle = true,
            b'>' => angle = false,
            _ => {}
        }
        visit(at, byte, angle);
    }
    if quoted || angle {
        return Err("an unterminated quoted string or angle bracket");
    }
    Ok(())
}

/// Splits `text` at each `separator` outside quoted strings (and, with
/// `outside_angles`, outside angle brackets).
fn split_outside(text: &str, separator: u8, outside_angles: bool) -> Result<Vec<&str>, Error> {
    let mut parts = Vec::new();
    let mut start = 0;
    scan_outside_quotes(text, |at, byte, angle| {
        if byte == separator && !(outside_angles && angle) {
            parts.push(&text[start..at]);
            start = at + 1;
        }
    })?;
    parts.push(&text[start..]);
    Ok(parts)
}

/// Splits `value` at the commas that are outside quoted strings and angle
/// brackets (the list form of Via, Contact, Route, …).
pub fn split_list(value: &str) -> Result<Vec<&str>, Error> {
    let parts: Vec<&str> = split_outside(value, b',', true)?
        .into_iter()
        .map(|part| part.trim_matches([' ', '\t']))
        .collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err("an empty element in a list");
    }
    Ok(parts)
}

/// Every `via-parm` of a Via header value.
pub fn parse_via(value: &str) -> Result<Vec<Via<'_>>, Error> {
    split_list(value)?.into_iter().map(via_parm).collect()
}

fn via_parm(text: &str) -> Result<Via<'_>, Error> {
    let bad = "not a Via: `SIP/2.0/<transport> <host>[:<port>]`";
    // sent-protocol: three tokens separated by "/" with optional spaces.
    let mut rest = text;
    let mut fields = [""; 3];
    for (index, field) in fields.iter_mut().enumerate() {
        rest = rest.trim_start_matches([' ', '\t']);
        let end = rest
            .bytes()
            .position(|byte| !is_token_char(byte))
            .unwrap_or(rest.len());
        *field = &rest[..end];
        if !is_token(field) {
            return Err(bad);
        }
        rest = rest[end..].trim_start_matches([' ', '\t']);
        if index < 2 {
            rest = rest.strip_prefix('/').ok_or(bad)?;
        }
    }
    let [name, version, transport] = fields;
    // LWS, then sent-by up to the first ";".
    let (sent_by, params) = match rest.split_once(';') {
        Some((sent_by, params)) => (sent_by, Some(params)),
        None => (rest, None),
    };
    let (host, port) = crate::uri::host_port(sent_by.trim_matches([' ', '\t']))?;
    Ok(Via {
        protocol: (name, version),
        transport,
        host,
        port,
        params: match params {
            Some(params) => parse_params(params)?,
            None => Vec::new(),
        },
    })
}

/// `*( ";" generic-param )` after the leading ";" was taken.
fn parse_params(text: &str) -> Result<Vec<Param<'_>>, Error> {
    let mut params = Vec::new();
    for part in split_outside(text, b';', false)? {
        let part = part.trim_matches([' ', '\t']);
        let (name, value) = match part.split_once('=') {
            Some((name, value)) => (
                name.trim_end_matches([' ', '\t']),
                Some(value.trim_start_matches([' ', '\t'])),
            ),
            None => (part, None),
        };
        if !is_token(name) {
            return Err("a parameter name is a token");
        }
        let value = match value {
            Some(value) if value.len() >= 2 && value.starts_with('"') && value.ends_with('"') => {
                Some(&value[1..value.len() - 1])
            }
            Some("") => return Err("a parameter with `=` needs a value"),
            Some(value) if value.contains([' ', '\t', '"']) => {
                return Err("a parameter value is a token, a host or a quoted string");
            }
            other => other,
        };
        params.push((name, value));
    }
    Ok(params)
}

/// A From, To or single Contact value: `[display-name] <URI> *(;param)`
/// or `URI *(;param)` (in the second form, the parameters are the
/// header's, never the URI's: RFC 3261 §20.10).
pub fn parse_name_addr(value: &str) -> Result<NameAddr<'_>, Error> {
    let value = value.trim_matches([' ', '\t']);
    let mut first_angle = None;
    // An unterminated `"` or `<` is refused here.
    scan_outside_quotes(value, |at, byte, _| {
        if byte == b'<' && first_angle.is_none() {
            first_angle = Some(at);
        }
    })?;
    let (display, uri, after) = if let Some(open) = first_angle {
        let display = value[..open].trim_matches([' ', '\t']);
        let display = if display.is_empty() {
            None
        } else if display.len() >= 2 && display.starts_with('"') && display.ends_with('"') {
            Some(&display[1..display.len() - 1])
        } else if display
            .split([' ', '\t'])
            .filter(|word| !word.is_empty())
            .all(is_token)
        {
            Some(display)
        } else {
            return Err("a display name is tokens or a quoted string");
        };
        let close = value[open..].find('>').ok_or("an unterminated `<`")? + open;
        (display, &value[open + 1..close], &value[close + 1..])
    } else {
        match value.find(';') {
            Some(at) => (
                None,
                value[..at].trim_end_matches([' ', '\t']),
                &value[at..],
            ),
            None => (None, value, ""),
        }
    };
    if !crate::uri::is_absolute_uri(uri) {
        return Err("not a URI");
    }
    let after = after.trim_start_matches([' ', '\t']);
    let params = match after {
        "" => Vec::new(),
        rest => parse_params(rest.strip_prefix(';').ok_or("parameters start with `;`")?)?,
    };
    Ok(NameAddr {
        display,
        uri,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_lists_with_spaces_around_slashes_and_parameters() {
        let vias = parse_via(
            "SIP / 2.0 / UDP first.example.com:4000;ttl=16;maddr=224.2.0.1;branch=z9hG4bKa7c6a8dlze.1, SIP/2.0/TCP [2001:db8::9]:5061;received=192.0.2.7;rport;branch=\"z9hG4bK-q\"",
        )
        .unwrap();
        assert_eq!(vias.len(), 2);
        assert_eq!(vias[0].protocol, ("SIP", "2.0"));
        assert_eq!(vias[0].transport, "UDP");
        assert_eq!(
            (vias[0].host, vias[0].port),
            ("first.example.com", Some(4000))
        );
        assert_eq!(vias[0].branch(), Some("z9hG4bKa7c6a8dlze.1"));
        assert_eq!(vias[0].param("TTL"), Some(Some("16")));
        assert_eq!((vias[1].host, vias[1].port), ("[2001:db8::9]", Some(5061)));
        assert_eq!(vias[1].param("rport"), Some(None));
        assert_eq!(vias[1].branch(), Some("z9hG4bK-q"));
    }

    #[test]
    fn a_malformed_via_is_refused() {
        for value in [
            "",
            "SIP/2.0 host",
            "SIP/2.0/UDP",
            "SIP/2.0/UDP host:99999",
            "SIP/2.0/UDP host:port",
            "SIP/2.0/UDP ho st",
            "SIP/2.0/UDP host;branch=",
            "SIP/2.0/UDP host,,SIP/2.0/UDP other",
            "SIP/2.0/UDP host;x=\"open",
        ] {
            assert!(parse_via(value).is_err(), "{value:?}");
        }
    }

    #[test]
    fn name_addrs_with_quoted_names_tags_and_bare_uris() {
        let from =
            parse_name_addr("\"J Rosenberg \\\\\\\"\"       <sip:jdrosen@example.com>;tag=98asjd8")
                .unwrap();
        assert_eq!(from.display, Some("J Rosenberg \\\\\\\""));
        assert_eq!(from.uri, "sip:jdrosen@example.com");
        assert_eq!(from.tag(), Some("98asjd8"));

        let to =
            parse_name_addr("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(to.display, None);
        assert_eq!(to.uri, "sip:vivekg@chair-dnrc.example.com");
        assert_eq!(to.tag(), Some("1918181833n"));

        let contact =
            parse_name_addr("Agent One <sip:agent1@192.0.2.4;transport=tcp>;expires=60").unwrap();
        assert_eq!(contact.display, Some("Agent One"));
        assert_eq!(contact.uri, "sip:agent1@192.0.2.4;transport=tcp");
        assert_eq!(contact.param("expires"), Some(Some("60")));

        // A comma inside a quoted name or a URI does not split a list.
        let list = split_list("\"Doe, J\" <sip:a@b>, <sip:c@d;x=1,2>").unwrap();
        assert_eq!(list, vec!["\"Doe, J\" <sip:a@b>", "<sip:c@d;x=1,2>"]);
    }

    #[test]
    fn a_malformed_name_addr_is_refused() {
        for value in [
            "<sip:unterminated@example.com",
            "\"open quote <sip:a@b>",
            "no-uri-here",
            "<sip:a@b> tag=1",
            "Bad,Name <sip:a@b>",
        ] {
            assert!(parse_name_addr(value).is_err(), "{value:?}");
        }
    }
}
