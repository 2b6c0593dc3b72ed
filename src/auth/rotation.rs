//! Keeping a rotated refresh token. With refresh-token rotation on (a connected app or
//! External Client App policy), every refresh returns a new refresh token and voids the old
//! one, so the newest must outlive the process. It is sealed and written atomically (a
//! temporary file, flushed, renamed over the old, the folder flushed) before the access
//! token that came with it is used:
//! - a grant `casebridge auth login` stored: the sealed token in the credentials file is
//!   replaced (under the credentials key);
//! - a refresh token from the configuration (an environment variable or a file, which
//!   casebridge cannot rewrite): `<store>.refresh-token.json`, sealed under a key derived
//!   from the configured token, so a new token the admin configures is never overridden by
//!   one rotated from an older grant (the old file no longer opens, and is replaced).
//!
//! While one process refreshes, others on the same grant (`setup check` beside the daemon)
//! wait on a lock file beside it (`<store>.refresh-token.lock`), then read the newest token:
//! a voided one is never sent, which an org may take for a stolen token.

use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::auth::vault::Vault;
use crate::model::Secret;
use crate::salesforce::auth::RefreshTokenStore;

/// Where a rotated refresh token goes.
#[derive(Debug)]
pub enum RotatedTokens {
    /// The stored grant's credentials file, sealed with the credentials key.
    Stored { store: PathBuf, key: Secret },
    /// A sidecar for a configured token, sealed with a key derived from that token.
    Configured { store: PathBuf, configured: Secret },
}

/// The most bytes the rotated token's file may hold (a sealed token is a few hundred).
const SIDECAR_MAX_BYTES: u64 = 64 * 1024;

#[derive(serde::Serialize, serde::Deserialize)]
struct SidecarFile {
    sealed_refresh_token: String,
    rotated_at: chrono::DateTime<chrono::Utc>,
}

impl RotatedTokens {
    fn vault(&self) -> Result<Vault, String> {
        match self {
            RotatedTokens::Stored { key, .. } => Vault::from_key(key).map_err(|e| e.to_string()),
            RotatedTokens::Configured { configured, .. } => {
                let digest = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    format!("casebridge rotated refresh token\n{}", configured.expose()).as_bytes(),
                );
                Vault::from_key(&Secret::new(STANDARD.encode(digest.as_ref()))).map_err(|e| e.to_string())
            }
        }
    }

    fn sidecar(store: &std::path::Path) -> PathBuf {
        crate::store::sidecar(store, "refresh-token.json")
    }
}

impl RefreshTokenStore for RotatedTokens {
    fn load(&self) -> Option<Secret> {
        let vault = self.vault().ok()?;
        match self {
            RotatedTokens::Stored { store, .. } => {
                let stored = crate::store::read_credentials(store).ok()??;
                vault.open(&stored.sealed_refresh_token).ok()
            }
            RotatedTokens::Configured { store, .. } => {
                let path = Self::sidecar(store);
                let text = match crate::bounded_file::read(&path, SIDECAR_MAX_BYTES) {
                    Ok(text) => text,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
                    Err(e) => {
                        tracing::warn!(file = %path.display(), error = %e, "The rotated refresh token cannot be read; the configured one is used.");
                        return None;
                    }
                };
                let Ok(file) = serde_json::from_str::<SidecarFile>(&text) else {
                    tracing::warn!(file = %path.display(), "The rotated refresh token's file is damaged; the configured one is used.");
                    return None;
                };
                // Sealed for another configured token: not this grant's (the admin configured
                // a new one, which replaces it at its first rotation).
                vault.open(&file.sealed_refresh_token).ok()
            }
        }
    }

    fn save(&self, token: &Secret) -> Result<(), String> {
        let vault = self.vault()?;
        let (path, bytes) = match self {
            RotatedTokens::Stored { store, .. } => {
                let mut stored = crate::store::read_credentials(store)
                    .map_err(|e| e.to_string())?
                    .ok_or("the stored credentials are gone")?;
                stored.sealed_refresh_token = vault.seal(token);
                let bytes = serde_json::to_vec(&stored).map_err(|e| e.to_string())?;
                (crate::store::credentials_path(store), bytes)
            }
            RotatedTokens::Configured { store, .. } => {
                let file = SidecarFile { sealed_refresh_token: vault.seal(token), rotated_at: chrono::Utc::now() };
                (Self::sidecar(store), serde_json::to_vec(&file).map_err(|e| e.to_string())?)
            }
        };
        crate::store::write_private_durably(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// An exclusive `flock` on `<store>.refresh-token.lock`, held by the open file.
    fn exclusive(&self) -> Result<Option<Box<dyn std::any::Any + Send>>, String> {
        let store = match self {
            RotatedTokens::Stored { store, .. } => store,
            // Until a token was ever rotated there is nothing to protect, and a command that
            // only signs in leaves no file behind.
            RotatedTokens::Configured { store, .. } if !Self::sidecar(store).exists() => return Ok(None),
            RotatedTokens::Configured { store, .. } => store,
        };
        let path = crate::store::sidecar(store, "refresh-token.lock");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::io::AsRawFd;
            // SAFETY: flock on a descriptor this function owns; the lock goes with the file.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
                return Err(format!("{}: {}", path.display(), std::io::Error::last_os_error()));
            }
        }
        Ok(Some(Box::new(file)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_damaged_huge_or_special_file_is_no_token_and_no_panic() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("casebridge.db");
        let kept = RotatedTokens::Configured { store: store.clone(), configured: Secret::new("token-a") };
        let path = RotatedTokens::sidecar(&store);
        std::fs::write(&path, "{not json").unwrap();
        assert_eq!(kept.load(), None);
        std::fs::write(&path, "x".repeat(200_000)).unwrap();
        assert_eq!(kept.load(), None);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        assert_eq!(kept.load(), None);
        assert!(kept.save(&Secret::new("t")).is_err(), "a folder in the way is an error, not a panic");
    }

    #[test]
    fn a_configured_token_reads_only_what_was_rotated_from_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("casebridge.db");
        let first = RotatedTokens::Configured { store: store.clone(), configured: Secret::new("token-a") };
        assert_eq!(first.load(), None);
        first.save(&Secret::new("token-a2")).unwrap();
        assert_eq!(first.load(), Some(Secret::new("token-a2")));
        // The admin configured a new grant: the file rotated from the old one is ignored.
        let second = RotatedTokens::Configured { store: store.clone(), configured: Secret::new("token-b") };
        assert_eq!(second.load(), None);
        let text = std::fs::read_to_string(RotatedTokens::sidecar(&store)).unwrap();
        assert!(!text.contains("token-a2"), "sealed: {text}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(RotatedTokens::sidecar(&store)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
