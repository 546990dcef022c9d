//! Our parser on any bytes, as a datagram and as a stream, with the
//! default limits and with small ones: it never panics, never borrows
//! past the input, and what it accepts is self-consistent (see
//! `switchboard_sip_fuzz::props`). A broken property is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    switchboard_sip_fuzz::props::check(data);
});
