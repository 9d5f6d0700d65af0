//! Usage reports (graph-settings-activity.md §2, §3): the Teams team activity and Microsoft 365
//! groups activity reports answer 302
//! with a pre-authenticated download URL; the CSV is fetched from there **without** our
//! bearer token (the download host is not Graph). And `/admin/reportSettings`, which says
//! whether names and ids in reports are concealed.

use reqwest::Method;
use serde::Deserialize;

use super::{Graph, GraphError};
use crate::microsoft::retry::Idempotency;

/// A report period the Teams report accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    D7,
    D30,
    D90,
    D180,
}

impl Period {
    fn as_str(&self) -> &'static str {
        match self {
            Period::D7 => "D7",
            Period::D30 => "D30",
            Period::D90 => "D90",
            Period::D180 => "D180",
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReportSettings {
    #[serde(default)]
    display_concealed_names: bool,
}

impl<'a> Graph<'a> {
    /// Whether reports conceal user, group and site names (then team ids cannot be joined).
    pub async fn reports_conceal_names(&self) -> Result<bool, GraphError> {
        let s: ReportSettings = self.get_json(&self.url("/admin/reportSettings"), &[]).await?;
        Ok(s.display_concealed_names)
    }

    /// The Teams team activity detail CSV for a period.
    pub async fn teams_activity_report(&self, period: Period) -> Result<String, GraphError> {
        self.usage_report("getTeamsTeamActivityDetail", period).await
    }

    /// The Microsoft 365 groups activity detail CSV for a period (graph-settings-activity.md §3):
    /// each group's last activity and its mailbox's received mail.
    pub async fn groups_activity_report(&self, period: Period) -> Result<String, GraphError> {
        self.usage_report("getOffice365GroupsActivityDetail", period).await
    }

    /// A usage report's CSV: Graph answers 302 to a pre-authenticated download.
    async fn usage_report(&self, function: &str, period: Period) -> Result<String, GraphError> {
        let url = self.url(&format!("/reports/{function}(period='{}')", period.as_str()));
        let reply = self.send(Method::GET, &url, None, &[], Idempotency::Safe).await?;
        let location = if reply.status == 302 || reply.status == 301 || reply.status == 307 {
            reply
                .headers
                .get("location")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| GraphError::Protocol("report redirect without Location".into()))?
                .to_string()
        } else {
            // Some clouds answer the CSV directly.
            return String::from_utf8(reply.body.to_vec())
                .map_err(|_| GraphError::Protocol("report is not UTF-8".into()));
        };
        let target =
            url::Url::parse(&location).map_err(|_| GraphError::Protocol("report Location is not a URL".into()))?;
        let loopback = target.host_str().is_some_and(crate::config::is_loopback_host);
        if target.scheme() != "https" && !loopback {
            return Err(GraphError::Protocol("report download is not https".into()));
        }
        self.download_anonymous(&location).await
    }
}
