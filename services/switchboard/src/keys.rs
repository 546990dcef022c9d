//! The keys that sign access tokens and service credentials: from the
//! config's files, or for the nodes of one machine, one generated once and
//! kept under the data directory.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use switchboard_auth::{ServiceKeys, SigningKey, TokenKeys, generate_secret};
use switchboard_config::{Config, SigningKeyConfig};

const GENERATED_KID: &str = "local-1";

pub fn token_keys(config: &Config) -> anyhow::Result<TokenKeys> {
    let keys = configured_or_generated(
        &config.auth.signing_keys,
        "auth.signing_keys",
        &config.data_dir.join("auth"),
    )?;
    Ok(TokenKeys::new(keys)?)
}

/// The internal keys that sign and check service credentials
/// (`[internal] signing_keys`).
pub fn service_keys(config: &Config) -> anyhow::Result<ServiceKeys> {
    let keys = configured_or_generated(
        &config.internal.signing_keys,
        "internal.signing_keys",
        &config.data_dir.join("internal"),
    )?;
    Ok(ServiceKeys::new(keys)?)
}

/// The keys that seal the edge's digest nonces (`[edge] digest_keys`),
/// first sealing: every edge replica needs the same.
pub fn digest_keys(config: &Config) -> anyhow::Result<Vec<Vec<u8>>> {
    let keys = configured_or_generated(
        &config.edge.digest_keys,
        "edge.digest_keys",
        &config.data_dir.join("edge"),
    )?;
    Ok(keys.into_iter().map(|key| key.secret).collect())
}

fn configured_or_generated(
    configured: &[SigningKeyConfig],
    name: &str,
    generated_in: &Path,
) -> anyhow::Result<Vec<SigningKey>> {
    if configured.is_empty() {
        return Ok(vec![generated_key(generated_in)?]);
    }
    configured
        .iter()
        .enumerate()
        .map(|(index, key)| {
            SigningKey::from_file(key.kid.clone(), &key.secret_file).with_context(|| {
                format!(
                    "config key `{name}[{index}]` ({})",
                    key.secret_file.display()
                )
            })
        })
        .collect()
}

/// Reads `<dir>/<kid>.key`, creating it (mode 0600) the first time.
fn generated_key(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = dir.join(format!("{GENERATED_KID}.key"));
    if !path.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let secret = hex::encode(generate_secret());
        let temporary = dir.join(format!(".{GENERATED_KID}.key.{}.tmp", std::process::id()));
        let written = create_private(&temporary).and_then(|mut file| {
            file.write_all(secret.as_bytes())
                .and_then(|()| file.sync_all())
        });
        if let Err(error) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(error).with_context(|| format!("cannot write {}", temporary.display()));
        }
        // A hard link fails if another process created the key meanwhile:
        // then both use that one.
        let _ = std::fs::hard_link(&temporary, &path);
        let _ = std::fs::remove_file(&temporary);
    }
    SigningKey::from_file(GENERATED_KID, &path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))
}

/// Creates a new file that only its owner can read or write: the mode is
/// given to `open(2)`, so the file is never readable by others, not even
/// between its creation and a later `chmod`. Fails if `path` exists.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_key_file_is_owner_only_from_its_creation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fresh.key");
        let file = create_private(&path).unwrap();
        // Before anything is written or changed: the mode it was born with.
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        assert!(create_private(&path).is_err(), "never reuses a file");
    }

    #[test]
    fn the_generated_signing_key_is_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        generated_key(dir.path()).unwrap();
        let path = dir.path().join(format!("{GENERATED_KID}.key"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        // Nothing is left behind, and a second start reads the same key.
        let entries = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(entries, 1);
        generated_key(dir.path()).unwrap();
    }
}
