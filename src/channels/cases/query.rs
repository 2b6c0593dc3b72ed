//! Poll: the SOQL query that reads cases with everything a conversation is built from.

use crate::channels::cases::build::fields;
use crate::salesforce::soql::{Filter, Select};

/// The query that reads cases with everything a conversation is built from: the standard
/// fields, `extra` fields the rules map, and comments, emails and text posts. The daemon
/// polls with it and `casebridge record` writes fixtures with it, so the two agree.
pub fn case_query(extra: &[String], filter: Filter) -> String {
    let mut case_fields: Vec<String> = fields::CASE.iter().map(|f| f.to_string()).collect();
    for f in extra {
        if !case_fields.iter().any(|c| c.eq_ignore_ascii_case(f)) {
            case_fields.push(f.clone());
        }
    }
    Select::new(case_fields, "Case")
        .with_children(Select::new(fields::COMMENT.iter().copied(), "CaseComments").order_by("CreatedDate", false))
        .with_children(Select::new(fields::EMAIL.iter().copied(), "EmailMessages").order_by("CreatedDate", false))
        .with_children(
            Select::new(fields::FEED.iter().copied(), "Feeds")
                .filter(Filter::eq("Type", "TextPost"))
                .order_by("CreatedDate", false),
        )
        .filter(filter)
        .order_by("SystemModstamp", false)
        .build()
        .expect("the case query is built from checked names")
}
