//! IVR call flows: the graph of prompts, menus and routing decisions a
//! tenant's admin saves as JSON, its validation, and the interpreter the
//! routing service runs for each call.
//!
//! - [`Flow::parse`] reads a flow and checks every rule below in one step;
//!   the [`FlowError`] names the node and field at fault.
//!   [`Flow::references`] lists the queues, agents, ring groups and
//!   voicemail boxes it refers to, for the routing service to check in the
//!   tenant.
//! - [`Session::start`] and [`Session::advance`] walk one call through a
//!   flow: the voice edge reports what happened ([`Input`]) and gets what
//!   to do next ([`Instruction`]). Sessions are serde data, kept between
//!   edge calls.
//!
//! This crate does no I/O and knows no business-hours calendar: the
//! routing service answers the hours state through [`FlowContext`].
//!
//! # The JSON shape
//!
//! A flow is `{"start": <node id>, "nodes": {<node id>: <node>, …}}`. Each
//! node is an object whose `"type"` is one of:
//!
//! | type | fields | |
//! |---|---|---|
//! | `play` | `prompt`, `next` | [`Play`] |
//! | `menu` | `prompt`, `options` (key → node), `timeout_seconds`, `max_retries`, `invalid_prompt`?, `no_input_prompt`?, `on_failure` | [`Menu`] |
//! | `collect_digits` | `prompt`, `variable`, `min_length`, `max_length`, `terminator`?, `timeout_seconds`, `max_retries`, `invalid_prompt`?, `no_input_prompt`?, `next`, `on_failure` | [`CollectDigits`] |
//! | `branch` | `conditions` (`[{"when": <condition>, "next": …}]`), `otherwise` | [`Branch`], [`Condition`] |
//! | `set_language` | `language`, `next` | [`SetLanguage`] |
//! | `enqueue` | `queue_id`, `priority`? | [`Enqueue`] |
//! | `transfer` | `target` (`{"agent_id"}`, `{"ring_group_id"}` or `{"number"}`) | [`Transfer`] |
//! | `voicemail` | `box_id`, `prompt`? | [`Voicemail`] |
//! | `offer_callback` | `prompt`, `queue_id`, `accept_digit`, `timeout_seconds`, `declined` | [`OfferCallback`] |
//! | `hangup` | `prompt`? | [`Hangup`] |
//!
//! A [`Prompt`] is `{"file": …}` or `{"tts": …}`, with an optional
//! `"language"`. `timeout_seconds` defaults to 5, `max_retries` to 2,
//! `min_length` to 1 and `accept_digit` to `"1"`. Terminal nodes
//! (`enqueue`, `transfer`, `voicemail`, `hangup`) have no `next`.
//!
//! ```
//! use serde_json::json;
//! use switchboard_flows::{
//!     CallFacts, Flow, FlowContext, HoursState, Input, Instruction, PromptSource, Session,
//! };
//!
//! let flow = Flow::parse(r##"{
//!   "start": "welcome",
//!   "nodes": {
//!     "welcome": {"type": "play", "prompt": {"tts": "Welcome to Acme", "language": "en-US"},
//!                 "next": "hours_check"},
//!     "hours_check": {"type": "branch", "conditions": [
//!         {"when": {"hours": "closed"}, "next": "closed_msg"},
//!         {"when": {"hours": "holiday"}, "next": "closed_msg"}
//!       ], "otherwise": "vip_check"},
//!     "vip_check": {"type": "branch", "conditions": [
//!         {"when": {"attribute": "vip", "equals": true}, "next": "vip_queue"},
//!         {"when": {"caller_prefix": "+33"}, "next": "french"}
//!       ], "otherwise": "menu"},
//!     "french": {"type": "set_language", "language": "fr-FR", "next": "menu"},
//!     "menu": {"type": "menu", "prompt": {"file": "prompts/main-menu.wav"},
//!              "options": {"1": "sales", "2": "account", "3": "callback", "0": "operator",
//!                          "9": "bye"},
//!              "timeout_seconds": 5, "max_retries": 2,
//!              "invalid_prompt": {"tts": "Sorry, that is not an option."},
//!              "no_input_prompt": {"tts": "Sorry, I did not hear anything."},
//!              "on_failure": "operator"},
//!     "account": {"type": "collect_digits",
//!                 "prompt": {"tts": "Please enter your account number, then press hash."},
//!                 "variable": "account", "min_length": 6, "max_length": 10, "terminator": "#",
//!                 "timeout_seconds": 8, "max_retries": 2,
//!                 "next": "account_check", "on_failure": "operator"},
//!     "account_check": {"type": "branch", "conditions": [
//!         {"when": {"variable": "account", "equals": "123456"}, "next": "vip_queue"}
//!       ], "otherwise": "support"},
//!     "sales": {"type": "enqueue", "queue_id": "0190a6d2-0000-7000-8000-000000000001"},
//!     "support": {"type": "enqueue", "queue_id": "0190a6d2-0000-7000-8000-000000000002"},
//!     "vip_queue": {"type": "enqueue", "queue_id": "0190a6d2-0000-7000-8000-000000000002",
//!                   "priority": 90},
//!     "callback": {"type": "offer_callback", "prompt": {"tts": "Press 1 to be called back."},
//!                  "queue_id": "0190a6d2-0000-7000-8000-000000000002", "accept_digit": "1",
//!                  "timeout_seconds": 5, "declined": "support"},
//!     "operator": {"type": "transfer", "target": {"number": "+15551234567"}},
//!     "closed_msg": {"type": "play", "prompt": {"tts": "We are closed."}, "next": "vm"},
//!     "vm": {"type": "voicemail", "box_id": "0190a6d2-0000-7000-8000-000000000003",
//!            "prompt": {"tts": "Please leave a message after the tone."}},
//!     "bye": {"type": "hangup", "prompt": {"tts": "Goodbye."}}
//!   }
//! }"##)?;
//! assert_eq!(flow.references().len(), 5);
//!
//! struct Open;
//! impl FlowContext for Open {
//!     fn hours_state(&self) -> HoursState {
//!         HoursState::Open
//!     }
//! }
//!
//! let call = CallFacts { caller: "+33612345678".into(), ..CallFacts::default() };
//! let mut session = Session::start(&flow, call);
//! let welcome = session.advance(&flow, &Open, Input::Begin)?;
//! assert!(matches!(welcome, Instruction::Play { .. }));
//! // A French caller: the menu is played in French.
//! let menu = session.advance(&flow, &Open, Input::PromptPlayed)?;
//! let Instruction::Collect { prompt, language, max_length: 1, .. } = menu else { panic!() };
//! assert_eq!(prompt, PromptSource::File("prompts/main-menu.wav".into()));
//! assert_eq!(language.unwrap().as_str(), "fr-FR");
//! // Redis keeps the session between edge calls.
//! let stored = serde_json::to_string(&session).unwrap();
//! let mut session: Session = serde_json::from_str(&stored).unwrap();
//! let queued = session.advance(&flow, &Open, Input::Digits("1".into()))?;
//! assert!(matches!(queued, Instruction::Enqueue { priority: None, .. }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Validation
//!
//! [`Flow::parse`] rejects, reporting the first fault:
//!
//! - JSON that is malformed or repeats a key; a flow with fields other
//!   than `start` and `nodes`, or more than 500 nodes;
//! - node ids other than 1 to 64 ASCII letters, digits, `_` or `-`;
//! - unknown node types, unknown fields, missing fields (every non-terminal
//!   node needs its `next`, `on_failure`, `otherwise` or `declined`),
//!   values of the wrong type;
//! - prompts without exactly one of a non-empty `file` or `tts`; language
//!   tags not shaped like `en-US`;
//! - menu option keys, `accept_digit` other than one DTMF key (`0`–`9`,
//!   `*`, `#`), a `terminator` other than `*` or `#`, a menu without
//!   options;
//! - `max_length` outside 1 to 32, `min_length` of 0 or above
//!   `max_length`, `timeout_seconds` outside 1 to 60, `max_retries` above
//!   5, `priority` above 100; transfer numbers not in E.164 form (`+`,
//!   1 to 15 digits, the first not 0);
//! - malformed conditions, and branches on a variable no `collect_digits`
//!   node sets;
//! - a `start` that is not a node, and edges leading to unknown nodes;
//! - nodes not reachable from `start`;
//! - loops that never wait for the caller (a cycle through `play`,
//!   `branch` and `set_language` nodes only would go round forever; a
//!   `menu`, `collect_digits` or `offer_callback` on it breaks it);
//! - nodes from which no path ends the call (at `enqueue`, `transfer`,
//!   `voicemail`, `hangup`, or an accepted `offer_callback`).
//!
//! # Interpretation
//!
//! A session starts before the first node and waits for
//! [`Input::Begin`]. From then on it waits at a node for the report its
//! last instruction asks for; any other input is a
//! [`SessionError::UnexpectedInput`], and any input after a terminal
//! instruction [`SessionError::Finished`]. At a menu or digit collection,
//! an invalid entry or no input plays the node's `invalid_prompt` or
//! `no_input_prompt` (if given; the edge reports `PromptPlayed`) and
//! collects again, up to `max_retries` times in all, then goes to
//! `on_failure`. Collected digits are stored under the node's `variable`
//! and go with the call to its queue.
//!
//! A session belongs to the flow version it started on: the routing
//! service stores flow versions immutably and keeps the version id beside
//! the session; the session itself records the flow's
//! [`Flow::fingerprint`] and answers [`SessionError::FlowMismatch`] when
//! advanced on any other flow.

mod condition;
mod error;
#[cfg(test)]
mod fixtures;
mod flow;
mod ids;
mod node;
mod phone;
mod prompt;
pub mod schema;
mod session;
mod validate;

pub use condition::{Condition, HoursState, ValueTest};
pub use error::{FlowError, SessionError};
pub use flow::{ExternalId, Flow, MAX_NODES, Reference};
pub use ids::{AgentId, ParseIdError, QueueId, RingGroupId, VoicemailBoxId};
pub use node::{
    Branch, Case, CollectDigits, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT_SECONDS, Enqueue, Hangup,
    Menu, Node, OfferCallback, Play, SetLanguage, Transfer, TransferTarget, Voicemail,
};
pub use phone::PhoneNumber;
pub use prompt::{Language, Prompt, PromptSource};
pub use session::{CallFacts, FlowContext, Input, Instruction, Session};
