//! The preflight `casebridge setup check` runs: what an org lacks before the first customer
//! meets it, as findings (`ok`, `warn`, `fail`, each failure or warning with its fix in one
//! line). The checks are pure — from describes and query rows to findings — so each is
//! tested here without an org; the few reads they need ([`Org::describe`] and the queries
//! below) are small async functions. What the configuration asks for comes in as plain
//! data (object and field names, switches): this module knows Salesforce, not casebridge's
//! configuration.
//! The org's assignment and duplicate rules are checked in [`super::org_rules`].

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value as Json;

use super::client::Client;
use super::error::SalesforceError;
use super::soql::{Filter, Select};
use super::versions::{self, ApiVersion, MIN_API_VERSION, NEWEST_API_VERSION};

/// The permission set shipped in `salesforce/` that the agent user needs.
pub const AGENT_PERMISSION_SET: &str = "Casebridge_Agent";
/// The permission set that lets the agent user read Salesforce Knowledge.
pub const KNOWLEDGE_PERMISSION_SET: &str = "Casebridge_Knowledge";

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

/// One line of the preflight: what was checked, what was found, and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub text: String,
    /// The next step, for a warning or a failure.
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(text: impl Into<String>) -> Finding {
        Finding { level: Level::Ok, text: text.into(), fix: None }
    }
    pub fn warn(text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Warn, text: text.into(), fix: Some(fix.into()) }
    }
    pub fn fail(text: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { level: Level::Fail, text: text.into(), fix: Some(fix.into()) }
    }
}

/// `ok  text`, `warn text` or `fail text`, and the fix on the next line.
impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = match self.level {
            Level::Ok => "ok  ",
            Level::Warn => "warn",
            Level::Fail => "fail",
        };
        let pad = if self.level == Level::Ok { "" } else { " " };
        write!(f, "{tag}{pad}{}", self.text)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n     fix: {fix}")?;
        }
        Ok(())
    }
}

/// The parts of an object's describe the preflight reads (more than
/// [`super::SObjectDescribe`] carries: feed tracking and the External ID flags).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Describe {
    pub name: String,
    #[serde(default)]
    pub feed_enabled: bool,
    pub fields: Vec<DescribedField>,
}

/// A field of a [`Describe`]; the flags Salesforce leaves out are false.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DescribedField {
    pub name: String,
    pub createable: bool,
    pub updateable: bool,
    pub unique: bool,
    pub case_sensitive: bool,
    pub external_id: bool,
    pub reference_to: Vec<String>,
    pub relationship_name: Option<String>,
}

impl Describe {
    pub fn field(&self, name: &str) -> Option<&DescribedField> {
        self.fields.iter().find(|f| f.name.eq_ignore_ascii_case(name))
    }

    fn relationship(&self, name: &str) -> Option<&DescribedField> {
        self.fields.iter().find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(name)))
    }
}

/// The describes of the objects checked, as the signed-in user sees them: Salesforce leaves
/// out the fields field-level security hides from that user and describes read-only ones
/// as neither createable nor updateable.
#[derive(Debug, Clone, Default)]
pub struct Org {
    /// Lowercase object name → its describe, or why it could not be read.
    objects: BTreeMap<String, Result<Describe, String>>,
}

impl Org {
    /// Reads the describes of `objects` (one API call each). An object the org lacks or
    /// hides from the user is kept as a problem; any other error stops the preflight.
    pub async fn describe(client: &Client, objects: &[&str]) -> Result<Org, SalesforceError> {
        let mut org = Org::default();
        for object in objects {
            // `GET sobjects/{object}/describe`, the same call as `Client::describe`.
            let described = match client.get::<Describe>(object, "describe", None).await {
                Ok(d) => Ok(d),
                Err(e) if e.status() == Some(404) => Err("the org has no such object, or hides it".into()),
                Err(e) => return Err(e),
            };
            org.objects.insert(object.to_lowercase(), described);
        }
        Ok(org)
    }

    /// An org of these describes (tests, and callers that read them another way).
    pub fn from_describes(describes: impl IntoIterator<Item = Describe>) -> Org {
        Org { objects: describes.into_iter().map(|d| (d.name.to_lowercase(), Ok(d))).collect() }
    }

    pub fn object(&self, name: &str) -> Option<&Describe> {
        self.objects.get(&name.to_lowercase()).and_then(|d| d.as_ref().ok())
    }
}

/// What casebridge does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    Read,
    /// Sets it on the records it creates.
    Create,
    /// Changes it on records that exist.
    Update,
}

/// A field casebridge reads or writes: `field` may be a path (`Contact.Email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    pub object: String,
    pub field: String,
    pub used: Use,
}

impl Need {
    pub fn new(object: &str, field: &str, used: Use) -> Need {
        Need { object: object.to_string(), field: field.to_string(), used }
    }
}

/// Check 1: the REST API versions: what the org offers against what casebridge needs, and the
/// one in use (`None` when choosing failed).
pub fn api_versions(offered: &[ApiVersion], pinned: Option<&str>, in_use: Option<&str>) -> Finding {
    let range = match (offered.first(), offered.last()) {
        (Some(a), Some(b)) => format!("{} to {}", a.version, b.version),
        _ => "no versions".into(),
    };
    let needs = format!("casebridge needs {MIN_API_VERSION} to {NEWEST_API_VERSION}");
    match (versions::choose(offered, pinned), in_use) {
        (Ok(chosen), Some(used)) if chosen == used => {
            Finding::ok(format!("API versions: the org offers {range}; {needs} and uses {used}"))
        }
        (Ok(chosen), _) => Finding::ok(format!("API versions: the org offers {range}; {needs} and will use {chosen}")),
        (Err(_), _) if pinned.is_some() => Finding::fail(
            format!("API versions: the org offers {range}, not the pinned org.api_version {}", pinned.unwrap_or("")),
            format!("remove org.api_version, or set one from {range} that is {MIN_API_VERSION} or later"),
        ),
        (Err(_), _) => Finding::fail(
            format!("API versions: the org offers {range}; {needs}"),
            format!(
                "use an org on a release with REST API {MIN_API_VERSION} or later (Summer '24); refresh an older sandbox"
            ),
        ),
    }
}

/// Check 2: whether `set` is among the permission sets assigned to the agent user (`assigned`:
/// their API names). `required` false makes a missing set a warning.
pub fn permission_set(set: &str, assigned: &[String], username: &str, required: bool) -> Finding {
    if assigned.iter().any(|a| a.eq_ignore_ascii_case(set)) {
        return Finding::ok(format!("permission set {set}: assigned to {username}"));
    }
    let text = format!("permission set {set}: not assigned to {username}");
    let fix = format!("sf org assign permset --name {set} --on-behalf-of {username} --target-org ALIAS");
    if required { Finding::fail(text, fix) } else { Finding::warn(text, fix) }
}

/// Check 3: every field in `needs` exists and the user can read it, or edit it where casebridge
/// writes it: one failure a problem, one `ok` an object whose fields all fit.
pub fn fields(org: &Org, needs: &[Need]) -> Vec<Finding> {
    let mut by_object: BTreeMap<&str, Vec<&Need>> = BTreeMap::new();
    for n in needs {
        by_object.entry(n.object.as_str()).or_default().push(n);
    }
    let mut out = Vec::new();
    for (object, needs) in by_object {
        let describe = match org.objects.get(&object.to_lowercase()) {
            Some(Ok(d)) => d,
            Some(Err(why)) => {
                let fix = if object.to_lowercase().ends_with("__kav") {
                    format!(
                        "turn on Lightning Knowledge, or name the article object in agent.salesforce_knowledge.object; assign {KNOWLEDGE_PERMISSION_SET} to the agent user"
                    )
                } else {
                    format!("give the agent user read access to {object} (the {AGENT_PERMISSION_SET} permission set)")
                };
                out.push(Finding::fail(format!("{object}: cannot be described ({why})"), fix));
                continue;
            }
            None => continue,
        };
        let problems: Vec<Finding> = needs.iter().filter_map(|n| field_problem(org, describe, n)).collect();
        if problems.is_empty() {
            let mut names: Vec<&str> = needs.iter().map(|n| n.field.as_str()).collect();
            names.sort_by_key(|n| n.to_lowercase());
            names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
            out.push(Finding::ok(format!(
                "{}: {} field(s) casebridge reads or writes, each there and writable where written",
                describe.name,
                names.len()
            )));
        }
        out.extend(problems);
    }
    out
}

fn field_problem(org: &Org, describe: &Describe, need: &Need) -> Option<Finding> {
    let (first, rest) = match need.field.split_once('.') {
        Some((relationship, rest)) => (relationship, Some(rest)),
        None => (need.field.as_str(), None),
    };
    let object = &describe.name;
    let missing = |what: &str| {
        Finding::fail(
            format!("{object}.{what}: missing, or hidden from the agent user by field-level security"),
            format!(
                "deploy casebridge's metadata (salesforce/), or give the agent user read access to {object}.{what} in its permission set"
            ),
        )
    };
    if let Some(rest) = rest {
        let Some(relation) = describe.relationship(first) else { return Some(missing(first)) };
        // One hop further when that object was described too; Salesforce checks the rest
        // when the query runs.
        let target = relation.reference_to.first().and_then(|t| org.object(t))?;
        return field_problem(
            org,
            target,
            &Need { object: target.name.clone(), field: rest.to_string(), used: Use::Read },
        )
        .map(|_| missing(&need.field));
    }
    let Some(field) = describe.field(first) else { return Some(missing(first)) };
    let writable = match need.used {
        Use::Read => true,
        Use::Create => field.createable,
        Use::Update => field.updateable,
    };
    if writable {
        return None;
    }
    let verb = if need.used == Use::Create { "sets it on the records it creates" } else { "changes it" };
    Some(Finding::fail(
        format!("{object}.{}: read-only to the agent user, and casebridge {verb}", field.name),
        format!(
            "give the agent user edit access to {object}.{} (field-level security in its permission set)",
            field.name
        ),
    ))
}

/// Check 4: each object's External ID `field` is unique and case-insensitive, so an upsert by it
/// finds the one record it made. A missing field is left to [`fields`].
pub fn external_ids(org: &Org, objects: &[&str], field: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for object in objects {
        let Some(f) = org.object(object).and_then(|d| d.field(field)) else { continue };
        let name = format!("{object}.{}", f.name);
        let redeploy =
            "deploy casebridge's metadata (salesforce/), whose field is an External ID, Unique, case-insensitive";
        if !f.external_id {
            out.push(Finding::fail(format!("{name}: not an External ID; casebridge upserts by it"), redeploy));
        } else if !f.unique {
            let why = if object.eq_ignore_ascii_case("Task") {
                "upserting Tasks by a non-unique External ID needs View All Data"
            } else {
                "an upsert by a non-unique External ID needs View All Data"
            };
            out.push(Finding::fail(format!("{name}: External ID but not unique: {why}"), redeploy));
        } else if f.case_sensitive {
            out.push(Finding::fail(
                format!(
                    "{name}: unique but case-sensitive; an upsert matches it case-insensitively only when it is not"
                ),
                redeploy,
            ));
        } else {
            out.push(Finding::ok(format!("{name}: External ID, unique, case-insensitive")));
        }
    }
    out
}

/// Check 5, the Case feed: feed tracking on Case when replies are feed posts, and
/// `FeedItem.Visibility` (only in orgs with Digital Experiences), without which no post
/// can be told public.
pub fn feed(org: &Org, replies_to_feed: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    if replies_to_feed && let Some(case) = org.object("Case") {
        out.push(if case.feed_enabled {
            Finding::ok("Case feed tracking: on (replies are feed posts)")
        } else {
            Finding::fail(
                "Case feed tracking: off, and replies are feed posts (reply.channel: feed)",
                "Setup > Feed Tracking > Case > Enable Feed Tracking, or set reply.channel: comment",
            )
        });
    }
    let Some(feed) = org.object("FeedItem") else { return out };
    out.push(match (feed.field("Visibility"), replies_to_feed) {
        (Some(_), _) => Finding::ok("FeedItem.Visibility: present (customers' posts are told from internal ones)"),
        (None, false) => Finding::warn(
            "FeedItem.Visibility: missing (an org without Digital Experiences): feed posts are treated as internal, and replies cannot go to the feed",
            "nothing to do while replies are comments; turn on Digital Experiences before setting reply.channel: feed",
        ),
        (None, true) => Finding::fail(
            "FeedItem.Visibility: missing (an org without Digital Experiences): feed posts are treated as internal, and replies cannot go to the feed",
            "set reply.channel: comment, or turn on Digital Experiences",
        ),
    });
    out
}

/// The versions an org offers, read at `url` (its login URL) when signing in failed, so
/// the preflight can still say why ([`api_versions`]).
pub async fn offered_versions(client: &Client, url: &str) -> Result<Vec<ApiVersion>, SalesforceError> {
    client.versions_at(url.trim_end_matches('/')).await
}

/// The permission sets (API names) assigned to `user_id`.
pub async fn assigned_permission_sets(client: &Client, user_id: &str) -> Result<Vec<String>, SalesforceError> {
    let soql = Select::new(["Id", "PermissionSet.Name"], "PermissionSetAssignment")
        .filter(Filter::eq("AssigneeId", user_id))
        .build()
        .map_err(|e| SalesforceError::Config(e.to_string()))?;
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    Ok(rows.iter().filter_map(|r| r["PermissionSet"]["Name"].as_str()).map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn offered(list: &[&str]) -> Vec<ApiVersion> {
        list.iter().map(|v| ApiVersion { version: v.to_string(), label: String::new(), url: String::new() }).collect()
    }

    /// A describe of `object` from (name, createable, updateable) triples.
    fn describe(object: &str, fields: &[(&str, bool, bool)]) -> Describe {
        let fields: Vec<Json> =
            fields.iter().map(|(n, c, u)| json!({ "name": n, "createable": c, "updateable": u })).collect();
        serde_json::from_value(json!({ "name": object, "feedEnabled": true, "fields": fields })).unwrap()
    }

    fn fails(findings: &[Finding]) -> Vec<&str> {
        findings.iter().filter(|f| f.level == Level::Fail).map(|f| f.text.as_str()).collect()
    }

    #[test]
    fn api_versions_name_the_range_and_the_one_in_use() {
        let f = api_versions(&offered(&["31.0", "66.0", "68.0"]), None, Some("66.0"));
        assert_eq!(f.level, Level::Ok);
        assert!(
            f.text.contains("31.0 to 68.0") && f.text.contains("61.0 to 66.0") && f.text.contains("uses 66.0"),
            "{f}"
        );
        let f = api_versions(&offered(&["58.0", "59.0", "60.0"]), None, None);
        assert_eq!(f.level, Level::Fail);
        assert!(f.text.contains("58.0 to 60.0"), "{f}");
        let f = api_versions(&offered(&["61.0", "62.0"]), Some("66.0"), None);
        assert!(f.level == Level::Fail && f.fix.as_deref().unwrap().contains("org.api_version"), "{f}");
    }

    #[test]
    fn a_missing_permission_set_fails_with_the_sf_command() {
        let f = permission_set("Casebridge_Agent", &["Other".into()], "fin@acme.example", true);
        assert_eq!(f.level, Level::Fail);
        assert_eq!(
            f.fix.as_deref(),
            Some("sf org assign permset --name Casebridge_Agent --on-behalf-of fin@acme.example --target-org ALIAS")
        );
        assert_eq!(permission_set("Casebridge_Agent", &["casebridge_agent".into()], "u", true).level, Level::Ok);
        assert_eq!(permission_set("Casebridge_Knowledge", &[], "u", false).level, Level::Warn);
    }

    #[test]
    fn fields_missing_hidden_or_read_only_where_written_fail() {
        let mut case =
            describe("Case", &[("Subject", true, true), ("OwnerId", true, false), ("ContactId", true, true)]);
        case.fields[2].relationship_name = Some("Contact".into());
        case.fields[2].reference_to = vec!["Contact".into()];
        let contact = describe("Contact", &[("Email", true, true)]);
        let org = Org::from_describes([case, contact]);
        let needs = [
            Need::new("Case", "Subject", Use::Read),
            Need::new("Case", "subject", Use::Update),
            Need::new("Case", "Contact.Email", Use::Read),
        ];
        let found = fields(&org, &needs);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].text, "Case: 2 field(s) casebridge reads or writes, each there and writable where written");
        let needs = [
            Need::new("Case", "OwnerId", Use::Update),
            Need::new("Case", "Product__c", Use::Read),
            Need::new("Case", "Contact.Phone", Use::Read),
            Need::new("Case", "Account.Name", Use::Read),
        ];
        let found = fields(&org, &needs);
        assert_eq!(
            fails(&found),
            [
                "Case.OwnerId: read-only to the agent user, and casebridge changes it",
                "Case.Product__c: missing, or hidden from the agent user by field-level security",
                "Case.Contact.Phone: missing, or hidden from the agent user by field-level security",
                "Case.Account: missing, or hidden from the agent user by field-level security",
            ]
        );
        assert!(!found.iter().any(|f| f.level == Level::Ok), "no ok for an object with problems");
        let mut org = org;
        org.objects.insert("lead".into(), Err("the org has no such object, or hides it".into()));
        let found = fields(&org, &[Need::new("Lead", "Email", Use::Read)]);
        assert!(fails(&found)[0].starts_with("Lead: cannot be described"), "{found:?}");
    }

    #[test]
    fn external_ids_must_be_unique_and_case_insensitive() {
        let key = |unique: bool, case_sensitive: bool| -> Json {
            json!({ "name": "Casebridge_Conversation__c", "externalId": true, "unique": unique, "caseSensitive": case_sensitive })
        };
        let d = |object: &str, field: Json| -> Describe {
            serde_json::from_value(json!({ "name": object, "fields": [field] })).unwrap()
        };
        let org = Org::from_describes([
            d("Case", key(true, false)),
            d("Lead", key(true, true)),
            d("Task", key(false, false)),
            d("Account", json!({ "name": "Casebridge_Conversation__c" })),
        ]);
        let found = external_ids(&org, &["Case", "Lead", "Task", "Account", "Contact"], "Casebridge_Conversation__c");
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].level, Level::Ok);
        assert!(found[1].level == Level::Fail && found[1].text.contains("case-sensitive"), "{}", found[1]);
        assert!(
            found[2].text.contains("upserting Tasks by a non-unique External ID needs View All Data"),
            "{}",
            found[2]
        );
        assert!(found[3].text.contains("not an External ID"), "{}", found[3]);
    }

    #[test]
    fn the_feed_needs_tracking_for_feed_replies_and_visibility_to_tell_posts_apart() {
        let mut case = describe("Case", &[]);
        let posts = describe("FeedItem", &[("Visibility", true, true)]);
        let org = Org::from_describes([case.clone(), posts]);
        assert!(feed_levels(&org, true).iter().all(|l| *l == Level::Ok));
        case.feed_enabled = false;
        let without = describe("FeedItem", &[("Body", true, true)]);
        let org = Org::from_describes([case, without]);
        assert_eq!(feed_levels(&org, false), [Level::Warn], "comments: no tracking needed, Visibility missing warns");
        assert_eq!(feed_levels(&org, true), [Level::Fail, Level::Fail]);
        let found = feed(&org, false);
        assert!(found[0].text.contains("feed posts are treated as internal, and replies cannot go to the feed"));
    }

    fn feed_levels(org: &Org, replies_to_feed: bool) -> Vec<Level> {
        feed(org, replies_to_feed).iter().map(|f| f.level).collect()
    }

    #[test]
    fn findings_print_their_level_and_fix() {
        assert_eq!(Finding::ok("a").to_string(), "ok  a");
        assert_eq!(Finding::warn("b", "do c").to_string(), "warn b\n     fix: do c");
        assert_eq!(Finding::fail("d", "do e").to_string(), "fail d\n     fix: do e");
    }
}
