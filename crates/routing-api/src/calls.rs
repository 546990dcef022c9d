//! Inbound calls as the edge drives them through routing
//! (`switchboard.routing.v1.CallRouting`): a new call gets a decision (a
//! SIP rejection, or its tenant, its id and the first step), each result
//! the edge reports (prompt played, digits, no input) gets the next step,
//! and the call's end reaches the ACD.
//!
//! - [`CallRoutingApi`]: the API; the routing service implements it in
//!   process and serves it over gRPC, [`RemoteCallRouting`] is its tonic
//!   client.
//! - [`InboundCall`], [`CallDecision`], [`Step`], [`QueueStatus`]: its
//!   types, with their protobuf forms ([`step_message`], [`step_of`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_acd::{AgentId, ContactId, QueueId};
use switchboard_flows::{Input, Language, PromptSource};
use switchboard_proto::routing::v1 as pb;
use switchboard_proto::routing::v1::call_routing_client::CallRoutingClient;
use switchboard_rpc::{CallContext, Credentials, ServiceError};
use switchboard_tenancy::{Tenant, TenantId};
use tonic::transport::Channel;
use uuid::Uuid;

use crate::config::Announcements;

/// A new inbound call, as the edge saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundCall {
    /// The dialed number (E.164).
    pub number: String,
    /// The caller's number (E.164 when known; empty or `anonymous` when
    /// withheld).
    pub caller: String,
    /// The trunk the call came in on.
    pub trunk: String,
    /// What is known of the customer (`vip`, `elderly`, …), for flow
    /// branches.
    #[serde(default)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// Only these tenants may take the call (the tenants of the trunks
    /// that admitted it); a number another tenant holds is refused as
    /// unknown. Empty for any tenant.
    #[serde(default)]
    pub admitted_tenants: Vec<TenantId>,
    /// Admitted tenants that are at a call limit of their plan right now
    /// (the edge counts): a number of theirs is answered
    /// [`CallDecision::OverLimit`], before anything else happens.
    #[serde(default)]
    pub over_limit: Vec<TenantId>,
}

/// The answer to a new call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum CallDecision {
    /// Refuse the call with this SIP status (RFC 3261 §21): 404 for a
    /// number nobody holds, 484 for one that is not E.164, 503 when
    /// routing cannot decide now.
    Reject { sip_status: u16, reason: String },
    /// Take the call: it is `call` of `tenant` from now on; do `step`.
    Accept {
        tenant: TenantId,
        call: ContactId,
        step: Step,
    },
    /// The number is `tenant`'s, which the edge said is at a call limit:
    /// nothing was started (the edge answers 503 with Retry-After).
    OverLimit { tenant: TenantId },
}

/// What the edge does next with a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Step {
    /// Play the prompt, then report `prompt_played`.
    Play {
        prompt: PromptSource,
        language: Option<Language>,
    },
    /// Collect keys while playing the prompt; report the digits or
    /// `no_input`.
    Collect {
        prompt: PromptSource,
        language: Option<Language>,
        min_length: u32,
        max_length: u32,
        terminator: Option<String>,
        timeout_seconds: u32,
    },
    /// The call waits in `queue_id` (music on hold, announcements) until an
    /// agent takes it; `position` 1 is next, none when it is already ringing
    /// at an agent.
    Queued {
        queue_id: QueueId,
        position: Option<usize>,
        music_on_hold: Option<PromptSource>,
        /// Announce every so often what [`CallRoutingApi::queue_status`]
        /// says.
        announcements: Option<Announcements>,
        /// Offer the caller a callback (keeping its place) after this
        /// wait, in seconds.
        callback_offer_after_seconds: Option<u32>,
        /// Ask [`CallRoutingApi::queue_status`] at least this often
        /// (seconds) while waiting: the queue has a maximum wait, past
        /// which the status carries the overflow step.
        status_every_seconds: Option<u32>,
        /// The call's own priority, none for the queue's.
        priority: Option<u8>,
        /// When it joined the queue. With the queue and priority, what
        /// the edge re-asserts if routing loses the call.
        enqueued_at: DateTime<Utc>,
    },
    /// Ring this agent's phone.
    RingAgent { agent_id: Uuid },
    /// Ring the group's members.
    RingGroup { ring_group_id: Uuid },
    /// Take a message in the box.
    Voicemail {
        box_id: Uuid,
        prompt: Option<PromptSource>,
    },
    /// Transfer to an outside number.
    Transfer { number: String },
    /// Queue a callback to `number` in `queue_id`, then hang up.
    Callback { queue_id: QueueId, number: String },
    /// Play the prompt, if any, and hang up.
    Hangup { prompt: Option<PromptSource> },
}

impl Step {
    /// Whether the edge reports a result for this step.
    pub fn expects_report(&self) -> bool {
        matches!(self, Step::Play { .. } | Step::Collect { .. })
    }
}

/// Where a queued call stands (see [`CallRoutingApi::queue_status`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueStatus {
    pub queue_id: QueueId,
    /// 1 is next; `None` once it rings at an agent.
    pub position: Option<usize>,
    /// The queue's expected wait for a contact entering now.
    pub expected_wait: Option<Duration>,
    pub ringing: bool,
    /// The call waited past its queue's maximum wait and left the queue:
    /// do this instead.
    pub next_step: Option<Step>,
}

/// An agent's outbound call, as the edge asks routing to place it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboundCall {
    /// The agent placing it (a user id).
    pub agent: AgentId,
    /// The number dialed (E.164).
    pub number: String,
    /// The tenant number the call concerns (a callback, a return call),
    /// for a rule whose caller id is per number.
    #[serde(default)]
    pub concerning_number: Option<String>,
}

/// The answer to an outbound call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum OutboundDecision {
    /// Refuse it with this SIP status: 484 for a number that is not
    /// E.164, 403 for a user who is not an agent or whose groups have no
    /// outbound rule, 486 for an agent busy with another contact (or
    /// being offered one), 503 when routing cannot decide now.
    Reject { sip_status: u16, reason: String },
    /// Place it: it is `call` from now on (the agent is busy with it until
    /// [`CallRoutingApi::ended`]); try `trunks` in order, presenting
    /// `caller_id`.
    Place {
        call: ContactId,
        trunks: Vec<String>,
        caller_id: String,
        /// The outbound rule that decided.
        rule: Uuid,
    },
}

/// What a call-routing call answers.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Inbound calls through routing. Every method but
/// [`CallRoutingApi::new_call`] acts for the call's `&Tenant` (the one its
/// decision named); another tenant's call is not found.
#[async_trait::async_trait]
pub trait CallRoutingApi: Send + Sync {
    /// Decides what to do with a new call. A refusal is a decision
    /// ([`CallDecision::Reject`]); an error means routing could not be
    /// asked.
    async fn new_call(&self, call: InboundCall) -> Result<CallDecision>;

    /// The next step after the result of a `play` or `collect` step.
    async fn report(&self, tenant: &Tenant, call: ContactId, input: Input) -> Result<Step>;

    /// Where a queued call stands.
    async fn queue_status(&self, tenant: &Tenant, call: ContactId) -> Result<QueueStatus>;

    /// The caller hung up before an agent answered.
    async fn abandoned(&self, tenant: &Tenant, call: ContactId) -> Result<()>;

    /// The call ended after an agent answered it, or an agent's outbound
    /// call ended (answered or not).
    async fn ended(&self, tenant: &Tenant, call: ContactId) -> Result<()>;

    /// Decides an agent's outbound call by the tenant's outbound rules: a
    /// refusal is a decision ([`OutboundDecision::Reject`]).
    async fn outbound_call(&self, tenant: &Tenant, call: OutboundCall) -> Result<OutboundDecision>;
}

fn prompt_message(source: PromptSource) -> pb::Prompt {
    pb::Prompt {
        source: Some(match source {
            PromptSource::File(path) => pb::prompt::Source::File(path),
            PromptSource::Tts(text) => pb::prompt::Source::Tts(text),
        }),
    }
}

fn prompt_of(prompt: Option<pb::Prompt>) -> Result<PromptSource> {
    match prompt.and_then(|prompt| prompt.source) {
        Some(pb::prompt::Source::File(path)) => Ok(PromptSource::File(path)),
        Some(pb::prompt::Source::Tts(text)) => Ok(PromptSource::Tts(text)),
        None => Err(malformed("a step's prompt is missing")),
    }
}

fn malformed(what: &str) -> ServiceError {
    ServiceError::internal(format!("malformed answer from routing: {what}"))
}

fn language_of(language: String) -> Result<Option<Language>> {
    if language.is_empty() {
        return Ok(None);
    }
    Language::try_from(language)
        .map(Some)
        .map_err(|_| malformed("a step's language is not BCP 47"))
}

fn uuid_of(id: &str) -> Result<Uuid> {
    id.parse().map_err(|_| malformed("an id is not a UUID"))
}

/// A step as the edge receives it over gRPC.
pub fn step_message(step: Step) -> pb::Step {
    use pb::step::Action;
    let language = |language: Option<Language>| {
        language
            .map(|language| language.as_str().to_owned())
            .unwrap_or_default()
    };
    let action = match step {
        Step::Play {
            prompt,
            language: l,
        } => Action::Play(pb::Play {
            prompt: Some(prompt_message(prompt)),
            language: language(l),
        }),
        Step::Collect {
            prompt,
            language: l,
            min_length,
            max_length,
            terminator,
            timeout_seconds,
        } => Action::Collect(pb::Collect {
            prompt: Some(prompt_message(prompt)),
            language: language(l),
            min_length,
            max_length,
            terminator: terminator.unwrap_or_default(),
            timeout_seconds,
        }),
        Step::Queued {
            queue_id,
            position,
            music_on_hold,
            announcements,
            callback_offer_after_seconds,
            status_every_seconds,
            priority,
            enqueued_at,
        } => Action::Queued(pb::Queued {
            queue_id: queue_id.to_string(),
            position: position.map_or(0, |p| u32::try_from(p).unwrap_or(u32::MAX)),
            music_on_hold: music_on_hold.map(prompt_message),
            announce_every_seconds: announcements.map_or(0, |a| a.every_seconds),
            announce_position: announcements.is_some_and(|a| a.position),
            announce_expected_wait: announcements.is_some_and(|a| a.expected_wait),
            callback_offer_after_seconds,
            status_every_seconds: status_every_seconds.unwrap_or(0),
            priority: priority.map(u32::from),
            enqueued_at_ms: enqueued_at.timestamp_millis(),
        }),
        Step::RingAgent { agent_id } => Action::RingAgent(pb::RingAgent {
            agent_id: agent_id.to_string(),
        }),
        Step::RingGroup { ring_group_id } => Action::RingGroup(pb::RingGroup {
            ring_group_id: ring_group_id.to_string(),
        }),
        Step::Voicemail { box_id, prompt } => Action::Voicemail(pb::Voicemail {
            box_id: box_id.to_string(),
            prompt: prompt.map(prompt_message),
        }),
        Step::Transfer { number } => Action::Transfer(pb::Transfer { number }),
        Step::Callback { queue_id, number } => Action::Callback(pb::Callback {
            queue_id: queue_id.to_string(),
            number,
        }),
        Step::Hangup { prompt } => Action::Hangup(pb::Hangup {
            prompt: prompt.map(prompt_message),
        }),
    };
    pb::Step {
        action: Some(action),
    }
}

/// The step [`step_message`] made, back.
pub fn step_of(step: Option<pb::Step>) -> Result<Step> {
    use pb::step::Action;
    let action = step
        .and_then(|step| step.action)
        .ok_or_else(|| malformed("no step"))?;
    Ok(match action {
        Action::Play(play) => Step::Play {
            prompt: prompt_of(play.prompt)?,
            language: language_of(play.language)?,
        },
        Action::Collect(collect) => Step::Collect {
            prompt: prompt_of(collect.prompt)?,
            language: language_of(collect.language)?,
            min_length: collect.min_length,
            max_length: collect.max_length,
            terminator: (!collect.terminator.is_empty()).then_some(collect.terminator),
            timeout_seconds: collect.timeout_seconds,
        },
        Action::Queued(queued) => Step::Queued {
            queue_id: QueueId::from_uuid(uuid_of(&queued.queue_id)?),
            position: (queued.position > 0).then_some(queued.position as usize),
            music_on_hold: queued
                .music_on_hold
                .map(|prompt| prompt_of(Some(prompt)))
                .transpose()?,
            announcements: (queued.announce_every_seconds > 0).then_some(Announcements {
                every_seconds: queued.announce_every_seconds,
                position: queued.announce_position,
                expected_wait: queued.announce_expected_wait,
            }),
            callback_offer_after_seconds: queued.callback_offer_after_seconds,
            status_every_seconds: (queued.status_every_seconds > 0)
                .then_some(queued.status_every_seconds),
            priority: queued
                .priority
                .map(|priority| u8::try_from(priority).map_err(|_| malformed("priority")))
                .transpose()?,
            enqueued_at: DateTime::from_timestamp_millis(queued.enqueued_at_ms)
                .ok_or_else(|| malformed("enqueued_at_ms"))?,
        },
        Action::RingAgent(ring) => Step::RingAgent {
            agent_id: uuid_of(&ring.agent_id)?,
        },
        Action::RingGroup(ring) => Step::RingGroup {
            ring_group_id: uuid_of(&ring.ring_group_id)?,
        },
        Action::Voicemail(voicemail) => Step::Voicemail {
            box_id: uuid_of(&voicemail.box_id)?,
            prompt: voicemail
                .prompt
                .map(|prompt| prompt_of(Some(prompt)))
                .transpose()?,
        },
        Action::Transfer(transfer) => Step::Transfer {
            number: transfer.number,
        },
        Action::Callback(callback) => Step::Callback {
            queue_id: QueueId::from_uuid(uuid_of(&callback.queue_id)?),
            number: callback.number,
        },
        Action::Hangup(hangup) => Step::Hangup {
            prompt: hangup
                .prompt
                .map(|prompt| prompt_of(Some(prompt)))
                .transpose()?,
        },
    })
}

/// Routing's calls on another node. New calls are signed for no tenant
/// (the number names it); every later call for the call's tenant. Cheap to
/// clone.
#[derive(Clone)]
pub struct RemoteCallRouting {
    client: CallRoutingClient<Channel>,
    credentials: Credentials,
}

impl RemoteCallRouting {
    /// Calls the service over `channel`, signing with `credentials`.
    pub fn new(channel: Channel, credentials: Credentials) -> Self {
        Self {
            client: CallRoutingClient::new(channel),
            credentials,
        }
    }

    fn request<T>(&self, context: CallContext, message: T) -> Result<tonic::Request<T>> {
        self.credentials
            .request(message, &context)
            .map_err(|status| ServiceError::from_status(&status))
    }

    fn call_ref(call: ContactId) -> pb::CallRef {
        pb::CallRef {
            call_id: call.to_string(),
        }
    }
}

fn failed(status: tonic::Status) -> ServiceError {
    ServiceError::from_status(&status)
}

#[async_trait::async_trait]
impl CallRoutingApi for RemoteCallRouting {
    async fn new_call(&self, call: InboundCall) -> Result<CallDecision> {
        let attributes_json = if call.attributes.is_empty() {
            String::new()
        } else {
            serde_json::Value::Object(call.attributes).to_string()
        };
        let request = self.request(
            CallContext::system(),
            pb::NewCallRequest {
                number: call.number,
                caller: call.caller,
                trunk: call.trunk,
                attributes_json,
                admitted_tenant_ids: call
                    .admitted_tenants
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                over_limit_tenant_ids: call.over_limit.iter().map(ToString::to_string).collect(),
            },
        )?;
        let decision = self
            .client
            .clone()
            .new_call(request)
            .await
            .map_err(failed)?
            .into_inner()
            .decision
            .ok_or_else(|| malformed("no decision"))?;
        Ok(match decision {
            pb::new_call_response::Decision::Reject(reject) => CallDecision::Reject {
                sip_status: u16::try_from(reject.sip_status)
                    .map_err(|_| malformed("a SIP status out of range"))?,
                reason: reject.reason,
            },
            pb::new_call_response::Decision::Accepted(accepted) => CallDecision::Accept {
                tenant: TenantId::from_uuid(uuid_of(&accepted.tenant_id)?),
                call: ContactId::from_uuid(uuid_of(&accepted.call_id)?),
                step: step_of(accepted.step)?,
            },
            pb::new_call_response::Decision::OverLimit(over) => CallDecision::OverLimit {
                tenant: TenantId::from_uuid(uuid_of(&over.tenant_id)?),
            },
        })
    }

    async fn report(&self, tenant: &Tenant, call: ContactId, input: Input) -> Result<Step> {
        use pb::report_result_request::Result as Report;
        let result = match input {
            Input::PromptPlayed => Report::PromptPlayed(()),
            Input::Digits(digits) => Report::Digits(digits),
            Input::NoInput => Report::NoInput(()),
            Input::Begin => {
                return Err(ServiceError::bad_request(
                    "a call's flow begins with its new call, not with a report",
                ));
            }
        };
        let request = self.request(
            CallContext::tenant(tenant.clone()),
            pb::ReportResultRequest {
                call: Some(Self::call_ref(call)),
                result: Some(result),
            },
        )?;
        let response = self
            .client
            .clone()
            .report_result(request)
            .await
            .map_err(failed)?;
        step_of(response.into_inner().step)
    }

    async fn queue_status(&self, tenant: &Tenant, call: ContactId) -> Result<QueueStatus> {
        let request = self.request(CallContext::tenant(tenant.clone()), Self::call_ref(call))?;
        let status = self
            .client
            .clone()
            .queue_status(request)
            .await
            .map_err(failed)?
            .into_inner();
        Ok(QueueStatus {
            queue_id: QueueId::from_uuid(uuid_of(&status.queue_id)?),
            position: (status.position > 0).then_some(status.position as usize),
            expected_wait: status
                .expected_wait_seconds
                .map(|seconds| Duration::from_secs(u64::from(seconds))),
            ringing: status.ringing,
            next_step: status
                .next_step
                .map(|step| step_of(Some(step)))
                .transpose()?,
        })
    }

    async fn abandoned(&self, tenant: &Tenant, call: ContactId) -> Result<()> {
        let request = self.request(CallContext::tenant(tenant.clone()), Self::call_ref(call))?;
        self.client
            .clone()
            .call_abandoned(request)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn ended(&self, tenant: &Tenant, call: ContactId) -> Result<()> {
        let request = self.request(CallContext::tenant(tenant.clone()), Self::call_ref(call))?;
        self.client
            .clone()
            .call_ended(request)
            .await
            .map_err(failed)?;
        Ok(())
    }

    async fn outbound_call(&self, tenant: &Tenant, call: OutboundCall) -> Result<OutboundDecision> {
        let request = self.request(
            CallContext::tenant(tenant.clone()),
            pb::OutboundCallRequest {
                agent_id: call.agent.to_string(),
                number: call.number,
                concerning_number: call.concerning_number.unwrap_or_default(),
            },
        )?;
        let decision = self
            .client
            .clone()
            .outbound_call(request)
            .await
            .map_err(failed)?
            .into_inner()
            .decision
            .ok_or_else(|| malformed("no decision"))?;
        outbound_decision_of(decision)
    }
}

/// The protobuf form of an outbound decision.
pub fn outbound_decision_message(
    decision: OutboundDecision,
) -> pb::outbound_call_response::Decision {
    use pb::outbound_call_response::Decision;
    match decision {
        OutboundDecision::Reject { sip_status, reason } => Decision::Reject(pb::Reject {
            sip_status: u32::from(sip_status),
            reason,
        }),
        OutboundDecision::Place {
            call,
            trunks,
            caller_id,
            rule,
        } => Decision::Place(pb::OutboundPlan {
            call_id: call.to_string(),
            trunks,
            caller_id,
            rule_id: rule.to_string(),
        }),
    }
}

/// An outbound decision from its protobuf form.
pub fn outbound_decision_of(
    decision: pb::outbound_call_response::Decision,
) -> Result<OutboundDecision> {
    use pb::outbound_call_response::Decision;
    Ok(match decision {
        Decision::Reject(reject) => OutboundDecision::Reject {
            sip_status: u16::try_from(reject.sip_status)
                .map_err(|_| malformed("a SIP status out of range"))?,
            reason: reject.reason,
        },
        Decision::Place(plan) => OutboundDecision::Place {
            call: ContactId::from_uuid(uuid_of(&plan.call_id)?),
            trunks: plan.trunks,
            caller_id: plan.caller_id,
            rule: uuid_of(&plan.rule_id)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outbound_decision_survives_its_protobuf_form() {
        let decisions = [
            OutboundDecision::Reject {
                sip_status: 486,
                reason: "busy".into(),
            },
            OutboundDecision::Place {
                call: ContactId::new(),
                trunks: vec!["primary".into(), "backup".into()],
                caller_id: "+442079460000".into(),
                rule: Uuid::new_v4(),
            },
        ];
        for decision in decisions {
            let back = outbound_decision_of(outbound_decision_message(decision.clone())).unwrap();
            assert_eq!(back, decision);
        }
        let bad = pb::outbound_call_response::Decision::Place(pb::OutboundPlan {
            call_id: "not-a-uuid".into(),
            ..Default::default()
        });
        assert!(outbound_decision_of(bad).is_err());
    }

    #[test]
    fn every_step_survives_its_protobuf_form() {
        let queue = QueueId::new();
        let steps = vec![
            Step::Play {
                prompt: PromptSource::Tts("Welcome".into()),
                language: Some(Language::try_from("en-GB".to_owned()).unwrap()),
            },
            Step::Collect {
                prompt: PromptSource::File("menu.wav".into()),
                language: None,
                min_length: 1,
                max_length: 4,
                terminator: Some("#".into()),
                timeout_seconds: 5,
            },
            Step::Queued {
                queue_id: queue,
                position: Some(3),
                music_on_hold: Some(PromptSource::File("moh.wav".into())),
                announcements: Some(Announcements {
                    every_seconds: 30,
                    position: true,
                    expected_wait: false,
                }),
                callback_offer_after_seconds: Some(120),
                status_every_seconds: Some(5),
                priority: Some(80),
                enqueued_at: DateTime::from_timestamp_millis(1_796_000_000_123).unwrap(),
            },
            Step::Queued {
                queue_id: queue,
                position: None,
                music_on_hold: None,
                announcements: None,
                callback_offer_after_seconds: None,
                status_every_seconds: None,
                priority: None,
                enqueued_at: DateTime::from_timestamp_millis(0).unwrap(),
            },
            Step::RingAgent {
                agent_id: Uuid::new_v4(),
            },
            Step::RingGroup {
                ring_group_id: Uuid::new_v4(),
            },
            Step::Voicemail {
                box_id: Uuid::new_v4(),
                prompt: None,
            },
            Step::Transfer {
                number: "+4420794600".into(),
            },
            Step::Callback {
                queue_id: queue,
                number: "+4420794600".into(),
            },
            Step::Hangup {
                prompt: Some(PromptSource::Tts("Goodbye".into())),
            },
        ];
        for step in steps {
            assert_eq!(step_of(Some(step_message(step.clone()))).unwrap(), step);
        }
    }

    #[test]
    fn a_step_without_its_prompt_is_refused() {
        let step = pb::Step {
            action: Some(pb::step::Action::Play(pb::Play {
                prompt: None,
                language: String::new(),
            })),
        };
        assert!(step_of(Some(step)).is_err());
        assert!(step_of(None).is_err());
    }
}
