//! The same bytes through our parser and the oracles (rsipstack on a
//! datagram and a stream, ezk on a datagram). A disagreement that is not
//! a known difference is written to the findings directory
//! (`$SIP_FUZZ_FINDINGS`) with a one-line reason; it never stops the run.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_sip::Transport;
use switchboard_sip_fuzz::{classify, findings, oracles, ours};

fuzz_target!(|data: &[u8]| {
    let datagram = ours(data, Transport::Datagram, &classify::LIMITS);
    let stream = ours(data, Transport::Stream, &classify::LIMITS);
    let runs = [
        (
            "rsipstack",
            Transport::Datagram,
            &datagram,
            oracles::rsip_datagram(data),
        ),
        (
            "rsipstack",
            Transport::Stream,
            &stream,
            oracles::rsip_stream(data),
        ),
        (
            "ezk",
            Transport::Datagram,
            &datagram,
            oracles::ezk_datagram(data),
        ),
    ];
    for (oracle, transport, ours, theirs) in &runs {
        if let Some(divergence) = classify::compare(oracle, *transport, data, ours, theirs) {
            match divergence.known {
                Some(class) => findings::record(
                    class,
                    &format!("{}: {}", divergence.signature, divergence.reason),
                    data,
                    true,
                ),
                None => findings::record(&divergence.signature, &divergence.reason, data, false),
            }
        }
    }
});
