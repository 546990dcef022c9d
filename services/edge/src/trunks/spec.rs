//! The rules a trunk's settings follow (pure: no I/O). Every bad field is
//! named, with its path in the request body (`inbound.allowed_sources[1]`,
//! `outbound.port`), and all of them at once.

use std::net::IpAddr;

use ipnet::IpNet;
use switchboard_edge_api::{OutboundSpec, TrunkSpec};
use switchboard_rpc::FieldError;

/// Longest name, username, password and host accepted.
const MAX_NAME: usize = 100;
const MAX_USERNAME: usize = 64;
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 128;
const MAX_HOST: usize = 253;
/// Entries of an allowlist.
const MAX_SOURCES: usize = 100;
/// The widest networks an allowlist may hold: a carrier's address block,
/// never a large part of the Internet (which would admit any source).
const MIN_PREFIX_V4: u8 = 8;
const MIN_PREFIX_V6: u8 = 32;
/// A registration's bounds (RFC 3261 §10.2.1.1 leaves them to the
/// registrar; carriers ask 60 s to a day) and its default.
const MIN_REGISTER_EXPIRES: u32 = 60;
const MAX_REGISTER_EXPIRES: u32 = 86_400;
pub(crate) const DEFAULT_REGISTER_EXPIRES: u32 = 3600;
const MAX_PRIORITY: i32 = 999;

/// How the edge reaches a carrier (RFC 3261 §18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboundTransport {
    Udp,
    Tcp,
    Tls,
}

impl OutboundTransport {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "udp" => Some(Self::Udp),
            "tcp" => Some(Self::Tcp),
            "tls" => Some(Self::Tls),
            _ => None,
        }
    }
}

/// A trunk's settings once checked.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Checked {
    pub name: String,
    pub enabled: bool,
    pub sources: Vec<IpNet>,
    pub inbound_username: Option<String>,
    /// A new password; `None` with a username keeps the stored one (the
    /// check made sure there is one under that username).
    pub inbound_password: Option<String>,
    pub outbound: Option<CheckedOutbound>,
    pub priority: i32,
}

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct CheckedOutbound {
    pub host: String,
    pub port: u16,
    pub transport: OutboundTransport,
    pub username: Option<String>,
    /// As for the inbound password.
    pub password: Option<String>,
    pub register: bool,
    pub register_expires: u32,
    pub caller_id: Option<String>,
}

/// The usernames a trunk had before a replace (whose passwords are kept
/// when no new one comes).
#[derive(Debug, Clone, Default)]
pub(crate) struct Previous {
    pub inbound_username: Option<String>,
    pub outbound_username: Option<String>,
}

/// An IP address or network as written: `192.0.2.7`, `2001:db8::1`,
/// `198.51.100.0/24`, `2001:db8::/48`. A bare address is its own /32 or
/// /128; a network must not have host bits set (a typo, not a network).
pub fn parse_source(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(address.to_canonical()));
    }
    let network: IpNet = text.parse().map_err(|_| {
        format!("{text:?} is not an IP address or a network in CIDR notation (192.0.2.0/24, 2001:db8::/48)")
    })?;
    if network.trunc() != network {
        return Err(format!(
            "{text:?} has host bits set: the network is {}",
            network.trunc()
        ));
    }
    let (prefix, minimum) = match network {
        IpNet::V4(network) => (network.prefix_len(), MIN_PREFIX_V4),
        IpNet::V6(network) => (network.prefix_len(), MIN_PREFIX_V6),
    };
    if prefix < minimum {
        return Err(format!(
            "{text:?} is too wide: at most /{minimum} for this address family"
        ));
    }
    Ok(network)
}

/// A digest username: unreserved characters of RFC 3261 §25.1, so that it
/// needs no quoting or escaping anywhere.
fn check_username(username: &str) -> Result<(), String> {
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(format!("must be 1 to {MAX_USERNAME} characters"));
    }
    if !username
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric() || b"-_.!~*'()+".contains(&byte))
    {
        return Err("may hold letters, digits and - _ . ! ~ * ' ( ) + only".into());
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&length) {
        return Err(format!(
            "must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        ));
    }
    if password.chars().any(char::is_control) {
        return Err("must not hold control characters".into());
    }
    Ok(())
}

/// A host name (RFC 1123 labels) or an IP address (an IPv6 one with or
/// without brackets).
fn check_host(host: &str) -> Result<String, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(address) = bare.parse::<IpAddr>() {
        return Ok(address.to_string());
    }
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        });
    if valid {
        Ok(host.to_ascii_lowercase())
    } else {
        Err("must be a host name or an IP address".into())
    }
}

/// A caller ID: an E.164 number or digits, `+` optional.
fn check_caller_id(caller_id: &str) -> Result<(), String> {
    let digits = caller_id.strip_prefix('+').unwrap_or(caller_id);
    if digits.is_empty() || digits.len() > 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("must be a phone number: digits, optionally after +".into());
    }
    Ok(())
}

/// A username and its password, where a username needs a password unless
/// `previous` had the same one (its password stays).
fn check_credentials(
    errors: &mut Vec<FieldError>,
    path: &str,
    username: Option<&str>,
    password: Option<&str>,
    previous: Option<&str>,
) {
    if let Some(username) = username
        && let Err(message) = check_username(username)
    {
        errors.push(FieldError::new(format!("{path}.username"), message));
    }
    match (username, password) {
        (None, Some(_)) => errors.push(FieldError::new(
            format!("{path}.password"),
            "a password needs a username",
        )),
        (Some(username), None) if previous != Some(username) => errors.push(FieldError::new(
            format!("{path}.password"),
            "is required with a new username",
        )),
        (_, Some(password)) => {
            if let Err(message) = check_password(password) {
                errors.push(FieldError::new(format!("{path}.password"), message));
            }
        }
        _ => {}
    }
}

fn check_outbound(
    errors: &mut Vec<FieldError>,
    outbound: OutboundSpec,
    previous: Option<&str>,
) -> Option<CheckedOutbound> {
    let before = errors.len();
    let host = check_host(outbound.host.trim())
        .map_err(|message| errors.push(FieldError::new("outbound.host", message)))
        .ok();
    // 0: the carrier's servers and ports are in the host's DNS SRV
    // records (RFC 3263 §4.2), which an IP address has none of.
    let port = match u16::try_from(outbound.port) {
        Ok(0) if outbound.host.trim().parse::<IpAddr>().is_ok() => {
            errors.push(FieldError::new(
                "outbound.port",
                "0 looks the carrier up in DNS SRV records, which an IP address has none of: give the port",
            ));
            None
        }
        Ok(port) => Some(port),
        Err(_) => {
            errors.push(FieldError::new(
                "outbound.port",
                "must be between 1 and 65535, or 0 to find the carrier in DNS SRV records",
            ));
            None
        }
    };
    let transport = OutboundTransport::from_name(&outbound.transport);
    if transport.is_none() {
        errors.push(FieldError::new(
            "outbound.transport",
            format!(
                "{:?} is not a transport: udp, tcp or tls",
                outbound.transport
            ),
        ));
    }
    check_credentials(
        errors,
        "outbound",
        outbound.username.as_deref(),
        outbound.password.as_deref(),
        previous,
    );
    if outbound.register && outbound.username.is_none() {
        errors.push(FieldError::new(
            "outbound.register",
            "registering with the carrier needs a username and password",
        ));
    }
    let register_expires = match outbound.register_expires {
        0 => DEFAULT_REGISTER_EXPIRES,
        seconds if (MIN_REGISTER_EXPIRES..=MAX_REGISTER_EXPIRES).contains(&seconds) => seconds,
        _ => {
            errors.push(FieldError::new(
                "outbound.register_expires",
                format!(
                    "must be {MIN_REGISTER_EXPIRES} to {MAX_REGISTER_EXPIRES} seconds (0 for {DEFAULT_REGISTER_EXPIRES})"
                ),
            ));
            0
        }
    };
    if let Some(caller_id) = &outbound.caller_id
        && let Err(message) = check_caller_id(caller_id)
    {
        errors.push(FieldError::new("outbound.caller_id", message));
    }
    if errors.len() != before {
        return None;
    }
    Some(CheckedOutbound {
        host: host?,
        port: port?,
        transport: transport?,
        username: outbound.username,
        password: outbound.password,
        register: outbound.register,
        register_expires,
        caller_id: outbound.caller_id,
    })
}

/// Checks `spec`, for a new trunk (`previous` is `None`) or one replacing
/// a trunk that had `previous`' usernames.
pub(crate) fn check(
    spec: TrunkSpec,
    previous: Option<&Previous>,
) -> Result<Checked, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = spec.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters"),
        ));
    } else if name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "must not hold control characters"));
    }
    if spec.inbound.allowed_sources.len() > MAX_SOURCES {
        errors.push(FieldError::new(
            "inbound.allowed_sources",
            format!("at most {MAX_SOURCES} entries"),
        ));
    }
    let mut sources: Vec<IpNet> = Vec::new();
    for (index, text) in spec.inbound.allowed_sources.iter().enumerate() {
        match parse_source(text) {
            Ok(network) if !sources.contains(&network) => sources.push(network),
            Ok(_) => {}
            Err(message) => errors.push(FieldError::new(
                format!("inbound.allowed_sources[{index}]"),
                message,
            )),
        }
    }
    check_credentials(
        &mut errors,
        "inbound",
        spec.inbound.username.as_deref(),
        spec.inbound.password.as_deref(),
        previous.and_then(|previous| previous.inbound_username.as_deref()),
    );
    let outbound = spec.outbound.and_then(|outbound| {
        check_outbound(
            &mut errors,
            outbound,
            previous.and_then(|previous| previous.outbound_username.as_deref()),
        )
    });
    if !(0..=MAX_PRIORITY).contains(&spec.priority) {
        errors.push(FieldError::new(
            "priority",
            format!("must be 0 to {MAX_PRIORITY}"),
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Checked {
        name,
        enabled: spec.enabled,
        sources,
        inbound_username: spec.inbound.username,
        inbound_password: spec.inbound.password,
        outbound,
        priority: spec.priority,
    })
}

#[cfg(test)]
mod tests {
    use switchboard_edge_api::InboundSpec;

    use super::*;

    fn fields(result: Result<Checked, Vec<FieldError>>) -> Vec<String> {
        match result {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|error| error.field).collect(),
        }
    }

    fn outbound() -> OutboundSpec {
        OutboundSpec {
            host: "sip.carrier.example".into(),
            port: 5060,
            transport: "udp".into(),
            ..OutboundSpec::default()
        }
    }

    #[test]
    fn sources_are_addresses_or_networks_of_either_family() {
        assert_eq!(
            parse_source("192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32"
        );
        assert_eq!(
            parse_source("2001:db8::1").unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            parse_source("::ffff:192.0.2.7").unwrap().to_string(),
            "192.0.2.7/32",
            "an IPv4-mapped address is the IPv4 one"
        );
        assert_eq!(
            parse_source("198.51.100.0/24").unwrap().to_string(),
            "198.51.100.0/24"
        );
        assert_eq!(
            parse_source("2001:db8::/48").unwrap().to_string(),
            "2001:db8::/48"
        );
        assert!(
            parse_source("198.51.100.1/24")
                .unwrap_err()
                .contains("198.51.100.0/24")
        );
        assert!(parse_source("10.0.0.0/33").is_err());
        assert!(parse_source("300.1.1.1").is_err());
        assert!(parse_source("carrier.example").is_err());
        assert!(parse_source("0.0.0.0/0").unwrap_err().contains("too wide"));
        assert!(parse_source("10.0.0.0/8").is_ok());
        assert!(parse_source("10.0.0.0/7").is_err());
        assert!(parse_source("2000::/3").is_err());
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let spec = TrunkSpec {
            name: "  ".into(),
            inbound: InboundSpec {
                allowed_sources: vec!["192.0.2.1".into(), "192.0.2.0/33".into()],
                username: Some("bad name".into()),
                password: Some("short".into()),
            },
            outbound: Some(OutboundSpec {
                host: "-bad-.example".into(),
                port: 70_000,
                transport: "sctp".into(),
                register: true,
                register_expires: 10,
                caller_id: Some("call me".into()),
                ..OutboundSpec::default()
            }),
            priority: -1,
            ..TrunkSpec::default()
        };
        assert_eq!(
            fields(check(spec, None)),
            [
                "name",
                "inbound.allowed_sources[1]",
                "inbound.username",
                "inbound.password",
                "outbound.host",
                "outbound.port",
                "outbound.transport",
                "outbound.register",
                "outbound.register_expires",
                "outbound.caller_id",
                "priority",
            ]
        );
        let mut big_port = outbound();
        big_port.port = 65_536;
        let spec = TrunkSpec {
            name: "Carrier".into(),
            outbound: Some(big_port),
            ..TrunkSpec::default()
        };
        assert_eq!(fields(check(spec, None)), ["outbound.port"]);
        // 0 asks DNS SRV: for a host name, not for an address.
        let mut by_srv = outbound();
        by_srv.port = 0;
        by_srv.host = "sip.carrier.example".into();
        let spec = TrunkSpec {
            name: "Carrier".into(),
            outbound: Some(by_srv.clone()),
            ..TrunkSpec::default()
        };
        assert!(check(spec, None).is_ok());
        by_srv.host = "192.0.2.10".into();
        let spec = TrunkSpec {
            name: "Carrier".into(),
            outbound: Some(by_srv),
            ..TrunkSpec::default()
        };
        assert_eq!(fields(check(spec, None)), ["outbound.port"]);
    }

    #[test]
    fn a_username_needs_its_password_unless_it_is_kept() {
        let spec = |username: &str, password: Option<&str>| TrunkSpec {
            name: "Carrier".into(),
            inbound: InboundSpec {
                username: Some(username.into()),
                password: password.map(Into::into),
                ..InboundSpec::default()
            },
            ..TrunkSpec::default()
        };
        assert_eq!(
            fields(check(spec("carrier1", None), None)),
            ["inbound.password"]
        );
        let previous = Previous {
            inbound_username: Some("carrier1".into()),
            outbound_username: None,
        };
        let kept = check(spec("carrier1", None), Some(&previous)).unwrap();
        assert_eq!(kept.inbound_password, None);
        assert_eq!(
            fields(check(spec("carrier2", None), Some(&previous))),
            ["inbound.password"],
            "a new username needs a new password"
        );
        assert!(check(spec("carrier2", Some("long enough")), Some(&previous)).is_ok());
        let mut lone_password = outbound();
        lone_password.password = Some("long enough".into());
        let spec = TrunkSpec {
            name: "Carrier".into(),
            outbound: Some(lone_password),
            ..TrunkSpec::default()
        };
        assert_eq!(fields(check(spec, None)), ["outbound.password"]);
    }

    #[test]
    fn a_good_trunk_is_normalized() {
        let spec = TrunkSpec {
            name: " Carrier A ".into(),
            enabled: true,
            inbound: InboundSpec {
                allowed_sources: vec![
                    "192.0.2.7".into(),
                    "192.0.2.7/32".into(),
                    "2001:db8::/48".into(),
                ],
                ..InboundSpec::default()
            },
            outbound: Some(OutboundSpec {
                host: "[2001:db8::5]".into(),
                register_expires: 0,
                ..outbound()
            }),
            priority: 3,
        };
        let checked = check(spec, None).unwrap();
        assert_eq!(checked.name, "Carrier A");
        assert_eq!(checked.sources.len(), 2, "the duplicate goes");
        let outbound = checked.outbound.unwrap();
        assert_eq!(outbound.host, "2001:db8::5");
        assert_eq!(outbound.transport, OutboundTransport::Udp);
        assert_eq!(outbound.register_expires, DEFAULT_REGISTER_EXPIRES);
    }
}
