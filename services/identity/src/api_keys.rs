//! API keys for integrations: shown once at creation, stored as a SHA-256
//! hash with a short visible prefix, scoped, optionally expiring, revocable.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use switchboard_auth::ApiKeySecret;
use switchboard_tenancy::{ApiKeyId, ClientId, ClientScope};

use switchboard_events::proto::{self, envelope::Payload};

use crate::audit::{self, AuditRecord};
use crate::domain::{self, ApiScope, FieldError, Permission, describe};
use crate::error::{IdentityError, Result};
use crate::events;
use crate::store::entities::api_key;
use crate::{Actor, ApiKeyView, CreatedApiKey, Identity, NewApiKey, Principal, RequestOrigin, now};

impl Identity {
    /// Creates a key; its secret is in the answer and nowhere else.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
        origin: &RequestOrigin,
    ) -> Result<CreatedApiKey> {
        principal.require(Permission::ManageApiKeys)?;
        if !matches!(principal.actor, Actor::User { .. }) {
            return Err(IdentityError::forbidden(
                "permission_denied",
                "API keys are created by users, not by other API keys",
            ));
        }
        principal.require_verified("create API keys")?;
        let mut errors = Vec::new();
        let name = domain::validate_name("name", &new.name, 100)
            .map_err(|e| errors.push(e))
            .ok();
        let mut scopes = Vec::new();
        if new.scopes.is_empty() {
            errors.push(FieldError::new(
                "scopes",
                "at least one scope is required (read, full, or <area>:read|write)",
            ));
        }
        for scope in &new.scopes {
            match scope.parse::<ApiScope>() {
                Ok(scope) => scopes.push(scope),
                Err(message) => errors.push(FieldError::new("scopes", message)),
            }
        }
        if let Some((scope, permission)) = scopes.iter().find_map(|scope| {
            domain::scope_beyond_roles(scope, principal.roles()).map(|p| (scope, p))
        }) {
            return Err(IdentityError::forbidden(
                "permission_denied",
                format!(
                    "the scope {scope} would let the key {}, which your roles do not allow",
                    describe(permission)
                ),
            ));
        }
        if new.expires_at.is_some_and(|expires| expires <= now()) {
            errors.push(FieldError::new("expires_at", "must be in the future"));
        }
        let (Some(name), true) = (name, errors.is_empty()) else {
            return Err(IdentityError::Validation(errors));
        };
        let tenant = principal.tenant.id();
        let secret = ApiKeySecret::generate(self.inner.options.live_keys);
        let id = ApiKeyId::new();
        let transaction = self.store().begin(tenant).await?;
        let row = api_key::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            name: Set(name.clone()),
            prefix: Set(secret.prefix.clone()),
            hash: Set(secret.hash.clone()),
            scopes: Set(domain::scopes_to_text(&scopes)),
            created_by: Set(Some(principal.audit_actor().1)),
            created_at: Set(now()),
            expires_at: Set(new.expires_at),
            revoked_at: Set(None),
            last_used_at: Set(None),
            // The key acts for at most its creator's clients.
            client_ids: Set(principal.tenant.clients().as_list().map(|clients| {
                domain::client_ids_to_text(&clients.iter().map(|c| c.as_uuid()).collect::<Vec<_>>())
            })),
        }
        .insert(&transaction)
        .await?;
        self.register_lookup(&transaction, &secret.hash, "api_key", tenant)
            .await?;
        events::emit(
            &transaction,
            tenant,
            [Payload::ApiKeyCreated(proto::ApiKeyCreated {
                api_key_id: id.to_string(),
                name: name.clone(),
                prefix: secret.prefix.clone(),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                created_by: principal.audit_actor().1.to_string(),
            })],
        )
        .await?;
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, "api_key.created", ("api_key", Some(id.as_uuid())))
                .details(serde_json::json!({ "name": name, "prefix": secret.prefix, "scopes": domain::scopes_to_text(&scopes) })),
        )
        .await?;
        transaction.commit().await?;
        Ok(CreatedApiKey {
            key: view(row),
            secret: secret.plaintext,
        })
    }

    pub async fn list_api_keys(
        &self,
        principal: &Principal,
        after: Option<ApiKeyId>,
        limit: u64,
    ) -> Result<Vec<ApiKeyView>> {
        principal.require(Permission::ManageApiKeys)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let mut keys = Vec::new();
        let mut after = after.map(|id| id.as_uuid());
        // A client-scoped caller sees only keys of its clients: read on
        // until the page is full or the keys run out.
        loop {
            let mut query = api_key::Entity::find()
                .filter(api_key::Column::TenantId.eq(tenant.as_uuid()))
                .order_by_asc(api_key::Column::Id)
                .limit(limit);
            if let Some(after) = after {
                query = query.filter(api_key::Column::Id.gt(after));
            }
            let rows = query.all(&transaction).await?;
            let exhausted = (rows.len() as u64) < limit;
            after = rows.last().map(|row| row.id);
            keys.extend(
                rows.into_iter()
                    .filter(|row| visible_to(principal, row))
                    .map(view),
            );
            if exhausted || keys.len() as u64 >= limit {
                break;
            }
        }
        keys.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        transaction.commit().await?;
        Ok(keys)
    }

    /// Revokes a key: it stops working at once. Revoking twice is a no-op.
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: ApiKeyId,
        origin: &RequestOrigin,
    ) -> Result<ApiKeyView> {
        principal.require(Permission::ManageApiKeys)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        let row = api_key::Entity::find_by_id(id.as_uuid())
            .filter(api_key::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
            .filter(|row| visible_to(principal, row))
            .ok_or(IdentityError::NotFound("API key"))?;
        if row.revoked_at.is_none() {
            api_key::Entity::update_many()
                .col_expr(api_key::Column::RevokedAt, Expr::value(now()))
                .filter(api_key::Column::Id.eq(row.id))
                .filter(api_key::Column::TenantId.eq(tenant.as_uuid()))
                .exec(&transaction)
                .await?;
            events::emit(
                &transaction,
                tenant,
                [Payload::ApiKeyRevoked(proto::ApiKeyRevoked {
                    api_key_id: id.to_string(),
                })],
            )
            .await?;
            audit::record(
                &transaction,
                tenant,
                origin,
                AuditRecord::by(
                    principal,
                    "api_key.revoked",
                    ("api_key", Some(id.as_uuid())),
                )
                .details(serde_json::json!({ "name": row.name, "prefix": row.prefix })),
            )
            .await?;
        }
        let row = api_key::Entity::find_by_id(id.as_uuid())
            .filter(api_key::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or(IdentityError::NotFound("API key"))?;
        transaction.commit().await?;
        self.credentials().revoke_api_key(&row.hash).await;
        Ok(view(row))
    }
}

/// Whether the caller's client scope covers every client the key acts
/// for (a key of the whole tenant is only for callers of the whole tenant).
fn visible_to(principal: &Principal, row: &api_key::Model) -> bool {
    key_clients(row).is_within(principal.tenant.clients())
}

fn key_clients(row: &api_key::Model) -> ClientScope {
    ClientScope::from_list(row.client_ids.as_deref().map(|text| {
        domain::client_ids_from_text(text)
            .into_iter()
            .map(ClientId::from_uuid)
            .collect()
    }))
}

fn view(row: api_key::Model) -> ApiKeyView {
    ApiKeyView {
        id: ApiKeyId::from_uuid(row.id),
        name: row.name,
        prefix: row.prefix,
        scopes: domain::scopes_from_text(&row.scopes),
        created_at: row.created_at,
        expires_at: row.expires_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
    }
}
