//! Query results read page by page through `nextRecordsUrl`.

use serde::de::DeserializeOwned;

use super::client::Client;
use super::error::{Result, SalesforceError};

/// A query result read page by page: only one page (at most 2,000 rows) is in memory at a
/// time, however many rows the query matches.
pub struct QueryPages<T> {
    client: Client,
    soql: Option<(String, bool)>,
    next_url: Option<String>,
    total_size: Option<u64>,
    finished: bool,
    /// A first page read elsewhere, and the URL of the page after it.
    buffered: Option<(Vec<serde_json::Value>, Option<String>)>,
    _rows: std::marker::PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> QueryPages<T> {
    pub(super) fn new(client: Client, soql: String, all: bool) -> QueryPages<T> {
        QueryPages {
            client,
            soql: Some((soql, all)),
            next_url: None,
            total_size: None,
            finished: false,
            buffered: None,
            _rows: Default::default(),
        }
    }

    /// A result whose first page was already read (by a composite call): it hands out
    /// that page first, then reads on through its `nextRecordsUrl`.
    pub(super) fn from_first_page(client: Client, first: super::client::QueryResult<serde_json::Value>) -> Self {
        let next_url = first.next_records_url.filter(|_| !first.done);
        QueryPages {
            client,
            soql: None,
            finished: false,
            total_size: Some(first.total_size),
            buffered: Some((first.records, next_url)),
            next_url: None,
            _rows: Default::default(),
        }
    }

    /// The query's `totalSize`, once the first page has been read.
    pub fn total_size(&self) -> Option<u64> {
        self.total_size
    }

    /// The next page of rows, or `None` when all have been read.
    pub async fn next_page(&mut self) -> Result<Option<Vec<T>>> {
        if self.finished {
            return Ok(None);
        }
        let records = match self.buffered.take() {
            Some((records, next_url)) => {
                self.next_url = next_url;
                self.finished = self.next_url.is_none();
                records
            }
            None => {
                let first = self.soql.as_ref().map(|(q, all)| (q.as_str(), *all));
                let page = self.client.query_page(first, self.next_url.as_deref()).await?;
                self.soql = None;
                self.total_size = Some(page.total_size);
                self.next_url = page.next_records_url.filter(|_| !page.done);
                self.finished = self.next_url.is_none();
                page.records
            }
        };
        let rows = records
            .into_iter()
            .map(|r| {
                serde_json::from_value(r)
                    .map_err(|e| SalesforceError::Decode { context: "query row".into(), detail: e.to_string() })
            })
            .collect::<Result<Vec<T>>>()?;
        Ok(Some(rows))
    }

    /// Every row, read page by page into one vector. For large results prefer
    /// [`QueryPages::next_page`] or [`QueryPages::into_stream`].
    pub async fn collect_all(mut self) -> Result<Vec<T>> {
        let mut all = Vec::new();
        while let Some(page) = self.next_page().await? {
            all.extend(page);
        }
        Ok(all)
    }

    /// The rows one by one as a stream, fetching pages as it goes.
    pub fn into_stream(self) -> impl futures_util::Stream<Item = Result<T>> {
        futures_util::stream::try_unfold(
            (self, std::collections::VecDeque::new()),
            |(mut pages, mut buffer)| async move {
                loop {
                    if let Some(row) = buffer.pop_front() {
                        return Ok(Some((row, (pages, buffer))));
                    }
                    match pages.next_page().await? {
                        Some(rows) => buffer.extend(rows),
                        None => return Ok(None),
                    }
                }
            },
        )
    }
}
