//! Signing deliveries as the Standard Webhooks specification says
//! (<https://www.standardwebhooks.com/>): the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the signature is its
//! HMAC-SHA256 (RFC 2104) under the endpoint's secret, sent base64-encoded
//! as `webhook-signature: v1,<signature>`. A secret is `whsec_` followed by
//! the base64 of 32 random bytes; the key is the decoded bytes.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of every signing secret.
pub const SECRET_PREFIX: &str = "whsec_";
/// The prefix of every key id.
pub const KEY_ID_PREFIX: &str = "whk_";

/// A new signing secret: `whsec_` + base64 of 32 random bytes.
pub fn generate_secret() -> String {
    let key: [u8; 32] = rand::random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// A new key id, `whk_` + 16 hex digits: names the secret in
/// `webhook-key-id`, so a receiver holding several knows which to use.
pub fn generate_key_id() -> String {
    format!("{KEY_ID_PREFIX}{:016x}", rand::random::<u64>())
}

/// The HMAC key of `secret` (the bytes after `whsec_`, base64-decoded).
/// `None` if the secret is not in that form.
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// The value of `webhook-signature` for `body`, sent as message `id` at
/// `timestamp` (Unix seconds): `v1,<base64 HMAC-SHA256>`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_webhooks_reference_vector() {
        // From the Standard Webhooks reference libraries' tests.
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let signature = sign(
            &key,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_generated_secret_decodes_to_32_bytes() {
        let secret = generate_secret();
        assert!(secret.starts_with("whsec_"));
        assert_eq!(key_of(&secret).unwrap().len(), 32);
        assert_ne!(secret, generate_secret());
    }

    #[test]
    fn key_ids_are_prefixed_and_distinct() {
        let id = generate_key_id();
        assert!(id.starts_with("whk_") && id.len() == 20, "{id}");
        assert_ne!(id, generate_key_id());
    }

    #[test]
    fn a_secret_without_the_prefix_has_no_key() {
        assert_eq!(key_of("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), None);
        assert_eq!(key_of("whsec_not base64!"), None);
    }
}
