//! The routing events (`proto/switchboard/events/v1/routing.proto`, source
//! `routing`) built from what an engine operation reported: every agent
//! state transition and every step of a contact, with its time, for
//! analytics (occupancy, adherence, not-ready rates, service level) and
//! webhooks.

use chrono::{DateTime, Utc};
use switchboard_acd::{
    AgentEvent, AgentState, Channel, ContactEvent, ContactEventKind, Engine, Outcome,
    TransitionReason,
};
use switchboard_events::Event;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_tenancy::TenantId;

/// The service name in routing keys.
pub const SOURCE: &str = "routing";

/// The events of `outcome`, in the order things happened (agents' then
/// contacts', each in order), enriched from `engine` as it is after the
/// operation.
pub fn events_of(tenant: TenantId, outcome: &Outcome, engine: &Engine) -> Vec<Event> {
    let mut events = Vec::with_capacity(outcome.agent_events.len() + outcome.contact_events.len());
    for event in &outcome.agent_events {
        events.push(Event::at(tenant, SOURCE, event.at, agent_payload(event)));
    }
    for event in &outcome.contact_events {
        events.push(Event::at(
            tenant,
            SOURCE,
            event.at,
            contact_payload(event, outcome, engine),
        ));
    }
    events
}

fn timestamp(at: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: at.timestamp_subsec_nanos() as i32,
    }
}

fn state(state: &AgentState) -> proto::AgentState {
    use proto::agent_state::Kind;
    let (kind, reason, until) = match state {
        AgentState::Offline => (Kind::Offline, String::new(), None),
        AgentState::Available => (Kind::Available, String::new(), None),
        AgentState::NotReady { reason } => (Kind::NotReady, reason.to_string(), None),
        AgentState::Reserved => (Kind::Reserved, String::new(), None),
        AgentState::Busy => (Kind::Busy, String::new(), None),
        AgentState::AfterCallWork { until } => {
            (Kind::AfterCallWork, String::new(), Some(timestamp(*until)))
        }
    };
    proto::AgentState {
        kind: kind as i32,
        reason,
        wrap_up_until: until,
    }
}

fn agent_payload(event: &AgentEvent) -> Payload {
    Payload::AgentStateChanged(proto::AgentStateChanged {
        agent_id: event.agent.to_string(),
        from: Some(state(&event.from)),
        to: Some(state(&event.to)),
        cause: event.reason.name().to_owned(),
    })
}

fn channel(channel: Channel) -> proto::Channel {
    match channel {
        Channel::Voice => proto::Channel::Voice,
        Channel::Chat => proto::Channel::Chat,
        Channel::Sms => proto::Channel::Sms,
        Channel::Email => proto::Channel::Email,
    }
}

fn contact_payload(event: &ContactEvent, outcome: &Outcome, engine: &Engine) -> Payload {
    let contact_id = event.contact.to_string();
    let queue_id = event.queue.to_string();
    match &event.kind {
        ContactEventKind::Queued => {
            let view = engine.contact(event.contact).ok();
            let queue_channel = engine.queue(event.queue).ok().map(|queue| queue.channel);
            Payload::ContactQueued(proto::ContactQueued {
                contact_id,
                queue_id,
                channel: view
                    .as_ref()
                    .map(|view| view.channel)
                    .or(queue_channel)
                    .map_or(proto::Channel::Unspecified, channel) as i32,
                priority: view.as_ref().map_or(0, |view| u32::from(view.priority)),
                enqueued_at: Some(timestamp(view.map_or(event.at, |view| view.enqueued_at))),
            })
        }
        ContactEventKind::Offered { agent } => {
            let expires_at = outcome
                .offers
                .iter()
                .find(|offer| offer.contact == event.contact && offer.agent == *agent)
                .map(|offer| timestamp(offer.expires_at));
            Payload::ContactOffered(proto::ContactOffered {
                contact_id,
                queue_id,
                agent_id: agent.to_string(),
                expires_at,
            })
        }
        ContactEventKind::Requeued { agent } => {
            let reason = outcome
                .agent_events
                .iter()
                .find(|change| {
                    change.agent == *agent
                        && matches!(
                            change.reason,
                            TransitionReason::Declined | TransitionReason::Missed
                        )
                })
                .map_or("missed", |change| change.reason.name());
            Payload::ContactRequeued(proto::ContactRequeued {
                contact_id,
                queue_id,
                agent_id: agent.to_string(),
                reason: reason.to_owned(),
            })
        }
        ContactEventKind::Connected { agent } => {
            Payload::ContactConnected(proto::ContactConnected {
                contact_id,
                queue_id,
                agent_id: agent.to_string(),
            })
        }
        ContactEventKind::Abandoned => Payload::ContactAbandoned(proto::ContactAbandoned {
            contact_id,
            queue_id,
        }),
        ContactEventKind::Overflowed { waited_ms } => {
            Payload::ContactOverflowed(proto::ContactOverflowed {
                contact_id,
                queue_id,
                waited_ms: *waited_ms,
            })
        }
        ContactEventKind::Ended => {
            let agent_id = outcome
                .agent_events
                .iter()
                .find(|change| change.reason == TransitionReason::ContactEnded)
                .map(|change| change.agent.to_string())
                .unwrap_or_default();
            Payload::ContactEnded(proto::ContactEnded {
                contact_id,
                queue_id,
                agent_id,
            })
        }
    }
}
