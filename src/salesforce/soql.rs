//! Writing SOQL safely: literals escaped as SOQL requires, datetimes in SOQL's unquoted
//! form, field and object names checked, and a small builder for the queries casebridge
//! runs. Nothing outside this module should paste values into SOQL text.

use chrono::{DateTime, NaiveDate, Utc};

/// A value on the right of a SOQL comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
}

impl From<&str> for Literal {
    fn from(s: &str) -> Self {
        Literal::Str(s.to_string())
    }
}
impl From<String> for Literal {
    fn from(s: String) -> Self {
        Literal::Str(s)
    }
}
impl From<bool> for Literal {
    fn from(b: bool) -> Self {
        Literal::Bool(b)
    }
}
impl From<i64> for Literal {
    fn from(i: i64) -> Self {
        Literal::Int(i)
    }
}
impl From<DateTime<Utc>> for Literal {
    fn from(dt: DateTime<Utc>) -> Self {
        Literal::DateTime(dt)
    }
}

impl Literal {
    /// The SOQL text of this literal.
    pub fn render(&self) -> String {
        match self {
            Literal::Null => "null".into(),
            Literal::Bool(b) => b.to_string(),
            Literal::Int(i) => i.to_string(),
            Literal::Num(n) => n.to_string(),
            Literal::Str(s) => quote(s),
            Literal::Date(d) => d.format("%Y-%m-%d").to_string(),
            Literal::DateTime(dt) => datetime_literal(dt),
        }
    }
}

/// Quotes a string as a SOQL literal, escaping what SOQL requires.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Quotes a LIKE pattern that is already in escaped form (see [`like_literal`]): its
/// backslashes are kept as the escapes they are; quotes and control characters are escaped.
fn quote_pattern(pattern: &str) -> String {
    let mut out = String::from("'");
    for c in pattern.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Escapes LIKE wildcards so that `s` matches itself literally; quote the result.
pub fn like_literal(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// A datetime literal in SOQL's unquoted UTC form: `2024-05-01T12:00:00Z`.
///
/// Sub-second precision is dropped (SOQL's documented formats have none); callers that
/// poll with it keep an overlap, so the dropped milliseconds lose nothing.
pub fn datetime_literal(dt: &DateTime<Utc>) -> String {
    dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Parses a datetime as the REST API returns it: `2024-05-01T12:00:00.000+0000`
/// (no colon in the offset, so not RFC 3339), accepting RFC 3339 as well.
pub fn parse_datetime(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(s))
        .ok()
        .map(|dt| dt.with_timezone(&Utc))
}

/// A field or object name that is safe to place in SOQL text: letters, digits and
/// underscores, dotted for relationship paths.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Cmp {
        field: String,
        op: &'static str,
        value: Literal,
    },
    In {
        field: String,
        negated: bool,
        values: Vec<Literal>,
    },
    Like {
        field: String,
        pattern: String,
    },
    /// A semi-join: `field IN (SELECT ...)`. Salesforce takes it only at the top level of a
    /// `WHERE`, joined by `AND` (never under `OR` or `NOT`), at most two a query.
    InSelect {
        field: String,
        select: Box<Select>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

impl Filter {
    pub fn eq(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: "=", value: value.into() }
    }
    pub fn ne(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: "!=", value: value.into() }
    }
    pub fn gt(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: ">", value: value.into() }
    }
    pub fn ge(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: ">=", value: value.into() }
    }
    pub fn lt(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: "<", value: value.into() }
    }
    pub fn le(field: &str, value: impl Into<Literal>) -> Filter {
        Filter::Cmp { field: field.into(), op: "<=", value: value.into() }
    }
    pub fn is_in<L: Into<Literal>>(field: &str, values: impl IntoIterator<Item = L>) -> Filter {
        Filter::In { field: field.into(), negated: false, values: values.into_iter().map(Into::into).collect() }
    }
    pub fn not_in<L: Into<Literal>>(field: &str, values: impl IntoIterator<Item = L>) -> Filter {
        Filter::In { field: field.into(), negated: true, values: values.into_iter().map(Into::into).collect() }
    }
    /// `pattern` is used as written: `%` and `_` are wildcards (see [`like_literal`]).
    pub fn in_select(field: &str, select: Select) -> Filter {
        Filter::InSelect { field: field.into(), select: Box::new(select) }
    }
    pub fn like(field: &str, pattern: &str) -> Filter {
        Filter::Like { field: field.into(), pattern: pattern.into() }
    }
    pub fn and(self, other: Filter) -> Filter {
        match self {
            Filter::And(mut parts) => {
                parts.push(other);
                Filter::And(parts)
            }
            first => Filter::And(vec![first, other]),
        }
    }
    pub fn or(self, other: Filter) -> Filter {
        match self {
            Filter::Or(mut parts) => {
                parts.push(other);
                Filter::Or(parts)
            }
            first => Filter::Or(vec![first, other]),
        }
    }
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Filter {
        Filter::Not(Box::new(self))
    }

    fn render(&self, out: &mut String) -> Result<(), SoqlError> {
        match self {
            Filter::Cmp { field, op, value } => {
                out.push_str(checked(field)?);
                out.push(' ');
                out.push_str(op);
                out.push(' ');
                out.push_str(&value.render());
            }
            Filter::In { field, negated, values } => {
                if values.is_empty() {
                    return Err(SoqlError(format!("IN on {field} needs at least one value")));
                }
                out.push_str(checked(field)?);
                out.push_str(if *negated { " NOT IN (" } else { " IN (" });
                out.push_str(&values.iter().map(Literal::render).collect::<Vec<_>>().join(", "));
                out.push(')');
            }
            Filter::Like { field, pattern } => {
                out.push_str(checked(field)?);
                out.push_str(" LIKE ");
                out.push_str(&quote_pattern(pattern));
            }
            Filter::InSelect { field, select } => {
                out.push_str(checked(field)?);
                out.push_str(" IN (");
                out.push_str(&select.build()?);
                out.push(')');
            }
            Filter::And(parts) | Filter::Or(parts) => {
                let joiner = if matches!(self, Filter::And(_)) { " AND " } else { " OR " };
                // Parenthesise every compound part: SOQL refuses AND and OR mixed without them.
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        out.push_str(joiner);
                    }
                    let compound = matches!(part, Filter::And(_) | Filter::Or(_));
                    if compound {
                        out.push('(');
                    }
                    part.render(out)?;
                    if compound {
                        out.push(')');
                    }
                }
            }
            Filter::Not(inner) => {
                out.push_str("NOT (");
                inner.render(out)?;
                out.push(')');
            }
        }
        Ok(())
    }
}

/// A name that cannot be placed in SOQL, or an empty `IN`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build SOQL: {0}")]
pub struct SoqlError(pub String);

fn checked(name: &str) -> Result<&str, SoqlError> {
    if is_name(name) { Ok(name) } else { Err(SoqlError(format!("'{name}' is not a field or object name"))) }
}

/// A `SELECT` statement.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Select {
    fields: Vec<String>,
    subqueries: Vec<Select>,
    from: String,
    filter: Option<Filter>,
    order_by: Vec<(String, bool)>,
    limit: Option<usize>,
}

impl Select {
    pub fn new<S: AsRef<str>>(fields: impl IntoIterator<Item = S>, from: &str) -> Select {
        Select {
            fields: fields.into_iter().map(|f| f.as_ref().to_string()).collect(),
            from: from.into(),
            ..Default::default()
        }
    }

    /// Adds a child subquery; its `from` is the child relationship (`CaseComments`).
    pub fn with_children(mut self, child: Select) -> Select {
        self.subqueries.push(child);
        self
    }

    pub fn filter(mut self, filter: Filter) -> Select {
        self.filter = Some(match self.filter.take() {
            Some(existing) => existing.and(filter),
            None => filter,
        });
        self
    }

    pub fn order_by(mut self, field: &str, descending: bool) -> Select {
        self.order_by.push((field.into(), descending));
        self
    }

    pub fn limit(mut self, n: usize) -> Select {
        self.limit = Some(n);
        self
    }

    /// The SOQL text.
    pub fn build(&self) -> Result<String, SoqlError> {
        let mut out = String::from("SELECT ");
        if self.fields.is_empty() && self.subqueries.is_empty() {
            return Err(SoqlError(format!("a query on {} selects no fields", self.from)));
        }
        let mut items: Vec<String> =
            self.fields.iter().map(|f| checked(f).map(str::to_string)).collect::<Result<_, _>>()?;
        for sub in &self.subqueries {
            items.push(format!("({})", sub.build()?));
        }
        out.push_str(&items.join(", "));
        out.push_str(" FROM ");
        out.push_str(checked(&self.from)?);
        if let Some(f) = &self.filter {
            out.push_str(" WHERE ");
            f.render(&mut out)?;
        }
        if !self.order_by.is_empty() {
            let keys: Vec<String> = self
                .order_by
                .iter()
                .map(|(f, desc)| checked(f).map(|f| format!("{f} {}", if *desc { "DESC" } else { "ASC" })))
                .collect::<Result<_, _>>()?;
            out.push_str(" ORDER BY ");
            out.push_str(&keys.join(", "));
        }
        if let Some(n) = self.limit {
            out.push_str(&format!(" LIMIT {n}"));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn quotes_escape_what_soql_requires() {
        assert_eq!(quote("it's"), r"'it\'s'");
        assert_eq!(quote(r"back\slash"), r"'back\\slash'");
        assert_eq!(quote("two\nlines\r\tand \"quotes\""), r#"'two\nlines\r\tand \"quotes\"'"#);
        assert_eq!(quote("x' OR Name != '"), r"'x\' OR Name != \''");
    }

    #[test]
    fn datetimes_are_unquoted_utc() {
        let dt = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        assert_eq!(Literal::from(dt).render(), "2024-05-01T12:00:00Z");
        assert_eq!(parse_datetime("2024-05-01T12:00:00.000+0000"), Some(dt));
        assert_eq!(parse_datetime("2024-05-01T14:00:00+02:00"), Some(dt));
    }

    #[test]
    fn builds_the_poll_query_shape() {
        let since = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
        let q = Select::new(["Id", "Subject", "Contact.Email"], "Case")
            .with_children(Select::new(["Id", "CommentBody"], "CaseComments").order_by("CreatedDate", false))
            .filter(Filter::eq("OwnerId", "005000000000001AAA"))
            .filter(Filter::gt("SystemModstamp", since))
            .filter(Filter::eq("Status", "New").or(Filter::eq("Status", "Working")))
            .order_by("SystemModstamp", false)
            .limit(200)
            .build()
            .unwrap();
        assert_eq!(
            q,
            "SELECT Id, Subject, Contact.Email, (SELECT Id, CommentBody FROM CaseComments ORDER BY CreatedDate ASC) \
             FROM Case WHERE OwnerId = '005000000000001AAA' AND SystemModstamp > 2024-05-01T12:00:00Z \
             AND (Status = 'New' OR Status = 'Working') ORDER BY SystemModstamp ASC LIMIT 200"
        );
    }

    #[test]
    fn refuses_names_that_could_inject() {
        assert!(Select::new(["Id, (SELECT Id FROM Users)"], "Case").build().is_err());
        assert!(Select::new(["Id"], "Case WHERE 1=1").build().is_err());
        assert!(Select::new(["Id"], "Case").filter(Filter::eq("Name = 'x' OR Id", "y")).build().is_err());
        assert!(Select::new(["Id"], "Case").filter(Filter::is_in("Id", Vec::<String>::new())).build().is_err());
        assert!(is_name("Contact.Account.Support_Tier__c"));
    }

    #[test]
    fn like_keeps_wildcards_and_escapes_the_rest() {
        let q = Select::new(["Id"], "Case")
            .filter(Filter::like("Subject", &format!("{}%", like_literal("100%_off's"))))
            .build()
            .unwrap();
        assert_eq!(q, r"SELECT Id FROM Case WHERE Subject LIKE '100\%\_off\'s%'");
        let q = Select::new(["Id"], "Case").filter(Filter::like("Subject", &like_literal(r"a\%"))).build().unwrap();
        assert_eq!(q, r"SELECT Id FROM Case WHERE Subject LIKE 'a\\\%'");
    }
}
