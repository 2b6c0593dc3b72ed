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
    /// `Skipped` too in an org without Chatter, which has no FeedItem at all.
    pub async fn of(client: &crate::salesforce::Client) -> Result<Posts, crate::salesforce::SalesforceError> {
        match client.describe("FeedItem").await {
            Ok(described) if described.fields.iter().any(|f| f.name == "Visibility") => Ok(Posts::Read),
            Ok(_) => Ok(Posts::Skipped),
            Err(e) if e.status() == Some(404) => Ok(Posts::Skipped),
            Err(e) => Err(e),
        }
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
/// them. Posts are read through the case's feed (`CaseFeed`): FeedItem answers a user
/// without View All Data only a query by Id ("Implementation restriction: FeedItem requires
/// a filter by Id"), and cannot be filtered by `SystemModstamp` at all. A post goes by its
/// `LastModifiedDate`, which also moves when it is shared with the customer later.
const CHILD_STAMPS: [(&str, &str); 3] =
    [("CaseComment", "SystemModstamp"), ("EmailMessage", "SystemModstamp"), ("CaseFeed", "LastModifiedDate")];

/// The queries that read the cases changed after `since`: those in `scope` whose own
/// `SystemModstamp` moved, and those in `owned` (a condition without `OR`) with a comment,
/// email or post stamped after it (a semi-join on each child object). Salesforce does not document whether a new child
/// bumps its case's stamp, so the poll never relies on it. Four queries, which one
/// composite call carries ([`crate::salesforce::client::Client::queries_at_once`]): an
/// idle poll stays one API call.
pub fn changed_case_queries(
    extra: &[String],
    owned: Filter,
    scope: Filter,
    since: DateTime<Utc>,
    posts: Posts,
) -> Vec<String> {
    let mut queries = vec![case_query(extra, Filter::gt("SystemModstamp", since).and(scope.clone()), posts)];
    for (object, stamp) in CHILD_STAMPS {
        let mut changed = Filter::gt(stamp, since);
        if object == "CaseFeed" {
            if posts == Posts::Skipped {
                continue;
            }
            // Text posts only: the org's feed tracking writes a post for every tracked change,
            // casebridge's own writes included.
            changed = changed.and(Filter::eq("Type", "TextPost"));
        }
        let children = Select::new(["ParentId"], object).filter(changed);
        // Owned cases only: Salesforce refuses a semi-join beside `OR`, and the watched
        // cases (`scope`'s other half) are re-read by their own stamp in the first query.
        // Cases whose own stamp moved are the first query's: none is read twice.
        let quiet = Filter::le("SystemModstamp", since);
        queries.push(case_query(extra, Filter::in_select("Id", children).and(owned.clone()).and(quiet), posts));
    }
    queries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_cases_are_found_by_their_own_stamp_and_their_childrens() {
        let since = DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc);
        let owned = Filter::eq("OwnerId", "005A");
        let scope = owned.clone().or(Filter::is_in("Id", ["500B"]));
        let queries = changed_case_queries(&[], owned.clone(), scope, since, Posts::Read);
        assert_eq!(queries.len(), 4);
        assert!(
            queries[0].contains("WHERE SystemModstamp > 2026-01-02T03:04:05Z AND (OwnerId = '005A' OR Id IN ('500B'))"),
            "{}",
            queries[0]
        );
        assert!(
            queries[1].contains(
                "WHERE Id IN (SELECT ParentId FROM CaseComment WHERE SystemModstamp > 2026-01-02T03:04:05Z) AND OwnerId = '005A' AND SystemModstamp <= 2026-01-02T03:04:05Z"
            ),
            "{}",
            queries[1]
        );
        assert!(queries[2].contains("FROM EmailMessage WHERE SystemModstamp >"), "{}", queries[2]);
        assert!(queries[3].contains("FROM CaseFeed WHERE LastModifiedDate >"), "{}", queries[3]);
        assert!(queries[3].contains("Type = 'TextPost'"), "{}", queries[3]);
        assert!(queries[1..].iter().all(|q| !q.contains(" OR ")), "no semi-join beside OR: {queries:?}");
        // An org whose posts have no Visibility: no post is read, none asked about.
        let without = changed_case_queries(&[], owned.clone(), owned, since, Posts::Skipped);
        assert_eq!(without.len(), 3);
        assert!(without.iter().all(|q| !q.contains("Feed")), "{without:?}");
    }
}
