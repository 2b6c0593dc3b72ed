//! The SOQL lexer: query text → tokens with their byte offsets, string literals unescaped
//! as Salesforce unescapes them.

use super::parse::{CmpOp, SyntaxError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Word(String),
    Str(String),
    Number(String),
    DateTime(String),
    Comma,
    LParen,
    RParen,
    Colon,
    Op(CmpOp),
    End,
}

impl Tok {
    pub(super) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => w.clone(),
            Tok::Str(s) => format!("'{s}'"),
            Tok::Number(n) | Tok::DateTime(n) => n.clone(),
            Tok::Comma => ",".into(),
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Colon => ":".into(),
            Tok::Op(op) => match op {
                CmpOp::Eq => "=",
                CmpOp::Ne => "!=",
                CmpOp::Lt => "<",
                CmpOp::Le => "<=",
                CmpOp::Gt => ">",
                CmpOp::Ge => ">=",
            }
            .into(),
            Tok::End => "<EOF>".into(),
        }
    }

    pub(super) fn is_keyword(&self, kw: &str) -> bool {
        matches!(self, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }
}

pub(super) fn lex(src: &str) -> Result<Vec<(Tok, usize)>, SyntaxError> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b',' => {
                toks.push((Tok::Comma, start));
                i += 1;
            }
            b'(' => {
                toks.push((Tok::LParen, start));
                i += 1;
            }
            b')' => {
                toks.push((Tok::RParen, start));
                i += 1;
            }
            b':' => {
                toks.push((Tok::Colon, start));
                i += 1;
            }
            b'=' => {
                toks.push((Tok::Op(CmpOp::Eq), start));
                i += 1;
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                toks.push((Tok::Op(CmpOp::Ne), start));
                i += 2;
            }
            b'<' => {
                let (op, len) = match bytes.get(i + 1) {
                    Some(b'=') => (CmpOp::Le, 2),
                    Some(b'>') => (CmpOp::Ne, 2),
                    _ => (CmpOp::Lt, 1),
                };
                toks.push((Tok::Op(op), start));
                i += len;
            }
            b'>' => {
                let (op, len) = if bytes.get(i + 1) == Some(&b'=') { (CmpOp::Ge, 2) } else { (CmpOp::Gt, 1) };
                toks.push((Tok::Op(op), start));
                i += len;
            }
            b'\'' => {
                let (s, end) = lex_string(src, i)?;
                toks.push((Tok::Str(s), start));
                i = end;
            }
            b'0'..=b'9' | b'-' | b'+' | b'.' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'.' | b':' | b'-' | b'+'))
                {
                    // A '+' or '-' only continues a datetime's offset or a date, never an
                    // expression; SOQL has no arithmetic.
                    j += 1;
                }
                let text = &src[i..j];
                let is_date = text.len() >= 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
                toks.push((if is_date { Tok::DateTime(text.into()) } else { Tok::Number(text.into()) }, start));
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.')) {
                    j += 1;
                }
                toks.push((Tok::Word(src[i..j].into()), start));
                i = j;
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(SyntaxError { offset: i, message: format!("unexpected token: '{ch}'") });
            }
        }
    }
    toks.push((Tok::End, src.len()));
    Ok(toks)
}

/// Lexes a quoted string starting at `start` (the opening quote); returns it unescaped and
/// the offset after the closing quote. `\%` and `\_` stay escaped for LIKE to interpret.
fn lex_string(src: &str, start: usize) -> Result<(String, usize), SyntaxError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '\'' => return Ok((out, start + 1 + k + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'b')) => out.push('\u{8}'),
                Some((_, 'f')) => out.push('\u{c}'),
                Some((_, e @ ('\'' | '"' | '\\'))) => out.push(e),
                Some((_, e @ ('%' | '_'))) => {
                    out.push('\\');
                    out.push(e);
                }
                Some((j, e)) => {
                    return Err(SyntaxError {
                        offset: start + 1 + j,
                        message: format!(
                            "Invalid string literal '\\{e}'. Illegal character sequence '\\{e}' in string literal."
                        ),
                    });
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err(SyntaxError { offset: start, message: "unexpected token: unterminated string literal".into() })
}
