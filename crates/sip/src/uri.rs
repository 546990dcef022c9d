//! SIP and SIPS URIs (RFC 3261 §19.1, grammar §25.1): user info, host,
//! port, parameters and headers, borrowed as received (escapes kept;
//! [`unescape`] decodes them where a value is compared or shown).

use std::borrow::Cow;

use crate::values::{Error, Param};

/// A `sip:` or `sips:` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri<'a> {
    /// `sips:`.
    pub secure: bool,
    /// The user part (a name or a telephone-subscriber), escapes kept.
    pub user: Option<&'a str>,
    pub password: Option<&'a str>,
    /// A host name, an IPv4 address or a bracketed IPv6 reference.
    pub host: &'a str,
    pub port: Option<u16>,
    pub params: Vec<Param<'a>>,
    /// `?name=value&…`, escapes kept.
    pub headers: Vec<(&'a str, &'a str)>,
}

impl<'a> SipUri<'a> {
    /// The parameter `name` (case-insensitive, escapes decoded: `%6C%72`
    /// is `lr`): `Some(None)` for one without a value (`;lr`). The value
    /// keeps its escapes.
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        self.params
            .iter()
            .find(|(key, _)| unescape(key).eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    }
}

/// Decodes `%XX` escapes (checked by the parser); borrows when there are
/// none. Bytes that do not form UTF-8 are replaced.
pub fn unescape(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let Some(byte) = text
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            at += 3;
            continue;
        }
        out.push(bytes[at]);
        at += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// Whether every `%` of `text` starts a two-hex-digit escape, and no
/// byte is whitespace, a control, a quote or an angle bracket.
fn well_escaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        let byte = bytes[at];
        if byte == b'%' {
            let hex = bytes.get(at + 1..at + 3);
            if !hex.is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)) {
                return false;
            }
            at += 3;
            continue;
        }
        if byte <= b' ' || byte >= 0x7f || b"\"<>\\^`{|}".contains(&byte) {
            return false;
        }
        at += 1;
    }
    true
}

/// An absolute URI's shape (RFC 3986 scheme, then `:` and something):
/// what a Request-URI or a name-addr's URI must be whatever its scheme;
/// no whitespace or controls.
pub(crate) fn is_absolute_uri(text: &str) -> bool {
    let Some((scheme, rest)) = text.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        && !rest.is_empty()
        && !text.bytes().any(|b| b <= b' ' || b == 0x7f)
}

/// Parses a `sip:` or `sips:` URI (the scheme in any case).
pub fn parse_sip_uri(text: &str) -> Result<SipUri<'_>, Error> {
    let (scheme, rest) = text.split_once(':').ok_or("not a URI")?;
    let secure = if scheme.eq_ignore_ascii_case("sips") {
        true
    } else if scheme.eq_ignore_ascii_case("sip") {
        false
    } else {
        return Err("not a sip: or sips: URI");
    };
    // The user part may hold `?` (user-unreserved) but not `@`, and no `@`
    // may follow it unescaped: split at `@` first (RFC 4475's intmeth).
    let (user, password, after_userinfo) = match rest.matches('@').count() {
        0 => (None, None, rest),
        1 => {
            let (userinfo, after) = rest.split_once('@').unwrap_or_default();
            let (user, password) = match userinfo.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (userinfo, None),
            };
            if user.is_empty() || !well_escaped(user) {
                return Err("a malformed user part");
            }
            if password.is_some_and(|password| !well_escaped(password)) {
                return Err("a malformed password");
            }
            (Some(user), password, after)
        }
        _ => return Err("an unescaped `@` in the user part"),
    };
    let (host_and_params, headers_text) = match after_userinfo.split_once('?') {
        Some((before, headers)) => (before, Some(headers)),
        None => (after_userinfo, None),
    };
    let (hostport, params_text) = match host_and_params.split_once(';') {
        Some((hostport, params)) => (hostport, Some(params)),
        None => (host_and_params, None),
    };
    let (host, port) = host_port(hostport)?;
    let mut params = Vec::new();
    if let Some(params_text) = params_text {
        for param in params_text.split(';') {
            let (name, value) = match param.split_once('=') {
                Some((name, value)) => (name, Some(value)),
                None => (param, None),
            };
            if name.is_empty()
                || !well_escaped(name)
                || value.is_some_and(|v| v.is_empty() || !well_escaped(v))
            {
                return Err("a malformed URI parameter");
            }
            params.push((name, value));
        }
    }
    let mut headers = Vec::new();
    if let Some(headers_text) = headers_text {
        for header in headers_text.split('&') {
            let (name, value) = header.split_once('=').ok_or("a URI header is name=value")?;
            if name.is_empty() || !well_escaped(name) || !well_escaped(value) {
                return Err("a malformed URI header");
            }
            headers.push((name, value));
        }
    }
    Ok(SipUri {
        secure,
        user,
        password,
        host,
        port,
        params,
        headers,
    })
}

/// `host [":" port]`: a host name (labels of letters, digits and inner
/// hyphens), an IPv4 address or a bracketed IPv6 reference, and a port of
/// 0 to 65535.
pub(crate) fn host_port(text: &str) -> Result<(&str, Option<u16>), Error> {
    let bad = "a malformed host or port";
    let (host, port) = if text.starts_with('[') {
        let end = text.find(']').ok_or(bad)? + 1;
        let inside = &text[1..end - 1];
        if inside.is_empty()
            || !inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err(bad);
        }
        match &text[end..] {
            "" => (&text[..end], None),
            rest => (&text[..end], Some(rest.strip_prefix(':').ok_or(bad)?)),
        }
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    let labels_ok = host.starts_with('[')
        || (!host.is_empty()
            && host.split('.').enumerate().all(|(index, label)| {
                // A trailing dot (a fully qualified name) is allowed.
                (label.is_empty() && index > 0 && host.ends_with('.'))
                    || (!label.is_empty()
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            }));
    if !labels_ok {
        return Err(bad);
    }
    let port = match port {
        None => None,
        Some(port)
            if !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            Some(port.parse::<u16>().map_err(|_| bad)?)
        }
        Some(_) => return Err(bad),
    };
    Ok((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_of_a_sip_uri_is_read_in_place() {
        let uri = parse_sip_uri(
            "SIPS:%61lice;ext=12:secret@[2001:db8::10]:5061;transport=tls;lr;maddr=239.255.255.1?Subject=hi%20there&Priority=urgent",
        )
        .unwrap();
        assert!(uri.secure);
        assert_eq!(uri.user, Some("%61lice;ext=12"));
        assert_eq!(unescape(uri.user.unwrap()), "alice;ext=12");
        assert_eq!(uri.password, Some("secret"));
        assert_eq!((uri.host, uri.port), ("[2001:db8::10]", Some(5061)));
        assert_eq!(uri.param("TRANSPORT"), Some(Some("tls")));
        assert_eq!(uri.param("lr"), Some(None));
        assert_eq!(
            uri.headers,
            vec![("Subject", "hi%20there"), ("Priority", "urgent")]
        );

        let bare = parse_sip_uri("sip:carrier.example.net.").unwrap();
        assert_eq!(
            (bare.user, bare.host, bare.port),
            (None, "carrier.example.net.", None)
        );
        let odd = parse_sip_uri("sip:a?b/;c:p&w=1@example.com;%6C%72;n=v%2541?h=x").unwrap();
        assert_eq!((odd.user, odd.password), (Some("a?b/;c"), Some("p&w=1")));
        assert_eq!(odd.host, "example.com");
        assert_eq!(odd.param("lr"), Some(None), "a name compared unescaped");
        assert_eq!(
            odd.param("n").map(|v| unescape(v.unwrap())),
            Some("v%41".into())
        );
        assert_eq!(odd.headers, vec![("h", "x")]);
        let phone = parse_sip_uri("sip:+1-212-555-0199@192.0.2.1;user=phone").unwrap();
        assert_eq!(phone.user, Some("+1-212-555-0199"));
        assert!(matches!(unescape("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn malformed_sip_uris_are_refused() {
        for text in [
            "tel:+12125550199",
            "sip:",
            "sip:@example.com",
            "sip:a@b@example.com",
            "sip:user%4@example.com",
            "sip:user name@example.com",
            "sip:example.com:99999",
            "sip:example.com:",
            "sip:exa_mple.com",
            "sip:-bad.example.com",
            "sip:[not-ipv6]",
            "sip:example.com;=x",
            "sip:example.com;transport=",
            "sip:example.com?novalue",
        ] {
            assert!(parse_sip_uri(text).is_err(), "{text:?}");
        }
    }
}
