//! High-entropy credentials we generate: API keys and opaque tokens
//! (refresh, invitation, email verification).
//!
//! They are random, with more than 230 bits of entropy, so guessing one
//! from its stored hash is hopeless whatever the hash costs: we store a
//! plain SHA-256 (FIPS 180-4) of the plaintext, in lowercase hex, and look
//! it up by that hash. A slow password hash (Argon2) would add nothing but
//! latency to every API call. The plaintext is shown to its owner once, at
//! creation.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Start of a production API key.
pub const LIVE_API_KEY_PREFIX: &str = "sk_live_";
/// Start of a test-mode API key.
pub const TEST_API_KEY_PREFIX: &str = "sk_test_";
/// Random base62 characters after the `sk_live_`/`sk_test_` marker:
/// 40 × log2(62) ≈ 238 bits.
const API_KEY_RANDOM_CHARS: usize = 40;
/// How many leading characters of an API key are kept in clear to tell
/// keys apart in listings (`sk_live_AbCd`).
pub const API_KEY_DISPLAY_PREFIX_CHARS: usize = 12;

/// Start of a refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "rt_";
/// Start of an invitation token.
pub const INVITATION_TOKEN_PREFIX: &str = "inv_";
/// Start of an email-verification token.
pub const VERIFICATION_TOKEN_PREFIX: &str = "ver_";
/// Random bytes in an opaque token (256 bits).
const OPAQUE_TOKEN_BYTES: usize = 32;

/// A freshly generated API key: `plaintext` goes to its owner once; store
/// `prefix` (for display) and `hash` (to look the key up).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret {
    /// `sk_live_` or `sk_test_`, then 40 base62 characters.
    pub plaintext: String,
    /// The first [`API_KEY_DISPLAY_PREFIX_CHARS`] characters of `plaintext`.
    pub prefix: String,
    /// [`hash_secret`] of `plaintext`.
    pub hash: String,
}

impl ApiKeySecret {
    /// A new random key, live or test mode.
    pub fn generate(live: bool) -> Self {
        let marker = if live {
            LIVE_API_KEY_PREFIX
        } else {
            TEST_API_KEY_PREFIX
        };
        let mut plaintext = String::with_capacity(marker.len() + API_KEY_RANDOM_CHARS);
        plaintext.push_str(marker);
        Alphanumeric.append_string(&mut rand::rng(), &mut plaintext, API_KEY_RANDOM_CHARS);
        let prefix = plaintext
            .chars()
            .take(API_KEY_DISPLAY_PREFIX_CHARS)
            .collect();
        let hash = hash_secret(&plaintext);
        Self {
            plaintext,
            prefix,
            hash,
        }
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeySecret")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// A freshly generated opaque token: `plaintext` goes to the client (or in
/// the email link); store `hash`.
#[derive(Clone, PartialEq, Eq)]
pub struct OpaqueToken {
    /// The prefix, then 32 random bytes in unpadded base64url (RFC 4648 §5).
    pub plaintext: String,
    /// [`hash_secret`] of `plaintext`.
    pub hash: String,
}

impl OpaqueToken {
    /// A new random token starting with `prefix` ([`REFRESH_TOKEN_PREFIX`],
    /// [`INVITATION_TOKEN_PREFIX`], [`VERIFICATION_TOKEN_PREFIX`]).
    pub fn generate(prefix: &str) -> Self {
        let mut random = [0u8; OPAQUE_TOKEN_BYTES];
        rand::rng().fill_bytes(&mut random);
        let mut plaintext = String::with_capacity(prefix.len() + 43);
        plaintext.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(random, &mut plaintext);
        let hash = hash_secret(&plaintext);
        Self { plaintext, hash }
    }
}

impl fmt::Debug for OpaqueToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueToken").finish_non_exhaustive()
    }
}

/// Lowercase hex SHA-256 of `plaintext`: what is stored for, and looked up
/// from, an API key or opaque token the client presents.
pub fn hash_secret(plaintext: &str) -> String {
    hex::encode(Sha256::digest(plaintext.as_bytes()))
}

/// Whether `candidate` has the shape of an API key (`sk_live_`/`sk_test_`
/// and 40 base62 characters). Syntax only, no lookup: lets the gateway tell
/// an API key from a JWT (which starts with `eyJ`) in one `Authorization`
/// header.
pub fn looks_like_api_key(candidate: &str) -> bool {
    let random = candidate
        .strip_prefix(LIVE_API_KEY_PREFIX)
        .or_else(|| candidate.strip_prefix(TEST_API_KEY_PREFIX));
    random.is_some_and(|random| {
        random.len() == API_KEY_RANDOM_CHARS
            && random.bytes().all(|byte| byte.is_ascii_alphanumeric())
    })
}

/// Compares two secrets in time independent of where they differ (their
/// lengths may leak, which is public anyway).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn api_key_has_marker_40_base62_chars_prefix_and_hash() {
        for (live, marker) in [(true, "sk_live_"), (false, "sk_test_")] {
            let key = ApiKeySecret::generate(live);
            let random = key.plaintext.strip_prefix(marker).expect("marker");
            assert_eq!(random.len(), 40);
            assert!(random.bytes().all(|b| b.is_ascii_alphanumeric()));
            assert_eq!(key.prefix.len(), 12);
            assert!(key.plaintext.starts_with(&key.prefix));
            assert_eq!(key.hash, hash_secret(&key.plaintext));
            assert_eq!(key.hash.len(), 64);
            assert!(
                key.hash
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            );
            assert!(looks_like_api_key(&key.plaintext));
        }
    }

    #[test]
    fn api_keys_are_unique_over_1000_generations() {
        let keys: HashSet<String> = (0..1000)
            .map(|_| ApiKeySecret::generate(true).plaintext)
            .collect();
        assert_eq!(keys.len(), 1000);
        let hashes: HashSet<String> = keys.iter().map(|key| hash_secret(key)).collect();
        assert_eq!(hashes.len(), 1000);
    }

    #[test]
    fn opaque_token_has_prefix_and_32_bytes_of_base64url() {
        for prefix in [
            REFRESH_TOKEN_PREFIX,
            INVITATION_TOKEN_PREFIX,
            VERIFICATION_TOKEN_PREFIX,
        ] {
            let token = OpaqueToken::generate(prefix);
            let random = token.plaintext.strip_prefix(prefix).expect("prefix");
            assert_eq!(random.len(), 43);
            assert_eq!(URL_SAFE_NO_PAD.decode(random).expect("base64url").len(), 32);
            assert_eq!(token.hash, hash_secret(&token.plaintext));
        }
    }

    #[test]
    fn opaque_tokens_are_unique_over_1000_generations() {
        let tokens: HashSet<String> = (0..1000)
            .map(|_| OpaqueToken::generate(REFRESH_TOKEN_PREFIX).plaintext)
            .collect();
        assert_eq!(tokens.len(), 1000);
    }

    #[test]
    fn hash_is_stable_lowercase_hex_sha256() {
        // FIPS 180-2 test vector.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = "rt_SomeTokenValue";
        assert_eq!(hash_secret(token), hash_secret(token));
        assert_ne!(hash_secret(token), hash_secret("rt_SomeTokenValuf"));
    }

    #[test]
    fn api_key_syntax_check_rejects_jwts_and_near_misses() {
        let body = "A".repeat(40);
        assert!(looks_like_api_key(&format!("sk_live_{body}")));
        assert!(looks_like_api_key(&format!("sk_test_{body}")));
        for candidate in [
            String::new(),
            "sk_live_".into(),
            format!("sk_live_{}", "A".repeat(39)),
            format!("sk_live_{}", "A".repeat(41)),
            format!("sk_live_{}-", "A".repeat(39)),
            format!("sk_prod_{body}"),
            format!("SK_LIVE_{body}"),
            format!(" sk_live_{body}"),
            format!("sk_live_{}é", "A".repeat(38)),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln".into(),
            OpaqueToken::generate(REFRESH_TOKEN_PREFIX).plaintext,
        ] {
            assert!(!looks_like_api_key(&candidate), "{candidate:?}");
        }
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"same", b"same"));
        assert!(!constant_time_eq(b"same", b"sama"));
        assert!(!constant_time_eq(b"same", b"same-but-longer"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn debug_output_hides_plaintext_and_hash() {
        let key = ApiKeySecret::generate(true);
        let debug = format!("{key:?}");
        assert!(debug.contains(&key.prefix));
        assert!(!debug.contains(&key.plaintext));
        assert!(!debug.contains(&key.hash));

        let token = OpaqueToken::generate(INVITATION_TOKEN_PREFIX);
        let debug = format!("{token:?}");
        assert!(!debug.contains(&token.plaintext));
        assert!(!debug.contains(&token.hash));
    }
}
