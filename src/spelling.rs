//! Spelling suggestions for names an admin typed ("did you mean ...?"): org fields in
//! mappings, settings in environment overrides.

/// The candidate nearest to `name` (case-insensitive), if it is at most `max_edits` away.
pub fn closest<'a>(candidates: impl IntoIterator<Item = &'a str>, name: &str, max_edits: usize) -> Option<&'a str> {
    let lower = name.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&c.to_lowercase(), &lower), c))
        .filter(|(d, _)| *d <= max_edits)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Levenshtein distance.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn near_misses_are_suggested_and_far_ones_not() {
        let names = ["poll.interval", "poll.overlap"];
        assert_eq!(super::closest(names, "poll.intervall", 2), Some("poll.interval"));
        assert_eq!(super::closest(names, "store_path", 2), None);
    }
}
