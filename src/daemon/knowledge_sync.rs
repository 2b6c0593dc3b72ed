//! Salesforce Knowledge kept in sync with the agent's help centre: the online article
//! versions in one language, read whole at start, then only what changed.
//!
//! Changes are found on the articles (`Knowledge__ka`), not their versions: publishing a
//! new version, archiving and republishing all stamp the article's `SystemModstamp`, and a
//! query on articles needs no `PublishStatus` pin (which a version query must have, one
//! status per query). So a sync when nothing changed is **one query**. When articles
//! changed, their online versions are read by article id (200 a query); an article with no
//! online version any more (archived) leaves the help centre. The cursor is a watermark
//! that never passes `poll.overlap` before the sync began, as the case poll's, since
//! Salesforce may commit a change stamped a little in the past; so a change is read by the
//! syncs within that overlap, and idle syncs after it cost one query.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::Value as Json;

use crate::config::SalesforceKnowledgeConfig;
use crate::knowledge::{Article, Index, Library};
use crate::model::text::html_to_text;
use crate::salesforce::soql::{Filter, Select, parse_datetime};
use crate::salesforce::{Client, SalesforceError};

/// Article ids per version query.
const IDS_PER_QUERY: usize = 200;
/// The most articles kept from the org (the help-centre limit).
const MAX_ARTICLES: usize = crate::knowledge::MAX_ARTICLES;

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub queries: usize,
    pub added_or_updated: usize,
    pub removed: usize,
    /// Articles from the org now in the help centre.
    pub articles: usize,
}

/// The sync's state: the articles from the org and the cursor.
pub struct KnowledgeSync {
    settings: SalesforceKnowledgeConfig,
    library: Arc<Library>,
    /// The help centre's own articles (a markdown folder), kept beside the org's.
    folder: Vec<Article>,
    /// `KnowledgeArticleId` → its online version, as an article.
    synced: BTreeMap<String, Article>,
    cursor: Option<DateTime<Utc>>,
    /// How far before a sync's start its cursor may go.
    overlap: ChronoDuration,
    last_run: Option<Instant>,
}

impl KnowledgeSync {
    /// A sync into `library`, whose current articles (a folder's) stay beside the org's.
    pub fn new(
        settings: SalesforceKnowledgeConfig,
        library: Arc<Library>,
        overlap: std::time::Duration,
    ) -> KnowledgeSync {
        let folder = library.current().articles().to_vec();
        let overlap = ChronoDuration::from_std(overlap).unwrap_or(ChronoDuration::minutes(1));
        KnowledgeSync { settings, library, folder, synced: BTreeMap::new(), cursor: None, overlap, last_run: None }
    }

    /// Whether the org's articles were read at least once (until then, conversations wait:
    /// an agent without its help centre would hand every one over).
    pub fn loaded(&self) -> bool {
        self.cursor.is_some()
    }

    /// Whether a sync is due (never run, or `interval` since the last).
    pub fn due(&self) -> bool {
        self.last_run.is_none_or(|t| t.elapsed() >= self.settings.interval)
    }

    /// Reads what changed and swaps in a new index when anything did.
    pub async fn sync(&mut self, client: &Client) -> Result<SyncReport, SalesforceError> {
        self.last_run = Some(Instant::now());
        let started = Utc::now();
        let floor = super::floor_second(started - self.overlap);
        let mut report = SyncReport::default();
        let first_load = self.cursor.is_none();
        match self.cursor {
            None => {
                // Page by page, newest first, up to the help-centre limit: an org with more
                // articles is never read into memory whole.
                self.synced.clear();
                let mut pages = client.query::<Json>(self.online_query(None)?);
                let mut left_out = 0;
                while let Some(page) = pages.next_page().await? {
                    report.queries += 1;
                    for row in &page {
                        if self.synced.len() < MAX_ARTICLES {
                            self.keep(row, &mut report);
                        } else {
                            left_out += 1;
                        }
                    }
                }
                if left_out > 0 {
                    tracing::warn!(
                        left_out,
                        limit = MAX_ARTICLES,
                        "More online Knowledge articles than a help centre holds; the oldest were left out."
                    );
                }
                self.cursor = Some(floor);
            }
            Some(cursor) => {
                let articles = Select::new(["Id", "SystemModstamp"], &self.article_object())
                    .filter(Filter::gt("SystemModstamp", cursor))
                    .order_by("SystemModstamp", false)
                    .build()
                    .map_err(|e| SalesforceError::Config(e.0))?;
                let rows: Vec<Json> = client.query(articles).collect_all().await?;
                report.queries += 1;
                if rows.is_empty() {
                    report.articles = self.synced.len();
                    return Ok(report);
                }
                let newest = rows.iter().filter_map(|r| r["SystemModstamp"].as_str().and_then(parse_datetime)).max();
                let ids: Vec<String> = rows.iter().filter_map(|r| r["Id"].as_str().map(str::to_string)).collect();
                let mut online: BTreeMap<String, Json> = BTreeMap::new();
                for chunk in ids.chunks(IDS_PER_QUERY) {
                    for row in self.online_versions(client, Some(chunk), &mut report).await? {
                        online.insert(article_id(&row), row);
                    }
                }
                for id in &ids {
                    match online.get(id) {
                        Some(row) => self.keep(row, &mut report),
                        None => {
                            if self.synced.remove(id).is_some() {
                                report.removed += 1;
                            }
                        }
                    }
                }
                let newest = newest.map_or(cursor, super::ceil_second);
                self.cursor = Some(newest.min(floor).max(cursor));
            }
        }
        // Re-reading unchanged articles (the overlap) rebuilds nothing.
        if first_load || report.added_or_updated + report.removed > 0 {
            let mut articles = self.folder.clone();
            articles.extend(self.synced.values().cloned());
            let synonyms = self.library.current().synonyms().clone();
            let library = self.library.clone();
            let replaced =
                tokio::task::spawn_blocking(move || library.replace(Index::with_synonyms(articles, synonyms)))
                    .await
                    .unwrap_or_else(|e| Err(format!("embedding the help centre stopped: {e}")));
            if let Err(why) = replaced {
                tracing::warn!(%why, "the synced articles are ranked by words alone until the model works again");
            }
        }
        report.articles = self.synced.len();
        Ok(report)
    }

    /// `Knowledge__ka` for `Knowledge__kav` (and the same for a renamed object).
    fn article_object(&self) -> String {
        let object = &self.settings.object;
        object.strip_suffix("__kav").map_or_else(|| object.clone(), |stem| format!("{stem}__ka"))
    }

    /// The online versions in the configured language: all of them, or those of `ids`.
    async fn online_versions(
        &self,
        client: &Client,
        ids: Option<&[String]>,
        report: &mut SyncReport,
    ) -> Result<Vec<Json>, SalesforceError> {
        let mut pages = client.query::<Json>(self.online_query(ids)?);
        let mut rows = Vec::new();
        while let Some(page) = pages.next_page().await? {
            report.queries += 1;
            rows.extend(page);
        }
        Ok(rows)
    }

    /// The query for the online versions in the configured language: all of them (newest
    /// first), or those of `ids`.
    fn online_query(&self, ids: Option<&[String]>) -> Result<String, SalesforceError> {
        let mut fields = vec!["Id", "KnowledgeArticleId", "Title", "UrlName", "Summary"];
        fields.extend(self.settings.body_fields.iter().map(String::as_str));
        // Only articles published to a channel customers read: an agents-only article
        // ("how to grant a refund outside policy") is never the agent's to quote.
        let channels = self
            .settings
            .channels
            .iter()
            .map(|c| Filter::eq(c.field(), true))
            .reduce(Filter::or)
            .ok_or_else(|| SalesforceError::Config("agent.salesforce_knowledge.channels is empty".into()))?;
        let mut filter = Filter::eq("PublishStatus", "Online")
            .and(Filter::eq("Language", self.settings.language.as_str()))
            .and(channels);
        if let Some(ids) = ids {
            filter = filter.and(Filter::is_in("KnowledgeArticleId", ids.iter().map(String::as_str)));
        }
        Select::new(fields, &self.settings.object)
            .filter(filter)
            .order_by("LastPublishedDate", true)
            .build()
            .map_err(|e| SalesforceError::Config(e.0))
    }

    /// Keeps an online version as an article (up to the help-centre limit).
    fn keep(&mut self, row: &Json, report: &mut SyncReport) {
        let id = article_id(row);
        if id.is_empty() || (self.synced.len() >= MAX_ARTICLES && !self.synced.contains_key(&id)) {
            return;
        }
        let text = |field: &str| row[field].as_str().unwrap_or_default().trim().to_string();
        let url_name = text("UrlName");
        let body: Vec<String> = self
            .settings
            .body_fields
            .iter()
            .map(|f| html_to_text(row[f.as_str()].as_str().unwrap_or_default()))
            .filter(|b| !b.trim().is_empty())
            .collect();
        // An org article named like one of the folder's keeps its own id (and passage ids).
        let mut article_id = if url_name.is_empty() { id.clone() } else { url_name.clone() };
        if self.folder.iter().any(|a| a.id == article_id) {
            article_id = format!("salesforce-{article_id}");
        }
        let article = Article {
            id: article_id,
            title: text("Title"),
            url: self.settings.article_url.replace("{UrlName}", &url_name),
            summary: text("Summary"),
            body: body.join("\n\n"),
        };
        if self.synced.get(&id) != Some(&article) {
            report.added_or_updated += 1;
        }
        self.synced.insert(id, article);
    }
}

fn article_id(row: &Json) -> String {
    row["KnowledgeArticleId"]
        .as_str()
        .map(|id| crate::salesforce::id::to_18(id).unwrap_or_else(|| id.to_string()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sync(object: &str, body_fields: &[&str]) -> KnowledgeSync {
        let settings = SalesforceKnowledgeConfig {
            body_fields: body_fields.iter().map(|f| f.to_string()).collect(),
            article_url: "https://help.example/s/article/{UrlName}".into(),
            language: "en_US".into(),
            interval: std::time::Duration::from_secs(300),
            object: object.into(),
            channels: vec![crate::config::KnowledgeChannel::Pkb, crate::config::KnowledgeChannel::Csp],
        };
        KnowledgeSync::new(settings, Library::new(Index::new(Vec::new())), std::time::Duration::from_secs(60))
    }

    #[test]
    fn the_article_object_follows_a_renamed_version_object() {
        assert_eq!(sync("Knowledge__kav", &["Answer__c"]).article_object(), "Knowledge__ka");
        assert_eq!(sync("FAQ__kav", &["Answer__c"]).article_object(), "FAQ__ka");
    }

    #[test]
    fn a_version_becomes_an_article_with_its_body_fields_as_text() {
        let mut s = sync("Knowledge__kav", &["Answer__c", "Details__c"]);
        let row = serde_json::json!({
            "KnowledgeArticleId": "kA0000000000001", "Title": " Reset ", "UrlName": "reset", "Summary": "How to reset.",
            "Answer__c": "<h2>Steps</h2><p>Hold <b>SERVICE</b>.</p>", "Details__c": null
        });
        let mut report = SyncReport::default();
        s.keep(&row, &mut report);
        let article = s.synced.values().next().unwrap();
        assert_eq!((article.id.as_str(), article.title.as_str()), ("reset", "Reset"));
        assert_eq!(article.url, "https://help.example/s/article/reset");
        assert!(article.body.contains("## Steps") && article.body.contains("SERVICE"), "{}", article.body);
        assert_eq!(report.added_or_updated, 1);
        s.keep(&row, &mut report);
        assert_eq!(report.added_or_updated, 1, "the same version again changes nothing");
        // Named like an article of the folder: it keeps an id of its own.
        let folder = crate::knowledge::parse_markdown("reset", "# Reset\n\nFolder text.", "https://h/reset");
        let mut beside = sync("Knowledge__kav", &["Answer__c"]);
        beside.folder = vec![folder];
        beside.keep(&row, &mut SyncReport::default());
        assert_eq!(beside.synced.values().next().unwrap().id, "salesforce-reset");
        let key = s.synced.keys().next().unwrap();
        assert!(
            key.len() == 18 && key.starts_with("kA0000000000001"),
            "ids are kept in their 18-character form: {key}"
        );
    }
}
