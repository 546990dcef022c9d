//! Service credentials: what one Switchboard service shows another on every
//! internal gRPC call.
//!
//! A service credential is a short-lived JSON Web Token (RFC 7519) signed
//! with HMAC-SHA256 (RFC 7518 §3.2) by the cluster's internal key. It names
//! the calling service (`iss`) and, for a call made on behalf of a tenant,
//! the tenant (`tid`), the client organizations the caller may see
//! (`clients`, absent for all) and the end user's principal as the calling
//! service authenticated it (`prn`, a JSON value the receiving service
//! interprets). The receiving service takes the tenant from the verified
//! token only, never from the request body.
//!
//! Its audience, [`SERVICE_AUDIENCE`], differs from the access tokens' one,
//! so an end user's access token is never taken for a service credential
//! (nor the reverse) even where both key sets hold the same secret.
//!
//! Keys rotate as access-token keys do ([`crate::jwt`]): the first key of
//! [`ServiceKeys`] signs, all verify, the `kid` header picks the key. During
//! a rotation every node holds both keys; once all sign with the new one
//! and [`SERVICE_TOKEN_TTL`] has passed, the old key is removed.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::AuthError;
use crate::jwt::{LEEWAY, SigningKey, map_jwt_error, truncate_kid};

/// The `aud` claim of every service credential.
pub const SERVICE_AUDIENCE: &str = "switchboard-internal";

/// How long a service credential is valid: long enough for a slow call and
/// some clock skew, short enough that a leaked one is soon useless.
pub const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(60);

/// The claims of a service credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceClaims {
    /// The calling service (`gateway`, `edge`, …).
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The tenant the call is made for; absent for calls of the whole
    /// installation (the edge asking who owns a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<Uuid>,
    /// The client organizations the caller may see; absent for all of the
    /// tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients: Option<Vec<Uuid>>,
    /// The end user's principal, as the calling service authenticated it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prn: Option<serde_json::Value>,
}

impl ServiceClaims {
    /// Claims for `service`, valid from `now` for [`SERVICE_TOKEN_TTL`],
    /// with no tenant yet.
    pub fn new(service: impl Into<String>, now: DateTime<Utc>) -> Self {
        let iat = now.timestamp();
        Self {
            iss: service.into(),
            aud: SERVICE_AUDIENCE.to_owned(),
            iat,
            exp: iat + SERVICE_TOKEN_TTL.as_secs() as i64,
            tid: None,
            clients: None,
            prn: None,
        }
    }
}

/// The internal keys of a node: the first signs, all verify.
pub struct ServiceKeys {
    signing_kid: String,
    signing: EncodingKey,
    verifying: HashMap<String, DecodingKey>,
    validation: Validation,
}

impl ServiceKeys {
    /// The key set; the first key signs. Refuses an empty list, duplicate
    /// key ids and short secrets, like [`crate::TokenKeys::new`].
    pub fn new(keys: Vec<SigningKey>) -> Result<Self, AuthError> {
        let Some(first) = keys.first() else {
            return Err(AuthError::Internal(
                "at least one internal service key is needed".into(),
            ));
        };
        let mut verifying = HashMap::with_capacity(keys.len());
        for key in &keys {
            key.validate()?;
            if verifying
                .insert(key.kid.clone(), DecodingKey::from_secret(&key.secret))
                .is_some()
            {
                return Err(AuthError::Internal(format!(
                    "internal key id {:?} is configured twice",
                    key.kid
                )));
            }
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_audience(&[SERVICE_AUDIENCE]);
        Ok(Self {
            signing_kid: first.kid.clone(),
            signing: EncodingKey::from_secret(&first.secret),
            verifying,
            validation,
        })
    }

    /// The id of the key that signs.
    pub fn signing_kid(&self) -> &str {
        &self.signing_kid
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &ServiceClaims) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.signing_kid.clone());
        jsonwebtoken::encode(&header, claims, &self.signing).map_err(|error| {
            AuthError::Internal(format!("cannot sign service credential: {error}"))
        })
    }

    /// Checks `token`: HS256 only, a known `kid`, a valid signature, our
    /// audience, an issuer, and `now` before `exp` + [`LEEWAY`].
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<ServiceClaims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::InvalidToken("malformed token".into()))?;
        if header.alg != Algorithm::HS256 {
            return Err(AuthError::InvalidToken("algorithm must be HS256".into()));
        }
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
        let claims = jsonwebtoken::decode::<ServiceClaims>(token, key, &self.validation)
            .map_err(map_jwt_error)?
            .claims;
        if claims.iss.is_empty() {
            return Err(AuthError::InvalidToken("missing calling service".into()));
        }
        let leeway = i64::try_from(LEEWAY.as_secs()).unwrap_or(0);
        if now.timestamp() >= claims.exp.saturating_add(leeway) {
            return Err(AuthError::ExpiredToken);
        }
        Ok(claims)
    }
}

impl fmt::Debug for ServiceKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&str> = self.verifying.keys().map(String::as_str).collect();
        kids.sort_unstable();
        f.debug_struct("ServiceKeys")
            .field("signing_kid", &self.signing_kid)
            .field("verifying_kids", &kids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;
    use crate::{AccessSubject, TokenKeys};

    fn key(kid: &str) -> SigningKey {
        SigningKey::generate(kid).expect("valid key")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_750_000_000, 0).expect("valid timestamp")
    }

    fn claims() -> ServiceClaims {
        ServiceClaims {
            tid: Some(Uuid::new_v4()),
            clients: Some(vec![Uuid::new_v4()]),
            prn: Some(json!({"user": Uuid::new_v4(), "roles": ["admin"]})),
            ..ServiceClaims::new("gateway", now())
        }
    }

    #[test]
    fn a_signed_credential_verifies_with_the_same_claims() {
        let keys = ServiceKeys::new(vec![key("internal-1")]).unwrap();
        let claims = claims();
        let token = keys.sign(&claims).unwrap();
        assert_eq!(keys.verify(&token, now()).unwrap(), claims);
    }

    #[test]
    fn an_expired_credential_is_refused_after_the_leeway() {
        let keys = ServiceKeys::new(vec![key("internal-1")]).unwrap();
        let token = keys.sign(&claims()).unwrap();
        let just_inside = now() + TimeDelta::seconds(SERVICE_TOKEN_TTL.as_secs() as i64 + 4);
        assert!(keys.verify(&token, just_inside).is_ok());
        let after = now() + TimeDelta::seconds(SERVICE_TOKEN_TTL.as_secs() as i64 + 5);
        assert!(matches!(
            keys.verify(&token, after),
            Err(AuthError::ExpiredToken)
        ));
    }

    #[test]
    fn rotation_accepts_both_keys_and_forgets_a_removed_one() {
        let old = key("internal-1");
        let new = key("internal-2");
        let before = ServiceKeys::new(vec![old.clone()]).unwrap();
        let during = ServiceKeys::new(vec![new.clone(), old.clone()]).unwrap();
        let after = ServiceKeys::new(vec![new]).unwrap();
        let from_old_node = before.sign(&claims()).unwrap();
        let from_new_node = during.sign(&claims()).unwrap();
        assert!(during.verify(&from_old_node, now()).is_ok());
        assert!(before.verify(&from_new_node, now()).is_err());
        assert!(after.verify(&from_new_node, now()).is_ok());
        assert!(matches!(
            after.verify(&from_old_node, now()),
            Err(AuthError::UnknownKey(kid)) if kid == "internal-1"
        ));
    }

    #[test]
    fn a_credential_of_another_key_with_the_same_kid_is_refused() {
        let ours = ServiceKeys::new(vec![key("internal-1")]).unwrap();
        let forger = ServiceKeys::new(vec![key("internal-1")]).unwrap();
        let forged = forger.sign(&claims()).unwrap();
        assert!(matches!(
            ours.verify(&forged, now()),
            Err(AuthError::InvalidToken(why)) if why == "bad signature"
        ));
    }

    #[test]
    fn an_access_token_is_not_a_service_credential_even_with_the_same_secret() {
        let shared = key("shared");
        let access = TokenKeys::new(vec![shared.clone()]).unwrap();
        let service = ServiceKeys::new(vec![shared]).unwrap();
        let (token, _) = access
            .issue(
                AccessSubject {
                    user_id: Uuid::new_v4(),
                    tenant_id: Uuid::new_v4(),
                    roles: vec!["owner".into()],
                    clients: None,
                    session_id: Uuid::new_v4(),
                    rights_version: 1,
                },
                Duration::from_secs(900),
                now(),
            )
            .unwrap();
        assert!(matches!(
            service.verify(&token, now()),
            Err(AuthError::InvalidToken(why)) if why == "wrong audience"
        ));
        let credential = service.sign(&claims()).unwrap();
        assert!(access.verify(&credential, now()).is_err());
    }

    #[test]
    fn an_unsigned_or_garbled_credential_is_refused() {
        let keys = ServiceKeys::new(vec![key("internal-1")]).unwrap();
        assert!(keys.verify("", now()).is_err());
        assert!(keys.verify("not.a.token", now()).is_err());
        let token = keys.sign(&claims()).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[2] = "";
        assert!(keys.verify(&parts.join("."), now()).is_err());
    }
}
