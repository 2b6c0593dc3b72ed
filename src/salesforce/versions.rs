//! Which REST API version to speak: the newest both casebridge and the org support, or the
//! one the configuration pins, checked against what the org offers. The org lists its
//! versions at `/services/data/` (no sign-in needed; `[{"label", "url", "version"}]`,
//! oldest first).

use serde::Deserialize;

use super::client::Client;
use super::error::{Result, SalesforceError};

/// The oldest version casebridge works with: `updateOnly` upserts came with 61.0.
pub const MIN_API_VERSION: &str = "61.0";
/// The newest version casebridge is tested with (Spring '26). A newer org is spoken to in
/// this one, which Salesforce keeps serving for years.
pub const NEWEST_API_VERSION: &str = "66.0";

/// One entry of `/services/data/`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ApiVersion {
    pub version: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub url: String,
}

/// `59.0` → (59, 0); `None` for anything else.
pub fn parse(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// The version to use: `pinned` when the org offers it, else the newest offered within
/// [`MIN_API_VERSION`]..=[`NEWEST_API_VERSION`]. An error says what the org offers.
pub fn choose(offered: &[ApiVersion], pinned: Option<&str>) -> Result<String> {
    let offered_range = || match (offered.first(), offered.last()) {
        (Some(a), Some(b)) => format!("{} to {}", a.version, b.version),
        _ => "none".to_string(),
    };
    if let Some(pinned) = pinned {
        return if offered.iter().any(|v| v.version == pinned) {
            Ok(pinned.to_string())
        } else {
            Err(SalesforceError::Config(format!(
                "org.api_version: the org does not offer REST API {pinned} (it offers {})",
                offered_range()
            )))
        };
    }
    let (min, max) = (parse(MIN_API_VERSION), parse(NEWEST_API_VERSION));
    offered
        .iter()
        .filter_map(|v| parse(&v.version).map(|p| (p, v)))
        .filter(|(p, _)| Some(*p) >= min && Some(*p) <= max)
        .max_by_key(|(p, _)| *p)
        .map(|(_, v)| v.version.clone())
        .ok_or_else(|| {
            SalesforceError::Config(format!(
                "the org offers REST API {}, and casebridge needs {MIN_API_VERSION} or later",
                offered_range()
            ))
        })
}

impl Client {
    /// The versions the org offers (`GET /services/data/` on its instance).
    pub async fn available_versions(&self) -> Result<Vec<ApiVersion>> {
        let session = self.session().await?;
        self.versions_at(&session.instance_url).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(list: &[&str]) -> Vec<ApiVersion> {
        list.iter().map(|v| ApiVersion { version: v.to_string(), label: String::new(), url: String::new() }).collect()
    }

    #[test]
    fn the_newest_common_version_or_the_pinned_one() {
        assert_eq!(choose(&offered(&["60.0", "61.0", "62.0"]), None).unwrap(), "62.0");
        assert_eq!(choose(&offered(&["64.0", "66.0", "67.0", "68.0"]), None).unwrap(), "66.0");
        assert_eq!(choose(&offered(&["9.0", "61.0", "100.0"]), None).unwrap(), "61.0", "numeric, not text, order");
        assert_eq!(choose(&offered(&["61.0", "62.0"]), Some("61.0")).unwrap(), "61.0");
        let e = choose(&offered(&["58.0", "60.0"]), None).unwrap_err().to_string();
        assert!(e.contains("58.0 to 60.0") && e.contains("61.0 or later"), "{e}");
        let e = choose(&offered(&["61.0", "62.0"]), Some("66.0")).unwrap_err().to_string();
        assert!(e.contains("org.api_version") && e.contains("66.0") && e.contains("61.0 to 62.0"), "{e}");
    }
}
