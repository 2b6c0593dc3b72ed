//! Where each value of a YAML document sits (line and column), by its path (`poll.interval`,
//! `inbound[2].expr`), and how deeply it nests.
//!
//! serde_yaml reports positions only for some errors, and none once a value has gone
//! through an internally tagged enum or an untagged one (`agent:`, `org.auth`, durations).
//! This index is built from the parser's events (iteratively, so no document can overflow
//! the stack), and lets every problem found by serde or by our own validation point at the
//! line and column the admin wrote. Paths use serde_path_to_error's spelling.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};

/// How deeply mappings and sequences may nest in any YAML file casebridge reads. Real
/// configs and rule files nest 5 levels or so; the bound keeps every later recursive
/// walk (serde, our own) far from the stack's end.
pub const MAX_DEPTH: usize = 64;

/// A line and a column, both from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// A document that cannot be indexed: bad syntax, or nesting past [`MAX_DEPTH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub at: Location,
    pub problem: String,
}

/// The locations of a document's values and mapping keys.
#[derive(Debug, Default)]
pub struct Locations {
    values: HashMap<String, Location>,
    keys: HashMap<String, Location>,
}

impl Locations {
    /// Where the value at `path` starts; for a path the document does not have, where its
    /// nearest written ancestor starts (a missing field is reported at its section).
    pub fn value(&self, path: &str) -> Option<Location> {
        if let Some(l) = self.values.get(path) {
            return Some(*l);
        }
        let mut path = parent(path)?;
        loop {
            if let Some(l) = self.keys.get(path).or_else(|| self.values.get(path)) {
                return Some(*l);
            }
            path = parent(path)?;
        }
    }

    /// Where the key of the mapping entry at `path` is written (falls back like [`value`](Self::value)).
    pub fn key(&self, path: &str) -> Option<Location> {
        self.keys.get(path).copied().or_else(|| self.value(path))
    }
}

/// The path one level up: `a.b[2].c` → `a.b[2]` → `a.b` → `a` → `.` (the root) → none.
fn parent(path: &str) -> Option<&str> {
    if path == "." || path.is_empty() {
        return None;
    }
    match path.rfind(['.', '[']) {
        Some(i) if i > 0 => Some(&path[..i]),
        _ => Some("."),
    }
}

fn join_key(parent: &str, key: &str) -> String {
    if parent == "." { key.to_string() } else { format!("{parent}.{key}") }
}

fn join_index(parent: &str, index: usize) -> String {
    if parent == "." { format!("[{index}]") } else { format!("{parent}[{index}]") }
}

/// One open mapping or sequence while walking the events.
enum Frame {
    /// A mapping; `key` is the key whose value comes next, if one was read.
    Mapping {
        path: String,
        key: Option<String>,
    },
    Sequence {
        path: String,
        next: usize,
    },
}

/// Indexes `text` (the first document of it).
pub fn index(text: &str) -> Result<Locations, SyntaxError> {
    let mut parser = Parser::new_from_str(text);
    let mut out = Locations::default();
    // The document itself: its start, whatever the parser marks.
    out.values.insert(".".into(), Location { line: 1, column: 1 });
    let mut stack: Vec<Frame> = Vec::new();
    loop {
        // yaml-rust2 counts columns from 0; people count from 1.
        let (event, mark) = parser.next_token().map_err(|e| SyntaxError {
            at: Location { line: e.marker().line(), column: e.marker().col() + 1 },
            // The parser's own bound on flow nesting says the same as ours.
            problem: if e.info() == "recursion limit exceeded" { too_deep() } else { e.info().to_string() },
        })?;
        let at = Location { line: mark.line(), column: mark.col() + 1 };
        // The path this node gets, or None when it is a mapping key (recorded, not entered).
        let node_path = match stack.last_mut() {
            None => Some(".".to_string()),
            Some(Frame::Sequence { path, next }) => match event {
                Event::SequenceEnd => None,
                _ => {
                    let p = join_index(path, *next);
                    *next += 1;
                    Some(p)
                }
            },
            Some(Frame::Mapping { path, key }) => match (&event, key.take()) {
                (Event::MappingEnd, _) => None,
                (_, Some(k)) => Some(join_key(path, &k)),
                (Event::Scalar(name, ..), None) => {
                    let full = join_key(path, name);
                    out.keys.entry(full).or_insert(at);
                    *key = Some(name.clone());
                    continue;
                }
                (_, None) => {
                    // A complex key (a mapping or sequence as a key): index under a placeholder.
                    *key = Some("?".into());
                    Some(join_key(path, "?key"))
                }
            },
        };
        match event {
            Event::StreamEnd | Event::DocumentEnd => return Ok(out),
            Event::StreamStart | Event::DocumentStart | Event::Nothing => {}
            Event::Scalar(..) | Event::Alias(_) => {
                if let Some(p) = node_path {
                    out.values.entry(p).or_insert(at);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = node_path.unwrap_or_default();
                out.values.entry(path.clone()).or_insert(at);
                if stack.len() >= MAX_DEPTH {
                    return Err(SyntaxError { at, problem: too_deep() });
                }
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Mapping { path, key: None }
                } else {
                    Frame::Sequence { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
            }
        }
    }
}

fn too_deep() -> String {
    format!("nested too deeply (any YAML file may nest {MAX_DEPTH} levels at most)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_keys_are_found_by_path() {
        let text = "org:\n  auth: {grant: x, refresh_token: hunter}\npoll:\n  interval: 1s\n  overlap: 2s\nlist:\n  - a\n  - {b: 1}\n";
        let l = index(text).unwrap();
        assert_eq!(l.value("poll.overlap"), Some(Location { line: 5, column: 12 }));
        assert_eq!(l.key("poll.overlap"), Some(Location { line: 5, column: 3 }));
        assert_eq!(l.value("org.auth.refresh_token"), Some(Location { line: 2, column: 35 }));
        assert_eq!(l.value("list[1].b"), Some(Location { line: 8, column: 9 }));
        // A path the file does not have is placed at its nearest ancestor.
        assert_eq!(l.value("poll.initial_lookback"), Some(Location { line: 3, column: 1 }));
        assert_eq!(l.value("nothing.here"), Some(Location { line: 1, column: 1 }));
    }

    #[test]
    fn syntax_errors_carry_their_real_position() {
        let e = index("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(e.at.line >= 2, "{e:?}");
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let deep = "[".repeat(100_000);
        let e = index(&deep).unwrap_err();
        assert!(e.problem.contains("nested too deeply"), "{e:?}");
        let block = (0..100).map(|i| format!("{}k{i}:\n", "  ".repeat(i))).collect::<String>();
        assert!(index(&block).unwrap_err().problem.contains("64 levels"));
    }
}
