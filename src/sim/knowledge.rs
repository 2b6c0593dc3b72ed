//! Lightning Knowledge in the simulated org: a new `Knowledge__kav` is the first draft of a
//! new article (`Knowledge__ka`); a draft is published (the article's previous online
//! version is archived), an online version is archived, and a new draft is made from the
//! online version — as the knowledgeManagement REST resources do in Salesforce. Each step
//! stamps the article, which is how an integration notices changes with one query.

use super::error::ApiError;
use super::org::{Org, Record, WriteCtx};
use super::value::Value;

impl Org {
    /// A version created through the API starts a new article, as version 1, a draft.
    pub(super) fn start_article(&mut self, version: &mut Record, ctx: &WriteCtx) {
        let article_id = self.new_id("kA0");
        let number = format!("{:09}", 1_000 + self.all("Knowledge__ka").count());
        let mut article = Record { id: article_id.clone(), object: "Knowledge__ka".into(), fields: Default::default() };
        for (field, value) in [
            ("Id", Value::Str(article_id.clone())),
            ("IsDeleted", Value::Bool(false)),
            ("ArticleNumber", Value::Str(number.clone())),
        ] {
            article.fields.insert(field.into(), value);
        }
        audit(&mut article, ctx, true);
        self.put(article);
        for (field, value) in [
            ("KnowledgeArticleId", Value::Str(article_id)),
            ("ArticleNumber", Value::Str(number)),
            ("PublishStatus", Value::Str("Draft".into())),
            ("VersionNumber", Value::Int(1)),
            ("IsLatestVersion", Value::Bool(true)),
        ] {
            version.fields.insert(field.into(), value);
        }
    }

    /// `PATCH knowledgeManagement/articleVersions/masterVersions/{id}` with
    /// `publishStatus`: `Online` publishes a draft, `Archived` archives an online version.
    pub fn set_publish_status(&mut self, version_id: &str, status: &str, ctx: &WriteCtx) -> Result<(), ApiError> {
        let version = self.version(version_id)?;
        let current = version.str("PublishStatus").unwrap_or_default().to_string();
        let article_id = version.str("KnowledgeArticleId").unwrap_or_default().to_string();
        match (current.as_str(), status) {
            ("Draft", "Online") => {
                let online: Vec<String> = self
                    .versions_of(&article_id)
                    .filter(|v| v.str("PublishStatus") == Some("Online"))
                    .map(|v| v.id.clone())
                    .collect();
                for id in online {
                    self.stamp_version(&id, "Archived", ctx);
                }
                self.stamp_version(&version.id, "Online", ctx);
                self.stamp_article(&article_id, ctx, |a| {
                    if a.get("FirstPublishedDate").is_null() {
                        a.fields.insert("FirstPublishedDate".into(), Value::DateTime(ctx.now));
                    }
                    a.fields.insert("LastPublishedDate".into(), Value::DateTime(ctx.now));
                    a.fields.insert("ArchivedDate".into(), Value::Null);
                });
                Ok(())
            }
            ("Online", "Archived") => {
                self.stamp_version(&version.id, "Archived", ctx);
                self.stamp_article(&article_id, ctx, |a| {
                    a.fields.insert("ArchivedDate".into(), Value::DateTime(ctx.now));
                });
                Ok(())
            }
            _ => Err(ApiError::new(
                400,
                "INVALID_OPERATION",
                format!("a {current} article version cannot become {status}"),
            )),
        }
    }

    /// `POST knowledgeManagement/articleVersions/masterVersions` with `articleId`: a new
    /// draft copied from the article's online version.
    pub fn new_draft(&mut self, article_id: &str, ctx: &WriteCtx) -> Result<String, ApiError> {
        let latest = self
            .versions_of(article_id)
            .filter(|v| v.str("PublishStatus") == Some("Online"))
            .max_by_key(|v| version_number(v))
            .cloned()
            .ok_or_else(|| ApiError::new(400, "INVALID_OPERATION", "the article has no online version to edit"))?;
        if self.versions_of(article_id).any(|v| v.str("PublishStatus") == Some("Draft")) {
            return Err(ApiError::new(400, "INVALID_OPERATION", "the article already has a draft"));
        }
        let id = self.new_id("ka0");
        let mut draft = latest.clone();
        draft.id = id.clone();
        let number = version_number(&latest) + 1;
        for (field, value) in [
            ("Id", Value::Str(id.clone())),
            ("PublishStatus", Value::Str("Draft".into())),
            ("VersionNumber", Value::Int(number)),
            ("LastPublishedDate", Value::Null),
            ("ArchivedDate", Value::Null),
        ] {
            draft.fields.insert(field.into(), value);
        }
        audit(&mut draft, ctx, true);
        self.put(draft);
        Ok(id)
    }

    fn version(&self, id: &str) -> Result<Record, ApiError> {
        self.live(id).filter(|r| r.object == "Knowledge__kav").cloned().ok_or_else(ApiError::not_found)
    }

    fn versions_of<'a>(&'a self, article_id: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.all("Knowledge__kav").filter(move |v| v.str("KnowledgeArticleId") == Some(article_id))
    }

    fn stamp_version(&mut self, id: &str, status: &str, ctx: &WriteCtx) {
        let Some(mut v) = self.live(id).cloned() else { return };
        v.fields.insert("PublishStatus".into(), Value::Str(status.into()));
        v.fields.insert("IsLatestVersion".into(), Value::Bool(status != "Archived"));
        match status {
            "Online" => v.fields.insert("LastPublishedDate".into(), Value::DateTime(ctx.now)),
            _ => v.fields.insert("ArchivedDate".into(), Value::DateTime(ctx.now)),
        };
        audit(&mut v, ctx, false);
        self.put(v);
    }

    fn stamp_article(&mut self, id: &str, ctx: &WriteCtx, change: impl FnOnce(&mut Record)) {
        let Some(mut a) = self.live(id).cloned() else { return };
        change(&mut a);
        audit(&mut a, ctx, false);
        self.put(a);
    }
}

/// The audit fields of a write: who and when, and who created it when `created`.
fn audit(record: &mut Record, ctx: &WriteCtx, created: bool) {
    let fields = &mut record.fields;
    if created {
        fields.insert("CreatedById".into(), Value::Str(ctx.user_id.clone()));
        fields.insert("CreatedDate".into(), Value::DateTime(ctx.now));
    }
    fields.insert("LastModifiedById".into(), Value::Str(ctx.user_id.clone()));
    fields.insert("LastModifiedDate".into(), Value::DateTime(ctx.now));
    fields.insert("SystemModstamp".into(), Value::DateTime(ctx.now));
}

fn version_number(v: &Record) -> i64 {
    match v.get("VersionNumber") {
        Value::Int(n) => *n,
        _ => 1,
    }
}
