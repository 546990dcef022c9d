//! `switchboard contacts simulate`: a phone call without a phone system.
//! It plays the edge's part over the routing service's gRPC API
//! (`switchboard.routing.v1.CallRouting`), exactly as a carrier call would
//! arrive: the dialed number picks the tenant and its inbound rule, the
//! flow runs (prompts count as played, menus get the given digits), and a
//! queued contact is offered to an agent like any other. The contact then
//! waits in its queue, as a caller holding on the line would.

use anyhow::{Context, bail};
use pb::call_routing_client::CallRoutingClient;
use pb::report_result_request::Result as Report;
use pb::step::Action;
use switchboard_proto::routing::v1 as pb;
use switchboard_rpc::{CallContext, Credentials};
use switchboard_tenancy::{Tenant, TenantId};
use tonic::transport::Channel;

/// More steps than this without reaching a queue or an end: a flow that
/// loops (a menu that repeats on no input, with no digits left to give).
const MAX_STEPS: usize = 50;

/// What to dial, from where, and the keys to press.
pub struct Simulation {
    /// What its calls are signed with: the edge's service credential.
    pub credentials: Credentials,
    /// The node's gRPC address, `http://host:port`.
    pub grpc: String,
    pub to: String,
    pub from: String,
    /// One entry per `collect` step of the flow, in order; none left →
    /// no input.
    pub digits: Vec<String>,
}

pub async fn simulate(simulation: Simulation) -> anyhow::Result<()> {
    let channel = Channel::from_shared(simulation.grpc.clone())
        .with_context(|| format!("invalid --grpc address {:?}", simulation.grpc))?
        .connect()
        .await
        .with_context(|| format!("cannot reach the routing service at {}", simulation.grpc))?;
    let mut routing = CallRoutingClient::new(channel);
    let credentials = &simulation.credentials;
    let decision = routing
        .new_call(signed(
            credentials,
            pb::NewCallRequest {
                number: simulation.to.clone(),
                caller: simulation.from.clone(),
                trunk: "simulated".into(),
                attributes_json: String::new(),
                admitted_tenant_ids: Vec::new(),
                over_limit_tenant_ids: Vec::new(),
            },
            &CallContext::system(),
        )?)
        .await
        .map_err(|status| describe(&status, "the call was not routed"))?
        .into_inner()
        .decision;
    let accepted = match decision {
        Some(pb::new_call_response::Decision::Accepted(accepted)) => accepted,
        Some(pb::new_call_response::Decision::Reject(reject)) => bail!(
            "call to {} rejected: SIP {} {}",
            simulation.to,
            reject.sip_status,
            reject.reason
        ),
        Some(pb::new_call_response::Decision::OverLimit(_)) => {
            bail!(
                "call to {} refused: its tenant is at a call limit",
                simulation.to
            )
        }
        None => bail!("the routing service answered without a decision"),
    };
    let tenant: TenantId = accepted
        .tenant_id
        .parse()
        .map_err(|_| anyhow::anyhow!("the routing service named no valid tenant"))?;
    // Every later call about this call is made for its tenant.
    let context = CallContext::tenant(Tenant::whole(tenant));
    let call = pb::CallRef {
        call_id: accepted.call_id.clone(),
    };
    println!(
        "contact {} (tenant {tenant}): {} calls {}",
        call.call_id, simulation.from, simulation.to
    );
    let mut digits = simulation.digits.into_iter();
    let mut step = accepted.step;
    for _ in 0..MAX_STEPS {
        let Some(action) = step.and_then(|step| step.action) else {
            bail!("the routing service answered without a step");
        };
        let report = match action {
            Action::Play(play) => {
                println!("  plays     {}", prompt(play.prompt.as_ref()));
                Report::PromptPlayed(())
            }
            Action::Collect(collect) => {
                println!("  asks      {}", prompt(collect.prompt.as_ref()));
                match digits.next() {
                    Some(keys) => {
                        println!("  pressed   {keys}");
                        Report::Digits(keys)
                    }
                    None => {
                        println!("  pressed   nothing (no --digits left)");
                        Report::NoInput(())
                    }
                }
            }
            Action::Queued(queued) => {
                let status = routing
                    .queue_status(signed(credentials, call.clone(), &context)?)
                    .await
                    .map_err(|status| describe(&status, "cannot read the queue status"))?
                    .into_inner();
                if status.ringing {
                    println!(
                        "  queued    in queue {}: offered to an agent now (their desktop and GET /v1/agents/me show it)",
                        queued.queue_id
                    );
                } else {
                    println!(
                        "  queued    in queue {}, position {}: no agent is available yet; it is offered as soon as one is",
                        queued.queue_id, status.position
                    );
                }
                println!(
                    "  the contact waits in its queue; the agent accepts it with POST /v1/agents/me/offers/{}/accept",
                    call.call_id
                );
                return Ok(());
            }
            other => {
                println!("  ends      {}", ending(&other));
                return Ok(());
            }
        };
        step = routing
            .report_result(signed(
                credentials,
                pb::ReportResultRequest {
                    call: Some(call.clone()),
                    result: Some(report),
                },
                &context,
            )?)
            .await
            .map_err(|status| describe(&status, "the flow stopped"))?
            .into_inner()
            .step;
    }
    bail!("the flow ran {MAX_STEPS} steps without queueing or ending the contact")
}

/// `message` with the edge's service credential for `context`.
fn signed<T>(
    credentials: &Credentials,
    message: T,
    context: &CallContext,
) -> anyhow::Result<tonic::Request<T>> {
    credentials
        .request(message, context)
        .map_err(|status| describe(&status, "cannot sign the call"))
}

/// A gRPC failure in one line: what failed and the server's message.
fn describe(status: &tonic::Status, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{what}: {} ({:?})", status.message(), status.code())
}

fn prompt(prompt: Option<&pb::Prompt>) -> String {
    match prompt.and_then(|prompt| prompt.source.as_ref()) {
        Some(pb::prompt::Source::Tts(text)) => format!("\"{text}\""),
        Some(pb::prompt::Source::File(path)) => format!("recording {path}"),
        None => "(nothing)".into(),
    }
}

fn ending(action: &Action) -> String {
    match action {
        Action::RingAgent(ring) => format!("rings agent {}", ring.agent_id),
        Action::RingGroup(ring) => format!("rings ring group {}", ring.ring_group_id),
        Action::Voicemail(voicemail) => format!("goes to voicemail box {}", voicemail.box_id),
        Action::Transfer(transfer) => format!("transferred to {}", transfer.number),
        Action::Callback(callback) => format!(
            "callback to {} queued in queue {}",
            callback.number, callback.queue_id
        ),
        Action::Hangup(hangup) => format!("hung up after {}", prompt(hangup.prompt.as_ref())),
        Action::Play(_) | Action::Collect(_) | Action::Queued(_) => "continues".into(),
    }
}
