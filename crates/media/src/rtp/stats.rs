//! Receiver statistics of RFC 3550: the sequence-number bookkeeping of
//! Appendix A.1 (extended sequence numbers, probation of a new source,
//! wrap-around, restarts), the loss of Appendix A.3 and the interarrival
//! jitter of Appendix A.8, in timestamp units.

/// A source is valid after this many packets in sequence (A.1).
const MIN_SEQUENTIAL: u32 = 2;
/// A jump forward of less than this is taken as loss (A.1).
const MAX_DROPOUT: u16 = 3000;
/// A jump backward of less than this is taken as reordering (A.1).
const MAX_MISORDER: u16 = 100;
const SEQ_MOD: u32 = 1 << 16;

/// What a receiver has seen of one stream, summed over the sources it had
/// (a new SSRC, as after a transfer, starts a new count that adds to the
/// earlier ones).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Reception {
    /// Packets counted by A.1 (a source's first packet is its probation).
    pub received: u64,
    /// Packets expected from the first to the highest sequence number.
    pub expected: u64,
    /// `expected - received`: negative when duplicates arrived (A.3).
    pub lost: i64,
    /// Lost over expected since the start, 0 when nothing is expected.
    pub fraction_lost: f64,
    /// Interarrival jitter of the current source, in timestamp units (A.8).
    pub jitter: u32,
}

/// The per-source state of RFC 3550 Appendix A.1 and A.8. Not shared
/// between threads: the relay keeps one per leg in its worker.
#[derive(Debug, Clone, Default)]
pub struct ReceiverStats {
    ssrc: Option<u32>,
    max_seq: u16,
    cycles: u32,
    base_seq: u32,
    bad_seq: u32,
    probation: u32,
    received: u32,
    valid: bool,
    expected_prior: u32,
    received_prior: u32,
    /// Last transit time, `None` until a counted packet gave one.
    transit: Option<i32>,
    /// Jitter × 16, as A.8 keeps it for integer arithmetic.
    jitter16: u32,
    earlier_received: u64,
    earlier_expected: u64,
}

impl ReceiverStats {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one RTP packet's SSRC, sequence number and timestamp, with its
    /// arrival time expressed in the same clock's units. Returns whether
    /// the packet was counted (false during probation and for a jump
    /// A.1 takes as a possible restart).
    pub fn update(&mut self, ssrc: u32, sequence: u16, timestamp: u32, arrival: u32) -> bool {
        if self.ssrc != Some(ssrc) {
            self.new_source(ssrc, sequence);
        }
        if !self.update_seq(sequence) {
            return false;
        }
        // A.8: D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1}) = transit_i - transit_{i-1}.
        let transit = arrival.wrapping_sub(timestamp) as i32;
        if let Some(previous) = self.transit {
            let d = transit.wrapping_sub(previous).unsigned_abs();
            let j = u64::from(self.jitter16) + u64::from(d) - u64::from((self.jitter16 + 8) >> 4);
            self.jitter16 = u32::try_from(j).unwrap_or(u32::MAX);
        }
        self.transit = Some(transit);
        true
    }

    fn new_source(&mut self, ssrc: u32, sequence: u16) {
        let current = self.current();
        *self = Self {
            ssrc: Some(ssrc),
            earlier_received: self.earlier_received + current.0,
            earlier_expected: self.earlier_expected + current.1,
            ..Self::default()
        };
        self.init_seq(sequence);
        self.max_seq = sequence.wrapping_sub(1);
        self.probation = MIN_SEQUENTIAL;
        self.valid = false;
    }

    fn init_seq(&mut self, sequence: u16) {
        self.base_seq = u32::from(sequence);
        self.max_seq = sequence;
        self.bad_seq = SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// RFC 3550 Appendix A.1, `update_seq`.
    fn update_seq(&mut self, sequence: u16) -> bool {
        let udelta = sequence.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if sequence == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = sequence;
                if self.probation == 0 {
                    self.init_seq(sequence);
                    self.valid = true;
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = sequence;
            }
            return false;
        } else if udelta < MAX_DROPOUT {
            if sequence < self.max_seq {
                self.cycles += SEQ_MOD;
            }
            self.max_seq = sequence;
        } else if u32::from(udelta) <= SEQ_MOD - u32::from(MAX_MISORDER) {
            if u32::from(sequence) == self.bad_seq {
                // Two packets in sequence after a big jump: the sender
                // restarted; resynchronise as for a new source.
                self.init_seq(sequence);
            } else {
                self.bad_seq = (u32::from(sequence) + 1) & (SEQ_MOD - 1);
                return false;
            }
        }
        // else: a duplicate or a reordered packet, counted as received.
        self.received += 1;
        true
    }

    /// (received, expected) of the current source.
    fn current(&self) -> (u64, u64) {
        if !self.valid {
            return (0, 0);
        }
        let extended_max = u64::from(self.cycles) + u64::from(self.max_seq);
        let expected = (extended_max + 1).saturating_sub(u64::from(self.base_seq));
        (u64::from(self.received), expected)
    }

    /// The highest sequence number received, extended with its wrap count.
    pub fn extended_max(&self) -> u32 {
        self.cycles.wrapping_add(u32::from(self.max_seq))
    }

    /// The totals and the current jitter.
    pub fn reception(&self) -> Reception {
        let (received, expected) = self.current();
        let received = received + self.earlier_received;
        let expected = expected + self.earlier_expected;
        let lost = i64::try_from(expected).unwrap_or(i64::MAX)
            - i64::try_from(received).unwrap_or(i64::MAX);
        let fraction_lost = if expected == 0 {
            0.0
        } else {
            lost.max(0) as f64 / expected as f64
        };
        Reception {
            received,
            expected,
            lost,
            fraction_lost,
            jitter: self.jitter16 >> 4,
        }
    }

    /// The fraction lost since the previous call, as the 8-bit fixed-point
    /// number of a reception report block (A.3); 0 when packets arrived
    /// beyond those expected (duplicates).
    pub fn interval_fraction_lost(&mut self) -> u8 {
        let (received, expected) = self.current();
        let (received, expected) = (received as u32, expected as u32);
        let expected_interval = expected.wrapping_sub(self.expected_prior);
        let received_interval = received.wrapping_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = received;
        let lost_interval = i64::from(expected_interval) - i64::from(received_interval);
        if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / i64::from(expected_interval)).min(255) as u8
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds packets 20 ms apart at 8 kHz, on time.
    fn feed(stats: &mut ReceiverStats, ssrc: u32, sequences: impl IntoIterator<Item = u16>) {
        for seq in sequences {
            let ts = u32::from(seq).wrapping_mul(160);
            stats.update(ssrc, seq, ts, ts.wrapping_add(1000));
        }
    }

    #[test]
    fn first_packet_is_probation_and_in_order_stream_loses_nothing() {
        let mut s = ReceiverStats::new();
        assert!(!s.update(7, 100, 0, 0));
        assert_eq!(s.reception().received, 0);
        feed(&mut s, 7, 101..=150);
        let r = s.reception();
        assert_eq!((r.received, r.expected, r.lost), (50, 50, 0));
        assert_eq!(r.fraction_lost, 0.0);
        assert_eq!(r.jitter, 0);
    }

    #[test]
    fn skipped_sequence_numbers_count_as_lost() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, (1..=100).filter(|n| n % 10 != 0));
        let r = s.reception();
        // Counting starts at 2 (1 was probation): 2..=99 expected, 10..=90 lost.
        assert_eq!(r.expected, 98);
        assert_eq!(r.lost, 9);
        assert_eq!(r.received, 89);
        assert!((r.fraction_lost - 9.0 / 98.0).abs() < 1e-12);
    }

    #[test]
    fn sequence_wrap_extends_the_count_instead_of_resetting_it() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, (65_500..=65_535).chain(0..=99));
        let r = s.reception();
        assert_eq!((r.received, r.expected, r.lost), (135, 135, 0));
        assert_eq!(s.extended_max(), 65_536 + 99);
    }

    #[test]
    fn duplicates_make_loss_negative_and_reordering_is_not_loss() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, [1, 2, 3, 5, 4, 6, 6, 7]);
        let r = s.reception();
        assert_eq!(r.expected, 6); // 2..=7
        assert_eq!(r.received, 7); // 6 twice
        assert_eq!(r.lost, -1);
        assert_eq!(r.fraction_lost, 0.0);
    }

    #[test]
    fn a_big_jump_is_ignored_once_and_taken_as_a_restart_when_confirmed() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, 1..=10);
        assert!(!s.update(1, 30_000, 0, 0), "a lone jump is not counted");
        feed(&mut s, 1, [11]);
        assert_eq!(s.reception().expected, 10);
        assert!(!s.update(1, 40_000, 0, 0));
        assert!(
            s.update(1, 40_001, 160, 160),
            "the next in sequence restarts"
        );
        let r = s.reception();
        assert_eq!((r.received, r.expected), (1, 1));
    }

    #[test]
    fn jitter_follows_appendix_a8() {
        let mut s = ReceiverStats::new();
        // Packets sent every 160 units; arrivals alternate early/late by 80.
        let mut expected16: u32 = 0;
        s.update(9, 0, 0, 0);
        s.update(9, 1, 160, 160);
        let mut last_transit = 0i32;
        for seq in 2..40u16 {
            let ts = u32::from(seq) * 160;
            let arrival = if seq % 2 == 0 { ts + 80 } else { ts };
            s.update(9, seq, ts, arrival);
            let transit = arrival as i32 - ts as i32;
            let d = (transit - last_transit).unsigned_abs();
            last_transit = transit;
            expected16 = expected16 + d - ((expected16 + 8) >> 4);
        }
        assert_eq!(s.reception().jitter, expected16 >> 4);
        // |D| is 80 every packet, so J converges towards 80 (J += (80 - J)/16).
        assert!(
            (70..=80).contains(&s.reception().jitter),
            "{}",
            s.reception().jitter
        );
    }

    #[test]
    fn a_new_source_adds_to_the_totals() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, 1..=11);
        feed(&mut s, 2, (500..=510).filter(|&n| n != 505));
        let r = s.reception();
        assert_eq!(r.expected, 10 + 10);
        assert_eq!(r.received, 10 + 9);
        assert_eq!(r.lost, 1);
    }

    #[test]
    fn interval_fraction_is_eight_bit_fixed_point_since_the_last_report() {
        let mut s = ReceiverStats::new();
        feed(&mut s, 1, 1..=5);
        assert_eq!(s.interval_fraction_lost(), 0);
        // 6..=9 expected, 7 lost: 1/4 → 64.
        feed(&mut s, 1, [6, 8, 9]);
        assert_eq!(s.interval_fraction_lost(), 64);
        assert_eq!(s.interval_fraction_lost(), 0);
    }
}
