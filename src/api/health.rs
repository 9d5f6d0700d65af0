//! `GET /api/health`: anonymous liveness and readiness. Says whether the database answers;
//! carries no tenant data.

use std::time::Duration;

use super::model::{Health, HealthStatus};
use bytes::Bytes;
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
        let health = Health {
            status: HealthStatus::Ok,
            version,
            reason: None,
        };
        super::json(StatusCode::OK, &health)
    } else {
        let health = Health {
            status: HealthStatus::Unavailable,
            version,
            reason: Some("database unavailable"),
        };
        super::json(StatusCode::SERVICE_UNAVAILABLE, &health)
    }
}
