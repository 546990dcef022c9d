//! Where an oracle and our parser disagree, and whether that is one of
//! the known, deliberate differences (ours is stricter on purpose, or the
//! oracle is known to be wrong) or a finding to triage.
//!
//! A disagreement's signature is `<oracle>/<transport>/<kind>:<label>`:
//! - `ours-refuses:<our reason>`: the oracle accepts what we refuse;
//! - `oracle-refuses:<its label>`: we accept what the oracle refuses;
//! - `content:<field>`: both accept, but read a different method, status,
//!   Call-ID, CSeq or body;
//! - `ours-waits:…` / `oracle-waits:…`: on a stream, one waits for more
//!   bytes where the other decided.

use switchboard_sip::{Limits, Transport};

use crate::{Outcome, Summary};

/// One disagreement.
#[derive(Debug, Clone)]
pub struct Divergence {
    pub signature: String,
    /// One line: what each side said.
    pub reason: String,
    /// The known difference it is, if it is one.
    pub known: Option<&'static str>,
}

/// The known, deliberate differences: ours follows RFC 3261 / RFC 4475
/// where the oracle does not. Each is `(class, test)`; the README lists
/// them with the sections that make ours right.
type Rule = fn(&Facts<'_>) -> bool;

/// What a rule looks at.
pub struct Facts<'a> {
    pub oracle: &'static str,
    pub input: &'a [u8],
    pub ours: &'a Outcome,
    pub theirs: &'a Outcome,
}

impl Facts<'_> {
    fn our_refusal(&self) -> Option<(&str, &str)> {
        match self.ours {
            Outcome::Refuse { label, detail } => Some((label, detail)),
            _ => None,
        }
    }
    fn their_refusal(&self) -> Option<&str> {
        match self.theirs {
            Outcome::Refuse { label, .. } => Some(label),
            _ => None,
        }
    }
    fn they_accept(&self) -> bool {
        matches!(self.theirs, Outcome::Accept(_))
    }
    fn we_accept(&self) -> bool {
        matches!(self.ours, Outcome::Accept(_))
    }
    /// Our reading of the request's method and of the CSeq's method, when
    /// we accepted the message.
    fn our_methods(&self) -> Vec<&str> {
        match self.ours {
            Outcome::Accept(Summary { method, cseq, .. }) => method
                .as_deref()
                .into_iter()
                .chain(cseq.as_ref().map(|(_, method)| method.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }
    fn content_differs_in(&self, field: &str) -> bool {
        match (self.ours, self.theirs) {
            (Outcome::Accept(a), Outcome::Accept(b)) => first_difference(a, b) == Some(field),
            _ => false,
        }
    }
    /// Whether the two readings of the method or of the CSeq method are
    /// the same name in another case, or one is a prefix of the other.
    fn methods_differ_by_case_or_prefix(&self) -> bool {
        let (Outcome::Accept(a), Outcome::Accept(b)) = (self.ours, self.theirs) else {
            return false;
        };
        let pairs = [
            (
                a.method.clone().unwrap_or_default(),
                b.method.clone().unwrap_or_default(),
            ),
            (
                a.cseq.clone().map(|c| c.1).unwrap_or_default(),
                b.cseq.clone().map(|c| c.1).unwrap_or_default(),
            ),
        ];
        pairs.iter().any(|(ours, theirs)| {
            ours != theirs
                && (ours.eq_ignore_ascii_case(theirs)
                    || ours
                        .to_ascii_uppercase()
                        .starts_with(&theirs.to_ascii_uppercase()))
        }) && a.call_id == b.call_id
            && a.body == b.body
    }
    /// Whether our reading of header `name`'s URI is not a SIP URI our
    /// `parse_sip_uri` accepts.
    fn name_addr_uri_is_not_sip(&self, name: &str) -> bool {
        let Ok(Some((message, _))) =
            switchboard_sip::parse(self.input, Transport::Datagram, &LIMITS)
        else {
            return false;
        };
        message
            .header(name)
            .and_then(|header| {
                switchboard_sip::values::parse_name_addr(&header.value)
                    .ok()
                    .map(|addr| switchboard_sip::uri::parse_sip_uri(addr.uri).is_err())
            })
            .unwrap_or(false)
    }
    /// Whether the user part of header `name`'s URI (as we read it) holds
    /// one of `chars`.
    fn name_addr_user_has(&self, name: &str, chars: &[char]) -> bool {
        let Ok(Some((message, _))) =
            switchboard_sip::parse(self.input, Transport::Datagram, &LIMITS)
        else {
            return false;
        };
        message
            .header(name)
            .and_then(|header| {
                let addr = switchboard_sip::values::parse_name_addr(&header.value).ok()?;
                let (_, rest) = addr.uri.split_once(':')?;
                let (user, _) = rest.split_once('@')?;
                Some(user.contains(chars))
            })
            .unwrap_or(false)
    }
    fn head(&self) -> &[u8] {
        let end = find(self.input, b"\r\n\r\n").unwrap_or(self.input.len());
        &self.input[..end]
    }
    fn request_uri(&self) -> Option<&str> {
        let head = std::str::from_utf8(self.head()).ok()?;
        let first = head.trim_start_matches("\r\n").split("\r\n").next()?;
        first.split(' ').nth(1)
    }
}

/// Methods the oracles' closed enums know (rsipstack matches them in any
/// case; ezk reads any other as an extension, but see `ezk-method-prefix`).
const CLOSED_METHODS: [&str; 14] = [
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];

/// The known differences, from the issue and DEPENDENCIES.md's SIP row.
pub const KNOWN: &[(&str, Rule)] = &[
    // RFC 4475 §3.1.2.16 (badvers): SIP/7.0 is answered 505; the
    // oracle takes any version.
    ("sip-version", |f| {
        f.they_accept() && f.our_refusal().is_some_and(|(label, _)| label == "version")
    }),
    // RFC 4475 §3.1.2.3 (ncl), RFC 3261 §20.14: Content-Length is
    // 1*DIGIT; a sign, a fraction or a value too large to be a length is
    // a 400, where the oracle reads 0 or ignores the header.
    ("content-length-not-digits", |f| {
        f.they_accept()
            && f.our_refusal()
                .is_some_and(|(label, _)| label == "bad_content_length")
    }),
    // RFC 3261 §7.3.1: a header line is `name: value`; one without a
    // colon is malformed, where the oracle drops the line.
    ("header-line-without-colon", |f| {
        f.they_accept()
            && f.our_refusal().is_some_and(|(label, detail)| {
                label == "bad_header" && detail.contains("without a colon")
            })
    }),
    // RFC 3261 §8.2.1, RFC 4475 §3.1.1.2 (intmeth): an extension method
    // is a well-formed request (a UA answers 501, a proxy forwards it);
    // the oracle's closed Method enum refuses it.
    ("closed-method-enum", |f| {
        f.we_accept()
            && f.their_refusal()
                .is_some_and(|label| label.ends_with("method"))
            && f.our_methods()
                .iter()
                .any(|method| !CLOSED_METHODS.contains(method))
    }),
    // ezk's Request-URI is a SIP URI only (the issue: "ezk refusing
    // `<sip:…>` in a Request-URI"), and rsipstack's nearly so: `tel:` or
    // any other absolute URI (RFC 3261 §19.1 and §25.1 allow any,
    // §8.2.2.1 answers an unsupported scheme 416, RFC 4475 §3.3.2 and
    // §3.3.3) fails their request line. Our parser checks the
    // Request-URI's absolute-URI shape and leaves the scheme's own
    // grammar to the layer that routes on it, so a `sip:` URI that our
    // `parse_sip_uri` refuses too is this case.
    ("request-uri-grammar-left-to-routing", |f| {
        f.we_accept()
            && f.their_refusal().is_some_and(|label| {
                [
                    "start_line",
                    "uri",
                    "request_line",
                    "codec:uri",
                    "codec:request_line",
                ]
                .contains(&label)
            })
            && f.request_uri()
                .is_some_and(|uri| switchboard_sip::uri::parse_sip_uri(uri).is_err())
    }),
    // Our configured limits (16 KiB of head, 64 KiB of body, 256
    // headers): past them a request is answered 413 (RFC 3261 §21.4.11)
    // or dropped; the oracles have none as low.
    ("our-size-limits", |f| {
        f.our_refusal()
            .is_some_and(|(label, _)| label == "too_large")
    }),
    // RFC 3261 §7.3.1: a header continues on a line starting with
    // whitespace (RFC 4475 §3.1.1.1, wsinv); an oracle that refuses a
    // folded message.
    ("line-folding", |f| {
        f.we_accept() && f.their_refusal().is_some() && has_folding(f.head())
    }),
];

/// Differences found by fuzzing and triaged as the oracle's fault
/// (README.md, "Findings"): suppressed like the known ones.
pub const TRIAGED: &[(&str, Rule)] = &[
    // On a stream, ours decides as soon as the head is complete; the
    // oracle waits for the Content-Length's body first. Not a
    // disagreement about the message.
    ("stream-decided-on-head", |f| {
        matches!(f.theirs, Outcome::Wait) && f.our_refusal().is_some()
    }),
    // The oracle accepts what RFC 3261's grammar or RFC 4475 makes a 400
    // (or a drop): one class per reason of ours, each in README.md.
    ("lenient-cseq", |f| refused_for(f, &["bad_cseq"])),
    ("lenient-from-to", |f| {
        refused_for(f, &["bad_from", "bad_to"])
    }),
    ("lenient-via", |f| refused_for(f, &["bad_via"])),
    ("lenient-max-forwards", |f| {
        refused_for(f, &["bad_max_forwards"])
    }),
    // Header lines (the colon-less one is a known difference above):
    // a name that is not a token (RFC 3261 §7.3.1, §25.1 header-name),
    // a continuation line before any header (§7.3.1 folds a header).
    ("lenient-header-lines", |f| refused_for(f, &["bad_header"])),
    ("lenient-request-line", |f| {
        refused_for(f, &["bad_start_line"])
    }),
    ("lenient-line-ends", |f| {
        refused_for(f, &["bare_line_break", "no_end_of_headers"])
    }),
    ("lenient-utf8", |f| refused_for(f, &["not_utf8"])),
    ("lenient-mandatory-headers", |f| {
        refused_for(f, &["missing_header"])
    }),
    ("lenient-repeated-headers", |f| {
        refused_for(f, &["repeated_header"])
    }),
    ("lenient-content-length-framing", |f| {
        refused_for(f, &["content_length_mismatch", "content_length_missing"])
    }),
    // Method names are case-sensitive (RFC 3261 §7.1, §20.16 for CSeq):
    // `iNVITE` is an extension method, not INVITE. rsipstack's Method
    // matches in any case; ezk's matches a known name in any case, and
    // as a prefix (`INVITEX` reads as INVITE).
    ("oracle-method-case-or-prefix", |f| {
        (f.content_differs_in("method") || f.content_differs_in("cseq"))
            && f.methods_differ_by_case_or_prefix()
    }),
    // RFC 3261 §7.5: CRLFs before the start line are ignored (we do on
    // either transport); the oracles' datagram paths take them for an
    // empty start line or an empty head.
    ("leading-crlfs", |f| {
        f.we_accept() && f.their_refusal().is_some() && f.input.starts_with(b"\r\n")
    }),
    // RFC 3261 §7.1: "The SIP-Version string is case-insensitive";
    // rsipstack reads `sIP/2.0 200 OK` as a request with method `sIP/2.0`.
    ("version-literal-case", |f| {
        let start = &f.input[leading_crlfs(f.input)..];
        f.we_accept()
            && f.their_refusal().is_some()
            && start.len() >= 4
            && start[..4].eq_ignore_ascii_case(b"SIP/")
            && &start[..4] != b"SIP/"
    }),
    // RFC 3261 §25.1: a URI header's value may hold `?` unescaped
    // (hnv-unreserved: `[ ] / ? : + $`); ezk's SIP URI refuses the `?`
    // (RFC 4475 §3.1.2.11's escruri, mutated; the others pass).
    ("ezk-uri-header-characters", |f| {
        f.oracle == "ezk"
            && f.we_accept()
            && f.their_refusal() == Some("start_line")
            && f.request_uri().is_some_and(|uri| {
                uri.split_once('?')
                    .is_some_and(|(_, headers)| headers.contains('?'))
            })
    }),
    // ezk's name-addr holds a SIP URI only; RFC 3261 §25.1 (addr-spec =
    // SIP-URI / SIPS-URI / absoluteURI) and RFC 4475 §3.3.4 (unksm2:
    // `To: isbn:…`, `From: <http://…>`) allow any. As for the
    // Request-URI, our parser checks the absolute-URI shape only.
    ("name-addr-uri-grammar-left-to-routing", |f| {
        f.oracle == "ezk"
            && f.we_accept()
            && f.their_refusal()
                .is_some_and(|label| label == "malformed:From" || label == "malformed:To")
            && f.name_addr_uri_is_not_sip(
                f.their_refusal()
                    .unwrap_or_default()
                    .trim_start_matches("malformed:"),
            )
    }),
    // rsipstack's stream codec finds Content-Length only as `name:` with
    // no whitespace before the colon and the value on the same line;
    // RFC 3261 §7.3.1 allows both (RFC 4475 §3.1.1.1, wsinv:
    // `Content-Length   : 150`). It frames the message without its body
    // (the body becomes the next message) where we wait for the body.
    ("rsip-codec-content-length-spelling", |f| {
        f.oracle == "rsipstack"
            && matches!(f.ours, Outcome::Wait)
            && content_length_spelled_loosely(f.head())
    }),
    // rsipstack's stream codec adds Content-Length to the head's length
    // unchecked: a value near 2^64 overflows (a panic in a debug build, a
    // wrapped length and a misframed stream in a release build). Ours
    // refuses such a length (RFC 3261 §20.14; 413 past our limit).
    ("rsip-codec-content-length-overflow", |f| {
        f.oracle == "rsipstack"
            && matches!(f.theirs, Outcome::Panic(message) if message.contains("overflow"))
            && !f.we_accept()
    }),
    // ezk decodes a URI's escapes into a UTF-8 string and refuses the URI
    // when the octets are not UTF-8 (`%A4`); RFC 3261 §25.1 `escaped =
    // "%" HEXDIG HEXDIG` is any octet (RFC 4475 §3.1.1.3, esc01).
    ("ezk-escaped-octets-must-be-utf8", |f| {
        f.oracle == "ezk"
            && f.we_accept()
            && f.their_refusal().is_some_and(|label| {
                ["start_line", "malformed:From", "malformed:To"].contains(&label)
            })
            && has_non_utf8_escape(f.head())
    }),
    // ezk is right here and ours lenient, on purpose at this layer: a
    // user part with `[`, `]` or `#` (RFC 3261 §25.1 `user` allows
    // neither) in a From or To URI, which our parser checks only for an
    // absolute URI's shape and our `parse_sip_uri` lets through (README:
    // noticed, left alone).
    ("our-uri-user-part-lenient", |f| {
        let label = f.their_refusal().unwrap_or_default();
        f.oracle == "ezk"
            && f.we_accept()
            && (label == "malformed:From" || label == "malformed:To")
            && f.name_addr_user_has(label.trim_start_matches("malformed:"), &['[', ']', '#'])
    }),
    // rsipstack's transaction key needs a From tag: RFC 2543 requests
    // have none (RFC 3261 §8.1.1.3, §12.1.1; RFC 4475 §3.4.1).
    ("rsip-needs-from-tag", |f| {
        f.we_accept()
            && f.their_refusal()
                .is_some_and(|label| label.ends_with("from_tag"))
    }),
    // rsipstack's typed Via knows a fixed list of transports; RFC 3261
    // §25.1 has `other-transport = token`.
    ("rsip-closed-via-transport", |f| {
        f.we_accept()
            && f.their_refusal()
                .is_some_and(|label| label.ends_with("via_transport"))
    }),
    // rsipstack takes a datagram without Content-Length as having no
    // body; RFC 3261 §18.3: the body runs to the end of the datagram.
    ("rsip-datagram-body-without-content-length", |f| {
        f.oracle == "rsipstack"
            && f.content_differs_in("body")
            && !has_header(f.head(), &["content-length", "l"])
    }),
];

/// Whether `head` holds a `%XX` escape of a non-ASCII octet that does not
/// decode to UTF-8 with its neighbours.
fn has_non_utf8_escape(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.split(['\r', '\n', ' ', '<', '>', ';', '?'])
        .filter(|word| word.contains('%'))
        .any(|word| switchboard_sip::uri::unescape(word).contains('\u{fffd}'))
}

/// Whether a Content-Length header (or `l`) has whitespace before its
/// colon or its value on a continuation line.
fn content_length_spelled_loosely(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    let lines: Vec<&str> = text.split("\r\n").collect();
    lines.iter().enumerate().skip(1).any(|(index, line)| {
        let Some((name, value)) = line.split_once(':') else {
            return false;
        };
        let trimmed = name.trim_end_matches([' ', '\t']);
        let is_length =
            trimmed.eq_ignore_ascii_case("content-length") || trimmed.eq_ignore_ascii_case("l");
        let folded = value.trim().is_empty()
            && lines
                .get(index + 1)
                .is_some_and(|next| next.starts_with([' ', '\t']));
        is_length && (trimmed.len() != name.len() || folded)
    })
}

fn leading_crlfs(bytes: &[u8]) -> usize {
    let mut at = 0;
    while bytes[at..].starts_with(b"\r\n") {
        at += 2;
    }
    at
}

/// The oracle accepts what we refuse for one of `labels`.
fn refused_for(f: &Facts<'_>, labels: &[&str]) -> bool {
    f.they_accept()
        && f.our_refusal()
            .is_some_and(|(label, _)| labels.contains(&label))
}

/// Whether `head` has a header named one of `names` (lower case).
fn has_header(head: &[u8], names: &[&str]) -> bool {
    head.split(|&b| b == b'\n').skip(1).any(|line| {
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let name = String::from_utf8_lossy(name).trim().to_ascii_lowercase();
        line.contains(&b':') && names.contains(&name.as_str())
    })
}

/// Compares our outcome and an oracle's on `input`.
pub fn compare(
    oracle: &'static str,
    transport: Transport,
    input: &[u8],
    ours: &Outcome,
    theirs: &Outcome,
) -> Option<Divergence> {
    let mode = match transport {
        Transport::Datagram => "datagram",
        Transport::Stream => "stream",
    };
    let (kind, reason) = match (ours, theirs) {
        (_, Outcome::Panic(message)) => (
            "oracle-panics".to_owned(),
            format!("{oracle} panics ({message}); ours {}", brief(ours)),
        ),
        (Outcome::Panic(_), _) => unreachable!("a panic of ours is not caught"),
        (Outcome::Accept(a), Outcome::Accept(b)) => {
            let field = first_difference(a, b)?;
            (
                format!("content:{field}"),
                format!(
                    "both accept; ours reads {}, {oracle} reads {}",
                    show(a, field),
                    show(b, field)
                ),
            )
        }
        (Outcome::Refuse { .. }, Outcome::Refuse { .. }) | (Outcome::Wait, Outcome::Wait) => {
            return None;
        }
        (Outcome::Refuse { label, detail }, Outcome::Accept(_)) => (
            format!("ours-refuses:{label}"),
            format!("ours refuses ({detail}); {oracle} accepts"),
        ),
        (Outcome::Accept(_), Outcome::Refuse { label, detail }) => (
            format!("oracle-refuses:{label}"),
            format!("ours accepts; {oracle} refuses ({detail})"),
        ),
        (Outcome::Wait, Outcome::Accept(_)) => (
            "ours-waits:oracle-accepts".to_owned(),
            format!("ours waits; {oracle} accepts"),
        ),
        (Outcome::Wait, Outcome::Refuse { label, detail }) => (
            format!("ours-waits:oracle-refuses:{label}"),
            format!("ours waits; {oracle} refuses ({detail})"),
        ),
        (Outcome::Accept(_), Outcome::Wait) => (
            "oracle-waits:ours-accepts".to_owned(),
            format!("ours accepts; {oracle} waits"),
        ),
        (Outcome::Refuse { label, detail }, Outcome::Wait) => (
            format!("oracle-waits:ours-refuses:{label}"),
            format!("ours refuses ({detail}); {oracle} waits"),
        ),
    };
    let facts = Facts {
        oracle,
        input,
        ours,
        theirs,
    };
    let known = KNOWN
        .iter()
        .chain(TRIAGED)
        .find(|(_, rule)| rule(&facts))
        .map(|(class, _)| *class);
    Some(Divergence {
        signature: format!("{oracle}/{mode}/{kind}"),
        reason,
        known,
    })
}

fn brief(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Accept(_) => "accepts".to_owned(),
        Outcome::Wait => "waits".to_owned(),
        Outcome::Refuse { label, .. } => format!("refuses ({label})"),
        Outcome::Panic(_) => "panics".to_owned(),
    }
}

fn first_difference(a: &Summary, b: &Summary) -> Option<&'static str> {
    if a.method != b.method || a.status.is_some() != b.status.is_some() {
        Some("method")
    } else if a.status != b.status {
        Some("status")
    } else if a.call_id != b.call_id {
        Some("call_id")
    } else if a.cseq != b.cseq {
        Some("cseq")
    } else if a.body != b.body {
        Some("body")
    } else {
        None
    }
}

fn show(summary: &Summary, field: &str) -> String {
    let text = match field {
        "method" => format!("{:?}/{:?}", summary.method, summary.status),
        "status" => format!("{:?}", summary.status),
        "call_id" => format!("{:?}", summary.call_id),
        "cseq" => format!("{:?}", summary.cseq),
        _ => format!("{} body bytes", summary.body.len()),
    };
    crate::one_line(&text, 80)
}

/// Whether a header line of `head` continues on the next (RFC 3261
/// §7.3.1 folding).
fn has_folding(head: &[u8]) -> bool {
    head.windows(3)
        .any(|w| w[0] == b'\r' && w[1] == b'\n' && (w[2] == b' ' || w[2] == b'\t'))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The limits the differential runs ours with: the defaults (the oracles
/// have none below 64 KiB).
pub const LIMITS: Limits = crate::props::DEFAULT;
