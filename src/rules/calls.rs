//! Catching calls to functions that do not exist when a rule set loads, not when a case
//! comes: Rhai resolves function calls at run time, so `ask_for_human(last_message)` (one
//! letter off) compiles and then fails on every case, where the fallback hands it over.
//! The calls are found lexically (strings and comments skipped; method calls, which
//! resolve on their receiver, left alone) and checked against the engine's functions and
//! the rule set's scripts.

use std::collections::BTreeSet;

use rhai::{AST, Engine};

/// Words that read like calls but are the language's own.
const LANGUAGE: &[&str] = &[
    "if",
    "while",
    "for",
    "loop",
    "switch",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "let",
    "const",
    "in",
    "do",
    "until",
    "import",
    "export",
    "as",
    "private",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "type_of",
    "print",
    "debug",
    "is_def_var",
    "is_def_fn",
    "is_shared",
    "eval",
];

/// Every function name a rule set may call: the engine's (with its packages) and the scripts'.
pub fn known(engine: &Engine, scripts: &AST) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = engine
        .gen_fn_signatures(true)
        .into_iter()
        .filter_map(|sig| {
            let head = sig.split('(').next()?.trim();
            Some(head.rsplit(' ').next().unwrap_or(head).to_string())
        })
        .collect();
    names.extend(scripts.iter_functions().map(|f| f.name.to_string()));
    names.extend(LANGUAGE.iter().map(|w| w.to_string()));
    names
}

/// The functions `code` calls that are not in `known`, with the byte offset of each call.
pub fn unknown(code: &str, known: &BTreeSet<String>) -> Vec<(String, usize)> {
    calls(code).into_iter().filter(|(name, _)| !known.contains(name)).collect()
}

/// The plain calls (`name(`) in `code`, outside strings and comments, with their offsets.
/// Method calls (`x.name(`), namespaced calls (`a::name(`) and definitions (`fn name(`)
/// are not plain calls.
fn calls(code: &str) -> Vec<(String, usize)> {
    let bytes = code.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut previous_word = String::new();
    let mut previous_char = b' ';
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' | b'`' | b'\'' => {
                i += 1;
                while i < bytes.len() && bytes[i] != c {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                previous_char = c;
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i + 1 < bytes.len() && !(bytes[i] == b'*' && bytes[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &code[start..i];
                let mut j = i;
                while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                    j += 1;
                }
                let called =
                    bytes.get(j) == Some(&b'(') || (bytes.get(j) == Some(&b'!') && bytes.get(j + 1) == Some(&b'('));
                let qualified = previous_char == b'.' || previous_char == b':';
                if called && !qualified && previous_word != "fn" {
                    out.push((word.to_string(), start));
                }
                previous_word = word.to_string();
                previous_char = b'a';
                continue;
            }
            c if c.is_ascii_whitespace() => {}
            c => {
                previous_char = c;
                previous_word.clear();
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_calls_are_found_and_the_rest_left_alone() {
        let code =
            "fn helper(x) { x.len() > 2 && ask_for_human(x) } // nope(1)\nlet s = \"fake(2)\"; global::g(1); f (3)";
        let names: Vec<String> = calls(code).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["ask_for_human", "f"]);
    }

    #[test]
    fn the_engines_functions_and_the_scripts_are_known() {
        let engine = crate::script::sandboxed_engine(&crate::script::Limits::default());
        let ast = engine.compile("fn mine(a) { a }").unwrap();
        let known = known(&engine, &ast);
        assert!(unknown("mine(1) + abs(-2) + to_string(3).len() + type_of(4)", &known).is_empty());
        assert_eq!(unknown("ask_for_human(x)", &known), [("ask_for_human".to_string(), 0)]);
    }
}
