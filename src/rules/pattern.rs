//! The regular expressions of `matches()`, with a cost that stays bounded on any text.
//!
//! The usual engine (the regex crate's) runs a lazy DFA and, when a crafted pattern makes
//! that DFA give up, falls back to engines whose time grows with the pattern's size times
//! the text's: a 31-character pattern took 1.8 s a call over 192 KiB. Here the lazy DFA
//! runs alone, set to give up rather than fall back; only when it gives up (or meets a
//! Unicode word boundary next to non-ASCII text, which it cannot decide) does the
//! PikeVM run, and only if the pattern's size times the text's length is within
//! [`FALLBACK_WORK`]; otherwise the call is refused with an error saying why.

use std::sync::Mutex;

use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, NFA, pikevm::PikeVM};
use regex_automata::{Input, util::syntax};

/// Bytes a compiled pattern (its NFA) may take.
pub const PATTERN_BYTES: usize = 1 << 20;
/// Bytes of the lazy DFA's cache, per search running at once.
const DFA_CACHE_BYTES: usize = 2 << 20;
/// The most `pattern bytes × text bytes` the fallback may be given: the PikeVM's time is
/// about proportional to it (3e-11 s a unit on the development machine: about 65 ms at this figure).
pub const FALLBACK_WORK: u64 = 1 << 31;
/// Caches kept for searches to come (more searches at once make their own).
const KEPT_CACHES: usize = 2;

/// A compiled `matches()` pattern.
#[derive(Debug)]
pub struct Pattern {
    dfa: DFA,
    caches: Mutex<Vec<Cache>>,
    pikevm: PikeVM,
    nfa_bytes: usize,
}

impl Pattern {
    /// Compiles a pattern with the regex crate's syntax and size limits.
    pub fn new(pattern: &str) -> Result<Pattern, String> {
        let nfa: NFA = thompson::Compiler::new()
            .syntax(syntax::Config::new().nest_limit(64))
            .configure(thompson::Config::new().nfa_size_limit(Some(PATTERN_BYTES)))
            .build(pattern)
            .map_err(|e| format!("bad regular expression: {e}"))?;
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .cache_capacity(DFA_CACHE_BYTES)
                    .minimum_cache_clear_count(Some(3))
                    .minimum_bytes_per_state(Some(10))
                    .unicode_word_boundary(true),
            )
            .build_from_nfa(nfa.clone())
            .map_err(|e| format!("bad regular expression: {e}"))?;
        let pikevm =
            PikeVM::builder().build_from_nfa(nfa.clone()).map_err(|e| format!("bad regular expression: {e}"))?;
        Ok(Pattern { dfa, caches: Mutex::new(Vec::new()), pikevm, nfa_bytes: nfa.memory_usage() })
    }

    /// Whether the pattern matches anywhere in `text`, or why it was not run to the end.
    pub fn is_match(&self, text: &str) -> Result<bool, String> {
        let input = Input::new(text).earliest(true);
        let cache = self.caches.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut cache = cache.unwrap_or_else(|| self.dfa.create_cache());
        let found = self.dfa.try_search_fwd(&mut cache, &input);
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        if caches.len() < KEPT_CACHES {
            caches.push(cache);
        }
        drop(caches);
        match found {
            Ok(found) => Ok(found.is_some()),
            Err(_) if (self.nfa_bytes as u64).saturating_mul(text.len() as u64) <= FALLBACK_WORK => {
                Ok(self.pikevm.is_match(&mut self.pikevm.create_cache(), input))
            }
            Err(_) => Err(format!(
                "matches(): this pattern is too costly over a text of {} bytes (compiled, it takes {} bytes; \
                 a pattern's bytes times the text's may be at most {FALLBACK_WORK}); match a shorter part \
                 of the text or use fewer and smaller repetitions",
                text.len(),
                self.nfa_bytes
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long(unit: &str, bytes: usize) -> String {
        unit.repeat(bytes / unit.len())
    }

    #[test]
    fn matches_as_the_regex_crate_does() {
        let cases = [
            (r"(?i)\b(refund|chargeback)\b", "I want a REFUND now", true),
            (r"(?i)\b(refund|chargeback)\b", "refunding", false),
            (r"(?i)\brefund\b", "rückerstattung — refund bitte", true),
            (r"^Re:", "Re: your order", true),
            (r"^Re:", "About Re:", false),
            (r"\d{3}-\d{4}", "call 555-1234", true),
            (r"[\w.+-]+@[\w-]+\.[\w.]+", "mail jo@example.com", true),
            (r"\p{L}{3,20}", "12 34", false),
            (r"(?s)a.b", "a\nb", true),
            (r"a.b", "a\nb", false),
        ];
        for (pattern, text, expected) in cases {
            let ours = Pattern::new(pattern).unwrap().is_match(text).unwrap();
            assert_eq!(ours, expected, "{pattern} over {text:?}");
            assert_eq!(ours, regex::Regex::new(pattern).unwrap().is_match(text), "{pattern} over {text:?}");
        }
        assert!(Pattern::new("(").unwrap_err().contains("bad regular expression"));
        assert!(Pattern::new(r"\w{1,100}").unwrap_err().contains("bad regular expression"));
    }

    #[test]
    fn a_crafted_pattern_over_a_long_text_is_refused_or_answered_quickly() {
        // The lazy DFA gives up on this one over this text (from its second search, once
        // its cache is full); the fallback would take seconds.
        let pattern = Pattern::new("(?s:.){1,800}a(?s:.){1,800}zz").unwrap();
        let text = long("éa", 196_608);
        let started = std::time::Instant::now();
        let outcomes: Vec<_> = (0..5).map(|_| pattern.is_match(&text)).collect();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert!(outcomes.iter().all(|o| matches!(o, Ok(false) | Err(_))), "{outcomes:?}");
        let refused = outcomes.iter().find_map(|o| o.as_ref().err()).expect("the DFA gave up");
        assert!(refused.contains("too costly over a text of 196608 bytes"), "{refused}");
        // Over a text short enough, the fallback runs and answers.
        assert_eq!(pattern.is_match(&long("éa", 2_000)), Ok(false));
        // A small pattern that the DFA cannot decide (a Unicode word boundary beside
        // non-ASCII text) runs the fallback, and answers.
        let word = Pattern::new(r"(?i)\bremboursement\b").unwrap();
        assert!(word.is_match(&format!("{} remboursement", long("é ", 100_000))).unwrap());
    }
}
