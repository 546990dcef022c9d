//! `RemoteIdentity` against identity's gRPC server on a loopback port,
//! wrapped as a node wraps it (`switchboard_rpc::Authenticated`): every
//! method of `IdentityApi` answers over the wire as it does in process,
//! errors included (same kind, code, detail and fields); another tenant's
//! ids are not found and nothing of theirs changes; and no RPC answers a
//! call without a valid service credential.

use std::sync::Arc;

use prost::Message;
use switchboard_auth::{
    LoginThrottle, ServiceClaims, ServiceKeys, SigningKey, ThrottlePolicy, TokenKeys,
};
use switchboard_identity::{
    Actor, Identity, IdentityApi, IdentityOptions, NewApiKey, NewClient, NewUser, Principal,
    RequestOrigin, SignupRequest, TenantPatch, UserPatch,
};
use switchboard_identity_api::RemoteIdentity;
use switchboard_migrations::{Migrator, MigratorTrait};
use switchboard_platform::Database;
use switchboard_platform::cache::MemoryCache;
use switchboard_platform::database::DatabaseOptions;
use switchboard_proto::identity::v1::identity_service_client::IdentityServiceClient;
use switchboard_rpc::{Authenticated, CallContext, Credentials, ErrorKind, ServiceError};
use switchboard_tenancy::{ClientId, ClientScope, Tenant, UserId};
use switchboard_test_utils::{fresh_sqlite_database, init_tracing, serve_grpc};
use tonic::Code;
use tonic::service::Routes;
use tonic::transport::Channel;

const PASSWORD: &str = "correct horse battery staple";

/// Identity in process, and the same identity behind a loopback gRPC
/// server, reached through `RemoteIdentity`.
struct Pair {
    local: Identity,
    remote: RemoteIdentity,
    keys: Arc<ServiceKeys>,
    channel: Channel,
    _dir: tempfile::TempDir,
}

async fn pair() -> Pair {
    init_tracing();
    let (url, dir) = fresh_sqlite_database();
    let database = Database::connect(&url, &DatabaseOptions::default())
        .await
        .unwrap();
    Migrator::up(database.connection(), None).await.unwrap();
    let cache = Arc::new(MemoryCache::new());
    let tokens = TokenKeys::new(vec![
        SigningKey::new("g", b"grpc-test-secret-at-least-32-bytes-long".to_vec()).unwrap(),
    ])
    .unwrap();
    let local = Identity::new(
        database,
        tokens,
        LoginThrottle::new(cache.clone(), ThrottlePolicy::default()),
        IdentityOptions::default(),
    )
    .with_credential_cache(cache);
    let keys = switchboard_test_utils::service_keys("internal-test");
    let channel = serve_grpc(Routes::new(Authenticated::new(
        switchboard_identity::grpc::server(Arc::new(local.clone())),
        keys.clone(),
    )))
    .await;
    let remote = RemoteIdentity::new(channel.clone(), Credentials::new(keys.clone(), "gateway"));
    Pair {
        local,
        remote,
        keys,
        channel,
        _dir: dir,
    }
}

fn signup_request(company: &str, email: &str) -> SignupRequest {
    SignupRequest {
        company: company.into(),
        email: email.into(),
        password: PASSWORD.into(),
        display_name: None,
        plan: "trial".into(),
        time_zone: "UTC".into(),
    }
}

fn origin() -> RequestOrigin {
    RequestOrigin {
        address: Some("192.0.2.10".into()),
    }
}

/// The same failing call in process and over gRPC: the same error.
async fn same_error<T: std::fmt::Debug>(
    what: &str,
    local: Result<T, ServiceError>,
    remote: Result<T, ServiceError>,
) -> ServiceError {
    let local = local.expect_err(what);
    let remote = remote.expect_err(what);
    assert_eq!(remote, local, "{what}");
    remote
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_identity_answers_every_method_as_identity_in_process() {
    let Pair {
        local,
        remote,
        _dir,
        ..
    } = pair().await;
    let local: Arc<dyn IdentityApi> = Arc::new(local.clone());
    let remote: Arc<dyn IdentityApi> = Arc::new(remote);

    // Signup, email verification, login, refresh, authentication.
    let outcome = remote
        .signup(signup_request("Remote A", "owner@a.example.com"), &origin())
        .await
        .unwrap();
    assert_eq!(outcome.tenant.slug, "remote-a");
    assert!(!outcome.tenant.email_verified);
    assert_eq!(outcome.owner.email, "owner@a.example.com");
    remote
        .verify_email(&outcome.verification_token, &origin())
        .await
        .unwrap();
    let tokens = remote
        .login("remote-a", "owner@a.example.com", PASSWORD, &origin())
        .await
        .unwrap();
    let owner = remote.authenticate(&tokens.access_token).await.unwrap();
    assert_eq!(
        owner,
        local.authenticate(&tokens.access_token).await.unwrap(),
        "the principal is the same over gRPC"
    );
    assert!(owner.tenant_verified && owner.expires_at.is_some());
    assert!(matches!(&owner.actor, Actor::User { id, .. } if *id == outcome.owner.id));
    let refreshed = remote.refresh(&tokens.refresh_token).await.unwrap();
    assert_ne!(refreshed.refresh_token, tokens.refresh_token);

    // The tenant.
    let tenant = remote.get_tenant(&owner).await.unwrap();
    assert_eq!(tenant, local.get_tenant(&owner).await.unwrap());
    let renamed = remote
        .update_tenant(
            &owner,
            TenantPatch {
                name: Some("Remote A, renamed".into()),
                ..TenantPatch::default()
            },
            &origin(),
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Remote A, renamed");
    assert_eq!(renamed.time_zone, tenant.time_zone);

    // Client organizations.
    let client = remote
        .create_client(
            &owner,
            NewClient {
                name: "Client One".into(),
            },
            &origin(),
        )
        .await
        .unwrap();
    assert_eq!(
        remote.list_clients(&owner, None, 10).await.unwrap(),
        vec![client.clone()]
    );
    assert_eq!(remote.get_client(&owner, client.id).await.unwrap(), client);
    assert!(
        remote
            .client_exists(&owner.tenant, client.id)
            .await
            .unwrap()
    );
    assert!(
        !remote
            .client_exists(&owner.tenant, ClientId::new())
            .await
            .unwrap()
    );

    // Users: with a password, by invitation, changed, listed, deleted.
    let (agent, invitation) = remote
        .create_user(
            &owner,
            NewUser {
                email: "agent@a.example.com".into(),
                display_name: Some("Agent".into()),
                roles: vec!["agent".into()],
                clients: Some(vec![client.id]),
                password: Some(PASSWORD.into()),
            },
            &origin(),
        )
        .await
        .unwrap();
    assert!(invitation.is_none());
    assert_eq!(agent.clients, Some(vec![client.id]));
    let (invited, invitation) = remote
        .create_user(
            &owner,
            NewUser {
                email: "invited@a.example.com".into(),
                display_name: None,
                roles: vec!["quality_analyst".into()],
                clients: None,
                password: None,
            },
            &origin(),
        )
        .await
        .unwrap();
    let invitation = invitation.expect("an invitation without a password");
    assert_eq!(invitation.user, invited);
    let invited_tokens = remote
        .accept_invitation(&invitation.token, PASSWORD, Some("Quality"), &origin())
        .await
        .unwrap();
    let analyst = remote
        .authenticate(&invited_tokens.access_token)
        .await
        .unwrap();
    assert_eq!(
        remote
            .get_user(&owner, invited.id)
            .await
            .unwrap()
            .display_name,
        "Quality"
    );
    let users = remote.list_users(&owner, None, 10).await.unwrap();
    assert_eq!(users, local.list_users(&owner, None, 10).await.unwrap());
    assert_eq!(users.len(), 3);
    let after_first = remote
        .list_users(&owner, Some(users[0].id), 10)
        .await
        .unwrap();
    assert_eq!(after_first, users[1..]);
    let changed = remote
        .update_user(
            &owner,
            agent.id,
            UserPatch {
                display_name: Some("Agent Smith".into()),
                roles: Some(vec!["agent".into(), "supervisor".into()]),
                clients: Some(None),
                ..UserPatch::default()
            },
            &origin(),
        )
        .await
        .unwrap();
    assert_eq!(changed.display_name, "Agent Smith");
    assert_eq!(changed.clients, None);
    assert_eq!(changed, remote.get_user(&owner, agent.id).await.unwrap());
    assert!(remote.user_exists(&owner.tenant, agent.id).await.unwrap());
    assert_eq!(
        remote.user_scope(&owner.tenant, agent.id).await.unwrap(),
        local.user_scope(&owner.tenant, agent.id).await.unwrap()
    );
    assert_eq!(
        remote.user_scope(&owner.tenant, agent.id).await.unwrap(),
        Some(ClientScope::All)
    );
    assert_eq!(
        remote
            .user_scope(&owner.tenant, UserId::new())
            .await
            .unwrap(),
        None
    );

    // API keys: created, used, listed, revoked.
    let created = remote
        .create_api_key(
            &owner,
            NewApiKey {
                name: "integration".into(),
                scopes: vec!["read".into()],
                expires_at: Some(chrono::Utc::now() + chrono::TimeDelta::days(1)),
            },
            &origin(),
        )
        .await
        .unwrap();
    let key_principal = remote.authenticate(&created.secret).await.unwrap();
    assert!(matches!(&key_principal.actor, Actor::ApiKey { id, .. } if *id == created.key.id));
    assert!(key_principal.expires_at.is_some());
    let keys = remote.list_api_keys(&owner, None, 10).await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].id, created.key.id);
    let revoked = remote
        .revoke_api_key(&owner, created.key.id, &origin())
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    let refused = same_error(
        "a revoked key",
        local.authenticate(&created.secret).await,
        remote.authenticate(&created.secret).await,
    )
    .await;
    assert_eq!(refused.kind, ErrorKind::Unauthenticated);

    // The audit log saw it all, from the gateway's client address.
    let events = remote.list_audit_events(&owner, None, 100).await.unwrap();
    assert_eq!(
        events,
        local.list_audit_events(&owner, None, 100).await.unwrap()
    );
    let actions: Vec<&str> = events.iter().map(|event| event.action.as_str()).collect();
    for action in [
        "tenant.created",
        "tenant.email_verified",
        "tenant.updated",
        "client.created",
        "user.created",
        "user.invited",
        "user.invitation_accepted",
        "user.updated",
        "api_key.created",
        "api_key.revoked",
    ] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let updated = events
        .iter()
        .find(|event| event.action == "tenant.updated")
        .unwrap();
    assert_eq!(updated.client_address.as_deref(), Some("192.0.2.10"));
    assert_eq!(updated.details["name"], "Remote A, renamed");
    let page = remote
        .list_audit_events(&owner, Some(events[0].id), 2)
        .await
        .unwrap();
    assert_eq!(page, events[1..3]);

    // Deletions, the end of a session, logout.
    remote
        .delete_user(&owner, invited.id, &origin())
        .await
        .unwrap();
    assert!(!remote.user_exists(&owner.tenant, invited.id).await.unwrap());
    remote
        .delete_client(&owner, client.id, &origin())
        .await
        .unwrap();
    assert!(
        !remote
            .client_exists(&owner.tenant, client.id)
            .await
            .unwrap()
    );
    remote
        .logout_session(&analyst)
        .await
        .unwrap_or_else(|error| {
            // The analyst was deleted with their sessions: nothing left to end.
            panic!("ending a deleted user's session is a no-op: {error:?}")
        });
    remote.logout_session(&owner).await.unwrap();
    same_error(
        "an ended session",
        local.authenticate(&refreshed.access_token).await,
        remote.authenticate(&refreshed.access_token).await,
    )
    .await;
    remote.logout(&refreshed.refresh_token).await.unwrap();
    remote.logout("rt_unknown").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_cross_the_wire_with_their_kind_code_and_fields() {
    let pair = pair().await;
    let local: Arc<dyn IdentityApi> = Arc::new(pair.local.clone());
    let remote: Arc<dyn IdentityApi> = Arc::new(pair.remote.clone());
    let outcome = local
        .signup(
            signup_request("Errors", "owner@errors.example.com"),
            &origin(),
        )
        .await
        .unwrap();
    let owner = local
        .authenticate(&outcome.tokens.access_token)
        .await
        .unwrap();

    // Validation: every field named, in the same order.
    let bad_signup = || SignupRequest {
        company: " ".into(),
        email: "not an address".into(),
        password: "short".into(),
        display_name: None,
        plan: "platinum".into(),
        time_zone: "Mars/Olympus".into(),
    };
    let error = same_error(
        "an invalid signup",
        local.signup(bad_signup(), &origin()).await,
        remote.signup(bad_signup(), &origin()).await,
    )
    .await;
    assert_eq!(error.kind, ErrorKind::Validation);
    let fields: Vec<&str> = error
        .fields
        .iter()
        .map(|field| field.field.as_str())
        .collect();
    assert_eq!(
        fields,
        ["company", "email", "time_zone", "password", "plan"]
    );

    // Unauthenticated: a wrong password (the same answer as an unknown user).
    let error = same_error(
        "a wrong password",
        local
            .login(
                "errors",
                "owner@errors.example.com",
                "wrong password!",
                &origin(),
            )
            .await,
        remote
            .login(
                "errors",
                "owner@errors.example.com",
                "wrong password!",
                &origin(),
            )
            .await,
    )
    .await;
    assert_eq!(error.kind, ErrorKind::Unauthenticated);

    // Conflict with its code.
    let new_owner_twin = || NewUser {
        email: "owner@errors.example.com".into(),
        display_name: None,
        roles: vec!["admin".into()],
        clients: None,
        password: Some(PASSWORD.into()),
    };
    let error = same_error(
        "a taken email",
        local.create_user(&owner, new_owner_twin(), &origin()).await,
        remote
            .create_user(&owner, new_owner_twin(), &origin())
            .await,
    )
    .await;
    assert_eq!(
        (error.kind, error.code.as_ref()),
        (ErrorKind::Conflict, "email_taken")
    );

    // Forbidden with its code: inviting before the email is verified, and
    // an agent reading the audit log.
    let invite = || NewUser {
        password: None,
        email: "later@errors.example.com".into(),
        ..new_owner_twin()
    };
    let error = same_error(
        "an invitation before verification",
        local.create_user(&owner, invite(), &origin()).await,
        remote.create_user(&owner, invite(), &origin()).await,
    )
    .await;
    assert_eq!(
        (error.kind, error.code.as_ref()),
        (ErrorKind::Forbidden, "email_unverified")
    );
    let (agent, _) = local
        .create_user(
            &owner,
            NewUser {
                email: "agent@errors.example.com".into(),
                roles: vec!["agent".into()],
                ..new_owner_twin()
            },
            &origin(),
        )
        .await
        .unwrap();
    let agent_tokens = local
        .login("errors", &agent.email, PASSWORD, &origin())
        .await
        .unwrap();
    let agent = remote
        .authenticate(&agent_tokens.access_token)
        .await
        .unwrap();
    let error = same_error(
        "an agent reading the audit log",
        local.list_audit_events(&agent, None, 10).await,
        remote.list_audit_events(&agent, None, 10).await,
    )
    .await;
    assert_eq!(
        (error.kind, error.code.as_ref()),
        (ErrorKind::Forbidden, "permission_denied")
    );

    // A one-time token that does not exist.
    let error = same_error(
        "an unknown invitation",
        local
            .accept_invitation("inv_nope", PASSWORD, None, &origin())
            .await,
        remote
            .accept_invitation("inv_nope", PASSWORD, None, &origin())
            .await,
    )
    .await;
    assert_eq!(error.kind, ErrorKind::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_ids_are_not_found_and_nothing_of_theirs_changes() {
    let pair = pair().await;
    let local = pair.local.clone();
    let remote: Arc<dyn IdentityApi> = Arc::new(pair.remote.clone());
    let mut owners: Vec<Principal> = Vec::new();
    for (company, email) in [
        ("Tenant A", "a@a.example.com"),
        ("Tenant B", "b@b.example.com"),
    ] {
        let outcome = local
            .signup(signup_request(company, email), &origin())
            .await
            .unwrap();
        local
            .verify_email(&outcome.verification_token, &origin())
            .await
            .unwrap();
        let tokens = local
            .login(&outcome.tenant.slug, email, PASSWORD, &origin())
            .await
            .unwrap();
        owners.push(
            local
                .authenticate_access_token(&tokens.access_token)
                .await
                .unwrap(),
        );
    }
    let (a, b) = (&owners[0], &owners[1]);
    let b_client = local
        .create_client(
            b,
            NewClient {
                name: "B's client".into(),
            },
            &origin(),
        )
        .await
        .unwrap();
    let (b_user, _) = local
        .create_user(
            b,
            NewUser {
                email: "agent@b.example.com".into(),
                display_name: None,
                roles: vec!["agent".into()],
                clients: None,
                password: Some(PASSWORD.into()),
            },
            &origin(),
        )
        .await
        .unwrap();
    let b_key = local
        .create_api_key(
            b,
            NewApiKey {
                name: "b".into(),
                scopes: vec!["read".into()],
                expires_at: None,
            },
            &origin(),
        )
        .await
        .unwrap();
    let b_audit_before = local.list_audit_events(b, None, 100).await.unwrap();

    let not_found = |result: Result<(), ServiceError>, what: &str| {
        let error = result.expect_err(what);
        assert_eq!(error.kind, ErrorKind::NotFound, "{what}: {error:?}");
    };
    not_found(
        remote.get_user(a, b_user.id).await.map(drop),
        "get B's user",
    );
    not_found(
        remote
            .update_user(
                a,
                b_user.id,
                UserPatch {
                    display_name: Some("Taken over".into()),
                    ..UserPatch::default()
                },
                &origin(),
            )
            .await
            .map(drop),
        "change B's user",
    );
    not_found(
        remote.delete_user(a, b_user.id, &origin()).await,
        "delete B's user",
    );
    not_found(
        remote.get_client(a, b_client.id).await.map(drop),
        "get B's client",
    );
    not_found(
        remote.delete_client(a, b_client.id, &origin()).await,
        "delete B's client",
    );
    not_found(
        remote
            .revoke_api_key(a, b_key.key.id, &origin())
            .await
            .map(drop),
        "revoke B's key",
    );
    assert!(!remote.user_exists(&a.tenant, b_user.id).await.unwrap());
    assert_eq!(remote.user_scope(&a.tenant, b_user.id).await.unwrap(), None);
    assert!(!remote.client_exists(&a.tenant, b_client.id).await.unwrap());
    assert!(remote.list_clients(a, None, 10).await.unwrap().is_empty());

    // B's data is as it was.
    assert_eq!(local.get_user(b, b_user.id).await.unwrap(), b_user);
    assert_eq!(local.get_client(b, b_client.id).await.unwrap(), b_client);
    assert!(local.authenticate_api_key(&b_key.secret).await.is_ok());
    assert_eq!(
        local.list_audit_events(b, None, 100).await.unwrap(),
        b_audit_before
    );
    assert!(remote.user_exists(&b.tenant, b_user.id).await.unwrap());
}

/// Every RPC of `IdentityService`, by its generated client method and its
/// proto name.
macro_rules! every_rpc {
    ($call:ident) => {
        vec![
            $call!(authenticate, "Authenticate"),
            $call!(signup, "Signup"),
            $call!(login, "Login"),
            $call!(refresh, "Refresh"),
            $call!(logout, "Logout"),
            $call!(verify_email, "VerifyEmail"),
            $call!(accept_invitation, "AcceptInvitation"),
            $call!(end_session, "EndSession"),
            $call!(get_tenant, "GetTenant"),
            $call!(update_tenant, "UpdateTenant"),
            $call!(list_users, "ListUsers"),
            $call!(get_user, "GetUser"),
            $call!(create_user, "CreateUser"),
            $call!(update_user, "UpdateUser"),
            $call!(delete_user, "DeleteUser"),
            $call!(list_clients, "ListClients"),
            $call!(create_client, "CreateClient"),
            $call!(get_client, "GetClient"),
            $call!(delete_client, "DeleteClient"),
            $call!(create_api_key, "CreateApiKey"),
            $call!(list_api_keys, "ListApiKeys"),
            $call!(revoke_api_key, "RevokeApiKey"),
            $call!(list_audit_events, "ListAuditEvents"),
            $call!(user_exists, "UserExists"),
            $call!(client_exists, "ClientExists"),
            $call!(user_scope, "UserScope"),
        ]
    };
}

/// The RPCs the service declares, from the descriptor set.
fn declared_rpcs() -> Vec<String> {
    let set =
        prost_types::FileDescriptorSet::decode(switchboard_proto::FILE_DESCRIPTOR_SET).unwrap();
    let service = set
        .file
        .iter()
        .filter(|file| file.package() == "switchboard.identity.v1")
        .flat_map(|file| &file.service)
        .find(|service| service.name() == "IdentityService")
        .unwrap();
    let mut names: Vec<String> = service.method.iter().map(|m| m.name().to_owned()).collect();
    names.sort();
    names
}

fn with_authorization<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_refuses_calls_without_a_valid_service_credential() {
    let pair = pair().await;
    let outcome = pair
        .local
        .signup(
            signup_request("Guarded", "owner@guarded.example.com"),
            &origin(),
        )
        .await
        .unwrap();
    let owner = pair
        .local
        .authenticate_access_token(&outcome.tokens.access_token)
        .await
        .unwrap();
    let context = CallContext::tenant(owner.tenant.clone()).with_principal(owner.to_claim());
    let expired = {
        let mut claims = ServiceClaims::new(
            "gateway",
            chrono::Utc::now() - chrono::TimeDelta::minutes(5),
        );
        claims.tid = Some(owner.tenant.id().as_uuid());
        claims.prn = context.principal.clone();
        format!("Bearer {}", pair.keys.sign(&claims).unwrap())
    };
    let foreign = Credentials::new(
        switchboard_test_utils::service_keys("internal-test"),
        "gateway",
    )
    .token(&context)
    .unwrap();
    let end_user = format!("Bearer {}", outcome.tokens.access_token);
    let mut client = IdentityServiceClient::new(pair.channel.clone());
    let users_before = pair.local.list_users(&owner, None, 10).await.unwrap();

    for (case, authorization) in [
        ("no credential", None),
        ("an expired credential", Some(expired.as_str())),
        (
            "a credential signed with another key",
            Some(foreign.as_str()),
        ),
        ("an end user's token", Some(end_user.as_str())),
    ] {
        macro_rules! refused {
            ($method:ident, $name:literal) => {{
                let status = client
                    .$method(with_authorization(Default::default(), authorization))
                    .await
                    .expect_err($name);
                assert_eq!(
                    status.code(),
                    Code::Unauthenticated,
                    "{case}, {}: {status:?}",
                    $name
                );
                $name.to_owned()
            }};
        }
        let mut covered = every_rpc!(refused);
        covered.sort();
        assert_eq!(covered, declared_rpcs(), "every RPC is tried");
    }

    // Nothing changed, and a valid credential still works.
    let remote: Arc<dyn IdentityApi> = Arc::new(pair.remote.clone());
    assert_eq!(
        remote.list_users(&owner, None, 10).await.unwrap(),
        users_before
    );

    // A tenant-scoped call whose credential names no tenant, or no
    // principal: unauthenticated; a call taking an end user's credential
    // with a tenant-scoped service credential: refused.
    let gateway = Credentials::new(pair.keys.clone(), "gateway");
    let no_tenant = client
        .get_tenant(
            gateway
                .request(Default::default(), &CallContext::system())
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(no_tenant.code(), Code::Unauthenticated);
    let no_principal = client
        .get_tenant(
            gateway
                .request(
                    Default::default(),
                    &CallContext::tenant(owner.tenant.clone()),
                )
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(no_principal.code(), Code::Unauthenticated);
    let tenant_scoped_login = client
        .login(gateway.request(Default::default(), &context).unwrap())
        .await
        .unwrap_err();
    assert_eq!(tenant_scoped_login.code(), Code::InvalidArgument);
    // Exists questions need only the tenant.
    let other = Tenant::whole(switchboard_tenancy::TenantId::new());
    assert!(!remote.user_exists(&other, UserId::new()).await.unwrap());
}
