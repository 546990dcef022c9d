//! Packed messages: several event envelopes of one routing key in one bus
//! message, so the broker's per-message cost (publish, confirm, deliver,
//! ack) is paid once for up to [`MAX_EVENTS`] events.
//!
//! The bus carries only a routing key and a body (no AMQP headers or
//! content type reach the [`Bus`](switchboard_platform::Bus) trait), so a
//! packed message is marked by its first bytes. The framing is ours, all
//! integers big-endian (network order):
//!
//! ```text
//! magic    4 bytes  FF 53 42 50 ("\xFFSBP")
//! version  1 byte   1
//! count    u16      number of envelopes, 1..=65535
//! count × { length u32, length bytes: a protobuf switchboard.events.v1.Envelope }
//! ```
//!
//! Nothing may follow the last envelope. An encoded protobuf message never
//! starts with `0xFF`: its first byte begins a field tag, a varint whose
//! low three bits are the wire type (protobuf encoding specification), and
//! wire type 7 does not exist. So a body is either one envelope or a
//! packed message, never both, and single envelopes still go unpacked.

use std::collections::HashMap;
use std::hash::Hash;

use bytes::{BufMut, Bytes};

use crate::{EventsError, Result};

/// The first bytes of a packed message.
pub const MAGIC: [u8; 4] = [0xFF, b'S', b'B', b'P'];
/// The framing version written and read.
pub const VERSION: u8 = 1;
/// Events a relay packs into one message at most, by default.
pub const MAX_EVENTS: usize = 64;
/// Bytes of one packed message at most, by default (framing included).
pub const MAX_BYTES: usize = 256 * 1024;
/// Magic, version and count.
const HEADER_LEN: usize = MAGIC.len() + 1 + 2;
/// The length before each envelope.
const LENGTH_LEN: usize = 4;

/// Whether `payload` is a packed message (by its magic; it may still be
/// malformed).
pub fn is_packed(payload: &[u8]) -> bool {
    payload.starts_with(&MAGIC)
}

/// The size of a packed message holding envelopes of these sizes.
pub fn packed_len(envelope_lens: impl IntoIterator<Item = usize>) -> usize {
    HEADER_LEN
        + envelope_lens
            .into_iter()
            .map(|len| LENGTH_LEN + len)
            .sum::<usize>()
}

/// How many events `payload` carries, from the header alone: the count of
/// a packed message, 1 for anything else (a single envelope, or bytes that
/// will fail to decode).
pub fn count(payload: &[u8]) -> usize {
    match payload.get(..HEADER_LEN) {
        Some(header) if is_packed(header) => {
            usize::from(u16::from_be_bytes([header[5], header[6]])).max(1)
        }
        _ => 1,
    }
}

/// Frames `envelopes` (encoded `Envelope`s) as one packed message. Fails
/// when there are none, more than 65,535, or one is over 4 GiB.
pub fn encode<'a>(envelopes: impl IntoIterator<Item = &'a [u8]>) -> Result<Vec<u8>> {
    let envelopes: Vec<&[u8]> = envelopes.into_iter().collect();
    let count = u16::try_from(envelopes.len())
        .ok()
        .filter(|count| *count > 0)
        .ok_or_else(|| {
            EventsError::Invalid(format!(
                "a packed message holds 1 to 65535 events, not {}",
                envelopes.len()
            ))
        })?;
    let mut out = Vec::with_capacity(packed_len(envelopes.iter().map(|e| e.len())));
    out.put_slice(&MAGIC);
    out.put_u8(VERSION);
    out.put_u16(count);
    for envelope in envelopes {
        let len = u32::try_from(envelope.len()).map_err(|_| {
            EventsError::Invalid(format!(
                "an envelope of {} bytes cannot be packed",
                envelope.len()
            ))
        })?;
        out.put_u32(len);
        out.put_slice(envelope);
    }
    Ok(out)
}

/// The envelopes of a message body: those of a packed message (slices of
/// `payload`, not copies), or `payload` itself when it is not packed.
/// Refuses a packed message that is truncated, has trailing bytes, an
/// unknown version or no events, with [`EventsError::Malformed`].
pub fn envelopes(payload: &Bytes) -> Result<Vec<Bytes>> {
    if !is_packed(payload) {
        return Ok(vec![payload.clone()]);
    }
    let malformed = |problem: String| EventsError::Malformed(format!("packed message: {problem}"));
    let Some(header) = payload.get(..HEADER_LEN) else {
        return Err(malformed(format!(
            "truncated header ({} of {HEADER_LEN} bytes)",
            payload.len()
        )));
    };
    if header[4] != VERSION {
        return Err(malformed(format!(
            "unknown version {} (this consumer reads {VERSION})",
            header[4]
        )));
    }
    let count = usize::from(u16::from_be_bytes([header[5], header[6]]));
    if count == 0 {
        return Err(malformed("holds no events".into()));
    }
    let mut envelopes = Vec::with_capacity(count);
    let mut at = HEADER_LEN;
    for index in 0..count {
        let Some(length) = payload.get(at..at + LENGTH_LEN) else {
            return Err(malformed(format!(
                "truncated: the length of event {} of {count} is missing at byte {at}",
                index + 1
            )));
        };
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]) as usize;
        at += LENGTH_LEN;
        let left = payload.len() - at;
        if length > left {
            return Err(malformed(format!(
                "truncated: event {} of {count} is {length} bytes, {left} left",
                index + 1
            )));
        }
        envelopes.push(payload.slice(at..at + length));
        at += length;
    }
    if at != payload.len() {
        return Err(malformed(format!(
            "{} bytes after the last of its {count} events",
            payload.len() - at
        )));
    }
    Ok(envelopes)
}

/// How much a relay puts into one packed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Events at most (1: never pack).
    pub events: usize,
    /// Bytes of the packed message at most; a larger envelope goes alone.
    pub bytes: usize,
}

/// Which rows go into which message. `rows` are (lane, routing key,
/// envelope size) in publishing order; a lane is what must stay in order
/// (a tenant). Within a lane, consecutive rows of one routing key share a
/// message up to `limits`; so a lane's messages carry its rows in order,
/// and messages come out in the order of their first row. Returns the row
/// indices of each message.
pub(crate) fn plan<'a, L: Eq + Hash>(
    rows: impl IntoIterator<Item = (L, &'a str, usize)>,
    limits: Limits,
) -> Vec<Vec<usize>> {
    struct Open<'a> {
        rows: Vec<usize>,
        key: &'a str,
        bytes: usize,
    }
    let mut messages: Vec<Open<'a>> = Vec::new();
    let mut open: HashMap<L, usize> = HashMap::new();
    for (index, (lane, key, len)) in rows.into_iter().enumerate() {
        if let Some(message) = open.get(&lane).map(|at| &mut messages[*at])
            && message.key == key
            && message.rows.len() < limits.events
            && message.bytes + LENGTH_LEN + len <= limits.bytes
        {
            message.rows.push(index);
            message.bytes += LENGTH_LEN + len;
            continue;
        }
        open.insert(lane, messages.len());
        messages.push(Open {
            rows: vec![index],
            key,
            bytes: packed_len([len]),
        });
    }
    messages.into_iter().map(|message| message.rows).collect()
}

/// The tenant of a routing key `<tenant>.<source>.<type>`: the lane a
/// relay keeps in order.
pub(crate) fn tenant_of(routing_key: &str) -> &str {
    routing_key.split('.').next().unwrap_or(routing_key)
}

/// The body of a message carrying `rows` (of a [`plan`]): the envelope
/// itself for one row, a packed message of their envelopes for several.
pub(crate) fn body(rows: &[usize], envelope: impl Fn(usize) -> Bytes) -> Result<Bytes> {
    if let [row] = rows {
        return Ok(envelope(*row));
    }
    let envelopes: Vec<Bytes> = rows.iter().map(|row| envelope(*row)).collect();
    Ok(encode(envelopes.iter().map(|envelope| envelope.as_ref()))?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_pack_consecutive_rows_of_a_key_per_lane_within_the_limits() {
        let limits = Limits {
            events: 3,
            bytes: 1000,
        };
        // Two tenants interleaved; tenant a changes type in the middle.
        let rows = [
            ("a", "a.s.x", 10),
            ("b", "b.s.x", 10),
            ("a", "a.s.x", 10),
            ("b", "b.s.x", 10),
            ("a", "a.s.y", 10),
            ("a", "a.s.x", 10),
            ("b", "b.s.x", 10),
            ("b", "b.s.x", 10),
        ];
        assert_eq!(
            plan(rows, limits),
            [vec![0, 2], vec![1, 3, 6], vec![4], vec![5], vec![7]],
            "per lane in order, a new message on a new key or when full"
        );
        let bytes = plan(
            [
                ("a", "k", 600),
                ("a", "k", 400),
                ("a", "k", 10),
                ("a", "k", 2000),
            ],
            limits,
        );
        assert_eq!(bytes, [vec![0], vec![1, 2], vec![3]], "by size too");
        let never = plan(
            [("a", "k", 1), ("a", "k", 1)],
            Limits {
                events: 1,
                bytes: 1000,
            },
        );
        assert_eq!(never, [vec![0], vec![1]]);
    }

    fn packed(envelopes: &[&[u8]]) -> Bytes {
        Bytes::from(encode(envelopes.iter().copied()).unwrap())
    }

    #[test]
    fn packed_messages_round_trip_as_slices() {
        let message = packed(&[b"one", b"", b"three"]);
        assert!(is_packed(&message));
        assert_eq!(count(&message), 3);
        assert_eq!(message.len(), packed_len([3, 0, 5]));
        let envelopes = envelopes(&message).unwrap();
        assert_eq!(envelopes, [&b"one"[..], b"", b"three"]);
    }

    #[test]
    fn a_single_envelope_is_its_own_only_envelope() {
        let single = Bytes::from_static(b"\x0a\x03abc");
        assert!(!is_packed(&single));
        assert_eq!(count(&single), 1);
        assert_eq!(envelopes(&single).unwrap(), [single]);
    }

    fn refusal(payload: &[u8]) -> String {
        envelopes(&Bytes::copy_from_slice(payload))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn truncated_or_garbage_packed_messages_are_refused_with_the_reason() {
        let message = packed(&[b"one", b"three"]);
        for cut in MAGIC.len()..message.len() {
            let error = refusal(&message[..cut]);
            assert!(
                error.starts_with("malformed event: packed message: "),
                "{error}"
            );
            assert!(error.contains("truncated"), "cut at {cut}: {error}");
        }
        let mut trailing = message.to_vec();
        trailing.push(0);
        assert!(refusal(&trailing).contains("1 bytes after the last of its 2 events"));
        let mut version = message.to_vec();
        version[4] = 9;
        assert!(refusal(&version).contains("unknown version 9"));
        assert!(refusal(&[0xFF, b'S', b'B', b'P', 1, 0, 0]).contains("holds no events"));
        let mut huge = MAGIC.to_vec();
        huge.extend([1, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2]);
        assert!(refusal(&huge).contains("event 1 of 1 is 4294967295 bytes, 2 left"));
        assert_eq!(count(&huge), 1);
    }

    #[test]
    fn nothing_or_too_much_cannot_be_packed() {
        assert!(encode(std::iter::empty()).is_err());
        let many = vec![&b"x"[..]; 65_536];
        assert!(encode(many).is_err());
    }
}
