//! Shared by the fuzz targets: the properties our parser must keep
//! ([`props`], the `parse` target), the oracles ([`oracles`]) and the
//! classification of where they and ours disagree ([`classify`], the
//! `differential` target), and the findings directory ([`findings`]).

pub mod classify;
pub mod findings;
pub mod oracles;
pub mod props;

use switchboard_sip::{Limits, Message, StartLine, Transport};

/// What a parser made of one input, in the few facts every parser here
/// exposes: enough to compare them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Accept(Summary),
    /// A stream that needs more bytes.
    Wait,
    /// Refused: a label (stable across inputs, for classification) and a
    /// detail (for the findings' one-line reason).
    Refuse {
        label: String,
        detail: String,
    },
    /// An oracle panicked (with this message): caught, so that the run
    /// goes on, and always a disagreement. Ours is never caught: a panic
    /// of ours is a crash.
    Panic(String),
}

/// The facts of an accepted message the differential compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The method, for a request.
    pub method: Option<String>,
    /// The status code, for a response.
    pub status: Option<u16>,
    pub call_id: String,
    pub cseq: Option<(u32, String)>,
    pub body: Vec<u8>,
}

impl Summary {
    pub fn of_ours(message: &Message<'_>) -> Summary {
        let (method, status) = match &message.start {
            StartLine::Request { method, .. } => (Some(method.as_str().to_owned()), None),
            StartLine::Response { code, .. } => (None, Some(*code)),
        };
        Summary {
            method,
            status,
            call_id: message
                .header("Call-ID")
                .map(|header| header.value.to_string())
                .unwrap_or_default(),
            cseq: message
                .cseq()
                .map(|(number, method)| (number, method.to_owned())),
            body: message.body.to_vec(),
        }
    }
}

/// Our parser's outcome.
pub fn ours(bytes: &[u8], transport: Transport, limits: &Limits) -> Outcome {
    match switchboard_sip::parse(bytes, transport, limits) {
        Ok(Some((message, _))) => Outcome::Accept(Summary::of_ours(&message)),
        Ok(None) => Outcome::Wait,
        Err(malformed) => Outcome::Refuse {
            label: malformed.reason.to_owned(),
            detail: malformed.detail,
        },
    }
}

/// The first `max` characters of `text` on one line (for reasons).
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = flat.len().min(max);
    while !flat.is_char_boundary(end) {
        end -= 1;
    }
    flat[..end].to_owned()
}
