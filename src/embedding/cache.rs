//! Passage vectors kept on disk, so a restart or a reload of an unchanged help centre
//! embeds nothing and a changed article re-embeds only its changed passages.
//!
//! One file a model, `<fingerprint>.vectors` in the cache folder: a header naming the
//! model and the width, then records of a passage text's SHA-256 and its vector. New
//! vectors are appended; when most records belong to passages no longer asked for, the
//! file is rewritten with the live ones (a temp file renamed over it). It is a cache: a
//! torn last record or a damaged one (not finite, not of unit length) is dropped and
//! embedded again, never trusted. One process writes it at a time (a lock file beside
//! it); another (`casebridge agent ask` while the daemon runs) reads it and keeps what it
//! embeds in memory.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::{EmbeddingError, Encoder, file_error};

const MAGIC: &[u8] = b"casebridge-vectors 1\n";
/// The largest cache file read (a million passages of 384 numbers is 1.6 GB).
pub const MAX_CACHE_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// How far a stored vector's length may stray from 1 before it is taken as damaged.
const UNIT_TOLERANCE: f32 = 1e-3;

type Key = [u8; 32];

/// A vector the cache may keep: finite, of unit length.
fn is_unit(vector: &[f32]) -> bool {
    let length = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    length.is_finite() && (length - 1.0).abs() <= UNIT_TOLERANCE
}

/// The cache's writer lock (`flock`, released when the file closes), or `None` when another
/// process holds it.
fn writer_lock(path: &Path) -> Result<Option<std::fs::File>, EmbeddingError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|e| file_error(path, e))?;
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Ok(None);
        }
    }
    Ok(Some(file))
}

/// What one call to [`VectorCache::vectors`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Vectors read from the cache.
    pub reused: usize,
    /// Vectors the model computed (and the cache now keeps).
    pub embedded: usize,
}

/// The vectors one model made, by text.
#[derive(Debug)]
pub struct VectorCache {
    path: PathBuf,
    dim: usize,
    known: HashMap<Key, Vec<f32>>,
    /// Records in the file (live or not): when they are more than twice what is asked
    /// for, the file is rewritten.
    records: usize,
    /// The lock that makes this process the file's one writer; `None`: another process
    /// holds it, and this one only reads.
    lock: Option<std::fs::File>,
}

fn key(text: &str) -> Key {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    digest.as_ref().try_into().unwrap_or([0; 32])
}

fn header(encoder: &Encoder) -> Vec<u8> {
    let mut h = MAGIC.to_vec();
    h.extend_from_slice(encoder.fingerprint().as_bytes());
    h.push(b'\n');
    h.extend_from_slice(&(encoder.dim() as u32).to_le_bytes());
    h
}

impl VectorCache {
    /// The cache of `encoder`'s vectors in `dir` (made if missing).
    pub fn open(dir: &Path, encoder: &Encoder) -> Result<VectorCache, EmbeddingError> {
        std::fs::create_dir_all(dir).map_err(|e| file_error(dir, format!("cannot make the vector cache: {e}")))?;
        let path = dir.join(format!("{}.vectors", encoder.fingerprint()));
        let lock = writer_lock(&path.with_extension("lock"))?;
        let dim = encoder.dim();
        let mut cache = VectorCache { path, dim, known: HashMap::new(), records: 0, lock };
        let bytes = match crate::bounded_file::read_bytes(&cache.path, MAX_CACHE_BYTES) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(file_error(&cache.path, e)),
        };
        let head = header(encoder);
        if bytes.starts_with(&head) {
            let record = 32 + 4 * dim;
            for chunk in bytes[head.len()..].chunks_exact(record) {
                let vector: Vec<f32> =
                    chunk[32..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
                if is_unit(&vector) {
                    cache.known.insert(chunk[..32].try_into().unwrap_or([0; 32]), vector);
                }
                cache.records += 1;
            }
        }
        // A file of another shape, a torn tail or dropped records: start it again from
        // what was kept.
        let damaged = cache.records != cache.known.len() || bytes.len() != head.len() + cache.records * (32 + 4 * dim);
        if damaged && cache.lock.is_some() {
            let keep: Vec<Key> = cache.known.keys().copied().collect();
            cache.rewrite(encoder, &keep)?;
        }
        Ok(cache)
    }

    /// How many vectors the cache holds.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The file the vectors live in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A vector for each text, in order: from the cache where it has one, else embedded
    /// (and appended to the file).
    pub fn vectors(&mut self, encoder: &Encoder, texts: &[&str]) -> Result<(Vec<Vec<f32>>, CacheUse), EmbeddingError> {
        let keys: Vec<Key> = texts.iter().map(|t| key(t)).collect();
        let mut missing: Vec<usize> = Vec::new();
        let mut seen = HashSet::new();
        for (i, k) in keys.iter().enumerate() {
            if !self.known.contains_key(k) && seen.insert(*k) {
                missing.push(i);
            }
        }
        let fresh = encoder.embed_all(&missing.iter().map(|&i| texts[i]).collect::<Vec<_>>())?;
        self.append(encoder, missing.iter().map(|&i| keys[i]).zip(fresh))?;
        let used = CacheUse { reused: texts.len() - missing.len(), embedded: missing.len() };
        if self.records > 2 * keys.len().max(16) {
            self.rewrite(encoder, &keys)?;
        }
        let vectors = keys.iter().map(|k| self.known.get(k).cloned().unwrap_or_default()).collect();
        Ok((vectors, used))
    }

    fn append(&mut self, encoder: &Encoder, new: impl Iterator<Item = (Key, Vec<f32>)>) -> Result<(), EmbeddingError> {
        let mut bytes = Vec::new();
        let mut added = Vec::new();
        for (k, v) in new {
            if v.len() != self.dim || !is_unit(&v) {
                return Err(EmbeddingError::Run(format!(
                    "the model gave {} numbers (not {} of unit length, finite)",
                    v.len(),
                    self.dim
                )));
            }
            bytes.extend_from_slice(&k);
            v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
            added.push((k, v));
        }
        if added.is_empty() {
            return Ok(());
        }
        if self.lock.is_none() {
            // Another process writes the file: keep these in memory only.
            self.known.extend(added);
            return Ok(());
        }
        if !self.path.exists() {
            self.rewrite(encoder, &[])?;
        }
        let mut file =
            std::fs::OpenOptions::new().append(true).open(&self.path).map_err(|e| file_error(&self.path, e))?;
        file.write_all(&bytes).map_err(|e| file_error(&self.path, e))?;
        self.records += added.len();
        self.known.extend(added);
        Ok(())
    }

    /// Writes the file again with only `keep`'s vectors (and forgets the rest).
    fn rewrite(&mut self, encoder: &Encoder, keep: &[Key]) -> Result<(), EmbeddingError> {
        if self.lock.is_none() {
            return Ok(());
        }
        let keep: HashSet<&Key> = keep.iter().collect();
        self.known.retain(|k, _| keep.contains(k));
        let mut bytes = header(encoder);
        for (k, v) in &self.known {
            bytes.extend_from_slice(k);
            v.iter().for_each(|x| bytes.extend_from_slice(&x.to_le_bytes()));
        }
        let temp = self.path.with_extension(format!("vectors.{}.tmp", std::process::id()));
        std::fs::write(&temp, &bytes)
            .and_then(|()| std::fs::rename(&temp, &self.path))
            .map_err(|e| file_error(&self.path, e))?;
        self.records = self.known.len();
        Ok(())
    }
}
