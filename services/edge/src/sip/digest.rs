//! Digest access authentication of SIP requests (RFC 3261 §22.4, with
//! RFC 7616's algorithms as RFC 8760 brings them to SIP): SHA-256 offered
//! first and MD5 for the phones that know nothing else, `qop=auth` only,
//! nonces that carry their own time and an HMAC (so any replica checks
//! them without shared state) and expire, and each nonce count accepted
//! once (the replay guard, kept in the cache so every replica sees it).
//!
//! Written here rather than taken from a crate: the digest crates on
//! crates.io are HTTP clients' (they compute responses, they do not issue
//! and check nonces), and the server side is a few hashes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use md5::Md5;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_sip::values::split_list;

/// The hash of a digest exchange (RFC 7616 §3.2, RFC 8760 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Md5,
}

impl Algorithm {
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Md5 => "MD5",
        }
    }

    /// `SHA-256` or `MD5`, in any case.
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else if name.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else {
            None
        }
    }

    /// The lowercase hex of the hash of `text`.
    pub fn hash(self, text: &str) -> String {
        match self {
            Algorithm::Sha256 => hex::encode(Sha256::digest(text.as_bytes())),
            Algorithm::Md5 => hex::encode(Md5::digest(text.as_bytes())),
        }
    }

    /// HA1 = H(username ":" realm ":" password), what a registrar keeps
    /// instead of the password.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash(&format!("{username}:{realm}:{password}"))
    }
}

/// The fields of an `Authorization` (or `Proxy-Authorization`) header's
/// Digest credentials (RFC 3261 §25.1 `digest-response`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Algorithm,
    pub cnonce: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
}

/// Why credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not Digest credentials, or a field missing or malformed: 400.
    Malformed(String),
    /// Wrong realm, algorithm we do not offer, no `qop=auth`, forged
    /// nonce, wrong response, unknown user: 401 with a new challenge.
    Refused(&'static str),
    /// The nonce was ours but is too old, and the response was right for
    /// it: 401 with a new challenge marked `stale=true` (RFC 7616 §3.3),
    /// so the phone retries without asking its user.
    Stale,
    /// This nonce count was already used with this nonce: 401.
    Replayed,
}

/// Parses `Digest username="…", realm="…", …`.
pub fn parse_credentials(value: &str) -> Result<Credentials, Rejection> {
    let malformed = |what: &str| Rejection::Malformed(what.to_owned());
    let rest = value.trim_start();
    let (scheme, params) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    if !scheme.eq_ignore_ascii_case("Digest") {
        return Err(malformed("only Digest credentials are accepted"));
    }
    let mut fields: Vec<(String, String)> = Vec::new();
    for item in split_list(params).map_err(|_| malformed("unbalanced quotes in the credentials"))? {
        let (name, value) = item
            .split_once('=')
            .ok_or_else(|| malformed("a credentials field without a value"))?;
        let name = name.trim().to_ascii_lowercase();
        let value =
            unquote(value.trim()).ok_or_else(|| malformed("a badly quoted credentials field"))?;
        if fields.iter().any(|(seen, _)| *seen == name) {
            return Err(malformed("a credentials field given twice"));
        }
        fields.push((name, value));
    }
    let take = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
    };
    let required = |name: &'static str| {
        take(name).ok_or_else(|| Rejection::Malformed(format!("the credentials have no {name}")))
    };
    let algorithm = match take("algorithm") {
        None => Algorithm::Md5,
        Some(name) => {
            Algorithm::from_name(&name).ok_or(Rejection::Refused("an algorithm we do not offer"))?
        }
    };
    let credentials = Credentials {
        username: required("username")?,
        realm: required("realm")?,
        nonce: required("nonce")?,
        uri: required("uri")?,
        response: required("response")?,
        algorithm,
        cnonce: take("cnonce"),
        qop: take("qop"),
        nc: take("nc"),
    };
    if let Some(nc) = &credentials.nc
        && (nc.len() != 8 || !nc.bytes().all(|byte| byte.is_ascii_hexdigit()))
    {
        return Err(malformed("nc must be 8 hex digits"));
    }
    Ok(credentials)
}

/// A carrier's challenge (`WWW-Authenticate` or `Proxy-Authenticate`,
/// RFC 3261 §22.2), as the edge answers it when it places a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerChallenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth` (RFC 7616); without it, the response
    /// is RFC 2069's.
    pub qop_auth: bool,
}

/// The first Digest challenge of `values` (a response's challenge
/// headers, in order) whose algorithm the edge knows; SHA-256 preferred
/// over MD5 when both are offered (RFC 8760 §2.4 lets the client pick).
pub fn pick_challenge<'v>(values: impl IntoIterator<Item = &'v str>) -> Option<ServerChallenge> {
    let mut found: Vec<ServerChallenge> = values.into_iter().filter_map(parse_challenge).collect();
    found.sort_by_key(|challenge| challenge.algorithm != Algorithm::Sha256);
    found.into_iter().next()
}

/// Parses `Digest realm="…", nonce="…", …`; `None` for another scheme, a
/// missing realm or nonce, or an algorithm the edge does not know.
pub fn parse_challenge(value: &str) -> Option<ServerChallenge> {
    let rest = value.trim_start();
    let (scheme, params) = rest.split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let mut fields = Vec::new();
    for item in split_list(params).ok()? {
        let (name, value) = item.split_once('=')?;
        fields.push((name.trim().to_ascii_lowercase(), unquote(value.trim())?));
    }
    let take = |name: &str| {
        fields
            .iter()
            .find(|(field, _)| field == name)
            .map(|(_, value)| value.clone())
    };
    let algorithm = match take("algorithm") {
        None => Algorithm::Md5,
        Some(name) => Algorithm::from_name(&name)?,
    };
    Some(ServerChallenge {
        realm: take("realm")?,
        nonce: take("nonce")?,
        opaque: take("opaque"),
        algorithm,
        qop_auth: take("qop").is_some_and(|qop| {
            qop.split(',')
                .any(|option| option.trim().eq_ignore_ascii_case("auth"))
        }),
    })
}

impl ServerChallenge {
    /// The credentials answering this challenge for a `method` request to
    /// `uri` (RFC 7616 §3.4.1; nonce count 1 with `cnonce`, as a new
    /// request under a fresh nonce sends).
    pub fn answer(
        &self,
        username: &str,
        password: &str,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        let algorithm = self.algorithm;
        let ha1 = algorithm.ha1(username, &self.realm, password);
        let ha2 = algorithm.hash(&format!("{method}:{uri}"));
        let quote = |text: &str| text.replace('\\', "\\\\").replace('"', "\\\"");
        let mut value = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}",
            quote(username),
            quote(&self.realm),
            quote(&self.nonce),
            quote(uri),
            algorithm.name()
        );
        let response = if self.qop_auth {
            let nc = "00000001";
            value.push_str(&format!(
                ", qop=auth, nc={nc}, cnonce=\"{}\"",
                quote(cnonce)
            ));
            algorithm.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            algorithm.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        value.push_str(&format!(", response=\"{response}\""));
        if let Some(opaque) = &self.opaque {
            value.push_str(&format!(", opaque=\"{}\"", quote(opaque)));
        }
        value
    }
}

/// A quoted-string's content with its escapes resolved, or a token as it
/// is (RFC 3261 §25.1).
fn unquote(value: &str) -> Option<String> {
    let Some(inner) = value.strip_prefix('"') else {
        return Some(value.to_owned());
    };
    let inner = inner.strip_suffix('"')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Issues and checks nonces for one realm's challenges with secret keys
/// shared by every replica: the first seals, any checks (so a key can be
/// rotated without refusing the nonces just issued).
#[derive(Clone)]
pub struct Nonces {
    keys: Vec<Vec<u8>>,
    lifetime: Duration,
}

type HmacSha256 = Hmac<Sha256>;

fn unix_seconds(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

impl Nonces {
    /// One key.
    pub fn new(key: &[u8], lifetime: Duration) -> Self {
        Self::with_keys(vec![key.to_vec()], lifetime)
    }

    /// Several keys, the first sealing; none is an error of the caller.
    pub fn with_keys(keys: Vec<Vec<u8>>, lifetime: Duration) -> Self {
        assert!(!keys.is_empty(), "digest nonces need a key");
        Self { keys, lifetime }
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn seal(&self, realm: &str, body: &str) -> String {
        Self::seal_with(&self.keys[0], realm, body)
    }

    fn seal_with(key: &[u8], realm: &str, body: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(realm.as_bytes());
        mac.update(b"\n");
        mac.update(body.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Tokens that name `subject` for `purpose` (the "realm" of the seal,
    /// so a token is no nonce and no other purpose's token), one per key,
    /// the current key's first: 20 hex digits (80 bits of HMAC-SHA-256),
    /// alike on every replica and unguessable without the keys.
    pub fn tokens(&self, purpose: &str, subject: &str) -> Vec<String> {
        self.keys
            .iter()
            .map(|key| Self::seal_with(key, purpose, subject)[..20].to_owned())
            .collect()
    }

    /// A fresh nonce for `realm`: `<issued, hex seconds>.<random>.<HMAC>`.
    pub fn issue(&self, realm: &str, now: SystemTime) -> String {
        let body = format!("{:x}.{:016x}", unix_seconds(now), rand::random::<u64>());
        let seal = self.seal(realm, &body);
        format!("{body}.{seal}")
    }

    /// Whether `nonce` is one of ours for `realm` (`Some(fresh)`), and
    /// still fresh.
    fn check(&self, realm: &str, nonce: &str, now: SystemTime) -> Option<bool> {
        let (body, seal) = nonce.rsplit_once('.')?;
        let sealed_by_ours = self.keys.iter().any(|key| {
            let expected = Self::seal_with(key, realm, body);
            bool::from(expected.as_bytes().ct_eq(seal.as_bytes()))
        });
        if !sealed_by_ours {
            return None;
        }
        let issued = u64::from_str_radix(body.split('.').next()?, 16).ok()?;
        let age = unix_seconds(now).checked_sub(issued)?;
        Some(age <= self.lifetime.as_secs())
    }

    /// The `WWW-Authenticate` values of a challenge for `realm`, one per
    /// algorithm in `algorithms`' order (RFC 8760 §2.4: the most preferred
    /// first).
    pub fn challenges(
        &self,
        realm: &str,
        stale: bool,
        now: SystemTime,
        algorithms: &[Algorithm],
    ) -> Vec<String> {
        algorithms
            .iter()
            .map(|algorithm| {
                let mut value = format!(
                    "Digest realm=\"{realm}\", nonce=\"{}\", algorithm={}, qop=\"auth\"",
                    self.issue(realm, now),
                    algorithm.name()
                );
                if stale {
                    value.push_str(", stale=true");
                }
                value
            })
            .collect()
    }

    /// Checks `credentials` for a request with `method` against the HA1
    /// kept for their user under their algorithm (`ha1`: `None` when the
    /// user is unknown, which is refused like a wrong password). The
    /// caller then claims the nonce count with the replay guard.
    pub fn verify(
        &self,
        credentials: &Credentials,
        realm: &str,
        method: &str,
        ha1: Option<&str>,
        now: SystemTime,
    ) -> Result<(), Rejection> {
        if credentials.realm != realm {
            return Err(Rejection::Refused("the credentials are for another realm"));
        }
        if !credentials
            .qop
            .as_deref()
            .is_some_and(|qop| qop.eq_ignore_ascii_case("auth"))
        {
            return Err(Rejection::Refused("qop=auth is required"));
        }
        let (Some(cnonce), Some(nc)) = (&credentials.cnonce, &credentials.nc) else {
            return Err(Rejection::Malformed("qop=auth needs cnonce and nc".into()));
        };
        let fresh = self
            .check(realm, &credentials.nonce, now)
            .ok_or(Rejection::Refused("the nonce is not ours"))?;
        let ha1 = ha1.ok_or(Rejection::Refused("no such user"))?;
        let algorithm = credentials.algorithm;
        let ha2 = algorithm.hash(&format!("{method}:{}", credentials.uri));
        let expected = algorithm.hash(&format!(
            "{ha1}:{}:{nc}:{cnonce}:auth:{ha2}",
            credentials.nonce
        ));
        let given = credentials.response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
            return Err(Rejection::Refused("the response is wrong"));
        }
        if !fresh {
            return Err(Rejection::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7616 §3.9.1: the same exchange under MD5 and SHA-256 (an HTTP
    /// example; the hashes are the same for SIP with the method and URI).
    #[test]
    fn responses_match_rfc_7616s_examples() {
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (algorithm, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let ha1 = algorithm.ha1("Mufasa", "http-auth@example.org", "Circle of Life");
            let ha2 = algorithm.hash("GET:/dir/index.html");
            let response = algorithm.hash(&format!("{ha1}:{nonce}:00000001:{cnonce}:auth:{ha2}"));
            assert_eq!(response, expected, "{algorithm:?}");
        }
    }

    /// The edge's answer to a challenge is what its own verifier accepts,
    /// under either algorithm, and SHA-256 is picked when offered.
    #[test]
    fn the_answer_to_a_challenge_verifies() {
        let nonces = Nonces::new(b"key", Duration::from_secs(60));
        let now = SystemTime::now();
        let offered = nonces.challenges(
            "carrier.example",
            false,
            now,
            &[Algorithm::Md5, Algorithm::Sha256],
        );
        let picked = pick_challenge(offered.iter().map(String::as_str)).unwrap();
        assert_eq!(picked.algorithm, Algorithm::Sha256);
        assert!(picked.qop_auth);
        for value in &offered {
            let challenge = parse_challenge(value).unwrap();
            let uri = "sip:+15550100@carrier.example";
            let answer = challenge.answer("edge\"1", "secret", "INVITE", uri, "c1");
            let credentials = parse_credentials(&answer).unwrap();
            assert_eq!(credentials.username, "edge\"1");
            let ha1 = challenge
                .algorithm
                .ha1("edge\"1", "carrier.example", "secret");
            nonces
                .verify(&credentials, "carrier.example", "INVITE", Some(&ha1), now)
                .unwrap();
            let wrong = challenge
                .algorithm
                .ha1("edge\"1", "carrier.example", "other");
            assert!(
                nonces
                    .verify(&credentials, "carrier.example", "INVITE", Some(&wrong), now)
                    .is_err()
            );
        }
        assert_eq!(parse_challenge("Basic realm=\"x\""), None);
        assert_eq!(parse_challenge("Digest nonce=\"n\""), None);
        assert_eq!(
            parse_challenge("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            None
        );
    }

    /// RFC 2617 §3.5's example: no qop, the response of RFC 2069.
    #[test]
    fn a_challenge_without_qop_gets_rfc_2069s_response() {
        let challenge = parse_challenge(
            "Digest realm=\"testrealm@host.com\", nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert!(!challenge.qop_auth);
        let answer = challenge.answer("Mufasa", "Circle Of Life", "GET", "/dir/index.html", "x");
        let credentials = parse_credentials(&answer).unwrap();
        // H(H(A1):nonce:H(A2)) by hand, with RFC 2617's A1 and A2.
        let ha1 = Algorithm::Md5.ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        let ha2 = Algorithm::Md5.hash("GET:/dir/index.html");
        let expected =
            Algorithm::Md5.hash(&format!("{ha1}:dcd98b7102dd2f0e8b11d0f600bfb0c093:{ha2}"));
        assert_eq!(credentials.response, expected);
        assert!(answer.contains("opaque=\"5ccc069c403ebaf9f0171e9517f40e41\""));
        assert_eq!(credentials.qop, None);
    }

    fn sign(credentials: &mut Credentials, password: &str, method: &str) {
        let algorithm = credentials.algorithm;
        let ha1 = algorithm.ha1(&credentials.username, &credentials.realm, password);
        let ha2 = algorithm.hash(&format!("{method}:{}", credentials.uri));
        credentials.response = algorithm.hash(&format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            credentials.nonce,
            credentials.nc.as_deref().unwrap(),
            credentials.cnonce.as_deref().unwrap()
        ));
    }

    #[test]
    fn a_right_response_passes_and_every_wrong_part_is_refused() {
        let realm = "acme.sip.example.com";
        let nonces = Nonces::new(b"k", Duration::from_secs(300));
        let now = SystemTime::now();
        let header = format!(
            "Digest username=\"alice\", realm=\"{realm}\", nonce=\"{}\", uri=\"sip:{realm}\", \
             response=\"\", algorithm=SHA-256, cnonce=\"c1\", qop=auth, nc=00000001",
            nonces.issue(realm, now)
        );
        let mut credentials = parse_credentials(&header).unwrap();
        sign(&mut credentials, "secret", "REGISTER");
        let ha1 = Algorithm::Sha256.ha1("alice", realm, "secret");
        assert_eq!(
            nonces.verify(&credentials, realm, "REGISTER", Some(&ha1), now),
            Ok(())
        );

        let wrong_password = Algorithm::Sha256.ha1("alice", realm, "guess");
        assert_eq!(
            nonces.verify(&credentials, realm, "REGISTER", Some(&wrong_password), now),
            Err(Rejection::Refused("the response is wrong"))
        );
        assert_eq!(
            nonces.verify(&credentials, realm, "INVITE", Some(&ha1), now),
            Err(Rejection::Refused("the response is wrong")),
            "the method is signed"
        );
        assert_eq!(
            nonces.verify(
                &credentials,
                "other.sip.example.com",
                "REGISTER",
                Some(&ha1),
                now
            ),
            Err(Rejection::Refused("the credentials are for another realm"))
        );
        assert_eq!(
            nonces.verify(&credentials, realm, "REGISTER", None, now),
            Err(Rejection::Refused("no such user"))
        );
        // After a rotation the old key still checks what it sealed.
        let rotated = Nonces::with_keys(
            vec![b"new".to_vec(), b"k".to_vec()],
            Duration::from_secs(300),
        );
        assert_eq!(
            rotated.verify(&credentials, realm, "REGISTER", Some(&ha1), now),
            Ok(())
        );
        assert!(
            rotated
                .check(realm, &rotated.issue(realm, now), now)
                .is_some()
        );
        assert!(
            nonces
                .check(realm, &rotated.issue(realm, now), now)
                .is_none(),
            "sealed by the new key"
        );
        // Another deployment's key: not our nonce.
        let foreign = Nonces::new(b"other", Duration::from_secs(300));
        assert_eq!(
            foreign.verify(&credentials, realm, "REGISTER", Some(&ha1), now),
            Err(Rejection::Refused("the nonce is not ours"))
        );
        // Old but right: stale, so the phone retries at once.
        let later = now + Duration::from_secs(301);
        assert_eq!(
            nonces.verify(&credentials, realm, "REGISTER", Some(&ha1), later),
            Err(Rejection::Stale)
        );
    }

    #[test]
    fn credentials_parse_strictly() {
        let parsed = parse_credentials(
            "Digest username=\"a\\\"b\", realm=\"r\", nonce=\"n\", uri=\"sip:r\", response=\"00\", cnonce=\"c\", qop=auth, nc=0000000a",
        )
        .unwrap();
        assert_eq!(parsed.username, "a\"b");
        assert_eq!(parsed.algorithm, Algorithm::Md5, "MD5 when none is named");
        for (header, why) in [
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "only Digest"),
            (
                "Digest realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"",
                "no username",
            ),
            (
                "Digest username=\"a\", username=\"b\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\"",
                "twice",
            ),
            ("Digest username=\"a, realm=\"r\"", "quotes"),
            (
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", nc=1",
                "8 hex digits",
            ),
        ] {
            match parse_credentials(header) {
                Err(Rejection::Malformed(message)) => {
                    assert!(message.contains(why), "{header}: {message}")
                }
                other => panic!("{header}: {other:?}"),
            }
        }
        assert_eq!(
            parse_credentials(
                "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"x\", algorithm=SHA-512-256"
            ),
            Err(Rejection::Refused("an algorithm we do not offer"))
        );
    }

    #[test]
    fn challenges_offer_sha_256_before_md5_and_say_when_stale() {
        let nonces = Nonces::new(b"k", Duration::from_secs(300));
        let challenges = nonces.challenges(
            "acme.sip.example.com",
            true,
            SystemTime::now(),
            &[Algorithm::Sha256, Algorithm::Md5],
        );
        assert_eq!(challenges.len(), 2);
        assert!(challenges[0].contains("algorithm=SHA-256"));
        assert!(challenges[1].contains("algorithm=MD5"));
        assert!(
            challenges
                .iter()
                .all(|c| c.contains("qop=\"auth\"") && c.ends_with("stale=true"))
        );
    }
}
