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
pub mod files;
mod host;
pub mod org;
pub mod pattern;
pub mod source;
pub mod templates;
pub mod testing;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use regex::Regex;
use rhai::{AST, Dynamic, Engine, Scope};
use serde_json::{Value as Json, json};

use self::files::{Kind, Stage};
use crate::decide::Rules;
use crate::model::AgentAnswer;
use crate::model::{AuthorKind, Conversation};
use crate::model::{Handover, Moment, RenderedEmail, RuleError, Trace};
use crate::script::{self, Limits};

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
    from: Option<String>,
    expr: Option<Expr>,
    default: Option<Json>,
}

struct Outbound {
    origin: LoadError,
    field: String,
    from: Option<String>,
    expr: Option<Expr>,
    on: Vec<Moment>,
}

struct HandoverRule {
    name: String,
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
    keywords: Vec<Regex>,
    regex: Option<Arc<pattern::Pattern>>,
    when: Option<Expr>,
}

struct EmailTemplate {
    name: String,
    when: Option<Expr>,
    subject: String,
    text: Option<String>,
    html: Option<String>,
}

/// A mapping's field path (inbound) or field (outbound), where it was written.
pub struct MappedField<'a> {
    pub path: &'a str,
    pub outbound: bool,
    pub origin: &'a LoadError,
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
const VARIABLES: &[&str] = &[
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

    pub fn load_with(dir: &Path, limits: Limits) -> Result<RuleSet, Vec<LoadError>> {
        let display = |p: &Path| p.display().to_string();
        let source::Source { files: texts, hash } =
            source::read(dir).map_err(|errors| errors.into_iter().map(LoadError::from).collect::<Vec<_>>())?;
        let mut errors = Vec::new();

        let engine = host::rules_engine(&limits);
        // Scripts first: their functions are available to every expression.
        let mut functions = AST::empty();
        let mut function_files = BTreeMap::new();
        for (p, text) in texts.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "rhai")) {
            match script::compile(&engine, text, &display(p)) {
                Ok(ast) => {
                    for f in ast.iter_functions() {
                        function_files.insert(f.name.to_string(), display(p));
                    }
                    functions = functions.merge(&ast.clone_functions_only())
                }
                Err(e) => {
                    errors.push(LoadError::at(&e.file, text, e.line, e.column, format!("script error: {}", e.message)))
                }
            }
        }
        // Calls to functions that exist nowhere fail on every case: refuse them now.
        let known = calls::known(&engine, &functions);
        let unknown_calls = |file: &str, text: &str, code: &str, errors: &mut Vec<LoadError>| {
            let (line, column) = locate(text, code);
            for (name, offset) in calls::unknown(code, &known) {
                let (at_line, at_col) = if code == text {
                    let before = &text[..offset];
                    (before.matches('\n').count() + 1, before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
                } else {
                    (line, column + code[..offset].chars().count())
                };
                let hint = crate::spelling::closest(known.iter().map(String::as_str), &name, 2)
                    .map(|k| format!("; did you mean {k}?"))
                    .unwrap_or_default();
                errors.push(LoadError::at(file, text, at_line, at_col, format!("no function {name}(){hint}")));
            }
        };
        for (p, text) in texts.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "rhai")) {
            unknown_calls(&display(p), text, text, &mut errors);
        }
        let mut scope = Scope::new();
        for v in VARIABLES {
            scope.push_dynamic(*v, Dynamic::UNIT);
        }
        let compile = |file: &str, text: &str, expr: &str, what: &str, errors: &mut Vec<LoadError>| -> Option<Expr> {
            match engine.compile_expression_with_scope(&scope, expr) {
                Ok(ast) => {
                    let before = errors.len();
                    unknown_calls(file, text, expr, errors);
                    if errors.len() > before {
                        return None;
                    }
                    let mut ast = functions.merge(&ast);
                    let (line, column) = locate(text, expr);
                    ast.set_source(file);
                    Some(Expr { ast, text: expr.to_string(), file: file.to_string(), line, column })
                }
                Err(e) => {
                    let (line, col) = locate(text, expr);
                    let inner = e.position().position().unwrap_or(1);
                    errors.push(LoadError::at(file, text, line, col + inner - 1, format!("{what}: {}", e.err_type())));
                    None
                }
            }
        };

        let mut set = RuleSet {
            dir: dir.to_path_buf(),
            hash,
            engine: Arc::new(Engine::new_raw()),
            limits: limits.clone(),
            inbound: Vec::new(),
            outbound: Vec::new(),
            handover: Vec::new(),
            topics: Vec::new(),
            email: Vec::new(),
            text: handlebars::Handlebars::new(),
            html: handlebars::Handlebars::new(),
            tests: Vec::new(),
            functions: AST::empty(),
            hooks: Hooks::default(),
            function_files: BTreeMap::new(),
            case_fields: BTreeSet::new(),
            files: texts.iter().map(|(p, _)| p.strip_prefix(dir).unwrap_or(p).to_string_lossy().into_owned()).collect(),
        };
        set.text.register_escape_fn(handlebars::no_escape);
        set.text.set_strict_mode(true);
        set.html.set_strict_mode(true);
        let mut names: BTreeMap<String, String> = BTreeMap::new();
        let mut origins: BTreeMap<String, TemplateOrigin> = BTreeMap::new();

        for (p, text) in texts.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml" || e == "yml")) {
            let file = display(p);
            // Syntax and nesting first, with the real line and column.
            let locations = match crate::yaml_locations::index(text) {
                Ok(l) => l,
                Err(e) => {
                    errors.push(LoadError::at(&file, text, e.at.line, e.at.column, format!("YAML: {}", e.problem)));
                    continue;
                }
            };
            let kind = match read_kind(text) {
                Ok(k) => k,
                Err(msg) => {
                    let at = locations.value("kind").unwrap_or(crate::yaml_locations::Location { line: 1, column: 1 });
                    errors.push(LoadError::at(&file, text, at.line, at.column, msg));
                    continue;
                }
            };
            let parse_error = |e: serde_path_to_error::Error<serde_yaml::Error>| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // serde_yaml knows the place for most errors; for the rest, the index does.
                let (line, column) = inner
                    .location()
                    .map(|l| (l.line(), l.column()))
                    .or_else(|| locations.value(&path).map(|l| (l.line, l.column)))
                    .unwrap_or((1, 1));
                let message = inner.to_string();
                let message = message.split(" at line ").next().unwrap_or(&message).to_string();
                let message = match message.split_once(": ") {
                    Some((prefix, rest)) if path.starts_with(prefix) => rest.to_string(),
                    _ => message,
                };
                LoadError::at(
                    &file,
                    text,
                    line,
                    column,
                    if path == "." { message } else { format!("{path}: {message}") },
                )
            };
            macro_rules! parse {
                ($t:ty) => {
                    match serde_path_to_error::deserialize::<_, $t>(serde_yaml::Deserializer::from_str(text)) {
                        Ok(v) => v,
                        Err(e) => {
                            errors.push(parse_error(e));
                            continue;
                        }
                    }
                };
            }
            let mut unique = |name: &str, what: &str, errors: &mut Vec<LoadError>| {
                let key = format!("{what}:{name}");
                if let Some(first) = names.get(&key) {
                    errors.push(LoadError::near(
                        &file,
                        text,
                        name,
                        format!("{what} {name:?} is defined twice (first in {first})"),
                    ));
                } else {
                    names.insert(key, file.clone());
                }
            };
            match kind {
                Kind::Mappings => {
                    let m: files::MappingsFile = parse!(files::MappingsFile);
                    for i in m.inbound {
                        unique(&i.attribute, "attribute", &mut errors);
                        if i.from.is_none() && i.expr.is_none() {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &i.attribute,
                                format!("attribute {:?} needs `from` or `expr`", i.attribute),
                            ));
                        }
                        if let Some(f) = &i.from {
                            if crate::salesforce::soql::is_name(f) {
                                set.case_fields.insert(f.clone());
                            } else {
                                errors.push(LoadError::near(
                                    &file,
                                    text,
                                    f,
                                    format!("{f:?} is not a field path (such as Account.Name)"),
                                ));
                            }
                        }
                        let expr = i.expr.as_ref().and_then(|e| {
                            compile(&file, text, e, &format!("attribute {:?}", i.attribute), &mut errors)
                        });
                        let origin = LoadError::near(&file, text, i.from.as_deref().unwrap_or(&i.attribute), "");
                        set.inbound.push(Inbound {
                            origin,
                            attribute: i.attribute,
                            from: i.from,
                            expr,
                            default: i.default,
                        });
                    }
                    for o in m.outbound {
                        if o.from.is_none() && o.expr.is_none() {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &o.field,
                                format!("field {:?} needs `from` or `expr`", o.field),
                            ));
                        }
                        if !crate::salesforce::soql::is_name(&o.field) || o.field.contains('.') {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &o.field,
                                format!("{:?} is not a Case field name", o.field),
                            ));
                        }
                        let expr = o
                            .expr
                            .as_ref()
                            .and_then(|e| compile(&file, text, e, &format!("field {:?}", o.field), &mut errors));
                        let origin = LoadError::near(&file, text, &o.field, "");
                        set.outbound.push(Outbound { origin, field: o.field, from: o.from, expr, on: o.on });
                    }
                }
                Kind::Handover => {
                    let h: files::HandoverFile = parse!(files::HandoverFile);
                    for r in h.rules {
                        unique(&r.name, "handover rule", &mut errors);
                        let when = compile(
                            &file,
                            text,
                            &r.when,
                            &format!("handover rule {:?}: the condition does not compile", r.name),
                            &mut errors,
                        );
                        let reason = format!("reason:{}", r.name);
                        let origin =
                            TemplateOrigin::Inline { file: file.clone(), text: text.clone(), source: r.reason.clone() };
                        if let Some((line, column, depth)) = templates::too_deep(&r.reason) {
                            errors.push(origin.place(
                                line,
                                column,
                                format!(
                                    "template error: blocks or parentheses nest {depth} deep; at most {} are allowed",
                                    templates::MAX_NESTING
                                ),
                            ));
                        } else if let Err(e) = set.text.register_template_string(&reason, &r.reason) {
                            let (line, column) = e.pos().unwrap_or((1, 1));
                            errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
                        }
                        origins.insert(reason.clone(), origin);
                        if let Some(when) = when {
                            let target_origin = LoadError::near(&file, text, &format!("target: {}", r.target), "");
                            set.handover.push(HandoverRule {
                                name: r.name,
                                stage: r.stage,
                                when,
                                target: r.target,
                                target_origin,
                                reason,
                            });
                        }
                    }
                }
                Kind::Topics => {
                    let t: files::TopicsFile = parse!(files::TopicsFile);
                    for topic in t.topics {
                        unique(&topic.name, "topic", &mut errors);
                        if topic.keywords.is_empty() && topic.regex.is_none() && topic.when.is_none() {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &topic.name,
                                format!("topic {:?} needs keywords, regex or when", topic.name),
                            ));
                        }
                        let keywords = topic
                            .keywords
                            .iter()
                            .filter_map(|k| Regex::new(&format!(r"(?i)\b{}\b", regex::escape(k.trim()))).ok())
                            .collect();
                        let regex = match topic.regex.as_deref().map(host::compiled) {
                            Some(Ok(re)) => Some(re),
                            Some(Err(e)) => {
                                errors.push(LoadError::near(
                                    &file,
                                    text,
                                    topic.regex.as_deref().unwrap_or(""),
                                    format!("topic {:?}: {e}", topic.name),
                                ));
                                None
                            }
                            None => None,
                        };
                        let when = topic
                            .when
                            .as_ref()
                            .and_then(|w| compile(&file, text, w, &format!("topic {:?}", topic.name), &mut errors));
                        set.topics.push(Topic { name: topic.name, keywords, regex, when });
                    }
                }
                Kind::Email => {
                    let e: files::EmailFile = parse!(files::EmailFile);
                    for t in e.templates {
                        unique(&t.name, "email template", &mut errors);
                        let body = |inline: &Option<String>,
                                    file_ref: &Option<PathBuf>,
                                    errors: &mut Vec<LoadError>|
                         -> Option<(String, Option<String>)> {
                            match (inline, file_ref) {
                                (Some(s), None) => Some((s.clone(), None)),
                                (None, Some(f)) => match source::read_inside(dir, p, f, source::MAX_FILE_BYTES) {
                                    Ok(s) => Some((s, Some(p.parent().unwrap_or(dir).join(f).display().to_string()))),
                                    Err(err) => {
                                        errors.push(LoadError::near(
                                            &file,
                                            text,
                                            &f.display().to_string(),
                                            format!("cannot use template {err}"),
                                        ));
                                        None
                                    }
                                },
                                (Some(_), Some(f)) => {
                                    errors.push(LoadError::near(
                                        &file,
                                        text,
                                        &f.display().to_string(),
                                        "give the body inline or as a file, not both",
                                    ));
                                    None
                                }
                                (None, None) => None,
                            }
                        };
                        let text_body = body(&t.text, &t.text_file, &mut errors);
                        let html_body = body(&t.html, &t.html_file, &mut errors);
                        if text_body.is_none() && html_body.is_none() {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &t.name,
                                format!("email template {:?} needs a text or html body", t.name),
                            ));
                            continue;
                        }
                        let subject = format!("subject:{}", t.name);
                        let text_name = format!("text:{}", t.name);
                        let html_name = format!("html:{}", t.name);
                        for (html, name, body) in [
                            (false, &subject, Some((t.subject.clone(), None))),
                            (false, &text_name, text_body.clone()),
                            (true, &html_name, html_body.clone()),
                        ] {
                            let Some((source, hbs_file)) = body else { continue };
                            let origin = match hbs_file {
                                Some(hbs) => TemplateOrigin::File { file: hbs, text: source.clone() },
                                None => TemplateOrigin::Inline {
                                    file: file.clone(),
                                    text: text.clone(),
                                    source: source.clone(),
                                },
                            };
                            let registry = if html { &mut set.html } else { &mut set.text };
                            if let Some((line, column, depth)) = templates::too_deep(&source) {
                                errors.push(origin.place(line, column, format!("template error: blocks or parentheses nest {depth} deep; at most {} are allowed", templates::MAX_NESTING)));
                            } else if let Err(e) = registry.register_template_string(name, &source) {
                                let (line, column) = e.pos().unwrap_or((1, 1));
                                errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
                            }
                            origins.insert(name.clone(), origin);
                        }
                        let when = t.when.as_ref().and_then(|w| {
                            compile(&file, text, w, &format!("email template {:?}", t.name), &mut errors)
                        });
                        set.email.push(EmailTemplate {
                            name: t.name,
                            when,
                            subject,
                            text: text_body.map(|_| text_name),
                            html: html_body.map(|_| html_name),
                        });
                    }
                }
                Kind::Tests => {
                    let t: files::TestsFile = parse!(files::TestsFile);
                    for test in t.tests {
                        unique(&test.name, "test", &mut errors);
                        let hands_over =
                            test.expect.handover.as_deref().is_some_and(|h| !h.eq_ignore_ascii_case("none"));
                        if hands_over && test.expect.handover_rule.is_none() {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &test.name,
                                format!(
                                    "test {:?} expects a handover: name the rule that must fire (handover_rule: ...), so that the error fallback cannot pass for it",
                                    test.name
                                ),
                            ));
                        }
                        if let Err(problem) = source::resolve_inside(dir, p, &test.fixture) {
                            errors.push(LoadError::near(
                                &file,
                                text,
                                &test.fixture.display().to_string(),
                                format!("fixture: {problem}"),
                            ));
                        }
                        set.tests.push(LoadedTest { file: p.clone(), test });
                    }
                }
            }
        }
        // Templates must not name variables or partials that will not exist: render each once now.
        let mut sample = sample_context();
        // The attributes the mappings make exist on every conversation.
        for m in &set.inbound {
            sample["attributes"][&m.attribute] = json!("(sample)");
        }
        for rule in &set.handover {
            if let Err(e) = set.text.render(&rule.reason, &sample)
                && let Some(origin) = origins.get(&rule.reason)
            {
                let (line, column) = (e.line_no.unwrap_or(1), e.column_no.unwrap_or(1));
                errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
            }
        }
        for t in &set.email {
            for (registry, name) in
                [(&set.text, Some(&t.subject)), (&set.text, t.text.as_ref()), (&set.html, t.html.as_ref())]
            {
                if let Some(name) = name
                    && let Err(e) = registry.render(name, &sample)
                    && let Some(origin) = origins.get(name)
                {
                    let (line, column) = (e.line_no.unwrap_or(1), e.column_no.unwrap_or(1));
                    errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        set.hooks = Hooks {
            handover: script::defines(&functions, "handover", 1),
            handover_after: script::defines(&functions, "handover_after", 2),
            topics: script::defines(&functions, "topics", 1),
        };
        set.functions = functions;
        set.function_files = function_files;
        set.engine = Arc::new(engine);
        Ok(set)
    }

    /// Every handover target the rules name (not `default`), with where it is written.
    pub fn handover_targets(&self) -> Vec<(&str, &LoadError)> {
        self.handover
            .iter()
            .filter(|r| r.target != crate::model::DEFAULT_TARGET)
            .map(|r| (r.target.as_str(), &r.target_origin))
            .collect()
    }

    /// Every field the mappings read or write, for checks against the org.
    pub fn mapped_fields(&self) -> Vec<MappedField<'_>> {
        let inbound = self
            .inbound
            .iter()
            .filter_map(|m| m.from.as_deref().map(|path| MappedField { path, outbound: false, origin: &m.origin }));
        let outbound = self.outbound.iter().map(|m| MappedField { path: &m.field, outbound: true, origin: &m.origin });
        inbound.chain(outbound).collect()
    }

    /// Builds the variables expressions see.
    fn scope(&self, conversation: &Conversation, agent: Option<&AgentAnswer>) -> Scope<'static> {
        let mut scope = Scope::new();
        fn to_dyn<T: serde::Serialize + ?Sized>(value: &T) -> Dynamic {
            rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
        }
        scope.push_constant_dynamic("fields", to_dyn(&conversation.case_fields));
        scope.push_constant_dynamic("attributes", to_dyn(&conversation.attributes));
        scope.push_constant_dynamic("topics", to_dyn(&conversation.topics));
        let last = conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default();
        scope.push_constant("last_message", last);
        scope.push_constant("turns", conversation.customer_turns() as rhai::INT);
        scope.push_constant("replies", conversation.replies_sent as rhai::INT);
        let hours = (Utc::now() - conversation.created_at).num_minutes() as rhai::FLOAT / 60.0;
        scope.push_constant("hours_open", hours);
        scope.push_constant("origin", conversation.origin.clone().unwrap_or_default());
        scope.push_constant("subject", conversation.subject.clone());
        let agent = match agent {
            Some(a) => {
                json!({ "answered": a.text.is_some(), "confidence": a.confidence, "text": a.text.clone().unwrap_or_default() })
            }
            None => json!({ "answered": false, "confidence": 0.0, "text": "" }),
        };
        scope.push_constant_dynamic("agent", to_dyn(&agent));
        scope.push_constant_dynamic("value", Dynamic::UNIT);
        scope
    }

    /// What hooks receive as `conversation`.
    fn hook_view(conversation: &Conversation) -> Dynamic {
        let parts: Vec<Json> = conversation
            .parts
            .iter()
            .map(|p| json!({ "author": p.author, "kind": p.kind, "body": p.body, "public": p.public, "created_at": p.created_at }))
            .collect();
        let view = json!({
            "case_id": conversation.case_id,
            "case_number": conversation.case_number,
            "subject": conversation.subject,
            "origin": conversation.origin,
            "status": conversation.status,
            "fields": conversation.case_fields,
            "attributes": conversation.attributes,
            "topics": conversation.topics,
            "parts": parts,
            "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
            "turns": conversation.customer_turns(),
            "replies": conversation.replies_sent,
        });
        rhai::serde::to_dynamic(&view).unwrap_or(Dynamic::UNIT)
    }

    fn call_hook(
        &self,
        name: &str,
        args: impl rhai::FuncArgs,
        trace: &mut Trace,
        stage: &str,
    ) -> Result<Dynamic, RuleError> {
        let started = Instant::now();
        let result = script::call(&self.engine, &self.functions, &self.limits, name, args)
            .map_err(|e| RuleError { rule: format!("script hook {name}"), message: e.to_string() })?;
        trace.record(stage, &format!("fn {name}"), !result.is_unit(), format!("returned {result}"), started);
        Ok(result)
    }

    /// Reads a handover hook's result: (), a reason string, or a map with target and reason.
    fn hook_handover(&self, name: &str, value: Dynamic) -> Result<Option<Handover>, RuleError> {
        if value.is_unit() {
            return Ok(None);
        }
        let bad = || RuleError {
            rule: format!("script hook {name}"),
            message: "must return (), a reason string, or #{ target: \"...\", reason: \"...\" }".into(),
        };
        if let Some(reason) = value.clone().try_cast::<String>() {
            return Ok(Some(Handover {
                target: crate::model::DEFAULT_TARGET.into(),
                reason,
                rule: format!("fn {name}"),
            }));
        }
        let map = value.try_cast::<rhai::Map>().ok_or_else(bad)?;
        let get = |k: &str| map.get(k).and_then(|v| v.clone().try_cast::<String>());
        let reason = get("reason").ok_or_else(bad)?;
        let target = get("target").unwrap_or_else(|| crate::model::DEFAULT_TARGET.into());
        Ok(Some(Handover { target, reason, rule: format!("fn {name}") }))
    }

    fn eval(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<Dynamic, RuleError> {
        let len = scope.len();
        let result = script::eval(&self.engine, &expr.ast, &self.limits, scope);
        scope.rewind(len);
        result.map_err(|e| {
            // A position inside the expression is placed in its rule file; one inside a
            // script function in that function's script.
            let script = e.function.as_ref().and_then(|f| self.function_files.get(f));
            if let Some(script) = script {
                return RuleError {
                    rule: rule.to_string(),
                    message: format!("{script}:{}:{}: {} (in `{}`)", e.line, e.column, e.message, expr.text),
                };
            }
            let (line, column) = if e.file == expr.file && e.line > 0 {
                let column = if e.line == 1 { expr.column + e.column.saturating_sub(1) } else { e.column };
                (expr.line + e.line - 1, column)
            } else {
                (e.line, e.column)
            };
            RuleError {
                rule: rule.to_string(),
                message: format!("{}:{line}:{column}: {} (in `{}`)", e.file, e.message, expr.text),
            }
        })
    }

    fn eval_bool(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<bool, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        v.as_bool().map_err(|t| RuleError {
            rule: rule.to_string(),
            message: format!("the condition `{}` gave a {t}, not true or false", expr.text),
        })
    }

    fn eval_json(&self, expr: &Expr, scope: &mut Scope, rule: &str) -> Result<Json, RuleError> {
        let v = self.eval(expr, scope, rule)?;
        rhai::serde::from_dynamic(&v).map_err(|e| RuleError { rule: rule.to_string(), message: e.to_string() })
    }

    fn handover_at(
        &self,
        stage: Stage,
        conversation: &Conversation,
        agent: Option<&AgentAnswer>,
        trace: &mut Trace,
    ) -> Result<Option<Handover>, RuleError> {
        let mut scope = self.scope(conversation, agent);
        let stage_name = if stage == Stage::Before { "handover_before" } else { "handover_after" };
        for rule in self.handover.iter().filter(|r| r.stage == stage) {
            let started = Instant::now();
            let fired = self.eval_bool(&rule.when, &mut scope, &rule.name)?;
            trace.record(stage_name, &rule.name, fired, format!("when: {}", rule.when.text), started);
            if fired {
                let reason = templates::render(&self.text, &rule.reason, &template_context(conversation, None))
                    .map_err(|message| RuleError { rule: rule.name.clone(), message })?;
                return Ok(Some(Handover { target: rule.target.clone(), reason, rule: rule.name.clone() }));
            }
        }
        match (stage, agent) {
            (Stage::Before, _) if self.hooks.handover => {
                let value = self.call_hook("handover", (Self::hook_view(conversation),), trace, stage_name)?;
                self.hook_handover("handover", value)
            }
            (Stage::After, Some(a)) if self.hooks.handover_after => {
                let agent = json!({ "answered": a.text.is_some(), "confidence": a.confidence, "text": a.text.clone().unwrap_or_default() });
                let agent = rhai::serde::to_dynamic(&agent).unwrap_or(Dynamic::UNIT);
                let value =
                    self.call_hook("handover_after", (Self::hook_view(conversation), agent), trace, stage_name)?;
                self.hook_handover("handover_after", value)
            }
            _ => Ok(None),
        }
    }
}

/// Where a template was written: its own `.hbs` file, or inline in a rule file.
enum TemplateOrigin {
    File { file: String, text: String },
    Inline { file: String, text: String, source: String },
}

impl TemplateOrigin {
    /// An error at `line`:`column` of the template, placed in the file the admin edits.
    fn place(&self, line: usize, column: usize, message: String) -> LoadError {
        match self {
            TemplateOrigin::File { file, text } => LoadError::at(file, text, line, column, message),
            TemplateOrigin::Inline { file, text, source } => {
                let (at_line, at_col) = locate(text, source);
                let (line, column) =
                    if line > 1 { (at_line + line - 1, column) } else { (at_line, at_col + column - 1) };
                LoadError::at(file, text, line, column, message)
            }
        }
    }
}

fn read_kind(text: &str) -> Result<Kind, String> {
    let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
    let kind = value.get("kind").ok_or("missing `kind`: one of mappings, handover, topics, email, tests")?;
    serde_yaml::from_value(kind.clone()).map_err(|_| {
        let shown = serde_yaml::to_string(kind).unwrap_or_default();
        format!("unknown kind {}: one of mappings, handover, topics, email, tests", shown.trim())
    })
}

/// What email templates and reasons see.
pub fn template_context(conversation: &Conversation, reply: Option<&str>) -> Json {
    let contact_name = conversation.contact.as_ref().and_then(|c| c.name.clone()).unwrap_or_default();
    let first_name = contact_name.split_whitespace().next().unwrap_or("there").to_string();
    let reply = reply.unwrap_or_default();
    let reply_html: String = reply
        .split("\n\n")
        .map(|p| format!("<p>{}</p>", html_escape(p).replace('\n', "<br>")))
        .collect::<Vec<_>>()
        .join("\n");
    json!({
        "case": {
            "id": conversation.case_id,
            "number": conversation.case_number,
            "subject": conversation.subject,
            "status": conversation.status,
            "origin": conversation.origin,
            "fields": conversation.case_fields,
        },
        "contact": {
            "name": if contact_name.is_empty() { "there".to_string() } else { contact_name.clone() },
            "first_name": first_name,
            "email": conversation.customer_email,
        },
        "account": { "name": conversation.account.as_ref().and_then(|a| a.name.clone()) },
        "attributes": conversation.attributes,
        "topics": conversation.topics,
        "conversation": {
            "turns": conversation.customer_turns(),
            "replies": conversation.replies_sent,
            "last_message": conversation.last_customer_message().map(|p| p.body.clone()).unwrap_or_default(),
        },
        "reply": reply,
        "reply_html": reply_html,
    })
}

fn sample_context() -> Json {
    let mut sample = template_context(
        &Conversation {
            case_id: "500000000000000AAA".into(),
            case_number: "00001000".into(),
            subject: "Sample".into(),
            origin: Some("Email".into()),
            status: Some("New".into()),
            owner_id: String::new(),
            contact: None,
            account: None,
            customer_email: Some("customer@example.com".into()),
            case_fields: Default::default(),
            parts: Vec::new(),
            attributes: Default::default(),
            topics: Default::default(),
            state: crate::model::ConversationState::Open,
            handled: Default::default(),
            replies_sent: 0,
            created_at: Utc::now(),
            modstamp: Utc::now(),
            retry_at: None,
            agent_failures: 0,
            decisions: Vec::new(),
        },
        Some("Sample reply."),
    );
    // Attribute and field names are open-ended; a template may use any.
    sample["attributes"] = json!({});
    sample
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Reads a field path (`Account.Name`) from the case row.
fn field_at<'a>(fields: &'a BTreeMap<String, Json>, path: &str) -> Option<&'a Json> {
    let mut parts = path.split('.');
    let mut current = fields.get(parts.next()?)?;
    for part in parts {
        current = current.get(part)?;
    }
    Some(current).filter(|v| !v.is_null())
}

impl Rules for RuleSet {
    fn id(&self) -> String {
        self.hash.clone()
    }

    fn case_fields(&self) -> Vec<String> {
        self.case_fields.iter().cloned().collect()
    }

    fn inbound(&self, conversation: &Conversation, trace: &mut Trace) -> Result<BTreeMap<String, Json>, RuleError> {
        let mut out = BTreeMap::new();
        let mut scope = self.scope(conversation, None);
        for m in &self.inbound {
            let started = Instant::now();
            let raw = m.from.as_deref().and_then(|f| field_at(&conversation.case_fields, f)).cloned();
            let value = match &m.expr {
                Some(expr) => {
                    let len = scope.len();
                    scope.push_dynamic(
                        "value",
                        raw.as_ref()
                            .map(|v| rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT))
                            .unwrap_or(Dynamic::UNIT),
                    );
                    let v = self.eval_json(expr, &mut scope, &format!("attribute {}", m.attribute));
                    scope.rewind(len);
                    Some(v?).filter(|v| !v.is_null())
                }
                None => raw,
            };
            let value = value.or_else(|| m.default.clone());
            trace.record(
                "inbound",
                &m.attribute,
                value.is_some(),
                format!("{} = {}", m.attribute, value.clone().unwrap_or(Json::Null)),
                started,
            );
            if let Some(v) = value {
                out.insert(m.attribute.clone(), v);
            }
        }
        Ok(out)
    }

    fn topics(&self, conversation: &Conversation, trace: &mut Trace) -> Result<BTreeSet<String>, RuleError> {
        let texts: Vec<&str> = std::iter::once(conversation.subject.as_str())
            .chain(conversation.parts.iter().filter(|p| p.author == AuthorKind::User).map(|p| p.body.as_str()))
            .collect();
        let mut scope = self.scope(conversation, None);
        let mut out = BTreeSet::new();
        for t in &self.topics {
            let started = Instant::now();
            let keyword = t.keywords.iter().find(|k| texts.iter().any(|x| k.is_match(x)));
            let regex = match &t.regex {
                Some(r) => texts.iter().try_fold(false, |found, x| Ok(found || r.is_match(x)?)).map_err(
                    |message: String| RuleError {
                        rule: format!("topic {}", t.name),
                        message: format!("regex: {message}"),
                    },
                )?,
                None => false,
            };
            let when = match &t.when {
                Some(w) => self.eval_bool(w, &mut scope, &format!("topic {}", t.name))?,
                None => false,
            };
            let fired = keyword.is_some() || regex || when;
            let why = match (keyword, regex, when) {
                (Some(k), _, _) => {
                    format!("keyword {}", k.as_str().trim_start_matches("(?i)\\b").trim_end_matches("\\b"))
                }
                (_, true, _) => "regex".into(),
                (_, _, true) => "condition".into(),
                _ => "no match".into(),
            };
            trace.record("topics", &t.name, fired, why, started);
            if fired {
                out.insert(t.name.clone());
            }
        }
        if self.hooks.topics {
            let value = self.call_hook("topics", (Self::hook_view(conversation),), trace, "topics")?;
            if !value.is_unit() {
                let names = value.try_cast::<rhai::Array>().ok_or_else(|| RuleError {
                    rule: "script hook topics".into(),
                    message: "must return an array of topic names or ()".into(),
                })?;
                out.extend(names.into_iter().filter_map(|n| n.try_cast::<String>()));
            }
        }
        Ok(out)
    }

    fn handover_before(&self, conversation: &Conversation, trace: &mut Trace) -> Result<Option<Handover>, RuleError> {
        self.handover_at(Stage::Before, conversation, None, trace)
    }

    fn handover_after(
        &self,
        conversation: &Conversation,
        answer: &AgentAnswer,
        trace: &mut Trace,
    ) -> Result<Option<Handover>, RuleError> {
        self.handover_at(Stage::After, conversation, Some(answer), trace)
    }

    fn email(&self, conversation: &Conversation, reply: &str, trace: &mut Trace) -> Result<RenderedEmail, RuleError> {
        let mut scope = self.scope(conversation, None);
        let context = template_context(conversation, Some(reply));
        for t in &self.email {
            let started = Instant::now();
            let chosen = match &t.when {
                Some(w) => self.eval_bool(w, &mut scope, &format!("email template {}", t.name))?,
                None => true,
            };
            if !chosen {
                trace.record("email", &t.name, false, "condition did not hold", started);
                continue;
            }
            let render = |registry: &handlebars::Handlebars, name: &str| {
                templates::render(registry, name, &context)
                    .map_err(|message| RuleError { rule: format!("email template {}", t.name), message })
            };
            let subject = render(&self.text, &t.subject)?;
            let html = t.html.as_ref().map(|n| render(&self.html, n)).transpose()?;
            let text = match (&t.text, &html) {
                (Some(n), _) => render(&self.text, n)?,
                (None, Some(h)) => crate::model::text::html_to_text(h),
                (None, None) => reply.to_string(),
            };
            trace.record("email", &t.name, true, format!("subject: {subject}"), started);
            return Ok(RenderedEmail { subject, text, html });
        }
        // No template applies: the built-in plain reply.
        crate::decide::BuiltinRules::new("The support team").email(conversation, reply, trace)
    }

    fn outbound(
        &self,
        conversation: &Conversation,
        moment: Moment,
        trace: &mut Trace,
    ) -> Result<BTreeMap<String, Json>, RuleError> {
        let mut out = BTreeMap::new();
        let mut scope = self.scope(conversation, None);
        for m in self.outbound.iter().filter(|m| m.on.contains(&moment)) {
            let started = Instant::now();
            let value = match (&m.expr, &m.from) {
                (Some(expr), _) => self.eval_json(expr, &mut scope, &format!("field {}", m.field))?,
                (None, Some(attr)) => conversation.attributes.get(attr).cloned().unwrap_or(Json::Null),
                (None, None) => Json::Null,
            };
            let current = conversation.case_fields.get(&m.field);
            // Write only what changes, so an unchanged case costs no API call.
            let changed = !value.is_null() && current != Some(&value);
            trace.record("outbound", &m.field, changed, format!("{} = {value}", m.field), started);
            if changed {
                out.insert(m.field.clone(), value);
            }
        }
        Ok(out)
    }
}
