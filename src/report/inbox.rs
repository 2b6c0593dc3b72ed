//! The admin server's messenger side: the inbox (messenger conversations with who the
//! visitor is), the live Salesforce panel beside each (contact, account, opportunities, open
//! cases, leads, with "Open in Salesforce" links), the New case form (built from the org's
//! describe, checked before sending), and sync errors grouped by object and code with a
//! bulk retry.
//!
//! | path | what |
//! | --- | --- |
//! | `GET /api/inbox` | messenger conversations, newest activity first |
//! | `GET /api/inbox/{id}/salesforce` | the visitor's live Salesforce data |
//! | `GET /api/case-form` | the fields a new case can be given (describe) and its default owner |
//! | `POST /api/inbox/{id}/case` | `{fields}` → the case, made at once, or why not (422) |
//! | `POST /api/inbox/{id}/lead` | `{fields}` (optional) → the visitor's Lead, queued (202), or why not (409, 422) |
//! | `GET /api/sync-errors/groups` | sync errors by object and code, with their conversations |
//! | `POST /api/sync-errors/retry` | `{ids: [...]}`: every retryable one queued again |

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use super::admin::AdminState;
use crate::model::{Channel, Conversation, SalesforcePerson};
use crate::salesforce::soql::{Filter, Select};

fn failure(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, axum::Json(json!({ "error": message.to_string() }))).into_response()
}

/// The messenger conversations, newest activity first (at most 200).
pub async fn inbox(State(state): State<AdminState>) -> Response {
    let store = state.store.clone();
    let listed = tokio::task::spawn_blocking(move || store.recent_chats(200)).await;
    match listed {
        Ok(Ok(chats)) => {
            axum::Json(json!({ "conversations": chats.iter().map(chat_summary).collect::<Vec<_>>() })).into_response()
        }
        Ok(Err(e)) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

fn chat_summary(c: &Conversation) -> Json {
    let info = c.messenger.clone().unwrap_or_default();
    json!({
        "id": c.id,
        "subject": c.subject,
        "state": crate::store::state_name(&c.state),
        "visitor": info.visitor,
        "kind": info.person_label(),
        "case_id": info.case.id(),
        "case_number": info.case.number(),
        "messages": c.parts.len(),
        "updated": c.modstamp,
    })
}

/// A record's "Open in Salesforce" address.
fn link(state: &AdminState, object: &str, id: &str) -> String {
    format!("{}/lightning/r/{object}/{id}/view", state.instance_url.trim_end_matches('/'))
}

/// Runs a query built by the builders; errors as text for the panel.
async fn rows(client: &crate::salesforce::Client, select: Select) -> Result<Vec<Json>, String> {
    let soql = select.build().map_err(|e| e.to_string())?;
    client.query::<Json>(soql).collect_all().await.map_err(|e| e.to_string())
}

/// The visitor's live Salesforce data, read now: a verified user's contact, account,
/// the account's open opportunities and the contact's open cases; a lead's leads.
pub async fn salesforce(State(state): State<AdminState>, Path(id): Path<String>) -> Response {
    let Some(client) = state.client.clone() else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "this admin server has no Salesforce connection");
    };
    let conv = match state.store.conversation(&id) {
        Ok(Some(c)) if c.channel == Channel::Messenger => c,
        Ok(_) => return failure(StatusCode::NOT_FOUND, format!("no messenger conversation {id}")),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let info = conv.messenger.clone().unwrap_or_default();
    let mut panel = json!({
        "visitor": info.visitor,
        "kind": info.person_label(),
        "lead_queued": info.lead.exists(),
    });
    let result = match &info.person {
        Some(SalesforcePerson::User { contact_id, .. }) if info.visitor.verified => {
            contact_panel(&state, &client, contact_id, &mut panel).await
        }
        Some(SalesforcePerson::Lead { lead_ids, .. }) => lead_panel(&state, &client, lead_ids, &mut panel).await,
        _ => Ok(()),
    };
    if let Some(case_id) = info.case.id() {
        let number = info.case.number();
        panel["case"] = json!({ "id": case_id, "number": number, "link": link(&state, "Case", case_id) });
    }
    match result {
        Ok(()) => axum::Json(panel).into_response(),
        Err(e) => failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
    }
}

/// A verified contact: the contact, their account, its open opportunities, their open cases.
async fn contact_panel(
    state: &AdminState,
    client: &crate::salesforce::Client,
    contact_id: &str,
    panel: &mut Json,
) -> Result<(), String> {
    let fields = [
        "Id",
        "Name",
        "Email",
        "AccountId",
        "Account.Name",
        "Account.Website",
        "Account.BillingCountry",
        "Account.Owner.Name",
    ];
    let contact = rows(client, Select::new(fields, "Contact").filter(Filter::eq("Id", contact_id))).await?;
    let Some(c) = contact.first() else { return Ok(()) };
    panel["contact"] = json!({
        "id": c["Id"], "name": c["Name"], "email": c["Email"], "link": link(state, "Contact", contact_id),
        "account_owner": c["Account"]["Owner"]["Name"],
    });
    if let Some(account) = c["AccountId"].as_str() {
        panel["account"] = json!({
            "id": account, "name": c["Account"]["Name"], "domain": c["Account"]["Website"],
            "country": c["Account"]["BillingCountry"], "owner": c["Account"]["Owner"]["Name"],
            "link": link(state, "Account", account),
        });
        let open = Select::new(["Id", "Name", "StageName", "CloseDate", "Amount", "Owner.Name"], "Opportunity")
            .filter(Filter::eq("AccountId", account).and(Filter::eq("IsClosed", false)))
            .order_by("CloseDate", false)
            .limit(50);
        panel["opportunities"] = rows(client, open)
            .await?
            .iter()
            .map(|o| {
                json!({
                    "id": o["Id"], "name": o["Name"], "stage": o["StageName"], "close_date": o["CloseDate"],
                    "amount": o["Amount"], "owner": o["Owner"]["Name"],
                    "link": link(state, "Opportunity", o["Id"].as_str().unwrap_or_default()),
                })
            })
            .collect();
    }
    let cases = Select::new(["Id", "CaseNumber", "Status", "Priority", "Subject"], "Case")
        .filter(Filter::eq("ContactId", contact_id).and(Filter::eq("IsClosed", false)))
        .order_by("CreatedDate", true)
        .limit(50);
    panel["open_cases"] = rows(client, cases)
        .await?
        .iter()
        .map(|k| {
            json!({
                "id": k["Id"], "number": k["CaseNumber"], "status": k["Status"], "priority": k["Priority"],
                "subject": k["Subject"], "link": link(state, "Case", k["Id"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    Ok(())
}

/// The open leads the visitor's email matched.
async fn lead_panel(
    state: &AdminState,
    client: &crate::salesforce::Client,
    lead_ids: &[String],
    panel: &mut Json,
) -> Result<(), String> {
    let leads = Select::new(["Id", "Name", "Company", "Status", "Owner.Name"], "Lead")
        .filter(Filter::is_in("Id", lead_ids.iter().cloned()));
    panel["leads"] = rows(client, leads)
        .await?
        .iter()
        .map(|l| {
            json!({
                "id": l["Id"], "name": l["Name"], "company": l["Company"], "status": l["Status"],
                "owner": l["Owner"]["Name"], "link": link(state, "Lead", l["Id"].as_str().unwrap_or_default()),
            })
        })
        .collect();
    Ok(())
}

/// The New case form: Case's createable fields from the org's describe, required ones
/// marked, picklists with their values, the active record types, and who owns the case by
/// default.
pub async fn case_form(State(state): State<AdminState>) -> Response {
    let Some(client) = state.client.clone() else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "this admin server has no Salesforce connection");
    };
    let describe = match client.describe("Case").await {
        Ok(d) => d,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
    };
    let fields: Vec<Json> = describe
        .fields
        .iter()
        .filter(|f| f.createable && f.name != crate::channels::messenger::plan::CONVERSATION_FIELD)
        .map(|f| {
            json!({
                "name": f.name, "label": f.label, "type": f.kind, "length": f.length,
                "required": f.required_on_create(),
                "values": f.picklist_values.iter().filter(|p| p.active).map(|p| p.value.clone()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let soql = Select::new(["Id", "Name"], "RecordType")
        .filter(Filter::eq("SobjectType", "Case").and(Filter::eq("IsActive", true)))
        .order_by("Name", false)
        .build()
        .expect("a fixed query");
    let record_types: Vec<Json> = match client.query::<Json>(soql).collect_all().await {
        Ok(rows) => rows.iter().map(|r| json!({ "id": r["Id"], "name": r["Name"] })).collect(),
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
    };
    axum::Json(json!({ "fields": fields, "record_types": record_types, "default_owner": state.default_owner }))
        .into_response()
}

/// Makes a case for a messenger conversation by hand, at once: checked against the
/// describe first (every problem is named; nothing is sent), then upserted by the
/// conversation's id (a second submit updates the same case), and noted in the conversation.
pub async fn create_case(
    State(state): State<AdminState>,
    Path(id): Path<String>,
    body: Result<axum::Json<Json>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let (Some(client), Some(hub)) = (state.client.clone(), state.messenger.clone()) else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "this admin server has no Salesforce connection or messenger");
    };
    let fields: BTreeMap<String, Json> = match body.map(|b| b.0.get("fields").cloned()) {
        Ok(Some(Json::Object(map))) => map.into_iter().filter(|(_, v)| !v.is_null() && v != "").collect(),
        Ok(_) => return failure(StatusCode::BAD_REQUEST, "expected {\"fields\": {...}}"),
        Err(e) => return failure(e.status(), e.body_text()),
    };
    match state.store.conversation(&id) {
        Ok(Some(c)) if c.channel == Channel::Messenger => {}
        Ok(_) => return failure(StatusCode::NOT_FOUND, format!("no messenger conversation {id}")),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
    let describe = match client.describe("Case").await {
        Ok(d) => d,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
    };
    let fields = crate::salesforce::validate::from_form(&describe, fields);
    let mut problems: Vec<Json> = Vec::new();
    match crate::salesforce::validate::check(&describe, &fields, true) {
        Err(r) => problems.push(json!({ "field": r.field, "code": r.code, "message": r.message })),
        Ok(checked) => problems
            .extend(checked.refused.iter().map(|r| json!({ "field": r.field, "code": r.code, "message": r.message }))),
    }
    if !problems.is_empty() {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "error": "the case was not sent", "problems": problems })),
        )
            .into_response();
    }
    // Never the agent user's: the cases channel would take it for a case to answer.
    let mut fields = fields;
    let owner = fields.entry("OwnerId".to_string()).or_insert_with(|| state.default_owner["id"].clone()).clone();
    let key = crate::channels::messenger::plan::CONVERSATION_FIELD;
    let path = format!("sobjects/Case/{key}/{id}");
    match client.upsert_json(&path, &json!(fields)).await {
        Ok(case_id) => {
            let note = format!("A case was made by hand from the admin page: {}", link(&state, "Case", &case_id));
            if let Err(e) = hub.link_case(&id, &case_id, owner.as_str().unwrap_or_default(), &note) {
                tracing::warn!(error = %e, "Cannot link the new case to the conversation.");
            }
            (StatusCode::CREATED, axum::Json(json!({ "id": case_id, "link": link(&state, "Case", &case_id) })))
                .into_response()
        }
        Err(e) => {
            let _ = state.store.record_error(crate::store::SyncError::new(
                Some(&id),
                "create_case",
                e.error_code(),
                &e.message(),
            ));
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                axum::Json(json!({ "error": "Salesforce refused the case", "problems": [{ "code": e.error_code(), "message": e.message() }] })),
            )
                .into_response()
        }
    }
}

/// Which object an operation writes, for grouping sync errors.
fn object_of(operation: &str) -> &'static str {
    match operation {
        "create_lead" => "Leads",
        "log_task" => "Tasks",
        "match_visitor" | "knowledge_sync" | "poll" | "agent" | "rules" => "Other",
        _ => "Cases",
    }
}

/// Sync errors grouped by object (Cases, Leads, Tasks) and code.
pub async fn error_groups(State(state): State<AdminState>) -> Response {
    let errors = match state.store.sync_errors() {
        Ok(e) => e,
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut groups: BTreeMap<(&str, String), Vec<&crate::store::SyncError>> = BTreeMap::new();
    for e in &errors {
        groups.entry((object_of(&e.operation), e.code.clone())).or_default().push(e);
    }
    let groups: Vec<Json> = groups
        .into_iter()
        .map(|((object, code), list)| {
            let conversations: std::collections::BTreeSet<&str> =
                list.iter().filter_map(|e| e.case_id.as_deref()).collect();
            json!({
                "object": object, "code": code, "count": list.len(),
                "ids": list.iter().map(|e| e.id).collect::<Vec<_>>(),
                "retryable": list.iter().filter(|e| e.action.is_some()).count(),
                "conversations": conversations,
                "message": list.last().map(|e| e.message.clone()),
            })
        })
        .collect();
    axum::Json(json!({ "groups": groups })).into_response()
}

/// Retries many sync errors at once.
pub async fn retry_many(
    State(state): State<AdminState>,
    body: Result<axum::Json<Json>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let ids: Vec<u64> = match body.map(|b| b.0.get("ids").cloned()) {
        Ok(Some(Json::Array(ids))) if ids.len() <= 10_000 => ids.iter().filter_map(Json::as_u64).collect(),
        Ok(_) => return failure(StatusCode::BAD_REQUEST, "expected {\"ids\": [...]} (at most 10,000)"),
        Err(e) => return failure(e.status(), e.body_text()),
    };
    let (mut queued, mut not_retryable, mut missing) = (0, Vec::new(), Vec::new());
    for id in ids {
        match state.store.retry_error(id) {
            Ok(Some((Some(_), _))) => queued += 1,
            Ok(Some((None, _))) => not_retryable.push(id),
            Ok(None) => missing.push(id),
            Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
        }
    }
    (StatusCode::ACCEPTED, axum::Json(json!({ "queued": queued, "not_retryable": not_retryable, "missing": missing })))
        .into_response()
}

/// Makes the visitor of a messenger conversation a Lead by hand: the visitor's name and
/// email, `[not provided]` for what Salesforce requires, the `fields` the person adds; checked
/// against Lead's describe (every problem named, nothing queued), then queued through the
/// outbox with the conversation (202). Refused for a visitor without an email (422) or one
/// who already is a lead or a contact (409).
pub async fn create_lead(State(state): State<AdminState>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    let (Some(client), Some(hub)) = (state.client.clone(), state.messenger.clone()) else {
        return failure(StatusCode::SERVICE_UNAVAILABLE, "this admin server has no Salesforce connection or messenger");
    };
    // The body is optional: none, `{}`, or `{"fields": {...}}`.
    let parsed: Result<Json, _> = if body.is_empty() { Ok(json!({})) } else { serde_json::from_slice(&body) };
    let extra: BTreeMap<String, Json> = match parsed.map(|b| b.get("fields").cloned()) {
        Ok(Some(Json::Object(map))) => map.into_iter().filter(|(_, v)| !v.is_null() && v != "").collect(),
        Ok(None) => BTreeMap::new(),
        Ok(Some(_)) => return failure(StatusCode::BAD_REQUEST, "expected {\"fields\": {...}} or no body"),
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let conv = match state.store.conversation(&id) {
        Ok(Some(c)) if c.channel == Channel::Messenger => c,
        Ok(_) => return failure(StatusCode::NOT_FOUND, format!("no messenger conversation {id}")),
        Err(e) => return failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    // A visitor never matched (no lookup yet, or it failed) is looked up now: a person or
    // lead Salesforce already has gets no second lead.
    let info = conv.messenger.as_ref();
    if let Some(email) = info.filter(|m| m.person.is_none()).and_then(|m| m.visitor.email.as_deref()) {
        match crate::channels::messenger::matching::find(&client, email).await {
            Ok(SalesforcePerson::User { .. }) => {
                return failure(StatusCode::CONFLICT, "this visitor is a contact in Salesforce");
            }
            Ok(SalesforcePerson::Lead { .. }) => {
                return failure(StatusCode::CONFLICT, "this visitor already is a lead in Salesforce");
            }
            Ok(SalesforcePerson::Visitor) => {}
            Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
        }
    }
    let describe = match client.describe("Lead").await {
        Ok(d) => d,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("Salesforce: {e}")),
    };
    let key = crate::channels::messenger::plan::CONVERSATION_FIELD;
    if let Some(field) = extra.keys().find(|k| ["Id", key].iter().any(|r| r.eq_ignore_ascii_case(k))) {
        return failure(StatusCode::UNPROCESSABLE_ENTITY, format!("{field} is casebridge's to write"));
    }
    let extra = crate::salesforce::validate::from_form(&describe, extra);
    let build = |conv: &crate::model::Conversation| -> Result<crate::model::Action, (StatusCode, String)> {
        let info = conv.messenger.as_ref().ok_or((StatusCode::NOT_FOUND, "not a messenger conversation".into()))?;
        if info.lead.exists() {
            return Err((StatusCode::CONFLICT, "this visitor already is a lead".into()));
        }
        let made_for = info.visitor.email.as_deref().map(|e| state.store.visitor_lead(e)).transpose();
        match made_for.map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?.flatten() {
            Some(other) if other != conv.id => {
                return Err((StatusCode::CONFLICT, format!("conversation {other} already made this visitor's Lead")));
            }
            _ => {}
        }
        match info.person {
            Some(crate::model::SalesforcePerson::User { .. }) => {
                return Err((StatusCode::CONFLICT, "this visitor is a contact in Salesforce".into()));
            }
            Some(crate::model::SalesforcePerson::Lead { .. }) => {
                return Err((StatusCode::CONFLICT, "this visitor already is a lead in Salesforce".into()));
            }
            _ => {}
        }
        let lead = crate::channels::messenger::matching::create_lead(conv, &hub.settings().lead_source, &extra, None);
        lead.ok_or((StatusCode::UNPROCESSABLE_ENTITY, "the visitor left no email: a lead needs one".into()))
    };
    let action = match build(&conv) {
        Ok(a) => a,
        Err((status, why)) => return failure(status, why),
    };
    let crate::model::Action::UpsertRecord { fields, .. } = &action else { unreachable!("built above") };
    let problems: Vec<Json> = match crate::salesforce::validate::check(&describe, fields, true) {
        Err(r) => vec![json!({ "field": r.field, "code": r.code, "message": r.message })],
        Ok(checked) => {
            checked.refused.iter().map(|r| json!({ "field": r.field, "code": r.code, "message": r.message })).collect()
        }
    };
    if !problems.is_empty() {
        let body = json!({ "error": "the lead was not queued", "problems": problems });
        return (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(body)).into_response();
    }
    // Built again under the hub's lock, from the conversation as it is then.
    match hub.queue_lead(&id, |conv| build(conv).map_err(|(_, why)| why)) {
        Ok(Ok(())) => (StatusCode::ACCEPTED, axum::Json(json!({ "queued": true, "conversation": id }))).into_response(),
        Ok(Err(why)) => failure(StatusCode::CONFLICT, why),
        Err(e) => failure(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}
