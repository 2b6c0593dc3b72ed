//! The rule engine: a folder of YAML rule files, Rhai scripts and handlebars templates,
//! loaded, validated and compiled as one unit ([`RuleSet`]) with a content hash, and
//! evaluated as casebridge's [`Rules`].
//!
//! - [`files`]: the rule file kinds (their types generate `schema/rules-*.schema.json`).
//! - [`load`](RuleSet::load): every file checked; every error named with file, line,
//!   column and a caret, all at once.
//! - [`testing`]: `casebridge rules test` and `explain` — fixtures through the rule set.
//! - [`watch`]: hot reload; a broken edit never replaces the running rule set.

mod calls;
mod cases;
mod eval;
pub mod files;
pub mod host;
mod load;
pub mod org;
pub mod pattern;
pub mod source;
pub mod templates;
pub mod testing;
pub mod variables;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Utc;
use regex::Regex;
use rhai::{AST, Engine};
use serde_json::Value as Json;

pub use self::eval::MAX_VALUE_DEPTH;
use self::files::Stage;
pub use self::variables::template_context;
use crate::model::Moment;
use crate::script::Limits;

/// A problem in a rule file, with where it is and what the line says.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// The offending line, for the caret display.
    pub source_line: Option<String>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if let Some(text) = &self.source_line {
            let gutter = self.line.to_string().len();
            write!(
                f,
                "\n{:gutter$} |\n{} | {}\n{:gutter$} | {}^",
                "",
                self.line,
                text,
                "",
                " ".repeat(self.column.saturating_sub(1))
            )?;
        }
        Ok(())
    }
}

impl LoadError {
    fn at(file: &str, text: &str, line: usize, column: usize, message: impl Into<String>) -> LoadError {
        LoadError {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            source_line: text.lines().nth(line.saturating_sub(1)).map(str::to_string),
        }
    }

    /// An error about a value written in the file: placed where the value first appears.
    fn near(file: &str, text: &str, needle: &str, message: impl Into<String>) -> LoadError {
        let (line, column) = locate(text, needle);
        LoadError::at(file, text, line, column, message)
    }
}

/// The line and column where `needle` first appears in `text` (1, 1 when it does not).
fn locate(text: &str, needle: &str) -> (usize, usize) {
    let first = needle.lines().next().unwrap_or(needle).trim();
    if first.is_empty() {
        return (1, 1);
    }
    for (i, line) in text.lines().enumerate() {
        if let Some(col) = line.find(first) {
            return (i + 1, line[..col].chars().count() + 1);
        }
    }
    (1, 1)
}

/// A compiled Rhai expression, and where it was written.
#[derive(Clone)]
struct Expr {
    ast: AST,
    text: String,
    /// Where the expression starts in its rule file, to place run-time errors.
    file: String,
    line: usize,
    column: usize,
}

struct Inbound {
    /// Where the mapping was written (message empty), for errors found later.
    origin: LoadError,
    attribute: String,
    /// The attribute as the trace names it, shared so that tracing copies nothing.
    label: Arc<str>,
    from: Option<String>,
    expr: Option<Expr>,
    default: Option<Json>,
}

struct Outbound {
    origin: LoadError,
    field: String,
    label: Arc<str>,
    from: Option<String>,
    expr: Option<Expr>,
    on: Vec<Moment>,
}

struct HandoverRule {
    name: String,
    label: Arc<str>,
    /// The trace's detail: the condition.
    when_detail: Arc<str>,
    stage: Stage,
    when: Expr,
    target: String,
    /// Where the target is written, for checks against the org.
    target_origin: LoadError,
    /// The reason's template name in the text registry.
    reason: String,
}

struct Topic {
    name: String,
    label: Arc<str>,
    keywords: Vec<Regex>,
    /// The trace's detail when each keyword matched.
    keyword_details: Vec<Arc<str>>,
    regex: Option<Arc<pattern::Pattern>>,
    when: Option<Expr>,
}

struct EmailTemplate {
    name: String,
    label: Arc<str>,
    when: Option<Expr>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
}

/// A mapping's field path (inbound) or field (outbound), where it was written.
pub struct MappedField<'a> {
    pub path: &'a str,
    pub outbound: bool,
    /// The object written (`Case`, `Lead`) or read from (`Case`).
    pub object: &'static str,
    pub origin: &'a LoadError,
}

/// A field a rule writes on a record of `object`, for checks against the org.
fn written<'a>(f: &'a cases::CompiledField, object: &'static str) -> MappedField<'a> {
    MappedField { path: &f.field, outbound: true, object, origin: &f.origin }
}

/// A test from a `kind: tests` file, with the file it came from.
#[derive(Debug, Clone)]
pub struct LoadedTest {
    pub file: PathBuf,
    pub test: files::RuleTest,
}

/// A loaded, checked, compiled rule set.
pub struct RuleSet {
    pub dir: PathBuf,
    /// A content hash of every file.
    pub hash: String,
    engine: Arc<Engine>,
    limits: Limits,
    inbound: Vec<Inbound>,
    outbound: Vec<Outbound>,
    handover: Vec<HandoverRule>,
    topics: Vec<Topic>,
    email: Vec<EmailTemplate>,
    /// The `kind: cases` rules, in order.
    cases: Vec<cases::CompiledCaseRule>,
    /// The mappings onto a messenger visitor's Lead.
    lead: Vec<cases::CompiledField>,
    /// The `kind: resolution` file's conditions, when the set has one.
    confirmed_when: Option<Expr>,
    unhappy_when: Option<Expr>,
    /// When a reply to a messenger visitor asks for a rating.
    ask_rating_when: Option<Expr>,
    /// How long a quiet customer takes to count as resolved.
    pub quiet_after: std::time::Duration,
    /// Subjects, text bodies and reasons: no HTML escaping.
    text: handlebars::Handlebars<'static>,
    /// HTML bodies: escaped.
    html: handlebars::Handlebars<'static>,
    pub tests: Vec<LoadedTest>,
    /// The scripts' functions, and which hooks they define.
    functions: AST,
    hooks: Hooks,
    /// Which script file defines each function, to place run-time errors.
    function_files: BTreeMap<String, String>,
    /// Case fields the mappings read (added to the poll query).
    pub case_fields: BTreeSet<String>,
    pub files: Vec<String>,
}

/// Script hooks: functions with these names replace nothing, they add to the YAML rules.
#[derive(Debug, Clone, Copy, Default)]
struct Hooks {
    /// `fn handover(conversation)` — after the `before` rules; returns (), a reason, or
    /// `#{ target: "...", reason: "..." }`.
    handover: bool,
    /// `fn handover_after(conversation, agent)` — after the `after` rules.
    handover_after: bool,
    /// `fn topics(conversation)` — returns more topic names.
    topics: bool,
}

/// Variables every expression sees.
pub const VARIABLES: &[&str] = &[
    "channel",
    "visitor",
    "fields",
    "attributes",
    "topics",
    "last_message",
    "turns",
    "replies",
    "hours_open",
    "origin",
    "subject",
    "agent",
    "value",
    "resolution",
    "ai_involved",
    "suggested",
    "team_in",
    "csat",
];

/// The hour (0–23) and weekday ("Mon".."Sun") at `now` shifted by `offset` hours.
fn local_time(now: chrono::DateTime<Utc>, offset: rhai::INT) -> (rhai::INT, String) {
    use chrono::{Datelike, Timelike};
    let local = now + chrono::Duration::hours(offset.clamp(-14, 14));
    (local.hour() as rhai::INT, local.weekday().to_string())
}

/// Whether `now` falls in [from, to) o'clock, Monday to Friday, at UTC `offset` hours.
pub fn is_business_hours(now: chrono::DateTime<Utc>, offset: rhai::INT, from: rhai::INT, to: rhai::INT) -> bool {
    let (hour, day) = local_time(now, offset);
    !matches!(day.as_str(), "Sat" | "Sun") && hour >= from && hour < to
}

/// The content hash of the rule files in `dir`, as [`RuleSet::hash`] would be.
pub fn content_hash(dir: &Path) -> Result<String, Vec<LoadError>> {
    source::read(dir).map(|s| s.hash).map_err(|errors| errors.into_iter().map(LoadError::from).collect())
}

impl From<source::SourceError> for LoadError {
    fn from(e: source::SourceError) -> LoadError {
        LoadError { file: e.file, line: 0, column: 0, message: e.message, source_line: None }
    }
}

impl RuleSet {
    /// Loads and checks every file of `dir`. All problems are reported together.
    pub fn load(dir: &Path) -> Result<RuleSet, Vec<LoadError>> {
        Self::load_with(dir, Limits::default())
    }

    /// Every handover target and case owner the rules name (not `default`), with where it
    /// is written.
    pub fn handover_targets(&self) -> Vec<(&str, &LoadError)> {
        let handover = self.handover.iter().map(|r| (r.target.as_str(), &r.target_origin));
        let owners = self.cases.iter().map(|r| (r.owner.as_str(), &r.owner_origin));
        handover.chain(owners).filter(|(target, _)| *target != crate::model::DEFAULT_TARGET).collect()
    }

    /// Every field the mappings read or write, for checks against the org.
    pub fn mapped_fields(&self) -> Vec<MappedField<'_>> {
        let inbound = self.inbound.iter().filter_map(|m| {
            m.from.as_deref().map(|path| MappedField { path, outbound: false, object: "Case", origin: &m.origin })
        });
        let outbound = self.outbound.iter().map(|m| MappedField {
            path: &m.field,
            outbound: true,
            object: "Case",
            origin: &m.origin,
        });
        let cases = self.cases.iter().flat_map(move |r| {
            let transcript = MappedField {
                path: r.transcript_field.as_str(),
                outbound: true,
                object: "Case",
                origin: &r.transcript_origin,
            };
            std::iter::once(transcript).chain(r.fields.iter().map(|f| written(f, "Case")))
        });
        let lead = self.lead.iter().map(|f| written(f, "Lead"));
        inbound.chain(outbound).chain(cases).chain(lead).collect()
    }
}
