//! `GET /api/health`: anonymous liveness and readiness. Says whether the database answers;
//! carries no tenant data.

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use warp::http::{Response, StatusCode};

use crate::app::App;

const STORE_PING_TIMEOUT: Duration = Duration::from_secs(2);

pub async fn get(app: &App) -> Response<Bytes> {
    let version = env!("CARGO_PKG_VERSION");
    let store_ok = matches!(
        tokio::time::timeout(STORE_PING_TIMEOUT, app.store.ping()).await,
        Ok(Ok(()))
    );
    if store_ok {
        super::json(StatusCode::OK, &json!({"status": "ok", "version": version}))
    } else {
        super::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "version": version, "reason": "database unavailable"}),
        )
    }
}
