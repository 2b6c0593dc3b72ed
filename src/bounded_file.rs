//! Reading a file someone else controls (the config, a secret, a rule file, a fixture, the
//! status file, a model's files) without trusting it: only a regular file (opened without blocking and
//! checked after opening, so a FIFO or a device swapped in is refused, never waited on),
//! at most `max` bytes, UTF-8.

use std::io::{Error, ErrorKind, Read};
use std::path::Path;

/// The file's text, or an error saying why it was refused.
pub fn read(path: &Path, max: u64) -> std::io::Result<String> {
    let bytes = read_bytes(path, max)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::new(ErrorKind::InvalidData, format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()))
    })
}

/// The file's bytes (a model's weights, say), or an error saying why it was refused.
pub fn read_bytes(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(Error::other("not a regular file"));
    }
    let too_large = || Error::other(format!("larger than {} KiB (the limit for this kind of file)", max / 1024));
    if meta.len() > max {
        return Err(too_large());
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_huge_and_binary_files_are_refused() {
        assert!(read(Path::new("/dev/zero"), 1024).unwrap_err().to_string().contains("not a regular file"));
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 2048]).unwrap();
        assert!(read(&big, 1024).unwrap_err().to_string().contains("larger than 1 KiB"));
        std::fs::write(&big, [0xff, 0xfe]).unwrap();
        assert!(read(&big, 1024).unwrap_err().to_string().contains("not UTF-8"));
        std::fs::write(&big, "fine").unwrap();
        assert_eq!(read(&big, 1024).unwrap(), "fine");
    }
}
