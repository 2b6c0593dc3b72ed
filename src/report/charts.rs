//! The agent report's charts, drawn by the server as SVG text: no script, no external
//! asset, nothing a content security policy must loosen. Each carries a title and a
//! description with its numbers for screen readers, and the page shows the same numbers in
//! a table beside it. Every text in them is escaped.

use std::fmt::Write;

use super::agent::{Day, Figures};

/// The bars' colours and names, bottom up: what became of the day's conversations.
const OUTCOMES: [(&str, &str); 6] = [
    ("#067647", "confirmed (hard)"),
    ("#47cd89", "assumed (soft)"),
    ("#2e5aac", "routed to a person"),
    ("#d92d20", "abandoned"),
    ("#98a2b3", "agent involved, not settled"),
    ("#dde1e8", "agent not involved"),
];

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 36.0;
const BOTTOM: f64 = 28.0;
const TOP: f64 = 12.0;

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A day's conversations by outcome, in [`OUTCOMES`] order.
fn outcomes(f: &Figures) -> [u64; 6] {
    let settled = f.hard_resolutions + f.soft_resolutions + f.routed + f.abandoned;
    [
        f.hard_resolutions,
        f.soft_resolutions,
        f.routed,
        f.abandoned,
        f.involved.saturating_sub(settled),
        f.conversations.saturating_sub(f.involved),
    ]
}

/// A rounded-up scale maximum: 1, 2, 5 or 10 times a power of ten.
fn nice_max(max: u64) -> u64 {
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max.max(1) {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Conversations a day, stacked by outcome, with a legend.
pub fn by_day(days: &[Day]) -> String {
    let total: u64 = days.iter().map(|d| d.figures.conversations).sum();
    let max = nice_max(days.iter().map(|d| d.figures.conversations).max().unwrap_or(0));
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = (WIDTH - LEFT) / days.len().max(1) as f64;
    let bar = (slot * 0.7).max(1.0);
    let mut desc = format!("{total} conversations over {} days.", days.len());
    for d in days.iter().filter(|d| d.figures.conversations > 0) {
        let o = outcomes(&d.figures);
        let _ = write!(
            desc,
            " {}: {} conversations, {} confirmed, {} assumed, {} routed, {} abandoned.",
            d.date, d.figures.conversations, o[0], o[1], o[2], o[3]
        );
    }
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" aria-labelledby=\"chart-days-title chart-days-desc\">\
         <title id=\"chart-days-title\">Conversations a day, by outcome</title><desc id=\"chart-days-desc\">{}</desc>",
        HEIGHT + 38.0,
        escape(&desc)
    );
    let ticks: &[u64] = if max.is_multiple_of(2) { &[0, max / 2, max] } else { &[0, max] };
    for &tick in ticks {
        let y = TOP + plot_h - plot_h * tick as f64 / max as f64;
        let _ = write!(
            svg,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#eef0f4\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\" fill=\"#556\">{tick}</text>",
            LEFT - 4.0,
            y + 4.0
        );
    }
    for (i, d) in days.iter().enumerate() {
        let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
        let mut y = TOP + plot_h;
        for (n, (colour, name)) in outcomes(&d.figures).iter().zip(OUTCOMES) {
            if *n == 0 {
                continue;
            }
            let h = plot_h * *n as f64 / max as f64;
            y -= h;
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{h:.1}\" fill=\"{colour}\"><title>{}: {n} {}</title></rect>",
                d.date,
                escape(name)
            );
        }
        // A date under every bar when they fit, else under every seventh.
        if days.len() <= 14 || i % 7 == 0 {
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#556\">{}</text>",
                x + bar / 2.0,
                HEIGHT - BOTTOM + 14.0,
                d.date.format("%m-%d")
            );
        }
    }
    // The legend: three to a row.
    for (i, (colour, name)) in OUTCOMES.iter().enumerate() {
        let x = LEFT + 220.0 * (i % 3) as f64;
        let y = HEIGHT + 4.0 + 16.0 * (i / 3) as f64;
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#1d2433\">{}</text>",
            x + 14.0,
            y + 9.0,
            escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Each topic's resolution rate as a horizontal bar, with its conversations.
pub fn by_topic(topics: &[(String, Figures)]) -> String {
    let row = 22.0;
    let label = 180.0;
    let height = TOP + row * topics.len().max(1) as f64 + 8.0;
    let mut desc = String::from("Resolution rate by topic.");
    for (topic, f) in topics {
        let rate = f.resolution_rate.map_or("no rate".to_string(), |r| format!("{:.0}%", r * 100.0));
        let _ = write!(desc, " {topic}: {rate} of {} involved.", f.involved);
    }
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-labelledby=\"chart-topics-title chart-topics-desc\">\
         <title id=\"chart-topics-title\">Resolution rate by topic</title><desc id=\"chart-topics-desc\">{}</desc>",
        escape(&desc)
    );
    let span = WIDTH - label - 90.0;
    for (i, (topic, f)) in topics.iter().enumerate() {
        let y = TOP + row * i as f64;
        let rate = f.resolution_rate.unwrap_or(0.0);
        let shown: String = topic.chars().take(28).collect();
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" text-anchor=\"end\" fill=\"#1d2433\">{}</text>\
             <rect x=\"{label}\" y=\"{:.1}\" width=\"{span:.1}\" height=\"14\" fill=\"#eef0f4\"/>\
             <rect x=\"{label}\" y=\"{:.1}\" width=\"{:.1}\" height=\"14\" fill=\"#067647\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#1d2433\">{:.0}% of {}</text>",
            label - 6.0,
            y + 11.0,
            escape(&shown),
            y,
            y,
            span * rate,
            label + span + 6.0,
            y + 11.0,
            rate * 100.0,
            f.involved
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, conversations: u64, hard: u64, routed: u64) -> Day {
        let figures =
            Figures { conversations, involved: conversations, hard_resolutions: hard, routed, ..Default::default() };
        Day { date: date.parse().unwrap(), figures }
    }

    #[test]
    fn the_day_chart_draws_each_outcome_and_says_its_numbers() {
        let svg = by_day(&[day("2026-03-01", 4, 3, 1), day("2026-03-02", 0, 0, 0), day("2026-03-03", 2, 0, 2)]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("6 conversations over 3 days."), "{svg}");
        assert!(svg.contains("2026-03-01: 4 conversations, 3 confirmed, 0 assumed, 1 routed, 0 abandoned."));
        // Two bars on the first day, one on the third; the scale tops at 5 (4 rounded up),
        // with no half-way tick that is not a whole number.
        assert_eq!(svg.matches("<rect x=").count() - OUTCOMES.len(), 3);
        assert!(svg.contains(">5</text>") && !svg.contains(">2</text>"));
        assert!(!svg.contains("<script") && !svg.contains("href"));
    }

    #[test]
    fn topic_names_are_escaped() {
        let hostile = "<script>alert(1)</script>\"&'".to_string();
        let figures = Figures { involved: 2, resolution_rate: Some(0.5), ..Default::default() };
        let svg = by_topic(&[(hostile, figures)]);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;&quot;&amp;&#39;"));
        assert!(svg.contains("50% of 2"));
    }

    #[test]
    fn scales_round_up_to_readable_numbers() {
        assert_eq!([0, 1, 3, 7, 12, 51, 999].map(nice_max), [1, 1, 5, 10, 20, 100, 1000]);
    }
}
