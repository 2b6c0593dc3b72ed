//! Text helpers every stage may use: HTML to plain text, and an email reply without its
//! quoted history.

/// How deeply nested HTML may be before it is read without its structure: the renderer's
/// time grows with the square of the depth (20,000 nested `<div>`s took 13 s), and an
/// email body or article is someone else's input.
pub const MAX_HTML_DEPTH: usize = 200;

/// Plain text from an HTML body: block structure kept as line breaks, no markup. HTML
/// nested deeper than [`MAX_HTML_DEPTH`] is stripped of its tags in one linear pass instead.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') {
        return html.to_string();
    }
    if nesting_depth(html) > MAX_HTML_DEPTH {
        return strip_tags(html);
    }
    match html2text::from_read(html.as_bytes(), 10_000) {
        Ok(text) => text.trim().to_string(),
        Err(_) => html.to_string(),
    }
}

/// The deepest nesting of open tags, counted without parsing (void and self-closing tags
/// do not nest).
fn nesting_depth(html: &str) -> usize {
    const VOID: &[&str] =
        &["br", "hr", "img", "input", "meta", "link", "area", "base", "col", "embed", "source", "wbr"];
    let (mut depth, mut deepest) = (0usize, 0usize);
    for tag in html.split('<').skip(1) {
        let Some(end) = tag.find('>') else { continue };
        let inner = &tag[..end];
        if inner.starts_with('/') {
            depth = depth.saturating_sub(1);
        } else if !inner.starts_with('!') && !inner.starts_with('?') && !inner.ends_with('/') {
            let name: String =
                inner.chars().take_while(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase();
            if !VOID.contains(&name.as_str()) {
                depth += 1;
                deepest = deepest.max(depth);
            }
        }
    }
    deepest
}

/// Text without tags, block ends as line breaks and the common entities decoded: linear in
/// the input, for HTML too deep to render.
fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim_start_matches('/').to_ascii_lowercase();
        if ["br", "p", "div", "li", "h1", "h2", "h3", "h4", "tr"].iter().any(|b| tag.starts_with(b))
            && !out.ends_with('\n')
        {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let decoded = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    decoded.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
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

/// The longest email address accepted: what Salesforce's `Lead.Email` and
/// `Case.SuppliedEmail` hold.
pub const EMAIL_MAX_CHARS: usize = 80;

/// An address of the shape `local@domain.tld`, without spaces or angle brackets.
pub fn is_email(s: &str) -> bool {
    if s.chars().count() > EMAIL_MAX_CHARS
        || s.chars().any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c))
    {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_html_is_read_in_linear_time_and_keeps_its_text() {
        let html = format!("{}Hello &amp; welcome<br>second line{}", "<div>".repeat(100_000), "</div>".repeat(100_000));
        let started = std::time::Instant::now();
        let text = html_to_text(&html);
        assert_eq!(text, "Hello & welcome\nsecond line");
        assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    }

    #[test]
    fn ordinary_html_keeps_its_structure() {
        assert_eq!(nesting_depth("<p>a<br>b<img src=x/></p><div><span>c</span></div>"), 2);
        assert!(html_to_text("<h2>Steps</h2><p>Hold it.</p>").contains("## Steps"));
        assert_eq!(html_to_text("no markup"), "no markup");
        assert_eq!(strip_tags("<b>bold"), "bold");
        assert_eq!(strip_tags("keep <b unclosed"), "keep");
    }
}
