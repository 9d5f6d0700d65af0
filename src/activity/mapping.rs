//! Which group an audit record concerns, and when (management-activity-api.md §4):
//! - SharePoint file, page, list and sharing operations whose `SiteUrl` is a group's site
//!   (compared normalised: scheme and host case-folded, percent-decoded, no trailing slash);
//!   OneDrive and other sites are not group activity;
//! - Teams records (`Workload` MicrosoftTeams) whose `TeamGuid` — a thread id like
//!   `19:…@thread.skype`, not the group id — is a group's team, or that name the group in
//!   `AADGroupId`;
//! - never actions of system accounts or applications (`UserType` 4–8, `SHAREPOINT\system`,
//!   `app@sharepoint`).

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::records::AuditRecord;
use super::{LastActivity, SharePointKind};

/// Normalises a site URL for comparison.
pub fn normalise_site(url: &str) -> String {
    site_key(url).into_owned()
}

/// [`normalise_site`] without allocating for the common case (no escapes, lower case).
fn site_key(url: &str) -> std::borrow::Cow<'_, str> {
    let url = url.trim();
    if url.contains('%') {
        let decoded = percent_encoding::percent_decode_str(url).decode_utf8_lossy();
        std::borrow::Cow::Owned(decoded.trim_end_matches('/').to_lowercase())
    } else {
        folded(url.trim_end_matches('/'))
    }
}

/// What maps records to groups: built from the tenant's GroupMgr list. Groups are their
/// GUIDs (16 bytes, not strings: at 100,000 groups the index is a large part of the sync's
/// memory); a row whose group id is not a GUID maps nothing.
#[derive(Debug, Default, Clone)]
pub struct GroupIndex {
    sites: HashMap<Box<str>, Uuid>,
    threads: HashMap<Box<str>, Uuid>,
    groups: HashSet<Uuid>,
}

/// `key` lower-cased, allocating only when it has upper-case letters (the index's keys are
/// lower-cased once; most records already match them).
fn folded(key: &str) -> std::borrow::Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) || !key.is_ascii() {
        std::borrow::Cow::Owned(key.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

impl GroupIndex {
    pub fn add_group(&mut self, group_id: &str, site_url: Option<&str>, thread_id: Option<&str>) {
        let Ok(g) = Uuid::parse_str(group_id) else { return };
        self.groups.insert(g);
        if let Some(s) = site_url.filter(|s| !s.is_empty()) {
            self.sites.insert(normalise_site(s).into(), g);
        }
        if let Some(t) = thread_id.filter(|t| !t.is_empty()) {
            self.threads.insert(t.to_lowercase().into(), g);
        }
    }

    /// Another site of a group (a private or shared channel's).
    pub fn add_site(&mut self, group_id: &str, site_url: &str) {
        if let (Ok(g), false) = (Uuid::parse_str(group_id), site_url.is_empty()) {
            self.sites.insert(normalise_site(site_url).into(), g);
        }
    }

    /// The group with this id (any case), if it is one of the index's.
    fn group(&self, id: &str) -> Option<Uuid> {
        Uuid::parse_str(id).ok().filter(|g| self.groups.contains(g))
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The group a record concerns and what it says about its activity, if any.
    pub fn classify(&self, r: &AuditRecord<'_>) -> Option<(Uuid, LastActivity)> {
        if is_system_actor(r) {
            return None;
        }
        let time = r.time()?;
        let workload = r.workload.as_deref().unwrap_or_default();
        if workload.eq_ignore_ascii_case("MicrosoftTeams") {
            let by_id = r.aad_group_id.as_deref().and_then(|g| self.group(g));
            let by_thread = || {
                r.team_guid
                    .as_deref()
                    .and_then(|t| self.threads.get(folded(t).as_ref()))
                    .copied()
            };
            let group = by_id.or_else(by_thread)?;
            return Some((group, LastActivity::teams_at(time)));
        }
        if workload.eq_ignore_ascii_case("SharePoint") && is_content_operation(r) {
            let group = *self.sites.get(site_key(r.site_url.as_deref()?).as_ref())?;
            return Some((group, LastActivity::sharepoint_at(time, sharepoint_kind(r))));
        }
        None
    }
}

/// RecordType 6 (file), 36 (list), 14 (sharing), and 4 (SharePoint) for pages.
fn is_content_operation(r: &AuditRecord<'_>) -> bool {
    match r.record_type {
        Some(6 | 14 | 36) => true,
        Some(4) => {
            r.item_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("Page"))
                || r.operation.as_deref().is_some_and(|o| o.starts_with("Page"))
        }
        _ => false,
    }
}

/// File operations that read a file without changing it (Microsoft Purview, "Audit log
/// activities", file and page activities:
/// https://learn.microsoft.com/purview/audit-log-activities#file-and-page-activities).
const FILE_VIEWS: [&str; 6] = [
    "FileAccessed",
    "FileAccessedExtended",
    "FilePreviewed",
    "FileDownloaded",
    "FileSyncDownloadedFull",
    "FileSyncDownloadedPartial",
];

/// The kind of a SharePoint content record: a page (RecordType 4 with a page, or a `Page…`
/// operation), a list change (RecordType 36, SharePointListOperation), a file view (the read
/// operations above) or a file edit (any other RecordType 6, SharePointFileOperation: upload,
/// change, rename, move, copy, delete, restore, check-in…). Sharing (RecordType 14) is
/// SharePoint activity of no kind.
fn sharepoint_kind(r: &AuditRecord<'_>) -> Option<SharePointKind> {
    let op = r.operation.as_deref().unwrap_or_default();
    match r.record_type {
        Some(36) => Some(SharePointKind::List),
        Some(4) => Some(SharePointKind::Page),
        Some(6) if op.starts_with("Page") => Some(SharePointKind::Page),
        Some(6) if op.starts_with("ListItem") || op.starts_with("List") => Some(SharePointKind::List),
        Some(6) if FILE_VIEWS.iter().any(|v| v.eq_ignore_ascii_case(op)) => Some(SharePointKind::FileView),
        Some(6) => Some(SharePointKind::FileEdit),
        _ => None,
    }
}

/// The person who did what a record says: its `UserId`, the user principal name of a user
/// (management-activity-api.md §4, common schema: "The UPN of the user who performed the
/// action"), for a regular user or an administrator (`UserType` 0 or 2, or absent); `None`
/// for system accounts, applications, and ids that are not a UPN.
pub fn actor<'r>(r: &'r AuditRecord<'_>) -> Option<&'r str> {
    if is_system_actor(r) || !matches!(r.user_type, None | Some(0 | 2)) {
        return None;
    }
    r.user_id
        .as_deref()
        .map(str::trim)
        .filter(|u| u.contains('@') && !u.starts_with('@'))
}

fn is_system_actor(r: &AuditRecord<'_>) -> bool {
    if matches!(r.user_type, Some(4..=8)) {
        return true;
    }
    r.user_id.as_deref().is_some_and(|u| {
        let u = u.to_ascii_lowercase();
        u.starts_with("sharepoint\\") || u == "app@sharepoint" || u == "application"
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activity::records::for_each_record;

    fn classify(index: &GroupIndex, json: &str) -> Option<(String, LastActivity)> {
        let mut out = None;
        for_each_record(format!("[{json}]").as_bytes(), |r| {
            out = index.classify(r).map(|(g, a)| (g.to_string(), a))
        })
        .unwrap();
        out
    }

    fn index() -> GroupIndex {
        let mut i = GroupIndex::default();
        i.add_group(
            "AAAA0000-0000-0000-0000-000000000001",
            Some("https://contoso.sharepoint.com/sites/Marketing/"),
            Some("19:abc@thread.skype"),
        );
        i.add_group(
            "aaaa0000-0000-0000-0000-000000000002",
            Some("https://contoso.sharepoint.com/sites/Sales%20Team"),
            None,
        );
        i
    }

    #[test]
    fn sharepoint_records_map_by_normalised_site() {
        let i = index();
        let r = classify(&i, r#"{"Id":"1","CreationTime":"2026-11-01T10:00:00","RecordType":6,"Workload":"SharePoint","SiteUrl":"HTTPS://CONTOSO.sharepoint.com/sites/marketing","UserType":0,"UserId":"u@contoso.com"}"#).unwrap();
        assert_eq!(r.0, "aaaa0000-0000-0000-0000-000000000001");
        assert!(r.1.sharepoint.is_some() && r.1.teams.is_none());
        let r = classify(&i, r#"{"Id":"2","CreationTime":"2026-11-01T10:00:00","RecordType":"36","Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/Sales Team/","UserType":0}"#).unwrap();
        assert_eq!(r.0, "aaaa0000-0000-0000-0000-000000000002");
        // Another site, OneDrive, a system account, an application, a non-content operation.
        for other in [
            r#"{"Id":"3","CreationTime":"2026-11-01T10:00:00","RecordType":6,"Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/Other","UserType":0}"#,
            r#"{"Id":"4","CreationTime":"2026-11-01T10:00:00","RecordType":6,"Workload":"OneDrive","SiteUrl":"https://contoso-my.sharepoint.com/personal/u_contoso_com/","UserType":0}"#,
            r#"{"Id":"5","CreationTime":"2026-11-01T10:00:00","RecordType":6,"Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/marketing","UserId":"SHAREPOINT\\system","UserType":0}"#,
            r#"{"Id":"6","CreationTime":"2026-11-01T10:00:00","RecordType":6,"Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/marketing","UserType":5}"#,
            r#"{"Id":"7","CreationTime":"2026-11-01T10:00:00","RecordType":4,"Operation":"SiteCollectionAdminAdded","Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/marketing","UserType":0}"#,
        ] {
            assert!(classify(&i, other).is_none(), "{other}");
        }
        assert!(classify(&i, r#"{"Id":"8","CreationTime":"2026-11-01T10:00:00","RecordType":4,"ItemType":"Page","Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/marketing","UserType":0}"#).is_some());
    }

    #[test]
    fn sharepoint_records_are_told_apart_by_kind() {
        let i = index();
        let kind = |record_type: &str, op: &str, item: &str| {
            let json = format!(
                r#"{{"Id":"k","CreationTime":"2026-11-01T10:00:00","RecordType":{record_type},"Operation":"{op}","ItemType":"{item}","Workload":"SharePoint","SiteUrl":"https://contoso.sharepoint.com/sites/marketing","UserType":0}}"#
            );
            let (_, a) = classify(&i, &json).unwrap();
            assert_eq!(a.sharepoint, Some("2026-11-01T10:00:00Z".parse().unwrap()), "{op}");
            [
                a.kinds.file_edit.is_some(),
                a.kinds.file_view.is_some(),
                a.kinds.page.is_some(),
                a.kinds.list.is_some(),
            ]
        };
        assert_eq!(kind("6", "FileModified", "File"), [true, false, false, false]);
        assert_eq!(kind("6", "FileUploaded", "File"), [true, false, false, false]);
        assert_eq!(kind("6", "FileAccessed", "File"), [false, true, false, false]);
        assert_eq!(kind("6", "FilePreviewed", "File"), [false, true, false, false]);
        assert_eq!(kind("6", "FileDownloaded", "File"), [false, true, false, false]);
        assert_eq!(kind("4", "PageViewed", "Page"), [false, false, true, false]);
        assert_eq!(kind("6", "PageViewedExtended", "Page"), [false, false, true, false]);
        assert_eq!(kind("36", "ListItemUpdated", "ListItem"), [false, false, false, true]);
        // Sharing is SharePoint activity of no kind.
        assert_eq!(kind("14", "SharingSet", "File"), [false; 4]);
    }

    #[test]
    fn teams_records_map_by_thread_id_or_group_id() {
        let i = index();
        let r = classify(&i, r#"{"Id":"1","CreationTime":"2026-11-01T10:00:00","RecordType":25,"Workload":"MicrosoftTeams","TeamGuid":"19:ABC@thread.skype","UserType":0,"Operation":"ChannelAdded"}"#).unwrap();
        assert_eq!(r.0, "aaaa0000-0000-0000-0000-000000000001");
        assert!(r.1.teams.is_some());
        let r = classify(&i, r#"{"Id":"2","CreationTime":"2026-11-01T10:00:00","RecordType":25,"Workload":"MicrosoftTeams","AADGroupId":"aaaa0000-0000-0000-0000-000000000002","UserType":0}"#).unwrap();
        assert_eq!(r.0, "aaaa0000-0000-0000-0000-000000000002");
        assert!(classify(&i, r#"{"Id":"3","CreationTime":"2026-11-01T10:00:00","RecordType":25,"Workload":"MicrosoftTeams","TeamGuid":"19:unknown@thread.skype","UserType":0}"#).is_none());
        assert!(classify(&i, r#"{"Id":"4","CreationTime":"2026-11-01T10:00:00","RecordType":25,"Workload":"MicrosoftTeams","Operation":"TeamsSessionStarted","UserType":0}"#).is_none());
        assert!(classify(&i, r#"{"Id":"5","CreationTime":"2026-11-01T10:00:00","RecordType":25,"Workload":"MicrosoftTeams","TeamGuid":"19:abc@thread.skype","UserId":"Application","UserType":5}"#).is_none());
    }
}
