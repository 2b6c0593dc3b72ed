//! `casebridge record CASE_ID`: writes a fixture from a live org — the case exactly as the
//! daemon's poll query reads it (with the fields the rule set maps), wrapped with the agent
//! user's id — optionally scrubbed of personal data.
//!
//! Scrubbing is consistent: the same person becomes the same pseudonym everywhere (in
//! fields, email headers and message texts), so conversations still read naturally and
//! rules that compare names or addresses behave as they would on the original.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Value as Json, json};

use crate::channels::cases::query::{Posts, case_query};
use crate::salesforce::soql::Filter;
use crate::salesforce::{Client, SalesforceError, id};

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("no case {0} in the org (or the signed-in user cannot see it)")]
    NotFound(String),
    #[error("{0:?} is not a case id")]
    NotACase(String),
}

/// Reads a case as a fixture.
pub async fn record(
    client: &Client,
    case_id: &str,
    agent_user_id: &str,
    extra_fields: &[String],
) -> Result<Json, RecordError> {
    if !id::is_id(case_id) || !case_id.starts_with(id::prefix::CASE) {
        return Err(RecordError::NotACase(case_id.to_string()));
    }
    let posts = Posts::of(client).await?;
    let soql = case_query(extra_fields, Filter::eq("Id", case_id), posts);
    let rows: Vec<Json> = client.query_with_children(soql).await?;
    let case = rows.into_iter().next().ok_or_else(|| RecordError::NotFound(case_id.to_string()))?;
    Ok(json!({ "agent_user_id": agent_user_id, "case": case }))
}

/// Replaces names, email addresses and phone numbers with consistent pseudonyms.
pub fn scrub(fixture: &mut Json) {
    let mut people = Pseudonyms::default();
    // Names and addresses in the fields that hold them are learnt first…
    collect(fixture, &mut people);
    // …then every string is rewritten, texts included.
    rewrite(fixture, &people);
}

#[derive(Default)]
struct Pseudonyms {
    /// Original (lowercased) → pseudonym, for full names and first names.
    names: BTreeMap<String, String>,
    /// Original address (lowercased) → pseudonym address.
    emails: BTreeMap<String, String>,
}

impl Pseudonyms {
    fn person(&mut self, full_name: &str) {
        let full = full_name.trim();
        if full.is_empty() || self.names.contains_key(&full.to_lowercase()) {
            return;
        }
        let n = self.names.values().filter(|v| v.starts_with("Person ")).count() + 1;
        let pseudonym = format!("Person {n}");
        let mut parts = full.split_whitespace();
        if let (Some(first), Some(_)) = (parts.next(), parts.next()) {
            self.names.entry(first.to_lowercase()).or_insert_with(|| format!("Person{n}"));
        }
        self.names.insert(full.to_lowercase(), pseudonym);
    }

    fn email(&mut self, address: &str) -> String {
        let key = address.trim().to_lowercase();
        let n = self.emails.len() + 1;
        self.emails.entry(key).or_insert_with(|| format!("person{n}@example.com")).clone()
    }
}

const NAME_FIELDS: &[&str] = &["Name", "SuppliedName", "FromName"];
const EMAIL_FIELDS: &[&str] = &["Email", "SuppliedEmail", "FromAddress", "ToAddress", "CcAddress", "BccAddress"];

fn email_regex() -> Regex {
    Regex::new(r"(?i)[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}").expect("a valid pattern")
}

fn phone_regex() -> Regex {
    Regex::new(r"\+?\d[\d ().-]{6,}\d").expect("a valid pattern")
}

fn collect(value: &Json, people: &mut Pseudonyms) {
    match value {
        Json::Object(map) => {
            let is_account = map.get("attributes").and_then(|a| a["type"].as_str()) == Some("Account");
            for (k, v) in map {
                if let Some(s) = v.as_str() {
                    if NAME_FIELDS.contains(&k.as_str()) && !is_account {
                        people.person(s);
                    }
                    if EMAIL_FIELDS.contains(&k.as_str()) {
                        for m in email_regex().find_iter(s) {
                            people.email(m.as_str());
                        }
                    }
                }
                collect(v, people);
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect(i, people)),
        _ => {}
    }
}

/// Fields that say what a record is, never who: left as they are.
const STRUCTURAL_FIELDS: &[&str] =
    &["CaseNumber", "url", "nextRecordsUrl", "type", "Status", "Origin", "Priority", "MessageIdentifier"];

fn rewrite(value: &mut Json, people: &Pseudonyms) {
    match value {
        Json::String(s) => *s = scrub_text(s, people),
        Json::Object(map) => {
            for (k, v) in map.iter_mut() {
                let structural = STRUCTURAL_FIELDS.contains(&k.as_str()) || k.ends_with("Id");
                if !(structural && v.is_string()) {
                    rewrite(v, people);
                }
            }
        }
        Json::Array(items) => items.iter_mut().for_each(|v| rewrite(v, people)),
        _ => {}
    }
}

/// Whether digits found by the phone pattern look like a phone number rather than a case
/// number, an order number or a version: a leading `+`, separators, or ten digits or more.
fn looks_like_phone(found: &str) -> bool {
    let digits = found.chars().filter(char::is_ascii_digit).count();
    let separated = found.chars().any(|c| matches!(c, ' ' | '(' | ')' | '-' | '.'));
    found.starts_with('+') || (separated && digits >= 9 && !found.contains('.')) || digits >= 10
}

fn scrub_text(text: &str, people: &Pseudonyms) -> String {
    if id::is_id(text) || crate::salesforce::soql::parse_datetime(text).is_some() {
        return text.to_string();
    }
    let mut out = email_regex()
        .replace_all(text, |c: &regex::Captures| {
            people.emails.get(&c[0].to_lowercase()).cloned().unwrap_or_else(|| "someone@example.com".into())
        })
        .into_owned();
    out = phone_regex()
        .replace_all(
            &out,
            |c: &regex::Captures| {
                if looks_like_phone(&c[0]) { "+1 555 0100".to_string() } else { c[0].to_string() }
            },
        )
        .into_owned();
    // Longest names first, so "Jane Doe" is replaced before "Jane".
    let mut names: Vec<(&String, &String)> = people.names.iter().collect();
    names.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
    for (original, pseudonym) in names {
        let re = Regex::new(&format!(r"(?i)\b{}\b", regex::escape(original))).expect("an escaped pattern");
        out = re.replace_all(&out, pseudonym.as_str()).into_owned();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubbing_is_consistent_and_leaves_ids_and_dates() {
        let mut f = json!({
            "agent_user_id": "005Dn0000000003IAA",
            "case": {
                "Id": "500Dn000000000IIAQ", "CreatedDate": "2026-11-20T09:00:00.000+0000", "CaseNumber": "00001026",
                "attributes": { "type": "Case", "url": "/services/data/v62.0/sobjects/Case/500Dn000000000IIAQ" },
                "Subject": "Case 00001026: error 1234-5678 after firmware 2.10.4 (order 123456789)",
                "SuppliedName": "Jane Doe", "SuppliedEmail": "jane@customer.example",
                "Description": "Jane here. Call me on +44 20 7946 0958 or mail jane@customer.example.",
                "Contact": { "Name": "Jane Doe", "Email": "Jane@Customer.example" },
                "Account": { "attributes": { "type": "Account" }, "Name": "Globex" },
                "EmailMessages": { "records": [{ "FromName": "Jane Doe", "FromAddress": "jane@customer.example",
                    "TextBody": "Regards, Jane Doe" }] }
            }
        });
        scrub(&mut f);
        let text = f.to_string();
        assert!(!text.to_lowercase().contains("jane"), "{text}");
        assert!(!text.contains("7946"), "{text}");
        assert_eq!(f["case"]["SuppliedName"], "Person 1");
        assert_eq!(f["case"]["Contact"]["Name"], "Person 1");
        assert_eq!(f["case"]["SuppliedEmail"], f["case"]["Contact"]["Email"]);
        assert_eq!(f["case"]["Description"], "Person1 here. Call me on +1 555 0100 or mail person1@example.com.");
        assert_eq!(f["case"]["Account"]["Name"], "Globex", "companies are not people");
        assert_eq!(f["case"]["Id"], "500Dn000000000IIAQ");
        // Case numbers, record URLs, error codes, versions and order numbers are not phones.
        assert_eq!(f["case"]["CaseNumber"], "00001026");
        assert_eq!(f["case"]["attributes"]["url"], "/services/data/v62.0/sobjects/Case/500Dn000000000IIAQ");
        assert_eq!(f["case"]["Subject"], "Case 00001026: error 1234-5678 after firmware 2.10.4 (order 123456789)");
        assert_eq!(f["case"]["CreatedDate"], "2026-11-20T09:00:00.000+0000");
    }
}
