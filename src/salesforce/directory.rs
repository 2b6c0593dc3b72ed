//! Finding the org's people and queues: which users the agent can reply as or hand over to
//! (active users who can own cases — no guest, automated or Chatter-only users) and which
//! queues take cases, and resolving the names an admin writes in the config and rules.

use serde::Serialize;
use serde_json::Value as Json;

use crate::salesforce::soql::{Filter, Select};
use crate::salesforce::{Client, SalesforceError, id};

/// A user or queue that can own cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Target {
    pub id: String,
    pub name: String,
    pub kind: TargetKind,
    /// Username (users) or developer name (queues).
    pub handle: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    User,
    Queue,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Salesforce(#[from] SalesforceError),
    #[error("{0}")]
    NotUsable(String),
}

/// The only user type that can own cases and be replied as.
const CASE_OWNER_USER_TYPE: &str = "Standard";

/// Active users who can own cases.
pub async fn users(client: &Client) -> Result<Vec<Target>, SetupError> {
    let soql = Select::new(["Id", "Name", "Username", "UserType", "IsActive"], "User")
        .filter(Filter::eq("IsActive", true))
        .filter(Filter::eq("UserType", CASE_OWNER_USER_TYPE))
        .order_by("Name", false)
        .build()
        .map_err(|e| SetupError::NotUsable(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    Ok(rows.iter().map(user_target).collect())
}

/// Queues that support cases.
pub async fn queues(client: &Client) -> Result<Vec<Target>, SetupError> {
    let soql = Select::new(["Id", "Name", "DeveloperName"], "Group")
        .with_children(Select::new(["SobjectType"], "QueueSobjects"))
        .filter(Filter::eq("Type", "Queue"))
        .order_by("Name", false)
        .build()
        .map_err(|e| SetupError::NotUsable(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    Ok(rows.iter().filter(|r| supports_case(r)).map(queue_target).collect())
}

fn supports_case(queue: &Json) -> bool {
    queue["QueueSobjects"]["records"].as_array().is_some_and(|rows| rows.iter().any(|r| r["SobjectType"] == "Case"))
}

fn user_target(row: &Json) -> Target {
    Target {
        id: row["Id"].as_str().unwrap_or_default().to_string(),
        name: row["Name"].as_str().unwrap_or_default().to_string(),
        kind: TargetKind::User,
        handle: row["Username"].as_str().unwrap_or_default().to_string(),
    }
}

fn queue_target(row: &Json) -> Target {
    Target {
        id: row["Id"].as_str().unwrap_or_default().to_string(),
        name: row["Name"].as_str().unwrap_or_default().to_string(),
        kind: TargetKind::Queue,
        handle: row["DeveloperName"].as_str().unwrap_or_default().to_string(),
    }
}

/// The agent user, by username or Id: it must be an active user who can own cases.
pub async fn agent_user(client: &Client, name_or_id: &str) -> Result<Target, SetupError> {
    let user = find_user(client, name_or_id).await?.ok_or_else(|| {
        SetupError::NotUsable(format!(
            "agent_user: no user {name_or_id:?} in the org\nhint: `casebridge setup users` lists the users that can be the agent"
        ))
    })?;
    check_user(&user, "agent_user")?;
    Ok(user_target(&user))
}

/// A handover target by queue name, developer name, username, user name or Id.
pub async fn handover_target(client: &Client, name_or_id: &str) -> Result<Target, SetupError> {
    let hint = "hint: `casebridge setup queues` and `casebridge setup users` list the possible targets";
    if id::is_id(name_or_id) && name_or_id.starts_with(id::prefix::USER) {
        let user = find_user(client, name_or_id)
            .await?
            .ok_or_else(|| SetupError::NotUsable(format!("handover target: no user with Id {name_or_id}\n{hint}")))?;
        check_user(&user, "handover target")?;
        return Ok(user_target(&user));
    }
    let filter = if id::is_id(name_or_id) {
        Filter::eq("Id", name_or_id)
    } else {
        Filter::eq("Name", name_or_id).or(Filter::eq("DeveloperName", name_or_id))
    };
    let soql = Select::new(["Id", "Name", "DeveloperName"], "Group")
        .with_children(Select::new(["SobjectType"], "QueueSobjects"))
        .filter(Filter::eq("Type", "Queue"))
        .filter(filter)
        .build()
        .map_err(|e| SetupError::NotUsable(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    if let Some(queue) = rows.first() {
        if !supports_case(queue) {
            return Err(SetupError::NotUsable(format!(
                "handover target: the queue {:?} does not support cases; add Case to its supported objects in Setup\n{hint}",
                queue["Name"].as_str().unwrap_or(name_or_id)
            )));
        }
        return Ok(queue_target(queue));
    }
    if !id::is_id(name_or_id)
        && let Some(user) = find_user(client, name_or_id).await?
    {
        check_user(&user, "handover target")?;
        return Ok(user_target(&user));
    }
    Err(SetupError::NotUsable(format!("handover target: no queue or user {name_or_id:?} in the org\n{hint}")))
}

async fn find_user(client: &Client, name_or_id: &str) -> Result<Option<Json>, SetupError> {
    let filter = if id::is_id(name_or_id) {
        Filter::eq("Id", name_or_id)
    } else {
        Filter::eq("Username", name_or_id).or(Filter::eq("Name", name_or_id))
    };
    let soql = Select::new(["Id", "Name", "Username", "UserType", "IsActive"], "User")
        .filter(filter)
        .build()
        .map_err(|e| SetupError::NotUsable(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    Ok(rows.into_iter().next())
}

fn check_user(user: &Json, role: &str) -> Result<(), SetupError> {
    let name = user["Username"].as_str().unwrap_or_default();
    if user["IsActive"] != true {
        return Err(SetupError::NotUsable(format!("{role}: the user {name} is inactive and cannot own cases")));
    }
    let kind = user["UserType"].as_str().unwrap_or_default();
    if kind != CASE_OWNER_USER_TYPE {
        return Err(SetupError::NotUsable(format!(
            "{role}: the user {name} is a {kind} user; only Standard users can own cases"
        )));
    }
    Ok(())
}

/// The id of `object`'s active record type named `name` (its label or developer name), if
/// the org has one.
pub async fn record_type(client: &Client, object: &str, name: &str) -> Result<Option<String>, SalesforceError> {
    let soql = Select::new(["Id"], "RecordType")
        .filter(Filter::eq("SobjectType", object))
        .filter(Filter::eq("IsActive", true))
        .filter(Filter::eq("Name", name).or(Filter::eq("DeveloperName", name)))
        .limit(1)
        .build()
        .map_err(|e| SalesforceError::Config(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    Ok(rows.first().and_then(|r| r["Id"].as_str()).map(str::to_string))
}
