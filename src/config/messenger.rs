//! The `messenger` section: the web messenger's own listener, who may embed it (origins),
//! identity verification, and the caps and rate limits that keep abuse out of the store.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::SecretRef;

/// The most characters a `max_message_chars` may allow (a Case's `Description` holds 32,000).
pub const MAX_MESSAGE_CHARS_MAX: usize = 32_000;
/// The most messages a rate limit may allow a minute.
pub const RATE_MAX: u32 = 10_000;

/// The web messenger: a chat widget for the company's website whose conversations the same
/// rules and agent answer, and which become Salesforce Cases on handover.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessengerConfig {
    /// Where the widget (`/messenger.js`) and its API listen; separate from the admin server,
    /// since websites' visitors reach it.
    #[serde(default = "default_listen")]
    #[schemars(with = "String")]
    pub listen: std::net::SocketAddr,
    /// The websites that may embed the widget (`https://www.acme.example`): a browser
    /// request from any other origin is refused (403) and nothing is stored.
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// The secret the website shares with casebridge to vouch for a signed-in visitor's
    /// email (identity verification: `user_hash` = hex HMAC-SHA256 of the email). Only a
    /// verified email shows a visitor's Salesforce data or logs Tasks; an unverified one is
    /// looked up only to avoid a duplicate lead when `create_leads` is on.
    #[serde(default)]
    pub identity_secret: Option<SecretRef>,
    /// The longest message a visitor may send, in characters: 1 to 32,000.
    #[serde(default = "default_max_message_chars")]
    pub max_message_chars: usize,
    /// Messages one visitor (one conversation) may send a minute: 1 to 10,000.
    #[serde(default = "default_per_visitor")]
    pub per_visitor_per_minute: u32,
    /// Messages and new conversations one network address may send a minute: 1 to 10,000.
    #[serde(default = "default_per_address")]
    pub per_address_per_minute: u32,
    /// Whether the listener sits behind a reverse proxy that appends the visitor's address
    /// to `X-Forwarded-For`: the per-address limit then counts the last address there, not
    /// the proxy's. Leave it off without such a proxy, or visitors could pick their own.
    #[serde(default)]
    pub behind_proxy: bool,
    /// Whether a closing chat asks the visitor to rate it (CSAT, 1 to 5, with a comment).
    #[serde(default = "default_true")]
    pub ask_rating: bool,
    /// What the closing message says when it asks for the rating.
    #[serde(default = "default_rating_question")]
    pub rating_question: String,
    /// When the team answers (its time zone, days, hours and holidays, and how soon it
    /// usually replies): a visitor handed over is told when to expect a reply.
    #[serde(default)]
    pub office_hours: Option<super::office_hours::OfficeHours>,
    /// Added to the handover message while the team is in; `{within}` is `reply_within`.
    #[serde(default = "default_reply_time_message")]
    pub reply_time_message: String,
    /// Added to the handover message while it is away; `{back}` is when it is back
    /// (`Monday 09:00 (Europe/Paris)`).
    #[serde(default = "default_away_message")]
    pub away_message: String,
    /// What the visitor reads when the conversation is handed to a person.
    #[serde(default = "default_handover_message")]
    pub handover_message: String,
    /// The `Origin` of the cases messenger conversations become.
    #[serde(default = "default_case_origin")]
    pub case_origin: String,
    /// The record type of the cases chats become, by name or developer name (none: the
    /// org's default for the agent user).
    #[serde(default)]
    pub case_record_type: Option<String>,
    /// The long-text Case field that holds the transcript (the seed fixes it to Description).
    #[serde(default = "default_transcript_field")]
    pub transcript_field: String,
    /// Whether a visitor whose email matches no Contact and no Lead becomes a Lead (needs
    /// the `Casebridge_Conversation__c` External ID field on Lead).
    #[serde(default)]
    pub create_leads: bool,
    /// Whether a conversation with a verified contact or lead is logged as a Task (`WhoId`)
    /// when it starts and completed with its transcript when it closes (needs the
    /// `Casebridge_Conversation__c` External ID field on Activity).
    #[serde(default)]
    pub log_tasks: bool,
    /// The `LeadSource` of those leads.
    #[serde(default = "default_lead_source")]
    pub lead_source: String,
    /// Whether a handover to a user makes that user the owner of the conversation's Lead and
    /// Tasks too (a queue owns only the case: Tasks cannot belong to queues).
    #[serde(default)]
    pub owner_follows_assignee: bool,
    /// The widget's words in the visitors' languages (`fr: {title: Discutez avec nous}`):
    /// see `widget_texts.rs`.
    #[serde(default)]
    pub texts: std::collections::BTreeMap<String, super::widget_texts::WidgetTexts>,
}

impl Default for MessengerConfig {
    fn default() -> Self {
        MessengerConfig {
            listen: default_listen(),
            allowed_origins: Vec::new(),
            identity_secret: None,
            max_message_chars: default_max_message_chars(),
            per_visitor_per_minute: default_per_visitor(),
            per_address_per_minute: default_per_address(),
            behind_proxy: false,
            office_hours: None,
            reply_time_message: default_reply_time_message(),
            away_message: default_away_message(),
            ask_rating: true,
            rating_question: default_rating_question(),
            handover_message: default_handover_message(),
            case_origin: default_case_origin(),
            case_record_type: None,
            transcript_field: default_transcript_field(),
            create_leads: false,
            log_tasks: false,
            lead_source: default_lead_source(),
            owner_follows_assignee: false,
            texts: Default::default(),
        }
    }
}

fn default_listen() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], 9091))
}
fn default_max_message_chars() -> usize {
    4_000
}
fn default_per_visitor() -> u32 {
    20
}
fn default_per_address() -> u32 {
    60
}
fn default_reply_time_message() -> String {
    "We usually reply within {within}.".into()
}
fn default_away_message() -> String {
    "Our team is away now and back {back}; the reply will be here.".into()
}
fn default_true() -> bool {
    true
}
fn default_rating_question() -> String {
    "This conversation is closed. How did we do?".into()
}
fn default_handover_message() -> String {
    "I've passed this to our support team. Someone will reply here; you can keep writing in the meantime.".into()
}
fn default_case_origin() -> String {
    "Web".into()
}
fn default_transcript_field() -> String {
    "Description".into()
}
fn default_lead_source() -> String {
    "Web".into()
}

impl MessengerConfig {
    /// What is wrong with the section, setting by setting.
    pub(super) fn problems(&self, bad: &mut impl FnMut(&str, String)) {
        super::widget_texts::problems(&self.texts, bad);
        if let Some(Err(problems)) = self.office_hours.as_ref().map(super::office_hours::OfficeHours::schedule) {
            for (path, why) in problems {
                bad(&path, why);
            }
        }
        if !(1..=MAX_MESSAGE_CHARS_MAX).contains(&self.max_message_chars) {
            bad(
                "messenger.max_message_chars",
                format!("1 to {MAX_MESSAGE_CHARS_MAX}, found {}", self.max_message_chars),
            );
        }
        for (path, value) in [
            ("messenger.per_visitor_per_minute", self.per_visitor_per_minute),
            ("messenger.per_address_per_minute", self.per_address_per_minute),
        ] {
            if !(1..=RATE_MAX).contains(&value) {
                bad(path, format!("1 to {RATE_MAX}, found {value}"));
            }
        }
        for (i, origin) in self.allowed_origins.iter().enumerate() {
            if let Err(p) = check_origin(origin) {
                bad(&format!("messenger.allowed_origins[{i}]"), p);
            }
        }
        if self.handover_message.trim().is_empty() || self.handover_message.chars().count() > 2_000 {
            bad("messenger.handover_message", "1 to 2,000 characters".into());
        }
        if self.case_origin.trim().is_empty() || self.case_origin.chars().count() > 40 {
            bad("messenger.case_origin", "a Case Origin picklist value, 1 to 40 characters".into());
        }
        if !crate::salesforce::soql::is_name(&self.transcript_field) {
            bad("messenger.transcript_field", format!("a Case field's API name, found {:?}", self.transcript_field));
        }
        if self.case_record_type.as_ref().is_some_and(|r| r.trim().is_empty() || r.chars().count() > 80) {
            bad("messenger.case_record_type", "a record type's name, 1 to 80 characters".into());
        }
        if self.lead_source.trim().is_empty() || self.lead_source.chars().count() > 40 {
            bad("messenger.lead_source", "a Lead Source picklist value, 1 to 40 characters".into());
        }
        if let Some(s) = &self.identity_secret {
            super::check::secret(bad, "messenger.identity_secret", s);
        }
    }
}

/// An origin as browsers send it: scheme, host and optional port, nothing else.
fn check_origin(origin: &str) -> Result<(), String> {
    let url =
        url::Url::parse(origin).map_err(|e| format!("expected an origin such as https://www.acme.example: {e}"))?;
    let bare = matches!(url.scheme(), "http" | "https")
        && url.host().is_some()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none()
        && url.username().is_empty()
        && !origin.ends_with('/');
    if bare {
        Ok(())
    } else {
        Err(format!("expected an origin such as https://www.acme.example (scheme and host, no path), found {origin:?}"))
    }
}
