//! Whether the org's assignment rules may route what casebridge writes: the
//! `Sforce-Auto-Assign` header the client puts on every request, and on each write inside a
//! composite call (re-exported from [`super::client`]).

use super::types::SubRequest;

/// Whether the org's active assignment rules run on the Cases and Leads casebridge writes.
/// Salesforce runs them on every REST create and update of a Case, Lead or Account unless
/// the request says `Sforce-Auto-Assign: FALSE` (its default is `TRUE`), so a handover to a
/// queue could be routed elsewhere, even back to the agent user.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRules {
    /// Never: every request says `Sforce-Auto-Assign: FALSE`; owners stay where casebridge
    /// puts them.
    #[default]
    Never,
    /// On the records casebridge creates (a Case or Lead create, an upsert that may
    /// create): the org's rule picks their owner. Updates, handovers included, never run it.
    OnCreate,
}

/// The name of the assignment rule header.
pub const AUTO_ASSIGN_HEADER: &str = "Sforce-Auto-Assign";

impl AssignmentRules {
    /// The header's value for a request: `TRUE` only for a create of a Case or Lead when
    /// rules may run on creates, `FALSE` for everything else.
    pub fn header_value(self, method: &str, url: &str) -> &'static str {
        let path = url.split('?').next().unwrap_or(url);
        let update_only = url.split_once('?').is_some_and(|(_, q)| q.to_ascii_lowercase().contains("updateonly=true"));
        let object_path = path.split_once("sobjects/").map(|(_, rest)| rest).unwrap_or_default();
        let mut segments = object_path.split('/');
        let object = segments.next().unwrap_or_default();
        let routed = object.eq_ignore_ascii_case("Case") || object.eq_ignore_ascii_case("Lead");
        let rest = segments.count();
        let creates = (method.eq_ignore_ascii_case("POST") && rest == 0)
            || (method.eq_ignore_ascii_case("PATCH") && rest == 2 && !update_only);
        if self == AssignmentRules::OnCreate && routed && creates { "TRUE" } else { "FALSE" }
    }

    /// Puts the header on a composite subrequest that writes anything: Salesforce documents
    /// a subrequest's own headers, not the outer request's, as what it runs with, and the
    /// header also governs a Case or Lead a write changes indirectly (a flow or trigger on a
    /// comment or an email updating its case), so every write carries its own.
    pub(super) fn mark_subrequest(self, s: &mut SubRequest) {
        if s.method != "GET" {
            let value = self.header_value(&s.method, &s.url);
            s.http_headers.insert(AUTO_ASSIGN_HEADER.into(), value.into());
        }
    }
}

/// Query parameters as they would be sent (for the assignment header's choice only).
pub(super) fn query_text(query: &[(&str, &str)]) -> String {
    query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}
