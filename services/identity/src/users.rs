//! Users: create (with a password, or by invitation), read, change roles,
//! client scopes and status, delete. Every change that can add a seat
//! checks the plan's limit in the same transaction.

use std::collections::{BTreeSet, HashMap};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, DatabaseTransaction, EntityTrait,
    FromQueryResult, IntoActiveModel, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use switchboard_auth::secrets::INVITATION_TOKEN_PREFIX;
use switchboard_auth::{OpaqueToken, check_password_strength, hash_password_async};
use switchboard_tenancy::{ClientId, ClientScope, TenantId, UserId};
use uuid::Uuid;

use switchboard_events::proto::{self, envelope::Payload};

use crate::audit::{self, AuditRecord};
use crate::domain::{self, FieldError, Permission, Role, UserStatus};
use crate::error::{IdentityError, Result};
use crate::events;
use crate::seats;
use crate::sessions::{
    UserRights, check_tenant_status, load_tenant, spend_one_time_token, user_clients,
};
use crate::store::entities::{client_org, one_time_token, user, user_client};
use crate::{
    Identity, Invitation, NewUser, Principal, RequestOrigin, Tokens, UserPatch, UserView, now,
};

const PURPOSE_INVITATION: &str = "invitation";

impl Identity {
    /// Users visible to the caller, in id (creation) order, after `after`.
    /// Reads without a transaction, two queries a page at most (the page,
    /// then the client scopes of its client-scoped users), each one round
    /// trip on PostgreSQL.
    pub async fn list_users(
        &self,
        principal: &Principal,
        after: Option<UserId>,
        limit: u64,
    ) -> Result<Vec<UserView>> {
        principal.require(Permission::ReadUsers)?;
        let tenant = principal.tenant.id();
        let mut views = Vec::new();
        let mut cursor = after;
        loop {
            let mut query = user::Entity::find()
                .filter(user::Column::TenantId.eq(tenant.as_uuid()))
                .order_by_asc(user::Column::Id)
                .limit(limit.max(1));
            if let Some(cursor) = cursor {
                query = query.filter(user::Column::Id.gt(cursor.as_uuid()));
            }
            let rows = self.read_users(tenant, query).await?;
            let exhausted = (rows.len() as u64) < limit.max(1);
            let mut clients = self.read_user_clients(tenant, &rows).await?;
            for row in rows {
                cursor = Some(UserId::from_uuid(row.id));
                let clients =
                    (!row.all_clients).then(|| clients.remove(&row.id).unwrap_or_default());
                if visible_to(principal, clients.as_deref()) {
                    views.push(view(row, clients)?);
                    if views.len() as u64 == limit {
                        return Ok(views);
                    }
                }
            }
            if exhausted {
                break;
            }
        }
        Ok(views)
    }

    /// One user the caller may see: one round trip on PostgreSQL for a user
    /// of every client, two for a client-scoped one.
    pub async fn get_user(&self, principal: &Principal, id: UserId) -> Result<UserView> {
        principal.require(Permission::ReadUsers)?;
        let tenant = principal.tenant.id();
        let query = user::Entity::find_by_id(id.as_uuid())
            .filter(user::Column::TenantId.eq(tenant.as_uuid()));
        let row = self
            .read_users(tenant, query)
            .await?
            .pop()
            .ok_or(IdentityError::NotFound("user"))?;
        let clients = match row.all_clients {
            true => None,
            false => Some(
                self.read_user_clients(tenant, std::slice::from_ref(&row))
                    .await?
                    .remove(&row.id)
                    .unwrap_or_default(),
            ),
        };
        if !visible_to(principal, clients.as_deref()) {
            return Err(IdentityError::NotFound("user"));
        }
        view(row, clients)
    }

    async fn read_users(
        &self,
        tenant: TenantId,
        query: sea_orm::Select<user::Entity>,
    ) -> Result<Vec<user::Model>> {
        let rows = self.store().read(tenant, &query.into_query()).await?;
        Ok(rows
            .iter()
            .map(|row| user::Model::from_query_result(row, ""))
            .collect::<std::result::Result<_, _>>()?)
    }

    /// The client scopes of those of `users` scoped to clients, by user.
    async fn read_user_clients(
        &self,
        tenant: TenantId,
        users: &[user::Model],
    ) -> Result<HashMap<Uuid, Vec<ClientId>>> {
        let scoped: Vec<Uuid> = users
            .iter()
            .filter(|user| !user.all_clients)
            .map(|user| user.id)
            .collect();
        let mut clients: HashMap<Uuid, Vec<ClientId>> = HashMap::new();
        if scoped.is_empty() {
            return Ok(clients);
        }
        let query = user_client::Entity::find()
            .filter(user_client::Column::TenantId.eq(tenant.as_uuid()))
            .filter(user_client::Column::UserId.is_in(scoped))
            .order_by_asc(user_client::Column::ClientId)
            .into_query();
        for row in self.store().read(tenant, &query).await? {
            let link = user_client::Model::from_query_result(&row, "")?;
            clients
                .entry(link.user_id)
                .or_default()
                .push(ClientId::from_uuid(link.client_id));
        }
        Ok(clients)
    }

    /// Creates a user with a password (active) or without (invited, with
    /// an invitation token). 409 `seat_limit_reached` past the plan's seats.
    pub async fn create_user(
        &self,
        principal: &Principal,
        new: NewUser,
        origin: &RequestOrigin,
    ) -> Result<(UserView, Option<Invitation>)> {
        principal.require(Permission::ManageUsers)?;
        if new.password.is_none() {
            principal.require_verified("invite users")?;
        }
        let tenant = principal.tenant.id();
        let mut errors = Vec::new();
        let email = domain::normalize_email("email", &new.email)
            .map_err(|e| errors.push(e))
            .ok();
        let display_name = match &new.display_name {
            Some(name) => domain::validate_display_name("display_name", name)
                .map_err(|e| errors.push(e))
                .ok(),
            None => email
                .as_ref()
                .map(|email| email.split('@').next().unwrap_or_default().to_owned()),
        };
        let roles = parse_roles(&new.roles).map_err(|e| errors.push(e)).ok();
        if let Some(password) = &new.password
            && let Err(error) =
                check_password_strength(password, email.as_deref().unwrap_or_default())
        {
            errors.push(FieldError::new("password", error.to_string()));
        }
        let (Some(email), Some(display_name), Some(roles), true) =
            (email, display_name, roles, errors.is_empty())
        else {
            return Err(IdentityError::Validation(errors));
        };
        check_role_grant(principal, &roles)?;
        check_client_grant(principal, new.clients.as_deref())?;
        let password_hash = match new.password {
            Some(password) => Some(
                hash_password_async(password)
                    .await
                    .map_err(|error| IdentityError::Internal(error.to_string()))?,
            ),
            None => None,
        };

        let transaction = self.store().begin(tenant).await?;
        seats::lock_tenant(&transaction, tenant).await?;
        let seats_before = seats::count(&transaction, tenant).await?;
        let taken = user::Entity::find()
            .filter(user::Column::TenantId.eq(tenant.as_uuid()))
            .filter(user::Column::Email.eq(email.clone()))
            .one(&transaction)
            .await?
            .is_some();
        if taken {
            return Err(IdentityError::conflict(
                "email_taken",
                format!("a user with email {email} exists already"),
            ));
        }
        if let Some(clients) = &new.clients {
            check_clients_exist(&transaction, tenant, clients).await?;
        }
        let id = UserId::new();
        let at = now();
        let status = if password_hash.is_some() {
            UserStatus::Active
        } else {
            UserStatus::Invited
        };
        let row = user::ActiveModel {
            id: Set(id.as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            email: Set(email.clone()),
            display_name: Set(display_name),
            password_hash: Set(password_hash),
            roles: Set(domain::roles_to_text(&roles)),
            all_clients: Set(new.clients.is_none()),
            status: Set(status.as_str().to_owned()),
            created_at: Set(at),
            updated_at: Set(at),
            rights_version: Set(1),
        }
        .insert(&transaction)
        .await?;
        set_clients(&transaction, tenant, id, new.clients.as_deref()).await?;
        events::emit(
            &transaction,
            tenant,
            [Payload::UserCreated(proto::UserCreated {
                user: Some(events::user(&row, new.clients.as_deref())),
            })],
        )
        .await?;
        seats::settle(&transaction, tenant, seats_before, Some(id)).await?;
        let clients = new.clients.clone().unwrap_or_default();
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, if status == UserStatus::Invited { "user.invited" } else { "user.created" }, ("user", Some(id.as_uuid())))
                .clients(&clients)
                .details(serde_json::json!({ "email": email, "roles": roles.iter().map(|r| r.as_str()).collect::<Vec<_>>() })),
        )
        .await?;
        let invitation = if status == UserStatus::Invited {
            let token = OpaqueToken::generate(INVITATION_TOKEN_PREFIX);
            let expires_at = at + self.inner.options.invitation_ttl;
            one_time_token::ActiveModel {
                hash: Set(token.hash.clone()),
                tenant_id: Set(tenant.as_uuid()),
                user_id: Set(Some(id.as_uuid())),
                purpose: Set(PURPOSE_INVITATION.to_owned()),
                expires_at: Set(expires_at),
                used_at: Set(None),
            }
            .insert(&transaction)
            .await?;
            self.register_lookup(&transaction, &token.hash, PURPOSE_INVITATION, tenant)
                .await?;
            Some((token, expires_at))
        } else {
            None
        };
        transaction.commit().await?;
        let user = view(row, new.clients)?;
        let invitation = invitation.map(|(token, expires_at)| {
            tracing::info!(tenant_id = %tenant, user_id = %id, "invitation created (deliver the token with POST /v1/auth/accept-invitation)");
            Invitation {
                user: user.clone(),
                token: token.plaintext,
                expires_at,
            }
        });
        Ok((user, invitation))
    }

    /// An invited user sets their password with the invitation token and is
    /// logged in.
    pub async fn accept_invitation(
        &self,
        token: &str,
        password: &str,
        display_name: Option<&str>,
        origin: &RequestOrigin,
    ) -> Result<Tokens> {
        let (tenant, token_row) = self.take_one_time_token(token, PURPOSE_INVITATION).await?;
        let user_id = token_row
            .user_id
            .ok_or_else(|| IdentityError::Internal("invitation without a user".into()))?;
        let transaction = self.store().begin(tenant).await?;
        let row = user::Entity::find_by_id(user_id)
            .filter(user::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
            .filter(|row| row.status == UserStatus::Invited.as_str())
            .ok_or_else(|| {
                IdentityError::Unauthenticated(
                    "the invitation token is invalid, expired or used".into(),
                )
            })?;
        let mut errors = Vec::new();
        if let Err(error) = check_password_strength(password, &row.email) {
            errors.push(FieldError::new("password", error.to_string()));
        }
        let display_name = match display_name {
            Some(name) => domain::validate_display_name("display_name", name)
                .map_err(|e| errors.push(e))
                .ok(),
            None => Some(row.display_name.clone()),
        };
        let (Some(display_name), true) = (display_name, errors.is_empty()) else {
            return Err(IdentityError::Validation(errors));
        };
        check_tenant_status(&load_tenant(&transaction, tenant).await?)?;
        let hash = hash_password_async(password.to_owned())
            .await
            .map_err(|error| IdentityError::Internal(error.to_string()))?;
        spend_one_time_token(&transaction, &token_row.hash, PURPOSE_INVITATION).await?;
        let roles = domain::roles_from_text(&row.roles);
        let clients = user_clients(&transaction, tenant, &row).await?;
        // An invited user holds no credential yet: nothing to invalidate.
        let rights_version = row.rights_version;
        let mut active = row.into_active_model();
        active.password_hash = Set(Some(hash));
        active.display_name = Set(display_name);
        active.status = Set(UserStatus::Active.as_str().to_owned());
        active.updated_at = Set(now());
        let accepted = active.update(&transaction).await?;
        events::emit(
            &transaction,
            tenant,
            [Payload::UserUpdated(proto::UserUpdated {
                user: Some(events::user(&accepted, clients.as_deref())),
            })],
        )
        .await?;
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord {
                actor: ("user", Some(user_id)),
                action: "user.invitation_accepted",
                target: ("user", Some(user_id)),
                clients: clients.as_deref().unwrap_or_default(),
                details: serde_json::Value::Null,
            },
        )
        .await?;
        let tokens = self
            .open_session(
                &transaction,
                tenant,
                UserId::from_uuid(user_id),
                UserRights {
                    roles: &roles,
                    clients: clients.clone(),
                    version: rights_version,
                },
            )
            .await?;
        transaction.commit().await?;
        Ok(tokens)
    }

    pub async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        patch: UserPatch,
        origin: &RequestOrigin,
    ) -> Result<UserView> {
        principal.require(Permission::ManageUsers)?;
        let tenant = principal.tenant.id();
        let mut errors = Vec::new();
        let display_name = patch
            .display_name
            .as_deref()
            .map(|name| domain::validate_display_name("display_name", name))
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let roles = patch
            .roles
            .as_deref()
            .map(parse_roles)
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        let status = patch
            .status
            .as_deref()
            .map(|status| {
                status
                    .parse::<UserStatus>()
                    .map_err(|message| FieldError::new("status", message))
            })
            .transpose()
            .map_err(|e| errors.push(e))
            .ok()
            .flatten();
        if status == Some(UserStatus::Invited) {
            errors.push(FieldError::new(
                "status",
                "a user cannot be set back to invited; use active or disabled",
            ));
        }
        if !errors.is_empty() {
            return Err(IdentityError::Validation(errors));
        }
        if let Some(roles) = &roles {
            check_role_grant(principal, roles)?;
        }
        if let Some(clients) = &patch.clients {
            check_client_grant(principal, clients.as_deref())?;
        }

        let transaction = self.store().begin(tenant).await?;
        seats::lock_tenant(&transaction, tenant).await?;
        let seats_before = seats::count(&transaction, tenant).await?;
        let (row, old_clients) = find_visible(&transaction, principal, id).await?;
        let old_roles = domain::roles_from_text(&row.roles);
        if old_roles.contains(&Role::Owner) && !principal.roles().contains(&Role::Owner) {
            return Err(IdentityError::forbidden(
                "permission_denied",
                "only an owner may change an owner",
            ));
        }
        let demotes_owner = old_roles.contains(&Role::Owner)
            && (roles
                .as_ref()
                .is_some_and(|roles| !roles.contains(&Role::Owner))
                || status == Some(UserStatus::Disabled));
        if demotes_owner {
            ensure_another_owner(&transaction, tenant, id).await?;
        }
        if status == Some(UserStatus::Active) && row.status == UserStatus::Invited.as_str() {
            return Err(IdentityError::conflict(
                "invitation_pending",
                "an invited user becomes active by accepting the invitation",
            ));
        }
        if let Some(Some(clients)) = &patch.clients {
            check_clients_exist(&transaction, tenant, clients).await?;
        }
        let rights_change = rights_change(&row, &old_clients, &roles, status, &patch.clients);
        let mut active = row.clone().into_active_model();
        if let Some(reason) = rights_change {
            active.rights_version = Set(row.rights_version + 1);
            tracing::info!(tenant_id = %tenant, user_id = %id, reason, "user rights changed; their sessions end");
        }
        if let Some(name) = display_name {
            active.display_name = Set(name);
        }
        if let Some(roles) = &roles {
            active.roles = Set(domain::roles_to_text(roles));
        }
        if let Some(status) = status {
            active.status = Set(status.as_str().to_owned());
        }
        if let Some(clients) = &patch.clients {
            active.all_clients = Set(clients.is_none());
            set_clients(&transaction, tenant, id, clients.as_deref()).await?;
        }
        active.updated_at = Set(now());
        let updated = active.update(&transaction).await?;
        let new_clients = match &patch.clients {
            Some(clients) => clients.clone(),
            None => old_clients,
        };
        events::emit(
            &transaction,
            tenant,
            [Payload::UserUpdated(proto::UserUpdated {
                user: Some(events::user(&updated, new_clients.as_deref())),
            })],
        )
        .await?;
        seats::settle(&transaction, tenant, seats_before, Some(id)).await?;
        let ended = match rights_change {
            Some(reason) => revoke_user_sessions(&transaction, tenant, id, reason).await?,
            None => Vec::new(),
        };
        let audit_clients = new_clients.clone().unwrap_or_default();
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, "user.updated", ("user", Some(id.as_uuid())))
                .clients(&audit_clients)
                .details(serde_json::json!({
                    "display_name": patch.display_name,
                    "roles": roles.as_ref().map(|roles| roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
                    "status": status.map(UserStatus::as_str),
                    "clients": patch.clients.as_ref().map(|c| c.as_ref().map(|list| list.iter().map(ToString::to_string).collect::<Vec<_>>())),
                })),
        )
        .await?;
        transaction.commit().await?;
        if rights_change.is_some() {
            self.credentials()
                .user_rights_changed(tenant, id.as_uuid())
                .await;
        }
        for session in ended {
            self.credentials().end_session(session).await;
        }
        view(updated, new_clients)
    }

    pub async fn delete_user(
        &self,
        principal: &Principal,
        id: UserId,
        origin: &RequestOrigin,
    ) -> Result<()> {
        principal.require(Permission::ManageUsers)?;
        let tenant = principal.tenant.id();
        let transaction = self.store().begin(tenant).await?;
        seats::lock_tenant(&transaction, tenant).await?;
        let seats_before = seats::count(&transaction, tenant).await?;
        let (row, clients) = find_visible(&transaction, principal, id).await?;
        if domain::roles_from_text(&row.roles).contains(&Role::Owner) {
            if !principal.roles().contains(&Role::Owner) {
                return Err(IdentityError::forbidden(
                    "permission_denied",
                    "only an owner may delete an owner",
                ));
            }
            ensure_another_owner(&transaction, tenant, id).await?;
        }
        let ended = revoke_user_sessions(&transaction, tenant, id, "user_deleted").await?;
        user::Entity::delete_many()
            .filter(user::Column::TenantId.eq(tenant.as_uuid()))
            .filter(user::Column::Id.eq(id.as_uuid()))
            .exec(&transaction)
            .await?;
        events::emit(
            &transaction,
            tenant,
            [Payload::UserDeleted(proto::UserDeleted {
                user_id: id.to_string(),
            })],
        )
        .await?;
        seats::settle(&transaction, tenant, seats_before, Some(id)).await?;
        let audit_clients = clients.unwrap_or_default();
        audit::record(
            &transaction,
            tenant,
            origin,
            AuditRecord::by(principal, "user.deleted", ("user", Some(id.as_uuid())))
                .clients(&audit_clients)
                .details(serde_json::json!({ "email": row.email })),
        )
        .await?;
        transaction.commit().await?;
        self.credentials()
            .user_rights_changed(tenant, id.as_uuid())
            .await;
        for session in ended {
            self.credentials().end_session(session).await;
        }
        Ok(())
    }

    pub(crate) async fn load_user_view(&self, tenant: TenantId, id: UserId) -> Result<UserView> {
        let transaction = self.store().begin(tenant).await?;
        let row = user::Entity::find_by_id(id.as_uuid())
            .filter(user::Column::TenantId.eq(tenant.as_uuid()))
            .one(&transaction)
            .await?
            .ok_or(IdentityError::NotFound("user"))?;
        let clients = user_clients(&transaction, tenant, &row).await?;
        transaction.commit().await?;
        view(row, clients)
    }
}

fn parse_roles(names: &[String]) -> Result<Vec<Role>, FieldError> {
    if names.is_empty() {
        return Err(FieldError::new("roles", "at least one role is required"));
    }
    let mut roles = BTreeSet::new();
    for name in names {
        roles.insert(
            name.parse::<Role>()
                .map_err(|message| FieldError::new("roles", message))?,
        );
    }
    Ok(roles.into_iter().collect())
}

/// Only an owner hands out the owner role.
fn check_role_grant(principal: &Principal, roles: &[Role]) -> Result<()> {
    if roles.contains(&Role::Owner) && !principal.roles().contains(&Role::Owner) {
        return Err(IdentityError::forbidden(
            "permission_denied",
            "only an owner may grant the owner role",
        ));
    }
    Ok(())
}

/// A client-scoped caller can only give out (a subset of) its own clients.
fn check_client_grant(principal: &Principal, clients: Option<&[ClientId]>) -> Result<()> {
    match (principal.tenant.clients(), clients) {
        (ClientScope::All, _) => Ok(()),
        (ClientScope::Only(allowed), Some(clients))
            if !clients.is_empty() && clients.iter().all(|c| allowed.contains(c)) =>
        {
            Ok(())
        }
        _ => Err(IdentityError::forbidden(
            "client_scope",
            "you may only scope users to your own client organizations",
        )),
    }
}

/// A client-scoped caller sees users who serve one of its clients.
fn visible_to(principal: &Principal, clients: Option<&[ClientId]>) -> bool {
    match (principal.tenant.clients(), clients) {
        (ClientScope::All, _) => true,
        (ClientScope::Only(allowed), Some(clients)) => {
            clients.iter().any(|client| allowed.contains(client))
        }
        (ClientScope::Only(_), None) => false,
    }
}

async fn find_visible(
    transaction: &DatabaseTransaction,
    principal: &Principal,
    id: UserId,
) -> Result<(user::Model, Option<Vec<ClientId>>)> {
    let tenant = principal.tenant.id();
    let row = user::Entity::find_by_id(id.as_uuid())
        .filter(user::Column::TenantId.eq(tenant.as_uuid()))
        .one(transaction)
        .await?
        .ok_or(IdentityError::NotFound("user"))?;
    let clients = user_clients(transaction, tenant, &row).await?;
    if !visible_to(principal, clients.as_deref()) {
        return Err(IdentityError::NotFound("user"));
    }
    Ok((row, clients))
}

async fn check_clients_exist(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    clients: &[ClientId],
) -> Result<()> {
    for client in clients {
        let exists = client_org::Entity::find_by_id(client.as_uuid())
            .filter(client_org::Column::TenantId.eq(tenant.as_uuid()))
            .one(transaction)
            .await?
            .is_some();
        if !exists {
            return Err(IdentityError::field(
                "clients",
                format!("no client organization {client}"),
            ));
        }
    }
    Ok(())
}

async fn set_clients(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: UserId,
    clients: Option<&[ClientId]>,
) -> Result<()> {
    user_client::Entity::delete_many()
        .filter(user_client::Column::TenantId.eq(tenant.as_uuid()))
        .filter(user_client::Column::UserId.eq(user.as_uuid()))
        .exec(transaction)
        .await?;
    for client in clients.unwrap_or_default().iter().collect::<BTreeSet<_>>() {
        user_client::ActiveModel {
            tenant_id: Set(tenant.as_uuid()),
            user_id: Set(user.as_uuid()),
            client_id: Set(client.as_uuid()),
        }
        .insert(transaction)
        .await?;
    }
    Ok(())
}

async fn ensure_another_owner(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    leaving: UserId,
) -> Result<()> {
    let owners = user::Entity::find()
        .filter(user::Column::TenantId.eq(tenant.as_uuid()))
        .filter(user::Column::Id.ne(leaving.as_uuid()))
        .filter(user::Column::Status.eq(UserStatus::Active.as_str()))
        .filter(user::Column::Roles.like("%owner%"))
        .one(transaction)
        .await?;
    if owners.is_none() {
        return Err(IdentityError::conflict(
            "last_owner",
            "a tenant keeps at least one active owner",
        ));
    }
    Ok(())
}

/// Why a patch changes what the user's credentials may do (`None`: it does
/// not). Any such change raises the user's rights version and ends their
/// sessions; their API keys follow at once, since a key is checked against
/// its creator's current rights at every use.
fn rights_change(
    row: &user::Model,
    old_clients: &Option<Vec<ClientId>>,
    roles: &Option<Vec<Role>>,
    status: Option<UserStatus>,
    clients: &Option<Option<Vec<ClientId>>>,
) -> Option<&'static str> {
    if status.is_some_and(|status| status.as_str() != row.status) {
        return Some(if status == Some(UserStatus::Disabled) {
            "user_disabled"
        } else {
            "user_status_changed"
        });
    }
    if roles
        .as_ref()
        .is_some_and(|roles| domain::roles_to_text(roles) != row.roles)
    {
        return Some("user_roles_changed");
    }
    let as_set = |clients: &Option<Vec<ClientId>>| {
        clients
            .as_ref()
            .map(|list| list.iter().copied().collect::<BTreeSet<_>>())
    };
    if clients
        .as_ref()
        .is_some_and(|clients| as_set(clients) != as_set(old_clients))
    {
        return Some("user_clients_changed");
    }
    None
}

/// Ends every open session of `user`; returns their ids, for the
/// credential cache (after commit).
async fn revoke_user_sessions(
    transaction: &DatabaseTransaction,
    tenant: TenantId,
    user: UserId,
    reason: &str,
) -> Result<Vec<uuid::Uuid>> {
    use crate::store::entities::session;
    let open = session::Entity::find()
        .filter(session::Column::TenantId.eq(tenant.as_uuid()))
        .filter(session::Column::UserId.eq(user.as_uuid()))
        .filter(session::Column::RevokedAt.is_null())
        .all(transaction)
        .await?;
    for row in &open {
        crate::sessions::revoke_session(transaction, row.id, reason).await?;
    }
    Ok(open.into_iter().map(|row| row.id).collect())
}

fn view(row: user::Model, clients: Option<Vec<ClientId>>) -> Result<UserView> {
    Ok(UserView {
        id: UserId::from_uuid(row.id),
        email: row.email,
        display_name: row.display_name,
        roles: domain::roles_from_text(&row.roles),
        clients,
        status: row.status.parse().map_err(IdentityError::Internal)?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
