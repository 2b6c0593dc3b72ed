//! SOQL's `LIKE` operator, as the simulator matches it.

/// SOQL LIKE: `%` any run, `_` one character, `\%` and `\_` literal; case-insensitive.
pub(super) fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(chars.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let pat: Vec<P> = pat
        .into_iter()
        .flat_map(|p| match p {
            P::Char(c) => c.to_lowercase().map(P::Char).collect::<Vec<_>>(),
            other => vec![other],
        })
        .collect();
    // Classic wildcard matching with backtracking to the last `%`.
    let (mut t, mut p) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(P::Any) => {
                star = Some((p, t));
                p += 1;
            }
            Some(P::One) => {
                t += 1;
                p += 1;
            }
            Some(P::Char(c)) if *c == text[t] => {
                t += 1;
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|x| *x == P::Any)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        assert!(like("Printer on fire", "%fire"));
        assert!(like("Printer on fire", "printer%"));
        assert!(like("Printer on fire", "%ON%"));
        assert!(like("abc", "a_c"));
        assert!(!like("abc", "a_"));
        assert!(like("100%", r"100\%"));
        assert!(!like("1000", r"100\%"));
        assert!(like("", "%"));
        assert!(like("aXbXc", "%b%c"));
    }
}
