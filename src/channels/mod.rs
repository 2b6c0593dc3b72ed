//! Channels: where conversations come from and where their replies go. Each channel polls
//! or receives its conversations, builds them into the [`crate::model`], and delivers the
//! actions decided for them; the stages between (decide, act, report) do not know which
//! channel a conversation came by.

pub mod cases;
pub mod messenger;
