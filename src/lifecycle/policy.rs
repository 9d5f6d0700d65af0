//! A tenant's lifecycle policy (issue 16, item 2): when a group counts as inactive, what keeps
//! it out of review, and what happens when its owners do not answer. Stored in the customer's
//! GroupMgr site, never in our database; this is its shape and its rules.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::domain::InvalidInput;

/// An activity signal a policy may count. The SharePoint kinds split the audit feed's
/// SharePoint records (file edits, file views, pages, lists); `teams` is the Teams audit and
/// report (the later of the two); `mail` the group mailbox. `teamsReport` and `teamsAudit` are
/// one Teams source alone, for a policy that trusts only one (the report lags Microsoft's day
/// by about two and is withheld while names are concealed; the feed sees what it has read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Signal {
    Teams,
    SharePointFileEdit,
    SharePointFileView,
    SharePointPage,
    SharePointList,
    Mail,
    TeamsReport,
    TeamsAudit,
}

impl Signal {
    pub const ALL: [Signal; 8] = [
        Signal::Teams,
        Signal::SharePointFileEdit,
        Signal::SharePointFileView,
        Signal::SharePointPage,
        Signal::SharePointList,
        Signal::Mail,
        Signal::TeamsReport,
        Signal::TeamsAudit,
    ];

    /// The signals of a group's activity (`GET /api/groups/{id}/activity`), each once: the
    /// two Teams sources are `teams`'s `bySource` there.
    pub const OF_ACTIVITY: [Signal; 6] = [
        Signal::Teams,
        Signal::SharePointFileEdit,
        Signal::SharePointFileView,
        Signal::SharePointPage,
        Signal::SharePointList,
        Signal::Mail,
    ];
}

/// A set written as a JSON array whose items must be unique (the description says
/// `uniqueItems`): a repeat is refused, not silently merged.
fn unique<'de, D, T>(d: D) -> Result<BTreeSet<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Ord + std::fmt::Debug,
{
    let items = Vec::<T>::deserialize(d)?;
    let mut set = BTreeSet::new();
    for item in items {
        if set.contains(&item) {
            return Err(serde::de::Error::custom(format!("{item:?} is given twice")));
        }
        set.insert(item);
    }
    Ok(set)
}

/// Groups the policy never acts on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exclusions {
    /// At most 1,000 (the policy is kept in one SharePoint text column of 63,999 characters).
    #[serde(default, deserialize_with = "unique")]
    #[schema(max_items = 1000)]
    pub group_ids: BTreeSet<uuid::Uuid>,
    /// Display-name prefixes, compared case-insensitively; at most 100, each 1 to 64
    /// characters and not only white space.
    #[serde(default)]
    #[schema(max_items = 100)]
    pub name_prefixes: Vec<String>,
    /// Sensitivity label ids (at most 100): groups carrying any are held out, and so are
    /// groups whose labels the sync has not read yet.
    #[serde(default, deserialize_with = "unique")]
    #[schema(max_items = 100)]
    pub sensitivity_labels: BTreeSet<uuid::Uuid>,
    /// Groups younger than this many days (1 to 3650).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 3650)]
    pub younger_than_days: Option<u32>,
}

/// What happens when a review's owners do not answer in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", tag = "action", deny_unknown_fields)]
pub enum NoAnswer {
    /// Nothing: the review stays open.
    Nothing,
    /// Archive the team; with `deleteAfterDays`, delete (soft, restorable for 30 days) that
    /// many days later.
    Archive {
        #[serde(default, rename = "deleteAfterDays", skip_serializing_if = "Option::is_none")]
        #[schema(minimum = 1, maximum = 365)]
        delete_after_days: Option<u32>,
    },
}

/// Who runs the actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Execution {
    /// An administrator confirms each batch; actions run on their behalf.
    #[default]
    Manual,
    /// GroupMgr acts with application permissions the tenant granted for this.
    Automatic,
}

/// A tenant's lifecycle policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"inactivityDays": 90, "signals": ["teams", "sharePointFileEdit", "mail"], "exclusions": {"namePrefixes": ["HR-"], "youngerThanDays": 30}, "reviewWindowDays": 14, "onNoAnswer": {"action": "archive", "deleteAfterDays": 60}, "maxActionsPerDay": 50, "execution": "manual"}))]
pub struct LifecyclePolicy {
    /// A group is inactive when no counted signal saw activity for this many days (30 to
    /// 3650).
    #[schema(minimum = 30, maximum = 3650)]
    pub inactivity_days: u32,
    /// The signals that count as activity (e.g. edits but not views); at least one.
    #[serde(deserialize_with = "unique")]
    #[schema(min_items = 1)]
    pub signals: BTreeSet<Signal>,
    #[serde(default)]
    pub exclusions: Exclusions,
    /// Days owners have to answer a review (1 to 90).
    #[schema(minimum = 1, maximum = 90)]
    pub review_window_days: u32,
    pub on_no_answer: NoAnswer,
    /// Most actions per day for the tenant (1 to 1000).
    #[schema(minimum = 1, maximum = 1000)]
    pub max_actions_per_day: u32,
    #[serde(default)]
    pub execution: Execution,
}

impl LifecyclePolicy {
    /// The policy's rules, each refused with the field it concerns.
    pub fn validate(&self) -> Result<(), InvalidInput> {
        let range = |field: &'static str, v: u32, lo: u32, hi: u32| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(InvalidInput::new(field, format!("must be between {lo} and {hi}")))
            }
        };
        range("inactivityDays", self.inactivity_days, 30, 3650)?;
        range("reviewWindowDays", self.review_window_days, 1, 90)?;
        range("maxActionsPerDay", self.max_actions_per_day, 1, 1000)?;
        if self.signals.is_empty() {
            return Err(InvalidInput::new("signals", "must name at least one signal"));
        }
        if let Some(days) = self.exclusions.younger_than_days {
            range("exclusions.youngerThanDays", days, 1, 3650)?;
        }
        if self.exclusions.name_prefixes.len() > 100
            || self
                .exclusions
                .name_prefixes
                .iter()
                .any(|p| p.trim().is_empty() || p.chars().count() > 64)
        {
            return Err(InvalidInput::new(
                "exclusions.namePrefixes",
                "at most 100 prefixes, each 1 to 64 characters",
            ));
        }
        // The policy is kept in one SharePoint text column (63,999 characters): 1,000 ids of
        // 38 characters fit beside the other limits.
        if self.exclusions.group_ids.len() > 1_000 || self.exclusions.sensitivity_labels.len() > 100 {
            return Err(InvalidInput::new(
                "exclusions",
                "at most 1,000 group ids and 100 sensitivity labels",
            ));
        }
        if let NoAnswer::Archive {
            delete_after_days: Some(days),
        } = self.on_no_answer
        {
            range("onNoAnswer.deleteAfterDays", days, 1, 365)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LifecyclePolicy {
        serde_json::from_value(serde_json::json!({
            "inactivityDays": 90,
            "signals": ["teams", "sharePointFileEdit", "mail"],
            "exclusions": {"namePrefixes": ["HR-"], "youngerThanDays": 30},
            "reviewWindowDays": 14,
            "onNoAnswer": {"action": "archive", "deleteAfterDays": 60},
            "maxActionsPerDay": 50
        }))
        .unwrap()
    }

    #[test]
    fn reads_the_documented_shape_and_checks_each_rule() {
        let p = policy();
        assert_eq!(p.execution, Execution::Manual, "manual unless chosen");
        assert!(p.validate().is_ok());
        let field = |f: &dyn Fn(&mut LifecyclePolicy)| {
            let mut q = policy();
            f(&mut q);
            q.validate().unwrap_err().field
        };
        assert_eq!(field(&|q| q.inactivity_days = 7), "inactivityDays");
        assert_eq!(field(&|q| q.signals.clear()), "signals");
        assert_eq!(field(&|q| q.review_window_days = 0), "reviewWindowDays");
        assert_eq!(field(&|q| q.max_actions_per_day = 0), "maxActionsPerDay");
        assert_eq!(
            field(&|q| q.exclusions.name_prefixes.push(" ".into())),
            "exclusions.namePrefixes"
        );
        assert_eq!(
            field(&|q| q.exclusions.younger_than_days = Some(0)),
            "exclusions.youngerThanDays"
        );
        assert_eq!(
            field(&|q| q.on_no_answer = NoAnswer::Archive {
                delete_after_days: Some(0)
            }),
            "onNoAnswer.deleteAfterDays"
        );
        // Unknown properties and signals are refused, not ignored.
        let mut v = serde_json::to_value(policy()).unwrap();
        v["inactiveDays"] = serde_json::json!(30);
        assert!(serde_json::from_value::<LifecyclePolicy>(v).is_err());
        let mut v = serde_json::to_value(policy()).unwrap();
        v["signals"] = serde_json::json!(["yammer"]);
        assert!(serde_json::from_value::<LifecyclePolicy>(v).is_err());
        // A set's item given twice is refused (the description says `uniqueItems`).
        let mut v = serde_json::to_value(policy()).unwrap();
        v["signals"] = serde_json::json!(["teams", "teams"]);
        assert!(serde_json::from_value::<LifecyclePolicy>(v).is_err());
        let mut v = serde_json::to_value(policy()).unwrap();
        let label = uuid::Uuid::from_u128(7);
        v["exclusions"]["sensitivityLabels"] = serde_json::json!([label, label]);
        assert!(serde_json::from_value::<LifecyclePolicy>(v).is_err());
        // And it round-trips.
        let v = serde_json::to_value(policy()).unwrap();
        assert_eq!(serde_json::from_value::<LifecyclePolicy>(v).unwrap(), policy());
    }
}
