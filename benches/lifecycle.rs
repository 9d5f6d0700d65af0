//! Evaluating a lifecycle policy over 100,000 synced groups (issue 16: target ≤ 1 s), with
//! exclusions by prefix, label and age in play (a seventh of the groups carry the excluded
//! label, a fiftieth the excluded prefix) and thousands of candidates.
//!
//! Two measures: the evaluation over facts in memory, and the whole step from the list as
//! SharePoint returns it — each row's fields as JSON text, parsed, read as a row, made facts,
//! then evaluated (what `GET /api/lifecycle/candidates` does after its reads).
//!
//! Run: `cargo bench --bench lifecycle`

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use groupmgr::activity::{LastActivity, SharePointKinds};
use groupmgr::customer_list::GroupRow;
use groupmgr::lifecycle::{DataState, Exclusions, GroupFacts, LifecyclePolicy, NoAnswer, Signal, candidates, facts};
use groupmgr::microsoft::graph::AssignedLabel;

fn groups(now: DateTime<Utc>, n: usize) -> Vec<GroupFacts> {
    (0..n)
        .map(|i| {
            let day = |d: usize| Some(now - TimeDelta::days((d % 700) as i64));
            let mut last = [None; Signal::ALL.len()];
            // A tenth untouched for a year; the rest active within the last 80 days on some
            // signal.
            if i % 10 != 0 {
                last[i % 6] = day(i % 80);
                last[(i + 3) % 6] = day(i % 500);
            }
            // `teams` is the later of its two sources: here, the report's.
            last[Signal::TeamsReport as usize] = last[Signal::Teams as usize];
            GroupFacts {
                id: uuid::Uuid::from_u128(i as u128),
                name: if i % 50 == 0 {
                    format!("HR-{i}")
                } else {
                    format!("Project {i}")
                },
                created: day(365 + i % 300),
                labels: Some(if i % 7 == 0 {
                    vec![uuid::Uuid::from_u128(7)]
                } else {
                    Vec::new()
                }),
                last,
                kept_at: None,
                in_lifecycle: false,
                unobservable: Default::default(),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
    let policy = LifecyclePolicy {
        inactivity_days: 90,
        signals: [
            Signal::Teams,
            Signal::SharePointFileEdit,
            Signal::SharePointPage,
            Signal::Mail,
        ]
        .into(),
        exclusions: Exclusions {
            name_prefixes: vec!["hr-".into(), "legal-".into()],
            sensitivity_labels: [uuid::Uuid::from_u128(7)].into(),
            younger_than_days: Some(30),
            ..Default::default()
        },
        review_window_days: 14,
        on_no_answer: NoAnswer::Nothing,
        max_actions_per_day: 50,
        execution: Default::default(),
    };
    let data = DataState {
        complete_until: Some(now - TimeDelta::hours(6)),
        observed_since: [Some(now - TimeDelta::days(400)); Signal::ALL.len()],
        unavailable: Default::default(),
    };
    let all = groups(now, 100_000);
    let n = candidates(&policy, &data, &all, now).unwrap().len();
    assert!((5_000..=40_000).contains(&n), "{n} candidates");
    c.bench_function("lifecycle_candidates_100k_groups", |b| {
        b.iter(|| {
            candidates(&policy, &data, std::hint::black_box(&all), now)
                .unwrap()
                .len()
        })
    });
    // The same groups as list rows, as SharePoint sends their fields.
    let items: Vec<String> = all
        .iter()
        .map(|f| {
            let mut row = GroupRow::new(&f.id.to_string());
            row.name = f.name.clone();
            row.created = f.created;
            row.labels = f.labels.as_ref().map(|l| {
                l.iter()
                    .map(|id| AssignedLabel {
                        label_id: id.to_string(),
                        display_name: Some("Highly Confidential".into()),
                    })
                    .collect()
            });
            row.synced_at = Some(now);
            row.site_url = Some(format!("https://contoso.sharepoint.com/sites/g{}", f.id.simple()));
            row.owner_count = Some(2);
            row.member_count = Some(12);
            let a = LastActivity {
                teams: f.last[0],
                sharepoint: f.last[1..5].iter().flatten().max().copied(),
                mail: f.last[5],
                kinds: SharePointKinds {
                    file_edit: f.last[1],
                    file_view: f.last[2],
                    page: f.last[3],
                    list: f.last[4],
                },
                ..Default::default()
            };
            row.set_activity(a);
            let mut fields = row.group_fields();
            fields.extend(row.activity_fields());
            serde_json::to_string(&fields).unwrap()
        })
        .collect();
    let from_list = |items: &[String]| {
        let facts: Vec<GroupFacts> = items
            .iter()
            .filter_map(|text| {
                let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).ok()?;
                facts::of_row(&GroupRow::from_fields(&fields)?)
            })
            .collect();
        candidates(&policy, &data, &facts, now).unwrap().len()
    };
    assert_eq!(from_list(&items), n, "the rows say what the facts said");
    c.bench_function("lifecycle_candidates_100k_list_rows", |b| {
        b.iter(|| from_list(std::hint::black_box(&items)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
