//! Identity's domain events, written to the outbox in the transaction of
//! the change they describe (source `identity`).

use sea_orm::DatabaseTransaction;
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_events::{Event, outbox};
use switchboard_tenancy::{ClientId, TenantId};

use crate::error::Result;
use crate::store::entities::{plan, user};

/// The service name in routing keys.
pub const SOURCE: &str = "identity";

/// Appends `payloads` as events of `tenant` to the outbox.
pub(crate) async fn emit(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    payloads: impl IntoIterator<Item = Payload>,
) -> Result<()> {
    let events: Vec<Event> = payloads
        .into_iter()
        .map(|payload| Event::new(tenant, SOURCE, payload))
        .collect();
    outbox::append(transaction, &events).await?;
    Ok(())
}

/// A user as events carry it (never the password hash).
/// A plan's call limits, as events carry them.
pub(crate) fn call_limits(plan: &plan::Model) -> proto::CallLimits {
    proto::CallLimits {
        max_concurrent_calls: u32::try_from(plan.max_concurrent_calls).unwrap_or(0),
        calls_per_second: u32::try_from(plan.calls_per_second).unwrap_or(0),
    }
}

pub(crate) fn user(row: &user::Model, clients: Option<&[ClientId]>) -> proto::User {
    proto::User {
        user_id: row.id.to_string(),
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        roles: crate::domain::roles_from_text(&row.roles)
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect(),
        status: row.status.clone(),
        all_clients: clients.is_none(),
        client_ids: clients
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect(),
    }
}
