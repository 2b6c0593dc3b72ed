//! The composite resource (`POST /composite`): up to 25 subrequests run in order through
//! [`dispatch`], each able to refer to earlier results (`@{ref.path}`), with `allOrNone`
//! rolling the org back on the first failure.

use serde_json::{Map, Value as Json, json};

use super::api::{Data, Reply, Request, WriteHeaders, dispatch, parse_query_string};
use super::error::ApiError;

/// `POST /composite`: up to 25 subrequests, `@{ref.path}` references to earlier results,
/// and `allOrNone` rolling everything back on the first failure.
pub(super) fn composite(data: &mut Data, req: &Request<'_>) -> Reply {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Body {
        #[serde(default)]
        all_or_none: bool,
        composite_request: Vec<Sub>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sub {
        method: String,
        url: String,
        reference_id: String,
        #[serde(default)]
        body: Option<Json>,
        /// The subrequest's own headers: Salesforce documents these, not the outer
        /// request's, as what a subrequest runs with (beyond Accept, Authorization and
        /// Content-Type).
        #[serde(default)]
        http_headers: std::collections::BTreeMap<String, String>,
    }
    let body: Body = match req.body.clone().map(serde_json::from_value) {
        Some(Ok(b)) => b,
        Some(Err(e)) => return Reply::error(ApiError::new(400, "JSON_PARSER_ERROR", e.to_string())),
        None => return Reply::error(ApiError::new(400, "JSON_PARSER_ERROR", "The request body is missing")),
    };
    if body.composite_request.is_empty() || body.composite_request.len() > 25 {
        return Reply::error(ApiError::new(
            400,
            "INVALID_FIELD",
            format!(
                "compositeRequest: a composite request holds from 1 to 25 subrequests; this one has {}",
                body.composite_request.len()
            ),
        ));
    }
    let mut seen = Vec::new();
    for s in &body.composite_request {
        if seen.contains(&&s.reference_id) {
            return Reply::error(ApiError::new(
                400,
                "INVALID_FIELD",
                format!("Duplicate referenceId provided in the request: {}", s.reference_id),
            ));
        }
        seen.push(&s.reference_id);
    }
    if body.all_or_none {
        data.org.begin();
    }
    let mut results: Vec<(String, Reply)> = Vec::new();
    let mut failed = false;
    for sub in &body.composite_request {
        if failed && body.all_or_none {
            results.push((sub.reference_id.clone(), halted()));
            continue;
        }
        let headers = WriteHeaders::from_pairs(sub.http_headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let reply = run_subrequest(data, req, sub.method.as_str(), &sub.url, sub.body.as_ref(), headers, &results);
        failed |= !reply.is_success();
        results.push((sub.reference_id.clone(), reply));
    }
    if body.all_or_none {
        if failed {
            data.org.rollback();
            for (_, reply) in results.iter_mut().filter(|(_, r)| r.is_success()) {
                *reply = halted();
            }
        } else {
            data.org.commit();
        }
    }
    let items: Vec<Json> = results
        .into_iter()
        .map(|(reference_id, r)| {
            let headers: Map<String, Json> = r.headers.into_iter().map(|(k, v)| (k, Json::String(v))).collect();
            json!({ "body": r.body, "httpHeaders": headers, "httpStatusCode": r.status, "referenceId": reference_id })
        })
        .collect();
    Reply::json(200, json!({ "compositeResponse": items }))
}

fn halted() -> Reply {
    Reply::error(ApiError::new(
        400,
        "PROCESSING_HALTED",
        "The transaction was rolled back since another operation in the same transaction failed.",
    ))
}

fn run_subrequest(
    data: &mut Data,
    req: &Request<'_>,
    method: &str,
    url: &str,
    body: Option<&Json>,
    write_headers: WriteHeaders,
    earlier: &[(String, Reply)],
) -> Reply {
    let url = match substitute(url, earlier) {
        Ok(u) => u,
        Err(e) => return Reply::error(e),
    };
    let body = match body.map(|b| substitute_json(b, earlier)).transpose() {
        Ok(b) => b,
        Err(e) => return Reply::error(e),
    };
    let (path, query_string) = url.split_once('?').unwrap_or((&url, ""));
    let Some(rest) = path.strip_prefix("/services/data/") else {
        return Reply::error(ApiError::not_found());
    };
    let mut parts = rest.trim_end_matches('/').split('/');
    let version = parts.next().unwrap_or_default();
    let Some(version) = version.strip_prefix('v') else {
        return Reply::error(ApiError::not_found());
    };
    let segments: Vec<&str> = parts.collect();
    if segments.first() == Some(&"composite") {
        return Reply::error(ApiError::new(
            400,
            "INVALID_FIELD",
            "A composite subrequest cannot be another composite request",
        ));
    }
    let query = parse_query_string(query_string);
    dispatch(
        data,
        Request {
            method: &method.to_ascii_uppercase(),
            segments,
            version,
            query: &query,
            body,
            user_id: req.user_id,
            batch_size: req.batch_size,
            usage: req.usage,
            write_headers,
        },
    )
}

/// Replaces `@{ref.path}` in a string with values from earlier subrequest results.
fn substitute(text: &str, earlier: &[(String, Reply)]) -> Result<String, ApiError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("@{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| ApiError::new(400, "INVALID_FIELD", format!("Unterminated reference in '{text}'")))?;
        let value = lookup_reference(&after[..end], earlier)?;
        match value {
            Json::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn substitute_json(value: &Json, earlier: &[(String, Reply)]) -> Result<Json, ApiError> {
    Ok(match value {
        Json::String(s) if s.contains("@{") => {
            // A string that is exactly one reference takes the referenced value's type.
            if s.starts_with("@{") && s.ends_with('}') && s.matches("@{").count() == 1 {
                lookup_reference(&s[2..s.len() - 1], earlier)?
            } else {
                Json::String(substitute(s, earlier)?)
            }
        }
        Json::Array(items) => Json::Array(items.iter().map(|i| substitute_json(i, earlier)).collect::<Result<_, _>>()?),
        Json::Object(m) => Json::Object(
            m.iter().map(|(k, v)| Ok((k.clone(), substitute_json(v, earlier)?))).collect::<Result<_, ApiError>>()?,
        ),
        other => other.clone(),
    })
}

/// Resolves `refId.field`, `refId.records[0].Id` and the like.
fn lookup_reference(expr: &str, earlier: &[(String, Reply)]) -> Result<Json, ApiError> {
    let (reference, path) = expr.split_once('.').unwrap_or((expr, ""));
    let missing = || {
        ApiError::new(
            400,
            "PROCESSING_HALTED",
            format!(
                "Invalid reference specified. No value for {expr} found in {reference}. Provided referenceId ('{reference}') must match a referenceId for a previous request."
            ),
        )
    };
    let (_, reply) = earlier.iter().find(|(r, _)| r == reference).ok_or_else(missing)?;
    if !reply.is_success() {
        return Err(missing());
    }
    let mut current = reply.body.as_ref().ok_or_else(missing)?;
    for step in path.split('.').filter(|s| !s.is_empty()) {
        let (name, indexes) = match step.find('[') {
            Some(i) => (&step[..i], &step[i..]),
            None => (step, ""),
        };
        if !name.is_empty() {
            current = current.get(name).ok_or_else(missing)?;
        }
        for index in indexes.split('[').filter(|s| !s.is_empty()) {
            let n: usize = index.trim_end_matches(']').parse().map_err(|_| missing())?;
            current = current.get(n).ok_or_else(missing)?;
        }
    }
    Ok(current.clone())
}
