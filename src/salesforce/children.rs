//! Child subquery results past their first page. Salesforce returns at most about 200
//! child records per relationship inline; past that the nested result has `done: false`
//! and its own `nextRecordsUrl`, read through the same Query More Results resource as a
//! parent's pages. Reading a parent's next page invalidates the child locators of the page
//! before, so a row's children are completed as soon as the row is read.

use serde_json::{Value as Json, json};

use super::client::{Client, QueryResult};
use super::error::Result;

/// The most queries one composite call may carry (Salesforce: "up to 5 of these
/// subrequests can be sObject Collections or query operations").
pub const QUERIES_AT_ONCE: usize = 5;

impl Client {
    /// One page of a query result by its `nextRecordsUrl` (parent or child locator).
    pub async fn query_more(&self, next_records_url: &str) -> Result<QueryResult<Json>> {
        self.query_page(None, Some(next_records_url)).await
    }

    /// `row` with every nested child result read to its end: the records of each
    /// `nextRecordsUrl` page appended, `done: true`, as if all children came at once.
    /// A row whose children are complete costs no call.
    pub async fn with_all_children(&self, mut row: Json) -> Result<Json> {
        let Some(fields) = row.as_object_mut() else { return Ok(row) };
        for value in fields.values_mut() {
            let Some(mut next) = unfinished(value) else { continue };
            let mut more = Vec::new();
            loop {
                let page = self.query_more(&next).await?;
                more.extend(page.records);
                match page.next_records_url.filter(|_| !page.done) {
                    Some(url) => next = url,
                    None => break,
                }
            }
            if let Some(records) = value["records"].as_array_mut() {
                records.extend(more);
            }
            if let Some(result) = value.as_object_mut() {
                result.remove("nextRecordsUrl");
                result.insert("done".into(), json!(true));
            }
        }
        Ok(row)
    }

    /// Up to [`QUERIES_AT_ONCE`] queries in one API call (a composite request), each
    /// returned as its own result, read on page by page past the first. A query Salesforce
    /// refuses fails the whole call with its error.
    pub async fn queries_at_once(&self, soqls: &[String]) -> Result<Vec<super::QueryPages<Json>>> {
        if soqls.is_empty() || soqls.len() > QUERIES_AT_ONCE {
            return Err(super::SalesforceError::Config(format!(
                "one composite call holds 1 to {QUERIES_AT_ONCE} queries, not {}",
                soqls.len()
            )));
        }
        let subs = soqls.iter().enumerate().map(|(i, q)| super::SubRequest::query(&format!("q{i}"), q)).collect();
        let responses = self.composite(false, subs).await?;
        let mut results = Vec::with_capacity(soqls.len());
        for i in 0..soqls.len() {
            let reference = format!("q{i}");
            let response = responses.iter().find(|r| r.reference_id == reference).ok_or_else(|| {
                super::SalesforceError::Decode {
                    context: "composite query".into(),
                    detail: format!("no result for subrequest {reference}"),
                }
            })?;
            let body = response.result()?.cloned().unwrap_or(Json::Null);
            let first: QueryResult<Json> = serde_json::from_value(body).map_err(|e| {
                super::SalesforceError::Decode { context: "composite query result".into(), detail: e.to_string() }
            })?;
            results.push(super::QueryPages::from_first_page(self.clone(), first));
        }
        Ok(results)
    }

    /// Every row of up to [`QUERIES_AT_ONCE`] queries sent in one call, each with all its
    /// children, a row that several queries return kept once (the first time).
    pub async fn rows_at_once(&self, soqls: &[String]) -> Result<Vec<Json>> {
        let mut seen = std::collections::HashSet::new();
        let mut rows = Vec::new();
        for mut pages in self.queries_at_once(soqls).await? {
            while let Some(page) = pages.next_page().await? {
                for row in page {
                    if seen.insert(row["Id"].as_str().unwrap_or_default().to_string()) {
                        rows.push(self.with_all_children(row).await?);
                    }
                }
            }
        }
        Ok(rows)
    }

    /// Every row of a query, each with all its children (see [`Client::with_all_children`]),
    /// read page by page so that no child locator is read after its parent's next page.
    pub async fn query_with_children(&self, soql: impl Into<String>) -> Result<Vec<Json>> {
        let mut pages = self.query::<Json>(soql);
        let mut rows = Vec::new();
        while let Some(page) = pages.next_page().await? {
            for row in page {
                rows.push(self.with_all_children(row).await?);
            }
        }
        Ok(rows)
    }
}

/// The next page's URL of a nested query result that is not done.
fn unfinished(value: &Json) -> Option<String> {
    let is_result = value.get("records").is_some_and(Json::is_array) && value.get("totalSize").is_some();
    let done = value.get("done").and_then(Json::as_bool).unwrap_or(true);
    (is_result && !done).then(|| value.get("nextRecordsUrl")?.as_str().map(str::to_string)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unfinished_nested_results_are_followed() {
        let url = "/services/data/v59.0/query/01gX-200";
        let open = json!({ "totalSize": 450, "done": false, "nextRecordsUrl": url, "records": [] });
        assert_eq!(unfinished(&open).as_deref(), Some(url));
        assert_eq!(unfinished(&json!({ "totalSize": 2, "done": true, "records": [] })), None);
        assert_eq!(unfinished(&json!(null)), None);
        // A parent relationship is an object too, but not a query result.
        assert_eq!(unfinished(&json!({ "attributes": {}, "done": false, "nextRecordsUrl": url })), None);
    }
}
