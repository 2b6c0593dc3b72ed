//! Semi-joins and anti-joins: `WHERE Id IN (SELECT QueueId FROM QueueSobject WHERE ...)`
//! and `NOT IN (SELECT ...)`, with the restrictions Salesforce documents ("Considerations
//! for Semi-Join and Anti-Join Queries", SOQL and SOSL Reference) refused as it refuses
//! them, all as `MALFORMED_QUERY`:
//! - at most two per `WHERE` clause;
//! - only in the top-level `WHERE`, joined by `AND`: not with `OR`, not under `NOT` or
//!   inside a parenthesised group, not in a subquery's `WHERE` (no nesting);
//! - the left operand is an Id or reference field of the queried object, with no
//!   relationship path; the subquery selects one Id or reference field, without dot
//!   notation, of another object than the main query's, and refers to the same object as
//!   the left operand;
//! - some objects cannot be the subquery's (Task, Event, Note, Attachment, ...).
//!
//! The subquery runs once per query; each row is then tested against its set of Ids.

use std::collections::HashSet;

use super::eval::{Filter, Path, QueryError, check_cond, resolve};
use super::parse::{Cond, Name, Query, SelectItem};
use crate::salesforce::id;
use crate::sim::org::Org;
use crate::sim::schema::{FieldType, ObjectDef, Schema};
use crate::sim::value::Value;

/// At most this many semi-joins and anti-joins in one `WHERE` clause.
const MAX_PER_WHERE: usize = 2;

/// Objects Salesforce does not take as a semi-join's subquery.
const UNSUPPORTED_INNER: &[&str] =
    &["ActivityHistory", "Attachment", "Event", "EventRelation", "Note", "OpenActivity", "Task", "TaskRelation"];

const OR_MESSAGE: &str = "Semi join sub-selects are not allowed with the 'OR' operator";
const NESTED_WHERE_MESSAGE: &str =
    "Semi join sub-selects are only allowed at the top level WHERE expressions and not in nested WHERE expressions.";
const NESTING_MESSAGE: &str = "Nesting of semi join sub-selects is not supported";

/// The subquery of a checked semi-join: the Ids it selects.
#[derive(Debug, Clone)]
pub(super) struct SubSelect {
    object: String,
    field: String,
    filter: Option<Filter>,
}

fn malformed(offset: usize, message: impl Into<String>) -> QueryError {
    QueryError { offset, code: "MALFORMED_QUERY", message: message.into() }
}

/// Checks where the semi-joins of a main query's `WHERE` stand, and how many there are.
pub(super) fn check_placement(filter: &Cond) -> Result<(), QueryError> {
    let mut found = Vec::new();
    place(filter, Place::Root, &mut found)?;
    match found.get(MAX_PER_WHERE) {
        Some(third) => Err(malformed(*third, format!("Maximum {MAX_PER_WHERE} semi join sub-selects are allowed"))),
        None => Ok(()),
    }
}

/// Refuses any semi-join in a subquery's `WHERE`: a child subquery, or a semi-join's own.
pub(super) fn refuse_in_subquery(filter: Option<&Cond>, in_semi_join: bool) -> Result<(), QueryError> {
    let mut found = Vec::new();
    if let Some(cond) = filter {
        // Everything inside a subquery counts as nested: record positions, refuse any.
        let _ = place(cond, Place::Nested, &mut found);
    }
    match found.first() {
        Some(offset) if in_semi_join => Err(malformed(*offset, NESTING_MESSAGE)),
        Some(offset) => Err(malformed(*offset, NESTED_WHERE_MESSAGE)),
        None => Ok(()),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// The whole `WHERE`.
    Root,
    /// A term of the top-level `AND`.
    AndTerm,
    /// A term of a top-level `OR`.
    OrTerm,
    /// Anywhere deeper: under `NOT`, or in a parenthesised group inside the top level.
    Nested,
}

fn place(cond: &Cond, at: Place, found: &mut Vec<usize>) -> Result<(), QueryError> {
    match cond {
        Cond::SemiJoin { field, .. } => {
            found.push(field.offset);
            match at {
                Place::Root | Place::AndTerm => Ok(()),
                Place::OrTerm => Err(malformed(field.offset, OR_MESSAGE)),
                Place::Nested => Err(malformed(field.offset, NESTED_WHERE_MESSAGE)),
            }
        }
        Cond::And(parts) => {
            // `a AND (b AND c)` is still one top-level conjunction.
            let inner = if matches!(at, Place::Root | Place::AndTerm) { Place::AndTerm } else { Place::Nested };
            parts.iter().try_for_each(|c| place(c, inner, found))
        }
        Cond::Or(parts) => {
            let inner = if at == Place::Root { Place::OrTerm } else { Place::Nested };
            parts.iter().try_for_each(|c| place(c, inner, found))
        }
        Cond::Not(c) => place(c, Place::Nested, found),
        Cond::Compare { .. } | Cond::In { .. } | Cond::Like { .. } => Ok(()),
    }
}

/// Checks one semi-join or anti-join of a query on `object`.
pub(super) fn check(
    schema: &Schema,
    object: &ObjectDef,
    field: &Name,
    negated: bool,
    sub: &Query,
) -> Result<Filter, QueryError> {
    let left = resolve(schema, object, field)?;
    let left_is_key = matches!(left.kind, FieldType::Id | FieldType::Reference);
    if !left.hops.is_empty() || !left_is_key {
        return Err(malformed(
            field.offset,
            format!("semi join sub selects are only supported on id or reference fields, cannot use: '{}'", field.text),
        ));
    }
    let inner = super::eval::object_named(schema, &sub.from)?;
    if inner.name == "FeedItem" {
        super::eval::feed_item_filter(sub)?;
    }
    if UNSUPPORTED_INNER.iter().any(|o| o.eq_ignore_ascii_case(&inner.name)) {
        return Err(malformed(
            sub.from.offset,
            format!("Entity '{}' is not supported for semi join inner selects", inner.name),
        ));
    }
    if inner.name == object.name {
        return Err(malformed(
            sub.from.offset,
            format!("The inner and outer selects should not be on the same object type: {}", inner.name),
        ));
    }
    let Some(SelectItem::Field(selected)) = sub.select.first() else {
        return Err(malformed(sub.from.offset, "semi join sub selects must select one field"));
    };
    let right = resolve(schema, inner, selected)?;
    if !right.hops.is_empty() || !matches!(right.kind, FieldType::Id | FieldType::Reference) {
        return Err(malformed(
            selected.offset,
            format!("semi join sub selects can only query id fields, cannot use: '{}'", selected.text),
        ));
    }
    if !targets(schema, object, &left).iter().any(|t| targets(schema, inner, &right).contains(t)) {
        return Err(malformed(
            selected.offset,
            format!(
                "The selected field '{}' in the subquery and the left operand field '{}' should point to the same object type",
                selected.text, field.text
            ),
        ));
    }
    refuse_in_subquery(sub.filter.as_ref(), true)?;
    let filter = sub.filter.as_ref().map(|c| check_cond(schema, inner, c)).transpose()?;
    let sub = SubSelect { object: inner.name.clone(), field: right.field.clone(), filter };
    Ok(Filter::SemiJoin(left, negated, Box::new(sub)))
}

/// The objects an Id or reference field can point to.
fn targets(schema: &Schema, object: &ObjectDef, path: &Path) -> Vec<String> {
    if path.kind == FieldType::Id {
        return vec![object.name.clone()];
    }
    object
        .field(&path.field)
        .map(|f| f.reference_to.iter().filter_map(|t| schema.object(t)).map(|o| o.name.clone()).collect())
        .unwrap_or_default()
}

/// Runs each semi-join's subquery once, turning it into a set of Ids to test rows against.
pub(super) fn materialize(org: &Org, filter: &Filter) -> Filter {
    match filter {
        Filter::SemiJoin(path, negated, sub) => Filter::InSet(path.clone(), *negated, ids(org, sub)),
        Filter::And(parts) => Filter::And(parts.iter().map(|f| materialize(org, f)).collect()),
        Filter::Or(parts) => Filter::Or(parts.iter().map(|f| materialize(org, f)).collect()),
        Filter::Not(inner) => Filter::Not(Box::new(materialize(org, inner))),
        other => other.clone(),
    }
}

/// The non-null Ids the subquery selects, as 18-character Ids.
pub(super) fn ids(org: &Org, sub: &SubSelect) -> HashSet<String> {
    org.rows_of(&sub.object)
        .filter(|r| !r.is_deleted())
        .filter(|r| sub.filter.as_ref().is_none_or(|f| super::eval::matches(org, r, f)))
        .filter_map(|r| match r.get(&sub.field) {
            Value::Str(s) => id::to_18(s),
            _ => None,
        })
        .collect()
}
