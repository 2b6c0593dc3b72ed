//! A bound on how deeply a handlebars template nests, checked before handlebars parses it:
//! rendering recurses once per block and per subexpression, so a template of thousands of
//! nested `{{#if}}` would overflow the stack of whatever thread renders it (the daemon's,
//! on reload). Real templates nest two or three levels.

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
