//! Secrets at rest: the refresh token and the connected app's secret that
//! `casebridge auth login` obtains are sealed with ChaCha20-Poly1305 under a 256-bit key the
//! admin provides (environment variable or key file), and only the sealed form is stored.
//! A wrong key or a tampered record fails to open instead of yielding garbage.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand::RngCore;

use crate::model::Secret;

pub struct Vault {
    cipher: ChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the credentials key must be 32 bytes in base64 (make one with `casebridge auth keygen`)")]
    BadKey,
    #[error("stored credentials cannot be opened: wrong credentials key, or the record was changed")]
    CannotOpen,
}

impl Vault {
    /// A vault from a base64 key, as `casebridge auth keygen` prints one.
    pub fn from_key(key: &Secret) -> Result<Vault, VaultError> {
        let bytes = STANDARD.decode(key.expose().trim()).map_err(|_| VaultError::BadKey)?;
        let cipher = ChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| VaultError::BadKey)?;
        Ok(Vault { cipher })
    }

    /// A new random key, in base64.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        STANDARD.encode(key)
    }

    /// Seals a secret: base64 of a random nonce followed by the ciphertext and tag.
    pub fn seal(&self, secret: &Secret) -> String {
        let mut nonce = [0u8; 12];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), secret.expose().as_bytes())
            .expect("encryption with a valid key does not fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Result<Secret, VaultError> {
        let bytes = STANDARD.decode(sealed).map_err(|_| VaultError::CannotOpen)?;
        if bytes.len() < 12 + 16 {
            return Err(VaultError::CannotOpen);
        }
        let (nonce, body) = bytes.split_at(12);
        let plain = self.cipher.decrypt(Nonce::from_slice(nonce), body).map_err(|_| VaultError::CannotOpen)?;
        String::from_utf8(plain).map(Secret::new).map_err(|_| VaultError::CannotOpen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_opens_and_refuses_wrong_keys_and_tampering() {
        let vault = Vault::from_key(&Secret::new(Vault::generate_key())).unwrap();
        let sealed = vault.seal(&Secret::new("5Aep861-refresh"));
        assert!(!sealed.contains("refresh"));
        assert_eq!(vault.open(&sealed).unwrap().expose(), "5Aep861-refresh");
        assert_ne!(sealed, vault.seal(&Secret::new("5Aep861-refresh")), "a fresh nonce each time");
        let other = Vault::from_key(&Secret::new(Vault::generate_key())).unwrap();
        assert!(other.open(&sealed).is_err());
        let mut tampered = STANDARD.decode(&sealed).unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(vault.open(&STANDARD.encode(tampered)).is_err());
        assert!(Vault::from_key(&Secret::new("short")).is_err());
    }
}
