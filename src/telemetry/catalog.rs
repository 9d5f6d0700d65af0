//! The catalogue of log events: each has a static code and a message template whose
//! `{placeholders}` name the event's fields. Logs carry the template, never a message
//! rendered with values, so a value can only appear where the field policy allows it.
//!
//! Field policy: a field is shown in clear (on stdout) only if it is in `CLEAR_FIELDS`;
//! every other field is treated as sensitive — redacted on stdout, sealed to the tenant's key
//! in the tenant log. A new field is therefore sensitive until someone decides otherwise.

/// One kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSpec {
    pub code: &'static str,
    pub template: &'static str,
}

const fn ev(code: &'static str, template: &'static str) -> EventSpec {
    EventSpec { code, template }
}

pub const EVENTS: &[EventSpec] = &[
    ev("listening", "listening on {addr} (version {version})"),
    ev("shutdown", "shutting down; finishing in-flight requests"),
    ev("jwks_loaded", "loaded {keys} Entra ID signing keys"),
    ev("jwks_unavailable", "Entra ID signing keys unavailable: {error}"),
    ev(
        "request",
        "{method} {function} answered {status} in {duration_ms} ms for {user} from {client_ip}",
    ),
    ev("user_admitted", "{user} took a licensed seat"),
    ev("seat_refused", "{user} was refused: every licensed seat is taken"),
    ev("sync_scheduled", "queued {tenants} tenant syncs"),
    ev(
        "offboarded_logs_purged",
        "purged {count} log entries of offboarded tenants",
    ),
    ev(
        "offboarded_state_forgotten",
        "deleted {count} pieces of job state a sync saved after the tenant was offboarded",
    ),
    ev(
        "offboarded_state_left",
        "could not delete job state a sync saved after the tenant was offboarded: {error}",
    ),
    ev(
        "tenant_log_dropped",
        "{dropped} tenant log entries were not written ({reason})",
    ),
    ev("tenant_log_error", "tenant log write failed: {error}"),
    ev(
        "token_acquisition_failed",
        "Entra ID refused GroupMgr's credential ({error})",
    ),
    ev("group_created", "group {group_name} ({group_id}) created"),
    ev("group_updated", "group {group_id} updated"),
    ev("group_deleted", "group {group_id} deleted"),
    ev("group_restored", "group {group_id} restored"),
    ev(
        "lifecycle_review_opened",
        "lifecycle review opened for group {group_id}",
    ),
    ev(
        "lifecycle_review_decided",
        "lifecycle review of group {group_id} decided: {decision}",
    ),
    ev(
        "lifecycle_action_intended",
        "lifecycle action {action} on group {group_id} recorded as intended",
    ),
    ev(
        "lifecycle_action_done",
        "lifecycle action {action} on group {group_id} done",
    ),
    ev(
        "lifecycle_intent_not_cleared",
        "a refused lifecycle action on group {group_id} is still recorded as intended: {error}",
    ),
    ev(
        "webhook_not_queued",
        "a {webhook_type} event could not be queued for the tenant's webhook: {error}",
    ),
    ev(
        "webhook_events_dropped",
        "{count} webhook events dropped: the outbox is full",
    ),
    ev(
        "webhook_attempt_failed",
        "webhook {webhook_id}, attempt {attempt}: {error}",
    ),
    ev(
        "webhook_event_dropped",
        "webhook {webhook_id} dropped after its last attempt",
    ),
    ev(
        "webhook_event_not_opened",
        "webhook {webhook_id} dropped: its sealed data cannot be opened (the key changed)",
    ),
    ev("webhook_dispatch_failed", "webhook dispatch failed: {error}"),
    ev(
        "review_due_not_recorded",
        "review.due for group {group_id} was queued but not recorded on its review: {error}",
    ),
    ev("reviews_due", "{count} lifecycle reviews fell due without an answer"),
    ev(
        "review_created_not_recorded",
        "review.created for group {group_id} was queued but not recorded on its review (the next sync queues the same event): {error}",
    ),
    ev(
        "review_created_caught_up",
        "review.created for group {group_id} was queued by the sync: the request that opened the review stopped before it did",
    ),
    ev(
        "ownership_checked",
        "ownership checked: {written} rows changed, {events} groups newly ownerless (disabled accounts read: {disabled_known})",
    ),
    ev(
        "ownership_check_failed",
        "the ownership check failed, tried again after the next round: {error}",
    ),
    ev(
        "lifecycle_automatic_done",
        "automatic lifecycle actions: {opened} reviews opened, {archived} teams archived, {deleted} groups deleted, {underway} under way, {no_team} due without a team to archive, {no_owner} due without an owner (Teams archives only teams with one), {active_again} used again since their review opened (kept), {waiting} due but not inactive now or not judgeable, {failed} failed, {backing_off} refused before and waiting to be tried again (daily cap reached: {capped})",
    ),
    ev(
        "lifecycle_automatic_skipped",
        "a due review was not acted on automatically ({reason}); its owners or an administrator decide",
    ),
    ev(
        "lifecycle_cap_not_released",
        "a place in the day's cap taken by an action that did not happen could not be given back (the day's cap is one stricter): {error}",
    ),
    ev(
        "lifecycle_automatic_failed",
        "automatic lifecycle actions failed, tried again by the next sync: {error}",
    ),
    ev(
        "lifecycle_action_settled",
        "a lifecycle action on group {group_id} had happened: recorded as done",
    ),
    ev(
        "lifecycle_action_unsettled",
        "a lifecycle action intended on group {group_id} could not be checked: {error}",
    ),
    ev(
        "reviews_due_failed",
        "reviews that fell due could not be checked: {error}",
    ),
    ev(
        "membership_added",
        "{object_id} added to the {relation} of group {group_id}",
    ),
    ev(
        "membership_removed",
        "{object_id} removed from the {relation} of group {group_id}",
    ),
    ev(
        "policy_changed",
        "group creation policy changed (creation enabled: {enabled})",
    ),
    ev(
        "group_sync_finished",
        "group sync: {groups} groups seen, {written} rows written, {requests} Graph requests ({mode})",
    ),
    ev(
        "group_sync_restarted",
        "group sync: the delta token expired; starting a full sync",
    ),
    ev(
        "activity_sync_finished",
        "activity sync: {blobs} audit blobs, {records} records ({matched} about groups, {duplicates} repeats skipped), {lost} blobs lost, {written} rows written, Teams report {teams_report}",
    ),
    ev(
        "audit_content_lost",
        "audit content of {content_type} expired before it was read ({error})",
    ),
    ev(
        "teams_report_concealed",
        "the Teams activity report hides group names (reports privacy setting); using the audit feed only",
    ),
    ev(
        "teams_report_unreadable",
        "the Teams activity report could not be read: {error}",
    ),
    ev(
        "activity_save_failed",
        "activity read before a failure could not be saved: {error}",
    ),
    ev(
        "groups_report_unreadable",
        "the Microsoft 365 groups activity report could not be read: {error}",
    ),
    ev("tenant_sync_failed", "tenant sync failed: {error}"),
    ev(
        "people_days_not_kept",
        "who was active in {count} group(s) could not be kept for a later write (it is kept sealed while it waits, and a changed GroupMgr key cannot open what an older key sealed): successor suggestions may miss those days",
    ),
    ev(
        "report_counts_unmatched",
        "a usage report named {groups} group(s) and none is one of the tenant's (names concealed meanwhile?): its counts were not kept",
    ),
    ev(
        "report_counts_not_kept",
        "the usage report counts of {count} group(s) could not be kept for a later write (sealed while they wait; a changed GroupMgr key cannot open them): the next report writes them again",
    ),
    ev(
        "row_refused",
        "SharePoint refused the row of group {group_id} ({attempts} attempt(s); kept and tried again next run): {error}",
    ),
    ev(
        "sync_condition",
        "the sync cannot proceed until the tenant acts: {condition} ({error}); retried with a growing interval",
    ),
    ev(
        "sync_condition_cleared",
        "the sync proceeds again: {condition} is resolved",
    ),
    ev(
        "list_missing",
        "the GroupMgr list was deleted; it is created again and filled by a full sync",
    ),
    ev("sync_requested", "sync requested (full: {full})"),
    ev(
        "sync_queue_unavailable",
        "the tenant-sync queue is unavailable: {error}",
    ),
];

/// Fields that are never sensitive: codes, counts, durations, ids that are not personal.
pub const CLEAR_FIELDS: &[&str] = &[
    "event",
    "tenant_id",
    "invocation_id",
    "function",
    "method",
    "status",
    "duration_ms",
    "addr",
    "version",
    "keys",
    "tenants",
    "past_due",
    "count",
    "dropped",
    "reason",
    "error",
    "group_id",
    "relation",
    "enabled",
    "groups",
    "written",
    "requests",
    "mode",
    "content_type",
    "blobs",
    "records",
    "matched",
    "duplicates",
    "lost",
    "teams_report",
    "full",
    "outcome",
    "attempts",
    "condition",
];

pub fn spec(code: &str) -> Option<&'static EventSpec> {
    EVENTS.iter().find(|e| e.code == code)
}

pub fn is_clear(field: &str) -> bool {
    CLEAR_FIELDS.contains(&field)
}

/// Renders a template with field values (used by the customer-side decryption).
pub fn render(template: &str, fields: &serde_json::Map<String, serde_json::Value>) -> String {
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        match after.find('}') {
            Some(end) => {
                let name = &after[..end];
                match fields.get(name) {
                    Some(serde_json::Value::String(s)) => out.push_str(s),
                    Some(serde_json::Value::Null) | None => out.push('-'),
                    Some(v) => out.push_str(&v.to_string()),
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_name_only_known_placeholders_and_codes_are_unique() {
        let mut codes: Vec<_> = EVENTS.iter().map(|e| e.code).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), EVENTS.len());
        for e in EVENTS {
            assert!(e.code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{}", e.code);
        }
    }

    #[test]
    fn render_fills_placeholders() {
        let mut f = serde_json::Map::new();
        f.insert("user".into(), "a@b.c".into());
        f.insert("status".into(), 403.into());
        assert_eq!(render("{user} got {status} ({missing})", &f), "a@b.c got 403 (-)");
        assert_eq!(render("unclosed {brace", &f), "unclosed {brace");
    }

    #[test]
    fn every_event_code_used_in_the_source_is_catalogued() {
        // Scans src/ for `event = "…"` so that an uncatalogued event cannot slip in.
        fn walk(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let p = entry.unwrap().path();
                if p.is_dir() {
                    walk(&p, out);
                } else if p.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    for (i, _) in text.match_indices("event = \"") {
                        let rest = &text[i + 9..];
                        let code = &rest[..rest.find('"').unwrap()];
                        out.push((p.display().to_string(), code.to_string()));
                    }
                }
            }
        }
        let mut used = Vec::new();
        walk(
            &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src"),
            &mut used,
        );
        assert!(!used.is_empty());
        for (file, code) in used {
            if code.contains('{') || code == "…" {
                continue;
            }
            assert!(spec(&code).is_some(), "{file}: event `{code}` is not in the catalogue");
        }
    }
}
