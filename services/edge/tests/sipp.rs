//! Real phones' view, with SIPp (Debian `sip-tester`, installed by
//! `./scripts/test`) as the phone: it registers to its tenant's domain
//! with digest authentication computed by SIPp itself, then sends OPTIONS.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use switchboard_edge::registrar::{Registrar, RegistrarOptions, SipAccount, SipDirectory};
use switchboard_edge::signaling::Signaling;
use switchboard_edge::sip::digest::{Algorithm, Nonces};
use switchboard_edge::sip::transport::{TransportOptions, Transports};
use switchboard_edge::sip::{Endpoint, EndpointOptions};
use switchboard_platform::cache::MemoryCache;
use switchboard_tenancy::{TenantId, UserId};

const DOMAIN: &str = "acme.sip.example.com";

struct OneAccount {
    tenant: TenantId,
    user: UserId,
}

#[async_trait::async_trait]
impl SipDirectory for OneAccount {
    async fn tenant_of_domain(&self, domain: &str) -> anyhow::Result<Option<TenantId>> {
        Ok((domain == DOMAIN).then_some(self.tenant))
    }

    async fn account(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> anyhow::Result<Option<SipAccount>> {
        Ok(
            (tenant == self.tenant && username == "alice").then(|| SipAccount {
                user: self.user,
                ha1_sha256: Algorithm::Sha256.ha1("alice", DOMAIN, "acme-secret"),
                ha1_md5: Algorithm::Md5.ha1("alice", DOMAIN, "acme-secret"),
            }),
        )
    }
}

/// A UDP port free right now, for SIPp's own socket.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sipp_registers_with_digest_and_gets_options() {
    let directory = Arc::new(OneAccount {
        tenant: TenantId::new(),
        user: UserId::new(),
    });
    let registrar = Arc::new(Registrar::new(
        directory.clone(),
        Arc::new(MemoryCache::new()),
        Nonces::new(b"sipp test key", Duration::from_secs(300)),
        // SIPp 3.6 answers only the first challenge, and only under MD5.
        RegistrarOptions {
            algorithms: vec![Algorithm::Md5, Algorithm::Sha256],
            ..RegistrarOptions::default()
        },
    ));
    let endpoint = Endpoint::new(
        EndpointOptions::default(),
        Arc::new(Signaling::new(registrar.clone(), None)),
    );
    let transports = Transports::bind(
        endpoint,
        &TransportOptions {
            udp: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
            tcp: None,
            ..TransportOptions::default()
        },
    )
    .await
    .unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/register.xml");
    let work = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new("sipp")
        .current_dir(work.path())
        .args(["-sf", scenario.to_str().unwrap()])
        .args([
            "-m",
            "1",
            "-l",
            "1",
            "-s",
            "alice",
            "-au",
            "alice",
            "-ap",
            "acme-secret",
        ])
        .args(["-key", "domain", DOMAIN])
        // Sign the Request-URI (SIPp adds `sip:`), as phones do (SIPp signs its peer's
        // address unless told).
        .args(["-auth_uri", DOMAIN])
        .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
        .args([
            "-timeout",
            "15s",
            "-timeout_error",
            "-nostdin",
            "-trace_err",
        ])
        .arg(transports.udp().unwrap().to_string())
        .output()
        .await
        .expect("SIPp (Debian sip-tester) is installed: ./scripts/test installs it");
    let errors = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|entry| entry.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
        .collect::<String>();
    assert!(
        output.status.success(),
        "SIPp failed ({}): {}\n{errors}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let bound = registrar
        .bindings()
        .of(directory.tenant, directory.user, SystemTime::now())
        .await
        .unwrap();
    assert_eq!(bound.len(), 1, "{bound:?}");
    assert!(
        bound[0].contact.starts_with("sip:alice@127.0.0.1:"),
        "{bound:?}"
    );
}
