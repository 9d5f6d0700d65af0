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
use super::paging::{Cursor, Top};
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
}

fn invalid(field: &str, rule: &str) -> ApiError {
    ApiError::bad_request(ErrorCode::InvalidInput, format!("{field}: {rule}"))
}

fn parse_time(field: &str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| invalid(field, "must be an RFC 3339 time like 2026-11-27T10:00:00Z"))
}

fn encode_cursor(time: DateTime<Utc>, id: uuid::Uuid) -> String {
    Cursor::encode(&LogsCursor {
        micros: time.timestamp_micros(),
        id,
    })
}

fn decode_cursor(raw: &str) -> Result<(DateTime<Utc>, uuid::Uuid), ApiError> {
    let c: LogsCursor = Cursor::decode(raw)?;
    let time = DateTime::from_timestamp_micros(c.micros).ok_or_else(super::paging::invalid_cursor)?;
    Ok((time, c.id))
}

fn parse(query: &str) -> Result<LogsRequest, ApiError> {
    let mut req = LogsRequest {
        top: DEFAULT_TOP,
        ..Default::default()
    };
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "since" => req.since = Some(parse_time("since", &v)?),
            "until" => req.until = Some(parse_time("until", &v)?),
            "cursor" => req.after = Some(decode_cursor(&v)?),
            "top" => req.top = Top::parse(&v, MAX_TOP)?.get(),
            _ => {}
        }
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
    let q = parse(&req.query)?;
    let tenant = caller.tenant.tenant_id;
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
        .then(|| entries.last().map(|e| encode_cursor(e.time, e.id)))
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
        next_cursor: next,
    };
    Ok(super::json(StatusCode::OK, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        assert_eq!(parse("").unwrap().top, DEFAULT_TOP);
        let r = parse("since=2026-11-01T00:00:00Z&until=2026-11-02T00:00:00%2B01:00&top=5").unwrap();
        assert_eq!(r.top, 5);
        assert_eq!(r.until.unwrap().to_rfc3339(), "2026-11-01T23:00:00+00:00");
        assert!(parse("since=yesterday").is_err());
        assert!(parse("top=0").is_err());
        assert!(parse("top=1001").is_err());
        assert!(parse("cursor=zzz").is_err());
        assert!(parse("since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z").is_err());
        let t = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = uuid::Uuid::new_v4();
        assert_eq!(
            parse(&format!("cursor={}", encode_cursor(t, id))).unwrap().after,
            Some((t, id))
        );
    }
}
