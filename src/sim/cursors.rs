//! Query locators: the rows of a query not returned yet, behind the `nextRecordsUrl`
//! (`/services/data/vNN.0/query/01g...-OFFSET`) that the Query More Results resource reads.
//!
//! Paging follows Salesforce's documented and observed behaviour:
//! - A batch holds at most the batch size in records, and child records count toward it
//!   ("Child objects count toward the number of records for the batch size", Query Options
//!   header): a query with subqueries gets smaller parent batches. A batch always holds at
//!   least one parent row.
//! - A child subquery's result holds at most [`CHILD_BATCH`] records; past that it comes
//!   back with `done: false` and its own `nextRecordsUrl`, read through the same endpoint in
//!   pages of [`CHILD_BATCH`]. Its `totalSize` counts every child.
//! - Reading the next page of a parent query invalidates the child locators of the page
//!   before ("A queryMore() call on a parent object invalidates all child cursors in the
//!   previous result set"): a client reads a row's children before the next parent page.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value as Json, json};

use super::soql::Rows;

/// Child records returned inline per relationship, and per page of a child locator.
pub const CHILD_BATCH: usize = 200;

/// Open query locators.
#[derive(Default)]
pub struct Cursors {
    open: HashMap<String, Cursor>,
    /// Oldest first; the oldest locator is dropped past [`Cursors::MAX_OPEN`].
    order: VecDeque<String>,
    next: u64,
}

struct Cursor {
    total_size: usize,
    /// Every row of the result, kept until the last page is read, so that offsets in
    /// locators stay absolute as Salesforce's do and a page can be read again (a client
    /// retrying after a timeout).
    records: Vec<Json>,
    batch: usize,
    /// The row keys holding child subquery results, paged in their turn.
    child_relationships: Vec<String>,
    /// Child locators handed out with the latest page; the next page invalidates them.
    open_children: Vec<String>,
}

impl Cursors {
    const MAX_OPEN: usize = 100;

    /// The first page of a query result.
    pub fn first_page(&mut self, rows: Rows, batch: usize, endpoint: &str, version: &str) -> Json {
        let key = self.open_cursor(rows.total_size, rows.records, batch, rows.child_relationships);
        self.page(&key, 0, endpoint, version).expect("a cursor just opened has a first page")
    }

    /// The page of locator `KEY-OFFSET`, or `None` for an unknown or spent locator.
    pub fn next_page(&mut self, locator: &str, endpoint: &str, version: &str) -> Option<Json> {
        let (key, offset) = locator.rsplit_once('-')?;
        let offset: usize = offset.parse().ok()?;
        let cursor = self.open.get(key)?;
        if offset >= cursor.records.len() {
            return None;
        }
        self.page(key, offset, endpoint, version)
    }

    fn open_cursor(&mut self, total_size: usize, records: Vec<Json>, batch: usize, children: Vec<String>) -> String {
        self.next += 1;
        let key = format!("01gDn0{:012}", self.next);
        let cursor = Cursor { total_size, records, batch, child_relationships: children, open_children: Vec::new() };
        self.open.insert(key.clone(), cursor);
        self.order.push_back(key.clone());
        while self.order.len() > Self::MAX_OPEN {
            if let Some(old) = self.order.pop_front() {
                self.open.remove(&old);
            }
        }
        key
    }

    fn close(&mut self, key: &str) {
        if self.open.remove(key).is_some() {
            self.order.retain(|k| k != key);
        }
    }

    /// Returns the rows from `offset` that fit one batch, paging their children.
    fn page(&mut self, key: &str, offset: usize, endpoint: &str, version: &str) -> Option<Json> {
        let cursor = self.open.get_mut(key)?;
        let stale = std::mem::take(&mut cursor.open_children);
        let (batch, relationships, total_size) = (cursor.batch, cursor.child_relationships.clone(), cursor.total_size);
        let mut end = offset;
        let mut used = 0;
        while end < cursor.records.len() {
            let cost = 1 + relationships.iter().map(|r| inline_children(&cursor.records[end], r)).sum::<usize>();
            if end > offset && used + cost > batch {
                break;
            }
            used += cost;
            end += 1;
        }
        let mut page: Vec<Json> = cursor.records[offset..end].to_vec();
        let done = end == cursor.records.len();
        for child in stale {
            self.close(&child);
        }
        let mut opened = Vec::new();
        for row in &mut page {
            for relationship in &relationships {
                if let Some(child) = self.split_children(row, relationship, endpoint, version) {
                    opened.push(child);
                }
            }
        }
        if done {
            self.close(key);
        } else if let Some(cursor) = self.open.get_mut(key) {
            cursor.open_children = opened;
        }
        let mut body = json!({ "totalSize": total_size, "done": done });
        if !done {
            body["nextRecordsUrl"] = json!(format!("/services/data/v{version}/{endpoint}/{key}-{end}"));
        }
        body["records"] = Json::Array(page);
        Some(body)
    }

    /// Cuts a child result longer than [`CHILD_BATCH`] down to its first batch, with a
    /// locator for the rest; returns the locator's key.
    fn split_children(&mut self, row: &mut Json, relationship: &str, endpoint: &str, version: &str) -> Option<String> {
        let result = row.get_mut(relationship)?;
        let records = result.get_mut("records")?.as_array_mut()?;
        if records.len() <= CHILD_BATCH {
            return None;
        }
        let all = std::mem::take(records);
        let first: Vec<Json> = all[..CHILD_BATCH].to_vec();
        let total_size = all.len();
        let key = self.open_cursor(total_size, all, CHILD_BATCH, Vec::new());
        *result = json!({
            "totalSize": total_size,
            "done": false,
            "nextRecordsUrl": format!("/services/data/v{version}/{endpoint}/{key}-{CHILD_BATCH}"),
            "records": first,
        });
        Some(key)
    }
}

/// How many of a row's children under `relationship` come back inline.
fn inline_children(row: &Json, relationship: &str) -> usize {
    row[relationship]["records"].as_array().map_or(0, |r| r.len().min(CHILD_BATCH))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(parents: usize, children: usize) -> Rows {
        let records = (0..parents)
            .map(|p| {
                let kids: Vec<Json> = (0..children).map(|c| json!({ "Id": format!("{p}-{c}") })).collect();
                let result = if kids.is_empty() {
                    Json::Null
                } else {
                    json!({ "totalSize": kids.len(), "done": true, "records": kids })
                };
                json!({ "Id": p.to_string(), "Kids": result })
            })
            .collect();
        Rows { total_size: parents, records, child_relationships: vec!["Kids".into()] }
    }

    fn locator(page: &Json) -> String {
        page["nextRecordsUrl"].as_str().unwrap().rsplit('/').next().unwrap().to_string()
    }

    #[test]
    fn children_count_toward_the_batch() {
        let mut c = Cursors::default();
        // 10 children each: a parent costs 11 records, so 2,000 hold 181 parents.
        let first = c.first_page(rows(500, 10), 2000, "query", "59.0");
        assert_eq!(first["records"].as_array().unwrap().len(), 181);
        assert_eq!(first["done"], false);
        assert!(locator(&first).ends_with("-181"), "{first}");
        let without = c.first_page(rows(500, 0), 2000, "query", "59.0");
        assert_eq!(without["records"].as_array().unwrap().len(), 500);
        assert_eq!(without["done"], true);
    }

    #[test]
    fn long_child_lists_page_through_their_own_locator() {
        let mut c = Cursors::default();
        let first = c.first_page(rows(1, 450), 2000, "query", "59.0");
        let kids = &first["records"][0]["Kids"];
        assert_eq!((kids["totalSize"].clone(), kids["done"].clone()), (json!(450), json!(false)));
        assert_eq!(kids["records"].as_array().unwrap().len(), CHILD_BATCH);
        let more = c.next_page(&locator(kids), "query", "59.0").unwrap();
        assert_eq!(more["records"].as_array().unwrap().len(), 200);
        assert_eq!(more["records"][0]["Id"], "0-200");
        let last = c.next_page(&locator(&more), "query", "59.0").unwrap();
        assert_eq!((last["records"].as_array().unwrap().len(), last["done"].clone()), (50, json!(true)));
        assert!(last.get("nextRecordsUrl").is_none());
        assert!(c.next_page(&locator(&more), "query", "59.0").is_none(), "a spent locator is gone");
    }

    #[test]
    fn the_next_parent_page_invalidates_the_child_locators_before_it() {
        let mut c = Cursors::default();
        let first = c.first_page(rows(20, 300), 2000, "queryAll", "59.0");
        // 201 records a parent: 9 parents fit in 2,000.
        assert_eq!(first["records"].as_array().unwrap().len(), 9);
        let child = locator(&first["records"][0]["Kids"]);
        assert!(first["records"][0]["Kids"]["nextRecordsUrl"].as_str().unwrap().contains("/queryAll/"));
        let second = c.next_page(&locator(&first), "queryAll", "59.0").unwrap();
        assert_eq!(second["records"][0]["Id"], "9");
        assert!(c.next_page(&child, "queryAll", "59.0").is_none(), "invalidated by the parent's next page");
        assert!(c.next_page(&locator(&second["records"][0]["Kids"]), "queryAll", "59.0").is_some());
    }

    #[test]
    fn a_parent_with_more_children_than_the_batch_still_comes_back_and_pages_reread() {
        let mut c = Cursors::default();
        let first = c.first_page(rows(3, 250), 200, "query", "59.0");
        assert_eq!(first["records"].as_array().unwrap().len(), 1);
        let again = c.next_page(&locator(&first), "query", "59.0").unwrap();
        let twice = c.next_page(&locator(&first), "query", "59.0").unwrap();
        assert_eq!((again["records"][0]["Id"].clone(), twice["records"][0]["Id"].clone()), (json!("1"), json!("1")));
        assert_eq!(again["nextRecordsUrl"], twice["nextRecordsUrl"], "a page can be read again");
    }
}
