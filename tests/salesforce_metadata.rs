//! The Salesforce metadata casebridge ships in `salesforce/` (source format, deployed with
//! `sf project deploy start`; see `salesforce/README.md` and `docs/salesforce-setup.md`) is
//! well-formed and complete: `sfdx-project.json` names package directories that exist, every
//! `*-meta.xml` file is well-formed XML whose root element is its metadata type in the
//! Metadata API's namespace and whose elements are ones that type documents (required ones
//! present), the permission sets grant exactly what casebridge's code uses (every sObject
//! `src/` queries or writes is granted or named with what governs it instead), every custom
//! field shipped or written by the shipped rules has field permissions, the External Client
//! App matches what `casebridge auth login` and the token requests send and ships no secret,
//! and, when the Salesforce CLI (`sf`) is on PATH, the CLI converts the folder to Metadata API
//! format offline. Without `sf` that last part is skipped, except in CI (the `CI` environment
//! variable set), where a missing CLI fails the test.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The namespace every Metadata API file declares on its root element.
const METADATA_NAMESPACE: &str = "http://soap.sforce.com/2006/04/metadata";

/// Source-format file suffixes and the metadata type (root element) each holds. A file with a
/// suffix not listed here fails the test: add the type once you know its root element, and
/// its elements to SCHEMAS.
const METADATA_TYPES: &[(&str, &str)] = &[
    (".permissionset-meta.xml", "PermissionSet"),
    (".field-meta.xml", "CustomField"),
    (".object-meta.xml", "CustomObject"),
    (".topicsForObjects-meta.xml", "TopicsForObjects"),
    (".eca-meta.xml", "ExternalClientApplication"),
    (".ecaOauth-meta.xml", "ExtlClntAppOauthSettings"),
    (".ecaGlblOauth-meta.xml", "ExtlClntAppGlobalOauthSettings"),
    (".ecaOauthPlcy-meta.xml", "ExtlClntAppOauthConfigurablePolicies"),
    (".ecaPlcy-meta.xml", "ExtlClntAppConfigurablePolicies"),
];

/// What a metadata type's file may hold: its documented fields (the child elements of the
/// root), the ones the documentation marks required, and, for fields that are lists of
/// entries, each entry's own fields (allowed, required). The field lists are those of the
/// Metadata API reference page named in `doc` (the same as the Metadata WSDL's, as the
/// Salesforce CLI's `@salesforce/types` 1.7.1 generates them: `lib/metadata.d.ts`); `required`
/// is what the page marks "Required" (and, in a source-format file, `fullName` where the file
/// carries it). An element not listed is a typo Salesforce would refuse at deploy time.
struct Schema {
    kind: &'static str,
    doc: &'static str,
    allowed: &'static [&'static str],
    required: &'static [&'static str],
    entries: &'static [(&'static str, &'static [&'static str], &'static [&'static str])],
}

const SCHEMAS: &[Schema] = &[
    Schema {
        kind: "CustomField",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/customfield.htm
        doc: "customfield.htm",
        allowed: &[
            "fullName",
            "businessOwnerGroup",
            "businessOwnerUser",
            "businessStatus",
            "caseSensitive",
            "complianceGroup",
            "customDataType",
            "defaultValue",
            "deleteConstraint",
            "deprecated",
            "description",
            "displayFormat",
            "displayLocationInDecimal",
            "elementType",
            "encryptionScheme",
            "escapeMarkup",
            "externalDeveloperName",
            "externalId",
            "fieldManageability",
            "formula",
            "formulaTreatBlanksAs",
            "inlineHelpText",
            "isAIPredictionField",
            "isConvertLeadDisabled",
            "isFilteringDisabled",
            "isNameField",
            "isSortingDisabled",
            "label",
            "length",
            "lookupFilter",
            "maskChar",
            "maskType",
            "metadataRelationshipControllingField",
            "mktDataLakeFieldAttributes",
            "mktDataModelFieldAttributes",
            "picklist",
            "populateExistingRows",
            "precision",
            "readOnlyProxy",
            "referenceTargetField",
            "referenceTo",
            "relationshipLabel",
            "relationshipName",
            "relationshipOrder",
            "reparentableMasterDetail",
            "required",
            "restrictedAdminField",
            "scale",
            "securityClassification",
            "startingNumber",
            "stripMarkup",
            "summarizedField",
            "summaryFilterItems",
            "summaryForeignKey",
            "summaryOperation",
            "trackFeedHistory",
            "trackHistory",
            "trackTrending",
            "translateData",
            "type",
            "unique",
            "valueSet",
            "visibleLines",
            "writeRequiresMasterRead",
        ],
        // The page marks none of its own fields required; a field file names its component.
        required: &["fullName"],
        entries: &[],
    },
    Schema {
        kind: "PermissionSet",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_permissionset.htm
        doc: "meta_permissionset.htm",
        allowed: &[
            "agentAccesses",
            "applicationVisibilities",
            "classAccesses",
            "customMetadataTypeAccesses",
            "customPermissions",
            "customSettingAccesses",
            "dataspaceScopes",
            "description",
            "emailRoutingAddressAccesses",
            "externalCredentialPrincipalAccesses",
            "externalDataSourceAccesses",
            "fieldPermissions",
            "flowAccesses",
            "genComputingSummaryDefAccesses",
            "hasActivationRequired",
            "label",
            "license",
            "objectPermissions",
            "pageAccesses",
            "recordTypeVisibilities",
            "servicePresenceStatusAccesses",
            "tabSettings",
            "userPermissions",
        ],
        required: &["label"],
        entries: &[
            (
                "objectPermissions",
                &[
                    "allowCreate",
                    "allowDelete",
                    "allowEdit",
                    "allowRead",
                    "customizeSetup",
                    "deleteSetup",
                    "modifyAllRecords",
                    "object",
                    "viewAllFields",
                    "viewAllRecords",
                    "viewSetup",
                ],
                &[
                    "allowCreate",
                    "allowDelete",
                    "allowEdit",
                    "allowRead",
                    "modifyAllRecords",
                    "object",
                    "viewAllRecords",
                ],
            ),
            ("fieldPermissions", &["editable", "field", "readable"], &["editable", "field"]),
            ("userPermissions", &["enabled", "name"], &["enabled", "name"]),
        ],
    },
    Schema {
        kind: "TopicsForObjects",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_topicsforobjects.htm
        doc: "meta_topicsforobjects.htm",
        allowed: &["enableTopics", "entityApiName"],
        required: &["enableTopics", "entityApiName"],
        entries: &[],
    },
    Schema {
        kind: "ExternalClientApplication",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_externalclientapplication.htm
        doc: "meta_externalclientapplication.htm",
        allowed: &[
            "contactEmail",
            "contactPhone",
            "description",
            "distributionState",
            "iconUrl",
            "infoUrl",
            "isProtected",
            "label",
            "logoUrl",
            "managedType",
            "orgScopedExternalApp",
        ],
        required: &[],
        entries: &[],
    },
    Schema {
        kind: "ExtlClntAppOauthSettings",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_extlclntappoauthsettings.htm
        doc: "meta_extlclntappoauthsettings.htm",
        allowed: &[
            "areAttributesIncludedInAssetToken",
            "areCustomPermsIncludedInAssetToken",
            "assetTokenAudiences",
            "assetTokenSigningCertificate",
            "assetTokenValidity",
            "clientAssertionCertificate",
            "commaSeparatedCustomScopes",
            "commaSeparatedOauthScopes",
            "customAttributes",
            "externalClientApplication",
            "isFirstPartyAppEnabled",
            "label",
            "oauthLink",
            "singleLogoutUrl",
            "trustedIpRanges",
        ],
        required: &["externalClientApplication"],
        entries: &[],
    },
    Schema {
        kind: "ExtlClntAppGlobalOauthSettings",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_extlclntappglobaloauthsettings.htm
        doc: "meta_extlclntappglobaloauthsettings.htm",
        allowed: &[
            "callbackUrl",
            "certificate",
            "consumerKey",
            "consumerSecret",
            "externalClientApplication",
            "idTokenConfig",
            "isClientCredentialsFlowEnabled",
            "isCodeCredFlowEnabled",
            "isCodeCredPostOnly",
            "isConsumerSecretOptional",
            "isDeviceFlowEnabled",
            "isIntrospectAllTokens",
            "isNamedUserJwtEnabled",
            "isPkceRequired",
            "isRefreshTokenRotationEnabled",
            "isSecretRequiredForRefreshToken",
            "isSecretRequiredForTokenExchange",
            "isTokenExchangeEnabled",
            "label",
            "shouldRotateConsumerKey",
            "shouldRotateConsumerSecret",
        ],
        required: &["externalClientApplication"],
        entries: &[],
    },
    Schema {
        kind: "ExtlClntAppOauthConfigurablePolicies",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_extlclntappoauthconfigurablepolicies.htm
        doc: "meta_extlclntappoauthconfigurablepolicies.htm",
        allowed: &[
            "apexHandler",
            "clientCredentialsFlowUser",
            "commaSeparatedCustomScopes",
            "commaSeparatedPermissionSet",
            "commaSeparatedProfile",
            "customAttributes",
            "executeHandlerAs",
            "externalClientApplication",
            "guestJwtSessionTimeoutType",
            "guestJwtTimeout",
            "ipRelaxationPolicyType",
            "isClientCredentialsFlowEnabled",
            "isGuestCodeCredFlowEnabled",
            "isTokenExchangeFlowEnabled",
            "label",
            "namedUserJwtSessionTimeoutType",
            "namedUserJwtTimeout",
            "permittedUsersPolicyType",
            "policyAction",
            "refreshTokenPolicyType",
            "refreshTokenValidityPeriod",
            "refreshTokenValidityUnit",
            "requiredSessionLevel",
            "sessionTimeoutInMinutes",
            "singleLogoutUrl",
            "startUrl",
        ],
        required: &["externalClientApplication"],
        entries: &[],
    },
    Schema {
        kind: "ExtlClntAppConfigurablePolicies",
        // https://developer.salesforce.com/docs/atlas.en-us.api_meta.meta/api_meta/meta_extlclntappconfigurablepolicies.htm
        doc: "meta_extlclntappconfigurablepolicies.htm",
        allowed: &[
            "externalClientApplication",
            "isCanvasPluginEnabled",
            "isEnabled",
            "isMobilePluginEnabled",
            "isNotificationPluginEnabled",
            "isOauthPluginEnabled",
            "isPushPluginEnabled",
            "isSamlPluginEnabled",
            "label",
            "startPage",
            "startUrl",
        ],
        required: &["externalClientApplication", "isEnabled"],
        entries: &[],
    },
];

/// Elements that hold an External Client App's secrets: Salesforce makes them at deploy time,
/// and they never belong in the repository.
const SECRET_ELEMENTS: &[&str] = &["consumerKey", "consumerSecret"];

/// The agent user's permission set, and the one for Salesforce Knowledge (in its own package
/// directory: its object exists only in orgs with Lightning Knowledge).
const PERMISSION_SET: &str = "Casebridge_Agent";
const KNOWLEDGE_PERMISSION_SET: &str = "Casebridge_Knowledge";

/// One object permission casebridge needs: the object, read, create, edit, the permission set
/// that grants it, and where the code uses it.
struct Grant {
    object: &'static str,
    read: bool,
    create: bool,
    edit: bool,
    permission_set: &'static str,
    used_by: &'static str,
}

/// Every object permission casebridge needs, and nothing else: a missing or a wider grant
/// fails. Delete, View All and Modify All are never granted.
const OBJECT_GRANTS: &[Grant] = &[
    Grant {
        object: "Case",
        read: true,
        create: true,
        edit: true,
        permission_set: PERMISSION_SET,
        used_by: "the poll (channels/cases/query.rs), handovers and `kind: cases` rules upsert cases \
                  (channels/messenger/plan.rs), owner and mapped fields (channels/cases/deliver.rs)",
    },
    Grant {
        object: "Lead",
        read: true,
        create: true,
        edit: true,
        permission_set: PERMISSION_SET,
        used_by: "the messenger's visitors: matching and upserting leads (channels/messenger/matching.rs, \
                  daemon/chats/leads.rs)",
    },
    Grant {
        object: "Contact",
        read: true,
        create: false,
        edit: false,
        permission_set: PERMISSION_SET,
        used_by: "matching visitors (channels/messenger/matching.rs), the inbox panel (report/inbox.rs)",
    },
    Grant {
        object: "Account",
        read: true,
        create: false,
        edit: false,
        permission_set: PERMISSION_SET,
        used_by: "Contact.Account.Name and rules' Account.* paths",
    },
    Grant {
        object: "Opportunity",
        read: true,
        create: false,
        edit: false,
        permission_set: PERMISSION_SET,
        used_by: "a Task's related opportunity (channels/messenger/tasks.rs), the inbox panel (report/inbox.rs)",
    },
    Grant {
        object: "Knowledge__kav",
        read: true,
        create: false,
        edit: false,
        permission_set: KNOWLEDGE_PERMISSION_SET,
        used_by: "Salesforce Knowledge sync (daemon/knowledge_sync.rs; agent.salesforce_knowledge.object)",
    },
];

/// Objects casebridge touches whose access a permission set's object permissions cannot
/// grant, and what governs it instead.
const NOT_GRANTABLE: &[(&str, &str)] = &[
    ("CaseComment", "a comment's access follows its parent case (Case read/edit)"),
    ("EmailMessage", "an email on a case follows the case (Case read/edit)"),
    ("FeedItem", "a post on a case's feed follows the case"),
    ("CaseFeed", "a case's feed follows the case"),
    ("OpportunityContactRole", "a contact role follows its opportunity and contact"),
    ("Topic", "topics are governed by the CreateTopics user permission"),
    ("TopicAssignment", "topic assignments are governed by the AssignTopics user permission"),
    ("User", "users are visible through the org's user sharing, not object permissions"),
    ("Group", "queues are read without object permissions"),
    ("QueueSobject", "queues are read without object permissions"),
    ("RecordType", "record types are read without object permissions"),
    ("Task", "tasks are governed by the EditTask user permission"),
    ("Knowledge__ka", "a Knowledge article follows its versions (Knowledge__kav)"),
    // Read by `casebridge setup check` alone, which says so when the user cannot see them.
    ("AssignmentRule", "setup data: the View Setup and Configuration user permission"),
    ("DuplicateRule", "setup data: the View Setup and Configuration user permission"),
    ("PermissionSet", "setup data: the View Setup and Configuration user permission"),
    ("PermissionSetAssignment", "setup data: the View Setup and Configuration user permission"),
];

/// Child relationships the code queries, and the object each holds.
const CHILD_RELATIONSHIPS: &[(&str, &str)] = &[
    ("CaseComments", "CaseComment"),
    ("EmailMessages", "EmailMessage"),
    ("Feeds", "CaseFeed"),
    ("QueueSobjects", "QueueSobject"),
];

/// User permissions the agent user needs: API access, tagging cases with topics (and making
/// topics), and logging messenger conversations as Tasks.
const USER_PERMISSIONS: &[&str] = &["ApiEnabled", "AssignTopics", "CreateTopics", "EditTask"];

/// Field permissions the agent user needs: every custom field casebridge writes (the shipped
/// rules' fields and the conversation External IDs), all editable. Activity's custom fields
/// take their field permissions as Task's.
const FIELD_GRANTS: &[&str] = &[
    "Case.AI_CSAT__c",
    "Case.AI_Involved__c",
    "Case.AI_Resolution__c",
    "Case.Casebridge_Conversation__c",
    "Lead.Casebridge_Conversation__c",
    "Task.Casebridge_Conversation__c",
];

/// The elements casebridge's permission sets hold (a subset of the type's).
const PERMISSION_SET_ELEMENTS: &[&str] = &[
    "description",
    "fieldPermissions",
    "hasActivationRequired",
    "label",
    "license",
    "objectPermissions",
    "userPermissions",
];

/// How long the CLI may take to convert the folder (it takes a few seconds).
const CLI_TIMEOUT: Duration = Duration::from_secs(300);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn salesforce_dir() -> PathBuf {
    repo().join("salesforce")
}

fn project() -> serde_json::Value {
    let path = salesforce_dir().join("sfdx-project.json");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

/// The package directories `sfdx-project.json` names, as paths inside `salesforce/`.
fn package_directories() -> Vec<PathBuf> {
    let project = project();
    let dirs = project["packageDirectories"].as_array().expect("sfdx-project.json: packageDirectories is an array");
    dirs.iter()
        .map(|d| salesforce_dir().join(d["path"].as_str().expect("every package directory has a path")))
        .collect()
}

/// The package directory marked `default`, where the permission set lives.
fn default_package_directory() -> PathBuf {
    let project = project();
    let dirs = project["packageDirectories"].as_array().expect("sfdx-project.json: packageDirectories is an array");
    let default =
        dirs.iter().find(|d| d["default"] == true).expect("sfdx-project.json names a default package directory");
    salesforce_dir().join(default["path"].as_str().expect("every package directory has a path"))
}

fn permission_set_path() -> PathBuf {
    default_package_directory().join(format!("main/default/permissionsets/{PERMISSION_SET}.permissionset-meta.xml"))
}

/// The Knowledge permission set, in the package directory of its own (`knowledge`).
fn knowledge_permission_set_path() -> PathBuf {
    let dir = package_directories()
        .into_iter()
        .find(|d| d.ends_with("knowledge"))
        .expect("sfdx-project.json names the knowledge package directory");
    dir.join(format!("main/default/permissionsets/{KNOWLEDGE_PERMISSION_SET}.permissionset-meta.xml"))
}

// ---------------------------------------------------------------------------------------------
// A small XML checker: enough of XML 1.0 for Metadata API files (a declaration, elements,
// attributes, text, the predefined and numeric entities, comments and CDATA), strict about
// what it accepts, and reporting errors with line and column.

#[derive(Debug)]
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the one child with this name, when there is exactly one.
    fn child_text(&self, name: &str) -> Option<&str> {
        let mut found = self.children.iter().filter(|c| c.name == name);
        let first = found.next()?;
        if found.next().is_some() { None } else { Some(first.text.trim()) }
    }
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    depth: usize,
}

const MAX_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn error(&self, problem: impl std::fmt::Display) -> String {
        let before = &self.src[..self.pos];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("{line}:{column}: {problem}")
    }

    fn eat(&mut self, token: &str) -> bool {
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), String> {
        if self.eat(token) { Ok(()) } else { Err(self.error(format!("expected `{token}`"))) }
    }

    fn skip_whitespace(&mut self) -> bool {
        let skipped = self.rest().len() - self.rest().trim_start_matches([' ', '\t', '\r', '\n']).len();
        self.pos += skipped;
        skipped > 0
    }

    fn until(&mut self, end: &str, what: &str) -> Result<&'a str, String> {
        match self.rest().find(end) {
            Some(i) => {
                let text = &self.rest()[..i];
                self.pos += i + end.len();
                Ok(text)
            }
            None => Err(self.error(format!("{what} is not closed with `{end}`"))),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let mut end = 0;
        for (i, c) in rest.char_indices() {
            let ok = if i == 0 {
                c.is_ascii_alphabetic() || c == '_' || c == ':'
            } else {
                c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-' | '.')
            };
            if !ok {
                break;
            }
            end = i + c.len_utf8();
        }
        if end == 0 {
            return Err(self.error("expected a name"));
        }
        self.pos += end;
        Ok(rest[..end].to_string())
    }

    /// Decodes text or an attribute value, refusing a raw `<` and unknown entities.
    fn decode(&self, raw: &str, start: usize) -> Result<String, String> {
        let at = |offset: usize| Parser { src: self.src, pos: start + offset, depth: 0 };
        let mut out = String::new();
        let mut rest = raw;
        let mut offset = 0;
        while let Some(i) = rest.find(['&', '<']) {
            out.push_str(&rest[..i]);
            if rest[i..].starts_with('<') {
                return Err(at(offset + i).error("a raw `<` in text"));
            }
            let Some(semi) = rest[i..].find(';') else {
                return Err(at(offset + i).error("an `&` that starts no entity (write &amp;)"));
            };
            let entity = &rest[i + 1..i + semi];
            let decoded = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => {
                    if let Some(hex) = entity.strip_prefix("#x") {
                        u32::from_str_radix(hex, 16).ok().and_then(char::from_u32)
                    } else if let Some(decimal) = entity.strip_prefix('#') {
                        decimal.parse().ok().and_then(char::from_u32)
                    } else {
                        None
                    }
                }
            };
            match decoded {
                Some(c) => out.push(c),
                None => return Err(at(offset + i).error(format!("unknown entity `&{entity};`"))),
            }
            offset += i + semi + 1;
            rest = &rest[i + semi + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// Comments and whitespace, between the declaration, the root element and the end.
    fn skip_misc(&mut self) -> Result<(), String> {
        loop {
            self.skip_whitespace();
            if self.eat("<!--") {
                self.comment()?;
            } else {
                return Ok(());
            }
        }
    }

    fn comment(&mut self) -> Result<(), String> {
        let text = self.until("-->", "a comment")?;
        if text.contains("--") {
            return Err(self.error("`--` inside a comment"));
        }
        Ok(())
    }

    fn declaration(&mut self) -> Result<(), String> {
        if !self.eat("<?xml ") {
            return Err(self.error("the file does not start with an XML declaration (<?xml version=\"1.0\" ...?>)"));
        }
        let body = self.until("?>", "the XML declaration")?;
        if !body.contains("version=\"1.0\"") {
            return Err(self.error("the XML declaration does not say version=\"1.0\""));
        }
        if !body.to_ascii_lowercase().contains("encoding=\"utf-8\"") {
            return Err(self.error("the XML declaration does not say encoding=\"UTF-8\""));
        }
        Ok(())
    }

    fn element(&mut self) -> Result<Element, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(format!("elements nested deeper than {MAX_DEPTH}")));
        }
        self.expect("<")?;
        let name = self.name()?;
        let mut element = Element { name, attributes: Vec::new(), children: Vec::new(), text: String::new() };
        loop {
            let spaced = self.skip_whitespace();
            if self.eat("/>") {
                self.depth -= 1;
                return Ok(element);
            }
            if self.eat(">") {
                break;
            }
            if !spaced {
                return Err(self.error("expected whitespace, `>` or `/>` after the element name or an attribute"));
            }
            let attribute = self.name()?;
            self.skip_whitespace();
            self.expect("=")?;
            self.skip_whitespace();
            let quote = if self.eat("\"") {
                "\""
            } else if self.eat("'") {
                "'"
            } else {
                return Err(self.error("an attribute value must be quoted"));
            };
            let start = self.pos;
            let raw = self.until(quote, "an attribute value")?;
            let value = self.decode(raw, start)?;
            if element.attribute(&attribute).is_some() {
                return Err(self.error(format!("attribute `{attribute}` given twice")));
            }
            element.attributes.push((attribute, value));
        }
        loop {
            let tag_start = self.pos;
            if self.eat("</") {
                let closing = self.name()?;
                if closing != element.name {
                    self.pos = tag_start;
                    return Err(self.error(format!("`</{closing}>` closes `<{}>`", element.name)));
                }
                self.skip_whitespace();
                self.expect(">")?;
                break;
            } else if self.eat("<!--") {
                self.comment()?;
            } else if self.eat("<![CDATA[") {
                let text = self.until("]]>", "a CDATA section")?;
                element.text.push_str(text);
            } else if self.rest().starts_with("<!") || self.rest().starts_with("<?") {
                return Err(self.error("declarations and processing instructions are not expected inside elements"));
            } else if self.rest().starts_with('<') {
                let child = self.element()?;
                element.children.push(child);
            } else if self.rest().is_empty() {
                return Err(self.error(format!("the file ends inside `<{}>`", element.name)));
            } else {
                let start = self.pos;
                let end = self.rest().find('<').unwrap_or(self.rest().len());
                let raw = &self.rest()[..end];
                self.pos += end;
                let text = self.decode(raw, start)?;
                element.text.push_str(&text);
            }
        }
        if !element.children.is_empty() && !element.text.trim().is_empty() {
            return Err(self.error(format!("`<{}>` mixes text and elements", element.name)));
        }
        self.depth -= 1;
        Ok(element)
    }
}

/// Parses a whole document: the declaration, one root element, nothing but comments after it.
fn parse_xml(src: &str) -> Result<Element, String> {
    let mut parser = Parser { src, pos: 0, depth: 0 };
    if src.starts_with('\u{feff}') {
        parser.pos = '\u{feff}'.len_utf8();
    }
    parser.declaration()?;
    parser.skip_misc()?;
    let root = parser.element()?;
    parser.skip_misc()?;
    if !parser.rest().is_empty() {
        return Err(parser.error("content after the root element"));
    }
    Ok(root)
}

fn parse_file(path: &Path) -> Result<Element, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    parse_xml(&text).map_err(|e| format!("{}:{e}", path.display()))
}

#[test]
fn the_xml_checker_refuses_what_salesforce_would() {
    let ok = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n<A xmlns=\"x\">\n  <b>1 &amp; 2 &#x41;</b>\n  <c/>\n</A>\n";
    let root = parse_xml(ok).unwrap();
    assert_eq!(root.name, "A");
    assert_eq!(root.attribute("xmlns"), Some("x"));
    assert_eq!(root.child_text("b"), Some("1 & 2 A"));
    for (broken, expected) in [
        ("<A></A>", "XML declaration"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A><b></A>", "closes"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A><b>x</b>", "ends inside"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>a & b</A>", "starts no entity"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>&nbsp;</A>", "unknown entity"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A/><B/>", "after the root"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A x=1/>", "quoted"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A x=\"1\" x=\"2\"/>", "twice"),
        ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>text<b/></A>", "mixes"),
        ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<A/>", "UTF-8"),
    ] {
        let error = parse_xml(broken).expect_err(broken);
        assert!(error.contains(expected), "{broken:?}: {error}");
    }
    let error = parse_xml("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<A>\n  <b>\n</A>").unwrap_err();
    assert!(error.starts_with("4:1:"), "the error points at the closing tag: {error}");
}

// ---------------------------------------------------------------------------------------------

#[test]
fn sfdx_project_json_names_a_default_package_directory_that_exists() {
    let project = project();
    let dirs = project["packageDirectories"].as_array().expect("packageDirectories is an array");
    assert!(!dirs.is_empty(), "sfdx-project.json names no package directory");
    let defaults = dirs.iter().filter(|d| d["default"] == true).count();
    assert_eq!(defaults, 1, "exactly one package directory must be the default: {dirs:?}");
    for dir in dirs {
        let path = dir["path"].as_str().expect("every package directory has a path");
        assert!(
            !Path::new(path).is_absolute() && !path.split('/').any(|p| p == ".."),
            "package directory {path} must lie inside salesforce/"
        );
        assert!(salesforce_dir().join(path).is_dir(), "package directory salesforce/{path} does not exist");
    }
    let version = project["sourceApiVersion"].as_str().expect("sfdx-project.json: sourceApiVersion is a string");
    let major = version.strip_suffix(".0").and_then(|m| m.parse::<u32>().ok());
    assert!(major.is_some_and(|m| m >= 59), "sourceApiVersion {version:?} is not a version such as \"62.0\"");
}

/// Every file under the package directories, recursively.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A source file's metadata type and component name, as package.xml lists them: a custom
/// field is named after its object (`Case.Tier__c`), everything else after its file.
fn component(file: &Path) -> Option<(&'static str, String)> {
    let name = file.file_name()?.to_str()?;
    let (suffix, kind) = METADATA_TYPES.iter().find(|(suffix, _)| name.ends_with(suffix))?;
    let stem = name.strip_suffix(suffix)?;
    if *kind == "CustomField" {
        let object = file.parent()?.parent()?.file_name()?.to_str()?;
        Some((kind, format!("{object}.{stem}")))
    } else {
        Some((kind, stem.to_string()))
    }
}

fn metadata_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in package_directories() {
        files_under(&dir, &mut files);
    }
    files.retain(|f| f.to_string_lossy().ends_with("-meta.xml"));
    files.sort();
    files
}

/// What is wrong with a document of metadata type `kind` against its SCHEMAS entry: each
/// element the type does not document, each required one missing (or given twice), each
/// secret. `file` names the document in the messages.
fn schema_problems(file: &str, kind: &str, root: &Element) -> Vec<String> {
    let Some(schema) = SCHEMAS.iter().find(|s| s.kind == kind) else {
        return vec![format!("{file}: no element table for {kind} (add it to SCHEMAS)")];
    };
    let mut problems = Vec::new();
    let mut check = |element: &Element, allowed: &[&str], required: &[&str], at: &str| {
        for child in &element.children {
            if !allowed.contains(&child.name.as_str()) {
                problems.push(format!(
                    "{file}: <{}> is not an element of {at} (Metadata API reference: {})",
                    child.name, schema.doc
                ));
            }
            if SECRET_ELEMENTS.contains(&child.name.as_str()) {
                problems.push(format!(
                    "{file}: <{}> is a secret Salesforce makes at deploy time; it never belongs in the repository",
                    child.name
                ));
            }
        }
        for name in required {
            let count = element.children.iter().filter(|c| c.name == *name).count();
            if count != 1 {
                problems.push(format!(
                    "{file}: {at} requires one <{name}>, found {count} (Metadata API reference: {})",
                    schema.doc
                ));
            }
        }
    };
    check(root, schema.allowed, schema.required, kind);
    for (entry, allowed, required) in schema.entries {
        for element in root.children_named(entry) {
            check(element, allowed, required, &format!("{kind}'s <{entry}>"));
        }
    }
    problems
}

#[test]
fn the_schema_check_refuses_unknown_missing_and_secret_elements() {
    let doc = |body: &str| {
        parse_xml(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<X xmlns=\"{METADATA_NAMESPACE}\">{body}</X>\n"
        ))
        .unwrap()
    };
    let good = doc("<label>L</label><userPermissions><enabled>true</enabled><name>ApiEnabled</name></userPermissions>");
    assert_eq!(schema_problems("good.xml", "PermissionSet", &good), Vec::<String>::new());

    let typo = doc("<labl>L</labl>");
    let problems = schema_problems("bad.permissionset-meta.xml", "PermissionSet", &typo);
    assert!(
        problems.iter().any(|p| p.starts_with("bad.permissionset-meta.xml: <labl> is not an element of PermissionSet")),
        "{problems:?}"
    );
    assert!(problems.iter().any(|p| p.contains("requires one <label>, found 0")), "{problems:?}");

    let entry =
        doc("<label>L</label><objectPermissions><object>Case</object><allowRaed>true</allowRaed></objectPermissions>");
    let problems = schema_problems("e.xml", "PermissionSet", &entry);
    assert!(
        problems.iter().any(|p| p.contains("<allowRaed> is not an element of PermissionSet's <objectPermissions>"))
    );
    assert!(problems.iter().any(|p| p.contains("<objectPermissions> requires one <allowRead>")), "{problems:?}");

    let secret = doc("<externalClientApplication>A</externalClientApplication><consumerSecret>s</consumerSecret>");
    let problems = schema_problems("g.xml", "ExtlClntAppGlobalOauthSettings", &secret);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("<consumerSecret> is a secret"), "{problems:?}");

    let policies = doc("<externalClientApplication>A</externalClientApplication>");
    let problems = schema_problems("p.xml", "ExtlClntAppConfigurablePolicies", &policies);
    assert!(problems.iter().any(|p| p.contains("requires one <isEnabled>, found 0")), "{problems:?}");

    assert!(schema_problems("u.xml", "Nope", &policies)[0].contains("no element table for Nope"));
    for (_, kind) in METADATA_TYPES {
        assert!(
            *kind == "CustomObject" || SCHEMAS.iter().any(|s| s.kind == *kind),
            "{kind}: every metadata type casebridge ships has an element table"
        );
    }
}

#[test]
fn every_metadata_file_is_well_formed_xml_of_its_type() {
    let files = metadata_files();
    assert!(files.iter().any(|f| *f == permission_set_path()), "{} is missing", permission_set_path().display());
    let mut problems = String::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let Some((suffix, kind)) = METADATA_TYPES.iter().find(|(suffix, _)| name.ends_with(suffix)) else {
            writeln!(
                problems,
                "{}: a metadata type this test does not know (add it to METADATA_TYPES)",
                file.display()
            )
            .unwrap();
            continue;
        };
        let root = match parse_file(file) {
            Ok(root) => root,
            Err(e) => {
                writeln!(problems, "{e}").unwrap();
                continue;
            }
        };
        if root.name != *kind {
            writeln!(problems, "{}: the root element is <{}>, not <{kind}>", file.display(), root.name).unwrap();
        }
        for problem in schema_problems(&file.display().to_string(), kind, &root) {
            writeln!(problems, "{problem}").unwrap();
        }
        if root.attribute("xmlns") != Some(METADATA_NAMESPACE) {
            writeln!(problems, "{}: the root element must declare xmlns=\"{METADATA_NAMESPACE}\"", file.display())
                .unwrap();
        }
        // A source-format component's name is its file name; a fullName inside must agree.
        let stem = name.strip_suffix(suffix).unwrap_or_default();
        if let Some(full_name) = root.child_text("fullName")
            && full_name != stem
        {
            writeln!(problems, "{}: fullName {full_name} is not the file's name {stem}", file.display()).unwrap();
        }
    }
    assert!(problems.is_empty(), "malformed metadata:\n{problems}");
}

#[test]
fn topics_are_enabled_for_case() {
    let path = default_package_directory().join("main/default/topicsForObjects/Case.topicsForObjects-meta.xml");
    let root = parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(root.child_text("entityApiName"), Some("Case"));
    assert!(boolean(&root, "enableTopics"), "casebridge assigns topics to cases: enableTopics must be true");
}

fn boolean(element: &Element, field: &str) -> bool {
    match element.child_text(field) {
        Some("true") => true,
        Some("false") => false,
        other => panic!("<{}>: <{field}> must appear once, true or false, not {other:?}", element.name),
    }
}

/// The object permissions a permission set grants: (object, read, create, edit), after
/// checking each entry never grants delete, View All or Modify All.
fn object_grants(path: &Path) -> Vec<(String, bool, bool, bool)> {
    let root = parse_file(path).unwrap_or_else(|e| panic!("{e}"));
    for child in &root.children {
        assert!(
            PERMISSION_SET_ELEMENTS.contains(&child.name.as_str()),
            "{}: <{}> is not an element casebridge's permission sets hold",
            path.display(),
            child.name
        );
    }
    let label = root.child_text("label").expect("a permission set has one label");
    assert!(!label.is_empty() && label.chars().count() <= 80, "label {label:?}: 1 to 80 characters");
    let description = root.child_text("description").expect("a permission set has one description");
    assert!(description.chars().count() <= 255, "the description is longer than Salesforce's 255 characters");
    assert!(!boolean(&root, "hasActivationRequired"), "the agent user's permissions must not need session activation");
    assert!(root.child_text("license").is_none(), "no license: the permission set must fit the agent user's own");
    let mut granted = Vec::new();
    for p in root.children_named("objectPermissions") {
        let object = p.child_text("object").expect("every objectPermissions names one object").to_string();
        if let Some((_, why)) = NOT_GRANTABLE.iter().find(|(o, _)| *o == object) {
            panic!("objectPermissions names {object}, which a permission set cannot grant: {why}");
        }
        let (read, create, edit) = (boolean(p, "allowRead"), boolean(p, "allowCreate"), boolean(p, "allowEdit"));
        assert!(read || !(create || edit), "{object}: create and edit need read");
        assert!(!boolean(p, "allowDelete"), "{object}: casebridge never deletes records");
        assert!(
            !boolean(p, "viewAllRecords") && !boolean(p, "modifyAllRecords"),
            "{object}: View All and Modify All are more than the agent user needs"
        );
        granted.push((object, read, create, edit));
    }
    granted
}

#[test]
fn the_agent_permission_set_grants_only_what_casebridge_needs() {
    let mut granted: Vec<(String, bool, bool, bool, &str)> = Vec::new();
    for (set, path) in
        [(PERMISSION_SET, permission_set_path()), (KNOWLEDGE_PERMISSION_SET, knowledge_permission_set_path())]
    {
        for (object, r, c, e) in object_grants(&path) {
            assert!(!granted.iter().any(|g| g.0 == object), "{object} is granted twice");
            granted.push((object, r, c, e, set));
        }
    }
    for grant in OBJECT_GRANTS {
        let found = granted.iter().find(|g| g.0 == grant.object);
        assert_eq!(
            found.map(|g| (g.1, g.2, g.3, g.4)),
            Some((grant.read, grant.create, grant.edit, grant.permission_set)),
            "{}: casebridge needs read {}, create {}, edit {} in {} ({})",
            grant.object,
            grant.read,
            grant.create,
            grant.edit,
            grant.permission_set,
            grant.used_by
        );
    }
    for (object, ..) in &granted {
        assert!(
            OBJECT_GRANTS.iter().any(|g| g.object == object),
            "{object} is granted, but casebridge does not use it (OBJECT_GRANTS)"
        );
    }

    let root = parse_file(&permission_set_path()).unwrap_or_else(|e| panic!("{e}"));
    let mut permissions = Vec::new();
    for p in root.children_named("userPermissions") {
        let name = p.child_text("name").expect("every userPermissions has one name");
        assert!(USER_PERMISSIONS.contains(&name), "user permission {name} is not one casebridge needs");
        assert!(boolean(p, "enabled"), "user permission {name} is listed but not enabled");
        permissions.push(name);
    }
    for needed in USER_PERMISSIONS {
        assert!(permissions.contains(needed), "the permission set lacks the {needed} user permission");
    }

    let mut fields = Vec::new();
    for p in root.children_named("fieldPermissions") {
        let field = p.child_text("field").expect("every fieldPermissions names one field");
        assert!(FIELD_GRANTS.contains(&field), "fieldPermissions on {field}: not a field casebridge uses");
        assert!(
            boolean(p, "readable") && boolean(p, "editable"),
            "{field}: casebridge writes it: readable and editable"
        );
        assert!(!fields.contains(&field), "{field} has two fieldPermissions");
        fields.push(field);
    }
    for needed in FIELD_GRANTS {
        assert!(fields.contains(needed), "the permission set lacks editable field permissions on {needed}");
    }
    // Every custom field shipped is one of them (Activity's as Task's).
    for file in metadata_files() {
        if let Some(("CustomField", name)) = component(&file) {
            let name = name.replace("Activity.", "Task.");
            assert!(
                FIELD_GRANTS.contains(&name.as_str()),
                "{name} is shipped: add it to FIELD_GRANTS and the permission set"
            );
        }
    }
}

/// Splits a call's arguments (the text after its opening parenthesis) at top-level commas, up
/// to the closing parenthesis; string literals are kept whole.
fn call_arguments(text: &str) -> Vec<String> {
    let (mut args, mut current, mut depth, mut in_string, mut escaped) = (Vec::new(), String::new(), 0, false, false);
    for c in text.chars() {
        if in_string {
            current.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' if depth == 0 => break,
            ')' | ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => args.push(std::mem::take(&mut current).trim().to_string()),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        args.push(current.trim().to_string());
    }
    args
}

/// The sObject named by a string literal argument (`"Case"`), if it is one.
fn literal_object(arg: &str) -> Option<String> {
    let name = arg.strip_prefix('"')?.strip_suffix('"')?;
    let ok = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    ok.then(|| CHILD_RELATIONSHIPS.iter().find(|(r, _)| *r == name).map_or(name, |(_, o)| o).to_string())
}

/// The sObjects a piece of Rust source names as literals in queries (`Select::new(fields,
/// "Case")`, child queries included), composite writes (`SubRequest::create(ref, "Topic",
/// ...)`), describes and upserts (`object: "Task".into()`).
fn objects_named_in(source: &str) -> BTreeSet<String> {
    let mut objects = BTreeSet::new();
    for (call, position) in
        [("Select::new(", usize::MAX), ("SubRequest::create(", 1), ("SubRequest::update(", 1), ("describe(", 0)]
    {
        for (at, _) in source.match_indices(call) {
            let args = call_arguments(&source[at + call.len()..]);
            let arg = if position == usize::MAX { args.last() } else { args.get(position) };
            objects.extend(arg.and_then(|a| literal_object(a)));
        }
    }
    for (at, _) in source.match_indices("object: \"") {
        let rest = &source[at + "object: ".len()..];
        let end = rest[1..].find('"').map_or(0, |e| e + 2);
        objects.extend(literal_object(&rest[..end]));
    }
    objects
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_object_the_code_uses_is_granted_or_governed_otherwise() {
    let sample = "let q = Select::new([\"Id\", \"Name\"], \"Lead\")\n.with_children(Select::new(fields::C.iter().copied(), \"CaseComments\"));\n\
                  SubRequest::create(\n  &r(0),\n  \"FeedItem\",\n  json!({ \"Body\": \"a, b\" }),\n);\nobject: \"Task\".into(), describe(\"Case\")";
    assert_eq!(
        objects_named_in(sample),
        ["Case", "CaseComment", "FeedItem", "Lead", "Task"].into_iter().map(String::from).collect::<BTreeSet<_>>()
    );
    let src = repo().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut used = BTreeSet::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        // The org simulator and the demo stand in for Salesforce; tests name made-up objects.
        if relative.starts_with("sim/") || relative.starts_with("demo/") || relative.ends_with("tests.rs") {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        used.extend(objects_named_in(code));
    }
    // Named in configuration, not as a literal: the Knowledge article version object (the
    // default of agent.salesforce_knowledge.object) and its articles.
    used.extend(["Knowledge__kav", "Knowledge__ka"].map(String::from));
    for expected in ["Case", "CaseComment", "EmailMessage", "Lead", "Opportunity", "Task", "TopicAssignment"] {
        assert!(used.contains(expected), "the scan of src/ no longer finds {expected}: {used:?}");
    }
    for object in &used {
        assert!(
            OBJECT_GRANTS.iter().any(|g| g.object == object) || NOT_GRANTABLE.iter().any(|(o, _)| o == object),
            "src/ reads or writes {object}: grant it in a permission set (OBJECT_GRANTS) or say what governs it \
             (NOT_GRANTABLE)"
        );
    }
}

#[test]
fn the_external_client_app_matches_what_casebridge_sends() {
    let dir = default_package_directory().join("main/default");
    let read = |path: &str| parse_file(&dir.join(path)).unwrap_or_else(|e| panic!("{e}"));
    let app = read("externalClientApps/Casebridge.eca-meta.xml");
    assert_eq!(app.child_text("distributionState"), Some("Local"), "the app lives in this org only");
    let oauth = read("extlClntAppOauthSettings/CasebridgeOAuthSettings.ecaOauth-meta.xml");
    let global = read("extlClntAppGlobalOauthSets/CasebridgeGlblOAuth.ecaGlblOauth-meta.xml");
    let policies = read("extlClntAppOauthPolicies/CasebridgeOAuthSettings_defaultPolicy.ecaOauthPlcy-meta.xml");
    let plugins = read("extlClntAppPolicies/Casebridge_defaultPolicy.ecaPlcy-meta.xml");
    for part in [&oauth, &global, &policies, &plugins] {
        assert_eq!(part.child_text("externalClientApplication"), Some("Casebridge"), "<{}> names the app", part.name);
    }

    // The scopes are the ones casebridge asks for (src/salesforce/auth.rs), in the Metadata
    // API's names: `api` is Api, `refresh_token` and `offline_access` are RefreshToken.
    let auth = fs::read_to_string(repo().join("src/salesforce/auth.rs")).unwrap();
    let scopes = auth
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub const SCOPES: &str = \"")?.strip_suffix("\";").map(str::to_string))
        .expect("src/salesforce/auth.rs defines SCOPES");
    let mut wanted: Vec<&str> = scopes
        .split(' ')
        .map(|s| match s {
            "api" => "Api",
            "refresh_token" | "offline_access" => "RefreshToken",
            other => panic!("scope {other}: add its Metadata API name here"),
        })
        .collect();
    wanted.dedup();
    let shipped: Vec<&str> = oauth
        .child_text("commaSeparatedOauthScopes")
        .expect("the app names its scopes")
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(shipped, wanted, "the app's scopes are exactly casebridge's");

    // The callback is where `casebridge auth login` listens by default (src/cli/args.rs).
    let args = fs::read_to_string(repo().join("src/cli/args.rs")).unwrap();
    let lines: Vec<&str> = args.lines().map(str::trim).collect();
    let at = lines.iter().position(|l| *l == "callback: SocketAddr,").expect("auth login has a callback argument");
    let default = lines[..at]
        .iter()
        .rev()
        .find_map(|l| l.split("default_value = \"").nth(1)?.split('"').next())
        .expect("the callback argument has a default");
    assert_eq!(global.child_text("callbackUrl"), Some(format!("http://{default}/callback").as_str()));
    assert!(boolean(&global, "isPkceRequired"), "auth login sends a PKCE challenge: require it");
    assert!(!boolean(&global, "isConsumerSecretOptional"), "casebridge sends the secret in the web-server flow");
    assert!(boolean(&global, "isSecretRequiredForRefreshToken"), "casebridge sends the secret when it refreshes");
    assert!(
        boolean(&global, "isRefreshTokenRotationEnabled"),
        "casebridge keeps a rotated refresh token (tests/token_rotation.rs): a stolen one then works once at most"
    );

    assert_eq!(policies.child_text("permittedUsersPolicyType"), Some("AdminApprovedPreAuthorized"));
    assert_eq!(policies.child_text("refreshTokenPolicyType"), Some("Infinite"), "casebridge runs unattended");
    assert_eq!(policies.child_text("ipRelaxationPolicyType"), Some("Enforce"));
    assert!(boolean(&plugins, "isEnabled") && boolean(&plugins, "isOauthPluginEnabled"));
}

/// The `field:` of every outbound mapping in a mappings file (block-style YAML, as the shipped
/// files are written).
fn outbound_fields(yaml: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut outbound_indent = None;
    for line in yaml.lines() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if let Some(key_indent) = outbound_indent
            && (indent < key_indent || (indent == key_indent && !trimmed.starts_with('-')))
        {
            outbound_indent = None;
        }
        if let Some(rest) = trimmed.strip_prefix("outbound:") {
            let rest = rest.trim();
            assert!(
                rest.is_empty() || rest == "[]",
                "write outbound mappings as a block list so this test can read them: {line}"
            );
            outbound_indent = Some(indent);
            continue;
        }
        if outbound_indent.is_some()
            && let Some(field) = trimmed.trim_start_matches("- ").strip_prefix("field:")
        {
            fields.push(field.trim().trim_matches(['"', '\'']).to_string());
        }
    }
    fields
}

#[test]
fn every_custom_case_field_the_shipped_rules_write_is_shipped_with_field_permissions() {
    assert_eq!(
        outbound_fields(
            "kind: mappings\noutbound:\n  - field: Tier__c\n    from: tier\n  - from: x\n    field: Status\ninbound: []\n"
        ),
        ["Tier__c", "Status"]
    );
    let permission_set = parse_file(&permission_set_path()).unwrap_or_else(|e| panic!("{e}"));
    let rules = repo().join("rules");
    let mut checked = 0;
    for entry in fs::read_dir(&rules).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let yaml = fs::read_to_string(&path).unwrap();
        if !yaml.lines().any(|l| l.trim() == "kind: mappings") {
            continue;
        }
        checked += 1;
        for field in outbound_fields(&yaml).into_iter().filter(|f| f.ends_with("__c")) {
            let metadata =
                default_package_directory().join(format!("main/default/objects/Case/fields/{field}.field-meta.xml"));
            assert!(metadata.is_file(), "{} writes Case.{field}: ship it as {}", path.display(), metadata.display());
            let qualified = format!("Case.{field}");
            let editable = permission_set
                .children_named("fieldPermissions")
                .any(|p| p.child_text("field") == Some(qualified.as_str()) && boolean(p, "editable"));
            assert!(editable, "{} writes Case.{field}: the permission set must make it editable", path.display());
        }
    }
    assert!(checked > 0, "no mappings file found in {}", rules.display());
}

// ---------------------------------------------------------------------------------------------
// The Salesforce CLI's own conversion, offline.

fn on_path(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        use std::os::unix::fs::PermissionsExt as _;
        candidate.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// Copies a folder, leaving out the CLI's local state (`.sf`, `.sfdx`).
fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == ".sf" || name == ".sfdx" {
            continue;
        }
        let target = to.join(&name);
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn the_salesforce_cli_converts_the_metadata_offline() {
    let Some(sf) = on_path("sf") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "the Salesforce CLI (`sf`) is not on PATH, and CI is set: CI must install it (.ci/run \
             does, with npm)"
        );
        // Straight to the terminal, past the test harness's capture, so the skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "salesforce_metadata: `sf` is not on PATH; skipped `sf project convert source` \
             (.ci/run shows how to install it with npm)"
        );
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let project = scratch.path().join("salesforce");
    copy_dir(&salesforce_dir(), &project);
    let output_dir = scratch.path().join("mdapi");
    let log_path = scratch.path().join("sf.log");
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new(&sf)
        .args(["project", "convert", "source", "--output-dir"])
        .arg(&output_dir)
        // Every package directory: the default one and the Knowledge permission set's.
        .args(package_directories().iter().flat_map(|d| {
            ["--source-dir".to_string(), d.strip_prefix(salesforce_dir()).unwrap().to_string_lossy().into_owned()]
        }))
        .current_dir(&project)
        // Nothing but the conversion: no telemetry, no update check or self-update, no colour.
        .env("SF_DISABLE_TELEMETRY", "true")
        .env("SF_AUTOUPDATE_DISABLE", "true")
        .env("SF_DISABLE_AUTOUPDATE", "true")
        .env("SF_SKIP_NEW_VERSION_CHECK", "true")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", sf.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CLI_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`sf project convert source` ran longer than {CLI_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "`sf project convert source` failed ({status}); if the CLI itself crashed, check that it \
         supports this Node.js version:\n{output}"
    );

    let manifest = parse_file(&output_dir.join("package.xml")).unwrap_or_else(|e| panic!("{e}\n{output}"));
    assert_eq!(manifest.name, "Package");
    assert_eq!(manifest.attribute("xmlns"), Some(METADATA_NAMESPACE));
    let members = |kind: &str| -> Vec<String> {
        let mut members: Vec<String> = manifest
            .children_named("types")
            .filter(|t| t.child_text("name") == Some(kind))
            .flat_map(|t| t.children_named("members"))
            .map(|m| m.text.trim().to_string())
            .collect();
        members.sort();
        members
    };
    let mut shipped: Vec<(&str, String)> = metadata_files().iter().filter_map(|f| component(f.as_path())).collect();
    shipped.sort();
    shipped.dedup();
    let mut kinds: Vec<&str> = shipped.iter().map(|(kind, _)| *kind).collect();
    kinds.dedup();
    for kind in kinds {
        let expected: Vec<String> = shipped.iter().filter(|(k, _)| *k == kind).map(|(_, name)| name.clone()).collect();
        assert_eq!(members(kind), expected, "package.xml's {kind} members are the shipped {kind} components");
    }
    for listed in manifest.children_named("types").filter_map(|t| t.child_text("name")) {
        assert!(
            shipped.iter().any(|(kind, _)| *kind == listed),
            "package.xml lists {listed}, which salesforce/ does not ship"
        );
    }
    assert_eq!(
        members("PermissionSet"),
        [PERMISSION_SET, KNOWLEDGE_PERMISSION_SET],
        "package.xml:\n{}",
        fs::read_to_string(output_dir.join("package.xml")).unwrap()
    );
    assert_eq!(
        manifest.child_text("version"),
        project_version().as_deref(),
        "package.xml's version is sfdx-project.json's sourceApiVersion"
    );
    let converted = output_dir.join(format!("permissionsets/{PERMISSION_SET}.permissionset"));
    let converted = parse_file(&converted).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(converted.name, "PermissionSet");
}

fn project_version() -> Option<String> {
    project()["sourceApiVersion"].as_str().map(str::to_string)
}
