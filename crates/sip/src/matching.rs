//! Which transaction and which dialog a message belongs to (RFC 3261
//! §17.1.3, §17.2.3 and §12): the keys to look them up by.

use crate::message::{Message, Method};
use crate::values::{self, Error};

/// RFC 3261's branch prefix: a branch starting with it is unique per
/// transaction (§8.1.1.7).
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// A server transaction's key (§17.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServerKey {
    /// A request from an RFC 3261 element: the top Via's branch and
    /// sent-by, and the method (an ACK's is INVITE's, so the ACK of a
    /// failure finds the INVITE's transaction).
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// A request from an RFC 2543 element (no magic cookie): the
    /// identifying fields of the request (§17.2.3's fallback).
    Legacy {
        request_uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        method: String,
        top_via: String,
    },
}

/// A client transaction's key (§17.1.3): the branch it put in its Via and
/// the method of its CSeq.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub branch: String,
    pub method: String,
}

/// A dialog's id (§12): Call-ID and both tags, as this side sees them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogId {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

fn top_via<'m>(message: &'m Message<'_>) -> Result<values::Via<'m>, Error> {
    let header = message.header("Via").ok_or("no Via")?;
    values::parse_via(&header.value)?
        .into_iter()
        .next()
        .ok_or("an empty Via")
}

fn cseq<'m>(message: &'m Message<'_>) -> Result<(u32, &'m str), Error> {
    message.cseq().ok_or("no valid CSeq")
}

/// The key of the server transaction a received request belongs to.
pub fn server_key(request: &Message<'_>) -> Result<ServerKey, Error> {
    let method = request.method().ok_or("not a request")?;
    let via = top_via(request)?;
    let method_key = match method {
        Method::Ack => "INVITE",
        other => other.as_str(),
    };
    // The cookie alone identifies nothing (RFC 4475's badbranch): such a
    // request falls back to the RFC 2543 key.
    if let Some(branch) = via
        .branch()
        .filter(|branch| branch.len() > MAGIC_COOKIE.len() && branch.starts_with(MAGIC_COOKIE))
    {
        let port = via.port.unwrap_or(default_port(via.transport));
        return Ok(ServerKey::Branch {
            branch: branch.to_owned(),
            sent_by: format!("{}:{port}", via.host.to_ascii_lowercase()),
            method: method_key.to_owned(),
        });
    }
    let crate::message::StartLine::Request { uri, .. } = &request.start else {
        return Err("not a request");
    };
    let from = values::parse_name_addr(&request.header("From").ok_or("no From")?.value)?;
    let (number, _) = cseq(request)?;
    Ok(ServerKey::Legacy {
        request_uri: (*uri).to_owned(),
        from_tag: from.tag().unwrap_or_default().to_owned(),
        call_id: call_id(request)?.to_owned(),
        cseq: number,
        method: method_key.to_owned(),
        top_via: request
            .header("Via")
            .map(|header| header.value.to_string())
            .unwrap_or_default(),
    })
}

/// The key of the client transaction a received response belongs to (or
/// that a request about to be sent creates).
pub fn client_key(message: &Message<'_>) -> Result<ClientKey, Error> {
    let via = top_via(message)?;
    let branch = via.branch().ok_or("the top Via has no branch")?;
    let (_, method) = cseq(message)?;
    Ok(ClientKey {
        branch: branch.to_owned(),
        method: method.to_owned(),
    })
}

fn call_id<'m>(message: &'m Message<'_>) -> Result<&'m str, Error> {
    Ok(message
        .header("Call-ID")
        .ok_or("no Call-ID")?
        .value
        .as_ref())
}

fn tag_of(message: &Message<'_>, header: &str) -> Result<Option<String>, Error> {
    let value = &message.header(header).ok_or("no From or To")?.value;
    Ok(values::parse_name_addr(value)?.tag().map(str::to_owned))
}

/// The dialog a message belongs to, seen from the side that sent the
/// request (`uac`: local tag From's, remote tag To's) or received it.
/// `None` while the To has no tag (no dialog yet).
pub fn dialog_id(message: &Message<'_>, uac: bool) -> Result<Option<DialogId>, Error> {
    let from = tag_of(message, "From")?.ok_or("the From has no tag")?;
    let Some(to) = tag_of(message, "To")? else {
        return Ok(None);
    };
    let (local_tag, remote_tag) = if uac { (from, to) } else { (to, from) };
    Ok(Some(DialogId {
        call_id: call_id(message)?.to_owned(),
        local_tag,
        remote_tag,
    }))
}

/// The port a sent-by without one means (RFC 3261 §18.2.2).
fn default_port(transport: &str) -> u16 {
    if transport.eq_ignore_ascii_case("TLS") || transport.eq_ignore_ascii_case("WSS") {
        5061
    } else {
        5060
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Transport, parse};

    fn message(text: &str) -> Vec<u8> {
        text.replace('\n', "\r\n").into_bytes()
    }

    const INVITE: &str = "INVITE sip:agent@acme.example.com SIP/2.0
Via: SIP/2.0/UDP Carrier.Example.net;branch=z9hG4bK-1
From: <sip:+12125550199@carrier.example.net>;tag=caller
To: <sip:agent@acme.example.com>
Call-ID: call-1
CSeq: 1 INVITE
Content-Length: 0

";

    #[test]
    fn an_ack_of_a_failure_and_a_retransmission_find_the_invites_transaction() {
        let invite = message(INVITE);
        let (invite, _) = parse(&invite, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let ack = message(
            &INVITE
                .replace("INVITE sip:", "ACK sip:")
                .replace("1 INVITE", "1 ACK")
                .replace(
                    "carrier.example.net;branch",
                    "carrier.example.net:5060;branch",
                ),
        );
        let (ack, _) = parse(&ack, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        let key = server_key(&invite).unwrap();
        assert_eq!(
            key,
            ServerKey::Branch {
                branch: "z9hG4bK-1".into(),
                sent_by: "carrier.example.net:5060".into(),
                method: "INVITE".into()
            }
        );
        assert_eq!(
            server_key(&ack).unwrap(),
            key,
            "host case and the default port"
        );
        let cancel = message(
            &INVITE
                .replace("INVITE sip:", "CANCEL sip:")
                .replace("1 INVITE", "1 CANCEL"),
        );
        let (cancel, _) = parse(&cancel, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        assert_ne!(
            server_key(&cancel).unwrap(),
            key,
            "a CANCEL is its own transaction"
        );
    }

    #[test]
    fn requests_without_the_magic_cookie_match_by_their_fields() {
        for branch in ["branch=1", "branch=z9hG4bK"] {
            let old = message(&INVITE.replace("branch=z9hG4bK-1", branch));
            let (old, _) = parse(&old, Transport::Datagram, &Limits::default())
                .unwrap()
                .unwrap();
            let ServerKey::Legacy { cseq, from_tag, .. } = server_key(&old).unwrap() else {
                panic!("an RFC 2543 key for {branch}")
            };
            assert_eq!((cseq, from_tag.as_str()), (1, "caller"));
        }
    }

    #[test]
    fn responses_find_their_client_transaction_and_dialogs_have_both_tags() {
        let response = message(
            "SIP/2.0 180 Ringing
Via: SIP/2.0/UDP edge.example.com;branch=z9hG4bK-out
From: <sip:edge@acme.example.com>;tag=edge
To: <sip:agent@192.0.2.4>;tag=phone
Call-ID: leg-2
CSeq: 7 INVITE
Content-Length: 0

",
        );
        let (response, _) = parse(&response, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            client_key(&response).unwrap(),
            ClientKey {
                branch: "z9hG4bK-out".into(),
                method: "INVITE".into()
            }
        );
        assert_eq!(
            dialog_id(&response, true).unwrap(),
            Some(DialogId {
                call_id: "leg-2".into(),
                local_tag: "edge".into(),
                remote_tag: "phone".into()
            })
        );
        let invite = message(INVITE);
        let (invite, _) = parse(&invite, Transport::Datagram, &Limits::default())
            .unwrap()
            .unwrap();
        assert_eq!(
            dialog_id(&invite, false).unwrap(),
            None,
            "no To tag, no dialog yet"
        );
    }
}
