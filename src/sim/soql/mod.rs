//! The simulator's SOQL: parse ([`parse`]), check against the schema and run ([`eval`]),
//! semi-joins and anti-joins included ([`semijoin`]).
//! Errors come back in Salesforce's form: the offending line, a caret under the token,
//! `ERROR at Row:R:Column:C`, then what is wrong.

pub mod eval;
mod lex;
mod like;
pub mod parse;
mod semijoin;

use crate::sim::org::Org;

pub use eval::Rows;

/// A refused query: Salesforce's error code and message.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryFailure {
    pub code: &'static str,
    pub message: String,
}

/// Parses, checks and runs one query. `all_rows` is `queryAll`.
pub fn execute(org: &Org, text: &str, all_rows: bool, version: &str) -> Result<Rows, QueryFailure> {
    let query = parse::parse(text)
        .map_err(|e| QueryFailure { code: "MALFORMED_QUERY", message: locate(text, e.offset, &e.message) })?;
    let checked = eval::check(&org.schema, &query)
        .map_err(|e| QueryFailure { code: e.code, message: locate(text, e.offset, &e.message) })?;
    Ok(eval::run(org, &checked, all_rows, version))
}

/// Formats an error at byte `offset` of `text` the way Salesforce does.
fn locate(text: &str, offset: usize, detail: &str) -> String {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let row = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let column = text[line_start..offset].chars().count() + 1;
    let caret = format!("{}^", " ".repeat(column - 1));
    format!("\n{}\n{caret}\nERROR at Row:{row}:Column:{column}\n{detail}", &text[line_start..line_end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_message_points_at_row_and_column() {
        let m = locate("SELECT Idd\nFROM Case", 7, "No such column 'Idd'");
        assert_eq!(m, "\nSELECT Idd\n       ^\nERROR at Row:1:Column:8\nNo such column 'Idd'");
        let m = locate("SELECT Id\nFROM Cas", 15, "bad");
        assert!(m.contains("ERROR at Row:2:Column:6"), "{m}");
    }
}
