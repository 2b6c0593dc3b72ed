//! Build: a Salesforce Case, as the poll query returns it (with its comments, emails and
//! feed posts as child rows), becomes a [`Conversation`]: its subject and description are
//! the customer's first message, the children are parts whose authors are classified.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value as Json;

use crate::model::text::{html_to_text, strip_quoted_reply};
use crate::model::{AccountInfo, AuthorKind, ContactInfo, Conversation, ConversationState, Part, PartKind};
use crate::salesforce::soql::parse_datetime;

/// Who the agent user is, and how to tell customers from staff.
pub struct Authors<'a> {
    pub agent_user_id: &'a str,
}

/// Portal and community user types: people outside the company, i.e. customers.
const CUSTOMER_USER_TYPES: &[&str] =
    &["PowerCustomerSuccess", "CustomerSuccess", "CspLitePortal", "PowerPartner", "Guest", "CsnOnly"];

impl Authors<'_> {
    fn classify(&self, created_by_id: Option<&str>, user_type: Option<&str>) -> AuthorKind {
        match created_by_id {
            Some(id) if crate::salesforce::id::same(id, self.agent_user_id) => AuthorKind::Bot,
            _ if user_type.is_some_and(|t| CUSTOMER_USER_TYPES.contains(&t)) => AuthorKind::User,
            _ => AuthorKind::Admin,
        }
    }
}

/// The fields the poll query reads for each case and its children. Kept here, beside the
/// code that reads them, so the two cannot disagree.
pub mod fields {
    pub const CASE: &[&str] = &[
        "Id",
        "CaseNumber",
        "Subject",
        "Description",
        "Status",
        "IsClosed",
        "Origin",
        "Priority",
        "OwnerId",
        "CreatedDate",
        "SystemModstamp",
        "SuppliedEmail",
        "SuppliedName",
        "ContactId",
        "Contact.Name",
        "Contact.Email",
        "AccountId",
        "Account.Name",
    ];
    pub const COMMENT: &[&str] = &[
        "Id",
        "CommentBody",
        "IsPublished",
        "CreatedById",
        "CreatedBy.Name",
        "CreatedBy.UserType",
        "CreatedDate",
        "SystemModstamp",
    ];
    pub const EMAIL: &[&str] = &[
        "Id",
        "Incoming",
        "FromAddress",
        "FromName",
        "Subject",
        "TextBody",
        "HtmlBody",
        "MessageIdentifier",
        "Status",
        "ToAddress",
        "CcAddress",
        "CreatedById",
        "CreatedDate",
        "SystemModstamp",
    ];
    pub const FEED: &[&str] = &[
        "Id",
        "Body",
        "Type",
        "Visibility",
        "CreatedById",
        "CreatedBy.Name",
        "CreatedBy.UserType",
        "CreatedDate",
        "LastModifiedDate",
    ];
}

/// `EmailMessage.Status` of a draft.
const EMAIL_DRAFT: &str = "5";

/// Why a case row could not be read.
#[derive(Debug, thiserror::Error)]
#[error("case {case_id}: {problem}")]
pub struct BuildError {
    pub case_id: String,
    pub problem: String,
}

/// Builds a conversation from one row of the poll query (see [`fields`]).
pub fn from_case_row(row: &Json, authors: &Authors<'_>) -> Result<Conversation, BuildError> {
    let case_id = row["Id"].as_str().unwrap_or_default().to_string();
    let bad = |problem: &str| BuildError { case_id: case_id.clone(), problem: problem.to_string() };
    if case_id.is_empty() {
        return Err(bad("the row has no Id"));
    }
    let text = |v: &Json| v.as_str().map(str::to_string);
    let date = |v: &Json| v.as_str().and_then(parse_datetime);
    let created_at = date(&row["CreatedDate"]).ok_or_else(|| bad("CreatedDate is missing or malformed"))?;
    let modstamp = activity_stamp(row).ok_or_else(|| bad("SystemModstamp is missing or malformed"))?;
    let subject = text(&row["Subject"]).unwrap_or_default();
    let description = text(&row["Description"]).unwrap_or_default();

    let mut parts = Vec::new();
    let opening = match (subject.trim(), description.trim()) {
        ("", d) => d.to_string(),
        (s, "") => s.to_string(),
        (s, d) => format!("{s}\n\n{d}"),
    };
    parts.push(Part {
        author_id: text(&row["ContactId"]),
        author_name: text(&row["SuppliedName"]).or_else(|| text(&row["Contact"]["Name"])),
        ..Part::new(case_id.clone(), PartKind::Opening, AuthorKind::User, opening, created_at)
    });
    let customer = text(&row["Contact"]["Email"]).or_else(|| text(&row["SuppliedEmail"]));
    parts.extend(child_parts(row, authors, customer.as_deref()));
    drop_copied_description(&mut parts, &description);
    parts.sort_by(|a, b| a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id)));

    let contact = row["Contact"].as_object().map(|_| ContactInfo {
        id: text(&row["ContactId"]).unwrap_or_default(),
        name: text(&row["Contact"]["Name"]),
        email: text(&row["Contact"]["Email"]),
    });
    let account = row["Account"]
        .as_object()
        .map(|_| AccountInfo { id: text(&row["AccountId"]).unwrap_or_default(), name: text(&row["Account"]["Name"]) });
    let customer_email = contact.as_ref().and_then(|c| c.email.clone()).or_else(|| text(&row["SuppliedEmail"]));
    let case_fields = row
        .as_object()
        .map(|m| {
            m.iter().filter(|(k, _)| !matches!(k.as_str(), "attributes" | "CaseComments" | "EmailMessages" | "Feeds"))
        })
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Ok(Conversation {
        channel: crate::model::Channel::Case,
        case_number: text(&row["CaseNumber"]).unwrap_or_default(),
        subject,
        origin: text(&row["Origin"]),
        status: text(&row["Status"]),
        owner_id: text(&row["OwnerId"]).unwrap_or_default(),
        contact,
        account,
        customer_email,
        case_fields,
        parts,
        attributes: BTreeMap::new(),
        topics: BTreeSet::new(),
        state: ConversationState::Open,
        handled: BTreeSet::new(),
        replies_sent: 0,
        created_at,
        modstamp,
        retry_at: None,
        agent_failures: 0,
        decisions: Vec::new(),
        ai_involved: false,
        first_reply_at: None,
        csat: None,
        team_in: None,
        resolution: None,
        messenger: None,
        id: case_id,
    })
}

/// When a case row last changed: the newest of the case's `SystemModstamp` and its
/// children's stamps (a comment's or email's `SystemModstamp`, a post's `LastModifiedDate`).
/// An org need not bump the case's stamp for a new child, so a row is news when either
/// moved; `None` when the case's own stamp is missing or malformed.
pub fn activity_stamp(row: &Json) -> Option<chrono::DateTime<chrono::Utc>> {
    let date = |v: &Json| v.as_str().and_then(parse_datetime);
    let case = date(&row["SystemModstamp"])?;
    let stamped =
        [("CaseComments", "SystemModstamp"), ("EmailMessages", "SystemModstamp"), ("Feeds", "LastModifiedDate")];
    let newest_child =
        stamped.iter().flat_map(|(rel, stamp)| children(&row[*rel]).filter_map(|c| date(&c[*stamp]))).max();
    Some(newest_child.map_or(case, |child| child.max(case)))
}

/// The case's comments, emails and text posts as parts. Only what a customer can see is
/// public: a published comment, an email sent or received (not a draft), a post whose
/// `Visibility` is `AllUsers` (Salesforce makes an internal user's record post
/// `InternalUsers` unless it is shared; a row without the field counts as internal).
fn child_parts(row: &Json, authors: &Authors<'_>, customer_email: Option<&str>) -> Vec<Part> {
    let text = |v: &Json| v.as_str().map(str::to_string);
    let date = |v: &Json| v.as_str().and_then(parse_datetime);
    let mut parts = Vec::new();
    for c in children(&row["CaseComments"]) {
        let Some(at) = date(&c["CreatedDate"]) else { continue };
        parts.push(Part {
            author_id: text(&c["CreatedById"]),
            author_name: text(&c["CreatedBy"]["Name"]),
            public: c["IsPublished"].as_bool().unwrap_or(false),
            ..Part::new(
                text(&c["Id"]).unwrap_or_default(),
                PartKind::Comment,
                authors.classify(c["CreatedById"].as_str(), c["CreatedBy"]["UserType"].as_str()),
                text(&c["CommentBody"]).unwrap_or_default(),
                at,
            )
        });
    }
    for e in children(&row["EmailMessages"]) {
        let Some(at) = date(&e["CreatedDate"]) else { continue };
        let incoming = e["Incoming"].as_bool().unwrap_or(false);
        let body = match (e["TextBody"].as_str(), e["HtmlBody"].as_str()) {
            (Some(t), _) if !t.trim().is_empty() => t.to_string(),
            (_, Some(h)) => html_to_text(h),
            _ => String::new(),
        };
        parts.push(Part {
            author_id: if incoming { text(&e["FromAddress"]) } else { text(&e["CreatedById"]) },
            author_name: text(&e["FromName"]),
            // An email the customer received: theirs, or one sent to them (To or Cc), not a
            // draft (Status 5). One sent from the case to a colleague is internal.
            public: incoming || (e["Status"].as_str() != Some(EMAIL_DRAFT) && addressed_to(e, customer_email)),
            message_id: text(&e["MessageIdentifier"]),
            ..Part::new(
                text(&e["Id"]).unwrap_or_default(),
                PartKind::Email,
                if incoming { AuthorKind::User } else { authors.classify(e["CreatedById"].as_str(), None) },
                strip_quoted_reply(&body),
                at,
            )
        });
    }
    for f in children(&row["Feeds"]) {
        if f["Type"].as_str().is_some_and(|t| t != "TextPost") {
            continue;
        }
        let Some(at) = date(&f["CreatedDate"]) else { continue };
        parts.push(Part {
            author_id: text(&f["CreatedById"]),
            author_name: text(&f["CreatedBy"]["Name"]),
            public: f["Visibility"].as_str() == Some("AllUsers"),
            ..Part::new(
                text(&f["Id"]).unwrap_or_default(),
                PartKind::FeedPost,
                authors.classify(f["CreatedById"].as_str(), f["CreatedBy"]["UserType"].as_str()),
                html_to_text(f["Body"].as_str().unwrap_or_default()),
                at,
            )
        });
    }
    parts
}

/// Whether an email's To or Cc holds `customer` (`Name <address>` or a bare address, separated
/// by `;` or `,`).
fn addressed_to(email: &Json, customer: Option<&str>) -> bool {
    let Some(customer) = customer.map(str::trim).filter(|c| !c.is_empty()) else { return false };
    ["ToAddress", "CcAddress"].iter().filter_map(|f| email[*f].as_str()).flat_map(|list| list.split([';', ','])).any(
        |mailbox| {
            let address = match (mailbox.find('<'), mailbox.rfind('>')) {
                (Some(s), Some(e)) if e > s => &mailbox[s + 1..e],
                _ => mailbox,
            };
            address.trim().eq_ignore_ascii_case(customer)
        },
    )
}

/// Email-to-Case copies the first email's text into the Description: that message is the
/// email, not a second one, so the opening part goes.
fn drop_copied_description(parts: &mut Vec<Part>, description: &str) {
    let squash = |t: &str| t.split_whitespace().collect::<Vec<_>>().join(" ");
    let described = squash(description);
    if !described.is_empty()
        && parts
            .iter()
            .any(|p| p.kind == PartKind::Email && p.author == AuthorKind::User && squash(&p.body) == described)
    {
        parts.retain(|p| p.kind != PartKind::Opening);
    }
}

fn children(value: &Json) -> impl Iterator<Item = &Json> {
    value["records"].as_array().into_iter().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AGENT: &str = "005Dn0000000003IAA";

    fn row() -> Json {
        json!({
            "Id": "500Dn000000000IIAQ", "CaseNumber": "00001001", "Subject": "Gripper drift",
            "Description": "It drifts 2mm.", "Status": "New", "Origin": "Web", "OwnerId": AGENT,
            "CreatedDate": "2024-05-01T12:00:00.000+0000", "SystemModstamp": "2024-05-01T12:30:00.000+0000",
            "ContactId": "003Dn000000000FIAQ", "Contact": { "Name": "Jane Doe", "Email": "jane@customer.example" },
            "AccountId": null, "Account": null,
            "CaseComments": { "totalSize": 3, "done": true, "records": [
                { "Id": "00aDn0000000001AAA", "CommentBody": "Still drifting", "IsPublished": true, "CreatedById": "005Dn0000000008IAA",
                  "CreatedBy": { "Name": "Jane Doe", "UserType": "PowerCustomerSuccess" }, "CreatedDate": "2024-05-01T12:10:00.000+0000" },
                { "Id": "00aDn0000000002AAA", "CommentBody": "Try recalibrating", "IsPublished": true, "CreatedById": AGENT,
                  "CreatedBy": { "Name": "Fin Agent", "UserType": "Standard" }, "CreatedDate": "2024-05-01T12:11:00.000+0000" },
                { "Id": "00aDn0000000003AAA", "CommentBody": "internal", "IsPublished": false, "CreatedById": "005Dn0000000004IAA",
                  "CreatedBy": { "Name": "Maria", "UserType": "Standard" }, "CreatedDate": "2024-05-01T12:12:00.000+0000" }
            ]},
            "EmailMessages": { "totalSize": 1, "done": true, "records": [
                { "Id": "02sDn0000000001AAA", "Incoming": true, "FromAddress": "jane@customer.example", "TextBody": null,
                  "HtmlBody": "<p>Hello <b>team</b></p><p>Second line</p>", "MessageIdentifier": "<m1@x>",
                  "CreatedDate": "2024-05-01T12:20:00.000+0000" }
            ]},
            "Feeds": null
        })
    }

    #[test]
    fn classifies_authors_and_orders_parts() {
        let c = from_case_row(&row(), &Authors { agent_user_id: AGENT }).unwrap();
        let authors: Vec<AuthorKind> = c.parts.iter().map(|p| p.author).collect();
        assert_eq!(authors, [AuthorKind::User, AuthorKind::User, AuthorKind::Bot, AuthorKind::Admin, AuthorKind::User]);
        assert_eq!(c.parts[0].body, "Gripper drift\n\nIt drifts 2mm.");
        assert_eq!(c.customer_email.as_deref(), Some("jane@customer.example"));
        assert!(c.is_email_origin(), "an incoming email makes replies go by email");
        let email = c.parts.last().unwrap();
        assert!(email.body.contains("Hello") && !email.body.contains('<'), "{}", email.body);
        assert_eq!(email.message_id.as_deref(), Some("<m1@x>"));
    }

    #[test]
    fn unanswered_skips_handled_and_what_a_human_answered() {
        let mut c = from_case_row(&row(), &Authors { agent_user_id: AGENT }).unwrap();
        assert_eq!(c.unanswered().len(), 3);
        c.handled.insert(c.parts[0].id.clone());
        assert_eq!(c.unanswered().len(), 2);
        // A public human answer after the first two customer parts covers them.
        c.parts.insert(
            3,
            Part::new(
                "00aHuman".into(),
                PartKind::Comment,
                AuthorKind::Admin,
                "done".into(),
                parse_datetime("2024-05-01T12:15:00.000+0000").unwrap(),
            ),
        );
        let ids: Vec<&str> = c.unanswered().iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["02sDn0000000001AAA"]);
    }

    #[test]
    fn an_email_to_case_description_is_not_a_second_message() {
        let mut r = row();
        r["Description"] = json!("Hello team\n\nSecond line");
        r["EmailMessages"]["records"][0]["HtmlBody"] = json!(null);
        r["EmailMessages"]["records"][0]["TextBody"] = json!("Hello team\nSecond line");
        let c = from_case_row(&r, &Authors { agent_user_id: AGENT }).unwrap();
        assert!(c.parts.iter().all(|p| p.kind != PartKind::Opening), "{:?}", c.parts);
        assert_eq!(c.parts.iter().filter(|p| p.author == AuthorKind::User).count(), 2);
    }

    #[test]
    fn only_emails_the_customer_received_are_public() {
        let mut r = row();
        let outgoing = |minute: u32, to: &str, status: &str| {
            json!({ "Id": format!("02sDn00000000{minute}AAA"), "Incoming": false, "Status": status, "ToAddress": to, "TextBody": "x",
                    "CreatedById": "005Dn0000000004IAA", "CreatedDate": format!("2024-05-01T12:{minute}:00.000+0000") })
        };
        r["EmailMessages"]["records"] = json!([
            outgoing(25, "colleague@acme.example", "3"),
            outgoing(26, "Jane Doe <JANE@customer.example>; boss@acme.example", "3"),
            outgoing(27, "jane@customer.example", "5"),
        ]);
        let c = from_case_row(&r, &Authors { agent_user_id: AGENT }).unwrap();
        let public: Vec<bool> = c.parts.iter().filter(|p| p.kind == PartKind::Email).map(|p| p.public).collect();
        assert_eq!(public, [false, true, false], "to a colleague, to the customer, a draft");
    }

    #[test]
    fn quoted_history_is_dropped() {
        let body = "Thanks, that worked!\n\nOn Tue, May 1, 2024 at 12:00 Support wrote:\n> Try this\n> and that";
        assert_eq!(strip_quoted_reply(body), "Thanks, that worked!");
        assert_eq!(strip_quoted_reply("> only quoted"), "> only quoted");
    }
}
