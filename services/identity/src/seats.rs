//! Seats: a user with the agent or supervisor role who is not disabled.
//! Changes that can add a seat lock the tenant row first, so two
//! concurrent changes cannot both pass the limit, and every change of the
//! count is recorded with its time (billing charges seat-days from it).

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, DatabaseTransaction, EntityTrait,
    PaginatorTrait, QueryFilter,
};
use switchboard_tenancy::{TenantId, UserId};
use uuid::Uuid;

use switchboard_events::proto::{self, envelope::Payload};

use crate::error::{IdentityError, Result};
use crate::events;
use crate::now;
use crate::store::entities::{plan, seat_change, tenant, user};

/// Takes the tenant's row lock for the rest of the transaction (a no-op
/// update: a row lock on PostgreSQL, the write lock on SQLite).
pub(crate) async fn lock_tenant(transaction: &DatabaseTransaction, tenant: TenantId) -> Result<()> {
    tenant::Entity::update_many()
        .col_expr(
            tenant::Column::UpdatedAt,
            Expr::col(tenant::Column::UpdatedAt),
        )
        .filter(tenant::Column::Id.eq(tenant.as_uuid()))
        .exec(transaction)
        .await?;
    Ok(())
}

/// Seats in use now.
pub(crate) async fn count(transaction: &DatabaseTransaction, tenant: TenantId) -> Result<u32> {
    let seats = user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant.as_uuid()))
        .filter(user::Column::Status.ne("disabled"))
        .filter(
            Condition::any()
                .add(user::Column::Roles.like("%agent%"))
                .add(user::Column::Roles.like("%supervisor%")),
        )
        .count(transaction)
        .await?;
    Ok(u32::try_from(seats).unwrap_or(u32::MAX))
}

/// The seat limit of the tenant's plan.
pub(crate) async fn limit(transaction: &DatabaseTransaction, tenant: TenantId) -> Result<u32> {
    let row = tenant::Entity::find_by_id(tenant.as_uuid())
        .one(transaction)
        .await?
        .ok_or(IdentityError::NotFound("tenant"))?;
    let plan = plan::Entity::find_by_id(row.plan_code.clone())
        .one(transaction)
        .await?
        .ok_or_else(|| IdentityError::Internal(format!("plan {} is missing", row.plan_code)))?;
    Ok(u32::try_from(plan.seat_limit).unwrap_or(0))
}

/// After a change: fails with 409 `seat_limit_reached` if the count went
/// up past the limit (the caller's transaction is then dropped: nothing
/// written), else records the change when the count moved.
pub(crate) async fn settle(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    before: u32,
    user: Option<UserId>,
) -> Result<u32> {
    let after = count(transaction, tenant).await?;
    if after > before {
        let limit = limit(transaction, tenant).await?;
        if after > limit {
            return Err(IdentityError::conflict(
                "seat_limit_reached",
                format!(
                    "the plan allows {limit} seats (agents and supervisors) and all are in use; upgrade the plan or free a seat"
                ),
            ));
        }
    }
    if after != before {
        seat_change::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            seats: Set(i32::try_from(after).unwrap_or(i32::MAX)),
            delta: Set(i32::try_from(i64::from(after) - i64::from(before)).unwrap_or(0)),
            user_id: Set(user.map(|user| user.as_uuid())),
            occurred_at: Set(now()),
        }
        .insert(transaction)
        .await?;
        events::emit(
            transaction,
            tenant,
            [Payload::SeatCountChanged(proto::SeatCountChanged {
                seats: after,
                delta: i32::try_from(i64::from(after) - i64::from(before)).unwrap_or(0),
                user_id: user.map(|user| user.to_string()).unwrap_or_default(),
            })],
        )
        .await?;
    }
    Ok(after)
}
