//! Which groups a lifecycle policy would act on now, and why (issue 16, item 3). Pure: it reads
//! the synced facts and nothing else, so a dry run cannot write anything.
//!
//! Judged against the data, not the wall clock. Activity is known only up to the tenant's
//! `dataCompleteUntil`, so a group is inactive when its counted signals (and its creation) are
//! all at least `inactivityDays` older than that point. Nothing is a candidate while that point
//! is more than 48 hours old, while a counted source is unavailable, or while a counted
//! signal has not been observed for the whole threshold (a tenant connected last week has
//! seen a week of audit history: "no edit seen" is not "no edit for 90 days"). The answer then
//! says why instead.

use std::collections::BTreeSet;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::policy::{LifecyclePolicy, Signal};

/// How old the data may be before no group is a candidate.
pub const STALE_AFTER: TimeDelta = TimeDelta::hours(48);

/// What the sync knows of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupFacts {
    pub id: uuid::Uuid,
    pub name: String,
    /// `None` when unknown: the group's age cannot be judged, so it is never a candidate.
    pub created: Option<DateTime<Utc>>,
    /// Its sensitivity label ids; `None` when unknown (then a policy that excludes labels
    /// holds it out).
    pub labels: Option<Vec<uuid::Uuid>>,
    /// The latest activity per signal, in `Signal::ALL` order (`None`: none seen).
    pub last: [Option<DateTime<Utc>>; Signal::ALL.len()],
    /// When its owners last decided to keep it: that holds it out of review for the policy's
    /// period (`inactivityDays`) from then.
    pub kept_at: Option<DateTime<Utc>>,
    /// It has a review open, an action under way, or was archived or deleted through a
    /// review: the review or the next action follows it, not a new candidacy. (A team archived
    /// outside GroupMgr is not known here.)
    pub in_lifecycle: bool,
    /// Signals this group's activity cannot be seen in yet (its site not found, so SharePoint
    /// records cannot be matched to it; its team's thread id unknown): a policy counting one
    /// of them holds the group out, since "none seen" is not "none".
    pub unobservable: BTreeSet<Signal>,
}

impl GroupFacts {
    pub fn last(&self, s: Signal) -> Option<DateTime<Utc>> {
        self.last[s as usize]
    }
}

/// How complete the tenant's data is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataState {
    /// Activity is complete up to here (`GET /api/sync`'s `dataCompleteUntil`).
    pub complete_until: Option<DateTime<Utc>>,
    /// Since when each signal has been observed, in `Signal::ALL` order (`None`: never). The
    /// audit feed reaches 7 days back at first connection, the reports 180 days.
    pub observed_since: [Option<DateTime<Utc>>; Signal::ALL.len()],
    /// Sources that cannot be read now (concealed reports, missing consent, …).
    pub unavailable: BTreeSet<Signal>,
}

/// Why no group may be a candidate now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "reason")]
pub enum Withheld {
    /// No complete activity yet (the first sync has not finished).
    NoData,
    /// The data is complete only up to `completeUntil`, more than 48 hours ago.
    Stale { complete_until: DateTime<Utc> },
    /// A signal the policy counts cannot be read now.
    SourceUnavailable { signals: Vec<Signal> },
    /// A counted signal has not been observed for the whole threshold yet (GroupMgr sees the
    /// audit feed only from 7 days before the tenant connected); `until` is when it will have
    /// been.
    HistoryTooShort { signals: Vec<Signal>, until: DateTime<Utc> },
}

/// What would happen to a candidate next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "step")]
pub enum NextStep {
    /// A review opens; its owners (or an administrator) decide by `due`.
    Review { due: DateTime<Utc> },
}

/// A group the policy would act on, with its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub group_id: uuid::Uuid,
    /// The later of its last counted activity and its creation.
    pub inactive_since: DateTime<Utc>,
    /// Whole days from `inactive_since` to the data's completeness point.
    pub inactive_days: i64,
    /// Each counted signal's latest activity (`None`: never seen).
    pub last_by_signal: Vec<(Signal, Option<DateTime<Utc>>)>,
    pub next_step: NextStep,
}

/// The candidates of `policy` among `groups` at `now`, longest inactive first (the order in
/// which a daily cap takes them), or why there are none.
pub fn candidates(
    policy: &LifecyclePolicy,
    data: &DataState,
    groups: &[GroupFacts],
    now: DateTime<Utc>,
) -> Result<Vec<Candidate>, Withheld> {
    let complete_until = data.complete_until.ok_or(Withheld::NoData)?;
    if now - complete_until > STALE_AFTER {
        return Err(Withheld::Stale { complete_until });
    }
    let missing: Vec<Signal> = policy.signals.intersection(&data.unavailable).copied().collect();
    if !missing.is_empty() {
        return Err(Withheld::SourceUnavailable { signals: missing });
    }
    let threshold = TimeDelta::days(i64::from(policy.inactivity_days));
    let cutoff = complete_until - threshold;
    // Every counted signal must have been watched over the whole window (cutoff, complete_until].
    let short: Vec<(Signal, Option<DateTime<Utc>>)> = policy
        .signals
        .iter()
        .map(|s| (*s, data.observed_since[*s as usize]))
        .filter(|(_, since)| since.is_none_or(|t| t > cutoff))
        .collect();
    if !short.is_empty() {
        // Never observed: the earliest it could be is a full threshold from now.
        let until = short
            .iter()
            .map(|(_, since)| since.unwrap_or(complete_until) + threshold)
            .max()
            .unwrap_or(complete_until + threshold);
        return Err(Withheld::HistoryTooShort {
            signals: short.into_iter().map(|(s, _)| s).collect(),
            until,
        });
    }
    let keep_period = threshold;
    let young = policy
        .exclusions
        .younger_than_days
        .map(|d| now - TimeDelta::days(i64::from(d)));
    let prefixes: Vec<String> = policy
        .exclusions
        .name_prefixes
        .iter()
        .map(|p| p.to_lowercase())
        .collect();
    let next_step = NextStep::Review {
        due: now + TimeDelta::days(i64::from(policy.review_window_days)),
    };
    let by_label = !policy.exclusions.sensitivity_labels.is_empty();
    let counted: Vec<Signal> = policy.signals.iter().copied().collect();
    let mut out = Vec::new();
    for g in groups {
        // Without its creation time a group's inactivity cannot be judged.
        let Some(created) = g.created else { continue };
        if g.in_lifecycle
            || young.is_some_and(|y| created > y)
            || g.kept_at.is_some_and(|k| k + keep_period > now)
            || policy.exclusions.group_ids.contains(&g.id)
            || !g.unobservable.is_disjoint(&policy.signals)
            // Unknown labels hold a group out of a policy that excludes labels.
            || (by_label
                && g.labels
                    .as_ref()
                    .is_none_or(|ls| ls.iter().any(|l| policy.exclusions.sensitivity_labels.contains(l))))
            || (!prefixes.is_empty() && {
                let name = g.name.to_lowercase();
                prefixes.iter().any(|p| name.starts_with(p.as_str()))
            })
        {
            continue;
        }
        let last = counted.iter().filter_map(|s| g.last(*s)).max();
        let inactive_since = last.map_or(created, |l| l.max(created));
        if inactive_since > cutoff {
            continue;
        }
        out.push(Candidate {
            group_id: g.id,
            inactive_since,
            inactive_days: (complete_until - inactive_since).num_days(),
            last_by_signal: counted.iter().map(|s| (*s, g.last(*s))).collect(),
            next_step: next_step.clone(),
        });
    }
    out.sort_by_key(|c| (c.inactive_since, c.group_id));
    Ok(out)
}

/// Why a candidate is reviewed, for the owners who read the list.
pub fn reason_of(c: &Candidate, complete: Option<DateTime<Utc>>) -> String {
    let signals: Vec<String> = c
        .last_by_signal
        .iter()
        .map(|(s, t)| {
            let name = serde_json::to_value(s)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            match t {
                Some(t) => format!("{name}: last {}", t.format("%Y-%m-%d")),
                None => format!("{name}: none seen"),
            }
        })
        .collect();
    format!(
        "No counted activity for {} days (inactive since {}; data complete until {}). {}",
        c.inactive_days,
        c.inactive_since.format("%Y-%m-%d"),
        complete.map_or_else(|| "-".into(), |t| t.format("%Y-%m-%d %H:%M UTC").to_string()),
        signals.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::policy::{Exclusions, NoAnswer};

    fn t(days_ago: i64) -> DateTime<Utc> {
        now() - TimeDelta::days(days_ago)
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn policy(signals: &[Signal]) -> LifecyclePolicy {
        LifecyclePolicy {
            inactivity_days: 90,
            signals: signals.iter().copied().collect(),
            exclusions: Exclusions::default(),
            review_window_days: 14,
            on_no_answer: NoAnswer::Nothing,
            max_actions_per_day: 50,
            execution: Default::default(),
        }
    }

    fn group(n: u128, created_days_ago: i64, last: &[(Signal, i64)]) -> GroupFacts {
        let mut g = GroupFacts {
            id: uuid::Uuid::from_u128(n),
            name: format!("Group {n}"),
            created: Some(t(created_days_ago)),
            labels: Some(Vec::new()),
            last: [None; Signal::ALL.len()],
            kept_at: None,
            in_lifecycle: false,
            unobservable: BTreeSet::new(),
        };
        for (s, days_ago) in last {
            g.last[*s as usize] = Some(t(*days_ago));
        }
        g
    }

    fn ids(r: Result<Vec<Candidate>, Withheld>) -> Vec<u128> {
        r.unwrap().iter().map(|c| c.group_id.as_u128()).collect()
    }

    /// Data complete up to a day ago, every source readable and observed for years.
    fn fresh() -> DataState {
        DataState {
            complete_until: Some(t(1)),
            observed_since: [Some(t(1000)); Signal::ALL.len()],
            unavailable: BTreeSet::new(),
        }
    }

    #[test]
    fn inactive_means_every_counted_signal_and_the_creation_are_older_than_the_threshold() {
        let p = policy(&[Signal::Teams, Signal::SharePointFileEdit]);
        let groups = [
            group(1, 400, &[(Signal::Teams, 200)]),
            group(2, 400, &[(Signal::Teams, 200), (Signal::SharePointFileEdit, 10)]),
            // Views do not count for this policy.
            group(3, 400, &[(Signal::SharePointFileView, 1)]),
            // Never active, but created 60 days ago: not yet 90 days without activity.
            group(4, 60, &[]),
            group(5, 400, &[]),
            // Exactly at the threshold (90 days before the completeness point) counts.
            group(6, 400, &[(Signal::Teams, 91)]),
            group(7, 400, &[(Signal::Teams, 90)]),
        ];
        let c = candidates(&p, &fresh(), &groups, now()).unwrap();
        // Longest inactive first: never active since creation 400 days ago, then 200, then 91.
        assert_eq!(c.iter().map(|c| c.group_id.as_u128()).collect::<Vec<_>>(), [3, 5, 1, 6]);
        let first = &c[2];
        assert_eq!((first.inactive_since, first.inactive_days), (t(200), 199));
        assert_eq!(
            first.last_by_signal,
            [(Signal::Teams, Some(t(200))), (Signal::SharePointFileEdit, None)]
        );
        assert_eq!(
            first.next_step,
            NextStep::Review {
                due: now() + TimeDelta::days(14)
            }
        );
        // Counting views too, group 3 is active.
        let with_views = policy(&[Signal::Teams, Signal::SharePointFileEdit, Signal::SharePointFileView]);
        assert_eq!(ids(candidates(&with_views, &fresh(), &groups, now())), [5, 1, 6]);
    }

    #[test]
    fn exclusions_keep_decisions_and_unknown_ages_hold_groups_out() {
        let mut p = policy(&[Signal::Teams]);
        let label = uuid::Uuid::from_u128(77);
        p.exclusions = Exclusions {
            group_ids: [uuid::Uuid::from_u128(1)].into(),
            name_prefixes: vec!["hr-".into()],
            sensitivity_labels: [label].into(),
            younger_than_days: Some(200),
        };
        let mut named = group(2, 400, &[]);
        named.name = "HR-Payroll".into();
        let mut labelled = group(3, 400, &[]);
        labelled.labels = Some(vec![label]);
        // Kept 89 days ago: held out for the policy's 90 days; kept 91 days ago: no longer.
        let mut kept = group(4, 400, &[]);
        kept.kept_at = Some(t(89));
        let mut kept_before = group(5, 400, &[]);
        kept_before.kept_at = Some(t(91));
        let mut ageless = group(6, 400, &[]);
        ageless.created = None;
        let mut unlabelled = group(9, 400, &[]);
        unlabelled.labels = None;
        let mut reviewing = group(10, 400, &[]);
        reviewing.in_lifecycle = true;
        let groups = [
            group(1, 400, &[]),
            named,
            labelled,
            kept,
            kept_before,
            ageless,
            group(7, 150, &[]),
            group(8, 400, &[]),
            unlabelled.clone(),
            reviewing,
        ];
        assert_eq!(ids(candidates(&p, &fresh(), &groups, now())), [5, 8]);
        // Unknown labels matter only to a policy that excludes by label.
        let mut no_labels = p.clone();
        no_labels.exclusions.sensitivity_labels.clear();
        assert!(ids(candidates(&no_labels, &fresh(), &[unlabelled], now())) == [9]);
        // A group whose site is not known yet cannot be judged on SharePoint signals; it can
        // on the others.
        let mut siteless = group(11, 400, &[]);
        siteless.unobservable = [Signal::SharePointFileEdit].into();
        let on_files = policy(&[Signal::Teams, Signal::SharePointFileEdit]);
        assert!(ids(candidates(&on_files, &fresh(), std::slice::from_ref(&siteless), now())).is_empty());
        assert_eq!(ids(candidates(&no_labels, &fresh(), &[siteless], now())), [11]);
    }

    #[test]
    fn a_signal_watched_for_less_than_the_threshold_makes_no_candidate() {
        // Connected 10 days ago: the audit feed reaches 7 days before that; the reports 180.
        let mut data = fresh();
        data.observed_since[Signal::SharePointFileEdit as usize] = Some(t(17));
        data.observed_since[Signal::Mail as usize] = None;
        let groups = [group(1, 400, &[])];
        assert_eq!(
            candidates(
                &policy(&[Signal::Teams, Signal::SharePointFileEdit]),
                &data,
                &groups,
                now()
            ),
            Err(Withheld::HistoryTooShort {
                signals: vec![Signal::SharePointFileEdit],
                until: t(17) + TimeDelta::days(90)
            })
        );
        assert!(matches!(
            candidates(&policy(&[Signal::Mail]), &data, &groups, now()),
            Err(Withheld::HistoryTooShort { .. })
        ));
        assert_eq!(ids(candidates(&policy(&[Signal::Teams]), &data, &groups, now())), [1]);
    }

    #[test]
    fn the_longest_inactive_come_first() {
        let groups = [
            group(3, 400, &[(Signal::Teams, 100)]),
            group(1, 400, &[(Signal::Teams, 300)]),
            group(2, 400, &[(Signal::Teams, 200)]),
        ];
        assert_eq!(
            ids(candidates(&policy(&[Signal::Teams]), &fresh(), &groups, now())),
            [1, 2, 3]
        );
    }

    #[test]
    fn stale_or_incomplete_data_makes_no_candidate_and_says_why() {
        let p = policy(&[Signal::Teams, Signal::Mail]);
        let groups = [group(1, 400, &[])];
        assert_eq!(
            candidates(&p, &DataState::default(), &groups, now()),
            Err(Withheld::NoData)
        );
        let stale = DataState {
            complete_until: Some(now() - TimeDelta::hours(49)),
            ..fresh()
        };
        assert_eq!(
            candidates(
                &p,
                &DataState {
                    complete_until: None,
                    ..fresh()
                },
                &groups,
                now()
            ),
            Err(Withheld::NoData)
        );
        assert_eq!(
            candidates(&p, &stale, &groups, now()),
            Err(Withheld::Stale {
                complete_until: now() - TimeDelta::hours(49)
            })
        );
        let just_fresh = DataState {
            complete_until: Some(now() - TimeDelta::hours(48)),
            ..fresh()
        };
        assert_eq!(ids(candidates(&p, &just_fresh, &groups, now())), [1]);
        let mut concealed = fresh();
        concealed.unavailable = [Signal::Mail, Signal::SharePointPage].into();
        assert_eq!(
            candidates(&p, &concealed, &groups, now()),
            Err(Withheld::SourceUnavailable {
                signals: vec![Signal::Mail]
            })
        );
        // A source the policy does not count may be unavailable.
        let teams_only = policy(&[Signal::Teams]);
        assert_eq!(ids(candidates(&teams_only, &concealed, &groups, now())), [1]);
    }

    #[test]
    fn the_threshold_is_measured_from_the_completeness_point_not_from_now() {
        // Data complete up to 40 hours ago: activity 91 days before now is 89.3 days before that
        // point, so not yet 90 days of inactivity; 92 days before now is.
        let data = DataState {
            complete_until: Some(now() - TimeDelta::hours(40)),
            ..fresh()
        };
        let groups = [
            group(1, 400, &[(Signal::Teams, 91)]),
            group(2, 400, &[(Signal::Teams, 92)]),
        ];
        assert_eq!(ids(candidates(&policy(&[Signal::Teams]), &data, &groups, now())), [2]);
    }
}
