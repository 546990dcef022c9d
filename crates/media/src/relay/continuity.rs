//! One continuous RTP stream out of a leg whose source changes (RFC 3550
//! §5.1, §8): when the packets sent to a leg start coming from another
//! source (its far leg was re-pointed by a transfer, or the far end
//! restarted its stream after a re-INVITE), or from a source it was
//! reconnected to (whose numbering moved on meanwhile), they keep the first source's
//! SSRC, and their sequence numbers and timestamps are offset so that they
//! follow the last packet sent: the receiver sees one stream, with no
//! jump a jitter buffer or a loss counter would take for a fault. Until
//! the source changes, packets pass through unchanged.

use crate::rtp;

#[derive(Debug, Clone, Copy)]
struct State {
    out_ssrc: u32,
    in_ssrc: u32,
    seq_offset: u16,
    ts_offset: u32,
    last_seq: u16,
    last_ts: u32,
    last_at_ns: u64,
}

/// The continuity state of the packets one leg sends.
#[derive(Debug, Clone, Default)]
pub struct Continuity {
    state: Option<State>,
    /// The next packet starts a new stretch even if its SSRC is the one
    /// before (the leg was reconnected to a source it had before).
    rebase: bool,
}

impl Continuity {
    /// Rewrites one outgoing RTP packet in place (a datagram that is not
    /// RTP is left alone). `now_ns` is any monotonic clock in nanoseconds
    /// and `clock_rate` the stream's RTP clock: together they give the
    /// timestamp gap across a change of source.
    /// Makes the next packet continue the stream whatever its SSRC: for a
    /// leg whose source was re-pointed, possibly back to one it had
    /// before, whose numbering moved on meanwhile.
    pub fn rebase(&mut self) {
        self.rebase = self.state.is_some();
    }

    pub fn apply(&mut self, packet: &mut [u8], now_ns: u64, clock_rate: u32) {
        let Ok(header) = rtp::RtpHeader::peek(packet) else {
            return;
        };
        let (ssrc, seq, ts) = (header.ssrc(), header.sequence(), header.timestamp());
        let rebase = std::mem::take(&mut self.rebase);
        let state = match &mut self.state {
            None => self.state.insert(State {
                out_ssrc: ssrc,
                in_ssrc: ssrc,
                seq_offset: 0,
                ts_offset: 0,
                last_seq: seq,
                last_ts: ts,
                last_at_ns: now_ns,
            }),
            Some(state) => {
                if state.in_ssrc != ssrc || rebase {
                    let elapsed_ns = now_ns.saturating_sub(state.last_at_ns);
                    let elapsed_ts =
                        (u128::from(elapsed_ns) * u128::from(clock_rate) / 1_000_000_000) as u32;
                    state.in_ssrc = ssrc;
                    state.seq_offset = state.last_seq.wrapping_add(1).wrapping_sub(seq);
                    state.ts_offset = state
                        .last_ts
                        .wrapping_add(elapsed_ts.max(1))
                        .wrapping_sub(ts);
                }
                state
            }
        };
        let out_seq = seq.wrapping_add(state.seq_offset);
        let out_ts = ts.wrapping_add(state.ts_offset);
        if state.seq_offset != 0 || state.ts_offset != 0 || state.out_ssrc != ssrc {
            rtp::set_sequence(packet, out_seq);
            rtp::set_timestamp(packet, out_ts);
            rtp::set_ssrc(packet, state.out_ssrc);
        }
        // Only a newer packet moves the end of the stream (serial number
        // arithmetic, RFC 1982): a late one must not pull it back.
        if (out_seq.wrapping_sub(state.last_seq) as i16) > 0 {
            state.last_seq = out_seq;
            state.last_ts = out_ts;
        }
        state.last_at_ns = now_ns;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 0];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.extend_from_slice(&[0xd5; 160]);
        p
    }

    fn fields(p: &[u8]) -> (u16, u32, u32) {
        let h = rtp::RtpHeader::peek(p).unwrap();
        (h.sequence(), h.timestamp(), h.ssrc())
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn one_source_passes_through_unchanged() {
        let mut c = Continuity::default();
        for (i, seq) in [100u16, 101, 103, 102, 104].into_iter().enumerate() {
            let original = packet(seq, u32::from(seq) * 160, 0xaaaa);
            let mut p = original.clone();
            c.apply(&mut p, i as u64 * 20 * MS, 8000);
            assert_eq!(p, original);
        }
    }

    #[test]
    fn a_new_source_continues_the_sequence_timestamp_and_ssrc() {
        let mut c = Continuity::default();
        for seq in 1000u16..1010 {
            let mut p = packet(seq, 50_000 + u32::from(seq - 1000) * 160, 0xaaaa);
            c.apply(&mut p, u64::from(seq - 1000) * 20 * MS, 8000);
        }
        // Last sent: seq 1009, ts 51_440 at 180 ms. The new source starts
        // 60 ms later (480 units at 8 kHz).
        let mut p = packet(7, 9_000_000, 0xbbbb);
        c.apply(&mut p, 240 * MS, 8000);
        assert_eq!(fields(&p), (1010, 51_440 + 480, 0xaaaa));
        assert_eq!(p[12..], packet(7, 0, 0)[12..], "the payload is untouched");
        let mut p = packet(8, 9_000_160, 0xbbbb);
        c.apply(&mut p, 260 * MS, 8000);
        assert_eq!(fields(&p), (1011, 51_440 + 480 + 160, 0xaaaa));
    }

    #[test]
    fn offsets_wrap_around_sequence_and_timestamp_ends() {
        let mut c = Continuity::default();
        let mut p = packet(65_535, u32::MAX - 100, 1);
        c.apply(&mut p, 0, 8000);
        let mut p = packet(20, 5, 2);
        c.apply(&mut p, 20 * MS, 8000);
        assert_eq!(fields(&p), (0, (u32::MAX - 100).wrapping_add(160), 1));
    }

    #[test]
    fn a_rebase_continues_the_stream_even_from_the_same_source() {
        let mut c = Continuity::default();
        c.rebase(); // nothing sent yet: nothing to continue
        let mut p = packet(100, 1600, 0xaaaa);
        c.apply(&mut p, 0, 8000);
        assert_eq!(fields(&p), (100, 1600, 0xaaaa));
        // Reconnected to the same source 1 s later, which went on meanwhile.
        c.rebase();
        let mut p = packet(150, 1600 + 50 * 160, 0xaaaa);
        c.apply(&mut p, 1000 * MS, 8000);
        assert_eq!(fields(&p), (101, 1600 + 8000, 0xaaaa));
        let mut p = packet(151, 1600 + 51 * 160, 0xaaaa);
        c.apply(&mut p, 1020 * MS, 8000);
        assert_eq!(fields(&p), (102, 1600 + 8160, 0xaaaa));
        // A rebase with a new source is one re-anchoring, not two.
        c.rebase();
        let mut p = packet(7, 0, 0xbbbb);
        c.apply(&mut p, 1040 * MS, 8000);
        let mut q = packet(8, 160, 0xbbbb);
        c.apply(&mut q, 1060 * MS, 8000);
        assert_eq!(fields(&p), (103, 1600 + 8320, 0xaaaa));
        assert_eq!(fields(&q), (104, 1600 + 8480, 0xaaaa));
    }

    #[test]
    fn a_late_packet_does_not_pull_the_stream_end_back() {
        let mut c = Continuity::default();
        for (seq, at) in [(10u16, 0u64), (12, 40), (11, 45)] {
            let mut p = packet(seq, u32::from(seq) * 160, 1);
            c.apply(&mut p, at * MS, 8000);
        }
        let mut p = packet(500, 0, 2);
        c.apply(&mut p, 45 * MS, 8000);
        // Follows 12, not the late 11; same instant: the gap is one unit.
        assert_eq!(fields(&p).0, 13);
        assert_eq!(fields(&p).1, 12 * 160 + 1);
    }
}
