//! `switchboard tenants set-plan`: what operators do for tenants that the
//! tenants may not do themselves.

use anyhow::Context;
use switchboard_auth::{LoginThrottle, ThrottlePolicy};
use switchboard_config::Config;
use switchboard_identity::{Identity, IdentityOptions};
use switchboard_platform::Backends;

use crate::cli::TenantsAction;

pub async fn execute(config: &Config, action: TenantsAction) -> anyhow::Result<()> {
    match action {
        TenantsAction::SetPlan { tenant, plan } => {
            // The configured backends: the cache too, so that running nodes
            // stop using the old plan's limits at once.
            let backends = Backends::connect(config).await.context("cannot start")?;
            let identity = Identity::new(
                backends.database.clone(),
                crate::keys::token_keys(config)?,
                LoginThrottle::new(backends.cache.clone(), ThrottlePolicy::default()),
                IdentityOptions::default(),
            )
            .with_credential_cache(backends.cache.clone());
            let changed = identity.set_plan(&tenant, &plan).await;
            backends.close().await;
            let view = changed
                .with_context(|| format!("cannot put tenant `{tenant}` on plan `{plan}`"))?;
            println!(
                "tenant {} ({}) is on plan {} ({} of {} seats in use)",
                view.slug, view.id, view.plan, view.seats_used, view.seat_limit
            );
            Ok(())
        }
    }
}
