//! `switchboard events replay`.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use switchboard_config::Config;
use switchboard_platform::Database;
use switchboard_platform::database::DatabaseOptions;
use switchboard_tenancy::TenantId;

use crate::cli::EventsAction;

/// Every consumer this binary runs, by queue name.
pub const CONSUMERS: &[&str] = &[switchboard_webhooks::CONSUMER_NAME];

pub async fn execute(config: &Config, action: EventsAction) -> anyhow::Result<()> {
    match action {
        EventsAction::Replay {
            consumer,
            since,
            tenant,
        } => {
            if !CONSUMERS.contains(&consumer.as_str()) {
                bail!(
                    "unknown consumer `{consumer}`; known: {}",
                    CONSUMERS.join(", ")
                );
            }
            let since = parse_since(&since, Utc::now())?;
            let tenant = tenant
                .map(|text| {
                    text.parse::<TenantId>()
                        .map_err(|_| anyhow::anyhow!("--tenant {text:?} is not a tenant id (UUID)"))
                })
                .transpose()?;
            // Replay requests span tenants: the system workers' role.
            let database = Database::connect(
                &config
                    .system_database_url()
                    .unwrap_or_else(|| config.database_url()),
                &DatabaseOptions {
                    max_connections: 2,
                    connect_timeout: config.database.connect_timeout,
                },
            )
            .await
            .context("cannot connect to the database")?;
            let requested =
                switchboard_events::replay::request(&database, &consumer, since, tenant)
                    .await
                    .context("cannot request the replay")?;
            database.close().await;
            println!(
                "{requested} event(s) since {} queued for re-delivery to `{consumer}`; the running relay sends them",
                since.to_rfc3339()
            );
            Ok(())
        }
    }
}

/// RFC 3339, or a duration before `now` (`90min`, `2h`, `7days`).
fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now - chrono::Duration::from_std(ago).context("--since is too far back")?),
        Err(_) => bail!(
            "--since {text:?} is neither an RFC 3339 time (2026-11-23T08:00:00Z) nor a duration ago (2h, 7days)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_rfc3339_or_a_duration_ago() {
        let now = DateTime::parse_from_rfc3339("2026-11-23T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_since("2026-11-23T08:00:00+01:00", now)
                .unwrap()
                .to_rfc3339(),
            "2026-11-23T07:00:00+00:00"
        );
        assert_eq!(
            parse_since("2h", now).unwrap().to_rfc3339(),
            "2026-11-23T10:00:00+00:00"
        );
        let error = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(error.contains("neither"), "{error}");
    }
}
