//! Stores written before redb: builds up to this one kept sled 0.34's files in the store's
//! directory. The first open by this build copies every tree into `store.redb.migrating`,
//! checks that each tree holds as many keys as the original and makes the copy durable,
//! then removes sled's files (its data file first) and renames the copy into place. An
//! open cut short before sled's data file went copies again from the untouched original;
//! one cut short after it finishes the move. Sled's files found beside a redb store
//! (an older build run on the directory since) are left alone, with a warning.
//! Also puts back a store an interrupted sled-era `casebridge compact` left aside.

use std::path::{Path, PathBuf};

use super::kv::{self, Durable, TxError};
use super::{CACHE_BYTES, Result, StoreError, sidecar};

/// The redb file inside the store's directory.
pub(super) const ENGINE_FILE: &str = "store.redb";
/// Where the copy is made; renamed to `ENGINE_FILE` once whole and checked.
const PARTIAL_FILE: &str = "store.redb.migrating";
/// Where sled kept its id counter's offset after a compaction (see `next_id`).
const SLED_ID_FLOOR_KEY: &[u8] = b"id_floor";
/// How many bytes of keys and values one copying transaction holds.
const BATCH_BYTES: usize = 4 * 1024 * 1024;

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.display().to_string(), source }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir).and_then(|f| f.sync_all()).map_err(io_error(dir))
}

fn sled_error(path: &Path) -> impl FnOnce(sled::Error) -> StoreError + '_ {
    move |e| StoreError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) }
}

/// Whether the directory holds sled's files.
fn holds_sled(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

/// Whether sled's data file is there (removed first of its files once copied).
fn holds_sled_data(dir: &Path) -> bool {
    dir.join("db").is_file()
}

/// Puts back a store an interrupted compaction of an older build moved aside, and
/// removes an original one left after its swap.
pub(super) fn restore_interrupted_compaction(path: &Path) -> Result<()> {
    let original = sidecar(path, "before-compaction");
    if !path.exists() && original.is_dir() {
        tracing::warn!(store = %path.display(), "A compaction was interrupted; the store is put back as it was.");
        std::fs::rename(&original, path).map_err(io_error(path))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    } else if path.exists() && original.is_dir() {
        tracing::warn!(store = %path.display(), "A compaction stopped before removing the original; removing it now.");
        std::fs::remove_dir_all(&original).map_err(io_error(&original))?;
    }
    let copy = sidecar(path, "compacting");
    if copy.is_dir() {
        std::fs::remove_dir_all(&copy).map_err(io_error(&copy))?;
    }
    Ok(())
}

/// Makes sure `dir` holds a redb store (copying a sled one into it), and returns its file.
pub(super) fn engine_file(dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let file = dir.join(ENGINE_FILE);
    let partial = dir.join(PARTIAL_FILE);
    if file.exists() {
        if holds_sled_data(dir) {
            tracing::warn!(store = %dir.display(), "sled's files beside the store (an older build ran on it since it moved to redb) are left alone; the store is store.redb.");
        }
        return Ok(file);
    }
    if holds_sled(dir) {
        copy_from_sled(dir)?;
    } else if !partial.exists() || holds_sled_data(dir) {
        // A new store (or sled's data without its config: not a store to move).
        return Ok(file);
    }
    // The copy is whole and durable: sled's files go (its data first), then the copy
    // takes its place. Cut short here, the next open comes back to this point.
    remove_sled_files(dir)?;
    std::fs::rename(&partial, &file).map_err(io_error(dir))?;
    sync_dir(dir)?;
    tracing::info!(store = %dir.display(), "The store moved to redb.");
    Ok(file)
}

fn copy_from_sled(dir: &Path) -> Result<()> {
    tracing::info!(store = %dir.display(), "Moving the store from sled to redb, once.");
    let partial = dir.join(PARTIAL_FILE);
    if partial.exists() {
        std::fs::remove_file(&partial).map_err(io_error(&partial))?;
    }
    let old = sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .open()
        .map_err(|source| StoreError::Open { path: dir.display().to_string(), reason: source.to_string() })?;
    let new = kv::Db::open(&partial, CACHE_BYTES as usize)
        .map_err(|source| StoreError::Open { path: partial.display().to_string(), reason: source.to_string() })?;
    let mut keys = 0u64;
    for name in old.tree_names() {
        let name = String::from_utf8_lossy(&name).into_owned();
        let tree = old.open_tree(&name).map_err(sled_error(dir))?;
        let copied = copy_tree(&tree, &new, &name)?;
        if copied != tree.len() || new.len_of(&name)? != copied {
            return Err(StoreError::Io {
                path: dir.display().to_string(),
                source: std::io::Error::other(format!(
                    "the copy of tree {name} is not whole; the store is left as it was"
                )),
            });
        }
        keys += copied as u64;
    }
    // Ids go on above every id sled gave (its counter, plus the floor a compaction set).
    let meta = old.open_tree("meta").map_err(sled_error(dir))?;
    let floor = meta.get(SLED_ID_FLOOR_KEY).map_err(sled_error(dir))?;
    let floor = floor.and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok()).map_or(0, u64::from_be_bytes);
    let next = floor + old.generate_id().map_err(sled_error(dir))? + 1;
    new.tree("meta")?.insert(super::ids::NEXT_ID_KEY, next.to_be_bytes())?;
    new.flush()?;
    drop((new, old));
    tracing::info!(store = %dir.display(), keys, "The store's copy is whole.");
    Ok(())
}

/// Copies one sled tree into the redb tree of the same name; how many keys it copied.
fn copy_tree(tree: &sled::Tree, to: &kv::Db, name: &str) -> Result<usize> {
    let mut batch = Vec::new();
    let (mut bytes, mut copied) = (0usize, 0usize);
    let write = |batch: &mut Vec<(Vec<u8>, Vec<u8>)>| -> Result<()> {
        to.transaction(Durable::Later, |tx| {
            let t = tx.open_named(name)?;
            for (k, v) in batch.iter() {
                t.insert(k, v)?;
            }
            Ok::<_, TxError<()>>(())
        })
        .map_err(super::storage_error)?;
        // Durable batch by batch: redb keeps what non-durable commits freed in memory.
        to.flush()?;
        batch.clear();
        Ok(())
    };
    for item in tree.iter() {
        let (k, v) =
            item.map_err(|e| StoreError::Io { path: name.into(), source: std::io::Error::other(e.to_string()) })?;
        bytes += k.len() + v.len();
        batch.push((k.to_vec(), v.to_vec()));
        copied += 1;
        if bytes >= BATCH_BYTES {
            write(&mut batch)?;
            bytes = 0;
        }
    }
    write(&mut batch)?;
    Ok(copied)
}

/// Removes what sled kept in the directory, once the redb file holds the store.
fn remove_sled_files(dir: &Path) -> Result<()> {
    let data = dir.join("db");
    if data.exists() {
        std::fs::remove_file(&data).map_err(io_error(&data))?;
        sync_dir(dir)?;
    }
    let entries = std::fs::read_dir(dir).map_err(io_error(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_error(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        match name.as_str() {
            "conf" | "db" => std::fs::remove_file(&path).map_err(io_error(&path))?,
            "blobs" if path.is_dir() => std::fs::remove_dir_all(&path).map_err(io_error(&path))?,
            n if n.starts_with("snap.") && path.is_file() => std::fs::remove_file(&path).map_err(io_error(&path))?,
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn a_sled_store_is_copied_whole_and_its_files_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let old = sled::open(&path).unwrap();
            let meta = old.open_tree("meta").unwrap();
            meta.insert(b"cursor", br#"{"modstamp":"2026-01-02T03:04:05Z"}"#.as_slice()).unwrap();
            meta.insert(SLED_ID_FLOOR_KEY, &500u64.to_be_bytes()).unwrap();
            // Over 4 MiB: copied in more than one transaction.
            let marks = old.open_tree("pruned").unwrap();
            for i in 0..2_000u32 {
                marks.insert(format!("500{i:012}"), vec![b'x'; 3_000]).unwrap();
            }
            old.open_tree("confirmed").unwrap().insert(b"500A:body", &3u64.to_be_bytes()).unwrap();
            old.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let names: Vec<_> = std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [ENGINE_FILE], "only the redb file is left");
        let cursor = store.cursor().unwrap().unwrap();
        assert_eq!(cursor.modstamp.to_rfc3339(), "2026-01-02T03:04:05+00:00");
        assert_eq!(store.pruned.len().unwrap(), 2_000);
        assert_eq!(store.pruned.get("500000000001999").unwrap(), Some(vec![b'x'; 3_000]));
        assert_eq!(store.confirmed_count("500A:body").unwrap(), 3);
        assert!(store.new_id().unwrap() > 500, "ids go on above sled's");
    }

    fn sled_store(path: &Path) {
        let old = sled::open(path).unwrap();
        old.open_tree("meta").unwrap().insert(b"agent_user", b"\"005\"".as_slice()).unwrap();
        old.flush().unwrap();
    }

    #[test]
    fn a_move_cut_short_after_sleds_data_went_is_finished_and_later_sled_files_are_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        sled_store(&path);
        copy_from_sled(&path).unwrap();
        // Stopped after sled's data file went, before the rename.
        std::fs::remove_file(path.join("db")).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.meta::<String>("agent_user").unwrap().as_deref(), Some("005"));
        let names: Vec<_> = std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, [ENGINE_FILE]);
        drop(store);
        // An older build run on the directory since: its files are not the store's to remove.
        std::fs::write(path.join("conf"), b"sled conf").unwrap();
        std::fs::write(path.join("db"), b"sled data").unwrap();
        drop(Store::open(&path).unwrap());
        assert!(path.join("db").is_file() && path.join("conf").is_file());
    }

    #[test]
    fn a_copy_cut_short_is_made_again_from_the_untouched_original() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        {
            let old = sled::open(&path).unwrap();
            old.open_tree("meta").unwrap().insert(b"agent_user", b"\"005\"".as_slice()).unwrap();
            old.flush().unwrap();
        }
        std::fs::write(path.join(PARTIAL_FILE), b"half a file").unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.meta::<String>("agent_user").unwrap().as_deref(), Some("005"));
        assert!(!path.join(PARTIAL_FILE).exists() && !path.join("conf").exists());
    }
}
