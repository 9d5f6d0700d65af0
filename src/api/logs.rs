//! `GET /api/logs?since=&until=&cursor=&top=`: the caller's tenant's log entries, still
//! sealed, with the sealed data keys they need, so that the customer's own tools (or
//! `groupmgr logs decrypt --input`) can open them with the tenant's private key. Role
//! `GroupMgr.Admin`. Entries are oldest first; `nextCursor` continues after the last one.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use warp::http::{Response, StatusCode};

use super::model::{LogEntry, LogKey, LogPage};
use super::paging::{Cursor, CursorScope, Top, invalid_cursor};
use super::{ApiError, ErrorCode, Request};
use crate::app::App;
use crate::auth::Caller;
use crate::store::LogQuery;

const DEFAULT_TOP: u32 = 200;
const MAX_TOP: u32 = 1000;

/// A parsed request.
#[derive(Debug, Default, PartialEq)]
struct LogsRequest {
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, uuid::Uuid)>,
    top: u32,
}

/// The (time, id) of the last entry of the previous page.
#[derive(Serialize, Deserialize)]
struct LogsCursor {
    #[serde(rename = "t")]
    micros: i64,
    id: uuid::Uuid,
    /// The window the pages are of (`since`, `until`, in microseconds).
    #[serde(rename = "s", default)]
    since: Option<i64>,
    #[serde(rename = "u", default)]
    until: Option<i64>,
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidInput, format!("{field}: {rule}"))
}

fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    use chrono::Datelike as _;
    let t = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(field, "must be an RFC 3339 time like 2026-11-27T10:00:00Z"))?;
    // The stores' own range (SQL Server's DATETIME2: years 1 to 9999, in UTC).
    if !(1..=9999).contains(&t.year()) {
        return Err(invalid(field, "must be between the years 1 and 9999 (UTC)"));
    }
    Ok(t)
}

fn encode_cursor(scope: &CursorScope<'_>, time: DateTime<Utc>, id: uuid::Uuid, q: &LogsRequest) -> String {
    Cursor::encode(
        scope,
        &LogsCursor {
            micros: time.timestamp_micros(),
            id,
            since: q.since.map(|t| t.timestamp_micros()),
            until: q.until.map(|t| t.timestamp_micros()),
        },
    )
}

/// The scope of a tenant's log cursors.
fn scope<'a>(key: &'a crate::crypto::CursorKey, tenant: &'a crate::domain::TenantId) -> CursorScope<'a> {
    CursorScope {
        key,
        tenant,
        route: "logs".into(),
    }
}

fn parse(query: &str, scope: &CursorScope<'_>) -> Result<LogsRequest, ApiError> {
    let mut req = LogsRequest {
        top: DEFAULT_TOP,
        ..Default::default()
    };
    let mut cursor: Option<LogsCursor> = None;
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "since" => req.since = Some(parse_time("since", &v)?),
            "until" => req.until = Some(parse_time("until", &v)?),
            "cursor" => cursor = Some(Cursor::decode(scope, &v)?),
            "top" => req.top = Top::parse(&v, MAX_TOP)?.get(),
            _ => {}
        }
    }
    // A cursor continues the window it was handed out for: given again, it must be the same.
    if let Some(c) = cursor {
        let time = |m: Option<i64>| {
            m.map(|m| DateTime::from_timestamp_micros(m).ok_or_else(invalid_cursor))
                .transpose()
        };
        let (since, until) = (time(c.since)?, time(c.until)?);
        if req.since.is_some_and(|s| Some(s) != since) || req.until.is_some_and(|u| Some(u) != until) {
            return Err(invalid_cursor());
        }
        req.since = since;
        req.until = until;
        let at = DateTime::from_timestamp_micros(c.micros).ok_or_else(invalid_cursor)?;
        req.after = Some((at, c.id));
    }
    if let (Some(s), Some(u)) = (req.since, req.until)
        && s >= u
    {
        return Err(invalid("until", "must be later than since"));
    }
    Ok(req)
}

pub async fn get(app: &App, caller: &Caller, req: &Request) -> Result<Response<Bytes>, ApiError> {
    super::require_admin(caller)?;
    let tenant = caller.tenant.tenant_id;
    let scope = scope(&app.cursors, &tenant);
    let q = parse(&req.query, &scope)?;
    let unavailable = |_| ApiError::store_unavailable();
    let mut entries = app
        .store
        .logs(
            &tenant,
            &LogQuery {
                since: q.since,
                until: q.until,
                after: q.after,
                limit: q.top + 1,
            },
        )
        .await
        .map_err(unavailable)?;
    let more = entries.len() > q.top as usize;
    entries.truncate(q.top as usize);
    let next = more
        .then(|| entries.last().map(|e| encode_cursor(&scope, e.time, e.id, &q)))
        .flatten();
    let used: std::collections::HashSet<uuid::Uuid> = entries.iter().map(|e| e.sealed.key_id).collect();
    let keys = app
        .store
        .log_keys(&tenant)
        .await
        .map_err(unavailable)?
        .into_iter()
        .filter(|k| used.contains(&k.key_id))
        .map(|k| LogKey {
            key_id: k.key_id.to_string(),
            public_key_id: k.public_key_id.to_string(),
            enc: B64.encode(&k.enc),
            sealed_key: B64.encode(&k.sealed_key),
            sender_public_key: k.sender_public_key.as_deref().map(|b| B64.encode(b)),
        })
        .collect();
    let value = entries
        .iter()
        .map(|e| LogEntry {
            id: e.id.to_string(),
            time: e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            level: e.level.to_string(),
            event: e.event.to_string(),
            message: e.message.to_string(),
            key_id: e.sealed.key_id.to_string(),
            nonce: B64.encode(e.sealed.nonce),
            sealed: B64.encode(&e.sealed.ciphertext),
        })
        .collect();
    let page = LogPage {
        tenant_id: tenant.to_string(),
        value,
        keys,
        publisher_key: app.settings.publisher_key.as_ref().map(|k| k.public().to_text()),
        next_cursor: next,
    };
    Ok(super::json(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let key = crate::crypto::CursorKey::derive(&crate::crypto::IndexKey::from_bytes([3; 32]));
        let tenant = crate::domain::TenantId::parse("72f988bf-86f1-41af-91ab-2d7cd011db47").unwrap();
        let scope = scope(&key, &tenant);
        let parse = |q: &str| parse(q, &scope);
        assert_eq!(parse("").unwrap().top, DEFAULT_TOP);
        let r = parse("since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00%2B01:00&top=5").unwrap();
        assert_eq!(r.top, 5);
        assert_eq!(r.until.unwrap().to_rfc3339(), "2026-11-01T23:00:00+00:00");
        assert!(parse("since=yesterday").is_err());
        assert!(parse("since=0000-06-01T00:00:00Z").is_err());
        assert!(parse("since=0001-01-01T00:00:00+01:00").is_err(), "year 0 in UTC");
        assert!(parse("until=9999-12-31T23:00:00-02:00").is_err(), "year 10000 in UTC");
        assert!(parse("top=0").is_err());
        assert!(parse("top=1001").is_err());
        assert!(parse("cursor=zzz").is_err());
        assert!(parse("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z").is_err());
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = uuid::Uuid::new_v4();
        let window = parse("since=2026-11-01T00:00:00Z").unwrap();
        let c = encode_cursor(&scope, t, id, &window);
        let next = parse(&format!("cursor={c}")).unwrap();
        assert_eq!((next.after, next.since), (Some((t, id)), window.since));
        assert!(parse(&format!("cursor={c}&since=2026-11-01T00:00:00Z")).is_ok());
        // Another window with the same cursor: refused.
        assert_eq!(
            parse(&format!("cursor={c}&since=2026-10-01T00:00:00Z"))
                .unwrap_err()
                .code,
            ErrorCode::InvalidCursor
        );
    }
}
