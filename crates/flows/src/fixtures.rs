//! Flows and contexts shared by the tests.

use serde_json::{Value, json};

use crate::condition::HoursState;
use crate::flow::Flow;
use crate::ids::{QueueId, VoicemailBoxId};
use crate::session::FlowContext;

pub(crate) const SALES: &str = "0190a6d2-0000-7000-8000-000000000001";
pub(crate) const SUPPORT: &str = "0190a6d2-0000-7000-8000-000000000002";
pub(crate) const VIP: &str = "0190a6d2-0000-7000-8000-000000000004";
pub(crate) const CALLBACKS: &str = "0190a6d2-0000-7000-8000-000000000005";
pub(crate) const VOICEMAIL_BOX: &str = "0190a6d2-0000-7000-8000-000000000003";
pub(crate) const AGENT: &str = "0190a6d2-0000-7000-8000-000000000006";
pub(crate) const RING_GROUP: &str = "0190a6d2-0000-7000-8000-000000000007";

pub(crate) fn queue(id: &str) -> QueueId {
    id.parse().expect("fixture queue id")
}

pub(crate) fn voicemail_box(id: &str) -> VoicemailBoxId {
    id.parse().expect("fixture box id")
}

/// The Acme flow of the crate documentation, with its own queue per use.
pub(crate) fn acme_json() -> Value {
    json!({
      "start": "welcome",
      "nodes": {
        "welcome": {"type": "play", "prompt": {"tts": "Welcome to Acme", "language": "en-US"},
                    "next": "hours_check"},
        "hours_check": {"type": "branch", "conditions": [
            {"when": {"hours": "closed"}, "next": "closed_msg"},
            {"when": {"hours": "holiday"}, "next": "closed_msg"}
          ], "otherwise": "vip_check"},
        "vip_check": {"type": "branch", "conditions": [
            {"when": {"attribute": "vip", "equals": true}, "next": "vip_queue"},
            {"when": {"caller_prefix": "+33"}, "next": "french"}
          ], "otherwise": "menu"},
        "french": {"type": "set_language", "language": "fr-FR", "next": "menu"},
        "menu": {"type": "menu", "prompt": {"file": "prompts/main-menu.wav"},
                 "options": {"1": "sales", "2": "account", "3": "callback", "0": "operator",
                             "9": "bye"},
                 "timeout_seconds": 5, "max_retries": 2,
                 "invalid_prompt": {"tts": "Sorry, that is not an option."},
                 "no_input_prompt": {"tts": "Sorry, I did not hear anything."},
                 "on_failure": "operator"},
        "account": {"type": "collect_digits",
                    "prompt": {"tts": "Please enter your account number, then press hash."},
                    "variable": "account", "min_length": 6, "max_length": 10, "terminator": "#",
                    "timeout_seconds": 8, "max_retries": 2,
                    "next": "account_check", "on_failure": "operator"},
        "account_check": {"type": "branch", "conditions": [
            {"when": {"variable": "account", "equals": "123456"}, "next": "vip_queue"}
          ], "otherwise": "support"},
        "sales": {"type": "enqueue", "queue_id": SALES},
        "support": {"type": "enqueue", "queue_id": SUPPORT},
        "vip_queue": {"type": "enqueue", "queue_id": VIP, "priority": 90},
        "callback": {"type": "offer_callback", "prompt": {"tts": "Press 1 to be called back."},
                     "queue_id": CALLBACKS, "accept_digit": "1", "timeout_seconds": 5,
                     "declined": "support"},
        "operator": {"type": "transfer", "target": {"number": "+15551234567"}},
        "closed_msg": {"type": "play", "prompt": {"tts": "We are closed."}, "next": "vm"},
        "vm": {"type": "voicemail", "box_id": VOICEMAIL_BOX,
               "prompt": {"tts": "Please leave a message after the tone."}},
        "bye": {"type": "hangup", "prompt": {"tts": "Goodbye."}}
      }
    })
}

pub(crate) fn acme() -> Flow {
    Flow::from_value(&acme_json()).expect("the Acme flow is valid")
}

/// A flow starting at `start` with `nodes`, validated.
pub(crate) fn flow(start: &str, nodes: Value) -> Flow {
    Flow::from_value(&json!({"start": start, "nodes": nodes})).expect("test flow is valid")
}

/// A context whose schedule is in one state.
pub(crate) struct Hours(pub HoursState);

impl FlowContext for Hours {
    fn hours_state(&self) -> HoursState {
        self.0
    }
}

pub(crate) const OPEN: Hours = Hours(HoursState::Open);
