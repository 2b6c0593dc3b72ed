//! The standard objects the simulator serves, with Salesforce's field names, types, lengths
//! and picklists, one function a group.

use super::{FieldDef, FieldType, ObjectBuilder, ObjectDef};

use FieldType as T;

/// Every standard object.
pub(crate) fn standard_objects() -> Vec<ObjectDef> {
    [people(), accounts(), support(), sales(), knowledge(), setup()].into_iter().flatten().collect()
}

/// Users, queues and record types.
fn people() -> Vec<ObjectDef> {
    vec![
        ObjectBuilder::new("User", "005")
            .required_text("Username", "Username", 80)
            .text("FirstName", "First Name", T::String, 40)
            .required_text("LastName", "Last Name", 80)
            .readonly("Name", "Full Name", T::String, 121)
            .text("Email", "Email", T::Email, 128)
            .text("Alias", "Alias", T::String, 8)
            .flag("IsActive", "Active")
            .picklist(
                "UserType",
                "User Type",
                &[
                    "Standard",
                    "PowerPartner",
                    "PowerCustomerSuccess",
                    "CustomerSuccess",
                    "CspLitePortal",
                    "CsnOnly",
                    "Guest",
                    "AutomatedProcess",
                ],
                Some("Standard"),
            )
            .reference("ContactId", "Contact ID", &["Contact"], "Contact")
            .build(),
        ObjectBuilder::new("Group", "00G")
            .required_text("Name", "Name", 40)
            .text("DeveloperName", "Developer Name", T::String, 80)
            .picklist("Type", "Type", &["Regular", "Queue", "Role", "Organization"], Some("Regular"))
            .text("Email", "Email", T::Email, 255)
            .child("QueueSobjects", "QueueSobject", "QueueId")
            .build(),
        ObjectBuilder::new("QueueSobject", "03g")
            .parent("QueueId", "Queue ID", &["Group"], "Queue")
            .required_text("SobjectType", "Sobject Type", 40)
            .not_updateable()
            .build(),
        ObjectBuilder::new("RecordType", "012")
            .required_text("Name", "Name", 80)
            .text("DeveloperName", "Developer Name", T::String, 80)
            .required_text("SobjectType", "Sobject Type", 40)
            .flag("IsActive", "Active")
            .not_writable()
            .build(),
    ]
}

/// Accounts and contacts.
fn accounts() -> Vec<ObjectDef> {
    vec![
        ObjectBuilder::new("Account", "001")
            .required_text("Name", "Account Name", 255)
            .picklist("Type", "Account Type", &["Prospect", "Customer", "Partner", "Other"], None)
            .text("Industry", "Industry", T::String, 255)
            .text("Website", "Website", T::Url, 255)
            .text("Phone", "Account Phone", T::Phone, 40)
            .text("BillingCountry", "Billing Country", T::String, 80)
            .text("Description", "Account Description", T::TextArea, 32000)
            .reference("OwnerId", "Owner ID", &["User"], "Owner")
            .child("Contacts", "Contact", "AccountId")
            .child("Cases", "Case", "AccountId")
            .child("Opportunities", "Opportunity", "AccountId")
            .build(),
        ObjectBuilder::new("Contact", "003")
            .text("FirstName", "First Name", T::String, 40)
            .required_text("LastName", "Last Name", 80)
            .readonly("Name", "Full Name", T::String, 121)
            .text("Email", "Email", T::Email, 80)
            .text("Phone", "Business Phone", T::Phone, 40)
            .text("Title", "Title", T::String, 128)
            .reference("AccountId", "Account ID", &["Account"], "Account")
            .reference("OwnerId", "Owner ID", &["User"], "Owner")
            .child("Cases", "Case", "ContactId")
            .child("OpportunityContactRoles", "OpportunityContactRole", "ContactId")
            .build(),
    ]
}

/// Cases and what hangs off them: comments, emails, feed posts, topics.
fn support() -> Vec<ObjectDef> {
    let owner_any = &["User", "Group"];
    vec![
        ObjectBuilder::new("Case", "500")
            .readonly("CaseNumber", "Case Number", T::String, 30)
            .text("Subject", "Subject", T::String, 255)
            .text("Description", "Description", T::TextArea, 32000)
            .picklist("Status", "Status", &["New", "Working", "Escalated", "Closed"], Some("New"))
            .picklist("Priority", "Priority", &["High", "Medium", "Low"], Some("Medium"))
            .picklist("Origin", "Case Origin", &["Phone", "Email", "Web", "Chat"], None)
            .picklist("Type", "Case Type", &["Question", "Problem", "Feature Request"], None)
            .picklist(
                "Reason",
                "Case Reason",
                &["Installation", "Equipment Complexity", "Performance", "Breakdown", "Other"],
                None,
            )
            .readonly("IsClosed", "Closed", T::Boolean, 0)
            .readonly("ClosedDate", "Closed Date", T::DateTime, 0)
            .flag("IsEscalated", "Escalated")
            .reference("OwnerId", "Owner ID", owner_any, "Owner")
            .reference("ContactId", "Contact ID", &["Contact"], "Contact")
            .reference("AccountId", "Account ID", &["Account"], "Account")
            .reference("ParentId", "Parent Case ID", &["Case"], "Parent")
            .reference("RecordTypeId", "Record Type ID", &["RecordType"], "RecordType")
            .text("SuppliedName", "Web Name", T::String, 80)
            .text("SuppliedEmail", "Web Email", T::Email, 80)
            .text("SuppliedPhone", "Web Phone", T::String, 40)
            .child("CaseComments", "CaseComment", "ParentId")
            .child("EmailMessages", "EmailMessage", "ParentId")
            .child("Feeds", "FeedItem", "ParentId")
            .child("TopicAssignments", "TopicAssignment", "EntityId")
            .child("Cases", "Case", "ParentId")
            .child("Tasks", "Task", "WhatId")
            .build(),
        ObjectBuilder::new("CaseComment", "00a")
            .parent("ParentId", "Parent ID", &["Case"], "Parent")
            .field(FieldDef {
                length: 4000,
                length_in_bytes: true,
                ..FieldDef::new("CommentBody", "Body", T::TextArea)
            })
            .flag("IsPublished", "Published")
            .build(),
        ObjectBuilder::new("EmailMessage", "02s")
            .reference("ParentId", "Parent Case ID", &["Case"], "Parent")
            .text("Subject", "Subject", T::String, 3000)
            .text("TextBody", "Text Body", T::TextArea, 131072)
            .text("HtmlBody", "HTML Body", T::TextArea, 131072)
            .text("FromAddress", "From Address", T::Email, 255)
            .text("FromName", "From Name", T::String, 1000)
            .text("ToAddress", "To Address", T::String, 4000)
            .text("CcAddress", "CC Address", T::String, 4000)
            .text("BccAddress", "BCC Address", T::String, 4000)
            .flag("Incoming", "Is Incoming")
            .field(FieldDef {
                nillable: false,
                length: 255,
                picklist: ["0", "1", "2", "3", "4", "5"].iter().map(|s| s.to_string()).collect(),
                restricted_picklist: true,
                ..FieldDef::new("Status", "Status", T::Picklist)
            })
            .field(FieldDef::new("MessageDate", "Message Date", T::DateTime))
            .text("MessageIdentifier", "Message ID", T::String, 255)
            .text("ThreadIdentifier", "Thread ID", T::String, 255)
            .text("Headers", "Headers", T::TextArea, 32000)
            .reference("ReplyToEmailMessageId", "Reply To Email Message ID", &["EmailMessage"], "ReplyToEmailMessage")
            .build(),
        ObjectBuilder::new("FeedItem", "0D5")
            .parent("ParentId", "Parent ID", &["Case", "Account", "Contact", "User"], "Parent")
            .text("Body", "Body", T::TextArea, 10000)
            .text("Title", "Title", T::String, 255)
            .picklist(
                "Type",
                "Feed Item Type",
                &["TextPost", "LinkPost", "ContentPost", "TrackedChange"],
                Some("TextPost"),
            )
            .picklist("Visibility", "Visibility", &["AllUsers", "InternalUsers"], None)
            .flag("IsRichText", "Is Rich Text")
            .build(),
        ObjectBuilder::new("Topic", "0TO")
            .required_text("Name", "Name", 99)
            .text("Description", "Description", T::TextArea, 1000)
            .child("TopicAssignments", "TopicAssignment", "TopicId")
            .build(),
        ObjectBuilder::new("TopicAssignment", "0FT")
            .parent("TopicId", "Topic ID", &["Topic"], "Topic")
            .parent("EntityId", "Entity ID", &["Case", "Account", "Contact", "Opportunity"], "Entity")
            .readonly("EntityType", "Entity Type", T::String, 40)
            .not_updateable()
            .build(),
    ]
}

/// The CRM side: leads, tasks, opportunities and contact roles.
fn sales() -> Vec<ObjectDef> {
    let owner_any = &["User", "Group"];
    vec![
        ObjectBuilder::new("Lead", "00Q")
            .text("FirstName", "First Name", T::String, 40)
            .required_text("LastName", "Last Name", 80)
            .readonly("Name", "Full Name", T::String, 121)
            .required_text("Company", "Company", 255)
            .text("Email", "Email", T::Email, 80)
            .text("Phone", "Phone", T::Phone, 40)
            .text("Title", "Title", T::String, 128)
            .text("Description", "Description", T::TextArea, 32000)
            .picklist(
                "Status",
                "Lead Status",
                &["Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted"],
                Some("Open - Not Contacted"),
            )
            .picklist("LeadSource", "Lead Source", &["Web", "Phone Inquiry", "Partner Referral", "Chat", "Other"], None)
            .picklist("Rating", "Rating", &["Hot", "Warm", "Cold"], None)
            .reference("OwnerId", "Owner ID", owner_any, "Owner")
            .readonly("IsConverted", "Converted", T::Boolean, 0)
            .child("Tasks", "Task", "WhoId")
            .build(),
        ObjectBuilder::new("Task", "00T")
            .text("Subject", "Subject", T::String, 255)
            .text("Description", "Description", T::TextArea, 32000)
            .picklist(
                "Status",
                "Status",
                &["Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred"],
                Some("Not Started"),
            )
            .picklist("Priority", "Priority", &["High", "Normal", "Low"], Some("Normal"))
            .reference("WhoId", "Name ID", &["Contact", "Lead"], "Who")
            .reference("WhatId", "Related To ID", &["Case", "Account", "Opportunity"], "What")
            .reference("OwnerId", "Assigned To ID", owner_any, "Owner")
            .field(FieldDef::new("ActivityDate", "Due Date Only", T::Date))
            .readonly("IsClosed", "Closed", T::Boolean, 0)
            .picklist("TaskSubtype", "Task Subtype", &["Task", "Email", "Call"], None)
            .build(),
        ObjectBuilder::new("Opportunity", "006")
            .required_text("Name", "Name", 120)
            .field(FieldDef {
                nillable: false,
                length: 255,
                picklist: ["Prospecting", "Qualification", "Proposal", "Negotiation", "Closed Won", "Closed Lost"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
                restricted_picklist: true,
                ..FieldDef::new("StageName", "Stage", T::Picklist)
            })
            .field(FieldDef { nillable: false, ..FieldDef::new("CloseDate", "Close Date", T::Date) })
            .field(FieldDef::new("Amount", "Amount", T::Currency))
            .reference("AccountId", "Account ID", &["Account"], "Account")
            .reference("OwnerId", "Owner ID", &["User"], "Owner")
            .readonly("IsClosed", "Closed", T::Boolean, 0)
            .child("OpportunityContactRoles", "OpportunityContactRole", "OpportunityId")
            .child("Tasks", "Task", "WhatId")
            .build(),
        ObjectBuilder::new("OpportunityContactRole", "00K")
            .parent("OpportunityId", "Opportunity ID", &["Opportunity"], "Opportunity")
            .reference("ContactId", "Contact ID", &["Contact"], "Contact")
            .picklist(
                "Role",
                "Role",
                &["Business User", "Decision Maker", "Economic Buyer", "Technical Buyer", "Influencer", "Other"],
                None,
            )
            .flag("IsPrimary", "Primary")
            .build(),
    ]
}

/// Lightning Knowledge: an article (`Knowledge__ka`) and its versions (`Knowledge__kav`),
/// each Draft, Online or Archived. Versions are created as drafts; publishing and archiving
/// go through the knowledgeManagement REST resources, as in Salesforce. Body fields (such
/// as `Answer__c`) are the org's own custom fields.
fn knowledge() -> Vec<ObjectDef> {
    vec![
        ObjectBuilder::new("Knowledge__ka", "kA0")
            .readonly("ArticleNumber", "Article Number", T::String, 30)
            .readonly("FirstPublishedDate", "First Published Date", T::DateTime, 0)
            .readonly("LastPublishedDate", "Last Published Date", T::DateTime, 0)
            .readonly("ArchivedDate", "Archived Date", T::DateTime, 0)
            .not_writable()
            .child("Versions", "Knowledge__kav", "KnowledgeArticleId")
            .build(),
        ObjectBuilder::new("Knowledge__kav", "ka0")
            .required_text("Title", "Title", 255)
            .required_text("UrlName", "URL Name", 255)
            .text("Summary", "Summary", T::TextArea, 1000)
            .field(FieldDef {
                default_value: Some("en_US".into()),
                length: 40,
                ..FieldDef::new("Language", "Language", T::String)
            })
            .field(FieldDef {
                length: 18,
                createable: false,
                updateable: false,
                reference_to: vec!["Knowledge__ka".into()],
                relationship_name: Some("KnowledgeArticle".into()),
                ..FieldDef::new("KnowledgeArticleId", "Knowledge Article ID", T::Reference)
            })
            .readonly("PublishStatus", "Publication Status", T::Picklist, 40)
            .readonly("VersionNumber", "Version Number", T::Int, 0)
            .readonly("IsLatestVersion", "Is Latest Version", T::Boolean, 0)
            .readonly("ArticleNumber", "Article Number", T::String, 30)
            .readonly("LastPublishedDate", "Last Published Date", T::DateTime, 0)
            .readonly("ArchivedDate", "Archived Date", T::DateTime, 0)
            // The channels a version is published to, as Salesforce names them: the
            // internal app (on by default, as in Setup's article form), the public
            // knowledge base, the customer portal or community, and the partner portal.
            .field(FieldDef {
                nillable: false,
                defaulted_on_create: true,
                default_value: Some("true".into()),
                ..FieldDef::new("IsVisibleInApp", "Visible In Internal App", T::Boolean)
            })
            .flag("IsVisibleInPkb", "Visible In Public Knowledge Base")
            .flag("IsVisibleInCsp", "Visible to Customer")
            .flag("IsVisibleInPrm", "Visible to Partner")
            .build(),
    ]
}

/// What Setup configures and the API only reads: assignment and duplicate rules,
/// permission sets and who holds them. The seed writes them (from `org.assignment_rules`,
/// `org.duplicate_rules` and `permission_sets`); API writes are refused.
fn setup() -> Vec<ObjectDef> {
    vec![
        ObjectBuilder::new("AssignmentRule", "01Q")
            .required_text("Name", "Name", 120)
            .required_text("SobjectType", "Sobject Type", 40)
            .flag("Active", "Active")
            .not_writable()
            .build(),
        ObjectBuilder::new("DuplicateRule", "0Bm")
            .required_text("DeveloperName", "Rule Name", 80)
            .required_text("MasterLabel", "Label", 80)
            .required_text("SobjectType", "Sobject Type", 40)
            .flag("IsActive", "Active")
            .not_writable()
            .build(),
        ObjectBuilder::new("PermissionSet", "0PS")
            .required_text("Name", "Name", 80)
            .required_text("Label", "Label", 80)
            .child("Assignments", "PermissionSetAssignment", "PermissionSetId")
            .not_writable()
            .build(),
        ObjectBuilder::new("PermissionSetAssignment", "0Pa")
            .parent("AssigneeId", "Assignee ID", &["User"], "Assignee")
            .parent("PermissionSetId", "Permission Set ID", &["PermissionSet"], "PermissionSet")
            .not_writable()
            .build(),
    ]
}
