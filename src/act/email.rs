//! Sending replies to email-origin cases over SMTP (lettre), threaded under the customer's
//! message (`In-Reply-To`, `References`) with our own stable `Message-ID`, so that a resend
//! after a crash carries the same id and mail clients can fold duplicates.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::model::OutgoingEmail;
use crate::model::Secret;

/// How to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub timeout: Duration,
    /// The sender of replies (`Acme Support <support@acme.example>`).
    pub from: String,
}

/// How the SMTP connection is secured (a setting: it lives with the configuration).
pub use crate::config::SmtpSecurity;

#[derive(Debug, thiserror::Error)]
pub enum EmailError {
    #[error("invalid email address {address:?}: {reason}")]
    Address { address: String, reason: String },
    #[error("cannot build the email: {0}")]
    Build(String),
    #[error("the SMTP server refused or failed: {message}")]
    Smtp { message: String, permanent: bool },
}

impl EmailError {
    pub fn is_transient(&self) -> bool {
        matches!(self, EmailError::Smtp { permanent: false, .. })
    }
}

/// An SMTP client.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: String,
}

impl Mailer {
    pub fn new(settings: &SmtpSettings) -> Result<Mailer, EmailError> {
        let builder = match settings.security {
            SmtpSecurity::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&settings.host),
            SmtpSecurity::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&settings.host)
                .map_err(|e| EmailError::Build(e.to_string()))?,
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&settings.host)
                .map_err(|e| EmailError::Build(e.to_string()))?,
        };
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        if let (Some(user), Some(password)) = (&settings.username, &settings.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        Ok(Mailer { transport: builder.build(), from: settings.from.clone() })
    }

    /// The configured sender, for replies decided while no SMTP server was configured.
    pub fn from(&self) -> &str {
        &self.from
    }

    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), EmailError> {
        let message = build_message(email)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| EmailError::Smtp { permanent: e.is_permanent(), message: e.to_string() })
    }
}

fn mailbox(address: &str) -> Result<Mailbox, EmailError> {
    address.parse().map_err(|e: lettre::address::AddressError| EmailError::Address {
        address: address.to_string(),
        reason: e.to_string(),
    })
}

/// The MIME message for an outgoing email: text, plus HTML as an alternative when given.
pub fn build_message(email: &OutgoingEmail) -> Result<Message, EmailError> {
    let mut builder = Message::builder()
        .from(mailbox(&email.from)?)
        .to(mailbox(&email.to)?)
        .subject(email.subject.clone())
        .message_id(Some(email.message_id.clone()));
    if let Some(parent) = &email.in_reply_to {
        builder = builder.in_reply_to(parent.clone());
    }
    if !email.references.is_empty() {
        builder = builder.references(email.references.join(" "));
    }
    let result = match &email.html {
        Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.text.clone(), html.clone())),
        None => builder.header(header::ContentType::TEXT_PLAIN).body(email.text.clone()),
    };
    result.map_err(|e| EmailError::Build(e.to_string()))
}

/// A Message-ID for a reply: unique, and stable for the action that carries it.
pub fn new_message_id(domain: &str) -> String {
    use rand::Rng;
    let token: String = rand::rng().sample_iter(rand::distr::Alphanumeric).take(24).map(char::from).collect();
    format!("<casebridge.{token}@{domain}>")
}
