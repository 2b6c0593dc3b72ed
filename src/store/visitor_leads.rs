//! One Lead per visitor email: the index from an email (as the org matches it) to the
//! conversation whose id keys the Lead made for it. A conversation claims an email in the
//! same transaction that queues its Lead, and the store refuses a second claim, so two
//! chats that give the same new email (in one round, or before Salesforce has made the
//! first Lead) share one Lead instead of making two.

use super::kv::{TxError, TxTree};
use super::{Result, Store};
use crate::model::Conversation;
use crate::model::visitor::email_key;

/// The email a commit of `conversation` claims: its own when it queued the visitor's Lead
/// keyed by its own id.
pub(super) fn claimed_email(conversation: &Conversation) -> Option<String> {
    let info = conversation.messenger.as_ref()?;
    info.lead.made_here().then(|| info.visitor.email.as_deref().map(email_key)).flatten()
}

/// Records `conversation_id`'s claim of `email`, inside the commit's transaction; aborts
/// with the claimant's id when another conversation claimed it first. A conversation that
/// held the claim before this commit keeps it (its record says so), whatever its email
/// became since.
pub(super) fn claim(
    index: &TxTree<'_>,
    email: &str,
    conversation_id: &str,
    previous: Option<&[u8]>,
) -> std::result::Result<(), TxError<String>> {
    match index.get(email.as_bytes())? {
        None => {
            index.insert(email.as_bytes(), conversation_id.as_bytes())?;
        }
        Some(owner) if owner == conversation_id.as_bytes() => {}
        Some(owner) => {
            // Held before this commit: its record says it made its own Lead (records from
            // before the index may share an email with another such; both stand).
            let held = previous
                .and_then(|p| serde_json::from_slice::<Conversation>(p).ok())
                .and_then(|p| p.messenger)
                .is_some_and(|m| m.lead.made_here());
            if !held {
                return Err(TxError::Abort(String::from_utf8_lossy(&owner).into_owned()));
            }
        }
    }
    Ok(())
}

impl Store {
    /// The conversation whose id keys the Lead made for `email`, when one was queued.
    pub fn visitor_lead(&self, email: &str) -> Result<Option<String>> {
        let owner = self.visitor_leads.get(email_key(email).as_bytes())?;
        Ok(owner.map(|o| String::from_utf8_lossy(&o).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::visitor::{MessengerInfo, Visitor};
    use crate::model::{Channel, ChatLead, Conversation};
    use crate::store::{Store, StoreError};

    fn chat(id: &str, email: &str) -> Conversation {
        let row = serde_json::json!({
            "Id": id, "CaseNumber": "", "Subject": "s", "CreatedDate": "2026-01-01T10:00:00.000+0000",
            "SystemModstamp": "2026-01-01T10:00:00.000+0000", "OwnerId": "005000000000001AAA"
        });
        let authors = crate::channels::cases::build::Authors { agent_user_id: "005000000000001AAA" };
        let mut conv = crate::channels::cases::build::from_case_row(&row, &authors).unwrap();
        conv.channel = Channel::Messenger;
        let visitor = Visitor { email: Some(email.into()), ..Visitor::default() };
        conv.messenger = Some(MessengerInfo { visitor, ..MessengerInfo::default() });
        conv
    }

    fn queue_lead(conv: &mut Conversation, key: &str) {
        let info = conv.messenger.as_mut().unwrap();
        info.lead = match key == conv.id {
            true => ChatLead::Made { task_pending: false },
            false => ChatLead::Shared { key: key.into(), task_pending: false },
        };
    }

    #[test]
    fn a_second_chat_cannot_queue_a_lead_for_an_email_one_was_queued_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        let mut first = chat("m-first", "sam@newco.example");
        store.commit(&first, Vec::new()).unwrap();
        assert_eq!(store.visitor_lead("sam@newco.example").unwrap(), None, "no Lead queued, no claim");
        queue_lead(&mut first, "m-first");
        store.commit(&first, Vec::new()).unwrap();
        let mut second = chat("m-second", " SAM@NewCo.example ");
        queue_lead(&mut second, "m-second");
        match store.commit(&second, Vec::new()) {
            Err(StoreError::LeadClaimed { claimant }) => assert_eq!(claimant, "m-first"),
            other => panic!("expected the claim refused, got {other:?}"),
        }
        assert!(store.conversation("m-second").unwrap().is_none(), "nothing of the refused commit is kept");
        // Sharing the first chat's Lead is what it may do; the claimant commits again freely,
        // even after its visitor's email changed.
        queue_lead(&mut second, "m-first");
        store.commit(&second, Vec::new()).unwrap();
        first.messenger.as_mut().unwrap().visitor.email = Some("other@newco.example".into());
        store.commit(&first, Vec::new()).unwrap();
        drop(store);
        let store = crate::store::tests::reopen(&dir.path().join("s"));
        assert_eq!(store.visitor_lead("Sam@newco.example").unwrap().as_deref(), Some("m-first"), "durable");
    }

    #[test]
    fn chats_from_before_lead_keys_claim_their_email_and_two_such_both_stand() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s")).unwrap();
        // The old defect's two Leads for one email, stored before keys were kept.
        let mut old = [chat("m-old1", "kim@newco.example"), chat("m-old2", "kim@newco.example")];
        for conv in &mut old {
            conv.messenger.as_mut().unwrap().lead = ChatLead::Made { task_pending: false };
            store.conversations.insert(conv.id.as_bytes(), serde_json::to_vec(&*conv).unwrap()).unwrap();
        }
        assert_eq!(store.visitor_lead("kim@newco.example").unwrap(), None, "not indexed then");
        for conv in &old {
            store.commit(conv, Vec::new()).expect("each keeps committing");
        }
        assert_eq!(store.visitor_lead("kim@newco.example").unwrap().as_deref(), Some("m-old1"), "claimed on commit");
        let mut new = chat("m-new", "kim@newco.example");
        queue_lead(&mut new, "m-new");
        assert!(matches!(store.commit(&new, Vec::new()), Err(StoreError::LeadClaimed { .. })));
    }
}
