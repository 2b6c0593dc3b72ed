//! A record the org's duplicate rule refused. Salesforce refuses an API save that matches
//! an existing record under an active duplicate rule with `DUPLICATES_DETECTED`, naming the
//! matching records (`duplicateResut` in the REST API's spelling; `duplicateResult` is read
//! too). casebridge neither makes the record twice nor drops the write silently: the
//! conversation is linked to the first matching record (its External ID key is written
//! there, when that record carries none, so every later upsert by the conversation's key
//! reaches it) and a sync error says what happened.

use serde_json::{Value as Json, json};

use crate::model::Action;
use crate::salesforce::{Client, SalesforceError};

/// The ids of the matching records of `object` (a rule may match other objects too: a lead
/// rule can match contacts) and the rule's name, from a `DUPLICATES_DETECTED` error body.
pub fn matches(body: Option<&Json>, object: &str) -> Option<(Vec<String>, String)> {
    let items = body?.as_array()?;
    let item = items.iter().find(|i| i["errorCode"] == "DUPLICATES_DETECTED")?;
    let result = item.get("duplicateResut").or_else(|| item.get("duplicateResult"))?;
    let ids: Vec<String> = result["matchResults"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["entityType"].as_str().is_none_or(|t| t.eq_ignore_ascii_case(object)))
        .flat_map(|m| m["matchRecords"].as_array().into_iter().flatten())
        .filter(|r| r["record"]["attributes"]["type"].as_str().is_none_or(|t| t.eq_ignore_ascii_case(object)))
        .filter_map(|r| r["record"]["Id"].as_str().map(str::to_string))
        .collect();
    let rule = result["duplicateRule"].as_str().unwrap_or("a duplicate rule").to_string();
    (!ids.is_empty()).then_some((ids, rule))
}

/// What linking did, for the sync error that reports it.
pub struct Linked {
    pub record_id: String,
    pub message: String,
}

/// Links the conversation an upsert was for to `record_id`, the record the rule matched:
/// writes the upsert's key there when it has none. Another conversation's key is left as it
/// is (that conversation owns the record); this one's later writes by its key then fail
/// and are reported.
pub async fn link(client: &Client, action: &Action, record_id: &str, rule: &str) -> Result<Linked, SalesforceError> {
    let Action::UpsertRecord { object, key_field, key, conversation_id, .. } = action else {
        return Err(SalesforceError::Config("only an upsert is linked".into()));
    };
    let key = key.as_deref().unwrap_or(conversation_id);
    let current: Json = client.get(object, record_id, Some(&[key_field.as_str()])).await?;
    let message = match current[key_field.as_str()].as_str().filter(|v| !v.is_empty()) {
        Some(other) if other.eq_ignore_ascii_case(key) => {
            format!("{object}: the org's duplicate rule {rule} matched {record_id}, already this conversation's")
        }
        Some(other) => format!(
            "{object}: the org's duplicate rule {rule} matched {record_id}, which conversation {other} made; no second \
             record was made, and this conversation's later writes to it are left out"
        ),
        None => {
            client.update(object, record_id, &json!({ key_field.as_str(): key })).await?;
            format!(
                "{object}: the org's duplicate rule {rule} matched {record_id}; the conversation was linked to it \
                 instead of making a second record"
            )
        }
    };
    Ok(Linked { record_id: record_id.to_string(), message })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_refuses_other_errors() {
        let body = |key: &str| {
            json!([{ "errorCode": "DUPLICATES_DETECTED", "message": "Use one of these records?",
                     key: { "duplicateRule": "Standard_Lead_Duplicate_Rule",
                            "matchResults": [{ "matchRecords": [{ "record": { "Id": "00QA" } }, { "record": { "Id": "00QB" } }] }] } }])
        };
        for key in ["duplicateResut", "duplicateResult"] {
            let (ids, rule) = matches(Some(&body(key)), "Lead").unwrap();
            assert_eq!(ids, ["00QA", "00QB"]);
            assert_eq!(rule, "Standard_Lead_Duplicate_Rule");
        }
        // sObject Collections answer without the matches: nothing to link to.
        assert!(matches(Some(&json!([{ "errorCode": "DUPLICATES_DETECTED", "message": "x" }])), "Lead").is_none());
        assert!(matches(Some(&json!([{ "errorCode": "INVALID_FIELD", "message": "x" }])), "Lead").is_none());
        assert!(matches(None, "Lead").is_none());
        // A match of another object (a lead rule matching a contact) is no lead to link to.
        let contact = json!([{ "errorCode": "DUPLICATES_DETECTED", "duplicateResut": { "duplicateRule": "R",
            "matchResults": [{ "entityType": "Contact", "matchRecords": [{ "record": { "attributes": { "type": "Contact" }, "Id": "003A" } }] },
                             { "entityType": "Lead", "matchRecords": [{ "record": { "attributes": { "type": "Lead" }, "Id": "00QA" } }] }] } }]);
        assert_eq!(matches(Some(&contact), "Lead").unwrap().0, ["00QA"]);
    }
}
