//! The `switchboard` binary as a user runs it: real processes, real
//! backends, the output a person reads.

use std::path::Path;
use std::process::Output;
use std::time::Duration;
use switchboard_migrations::MigratorTrait;

use switchboard_test_utils::{
    ClosedPort, S3Server, amqp_url, fresh_postgres_database, init_tracing, postgres_admin_url,
    postgres_app_role_url, postgres_role_url, postgres_system_role_url, redis_url, unique_name,
};
use tokio::process::Command;

mod common;

use common::{assert_clean_failure, run_to_end, start, switchboard, webhook_receiver};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_runs_on_embedded_backends_and_stops_cleanly_on_sigterm() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut command = switchboard(dir.path());
    command.arg("dev");
    let running = start(command).await;
    assert!(
        running
            .banner
            .contains("database=sqlite cache=memory bus=memory objects=local"),
        "{}",
        running.banner
    );
    assert!(running.banner.contains("/metrics"), "{}", running.banner);

    assert_eq!(running.get("/healthz").await.status(), 200);
    let ready = running.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(
        running
            .banner
            .contains("services  system, identity, events, webhooks, routing, edge, gateway"),
        "{}",
        running.banner
    );
    assert!(
        running.banner.contains("  SIP       udp 127.0.0.1:")
            && running
                .banner
                .contains("(tenants' domains: <slug>.sip.localhost)"),
        "{}",
        running.banner
    );

    // The public API is up: a company signs up and reads its tenant.
    let client = reqwest::Client::new();
    let signup = client
        .post(format!("{}/v1/signup", running.http))
        .json(&serde_json::json!({
            "company": "Dev Co", "email": "me@dev.example.com",
            "password": "correct horse battery staple", "time_zone": "Europe/Paris"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    let body: serde_json::Value = signup.json().await.unwrap();
    assert!(
        body["email_verification_token"].is_string(),
        "dev exposes the token: {body}"
    );
    let token = body["tokens"]["access_token"].as_str().unwrap();
    let tenant = client
        .get(format!("{}/v1/tenant", running.http))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(tenant.status(), 200);
    assert!(
        dir.path().join("data/switchboard.db").is_file(),
        "SQLite file under ./data"
    );
    assert!(
        dir.path().join("data/objects").is_dir(),
        "objects under ./data"
    );

    let status = running.terminate().await;
    assert!(status.success(), "graceful stop exits 0, got {status}");
}

#[tokio::test]
async fn dev_with_a_port_in_use_exits_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_SERVER__HTTP_ADDR", &addr)
            .arg("dev"),
    )
    .await;
    assert_clean_failure(&output, &["server.http_addr", &addr, "in use"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(last.matches("in use").count(), 1, "the cause once: {last}");
}

#[tokio::test]
async fn config_check_prints_the_effective_config_with_secrets_masked() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prod.toml");
    std::fs::write(
        &file,
        "[database]\nurl = \"postgres://app:hunter2@db.internal/sb\"\n[objects]\nbackend = \"s3\"\n[objects.s3]\nbucket = \"recordings\"\naccess_key_id = \"AKIA\"\nsecret_access_key = \"s3-very-secret\"\n",
    )
    .unwrap();
    let output = run_to_end(switchboard(dir.path()).args(["config", "check"]).arg(&file)).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("db.internal") && stdout.contains("recordings"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("hunter2") && !stdout.contains("s3-very-secret"),
        "{stdout}"
    );
    assert!(
        stdout.contains("shutdown_grace = \"30s\""),
        "defaults are shown too: {stdout}"
    );

    // The example in the repository passes.
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../switchboard.example.toml");
    let output = run_to_end(
        switchboard(dir.path())
            .args(["config", "check"])
            .arg(example),
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn a_config_typo_exits_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("switchboard.toml"),
        "[server]\nhttp_adr = \"127.0.0.1:1\"\n",
    )
    .unwrap();
    let output = run_to_end(switchboard(dir.path()).arg("dev")).await;
    assert_clean_failure(&output, &["server.http_adr", "switchboard.toml"]);
    assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);

    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__MAX_CONNECTIONS", "lots")
            .args(["config", "check"]),
    )
    .await;
    assert_clean_failure(&output, &["database.max_connections"]);
}

#[tokio::test]
async fn serve_with_an_unreachable_database_exits_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let closed = ClosedPort::new().unwrap();
    let port = closed.port();
    let output = run_to_end(
        switchboard(dir.path())
            .env(
                "SWITCHBOARD_DATABASE__URL",
                format!("postgres://app:hunter2@127.0.0.1:{port}/sb"),
            )
            .env("SWITCHBOARD_DATABASE__CONNECT_TIMEOUT", "40s")
            .args(["serve", "--services", "all"]),
    )
    .await;
    // Refused at once, and said so, rather than `pool timed out` after the
    // connect timeout.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    assert_clean_failure(
        &output,
        &["database", &format!("127.0.0.1:{port}"), "refused"],
    );
    assert!(!String::from_utf8_lossy(&output.stderr).contains("hunter2"));
}

#[tokio::test]
async fn serve_as_a_missing_database_role_says_so_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let role = unique_name("no_such_role");
    let mut url = url::Url::parse(&postgres_admin_url()).unwrap();
    url.set_username(&role).unwrap();
    url.set_password(Some("whatever")).unwrap();
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__URL", url.as_str())
            .args(["serve", "--services", "all"]),
    )
    .await;
    assert_clean_failure(&output, &["database", &role]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        !last.contains("at line") && !last.contains("timed out"),
        "the server's words only: {last}"
    );
}

#[tokio::test]
async fn text_logs_into_a_file_or_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    // serve on embedded backends warns (a log line), then refuses the
    // unmigrated schema; stderr is a pipe here.
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_TELEMETRY__LOG_FORMAT", "text")
            .env_remove("NO_COLOR")
            .args(["serve", "--services", "system"]),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("serve is using embedded backends"),
        "{stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "ANSI escapes in {stderr:?}");
}

#[tokio::test]
async fn serve_help_lists_the_services() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_end(switchboard(dir.path()).args(["serve", "--help"])).await;
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for service in [
        "system", "identity", "events", "webhooks", "routing", "gateway",
    ] {
        assert!(
            help.lines()
                .any(|line| line.trim_start().starts_with(service)),
            "{service} missing from {help}"
        );
    }
}

#[tokio::test]
async fn serve_refuses_a_set_of_services_whose_peers_are_missing() {
    let dir = tempfile::tempdir().unwrap();
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_PEERS__IDENTITY", "http://identity:9090")
            .args(["serve", "--services", "gateway"]),
    )
    .await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains("--services gateway cannot run"), "{stderr}");
    assert!(stderr.contains("routing (needed by gateway)"), "{stderr}");
    assert!(stderr.contains("webhooks (needed by gateway)"), "{stderr}");
    assert!(!stderr.contains("identity (needed"), "{stderr}");
    assert!(stderr.contains("[peers] routing"), "{stderr}");

    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_PEERS__ROUTING", "identity:9090")
            .args(["serve", "--services", "gateway"]),
    )
    .await;
    assert_clean_failure(&output, &["peers.routing", "http://"]);
}

#[tokio::test]
async fn serve_rejects_an_unknown_service() {
    let dir = tempfile::tempdir().unwrap();
    let output =
        run_to_end(switchboard(dir.path()).args(["serve", "--services", "system,rooting"])).await;
    assert_clean_failure(&output, &["`rooting`", "system"]);
}

#[tokio::test]
async fn migrate_up_status_down_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let status = |output: &Output| String::from_utf8_lossy(&output.stdout).into_owned();
    let out = run_to_end(switchboard(dir.path()).args(["migrate", "status"])).await;
    assert!(out.status.success());
    assert!(
        status(&out).contains("pending  m20261123_000001_create_installation"),
        "{}",
        status(&out)
    );

    let out = run_to_end(switchboard(dir.path()).args(["migrate", "up"])).await;
    assert!(
        status(&out).contains("migration(s); 0 pending"),
        "{}",
        status(&out)
    );
    let out = run_to_end(switchboard(dir.path()).args(["migrate", "status"])).await;
    assert!(
        status(&out).contains("applied  m20261123_000001_create_installation"),
        "{}",
        status(&out)
    );

    let all = switchboard_migrations::Migrator::migrations().len();
    let last = switchboard_migrations::Migrator::migrations()
        .last()
        .unwrap()
        .name()
        .to_owned();
    let out = run_to_end(switchboard(dir.path()).args(["migrate", "down"])).await;
    assert!(
        status(&out).contains(&format!("rolled back 1 migration(s); {} applied", all - 1)),
        "{}",
        status(&out)
    );
    let out = run_to_end(switchboard(dir.path()).args(["migrate", "status"])).await;
    let listed = status(&out);
    assert!(
        listed.contains("applied  m20261123_000001_create_installation"),
        "{listed}"
    );
    assert!(listed.contains(&format!("pending  {last}")), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_needs_a_migrated_schema_then_runs_on_the_production_backends() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let database_url = fresh_postgres_database().await;
    let s3 = S3Server::start().await;
    let configure = |command: &mut Command| {
        command
            .env("SWITCHBOARD_DATABASE__URL", &database_url)
            .env("SWITCHBOARD_CACHE__BACKEND", "redis")
            .env("SWITCHBOARD_CACHE__REDIS__URL", redis_url())
            .env("SWITCHBOARD_CACHE__REDIS__KEY_PREFIX", unique_name("cli"))
            .env("SWITCHBOARD_BUS__BACKEND", "rabbitmq")
            .env("SWITCHBOARD_BUS__RABBITMQ__URL", amqp_url())
            .env("SWITCHBOARD_BUS__RABBITMQ__EXCHANGE", unique_name("cli"))
            .env("SWITCHBOARD_OBJECTS__BACKEND", "s3")
            .env("SWITCHBOARD_OBJECTS__S3__ENDPOINT", &s3.endpoint)
            .env(
                "SWITCHBOARD_OBJECTS__S3__BUCKET",
                unique_name("cli").replace('_', "-"),
            )
            .env("SWITCHBOARD_OBJECTS__S3__ACCESS_KEY_ID", &s3.access_key)
            .env("SWITCHBOARD_OBJECTS__S3__SECRET_ACCESS_KEY", &s3.secret_key)
            .env("SWITCHBOARD_OBJECTS__S3__CREATE_BUCKET", "true");
    };

    let mut serve = switchboard(dir.path());
    configure(&mut serve);
    serve.args(["serve", "--services", "all"]);
    let refused = run_to_end(&mut serve).await;
    assert_clean_failure(&refused, &["pending migration", "switchboard migrate up"]);

    // Production layout: migrations as the owner (migrate_url), the
    // services as a role that owns nothing and is subject to RLS (url).
    let mut migrate = switchboard(dir.path());
    configure(&mut migrate);
    migrate.env(
        "SWITCHBOARD_DATABASE__URL",
        "postgres://nobody@127.0.0.1:1/unused",
    );
    migrate.env("SWITCHBOARD_DATABASE__MIGRATE_URL", &database_url);
    let migrated = run_to_end(migrate.args(["migrate", "up"])).await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let service_url = postgres_app_role_url(&database_url).await;

    // The services' role alone cannot serve the system workers, which need
    // a member of switchboard_system.
    let mut serve = switchboard(dir.path());
    configure(&mut serve);
    serve.env("SWITCHBOARD_DATABASE__URL", &service_url);
    serve.args(["serve", "--services", "all"]);
    let refused = run_to_end(&mut serve).await;
    assert_clean_failure(
        &refused,
        &[
            "database.url (database.system_url is unset)",
            "not a member of switchboard_system",
            "GRANT switchboard_system TO sbt_app_",
        ],
    );

    let system_url = postgres_system_role_url(&database_url).await;
    let mut serve = switchboard(dir.path());
    configure(&mut serve);
    serve.env("SWITCHBOARD_DATABASE__URL", &service_url);
    serve.env("SWITCHBOARD_DATABASE__SYSTEM_URL", &system_url);
    serve.args(["serve", "--services", "all"]);
    let running = start(serve).await;
    assert!(
        running
            .banner
            .contains("database=postgres cache=redis bus=rabbitmq objects=s3"),
        "{}",
        running.banner
    );
    let ready = running.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "ready", "{body}");
    // Writes go through row-level security as the service role.
    let signup = reqwest::Client::new()
        .post(format!("{}/v1/signup", running.http))
        .json(&serde_json::json!({
            "company": "Prod Co", "email": "me@prod.example.com",
            "password": "correct horse battery staple"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201);
    assert!(running.terminate().await.success());
}

/// A fresh PostgreSQL database migrated by the `switchboard` binary as the
/// server's superuser; its URL.
async fn migrated_postgres(dir: &Path) -> String {
    let database_url = fresh_postgres_database().await;
    let migrated = run_to_end(
        switchboard(dir)
            .env("SWITCHBOARD_DATABASE__URL", &database_url)
            .args(["migrate", "up"]),
    )
    .await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    database_url
}

/// The user name of a postgres:// URL.
fn user_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap()
        .split([':', '@'])
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn serve_refuses_a_superuser_database_role_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = migrated_postgres(dir.path()).await;
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__URL", &database_url)
            .args(["serve", "--services", "identity"]),
    )
    .await;
    let role = format!("`{}`", user_of(&postgres_admin_url()));
    assert_clean_failure(
        &output,
        &[
            "database.url",
            &role,
            "a superuser",
            "database.allow_privileged_role = true",
        ],
    );
}

#[tokio::test]
async fn serve_refuses_a_bypassrls_role_and_the_tables_owner() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = migrated_postgres(dir.path()).await;
    let bypass = postgres_role_url(&database_url, "sbt_bypass", "IN ROLE switchboard_app").await;
    let admin = sea_orm::Database::connect(database_url.as_str())
        .await
        .unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("ALTER ROLE {} BYPASSRLS", user_of(&bypass)),
    )
    .await
    .unwrap();
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__URL", &bypass)
            .args(["serve", "--services", "identity"]),
    )
    .await;
    assert_clean_failure(&output, &["database.url", &user_of(&bypass), "BYPASSRLS"]);

    // A services' role that also owns a table.
    let owner = postgres_role_url(&database_url, "sbt_owner", "IN ROLE switchboard_app").await;
    sea_orm::ConnectionTrait::execute_unprepared(
        &admin,
        &format!("ALTER TABLE audit_events OWNER TO {}", user_of(&owner)),
    )
    .await
    .unwrap();
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__URL", &owner)
            .args(["serve", "--services", "identity"]),
    )
    .await;
    assert_clean_failure(
        &output,
        &[
            "database.url",
            &user_of(&owner),
            "owner of the tables (audit_events)",
        ],
    );

    // A services' role that could also act as the system workers.
    let both = postgres_role_url(
        &database_url,
        "sbt_both",
        "IN ROLE switchboard_app, switchboard_system",
    )
    .await;
    let output = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_DATABASE__URL", &both)
            .args(["serve", "--services", "identity"]),
    )
    .await;
    assert_clean_failure(
        &output,
        &[
            "database.url",
            &user_of(&both),
            "a member of switchboard_system",
            "database.system_url",
        ],
    );
    let _ = admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_allow_privileged_role_starts_and_warns_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = migrated_postgres(dir.path()).await;
    let mut serve = switchboard(dir.path());
    serve
        .env("SWITCHBOARD_DATABASE__URL", &database_url)
        .env("SWITCHBOARD_DATABASE__ALLOW_PRIVILEGED_ROLE", "true")
        .args(["serve", "--services", "identity,events"]);
    let running = start(serve).await;
    assert!(
        running.banner.contains("WARNING   database.url logs in as")
            && running.banner.contains("a superuser"),
        "{}",
        running.banner
    );
    assert!(running.terminate().await.success());
}

/// The first hour of a new user, as the README and the demo banner tell
/// it: `dev --demo`, an agent signs in and goes available, a simulated
/// call to the demo number presses 1 at the menu, the agent sees the offer
/// and accepts it. A second start finds the demo and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_demo_offers_a_simulated_call_to_a_demo_agent() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let login = serde_json::json!({
        "tenant": "switchboard-demo",
        "email": "agent1@demo.switchboard.test",
        "password": "switchboard-demo-7421",
    });
    for expected in [
        "(created; routing created)",
        "(already there; routing already there)",
    ] {
        let mut command = switchboard(dir.path());
        command.args(["dev", "--demo"]);
        let running = start(command).await;
        assert!(running.banner.contains(expected), "{}", running.banner);
        let grpc = running
            .banner
            .lines()
            .find_map(|line| line.trim().strip_prefix("gRPC"))
            .and_then(|rest| rest.split_whitespace().next())
            .expect("banner names the gRPC address")
            .to_owned();
        let simulate =
            format!("switchboard contacts simulate --grpc {grpc} --to +12125550100 --digits 1");
        assert!(
            running.banner.contains(&simulate),
            "the banner says what to run: {}",
            running.banner
        );

        let response = client
            .post(format!("{}/v1/auth/login", running.http))
            .json(&login)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "the demo agent logs in");
        let tokens: serde_json::Value = response.json().await.unwrap();
        let token = tokens["access_token"].as_str().unwrap().to_owned();
        let tenant: serde_json::Value = client
            .get(format!("{}/v1/tenant", running.http))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            tenant["seats_used"], 4,
            "a supervisor and three agents: {tenant}"
        );

        // The demo agent goes available at once: its profile exists.
        let available = client
            .put(format!("{}/v1/agents/me/presence", running.http))
            .bearer_auth(&token)
            .json(&serde_json::json!({"presence": "available"}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            available.status(),
            200,
            "{}",
            available.text().await.unwrap()
        );

        // A call, as the banner says: the menu, 1 → Billing → the agent.
        let output = run_to_end(
            switchboard(dir.path())
                .args(["contacts", "simulate", "--grpc", &grpc])
                .args(["--to", "+12125550100", "--digits", "1"]),
        )
        .await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let contact = stdout
            .lines()
            .find_map(|line| line.strip_prefix("contact "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("the contact id is printed: {stdout}"))
            .to_owned();
        assert!(stdout.contains("Press 1 for billing"), "{stdout}");
        assert!(stdout.contains("offered to an agent"), "{stdout}");
        let billing = running
            .banner
            .lines()
            .find_map(|line| line.trim().strip_prefix("press 1 → queue Billing ("))
            .and_then(|rest| rest.strip_suffix(')'))
            .expect("the banner names the Billing queue");
        assert!(stdout.contains(&format!("in queue {billing}")), "{stdout}");

        let me: serde_json::Value = client
            .get(format!("{}/v1/agents/me", running.http))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(me["offers"], serde_json::json!([contact]), "{me}");
        let accepted = client
            .post(format!(
                "{}/v1/agents/me/offers/{contact}/accept",
                running.http
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 200);
        let me: serde_json::Value = accepted.json().await.unwrap();
        assert_eq!(me["contacts"], serde_json::json!([contact]), "{me}");
        assert!(running.terminate().await.success());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_set_plan_is_how_an_operator_changes_a_plan() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut command = switchboard(dir.path());
    command.args(["dev", "--demo"]);
    let running = start(command).await;
    assert!(running.terminate().await.success());
    let set_plan = |tenant: &str, plan: &str| {
        let mut command = switchboard(dir.path());
        command.args(["tenants", "set-plan", tenant, plan]);
        command
    };

    let out = run_to_end(&mut set_plan("switchboard-demo", "starter")).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("switchboard-demo") && stdout.contains("is on plan starter"),
        "{stdout}"
    );
    // The demo's users hold more seats than the trial's 3.
    let out = run_to_end(&mut set_plan("switchboard-demo", "trial")).await;
    assert_clean_failure(&out, &["switchboard-demo", "seats are in use"]);
    let out = run_to_end(&mut set_plan("no-such-tenant", "pro")).await;
    assert_clean_failure(&out, &["no-such-tenant", "tenant not found"]);
    let out = run_to_end(&mut set_plan("switchboard-demo", "platinum")).await;
    assert_clean_failure(&out, &["unknown plan"]);
}

#[tokio::test]
async fn simulating_a_call_to_a_number_nobody_holds_says_so_in_one_line() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut command = switchboard(dir.path());
    command.arg("dev");
    let running = start(command).await;
    let grpc = running
        .banner
        .lines()
        .find_map(|line| line.trim().strip_prefix("gRPC"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    let output = run_to_end(switchboard(dir.path()).args([
        "contacts",
        "simulate",
        "--grpc",
        &grpc,
        "--to",
        "+12125550177",
    ]))
    .await;
    assert_clean_failure(&output, &["+12125550177", "SIP 404"]);
    assert!(running.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_delivers_identity_events_to_a_signed_webhook() {
    use base64::Engine;
    use hmac::Mac;
    use serde_json::{Value, json};

    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (hook_url, received) = webhook_receiver().await;
    let mut command = switchboard(dir.path());
    command
        .arg("dev")
        .env("SWITCHBOARD_WEBHOOKS__DISPATCH_INTERVAL", "100ms");
    let running = start(command).await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: Option<&str>, body: Value| {
        let mut request = client
            .request(method, format!("{}{path}", running.http))
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, body)
        }
    };

    let (status, signup) = call(
        reqwest::Method::POST,
        "/v1/signup",
        None,
        json!({"company": "Hooked", "email": "owner@hooked.example", "password": "a long passphrase here", "plan": "trial"}),
    )
    .await;
    assert_eq!(status, 201, "{signup}");
    let token = signup["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let tenant_id = signup["tenant"]["id"].as_str().unwrap().to_owned();
    let (status, _) = call(
        reqwest::Method::POST,
        "/v1/auth/verify-email",
        None,
        json!({"token": signup["email_verification_token"]}),
    )
    .await;
    assert_eq!(status, 204);
    let (status, endpoint) = call(
        reqwest::Method::POST,
        "/v1/webhooks",
        Some(&token),
        json!({"url": hook_url, "event_types": ["user.created"]}),
    )
    .await;
    assert_eq!(status, 201, "{endpoint}");
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let (status, user) = call(
        reqwest::Method::POST,
        "/v1/users",
        Some(&token),
        json!({"email": "agent@hooked.example", "roles": ["agent"], "password": "another long passphrase"}),
    )
    .await;
    assert_eq!(status, 201, "{user}");

    // identity → outbox → relay → in-process bus → webhooks consumer →
    // dispatcher → the receiver, signed.
    let delivered = switchboard_test_utils::eventually(Duration::from_secs(20), || {
        let received = received.clone();
        async move { !received.lock().unwrap().is_empty() }
    })
    .await;
    assert!(delivered, "no webhook delivery arrived");
    let request = received.lock().unwrap()[0].clone();
    let event: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(event["type"], "user.created");
    assert_eq!(event["tenant_id"], tenant_id.as_str());
    assert_eq!(event["data"]["user"]["email"], "agent@hooked.example");
    let header = |name: &str| request.headers[name].to_str().unwrap().to_owned();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.{}",
            header("webhook-id"),
            header("webhook-timestamp"),
            request.body
        )
        .as_bytes(),
    );
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert_eq!(header("webhook-signature"), expected);
    assert_eq!(
        header("webhook-key-id"),
        endpoint["key_id"].as_str().unwrap()
    );
    // Only the subscribed type: the owner's own user.created came before
    // the endpoint existed, seat.count_changed is not subscribed.
    assert_eq!(received.lock().unwrap().len(), 1);

    assert!(running.terminate().await.success());
}

#[tokio::test]
async fn events_replay_queues_events_for_a_known_consumer_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_to_end(switchboard(dir.path()).args(["migrate", "up"])).await;
    assert!(out.status.success());

    let out = run_to_end(switchboard(dir.path()).args([
        "events",
        "replay",
        "--consumer",
        "analytcs",
        "--since",
        "1h",
    ]))
    .await;
    assert_clean_failure(&out, &["unknown consumer `analytcs`", "webhooks"]);

    let out = run_to_end(switchboard(dir.path()).args([
        "events",
        "replay",
        "--consumer",
        "webhooks",
        "--since",
        "last week",
    ]))
    .await;
    assert_clean_failure(&out, &["--since", "RFC 3339"]);

    let out = run_to_end(switchboard(dir.path()).args([
        "events",
        "replay",
        "--consumer",
        "webhooks",
        "--since",
        "2h",
    ]))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("0 event(s) since") && stdout.contains("`webhooks`"),
        "{stdout}"
    );
}
