//! Typed field values inside the simulator, with the conversions Salesforce applies on the
//! way in (JSON body → value, with its validation errors) and on the way out (value → JSON,
//! datetimes in `2024-05-01T12:00:00.000+0000` form).

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::Value as Json;

use super::schema::{FieldDef, FieldType};

/// One stored field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

/// Formats a datetime the way the REST API returns it.
pub fn format_datetime(dt: &DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string()
}

/// Parses a datetime as clients send them: RFC 3339, or Salesforce's `+0000` form.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok().map(|dt| dt.with_timezone(&Utc))
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The JSON form the REST API returns.
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Num(n) => serde_json::Number::from_f64(*n).map(Json::Number).unwrap_or(Json::Null),
            Value::Str(s) => Json::String(s.clone()),
            Value::Date(d) => Json::String(d.format("%Y-%m-%d").to_string()),
            Value::DateTime(dt) => Json::String(format_datetime(dt)),
        }
    }

    /// Converts a JSON body value for `field`, as Salesforce's JSON deserialiser does.
    /// The error is the message of a `JSON_PARSER_ERROR`.
    pub fn from_json(field: &FieldDef, json: &Json) -> Result<Value, String> {
        let mismatch = |what: &str| {
            format!(
                "Cannot deserialize instance of {what} from {} value {} or request may be missing a required field",
                json_token_name(json),
                json
            )
        };
        if json.is_null() {
            return Ok(Value::Null);
        }
        Ok(match field.kind {
            FieldType::Boolean => match json {
                Json::Bool(b) => Value::Bool(*b),
                Json::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
                Json::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
                _ => return Err(mismatch("boolean")),
            },
            FieldType::Int => match json {
                Json::Number(n) if n.is_i64() => Value::Int(n.as_i64().unwrap_or_default()),
                Json::String(s) => Value::Int(s.trim().parse().map_err(|_| mismatch("int"))?),
                _ => return Err(mismatch("int")),
            },
            FieldType::Double | FieldType::Currency => match json {
                Json::Number(n) => Value::Num(n.as_f64().unwrap_or_default()),
                Json::String(s) => Value::Num(s.trim().parse().map_err(|_| mismatch("double"))?),
                _ => return Err(mismatch("double")),
            },
            FieldType::Date => match json {
                Json::String(s) => {
                    let day = s.get(..10).unwrap_or(s);
                    Value::Date(NaiveDate::parse_from_str(day, "%Y-%m-%d").map_err(|_| mismatch("date"))?)
                }
                _ => return Err(mismatch("date")),
            },
            FieldType::DateTime => match json {
                Json::String(s) => Value::DateTime(parse_datetime(s).ok_or_else(|| mismatch("dateTime"))?),
                _ => return Err(mismatch("dateTime")),
            },
            _ => match json {
                Json::String(s) => Value::Str(s.clone()),
                Json::Number(n) => Value::Str(n.to_string()),
                Json::Bool(b) => Value::Str(b.to_string()),
                _ => return Err(mismatch("string")),
            },
        })
    }

    /// SOQL ordering and comparison: strings compare case-insensitively, nulls compare
    /// to nothing (callers handle them), numbers across int/double.
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Some(cmp_ignore_case(a, b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Int(b)) => Some(a.cmp(b)),
            (Value::Int(a), Value::Num(b)) => (*a as f64).partial_cmp(b),
            (Value::Num(a), Value::Int(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::DateTime(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::Date(b)) => Some(a.date_naive().cmp(b)),
            (Value::Date(a), Value::DateTime(b)) => Some(a.cmp(&b.date_naive())),
            _ => None,
        }
    }
}

fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.chars().flat_map(char::to_lowercase).cmp(b.chars().flat_map(char::to_lowercase))
}

fn json_token_name(json: &Json) -> &'static str {
    match json {
        Json::Null => "VALUE_NULL",
        Json::Bool(true) => "VALUE_TRUE",
        Json::Bool(false) => "VALUE_FALSE",
        Json::Number(n) if n.is_f64() => "VALUE_NUMBER_FLOAT",
        Json::Number(_) => "VALUE_NUMBER_INT",
        Json::String(_) => "VALUE_STRING",
        Json::Array(_) => "START_ARRAY",
        Json::Object(_) => "START_OBJECT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_round_trip_in_salesforce_form() {
        let dt = parse_datetime("2024-05-01T12:00:00.123+0000").unwrap();
        assert_eq!(format_datetime(&dt), "2024-05-01T12:00:00.123+0000");
        let z = parse_datetime("2024-05-01T14:00:00+02:00").unwrap();
        assert_eq!(format_datetime(&z), "2024-05-01T12:00:00.000+0000");
        assert!(parse_datetime("yesterday").is_none());
    }

    #[test]
    fn strings_compare_ignoring_case() {
        let a = Value::Str("Widget".into());
        assert_eq!(a.compare(&Value::Str("wIDGET".into())), Some(Ordering::Equal));
        assert_eq!(Value::Int(2).compare(&Value::Num(2.5)), Some(Ordering::Less));
        assert_eq!(Value::Str("1".into()).compare(&Value::Int(1)), None);
    }
}
