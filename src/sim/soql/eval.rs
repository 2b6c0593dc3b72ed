//! Syntax tree → checked query → result rows. Names are resolved against the org schema
//! (Salesforce's `INVALID_FIELD` / `INVALID_TYPE` errors), filter literals are checked
//! against field types, and rows are rendered as the REST API renders them: `attributes`,
//! nested parent objects (or `null`), and child subqueries as nested query results.

use std::cmp::Ordering;
use std::collections::HashSet;

use chrono::{Duration, NaiveDate, TimeZone, Utc};
use serde_json::{Map, Value as Json, json};

use super::like::like;
use super::parse::{CmpOp, Cond, Literal, Name, OrderItem, Query, RelativeDate, SelectItem};
use super::semijoin;
use crate::salesforce::id;
use crate::sim::org::{Org, Record};
use crate::sim::schema::{FieldType, ObjectDef, Schema};
use crate::sim::value::Value;

/// A semantic error, placed at a byte offset of the query text.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryError {
    pub offset: usize,
    pub code: &'static str,
    pub message: String,
}

/// A query checked against the schema, ready to run.
#[derive(Debug, Clone)]
pub struct Checked {
    object: String,
    select: Vec<Column>,
    count_only: bool,
    filter: Option<Filter>,
    order: Vec<(Path, bool, bool)>,
    limit: Option<usize>,
    offset: usize,
}

#[derive(Debug, Clone)]
enum Column {
    Field(Path),
    Children { relationship: String, child_object: String, field: String, query: Box<Checked> },
}

/// A field reached from the queried object through zero or more parent relationships.
#[derive(Debug, Clone)]
pub(super) struct Path {
    /// (reference field, relationship name) per hop.
    pub(super) hops: Vec<(String, String)>,
    pub(super) field: String,
    pub(super) kind: FieldType,
}

#[derive(Debug, Clone)]
pub(super) enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
    Compare(Path, CmpOp, Operand),
    In(Path, bool, Vec<Operand>),
    Like(Path, String),
    /// `IN (SELECT ...)`, or `NOT IN` when negated; see [`semijoin`].
    SemiJoin(Path, bool, Box<semijoin::SubSelect>),
    /// A semi-join whose subquery has run: the Ids it selected.
    InSet(Path, bool, HashSet<String>),
}

/// A literal converted to the type of the field it is compared with.
#[derive(Debug, Clone)]
pub(super) enum Operand {
    Null,
    Value(Value),
    /// A day range [start, end) such as `TODAY` or `LAST_N_DAYS:7`, or a date compared
    /// with a datetime field.
    Range(chrono::DateTime<Utc>, chrono::DateTime<Utc>),
}

const FIELD_HINT: &str = "If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.";
const RELATIONSHIP_HINT: &str = "If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.";

/// Checks a parsed query against the schema.
pub fn check(schema: &Schema, query: &Query) -> Result<Checked, QueryError> {
    let object = object_named(schema, &query.from)?;
    if let Some(filter) = &query.filter {
        semijoin::check_placement(filter)?;
    }
    if object.name == "Knowledge__kav" {
        knowledge_filter(query)?;
    }
    if object.name == "FeedItem" {
        feed_item_filter(query)?;
    }
    check_on(schema, object, query)
}

/// Salesforce's implementation restriction on FeedItem for a user without View All Data
/// (casebridge's agent user has none): a query must name the posts by `Id`. A record's
/// feed (`CaseFeed`, or a case's `Feeds`) is what such a user reads instead.
pub(super) fn feed_item_filter(query: &Query) -> Result<(), QueryError> {
    let pins = |c: &Cond| match c {
        Cond::Compare { field, op: CmpOp::Eq, .. } | Cond::In { field, negated: false, .. } => {
            field.text.eq_ignore_ascii_case("Id")
        }
        _ => false,
    };
    pinned(query, pins, "Implementation restriction: FeedItem requires a filter by Id")
}

/// Salesforce's implementation restriction on article versions: a query must pin the
/// versions by id, by article id, or by one `PublishStatus` in a top-level `AND`.
fn knowledge_filter(query: &Query) -> Result<(), QueryError> {
    let pins = |c: &Cond| match c {
        Cond::Compare { field, op: CmpOp::Eq, value: Literal::Str(_) } => {
            ["Id", "KnowledgeArticleId", "PublishStatus"].iter().any(|f| field.text.eq_ignore_ascii_case(f))
        }
        Cond::In { field, negated: false, .. } => {
            ["Id", "KnowledgeArticleId"].iter().any(|f| field.text.eq_ignore_ascii_case(f))
        }
        _ => false,
    };
    pinned(
        query,
        pins,
        "Implementation restriction: When querying the Knowledge__kav object, you must filter using the following syntax: Id = [single ID], Id IN [list of ID's], KnowledgeArticleId = [single ID], KnowledgeArticleId IN [list of ID's] or PublishStatus = [status]. In addition PublishStatus is only permitted in a top-level AND condition.",
    )
}

/// An implementation restriction: the query's `WHERE` (or one part of its top-level `AND`)
/// must be a condition `pins` accepts, else `MALFORMED_QUERY` with `message`.
fn pinned(query: &Query, pins: impl Fn(&Cond) -> bool, message: &str) -> Result<(), QueryError> {
    let ok = match &query.filter {
        Some(Cond::And(parts)) => parts.iter().any(&pins),
        Some(c) => pins(c),
        None => false,
    };
    if ok {
        return Ok(());
    }
    Err(QueryError { offset: query.from.offset, code: "MALFORMED_QUERY", message: message.into() })
}

/// The object a `FROM` names, or Salesforce's `INVALID_TYPE`.
pub(super) fn object_named<'a>(schema: &'a Schema, name: &Name) -> Result<&'a ObjectDef, QueryError> {
    schema.object(&name.text).ok_or_else(|| QueryError {
        offset: name.offset,
        code: "INVALID_TYPE",
        message: format!(
            "sObject type '{}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names.",
            name.text
        ),
    })
}

fn check_on(schema: &Schema, object: &ObjectDef, query: &Query) -> Result<Checked, QueryError> {
    let mut select = Vec::new();
    let mut seen = Vec::<String>::new();
    for item in &query.select {
        match item {
            SelectItem::Field(name) => {
                let path = resolve(schema, object, name)?;
                let key = name.text.to_ascii_lowercase();
                if seen.contains(&key) {
                    return Err(QueryError {
                        offset: name.offset,
                        code: "MALFORMED_QUERY",
                        message: format!("duplicate field selected: {}", name.text),
                    });
                }
                seen.push(key);
                select.push(Column::Field(path));
            }
            SelectItem::Subquery(sub) => {
                let rel = object.child(&sub.from.text).ok_or_else(|| QueryError {
                    offset: sub.from.offset,
                    code: "INVALID_TYPE",
                    message: format!(
                        "Didn't understand relationship '{}' in FROM part of query call. {RELATIONSHIP_HINT}",
                        sub.from.text
                    ),
                })?;
                let child = schema.object(&rel.child_object).expect("schema child relationships are consistent");
                semijoin::refuse_in_subquery(sub.filter.as_ref(), false)?;
                select.push(Column::Children {
                    relationship: rel.name.clone(),
                    child_object: child.name.clone(),
                    field: rel.field.clone(),
                    query: Box::new(check_on(schema, child, sub)?),
                });
            }
        }
    }
    if let Some(offset) = query.offset
        && offset > 2000
    {
        return Err(QueryError {
            offset: 0,
            code: "NUMBER_OUTSIDE_VALID_RANGE",
            message: format!("Maximum SOQL offset allowed is 2000; {offset} was given"),
        });
    }
    let filter = query.filter.as_ref().map(|c| check_cond(schema, object, c)).transpose()?;
    let order = query
        .order_by
        .iter()
        .map(|OrderItem { field, descending, nulls_last }| {
            Ok((resolve(schema, object, field)?, *descending, *nulls_last))
        })
        .collect::<Result<_, QueryError>>()?;
    Ok(Checked {
        object: object.name.clone(),
        select,
        count_only: query.count_only,
        filter,
        order,
        limit: query.limit,
        offset: query.offset.unwrap_or(0),
    })
}

pub(super) fn resolve(schema: &Schema, object: &ObjectDef, name: &Name) -> Result<Path, QueryError> {
    let parts: Vec<&str> = name.parts().collect();
    let mut current: Vec<&ObjectDef> = vec![object];
    let mut hops = Vec::new();
    for rel in &parts[..parts.len() - 1] {
        let field = current.iter().find_map(|o| o.relationship(rel)).ok_or_else(|| QueryError {
            offset: name.offset,
            code: "INVALID_FIELD",
            message: format!("Didn't understand relationship '{rel}' in field path. {RELATIONSHIP_HINT}"),
        })?;
        hops.push((field.name.clone(), field.relationship_name.clone().unwrap_or_default()));
        current = field.reference_to.iter().filter_map(|t| schema.object(t)).collect();
    }
    let last = parts[parts.len() - 1];
    let field = current.iter().find_map(|o| o.field(last)).ok_or_else(|| QueryError {
        offset: name.offset,
        code: "INVALID_FIELD",
        message: format!("No such column '{last}' on entity '{}'. {FIELD_HINT}", current[0].name),
    })?;
    Ok(Path { hops, field: field.name.clone(), kind: field.kind })
}

pub(super) fn check_cond(schema: &Schema, object: &ObjectDef, cond: &Cond) -> Result<Filter, QueryError> {
    let all = |cs: &[Cond]| cs.iter().map(|c| check_cond(schema, object, c)).collect::<Result<Vec<_>, _>>();
    Ok(match cond {
        Cond::And(cs) => Filter::And(all(cs)?),
        Cond::Or(cs) => Filter::Or(all(cs)?),
        Cond::Not(c) => Filter::Not(Box::new(check_cond(schema, object, c)?)),
        Cond::Compare { field, op, value } => {
            let path = resolve(schema, object, field)?;
            let operand = operand(&path, field, value)?;
            Filter::Compare(path, *op, operand)
        }
        Cond::In { field, negated, values } => {
            let path = resolve(schema, object, field)?;
            let operands = values.iter().map(|v| operand(&path, field, v)).collect::<Result<_, _>>()?;
            Filter::In(path, *negated, operands)
        }
        Cond::SemiJoin { field, negated, query } => semijoin::check(schema, object, field, *negated, query)?,
        Cond::Like { field, pattern } => {
            let path = resolve(schema, object, field)?;
            if !path.kind.is_text() && path.kind != FieldType::Id && path.kind != FieldType::Reference {
                return Err(QueryError {
                    offset: field.offset,
                    code: "INVALID_QUERY_FILTER_OPERATOR",
                    message: format!("invalid operator on {} field: {}", path.kind.describe_name(), field.text),
                });
            }
            Filter::Like(path, pattern.clone())
        }
    })
}

/// Converts a literal to the field's type, refusing what Salesforce refuses.
fn operand(path: &Path, name: &Name, literal: &Literal) -> Result<Operand, QueryError> {
    let wrong = |expected: &str| QueryError {
        offset: name.offset,
        code: "INVALID_QUERY_FILTER_OPERATOR",
        message: format!(
            "value of filter criterion for field '{}' must be of type {expected} and should not be enclosed in quotes",
            name.text
        ),
    };
    if *literal == Literal::Null {
        return Ok(Operand::Null);
    }
    Ok(match path.kind {
        FieldType::Id | FieldType::Reference => match literal {
            Literal::Str(s) => match id::to_18(s) {
                Some(long) => Operand::Value(Value::Str(long)),
                None => {
                    return Err(QueryError {
                        offset: name.offset,
                        code: "INVALID_QUERY_FILTER_OPERATOR",
                        message: format!("invalid ID field: {s}"),
                    });
                }
            },
            _ => return Err(wrong("string")),
        },
        FieldType::Boolean => match literal {
            Literal::Bool(b) => Operand::Value(Value::Bool(*b)),
            _ => return Err(wrong("boolean")),
        },
        FieldType::Int | FieldType::Double | FieldType::Currency => match literal {
            Literal::Int(i) => Operand::Value(Value::Int(*i)),
            Literal::Num(n) => Operand::Value(Value::Num(*n)),
            _ => return Err(wrong("number")),
        },
        FieldType::Date => match literal {
            Literal::Date(d) => Operand::Value(Value::Date(*d)),
            Literal::Relative(r) => relative_range(*r),
            _ => return Err(wrong("date")),
        },
        FieldType::DateTime => match literal {
            Literal::DateTime(dt) => Operand::Value(Value::DateTime(*dt)),
            Literal::Relative(r) => relative_range(*r),
            _ => return Err(wrong("dateTime")),
        },
        _ => match literal {
            Literal::Str(s) => Operand::Value(Value::Str(s.clone())),
            Literal::Int(i) => Operand::Value(Value::Str(i.to_string())),
            _ => return Err(wrong("string")),
        },
    })
}

fn relative_range(r: RelativeDate) -> Operand {
    let today = Utc::now().date_naive();
    let start_of = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"));
    let (from, days) = match r {
        RelativeDate::Today => (today, 1),
        RelativeDate::Yesterday => (today - Duration::days(1), 1),
        RelativeDate::Tomorrow => (today + Duration::days(1), 1),
        // "LAST_N_DAYS:n" runs from midnight n days ago through the end of today.
        RelativeDate::LastNDays(n) => (today - Duration::days(n as i64), n as i64 + 1),
        RelativeDate::NextNDays(n) => (today, n as i64 + 1),
    };
    Operand::Range(start_of(from), start_of(from + Duration::days(days)))
}

/// Result rows of a checked query. Child subquery results come back whole; paging them
/// is the query locators' work (see `sim::cursors`).
pub struct Rows {
    pub total_size: usize,
    pub records: Vec<Json>,
    /// The row keys that hold child subquery results.
    pub child_relationships: Vec<String>,
}

/// Runs a checked query. `all_rows` is `queryAll` (deleted records included).
pub fn run(org: &Org, query: &Checked, all_rows: bool, version: &str) -> Rows {
    let filter = query.filter.as_ref().map(|f| semijoin::materialize(org, f));
    let matched: Vec<&Record> = org
        .rows_of(&query.object)
        .filter(|r| all_rows || !r.is_deleted())
        .filter(|r| filter.as_ref().is_none_or(|f| matches(org, r, f)))
        .collect();
    finish(org, query, matched, all_rows, version)
}

fn finish(org: &Org, query: &Checked, mut matched: Vec<&Record>, all_rows: bool, version: &str) -> Rows {
    if !query.order.is_empty() {
        matched.sort_by(|a, b| order(org, &query.order, a, b));
    }
    let after_offset = matched.into_iter().skip(query.offset);
    let limited: Vec<&Record> = match query.limit {
        Some(n) => after_offset.take(n).collect(),
        None => after_offset.collect(),
    };
    let child_relationships = query
        .select
        .iter()
        .filter_map(|c| match c {
            Column::Children { relationship, .. } => Some(relationship.clone()),
            Column::Field(_) => None,
        })
        .collect();
    if query.count_only {
        return Rows { total_size: limited.len(), records: Vec::new(), child_relationships };
    }
    let records = limited.iter().map(|r| render(org, query, r, all_rows, version)).collect::<Vec<_>>();
    Rows { total_size: records.len(), records, child_relationships }
}

fn order(org: &Org, keys: &[(Path, bool, bool)], a: &Record, b: &Record) -> Ordering {
    for (path, descending, nulls_last) in keys {
        let (va, vb) = (value_at(org, a, path), value_at(org, b, path));
        let ord = match (va.is_null(), vb.is_null()) {
            (true, true) => Ordering::Equal,
            (true, false) => {
                if *nulls_last {
                    Ordering::Greater
                } else {
                    Ordering::Less
                }
            }
            (false, true) => {
                if *nulls_last {
                    Ordering::Less
                } else {
                    Ordering::Greater
                }
            }
            (false, false) => {
                let o = va.compare(&vb).unwrap_or(Ordering::Equal);
                if *descending { o.reverse() } else { o }
            }
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.id.cmp(&b.id)
}

/// Follows a path's parent relationships; `Null` where a parent is missing.
fn value_at(org: &Org, record: &Record, path: &Path) -> Value {
    let mut current = record;
    for (ref_field, _) in &path.hops {
        match current.str(ref_field).and_then(|id| org.live(id)) {
            Some(parent) => current = parent,
            None => return Value::Null,
        }
    }
    current.get(&path.field).clone()
}

pub(super) fn matches(org: &Org, record: &Record, filter: &Filter) -> bool {
    match filter {
        Filter::And(fs) => fs.iter().all(|f| matches(org, record, f)),
        Filter::Or(fs) => fs.iter().any(|f| matches(org, record, f)),
        Filter::Not(f) => !matches(org, record, f),
        Filter::Compare(path, op, operand) => compare(&value_at(org, record, path), *op, operand),
        Filter::In(path, negated, operands) => {
            let v = value_at(org, record, path);
            let found = operands.iter().any(|o| compare(&v, CmpOp::Eq, o));
            found != *negated
        }
        Filter::Like(path, pattern) => match value_at(org, record, path) {
            Value::Str(s) => like(&s, pattern),
            _ => false,
        },
        Filter::SemiJoin(path, negated, sub) => {
            in_set(&value_at(org, record, path), &semijoin::ids(org, sub)) != *negated
        }
        Filter::InSet(path, negated, ids) => in_set(&value_at(org, record, path), ids) != *negated,
    }
}

fn in_set(value: &Value, ids: &HashSet<String>) -> bool {
    value.as_str().and_then(id::to_18).is_some_and(|v| ids.contains(&v))
}

fn compare(v: &Value, op: CmpOp, operand: &Operand) -> bool {
    match operand {
        Operand::Null => match op {
            CmpOp::Eq => v.is_null(),
            CmpOp::Ne => !v.is_null(),
            _ => false,
        },
        _ if v.is_null() => op == CmpOp::Ne,
        Operand::Value(lit) => {
            let Some(ord) = v.compare(lit) else { return op == CmpOp::Ne };
            match op {
                CmpOp::Eq => ord == Ordering::Equal,
                CmpOp::Ne => ord != Ordering::Equal,
                CmpOp::Lt => ord == Ordering::Less,
                CmpOp::Le => ord != Ordering::Greater,
                CmpOp::Gt => ord == Ordering::Greater,
                CmpOp::Ge => ord != Ordering::Less,
            }
        }
        Operand::Range(start, end) => {
            let at = match v {
                Value::DateTime(dt) => *dt,
                Value::Date(d) => Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists")),
                _ => return false,
            };
            match op {
                CmpOp::Eq => at >= *start && at < *end,
                CmpOp::Ne => at < *start || at >= *end,
                CmpOp::Lt => at < *start,
                CmpOp::Le => at < *end,
                CmpOp::Gt => at >= *end,
                CmpOp::Ge => at >= *start,
            }
        }
    }
}

fn attributes(object: &str, id: &str, version: &str) -> Json {
    json!({ "type": object, "url": format!("/services/data/v{version}/sobjects/{object}/{id}") })
}

fn render(org: &Org, query: &Checked, record: &Record, all_rows: bool, version: &str) -> Json {
    let mut out = Map::new();
    out.insert("attributes".into(), attributes(&record.object, &record.id, version));
    for column in &query.select {
        match column {
            Column::Field(path) => put_path(org, &mut out, record, &path.hops, &path.field, version),
            Column::Children { relationship, child_object, field, query: sub } => {
                let children: Vec<&Record> = org
                    .referencing(child_object, field, &record.id)
                    .filter(|c| all_rows || !c.is_deleted())
                    .filter(|c| sub.filter.as_ref().is_none_or(|f| matches(org, c, f)))
                    .collect();
                let rows = finish(org, sub, children, all_rows, version);
                let value = if rows.records.is_empty() {
                    Json::Null
                } else {
                    json!({ "totalSize": rows.total_size, "done": true, "records": rows.records })
                };
                out.insert(relationship.clone(), value);
            }
        }
    }
    Json::Object(out)
}

/// Writes one selected path into a row, nesting parent objects as the REST API does.
fn put_path(
    org: &Org,
    out: &mut Map<String, Json>,
    record: &Record,
    hops: &[(String, String)],
    field: &str,
    version: &str,
) {
    let Some(((ref_field, relationship), rest)) = hops.split_first() else {
        out.insert(field.to_string(), record.get(field).to_json());
        return;
    };
    match record.str(ref_field).and_then(|id| org.live(id)) {
        None => {
            out.entry(relationship.clone()).or_insert(Json::Null);
        }
        Some(parent) => {
            let slot = out.entry(relationship.clone()).or_insert(Json::Null);
            if !slot.is_object() {
                let mut m = Map::new();
                m.insert("attributes".into(), attributes(&parent.object, &parent.id, version));
                *slot = Json::Object(m);
            }
            if let Json::Object(m) = slot {
                put_path(org, m, parent, rest, field, version);
            }
        }
    }
}
