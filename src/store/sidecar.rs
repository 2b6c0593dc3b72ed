//! Files beside the store: the sealed credentials (read by commands while the daemon holds
//! the store's lock) and other `<store>.<suffix>` files such as the status.

use std::path::{Path, PathBuf};

use super::{Result, StoreError, decode};

/// The sealed credentials live in a file beside the store, not in it: commands that sign
/// in (`setup`, `record`, `rules check --config`) read them while the daemon holds the
/// store's lock.
pub fn credentials_path(store: &Path) -> PathBuf {
    sidecar(store, "credentials.json")
}

/// `casebridge.db` → `casebridge.db.{suffix}`, beside it.
pub fn sidecar(store: &Path, suffix: &str) -> PathBuf {
    let name = store.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "casebridge.db".into());
    store.with_file_name(format!("{name}.{suffix}"))
}

/// The sealed credentials `casebridge auth login` stored for `store`, without opening it.
pub fn read_credentials(store: &Path) -> Result<Option<crate::model::StoredCredentials>> {
    let path = credentials_path(store);
    match crate::bounded_file::read(&path, 64 * 1024) {
        Ok(text) => decode(b"credentials", text.as_bytes()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io { path: path.display().to_string(), source }),
    }
}

/// Writes a file only its owner can read, atomically (a temporary file renamed over it).
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Writes a file only its owner can read, atomically and durably: the temporary file is
/// flushed, renamed over the old, and the folder flushed, so after a crash the file holds
/// the old bytes or the new, and once this returns, the new survive a power cut.
pub fn write_private_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_private(path, bytes)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
