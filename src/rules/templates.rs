//! Bounds on handlebars templates. How deeply a template nests is checked before handlebars
//! parses it: rendering recurses once per block and per subexpression, so a template of
//! thousands of nested `{{#if}}` would overflow the stack of whatever thread renders it
//! (the daemon's, on reload); real templates nest two or three levels. What one rendering
//! writes is capped as it is written ([`render`]): `{{#each parts}}{{#each ../parts}}` over
//! a long case would otherwise build a text the square of the case's size.

use std::io::Write;

use handlebars::Handlebars;
use serde::Serialize;

/// The most bytes one rendering may write: Salesforce's cap on an email body
/// (`EmailMessage.TextBody`, 131,072 characters), the longest text a template makes.
pub const MAX_RENDERED_BYTES: usize = 131_072;

/// Renders a registered template, stopping with an error once it has written more than
/// [`MAX_RENDERED_BYTES`].
pub fn render(registry: &Handlebars, name: &str, data: &impl Serialize) -> Result<String, String> {
    render_in(registry, name, &handlebars::Context::wraps(data).map_err(|e| e.to_string())?)
}

/// Renders the template `name` in a context made once for several templates (converting
/// the data is most of the cost of a short template).
pub fn render_in(registry: &Handlebars, name: &str, context: &handlebars::Context) -> Result<String, String> {
    let mut out = Capped(Vec::new());
    match registry.render_with_context_to_write(name, context, &mut out) {
        Ok(()) => String::from_utf8(out.0).map_err(|e| e.to_string()),
        Err(_) if out.0.len() > MAX_RENDERED_BYTES => {
            Err(format!("the rendered text is longer than {MAX_RENDERED_BYTES} bytes"))
        }
        Err(e) => Err(e.to_string()),
    }
}

/// A buffer that refuses to grow past the cap (keeping one byte more, to tell why).
struct Capped(Vec<u8>);

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > MAX_RENDERED_BYTES {
            self.0.resize(MAX_RENDERED_BYTES + 1, 0);
            return Err(std::io::Error::other("rendered text too long"));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Blocks (`{{#...}}`) plus subexpressions (`(...)` inside a mustache) nested at once.
pub const MAX_NESTING: usize = 32;

/// Where (line, column, depth) the template first nests past [`MAX_NESTING`], if it does.
pub fn too_deep(template: &str) -> Option<(usize, usize, usize)> {
    let (mut line, mut column) = (1, 0);
    let mut blocks = 0usize;
    let mut parens = 0usize;
    let mut in_mustache = false;
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        column += 1;
        if c == '\n' {
            line += 1;
            column = 0;
        }
        if !in_mustache {
            if c == '{' && chars.peek() == Some(&'{') {
                chars.next();
                column += 1;
                in_mustache = true;
                parens = 0;
                // The mustache's first meaningful character decides what it is.
                while chars.peek() == Some(&'{') || chars.peek() == Some(&'~') {
                    chars.next();
                    column += 1;
                }
                match chars.peek() {
                    Some('#') => blocks += 1,
                    Some('/') => blocks = blocks.saturating_sub(1),
                    _ => {}
                }
            }
        } else if c == '(' {
            parens += 1;
        } else if c == ')' {
            parens = parens.saturating_sub(1);
        } else if c == '}' && chars.peek() == Some(&'}') {
            in_mustache = false;
        }
        let depth = blocks + parens;
        if depth > MAX_NESTING {
            return Some((line, column, depth));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendering_stops_at_the_cap() {
        let mut registry = Handlebars::new();
        registry
            .register_template_string("square", "{{#each parts}}{{#each ../parts}}{{this}}{{/each}}{{/each}}")
            .unwrap();
        let parts = vec!["x".repeat(1_000); 1_000];
        let e = render(&registry, "square", &serde_json::json!({ "parts": parts })).unwrap_err();
        assert!(e.contains("longer than 131072 bytes"), "{e}");
        let few = vec!["x".repeat(10); 10];
        assert_eq!(render(&registry, "square", &serde_json::json!({ "parts": few })).unwrap().len(), 1_000);
    }

    #[test]
    fn ordinary_templates_pass() {
        assert_eq!(too_deep("Hi {{name}},\n{{#if a}}{{#each b}}{{this}}{{/each}}{{/if}} {{lower (upper x)}}"), None);
        let siblings = "{{#if a}}x{{/if}}".repeat(1_000);
        assert_eq!(too_deep(&siblings), None, "depth, not count");
    }

    #[test]
    fn deep_blocks_and_subexpressions_are_found_where_they_pass_the_bound() {
        let deep = "{{#if a}}\n".repeat(5_000);
        let (line, _, depth) = too_deep(&deep).unwrap();
        assert_eq!((line, depth), (33, 33));
        let parens = format!("{{{{x {}y{}}}}}", "(f ".repeat(100), ")".repeat(100));
        assert!(too_deep(&parens).is_some());
    }
}
