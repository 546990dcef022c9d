//! Client organizations of an outsourcer (BPO) tenant.

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use switchboard_events::proto::{self, envelope::Payload};
use switchboard_tenancy::ClientId;

use crate::audit::{self, AuditRecord};
use crate::domain::{self, Permission};
use crate::error::{IdentityError, Result};
use crate::events;
use crate::store::entities::client_org;
use crate::{ClientView, Identity, NewClient, Principal, RequestOrigin, now};

impl Identity {
    /// Client organizations the caller may see, in creation order.
    pub async fn list_clients(
        &self,
        principal: &Principal,
        after: Option<ClientId>,
        limit: u64,
    ) -> Result<Vec<ClientView>> {
        principal.require(Permission::ReadClients)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let mut query = client_org::Entity::find()
            .filter(client_org::Column::TenantId.eq(tenant.as_uuid()))
            .order_by_asc(client_org::Column::Id);
        if let Some(allowed) = principal.tenant.clients().as_list() {
            query = query.filter(
                client_org::Column::Id.is_in(allowed.into_iter().map(|client| client.as_uuid())),
            );
        }
        if let Some(after) = after {
            query = query.filter(client_org::Column::Id.gt(after.as_uuid()));
        }
        let rows = query.limit(limit).all(&transaction).await?;
        transaction.commit().await?;
        Ok(rows.into_iter().map(view).collect())
    }

    pub async fn create_client(
        &self,
        principal: &Principal,
        new: NewClient,
        origin: &RequestOrigin,
    ) -> Result<ClientView> {
        principal.require(Permission::ManageClients)?;
        if principal.tenant.clients().as_list().is_some() {
            return Err(IdentityError::forbidden(
                "client_scope",
                "a client-scoped user cannot create client organizations",
            ));
        }
        let name = domain::validate_name("name", &new.name, 100)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let exists = client_org::Entity::find()
            .filter(client_org::Column::TenantId.eq(tenant.as_uuid()))
            .filter(client_org::Column::Name.eq(name.clone()))
            .one(&transaction)
            .await?
            .is_some();
        if exists {
            return Err(IdentityError::conflict(
                "client_exists",
                format!("a client organization named {name:?} exists already"),
            ));
        }
        let id = ClientId::new();
        let row = client_org::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            name: Set(name.clone()),
            created_at: Set(now()),
        }
        .insert(&transaction)
        .await?;
        events::emit(
            &transaction,
            tenant,
            [Payload::ClientCreated(proto::ClientCreated {
                client_id: id.to_string(),
                name: name.clone(),
            })],
        )
        .await?;
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, "client.created", ("client", Some(id.as_uuid())))
                .clients(&[id])
                .details(serde_json::json!({ "name": name })),
        )
        .await?;
        transaction.commit().await?;
        Ok(view(row))
    }

    pub async fn get_client(&self, principal: &Principal, id: ClientId) -> Result<ClientView> {
        principal.require(Permission::ReadClients)?;
        if !principal.tenant.clients().allows(Some(id)) {
            return Err(IdentityError::NotFound("client organization"));
        }
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let row = client_org::Entity::find_by_id(id.as_uuid())
            .filter(client_org::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or(IdentityError::NotFound("client organization"))?;
        transaction.commit().await?;
        Ok(view(row))
    }

    pub async fn delete_client(
        &self,
        principal: &Principal,
        id: ClientId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        principal.require(Permission::ManageClients)?;
        if principal.tenant.clients().as_list().is_some() {
            return Err(IdentityError::forbidden(
                "client_scope",
                "a client-scoped user cannot delete client organizations",
            ));
        }
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let deleted = client_org::Entity::delete_many()
            .filter(client_org::Column::TenantId.eq(tenant.as_uuid()))
            .filter(client_org::Column::Id.eq(id.as_uuid()))
            .exec(&transaction)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(IdentityError::NotFound("client organization"));
        }
        events::emit(
            &transaction,
            tenant,
            [Payload::ClientDeleted(proto::ClientDeleted {
                client_id: id.to_string(),
            })],
        )
        .await?;
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, "client.deleted", ("client", Some(id.as_uuid())))
                .clients(&[id]),
        )
        .await?;
        transaction.commit().await?;
        Ok(())
    }
}

fn view(row: client_org::Model) -> ClientView {
    ClientView {
        id: ClientId::from_uuid(row.id),
        name: row.name,
        created_at: row.created_at,
    }
}
