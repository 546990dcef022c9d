//! Sans-IO SIP transactions (RFC 3261 §17): state machines that own no
//! socket and no clock. The caller feeds them what arrived and the
//! current time, asks for the next deadline, and carries out the
//! [`Action`]s (send bytes, hand a message to the transaction user, report
//! a timeout): the INVITE client and server transactions (§17.1.1,
//! §17.2.1) with RFC 6026's Accepted state, and the non-INVITE ones
//! (§17.1.2, §17.2.2).

use std::time::{Duration, Instant};

/// The timer base values (RFC 3261 §17.1.1.1, table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// The round-trip estimate (500 ms).
    pub t1: Duration,
    /// The longest retransmission interval of non-INVITE requests (4 s).
    pub t2: Duration,
    /// How long a message may stay in the network (5 s).
    pub t4: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

/// Whether the transport retransmits by itself (TCP, TLS, WebSocket) or
/// the transaction must (UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reliability {
    Unreliable,
    Reliable,
}

impl Reliability {
    /// How long a finished transaction stays to absorb retransmissions
    /// (timers D, I, J, K): `unreliable` over UDP, none over a reliable
    /// transport, which never retransmits.
    fn linger(self, unreliable: Duration) -> Duration {
        match self {
            Reliability::Unreliable => unreliable,
            Reliability::Reliable => Duration::ZERO,
        }
    }
}

/// The sooner of a pending retransmission and a timeout.
fn sooner(retransmit: Option<(Instant, Duration)>, timeout: Instant) -> Instant {
    retransmit.map_or(timeout, |(at, _)| at.min(timeout))
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send these bytes to the peer (a first send or a retransmission).
    Send(Vec<u8>),
    /// Hand the response with this status to the transaction user.
    Deliver(u16),
    /// No final response came in time (Timer F): tell the user (a 408).
    TimedOut,
    /// The transaction is over; forget it.
    Terminated,
}

/// A transaction's state (RFC 3261 figures 5 to 8, with RFC 6026's
/// Accepted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// INVITE client: sent, no response yet.
    Calling,
    /// Non-INVITE: no response yet (client) or none sent (server).
    Trying,
    Proceeding,
    /// A final non-2xx response was received (client) or sent (server).
    Completed,
    /// INVITE server: the ACK of a non-2xx response arrived.
    Confirmed,
    /// INVITE (RFC 6026): a 2xx was received or sent; retransmitted 2xx
    /// responses go to the transaction user, until Timer M or L.
    Accepted,
    Terminated,
}

/// A non-INVITE client transaction (RFC 3261 §17.1.2, figure 6).
#[derive(Debug)]
pub struct NonInviteClient {
    state: State,
    request: Vec<u8>,
    timers: Timers,
    reliability: Reliability,
    /// Timer E: the next retransmission, and the interval after it.
    retransmit: Option<(Instant, Duration)>,
    /// Timer F: the transaction times out.
    timeout_at: Instant,
    /// Timer K: the end of the Completed state.
    linger_until: Option<Instant>,
}

impl NonInviteClient {
    /// Starts sending `request`.
    pub fn start(
        request: Vec<u8>,
        reliability: Reliability,
        timers: Timers,
        now: Instant,
    ) -> (Self, Vec<Action>) {
        let client = Self {
            state: State::Trying,
            request: request.clone(),
            timers,
            reliability,
            retransmit: (reliability == Reliability::Unreliable)
                .then(|| (now + timers.t1, timers.t1)),
            timeout_at: now + timers.t1 * 64,
            linger_until: None,
        };
        (client, vec![Action::Send(request)])
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// When [`NonInviteClient::on_timer`] must next be called, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Trying | State::Proceeding => Some(sooner(self.retransmit, self.timeout_at)),
            State::Completed => self.linger_until,
            _ => None,
        }
    }

    /// A response with status `code` matched this transaction.
    pub fn on_response(&mut self, code: u16, now: Instant) -> Vec<Action> {
        match (self.state, code) {
            (State::Trying | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                vec![Action::Deliver(code)]
            }
            (State::Trying | State::Proceeding, _) => {
                self.retransmit = None;
                let linger = self.reliability.linger(self.timers.t4);
                if linger.is_zero() {
                    self.state = State::Terminated;
                    return vec![Action::Deliver(code), Action::Terminated];
                }
                self.state = State::Completed;
                self.linger_until = Some(now + linger);
                vec![Action::Deliver(code)]
            }
            // Retransmitted responses are absorbed.
            _ => Vec::new(),
        }
    }

    /// Runs the timers due at `now`.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Trying | State::Proceeding => {
                if now >= self.timeout_at {
                    self.state = State::Terminated;
                    self.retransmit = None;
                    return vec![Action::TimedOut, Action::Terminated];
                }
                let Some((at, interval)) = self.retransmit else {
                    return Vec::new();
                };
                if now < at {
                    return Vec::new();
                }
                // Trying doubles the interval up to T2; Proceeding uses T2.
                let next = match self.state {
                    State::Trying => (interval * 2).min(self.timers.t2),
                    _ => self.timers.t2,
                };
                self.retransmit = Some((now + next, next));
                vec![Action::Send(self.request.clone())]
            }
            State::Completed if self.linger_until.is_some_and(|until| now >= until) => {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            _ => Vec::new(),
        }
    }
}

/// An INVITE client transaction (RFC 3261 §17.1.1 as updated by RFC 6026,
/// figure 5 of RFC 6026).
#[derive(Debug)]
pub struct InviteClient {
    state: State,
    request: Vec<u8>,
    /// The ACK of the final non-2xx response, sent again with every
    /// retransmission of that response.
    ack: Option<Vec<u8>>,
    timers: Timers,
    reliability: Reliability,
    /// Timer A: the next retransmission, and the interval after it.
    retransmit: Option<(Instant, Duration)>,
    /// Timer B: no response at all in time.
    timeout_at: Instant,
    /// Timer D (Completed) or M (Accepted): the end of the transaction.
    linger_until: Option<Instant>,
}

impl InviteClient {
    /// Starts sending the INVITE `request`.
    pub fn start(
        request: Vec<u8>,
        reliability: Reliability,
        timers: Timers,
        now: Instant,
    ) -> (Self, Vec<Action>) {
        let client = Self {
            state: State::Calling,
            request: request.clone(),
            ack: None,
            timers,
            reliability,
            retransmit: (reliability == Reliability::Unreliable)
                .then(|| (now + timers.t1, timers.t1)),
            timeout_at: now + timers.t1 * 64,
            linger_until: None,
        };
        (client, vec![Action::Send(request)])
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Calling => Some(sooner(self.retransmit, self.timeout_at)),
            State::Completed | State::Accepted => self.linger_until,
            _ => None,
        }
    }

    /// A response with status `code` matched this transaction. For a
    /// final non-2xx response the transaction ACKs it itself: `ack` builds
    /// that ACK (RFC 3261 §17.1.1.3) the first time it is needed.
    pub fn on_response(
        &mut self,
        code: u16,
        now: Instant,
        ack: impl FnOnce() -> Vec<u8>,
    ) -> Vec<Action> {
        match (self.state, code) {
            (State::Calling | State::Proceeding, 100..=199) => {
                self.state = State::Proceeding;
                self.retransmit = None;
                vec![Action::Deliver(code)]
            }
            (State::Calling | State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.retransmit = None;
                self.linger_until = Some(now + self.timers.t1 * 64);
                vec![Action::Deliver(code)]
            }
            (State::Calling | State::Proceeding, _) => {
                self.retransmit = None;
                let ack = ack();
                self.ack = Some(ack.clone());
                let linger = self
                    .reliability
                    .linger(Duration::from_secs(32).max(self.timers.t1 * 64));
                if linger.is_zero() {
                    self.state = State::Terminated;
                    return vec![Action::Send(ack), Action::Deliver(code), Action::Terminated];
                }
                self.state = State::Completed;
                self.linger_until = Some(now + linger);
                vec![Action::Send(ack), Action::Deliver(code)]
            }
            // A retransmitted failure: ACK it again; the user heard it.
            (State::Completed, 300..=699) => {
                self.ack.clone().map(Action::Send).into_iter().collect()
            }
            // RFC 6026: retransmitted 2xx responses go to the user, which
            // ACKs them (the ACK of a 2xx is the dialog's, not ours).
            (State::Accepted, 200..=299) => vec![Action::Deliver(code)],
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Calling => {
                if now >= self.timeout_at {
                    self.state = State::Terminated;
                    self.retransmit = None;
                    return vec![Action::TimedOut, Action::Terminated];
                }
                match self.retransmit {
                    // Timer A doubles without a cap (§17.1.1.2).
                    Some((at, interval)) if now >= at => {
                        self.retransmit = Some((now + interval * 2, interval * 2));
                        vec![Action::Send(self.request.clone())]
                    }
                    _ => Vec::new(),
                }
            }
            State::Completed | State::Accepted
                if self.linger_until.is_some_and(|until| now >= until) =>
            {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            _ => Vec::new(),
        }
    }
}

/// An INVITE server transaction (RFC 3261 §17.2.1 as updated by RFC 6026,
/// figure 7 of RFC 6026). It starts in Proceeding; the transaction user
/// sends a 100 (Trying) unless it answers within 200 ms.
#[derive(Debug)]
pub struct InviteServer {
    state: State,
    timers: Timers,
    reliability: Reliability,
    last_response: Option<Vec<u8>>,
    /// Timer G: the next retransmission of the final non-2xx response.
    retransmit: Option<(Instant, Duration)>,
    /// Timer H: no ACK in time.
    timeout_at: Option<Instant>,
    /// Timer I (Confirmed) or L (Accepted).
    linger_until: Option<Instant>,
}

impl InviteServer {
    pub fn new(reliability: Reliability, timers: Timers) -> Self {
        Self {
            state: State::Proceeding,
            timers,
            reliability,
            last_response: None,
            retransmit: None,
            timeout_at: None,
            linger_until: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Completed => self
                .timeout_at
                .map(|timeout| sooner(self.retransmit, timeout)),
            State::Confirmed | State::Accepted => self.linger_until,
            _ => None,
        }
    }

    /// The INVITE arrived again: the last provisional or final response
    /// is sent again (in Accepted it is absorbed: the user retransmits
    /// its 2xx itself).
    pub fn on_request(&mut self) -> Vec<Action> {
        match (self.state, &self.last_response) {
            (State::Proceeding | State::Completed, Some(response)) => {
                vec![Action::Send(response.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// An ACK matched this transaction (the ACK of a non-2xx response).
    pub fn on_ack(&mut self, now: Instant) -> Vec<Action> {
        if self.state != State::Completed {
            return Vec::new();
        }
        self.retransmit = None;
        self.timeout_at = None;
        let linger = self.reliability.linger(self.timers.t4);
        if linger.is_zero() {
            self.state = State::Terminated;
            return vec![Action::Terminated];
        }
        self.state = State::Confirmed;
        self.linger_until = Some(now + linger);
        Vec::new()
    }

    /// The transaction user sends a response with status `code`.
    pub fn respond(&mut self, code: u16, response: Vec<u8>, now: Instant) -> Vec<Action> {
        match (self.state, code) {
            (State::Proceeding, 100..=199) => {
                self.last_response = Some(response.clone());
                vec![Action::Send(response)]
            }
            (State::Proceeding, 200..=299) => {
                self.state = State::Accepted;
                self.last_response = Some(response.clone());
                self.linger_until = Some(now + self.timers.t1 * 64);
                vec![Action::Send(response)]
            }
            // The user's own retransmissions of its 2xx.
            (State::Accepted, 200..=299) => vec![Action::Send(response)],
            (State::Proceeding, _) => {
                self.state = State::Completed;
                self.last_response = Some(response.clone());
                if self.reliability == Reliability::Unreliable {
                    self.retransmit = Some((now + self.timers.t1, self.timers.t1));
                }
                self.timeout_at = Some(now + self.timers.t1 * 64);
                vec![Action::Send(response)]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Completed => {
                if self.timeout_at.is_some_and(|at| now >= at) {
                    self.state = State::Terminated;
                    self.retransmit = None;
                    return vec![Action::TimedOut, Action::Terminated];
                }
                match (self.retransmit, &self.last_response) {
                    // Timer G doubles up to T2 (§17.2.1).
                    (Some((at, interval)), Some(response)) if now >= at => {
                        let next = (interval * 2).min(self.timers.t2);
                        self.retransmit = Some((now + next, next));
                        vec![Action::Send(response.clone())]
                    }
                    _ => Vec::new(),
                }
            }
            State::Confirmed | State::Accepted
                if self.linger_until.is_some_and(|until| now >= until) =>
            {
                self.state = State::Terminated;
                vec![Action::Terminated]
            }
            _ => Vec::new(),
        }
    }
}

/// A non-INVITE server transaction (RFC 3261 §17.2.2, figure 8).
#[derive(Debug)]
pub struct NonInviteServer {
    state: State,
    timers: Timers,
    reliability: Reliability,
    /// The last response sent, sent again when the request is.
    last_response: Option<Vec<u8>>,
    /// Timer J: the end of the Completed state.
    linger_until: Option<Instant>,
}

impl NonInviteServer {
    /// A request arrived and created this transaction.
    pub fn new(reliability: Reliability, timers: Timers) -> Self {
        Self {
            state: State::Trying,
            timers,
            reliability,
            last_response: None,
            linger_until: None,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Completed => self.linger_until,
            _ => None,
        }
    }

    /// The request arrived again: answered with the last response, if
    /// any (nothing while Trying).
    pub fn on_request(&mut self) -> Vec<Action> {
        match (self.state, &self.last_response) {
            (State::Proceeding | State::Completed, Some(response)) => {
                vec![Action::Send(response.clone())]
            }
            _ => Vec::new(),
        }
    }

    /// The transaction user sends a response with status `code`.
    /// Responses after the final one are not sent.
    pub fn respond(&mut self, code: u16, response: Vec<u8>, now: Instant) -> Vec<Action> {
        match self.state {
            State::Trying | State::Proceeding => {
                self.last_response = Some(response.clone());
                if (100..=199).contains(&code) {
                    self.state = State::Proceeding;
                    return vec![Action::Send(response)];
                }
                let linger = self.reliability.linger(self.timers.t1 * 64);
                if linger.is_zero() {
                    self.state = State::Terminated;
                    return vec![Action::Send(response), Action::Terminated];
                }
                self.state = State::Completed;
                self.linger_until = Some(now + linger);
                vec![Action::Send(response)]
            }
            _ => Vec::new(),
        }
    }

    pub fn on_timer(&mut self, now: Instant) -> Vec<Action> {
        if self.state == State::Completed && self.linger_until.is_some_and(|until| now >= until) {
            self.state = State::Terminated;
            return vec![Action::Terminated];
        }
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `client`'s timers at every deadline until `until`, returning
    /// when (ms after `start`) each action happened.
    fn run_client(
        client: &mut NonInviteClient,
        start: Instant,
        until: Duration,
    ) -> Vec<(u128, Action)> {
        let mut happened = Vec::new();
        while let Some(deadline) = client.next_deadline() {
            if deadline > start + until {
                break;
            }
            for action in client.on_timer(deadline) {
                happened.push(((deadline - start).as_millis(), action));
            }
        }
        happened
    }

    #[test]
    fn over_udp_the_request_is_resent_at_doubling_intervals_up_to_t2_then_times_out_at_64_t1() {
        let start = Instant::now();
        let (mut client, first) = NonInviteClient::start(
            b"OPTIONS".to_vec(),
            Reliability::Unreliable,
            Timers::default(),
            start,
        );
        assert_eq!(first, vec![Action::Send(b"OPTIONS".to_vec())]);
        let happened = run_client(&mut client, start, Duration::from_secs(60));
        let resent: Vec<u128> = happened
            .iter()
            .filter(|(_, action)| matches!(action, Action::Send(_)))
            .map(|(at, _)| *at)
            .collect();
        assert_eq!(
            resent,
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        let tail: Vec<_> = happened.iter().rev().take(2).collect();
        assert_eq!(*tail[1], (32_000, Action::TimedOut));
        assert_eq!(*tail[0], (32_000, Action::Terminated));
        assert_eq!(client.state(), State::Terminated);
        assert_eq!(client.next_deadline(), None);
    }

    #[test]
    fn over_tcp_nothing_is_resent_and_a_final_response_ends_at_once() {
        let start = Instant::now();
        let (mut client, _) = NonInviteClient::start(
            b"BYE".to_vec(),
            Reliability::Reliable,
            Timers::default(),
            start,
        );
        assert_eq!(
            client.next_deadline(),
            Some(start + Duration::from_secs(32))
        );
        assert_eq!(
            client.on_response(200, start + Duration::from_millis(20)),
            vec![Action::Deliver(200), Action::Terminated]
        );
        assert_eq!(client.state(), State::Terminated);
    }

    #[test]
    fn a_provisional_response_moves_to_t2_retransmissions_and_a_final_one_lingers_for_t4() {
        let start = Instant::now();
        let timers = Timers::default();
        let (mut client, _) =
            NonInviteClient::start(b"REGISTER".to_vec(), Reliability::Unreliable, timers, start);
        let at = |ms: u64| start + Duration::from_millis(ms);
        assert_eq!(
            client.on_timer(at(500)),
            vec![Action::Send(b"REGISTER".to_vec())]
        );
        assert_eq!(client.on_response(100, at(600)), vec![Action::Deliver(100)]);
        assert_eq!(client.state(), State::Proceeding);
        // The interval set at 500 ms (1 s) runs out; after it, T2.
        assert_eq!(client.on_timer(at(1500)).len(), 1);
        assert_eq!(client.next_deadline(), Some(at(5500)));
        assert_eq!(
            client.on_response(200, at(2000)),
            vec![Action::Deliver(200)]
        );
        assert_eq!(client.state(), State::Completed);
        // A retransmitted 200 is absorbed; Timer K ends it after T4.
        assert_eq!(client.on_response(200, at(2100)), Vec::new());
        assert_eq!(client.on_timer(at(6999)), Vec::new());
        assert_eq!(client.on_timer(at(7000)), vec![Action::Terminated]);
    }

    #[test]
    fn a_server_answers_retransmitted_requests_with_its_last_response_then_lingers_for_64_t1() {
        let start = Instant::now();
        let mut server = NonInviteServer::new(Reliability::Unreliable, Timers::default());
        assert_eq!(
            server.on_request(),
            Vec::new(),
            "nothing to resend while Trying"
        );
        assert_eq!(
            server.respond(100, b"100".to_vec(), start),
            vec![Action::Send(b"100".to_vec())]
        );
        assert_eq!(server.on_request(), vec![Action::Send(b"100".to_vec())]);
        assert_eq!(
            server.respond(200, b"200".to_vec(), start),
            vec![Action::Send(b"200".to_vec())]
        );
        assert_eq!(server.on_request(), vec![Action::Send(b"200".to_vec())]);
        assert_eq!(
            server.respond(500, b"500".to_vec(), start),
            Vec::new(),
            "one final response"
        );
        assert_eq!(
            server.next_deadline(),
            Some(start + Duration::from_secs(32))
        );
        assert_eq!(server.on_timer(start + Duration::from_secs(31)), Vec::new());
        assert_eq!(
            server.on_timer(start + Duration::from_secs(32)),
            vec![Action::Terminated]
        );
        let mut reliable = NonInviteServer::new(Reliability::Reliable, Timers::default());
        assert_eq!(
            reliable.respond(404, b"404".to_vec(), start),
            vec![Action::Send(b"404".to_vec()), Action::Terminated]
        );
    }

    /// Every deadline of a transaction up to `until`, with what happened.
    fn run<T>(
        transaction: &mut T,
        start: Instant,
        until: Duration,
        deadline: impl Fn(&T) -> Option<Instant>,
        fire: impl Fn(&mut T, Instant) -> Vec<Action>,
    ) -> Vec<(u128, Action)> {
        let mut happened = Vec::new();
        while let Some(at) = deadline(transaction) {
            if at > start + until {
                break;
            }
            for action in fire(transaction, at) {
                happened.push(((at - start).as_millis(), action));
            }
        }
        happened
    }

    fn sends(happened: &[(u128, Action)]) -> Vec<u128> {
        happened
            .iter()
            .filter(|(_, action)| matches!(action, Action::Send(_)))
            .map(|(at, _)| *at)
            .collect()
    }

    #[test]
    fn an_unanswered_invite_is_resent_at_doubling_intervals_then_times_out_by_timer_b() {
        let start = Instant::now();
        let (mut client, _) = InviteClient::start(
            b"INVITE".to_vec(),
            Reliability::Unreliable,
            Timers::default(),
            start,
        );
        let happened = run(
            &mut client,
            start,
            Duration::from_secs(60),
            InviteClient::next_deadline,
            InviteClient::on_timer,
        );
        // Timer A doubles without T2's cap.
        assert_eq!(sends(&happened), vec![500, 1500, 3500, 7500, 15500, 31500]);
        assert_eq!(
            happened[happened.len() - 2..],
            [(32_000, Action::TimedOut), (32_000, Action::Terminated)]
        );
    }

    #[test]
    fn an_invite_client_acks_a_failure_itself_and_passes_2xx_retransmissions_up() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let (mut failed, _) = InviteClient::start(
            b"INVITE".to_vec(),
            Reliability::Unreliable,
            Timers::default(),
            start,
        );
        assert_eq!(
            failed.on_response(180, at(100), Vec::new),
            vec![Action::Deliver(180)]
        );
        assert_eq!(
            failed.on_timer(at(500)),
            Vec::new(),
            "no retransmission after a 1xx"
        );
        assert_eq!(
            failed.on_response(486, at(900), || b"ACK".to_vec()),
            vec![Action::Send(b"ACK".to_vec()), Action::Deliver(486)]
        );
        // The 486 again: the same ACK again, the user does not hear it.
        assert_eq!(
            failed.on_response(486, at(1400), || unreachable!("built once")),
            vec![Action::Send(b"ACK".to_vec())]
        );
        // Timer D: at least 32 s over UDP.
        assert_eq!(failed.next_deadline(), Some(at(32_900)));
        assert_eq!(failed.on_timer(at(32_900)), vec![Action::Terminated]);

        let (mut accepted, _) = InviteClient::start(
            b"INVITE".to_vec(),
            Reliability::Reliable,
            Timers::default(),
            start,
        );
        assert_eq!(
            accepted.on_response(200, at(50), Vec::new),
            vec![Action::Deliver(200)]
        );
        assert_eq!(accepted.state(), State::Accepted);
        assert_eq!(
            accepted.on_response(200, at(550), Vec::new),
            vec![Action::Deliver(200)]
        );
        assert_eq!(
            accepted.on_timer(at(32_050)),
            vec![Action::Terminated],
            "Timer M"
        );

        let (mut over_tcp, _) = InviteClient::start(
            b"INVITE".to_vec(),
            Reliability::Reliable,
            Timers::default(),
            start,
        );
        assert_eq!(
            over_tcp.on_response(603, at(10), || b"ACK".to_vec()),
            vec![
                Action::Send(b"ACK".to_vec()),
                Action::Deliver(603),
                Action::Terminated
            ]
        );
    }

    #[test]
    fn an_invite_server_resends_its_failure_until_the_ack_and_gives_up_by_timer_h() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut server = InviteServer::new(Reliability::Unreliable, Timers::default());
        assert_eq!(
            server.respond(180, b"180".to_vec(), start),
            vec![Action::Send(b"180".to_vec())]
        );
        assert_eq!(server.on_request(), vec![Action::Send(b"180".to_vec())]);
        assert_eq!(
            server.respond(486, b"486".to_vec(), start),
            vec![Action::Send(b"486".to_vec())]
        );
        let happened = run(
            &mut server,
            start,
            Duration::from_secs(60),
            InviteServer::next_deadline,
            InviteServer::on_timer,
        );
        // Timer G doubles up to T2; Timer H ends it at 64*T1 without an ACK.
        assert_eq!(
            sends(&happened),
            vec![
                500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500
            ]
        );
        assert_eq!(
            happened[happened.len() - 2..],
            [(32_000, Action::TimedOut), (32_000, Action::Terminated)]
        );

        let mut acked = InviteServer::new(Reliability::Unreliable, Timers::default());
        acked.respond(404, b"404".to_vec(), start);
        assert_eq!(acked.on_timer(at(500)), vec![Action::Send(b"404".to_vec())]);
        assert_eq!(acked.on_ack(at(700)), Vec::new());
        assert_eq!(acked.state(), State::Confirmed);
        assert_eq!(acked.on_ack(at(800)), Vec::new(), "ACKs absorbed");
        assert_eq!(acked.next_deadline(), Some(at(5700)), "Timer I is T4");
        assert_eq!(acked.on_timer(at(5700)), vec![Action::Terminated]);
    }

    #[test]
    fn an_invite_server_that_answers_2xx_is_accepted_until_timer_l() {
        let start = Instant::now();
        let mut server = InviteServer::new(Reliability::Unreliable, Timers::default());
        assert_eq!(
            server.respond(200, b"200".to_vec(), start),
            vec![Action::Send(b"200".to_vec())]
        );
        assert_eq!(server.state(), State::Accepted);
        assert_eq!(
            server.on_request(),
            Vec::new(),
            "a retransmitted INVITE is absorbed"
        );
        assert_eq!(
            server.respond(200, b"200".to_vec(), start + Duration::from_millis(500)),
            vec![Action::Send(b"200".to_vec())],
            "the user's own 2xx retransmissions go out"
        );
        assert_eq!(server.respond(486, b"486".to_vec(), start), Vec::new());
        assert_eq!(
            server.on_timer(start + Duration::from_secs(32)),
            vec![Action::Terminated]
        );
    }
}
