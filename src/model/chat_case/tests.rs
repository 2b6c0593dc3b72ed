//! The lifecycle's merge, checked over every interleaving of a few writes: the daemon's
//! transitions (each made on a copy read at some earlier point, committed later) and the
//! hub's own writes (a person linking a case by hand, a visitor's message).

use chrono::{DateTime, TimeZone, Utc};

use super::{CaseStatus, ChatCase};

#[derive(Debug, Clone, Copy)]
enum Write {
    /// The hub, under its lock: a person links a case made by hand.
    LinkByHand,
    /// The hub: a visitor's message (the case as stored, untouched).
    VisitorMessage,
    /// The daemon, on a copy read earlier: a case queued.
    Queue,
    /// The daemon: the case read back at second `n`, open or closed.
    Read(i64, bool),
    /// The daemon closes the case with the chat.
    CloseByRule,
    /// The daemon queues a write that reopens the case.
    Reopen,
}

const WRITES: [Write; 7] = [
    Write::LinkByHand,
    Write::VisitorMessage,
    Write::Queue,
    Write::Read(1, false),
    Write::Read(2, true),
    Write::CloseByRule,
    Write::Reopen,
];

fn at(second: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
}

fn transition(case: ChatCase, write: Write) -> ChatCase {
    match write {
        Write::LinkByHand => case.linked("500HAND".into()),
        Write::VisitorMessage => case,
        Write::Queue => case.queued(),
        Write::Read(n, closed) => case.read("500READ".into(), format!("{n}"), at(n), closed),
        Write::CloseByRule => case.closed_by_rule(),
        Write::Reopen => case.reopened(),
    }
}

fn is_daemon(write: Write) -> bool {
    !matches!(write, Write::LinkByHand | Write::VisitorMessage)
}

/// Every sequence of `len` writes, each daemon write with every point it may have read at.
fn histories(len: usize) -> Vec<Vec<(Write, usize)>> {
    let mut all = vec![Vec::new()];
    for position in 0..len {
        let mut next = Vec::new();
        for history in &all {
            for write in WRITES {
                let reads = if is_daemon(write) { 0..=position } else { position..=position };
                for read_at in reads {
                    let mut h: Vec<(Write, usize)> = history.clone();
                    h.push((write, read_at));
                    next.push(h);
                }
            }
        }
        all = next;
    }
    all
}

fn stage(case: &ChatCase) -> u8 {
    match case {
        ChatCase::None => 0,
        ChatCase::Queued { .. } => 1,
        ChatCase::Known { .. } => 2,
    }
}

#[test]
fn merging_keeps_the_later_state_in_every_interleaving() {
    let mut checked = 0;
    for len in 1..=4 {
        for history in histories(len) {
            // states[i]: what the store held after i commits.
            let mut states = vec![ChatCase::None];
            for &(write, read_at) in &history {
                let before = states.last().unwrap().clone();
                let after = if is_daemon(write) {
                    transition(states[read_at].clone(), write).later(&before)
                } else {
                    transition(before.clone(), write)
                };
                assert!(stage(&after) >= stage(&before), "went back a stage: {history:?}: {before:?} → {after:?}");
                if let (Some(id), None) = (before.id(), after.id()) {
                    panic!("lost the known case {id}: {history:?}");
                }
                if before.modstamp().is_some() {
                    assert!(after.modstamp() >= before.modstamp(), "an older read won: {history:?}");
                }
                // A daemon write made on the latest copy is kept whole (but for a read older
                // than the one stored, which the check above keeps from winning).
                let stale_read = matches!(write, Write::Read(n, _) if Some(at(n)) < before.modstamp());
                if is_daemon(write) && read_at + 1 == states.len() && !stale_read {
                    assert_eq!(after, transition(before.clone(), write), "{history:?}");
                }
                states.push(after);
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn a_close_casebridge_queued_survives_a_case_linked_by_hand_meanwhile() {
    // The decision read a queued case and closed it with the chat; a person linked one.
    let decided = ChatCase::None.queued().closed_by_rule();
    let stored = ChatCase::None.queued().linked("500HAND".into());
    let merged = decided.later(&stored);
    assert_eq!((merged.id(), merged.status()), (Some("500HAND"), CaseStatus::ClosedByRule));
    // A read of the case is Salesforce's word: it stands.
    let read = ChatCase::None.queued().read("500A".into(), "1".into(), at(1), false);
    assert_eq!(ChatCase::None.queued().closed_by_rule().later(&read), read);
}

#[test]
fn a_close_is_the_persons_unless_casebridge_closed_it() {
    let known = ChatCase::None.queued().read("500A".into(), "1".into(), at(1), false);
    let by_rule = known.clone().closed_by_rule();
    assert!(by_rule.reopens_for(false), "a chat going on reopens a case casebridge closed");
    let read_closed = by_rule.read("500A".into(), "1".into(), at(2), true);
    assert_eq!(read_closed.status(), CaseStatus::ClosedByRule);
    let by_person = known.read("500A".into(), "1".into(), at(2), true);
    assert_eq!(by_person.status(), CaseStatus::ClosedByPerson);
    assert!(!by_person.reopens_for(false), "a person's close stands while the agent answers");
    assert!(by_person.reopens_for(true), "a handover to a person reopens it");
    let reopened_by_person = read_closed.read("500A".into(), "1".into(), at(3), false);
    assert_eq!(reopened_by_person.status(), CaseStatus::Open);
}

#[test]
fn older_records_flags_become_the_same_states() {
    use super::LegacyCaseFlags as F;
    assert_eq!(ChatCase::from_flags(F::default()), ChatCase::None);
    let queued = ChatCase::from_flags(F { queued: true, closed_by_rule: true, ..F::default() });
    assert_eq!(queued, ChatCase::Queued { status: CaseStatus::ClosedByRule });
    let known = ChatCase::from_flags(F { id: Some("500A".into()), queued: true, is_closed: true, ..F::default() });
    assert_eq!((known.id(), known.status()), (Some("500A"), CaseStatus::ClosedByPerson));
}

#[test]
fn records_stored_with_flags_read_as_the_lifecycle_and_are_written_back_as_it() {
    use crate::model::visitor::MessengerInfo;
    let old = serde_json::json!({
        "visitor": { "name": "Sam", "email": "sam@newco.example", "verified": false },
        "case_id": "500A", "case_number": "00001001", "case_modstamp": "2027-01-15T08:00:00Z",
        "case_queued": true, "case_is_closed": true, "case_closed_by_rule": true, "case_closed": false,
        "lead_queued": true
    });
    let info: MessengerInfo = serde_json::from_value(old).unwrap();
    assert_eq!(info.case.id(), Some("500A"));
    assert_eq!(info.case.status(), CaseStatus::ClosedByRule);
    assert!(!info.ended_by_case && info.lead == crate::model::ChatLead::Made { task_pending: false });
    let written = serde_json::to_value(&info).unwrap();
    assert!(written.get("case_id").is_none() && written.get("case_closed").is_none(), "{written}");
    let again: MessengerInfo = serde_json::from_value(written).unwrap();
    assert_eq!(again, info, "the new form reads back the same");
    // A record from before resolutions closed chats lacks the flag: its case ended it.
    let oldest: MessengerInfo = serde_json::from_value(serde_json::json!({ "visitor": {} })).unwrap();
    assert!(oldest.ended_by_case && oldest.case == ChatCase::None);
}
