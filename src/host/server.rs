//! The HTTP server the Functions host (or a caller, standalone) talks to, on 127.0.0.1.
//! Bodies are capped; shutdown is graceful: on the signal the listener closes and in-flight
//! requests finish.

use std::future::Future;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures_util::StreamExt;
use tokio::net::TcpListener;
use warp::Filter;
use warp::http::{Response, StatusCode};

use super::dispatch::{HttpRequest, handle};
use crate::api::{ApiError, ErrorCode};
use crate::app::App;

/// Largest request body accepted (group bodies are small; 1 MiB is generous).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Serves `app` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(app: Arc<App>, listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) {
    let routes = warp::any()
        .and(warp::method())
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |method, path: warp::path::FullPath, query, headers, body| {
            let app = app.clone();
            async move {
                let body = match read_capped(body).await {
                    Ok(b) => b,
                    Err(resp) => return resp,
                };
                let req = HttpRequest {
                    method,
                    path: path.as_str().to_string(),
                    query,
                    headers,
                    body,
                };
                handle(&app, req).await
            }
        });
    warp::serve(routes).incoming(listener).graceful(shutdown).run().await;
}

async fn read_capped<S, B>(body: S) -> Result<Bytes, Response<Bytes>>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut out = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk = chunk.map_err(|_| {
            ApiError::bad_request(ErrorCode::InvalidBody, "the request body could not be read").into_response()
        })?;
        if out.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("request bodies are limited to {MAX_BODY_BYTES} bytes"),
            )
            .into_response());
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            out.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    Ok(out.freeze())
}
