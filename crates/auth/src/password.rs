//! User passwords: hashed with Argon2id (RFC 9106) with OWASP's minimum
//! parameters (m = 19 MiB, t = 2, p = 1), stored as PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), plus the strength rules
//! applied when a user picks one.
//!
//! Hashing is deliberately slow (tens of milliseconds, 19 MiB of memory):
//! on an async path call [`hash_password_async`] / [`verify_password_async`],
//! which run it on tokio's blocking pool and let at most a few run at once
//! (twice the CPU count), so a burst of logins queues instead of starving
//! the runtime or exhausting memory.
//!
//! To keep login from telling which emails exist by how long it takes,
//! run [`verify_against_dummy`] when there is no such user: it costs the
//! same as a real verification and always fails.
//!
//! Hashing itself is done by the `argon2` crate; this module picks the
//! parameters and the rules.

use std::sync::LazyLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::error::AuthError;

/// Memory cost in KiB (19 MiB), OWASP's recommendation for Argon2id.
const M_COST_KIB: u32 = 19 * 1024;
/// Iterations.
const T_COST: u32 = 2;
/// Lanes.
const P_COST: u32 = 1;
/// Random salt length (RFC 9106 §3.1 recommends 16 bytes).
const SALT_LEN: usize = 16;

const PARAMS: Params = match Params::new(M_COST_KIB, T_COST, P_COST, None) {
    Ok(params) => params,
    Err(_) => panic!("OWASP Argon2id parameters are valid"),
};

/// The most a stored hash may ask for when verifying: a corrupted or
/// planted PHC string must not make one login allocate gigabytes or spin
/// for minutes. Our own hashes sit far below.
const MAX_VERIFY_M_COST_KIB: u32 = 256 * 1024;
const MAX_VERIFY_T_COST: u32 = 16;
const MAX_VERIFY_P_COST: u32 = 16;

/// Shortest and longest passwords accepted by [`check_password_strength`],
/// in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 256;
/// From this length on, a password of one kind of character (say, only
/// lowercase letters) is long enough to be accepted.
const SINGLE_CLASS_MIN_CHARS: usize = 16;

/// A valid Argon2id hash with our parameters, of a random password nobody
/// knows, for [`verify_against_dummy`]. A test checks that its parameters
/// match the ones [`hash_password`] uses; regenerate it when they change.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$1/jDGwgKhDIE3MzB3tYXmA$Jb392v59qJxcI7H59QSew2RY4SNYIkMM76sj4GI+4Qw";

/// Some of the most used passwords (from public breach corpora), lower
/// case. A password matches when, lower-cased, it is one of these, or one of
/// these followed by digits and symbols (`Password2024!`).
const COMMON_PASSWORDS: &[&str] = &[
    "password",
    "passw0rd",
    "p@ssw0rd",
    "p@ssword",
    "123456",
    "12345678",
    "123456789",
    "1234567890",
    "0987654321",
    "987654321",
    "1111111111",
    "123123123",
    "qwerty",
    "qwertyuiop",
    "qwertyui",
    "asdfghjkl",
    "zxcvbnm",
    "qazwsxedc",
    "1qaz2wsx",
    "1qaz2wsx3edc",
    "zaq12wsx",
    "zaq1zaq1",
    "1q2w3e4r",
    "1q2w3e4r5t",
    "1q2w3e4r5t6y",
    "q1w2e3r4t5",
    "q1w2e3r4t5y6",
    "abc123",
    "abcd1234",
    "abcdefghij",
    "aa123456",
    "iloveyou",
    "admin",
    "administrator",
    "welcome",
    "letmein",
    "changeme",
    "secret",
    "login",
    "monkey",
    "dragon",
    "football",
    "baseball",
    "sunshine",
    "princess",
    "superman",
    "starwars",
    "trustno1",
    "whatever",
    "master",
    "shadow",
    "michael",
    "computer",
    "internet",
    "freedom",
    "switchboard",
];

static HASHING_PERMITS: LazyLock<Semaphore> = LazyLock::new(|| {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    Semaphore::new(cpus.saturating_mul(2))
});

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, PARAMS)
}

/// Hashes `password` with Argon2id and a fresh random salt; returns the PHC
/// string to store. Blocks for tens of milliseconds: see
/// [`hash_password_async`].
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let mut salt = [0u8; SALT_LEN];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)
        .map_err(|error| AuthError::Internal(format!("cannot encode password salt: {error}")))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| AuthError::Internal(format!("cannot hash password: {error}")))
}

/// Whether `password` matches the stored PHC string `phc`. False, never a
/// panic, when `phc` is malformed, is not Argon2id, or asks for more than
/// 256 MiB, 16 iterations or 16 lanes. Blocks: see
/// [`verify_password_async`].
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    if hash.algorithm != Algorithm::Argon2id.ident() {
        return false;
    }
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    if params.m_cost() > MAX_VERIFY_M_COST_KIB
        || params.t_cost() > MAX_VERIFY_T_COST
        || params.p_cost() > MAX_VERIFY_P_COST
    {
        return false;
    }
    argon2().verify_password(password.as_bytes(), &hash).is_ok()
}

/// Whether `phc` should be replaced by a fresh [`hash_password`] at the
/// next successful login: it is not Argon2id v1.3 with today's parameters
/// (or does not parse).
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&hash) else {
        return true;
    };
    hash.algorithm != Algorithm::Argon2id.ident()
        || hash.version != Some(Version::V0x13.into())
        || params.m_cost() != M_COST_KIB
        || params.t_cost() != T_COST
        || params.p_cost() != P_COST
}

/// Spends the time of one [`verify_password`] and returns false: call it at
/// login when the email matches no user, so the answer takes as long as a
/// wrong password would.
pub fn verify_against_dummy(password: &str) -> bool {
    let _ = verify_password(password, DUMMY_HASH);
    false
}

/// [`hash_password`] on the blocking pool, for async callers.
pub async fn hash_password_async(password: String) -> Result<String, AuthError> {
    let _permit = acquire_hashing_permit().await?;
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| AuthError::Internal(format!("password hashing task failed: {error}")))?
}

/// [`verify_password`] on the blocking pool, for async callers. False also
/// when the task fails (logged).
pub async fn verify_password_async(password: String, phc: String) -> bool {
    let Ok(_permit) = acquire_hashing_permit().await else {
        return false;
    };
    match tokio::task::spawn_blocking(move || verify_password(&password, &phc)).await {
        Ok(matches) => matches,
        Err(error) => {
            tracing::error!(%error, "password verification task failed");
            false
        }
    }
}

/// [`verify_against_dummy`] on the blocking pool, for async callers.
pub async fn verify_against_dummy_async(password: String) -> bool {
    let _ = verify_password_async(password, DUMMY_HASH.to_owned()).await;
    false
}

async fn acquire_hashing_permit() -> Result<tokio::sync::SemaphorePermit<'static>, AuthError> {
    HASHING_PERMITS
        .acquire()
        .await
        .map_err(|_| AuthError::Internal("password hashing is shut down".into()))
}

/// Checks a password a user is choosing (sign-up, change, reset) against
/// our rules: 10 to 256 characters; not one of the most common passwords;
/// when shorter than 16 characters, more than one kind of character; not
/// containing the part of `email` before the `@` (when that is at least 3
/// characters). The error says, for the user, which rule failed.
pub fn check_password_strength(password: &str, email: &str) -> Result<(), AuthError> {
    let weak = |why: String| Err(AuthError::WeakPassword(why));
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return weak(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters long (it has {chars})"
        ));
    }
    if chars > MAX_PASSWORD_CHARS {
        return weak(format!(
            "the password must be at most {MAX_PASSWORD_CHARS} characters long (it has {chars})"
        ));
    }

    let lower = password.to_lowercase();
    if COMMON_PASSWORDS.contains(&lower.as_str()) {
        return weak("this password is one of the most commonly used; choose another".into());
    }
    let stem = lower.trim_end_matches(|c: char| !c.is_alphabetic());
    if !stem.is_empty() && COMMON_PASSWORDS.contains(&stem) {
        return weak(
            "this password is a commonly used one with digits or symbols added; choose another"
                .into(),
        );
    }

    if chars < SINGLE_CLASS_MIN_CHARS
        && let Some(class) = single_class(password)
    {
        return weak(format!(
            "the password uses only {class}; mix in other kinds of characters \
             or make it at least {SINGLE_CLASS_MIN_CHARS} characters long"
        ));
    }

    let local_part = email
        .trim()
        .rsplit_once('@')
        .map_or(email.trim(), |(local, _)| local)
        .to_lowercase();
    if local_part.chars().count() >= 3 && lower.contains(&local_part) {
        return weak(
            "the password must not contain your email address (the part before the @)".into(),
        );
    }
    Ok(())
}

/// The one kind of character `password` is made of, if it is made of only
/// one.
fn single_class(password: &str) -> Option<&'static str> {
    let class = |c: char| {
        if c.is_lowercase() {
            "lowercase letters"
        } else if c.is_uppercase() {
            "uppercase letters"
        } else if c.is_numeric() {
            "digits"
        } else if c.is_alphabetic() {
            "letters"
        } else {
            "symbols"
        }
    };
    let mut chars = password.chars();
    let first = class(chars.next()?);
    chars.all(|c| class(c) == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weak_reason(password: &str, email: &str) -> String {
        match check_password_strength(password, email) {
            Err(AuthError::WeakPassword(why)) => why,
            other => panic!("expected WeakPassword for {password:?}, got {other:?}"),
        }
    }

    #[test]
    fn hashed_password_verifies_and_wrong_one_does_not() {
        let phc = hash_password("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
        assert!(!needs_rehash(&phc));
    }

    #[test]
    fn same_password_hashes_differently_each_time() {
        let first = hash_password("same password twice").expect("hash");
        let second = hash_password("same password twice").expect("hash");
        assert_ne!(first, second, "salts must be random");
    }

    #[test]
    fn malformed_or_foreign_hashes_never_verify() {
        for phc in [
            "",
            "not a hash",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$!!!",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            // Argon2i with otherwise valid fields: not what we store.
            "$argon2i$v=19$m=19456,t=2,p=1$5lDozcz6ec3ZHeO7yB+dMQ$cJtB8HCVUdj1HlDWhJprTw1Rzdrk0ne4YbzQcvuChSU",
            // A planted hash asking for 4 GiB of memory.
            "$argon2id$v=19$m=4194304,t=2,p=1$5lDozcz6ec3ZHeO7yB+dMQ$cJtB8HCVUdj1HlDWhJprTw1Rzdrk0ne4YbzQcvuChSU",
            "$argon2id$v=19$m=19456,t=1000,p=1$5lDozcz6ec3ZHeO7yB+dMQ$cJtB8HCVUdj1HlDWhJprTw1Rzdrk0ne4YbzQcvuChSU",
        ] {
            assert!(!verify_password("password", phc), "{phc}");
            assert!(needs_rehash(phc), "{phc}");
        }
    }

    #[test]
    fn weaker_parameters_need_a_rehash() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8, 1, 1, None).expect("params"),
        );
        let salt = SaltString::encode_b64(&[1u8; 16]).expect("salt");
        let phc = weak
            .hash_password(b"an old password", &salt)
            .expect("hash")
            .to_string();
        assert!(verify_password("an old password", &phc));
        assert!(needs_rehash(&phc));
    }

    #[test]
    fn dummy_hash_uses_current_parameters_and_never_matches() {
        assert!(
            !needs_rehash(DUMMY_HASH),
            "regenerate DUMMY_HASH with hash_password"
        );
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!verify_against_dummy("password"));
        assert!(!verify_against_dummy(""));
    }

    #[tokio::test]
    async fn async_wrappers_hash_and_verify_on_the_blocking_pool() {
        let phc = hash_password_async("an async password".into())
            .await
            .expect("hash");
        assert!(verify_password_async("an async password".into(), phc.clone()).await);
        assert!(!verify_password_async("another password".into(), phc).await);
        assert!(!verify_against_dummy_async("an async password".into()).await);
    }

    #[test]
    fn short_password_is_refused_counting_characters_not_bytes() {
        assert_eq!(
            weak_reason("Sh0rt!", "a@example.com"),
            "the password must be at least 10 characters long (it has 6)"
        );
        // 9 characters, 18 bytes.
        assert!(weak_reason("éééééééé1", "a@example.com").contains("it has 9"));
        // 10 characters of two kinds.
        assert!(check_password_strength("ééééééééé1", "a@example.com").is_ok());
    }

    #[test]
    fn overlong_password_is_refused() {
        let long = "aB3$".repeat(65);
        assert!(weak_reason(&long, "a@example.com").contains("at most 256"));
        assert!(check_password_strength(&long[..256], "a@example.com").is_ok());
    }

    #[test]
    fn single_kind_of_character_is_refused_below_16_characters() {
        assert!(
            weak_reason("4815162342", "a@example.com").contains("only digits"),
            "all digits"
        );
        assert!(weak_reason("horsebatterystp", "a@example.com").contains("only lowercase letters"));
        assert!(weak_reason("HORSEBATTERYSTP", "a@example.com").contains("only uppercase letters"));
        assert!(weak_reason("!@#$%^&*()_+", "a@example.com").contains("only symbols"));
        // 16 characters of one kind are enough.
        assert!(check_password_strength("horsebatterystap", "a@example.com").is_ok());
        assert!(check_password_strength("horsebatterys7p", "a@example.com").is_ok());
    }

    #[test]
    fn common_passwords_are_refused_even_with_digits_appended() {
        assert!(weak_reason("qwertyuiop", "a@example.com").contains("most commonly used"));
        assert!(weak_reason("QwertyUIOP", "a@example.com").contains("most commonly used"));
        assert!(weak_reason("1234567890", "a@example.com").contains("most commonly used"));
        assert!(weak_reason("Password2024!", "a@example.com").contains("digits or symbols added"));
        assert!(weak_reason("Switchboard123", "a@example.com").contains("digits or symbols added"));
        assert!(check_password_strength("Password-manager-2024", "a@example.com").is_ok());
    }

    #[test]
    fn password_containing_the_email_name_is_refused() {
        let why = weak_reason("xx-JohnSmith-2024", "johnsmith@example.com");
        assert!(why.contains("email address"), "{why}");
        assert!(weak_reason("my-Jane.Doe-77", "Jane.Doe@example.com").contains("email address"));
        // A local part shorter than 3 characters is not checked.
        assert!(check_password_strength("Jo-is-my-name-77", "jo@example.com").is_ok());
        // The domain does not count.
        assert!(check_password_strength("example-Pa55-word", "jane@example.com").is_ok());
    }

    #[test]
    fn good_password_passes() {
        assert!(
            check_password_strength("correct horse battery staple", "jane@example.com").is_ok()
        );
        assert!(check_password_strength("Tr0ub4dor&3x", "jane@example.com").is_ok());
    }
}
