//! RFC 4475's torture messages (`tests/rfc4475/*.dat`, see its README)
//! against the verdicts the RFC gives them: one table, file name → what
//! the parser must answer. Where the RFC's verdict belongs to a later
//! layer (a UA's 501, a registrar's 401, …), the parser accepts and the
//! row asserts the facts that layer decides on.

use std::path::Path;

use switchboard_sip::build::response_to;
use switchboard_sip::matching::{ServerKey, server_key};
use switchboard_sip::uri::{parse_sip_uri, unescape};
use switchboard_sip::values::{parse_name_addr, parse_via, split_list};
use switchboard_sip::{Limits, Message, Method, Refusal, StartLine, Transport, parse};

use Transport::{Datagram, Stream};

/// What the parser must make of a message.
enum Verdict {
    /// Parsed whole, `check` holds; on a datagram the bytes past the
    /// message (ignored, RFC 3261 §18.3) start with `trailing`.
    Accept {
        check: fn(&Message<'_>),
        trailing: &'static str,
    },
    /// Refused with this reason and answered with this status, the
    /// request read so the response can be built.
    Respond(&'static str, u16),
    /// Refused with this reason and discarded: no response.
    Drop(&'static str),
    /// A stream that must wait for more bytes.
    Wait,
}

use Verdict::{Drop, Respond, Wait};

const fn accept(check: fn(&Message<'_>)) -> Verdict {
    Verdict::Accept {
        check,
        trailing: "",
    }
}

/// File name (RFC 4475 section), transport, verdict. The RFC's messages
/// "ostensibly" arrive over UDP unless a row says otherwise.
fn table() -> Vec<(&'static str, Transport, Verdict)> {
    vec![
        // §3.1.1 Valid messages: every one is accepted.
        ("wsinv", Datagram, accept(wsinv)),     // 3.1.1.1
        ("intmeth", Datagram, accept(intmeth)), // 3.1.1.2: a proxy 404s or forwards, a UA 501s
        ("esc01", Datagram, accept(esc01)),     // 3.1.1.3
        ("escnull", Datagram, accept(escnull)), // 3.1.1.4
        ("esc02", Datagram, accept(esc02)),     // 3.1.1.5: a UA answers the unknown method 501
        ("lwsdisp", Datagram, accept(lwsdisp)), // 3.1.1.6
        ("longreq", Datagram, accept(longreq)), // 3.1.1.7
        // 3.1.1.8: the INVITE after the REGISTER is noise in the datagram.
        (
            "dblreq",
            Datagram,
            Verdict::Accept {
                check: dblreq,
                trailing: "\r\nINVITE sip:joe@example.com SIP/2.0\r\n",
            },
        ),
        ("semiuri", Datagram, accept(semiuri)), // 3.1.1.9
        ("transports", Datagram, accept(transports)), // 3.1.1.10
        ("mpart01", Datagram, accept(mpart01)), // 3.1.1.11
        ("unreason", Datagram, accept(unreason)), // 3.1.1.12
        ("noreason", Datagram, accept(noreason)), // 3.1.1.13
        // §3.1.2 Invalid messages.
        ("badinv01", Datagram, Respond("bad_via", 400)), // 3.1.2.1: "should respond with a 400"
        // 3.1.2.2: over UDP a 400; over a stream, wait for more (the
        // transport closes the connection if none comes).
        ("clerr", Datagram, Respond("content_length_mismatch", 400)),
        ("clerr", Stream, Wait),
        // 3.1.2.3: "respond with an error"; on a stream the framing is
        // lost and the transport closes the connection.
        ("ncl", Datagram, Respond("bad_content_length", 400)),
        ("ncl", Stream, Respond("bad_content_length", 400)),
        ("scalar02", Datagram, Respond("bad_cseq", 400)), // 3.1.2.4: "400 due to the CSeq error"
        ("scalarlg", Datagram, Drop("bad_cseq")), // 3.1.2.5: a response, "simply discard it"
        ("quotbal", Datagram, Respond("bad_to", 400)), // 3.1.2.6: "should return a 400"
        // 3.1.2.7: "reasonable always to reject … with a 400"; a request
        // line we cannot read is dropped (tests/parse.rs, garbled lines).
        ("ltgtruri", Datagram, Drop("bad_start_line")),
        ("lwsruri", Datagram, Respond("bad_start_line", 400)), // 3.1.2.8: "should respond with a 400"
        // 3.1.2.9 and 3.1.2.10: "acceptable to reject as malformed";
        // extra spaces around the elements are dropped like 3.1.2.7.
        ("lwsstart", Datagram, Drop("bad_start_line")),
        ("trws", Datagram, Drop("bad_start_line")),
        // 3.1.2.11: 400 acceptable, or be liberal: accepted, and a proxy
        // must not forward the escaped headers (facts asserted).
        ("escruri", Datagram, accept(escruri)),
        // 3.1.2.12: reject only if the Date matters; the parser does not
        // read Date, so accepted.
        ("baddate", Datagram, accept(baddate)),
        // 3.1.2.13: 400 reasonable, or infer the brackets: accepted (no
        // ambiguity here), the URI with its header read.
        ("regbadct", Datagram, accept(regbadct)),
        ("badaspec", Datagram, Respond("bad_to", 400)), // 3.1.2.14: 400 "reasonable"
        ("baddn", Datagram, Respond("bad_from", 400)),  // 3.1.2.15: 400 "reasonable always"
        ("badvers", Datagram, Respond("version", 505)), // 3.1.2.16: "should respond … 505"
        ("mismatch01", Datagram, Respond("bad_cseq", 400)), // 3.1.2.17: "will respond with a 400"
        // 3.1.2.18: 501 preferred, "a 400 Bad Request is also acceptable".
        ("mismatch02", Datagram, Respond("bad_cseq", 400)),
        ("bigcode", Datagram, Drop("bad_start_line")), // 3.1.2.19: "should simply drop it"
        // §3.2 Transaction layer: 3.2.1 allows a 400 or the RFC 2543
        // transaction key; accepted, and matching falls back to that key.
        ("badbranch", Datagram, accept(badbranch)),
        // §3.3 Application layer.
        // 3.3.1: "must not break", ideally a 400; without From and To no
        // response can be built, so it is dropped (tests/parse.rs).
        ("insuf", Datagram, Drop("missing_header")),
        ("unkscm", Datagram, accept(unkscm)), // 3.3.2: well formed; a UA or proxy answers 416
        ("novelsc", Datagram, accept(novelsc)), // 3.3.3: well formed; 416 (or 404)
        ("unksm2", Datagram, accept(unksm2)), // 3.3.4: well formed; a registrar answers 400
        ("bext01", Datagram, accept(bext01)), // 3.3.5: answered 420 by a later layer
        ("invut", Datagram, accept(invut)),   // 3.3.6: a UAS answers 415
        ("regaut01", Datagram, accept(regaut01)), // 3.3.7: a registrar answers 401
        ("multi01", Datagram, Respond("repeated_header", 400)), // 3.3.8: "400 Bad Request"
        // 3.3.9: "respond with an error"; on a stream the transport also
        // closes the connection.
        ("mcl01", Datagram, Respond("repeated_header", 400)),
        ("mcl01", Stream, Respond("repeated_header", 400)),
        ("bcast", Datagram, accept(bcast)), // 3.3.10: well formed; a UA or proxy drops it
        ("zeromf", Datagram, accept(zeromf)), // 3.3.11: a proxy answers 483, a UAS processes it
        ("cparam01", Datagram, accept(cparam01)), // 3.3.12: the registration succeeds
        ("cparam02", Datagram, accept(cparam02)), // 3.3.13: the registration succeeds
        ("regescrt", Datagram, accept(regescrt)), // 3.3.14: the registration succeeds
        ("sdp01", Datagram, accept(sdp01)), // 3.3.15: a UAS answers 406 (or 400)
        // §3.4 Backward compatibility: 3.4.1 is accepted; with no
        // Content-Length the body is the rest of the datagram, while a
        // stream cannot frame it.
        ("inv2543", Datagram, accept(inv2543)),
        ("inv2543", Stream, Respond("content_length_missing", 400)),
    ]
}

const DIR: &str = "tests/rfc4475";

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(DIR)
        .join(format!("{name}.dat"));
    std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn every_message_gets_the_rfcs_verdict() {
    for (name, transport, verdict) in table() {
        let bytes = read(name);
        let context = format!("{name} over {transport:?}");
        let result = parse(&bytes, transport, &Limits::default());
        match (verdict, result) {
            (Verdict::Accept { check, trailing }, Ok(Some((message, used)))) => {
                let rest = String::from_utf8_lossy(&bytes[used..]);
                assert!(rest.starts_with(trailing), "{context}: left {rest:?}");
                assert_eq!(rest.is_empty(), trailing.is_empty(), "{context}");
                eprintln!("checking the facts of {context}");
                check(&message);
            }
            (Respond(reason, status), Err(malformed)) => {
                assert_eq!(
                    (malformed.reason, malformed.refusal),
                    (reason, Refusal::Respond(status)),
                    "{context}: {}",
                    malformed.detail
                );
                let request = malformed.request.expect("the request, to answer it");
                let response = response_to(&request, status, "", Some("rfc4475"));
                assert!(
                    response.starts_with(format!("SIP/2.0 {status} ").as_bytes()),
                    "{context}"
                );
            }
            (Drop(reason), Err(malformed)) => {
                assert_eq!(
                    (malformed.reason, malformed.refusal),
                    (reason, Refusal::Drop),
                    "{context}: {}",
                    malformed.detail
                );
                assert!(malformed.request.is_none(), "{context}");
            }
            (Wait, Ok(None)) => {}
            (_, result) => panic!("{context}: not the RFC's verdict: {result:?}"),
        }
    }
}

#[test]
fn every_file_is_in_the_table_and_every_row_has_its_file() {
    let table = table();
    let mut files: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter_map(|file| file.strip_suffix(".dat").map(str::to_owned))
        .collect();
    files.sort();
    for file in &files {
        assert!(
            table.iter().any(|(name, ..)| name == file),
            "{file}.dat has no verdict in the table"
        );
    }
    for (name, ..) in &table {
        assert!(files.iter().any(|file| file == name), "no {name}.dat");
    }
    assert_eq!(files.len(), 49, "RFC 4475 has 49 messages");
}

/// "Parsers must not break": no prefix of any message panics, and a
/// stream waits for the rest of a message it would accept whole.
#[test]
fn every_prefix_of_every_message_is_handled() {
    for (name, ..) in table() {
        let bytes = read(name);
        let whole = matches!(
            parse(&bytes, Stream, &Limits::default()),
            Ok(Some((_, used))) if used == bytes.len()
        );
        for end in 0..bytes.len() {
            let _ = parse(&bytes[..end], Datagram, &Limits::default());
            let partial = parse(&bytes[..end], Stream, &Limits::default());
            if whole {
                assert!(matches!(partial, Ok(None)), "{name} cut at {end}");
            }
        }
    }
}

// The facts the RFC points out in each accepted message.

fn request_uri<'a>(message: &Message<'a>) -> &'a str {
    match message.start {
        StartLine::Request { uri, .. } => uri,
        StartLine::Response { .. } => panic!("a request"),
    }
}

fn value<'m>(message: &'m Message<'_>, name: &str) -> &'m str {
    message
        .header(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .value
        .as_ref()
}

fn vias<'m>(message: &'m Message<'_>) -> Vec<switchboard_sip::values::Via<'m>> {
    message
        .headers_named("Via")
        .flat_map(|header| parse_via(&header.value).unwrap())
        .collect()
}

fn wsinv(message: &Message<'_>) {
    assert_eq!(message.method(), Some(Method::Invite));
    let uri = parse_sip_uri(request_uri(message)).unwrap();
    assert_eq!(uri.param("unknownparam"), Some(None));
    // Folded values joined, leading zeros read as the number.
    assert_eq!(message.cseq(), Some((9, "INVITE")));
    assert_eq!(value(message, "Max-Forwards"), "0068");
    assert_eq!(
        value(message, "NewFangledHeader"),
        "newfangled value continued newfangled value"
    );
    assert_eq!(value(message, "UnknownHeaderWithUnusualValue"), ";;,,;;,;");
    assert_eq!(value(message, "Subject"), "", "an empty subject (s)");
    // Via and v, comma-separated and separate, LWS everywhere.
    let vias = vias(message);
    let sent: Vec<_> = vias.iter().map(|via| (via.transport, via.host)).collect();
    assert_eq!(
        sent,
        [
            ("UDP", "192.0.2.2"),
            ("TCP", "spindle.example.com"),
            ("UDP", "192.168.255.111")
        ]
    );
    assert_eq!(vias[2].branch(), Some("z9hG4bK30239"));
    let to = parse_name_addr(value(message, "To")).unwrap();
    assert_eq!(to.tag(), Some("1918181833n"));
    let from = parse_name_addr(value(message, "From")).unwrap();
    assert_eq!(from.display, Some(r#"J Rosenberg \\\""#));
    assert_eq!(from.tag(), Some("98asjd8"));
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    assert_eq!(contact.display, Some(r#"Quoted string \"\""#));
    assert_eq!(contact.param("newparam"), Some(Some("newvalue")));
    assert_eq!(contact.param("secondparam"), Some(None));
    assert_eq!(contact.param("q"), Some(Some("0.33")));
    let route = parse_name_addr(value(message, "Route")).unwrap();
    assert_eq!(
        parse_sip_uri(route.uri).unwrap().param("unknown-no-value"),
        Some(None)
    );
    assert_eq!(message.body.len(), 150);
}

fn intmeth(message: &Message<'_>) {
    let method = "!interesting-Method0123456789_*+`.%indeed'~";
    assert_eq!(message.method(), Some(Method::Extension(method)));
    assert_eq!(message.cseq(), Some((139122385, method)));
    let uri = parse_sip_uri(request_uri(message)).unwrap();
    assert_eq!(
        uri.user,
        Some("1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*")
    );
    assert_eq!(
        uri.password,
        Some("&it+has=1,weird!*pas$wo~d_too.(doesn't-it)")
    );
    assert_eq!(uri.host, "example.com");
    assert_eq!(vias(message)[0].branch(), Some("z9hG4bK-.!%66*_+`'~"));
    let to = parse_name_addr(value(message, "To")).unwrap();
    assert_eq!(to.display, Some("BEL:\\\x07 NUL:\\\0 DEL:\\\x7f"));
    let from = parse_name_addr(value(message, "From")).unwrap();
    assert_eq!(from.display, Some("token1~` token2'+_ token3*%!.-"));
    assert_eq!(from.param("fromParam''~+*_!.-%"), Some(Some("работающий")));
    assert_eq!(from.tag(), Some("_token~1'+`*%!-."));
    assert_eq!(
        value(message, "Call-ID"),
        r#"intmeth.word%ZK-!.*_+'@word`~)(><:\/"][?}{"#
    );
    assert_eq!(
        value(message, "extensionHeader-!.%*+_`'~"),
        "\u{feff}大停電"
    );
}

fn esc01(message: &Message<'_>) {
    let user = |uri: &str| unescape(parse_sip_uri(uri).unwrap().user.unwrap()).into_owned();
    assert_eq!(user(request_uri(message)), "sips:user@example.com");
    assert_eq!(
        user(parse_name_addr(value(message, "To")).unwrap().uri),
        "user"
    );
    assert_eq!(
        user(parse_name_addr(value(message, "From")).unwrap().uri),
        "I have spaces"
    );
    let contact = parse_sip_uri(parse_name_addr(value(message, "Contact")).unwrap().uri).unwrap();
    assert_eq!(unescape(contact.user.unwrap()), "caller");
    assert_eq!(contact.param("lr"), Some(None));
    // Unescaped once only: value%41, not valueA.
    assert_eq!(
        unescape(contact.param("name").unwrap().unwrap()),
        "value%41"
    );
    assert_eq!(value(message, "Content-Type"), "application/sdp", "C");
}

fn escnull(message: &Message<'_>) {
    let user = |uri: &str| unescape(parse_sip_uri(uri).unwrap().user.unwrap()).into_owned();
    assert_eq!(
        user(parse_name_addr(value(message, "To")).unwrap().uri),
        "null-\0-null"
    );
    assert_eq!(
        user(parse_name_addr(value(message, "From")).unwrap().uri),
        "null-\0-null"
    );
    let contacts: Vec<String> = message
        .headers_named("Contact")
        .map(|header| user(parse_name_addr(&header.value).unwrap().uri))
        .collect();
    assert_eq!(contacts, ["\0", "\0\0"], "two distinct contacts");
}

fn esc02(message: &Message<'_>) {
    assert_eq!(message.method(), Some(Method::Extension("RE%47IST%45R")));
    assert_eq!(message.cseq(), Some((29344, "RE%47IST%45R")));
    assert_eq!(
        parse_name_addr(value(message, "To")).unwrap().display,
        Some("%Z%45")
    );
    assert_eq!(
        parse_name_addr(value(message, "From")).unwrap().display,
        Some("%Z%45")
    );
    assert_eq!(message.headers_named("Contact").count(), 2);
    assert_eq!(
        value(message, "C%6Fntact"),
        "<sip:alias2@host2.example.com>"
    );
}

fn lwsdisp(message: &Message<'_>) {
    let from = parse_name_addr(value(message, "From")).unwrap();
    assert_eq!(
        (from.display, from.uri),
        (Some("caller"), "sip:caller@example.com")
    );
    assert_eq!(from.tag(), Some("323"));
}

fn longreq(message: &Message<'_>) {
    let to = parse_name_addr(value(message, "To")).unwrap();
    assert_eq!(
        to.display.unwrap(),
        format!("I have a user name of {} proportion", "extreme".repeat(10))
    );
    let to_uri = parse_sip_uri(to.uri).unwrap();
    assert_eq!(to_uri.port, Some(6000));
    let long = format!("very{}value", "long".repeat(20));
    assert_eq!(to_uri.param("unknownparam1"), Some(Some(long.as_str())));
    let name = format!("longparam{}", "name".repeat(25));
    assert_eq!(to_uri.param(&name), Some(Some("shortvalue")));
    let name = format!("very{}ParameterNameWithNoValue", "long".repeat(25));
    assert_eq!(to_uri.param(&name), Some(None));
    let from = parse_name_addr(value(message, "From")).unwrap();
    let caller = "amazinglylongcallername".repeat(5);
    assert_eq!(parse_sip_uri(from.uri).unwrap().user, Some(caller.as_str()));
    let tag = format!("12{}424", "982".repeat(50));
    assert_eq!(from.tag(), Some(tag.as_str()));
    let name = format!("unknownheaderparam{}", "name".repeat(20));
    let param = format!("unknowheaderparam{}", "value".repeat(15));
    assert_eq!(from.param(&name), Some(Some(param.as_str())));
    let name = format!("unknownValueless{}", "paramname".repeat(10));
    assert_eq!(from.param(&name), Some(None));
    assert_eq!(
        value(message, "Call-ID"),
        format!("longreq.one{}longcallid", "really".repeat(20))
    );
    let unknown = format!("Unknown-{}-Name", "Long".repeat(20));
    assert!(value(message, &unknown).starts_with("unknown-long"));
    let vias = vias(message);
    assert_eq!(vias.len(), 34, "33 hops and the sender, in many spellings");
    for (index, via) in vias.iter().take(33).enumerate() {
        assert_eq!(via.host, format!("sip{}.example.com", 33 - index));
    }
    let branch = format!("very{}branchvalue", "long".repeat(50));
    assert_eq!(vias[33].branch(), Some(branch.as_str()));
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    assert_eq!(
        parse_sip_uri(contact.uri).unwrap().user,
        Some(caller.as_str())
    );
    assert_eq!(message.body.len(), 150);
}

fn dblreq(message: &Message<'_>) {
    assert_eq!(message.method(), Some(Method::Register));
    assert_eq!(message.body, b"");
}

fn semiuri(message: &Message<'_>) {
    let uri = parse_sip_uri(request_uri(message)).unwrap();
    assert_eq!(unescape(uri.user.unwrap()), "user;par=u@example.net");
    assert_eq!(uri.host, "example.com");
    assert_eq!(
        value(message, "Accept"),
        "application/sdp, application/pkcs7-mime, multipart/mixed, multipart/signed, message/sip, message/sipfrag"
    );
}

fn transports(message: &Message<'_>) {
    let transports: Vec<_> = vias(message).iter().map(|via| via.transport).collect();
    assert_eq!(transports, ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]);
}

fn mpart01(message: &Message<'_>) {
    assert_eq!(message.method(), Some(Method::Message));
    assert!(
        value(message, "Content-Type").starts_with("multipart/mixed;boundary=7a9cbec02ceef655")
    );
    assert_eq!(message.body.len(), 553);
    assert!(message.body.contains(&0), "binary, with NULs");
    assert!(message.body.ends_with(b"--7a9cbec02ceef655--\r\n"));
}

fn status<'a>(message: &Message<'a>) -> (u16, &'a str) {
    match message.start {
        StartLine::Response { code, reason, .. } => (code, reason),
        StartLine::Request { .. } => panic!("a response"),
    }
}

fn unreason(message: &Message<'_>) {
    assert_eq!(
        status(message),
        (200, "= 2**3 * 5**2 но сто девяносто девять - простое")
    );
    assert_eq!(message.body.len(), 154);
}

fn noreason(message: &Message<'_>) {
    assert_eq!(status(message), (100, ""));
}

fn escruri(message: &Message<'_>) {
    let uri = parse_sip_uri(request_uri(message)).unwrap();
    assert_eq!(uri.headers, [("Route", "%3Csip:example.com%3E")]);
}

fn baddate(message: &Message<'_>) {
    assert_eq!(value(message, "Date"), "Fri, 01 Jan 2010 16:00:00 EST");
}

fn regbadct(message: &Message<'_>) {
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    let uri = parse_sip_uri(contact.uri).unwrap();
    assert_eq!(uri.headers, [("Route", "%3Csip:sip.example.com%3E")]);
}

fn badbranch(message: &Message<'_>) {
    assert_eq!(vias(message)[0].branch(), Some("z9hG4bK"));
    assert!(matches!(server_key(message), Ok(ServerKey::Legacy { .. })));
}

fn unkscm(message: &Message<'_>) {
    assert_eq!(
        request_uri(message),
        "nobodyKnowsThisScheme:totallyopaquecontent"
    );
    assert!(
        parse_sip_uri(request_uri(message)).is_err(),
        "not sip: nor sips:"
    );
}

fn novelsc(message: &Message<'_>) {
    assert_eq!(request_uri(message), "soap.beep://192.0.2.103:3002");
    assert!(parse_sip_uri(request_uri(message)).is_err());
}

fn unksm2(message: &Message<'_>) {
    assert_eq!(message.method(), Some(Method::Register));
    let to = parse_name_addr(value(message, "To")).unwrap();
    assert_eq!(to.uri, "isbn:2983792873");
    assert!(
        parse_sip_uri(to.uri).is_err(),
        "no SIP AOR: the registrar's 400"
    );
    let from = parse_name_addr(value(message, "From")).unwrap();
    assert_eq!(from.uri, "http://www.example.com");
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    assert_eq!(contact.uri, "name:John_Smith");
}

fn bext01(message: &Message<'_>) {
    assert_eq!(
        split_list(value(message, "Require")).unwrap(),
        ["nothingSupportsThis", "nothingSupportsThisEither"]
    );
    assert_eq!(
        split_list(value(message, "Proxy-Require")).unwrap(),
        ["noProxiesSupportThis", "norDoAnyProxiesSupportThis"]
    );
}

fn invut(message: &Message<'_>) {
    assert_eq!(value(message, "Content-Type"), "application/unknownformat");
    assert_eq!(message.body.len(), 40);
}

fn regaut01(message: &Message<'_>) {
    assert_eq!(
        value(message, "Authorization"),
        "NoOneKnowsThisScheme opaque-data=here"
    );
}

fn bcast(message: &Message<'_>) {
    assert_eq!(status(message), (200, "OK"));
    assert_eq!(vias(message)[1].host, "255.255.255.255");
}

fn zeromf(message: &Message<'_>) {
    assert_eq!(value(message, "Max-Forwards"), "0");
}

fn cparam01(message: &Message<'_>) {
    // Without <>, the parameter is the Contact's, not the URI's.
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    assert_eq!(contact.uri, "sip:+19725552222@gw1.example.net");
    assert_eq!(contact.param("unknownparam"), Some(None));
}

fn cparam02(message: &Message<'_>) {
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    assert!(contact.params.is_empty());
    let uri = parse_sip_uri(contact.uri).unwrap();
    assert_eq!(uri.param("unknownparam"), Some(None));
}

fn regescrt(message: &Message<'_>) {
    let contact = parse_name_addr(value(message, "Contact")).unwrap();
    let uri = parse_sip_uri(contact.uri).unwrap();
    let [(name, route)] = uri.headers[..] else {
        panic!("one escaped header")
    };
    assert_eq!(
        (name, unescape(route).as_ref()),
        ("Route", "<sip:sip.example.com>")
    );
}

fn sdp01(message: &Message<'_>) {
    assert_eq!(value(message, "Accept"), "text/nobodyKnowsThis");
    assert_eq!(value(message, "Content-Type"), "application/sdp");
}

fn inv2543(message: &Message<'_>) {
    assert_eq!(vias(message)[0].branch(), None);
    assert!(matches!(server_key(message), Ok(ServerKey::Legacy { .. })));
    assert_eq!(parse_name_addr(value(message, "From")).unwrap().tag(), None);
    assert!(message.header("Max-Forwards").is_none());
    assert!(message.header("Content-Length").is_none());
    assert!(message.body.starts_with(b"v=0\r\n"));
    assert!(message.body.ends_with(b"m=audio 49217 RTP/AVP 0\r\n"));
}
