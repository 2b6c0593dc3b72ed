//! `kind: cases` rules: when a messenger conversation becomes a Salesforce Case besides a
//! handover (on its start, a topic, any condition), with which record type, owner, mapped
//! fields and transcript field, and whether the case closes with the conversation. Loaded
//! and checked here; evaluated by the rule set's evaluation ([`super::eval`]).

use std::sync::Arc;

use super::files::{CaseAction, CaseRule, CaseTrigger, CasesFile, RecordField};
use super::load::{Doc, Loader};
use super::{Expr, LoadError};

/// A loaded `kind: cases` rule.
pub(super) struct CompiledCaseRule {
    pub name: String,
    pub label: Arc<str>,
    pub on: CaseTrigger,
    pub topic: Option<String>,
    pub when: Option<Expr>,
    pub update: bool,
    pub record_type: Option<String>,
    pub owner: String,
    /// Where the owner is written, for checks against the org.
    pub owner_origin: LoadError,
    pub transcript_field: String,
    pub transcript_origin: LoadError,
    pub fields: Vec<CompiledField>,
    pub close_status: Option<String>,
}

/// A field of a record a rule writes (a case's, a lead's), compiled.
pub(super) struct CompiledField {
    pub field: String,
    /// Where the field is written, for checks against the org.
    pub origin: LoadError,
    pub from: Option<String>,
    pub expr: Option<Expr>,
}

/// Fields a rule may not write: the id and the upsert key (Salesforce refuses it in the
/// body), and on a case what the rule's own settings decide (its owner and record type).
const RESERVED_FIELDS: &[&str] = &["Id", "Casebridge_Conversation__c", "OwnerId", "RecordTypeId"];

/// The reserved fields of a record of `object`.
fn reserved(object: &str) -> impl Iterator<Item = &'static str> {
    RESERVED_FIELDS.iter().copied().take(if object == "Case" { RESERVED_FIELDS.len() } else { 2 })
}

/// Whether `name` is a plain field API name (`Product__c`), not a path.
fn is_field_name(name: &str) -> bool {
    crate::salesforce::soql::is_name(name) && !name.contains('.')
}

impl Loader<'_> {
    /// Checks and compiles the fields a rule writes on a record of `object`: each a plain
    /// field name, once, with `from` or `expr`.
    pub(super) fn record_fields(
        &mut self,
        doc: &Doc,
        owner: &str,
        object: &str,
        fields: Vec<RecordField>,
    ) -> Vec<CompiledField> {
        let mut compiled = Vec::with_capacity(fields.len());
        let mut seen = std::collections::BTreeSet::new();
        for f in fields {
            if !is_field_name(&f.field) {
                self.errors.push(doc.near(&f.field, format!("{:?} is not a {object} field name", f.field)));
            } else if reserved(object).any(|r| r.eq_ignore_ascii_case(&f.field)) {
                let message = format!(
                    "{owner}: {:?} is casebridge's to write (the record's key, owner or record type); use the rule's own settings",
                    f.field
                );
                self.errors.push(doc.near(&f.field, message));
            } else if !seen.insert(f.field.to_ascii_lowercase()) {
                self.errors.push(doc.near(&f.field, format!("{owner} writes field {:?} twice", f.field)));
            } else if object == "Lead" {
                // Lead mappings may sit in several mappings files: one value a field.
                self.unique(doc, &f.field, "lead field");
            }
            if f.from.is_some() == f.expr.is_some() {
                let message = format!("{owner}: field {:?} needs `from` or `expr` (one)", f.field);
                self.errors.push(doc.near(&f.field, message));
            }
            let expr = f.expr.as_ref().and_then(|e| self.compile(doc, e, &format!("field {:?}", f.field)));
            let origin = doc.near(&f.field, "");
            compiled.push(CompiledField { field: f.field, origin, from: f.from, expr });
        }
        compiled
    }

    /// Checks and compiles a `kind: cases` file.
    pub(super) fn cases(&mut self, doc: &Doc, file: CasesFile) {
        for rule in file.cases {
            self.unique(doc, &rule.name, "cases rule");
            if let Some(compiled) = self.case_rule(doc, rule) {
                self.set.cases.push(compiled);
            }
        }
    }

    fn case_rule(&mut self, doc: &Doc, rule: CaseRule) -> Option<CompiledCaseRule> {
        let before = self.errors.len();
        let name = rule.name.clone();
        match (rule.on, &rule.topic, &rule.when) {
            (CaseTrigger::Topic, None, _) => {
                self.errors.push(doc.near(&name, format!("cases rule {name:?}: `on: topic` needs `topic`")))
            }
            (CaseTrigger::Condition, _, None) => {
                self.errors.push(doc.near(&name, format!("cases rule {name:?}: `on: condition` needs `when`")))
            }
            (trigger, Some(topic), _) if trigger != CaseTrigger::Topic => self.errors.push(doc.near(
                &format!("topic: {topic}"),
                format!("cases rule {name:?}: `topic` is only read with `on: topic`"),
            )),
            _ => {}
        }
        if rule.topic.as_deref().is_some_and(|t| t.trim().is_empty()) {
            self.errors.push(doc.near(&name, format!("cases rule {name:?}: `topic` is empty")));
        }
        if !is_field_name(&rule.transcript_field) {
            let message = format!("cases rule {name:?}: {:?} is not a Case field name", rule.transcript_field);
            self.errors.push(doc.near(&rule.transcript_field, message));
        }
        for (setting, value) in [("record_type", rule.record_type.as_deref()), ("owner", Some(rule.owner.as_str()))] {
            if value.is_some_and(|v| v.trim().is_empty() || v.chars().count() > 255) {
                let message = format!("cases rule {name:?}: `{setting}` must be 1 to 255 characters");
                self.errors.push(doc.near(&name, message));
            }
        }
        if rule.closed_status.trim().is_empty() {
            self.errors.push(doc.near(&name, format!("cases rule {name:?}: `closed_status` is empty")));
        }
        let when = rule
            .when
            .as_ref()
            .and_then(|w| self.compile(doc, w, &format!("cases rule {name:?}: the condition does not compile")));
        let fields = self.record_fields(doc, &format!("cases rule {name:?}"), "Case", rule.fields);
        if fields.iter().any(|f| f.field.eq_ignore_ascii_case(&rule.transcript_field)) {
            let message = format!("cases rule {name:?} writes its transcript field {:?} twice", rule.transcript_field);
            self.errors.push(doc.near(&name, message));
        }
        if self.errors.len() > before {
            return None;
        }
        Some(CompiledCaseRule {
            label: name.as_str().into(),
            name,
            on: rule.on,
            topic: rule.topic,
            when,
            update: rule.action == CaseAction::Update,
            record_type: rule.record_type,
            owner_origin: doc.near(&format!("owner: {}", rule.owner), ""),
            owner: rule.owner,
            transcript_origin: doc.near(&format!("transcript_field: {}", rule.transcript_field), ""),
            transcript_field: rule.transcript_field,
            fields,
            close_status: rule.close_with_conversation.then_some(rule.closed_status),
        })
    }
}
