//! Poll: the SOQL queries that read cases with everything a conversation is built from, and
//! the queries that find which cases changed — by their own stamp or by a new comment,
//! email or post, whether or not the org bumps the case's stamp for it.

use chrono::{DateTime, Utc};

use crate::channels::cases::build::fields;
use crate::salesforce::soql::{Filter, Select};

/// Whether a case's feed posts are read. Only in an org where posts carry `Visibility`
/// (Salesforce has the field only with Digital Experiences on): elsewhere no customer can
/// see a post, so none is a reply, and a query naming the field would be refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Posts {
    Read,
    Skipped,
}

impl Posts {
    /// `Read` when FeedItem has `Visibility` in the org (one describe).
    pub async fn of(client: &crate::salesforce::Client) -> Result<Posts, crate::salesforce::SalesforceError> {
        let described = client.describe("FeedItem").await?;
        Ok(if described.fields.iter().any(|f| f.name == "Visibility") { Posts::Read } else { Posts::Skipped })
    }
}

/// The query that reads cases with everything a conversation is built from: the standard
/// fields, `extra` fields the rules map, and comments, emails and (with [`Posts::Read`])
/// text posts. The daemon polls with it and `casebridge record` writes fixtures with it, so
/// the two agree.
pub fn case_query(extra: &[String], filter: Filter, posts: Posts) -> String {
    case_select(extra, filter, posts).build().expect("the case query is built from checked names")
}

fn case_select(extra: &[String], filter: Filter, posts: Posts) -> Select {
    let mut case_fields: Vec<String> = fields::CASE.iter().map(|f| f.to_string()).collect();
    for f in extra {
        if !case_fields.iter().any(|c| c.eq_ignore_ascii_case(f)) {
            case_fields.push(f.clone());
        }
    }
    let mut select = Select::new(case_fields, "Case")
        .with_children(Select::new(fields::COMMENT.iter().copied(), "CaseComments").order_by("CreatedDate", false))
        .with_children(Select::new(fields::EMAIL.iter().copied(), "EmailMessages").order_by("CreatedDate", false));
    if posts == Posts::Read {
        select = select.with_children(
            Select::new(fields::FEED.iter().copied(), "Feeds")
                .filter(Filter::eq("Type", "TextPost"))
                .order_by("CreatedDate", false),
        );
    }
    select.filter(filter).order_by("SystemModstamp", false)
}

/// The child objects whose new records make a case changed, with the field that stamps
/// them. FeedItem cannot be filtered by `SystemModstamp` ("you can't query a FeedItem
/// object using the System Modstamp filter", FeedItem reference), so posts go by their
/// `CreatedDate`: a post is news when it is made.
const CHILD_STAMPS: [(&str, &str); 3] =
    [("CaseComment", "SystemModstamp"), ("EmailMessage", "SystemModstamp"), ("FeedItem", "CreatedDate")];

/// The queries that read the cases in `scope` changed after `since`: those whose own
/// `SystemModstamp` moved, and those with a comment, email or post stamped after it (a
/// semi-join on each child object). Salesforce does not document whether a new child
/// bumps its case's stamp, so the poll never relies on it. Four queries, which one
/// composite call carries ([`crate::salesforce::client::Client::queries_at_once`]): an
/// idle poll stays one API call.
pub fn changed_case_queries(extra: &[String], scope: Filter, since: DateTime<Utc>, posts: Posts) -> Vec<String> {
    let mut queries = vec![case_query(extra, Filter::gt("SystemModstamp", since).and(scope.clone()), posts)];
    for (object, stamp) in CHILD_STAMPS {
        if object == "FeedItem" && posts == Posts::Skipped {
            continue;
        }
        let children = Select::new(["ParentId"], object).filter(Filter::gt(stamp, since));
        queries.push(case_query(extra, Filter::in_select("Id", children).and(scope.clone()), posts));
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_cases_are_found_by_their_own_stamp_and_their_childrens() {
        let since = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        let queries = changed_case_queries(&[], Filter::eq("OwnerId", "005A"), since, Posts::Read);
        assert_eq!(queries.len(), 4);
        assert!(
            queries[0].contains("WHERE SystemModstamp > 2026-01-02T03:04:05Z AND OwnerId = '005A'"),
            "{}",
            queries[0]
        );
        assert!(
            queries[1].contains(
                "WHERE Id IN (SELECT ParentId FROM CaseComment WHERE SystemModstamp > 2026-01-02T03:04:05Z) AND OwnerId = '005A'"
            ),
            "{}",
            queries[1]
        );
        assert!(queries[2].contains("FROM EmailMessage WHERE SystemModstamp >"), "{}", queries[2]);
        assert!(queries[3].contains("FROM FeedItem WHERE CreatedDate >"), "{}", queries[3]);
        // An org whose posts have no Visibility: no post is read, none asked about.
        let without = changed_case_queries(&[], Filter::eq("OwnerId", "005A"), since, Posts::Skipped);
        assert_eq!(without.len(), 3);
        assert!(without.iter().all(|q| !q.contains("Feed")), "{without:?}");
    }
}
