//! The keys that sign access tokens: from the config's files, or for a
//! single node, one generated once and kept under the data directory.

use std::path::Path;

use anyhow::Context;
use switchboard_auth::{SigningKey, TokenKeys, generate_secret};
use switchboard_config::Config;

const GENERATED_KID: &str = "local-1";

pub fn token_keys(config: &Config) -> anyhow::Result<TokenKeys> {
    let keys = if config.auth.signing_keys.is_empty() {
        vec![generated_key(&config.data_dir.join("auth"))?]
    } else {
        config
            .auth
            .signing_keys
            .iter()
            .enumerate()
            .map(|(index, key)| {
                SigningKey::from_file(key.kid.clone(), &key.secret_file).with_context(|| {
                    format!(
                        "config key `auth.signing_keys[{index}]` ({})",
                        key.secret_file.display()
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?
    };
    Ok(TokenKeys::new(keys)?)
}

/// Reads `<dir>/<kid>.key`, creating it (mode 0600) the first time.
fn generated_key(dir: &Path) -> anyhow::Result<SigningKey> {
    let path = dir.join(format!("{GENERATED_KID}.key"));
    if !path.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let secret = hex::encode(generate_secret());
        let temporary = dir.join(format!(".{GENERATED_KID}.key.tmp"));
        std::fs::write(&temporary, secret)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        }
        // A hard link fails if another process created the key meanwhile:
        // then both use that one.
        let _ = std::fs::hard_link(&temporary, &path);
        let _ = std::fs::remove_file(&temporary);
    }
    SigningKey::from_file(GENERATED_KID, &path)
        .with_context(|| format!("cannot read the signing key {}", path.display()))
}
