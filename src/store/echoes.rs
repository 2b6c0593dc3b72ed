//! The echoes of our own replies: cases whose newest stamp was only our reply's, by that
//! stamp. Kept in the store, so that no poll (a restart's included) builds such a case
//! again while the overlap re-reads it; each goes once the cursor passes it, so the tree
//! holds at most the cases answered within the overlap.

use chrono::{DateTime, Utc};

use super::{Result, Store};

impl Store {
    /// The stamp of case `case_id`'s echo, if one is kept.
    pub fn echo(&self, case_id: &str) -> Result<Option<DateTime<Utc>>> {
        Ok(self.echoes.get(case_id.as_bytes())?.and_then(|bytes| {
            <[u8; 8]>::try_from(bytes.as_slice()).ok().map(i64::from_be_bytes).and_then(DateTime::from_timestamp_millis)
        }))
    }

    /// Keeps an echo. Not flushed on its own: the cursor's flush writes it out, and one
    /// lost costs a case built again, never a reply.
    pub fn set_echo(&self, case_id: &str, stamp: DateTime<Utc>) -> Result<()> {
        self.echoes.insert(case_id.as_bytes(), stamp.timestamp_millis().to_be_bytes())?;
        Ok(())
    }

    /// Forgets the echoes at or before `watermark`: polls no longer read them.
    pub fn forget_echoes_through(&self, watermark: DateTime<Utc>) -> Result<()> {
        let watermark = watermark.timestamp_millis();
        for item in self.echoes.iter() {
            let (key, bytes) = item?;
            let stamp = <[u8; 8]>::try_from(bytes.as_slice()).map(i64::from_be_bytes).unwrap_or(i64::MIN);
            if stamp <= watermark {
                self.echoes.remove(key)?;
            }
        }
        Ok(())
    }
}
