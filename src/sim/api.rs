//! REST routing under `/services/data/vNN.0/`: one `dispatch` function serves both
//! top-level requests and composite subrequests (the composite resource itself is
//! [`super::composite`]), so the two cannot drift apart.

use std::collections::HashMap;

use chrono::Utc;
use serde_json::{Map, Value as Json, json};

use super::cursors::Cursors;
use super::error::ApiError;
pub use super::org::WriteHeaders;
use super::org::{Org, WriteCtx};
use super::schema::ObjectDef;
use super::soql::{self, QueryFailure};

/// A response before it becomes HTTP.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Option<Json>,
    pub headers: Vec<(String, String)>,
}

impl Reply {
    pub(super) fn json(status: u16, body: Json) -> Reply {
        Reply { status, body: Some(body), headers: Vec::new() }
    }

    fn no_content() -> Reply {
        Reply { status: 204, body: None, headers: Vec::new() }
    }

    pub(super) fn error(e: ApiError) -> Reply {
        Reply::json(e.status, e.body())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The part of the simulator's state that API calls read and write.
pub struct Data {
    pub org: Org,
    pub cursors: Cursors,
    /// Rows per query page unless the client asks for fewer (`Sforce-Query-Options`).
    pub batch_size: usize,
}

impl Data {
    pub fn new(org: Org, batch_size: usize) -> Data {
        Data { org, cursors: Cursors::default(), batch_size }
    }
}

/// One API request, already authenticated.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path segments after `/services/data/vNN.0/`.
    pub segments: Vec<&'a str>,
    pub version: &'a str,
    pub query: &'a HashMap<String, String>,
    pub body: Option<Json>,
    pub user_id: &'a str,
    /// From `Sforce-Query-Options: batchSize=N`.
    pub batch_size: Option<usize>,
    /// Usage and limit, for `/limits`.
    pub usage: (u64, u64),
    /// `Sforce-Auto-Assign` and `Sforce-Duplicate-Rule-Header`, as the org's rules read them.
    pub write_headers: WriteHeaders,
}

impl WriteHeaders {
    /// The headers of a request, by (lowercase or any case) name.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> WriteHeaders {
        let mut h = WriteHeaders::default();
        for (name, value) in pairs {
            if name.eq_ignore_ascii_case("Sforce-Auto-Assign") {
                h.auto_assign = !value.trim().eq_ignore_ascii_case("false");
            } else if name.eq_ignore_ascii_case("Sforce-Duplicate-Rule-Header") {
                h.allow_duplicate_save = value.split(';').any(|p| {
                    p.split_once('=').is_some_and(|(k, v)| {
                        k.trim().eq_ignore_ascii_case("allowSave") && v.trim().eq_ignore_ascii_case("true")
                    })
                });
            }
        }
        h
    }
}

pub fn dispatch(data: &mut Data, req: Request<'_>) -> Reply {
    let ctx = WriteCtx { user_id: req.user_id.to_string(), now: Utc::now(), allow_system_fields: false };
    let method = req.method;
    match (method, req.segments.as_slice()) {
        ("GET", []) => Reply::json(200, resources(req.version)),
        ("GET", ["query" | "queryAll"]) => {
            let all = req.segments[0] == "queryAll";
            let Some(q) = req.query.get("q") else {
                return Reply::error(ApiError::new(400, "MALFORMED_QUERY", "A query string has to be specified"));
            };
            let batch = req.batch_size.unwrap_or(data.batch_size).min(data.batch_size).max(1);
            // The query runs on the org as the user sees it: a field hidden from it by
            // field-level security is an unknown column (INVALID_FIELD), as in Salesforce.
            match data.org.as_seen_by(req.user_id, |org| soql::execute(org, q, all, req.version)) {
                Ok(rows) => Reply::json(200, data.cursors.first_page(rows, batch, req.segments[0], req.version)),
                Err(QueryFailure { code, message }) => Reply::error(ApiError::new(400, code, message)),
            }
        }
        ("GET", ["query" | "queryAll", locator]) => match data.cursors.next_page(locator, req.segments[0], req.version)
        {
            Some(page) => Reply::json(200, page),
            None => Reply::error(ApiError::new(400, "INVALID_QUERY_LOCATOR", "invalid query locator")),
        },
        ("GET", ["limits"]) => Reply::json(200, limits(req.usage)),
        ("GET", ["sobjects"]) => Reply::json(200, global_describe(&data.org, req.version)),
        (_, ["sobjects", object, rest @ ..]) => {
            // Describes and reads show the object as the user sees it (field-level security).
            let view = data.org.schema_for(req.user_id);
            let Some(def) = view.as_ref().unwrap_or(&data.org.schema).object(object).cloned() else {
                return Reply::error(ApiError::not_found());
            };
            sobject(data, &def, method, rest, &req, &ctx)
        }
        ("POST", ["composite"]) => super::composite::composite(data, &req),
        (_, ["knowledgeManagement", "articleVersions", "masterVersions", rest @ ..]) => {
            knowledge_versions(data, method, rest, &req, &ctx)
        }
        (_, ["query" | "queryAll" | "limits" | "sobjects" | "composite", ..]) => Reply::error(ApiError::new(
            405,
            "METHOD_NOT_ALLOWED",
            format!("HTTP Method '{method}' not allowed. Allowed are {}", allowed_methods(&req.segments)),
        )),
        _ => Reply::error(ApiError::not_found()),
    }
}

/// `knowledgeManagement/articleVersions/masterVersions`: `POST` with `articleId` makes a
/// draft from the online version; `PATCH .../{versionId}` with `publishStatus` publishes a
/// draft (`Online`) or archives an online version (`Archived`).
fn knowledge_versions(data: &mut Data, method: &str, rest: &[&str], req: &Request<'_>, ctx: &WriteCtx) -> Reply {
    let field = |name: &str| req.body.as_ref().and_then(|b| b.get(name)).and_then(Json::as_str).map(str::to_string);
    let result = match (method, rest) {
        ("POST", []) => match field("articleId") {
            Some(article) => data.org.new_draft(&article, ctx).map(|id| Reply::json(201, json!({ "id": id }))),
            None => Err(ApiError::new(400, "INVALID_INPUT", "articleId is required")),
        },
        ("PATCH", [version]) => match field("publishStatus") {
            Some(status) => data.org.set_publish_status(version, &status, ctx).map(|()| Reply::no_content()),
            None => Err(ApiError::new(400, "INVALID_INPUT", "publishStatus is required")),
        },
        _ => Err(ApiError::new(405, "METHOD_NOT_ALLOWED", format!("HTTP Method '{method}' not allowed here"))),
    };
    result.unwrap_or_else(Reply::error)
}

fn allowed_methods(segments: &[&str]) -> &'static str {
    match segments {
        ["composite"] => "POST",
        _ => "GET,HEAD",
    }
}

fn sobject(data: &mut Data, def: &ObjectDef, method: &str, rest: &[&str], req: &Request<'_>, ctx: &WriteCtx) -> Reply {
    let body_object = |body: &Option<Json>| -> Result<Map<String, Json>, ApiError> {
        match body {
            Some(Json::Object(m)) => Ok(m.clone()),
            _ => Err(ApiError::new(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")),
        }
    };
    match (method, rest) {
        ("GET", []) => {
            Reply::json(200, json!({ "objectDescribe": object_summary(def, req.version), "recentItems": [] }))
        }
        ("POST", []) => match body_object(&req.body).and_then(|b| {
            data.org.check_field_access(req.user_id, &def.name, b.keys().map(String::as_str))?;
            if let Some(refused) = data.org.duplicate_refusal(&def.name, &b, req.write_headers) {
                return Err(refused);
            }
            data.org.create(&def.name, &b, ctx)
        }) {
            Ok(id) => {
                data.org.run_assignment_rules(&def.name, &id, req.write_headers, ctx);
                let mut reply = Reply::json(201, json!({ "id": id, "success": true, "errors": [] }));
                reply
                    .headers
                    .push(("Location".into(), format!("/services/data/v{}/sobjects/{}/{id}", req.version, def.name)));
                reply
            }
            Err(e) => Reply::error(e),
        },
        ("GET", ["describe"]) => Reply::json(200, describe(def, req.version)),
        ("PATCH", [field, value]) => match body_object(&req.body).and_then(|b| {
            if def.field(field).is_none() {
                return Err(ApiError::new(
                    404,
                    "NOT_FOUND",
                    format!("Provided external ID field does not exist or is not accessible: {field}"),
                ));
            }
            let written = std::iter::once(*field).chain(b.keys().map(String::as_str));
            data.org.check_field_access(req.user_id, &def.name, written).map(|()| b)
        }) {
            Ok(b)
                if data.org.upsert_would_create(&def.name, field, &percent_decoded(value))
                    && data.org.duplicate_refusal(&def.name, &b, req.write_headers).is_some() =>
            {
                Reply::error(data.org.duplicate_refusal(&def.name, &b, req.write_headers).expect("checked"))
            }
            Ok(b) => match data.org.upsert(
                &def.name,
                field,
                &percent_decoded(value),
                &b,
                // `updateOnly` came with API 61.0; older versions ignore it, as Salesforce does.
                req.query.get("updateOnly").is_some_and(|v| v.eq_ignore_ascii_case("true"))
                    && req.version.parse::<f64>().is_ok_and(|v| v >= 61.0),
                ctx,
            ) {
                Ok((id, created)) => {
                    data.org.run_assignment_rules(&def.name, &id, req.write_headers, ctx);
                    Reply::json(
                        if created { 201 } else { 200 },
                        json!({ "id": id, "success": true, "errors": [], "created": created }),
                    )
                }
                Err(e) => Reply::error(e),
            },
            Err(e) => Reply::error(e),
        },
        ("GET", [id]) => get_record(&data.org, def, id, req),
        ("PATCH", [id]) => match body_object(&req.body).and_then(|b| {
            data.org.check_field_access(req.user_id, &def.name, b.keys().map(String::as_str))?;
            data.org.update(&def.name, id, &b, ctx)
        }) {
            Ok(()) => {
                data.org.run_assignment_rules(&def.name, id, req.write_headers, ctx);
                Reply::no_content()
            }
            Err(e) => Reply::error(e),
        },
        ("DELETE", [id]) => match data.org.delete(&def.name, id, ctx) {
            Ok(()) => Reply::no_content(),
            Err(e) => Reply::error(e),
        },
        (_, [] | [_]) => Reply::error(ApiError::new(
            405,
            "METHOD_NOT_ALLOWED",
            format!(
                "HTTP Method '{method}' not allowed. Allowed are {}",
                if rest.is_empty() { "GET,HEAD,POST" } else { "GET,HEAD,PATCH,DELETE" }
            ),
        )),
        _ => Reply::error(ApiError::not_found()),
    }
}

fn get_record(org: &Org, def: &ObjectDef, id: &str, req: &Request<'_>) -> Reply {
    let Some(record) = org.get(id).filter(|r| r.object == def.name) else {
        return Reply::error(ApiError::not_found());
    };
    if record.is_deleted() {
        return Reply::error(ApiError::new(404, "ENTITY_IS_DELETED", "entity is deleted"));
    }
    let mut fields = Vec::new();
    match req.query.get("fields") {
        Some(list) => {
            for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                match def.field(name) {
                    Some(f) => fields.push(f.name.clone()),
                    None => {
                        return Reply::error(ApiError::new(
                            400,
                            "INVALID_FIELD",
                            format!(
                                "No such column '{name}' on entity '{}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
                                def.name
                            ),
                        ));
                    }
                }
            }
        }
        None => fields.extend(def.fields.iter().map(|f| f.name.clone())),
    }
    let mut out = Map::new();
    out.insert(
        "attributes".into(),
        json!({ "type": def.name, "url": format!("/services/data/v{}/sobjects/{}/{}", req.version, def.name, record.id) }),
    );
    for f in fields {
        out.insert(f.clone(), record.get(&f).to_json());
    }
    Reply::json(200, Json::Object(out))
}

/// A path segment with its `%XX` escapes decoded (as Salesforce reads an External ID value).
fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse_query_string(qs: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(qs.as_bytes()).into_owned().collect()
}

fn resources(version: &str) -> Json {
    let base = format!("/services/data/v{version}");
    json!({
        "sobjects": format!("{base}/sobjects"),
        "query": format!("{base}/query"),
        "queryAll": format!("{base}/queryAll"),
        "limits": format!("{base}/limits"),
        "composite": format!("{base}/composite"),
    })
}

fn limits((used, max): (u64, u64)) -> Json {
    let pair = |max: u64, remaining: u64| json!({ "Max": max, "Remaining": remaining });
    json!({
        "DailyApiRequests": pair(max, max.saturating_sub(used)),
        "DailyBulkApiBatches": pair(15000, 15000),
        "DataStorageMB": pair(5, 5),
        "FileStorageMB": pair(20, 20),
        "SingleEmail": pair(15, 15),
        "MassEmail": pair(10, 10),
    })
}

fn object_summary(def: &ObjectDef, version: &str) -> Json {
    let base = format!("/services/data/v{version}/sobjects/{}", def.name);
    json!({
        "name": def.name,
        "label": def.label,
        "keyPrefix": def.key_prefix,
        "custom": false,
        "queryable": true,
        "createable": def.createable,
        "updateable": def.updateable,
        "deletable": def.deletable,
        "feedEnabled": def.feed_enabled,
        "urls": {
            "sobject": base,
            "describe": format!("{base}/describe"),
            "rowTemplate": format!("{base}/{{ID}}"),
        },
    })
}

fn global_describe(org: &Org, version: &str) -> Json {
    let sobjects: Vec<Json> = org.schema.objects().iter().map(|o| object_summary(o, version)).collect();
    json!({ "encoding": "UTF-8", "maxBatchSize": 200, "sobjects": sobjects })
}

fn describe(def: &ObjectDef, version: &str) -> Json {
    let mut out = object_summary(def, version);
    let fields: Vec<Json> = def
        .fields
        .iter()
        .map(|f| {
            json!({
                "name": f.name,
                "label": f.label,
                "type": f.kind.describe_name(),
                "length": f.length,
                "byteLength": if f.length_in_bytes { f.length } else { f.length * 3 },
                "nillable": f.nillable,
                "createable": f.createable,
                "updateable": f.updateable,
                "defaultedOnCreate": f.defaulted_on_create,
                "defaultValue": f.default_value,
                "custom": f.custom,
                "calculated": f.calculated,
                "autoNumber": f.auto_number,
                "unique": f.unique,
                "caseSensitive": f.case_sensitive,
                "externalId": f.external_id,
                "idLookup": f.external_id || f.name == "Id",
                "referenceTo": f.reference_to,
                "relationshipName": f.relationship_name,
                "restrictedPicklist": f.restricted_picklist,
                "picklistValues": f.picklist.iter().map(|v| json!({
                    "value": v,
                    "label": v,
                    "active": true,
                    "defaultValue": f.default_value.as_deref() == Some(v.as_str()),
                    "validFor": null,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let children: Vec<Json> = def
        .children
        .iter()
        .map(|c| json!({ "childSObject": c.child_object, "field": c.field, "relationshipName": c.name, "cascadeDelete": false }))
        .collect();
    out["fields"] = Json::Array(fields);
    out["childRelationships"] = Json::Array(children);
    out["recordTypeInfos"] = json!([]);
    out
}
