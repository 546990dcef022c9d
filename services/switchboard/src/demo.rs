//! `switchboard dev --demo`: a tenant to log in to at once, with an owner, a
//! supervisor and three agents. Seeding again finds it and changes nothing.

use std::net::SocketAddr;

use anyhow::Context;
use switchboard_identity::{Identity, Tokens};
use switchboard_identity::{IdentityError, NewUser, RequestOrigin, SignupRequest};

const COMPANY: &str = "Switchboard Demo";
const SLUG: &str = "switchboard-demo";
const OWNER: &str = "owner@demo.switchboard.test";
/// Public on purpose: the demo lives on a developer's machine.
const PASSWORD: &str = "switchboard-demo-7421";
const STAFF: &[(&str, &str, &str)] = &[
    (
        "supervisor@demo.switchboard.test",
        "Sam Supervisor",
        "supervisor",
    ),
    ("agent1@demo.switchboard.test", "Ada Agent", "agent"),
    ("agent2@demo.switchboard.test", "Ben Agent", "agent"),
    ("agent3@demo.switchboard.test", "Cleo Agent", "agent"),
];

/// How to log in to the demo tenant.
pub struct Demo {
    created: bool,
}

pub async fn seed(identity: &Identity) -> anyhow::Result<Demo> {
    let origin = RequestOrigin::default();
    match identity.login(SLUG, OWNER, PASSWORD, &origin).await {
        Ok(_) => return Ok(Demo { created: false }),
        Err(IdentityError::Unauthenticated(_)) => {}
        Err(error) => return Err(error).context("cannot check for the demo tenant"),
    }
    let outcome = identity
        .signup(
            SignupRequest {
                company: COMPANY.into(),
                email: OWNER.into(),
                password: PASSWORD.into(),
                display_name: Some("Olivia Owner".into()),
                plan: switchboard_identity::TRIAL_PLAN.into(),
                time_zone: "Europe/Paris".into(),
            },
            &origin,
        )
        .await
        .context("cannot create the demo tenant")?;
    anyhow::ensure!(
        outcome.tenant.slug == SLUG,
        "another tenant holds the handle {SLUG:?}; the demo got {:?}",
        outcome.tenant.slug
    );
    identity
        .verify_email(&outcome.verification_token, &origin)
        .await
        .context("cannot verify the demo tenant")?;
    // Room for the demo's users, as an operator would give it.
    identity
        .set_plan(SLUG, "pro")
        .await
        .context("cannot put the demo tenant on the pro plan")?;
    let owner = principal(identity, &outcome.tokens).await?;
    for (email, name, role) in STAFF {
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
                &origin,
            )
            .await
            .with_context(|| format!("cannot create the demo user {email}"))?;
    }
    Ok(Demo { created: true })
}

async fn principal(
    identity: &Identity,
    tokens: &Tokens,
) -> anyhow::Result<switchboard_identity::Principal> {
    Ok(identity
        .authenticate_access_token(&tokens.access_token)
        .await?)
}

impl Demo {
    pub fn print(&self, http: SocketAddr) {
        let state = if self.created {
            "created"
        } else {
            "already there"
        };
        println!("Demo tenant {SLUG:?} ({state}); every demo user's password is {PASSWORD}");
        println!(
            "  users     {OWNER} (owner), {}",
            STAFF
                .iter()
                .map(|(email, _, role)| format!("{email} ({role})"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        println!(
            "  log in    curl -s http://{http}/v1/auth/login -H 'content-type: application/json' -d '{{\"tenant\":\"{SLUG}\",\"email\":\"{OWNER}\",\"password\":\"{PASSWORD}\"}}'"
        );
    }
}
