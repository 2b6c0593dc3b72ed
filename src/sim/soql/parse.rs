//! SOQL text → syntax tree: a lexer and a recursive-descent parser for the subset the
//! simulator serves. Positions are kept so that errors point at the offending token the way
//! Salesforce's `ERROR at Row:1:Column:N` messages do.

use chrono::{DateTime, NaiveDate, Utc};

use super::lex::{Tok, lex};
use crate::sim::value::parse_datetime;

/// A syntax error: where, and what Salesforce would say.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Byte offset into the query text.
    pub offset: usize,
    pub message: String,
}

/// A parsed `SELECT`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub select: Vec<SelectItem>,
    /// `SELECT COUNT() FROM ...`
    pub count_only: bool,
    pub from: Name,
    pub filter: Option<Cond>,
    pub order_by: Vec<OrderItem>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// Where a `SELECT` stands: the statement, a child subquery in its field list, or the
/// subquery of a semi-join or anti-join, which selects one field and has no `ORDER BY`,
/// `LIMIT` or `OFFSET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Top,
    Child,
    SemiJoin,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SelectItem {
    Field(Name),
    Subquery(Box<Query>),
}

/// An identifier or dotted path (`Contact.Account.Name`) with its position.
#[derive(Debug, Clone, PartialEq)]
pub struct Name {
    pub text: String,
    pub offset: usize,
}

impl Name {
    pub fn parts(&self) -> impl Iterator<Item = &str> {
        self.text.split('.')
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        field: Name,
        op: CmpOp,
        value: Literal,
    },
    In {
        field: Name,
        negated: bool,
        values: Vec<Literal>,
    },
    /// `field IN (SELECT ...)` (a semi-join) or `field NOT IN (SELECT ...)` (an anti-join).
    SemiJoin {
        field: Name,
        negated: bool,
        query: Box<Query>,
    },
    Like {
        field: Name,
        pattern: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Int(i64),
    Num(f64),
    Str(String),
    Date(NaiveDate),
    DateTime(DateTime<Utc>),
    /// A relative date literal such as `TODAY` or `LAST_N_DAYS:7`, resolved at evaluation.
    Relative(RelativeDate),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelativeDate {
    Today,
    Yesterday,
    Tomorrow,
    LastNDays(u32),
    NextNDays(u32),
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderItem {
    pub field: Name,
    pub descending: bool,
    pub nulls_last: bool,
}

/// Parses one SOQL statement.
pub fn parse(src: &str) -> Result<Query, SyntaxError> {
    let toks = lex(src)?;
    let mut p = Parser { toks, pos: 0 };
    let q = p.query(Kind::Top)?;
    p.expect_end()?;
    Ok(q)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }

    fn offset(&self) -> usize {
        self.toks[self.pos].1
    }

    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn unexpected<T>(&self) -> Result<T, SyntaxError> {
        Err(SyntaxError { offset: self.offset(), message: format!("unexpected token: {}", self.peek().describe()) })
    }

    fn keyword(&mut self, kw: &str) -> Result<(), SyntaxError> {
        if self.peek().is_keyword(kw) {
            self.bump();
            Ok(())
        } else {
            self.unexpected()
        }
    }

    fn eat_keyword(&mut self, kw: &str) -> bool {
        if self.peek().is_keyword(kw) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, tok: Tok) -> Result<(), SyntaxError> {
        if *self.peek() == tok {
            self.bump();
            Ok(())
        } else {
            self.unexpected()
        }
    }

    fn expect_end(&mut self) -> Result<(), SyntaxError> {
        if *self.peek() == Tok::End { Ok(()) } else { self.unexpected() }
    }

    fn name(&mut self) -> Result<Name, SyntaxError> {
        match self.peek().clone() {
            Tok::Word(w) if !is_reserved(&w) && !w.ends_with('.') && !w.starts_with('.') && !w.contains("..") => {
                let offset = self.offset();
                self.bump();
                Ok(Name { text: w, offset })
            }
            _ => self.unexpected(),
        }
    }

    /// After FROM any identifier is an object name, keywords included: `FROM Group`.
    fn object_name(&mut self) -> Result<Name, SyntaxError> {
        match self.peek().clone() {
            Tok::Word(w) if !w.contains('.') => {
                let offset = self.offset();
                self.bump();
                Ok(Name { text: w, offset })
            }
            _ => self.unexpected(),
        }
    }

    fn query(&mut self, kind: Kind) -> Result<Query, SyntaxError> {
        self.keyword("SELECT")?;
        let mut select = Vec::new();
        let mut count_only = false;
        let count_call = self.toks.get(self.pos + 1).map(|t| &t.0) == Some(&Tok::LParen);
        if kind == Kind::SemiJoin {
            select.push(SelectItem::Field(self.name()?));
        } else if self.peek().is_keyword("COUNT") && count_call {
            self.bump();
            self.bump();
            self.expect(Tok::RParen)?;
            count_only = true;
        } else {
            loop {
                if *self.peek() == Tok::LParen {
                    if kind != Kind::Top {
                        return self.unexpected();
                    }
                    self.bump();
                    let sub = self.query(Kind::Child)?;
                    self.expect(Tok::RParen)?;
                    select.push(SelectItem::Subquery(Box::new(sub)));
                } else {
                    select.push(SelectItem::Field(self.name()?));
                }
                if *self.peek() == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        self.keyword("FROM")?;
        let from = self.object_name()?;
        let filter = if self.eat_keyword("WHERE") { Some(self.condition()?) } else { None };
        let mut order_by = Vec::new();
        if kind == Kind::SemiJoin {
            return Ok(Query { select, count_only, from, filter, order_by, limit: None, offset: None });
        }
        if self.eat_keyword("ORDER") {
            self.keyword("BY")?;
            loop {
                let field = self.name()?;
                let descending = if self.eat_keyword("DESC") {
                    true
                } else {
                    self.eat_keyword("ASC");
                    false
                };
                // Salesforce's default is NULLS FIRST for ascending and NULLS LAST for descending.
                let mut nulls_last = descending;
                if self.eat_keyword("NULLS") {
                    if self.eat_keyword("LAST") {
                        nulls_last = true;
                    } else {
                        self.keyword("FIRST")?;
                        nulls_last = false;
                    }
                }
                order_by.push(OrderItem { field, descending, nulls_last });
                if *self.peek() == Tok::Comma {
                    self.bump();
                } else {
                    break;
                }
            }
        }
        let limit = if self.eat_keyword("LIMIT") { Some(self.count()?) } else { None };
        let offset = if self.eat_keyword("OFFSET") { Some(self.count()?) } else { None };
        Ok(Query { select, count_only, from, filter, order_by, limit, offset })
    }

    fn count(&mut self) -> Result<usize, SyntaxError> {
        match self.peek().clone() {
            Tok::Number(n) => match n.parse::<usize>() {
                Ok(v) => {
                    self.bump();
                    Ok(v)
                }
                Err(_) => self.unexpected(),
            },
            _ => self.unexpected(),
        }
    }

    /// `a AND b AND c` or `a OR b OR c`; SOQL refuses to mix the two without parentheses.
    fn condition(&mut self) -> Result<Cond, SyntaxError> {
        let first = self.unary()?;
        let joiner = if self.peek().is_keyword("AND") {
            "AND"
        } else if self.peek().is_keyword("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let mut parts = vec![first];
        while self.eat_keyword(joiner) {
            parts.push(self.unary()?);
        }
        if self.peek().is_keyword("AND") || self.peek().is_keyword("OR") {
            return self.unexpected();
        }
        Ok(if joiner == "AND" { Cond::And(parts) } else { Cond::Or(parts) })
    }

    fn unary(&mut self) -> Result<Cond, SyntaxError> {
        if self.eat_keyword("NOT") {
            return Ok(Cond::Not(Box::new(self.unary()?)));
        }
        if *self.peek() == Tok::LParen {
            self.bump();
            let c = self.condition()?;
            self.expect(Tok::RParen)?;
            return Ok(c);
        }
        let field = self.name()?;
        if let Tok::Op(op) = *self.peek() {
            self.bump();
            let value = self.literal()?;
            return Ok(Cond::Compare { field, op, value });
        }
        if self.eat_keyword("LIKE") {
            return match self.bump() {
                (Tok::Str(pattern), _) => Ok(Cond::Like { field, pattern }),
                _ => {
                    self.pos -= 1;
                    self.unexpected()
                }
            };
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("IN") {
            self.expect(Tok::LParen)?;
            if self.peek().is_keyword("SELECT") {
                let query = Box::new(self.query(Kind::SemiJoin)?);
                self.expect(Tok::RParen)?;
                return Ok(Cond::SemiJoin { field, negated, query });
            }
            let mut values = vec![self.literal()?];
            while *self.peek() == Tok::Comma {
                self.bump();
                values.push(self.literal()?);
            }
            self.expect(Tok::RParen)?;
            return Ok(Cond::In { field, negated, values });
        }
        self.unexpected()
    }

    fn literal(&mut self) -> Result<Literal, SyntaxError> {
        let offset = self.offset();
        let bad = |message: String| Err(SyntaxError { offset, message });
        match self.peek().clone() {
            Tok::Str(s) => {
                self.bump();
                Ok(Literal::Str(s.replace("\\%", "%").replace("\\_", "_")))
            }
            Tok::Number(n) => {
                self.bump();
                if let Ok(i) = n.parse::<i64>() {
                    Ok(Literal::Int(i))
                } else if let Ok(f) = n.parse::<f64>() {
                    Ok(Literal::Num(f))
                } else {
                    bad(format!("unexpected token: {n}"))
                }
            }
            Tok::DateTime(text) => {
                self.bump();
                if text.len() == 10 {
                    match NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
                        Ok(d) => Ok(Literal::Date(d)),
                        Err(_) => bad(format!("line 1:{offset} no viable alternative at character '{text}'")),
                    }
                } else {
                    match parse_datetime(&text) {
                        Some(dt) => Ok(Literal::DateTime(dt)),
                        None => bad(format!("line 1:{offset} no viable alternative at character '{text}'")),
                    }
                }
            }
            Tok::Word(w) => {
                let upper = w.to_ascii_uppercase();
                let simple = match upper.as_str() {
                    "NULL" => Some(Literal::Null),
                    "TRUE" => Some(Literal::Bool(true)),
                    "FALSE" => Some(Literal::Bool(false)),
                    "TODAY" => Some(Literal::Relative(RelativeDate::Today)),
                    "YESTERDAY" => Some(Literal::Relative(RelativeDate::Yesterday)),
                    "TOMORROW" => Some(Literal::Relative(RelativeDate::Tomorrow)),
                    _ => None,
                };
                if let Some(l) = simple {
                    self.bump();
                    return Ok(l);
                }
                if upper == "LAST_N_DAYS" || upper == "NEXT_N_DAYS" {
                    self.bump();
                    self.expect(Tok::Colon)?;
                    let n = self.count()? as u32;
                    return Ok(Literal::Relative(if upper == "LAST_N_DAYS" {
                        RelativeDate::LastNDays(n)
                    } else {
                        RelativeDate::NextNDays(n)
                    }));
                }
                self.unexpected()
            }
            _ => self.unexpected(),
        }
    }
}

fn is_reserved(word: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "LIMIT", "OFFSET", "ASC", "DESC",
        "NULLS", "NULL", "TRUE", "FALSE", "GROUP", "HAVING", "WITH", "FOR", "USING", "INCLUDES", "EXCLUDES", "TYPEOF",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(q: &str) -> Query {
        parse(q).unwrap_or_else(|e| panic!("{q}: {e:?}"))
    }

    #[test]
    fn parses_the_daemons_poll_query() {
        let q = ok("SELECT Id, Subject, Contact.Account.Name, \
             (SELECT Id, CommentBody FROM CaseComments WHERE CreatedDate > 2024-05-01T12:00:00Z ORDER BY CreatedDate) \
             FROM Case WHERE OwnerId = '005000000000001' AND SystemModstamp > 2024-05-01T12:00:00.000+0000 \
             ORDER BY SystemModstamp ASC NULLS LAST, Id LIMIT 200 OFFSET 10");
        assert_eq!(q.select.len(), 4);
        assert!(matches!(&q.select[3], SelectItem::Subquery(s) if s.from.text == "CaseComments"));
        assert_eq!(q.from.text, "Case");
        assert!(matches!(&q.filter, Some(Cond::And(parts)) if parts.len() == 2));
        assert_eq!(q.order_by.len(), 2);
        assert!(q.order_by[0].nulls_last && !q.order_by[0].descending);
        assert_eq!((q.limit, q.offset), (Some(200), Some(10)));
    }

    #[test]
    fn string_escapes_are_decoded() {
        let q = ok(r"SELECT Id FROM Case WHERE Subject = 'it\'s a \\ \n test'");
        let Some(Cond::Compare { value: Literal::Str(s), .. }) = q.filter else { panic!() };
        assert_eq!(s, "it's a \\ \n test");
    }

    #[test]
    fn like_keeps_escaped_wildcards_for_the_matcher() {
        let q = ok(r"SELECT Id FROM Case WHERE Subject LIKE '100\%%'");
        let Some(Cond::Like { pattern, .. }) = q.filter else { panic!() };
        assert_eq!(pattern, r"100\%%");
    }

    #[test]
    fn mixing_and_with_or_needs_parentheses() {
        let e =
            parse("SELECT Id FROM Case WHERE IsClosed = false AND Status = 'New' OR Priority = 'High'").unwrap_err();
        assert_eq!(e.message, "unexpected token: OR");
        ok("SELECT Id FROM Case WHERE IsClosed = false AND (Status = 'New' OR Priority = 'High')");
        ok("SELECT Id FROM Case WHERE NOT Status IN ('New', 'Closed') AND Status NOT IN ('x')");
    }

    #[test]
    fn relative_dates_and_count() {
        let q = ok("SELECT COUNT() FROM Case WHERE CreatedDate = LAST_N_DAYS:7");
        assert!(q.count_only);
        assert!(matches!(q.filter, Some(Cond::Compare { value: Literal::Relative(RelativeDate::LastNDays(7)), .. })));
    }

    #[test]
    fn from_group_is_an_object_not_a_keyword() {
        let q = ok("SELECT Id, (SELECT SobjectType FROM QueueSobjects) FROM Group WHERE Type = 'Queue'");
        assert_eq!(q.from.text, "Group");
        assert_eq!(parse("SELECT Id FROM Group GROUP BY Type").unwrap_err().message, "unexpected token: GROUP");
    }

    #[test]
    fn semi_and_anti_joins() {
        let q = ok("SELECT Id FROM Group WHERE Id IN (SELECT QueueId FROM QueueSobject WHERE SobjectType = 'Case') \
             AND Id NOT IN (SELECT GroupId FROM GroupMember)");
        let Some(Cond::And(parts)) = q.filter else { panic!() };
        assert!(matches!(&parts[0], Cond::SemiJoin { negated: false, query, .. } if query.from.text == "QueueSobject"));
        assert!(matches!(&parts[1], Cond::SemiJoin { negated: true, query, .. } if query.filter.is_none()));
        // One selected field, and no ORDER BY, LIMIT or OFFSET in the subquery.
        let e = parse("SELECT Id FROM Group WHERE Id IN (SELECT QueueId, Id FROM QueueSobject)").unwrap_err();
        assert_eq!(e.message, "unexpected token: ,");
        let e = parse("SELECT Id FROM Group WHERE Id IN (SELECT QueueId FROM QueueSobject LIMIT 5)").unwrap_err();
        assert_eq!(e.message, "unexpected token: LIMIT");
    }

    #[test]
    fn errors_point_at_the_token() {
        let e = parse("SELECT Id FROM Case WHERE").unwrap_err();
        assert_eq!(e.message, "unexpected token: <EOF>");
        assert_eq!(e.offset, 25);
        let e = parse("SELECT Id FROM Case GROUP BY Status").unwrap_err();
        assert_eq!(e.message, "unexpected token: GROUP");
        assert!(parse("SELECT Id FROM Case WHERE Subject = 'open").is_err());
        assert!(parse("SELECT Id, FROM Case").is_err());
        assert!(parse("SELECT (SELECT Id FROM X) FROM Case").is_ok());
        assert!(parse("SELECT Id FROM Case LIMIT -1").is_err());
    }
}
