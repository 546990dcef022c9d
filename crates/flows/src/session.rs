//! The interpreter: one [`Session`] per call, advanced by what the voice
//! edge reports, answering what the edge does next.
//!
//! The routing service keeps the session between edge calls (it is plain
//! serde data; Redis holds it as JSON) together with the id of the flow
//! version it started on, and loads that same immutable version to advance
//! it. The session also records the flow's
//! [fingerprint](crate::Flow::fingerprint) and refuses any other flow, so a
//! mix-up cannot walk a call through a graph it did not start in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::condition::{Condition, HoursState, ValueTest, json_equals};
use crate::error::SessionError;
use crate::flow::Flow;
use crate::ids::{QueueId, VoicemailBoxId};
use crate::node::{Branch, Node, TransferTarget};
use crate::prompt::{Language, Prompt, PromptSource};

#[cfg(test)]
mod tests;

/// What the routing service knows about the call that a flow may branch
/// on, beyond the facts fixed at its start. Asked only when a branch needs
/// it, so an implementation may compute lazily; it must answer at once
/// (routing looks the schedule up before advancing, if needed).
pub trait FlowContext {
    /// The business-hours state, now, of the schedule the call is routed
    /// on.
    fn hours_state(&self) -> HoursState;
}

/// The facts of a call, fixed when its session starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallFacts {
    /// The caller's number as the edge reported it (E.164 when known; may
    /// be empty or `anonymous` when withheld).
    pub caller: String,
    /// The number the caller dialed.
    pub dialed: String,
    /// What the routing service knows of the customer (`vip`, `elderly`,
    /// accessibility flags, …), for `attribute` conditions.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// What the edge reports.
///
/// In JSON: `"begin"`, `"prompt_played"`, `{"digits": "123#"}`,
/// `"no_input"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// The call entered the flow; the first report of every session.
    Begin,
    /// The prompt of a [`Instruction::Play`] finished.
    PromptPlayed,
    /// The keys the caller pressed after a [`Instruction::Collect`]. The
    /// edge may pass the terminator or strip it: one trailing terminator
    /// is ignored. No keys at all (`""`) counts as no input.
    Digits(String),
    /// The caller pressed nothing within the timeout of a
    /// [`Instruction::Collect`].
    NoInput,
}

impl Input {
    fn kind(&self) -> &'static str {
        match self {
            Input::Begin => "begin",
            Input::PromptPlayed => "prompt_played",
            Input::Digits(_) => "digits",
            Input::NoInput => "no_input",
        }
    }
}

/// What the edge does next.
///
/// `language` is the language to play in: the prompt's own, else the
/// call's (set by `set_language` nodes), else none (the tenant's default).
/// `Play` and `Collect` expect a report; the others end the flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Instruction {
    /// Play the prompt, then report [`Input::PromptPlayed`].
    Play {
        prompt: PromptSource,
        language: Option<Language>,
    },
    /// Play the prompt while collecting keys, and report
    /// [`Input::Digits`] or [`Input::NoInput`]. Collection ends after
    /// `max_length` keys, on the terminator, or `timeout_seconds` after the
    /// prompt or the last key. A menu or a callback offer collects one key.
    Collect {
        prompt: PromptSource,
        language: Option<Language>,
        min_length: u32,
        max_length: u32,
        terminator: Option<String>,
        timeout_seconds: u32,
    },
    /// Queue the call: `priority` (0–100, higher first) overrides the
    /// queue's if given; `language` and the collected `variables` go along
    /// for matching and the agent's screen.
    Enqueue {
        queue_id: QueueId,
        priority: Option<u8>,
        language: Option<Language>,
        variables: BTreeMap<String, String>,
    },
    /// Transfer the call.
    Transfer { target: TransferTarget },
    /// Record a message in the box, after the greeting `prompt` if given
    /// (else the box's own).
    Voicemail {
        box_id: VoicemailBoxId,
        prompt: Option<PromptSource>,
        language: Option<Language>,
    },
    /// The caller accepted a callback: queue one to `number` (the caller's
    /// number) in `queue_id`, and end the call.
    Callback { queue_id: QueueId, number: String },
    /// Play the prompt, if any, and hang up.
    Hangup {
        prompt: Option<PromptSource>,
        language: Option<Language>,
    },
}

impl Instruction {
    /// Whether the call leaves the flow with this instruction.
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Instruction::Play { .. } | Instruction::Collect { .. })
    }
}

/// One call's way through a flow.
///
/// Start it with [`Session::start`], then [`Session::advance`] it with
/// [`Input::Begin`] and each edge report until a terminal
/// [`Instruction`]. An advance that fails leaves the session as it was.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The fingerprint of the flow the session started on.
    flow: String,
    call: CallFacts,
    language: Option<Language>,
    variables: BTreeMap<String, String>,
    state: State,
    /// Failed attempts (invalid or no input) at the current node.
    failures: u32,
}

/// What the session waits for, and at which node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "waiting_for", content = "node", rename_all = "snake_case")]
enum State {
    /// [`Input::Begin`].
    Begin,
    /// The prompt of `play` node to finish.
    Played(String),
    /// A retry prompt (invalid or no input) of a menu or collect node to
    /// finish; the node's prompt then plays again.
    Reprompt(String),
    /// Keys (or their absence) at a menu, collect or callback-offer node.
    Input(String),
    /// Nothing: the call left the flow.
    Finished,
}

impl State {
    fn expects(&self) -> &'static str {
        match self {
            State::Begin => "begin",
            State::Played(_) | State::Reprompt(_) => "prompt_played",
            State::Input(_) => "digits or no_input",
            State::Finished => "nothing",
        }
    }
}

#[derive(Clone, Copy)]
enum Failure {
    Invalid,
    NoInput,
}

impl Session {
    /// A session for a call entering `flow`. It gives its first instruction
    /// on [`Input::Begin`].
    pub fn start(flow: &Flow, call: CallFacts) -> Session {
        Session {
            flow: flow.fingerprint().to_owned(),
            call,
            language: None,
            variables: BTreeMap::new(),
            state: State::Begin,
            failures: 0,
        }
    }

    /// Takes the edge's report `input` and says what the edge does next.
    /// `flow` must be the flow the session started on. Branches and
    /// language changes on the way are evaluated here, asking `ctx` for the
    /// hours state if a branch tests it.
    pub fn advance(
        &mut self,
        flow: &Flow,
        ctx: &impl FlowContext,
        input: Input,
    ) -> Result<Instruction, SessionError> {
        if self.flow != flow.fingerprint() {
            return Err(SessionError::FlowMismatch {
                session: self.flow.clone(),
                flow: flow.fingerprint().to_owned(),
            });
        }
        let mut next = self.clone();
        let instruction = next.step(flow, ctx, input)?;
        *self = next;
        Ok(instruction)
    }

    /// The fingerprint of the flow the session started on.
    pub fn flow_fingerprint(&self) -> &str {
        &self.flow
    }

    /// The call's facts.
    pub fn call(&self) -> &CallFacts {
        &self.call
    }

    /// The call's language, if a `set_language` node set one.
    pub fn language(&self) -> Option<&Language> {
        self.language.as_ref()
    }

    /// The variables collected so far.
    pub fn variables(&self) -> &BTreeMap<String, String> {
        &self.variables
    }

    /// The node the session waits at (none before [`Input::Begin`] and
    /// after the end).
    pub fn current_node(&self) -> Option<&str> {
        match &self.state {
            State::Played(node) | State::Reprompt(node) | State::Input(node) => Some(node),
            State::Begin | State::Finished => None,
        }
    }

    /// Whether the call has left the flow.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    fn step(
        &mut self,
        flow: &Flow,
        ctx: &impl FlowContext,
        input: Input,
    ) -> Result<Instruction, SessionError> {
        match (self.state.clone(), input) {
            (State::Finished, _) => Err(SessionError::Finished),
            (State::Begin, Input::Begin) => self.enter(flow, ctx, flow.start()),
            (State::Played(id), Input::PromptPlayed) => match node(flow, &id)? {
                Node::Play(play) => self.enter(flow, ctx, &play.next),
                other => Err(wrong_type(&id, other)),
            },
            (State::Reprompt(id), Input::PromptPlayed) => {
                let instruction = self.collect(&id, node(flow, &id)?)?;
                self.state = State::Input(id);
                Ok(instruction)
            }
            (State::Input(id), Input::Digits(digits)) => self.on_digits(flow, ctx, &id, &digits),
            (State::Input(id), Input::NoInput) => self.on_failure(flow, ctx, &id, Failure::NoInput),
            (state, input) => Err(SessionError::UnexpectedInput {
                expected: state.expects(),
                got: input.kind(),
            }),
        }
    }

    /// Goes to node `id`, evaluating branches and language changes, up to
    /// the next node that needs the edge.
    fn enter<'f>(
        &mut self,
        flow: &'f Flow,
        ctx: &impl FlowContext,
        mut id: &'f str,
    ) -> Result<Instruction, SessionError> {
        self.failures = 0;
        // A valid flow has no loop without input, so this many steps
        // always reach a node that needs the edge.
        for _ in 0..=flow.node_count() {
            let node = node(flow, id)?;
            let instruction = match node {
                Node::Branch(branch) => {
                    id = self.choose(branch, ctx);
                    continue;
                }
                Node::SetLanguage(set) => {
                    self.language = Some(set.language.clone());
                    id = &set.next;
                    continue;
                }
                Node::Play(play) => {
                    self.state = State::Played(id.to_owned());
                    return Ok(self.play(&play.prompt));
                }
                Node::Menu(_) | Node::CollectDigits(_) | Node::OfferCallback(_) => {
                    self.state = State::Input(id.to_owned());
                    return self.collect(id, node);
                }
                Node::Enqueue(enqueue) => Instruction::Enqueue {
                    queue_id: enqueue.queue_id,
                    // Validated to be at most 100.
                    priority: enqueue
                        .priority
                        .map(|priority| u8::try_from(priority).unwrap_or(u8::MAX)),
                    language: self.language.clone(),
                    variables: self.variables.clone(),
                },
                Node::Transfer(transfer) => Instruction::Transfer {
                    target: transfer.target.clone(),
                },
                Node::Voicemail(voicemail) => Instruction::Voicemail {
                    box_id: voicemail.box_id,
                    prompt: voicemail
                        .prompt
                        .as_ref()
                        .map(|prompt| prompt.source.clone()),
                    language: self.language_of(voicemail.prompt.as_ref()),
                },
                Node::Hangup(hangup) => Instruction::Hangup {
                    prompt: hangup.prompt.as_ref().map(|prompt| prompt.source.clone()),
                    language: self.language_of(hangup.prompt.as_ref()),
                },
            };
            self.state = State::Finished;
            return Ok(instruction);
        }
        Err(SessionError::Corrupt(format!(
            "the flow went through {} nodes without waiting for the caller",
            flow.node_count() + 1
        )))
    }

    fn on_digits(
        &mut self,
        flow: &Flow,
        ctx: &impl FlowContext,
        id: &str,
        digits: &str,
    ) -> Result<Instruction, SessionError> {
        match node(flow, id)? {
            Node::Menu(menu) => {
                if digits.is_empty() {
                    return self.on_failure(flow, ctx, id, Failure::NoInput);
                }
                match menu.options.get(digits) {
                    Some(target) => self.enter(flow, ctx, target),
                    None => self.on_failure(flow, ctx, id, Failure::Invalid),
                }
            }
            Node::CollectDigits(collect) => {
                let entry = match &collect.terminator {
                    Some(terminator) => digits.strip_suffix(terminator.as_str()).unwrap_or(digits),
                    None => digits,
                };
                if entry.is_empty() {
                    return self.on_failure(flow, ctx, id, Failure::NoInput);
                }
                let length = u32::try_from(entry.len()).unwrap_or(u32::MAX);
                if entry.bytes().all(|byte| byte.is_ascii_digit())
                    && (collect.min_length..=collect.max_length).contains(&length)
                {
                    self.variables
                        .insert(collect.variable.clone(), entry.to_owned());
                    self.enter(flow, ctx, &collect.next)
                } else {
                    self.on_failure(flow, ctx, id, Failure::Invalid)
                }
            }
            Node::OfferCallback(offer) => {
                if digits == offer.accept_digit {
                    self.state = State::Finished;
                    Ok(Instruction::Callback {
                        queue_id: offer.queue_id,
                        number: self.call.caller.clone(),
                    })
                } else {
                    self.enter(flow, ctx, &offer.declined)
                }
            }
            other => Err(wrong_type(id, other)),
        }
    }

    /// A failed attempt at a menu or collect node: retry (after the retry
    /// prompt, if any) or, out of retries, go to `on_failure`. A callback
    /// offer is simply declined.
    fn on_failure(
        &mut self,
        flow: &Flow,
        ctx: &impl FlowContext,
        id: &str,
        failure: Failure,
    ) -> Result<Instruction, SessionError> {
        let node = node(flow, id)?;
        let (max_retries, invalid_prompt, no_input_prompt, on_failure) = match node {
            Node::Menu(menu) => (
                menu.max_retries,
                &menu.invalid_prompt,
                &menu.no_input_prompt,
                &menu.on_failure,
            ),
            Node::CollectDigits(collect) => (
                collect.max_retries,
                &collect.invalid_prompt,
                &collect.no_input_prompt,
                &collect.on_failure,
            ),
            Node::OfferCallback(offer) => return self.enter(flow, ctx, &offer.declined),
            other => return Err(wrong_type(id, other)),
        };
        self.failures += 1;
        if self.failures > max_retries {
            return self.enter(flow, ctx, on_failure);
        }
        let retry_prompt = match failure {
            Failure::Invalid => invalid_prompt,
            Failure::NoInput => no_input_prompt,
        };
        match retry_prompt {
            Some(prompt) => {
                self.state = State::Reprompt(id.to_owned());
                Ok(self.play(prompt))
            }
            None => self.collect(id, node),
        }
    }

    /// The first case of `branch` that holds, else its `otherwise`.
    fn choose<'f>(&self, branch: &'f Branch, ctx: &impl FlowContext) -> &'f str {
        branch
            .conditions
            .iter()
            .find(|case| self.holds(&case.when, ctx))
            .map_or(&branch.otherwise, |case| &case.next)
    }

    fn holds(&self, condition: &Condition, ctx: &impl FlowContext) -> bool {
        match condition {
            Condition::Hours(state) => ctx.hours_state() == *state,
            Condition::CallerPrefix(prefix) => self.call.caller.starts_with(prefix.as_str()),
            Condition::CallerNumber(number) => self.call.caller == number.as_str(),
            Condition::Variable { name, test } => {
                let value = self.variables.get(name);
                match test {
                    ValueTest::Equals(expected) => value == Some(expected),
                    ValueTest::Present(present) => value.is_some() == *present,
                }
            }
            Condition::Attribute { name, test } => {
                let value = self
                    .call
                    .attributes
                    .get(name)
                    .filter(|value| !value.is_null());
                match test {
                    ValueTest::Equals(expected) => {
                        value.is_some_and(|value| json_equals(value, expected))
                    }
                    ValueTest::Present(present) => value.is_some() == *present,
                }
            }
        }
    }

    fn play(&self, prompt: &Prompt) -> Instruction {
        Instruction::Play {
            prompt: prompt.source.clone(),
            language: self.language_of(Some(prompt)),
        }
    }

    /// The instruction that collects input at `node` (a menu, collect or
    /// callback-offer node).
    fn collect(&self, id: &str, node: &Node) -> Result<Instruction, SessionError> {
        let (prompt, min_length, max_length, terminator, timeout_seconds) = match node {
            Node::Menu(menu) => (&menu.prompt, 1, 1, None, menu.timeout_seconds),
            Node::CollectDigits(collect) => (
                &collect.prompt,
                collect.min_length,
                collect.max_length,
                collect.terminator.clone(),
                collect.timeout_seconds,
            ),
            Node::OfferCallback(offer) => (&offer.prompt, 1, 1, None, offer.timeout_seconds),
            other => return Err(wrong_type(id, other)),
        };
        Ok(Instruction::Collect {
            prompt: prompt.source.clone(),
            language: self.language_of(Some(prompt)),
            min_length,
            max_length,
            terminator,
            timeout_seconds,
        })
    }

    /// The language to play `prompt` in: its own, else the call's.
    fn language_of(&self, prompt: Option<&Prompt>) -> Option<Language> {
        prompt
            .and_then(|prompt| prompt.language.clone())
            .or_else(|| self.language.clone())
    }
}

fn node<'f>(flow: &'f Flow, id: &str) -> Result<&'f Node, SessionError> {
    flow.node(id)
        .ok_or_else(|| SessionError::Corrupt(format!("the flow has no node {id:?}")))
}

fn wrong_type(id: &str, node: &Node) -> SessionError {
    SessionError::Corrupt(format!(
        "node {id:?} is a {} node, which does not wait there",
        node.type_name()
    ))
}
