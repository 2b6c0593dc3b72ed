//! The org's active assignment and duplicate rules (Setup's `AssignmentRule` and
//! `DuplicateRule` records), read for `casebridge setup check`, and what the preflight says
//! about them: whether they may move what casebridge writes. The checks are pure, as the
//! rest of the [`super::preflight`]'s are.

use serde_json::Value as Json;

use super::client::{AssignmentRules, Client};
use super::error::SalesforceError;
use super::preflight::Finding;
use super::soql::{Filter, Select};

/// An active assignment or duplicate rule, from its query row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub object: String,
}

/// Check 6a: active assignment rules on Case and Lead, and what casebridge does about them.
pub fn assignment_rules(active: &[Rule], setting: AssignmentRules) -> Vec<Finding> {
    let routed: Vec<&Rule> = active
        .iter()
        .filter(|r| r.object.eq_ignore_ascii_case("Case") || r.object.eq_ignore_ascii_case("Lead"))
        .collect();
    if routed.is_empty() {
        return vec![Finding::ok("assignment rules: none active on Case or Lead")];
    }
    routed
        .into_iter()
        .map(|r| match setting {
            AssignmentRules::Never => Finding::ok(format!(
                "assignment rule {} on {}: active; casebridge sends Sforce-Auto-Assign: FALSE; the rule never moves its handovers",
                r.name, r.object
            )),
            AssignmentRules::OnCreate => Finding::warn(
                format!(
                    "assignment rule {} on {}: active, and picks the owner of every {} casebridge creates (org.assignment_rules: on_create)",
                    r.name, r.object, r.object
                ),
                format!(
                    "make sure {} never routes to the agent user, or set org.assignment_rules: never",
                    r.name
                ),
            ),
        })
        .collect()
}

/// Check 6b: active duplicate rules on Lead, and what casebridge does about them.
pub fn duplicate_rules(active: &[Rule]) -> Vec<Finding> {
    if active.is_empty() {
        return vec![Finding::ok("duplicate rules: none active on Lead")];
    }
    active
        .iter()
        .map(|r| {
            Finding::ok(format!(
                "duplicate rule {} on {}: active; a lead refused as a duplicate is linked to the matching lead",
                r.name, r.object
            ))
        })
        .collect()
}

/// The active assignment rules (of every object).
pub async fn active_assignment_rules(client: &Client) -> Result<Vec<Rule>, SalesforceError> {
    let soql = Select::new(["Id", "Name", "SobjectType"], "AssignmentRule")
        .filter(Filter::eq("Active", true))
        .order_by("Name", false)
        .build()
        .map_err(|e| SalesforceError::Config(e.to_string()))?;
    rules(client, soql, "Name").await
}

/// The active duplicate rules on Lead.
pub async fn active_lead_duplicate_rules(client: &Client) -> Result<Vec<Rule>, SalesforceError> {
    let soql = Select::new(["Id", "DeveloperName", "MasterLabel", "SobjectType"], "DuplicateRule")
        .filter(Filter::eq("IsActive", true))
        .filter(Filter::eq("SobjectType", "Lead"))
        .order_by("DeveloperName", false)
        .build()
        .map_err(|e| SalesforceError::Config(e.to_string()))?;
    rules(client, soql, "DeveloperName").await
}

async fn rules(client: &Client, soql: String, name: &str) -> Result<Vec<Rule>, SalesforceError> {
    let rows: Vec<Json> = client.query(soql).collect_all().await?;
    let text = |r: &Json, f: &str| r[f].as_str().unwrap_or_default().to_string();
    Ok(rows.iter().map(|r| Rule { name: text(r, name), object: text(r, "SobjectType") }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salesforce::preflight::Level;

    #[test]
    fn assignment_rules_are_fine_unless_they_route_creates() {
        let rules = [
            Rule { name: "Route_everything".into(), object: "Case".into() },
            Rule { name: "Accounts".into(), object: "Account".into() },
        ];
        let never = assignment_rules(&rules, AssignmentRules::Never);
        assert_eq!(never.len(), 1, "Account rules do not touch what casebridge writes");
        assert!(never[0].level == Level::Ok && never[0].text.contains("Sforce-Auto-Assign: FALSE"), "{}", never[0]);
        let on_create = assignment_rules(&rules, AssignmentRules::OnCreate);
        assert!(
            on_create[0].level == Level::Warn && on_create[0].text.contains("Route_everything"),
            "{}",
            on_create[0]
        );
        assert_eq!(assignment_rules(&[], AssignmentRules::OnCreate)[0].level, Level::Ok);
        let dup = duplicate_rules(&[Rule { name: "Standard_Lead_Duplicate_Rule".into(), object: "Lead".into() }]);
        assert!(dup[0].text.contains("linked to the matching lead"), "{}", dup[0]);
    }
}
