//! Walks calls through flows, checking each instruction the edge gets.

use serde_json::{Map, json};

use super::*;
use crate::fixtures::{
    CALLBACKS, Hours, OPEN, SALES, SUPPORT, VIP, VOICEMAIL_BOX, acme, acme_json, flow, queue,
    voicemail_box,
};
use crate::phone::PhoneNumber;

fn call(caller: &str) -> CallFacts {
    CallFacts {
        caller: caller.to_owned(),
        dialed: "+15550000000".to_owned(),
        attributes: Map::new(),
    }
}

fn with_attributes(caller: &str, attributes: Value) -> CallFacts {
    let Value::Object(attributes) = attributes else {
        panic!("attributes are an object");
    };
    CallFacts {
        attributes,
        ..call(caller)
    }
}

fn tts(text: &str) -> PromptSource {
    PromptSource::Tts(text.to_owned())
}

fn language(tag: &str) -> Option<Language> {
    Some(Language::try_from(tag.to_owned()).expect("valid tag"))
}

fn play(text: &str) -> Instruction {
    Instruction::Play {
        prompt: tts(text),
        language: None,
    }
}

fn play_in_french(text: &str) -> Instruction {
    Instruction::Play {
        prompt: tts(text),
        language: language("fr-FR"),
    }
}

fn welcome() -> Instruction {
    Instruction::Play {
        prompt: tts("Welcome to Acme"),
        language: language("en-US"),
    }
}

fn main_menu(language: Option<Language>) -> Instruction {
    Instruction::Collect {
        prompt: PromptSource::File("prompts/main-menu.wav".to_owned()),
        language,
        min_length: 1,
        max_length: 1,
        terminator: None,
        timeout_seconds: 5,
    }
}

fn account_entry() -> Instruction {
    Instruction::Collect {
        prompt: tts("Please enter your account number, then press hash."),
        language: None,
        min_length: 6,
        max_length: 10,
        terminator: Some("#".to_owned()),
        timeout_seconds: 8,
    }
}

fn operator() -> Instruction {
    Instruction::Transfer {
        target: TransferTarget::Number(
            PhoneNumber::try_from("+15551234567".to_owned()).expect("valid number"),
        ),
    }
}

fn enqueue(id: &str, priority: Option<u8>, variables: &[(&str, &str)]) -> Instruction {
    Instruction::Enqueue {
        queue_id: queue(id),
        priority,
        language: None,
        variables: variables
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
    }
}

fn digits(keys: &str) -> Input {
    Input::Digits(keys.to_owned())
}

/// Starts a session on the Acme flow for `call` and takes it to the main
/// menu (the hours are open, the caller is no VIP and not French).
fn at_main_menu(flow: &Flow, call: CallFacts) -> Session {
    let mut session = Session::start(flow, call);
    assert_eq!(session.advance(flow, &OPEN, Input::Begin), Ok(welcome()));
    assert_eq!(
        session.advance(flow, &OPEN, Input::PromptPlayed),
        Ok(main_menu(None))
    );
    assert_eq!(session.current_node(), Some("menu"));
    session
}

#[test]
fn menu_happy_path_reaches_the_queue() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    assert_eq!(
        session.advance(&flow, &OPEN, digits("1")),
        Ok(enqueue(SALES, None, &[]))
    );
    assert!(session.is_finished());
}

#[test]
fn an_invalid_key_plays_the_invalid_prompt_then_the_menu_again() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    assert_eq!(
        session.advance(&flow, &OPEN, digits("7")),
        Ok(play("Sorry, that is not an option."))
    );
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Ok(main_menu(None))
    );
    assert_eq!(
        session.advance(&flow, &OPEN, digits("1")),
        Ok(enqueue(SALES, None, &[]))
    );
}

#[test]
fn no_input_twice_goes_to_on_failure() {
    let flow = flow(
        "m",
        json!({
            "m": {"type": "menu", "prompt": {"tts": "Press 1"}, "options": {"1": "sales"},
                  "max_retries": 1, "on_failure": "bye"},
            "sales": {"type": "enqueue", "queue_id": SALES},
            "bye": {"type": "hangup", "prompt": {"tts": "Goodbye"}}
        }),
    );
    let menu = Instruction::Collect {
        prompt: tts("Press 1"),
        language: None,
        min_length: 1,
        max_length: 1,
        terminator: None,
        timeout_seconds: 5,
    };
    let mut session = Session::start(&flow, call("+15557654321"));
    assert_eq!(
        session.advance(&flow, &OPEN, Input::Begin),
        Ok(menu.clone())
    );
    // Without a no_input_prompt, the menu is simply collected again.
    assert_eq!(session.advance(&flow, &OPEN, Input::NoInput), Ok(menu));
    assert_eq!(
        session.advance(&flow, &OPEN, Input::NoInput),
        Ok(Instruction::Hangup {
            prompt: Some(tts("Goodbye")),
            language: None
        })
    );
}

#[test]
fn invalid_keys_and_silences_share_the_retries() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    let script = [
        (Input::NoInput, play("Sorry, I did not hear anything.")),
        (Input::PromptPlayed, main_menu(None)),
        (digits("5"), play("Sorry, that is not an option.")),
        (Input::PromptPlayed, main_menu(None)),
        // An empty entry is no input; the third failure is out of retries.
        (digits(""), operator()),
    ];
    for (input, expected) in script {
        assert_eq!(session.advance(&flow, &OPEN, input), Ok(expected));
    }
}

#[test]
fn too_short_an_account_number_is_asked_again() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    assert_eq!(
        session.advance(&flow, &OPEN, digits("2")),
        Ok(account_entry())
    );
    // No invalid_prompt: the entry prompt plays again at once.
    assert_eq!(
        session.advance(&flow, &OPEN, digits("123#")),
        Ok(account_entry())
    );
    assert_eq!(
        session.advance(&flow, &OPEN, digits("12*456")),
        Ok(account_entry())
    );
    assert_eq!(
        session.advance(&flow, &OPEN, digits("123456#")),
        Ok(enqueue(VIP, Some(90), &[("account", "123456")]))
    );
    assert_eq!(
        session.variables().get("account").map(String::as_str),
        Some("123456")
    );
}

#[test]
fn collected_digits_are_stored_with_or_without_the_terminator() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    session
        .advance(&flow, &OPEN, digits("2"))
        .expect("account entry");
    assert_eq!(
        session.advance(&flow, &OPEN, digits("6543210")),
        Ok(enqueue(SUPPORT, None, &[("account", "6543210")]))
    );
}

#[test]
fn collecting_out_of_retries_goes_to_on_failure() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    session
        .advance(&flow, &OPEN, digits("2"))
        .expect("account entry");
    for _ in 0..2 {
        assert_eq!(
            session.advance(&flow, &OPEN, digits("12345678901#")),
            Ok(account_entry())
        );
    }
    assert_eq!(
        session.advance(&flow, &OPEN, Input::NoInput),
        Ok(operator())
    );
    assert!(session.variables().is_empty());
}

#[test]
fn retries_are_counted_per_node() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    let script = [
        (digits("8"), play("Sorry, that is not an option.")),
        (Input::PromptPlayed, main_menu(None)),
        (digits("2"), account_entry()),
        // The menu's failure does not count at the account entry: two
        // retries there still.
        (digits("1#"), account_entry()),
        (digits("2#"), account_entry()),
        (digits("3#"), operator()),
    ];
    for (input, expected) in script {
        assert_eq!(session.advance(&flow, &OPEN, input), Ok(expected));
    }
}

#[test]
fn vip_callers_skip_the_menu() {
    let flow = acme();
    let mut session = Session::start(
        &flow,
        with_attributes("+15557654321", json!({"vip": true, "elderly": false})),
    );
    assert_eq!(session.advance(&flow, &OPEN, Input::Begin), Ok(welcome()));
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Ok(enqueue(VIP, Some(90), &[]))
    );
    // Not a VIP: the menu.
    let mut session = Session::start(
        &flow,
        with_attributes("+15557654321", json!({"vip": false})),
    );
    session
        .advance(&flow, &OPEN, Input::Begin)
        .expect("welcome");
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Ok(main_menu(None))
    );
}

#[test]
fn closed_and_holiday_hours_go_to_voicemail() {
    let flow = acme();
    for state in [HoursState::Closed, HoursState::Holiday] {
        let ctx = Hours(state);
        let mut session = Session::start(&flow, call("+15557654321"));
        assert_eq!(session.advance(&flow, &ctx, Input::Begin), Ok(welcome()));
        assert_eq!(
            session.advance(&flow, &ctx, Input::PromptPlayed),
            Ok(play("We are closed."))
        );
        assert_eq!(
            session.advance(&flow, &ctx, Input::PromptPlayed),
            Ok(Instruction::Voicemail {
                box_id: voicemail_box(VOICEMAIL_BOX),
                prompt: Some(tts("Please leave a message after the tone.")),
                language: None,
            })
        );
    }
}

#[test]
fn french_callers_hear_the_menu_and_queue_in_french() {
    let flow = acme();
    let mut session = Session::start(&flow, call("+33612345678"));
    assert_eq!(session.advance(&flow, &OPEN, Input::Begin), Ok(welcome()));
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Ok(main_menu(language("fr-FR")))
    );
    assert_eq!(session.language(), language("fr-FR").as_ref());
    assert_eq!(
        session.advance(&flow, &OPEN, digits("1")),
        Ok(Instruction::Enqueue {
            queue_id: queue(SALES),
            priority: None,
            language: language("fr-FR"),
            variables: BTreeMap::new(),
        })
    );
}

#[test]
fn set_language_applies_to_later_prompts_without_their_own_language() {
    let flow = flow(
        "lang",
        json!({
            "lang": {"type": "set_language", "language": "de-DE", "next": "hello"},
            "hello": {"type": "play", "prompt": {"tts": "Hallo"}, "next": "english"},
            "english": {"type": "play", "prompt": {"tts": "For English, hold on",
                                                   "language": "en-GB"},
                        "next": "bye"},
            "bye": {"type": "hangup"}
        }),
    );
    let mut session = Session::start(&flow, call("+4930123456"));
    let script = [
        (
            Input::Begin,
            Instruction::Play {
                prompt: tts("Hallo"),
                language: language("de-DE"),
            },
        ),
        (
            Input::PromptPlayed,
            Instruction::Play {
                prompt: tts("For English, hold on"),
                language: language("en-GB"),
            },
        ),
        (
            Input::PromptPlayed,
            Instruction::Hangup {
                prompt: None,
                language: language("de-DE"),
            },
        ),
    ];
    for (input, expected) in script {
        assert_eq!(session.advance(&flow, &OPEN, input), Ok(expected));
    }
}

#[test]
fn callers_and_attributes_are_matched_as_documented() {
    let flow = flow(
        "check",
        json!({
            "check": {"type": "branch", "conditions": [
                {"when": {"caller_number": "+15551112222"}, "next": "exact"},
                {"when": {"attribute": "tier", "equals": 2}, "next": "tier2"},
                {"when": {"attribute": "accessibility", "present": true}, "next": "assisted"},
                {"when": {"caller_prefix": "+"}, "next": "known"}
              ], "otherwise": "withheld"},
            "exact": {"type": "hangup", "prompt": {"tts": "exact"}},
            "tier2": {"type": "hangup", "prompt": {"tts": "tier2"}},
            "assisted": {"type": "hangup", "prompt": {"tts": "assisted"}},
            "known": {"type": "hangup", "prompt": {"tts": "known"}},
            "withheld": {"type": "hangup", "prompt": {"tts": "withheld"}}
        }),
    );
    let cases = [
        (call("+15551112222"), "exact"),
        (call("+155511122223"), "known"),
        (
            with_attributes("+15551112222", json!({"tier": 2.0})),
            "exact",
        ),
        (
            with_attributes("+447700900123", json!({"tier": 2.0})),
            "tier2",
        ),
        (
            with_attributes("+447700900123", json!({"tier": "2"})),
            "known",
        ),
        (
            with_attributes("anonymous", json!({"accessibility": "tty"})),
            "assisted",
        ),
        (
            with_attributes("anonymous", json!({"accessibility": null})),
            "withheld",
        ),
        (call(""), "withheld"),
    ];
    for (call, node) in cases {
        let caller = call.caller.clone();
        let mut session = Session::start(&flow, call);
        assert_eq!(
            session.advance(&flow, &OPEN, Input::Begin),
            Ok(Instruction::Hangup {
                prompt: Some(tts(node)),
                language: None
            }),
            "caller {caller:?}"
        );
    }
}

#[test]
fn an_accepted_callback_ends_the_flow_with_the_callers_number() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    let offer = Instruction::Collect {
        prompt: tts("Press 1 to be called back."),
        language: None,
        min_length: 1,
        max_length: 1,
        terminator: None,
        timeout_seconds: 5,
    };
    assert_eq!(session.advance(&flow, &OPEN, digits("3")), Ok(offer));
    assert_eq!(
        session.advance(&flow, &OPEN, digits("1")),
        Ok(Instruction::Callback {
            queue_id: queue(CALLBACKS),
            number: "+15557654321".to_owned(),
        })
    );
    assert!(session.is_finished());
}

#[test]
fn a_declined_or_unanswered_callback_goes_on_to_declined() {
    let flow = acme();
    for answer in [digits("2"), Input::NoInput] {
        let mut session = at_main_menu(&flow, call("+15557654321"));
        session.advance(&flow, &OPEN, digits("3")).expect("offer");
        assert_eq!(
            session.advance(&flow, &OPEN, answer),
            Ok(enqueue(SUPPORT, None, &[]))
        );
    }
}

#[test]
fn advancing_after_the_end_is_an_error() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    session.advance(&flow, &OPEN, digits("9")).expect("goodbye");
    assert!(session.is_finished());
    let finished = session.clone();
    for input in [Input::PromptPlayed, Input::Begin, digits("1")] {
        assert_eq!(
            session.advance(&flow, &OPEN, input),
            Err(SessionError::Finished)
        );
    }
    assert_eq!(session, finished);
    assert_eq!(session.current_node(), None);
}

#[test]
fn input_that_does_not_fit_is_an_error_and_changes_nothing() {
    let flow = acme();
    let mut session = Session::start(&flow, call("+15557654321"));
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Err(SessionError::UnexpectedInput {
            expected: "begin",
            got: "prompt_played"
        })
    );
    session
        .advance(&flow, &OPEN, Input::Begin)
        .expect("welcome");
    let playing = session.clone();
    assert_eq!(
        session.advance(&flow, &OPEN, digits("1")),
        Err(SessionError::UnexpectedInput {
            expected: "prompt_played",
            got: "digits"
        })
    );
    assert_eq!(
        session.advance(&flow, &OPEN, Input::Begin),
        Err(SessionError::UnexpectedInput {
            expected: "prompt_played",
            got: "begin"
        })
    );
    assert_eq!(session, playing);
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Ok(main_menu(None))
    );
    assert_eq!(
        session.advance(&flow, &OPEN, Input::PromptPlayed),
        Err(SessionError::UnexpectedInput {
            expected: "digits or no_input",
            got: "prompt_played"
        })
    );
}

#[test]
fn a_session_survives_a_json_round_trip_mid_flow() {
    let flow = acme();
    // A French caller: the language must survive too.
    let mut session = Session::start(&flow, call("+33612345678"));
    let script = [
        (Input::Begin, welcome()),
        (Input::PromptPlayed, main_menu(language("fr-FR"))),
        (digits("4"), play_in_french("Sorry, that is not an option.")),
        (Input::PromptPlayed, main_menu(language("fr-FR"))),
        (digits("4"), play_in_french("Sorry, that is not an option.")),
        (Input::PromptPlayed, main_menu(language("fr-FR"))),
        // The failures counted before each round trip still count: out of
        // retries.
        (digits("4"), operator()),
    ];
    for (input, expected) in script {
        let stored = serde_json::to_string(&session).expect("serializes");
        let mut restored: Session = serde_json::from_str(&stored).expect("deserializes");
        assert_eq!(restored, session);
        assert_eq!(restored.advance(&flow, &OPEN, input), Ok(expected));
        session = restored;
    }
}

#[test]
fn a_session_refuses_another_flow_version() {
    let flow = acme();
    let mut session = at_main_menu(&flow, call("+15557654321"));
    let mut changed = acme_json();
    changed["nodes"]["sales"]["priority"] = json!(10);
    let changed = Flow::from_value(&changed).expect("valid");
    let before = session.clone();
    assert_eq!(
        session.advance(&changed, &OPEN, digits("1")),
        Err(SessionError::FlowMismatch {
            session: flow.fingerprint().to_owned(),
            flow: changed.fingerprint().to_owned(),
        })
    );
    assert_eq!(session, before);
    assert_eq!(session.flow_fingerprint(), flow.fingerprint());
}

#[test]
fn a_tampered_session_is_reported_as_corrupt() {
    let flow = acme();
    let session = at_main_menu(&flow, call("+15557654321"));
    let mut stored = serde_json::to_value(&session).expect("serializes");
    assert_eq!(
        stored["state"],
        json!({"waiting_for": "input", "node": "menu"})
    );
    stored["state"]["node"] = json!("nowhere");
    let mut tampered: Session = serde_json::from_value(stored).expect("deserializes");
    assert_eq!(
        tampered.advance(&flow, &OPEN, digits("1")),
        Err(SessionError::Corrupt(
            "the flow has no node \"nowhere\"".to_owned()
        ))
    );
}

#[test]
fn instructions_and_inputs_have_a_stable_wire_shape() {
    assert_eq!(
        serde_json::to_value(main_menu(language("fr-FR"))).expect("serializes"),
        json!({"action": "collect", "prompt": {"file": "prompts/main-menu.wav"},
               "language": "fr-FR", "min_length": 1, "max_length": 1, "terminator": null,
               "timeout_seconds": 5})
    );
    assert_eq!(
        serde_json::to_value(operator()).expect("serializes"),
        json!({"action": "transfer", "target": {"number": "+15551234567"}})
    );
    assert_eq!(
        serde_json::from_value::<Input>(json!({"digits": "12#"})).expect("deserializes"),
        digits("12#")
    );
    assert_eq!(
        serde_json::from_value::<Input>(json!("no_input")).expect("deserializes"),
        Input::NoInput
    );
    assert!(operator().is_terminal());
    assert!(!main_menu(None).is_terminal());
}
