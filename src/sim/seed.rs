//! Org seed files: the YAML that describes a simulated org — users and their passwords
//! (and what field-level security hides from them), queues and the objects they support,
//! connected apps, custom fields, permission sets, the org's switches (`org:`), and records.
//!
//! Records are written through the same validated write path as API calls, so a seed that
//! Salesforce would refuse is refused here too, with the record it was about. Values that
//! start with `@` name another seeded record by its `_key` (`@@` escapes a literal `@`);
//! `_created` (`-2h`, `-30m`, `-3d` or a datetime) and `_created_by` (`@key`) set audit fields.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value as Json};

use super::org::{Org, WriteCtx};
use super::schema::Schema;
pub use super::seed_file::{
    ConnectedApp, OrgSettings, SeedFile, SeedPermissionSet, SeedQueue, SeedRefreshToken, SeedUser,
};
use super::value::parse_datetime;

/// A loaded seed: the org plus what the token endpoint needs.
#[derive(Debug)]
pub struct Seed {
    pub org: Org,
    pub name: String,
    pub daily_api_limit: u64,
    /// The newest REST API version served, when older than the simulator's newest.
    pub max_api_version: Option<String>,
    pub apps: Vec<ConnectedApp>,
    /// Username (lowercase) → (user id, password).
    pub passwords: HashMap<String, (String, String)>,
    /// `_key` → id, for tests and the demo to find seeded records.
    pub keys: HashMap<String, String>,
}

/// Reads and loads a seed file; relative paths inside it are relative to its folder.
pub fn load_file(path: &std::path::Path) -> Result<Seed, String> {
    let source = path.display().to_string();
    let yaml = std::fs::read_to_string(path).map_err(|e| format!("cannot read {source}: {e}"))?;
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    load_in(&yaml, &source, Some(base))
}

/// Parses and loads a seed given as text. `source` names it in error messages.
pub fn load(yaml: &str, source: &str) -> Result<Seed, String> {
    load_in(yaml, source, None)
}

fn load_in(yaml: &str, source: &str, base: Option<&std::path::Path>) -> Result<Seed, String> {
    let mut file: SeedFile = serde_yaml::from_str(yaml).map_err(|e| match e.location() {
        Some(loc) => format!("{source}:{}:{}: {e}", loc.line(), loc.column()),
        None => format!("{source}: {e}"),
    })?;
    for (i, app) in file.connected_apps.iter_mut().enumerate() {
        if let Some(rel) = app.jwt_public_key_file.take() {
            let base = base.ok_or_else(|| {
                format!("{source}: connected_apps[{i}].jwt_public_key_file needs a seed read from a file")
            })?;
            let path = base.join(&rel);
            let pem = std::fs::read_to_string(&path).map_err(|e| {
                format!("{source}: connected_apps[{i}].jwt_public_key_file: cannot read {}: {e}", path.display())
            })?;
            app.jwt_public_key = Some(pem);
        }
    }
    build(file).map_err(|e| format!("{source}: {e}"))
}

fn build(file: SeedFile) -> Result<Seed, String> {
    let mut schema = Schema::standard();
    for (object, fields) in &file.custom_fields {
        for spec in fields {
            schema.add_custom_field(object, spec).map_err(|e| format!("custom_fields.{object}: {e}"))?;
        }
    }
    schema.set_feed_tracking(&file.org.feed_tracking).map_err(|e| format!("org.feed_tracking: {e}"))?;
    if !file.org.digital_experiences {
        schema.without_digital_experiences();
    }
    let mut seeding = Seeding { org: Org::new(schema), keys: HashMap::new(), now: Utc::now() };
    if file.users.is_empty() {
        return Err("users: at least one user is needed".into());
    }
    // Users come first: everything else is created by, or owned by, a user. The first user
    // creates itself, as an org's first admin does.
    let mut ctx = WriteCtx { user_id: String::new(), now: seeding.now, allow_system_fields: true };
    let passwords = seeding.users(&file.users, &mut ctx)?;
    seeding.queues(&file.queues, &ctx)?;
    // The org's rules act on records written through the API, not on the seed's own.
    let mut rules = file.org.assignment_rules.clone();
    for (r, rule) in rules.iter_mut().enumerate() {
        for (e, entry) in rule.entries.iter_mut().enumerate() {
            let key = entry.owner.strip_prefix('@').unwrap_or(&entry.owner);
            entry.owner = seeding.keys.get(key).cloned().ok_or_else(|| {
                format!("org.assignment_rules[{r}].entries[{e}].owner: no user or queue with key {key:?}")
            })?;
        }
    }
    for (object, list) in &file.records {
        let object = object.as_str().ok_or("records: object names must be strings")?;
        let list = list.as_sequence().ok_or_else(|| format!("records.{object}: expected a list of records"))?;
        for (i, item) in list.iter().enumerate() {
            seeding.record(object, &format!("records.{object}[{i}]"), item, &ctx)?;
        }
    }
    seeding.link_portal_users(&file.users, &ctx)?;
    check_rule_fields(&seeding.org.schema, &file.org)?;
    seeding.setup_records(&file, &ctx)?;
    seeding.org.behaviour = crate::sim::org::Behaviour {
        child_records_touch_parent: file.org.child_records_touch_parent,
        assignment_rules: rules,
        duplicate_rules: file.org.duplicate_rules.clone(),
        field_access: Default::default(),
    };
    for u in &file.users {
        for (field, access) in &u.field_access {
            if !field.contains('.') {
                return Err(format!("users.{}.field_access: expected Object.Field, found {field:?}", u.key));
            }
            seeding.org.behaviour.restrict(&seeding.keys[&u.key], field, *access);
        }
    }
    Ok(Seed {
        org: seeding.org,
        name: file.org.name,
        daily_api_limit: file.org.daily_api_limit,
        max_api_version: file.org.max_api_version.clone(),
        apps: file.connected_apps,
        passwords,
        keys: seeding.keys,
    })
}

/// An org being seeded, with the `@key`s given so far.
struct Seeding {
    org: Org,
    keys: HashMap<String, String>,
    now: DateTime<Utc>,
}

impl Seeding {
    /// Creates the users; returns the passwords of those that have one.
    fn users(&mut self, users: &[SeedUser], ctx: &mut WriteCtx) -> Result<HashMap<String, (String, String)>, String> {
        let (org, keys) = (&mut self.org, &mut self.keys);
        let mut passwords = HashMap::new();
        for (i, u) in users.iter().enumerate() {
            let mut body = Map::new();
            body.insert("Username".into(), Json::String(u.username.clone()));
            body.insert("LastName".into(), Json::String(u.last_name.clone()));
            if let Some(f) = &u.first_name {
                body.insert("FirstName".into(), Json::String(f.clone()));
            }
            if let Some(e) = &u.email {
                body.insert("Email".into(), Json::String(e.clone()));
            }
            body.insert("UserType".into(), Json::String(u.user_type.clone()));
            body.insert("IsActive".into(), Json::Bool(u.is_active));
            body.insert("Alias".into(), Json::String(u.key.chars().take(8).collect()));
            let id = org
                .create("User", &body, ctx)
                .map_err(|e| format!("users[{i}] ({}): {}: {}", u.username, e.code, e.message))?;
            if ctx.user_id.is_empty() {
                ctx.user_id = id.clone();
            }
            insert_key(keys, &u.key, &id)?;
            if let Some(p) = &u.password {
                passwords.insert(u.username.to_ascii_lowercase(), (id.clone(), p.clone()));
            }
        }
        Ok(passwords)
    }

    fn queues(&mut self, queues: &[SeedQueue], ctx: &WriteCtx) -> Result<(), String> {
        let (org, keys) = (&mut self.org, &mut self.keys);
        for (i, q) in queues.iter().enumerate() {
            let mut body = Map::new();
            body.insert("Name".into(), Json::String(q.name.clone()));
            body.insert("Type".into(), Json::String("Queue".into()));
            body.insert(
                "DeveloperName".into(),
                Json::String(q.developer_name.clone().unwrap_or_else(|| q.name.replace(' ', "_"))),
            );
            if let Some(e) = &q.email {
                body.insert("Email".into(), Json::String(e.clone()));
            }
            let id = org
                .create("Group", &body, ctx)
                .map_err(|e| format!("queues[{i}] ({}): {}: {}", q.name, e.code, e.message))?;
            for object in &q.supports {
                let mut qs = Map::new();
                qs.insert("QueueId".into(), Json::String(id.clone()));
                qs.insert("SobjectType".into(), Json::String(object.clone()));
                org.create("QueueSobject", &qs, ctx).map_err(|e| format!("queues[{i}]: {}: {}", e.code, e.message))?;
            }
            insert_key(keys, &q.key, &id)?;
        }
        Ok(())
    }

    /// Creates one record of `records:`, with its seed directives (`_key`, `_created`,
    /// `_created_by`) applied and `@key` references resolved.
    fn record(&mut self, object: &str, at: &str, item: &serde_yaml::Value, ctx: &WriteCtx) -> Result<(), String> {
        let (org, keys, now) = (&mut self.org, &mut self.keys, self.now);
        let json: Json = serde_json::to_value(item).map_err(|e| format!("{at}: {e}"))?;
        let Json::Object(fields) = json else { return Err(format!("{at}: expected a mapping of fields")) };
        let mut body = Map::new();
        let mut record_ctx = ctx.clone();
        let mut key = None;
        let mut publish = false;
        for (name, value) in fields {
            match name.as_str() {
                // An article version seeded as published (`_published: true`).
                "_published" => {
                    publish = value.as_bool().ok_or_else(|| format!("{at}: _published must be true or false"))?
                }
                "_key" => key = Some(value.as_str().ok_or_else(|| format!("{at}: _key must be a string"))?.to_string()),
                "_created" => {
                    let text = value.as_str().ok_or_else(|| format!("{at}: _created must be a string"))?;
                    record_ctx.now = relative_time(text, now).ok_or_else(|| {
                        format!("{at}: _created: expected -30m, -2h, -3d or a datetime, found '{text}'")
                    })?;
                }
                "_created_by" => {
                    let r = value.as_str().unwrap_or_default();
                    record_ctx.user_id = resolve_key(keys, r).map_err(|e| format!("{at}: _created_by: {e}"))?;
                }
                _ if name.starts_with('_') => return Err(format!("{at}: unknown seed directive '{name}'")),
                _ => {
                    let value = match value.as_str() {
                        Some(s) if s.starts_with('@') => {
                            Json::String(resolve_key(keys, s).map_err(|e| format!("{at}.{name}: {e}"))?)
                        }
                        _ => value,
                    };
                    body.insert(name, value);
                }
            }
        }
        let id = org.create(object, &body, &record_ctx).map_err(|e| format!("{at}: {}: {}", e.code, e.message))?;
        if publish {
            org.set_publish_status(&id, "Online", &record_ctx)
                .map_err(|e| format!("{at}: _published: {}", e.message))?;
        }
        if let Some(k) = key {
            insert_key(keys, &k, &id)?;
        }
        Ok(())
    }

    /// What Setup holds that the API reads: the active assignment and duplicate rules of
    /// `org:` as `AssignmentRule` and `DuplicateRule` records, and the permission sets with
    /// their assignments.
    fn setup_records(&mut self, file: &SeedFile, ctx: &WriteCtx) -> Result<(), String> {
        let text = |v: &str| Json::String(v.to_string());
        for (i, rule) in file.org.assignment_rules.iter().enumerate() {
            let body = Map::from_iter([
                ("Name".to_string(), text(&rule.name)),
                ("SobjectType".into(), text(&rule.object)),
                ("Active".into(), Json::Bool(true)),
            ]);
            self.org
                .create("AssignmentRule", &body, ctx)
                .map_err(|e| format!("org.assignment_rules[{i}]: {}", e.message))?;
        }
        for (i, rule) in file.org.duplicate_rules.iter().enumerate() {
            let body = Map::from_iter([
                ("DeveloperName".to_string(), text(&rule.name)),
                ("MasterLabel".into(), text(&rule.name.replace('_', " "))),
                ("SobjectType".into(), text(&rule.object)),
                ("IsActive".into(), Json::Bool(true)),
            ]);
            self.org
                .create("DuplicateRule", &body, ctx)
                .map_err(|e| format!("org.duplicate_rules[{i}]: {}", e.message))?;
        }
        for (i, set) in file.permission_sets.iter().enumerate() {
            let label = set.label.clone().unwrap_or_else(|| set.name.replace('_', " "));
            let body = Map::from_iter([("Name".to_string(), text(&set.name)), ("Label".into(), text(&label))]);
            let set_id = self
                .org
                .create("PermissionSet", &body, ctx)
                .map_err(|e| format!("permission_sets[{i}]: {}", e.message))?;
            for user in &set.assigned {
                let user_id =
                    resolve_key(&self.keys, user).map_err(|e| format!("permission_sets[{i}].assigned: {e}"))?;
                let body = Map::from_iter([
                    ("AssigneeId".to_string(), Json::String(user_id)),
                    ("PermissionSetId".into(), Json::String(set_id.clone())),
                ]);
                self.org
                    .create("PermissionSetAssignment", &body, ctx)
                    .map_err(|e| format!("permission_sets[{i}].assigned: {}", e.message))?;
            }
        }
        Ok(())
    }

    /// Portal users are linked to their contacts once the contacts exist.
    fn link_portal_users(&mut self, users: &[SeedUser], ctx: &WriteCtx) -> Result<(), String> {
        let (org, keys) = (&mut self.org, &self.keys);
        for (i, u) in users.iter().enumerate() {
            if let Some(contact) = &u.contact {
                let contact_id = resolve_key(keys, contact).map_err(|e| format!("users[{i}].contact: {e}"))?;
                let mut body = Map::new();
                body.insert("ContactId".into(), Json::String(contact_id));
                org.update("User", &keys[&u.key], &body, ctx)
                    .map_err(|e| format!("users[{i}].contact: {}: {}", e.code, e.message))?;
            }
        }
        Ok(())
    }
}

fn insert_key(keys: &mut HashMap<String, String>, key: &str, id: &str) -> Result<(), String> {
    if keys.insert(key.to_string(), id.to_string()).is_some() {
        return Err(format!("key '{key}' is used twice"));
    }
    Ok(())
}

fn resolve_key(keys: &HashMap<String, String>, reference: &str) -> Result<String, String> {
    if let Some(literal) = reference.strip_prefix("@@") {
        return Ok(format!("@{literal}"));
    }
    let key = reference.strip_prefix('@').unwrap_or(reference);
    keys.get(key).cloned().ok_or_else(|| format!("no record with key '{key}' is defined before this one"))
}

fn relative_time(text: &str, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    if let Some(rest) = text.strip_prefix('-') {
        let (n, unit) = rest.split_at(rest.len().checked_sub(1)?);
        let n: i64 = n.parse().ok()?;
        let d = match unit {
            "s" => Duration::seconds(n),
            "m" => Duration::minutes(n),
            "h" => Duration::hours(n),
            "d" => Duration::days(n),
            _ => return None,
        };
        return Some(now - d);
    }
    parse_datetime(text)
}

/// The objects and fields an org's rules name exist (a rule naming none would never act,
/// silently).
fn check_rule_fields(schema: &Schema, org: &OrgSettings) -> Result<(), String> {
    let field_of = |at: String, object: &str, field: &str| -> Result<(), String> {
        let def = schema.object(object).ok_or_else(|| format!("{at}: no object {object:?}"))?;
        def.field(field).map(|_| ()).ok_or_else(|| format!("{at}: {object} has no field {field:?}"))
    };
    for (r, rule) in org.assignment_rules.iter().enumerate() {
        if !["Case", "Lead"].iter().any(|o| o.eq_ignore_ascii_case(&rule.object)) {
            return Err(format!("org.assignment_rules[{r}].object: Case or Lead, found {:?}", rule.object));
        }
        for (e, entry) in rule.entries.iter().enumerate() {
            for field in entry.when.keys() {
                field_of(format!("org.assignment_rules[{r}].entries[{e}].when"), &rule.object, field)?;
            }
        }
    }
    for (r, rule) in org.duplicate_rules.iter().enumerate() {
        if rule.match_fields.is_empty() {
            return Err(format!("org.duplicate_rules[{r}].match_fields: at least one field"));
        }
        for field in &rule.match_fields {
            field_of(format!("org.duplicate_rules[{r}].match_fields"), &rule.object, field)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "
users:
  - {key: admin, username: admin@x.example, last_name: Admin, password: pw}
queues:
  - {key: q, name: Support, supports: [Case]}
records:
  Contact:
    - {_key: jane, LastName: Doe, Email: jane@x.example}
  Case:
    - {_key: c1, Subject: Help, ContactId: '@jane', OwnerId: '@q', _created: -2h}
";

    #[test]
    fn an_orgs_rules_name_what_it_has() {
        let with = |org: &str| load(&format!("org:\n{org}{MINIMAL}"), "org.yaml").unwrap_err();
        let e = with("  assignment_rules: [{object: Case, name: R, entries: [{owner: '@nobody'}]}]\n");
        assert!(e.contains("org.assignment_rules[0].entries[0].owner") && e.contains("nobody"), "{e}");
        let e = with("  assignment_rules: [{object: Account, name: R, entries: [{owner: '@q'}]}]\n");
        assert!(e.contains("org.assignment_rules[0].object"), "{e}");
        let e = with("  assignment_rules: [{object: Case, name: R, entries: [{when: {Colour: Red}, owner: '@q'}]}]\n");
        assert!(e.contains("entries[0].when") && e.contains("Colour"), "{e}");
        let e = with("  duplicate_rules: [{object: Lead, name: D, match_fields: [Emial]}]\n");
        assert!(e.contains("org.duplicate_rules[0].match_fields") && e.contains("Emial"), "{e}");
        let e = with("  duplicate_rules: [{object: Lead, name: D, match_fields: []}]\n");
        assert!(e.contains("at least one field"), "{e}");
        let e = with("  duplicate_rules: [{object: Lead, name: D, match_fields: [Email], action: warn}]\n");
        assert!(e.contains("warn"), "{e}");
    }

    #[test]
    fn loads_records_with_references_and_times() {
        let seed = load(MINIMAL, "org.yaml").unwrap();
        let case = seed.org.get(&seed.keys["c1"]).unwrap();
        assert_eq!(case.str("ContactId"), Some(seed.keys["jane"].as_str()));
        assert_eq!(case.str("OwnerId"), Some(seed.keys["q"].as_str()));
        assert_eq!(case.str("CaseNumber"), Some("00001001"));
        assert!(seed.passwords.contains_key("admin@x.example"));
    }

    #[test]
    fn setup_records_feed_tracking_experiences_and_field_access_are_seeded() {
        let seed = load(MINIMAL, "org.yaml").unwrap();
        let schema = &seed.org.schema;
        assert!(schema.object("Case").unwrap().feed_enabled && !schema.object("Lead").unwrap().feed_enabled);
        assert!(schema.object("FeedItem").unwrap().field("Visibility").is_some(), "Digital Experiences by default");

        let yaml = MINIMAL.replace(
            "users:\n  - {key: admin, username: admin@x.example, last_name: Admin, password: pw}",
            "org:\n  feed_tracking: [Lead]\n  digital_experiences: false\n  \
             assignment_rules: [{object: Case, name: To_q, entries: [{owner: '@q'}]}]\n  \
             duplicate_rules: [{object: Lead, name: Same_email, match_fields: [Email]}]\n\
             permission_sets:\n  - {name: Casebridge_Agent, assigned: ['@admin']}\n\
             users:\n  - {key: admin, username: admin@x.example, last_name: Admin, password: pw, field_access: {Case.Subject: hidden, Case.Origin: read}}",
        );
        let seed = load(&yaml, "org.yaml").unwrap();
        let org = &seed.org;
        assert!(!org.schema.object("Case").unwrap().feed_enabled && org.schema.object("Lead").unwrap().feed_enabled);
        assert!(org.schema.object("FeedItem").unwrap().field("Visibility").is_none());
        let one = |object: &str| {
            let rows: Vec<_> = org.all(object).collect();
            assert_eq!(rows.len(), 1, "{object}");
            rows[0].clone()
        };
        assert_eq!(one("AssignmentRule").str("Name"), Some("To_q"));
        assert_eq!(one("AssignmentRule").get("Active"), &crate::sim::value::Value::Bool(true));
        assert_eq!(one("DuplicateRule").str("MasterLabel"), Some("Same email"));
        assert_eq!(one("PermissionSet").str("Label"), Some("Casebridge Agent"));
        assert_eq!(one("PermissionSetAssignment").str("AssigneeId"), Some(seed.keys["admin"].as_str()));

        let admin = &seed.keys["admin"];
        let view = org.schema_for(admin).expect("the admin has restrictions");
        let case = view.object("Case").unwrap();
        assert!(case.field("Subject").is_none());
        let origin = case.field("Origin").unwrap();
        assert!(!origin.createable && !origin.updateable);
        let e = org.check_field_access(admin, "Case", ["Origin"]).unwrap_err();
        assert_eq!(e.code, "INVALID_FIELD_FOR_INSERT_UPDATE");
        assert_eq!(org.check_field_access(admin, "Case", ["subject"]).unwrap_err().code, "INVALID_FIELD");
        assert!(org.check_field_access(admin, "Case", ["Priority"]).is_ok());
        assert!(org.schema_for(&seed.keys["q"]).is_none(), "nothing restricted for others");
        let bad = yaml.replace("Case.Subject: hidden", "Subject: hidden");
        assert!(load(&bad, "org.yaml").unwrap_err().contains("expected Object.Field"));
    }

    #[test]
    fn yaml_errors_name_line_and_column() {
        let e = load("users:\n  - key: a\n    username: [\n", "org.yaml").unwrap_err();
        assert!(e.starts_with("org.yaml:"), "{e}");
        let e = load("users: []\nbogus: 1\n", "org.yaml").unwrap_err();
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn invalid_records_are_refused_with_their_place() {
        let bad = MINIMAL.replace("Subject: Help", "Subject: Help, Status: Bogus");
        let e = load(&bad, "org.yaml").unwrap_err();
        assert!(e.contains("records.Case[0]: INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"), "{e}");
        let bad = MINIMAL.replace("'@jane'", "'@john'");
        let e = load(&bad, "org.yaml").unwrap_err();
        assert!(e.contains("no record with key 'john'"), "{e}");
    }
}
