//! Inbound calls, as the edge drives them: a new call for a number gets a
//! decision (a SIP rejection, or the first step), each result the edge
//! reports (prompt played, digits, no input) gets the next step, and the
//! call's end (answered by an agent, abandoned, hung up) reaches the ACD.
//!
//! A call runs its number's inbound rule (schedule, holidays, forced
//! mode), then the rule's next step: an IVR flow (the latest published
//! version; the call keeps that version to its end), a queue, an agent, a
//! ring group, a voicemail box, an outside number, or hang up. Enqueueing
//! is done here, so the edge hears `queued` with the caller's place; a full
//! queue takes its overflow step.
//!
//! A call's flow session lives in the cache (`routing:{<tenant>}:call:<id>`,
//! expiring after [`CALL_TTL`]), so any instance can take the next report.

mod outbound;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_acd::{Channel, Contact, ContactId, ContactState, QueueId};
use switchboard_flows::{
    CallFacts, FlowContext, HoursState, Input, Instruction, Session, TransferTarget,
};
use switchboard_hours::HoursStatus;
use switchboard_platform::Cache;
use switchboard_tenancy::TenantId;
use uuid::Uuid;

pub use switchboard_routing_api::calls::{
    CallDecision, CallRoutingApi, InboundCall, OutboundCall, OutboundDecision, QueueStatus,
    RemoteCallRouting, Step,
};
use switchboard_rpc::ServiceError;
use switchboard_tenancy::Tenant;

use crate::RoutingError;
use crate::config::{
    Basis, CachedConfig, ConfigError, ForcedKind, NextStep, RoutingConfig, TenantConfig, check_e164,
};
use crate::ops::{Answer, Operation, Query, RefusalKind};
use crate::runtime::Routing;

/// How long a call's session is kept without a report.
pub const CALL_TTL: Duration = Duration::from_secs(4 * 3600);
/// How often the edge asks for a waiting call's status at most apart when
/// its queue has a maximum wait: the precision of that maximum.
const STATUS_EVERY_SECONDS: u32 = 5;
/// Overflow steps followed in a row before giving up (a loop of full
/// queues).
const MAX_OVERFLOWS: usize = 4;

/// Why a call operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No such call (ended, expired, or another tenant's).
    #[error("unknown call {0}")]
    UnknownCall(ContactId),
    /// The report does not fit the call's step.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Routing(#[from] RoutingError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cache: {0}")]
    Cache(#[from] switchboard_platform::Error),
}

/// A call in a flow, as kept in the cache.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CallState {
    flow_id: Uuid,
    version: i32,
    session: Session,
    /// The schedule's state when the call came in, for `hours` branches.
    hours: HoursState,
}

struct Hours(HoursState);

impl FlowContext for Hours {
    fn hours_state(&self) -> HoursState {
        self.0
    }
}

fn call_key(tenant: TenantId, call: ContactId) -> String {
    format!("routing:{{{tenant}}}:call:{call}")
}

/// The call API of the routing service. Cheap to clone.
#[derive(Clone)]
pub struct Calls {
    routing: Routing,
    /// The configuration each call reads, cached per tenant and checked
    /// against the tenant's revision at the start of every call.
    config: CachedConfig,
    cache: Arc<dyn Cache>,
}

impl Calls {
    pub fn new(routing: Routing, config: RoutingConfig, cache: Arc<dyn Cache>) -> Self {
        Self {
            routing,
            config: CachedConfig::new(config),
            cache,
        }
    }

    /// Decides what to do with a new call.
    pub async fn new_call(&self, call: InboundCall) -> CallDecision {
        let (route, config) = match self.config.number(&call.number).await {
            Ok(found) => found,
            Err(ConfigError::NotFound(_)) => {
                return reject(404, format!("no tenant holds {}", call.number));
            }
            Err(ConfigError::Validation(_)) => {
                return reject(484, format!("{:?} is not an E.164 number", call.number));
            }
            Err(error) => return reject(503, error.to_string()),
        };
        let tenant = route.tenant;
        if !call.admitted_tenants.is_empty() && !call.admitted_tenants.contains(&tenant) {
            // As unknown as a number nobody holds: the trunk's tenants
            // learn nothing of others' numbers.
            return reject(404, format!("no tenant holds {}", call.number));
        }
        if call.over_limit.contains(&tenant) {
            return CallDecision::OverLimit { tenant };
        }
        let now = Utc::now();
        let decision = match config.decide(route.inbound_rule_id, now).await {
            Ok(decision) => decision,
            Err(error) => return reject(503, error.to_string()),
        };
        let hours = match &decision.basis {
            Basis::Schedule { status } => match status {
                HoursStatus::Open => HoursState::Open,
                HoursStatus::Closed => HoursState::Closed,
                HoursStatus::Holiday { .. } => HoursState::Holiday,
            },
            Basis::Forced { mode } => match mode {
                ForcedKind::Closed => HoursState::Closed,
                ForcedKind::Holiday => HoursState::Holiday,
                _ => HoursState::Open,
            },
        };
        let contact = ContactId::new();
        let facts = CallFacts {
            caller: call.caller,
            dialed: route.number,
            attributes: call.attributes,
        };
        match self
            .run_step(&config, contact, decision.step, facts, hours, now)
            .await
        {
            Ok(step) => CallDecision::Accept {
                tenant,
                call: contact,
                step,
            },
            Err(error) => {
                tracing::warn!(%tenant, %error, "call could not be routed");
                reject(503, error.to_string())
            }
        }
    }

    /// The next step after the edge's report on a flow step.
    pub async fn report(
        &self,
        tenant: TenantId,
        call: ContactId,
        input: Input,
    ) -> Result<Step, CallError> {
        let key = call_key(tenant, call);
        let stored = self
            .cache
            .get(&key)
            .await?
            .ok_or(CallError::UnknownCall(call))?;
        let mut state: CallState = serde_json::from_slice(&stored)
            .map_err(|error| CallError::Invalid(format!("stored call state: {error}")))?;
        let config = self.config.tenant(tenant).await?;
        let version = config.flow_version(state.flow_id, state.version).await?;
        let instruction = state
            .session
            .advance(&version.flow, &Hours(state.hours), input)
            .map_err(|error| CallError::Invalid(error.to_string()))?;
        self.after_instruction(&config, call, state, instruction, Utc::now())
            .await
    }

    /// Where a queued call stands, for the periodic announcements: its
    /// place (1 is next) and the queue's expected wait; `ringing` once an
    /// agent is being offered it. Past the queue's maximum wait, the call
    /// leaves the queue and the answer carries its overflow step (the edge
    /// asks at least every `status_every_seconds` of its `queued` step).
    pub async fn queue_status(
        &self,
        tenant: TenantId,
        call: ContactId,
    ) -> Result<QueueStatus, CallError> {
        let view = match self
            .routing
            .query(tenant, Query::Contact { contact: call })
            .await
        {
            Ok(Answer::Contact { view }) => view,
            Ok(_) => return Err(CallError::Invalid("not a contact answer".into())),
            Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::NotFound => {
                return Err(CallError::UnknownCall(call));
            }
            Err(error) => return Err(error.into()),
        };
        let Some(queue) = view.queue else {
            return Err(CallError::Invalid(format!(
                "call {call} is an agent's outbound call, in no queue"
            )));
        };
        let ringing = QueueStatus {
            queue_id: queue,
            position: None,
            expected_wait: None,
            ringing: true,
            next_step: None,
        };
        let ContactState::Queued { position } = view.state else {
            return Ok(ringing);
        };
        let now = Utc::now();
        let config = self.config.tenant(tenant).await?;
        let max_wait = config
            .queue(queue)
            .await
            .ok()
            .and_then(|spec| spec.max_wait.clone());
        if let Some(max_wait) = max_wait {
            let waited = (now - view.enqueued_at).to_std().unwrap_or_default();
            if waited >= Duration::from_secs(u64::from(max_wait.seconds)) {
                match self
                    .routing
                    .execute(tenant, Operation::Overflow { contact: call })
                    .await
                {
                    Ok(_) => {
                        let step = self
                            .run_step(
                                &config,
                                call,
                                max_wait.overflow,
                                CallFacts::default(),
                                HoursState::Open,
                                now,
                            )
                            .await?;
                        return Ok(QueueStatus {
                            queue_id: queue,
                            position: None,
                            expected_wait: None,
                            ringing: false,
                            next_step: Some(step),
                        });
                    }
                    // It started ringing meanwhile.
                    Err(RoutingError::Refused(refusal))
                        if refusal.kind == RefusalKind::Conflict =>
                    {
                        return Ok(ringing);
                    }
                    Err(error) => return Err(error.into()),
                }
            }
        }
        let expected_wait = match self
            .routing
            .query(tenant, Query::QueueStatsOf { queue })
            .await?
        {
            Answer::QueueStats { queues } => queues
                .into_iter()
                .next()
                .and_then(|figures| figures.stats.expected_wait),
            _ => None,
        };
        Ok(QueueStatus {
            queue_id: queue,
            position: Some(position),
            expected_wait,
            ringing: false,
            next_step: None,
        })
    }

    /// Virtual hold: the queued caller takes a callback to `number`
    /// (E.164) instead of waiting on the line. The contact keeps its place;
    /// the edge hangs up, and the agent who gets it sees the number to call
    /// back. Refused once the call rings at an agent.
    pub async fn request_callback(
        &self,
        tenant: TenantId,
        call: ContactId,
        number: &str,
    ) -> Result<(), CallError> {
        let number = check_e164("number", number)
            .map_err(|error| CallError::Config(ConfigError::Validation(vec![error])))?;
        let status = self.queue_status(tenant, call).await?;
        if status.ringing {
            return Err(CallError::Invalid(format!(
                "call {call} already rings at an agent; a callback is offered only while it waits"
            )));
        }
        self.cache.delete(&call_key(tenant, call)).await?;
        self.routing
            .set_callback_number(tenant, call, &number)
            .await?;
        Ok(())
    }

    /// The customer hung up before an agent answered.
    pub async fn abandoned(&self, tenant: TenantId, call: ContactId) -> Result<(), CallError> {
        self.cache.delete(&call_key(tenant, call)).await?;
        self.routing.clear_callback_number(tenant, call).await?;
        match self
            .routing
            .execute(tenant, Operation::Abandon { contact: call })
            .await
        {
            // Not queued (still in the flow): nothing for the ACD to do.
            Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::NotFound => Ok(()),
            other => other.map(|_| ()).map_err(Into::into),
        }
    }

    /// The call ended after an agent answered it.
    pub async fn ended(&self, tenant: TenantId, call: ContactId) -> Result<(), CallError> {
        self.cache.delete(&call_key(tenant, call)).await?;
        self.routing.clear_callback_number(tenant, call).await?;
        self.routing
            .execute(tenant, Operation::End { contact: call })
            .await?;
        Ok(())
    }

    async fn run_step(
        &self,
        config: &TenantConfig,
        call: ContactId,
        step: NextStep,
        facts: CallFacts,
        hours: HoursState,
        now: DateTime<Utc>,
    ) -> Result<Step, CallError> {
        let mut step = step;
        for _ in 0..MAX_OVERFLOWS {
            return match step {
                NextStep::Flow { flow_id } => {
                    let version = config.published_flow(flow_id).await?;
                    let flow = &version.flow;
                    let mut session = Session::start(flow, facts);
                    let instruction = session
                        .advance(flow, &Hours(hours), Input::Begin)
                        .map_err(|error| CallError::Invalid(error.to_string()))?;
                    let state = CallState {
                        flow_id,
                        version: version.view.version,
                        session,
                        hours,
                    };
                    self.after_instruction(config, call, state, instruction, now)
                        .await
                }
                NextStep::Queue { queue_id, priority } => {
                    match self
                        .enqueue(config, call, QueueId::from_uuid(queue_id), priority, now)
                        .await?
                    {
                        Ok(step) => Ok(step),
                        Err(overflow) => {
                            step = overflow;
                            continue;
                        }
                    }
                }
                NextStep::Agent { agent_id } => Ok(Step::RingAgent { agent_id }),
                NextStep::RingGroup { ring_group_id } => Ok(Step::RingGroup { ring_group_id }),
                NextStep::Voicemail { box_id } => Ok(Step::Voicemail {
                    box_id,
                    prompt: None,
                }),
                NextStep::External { number } => Ok(Step::Transfer { number }),
                NextStep::Hangup { message } => Ok(Step::Hangup {
                    prompt: message.map(|prompt| prompt.source),
                }),
            };
        }
        Ok(Step::Hangup { prompt: None })
    }

    /// Keeps the session for the next report, or acts on a terminal
    /// instruction.
    async fn after_instruction(
        &self,
        config: &TenantConfig,
        call: ContactId,
        state: CallState,
        instruction: Instruction,
        now: DateTime<Utc>,
    ) -> Result<Step, CallError> {
        let tenant = config.tenant();
        let key = call_key(tenant, call);
        if !instruction.is_terminal() {
            let stored = serde_json::to_vec(&state)
                .map_err(|error| CallError::Invalid(format!("call state: {error}")))?;
            self.cache.set(&key, &stored, Some(CALL_TTL)).await?;
        } else {
            self.cache.delete(&key).await?;
        }
        Ok(match instruction {
            Instruction::Play { prompt, language } => Step::Play { prompt, language },
            Instruction::Collect {
                prompt,
                language,
                min_length,
                max_length,
                terminator,
                timeout_seconds,
            } => Step::Collect {
                prompt,
                language,
                min_length,
                max_length,
                terminator,
                timeout_seconds,
            },
            Instruction::Enqueue {
                queue_id, priority, ..
            } => {
                let facts = state.session.call().clone();
                match self.enqueue(config, call, queue_id, priority, now).await? {
                    Ok(step) => step,
                    Err(overflow) => {
                        Box::pin(self.run_step(config, call, overflow, facts, state.hours, now))
                            .await?
                    }
                }
            }
            Instruction::Transfer { target } => match target {
                TransferTarget::Agent(agent) => Step::RingAgent {
                    agent_id: agent.as_uuid(),
                },
                TransferTarget::RingGroup(group) => Step::RingGroup {
                    ring_group_id: group.as_uuid(),
                },
                TransferTarget::Number(number) => Step::Transfer {
                    number: number.as_str().to_owned(),
                },
            },
            Instruction::Voicemail { box_id, prompt, .. } => Step::Voicemail {
                box_id: box_id.as_uuid(),
                prompt,
            },
            Instruction::Callback { queue_id, number } => {
                // The caller accepted a callback before queuing: the call
                // becomes a callback contact in the queue from now on.
                match self.enqueue(config, call, queue_id, None, now).await? {
                    Ok(_) => {
                        self.routing
                            .set_callback_number(tenant, call, &number)
                            .await?;
                        Step::Callback { queue_id, number }
                    }
                    Err(overflow) => {
                        let facts = state.session.call().clone();
                        Box::pin(self.run_step(config, call, overflow, facts, state.hours, now))
                            .await?
                    }
                }
            }
            Instruction::Hangup { prompt, .. } => Step::Hangup { prompt },
        })
    }

    /// Queues the call; a full queue answers its overflow step instead.
    async fn enqueue(
        &self,
        config: &TenantConfig,
        call: ContactId,
        queue: QueueId,
        priority: Option<u8>,
        now: DateTime<Utc>,
    ) -> Result<Result<Step, NextStep>, CallError> {
        let tenant = config.tenant();
        let mut contact = Contact::new(call, queue, Channel::Voice, now);
        contact.priority = priority;
        match self
            .routing
            .execute(tenant, Operation::Enqueue { contact })
            .await
        {
            Ok(outcome) => {
                let ringing = outcome.offers.iter().any(|offer| offer.contact == call);
                let position = if ringing {
                    None
                } else {
                    match self
                        .routing
                        .query(tenant, Query::Contact { contact: call })
                        .await
                    {
                        Ok(Answer::Contact { view }) => match view.state {
                            ContactState::Queued { position } => Some(position),
                            _ => None,
                        },
                        _ => None,
                    }
                };
                let spec = config.queue(queue).await.ok();
                Ok(Ok(Step::Queued {
                    queue_id: queue,
                    position,
                    music_on_hold: spec
                        .as_ref()
                        .and_then(|spec| spec.music_on_hold.clone())
                        .map(|prompt| prompt.source),
                    announcements: spec.as_ref().and_then(|spec| spec.announcements),
                    callback_offer_after_seconds: spec
                        .as_ref()
                        .filter(|spec| spec.callback.enabled)
                        .map(|spec| spec.callback.after_seconds),
                    status_every_seconds: spec
                        .as_ref()
                        .and_then(|spec| spec.max_wait.as_ref())
                        .map(|max_wait| max_wait.seconds.clamp(1, STATUS_EVERY_SECONDS)),
                    priority,
                    enqueued_at: now,
                }))
            }
            Err(RoutingError::Refused(refusal)) if refusal.kind == RefusalKind::Overflow => {
                let overflow = config
                    .queue(queue)
                    .await?
                    .max_waiting
                    .as_ref()
                    .map(|max| max.overflow.clone())
                    .unwrap_or(NextStep::Hangup { message: None });
                Ok(Err(overflow))
            }
            Err(error) => Err(error.into()),
        }
    }
}

impl From<CallError> for ServiceError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::UnknownCall(call) => ServiceError::new(
                switchboard_rpc::ErrorKind::NotFound,
                format!("unknown call {call}"),
            ),
            CallError::Invalid(message) => ServiceError::conflict("invalid_report", message),
            CallError::Routing(error) => error.to_service_error(),
            CallError::Cache(error) => ServiceError::unavailable(error.to_string()),
            CallError::Config(error) => ServiceError::from(error),
        }
    }
}

/// The calls in process: what the node's edge calls when routing is
/// hosted beside it.
#[async_trait::async_trait]
impl CallRoutingApi for Calls {
    async fn new_call(&self, call: InboundCall) -> Result<CallDecision, ServiceError> {
        Ok(Calls::new_call(self, call).await)
    }

    async fn report(
        &self,
        tenant: &Tenant,
        call: ContactId,
        input: Input,
    ) -> Result<Step, ServiceError> {
        Ok(Calls::report(self, tenant.id(), call, input).await?)
    }

    async fn queue_status(
        &self,
        tenant: &Tenant,
        call: ContactId,
    ) -> Result<QueueStatus, ServiceError> {
        Ok(Calls::queue_status(self, tenant.id(), call).await?)
    }

    async fn abandoned(&self, tenant: &Tenant, call: ContactId) -> Result<(), ServiceError> {
        Ok(Calls::abandoned(self, tenant.id(), call).await?)
    }

    async fn ended(&self, tenant: &Tenant, call: ContactId) -> Result<(), ServiceError> {
        Ok(Calls::ended(self, tenant.id(), call).await?)
    }

    async fn outbound_call(
        &self,
        tenant: &Tenant,
        call: OutboundCall,
    ) -> Result<OutboundDecision, ServiceError> {
        Ok(Calls::outbound_call(self, tenant.id(), call).await)
    }
}

fn reject(sip_status: u16, reason: String) -> CallDecision {
    CallDecision::Reject { sip_status, reason }
}
