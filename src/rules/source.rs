//! The files of a rule set, found and read as a sandbox must: every file a rule set reads
//! (rule files, email templates, fixtures) lies inside its folder once links are resolved,
//! is a regular file (a FIFO would hang the reload, a link to `/dev/zero` would never end),
//! and has a size cap. The content hash of what was read is the rule set's identity.

use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

/// The largest rule file, script or template.
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// The largest fixture (a recorded case with its comments and emails).
pub const MAX_FIXTURE_BYTES: u64 = 4 * 1024 * 1024;
/// The most a rule set may hold, all files together (fixtures are read one at a time).
pub const MAX_TOTAL_BYTES: u64 = 8 * 1024 * 1024;
/// The most rule files in one rule set.
pub const MAX_FILES: usize = 1_000;
/// How deep folders may nest inside the rules folder.
pub const MAX_DEPTH: usize = 8;

/// A file that cannot be part of the rule set, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceError {
    pub file: String,
    pub message: String,
}

/// The rule files of a folder, read.
pub struct Source {
    /// Each file's path (under the folder as given) and text, sorted by path.
    pub files: Vec<(PathBuf, String)>,
    /// FNV-1a over every relative path and text.
    pub hash: String,
}

/// Whether a name is an editor's temporary or backup file, never part of a rule set.
pub fn is_editor_dropping(name: &str) -> bool {
    name.starts_with('.') || name.ends_with('~') || name.ends_with(".swp") || name == "4913" || name.starts_with('#')
}

/// Whether a path names a rule file (YAML, Rhai or handlebars, not an editor's dropping).
pub fn is_rule_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    !is_editor_dropping(&name)
        && ["yaml", "yml", "rhai", "hbs"].iter().any(|x| path.extension().is_some_and(|e| e == *x))
}

/// The rule files under `dir`, sorted. Links are followed only to files inside `dir`.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>, Vec<SourceError>> {
    let root = dir.canonicalize().map_err(|e| vec![error(dir, format!("cannot read the rules folder: {e}"))])?;
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0usize)];
    while let Some((folder, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&folder).map_err(|e| vec![error(&folder, format!("cannot read: {e}"))])?;
        for entry in entries {
            let entry = entry.map_err(|e| vec![error(&folder, format!("cannot read: {e}"))])?;
            let path = entry.path();
            if is_editor_dropping(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let kind = entry.file_type().map_err(|e| vec![error(&path, format!("cannot read: {e}"))])?;
            if kind.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    errors.push(error(&path, format!("folders nest more than {MAX_DEPTH} levels deep")));
                } else {
                    stack.push((path, depth + 1));
                }
            } else if is_rule_file(&path) {
                if kind.is_symlink() {
                    match path.canonicalize() {
                        Ok(target) if target.starts_with(&root) && target.is_file() => {}
                        Ok(target) if target.starts_with(&root) => {
                            errors.push(error(&path, "links to something that is not a regular file".into()));
                            continue;
                        }
                        _ => {
                            errors.push(error(
                                &path,
                                "links outside the rules folder; rule files must lie inside it".into(),
                            ));
                            continue;
                        }
                    }
                }
                out.push(path);
            }
        }
        if out.len() > MAX_FILES {
            return Err(vec![error(dir, format!("holds more than {MAX_FILES} rule files"))]);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    out.sort();
    Ok(out)
}

/// Reads every rule file under `dir`; problems are collected, one per file.
pub fn read(dir: &Path) -> Result<Source, Vec<SourceError>> {
    let paths = list(dir)?;
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut total = 0u64;
    for p in paths {
        match read_regular(&p, MAX_FILE_BYTES) {
            Ok(text) => {
                total += text.len() as u64;
                files.push((p, text));
            }
            Err(message) => errors.push(error(&p, message)),
        }
        if total > MAX_TOTAL_BYTES {
            return Err(vec![error(dir, format!("the rule files add up to more than {} MiB", MAX_TOTAL_BYTES >> 20))]);
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let hash = hash(dir, &files);
    Ok(Source { files, hash })
}

/// Reads a file a rule file names (`text_file:`, `fixture:`), relative to the folder of the
/// naming file, refusing anything that is not a regular file inside the rules folder.
pub fn read_inside(root: &Path, naming_file: &Path, relative: &Path, max: u64) -> Result<String, String> {
    let resolved = resolve_inside(root, naming_file, relative)?;
    read_regular(&resolved, max).map_err(|e| format!("{}: {e}", relative.display()))
}

/// Where a file a rule file names really is, if that is inside the rules folder.
pub fn resolve_inside(root: &Path, naming_file: &Path, relative: &Path) -> Result<PathBuf, String> {
    if relative.is_absolute() || relative.components().any(|c| matches!(c, Component::ParentDir | Component::Prefix(_)))
    {
        return Err(format!(
            "{} is outside the rules folder; name a file inside it (no absolute paths, no ..)",
            relative.display()
        ));
    }
    let path = naming_file.parent().unwrap_or(root).join(relative);
    let root = root.canonicalize().map_err(|e| format!("cannot read the rules folder: {e}"))?;
    let resolved = path.canonicalize().map_err(|e| format!("cannot read {}: {e}", relative.display()))?;
    if !resolved.starts_with(&root) {
        return Err(format!("{} links outside the rules folder; files must lie inside it", relative.display()));
    }
    Ok(resolved)
}

/// Reads a regular file of at most `max` bytes (see [`crate::bounded_file`]).
pub fn read_regular(path: &Path, max: u64) -> Result<String, String> {
    crate::bounded_file::read(path, max).map_err(|e| match e.kind() {
        std::io::ErrorKind::Other | std::io::ErrorKind::InvalidData => e.to_string(),
        _ => format!("cannot read: {e}"),
    })
}

/// FNV-1a over every file's relative path and content: the rule set's identity.
pub fn hash(dir: &Path, texts: &[(PathBuf, String)]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (p, t) in texts {
        let rel = p.strip_prefix(dir).unwrap_or(p).to_string_lossy().into_owned();
        for byte in rel.bytes().chain([0]).chain(t.bytes()).chain([0]) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{hash:016x}")
}

/// What the folder looks like without reading it: each rule file's path, size and
/// modification time. Rescans compare these, so an idle daemon reads no rule file.
pub fn fingerprint(dir: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    list(dir)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let len = meta.as_ref().map(|m| m.len()).unwrap_or(0);
            (p, len, meta.and_then(|m| m.modified().ok()))
        })
        .collect()
}

fn error(path: &Path, message: String) -> SourceError {
    SourceError { file: path.display().to_string(), message }
}
