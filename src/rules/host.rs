//! The host functions rule expressions and scripts call (`asks_for_human`,
//! `confirms_resolution`, `sounds_unhappy`, `contains_any`,
//! `matches`, business hours), each within the evaluation's deadline: the engine checks
//! the clock only between its own operations, so a helper that can take long on a long
//! text checks it itself. Regular expressions are compiled once, with size limits, and kept;
//! their cost over a long text is bounded too ([`super::pattern`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::Utc;
use rhai::{Engine, EvalAltResult};

use super::pattern::Pattern;
use crate::script::{self, Limits, check_budget};

/// The longest pattern `matches()` takes.
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// The most compiled patterns kept (the cache is emptied when full): each keeps up to
/// two lazy-DFA caches of 2 MiB.
const CACHED_PATTERNS: usize = 64;

type Host = Result<bool, Box<EvalAltResult>>;

/// The rules engine: the sandbox with the helpers registered.
pub fn rules_engine(limits: &Limits) -> Engine {
    let mut engine = script::sandboxed_engine(limits);
    engine.register_fn("asks_for_human", |text: &str| -> Host {
        check_budget()?;
        Ok(crate::decide::asks_for_human(text))
    });
    engine.register_fn("confirms_resolution", |text: &str| -> Host {
        check_budget()?;
        Ok(crate::decide::confirms_resolution(text))
    });
    engine.register_fn("sounds_unhappy", |text: &str| -> Host {
        check_budget()?;
        Ok(crate::decide::sounds_unhappy(text))
    });
    engine.register_fn("contains_any", contains_any);
    engine.register_fn("matches", |text: &str, pattern: &str| -> Host {
        check_budget()?;
        let re = compiled(pattern).map_err(|e| -> Box<EvalAltResult> { e.into() })?;
        re.is_match(text).map_err(Into::into)
    });
    // Business hours at a fixed UTC offset (hours, e.g. 1 or -5), Monday to Friday.
    engine.register_fn("business_hours", |offset: rhai::INT, from: rhai::INT, to: rhai::INT| {
        super::is_business_hours(Utc::now(), offset, from, to)
    });
    engine.register_fn("local_hour", |offset: rhai::INT| super::local_time(Utc::now(), offset).0);
    engine.register_fn("weekday", |offset: rhai::INT| super::local_time(Utc::now(), offset).1);
    engine
}

/// Whether `text` contains any of `words`, ignoring case; the deadline is checked per word.
fn contains_any(text: &str, words: rhai::Array) -> Host {
    check_budget()?;
    let lower = text.to_lowercase();
    for w in words {
        check_budget()?;
        if w.into_string().is_ok_and(|w| !w.is_empty() && lower.contains(&w.to_lowercase())) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A pattern compiled once (with size limits), shared by every later call.
pub fn compiled(pattern: &str) -> Result<Arc<Pattern>, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Pattern>>>> = OnceLock::new();
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!("bad regular expression: longer than {MAX_PATTERN_CHARS} characters"));
    }
    let cache = CACHE.get_or_init(Default::default);
    if let Some(re) = cache.lock().unwrap_or_else(|p| p.into_inner()).get(pattern) {
        return Ok(re.clone());
    }
    let re = Arc::new(Pattern::new(pattern)?);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CACHED_PATTERNS {
        cache.clear();
    }
    cache.insert(pattern.to_string(), re.clone());
    Ok(re)
}
