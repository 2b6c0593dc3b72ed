//! Matching a visitor's email to Salesforce, as the seed maps it: a Contact with the email
//! makes the visitor a user (its Account is their company); only open Leads make them a
//! lead; nothing, a new visitor. At most two queries, once a conversation. And the Lead a
//! new visitor who left an email becomes: upserted by the conversation's id, so a resend
//! never makes a second; `LastName` and `Company`, which Salesforce requires, get a
//! placeholder when the visitor did not give them.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use super::plan::{DESCRIPTION_MAX_CHARS, transcript};
use crate::model::{Action, Conversation, SalesforcePerson};
use crate::salesforce::soql::{Filter, Select};
use crate::salesforce::{Client, SalesforceError};

/// What a Lead's required `LastName` and `Company` hold when the visitor did not say.
pub const NOT_PROVIDED: &str = "[not provided]";

/// Who `email` is in the org.
pub async fn find(client: &Client, email: &str) -> Result<SalesforcePerson, SalesforceError> {
    let build = |s: Select| s.build().map_err(|e| SalesforceError::Config(e.to_string()));
    let contacts = build(
        Select::new(["Id", "Name", "AccountId", "Account.Name", "OwnerId"], "Contact")
            .filter(Filter::eq("Email", email))
            .order_by("CreatedDate", false)
            .limit(1),
    )?;
    let rows: Vec<Json> = client.query(contacts).collect_all().await?;
    if let Some(c) = rows.first() {
        return Ok(SalesforcePerson::User {
            contact_id: text(&c["Id"]).unwrap_or_default(),
            name: text(&c["Name"]),
            account_id: text(&c["AccountId"]),
            account_name: text(&c["Account"]["Name"]),
            owner_id: text(&c["OwnerId"]),
        });
    }
    let leads = build(
        Select::new(["Id", "Name", "Company", "OwnerId"], "Lead")
            .filter(Filter::eq("Email", email).and(Filter::eq("IsConverted", false)))
            .order_by("CreatedDate", false)
            .limit(100),
    )?;
    let rows: Vec<Json> = client.query(leads).collect_all().await?;
    Ok(match rows.first() {
        Some(first) => SalesforcePerson::Lead {
            lead_ids: rows.iter().filter_map(|r| text(&r["Id"])).collect(),
            name: text(&first["Name"]),
            company: text(&first["Company"]),
            owner_id: text(&first["OwnerId"]),
        },
        None => SalesforcePerson::Visitor,
    })
}

fn text(v: &Json) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// The Lead a new visitor with an email becomes (`None` without an email): the visitor's
/// name and email, placeholders for what Salesforce requires, then the lead mappings'
/// `mapped` values (which may replace them), and `owner` when given.
pub fn create_lead(
    conv: &Conversation,
    lead_source: &str,
    mapped: &BTreeMap<String, Json>,
    owner: Option<&str>,
) -> Option<Action> {
    let visitor = &conv.messenger.as_ref()?.visitor;
    let email = visitor.email.as_ref()?;
    let (first, last) = split_name(visitor.name.as_deref());
    let mut fields: BTreeMap<String, Json> = BTreeMap::new();
    if let Some(first) = first {
        fields.insert("FirstName".into(), json!(first));
    }
    fields.insert("LastName".into(), json!(last.unwrap_or_else(|| NOT_PROVIDED.into())));
    fields.insert("Company".into(), json!(NOT_PROVIDED));
    fields.insert("Email".into(), json!(email));
    fields.insert("LeadSource".into(), json!(lead_source));
    fields.insert("Description".into(), json!(transcript(conv, DESCRIPTION_MAX_CHARS)));
    fields.extend(mapped.clone());
    if let Some(owner) = owner {
        fields.insert("OwnerId".into(), json!(owner));
    }
    Some(super::plan::by_conversation(conv, "Lead", fields, false))
}

/// "Sam de Vries" → ("Sam", "de Vries"); one word is a last name; both cut to Salesforce's
/// lengths (40 and 80 characters).
fn split_name(name: Option<&str>) -> (Option<String>, Option<String>) {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else { return (None, None) };
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    match name.split_once(char::is_whitespace) {
        Some((first, last)) => (Some(cut(first, 40)), Some(cut(last.trim(), 80))),
        None => (None, Some(cut(name, 80))),
    }
}

/// The first email address in a visitor's message, if any (a visitor who "leaves their
/// email" in the chat).
pub fn email_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || "<>(),;\"'".contains(c))
        .map(|w| w.trim_end_matches(['.', '!', '?', ':']))
        .find(|w| super::is_email(w))
        .map(str::to_lowercase)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_into_what_a_lead_holds() {
        assert_eq!(split_name(Some("Sam de Vries")), (Some("Sam".into()), Some("de Vries".into())));
        assert_eq!(split_name(Some("Cher")), (None, Some("Cher".into())));
        assert_eq!(split_name(Some("  ")), (None, None));
        assert_eq!(split_name(Some(&"x".repeat(300))).1.unwrap().chars().count(), 80);
    }

    #[test]
    fn an_email_left_in_a_message_is_found() {
        assert_eq!(email_in("sure, it's Sam@Example.com."), Some("sam@example.com".into()));
        assert_eq!(email_in("write to <a@b.co>!"), Some("a@b.co".into()));
        assert_eq!(email_in("no email @ here"), None);
        assert_eq!(email_in("user@localhost"), None);
    }
}
