//! The split deployment: the real `switchboard` binary as separate OS
//! processes — gateway; identity; routing (two replicas); events; webhooks;
//! edge — on PostgreSQL, Redis and RabbitMQ, each knowing its peers only by
//! address (`[peers]`) and trusting them only by the internal key. The
//! whole contact-center flow goes through the gateway's public API (the
//! test plays the edge's side of a call over `CallRouting`, as a carrier
//! call would arrive: the edge does not route calls yet). The edge process
//! answers SIP over UDP: OPTIONS, 404 to a REGISTER for a domain of no
//! tenant, and a digest challenge (401) for the new tenant's domain once
//! identity's `tenant.created` has crossed RabbitMQ to the edge's own
//! consumer. Then the routing replica owning the tenant is killed and the
//! flow goes on, through the other. The same flow, and the same SIP
//! checks, pass in `dev` (one process, in-process clients).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard_auth::{ServiceKeys, SigningKey};
use switchboard_platform::Cache;
use switchboard_platform::cache::RedisCache;
use switchboard_proto::routing::v1 as pb;
use switchboard_rpc::{CallContext, Credentials};
use switchboard_tenancy::{Tenant, TenantId};
use switchboard_test_utils::{
    amqp_url, eventually, fresh_postgres_database, init_tracing, postgres_app_role_url,
    postgres_system_role_url, redis_url, unique_name,
};
use tokio::process::Command;
use tokio_tungstenite::tungstenite::Message as Frame;

use common::{Received, Running, run_to_end, start, switchboard, webhook_receiver};

const PASSWORD: &str = "correct horse battery staple";
const NUMBER: &str = "+12125550142";
const INTERNAL_KID: &str = "split-internal-1";
/// The parent of tenants' SIP domains (`[edge] sip_domain`).
const SIP_DOMAIN: &str = "sip.split.example";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The config every process of a deployment shares: the internal key that
/// signs service credentials, the access-token key, webhooks allowed to
/// reach the test's local receiver, and the parent of tenants' SIP domains.
fn write_config(dir: &Path) -> (PathBuf, Arc<ServiceKeys>) {
    let secret = "split-deployment-internal-secret-0123456789abcdef";
    let internal = dir.join("internal.key");
    std::fs::write(&internal, secret).unwrap();
    let jwt = dir.join("jwt.key");
    std::fs::write(&jwt, "split-deployment-access-token-secret-0123456789").unwrap();
    let config = dir.join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[internal]
signing_keys = [{{ kid = "{INTERNAL_KID}", secret_file = "{}" }}]

[auth]
signing_keys = [{{ kid = "split-jwt-1", secret_file = "{}" }}]

[gateway]
expose_verification_token = true
stream_recheck_every = "1s"

[webhooks]
allow_private_targets = true
allow_http = true
dispatch_interval = "100ms"

[events]
relay_poll_interval = "50ms"

[edge]
sip_domain = "{SIP_DOMAIN}"

[routing]
# A dead owner's tenants pass to another instance within 2 s.
lease_ttl = "2s"
upkeep_every = "100ms"
"#,
            internal.display(),
            jwt.display()
        ),
    )
    .unwrap();
    let keys = ServiceKeys::new(vec![
        SigningKey::new(INTERNAL_KID, secret.as_bytes().to_vec()).unwrap(),
    ])
    .unwrap();
    (config, Arc::new(keys))
}

/// The routing instance holding `tenant`'s lease: its token is
/// `<instance name>/<random>` (`switchboard_routing::host`).
async fn lease_holder(prefix: &str, tenant: TenantId) -> String {
    let cache = RedisCache::connect(&redis_url(), prefix).await.unwrap();
    let token = cache
        .get(&format!("routing:{{{tenant}}}:lease"))
        .await
        .unwrap()
        .expect("the tenant has an owner");
    let token = String::from_utf8(token.to_vec()).unwrap();
    token
        .rsplit_once('/')
        .map(|(holder, _)| holder.to_owned())
        .unwrap_or(token)
}

/// A free loopback port for a gRPC listener its peers must know in
/// advance.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A free loopback UDP port, for the edge's SIP listener.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The SIP over UDP address a node's banner names (`  SIP       udp
/// 127.0.0.1:PORT, tcp …`).
/// Whether a message's session description sends media to the edge's
/// relay (its default range, 20000–29999) rather than to the other side's
/// own port (40000 and up in these tests).
fn relayed(message: &str) -> bool {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next()?.parse::<u16>().ok())
        .is_some_and(|port| (20000..=29999).contains(&port))
}

fn sip_udp_of(banner: &str) -> SocketAddr {
    banner
        .lines()
        .find_map(|line| line.trim().strip_prefix("SIP"))
        .and_then(|rest| rest.trim().strip_prefix("udp "))
        .and_then(|rest| rest.split([',', ' ']).next())
        .and_then(|address| address.parse().ok())
        .unwrap_or_else(|| panic!("the banner names no SIP over UDP address: {banner}"))
}

/// A SIP response, as the phone reads it.
struct SipResponse {
    code: u16,
    headers: Vec<(String, String)>,
    text: String,
}

impl SipResponse {
    /// `None` for anything but a response.
    fn parse(text: &str) -> Option<Self> {
        let (head, _) = text.split_once("\r\n\r\n")?;
        let mut lines = head.split("\r\n");
        let code = lines
            .next()?
            .strip_prefix("SIP/2.0 ")?
            .get(..3)?
            .parse()
            .ok()?;
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Some(Self {
            code,
            headers,
            text: text.to_owned(),
        })
    }

    /// The values of the header called any of `names` (its full and compact
    /// forms, lowercase).
    fn values<'a>(&'a self, names: &'a [&str]) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(|(name, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
            .map(|(_, value)| value.as_str())
    }
}

/// The `header` line (`Authorization`, `Proxy-Authorization`) answering
/// the edge's SHA-256 challenge `offer` for a `method` request to `uri` as
/// the account (user, domain, password), computed by hand (RFC 7616
/// §3.4.1) rather than with the edge's own code.
fn answer_challenge(
    offer: &str,
    header: &str,
    (user, domain, password): (&str, &str, &str),
    method: &str,
    uri: &str,
) -> String {
    use switchboard_edge::sip::digest::Algorithm;
    assert!(offer.contains("algorithm=SHA-256"), "{offer}");
    let nonce = offer
        .split("nonce=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let ha1 = Algorithm::Sha256.ha1(user, domain, password);
    let ha2 = Algorithm::Sha256.hash(&format!("{method}:{uri}"));
    let response = Algorithm::Sha256.hash(&format!("{ha1}:{nonce}:00000001:split:auth:{ha2}"));
    format!(
        "{header}: Digest username=\"{user}\", realm=\"{domain}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", response=\"{response}\", algorithm=SHA-256, cnonce=\"split\", \
         qop=auth, nc=00000001\r\n"
    )
}

/// A phone talking to the edge over real UDP, in hand-written requests:
/// each a new transaction (its own branch and Call-ID).
struct Phone {
    socket: tokio::net::UdpSocket,
    local: SocketAddr,
    edge: SocketAddr,
}

impl Phone {
    async fn new(edge: SocketAddr) -> Self {
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let local = socket.local_addr().unwrap();
        Self {
            socket,
            local,
            edge,
        }
    }

    /// Sends `method` to `uri`, addressed `to`, with `extra` headers (each
    /// ending in CRLF); the final response. A datagram may be lost: the
    /// request is sent again (the same transaction, as RFC 3261 §17.1.2.2
    /// retransmits) until one comes.
    async fn request(&self, method: &str, uri: &str, to: &str, extra: &str) -> SipResponse {
        let local = self.local;
        let id = unique_name("split");
        let call_id = format!("{id}@127.0.0.1");
        let request = format!(
            "{method} {uri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK-{id}\r\n\
             Max-Forwards: 70\r\n\
             From: <{to}>;tag={id}\r\n\
             To: <{to}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             {extra}\
             Content-Length: 0\r\n\r\n"
        );
        self.transaction(&request).await
    }

    async fn options(&self) -> SipResponse {
        let uri = format!("sip:{}", self.edge);
        self.request("OPTIONS", &uri, &uri, "Accept: application/sdp\r\n")
            .await
    }

    /// A first REGISTER for `domain`, with no credentials.
    async fn register(&self, domain: &str) -> SipResponse {
        self.register_as(domain, "phone", "").await
    }

    /// A REGISTER of account `user` at `domain`, with `extra` headers.
    async fn register_as(&self, domain: &str, user: &str, extra: &str) -> SipResponse {
        let contact = format!(
            "Contact: <sip:{user}@{}>\r\nExpires: 600\r\n{extra}",
            self.local
        );
        self.request(
            "REGISTER",
            &format!("sip:{domain}"),
            &format!("sip:{user}@{domain}"),
            &contact,
        )
        .await
    }

    /// Registers with `credentials` (as the gateway issued them) the way a
    /// phone does: a challenge, then the answer to its first (SHA-256)
    /// offer. The final response.
    async fn register_with(&self, credentials: &Value) -> SipResponse {
        let user = credentials["username"].as_str().unwrap();
        let password = credentials["password"].as_str().unwrap();
        let domain = credentials["domain"].as_str().unwrap();
        let challenge = self.register_as(domain, user, "").await;
        assert_eq!(challenge.code, 401, "{}", challenge.text);
        let offer = challenge.values(&["www-authenticate"]).next().unwrap();
        let uri = format!("sip:{domain}");
        let authorization = answer_challenge(
            offer,
            "Authorization",
            (user, domain, password),
            "REGISTER",
            &uri,
        );
        self.register_as(domain, user, &authorization).await
    }
}

impl Phone {
    /// Dials `number` as the account `credentials` names (as the gateway
    /// issued them): the INVITE is challenged (407), sent again with
    /// SHA-256 digest credentials, answered; the phone ACKs, waits a
    /// moment, and hangs up. The answer's text.
    async fn dial(&self, credentials: &Value, number: &str) -> String {
        let user = credentials["username"].as_str().unwrap();
        let password = credentials["password"].as_str().unwrap();
        let domain = credentials["domain"].as_str().unwrap();
        let local = self.local;
        let id = unique_name("dial");
        let uri = format!("sip:{number}@{domain}");
        let sdp = "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                   t=0 0\r\nm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        let head = |branch: &str, seq: u32, method: &str, to_tag: &str| {
            format!(
                "{method} {uri} SIP/2.0\r\n\
                 Via: SIP/2.0/UDP {local};branch=z9hG4bK-{id}-{branch}\r\n\
                 Max-Forwards: 70\r\n\
                 From: <sip:{user}@{domain}>;tag={id}\r\n\
                 To: <{uri}>{to_tag}\r\n\
                 Call-ID: {id}\r\n\
                 CSeq: {seq} {method}\r\n\
                 Contact: <sip:{user}@{local}>\r\n"
            )
        };
        let invite = |branch: &str, seq: u32, extra: &str| {
            format!(
                "{}{extra}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
                head(branch, seq, "INVITE", ""),
                sdp.len()
            )
        };
        let challenge = self.transaction(&invite("1", 1, "")).await;
        assert_eq!(challenge.code, 407, "{}", challenge.text);
        let to_tag = |response: &SipResponse| {
            let to = response.values(&["to", "t"]).next().unwrap_or_default();
            to.find(";tag=")
                .map(|at| to[at..].to_owned())
                .unwrap_or_default()
        };
        self.send(&format!(
            "{}Content-Length: 0\r\n\r\n",
            head("1", 1, "ACK", &to_tag(&challenge))
        ))
        .await;
        let offer = challenge.values(&["proxy-authenticate"]).next().unwrap();
        let authorization = answer_challenge(
            offer,
            "Proxy-Authorization",
            (user, domain, password),
            "INVITE",
            &uri,
        );
        let answer = self.transaction(&invite("2", 2, &authorization)).await;
        assert_eq!(answer.code, 200, "{}", answer.text);
        let tag = to_tag(&answer);
        self.send(&format!(
            "{}Content-Length: 0\r\n\r\n",
            head("3", 2, "ACK", &tag)
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let bye = self
            .transaction(&format!(
                "{}Content-Length: 0\r\n\r\n",
                head("4", 3, "BYE", &tag)
            ))
            .await;
        assert_eq!(bye.code, 200, "{}", bye.text);
        answer.text
    }

    async fn send(&self, message: &str) {
        self.socket
            .send_to(message.as_bytes(), self.edge)
            .await
            .unwrap();
    }

    /// Sends `request` (again every 500 ms, as RFC 3261 §17.1.1.2
    /// retransmits over UDP) until its final response comes.
    async fn transaction(&self, request: &str) -> SipResponse {
        let call_id = request
            .lines()
            .find_map(|line| line.strip_prefix("Call-ID: "))
            .unwrap()
            .to_owned();
        let seq = request
            .lines()
            .find_map(|line| line.strip_prefix("CSeq: "))
            .unwrap()
            .to_owned();
        let mut buffer = vec![0u8; 65_535];
        for _ in 0..20 {
            self.send(request).await;
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            while let Ok(received) =
                tokio::time::timeout_at(deadline, self.socket.recv_from(&mut buffer)).await
            {
                let (length, _) = received.unwrap();
                let text = String::from_utf8_lossy(&buffer[..length]);
                if let Some(response) = SipResponse::parse(&text)
                    && response.code >= 200
                    && response.values(&["call-id", "i"]).any(|id| id == call_id)
                    && response.values(&["cseq"]).any(|value| value == seq)
                {
                    return response;
                }
            }
        }
        panic!(
            "no final answer from the edge at {} to:\n{request}",
            self.edge
        )
    }
}

impl Phone {
    /// Answers the carrier's call the edge rings this phone with, until
    /// the caller hangs up.
    async fn answer_until_the_caller_hangs_up(&self) {
        let invite = self.receive("INVITE").await;
        assert!(
            relayed(&invite),
            "the carrier's offer, anchored at the edge's media relay: {invite}"
        );
        assert!(
            invite.contains("+15550001111"),
            "the caller's number: {invite}"
        );
        self.reply(&invite, "180 Ringing", "").await;
        let answer = "v=0\r\no=agent 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                      t=0 0\r\nm=audio 41000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        self.reply(&invite, "200 OK", answer).await;
        self.receive("ACK").await;
        let bye = self.receive("BYE").await;
        self.reply(&bye, "200 OK", "").await;
    }

    /// The next request of `method` the edge sends this phone.
    async fn receive(&self, method: &str) -> String {
        let mut buffer = vec![0u8; 65_535];
        loop {
            let (length, _) =
                tokio::time::timeout(Duration::from_secs(20), self.socket.recv_from(&mut buffer))
                    .await
                    .unwrap_or_else(|_| panic!("the phone got no {method}"))
                    .unwrap();
            let text = String::from_utf8_lossy(&buffer[..length]).into_owned();
            if text.starts_with(&format!("{method} ")) {
                return text;
            }
        }
    }

    /// Answers `request` with `status` (`200 OK`), the phone's To tag and
    /// an optional session description.
    async fn reply(&self, request: &str, status: &str, sdp: &str) {
        let (head, _) = request.split_once("\r\n\r\n").unwrap();
        let mut response = format!("SIP/2.0 {status}\r\n");
        for line in head.split("\r\n").skip(1) {
            let name = line.split(':').next().unwrap_or_default().trim();
            match name.to_ascii_lowercase().as_str() {
                "via" | "v" | "from" | "f" | "call-id" | "i" | "cseq" => {
                    response.push_str(line);
                    response.push_str("\r\n");
                }
                "to" | "t" if !line.contains(";tag=") => {
                    response.push_str(&format!("{line};tag=phone\r\n"));
                }
                "to" | "t" => {
                    response.push_str(line);
                    response.push_str("\r\n");
                }
                _ => {}
            }
        }
        response.push_str(&format!("Contact: <sip:agent@{}>\r\n", self.local));
        if !sdp.is_empty() {
            response.push_str("Content-Type: application/sdp\r\n");
        }
        response.push_str(&format!("Content-Length: {}\r\n\r\n{sdp}", sdp.len()));
        self.socket
            .send_to(response.as_bytes(), self.edge)
            .await
            .unwrap();
    }
}

/// A carrier's call reaches the agent's registered phone through routing:
/// the tenant's trunk admits the carrier (SIPp, from loopback), the number
/// picks the tenant and its queue, the ACD offers the call to the ready
/// agent, the edge rings the agent's phone, which answers; the caller
/// hangs up, and the agent goes to after-call work.
async fn a_carrier_call_rings_the_agents_phone(api: &Api, edge: SocketAddr, center: &Center) {
    let (status, trunk) = api
        .call(
            Method::POST,
            "/v1/trunks",
            Some(&center.owner_token),
            Some(json!({"name": "Loopback carrier",
                        "inbound": {"allowed_sources": ["127.0.0.1/32"]}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{trunk}");
    let phone = Phone::new(edge).await;
    let issued = sip_account(api, center).await;
    let registered = phone.register_with(&issued).await;
    assert_eq!(registered.code, 200, "{}", registered.text);
    set_presence(api, center, json!({"presence": "available"})).await;

    let carrier = Carrier::call(edge);
    phone.answer_until_the_caller_hangs_up().await;
    carrier.succeeds().await;
    after_call_work_ends(api, center).await;
}

/// The agent dials out from the phone: the tenant's outbound rule (the
/// agent's group, its number as caller id) sends the call through the
/// tenant's outbound trunk (a carrier on loopback), routing hears of it
/// over gRPC and keeps the agent busy until the agent hangs up.
async fn an_agent_dials_out_through_the_tenants_trunk(
    api: &Api,
    edge: SocketAddr,
    center: &Center,
) {
    let owner = &center.owner_token;
    let group = api
        .create("/v1/agent-groups", owner, json!({"name": "Dialers"}))
        .await;
    let (status, profile) = api
        .call(
            Method::PUT,
            &format!("/v1/agent-profiles/{}", center.agent_id),
            Some(owner),
            Some(json!({"capacity": {"voice": 1}, "agent_group_ids": [group]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{profile}");
    let (status, numbers) = api
        .call(Method::GET, "/v1/numbers", Some(owner), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{numbers}");
    let number_id = numbers["data"][0]["id"].as_str().unwrap().to_owned();
    let carrier = Phone::new(edge).await;
    api.create(
        "/v1/trunks",
        owner,
        json!({"name": "Outbound carrier",
               "outbound": {"host": "127.0.0.1", "port": carrier.local.port(), "transport": "udp"}}),
    )
    .await;
    api.create(
        "/v1/outbound-rules",
        owner,
        json!({"name": "Dial out", "agent_group_id": group, "trunks": ["Outbound carrier"],
               "strategy": "sequential", "caller_id": {"type": "group", "number_id": number_id}}),
    )
    .await;

    let phone = Phone::new(edge).await;
    let issued = sip_account(api, center).await;
    next_calls_second().await;
    let dialing = phone.dial(&issued, "+15550100");
    let answering = async {
        let invite = carrier.receive("INVITE").await;
        assert!(
            invite.starts_with("INVITE sip:+15550100@127.0.0.1:"),
            "{invite}"
        );
        assert!(
            invite.contains(&format!("P-Asserted-Identity: <sip:{NUMBER}@")),
            "{invite}"
        );
        assert!(
            relayed(&invite),
            "the phone's offer, anchored at the edge's media relay: {invite}"
        );
        assert!(
            !invite.contains(&issued["domain"].as_str().unwrap().to_owned()),
            "{invite}"
        );
        let answer = "v=0\r\no=carrier 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n\
                      t=0 0\r\nm=audio 42000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        carrier.reply(&invite, "200 OK", answer).await;
        carrier.receive("ACK").await;
        // The agent is busy with the call while it lasts.
        let busy = eventually(Duration::from_secs(10), || async {
            agent_state(api, center).await == "busy"
        })
        .await;
        assert!(busy, "the agent is not busy with the outbound call");
        let bye = carrier.receive("BYE").await;
        carrier.reply(&bye, "200 OK", "").await;
    };
    let (answered, ()) = tokio::join!(dialing, answering);
    assert!(relayed(&answered), "{answered}");
    let free = eventually(Duration::from_secs(10), || async {
        agent_state(api, center).await != "busy"
    })
    .await;
    assert!(free, "the agent stayed busy after the outbound call");
}

/// Redis loses every key of the deployment while a caller waits in the
/// queue (a restart without persistence, a failover to an empty replica):
/// routing reloads the tenant empty and the edge re-asserts the waiting
/// call; the agent's phone registers again and the agent's desktop sets
/// the presence again, as they do on their own; the call is answered.
async fn a_waiting_call_survives_the_cache_losing_everything(
    api: &Api,
    edge: SocketAddr,
    center: &Center,
    prefix: &str,
) {
    set_presence(api, center, json!({"presence": "offline"})).await;
    let phone = Phone::new(edge).await;
    let issued = sip_account(api, center).await;
    let registered = phone.register_with(&issued).await;
    assert_eq!(registered.code, 200, "{}", registered.text);
    next_calls_second().await;
    let carrier = Carrier::call(edge);
    let queued = eventually(Duration::from_secs(20), || async {
        let (_, stats) = api
            .call(
                Method::GET,
                "/v1/queues/stats",
                Some(&center.owner_token),
                None,
            )
            .await;
        stats.to_string().contains("\"waiting\":1")
    })
    .await;
    assert!(queued, "the call did not wait in the queue");

    lose_the_cache(prefix).await;
    let registered = phone.register_with(&issued).await;
    assert_eq!(registered.code, 200, "{}", registered.text);
    // Until routing has reloaded the tenant, a desktop may hear 503.
    let available = eventually(Duration::from_secs(20), || async {
        let (status, _) = api
            .call(
                Method::PUT,
                "/v1/agents/me/presence",
                Some(&center.agent_token),
                Some(json!({"presence": "available"})),
            )
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(available, "the agent could not be available again");
    phone.answer_until_the_caller_hangs_up().await;
    carrier.succeeds().await;
    after_call_work_ends(api, center).await;
}

/// Waits out the second of the call placed last: the trial plan takes one
/// new call a second (the edge refuses a second one with 503), and the
/// steps place their calls back to back.
async fn next_calls_second() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

/// Deletes every key of the deployment's cache.
async fn lose_the_cache(prefix: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut connection = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut connection)
        .await
        .unwrap();
    assert!(
        !keys.is_empty(),
        "the deployment keeps state under {prefix}"
    );
    let () = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut connection)
        .await
        .unwrap();
}

/// A new SIP account of the center's agent.
async fn sip_account(api: &Api, center: &Center) -> Value {
    let (status, issued) = api
        .call(
            Method::POST,
            &format!("/v1/users/{}/sip-account", center.agent_id),
            Some(&center.agent_token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    issued
}

async fn set_presence(api: &Api, center: &Center, presence: Value) {
    let (status, answer) = api
        .call(
            Method::PUT,
            "/v1/agents/me/presence",
            Some(&center.agent_token),
            Some(presence),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

/// The agent's state (`available`, `busy`, `after_call_work`, …), as the
/// agent's desktop reads it.
async fn agent_state(api: &Api, center: &Center) -> Value {
    let (_, me) = api
        .call(
            Method::GET,
            "/v1/agents/me",
            Some(&center.agent_token),
            None,
        )
        .await;
    me["state"]["state"].clone()
}

/// The agent's call ended: after-call work, then ended by the agent.
async fn after_call_work_ends(api: &Api, center: &Center) {
    let token = &center.agent_token;
    let wrap_up = eventually(Duration::from_secs(20), || async {
        agent_state(api, center).await == "after_call_work"
    })
    .await;
    assert!(wrap_up, "the agent did not enter after-call work");
    let (status, ended) = api
        .call(
            Method::POST,
            "/v1/agents/me/wrap-up/end",
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ended}");
}

/// A carrier's call to [`NUMBER`] from SIPp: it waits up to a minute for
/// the answer, talks half a second and hangs up.
struct Carrier {
    child: tokio::process::Child,
    work: tempfile::TempDir,
}

impl Carrier {
    fn call(edge: SocketAddr) -> Self {
        let scenario =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/tests/sipp/carrier_call.xml");
        let work = tempfile::tempdir().unwrap();
        let child = Command::new("sipp")
            .current_dir(work.path())
            .args(["-sf", scenario.to_str().unwrap()])
            .args(["-s", NUMBER, "-d", "500", "-m", "1", "-l", "1"])
            .args(["-i", "127.0.0.1", "-p", &free_udp_port().to_string()])
            .args([
                "-timeout",
                "60s",
                "-timeout_error",
                "-nostdin",
                "-trace_err",
                "-trace_msg",
            ])
            .arg(edge.to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("SIPp (Debian sip-tester) is installed: ./scripts/test installs it");
        Self { child, work }
    }

    async fn succeeds(self) {
        let finished = tokio::time::timeout(Duration::from_secs(30), self.child.wait_with_output())
            .await
            .expect("the carrier's SIPp finishes")
            .unwrap();
        let errors: String = std::fs::read_dir(self.work.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().ends_with(".log"))
            .map(|entry| std::fs::read_to_string(entry.path()).unwrap_or_default())
            .collect();
        assert!(
            finished.status.success(),
            "the carrier's call failed: {errors}"
        );
    }
}

/// The agent gets a SIP account through the gateway (the edge's gRPC API
/// behind it), and their phone registers with it over UDP; once the owner
/// revokes it, the same password is refused.
async fn an_agents_phone_registers(api: &Api, phone: &Phone, center: &Center) {
    let path = format!("/v1/users/{}/sip-account", center.agent_id);
    let (status, issued) = api
        .call(Method::POST, &path, Some(&center.agent_token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{issued}");
    let registered = phone.register_with(&issued).await;
    assert_eq!(registered.code, 200, "{}", registered.text);
    assert!(
        registered
            .values(&["contact", "m"])
            .any(|contact| contact.contains(issued["username"].as_str().unwrap())),
        "{}",
        registered.text
    );
    let (status, _) = api
        .call(Method::DELETE, &path, Some(&center.owner_token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refused = phone.register_with(&issued).await;
    assert_eq!(refused.code, 401, "{}", refused.text);
}

/// A SIP domain of no tenant, under the deployment's [`SIP_DOMAIN`].
fn stranger_domain() -> String {
    format!("{}.{SIP_DOMAIN}", unique_name("nobody").replace('_', "-"))
}

/// The edge is up: OPTIONS gets 200 with an Allow naming REGISTER; and a
/// REGISTER for a domain no tenant has gets 404 (the registrar challenges
/// only its tenants' domains).
async fn the_edge_answers_and_knows_no_stranger(phone: &Phone) {
    let options = phone.options().await;
    assert_eq!(options.code, 200, "{}", options.text);
    let allowed: Vec<&str> = options
        .values(&["allow"])
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    assert!(allowed.contains(&"REGISTER"), "{}", options.text);
    let stranger = phone.register(&stranger_domain()).await;
    assert_eq!(stranger.code, 404, "{}", stranger.text);
}

/// Once the tenant `slug` reached the edge (identity's `tenant.created`,
/// through the edge's own consumer; 404 until then), a REGISTER for its
/// domain is challenged: 401 with a Digest WWW-Authenticate whose realm is
/// that domain. Other domains still get 404: the tenant's slug under
/// another parent, and a domain of no tenant.
async fn the_edge_challenges_the_tenants_domain(phone: &Phone, slug: &str) {
    let domain = format!("{slug}.{SIP_DOMAIN}");
    let challenged = eventually(Duration::from_secs(30), || async {
        let response = phone.register(&domain).await;
        match response.code {
            401 => true,
            404 => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                false
            }
            _ => panic!("REGISTER for {domain}: {}", response.text),
        }
    })
    .await;
    assert!(challenged, "the edge never learned the tenant {slug}");
    let response = phone.register(&domain).await;
    assert_eq!(response.code, 401, "{}", response.text);
    let challenges: Vec<&str> = response.values(&["www-authenticate"]).collect();
    assert!(!challenges.is_empty(), "{}", response.text);
    for challenge in challenges {
        assert!(challenge.starts_with("Digest "), "{}", response.text);
        assert!(
            challenge.contains(&format!("realm=\"{domain}\"")),
            "{}",
            response.text
        );
    }
    let elsewhere = phone
        .register(&format!("{slug}.sip.elsewhere.example"))
        .await;
    assert_eq!(elsewhere.code, 404, "{}", elsewhere.text);
    let stranger = phone.register(&stranger_domain()).await;
    assert_eq!(stranger.code, 404, "{}", stranger.text);
}

/// The edge's side of a call: `CallRouting` on a routing replica, signed
/// with the deployment's internal key (the edge process answers SIP but
/// does not route calls yet).
struct Edge {
    credentials: Credentials,
}

impl Edge {
    async fn client(
        &self,
        grpc: &str,
    ) -> pb::call_routing_client::CallRoutingClient<tonic::transport::Channel> {
        let channel = tonic::transport::Channel::from_shared(grpc.to_owned())
            .unwrap()
            .connect()
            .await
            .unwrap();
        pb::call_routing_client::CallRoutingClient::new(channel)
    }

    /// Dials the number; the call's tenant and id.
    async fn dial(&self, grpc: &str) -> (TenantId, String) {
        let mut client = self.client(grpc).await;
        let decision = client
            .new_call(
                self.credentials
                    .request(
                        pb::NewCallRequest {
                            number: NUMBER.into(),
                            caller: "+33612345678".into(),
                            trunk: "carrier-1".into(),
                            attributes_json: String::new(),
                            admitted_tenant_ids: Vec::new(),
                            over_limit_tenant_ids: Vec::new(),
                        },
                        &CallContext::system(),
                    )
                    .unwrap(),
            )
            .await
            .unwrap()
            .into_inner();
        let Some(pb::new_call_response::Decision::Accepted(accepted)) = decision.decision else {
            panic!("the call was not accepted: {decision:?}")
        };
        assert!(matches!(
            accepted.step.and_then(|step| step.action),
            Some(pb::step::Action::Queued(_))
        ));
        (accepted.tenant_id.parse().unwrap(), accepted.call_id)
    }

    async fn hang_up(&self, grpc: &str, tenant: TenantId, call: &str) {
        let mut client = self.client(grpc).await;
        client
            .call_ended(
                self.credentials
                    .request(
                        pb::CallRef {
                            call_id: call.to_owned(),
                        },
                        &CallContext::tenant(Tenant::whole(tenant)),
                    )
                    .unwrap(),
            )
            .await
            .unwrap();
    }
}

/// The public API of one gateway.
struct Api {
    http: String,
    client: reqwest::Client,
}

impl Api {
    fn new(http: &str) -> Self {
        Self {
            http: http.to_owned(),
            client: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.http));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// POSTs `body`, expecting 201; the new resource's id.
    async fn create(&self, path: &str, token: &str, body: Value) -> String {
        let (status, created) = self.call(Method::POST, path, Some(token), Some(body)).await;
        assert_eq!(status, StatusCode::CREATED, "POST {path}: {created}");
        created["id"].as_str().unwrap().to_owned()
    }

    async fn socket(&self, token: &str) -> Socket {
        let url = format!(
            "{}/v1/agents/me/stream?access_token={token}",
            self.http.replacen("http", "ws", 1)
        );
        tokio_tungstenite::connect_async(url).await.unwrap().0
    }
}

/// The next frame of `kind` on the agent's stream.
async fn frame_of(socket: &mut Socket, kind: &str) -> Value {
    let wait = async {
        while let Some(frame) = socket.next().await {
            match frame.unwrap() {
                Frame::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] == kind {
                        return value;
                    }
                }
                Frame::Ping(payload) => socket.send(Frame::Pong(payload)).await.unwrap(),
                Frame::Close(close) => panic!("stream closed waiting for {kind}: {close:?}"),
                _ => {}
            }
        }
        panic!("stream ended waiting for {kind}")
    };
    tokio::time::timeout(Duration::from_secs(30), wait)
        .await
        .unwrap_or_else(|_| panic!("no {kind} frame within 30 s"))
}

/// What the flow set up, to go on after a replica is gone.
struct Center {
    tenant: TenantId,
    agent_id: String,
    /// The owner's access token.
    owner_token: String,
    /// The tenant's slug, which names its SIP domain.
    slug: String,
    agent_token: String,
}

/// Signup, users, an API key, routing configuration, an agent going
/// ready, a webhook endpoint; then one contact offered on the agent's
/// stream, accepted and ended, and its events delivered to the webhook.
async fn set_up_and_take_one_contact(
    api: &Api,
    edge: &Edge,
    routing_grpc: &str,
    received: &Arc<Mutex<Vec<Received>>>,
    hook_url: &str,
) -> Center {
    let company = unique_name("Split");
    let (status, signup) = api
        .call(
            Method::POST,
            "/v1/signup",
            None,
            Some(json!({"company": company, "email": "owner@split.example",
                        "password": PASSWORD, "time_zone": "Europe/Paris"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{signup}");
    let owner = signup["tokens"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let slug = signup["tenant"]["slug"].as_str().unwrap().to_owned();
    let (status, _) = api
        .call(
            Method::POST,
            "/v1/auth/verify-email",
            None,
            Some(json!({"token": signup["email_verification_token"]})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);

    // A user, and an API key that reads users.
    let agent_id = api
        .create(
            "/v1/users",
            &owner,
            json!({"email": "agent@split.example", "roles": ["agent"], "password": PASSWORD}),
        )
        .await;
    let (status, key) = api
        .call(
            Method::POST,
            "/v1/api-keys",
            Some(&owner),
            Some(json!({"name": "reporting", "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let secret = key["secret"].as_str().unwrap();
    let (status, users) = api.call(Method::GET, "/v1/users", Some(secret), None).await;
    assert_eq!(status, StatusCode::OK, "{users}");
    assert_eq!(users["data"].as_array().unwrap().len(), 2, "{users}");

    // A webhook for the contact's events.
    let (status, endpoint) = api
        .call(
            Method::POST,
            "/v1/webhooks",
            Some(&owner),
            Some(json!({"url": hook_url, "event_types": ["contact.offered", "contact.ended"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{endpoint}");

    // Routing: a queue, the agent's profile, a rule and the number.
    let queue = api
        .create(
            "/v1/queues",
            &owner,
            json!({"name": "Line", "channel": "voice", "ring_timeout_seconds": 20,
                   "wrap_up_seconds": 30}),
        )
        .await;
    let (status, profile) = api
        .call(
            Method::PUT,
            &format!("/v1/agent-profiles/{agent_id}"),
            Some(&owner),
            Some(json!({"capacity": {"voice": 1}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{profile}");
    let rule = api
        .create(
            "/v1/inbound-rules",
            &owner,
            json!({"name": "Line", "open": {"type": "queue", "queue_id": queue},
                   "closed": {"type": "hangup"}}),
        )
        .await;
    api.create(
        "/v1/numbers",
        &owner,
        json!({"number": NUMBER, "inbound_rule_id": rule}),
    )
    .await;

    // The agent signs in on the desktop and goes ready.
    let (status, login) = api
        .call(
            Method::POST,
            "/v1/auth/login",
            None,
            Some(json!({"tenant": slug, "email": "agent@split.example", "password": PASSWORD})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let agent_token = login["access_token"].as_str().unwrap().to_owned();
    let tenant: TenantId = signup["tenant"]["id"].as_str().unwrap().parse().unwrap();
    let center = Center {
        tenant,
        agent_id: agent_id.clone(),
        owner_token: owner.clone(),
        slug,
        agent_token,
    };
    take_one_contact(api, edge, routing_grpc, &center).await;

    // Its events reached the webhook: routing → outbox → relay → RabbitMQ
    // → webhooks → the receiver.
    let delivered = eventually(Duration::from_secs(30), || {
        let received = received.clone();
        async move {
            let types: Vec<String> = received
                .lock()
                .unwrap()
                .iter()
                .filter_map(|request| serde_json::from_str::<Value>(&request.body).ok())
                .map(|event| event["type"].as_str().unwrap_or_default().to_owned())
                .collect();
            types.contains(&"contact.offered".to_owned())
                && types.contains(&"contact.ended".to_owned())
        }
    })
    .await;
    assert!(delivered, "the contact's events were not delivered");
    center
}

/// The agent goes ready; a call is offered on the desktop stream,
/// accepted, ended, and its wrap-up closed.
async fn take_one_contact(api: &Api, edge: &Edge, routing_grpc: &str, center: &Center) {
    let token = &center.agent_token;
    let mut desk = api.socket(token).await;
    let (status, presence) = api
        .call(
            Method::PUT,
            "/v1/agents/me/presence",
            Some(token),
            Some(json!({"presence": "available"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{presence}");
    let (tenant, call) = edge.dial(routing_grpc).await;
    assert_eq!(tenant, center.tenant);
    let offer = frame_of(&mut desk, "offer").await;
    assert_eq!(offer["offer"]["contact_id"], call.as_str());
    let (status, accepted) = api
        .call(
            Method::POST,
            &format!("/v1/agents/me/offers/{call}/accept"),
            Some(token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    edge.hang_up(routing_grpc, tenant, &call).await;
    after_call_work_ends(api, center).await;
    let _ = desk.close(None).await;
}

/// A process of the split deployment.
struct Process {
    name: &'static str,
    running: Running,
    grpc: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_deployment_runs_the_whole_flow_and_survives_losing_a_routing_replica() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = write_config(dir.path());
    let database_url = fresh_postgres_database().await;
    let migrated = run_to_end(
        switchboard(dir.path())
            .env("SWITCHBOARD_CONFIG", &config)
            .env("SWITCHBOARD_DATABASE__URL", &database_url)
            .args(["migrate", "up"]),
    )
    .await;
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let service_url = postgres_app_role_url(&database_url).await;
    let system_url = postgres_system_role_url(&database_url).await;
    let prefix = unique_name("split");
    let (hook_url, received) = webhook_receiver().await;

    let grpc = |port: u16| format!("http://127.0.0.1:{port}");
    let ports: Vec<(&'static str, u16)> = [
        "identity",
        "routing-1",
        "routing-2",
        "events",
        "webhooks",
        "edge",
        "gateway",
    ]
    .into_iter()
    .map(|name| (name, free_port()))
    .collect();
    let port_of = |name: &str| ports.iter().find(|(n, _)| *n == name).unwrap().1;
    let edge_sip = SocketAddr::from(([127, 0, 0, 1], free_udp_port()));
    let routing_peers = format!(
        "{},{}",
        grpc(port_of("routing-1")),
        grpc(port_of("routing-2"))
    );
    let command = |name: &'static str, services: &str| {
        let mut command: Command = switchboard(dir.path());
        command
            .env("SWITCHBOARD_CONFIG", &config)
            .env(
                "SWITCHBOARD_DATA_DIR",
                dir.path().join(format!("data-{name}")),
            )
            .env(
                "SWITCHBOARD_SERVER__GRPC_ADDR",
                format!("127.0.0.1:{}", port_of(name)),
            )
            .env("SWITCHBOARD_DATABASE__URL", &service_url)
            .env("SWITCHBOARD_DATABASE__SYSTEM_URL", &system_url)
            .env("SWITCHBOARD_CACHE__BACKEND", "redis")
            .env("SWITCHBOARD_CACHE__REDIS__URL", redis_url())
            .env("SWITCHBOARD_CACHE__REDIS__KEY_PREFIX", &prefix)
            .env("SWITCHBOARD_ROUTING__INSTANCE_NAME", name)
            .env("SWITCHBOARD_BUS__BACKEND", "rabbitmq")
            .env("SWITCHBOARD_BUS__RABBITMQ__URL", amqp_url())
            .env("SWITCHBOARD_BUS__RABBITMQ__EXCHANGE", &prefix)
            .env("SWITCHBOARD_PEERS__IDENTITY", grpc(port_of("identity")))
            .env("SWITCHBOARD_PEERS__ROUTING", &routing_peers)
            .env("SWITCHBOARD_PEERS__WEBHOOKS", grpc(port_of("webhooks")))
            .env("SWITCHBOARD_PEERS__EDGE", grpc(port_of("edge")))
            .args(["serve", "--services", services]);
        command
    };
    let mut processes = Vec::new();
    for (name, services) in [
        ("identity", "identity"),
        ("routing-1", "routing"),
        ("routing-2", "routing"),
        ("events", "events"),
        ("webhooks", "webhooks"),
        ("edge", "edge"),
        ("gateway", "gateway"),
    ] {
        let mut command = command(name, services);
        if name == "edge" {
            command.env("SWITCHBOARD_EDGE__SIP_UDP", edge_sip.to_string());
        }
        let running = start(command).await;
        processes.push(Process {
            name,
            running,
            grpc: grpc(port_of(name)),
        });
    }
    let gateway = processes.iter().find(|p| p.name == "gateway").unwrap();
    // The gateway hosts only itself; everything else is a peer by address.
    assert!(
        gateway.running.banner.contains("services  gateway\n"),
        "{}",
        gateway.running.banner
    );
    assert!(
        gateway
            .running
            .banner
            .contains("peers     edge=http://127.0.0.1:")
            && gateway.running.banner.contains(" identity="),
        "{}",
        gateway.running.banner
    );
    // The edge hosts only itself, and serves SIP over UDP where it was told.
    let edge_process = processes.iter().find(|p| p.name == "edge").unwrap();
    assert!(
        edge_process.running.banner.contains("services  edge\n"),
        "{}",
        edge_process.running.banner
    );
    assert_eq!(sip_udp_of(&edge_process.running.banner), edge_sip);
    let phone = Phone::new(edge_sip).await;
    the_edge_answers_and_knows_no_stranger(&phone).await;
    let api = Api::new(&gateway.running.http);
    let edge = Edge {
        credentials: Credentials::new(keys.clone(), "edge"),
    };
    let first_routing = processes[1].grpc.clone();
    let center =
        set_up_and_take_one_contact(&api, &edge, &first_routing, &received, &hook_url).await;
    // The tenant signed up through the gateway, in identity's process;
    // its `tenant.created` crossed RabbitMQ to the edge's process.
    the_edge_challenges_the_tenants_domain(&phone, &center.slug).await;
    an_agents_phone_registers(&api, &phone, &center).await;

    // The routing replica that owns the tenant dies without warning; the
    // other takes the tenant over (once the lease runs out) and the flow
    // goes on. The owner is the holder named in the tenant's lease.
    let owner = lease_holder(&prefix, center.tenant).await;
    let owner_index = processes
        .iter()
        .position(|process| process.name == owner)
        .unwrap_or_else(|| panic!("the lease names {owner:?}, no routing replica"));
    let mut dead = processes.remove(owner_index);
    let survivor = if dead.name == "routing-1" {
        "routing-2"
    } else {
        "routing-1"
    };
    let second_routing = processes
        .iter()
        .find(|process| process.name == survivor)
        .unwrap()
        .grpc
        .clone();
    dead.running.child.start_kill().unwrap();
    let _ = dead.running.child.wait().await;
    // Until the dead replica's lease on the tenant runs out, its requests
    // answer 503 (a desktop retries); then another instance owns it.
    let recovered = eventually(Duration::from_secs(30), || async {
        let (status, _) = api
            .call(
                Method::GET,
                "/v1/agents/me",
                Some(&center.agent_token),
                None,
            )
            .await;
        status == StatusCode::OK
    })
    .await;
    assert!(recovered, "routing did not recover from losing a replica");
    assert_eq!(
        lease_holder(&prefix, center.tenant).await,
        survivor,
        "the survivor owns the tenant"
    );
    take_one_contact(&api, &edge, &second_routing, &center).await;
    // A carrier's call crosses the edge's process, through the surviving
    // replica, to the agent's phone.
    a_carrier_call_rings_the_agents_phone(&api, edge_sip, &center).await;
    a_waiting_call_survives_the_cache_losing_everything(&api, edge_sip, &center, &prefix).await;
    an_agent_dials_out_through_the_tenants_trunk(&api, edge_sip, &center).await;

    // Without the internal key, the gRPC APIs refuse: a stranger's
    // credential cannot route a call into the tenant.
    let stranger = Edge {
        credentials: Credentials::new(switchboard_test_utils::service_keys(INTERNAL_KID), "edge"),
    };
    let mut client = stranger.client(&second_routing).await;
    let refused = client
        .new_call(
            stranger
                .credentials
                .request(
                    pb::NewCallRequest {
                        number: NUMBER.into(),
                        ..Default::default()
                    },
                    &CallContext::system(),
                )
                .unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");

    for process in processes {
        let name = process.name;
        let status = process.running.terminate().await;
        assert!(status.success(), "{name} stopped with {status}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_flow_runs_in_dev_as_one_process() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (config, keys) = write_config(dir.path());
    let (hook_url, received) = webhook_receiver().await;
    let mut command = switchboard(dir.path());
    command.env("SWITCHBOARD_CONFIG", &config).arg("dev");
    let running = start(command).await;
    let grpc = running
        .banner
        .lines()
        .find_map(|line| line.trim().strip_prefix("gRPC"))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the banner names the gRPC address")
        .to_owned();
    let phone = Phone::new(sip_udp_of(&running.banner)).await;
    the_edge_answers_and_knows_no_stranger(&phone).await;
    let api = Api::new(&running.http);
    let edge = Edge {
        credentials: Credentials::new(keys, "edge"),
    };
    let center = set_up_and_take_one_contact(&api, &edge, &grpc, &received, &hook_url).await;
    the_edge_challenges_the_tenants_domain(&phone, &center.slug).await;
    an_agents_phone_registers(&api, &phone, &center).await;
    take_one_contact(&api, &edge, &grpc, &center).await;
    a_carrier_call_rings_the_agents_phone(&api, phone.edge, &center).await;
    an_agent_dials_out_through_the_tenants_trunk(&api, phone.edge, &center).await;
    assert!(running.terminate().await.success());
}
