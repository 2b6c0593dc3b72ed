//! Durations as admins write them: `500ms`, `30s`, `5m`, `1h` or `1d` (a bare number is
//! seconds). Anything past [`MAX`] is refused rather than overflowing a clock later.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// The longest duration any setting takes: ten years. Each setting has its own, smaller range.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let expected = || format!("expected a duration such as 30s or 5m, found {text:?}");
    if number.is_empty() {
        return Err(expected());
    }
    let unit_ms: u64 = match unit.trim() {
        "ms" => 1,
        "s" | "" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("expected a duration such as 30s or 5m; unknown unit {other:?}")),
    };
    let too_long = || format!("{text:?} is longer than any setting allows (at most {})", format(&MAX));
    let n: u64 = number.parse().map_err(|_| too_long())?;
    let ms = n.checked_mul(unit_ms).ok_or_else(too_long)?;
    let d = Duration::from_millis(ms);
    if d > MAX { Err(too_long()) } else { Ok(d) }
}

pub fn format(d: &Duration) -> String {
    let ms = d.as_millis() as u64;
    match ms {
        m if m % 86_400_000 == 0 && m > 0 => format!("{}d", m / 86_400_000),
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(d))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Seconds(u64),
    }
    match Raw::deserialize(d).map_err(|_| serde::de::Error::custom("expected a duration such as 30s or 5m"))? {
        Raw::Text(t) => parse(&t).map_err(serde::de::Error::custom),
        Raw::Seconds(s) => parse(&format!("{s}s")).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert!(parse("2 weeks").is_err());
        assert!(parse("s").is_err());
        assert_eq!(format(&Duration::from_secs(120)), "2m");
        assert_eq!(format(&Duration::from_secs(86_400)), "1d");
    }

    #[test]
    fn huge_durations_are_refused_not_overflowed() {
        for text in ["9999999999999999d", "100000000d", "99999999999999999999999s", "18446744073709551615ms"] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("longer than any setting allows"), "{text}: {e}");
        }
    }
}
