//! `switchboard dev --demo`: a working contact center to try at once. A
//! tenant with an owner, a supervisor and three agents, and its routing
//! configuration, created through the services' own APIs as the owner
//! (so the audit log shows who): two skills, two queues, the agents'
//! profiles, a schedule open around the clock in the tenant's zone, an
//! IVR menu (1 → Billing, 2 → Support), an inbound rule and a number.
//! Seeding again finds what exists and changes nothing; a demo tenant
//! from before the routing configuration gets it added. When the edge is
//! hosted, each agent gets a SIP account for a softphone; its password is
//! shown once, so every start issues new ones.

use std::net::SocketAddr;

use anyhow::Context;
use serde_json::json;
use switchboard_edge::accounts::{Accounts, IssuedCredentials};
use switchboard_edge::trunks::TrunkStore;
use switchboard_edge_api::{InboundSpec, TrunkSpec};
use switchboard_identity::{
    Actor, Identity, IdentityError, NewUser, Principal, RequestOrigin, SignupRequest,
};
use switchboard_routing::config::{
    AgentProfileSpec, ChangedBy, ConfigError, ConfigKind, FlowSpec, InboundRuleSpec, NumberSpec,
    QueueSpec, RoutingConfig, ScheduleSpec, SkillSpec,
};
use uuid::Uuid;

const COMPANY: &str = "Switchboard Demo";
const SLUG: &str = "switchboard-demo";
const OWNER: &str = "owner@demo.switchboard.test";
/// Public on purpose: the demo lives on a developer's machine.
const PASSWORD: &str = "switchboard-demo-7421";
const TIME_ZONE: &str = "Europe/Paris";
/// The demo's number, E.164: in the range +1 212 555-0100…0199 that the
/// North American Numbering Plan keeps for fiction, so it never rings anyone.
pub const NUMBER: &str = "+12125550100";
/// (email, name, role, skills as (skill, proficiency)).
type Staff = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, u8)],
);
const STAFF: &[Staff] = &[
    (
        "supervisor@demo.switchboard.test",
        "Sam Supervisor",
        "supervisor",
        &[],
    ),
    (
        "agent1@demo.switchboard.test",
        "Ada Agent",
        "agent",
        &[("billing", 7), ("support", 7)],
    ),
    (
        "agent2@demo.switchboard.test",
        "Ben Agent",
        "agent",
        &[("billing", 7)],
    ),
    (
        "agent3@demo.switchboard.test",
        "Cleo Agent",
        "agent",
        &[("support", 7)],
    ),
];
/// The trunk that admits carriers' calls from this machine.
const DEMO_TRUNK: &str = "Loopback carrier (demo)";
/// (menu key, queue name, skill it needs).
const QUEUES: &[(&str, &str, &str)] = &[("1", "Billing", "billing"), ("2", "Support", "support")];

/// What the demo holds, to print how to try it.
pub struct Demo {
    tenant_created: bool,
    routing_created: bool,
    /// (menu key, queue name, queue id).
    queues: Vec<(&'static str, &'static str, Uuid)>,
    /// Each agent's SIP account, when the edge is hosted.
    sip_accounts: Vec<(&'static str, IssuedCredentials)>,
}

/// Where the edge listens for SIP, and its tenants' parent domain.
pub struct SipListeners {
    /// (transport, where).
    pub listening: Vec<(&'static str, SocketAddr)>,
    pub domain: String,
}

impl SipListeners {
    /// The banner's line about SIP.
    pub fn banner_line(&self) -> String {
        let listening = self
            .listening
            .iter()
            .map(|(transport, address)| format!("{transport} {address}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "  SIP       {listening} (tenants' domains: <slug>.{})",
            self.domain
        )
    }
}

/// Creates what is missing of the demo tenant and its configuration.
pub async fn seed(
    identity: &Identity,
    routing: &RoutingConfig,
    edge: Option<(&Accounts, TrunkStore)>,
) -> anyhow::Result<Demo> {
    let origin = RequestOrigin::default();
    let (owner, tenant_created) = match identity.login(SLUG, OWNER, PASSWORD, &origin).await {
        Ok(tokens) => (principal(identity, &tokens.access_token).await?, false),
        Err(IdentityError::Unauthenticated(_)) => (create_tenant(identity, &origin).await?, true),
        Err(error) => return Err(error).context("cannot check for the demo tenant"),
    };
    let routing = routing.acting(owner_user(&owner)?);
    let routing_created = match routing.resolve_number(NUMBER).await {
        Ok(route) if route.tenant == owner.tenant.id() => false,
        Ok(_) => anyhow::bail!("another tenant holds the demo number {NUMBER}"),
        Err(ConfigError::NotFound(_)) => {
            configure_routing(identity, &routing, &owner).await?;
            true
        }
        Err(error) => return Err(error).context("cannot look the demo number up"),
    };
    let existing = routing
        .list::<QueueSpec>(&owner.tenant, None, 100)
        .await
        .context("cannot read the demo queues")?;
    let queues = QUEUES
        .iter()
        .map(|(key, name, _)| {
            let queue = existing
                .iter()
                .find(|queue| queue.spec.name == *name)
                .with_context(|| format!("the demo queue {name:?} is gone"))?;
            Ok((*key, *name, queue.id))
        })
        .collect::<anyhow::Result<_>>()?;
    let mut sip_accounts = Vec::new();
    if let Some((accounts, trunks)) = edge {
        // Carriers' calls from this machine come in on a loopback trunk.
        let existing = trunks
            .list(&owner.tenant, None, 100)
            .await
            .context("cannot read the demo trunks")?;
        if !existing.iter().any(|trunk| trunk.name == DEMO_TRUNK) {
            trunks
                .create(
                    &owner.tenant,
                    TrunkSpec {
                        name: DEMO_TRUNK.to_owned(),
                        enabled: true,
                        inbound: InboundSpec {
                            allowed_sources: vec!["127.0.0.1/32".into(), "::1/128".into()],
                            ..InboundSpec::default()
                        },
                        outbound: None,
                        priority: 0,
                    },
                )
                .await
                .context("cannot create the demo trunk")?;
        }
        // The edge learns the slug from identity's event, which may not
        // have reached it yet: give it now (the event then changes nothing).
        accounts
            .record_tenant(owner.tenant.id(), SLUG)
            .await
            .context("cannot record the demo tenant's SIP domain")?;
        let users = identity
            .list_users(&owner, None, 100)
            .await
            .context("cannot list the demo users")?;
        for (email, _, role, _) in STAFF {
            if *role != "agent" {
                continue;
            }
            let user = users
                .iter()
                .find(|user| user.email == *email)
                .with_context(|| format!("the demo user {email} is gone"))?;
            let issued = accounts
                .issue(owner.tenant.id(), user.id)
                .await
                .with_context(|| format!("cannot issue {email}'s SIP account"))?;
            sip_accounts.push((*email, issued));
        }
    }
    Ok(Demo {
        tenant_created,
        routing_created,
        queues,
        sip_accounts,
    })
}

async fn create_tenant(identity: &Identity, origin: &RequestOrigin) -> anyhow::Result<Principal> {
    let outcome = identity
        .signup(
            SignupRequest {
                company: COMPANY.into(),
                email: OWNER.into(),
                password: PASSWORD.into(),
                display_name: Some("Olivia Owner".into()),
                plan: switchboard_identity::TRIAL_PLAN.into(),
                time_zone: TIME_ZONE.into(),
            },
            origin,
        )
        .await
        .context("cannot create the demo tenant")?;
    anyhow::ensure!(
        outcome.tenant.slug == SLUG,
        "another tenant holds the handle {SLUG:?}; the demo got {:?}",
        outcome.tenant.slug
    );
    identity
        .verify_email(&outcome.verification_token, origin)
        .await
        .context("cannot verify the demo tenant")?;
    // Room for the demo's users, as an operator would give it.
    identity
        .set_plan(SLUG, "pro")
        .await
        .context("cannot put the demo tenant on the pro plan")?;
    let owner = principal(identity, &outcome.tokens.access_token).await?;
    for (email, name, role, _) in STAFF {
        identity
            .create_user(
                &owner,
                NewUser {
                    email: (*email).into(),
                    display_name: Some((*name).into()),
                    roles: vec![(*role).into()],
                    clients: None,
                    password: Some(PASSWORD.into()),
                },
                origin,
            )
            .await
            .with_context(|| format!("cannot create the demo user {email}"))?;
    }
    Ok(owner)
}

/// Skills, queues, agent profiles, schedule, flow (published), inbound
/// rule and number, in the order their references need.
async fn configure_routing(
    identity: &Identity,
    routing: &RoutingConfig,
    owner: &Principal,
) -> anyhow::Result<()> {
    let tenant = &owner.tenant;
    let mut skills = Vec::new();
    for (_, _, skill) in QUEUES {
        let created = routing
            .create(tenant, spec::<SkillSpec>(json!({ "name": skill }))?)
            .await
            .with_context(|| format!("cannot create the demo skill {skill:?}"))?;
        skills.push((*skill, created.id));
    }
    let skill_id = |name: &str| {
        skills
            .iter()
            .find(|(skill, _)| *skill == name)
            .map(|(_, id)| *id)
            .expect("every demo skill is created first")
    };

    let mut queues = Vec::new();
    for (key, name, skill) in QUEUES {
        let created = routing
            .create(
                tenant,
                spec::<QueueSpec>(json!({
                    "name": name, "channel": "voice",
                    "required_skills": [{"skill_id": skill_id(skill), "min_proficiency": 1}],
                    "service_level": {"percent": 80, "seconds": 20},
                    "ring_timeout_seconds": 30, "wrap_up_seconds": 10,
                }))?,
            )
            .await
            .with_context(|| format!("cannot create the demo queue {name:?}"))?;
        queues.push((*key, created.id));
    }

    let users = identity
        .list_users(owner, None, 100)
        .await
        .context("cannot list the demo users")?;
    for (email, _, _, agent_skills) in STAFF.iter().filter(|staff| !staff.3.is_empty()) {
        let user = users
            .iter()
            .find(|user| user.email == *email)
            .with_context(|| format!("the demo user {email} is gone"))?;
        let skills: Vec<_> = agent_skills
            .iter()
            .map(|(skill, proficiency)| {
                json!({"skill_id": skill_id(skill), "proficiency": proficiency})
            })
            .collect();
        routing
            .put_agent_profile(
                tenant,
                user.id.as_uuid(),
                spec::<AgentProfileSpec>(json!({"skills": skills, "capacity": {"voice": 1}}))?,
            )
            .await
            .with_context(|| format!("cannot create the agent profile of {email}"))?;
    }

    let week: Vec<_> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .map(|day| json!({"day": day, "open": "00:00", "close": "24:00"}))
        .collect();
    let schedule = routing
        .create(
            tenant,
            spec::<ScheduleSpec>(json!({
                "name": "Always open",
                "hours": {"time_zone": TIME_ZONE, "weekly": week},
            }))?,
        )
        .await
        .context("cannot create the demo schedule")?;

    let mut nodes = serde_json::Map::new();
    nodes.insert(
        "menu".into(),
        json!({
            "type": "menu",
            "prompt": {"tts": "Welcome to the Switchboard demo. Press 1 for billing, 2 for support."},
            "options": queues.iter().map(|(key, _)| (key.to_string(), json!(format!("queue_{key}")))).collect::<serde_json::Map<_, _>>(),
            "on_failure": format!("queue_{}", queues[queues.len() - 1].0),
        }),
    );
    for (key, queue) in &queues {
        nodes.insert(
            format!("queue_{key}"),
            json!({"type": "enqueue", "queue_id": queue}),
        );
    }
    let flow = routing
        .create_flow(
            tenant,
            spec::<FlowSpec>(json!({
                "name": "Demo menu",
                "definition": {"start": "menu", "nodes": nodes},
            }))?,
        )
        .await
        .context("cannot create the demo flow")?;
    let flow_id = flow.item.id;
    routing
        .publish_flow(tenant, flow_id, &owner_user(owner)?)
        .await
        .context("cannot publish the demo flow")?;

    let rule = routing
        .create_rule(
            tenant,
            spec::<InboundRuleSpec>(json!({
                "name": "Demo line",
                "schedule_id": schedule.id,
                "open": {"type": "flow", "flow_id": flow_id},
                "closed": {"type": "hangup", "message": {"tts": "We are closed."}},
            }))?,
        )
        .await
        .context("cannot create the demo inbound rule")?;
    routing
        .create(
            tenant,
            spec::<NumberSpec>(json!({
                "number": NUMBER,
                "inbound_rule_id": rule.item.id,
                "description": "The demo line",
            }))?,
        )
        .await
        .context("cannot create the demo number")?;
    Ok(())
}

/// A configuration item from the JSON the REST API takes.
fn spec<S: ConfigKind>(value: serde_json::Value) -> anyhow::Result<S> {
    serde_json::from_value(value).context("a demo configuration item does not parse")
}

/// The owner, as the author of the configuration in the audit log.
fn owner_user(owner: &Principal) -> anyhow::Result<ChangedBy> {
    match &owner.actor {
        Actor::User { id, .. } => Ok(ChangedBy::user(id.as_uuid())),
        Actor::ApiKey { .. } => anyhow::bail!("the demo owner signed in with an API key"),
    }
}

async fn principal(identity: &Identity, access_token: &str) -> anyhow::Result<Principal> {
    identity
        .authenticate_access_token(access_token)
        .await
        .context("cannot sign in as the demo owner")
}

impl Demo {
    /// What the demo holds and, step by step, how to see a contact reach
    /// an agent.
    pub fn print(&self, http: SocketAddr, grpc: SocketAddr, sip: Option<&SipListeners>) {
        let state = |created: bool| if created { "created" } else { "already there" };
        println!(
            "Demo tenant {SLUG:?} ({}; routing {}); every demo user's password is {PASSWORD}",
            state(self.tenant_created),
            state(self.routing_created)
        );
        println!("  users     {OWNER} (owner)");
        for (email, _, role, skills) in STAFF {
            let skills = skills
                .iter()
                .map(|(skill, _)| *skill)
                .collect::<Vec<_>>()
                .join(", ");
            if skills.is_empty() {
                println!("            {email} ({role})");
            } else {
                println!("            {email} ({role}: {skills})");
            }
        }
        println!(
            "  number    {NUMBER} → rule \"Demo line\" (open 24/7, {TIME_ZONE}) → flow \"Demo menu\""
        );
        for (key, name, id) in &self.queues {
            println!("            press {key} → queue {name} ({id})");
        }
        let login = json!({"tenant": SLUG, "email": STAFF[1].0, "password": PASSWORD});
        println!("  try it");
        println!("    1. sign in as an agent:");
        println!(
            "       TOKEN=$(curl -s http://{http}/v1/auth/login -H 'content-type: application/json' -d '{login}' | sed -E 's/.*\"access_token\":\"([^\"]+)\".*/\\1/')"
        );
        println!("    2. go available:");
        println!(
            "       curl -s -X PUT http://{http}/v1/agents/me/presence -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -d '{{\"presence\":\"available\"}}'"
        );
        println!("    3. call the demo number and press 1, as a carrier call would arrive:");
        println!(
            "       switchboard contacts simulate --grpc http://{grpc} --to {NUMBER} --digits 1"
        );
        println!("    4. see the offer:");
        println!("       curl -s http://{http}/v1/agents/me -H \"authorization: Bearer $TOKEN\"");
        println!("    5. accept it (the contact id is in the offer):");
        println!(
            "       curl -s -X POST http://{http}/v1/agents/me/offers/CONTACT_ID/accept -H \"authorization: Bearer $TOKEN\""
        );
        if let (Some(sip), Some((_, first))) = (sip, self.sip_accounts.first()) {
            println!("  SIP accounts (new passwords at every start; shown only now):");
            for (email, issued) in &self.sip_accounts {
                println!(
                    "            {email}: user {} password {} domain {}",
                    issued.username, issued.password, issued.domain
                );
            }
            if let Some((_, udp)) = sip
                .listening
                .iter()
                .find(|(transport, _)| *transport == "udp")
            {
                println!(
                    "    register a softphone to {udp} (UDP) as one of them, or with SIPp (which needs MD5 challenged first: start dev with SWITCHBOARD_EDGE__DIGEST_ALGORITHMS='[\"MD5\",\"SHA-256\"]'):"
                );
                println!(
                    "       sipp -sf services/edge/tests/sipp/register.xml -m 1 -s {} -au {} -ap {} -key domain {} -auth_uri {} -i 127.0.0.1 {udp}",
                    first.username, first.username, first.password, first.domain, first.domain
                );
                println!(
                    "    with the phone registered and its agent available, call the demo number as a carrier (trunk \"{DEMO_TRUNK}\" admits 127.0.0.1; the edge relays its audio but hears no digits yet, so the menu sends the call to Support):"
                );
                println!(
                    "       sipp -sf services/edge/tests/sipp/carrier_call.xml -s {NUMBER} -d 10000 -m 1 -i 127.0.0.1 {udp}"
                );
            }
        }
    }
}
