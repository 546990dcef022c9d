// figment::Jail closures return figment::Error by design.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use figment::Jail;

use super::*;

#[test]
fn defaults_run_everything_embedded() {
    let config = Config::from_toml_str("").expect("empty config is valid");
    assert_eq!(config, Config::default());
    assert_eq!(config.cache.backend, CacheBackend::Memory);
    assert_eq!(config.bus.backend, BusBackend::Memory);
    assert_eq!(config.objects.backend, ObjectsBackend::Local);
    assert_eq!(
        config.database_url(),
        "sqlite://./data/switchboard.db?mode=rwc"
    );
    // The default AMQP URL keeps its password: defaults are not masked.
    assert_eq!(
        config.bus.rabbitmq.url.expose(),
        "amqp://guest:guest@127.0.0.1:5672/%2f"
    );
}

#[test]
fn example_config_loads_and_documents_every_key() {
    let text = include_str!("../../../switchboard.example.toml");
    let config = Config::from_toml_str(text).expect("example config is valid");
    assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));

    // Every key of the effective config (secrets and optional ones included)
    // appears in the example, commented out or not.
    let mut full = Config::default();
    full.server.public_url = Some("http://x".into());
    full.database.url = Some(SecretUrl::new("sqlite://x"));
    full.database.url_file = Some("x".into());
    full.database.migrate_url = Some(SecretUrl::new("sqlite://x"));
    full.database.migrate_url_file = Some("x".into());
    full.cache.redis.url_file = Some("x".into());
    full.bus.rabbitmq.url_file = Some("x".into());
    full.objects.local.dir = Some("x".into());
    full.objects.local.presign_secret = Some(Secret::new("x"));
    full.objects.local.presign_secret_file = Some("x".into());
    full.objects.s3.endpoint = Some("x".into());
    full.objects.s3.secret_access_key = Some(Secret::new("x"));
    full.objects.s3.secret_access_key_file = Some("x".into());
    full.telemetry.otlp_endpoint = Some("x".into());
    full.routing.instance_name = Some("x".into());
    let value = toml::Value::try_from(&full).expect("config serializes");
    let mut missing = Vec::new();
    collect_missing_keys(&value, "", text, &mut missing);
    assert!(
        missing.is_empty(),
        "keys missing from the example: {missing:?}"
    );
}

fn collect_missing_keys(value: &toml::Value, section: &str, text: &str, missing: &mut Vec<String>) {
    let Some(table) = value.as_table() else {
        return;
    };
    for (key, child) in table {
        let path = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        if child.is_table() {
            if !text.contains(&format!("[{path}]")) {
                missing.push(path.clone());
            }
            collect_missing_keys(child, &path, text, missing);
        } else if !text.lines().any(|line| {
            line.trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))
        }) {
            missing.push(path);
        }
    }
}

#[test]
fn unknown_key_is_named() {
    let error = Config::from_toml_str("[server]\nhtp_addr = \"127.0.0.1:1\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("`server.htp_addr`"), "{message}");
    assert!(
        message.contains("unknown key; expected one of `http_addr`, `grpc_addr`"),
        "the known keys, each quoted once: {message}"
    );
    assert!(!message.contains("``"), "{message}");
}

#[test]
fn bad_value_is_named() {
    let error = Config::from_toml_str("[database]\nmax_connections = \"many\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("database.max_connections"), "{message}");

    let error = Config::from_toml_str("[server]\nshutdown_grace = \"soon\"\n").unwrap_err();
    assert!(
        error.to_string().contains("server.shutdown_grace"),
        "{error}"
    );

    let error = Config::from_toml_str("[cache]\nbackend = \"memcached\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("cache.backend"), "{message}");
    assert!(
        message.contains("unknown value `memcached`; expected"),
        "{message}"
    );
    assert!(!message.contains("``"), "{message}");
}

#[test]
fn chosen_backend_requires_its_keys() {
    let error = Config::from_toml_str("[objects]\nbackend = \"s3\"\n").unwrap_err();
    assert!(error.to_string().contains("objects.s3.bucket"), "{error}");

    let error = Config::from_toml_str("[database]\nurl = \"mysql://x\"\n").unwrap_err();
    assert!(error.to_string().contains("database.url"), "{error}");

    let error =
        Config::from_toml_str("[cache]\nbackend = \"redis\"\n[cache.redis]\nurl = \"http://x\"\n")
            .unwrap_err();
    assert!(error.to_string().contains("cache.redis.url"), "{error}");
}

#[test]
fn layers_apply_in_order_file_then_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "switchboard.toml",
            "[server]\nhttp_addr = \"127.0.0.1:1111\"\ngrpc_addr = \"127.0.0.1:2222\"\n",
        )?;
        jail.set_env("SWITCHBOARD_SERVER__GRPC_ADDR", "127.0.0.1:3333");
        jail.set_env("SWITCHBOARD_CACHE__BACKEND", "redis");
        jail.set_env("SWITCHBOARD_CONFIG", "ignored-by-the-loader.toml");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.server.http_addr.port(), 1111);
        assert_eq!(config.server.grpc_addr.port(), 3333);
        assert_eq!(config.cache.backend, CacheBackend::Redis);
        Ok(())
    });
}

#[test]
fn unknown_environment_key_is_named() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_SERVER__NOPE", "1");
        let error = Config::load(None).unwrap_err().to_string();
        assert!(error.contains("nope"), "{error}");
        assert!(error.contains("`server.nope`"), "{error}");
        Ok(())
    });
}

#[test]
fn named_file_must_exist() {
    let error = Config::load(Some(Path::new("/nonexistent/switchboard.toml"))).unwrap_err();
    assert!(error.to_string().contains("/nonexistent/switchboard.toml"));
}

#[test]
fn secrets_come_from_files_and_are_masked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("s3-key");
    std::fs::write(&key_file, "very-secret-key\n").expect("write");
    let url_file = dir.path().join("db-url");
    std::fs::write(&url_file, "postgres://app:hunter2@db.internal:5432/sb\n").expect("write");
    let text = format!(
        "[database]\nurl_file = \"{}\"\n[objects]\nbackend = \"s3\"\n[objects.s3]\nbucket = \"b\"\naccess_key_id = \"AK\"\nsecret_access_key_file = \"{}\"\n",
        url_file.display(),
        key_file.display()
    );
    let config = Config::from_toml_str(&text).expect("valid");
    assert_eq!(
        config
            .objects
            .s3
            .secret_access_key
            .as_ref()
            .map(Secret::expose),
        Some("very-secret-key")
    );
    assert_eq!(
        config.database_url(),
        "postgres://app:hunter2@db.internal:5432/sb"
    );

    let printed = config.to_masked_toml();
    assert!(!printed.contains("very-secret-key"), "{printed}");
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(printed.contains("db.internal"), "{printed}");
    let debugged = format!("{config:?}");
    assert!(!debugged.contains("very-secret-key") && !debugged.contains("hunter2"));
}

#[test]
fn missing_secret_file_is_named() {
    let error =
        Config::from_toml_str("[database]\nurl_file = \"/nonexistent/db-url\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("database.url_file"), "{message}");
    assert!(message.contains("/nonexistent/db-url"), "{message}");
}

#[test]
fn embedded_switches_every_backend() {
    let text = "[database]\nurl = \"postgres://x@h/db\"\n[cache]\nbackend = \"redis\"\n[bus]\nbackend = \"rabbitmq\"\n";
    let config = Config::from_toml_str(text).expect("valid").embedded();
    assert!(config.database_url().starts_with("sqlite://"));
    assert_eq!(config.cache.backend, CacheBackend::Memory);
    assert_eq!(config.bus.backend, BusBackend::Memory);
}

#[test]
fn system_url_is_for_postgres_only() {
    let text = "[database]\nsystem_url = \"postgres://sys:pw@h/db\"\n";
    let error = Config::from_toml_str(text).expect_err("SQLite has no roles");
    let message = error.to_string();
    assert!(message.contains("database.system_url"), "{message}");
    let text = "[database]\nurl = \"postgres://app:pw@h/db\"\nsystem_url = \"postgres://sys:pw@h/db\"\nallow_privileged_role = true\n";
    let config = Config::from_toml_str(text).expect("valid");
    assert_eq!(
        config.system_database_url().as_deref(),
        Some("postgres://sys:pw@h/db")
    );
    assert!(config.database.allow_privileged_role);
    assert!(!config.to_masked_toml().contains(":pw@"));
}

#[test]
fn routing_defaults_are_the_runtime_defaults_and_values_parse() {
    let config = Config::from_toml_str("").expect("valid");
    assert_eq!(config.routing.lease_ttl, Duration::from_secs(10));
    assert_eq!(config.routing.upkeep_every, Duration::from_millis(200));
    assert_eq!(config.routing.forward_timeout, Duration::from_secs(2));
    assert_eq!(config.routing.journal_batch, 500);
    assert_eq!(config.routing.instance_name, None);

    let text = "[routing]\nlease_ttl = \"30s\"\nupkeep_every = \"1s\"\nforward_timeout = \"500ms\"\njournal_batch = 100\ninstance_name = \"routing-0\"\n";
    let routing = Config::from_toml_str(text).expect("valid").routing;
    assert_eq!(routing.lease_ttl, Duration::from_secs(30));
    assert_eq!(routing.upkeep_every, Duration::from_secs(1));
    assert_eq!(routing.forward_timeout, Duration::from_millis(500));
    assert_eq!(routing.journal_batch, 100);
    assert_eq!(routing.instance_name.as_deref(), Some("routing-0"));
}

#[test]
fn routing_environment_overrides_the_file() {
    Jail::expect_with(|jail| {
        jail.create_file("switchboard.toml", "[routing]\nlease_ttl = \"30s\"\n")?;
        jail.set_env("SWITCHBOARD_ROUTING__LEASE_TTL", "45s");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.routing.lease_ttl, Duration::from_secs(45));
        Ok(())
    });
}

/// The one error line of a `[routing]` section.
fn routing_error(section: &str) -> String {
    Config::from_toml_str(&format!("[routing]\n{section}\n"))
        .expect_err(section)
        .to_string()
}

#[test]
fn nonsense_routing_values_are_refused_naming_the_key_and_the_bound() {
    for (section, key, says) in [
        (
            "lease_ttl = \"0s\"",
            "routing.lease_ttl",
            "is 0s; it must be 1s to 10m",
        ),
        (
            "lease_ttl = \"500ms\"",
            "routing.lease_ttl",
            "it must be 1s to 10m",
        ),
        (
            "lease_ttl = \"1h\"",
            "routing.lease_ttl",
            "is 1h; it must be 1s to 10m",
        ),
        (
            "upkeep_every = \"0s\"",
            "routing.upkeep_every",
            "is 0s; it must be at least 10ms",
        ),
        (
            "upkeep_every = \"4s\"",
            "routing.upkeep_every",
            "is 4s, longer than a third of routing.lease_ttl (10s)",
        ),
        (
            "lease_ttl = \"3s\"\nupkeep_every = \"5s\"",
            "routing.upkeep_every",
            "longer than a third of routing.lease_ttl (3s)",
        ),
        (
            "forward_timeout = \"0s\"",
            "routing.forward_timeout",
            "must be above 0 and at most 20s",
        ),
        (
            "forward_timeout = \"1m\"",
            "routing.forward_timeout",
            "is 1m; it must be above 0",
        ),
        (
            "journal_batch = 0",
            "routing.journal_batch",
            "is 0; it must be 1 to 4000",
        ),
        (
            "journal_batch = 5000",
            "routing.journal_batch",
            "is 5000; it must be 1 to 4000",
        ),
        (
            "instance_name = \"  \"",
            "routing.instance_name",
            "must be 1 to 100 characters",
        ),
    ] {
        let message = routing_error(section);
        assert!(
            message.contains(&format!("`{key}`")),
            "{section}: {message}"
        );
        assert!(message.contains(says), "{section}: {message}");
    }
    // Types and unknown keys are figment's errors, naming the key too.
    assert!(routing_error("lease_ttl = \"soon\"").contains("routing.lease_ttl"));
    assert!(routing_error("journal_batch = -1").contains("routing.journal_batch"));
    assert!(routing_error("lease = \"10s\"").contains("`routing.lease`"));
}

#[test]
fn a_third_of_the_lease_is_the_longest_upkeep() {
    let text = "[routing]\nlease_ttl = \"3s\"\nupkeep_every = \"1s\"\n";
    assert!(Config::from_toml_str(text).is_ok());
    let text = "[routing]\nlease_ttl = \"3s\"\nupkeep_every = \"1001ms\"\n";
    assert!(Config::from_toml_str(text).is_err());
}

#[test]
fn internal_keys_and_peers_are_checked() {
    let error = Config::from_toml_str(
        "[internal]\nsigning_keys = [{ kid = \"\", secret_file = \"/run/secrets/k\" }]\n",
    )
    .unwrap_err();
    assert!(
        error.to_string().contains("internal.signing_keys[0].kid"),
        "{error}"
    );

    let error =
        Config::from_toml_str("[peers]\nrouting = \"http://r1:9090, r2:9090\"\n").unwrap_err();
    let message = error.to_string();
    assert!(message.contains("peers.routing"), "{message}");
    assert!(message.contains("http://"), "{message}");

    let config = Config::from_toml_str(
        "[peers]\nidentity = \"http://identity:9090\"\nrouting = \"http://r1:9090,http://r2:9090\"\n[internal]\ngrpc_reflection = true\n",
    )
    .unwrap();
    assert_eq!(
        config.peers.address("identity"),
        Some("http://identity:9090")
    );
    assert_eq!(config.peers.address("webhooks"), None);
    assert!(config.internal.grpc_reflection);
    assert!(
        !Config::default().internal.grpc_reflection,
        "reflection is off by default"
    );
}

/// The media relay's and the trunks' settings: checked, each refusal
/// naming its key; `media_relay = false` needs no media address.
#[test]
fn edge_media_and_trunk_settings_are_checked() {
    let edge_error = |section: &str| {
        Config::from_toml_str(&format!("[edge]\n{section}\n"))
            .expect_err(section)
            .to_string()
    };
    for (section, key) in [
        ("media_bind = \"0.0.0.0\"", "edge.media_public_address"),
        ("media_port_min = 80", "edge.media_port_min"),
        (
            "media_port_min = 30000\nmedia_port_max = 30001",
            "edge.media_port_min",
        ),
        ("media_timeout = \"1s\"", "edge.media_timeout"),
        (
            "trunk_response_timeout = \"1m\"",
            "edge.trunk_response_timeout",
        ),
        ("media_bind = \"nowhere\"", "edge.media_bind"),
    ] {
        let message = edge_error(section);
        assert!(message.contains(key), "{section}: {message}");
    }
    let open = Config::from_toml_str(
        "[edge]\nmedia_bind = \"0.0.0.0\"\nmedia_public_address = \"203.0.113.10\"\n",
    )
    .unwrap();
    assert_eq!(
        open.edge.media_public_address,
        Some("203.0.113.10".parse().unwrap())
    );
    let off =
        Config::from_toml_str("[edge]\nmedia_relay = false\nmedia_bind = \"0.0.0.0\"\n").unwrap();
    assert!(!off.edge.media_relay);
    let defaults = Config::from_toml_str("").unwrap();
    assert!(defaults.edge.media_relay);
    assert_eq!(defaults.edge.trunk_response_timeout, Duration::from_secs(5));
}
