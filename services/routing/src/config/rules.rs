//! Inbound rules (their views with the forced mode, setting and clearing
//! it) and what the edge and the runtime ask of numbers and rules: who owns
//! a number, and what a rule does at an instant.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Asterisk, Expr, ExprTrait, Query};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult};
use switchboard_events::AuditEntry;
use switchboard_hours::BusinessHours;
use switchboard_tenancy::{ClientScope, Tenant, TenantId};
use uuid::Uuid;

use super::domain::{
    ForcedKind, ForcedMode, ForcedModeSpec, InboundRuleSpec, Kind, ScheduleSpec, check_e164, decide,
};
use super::error::{ConfigError, Result};
use super::items::{check_references, check_scope, item, parse, record_audit};
use super::store::{self, Row};
use super::{ChangedBy, RoutingConfig};
use super::{NumberRoute, RuleDecision, RuleView};

impl RoutingConfig {
    pub async fn create_rule(&self, tenant: &Tenant, spec: InboundRuleSpec) -> Result<RuleView> {
        let (row, _) = self.save(tenant, super::items::Target::New, spec).await?;
        rule_view(row)
    }

    pub async fn replace_rule(
        &self,
        tenant: &Tenant,
        id: Uuid,
        spec: InboundRuleSpec,
    ) -> Result<RuleView> {
        let (row, _) = self
            .save(tenant, super::items::Target::Replace(id), spec)
            .await?;
        rule_view(row)
    }

    pub async fn rule(&self, tenant: &Tenant, id: Uuid) -> Result<RuleView> {
        rule_view(self.get_row(tenant, Kind::InboundRule, id).await?)
    }

    pub async fn list_rules(
        &self,
        tenant: &Tenant,
        after: Option<Uuid>,
        limit: u64,
    ) -> Result<Vec<RuleView>> {
        check_scope(Kind::InboundRule, tenant)?;
        let transaction = self.store().read(tenant.id()).await?;
        let rows = store::list(
            &transaction,
            Kind::InboundRule,
            tenant.id(),
            tenant.clients(),
            after,
            Some(limit),
        )
        .await?;
        transaction.commit().await?;
        rows.into_iter().map(rule_view).collect()
    }

    /// Sets (or, with mode `none`, clears) a rule's forced mode, which
    /// overrides its schedule until cleared; recorded with who and when,
    /// and in the tenant's audit log (`routing.forced_mode_set` /
    /// `routing.forced_mode_cleared`).
    pub async fn set_forced_mode(
        &self,
        tenant: &Tenant,
        rule: Uuid,
        spec: ForcedModeSpec,
        by: &ChangedBy,
    ) -> Result<RuleView> {
        check_scope(Kind::InboundRule, tenant)?;
        let spec = spec.validate()?;
        let tenant_id = tenant.id();
        let transaction = self.store().write(tenant_id).await?;
        let mut row = store::get(
            &transaction,
            Kind::InboundRule,
            tenant_id,
            tenant.clients(),
            rule,
        )
        .await?;
        let destination_refs = spec.references();
        check_references(&transaction, tenant, &destination_refs).await?;
        let at = store::now();
        let forced = (spec.mode != ForcedKind::None).then(|| ForcedMode {
            mode: spec.mode,
            destination: spec.destination.clone(),
            reason: spec.reason.clone(),
            set_by_type: by.actor_type.to_owned(),
            set_by: by.actor_id,
            set_at: at,
        });
        let text = forced
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|error| ConfigError::Internal(error.to_string()))?;
        store::set_forced(&transaction, tenant_id, rule, text.clone(), at).await?;
        let rule_spec: InboundRuleSpec = parse(&row.definition)?;
        let mut refs = super::domain::ConfigKind::references(&rule_spec);
        refs.extend(destination_refs);
        store::set_references(&transaction, tenant_id, Kind::InboundRule, rule, &refs).await?;
        let action = if forced.is_some() {
            "routing.forced_mode_set"
        } else {
            "routing.forced_mode_cleared"
        };
        record_audit(
            &transaction,
            tenant_id,
            AuditEntry {
                actor_type: by.actor_type.to_owned(),
                actor_id: by.actor_id,
                action: action.to_owned(),
                target_type: "inbound_rule".to_owned(),
                target_id: Some(rule),
                client_address: None,
                client_ids: Vec::new(),
                details: serde_json::json!({
                    "mode": spec.mode,
                    "destination": spec.destination,
                    "reason": spec.reason,
                }),
            },
        )
        .await?;
        transaction.commit().await?;
        row.forced = text;
        row.updated_at = at;
        rule_view(row)
    }

    /// For the edge, before any tenant is known: the tenant and inbound
    /// rule of `number` (E.164). Not found (404) when no tenant holds it,
    /// which the edge answers with a SIP 404; 400 when it is not E.164.
    pub async fn resolve_number(&self, number: &str) -> Result<NumberRoute> {
        let number = check_e164("number", number)?;
        let transaction = self.store().system().await?;
        let query = Query::select()
            .column(Asterisk)
            .from(Alias::new(Kind::Number.table()))
            .and_where(Expr::col(Alias::new("name")).eq(number.as_str()))
            .to_owned();
        let row = transaction.query_one(&query).await?;
        transaction.commit().await?;
        number_route(row.ok_or(ConfigError::NotFound("number"))?, number)
    }

    /// For the runtime: what rule `rule` does at `at`: its forced mode if
    /// set, else the step for its schedule's status (open without a
    /// schedule).
    pub async fn evaluate_rule(
        &self,
        tenant: TenantId,
        rule: Uuid,
        at: DateTime<Utc>,
    ) -> Result<RuleDecision> {
        let transaction = self.store().read(tenant).await?;
        let loaded = load_rule(&transaction, tenant, rule).await?;
        transaction.commit().await?;
        Ok(loaded.decide(at))
    }
}

/// The tenant's number `number` (E.164, normalised), read in one of the
/// tenant's transactions.
pub(crate) async fn tenant_number(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    number: &str,
) -> Result<NumberRoute> {
    let query = Query::select()
        .column(Asterisk)
        .from(Alias::new(Kind::Number.table()))
        .and_where(Expr::col(Alias::new("tenant_id")).eq(tenant.as_uuid()))
        .and_where(Expr::col(Alias::new("name")).eq(number))
        .to_owned();
    let row = transaction
        .query_one(&query)
        .await?
        .ok_or(ConfigError::NotFound("number"))?;
    number_route(row, number.to_owned())
}

fn number_route(row: QueryResult, number: String) -> Result<NumberRoute> {
    let tenant: Uuid = row.try_get("", "tenant_id")?;
    let definition: String = row.try_get("", "definition")?;
    let spec: super::domain::NumberSpec = parse(&definition)?;
    Ok(NumberRoute {
        tenant: TenantId::from_uuid(tenant),
        number_id: row.try_get("", "id")?,
        number,
        inbound_rule_id: spec.inbound_rule_id,
        client_id: row.try_get("", "client_id")?,
    })
}

/// An inbound rule with what its decision needs: its forced mode and its
/// schedule's hours.
#[derive(Debug, Clone)]
pub(crate) struct LoadedRule {
    pub view: RuleView,
    pub hours: Option<BusinessHours>,
}

impl LoadedRule {
    /// What the rule does at `at`.
    pub fn decide(&self, at: DateTime<Utc>) -> RuleDecision {
        let (step, basis) = decide(
            &self.view.item.spec,
            self.view.forced.as_ref(),
            self.hours.as_ref(),
            at,
        );
        RuleDecision {
            rule_id: self.view.item.id,
            step,
            basis,
        }
    }
}

/// Reads rule `rule` and its schedule in one of the tenant's transactions.
pub(crate) async fn load_rule(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    rule: Uuid,
) -> Result<LoadedRule> {
    let row = store::get(
        transaction,
        Kind::InboundRule,
        tenant,
        &ClientScope::All,
        rule,
    )
    .await?;
    let view = rule_view(row)?;
    let hours = match view.item.spec.schedule_id {
        Some(schedule) => {
            let row = store::get(
                transaction,
                Kind::Schedule,
                tenant,
                &ClientScope::All,
                schedule,
            )
            .await?;
            Some(item::<ScheduleSpec>(row)?.spec.hours)
        }
        None => None,
    };
    Ok(LoadedRule { view, hours })
}

fn rule_view(row: Row) -> Result<RuleView> {
    let forced = row.forced.as_deref().map(parse::<ForcedMode>).transpose()?;
    Ok(RuleView {
        item: item(row)?,
        forced,
    })
}
