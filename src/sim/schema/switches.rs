//! What an org's setup changes in its metadata, as the seed switches it: feed tracking per
//! object, `FeedItem.Visibility` only with Digital Experiences, and what field-level
//! security leaves a user of a field.

use super::Schema;

/// What field-level security leaves a user of a field (`users[].field_access` in the seed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldAccess {
    /// Not visible: left out of the user's describe, `INVALID_FIELD` in its SOQL and writes.
    Hidden,
    /// Visible, read-only: described `createable`/`updateable` false, refused on write
    /// with `INVALID_FIELD_FOR_INSERT_UPDATE`.
    Read,
}

impl Schema {
    /// Feed tracking on exactly the objects named (Setup's *Feed Tracking*); an unknown
    /// object is an error for the seed's author.
    pub fn set_feed_tracking(&mut self, objects: &[String]) -> Result<(), String> {
        for o in &mut self.objects {
            o.feed_enabled = false;
        }
        for name in objects {
            let object = self.object_mut(name).ok_or_else(|| format!("feed tracking on unknown object '{name}'"))?;
            object.feed_enabled = true;
        }
        Ok(())
    }

    /// An org without Digital Experiences: `FeedItem` has no `Visibility` ("available ...
    /// if digital experiences is enabled for your org", FeedItem reference).
    pub fn without_digital_experiences(&mut self) {
        for object in ["FeedItem", "CaseFeed"] {
            if let Some(feed) = self.object_mut(object) {
                feed.remove_field("Visibility");
            }
        }
    }
}
