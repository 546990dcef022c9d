//! Access tokens: short-lived JSON Web Tokens (RFC 7519) signed with
//! HMAC-SHA256 (`HS256`, RFC 7518 §3.2), issued at login and refresh and
//! checked by every service without a database round trip.
//!
//! Keys rotate without logging anyone out: [`TokenKeys`] holds several
//! [`SigningKey`]s; the first signs, all of them verify, and the token's
//! `kid` header (RFC 7515 §4.1.4) picks the one to verify with. To rotate,
//! put a new key first and keep the old one second until the longest-lived
//! token it signed has expired, then remove it.
//!
//! Verification pins the algorithm to HS256 (a token saying `none`, `HS512`
//! or `RS256` is refused before any key is used), requires `iss` =
//! [`ISSUER`] and `aud` = [`AUDIENCE`], and checks `exp` against the `now`
//! the caller passes, with a [`LEEWAY`] of a few seconds for clock skew
//! between replicas.
//!
//! Signing and verification are done by the `jsonwebtoken` crate (with its
//! `rust_crypto` provider); this module only decides which key, which
//! claims and which checks.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;

/// The `iss` claim of every access token (RFC 7519 §4.1.1).
pub const ISSUER: &str = "switchboard";

/// The `aud` claim of every access token (RFC 7519 §4.1.3).
pub const AUDIENCE: &str = "switchboard-api";

/// How long after `exp` a token is still accepted, to absorb clock skew
/// between the replica that issued it and the one checking it (RFC 7519
/// §4.1.4 allows "some small leeway"). Replicas run NTP and agree within
/// milliseconds; 5 s covers a badly synchronised host while adding almost
/// nothing to a token that lives minutes.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// The shortest HS256 secret accepted: 32 bytes, the output size of
/// SHA-256 (RFC 7518 §3.2 requires a key at least that long).
pub const MIN_SECRET_LEN: usize = 32;

/// The longest key id accepted in configuration, and the most of an
/// unknown `kid` repeated back in [`AuthError::UnknownKey`].
const MAX_KID_LEN: usize = 64;

/// One HS256 key: the id written in the `kid` header of the tokens it signs,
/// and the shared secret. Build it with [`SigningKey::new`] or
/// [`SigningKey::from_file`], which refuse secrets shorter than
/// [`MIN_SECRET_LEN`]; [`TokenKeys::new`] checks again, since the fields are
/// public.
#[derive(Clone)]
pub struct SigningKey {
    pub kid: String,
    pub secret: Vec<u8>,
}

impl SigningKey {
    /// A key from its id and secret; the secret must be at least
    /// [`MIN_SECRET_LEN`] bytes, the id 1 to 64 printable ASCII characters.
    pub fn new(kid: impl Into<String>, secret: impl Into<Vec<u8>>) -> Result<Self, AuthError> {
        let key = Self {
            kid: kid.into(),
            secret: secret.into(),
        };
        key.validate()?;
        Ok(key)
    }

    /// A key with a fresh random secret ([`generate_secret`]), for `dev` and
    /// tests: tokens it signs die with the process.
    pub fn generate(kid: impl Into<String>) -> Result<Self, AuthError> {
        Self::new(kid, generate_secret())
    }

    /// A key whose secret is the content of the file at `path` (the
    /// `*_file` convention for secrets). A file that is UTF-8 text (for
    /// example `openssl rand -base64 48 > jwt.key`) counts as the bytes of
    /// its trimmed text, so a trailing newline does not matter; any other
    /// file counts as raw bytes. Either way at least [`MIN_SECRET_LEN`]
    /// bytes.
    pub fn from_file(kid: impl Into<String>, path: impl AsRef<Path>) -> Result<Self, AuthError> {
        let path = path.as_ref();
        let content = std::fs::read(path).map_err(|error| {
            AuthError::Internal(format!(
                "cannot read signing key file {}: {error}",
                path.display()
            ))
        })?;
        let secret = match std::str::from_utf8(&content) {
            Ok(text) => text.trim().as_bytes().to_vec(),
            Err(_) => content,
        };
        Self::new(kid, secret)
    }

    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        if self.kid.is_empty()
            || self.kid.len() > MAX_KID_LEN
            || !self.kid.bytes().all(|byte| byte.is_ascii_graphic())
        {
            return Err(AuthError::Internal(format!(
                "signing key id {:?} must be 1 to {MAX_KID_LEN} printable ASCII characters",
                truncate_kid(&self.kid)
            )));
        }
        if self.secret.len() < MIN_SECRET_LEN {
            return Err(AuthError::Internal(format!(
                "signing key {:?} is {} bytes long; HS256 needs at least {MIN_SECRET_LEN}",
                self.kid,
                self.secret.len()
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field(
                "secret",
                &format_args!("<{} bytes redacted>", self.secret.len()),
            )
            .finish()
    }
}

/// 32 bytes from the operating system's CSPRNG (through `rand`'s
/// `ThreadRng`), for a development signing key.
pub fn generate_secret() -> Vec<u8> {
    let mut secret = vec![0u8; MIN_SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    secret
}

/// Who an access token is for: everything in [`AccessClaims`] except what
/// [`TokenKeys::issue`] fills in itself (`jti`, times, issuer, audience).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSubject {
    pub user_id: Uuid,
    pub tenant_id: Uuid,
    pub roles: Vec<String>,
    /// The clients (a tenant's customers) this user may act for; `None`
    /// means every client of the tenant.
    pub clients: Option<Vec<Uuid>>,
    /// The session, i.e. the refresh-token family this token was issued
    /// under; revoking the session stops its refreshes.
    pub session_id: Uuid,
    /// The user's rights version when the token was issued: a change of
    /// the user's roles, clients or status raises it, and a token carrying
    /// an older one is refused.
    pub rights_version: i64,
}

/// The claims of an access token (RFC 7519 §4.1 registered claims plus
/// ours).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user (RFC 7519 §4.1.2).
    pub sub: Uuid,
    /// The tenant the user belongs to.
    pub tid: Uuid,
    pub roles: Vec<String>,
    /// The clients the user may act for; `None` (JSON `null`) means every
    /// client of the tenant.
    pub clients: Option<Vec<Uuid>>,
    /// The session (refresh-token family) id.
    pub sid: Uuid,
    /// The user's rights version at issue ([`AccessSubject::rights_version`]).
    pub ver: i64,
    /// This token's unique id (RFC 7519 §4.1.7).
    pub jti: Uuid,
    /// Issued at, seconds since the Unix epoch (RFC 7519 §4.1.6).
    pub iat: i64,
    /// Expires at, seconds since the Unix epoch (RFC 7519 §4.1.4).
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

impl AccessClaims {
    /// Whether the token carries `role`.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|held| held == role)
    }

    /// Whether the token lets its user act for `client`.
    pub fn can_access_client(&self, client: Uuid) -> bool {
        self.clients
            .as_ref()
            .is_none_or(|clients| clients.contains(&client))
    }
}

/// The keys that sign and verify access tokens: the first signs, all verify
/// (see the module documentation for rotation).
pub struct TokenKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl TokenKeys {
    /// The key set; the first key signs. Refuses an empty list, duplicate
    /// key ids and secrets shorter than [`MIN_SECRET_LEN`].
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, AuthError> {
        let Some(first) = keys.first() else {
            return Err(AuthError::Internal(
                "at least one access-token signing key is needed".into(),
            ));
        };
        let signing_kid = first.kid.clone();
        let signing = EncodingKey::from_secret(&first.secret);
        let mut verifying = HashMap::with_capacity(keys.len());
        for key in &keys {
            key.validate()?;
            let previous = verifying.insert(key.kid.clone(), DecodingKey::from_secret(&key.secret));
            if previous.is_some() {
                return Err(AuthError::Internal(format!(
                    "signing key id {:?} is configured twice",
                    key.kid
                )));
            }
        }

        let mut validation = Validation::new(Algorithm::HS256);
        // `exp` is checked against the caller's `now`, below, not the
        // library's wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "iss", "aud"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);

        Ok(Self {
            signing_kid,
            signing,
            verifying,
            validation,
        })
    }

    /// The id of the key that signs new tokens.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// Signs a token for `subject`, valid from `now` for `ttl` (whole
    /// seconds, at least 1). Returns the compact JWS and its claims.
    pub fn issue(
        &self,
        subject: AccessSubject,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<(String, AccessClaims), AuthError> {
        let ttl_secs = i64::try_from(ttl.as_secs())
            .ok()
            .filter(|secs| *secs > 0)
            .ok_or_else(|| {
                AuthError::Internal(format!("access token lifetime {ttl:?} is out of range"))
            })?;
        let iat = now.timestamp();
        let exp = iat.checked_add(ttl_secs).ok_or_else(|| {
            AuthError::Internal(format!("access token lifetime {ttl:?} is out of range"))
        })?;
        let claims = AccessClaims {
            sub: subject.user_id,
            tid: subject.tenant_id,
            roles: subject.roles,
            clients: subject.clients,
            sid: subject.session_id,
            ver: subject.rights_version,
            jti: Uuid::new_v4(),
            iat,
            exp,
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
        };
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.signing)
            .map_err(|error| AuthError::Internal(format!("cannot sign access token: {error}")))?;
        Ok((token, claims))
    }

    /// Checks `token` and returns its claims: HS256 only, a known `kid`, a
    /// valid signature, `iss`/`aud` ours, and `now` before `exp` +
    /// [`LEEWAY`].
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<AccessClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token".into()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::InvalidToken("algorithm must be HS256".into()));
        }
        // RFC 7515 §4.1.11: extensions marked critical must be understood;
        // we define none.
        if header.crit.is_some() {
            return Err(AuthError::InvalidToken(
                "unsupported critical header".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::InvalidToken("missing key id".into()))?;
        let key = self
            .verifying
            .get(&kid)
            .ok_or_else(|| AuthError::UnknownKey(truncate_kid(&kid)))?;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation)
            .map_err(map_jwt_error)?
            .claims;
        let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(0);
        if now.timestamp() >= claims.exp.saturating_add(leeway) {
            return Err(AuthError::ExpiredToken);
        }
        Ok(claims)
    }
}

impl fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.verifying.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("TokenKeys")
            .field("signing_kid", &self.signing_kid)
            .field("verifying_kids", &kids)
            .finish_non_exhaustive()
    }
}

pub(crate) fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    let why = match error.kind() {
        ErrorKind::ExpiredSignature => return AuthError::ExpiredToken,
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::UnsupportedAlgorithm
        | ErrorKind::MissingAlgorithm => "algorithm must be HS256",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        ErrorKind::MissingRequiredClaim(_)
        | ErrorKind::InvalidClaimFormat(_)
        | ErrorKind::Json(_) => "malformed claims",
        _ => "malformed token",
    };
    AuthError::InvalidToken(why.into())
}

/// An attacker-chosen `kid` cut to [`MAX_KID_LEN`] characters before it is
/// repeated in an error.
pub(crate) fn truncate_kid(kid: &str) -> String {
    kid.chars().take(MAX_KID_LEN).collect()
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;

    const TTL: Duration = Duration::from_secs(900);

    fn key(kid: &str) -> SigningKey {
        SigningKey::generate(kid).expect("valid key")
    }

    fn subject() -> AccessSubject {
        AccessSubject {
            user_id: Uuid::new_v4(),
            tenant_id: Uuid::new_v4(),
            roles: vec!["agent".into(), "supervisor".into()],
            clients: Some(vec![Uuid::new_v4()]),
            session_id: Uuid::new_v4(),
            rights_version: 3,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).expect("valid timestamp")
    }

    fn b64(value: &serde_json::Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn invalid_reason(result: Result<AccessClaims, AuthError>) -> String {
        match result {
            Err(AuthError::InvalidToken(why)) => why,
            other => panic!("expected InvalidToken, got {other:?}"),
        }
    }

    /// Claims as raw JSON, for tokens signed by hand with other settings.
    fn raw_claims(now: DateTime<Utc>) -> serde_json::Value {
        json!({
            "sub": Uuid::new_v4(), "tid": Uuid::new_v4(), "roles": ["admin"],
            "clients": null, "sid": Uuid::new_v4(), "ver": 1, "jti": Uuid::new_v4(),
            "iat": now.timestamp(), "exp": now.timestamp() + 600,
            "iss": ISSUER, "aud": AUDIENCE,
        })
    }

    #[test]
    fn issued_token_verifies_with_the_same_claims() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let subject = subject();
        let (token, issued) = keys.issue(subject.clone(), TTL, now()).expect("issue");

        let verified = keys.verify(&token, now()).expect("verify");
        assert_eq!(verified, issued);
        assert_eq!(verified.sub, subject.user_id);
        assert_eq!(verified.tid, subject.tenant_id);
        assert_eq!(verified.sid, subject.session_id);
        assert_eq!(verified.clients, subject.clients);
        assert_eq!(verified.ver, 3);
        assert_eq!(verified.iat, now().timestamp());
        assert_eq!(verified.exp, now().timestamp() + 900);
        assert_eq!(verified.iss, "switchboard");
        assert_eq!(verified.aud, "switchboard-api");
        assert!(verified.has_role("supervisor"));
        assert!(!verified.has_role("admin"));
    }

    #[test]
    fn token_without_client_list_grants_every_client() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let mut subject = subject();
        subject.clients = None;
        let (token, _) = keys.issue(subject, TTL, now()).expect("issue");
        let claims = keys.verify(&token, now()).expect("verify");
        assert_eq!(claims.clients, None);
        assert!(claims.can_access_client(Uuid::new_v4()));

        let only = Uuid::new_v4();
        let mut subject = self::subject();
        subject.clients = Some(vec![only]);
        let (token, _) = keys.issue(subject, TTL, now()).expect("issue");
        let claims = keys.verify(&token, now()).expect("verify");
        assert!(claims.can_access_client(only));
        assert!(!claims.can_access_client(Uuid::new_v4()));
    }

    #[test]
    fn every_token_gets_its_own_jti() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let (_, first) = keys.issue(subject(), TTL, now()).expect("issue");
        let (_, second) = keys.issue(subject(), TTL, now()).expect("issue");
        assert_ne!(first.jti, second.jti);
    }

    #[test]
    fn token_expires_after_ttl_plus_leeway() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let (token, claims) = keys.issue(subject(), TTL, now()).expect("issue");
        let exp = DateTime::from_timestamp(claims.exp, 0).expect("valid exp");

        assert!(keys.verify(&token, exp).is_ok(), "within leeway");
        assert!(
            keys.verify(&token, exp + TimeDelta::seconds(4)).is_ok(),
            "within leeway"
        );
        assert!(matches!(
            keys.verify(&token, exp + TimeDelta::seconds(5)),
            Err(AuthError::ExpiredToken)
        ));
        assert!(matches!(
            keys.verify(&token, exp + TimeDelta::days(1)),
            Err(AuthError::ExpiredToken)
        ));
    }

    #[test]
    fn zero_ttl_is_refused() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        assert!(matches!(
            keys.issue(subject(), Duration::from_millis(500), now()),
            Err(AuthError::Internal(_))
        ));
    }

    #[test]
    fn token_signed_with_another_secret_under_the_same_kid_is_rejected() {
        let ours = TokenKeys::new(vec![key("k1")]).expect("keys");
        let theirs = TokenKeys::new(vec![key("k1")]).expect("keys");
        let (token, _) = theirs.issue(subject(), TTL, now()).expect("issue");
        assert_eq!(invalid_reason(ours.verify(&token, now())), "bad signature");
    }

    #[test]
    fn token_of_the_previous_key_verifies_after_rotation() {
        let old = key("2025-01");
        let new = key("2025-02");
        let before = TokenKeys::new(vec![old.clone()]).expect("keys");
        let (old_token, _) = before.issue(subject(), TTL, now()).expect("issue");

        let rotated = TokenKeys::new(vec![new.clone(), old]).expect("keys");
        assert_eq!(rotated.signing_kid(), "2025-02");
        assert!(rotated.verify(&old_token, now()).is_ok());
        let (new_token, _) = rotated.issue(subject(), TTL, now()).expect("issue");
        assert!(rotated.verify(&new_token, now()).is_ok());
        assert!(
            matches!(before.verify(&new_token, now()), Err(AuthError::UnknownKey(kid)) if kid == "2025-02")
        );

        let old_removed = TokenKeys::new(vec![new]).expect("keys");
        assert!(matches!(
            old_removed.verify(&old_token, now()),
            Err(AuthError::UnknownKey(kid)) if kid == "2025-01"
        ));
        assert!(old_removed.verify(&new_token, now()).is_ok());
    }

    #[test]
    fn tampered_payload_is_rejected() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let (token, claims) = keys.issue(subject(), TTL, now()).expect("issue");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);

        let mut forged = serde_json::to_value(&claims).expect("json");
        forged["roles"] = json!(["admin"]);
        let tampered = format!("{}.{}.{}", parts[0], b64(&forged), parts[2]);
        assert_eq!(
            invalid_reason(keys.verify(&tampered, now())),
            "bad signature"
        );
    }

    #[test]
    fn alg_none_token_is_rejected() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let header = b64(&json!({"alg": "none", "typ": "JWT", "kid": "k1"}));
        let payload = b64(&raw_claims(now()));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            invalid_reason(keys.verify(&token, now()));
        }
        let header = b64(&json!({"alg": "None", "kid": "k1"}));
        invalid_reason(keys.verify(&format!("{header}.{payload}."), now()));
    }

    #[test]
    fn token_with_another_algorithm_is_rejected_even_with_the_right_secret() {
        let key = key("k1");
        let keys = TokenKeys::new(vec![key.clone()]).expect("keys");
        let mut header = Header::new(Algorithm::HS512);
        header.kid = Some("k1".into());
        let hs512 = jsonwebtoken::encode(
            &header,
            &raw_claims(now()),
            &EncodingKey::from_secret(&key.secret),
        )
        .expect("encode");
        assert_eq!(
            invalid_reason(keys.verify(&hs512, now())),
            "algorithm must be HS256"
        );

        let rs256 = format!(
            "{}.{}.{}",
            b64(&json!({"alg": "RS256", "kid": "k1"})),
            b64(&raw_claims(now())),
            URL_SAFE_NO_PAD.encode([7u8; 256])
        );
        assert_eq!(
            invalid_reason(keys.verify(&rs256, now())),
            "algorithm must be HS256"
        );
    }

    #[test]
    fn wrong_issuer_or_audience_is_rejected() {
        let key = key("k1");
        let keys = TokenKeys::new(vec![key.clone()]).expect("keys");
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let sign = |claims: &serde_json::Value| {
            jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&key.secret))
                .expect("encode")
        };

        let mut claims = raw_claims(now());
        claims["iss"] = json!("someone-else");
        assert_eq!(
            invalid_reason(keys.verify(&sign(&claims), now())),
            "wrong issuer"
        );

        let mut claims = raw_claims(now());
        claims["aud"] = json!("another-api");
        assert_eq!(
            invalid_reason(keys.verify(&sign(&claims), now())),
            "wrong audience"
        );

        let mut claims = raw_claims(now());
        claims.as_object_mut().expect("object").remove("aud");
        invalid_reason(keys.verify(&sign(&claims), now()));

        let mut claims = raw_claims(now());
        claims.as_object_mut().expect("object").remove("exp");
        invalid_reason(keys.verify(&sign(&claims), now()));
    }

    #[test]
    fn token_without_kid_is_rejected() {
        let key = key("k1");
        let keys = TokenKeys::new(vec![key.clone()]).expect("keys");
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &raw_claims(now()),
            &EncodingKey::from_secret(&key.secret),
        )
        .expect("encode");
        assert_eq!(invalid_reason(keys.verify(&token, now())), "missing key id");
    }

    #[test]
    fn garbage_strings_are_rejected() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        for garbage in [
            "",
            ".",
            "..",
            "abc",
            "a.b.c",
            "eyJ.eyJ.",
            "not a token at all",
            "sk_live_0123456789abcdefghij0123456789abcdefghij",
            "\u{0}\u{1}..",
            "ééé.ééé.ééé",
        ] {
            invalid_reason(keys.verify(garbage, now()));
        }
    }

    #[test]
    fn unknown_kid_is_cut_short_in_the_error() {
        let keys = TokenKeys::new(vec![key("k1")]).expect("keys");
        let long_kid = "x".repeat(10_000);
        let token = format!(
            "{}.{}.sig",
            b64(&json!({"alg": "HS256", "kid": long_kid})),
            b64(&raw_claims(now()))
        );
        match keys.verify(&token, now()) {
            Err(AuthError::UnknownKey(kid)) => assert_eq!(kid.len(), 64),
            other => panic!("expected UnknownKey, got {other:?}"),
        }
    }

    #[test]
    fn short_secret_is_refused_at_construction() {
        assert!(matches!(
            SigningKey::new("k1", vec![0u8; 31]),
            Err(AuthError::Internal(_))
        ));
        assert!(SigningKey::new("k1", vec![0u8; 32]).is_ok());
        // Fields are public: the key set checks again.
        let short = SigningKey {
            kid: "k1".into(),
            secret: b"short".to_vec(),
        };
        assert!(TokenKeys::new(vec![short]).is_err());
    }

    #[test]
    fn key_set_refuses_no_keys_duplicates_and_bad_ids() {
        assert!(TokenKeys::new(Vec::new()).is_err());
        assert!(TokenKeys::new(vec![key("k1"), key("k1")]).is_err());
        assert!(SigningKey::new("", generate_secret()).is_err());
        assert!(SigningKey::new("has space", generate_secret()).is_err());
        assert!(SigningKey::new("k".repeat(65), generate_secret()).is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let key = SigningKey::new("k1", vec![0xAB; 32]).expect("key");
        let debug = format!("{key:?}");
        assert!(debug.contains("k1"));
        assert!(!debug.contains("171"), "{debug}");
        assert!(!debug.to_lowercase().contains("abab"), "{debug}");

        let keys = TokenKeys::new(vec![key]).expect("keys");
        let debug = format!("{keys:?}");
        assert!(debug.contains("k1"));
        assert!(!debug.contains("171"), "{debug}");
    }

    #[test]
    fn generated_secrets_are_32_random_bytes() {
        let first = generate_secret();
        assert_eq!(first.len(), 32);
        assert_ne!(first, generate_secret());
    }

    #[test]
    fn secret_file_is_read_as_trimmed_text_or_raw_bytes() {
        let dir = tempfile::tempdir().expect("temporary directory");

        let text = dir.path().join("text.key");
        let secret = "0123456789abcdef0123456789abcdef-text";
        std::fs::write(&text, format!("  {secret}\n")).expect("write");
        let key = SigningKey::from_file("k1", &text).expect("key");
        assert_eq!(key.secret, secret.as_bytes());

        let raw = dir.path().join("raw.key");
        let mut bytes = vec![0xFFu8; 40];
        bytes[0] = b' ';
        std::fs::write(&raw, &bytes).expect("write");
        assert_eq!(
            SigningKey::from_file("k1", &raw).expect("key").secret,
            bytes
        );

        let short = dir.path().join("short.key");
        std::fs::write(&short, "too short for HS256       \n\n\n\n\n\n\n\n").expect("write");
        assert!(SigningKey::from_file("k1", &short).is_err());

        let missing = SigningKey::from_file("k1", dir.path().join("missing.key"));
        assert!(matches!(missing, Err(AuthError::Internal(_))));
    }
}
