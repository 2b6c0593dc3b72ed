//! Loading a rule set: every file of the folder read once ([`super::source`]), scripts
//! compiled first (their functions serve every expression), then each YAML file by its
//! `kind`, one method a kind, then every template rendered once against a sample case. All
//! problems are collected and reported together, each at its file, line and column.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use regex::Regex;
use rhai::{AST, Dynamic, Engine, Scope};
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};

use super::files::{self, Kind};
use super::{
    EmailTemplate, Expr, HandoverRule, Hooks, Inbound, LoadError, LoadedTest, Outbound, RuleSet, Topic, VARIABLES,
    calls, host, locate, source, template_context, templates,
};
use crate::model::Conversation;
use crate::script::{self, Limits};
use crate::yaml_locations::{self, Locations};

impl RuleSet {
    /// Loads `dir` with the given script limits.
    pub fn load_with(dir: &Path, limits: Limits) -> Result<RuleSet, Vec<LoadError>> {
        let source::Source { files: texts, hash } =
            source::read(dir).map_err(|errors| errors.into_iter().map(LoadError::from).collect::<Vec<_>>())?;
        let mut loader = Loader::new(dir, limits, hash, &texts);
        loader.compile_scripts(&texts);
        for (path, text) in texts.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "yaml" || e == "yml")) {
            loader.load_yaml(path, text);
        }
        loader.check_templates();
        loader.finish()
    }
}

/// One YAML rule file being loaded.
pub(super) struct Doc<'t> {
    path: &'t Path,
    file: String,
    text: &'t str,
    locations: Locations,
}

impl Doc<'_> {
    pub(super) fn near(&self, needle: &str, message: impl Into<String>) -> LoadError {
        LoadError::near(&self.file, self.text, needle, message)
    }
}

/// What loading has gathered so far.
pub(super) struct Loader<'d> {
    dir: &'d Path,
    engine: Engine,
    /// Every script function, merged into each expression.
    functions: AST,
    /// Which script file defines each function.
    function_files: BTreeMap<String, String>,
    /// Every function a rule may call (the engine's and the scripts').
    known: BTreeSet<String>,
    /// The variables expressions may name, for compiling them.
    scope: Scope<'static>,
    pub(super) errors: Vec<LoadError>,
    pub(super) set: RuleSet,
    /// Names already defined (`kind:name` → file), to refuse duplicates.
    names: BTreeMap<String, String>,
    /// Where each registered template was written, to place render errors.
    origins: BTreeMap<String, TemplateOrigin>,
}

impl<'d> Loader<'d> {
    fn new(dir: &'d Path, limits: Limits, hash: String, texts: &[(PathBuf, String)]) -> Loader<'d> {
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
            cases: Vec::new(),
            lead: Vec::new(),
            confirmed_when: None,
            unhappy_when: None,
            ask_rating_when: None,
            quiet_after: crate::decide::DEFAULT_QUIET_AFTER,
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
        let mut scope = Scope::new();
        for v in VARIABLES {
            scope.push_dynamic(*v, Dynamic::UNIT);
        }
        Loader {
            dir,
            engine: host::rules_engine(&limits),
            functions: AST::empty(),
            function_files: BTreeMap::new(),
            known: BTreeSet::new(),
            scope,
            errors: Vec::new(),
            set,
            names: BTreeMap::new(),
            origins: BTreeMap::new(),
        }
    }

    /// Compiles every script, then refuses calls to functions that exist nowhere (they
    /// would fail on every case).
    fn compile_scripts(&mut self, texts: &[(PathBuf, String)]) {
        let scripts: Vec<_> = texts.iter().filter(|(p, _)| p.extension().is_some_and(|e| e == "rhai")).collect();
        for (path, text) in &scripts {
            let file = path.display().to_string();
            match script::compile(&self.engine, text, &file) {
                Ok(ast) => {
                    for f in ast.iter_functions() {
                        self.function_files.insert(f.name.to_string(), file.clone());
                    }
                    self.functions = self.functions.merge(&ast.clone_functions_only())
                }
                Err(e) => self.errors.push(LoadError::at(
                    &e.file,
                    text,
                    e.line,
                    e.column,
                    format!("script error: {}", e.message),
                )),
            }
        }
        self.known = calls::known(&self.engine, &self.functions);
        for (path, text) in &scripts {
            self.unknown_calls(&path.display().to_string(), text, text);
        }
    }

    /// Reports each call in `code` (part of `text`, or all of it) to a function nobody defines.
    fn unknown_calls(&mut self, file: &str, text: &str, code: &str) {
        let (line, column) = locate(text, code);
        for (name, offset) in calls::unknown(code, &self.known) {
            let (at_line, at_col) = if code == text {
                let before = &text[..offset];
                (before.matches('\n').count() + 1, before.rsplit('\n').next().unwrap_or("").chars().count() + 1)
            } else {
                (line, column + code[..offset].chars().count())
            };
            let hint = crate::spelling::closest(self.known.iter().map(String::as_str), &name, 2)
                .map(|k| format!("; did you mean {k}?"))
                .unwrap_or_default();
            self.errors.push(LoadError::at(file, text, at_line, at_col, format!("no function {name}(){hint}")));
        }
    }

    /// Compiles an expression of a rule file, with the scripts' functions merged in.
    pub(super) fn compile(&mut self, doc: &Doc, expr: &str, what: &str) -> Option<Expr> {
        match self.engine.compile_expression_with_scope(&self.scope, expr) {
            Ok(ast) => {
                let before = self.errors.len();
                self.unknown_calls(&doc.file, doc.text, expr);
                if self.errors.len() > before {
                    return None;
                }
                let mut ast = self.functions.merge(&ast);
                let (line, column) = locate(doc.text, expr);
                ast.set_source(doc.file.as_str());
                Some(Expr { ast, text: expr.to_string(), file: doc.file.clone(), line, column })
            }
            Err(e) => {
                let (line, col) = locate(doc.text, expr);
                let inner = e.position().position().unwrap_or(1);
                self.errors.push(LoadError::at(
                    &doc.file,
                    doc.text,
                    line,
                    col + inner - 1,
                    format!("{what}: {}", e.err_type()),
                ));
                None
            }
        }
    }

    /// Loads one YAML rule file by its `kind`.
    fn load_yaml(&mut self, path: &Path, text: &str) {
        let file = path.display().to_string();
        // Syntax and nesting first, with the real line and column.
        let locations = match yaml_locations::index(text) {
            Ok(l) => l,
            Err(e) => {
                self.errors.push(LoadError::at(&file, text, e.at.line, e.at.column, format!("YAML: {}", e.problem)));
                return;
            }
        };
        let kind = match read_kind(text) {
            Ok(k) => k,
            Err(msg) => {
                let at = locations.value("kind").unwrap_or(yaml_locations::Location { line: 1, column: 1 });
                self.errors.push(LoadError::at(&file, text, at.line, at.column, msg));
                return;
            }
        };
        let doc = Doc { path, file, text, locations };
        match kind {
            Kind::Mappings => {
                if let Some(m) = self.parse(&doc) {
                    self.mappings(&doc, m)
                }
            }
            Kind::Handover => {
                if let Some(h) = self.parse(&doc) {
                    self.handover(&doc, h)
                }
            }
            Kind::Topics => {
                if let Some(t) = self.parse(&doc) {
                    self.topics(&doc, t)
                }
            }
            Kind::Email => {
                if let Some(e) = self.parse(&doc) {
                    self.email(&doc, e)
                }
            }
            Kind::Tests => {
                if let Some(t) = self.parse(&doc) {
                    self.tests(&doc, t)
                }
            }
            Kind::Resolution => {
                if let Some(r) = self.parse(&doc) {
                    self.resolution(&doc, r)
                }
            }
            Kind::Cases => {
                if let Some(c) = self.parse(&doc) {
                    self.cases(&doc, c)
                }
            }
        }
    }

    /// Reads a rule file into its kind's shape, or records where and why it does not fit.
    fn parse<T: DeserializeOwned>(&mut self, doc: &Doc) -> Option<T> {
        let e = match serde_path_to_error::deserialize::<_, T>(serde_yaml::Deserializer::from_str(doc.text)) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_yaml knows the place for most errors; for the rest, the index does.
        let (line, column) = inner
            .location()
            .map(|l| (l.line(), l.column()))
            .or_else(|| doc.locations.value(&path).map(|l| (l.line, l.column)))
            .unwrap_or((1, 1));
        let message = inner.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        let message = match message.split_once(": ") {
            Some((prefix, rest)) if path.starts_with(prefix) => rest.to_string(),
            _ => message,
        };
        let message = if path == "." { message } else { format!("{path}: {message}") };
        self.errors.push(LoadError::at(&doc.file, doc.text, line, column, message));
        None
    }

    /// Refuses a second definition of the same name.
    pub(super) fn unique(&mut self, doc: &Doc, name: &str, what: &str) {
        let key = format!("{what}:{name}");
        if let Some(first) = self.names.get(&key) {
            let error = doc.near(name, format!("{what} {name:?} is defined twice (first in {first})"));
            self.errors.push(error);
        } else {
            self.names.insert(key, doc.file.clone());
        }
    }

    fn mappings(&mut self, doc: &Doc, m: files::MappingsFile) {
        for i in m.inbound {
            self.unique(doc, &i.attribute, "attribute");
            if i.from.is_none() && i.expr.is_none() {
                self.errors.push(doc.near(&i.attribute, format!("attribute {:?} needs `from` or `expr`", i.attribute)));
            }
            if let Some(f) = &i.from {
                if crate::salesforce::soql::is_name(f) {
                    self.set.case_fields.insert(f.clone());
                } else {
                    self.errors.push(doc.near(f, format!("{f:?} is not a field path (such as Account.Name)")));
                }
            }
            let expr = i.expr.as_ref().and_then(|e| self.compile(doc, e, &format!("attribute {:?}", i.attribute)));
            let origin = doc.near(i.from.as_deref().unwrap_or(&i.attribute), "");
            let label = i.attribute.as_str().into();
            self.set.inbound.push(Inbound {
                origin,
                attribute: i.attribute,
                label,
                from: i.from,
                expr,
                default: i.default,
            });
        }
        for o in m.outbound {
            if o.from.is_none() && o.expr.is_none() {
                self.errors.push(doc.near(&o.field, format!("field {:?} needs `from` or `expr`", o.field)));
            }
            if !crate::salesforce::soql::is_name(&o.field) || o.field.contains('.') {
                self.errors.push(doc.near(&o.field, format!("{:?} is not a Case field name", o.field)));
            }
            // Read by the poll, so a field is written only when its value changes.
            if crate::salesforce::soql::is_name(&o.field) && !o.field.contains('.') {
                self.set.case_fields.insert(o.field.clone());
            }
            let expr = o.expr.as_ref().and_then(|e| self.compile(doc, e, &format!("field {:?}", o.field)));
            let origin = doc.near(&o.field, "");
            let label = o.field.as_str().into();
            self.set.outbound.push(Outbound { origin, field: o.field, label, from: o.from, expr, on: o.on });
        }
        let lead = self.record_fields(doc, "the lead mappings", "Lead", m.lead);
        self.set.lead.extend(lead);
    }

    fn handover(&mut self, doc: &Doc, h: files::HandoverFile) {
        for r in h.rules {
            self.unique(doc, &r.name, "handover rule");
            let what = format!("handover rule {:?}: the condition does not compile", r.name);
            let when = self.compile(doc, &r.when, &what);
            let reason = format!("reason:{}", r.name);
            let origin =
                TemplateOrigin::Inline { file: doc.file.clone(), text: doc.text.to_string(), source: r.reason.clone() };
            self.register_template(false, &reason, &r.reason, origin);
            if let Some(when) = when {
                let target_origin = doc.near(&format!("target: {}", r.target), "");
                self.set.handover.push(HandoverRule {
                    label: r.name.as_str().into(),
                    when_detail: format!("when: {}", when.text).into(),
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

    fn topics(&mut self, doc: &Doc, t: files::TopicsFile) {
        for topic in t.topics {
            self.unique(doc, &topic.name, "topic");
            if topic.keywords.is_empty() && topic.regex.is_none() && topic.when.is_none() {
                self.errors
                    .push(doc.near(&topic.name, format!("topic {:?} needs keywords, regex or when", topic.name)));
            }
            let (keywords, keyword_details) = topic
                .keywords
                .iter()
                .filter_map(|k| {
                    let re = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(k.trim()))).ok()?;
                    Some((re, Arc::<str>::from(format!("keyword {}", k.trim()))))
                })
                .unzip();
            let regex = match topic.regex.as_deref().map(host::compiled) {
                Some(Ok(re)) => Some(re),
                Some(Err(e)) => {
                    let error = doc.near(topic.regex.as_deref().unwrap_or(""), format!("topic {:?}: {e}", topic.name));
                    self.errors.push(error);
                    None
                }
                None => None,
            };
            let when = topic.when.as_ref().and_then(|w| self.compile(doc, w, &format!("topic {:?}", topic.name)));
            self.set.topics.push(Topic {
                label: topic.name.as_str().into(),
                name: topic.name,
                keywords,
                keyword_details,
                regex,
                when,
            });
        }
    }

    fn resolution(&mut self, doc: &Doc, r: files::ResolutionFile) {
        self.unique(doc, "resolution", "file of kind");
        if let Some(e) = &r.confirmed_when {
            self.set.confirmed_when = self.compile(doc, e, "confirmed_when: the condition does not compile");
        }
        if let Some(e) = &r.unhappy_when {
            self.set.unhappy_when = self.compile(doc, e, "unhappy_when: the condition does not compile");
        }
        if let Some(e) = &r.ask_rating_when {
            self.set.ask_rating_when = self.compile(doc, e, "ask_rating_when: the condition does not compile");
        }
        if let Some(q) = &r.quiet_after {
            match crate::config::duration::parse(q) {
                Ok(d) if (600..=30 * 86_400).contains(&d.as_secs()) => self.set.quiet_after = d,
                Ok(_) => self.errors.push(doc.near(q, format!("quiet_after: from 10m to 30d, found {q:?}"))),
                Err(e) => self.errors.push(doc.near(q, format!("quiet_after: {e}"))),
            }
        }
    }

    fn email(&mut self, doc: &Doc, e: files::EmailFile) {
        for t in e.templates {
            self.unique(doc, &t.name, "email template");
            let text_body = self.template_body(doc, &t.text, &t.text_file);
            let html_body = self.template_body(doc, &t.html, &t.html_file);
            if text_body.is_none() && html_body.is_none() {
                self.errors.push(doc.near(&t.name, format!("email template {:?} needs a text or html body", t.name)));
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
                        file: doc.file.clone(),
                        text: doc.text.to_string(),
                        source: source.clone(),
                    },
                };
                self.register_template(html, name, &source, origin);
            }
            let when = t.when.as_ref().and_then(|w| self.compile(doc, w, &format!("email template {:?}", t.name)));
            self.set.email.push(EmailTemplate {
                label: t.name.as_str().into(),
                name: t.name,
                when,
                subject,
                text: text_body.map(|_| text_name),
                html: html_body.map(|_| html_name),
            });
        }
    }

    /// A template body given inline or as a file beside the rule file: its source, and the
    /// file it came from (for errors).
    fn template_body(
        &mut self,
        doc: &Doc,
        inline: &Option<String>,
        file_ref: &Option<PathBuf>,
    ) -> Option<(String, Option<String>)> {
        match (inline, file_ref) {
            (Some(s), None) => Some((s.clone(), None)),
            (None, Some(f)) => match source::read_inside(self.dir, doc.path, f, source::MAX_FILE_BYTES) {
                Ok(s) => Some((s, Some(doc.path.parent().unwrap_or(self.dir).join(f).display().to_string()))),
                Err(err) => {
                    self.errors.push(doc.near(&f.display().to_string(), format!("cannot use template {err}")));
                    None
                }
            },
            (Some(_), Some(f)) => {
                self.errors.push(doc.near(&f.display().to_string(), "give the body inline or as a file, not both"));
                None
            }
            (None, None) => None,
        }
    }

    /// Registers a template under `name`, refusing one that nests too deep or does not parse.
    fn register_template(&mut self, html: bool, name: &str, source: &str, origin: TemplateOrigin) {
        let registry = if html { &mut self.set.html } else { &mut self.set.text };
        if let Some((line, column, depth)) = templates::too_deep(source) {
            let message = format!(
                "template error: blocks or parentheses nest {depth} deep; at most {} are allowed",
                templates::MAX_NESTING
            );
            self.errors.push(origin.place(line, column, message));
        } else if let Err(e) = registry.register_template_string(name, source) {
            let (line, column) = e.pos().unwrap_or((1, 1));
            self.errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
        }
        self.origins.insert(name.to_string(), origin);
    }

    fn tests(&mut self, doc: &Doc, t: files::TestsFile) {
        for test in t.tests {
            self.unique(doc, &test.name, "test");
            let hands_over = test.expect.handover.as_deref().is_some_and(|h| !h.eq_ignore_ascii_case("none"));
            if hands_over && test.expect.handover_rule.is_none() {
                self.errors.push(doc.near(
                    &test.name,
                    format!(
                        "test {:?} expects a handover: name the rule that must fire (handover_rule: ...), so that the error fallback cannot pass for it",
                        test.name
                    ),
                ));
            }
            if let Err(problem) = source::resolve_inside(self.dir, doc.path, &test.fixture) {
                self.errors.push(doc.near(&test.fixture.display().to_string(), format!("fixture: {problem}")));
            }
            self.set.tests.push(LoadedTest { file: doc.path.to_path_buf(), test });
        }
    }

    /// Templates must not name variables or partials that will not exist: each is rendered
    /// once now, against a sample case.
    fn check_templates(&mut self) {
        let mut sample = sample_context();
        // The attributes the mappings make exist on every conversation.
        for m in &self.set.inbound {
            sample["attributes"][&m.attribute] = json!("(sample)");
        }
        let set = &self.set;
        let reasons = set.handover.iter().map(|rule| (&set.text, Some(&rule.reason)));
        let emails = set
            .email
            .iter()
            .flat_map(|t| [(&set.text, Some(&t.subject)), (&set.text, t.text.as_ref()), (&set.html, t.html.as_ref())]);
        for (registry, name) in reasons.chain(emails) {
            if let Some(name) = name
                && let Err(e) = registry.render(name, &sample)
                && let Some(origin) = self.origins.get(name)
            {
                let (line, column) = (e.line_no.unwrap_or(1), e.column_no.unwrap_or(1));
                self.errors.push(origin.place(line, column, format!("template error: {}", e.reason())));
            }
        }
    }

    fn finish(self) -> Result<RuleSet, Vec<LoadError>> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        let mut set = self.set;
        set.hooks = Hooks {
            handover: script::defines(&self.functions, "handover", 1),
            handover_after: script::defines(&self.functions, "handover_after", 2),
            topics: script::defines(&self.functions, "topics", 1),
        };
        set.functions = self.functions;
        set.function_files = self.function_files;
        set.engine = Arc::new(self.engine);
        Ok(set)
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
    let kind = value
        .get("kind")
        .ok_or("missing `kind`: one of mappings, handover, topics, email, tests, resolution, cases")?;
    serde_yaml::from_value(kind.clone()).map_err(|_| {
        let shown = serde_yaml::to_string(kind).unwrap_or_default();
        format!("unknown kind {}: one of mappings, handover, topics, email, tests, resolution, cases", shown.trim())
    })
}

fn sample_context() -> Json {
    let mut case = Conversation::from_question("");
    case.parts.clear();
    case.id = "500000000000000AAA".into();
    case.case_number = "00001000".into();
    case.subject = "Sample".into();
    case.origin = Some("Email".into());
    case.status = Some("New".into());
    case.customer_email = Some("customer@example.com".into());
    let mut sample = template_context(&case, Some("Sample reply."));
    // Attribute and field names are open-ended; a template may use any.
    sample["attributes"] = json!({});
    sample
}
