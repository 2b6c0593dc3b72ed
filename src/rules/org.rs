//! Checking a rule set against the org's field metadata (`describe`): every field an inbound
//! mapping reads must exist (following relationships such as `Account.Name`), and every
//! field an outbound mapping writes must exist on Case and be updateable. A mapping that
//! Salesforce would refuse is reported when the rule set loads, not when a case fails.
//! Every handover target a rule names must be a queue that supports Case or an active user
//! who can own cases. The metadata and the targets are fetched once; checks are then
//! immediate, so hot reloads use them too.

use std::collections::HashMap;

use super::{LoadError, RuleSet};
use crate::salesforce::client::SObjectDescribe;
use crate::salesforce::directory::{self, SetupError, Target, TargetKind};
use crate::salesforce::{Client, id};

/// The describes of the objects casebridge maps.
#[derive(Debug, Clone)]
pub struct OrgSchema {
    objects: HashMap<String, SObjectDescribe>,
    /// Queues that support Case and users who can own cases.
    targets: Vec<Target>,
}

/// The objects whose fields mappings can reach from a case.
const OBJECTS: &[&str] = &["Case", "Contact", "Account", "User", "Lead"];

impl OrgSchema {
    /// Fetches the describes (one API call per object) and the possible handover targets.
    pub async fn fetch(client: &Client) -> Result<OrgSchema, SetupError> {
        let mut objects = HashMap::new();
        for name in OBJECTS {
            match client.describe(name).await {
                Ok(d) => {
                    objects.insert(name.to_lowercase(), d);
                }
                // Only the messenger's lead mappings write Lead: an org (or an integration
                // user) without it leaves those unchecked here, not the daemon stopped.
                Err(e) if *name == "Lead" => {
                    tracing::warn!(error = %e, "Cannot describe Lead; lead mappings are not checked against the org.")
                }
                Err(e) => return Err(SetupError::from(e)),
            }
        }
        let mut targets = directory::queues(client).await?;
        targets.extend(directory::users(client).await?);
        Ok(OrgSchema { objects, targets })
    }

    /// Whether a rule's target names a queue (Id, name or developer name) or user (Id or
    /// username) that can take cases, as the daemon resolves it.
    fn knows_target(&self, target: &str) -> bool {
        self.targets.iter().any(|t| {
            id::same(&t.id, target)
                || t.handle.eq_ignore_ascii_case(target)
                || (t.kind == TargetKind::Queue && t.name.eq_ignore_ascii_case(target))
        })
    }

    /// The rule set's problems with this org, each at its mapping.
    pub fn check(&self, set: &RuleSet) -> Vec<LoadError> {
        let mut errors = Vec::new();
        for m in set.mapped_fields() {
            let problem = if m.outbound { self.check_outbound(m.object, m.path) } else { self.check_path(m.path) };
            if let Some(message) = problem {
                let mut e = m.origin.clone();
                e.message = message;
                errors.push(e);
            }
        }
        for (target, origin) in set.handover_targets() {
            if !self.knows_target(target) {
                let names = self.targets.iter().flat_map(|t| [t.name.as_str(), t.handle.as_str()]);
                let hint = crate::spelling::closest(names, target, 3)
                    .map(|n| format!("; did you mean {n}?"))
                    .unwrap_or_default();
                let mut e = origin.clone();
                e.message = format!(
                    "handover target or case owner {target:?} is not a queue that supports cases or a user who can own them in this org{hint} (casebridge setup queues / setup users list them)"
                );
                errors.push(e);
            }
        }
        errors
    }

    fn check_outbound(&self, object: &str, field: &str) -> Option<String> {
        let describe = self.objects.get(&object.to_lowercase())?;
        match describe.field(field) {
            None => Some(format!(
                "outbound mapping: {object} has no field {field:?} in this org{}",
                suggest(describe, field)
            )),
            Some(f) if !f.updateable => Some(format!("outbound mapping: {object}.{} is read-only in this org", f.name)),
            Some(_) => None,
        }
    }

    fn check_path(&self, path: &str) -> Option<String> {
        let mut object = self.objects.get("case")?;
        let parts: Vec<&str> = path.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            if i == parts.len() - 1 {
                return match object.field(part) {
                    Some(_) => None,
                    None => Some(format!(
                        "inbound mapping: {} has no field {part:?} in this org{}",
                        object.name,
                        suggest(object, part)
                    )),
                };
            }
            let relation = object
                .fields
                .iter()
                .find(|f| f.relationship_name.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(part)));
            let Some(relation) = relation else {
                return Some(format!("inbound mapping: {} has no relationship {part:?} in this org", object.name));
            };
            match relation.reference_to.first().and_then(|t| self.objects.get(&t.to_lowercase())) {
                Some(next) => object = next,
                // Beyond the objects fetched: Salesforce checks the rest when casebridge polls.
                None => return None,
            }
        }
        None
    }
}

/// "; did you mean X?" for a near miss.
fn suggest(object: &SObjectDescribe, name: &str) -> String {
    crate::spelling::closest(object.fields.iter().map(|f| f.name.as_str()), name, 2)
        .map(|n| format!("; did you mean {n}?"))
        .unwrap_or_default()
}
