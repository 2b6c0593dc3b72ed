//! Formula fields as org seeds declare them (`formula: 'CaseNumber & " - " & Subject'`): a
//! small part of Salesforce's formula language, computed whenever the record is written and
//! read-only to the API, as in an org. Field names (of the same record), text in double or
//! single quotes, numbers, parentheses, `&` (joins text), `+ - * /`, and the functions
//! `TEXT`, `LEN`, `UPPER`, `LOWER`, `ISBLANK` and `BLANKVALUE`. A blank field is blank:
//! arithmetic on it is blank, `&` reads it as empty text.

use super::value::Value;

/// How deeply a formula may nest (parentheses and calls).
const MAX_DEPTH: usize = 64;
/// The longest formula Salesforce accepts, in characters.
const MAX_CHARS: usize = 3_900;

/// A parsed formula.
#[derive(Debug, Clone, PartialEq)]
pub enum Formula {
    Field(String),
    Text(String),
    Number(f64),
    Call(String, Vec<Formula>),
    Binary(Box<Formula>, char, Box<Formula>),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Text(String),
    Number(f64),
    Op(char),
}

fn tokens(src: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '&' | '+' | '-' | '*' | '/' | '(' | ')' | ',' => out.push(Token::Op(c)),
            '"' | '\'' => {
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => text.extend(chars.next().map(|(_, c)| c)),
                        Some((_, q)) if q == c => break,
                        Some((_, other)) => text.push(other),
                        None => return Err(format!("text starting at character {} is not closed", at + 1)),
                    }
                }
                out.push(Token::Text(text));
            }
            c if c.is_ascii_digit() => {
                let mut number = c.to_string();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_digit() || *d == '.') {
                    number.push(*d);
                    chars.next();
                }
                out.push(Token::Number(number.parse().map_err(|_| format!("{number:?} is not a number"))?));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut name = c.to_string();
                while let Some((_, d)) = chars.peek().filter(|(_, d)| d.is_ascii_alphanumeric() || *d == '_') {
                    name.push(*d);
                    chars.next();
                }
                out.push(Token::Name(name));
            }
            other => return Err(format!("unexpected {other:?} at character {}", at + 1)),
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<char> {
        match self.tokens.get(self.at) {
            Some(Token::Op(c)) => Some(*c),
            _ => None,
        }
    }

    fn expect(&mut self, op: char) -> Result<(), String> {
        if self.peek_op() == Some(op) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {op:?}"))
        }
    }

    /// `&` binds loosest, then `+ -`, then `* /`.
    fn binary(&mut self, level: usize) -> Result<Formula, String> {
        const LEVELS: [&[char]; 3] = [&['&'], &['+', '-'], &['*', '/']];
        let Some(ops) = LEVELS.get(level) else { return self.term() };
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self.peek_op().filter(|c| ops.contains(c)) {
            self.at += 1;
            let right = self.binary(level + 1)?;
            left = Formula::Binary(Box::new(left), op, Box::new(right));
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Formula, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nested more than {MAX_DEPTH} levels deep"));
        }
        let token = self.tokens.get(self.at).cloned().ok_or("the formula ends too soon")?;
        self.at += 1;
        let term = match token {
            Token::Text(t) => Formula::Text(t),
            Token::Number(n) => Formula::Number(n),
            Token::Op('(') => {
                let inner = self.binary(0)?;
                self.expect(')')?;
                inner
            }
            Token::Op('-') => Formula::Binary(Box::new(Formula::Number(0.0)), '-', Box::new(self.term()?)),
            Token::Name(name) if self.peek_op() == Some('(') => {
                self.at += 1;
                let function = name.to_ascii_uppercase();
                let mut args = Vec::new();
                if self.peek_op() != Some(')') {
                    args.push(self.binary(0)?);
                    while self.peek_op() == Some(',') {
                        self.at += 1;
                        args.push(self.binary(0)?);
                    }
                }
                self.expect(')')?;
                let arity = match function.as_str() {
                    "TEXT" | "LEN" | "UPPER" | "LOWER" | "ISBLANK" => 1,
                    "BLANKVALUE" => 2,
                    _ => return Err(format!("unknown function {name}")),
                };
                if args.len() != arity {
                    return Err(format!("{function} takes {arity} argument(s)"));
                }
                Formula::Call(function, args)
            }
            Token::Name(name) => Formula::Field(name),
            Token::Op(c) => return Err(format!("unexpected {c:?}")),
        };
        self.depth -= 1;
        Ok(term)
    }
}

impl Formula {
    /// Parses a formula; the error says what is wrong for the seed's author.
    pub fn parse(src: &str) -> Result<Formula, String> {
        if src.chars().count() > MAX_CHARS {
            return Err(format!("longer than {MAX_CHARS} characters"));
        }
        let mut parser = Parser { tokens: tokens(src)?, at: 0, depth: 0 };
        let formula = parser.binary(0)?;
        if parser.at < parser.tokens.len() {
            return Err(format!("unexpected {:?} after the formula", parser.tokens[parser.at]));
        }
        Ok(formula)
    }

    /// The fields the formula reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Formula::Field(f) => vec![f.as_str()],
            Formula::Text(_) | Formula::Number(_) => Vec::new(),
            Formula::Call(_, args) => args.iter().flat_map(Formula::fields).collect(),
            Formula::Binary(l, _, r) => l.fields().into_iter().chain(r.fields()).collect(),
        }
    }

    /// The formula's value over a record whose fields `get` reads.
    pub fn eval(&self, get: &dyn Fn(&str) -> Value) -> Value {
        match self {
            Formula::Field(f) => get(f),
            Formula::Text(t) => Value::Str(t.clone()),
            Formula::Number(n) => Value::Num(*n),
            Formula::Call(function, args) => {
                let first = args[0].eval(get);
                match function.as_str() {
                    "TEXT" => text(&first).map_or(Value::Null, Value::Str),
                    "LEN" => Value::Int(text(&first).map_or(0, |t| t.chars().count() as i64)),
                    "UPPER" => text(&first).map_or(Value::Null, |t| Value::Str(t.to_uppercase())),
                    "LOWER" => text(&first).map_or(Value::Null, |t| Value::Str(t.to_lowercase())),
                    "ISBLANK" => Value::Bool(text(&first).is_none()),
                    _ if text(&first).is_none() => args[1].eval(get),
                    _ => first,
                }
            }
            Formula::Binary(l, '&', r) => {
                let (l, r) = (l.eval(get), r.eval(get));
                Value::Str(format!("{}{}", text(&l).unwrap_or_default(), text(&r).unwrap_or_default()))
            }
            Formula::Binary(l, op, r) => match (number(&l.eval(get)), number(&r.eval(get))) {
                (Some(a), Some(b)) => match op {
                    '+' => Value::Num(a + b),
                    '-' => Value::Num(a - b),
                    '*' => Value::Num(a * b),
                    _ if b == 0.0 => Value::Null,
                    _ => Value::Num(a / b),
                },
                _ => Value::Null,
            },
        }
    }
}

/// A value as formula text; blank for null and empty text.
fn text(v: &Value) -> Option<String> {
    let t = match v {
        Value::Null => return None,
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Num(n) => n.to_string(),
        Value::Str(s) => s.clone(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(d) => super::value::format_datetime(d),
    };
    Some(t).filter(|t| !t.is_empty())
}

/// A formula's value as its field's type holds it.
pub fn as_type(value: Value, kind: super::schema::FieldType) -> Value {
    use super::schema::FieldType as T;
    match kind {
        T::Int => number(&value).map_or(Value::Null, |n| Value::Int(n.round() as i64)),
        T::Double | T::Currency => number(&value).map_or(Value::Null, Value::Num),
        T::Boolean => Value::Bool(matches!(value, Value::Bool(true))),
        k if k.is_text() => text(&value).map_or(Value::Null, Value::Str),
        _ => value,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Num(n) => Some(*n),
        Value::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str) -> Value {
        let get = |f: &str| match f {
            "Subject" => Value::Str("Drift".into()),
            "CaseNumber" => Value::Str("00001001".into()),
            "Amount" => Value::Num(10.0),
            _ => Value::Null,
        };
        Formula::parse(src).unwrap().eval(&get)
    }

    #[test]
    fn formulas_compute_text_and_numbers_with_blanks_as_blanks() {
        assert_eq!(eval(r#"CaseNumber & " - " & UPPER(Subject)"#), Value::Str("00001001 - DRIFT".into()));
        assert_eq!(eval("Amount * 2 + 1"), Value::Num(21.0));
        assert_eq!(eval("(Amount - 4) / 2"), Value::Num(3.0));
        assert_eq!(eval("Missing * 2"), Value::Null);
        assert_eq!(eval("Amount / 0"), Value::Null);
        assert_eq!(eval(r#"BLANKVALUE(Missing, 'none')"#), Value::Str("none".into()));
        assert_eq!(eval("ISBLANK(Missing)"), Value::Bool(true));
        assert_eq!(eval("LEN(Subject)"), Value::Int(5));
        assert_eq!(eval("-Amount"), Value::Num(-10.0));
        assert_eq!(Formula::parse("A & B").unwrap().fields(), ["A", "B"]);
    }

    #[test]
    fn malformed_and_hostile_formulas_are_refused_with_a_reason() {
        for (src, says) in [
            ("Subject &", "ends too soon"),
            ("\"open", "not closed"),
            ("NOW()", "unknown function"),
            ("LEN(a, b)", "takes 1"),
            ("a b", "after the formula"),
            ("a # b", "unexpected '#'"),
            ("(a", "expected ')'"),
        ] {
            let e = Formula::parse(src).unwrap_err();
            assert!(e.contains(says), "{src}: {e}");
        }
        let deep = format!("{}a{}", "(".repeat(1_000), ")".repeat(1_000));
        assert!(Formula::parse(&deep).unwrap_err().contains("nested more than 64"));
        let long = vec!["a"; 2_000].join("+");
        assert!(Formula::parse(&long).unwrap_err().contains("longer than 3900"));
    }
}
