//! Text helpers every stage may use: HTML to plain text, and an email reply without its
//! quoted history.

/// Plain text from an HTML body: block structure kept as line breaks, no markup.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') {
        return html.to_string();
    }
    match html2text::from_read(html.as_bytes(), 10_000) {
        Ok(text) => text.trim().to_string(),
        Err(_) => html.to_string(),
    }
}

/// Drops the quoted history of an email reply ("On ... wrote:" and `>` lines), so that the
/// agent sees what the customer wrote this time.
pub fn strip_quoted_reply(body: &str) -> String {
    let mut kept = Vec::new();
    for line in body.lines() {
        let t = line.trim_start();
        if t.starts_with('>') {
            continue;
        }
        if (t.starts_with("On ") && t.trim_end().ends_with("wrote:")) || t.starts_with("-----Original Message-----") {
            break;
        }
        kept.push(line);
    }
    let text = kept.join("\n").trim().to_string();
    if text.is_empty() { body.trim().to_string() } else { text }
}
