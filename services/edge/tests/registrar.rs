//! The registrar on both caches (in memory and Redis): digest challenges
//! and their checks, bindings of several devices with expiry, refresh and
//! removal, the RFC 3261 §10.3 refusals, and tenants that never reach
//! each other's accounts.

use std::sync::Arc;
use std::time::Duration;

use switchboard_edge::registrar::{Registrar, RegistrarOptions, SipAccount, SipDirectory};
use switchboard_edge::sip::OutgoingResponse;
use switchboard_edge::sip::digest::{Algorithm, Nonces};
use switchboard_platform::Cache;
use switchboard_platform::cache::{MemoryCache, RedisCache};
use switchboard_sip::{Limits, Transport, parse};
use switchboard_tenancy::{TenantId, UserId};
use switchboard_test_utils::{redis_url, unique_name};

const ACME: &str = "acme.sip.example.com";
const GLOBEX: &str = "globex.sip.example.com";

/// Two tenants, each with an account `alice` (different users and
/// passwords), and `bob` at Acme only.
struct Directory {
    acme: TenantId,
    globex: TenantId,
    acme_alice: UserId,
    acme_bob: UserId,
    globex_alice: UserId,
}

fn account(user: UserId, username: &str, realm: &str, password: &str) -> SipAccount {
    SipAccount {
        user,
        ha1_sha256: Algorithm::Sha256.ha1(username, realm, password),
        ha1_md5: Algorithm::Md5.ha1(username, realm, password),
    }
}

#[async_trait::async_trait]
impl SipDirectory for Directory {
    async fn tenant_of_domain(&self, domain: &str) -> anyhow::Result<Option<TenantId>> {
        Ok(match domain {
            ACME => Some(self.acme),
            GLOBEX => Some(self.globex),
            _ => None,
        })
    }

    async fn account(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> anyhow::Result<Option<SipAccount>> {
        Ok(match (tenant, username) {
            (t, "alice") if t == self.acme => {
                Some(account(self.acme_alice, "alice", ACME, "acme-secret"))
            }
            (t, "bob") if t == self.acme => Some(account(self.acme_bob, "bob", ACME, "bob-secret")),
            (t, "alice") if t == self.globex => {
                Some(account(self.globex_alice, "alice", GLOBEX, "globex-secret"))
            }
            _ => None,
        })
    }
}

struct Setup {
    registrar: Registrar,
    directory: Arc<Directory>,
}

fn setup(cache: Arc<dyn Cache>, options: RegistrarOptions) -> Setup {
    let directory = Arc::new(Directory {
        acme: TenantId::new(),
        globex: TenantId::new(),
        acme_alice: UserId::new(),
        acme_bob: UserId::new(),
        globex_alice: UserId::new(),
    });
    let registrar = Registrar::new(
        directory.clone(),
        cache,
        Nonces::new(b"test key", Duration::from_secs(300)),
        options,
    );
    Setup {
        registrar,
        directory,
    }
}

/// A phone: builds REGISTERs, answers challenges like a real one.
struct Phone {
    username: &'static str,
    domain: &'static str,
    password: &'static str,
    call_id: String,
    cseq: u32,
    algorithm: Algorithm,
}

impl Phone {
    fn new(username: &'static str, domain: &'static str, password: &'static str) -> Self {
        Self {
            username,
            domain,
            password,
            call_id: unique_name("call"),
            cseq: 0,
            algorithm: Algorithm::Sha256,
        }
    }

    /// A REGISTER with `extra` headers (Contact, Expires, Authorization).
    fn request(&mut self, to_user: &str, extra: &str) -> String {
        self.cseq += 1;
        format!(
            "REGISTER sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-{cseq}-{call}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag=phone\r\n\
             To: <sip:{to_user}@{domain}>\r\n\
             Call-ID: {call}\r\n\
             CSeq: {cseq} REGISTER\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n",
            domain = self.domain,
            user = self.username,
            cseq = self.cseq,
            call = self.call_id,
        )
    }

    /// The Authorization answering `challenge` (its nonce) with nonce
    /// count `nc`, signed with `password`.
    fn authorization(&self, challenge: &OutgoingResponse, nc: u32, password: &str) -> String {
        let wanted = format!("algorithm={}", self.algorithm.name());
        let header = challenge
            .headers
            .iter()
            .find(|(name, value)| name == "WWW-Authenticate" && value.contains(&wanted))
            .map(|(_, value)| value.clone())
            .expect("a challenge for our algorithm");
        let nonce = header
            .split("nonce=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let uri = format!("sip:{}", self.domain);
        let nc = format!("{nc:08x}");
        let ha1 = self.algorithm.ha1(self.username, self.domain, password);
        let ha2 = self.algorithm.hash(&format!("REGISTER:{uri}"));
        let response = self
            .algorithm
            .hash(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
        format!(
            "Authorization: Digest username=\"{}\", realm=\"{}\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", algorithm={}, cnonce=\"c0ffee\", qop=auth, nc={nc}\r\n",
            self.username,
            self.domain,
            self.algorithm.name()
        )
    }
}

async fn send(registrar: &Registrar, text: &str) -> OutgoingResponse {
    let (message, _) = parse(text.as_bytes(), Transport::Datagram, &Limits::default())
        .unwrap()
        .unwrap();
    registrar.register(&message, "udp:192.0.2.10:5060").await
}

/// Challenge, then answer with `extra`: the second response.
async fn register(setup: &Setup, phone: &mut Phone, extra: &str) -> OutgoingResponse {
    let challenge = send(&setup.registrar, &phone.request(phone.username, extra)).await;
    assert_eq!(challenge.code, 401, "{challenge:?}");
    let authorization = phone.authorization(&challenge, 1, phone.password);
    send(
        &setup.registrar,
        &phone.request(phone.username, &format!("{extra}{authorization}")),
    )
    .await
}

/// The Contacts of a 200, with `;expires=N` checked against what was
/// granted: N counts down, so up to two seconds less is the same binding.
fn contacts(response: &OutgoingResponse) -> Vec<String> {
    let mut contacts: Vec<String> = response
        .headers
        .iter()
        .filter(|(name, _)| name == "Contact")
        .map(|(_, value)| value.clone())
        .collect();
    contacts.sort();
    contacts
}

fn assert_bound(response: &OutgoingResponse, expected: &[(&str, u64)]) {
    let contacts = contacts(response);
    assert_eq!(contacts.len(), expected.len(), "{contacts:?}");
    for (contact, (uri, granted)) in contacts.iter().zip(expected) {
        let (given_uri, expires) = contact
            .rsplit_once(";expires=")
            .expect("an expires parameter");
        assert_eq!(given_uri, format!("<{uri}>"), "{contacts:?}");
        let expires: u64 = expires.parse().unwrap();
        assert!(
            expires <= *granted && expires + 2 >= *granted,
            "{contact}: granted {granted}"
        );
    }
}

fn header<'r>(response: &'r OutgoingResponse, name: &str) -> Option<&'r str> {
    response
        .headers
        .iter()
        .find(|(header, _)| header == name)
        .map(|(_, value)| value.as_str())
}

async fn a_phone_registers_with_either_algorithm_and_is_found(cache: Arc<dyn Cache>) {
    let setup = setup(cache, RegistrarOptions::default());
    let mut phone = Phone::new("alice", ACME, "acme-secret");
    let challenge = send(&setup.registrar, &phone.request("alice", "")).await;
    assert_eq!(challenge.code, 401);
    let offered: Vec<&str> = challenge
        .headers
        .iter()
        .filter(|(name, _)| name == "WWW-Authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(offered.len(), 2);
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"));
    assert!(offered[0].contains(&format!("realm=\"{ACME}\"")));

    let ok = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.10:5060>\r\nExpires: 600\r\n",
    )
    .await;
    assert_eq!(ok.code, 200, "{ok:?}");
    assert_bound(&ok, &[("sip:alice@192.0.2.10:5060", 600)]);
    assert!(header(&ok, "Date").is_some_and(|date| date.ends_with(" GMT")));

    let mut old_phone = Phone::new("alice", ACME, "acme-secret");
    old_phone.algorithm = Algorithm::Md5;
    let ok = register(
        &setup,
        &mut old_phone,
        "Contact: <sip:alice@192.0.2.11:5062;transport=tcp>;expires=120\r\n",
    )
    .await;
    assert_eq!(ok.code, 200, "{ok:?}");
    assert_bound(
        &ok,
        &[
            ("sip:alice@192.0.2.10:5060", 600),
            ("sip:alice@192.0.2.11:5062;transport=tcp", 120),
        ],
    );
    let bound = setup
        .registrar
        .bindings()
        .of(
            setup.directory.acme,
            setup.directory.acme_alice,
            std::time::SystemTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(bound.len(), 2);
    assert!(
        bound
            .iter()
            .all(|binding| binding.source == "udp:192.0.2.10:5060")
    );
}

async fn only_the_offered_algorithms_are_accepted(cache: Arc<dyn Cache>) {
    let setup = setup(
        cache,
        RegistrarOptions {
            algorithms: vec![Algorithm::Md5],
            ..RegistrarOptions::default()
        },
    );
    let mut phone = Phone::new("alice", ACME, "acme-secret");
    phone.algorithm = Algorithm::Md5;
    let challenge = send(&setup.registrar, &phone.request("alice", "")).await;
    let offered: Vec<&str> = challenge
        .headers
        .iter()
        .filter(|(name, _)| name == "WWW-Authenticate")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(offered.len(), 1);
    assert!(offered[0].contains("algorithm=MD5"));
    let md5 = phone.authorization(&challenge, 1, "acme-secret");
    let ok = send(&setup.registrar, &phone.request("alice", &md5)).await;
    assert_eq!(ok.code, 200);
    // SHA-256 credentials for the same nonce: not offered, so refused.
    phone.algorithm = Algorithm::Sha256;
    let renamed = challenge_with_algorithm(&challenge, "MD5", "SHA-256");
    let sha = phone.authorization(&renamed, 2, "acme-secret");
    let refused = send(&setup.registrar, &phone.request("alice", &sha)).await;
    assert_eq!(refused.code, 401);
}

/// `challenge` with its `algorithm=from` values renamed, as if offered.
fn challenge_with_algorithm(
    challenge: &OutgoingResponse,
    from: &str,
    to: &str,
) -> OutgoingResponse {
    let mut renamed = challenge.clone();
    for (_, value) in &mut renamed.headers {
        *value = value.replace(&format!("algorithm={from}"), &format!("algorithm={to}"));
    }
    renamed
}

async fn wrong_forged_and_replayed_credentials_are_challenged_again(cache: Arc<dyn Cache>) {
    let setup = setup(cache, RegistrarOptions::default());
    let contact = "Contact: <sip:alice@192.0.2.10>\r\n";
    let mut phone = Phone::new("alice", ACME, "acme-secret");
    let challenge = send(&setup.registrar, &phone.request("alice", contact)).await;

    let wrong = phone.authorization(&challenge, 1, "guess");
    let answer = send(
        &setup.registrar,
        &phone.request("alice", &format!("{contact}{wrong}")),
    )
    .await;
    assert_eq!(answer.code, 401);

    let right = phone.authorization(&challenge, 2, "acme-secret");
    let answer = send(
        &setup.registrar,
        &phone.request("alice", &format!("{contact}{right}")),
    )
    .await;
    assert_eq!(answer.code, 200);
    // The very same nonce count again: a replay.
    let answer = send(
        &setup.registrar,
        &phone.request("alice", &format!("{contact}{right}")),
    )
    .await;
    assert_eq!(answer.code, 401, "replayed");
    // The next count of the same nonce is fine (qop=auth).
    let next = phone.authorization(&challenge, 3, "acme-secret");
    let answer = send(
        &setup.registrar,
        &phone.request("alice", &format!("{contact}{next}")),
    )
    .await;
    assert_eq!(answer.code, 200);

    // Someone else's nonce: a registrar with another key issued it.
    let other = Registrar::new(
        setup.directory.clone(),
        Arc::new(MemoryCache::new()),
        Nonces::new(b"another key", Duration::from_secs(300)),
        RegistrarOptions::default(),
    );
    let foreign = send(&other, &phone.request("alice", contact)).await;
    let forged = phone.authorization(&foreign, 1, "acme-secret");
    let answer = send(
        &setup.registrar,
        &phone.request("alice", &format!("{contact}{forged}")),
    )
    .await;
    assert_eq!(answer.code, 401);

    let garbled = send(
        &setup.registrar,
        &phone.request(
            "alice",
            &format!("{contact}Authorization: Digest username=\"alice\r\n"),
        ),
    )
    .await;
    assert_eq!(garbled.code, 400);
}

async fn a_tenants_domain_never_reaches_another_tenants_accounts(cache: Arc<dyn Cache>) {
    let setup = setup(cache, RegistrarOptions::default());
    // Globex's alice, with Globex's password, at Acme's domain.
    let mut intruder = Phone::new("alice", ACME, "globex-secret");
    let challenge = send(
        &setup.registrar,
        &intruder.request("alice", "Contact: <sip:x@192.0.2.66>\r\n"),
    )
    .await;
    let authorization = intruder.authorization(&challenge, 1, "globex-secret");
    let answer = send(
        &setup.registrar,
        &intruder.request(
            "alice",
            &format!("Contact: <sip:x@192.0.2.66>\r\n{authorization}"),
        ),
    )
    .await;
    assert_eq!(answer.code, 401);
    // Acme's bob may not bind Acme's alice.
    let mut bob = Phone::new("bob", ACME, "bob-secret");
    let challenge = send(&setup.registrar, &bob.request("alice", "")).await;
    let authorization = bob.authorization(&challenge, 1, "bob-secret");
    let answer = send(
        &setup.registrar,
        &bob.request(
            "alice",
            &format!("Contact: <sip:bob@192.0.2.20>\r\n{authorization}"),
        ),
    )
    .await;
    assert_eq!(answer.code, 403);
    // Unknown domain.
    let mut lost = Phone::new("alice", "nobody.sip.example.com", "x");
    assert_eq!(
        send(&setup.registrar, &lost.request("alice", ""))
            .await
            .code,
        404
    );

    let now = std::time::SystemTime::now();
    let bindings = setup.registrar.bindings();
    let d = &setup.directory;
    assert!(
        bindings
            .of(d.acme, d.acme_alice, now)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        bindings
            .of(d.globex, d.globex_alice, now)
            .await
            .unwrap()
            .is_empty()
    );
    // Globex's alice registers at her own domain; Acme's alice has nothing.
    let mut globex_alice = Phone::new("alice", GLOBEX, "globex-secret");
    let ok = register(
        &setup,
        &mut globex_alice,
        "Contact: <sip:alice@192.0.2.30>\r\n",
    )
    .await;
    assert_eq!(ok.code, 200);
    assert_eq!(
        bindings
            .of(d.globex, d.globex_alice, now)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        bindings
            .of(d.acme, d.acme_alice, now)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn expiry_is_bounded_refreshed_and_removed(cache: Arc<dyn Cache>) {
    let setup = setup(
        cache,
        RegistrarOptions {
            max_devices: 2,
            ..RegistrarOptions::default()
        },
    );
    let mut phone = Phone::new("alice", ACME, "acme-secret");
    let too_brief = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.10>\r\nExpires: 30\r\n",
    )
    .await;
    assert_eq!(too_brief.code, 423);
    assert_eq!(header(&too_brief, "Min-Expires"), Some("60"));

    let long = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.10>\r\nExpires: 86400\r\n",
    )
    .await;
    assert_bound(&long, &[("sip:alice@192.0.2.10", 3600)]);
    let refreshed = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.10>;expires=300\r\n",
    )
    .await;
    assert_bound(&refreshed, &[("sip:alice@192.0.2.10", 300)]);

    let second = register(&setup, &mut phone, "Contact: <sip:alice@192.0.2.11>\r\n").await;
    assert_eq!(contacts(&second).len(), 2);
    let third = register(&setup, &mut phone, "Contact: <sip:alice@192.0.2.12>\r\n").await;
    assert_eq!(third.code, 403, "at most two devices");

    let removed = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.11>;expires=0\r\n",
    )
    .await;
    assert_bound(&removed, &[("sip:alice@192.0.2.10", 300)]);

    // A query (no Contact) changes nothing and lists the bindings.
    let query = register(&setup, &mut phone, "").await;
    assert_bound(&query, &[("sip:alice@192.0.2.10", 300)]);

    let star_without_zero = register(&setup, &mut phone, "Contact: *\r\n").await;
    assert_eq!(star_without_zero.code, 400);
    let all_gone = register(&setup, &mut phone, "Contact: *\r\nExpires: 0\r\n").await;
    assert_eq!(all_gone.code, 200);
    assert!(contacts(&all_gone).is_empty());
}

async fn an_older_register_of_the_same_call_id_changes_nothing(cache: Arc<dyn Cache>) {
    let setup = setup(cache, RegistrarOptions::default());
    let mut phone = Phone::new("alice", ACME, "acme-secret");
    let ok = register(
        &setup,
        &mut phone,
        "Contact: <sip:alice@192.0.2.10>\r\nExpires: 600\r\n",
    )
    .await;
    assert_eq!(ok.code, 200);
    // Replay an earlier CSeq with a new challenge (a delayed duplicate).
    phone.cseq = 0;
    let challenge = send(&setup.registrar, &phone.request("alice", "")).await;
    let authorization = phone.authorization(&challenge, 1, "acme-secret");
    let late = send(
        &setup.registrar,
        &phone.request(
            "alice",
            &format!("Contact: <sip:alice@192.0.2.10>;expires=0\r\n{authorization}"),
        ),
    )
    .await;
    assert_eq!(late.code, 500, "{late:?}");
    let d = &setup.directory;
    let bound = setup
        .registrar
        .bindings()
        .of(d.acme, d.acme_alice, std::time::SystemTime::now())
        .await
        .unwrap();
    assert_eq!(bound.len(), 1, "still bound");
}

macro_rules! on_both_caches {
    ($($case:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(Arc::new(MemoryCache::new())).await;
                }
            )*
        }
        mod redis {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() {
                    let cache = RedisCache::connect(&redis_url(), &unique_name("edge"))
                        .await
                        .expect("Redis is reachable (./scripts/test starts it)");
                    super::$case(Arc::new(cache)).await;
                }
            )*
        }
    };
}

on_both_caches!(
    a_phone_registers_with_either_algorithm_and_is_found,
    only_the_offered_algorithms_are_accepted,
    wrong_forged_and_replayed_credentials_are_challenged_again,
    a_tenants_domain_never_reaches_another_tenants_accounts,
    expiry_is_bounded_refreshed_and_removed,
    an_older_register_of_the_same_call_id_changes_nothing,
);
