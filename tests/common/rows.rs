//! The GroupMgr list as the sim holds it, and what the sim's oracle says it must hold: the
//! comparisons the sync tests share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use m365_sim::directory::CONTOSO;
use serde_json::{Map, Value};

use super::TestApp;

/// The GroupMgr list as the sim holds it: group id → fields (without `SyncedAt`, and
/// `OwnerlessSince` only as whether it is set).
pub fn list_rows(app: &TestApp) -> BTreeMap<String, Map<String, Value>> {
    sim_list_rows(&app.sim)
}

/// `list_rows` of a sim that no test app owns (the binary's runs).
pub fn sim_list_rows(sim: &m365_sim::Sim) -> BTreeMap<String, Map<String, Value>> {
    sim.state
        .with_graph(&CONTOSO, |t| {
            let mut out = BTreeMap::new();
            for lists in t.lists.values() {
                for l in lists.iter().filter(|l| l.display_name == "GroupMgr Groups") {
                    for fields in l.items.values() {
                        let mut f = fields.clone();
                        f.remove("SyncedAt");
                        // When a check first saw the group ownerless differs between two runs
                        // of one history; whether it did must not.
                        if let Some(since) = f.get_mut("OwnerlessSince").filter(|v| !v.is_null()) {
                            *since = Value::String("observed".into());
                        }
                        out.insert(f["GroupId"].as_str().unwrap().to_string(), f);
                    }
                }
            }
            out
        })
        .unwrap()
}

pub fn fmt(t: Option<DateTime<Utc>>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

/// Group id → (LastTeamsActivity, LastSharePointActivity, LastActivity) as the list holds it.
pub fn activity_rows(app: &TestApp) -> BTreeMap<String, (Value, Value, Value)> {
    app.sim
        .state
        .with_graph(&CONTOSO, |t| {
            let mut out = BTreeMap::new();
            for l in t
                .lists
                .values()
                .flatten()
                .filter(|l| l.display_name == "GroupMgr Groups")
            {
                for f in l.items.values() {
                    let get = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
                    out.insert(
                        f["GroupId"].as_str().unwrap().to_string(),
                        (
                            get("LastTeamsActivity"),
                            get("LastSharePointActivity"),
                            get("LastActivity"),
                        ),
                    );
                }
            }
            out
        })
        .unwrap()
}

/// The rows the oracle says the list must hold (`LastActivity` includes the group mailbox's,
/// from the groups activity report as a first read, over 90 days, gives it).
pub fn expected_rows(app: &TestApp, at: DateTime<Utc>) -> BTreeMap<String, (Value, Value, Value)> {
    let truth = app.sim.expected_activity_at(CONTOSO, at);
    let mail = app.sim.expected_mail_activity_at(CONTOSO, at);
    activity_rows(app)
        .keys()
        .map(|g| {
            let id = g.parse().unwrap();
            let (teams, sp) = truth.get(&id).copied().unwrap_or_default();
            let overall = [teams, sp, mail.get(&id).copied()].into_iter().flatten().max();
            (g.clone(), (fmt(teams), fmt(sp), fmt(overall)))
        })
        .collect()
}

/// What the list must hold after syncs at each of `times`: the feed forgets content after
/// 7 days, the list does not, so each column is the latest the oracle knew at any of them.
pub fn expected_rows_over(app: &TestApp, times: &[DateTime<Utc>]) -> BTreeMap<String, (Value, Value, Value)> {
    let mut out: BTreeMap<String, (Value, Value, Value)> = BTreeMap::new();
    let later = |a: &Value, b: &Value| -> Value {
        match (a.as_str(), b.as_str()) {
            (Some(x), Some(y)) => Value::String(x.max(y).to_string()),
            _ if a.is_null() => b.clone(),
            _ => a.clone(),
        }
    };
    for at in times {
        for (g, (t, s, l)) in expected_rows(app, *at) {
            let e = out.entry(g).or_insert((Value::Null, Value::Null, Value::Null));
            *e = (later(&e.0, &t), later(&e.1, &s), later(&e.2, &l));
        }
    }
    out
}

/// Compares row maps, showing the first differing groups rather than 300 rows.
pub fn assert_same(got: &BTreeMap<String, (Value, Value, Value)>, want: &BTreeMap<String, (Value, Value, Value)>) {
    let diff: Vec<_> = want
        .iter()
        .filter(|(g, w)| got.get(*g) != Some(w))
        .take(5)
        .map(|(g, w)| (g, w, got.get(g)))
        .collect();
    assert!(
        diff.is_empty() && got.len() == want.len(),
        "{} rows vs {} expected; first differences (want, got): {diff:#?}",
        got.len(),
        want.len()
    );
}

/// Compares whole rows (`list_rows`), showing the first differing groups and fields.
pub fn assert_rows_equal(got: &BTreeMap<String, Map<String, Value>>, want: &BTreeMap<String, Map<String, Value>>) {
    let ids: std::collections::BTreeSet<&String> = got.keys().chain(want.keys()).collect();
    let diff: Vec<String> = ids
        .into_iter()
        .filter_map(|g| {
            let (a, b) = (got.get(g), want.get(g));
            if a == b {
                return None;
            }
            let (a, b) = (a.cloned().unwrap_or_default(), b.cloned().unwrap_or_default());
            let fields: Vec<String> = a
                .keys()
                .chain(b.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| format!("{k}: got {:?}, want {:?}", a.get(k), b.get(k)))
                .collect();
            Some(format!("{g}: {}", fields.join("; ")))
        })
        .collect();
    assert!(
        diff.is_empty(),
        "{} rows differ ({} vs {} rows); first: {:#?}",
        diff.len(),
        got.len(),
        want.len(),
        &diff[..diff.len().min(8)]
    );
}
