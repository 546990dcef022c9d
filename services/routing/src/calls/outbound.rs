//! Agents' outbound calls: the tenant's outbound rules pick the trunks and
//! the caller id, and the agent is busy with the call in the ACD from the
//! moment it is dialed until it ends (answered or not), as the ACD's
//! outbound contacts ([`Operation::ConnectDirect`]) make them.
//!
//! The rule is the first, in creation order, whose agent group is one of
//! the agent's groups. Its trunks are tried in the order the strategy
//! gives: as listed (`sequential`), rotated by one per call
//! (`round_robin`, a counter per rule in the cache, so every instance
//! shares the turn), or shuffled (`random`); the edge fails over along
//! that order.

use chrono::Utc;
use rand::seq::SliceRandom;
use switchboard_acd::{Channel, ContactId, DirectOrigin};
use switchboard_routing_api::calls::{OutboundCall, OutboundDecision};
use switchboard_routing_api::config::{CallerId, TrunkStrategy};
use switchboard_tenancy::TenantId;
use uuid::Uuid;

use super::Calls;
use crate::RoutingError;
use crate::config::{ConfigError, TenantConfig, check_e164};
use crate::ops::{Operation, RefusalKind};

/// How long a rule's round-robin turn is kept without a call.
const TURN_TTL: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

fn refuse(sip_status: u16, reason: impl Into<String>) -> OutboundDecision {
    OutboundDecision::Reject {
        sip_status,
        reason: reason.into(),
    }
}

impl Calls {
    /// Decides `call`, an agent's outbound call of `tenant`.
    pub async fn outbound_call(&self, tenant: TenantId, call: OutboundCall) -> OutboundDecision {
        let Ok(number) = check_e164("number", &call.number) else {
            return refuse(484, format!("{:?} is not an E.164 number", call.number));
        };
        let config = match self.config.tenant(tenant).await {
            Ok(config) => config,
            Err(error) => return refuse(503, error.to_string()),
        };
        let groups = match config.agent_groups(call.agent.as_uuid()).await {
            Ok(Some(groups)) => groups,
            Ok(None) => {
                return refuse(
                    403,
                    format!("user {} is not an active agent with a profile", call.agent),
                );
            }
            Err(error) => return refuse(503, error.to_string()),
        };
        let rules = match config.outbound_rules().await {
            Ok(rules) => rules,
            Err(error) => return refuse(503, error.to_string()),
        };
        let Some(rule) = rules
            .iter()
            .find(|rule| groups.contains(&rule.spec.agent_group_id))
        else {
            return refuse(
                403,
                format!(
                    "no outbound rule covers the agent groups of user {}",
                    call.agent
                ),
            );
        };
        let caller_id = match self
            .caller_id(
                &config,
                rule.spec.caller_id,
                call.concerning_number.as_deref(),
            )
            .await
        {
            Ok(caller_id) => caller_id,
            Err(error) => return refuse(503, error.to_string()),
        };
        let contact = ContactId::new();
        let now = Utc::now();
        let connected = self
            .routing
            .execute(
                tenant,
                Operation::ConnectDirect {
                    contact,
                    agent: call.agent,
                    origin: DirectOrigin::PlacedByAgent,
                    channel: Channel::Voice,
                    since: now,
                    wrap_up_ms: 0,
                },
            )
            .await;
        match connected {
            Ok(_) => {
                // The turn is taken by calls placed only, not by refusals;
                // a cache that cannot give it leaves the listed order.
                let trunks = self
                    .trunk_order(tenant, rule.id, rule.spec.strategy, &rule.spec.trunks)
                    .await
                    .unwrap_or_else(|error| {
                        tracing::warn!(%tenant, %error, "no round-robin turn; the trunks in their listed order");
                        rule.spec.trunks.clone()
                    });
                tracing::debug!(%tenant, %contact, agent = %call.agent, %number, "outbound call placed");
                OutboundDecision::Place {
                    call: contact,
                    trunks,
                    caller_id,
                    rule: rule.id,
                }
            }
            Err(RoutingError::Refused(refusal)) => match refusal.kind {
                RefusalKind::Conflict => refuse(486, refusal.message),
                RefusalKind::NotFound => refuse(
                    403,
                    format!("user {} is not an agent of the ACD", call.agent),
                ),
                RefusalKind::Overflow | RefusalKind::InvalidArgument => {
                    refuse(403, refusal.message)
                }
            },
            Err(error) => refuse(503, error.to_string()),
        }
    }

    /// The number presented: the group's, or the tenant number the call
    /// concerns when the rule is per number and the tenant holds it (the
    /// fallback otherwise).
    async fn caller_id(
        &self,
        config: &TenantConfig,
        rule: CallerId,
        concerning: Option<&str>,
    ) -> Result<String, ConfigError> {
        match rule {
            CallerId::Group { number_id } => config.number_by_id(number_id).await,
            CallerId::PerNumber { fallback_number_id } => {
                if let Some(concerning) = concerning
                    && let Ok((route, _)) = self.config.number(concerning).await
                    && route.tenant == config.tenant()
                {
                    return Ok(route.number);
                }
                config.number_by_id(fallback_number_id).await
            }
        }
    }

    /// The rule's trunks in the order to try them.
    async fn trunk_order(
        &self,
        tenant: TenantId,
        rule: Uuid,
        strategy: TrunkStrategy,
        trunks: &[String],
    ) -> Result<Vec<String>, switchboard_platform::Error> {
        let mut ordered = trunks.to_vec();
        match strategy {
            TrunkStrategy::Sequential => {}
            TrunkStrategy::RoundRobin => {
                let key = format!("routing:{{{tenant}}}:outbound:{rule}:turn");
                let turn = self.cache.increment(&key, 1, Some(TURN_TTL)).await?;
                if !ordered.is_empty() {
                    let by = usize::try_from(turn - 1).unwrap_or(0) % ordered.len();
                    ordered.rotate_left(by);
                }
            }
            TrunkStrategy::Random => ordered.shuffle(&mut rand::rng()),
        }
        Ok(ordered)
    }
}
