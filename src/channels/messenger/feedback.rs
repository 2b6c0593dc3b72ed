//! What a visitor gives besides messages: a rating of the conversation (CSAT) and, when
//! they were anonymous at a handover, an email to be reached by. Both are checked, kept
//! with the conversation in one write, and counted or acted on by the daemon (a rating
//! goes onto the chat's case through the `on: [rating]` mappings).

use chrono::Utc;

use super::{EMAIL_MAX_CHARS, Messenger, MessengerError, is_email, lock};

impl Messenger {
    /// The visitor rates the conversation (CSAT): 1 to 5, with an optional comment of at
    /// most [`crate::model::CSAT_COMMENT_MAX_CHARS`]; open or closed, a later rating replaces
    /// an earlier one.
    pub fn rate(
        &self,
        id: &str,
        token: Option<&str>,
        rating: u8,
        comment: Option<&str>,
        address: &str,
    ) -> Result<crate::model::Csat, MessengerError> {
        self.authorise(id, token)?;
        if !(1..=5).contains(&rating) {
            return Err(MessengerError::Invalid(format!("rating: 1 to 5, found {rating}")));
        }
        let comment = comment.map(str::trim).filter(|c| !c.is_empty());
        if let Some(c) = comment
            && c.chars().count() > crate::model::CSAT_COMMENT_MAX_CHARS
        {
            return Err(MessengerError::TooLong { max: crate::model::CSAT_COMMENT_MAX_CHARS });
        }
        if !self.per_visitor.allow(id) || !self.per_address.allow(address) {
            return Err(MessengerError::RateLimited);
        }
        let _write = lock(&self.writes);
        let mut conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
        let now = Utc::now();
        let csat = crate::model::Csat { rating, comment: comment.map(str::to_string), at: now, mapped: false };
        conv.csat = Some(csat.clone());
        // Due, so that the daemon writes it onto the chat's case (`on: [rating]` mappings);
        // a chat already due later (an agent backing off) keeps its time.
        conv.retry_at.get_or_insert(now);
        self.store.commit(&conv, Vec::new())?;
        if let Some(count) = self.on_rating.get() {
            count(rating);
        }
        self.wake.notify_one();
        Ok(csat)
    }

    /// An anonymous visitor leaves an email to be reached by: kept unverified (it shows
    /// nothing of the org), and the conversation made due, so that the daemon matches it or
    /// makes the visitor's Lead as for an email written in a message. A visitor with an
    /// email already keeps theirs.
    pub fn leave_email(
        &self,
        id: &str,
        token: Option<&str>,
        email: &str,
        address: &str,
    ) -> Result<String, MessengerError> {
        self.authorise(id, token)?;
        let email = email.trim().to_lowercase();
        if email.chars().count() > EMAIL_MAX_CHARS || !is_email(&email) {
            return Err(MessengerError::Invalid(format!(
                "email: an address such as name@example.com, of at most {EMAIL_MAX_CHARS} characters"
            )));
        }
        if !self.per_visitor.allow(id) || !self.per_address.allow(address) {
            return Err(MessengerError::RateLimited);
        }
        {
            let _write = lock(&self.writes);
            let mut conv = self.store.conversation(id)?.ok_or(MessengerError::NotFound)?;
            let Some(info) = conv.messenger.as_mut() else { return Err(MessengerError::NotFound) };
            if let Some(known) = &info.visitor.email {
                return Err(MessengerError::Invalid(format!("this conversation already has an email ({known})")));
            }
            info.visitor.email = Some(email.clone());
            conv.customer_email = Some(email.clone());
            let now = Utc::now();
            conv.retry_at = Some(conv.retry_at.map_or(now, |at| at.min(now)));
            self.store.commit(&conv, Vec::new())?;
        }
        self.wake.notify_one();
        Ok(email)
    }
}
