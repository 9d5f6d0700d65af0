//! JSON `$batch` (graph-groups.md §10): up to 20 requests in one POST. Inner requests are
//! answered — and throttled — one by one, so the batch keeps a per-item resend rule under
//! the shared retry policy: an item answered 429 was not executed and is always resent; an
//! item answered 5xx is resent only when it may be repeated (`resend`). Resent items go in a
//! new batch after the longest `Retry-After` among them.

use std::time::SystemTime;

use base64::Engine as _;
use reqwest::Method;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Graph, GraphError, service_error};
use crate::microsoft::retry::{Idempotency, Retry, parse_retry_after};

/// Most requests in one `$batch` (graph-groups.md §10).
pub const MAX_BATCH: usize = 20;

/// One request inside a `$batch`. `url` is relative to the version root (`/groups/{id}`).
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub method: &'static str,
    pub url: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// Whether the request may be sent again after a transient failure (5xx): reads, writes of
    /// absolute values, and creates that a unique key turns into a conflict when repeated.
    /// A throttled request (429) was not executed and is always sent again.
    pub resend: bool,
}

impl BatchRequest {
    pub fn get(url: impl Into<String>) -> Self {
        Self {
            method: "GET",
            url: url.into(),
            body: None,
            headers: Vec::new(),
            resend: true,
        }
    }

    /// A write with a JSON body.
    pub fn write(method: &'static str, url: impl Into<String>, body: Value, resend: bool) -> Self {
        Self {
            method,
            url: url.into(),
            body: Some(body),
            headers: Vec::new(),
            resend,
        }
    }

    /// A `$count` or `$search` read, which needs `ConsistencyLevel: eventual`.
    pub fn get_eventual(url: impl Into<String>) -> Self {
        Self {
            headers: vec![("ConsistencyLevel", "eventual".to_string())],
            ..Self::get(url)
        }
    }

    fn idempotency(&self) -> Idempotency {
        if self.resend {
            Idempotency::Safe
        } else {
            Idempotency::Once
        }
    }

    fn to_json(&self, id: usize) -> Value {
        let mut item = json!({"id": id.to_string(), "method": self.method, "url": self.url});
        let mut headers = serde_json::Map::new();
        for (k, v) in &self.headers {
            headers.insert((*k).to_string(), json!(v));
        }
        if let Some(b) = &self.body {
            item["body"] = b.clone();
            headers.insert("Content-Type".into(), json!("application/json"));
        }
        if !headers.is_empty() {
            item["headers"] = Value::Object(headers);
        }
        item
    }
}

/// One answer inside a `$batch`.
#[derive(Debug, Clone)]
pub struct BatchResponse {
    pub status: u16,
    pub body: Value,
    /// The item's own `Retry-After` (a throttled item).
    pub retry_after: Option<std::time::Duration>,
}

impl BatchResponse {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn into_result<T: DeserializeOwned>(self) -> Result<T, GraphError> {
        if self.ok() {
            serde_json::from_value(self.body).map_err(|e| GraphError::Protocol(format!("batch item body: {e}")))
        } else {
            let body = serde_json::to_vec(&self.body).unwrap_or_default();
            Err(service_error(self.status, &body, self.retry_after))
        }
    }
}

#[derive(Deserialize)]
struct BatchEnvelope {
    responses: Vec<BatchItem>,
}

#[derive(Deserialize)]
struct BatchItem {
    id: String,
    status: u16,
    #[serde(default)]
    headers: serde_json::Map<String, Value>,
    #[serde(default)]
    body: Value,
}

impl BatchItem {
    /// The item's body as JSON. Graph base64-encodes a body that is not JSON (a `$count`
    /// answers `text/plain`) inside the JSON batch — by design, Microsoft Q&A 1352007; the
    /// JSON batching page shows JSON bodies only. Such a body is decoded to its text; one
    /// that does not decode stays as sent.
    fn body(&mut self) -> Value {
        let body = std::mem::take(&mut self.body);
        let content_type = self
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .and_then(|(_, v)| v.as_str())
            .map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
        match (body, content_type) {
            (Value::String(encoded), Some(ct)) if !ct.ends_with("json") => {
                let compact: String = encoded.split_ascii_whitespace().collect();
                match base64::engine::general_purpose::STANDARD.decode(compact.as_bytes()) {
                    Ok(bytes) => match String::from_utf8(bytes) {
                        Ok(text) => Value::String(text),
                        Err(_) => Value::String(encoded),
                    },
                    Err(_) => Value::String(encoded),
                }
            }
            (body, _) => body,
        }
    }

    /// The item's own `Retry-After` (a string or a number inside the batch answer).
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
            .and_then(|(_, v)| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_f64().map(|f| f.to_string()))
            })
            .and_then(|v| parse_retry_after(&v, SystemTime::now()))
    }
}

impl Graph<'_> {
    /// Runs up to 20 requests in one `$batch`; results are in the order of `requests`. An item
    /// still failing when the policy's attempts or deadline run out keeps its last answer.
    pub(in crate::microsoft) async fn batch(
        &self,
        requests: &[BatchRequest],
    ) -> Result<Vec<BatchResponse>, GraphError> {
        if requests.len() > MAX_BATCH {
            return Err(GraphError::Protocol(format!(
                "at most {MAX_BATCH} requests in one $batch"
            )));
        }
        let mut backoff = self.policy().backoff();
        let mut results: Vec<Option<BatchResponse>> = vec![None; requests.len()];
        let mut pending: Vec<usize> = (0..requests.len()).collect();
        while !pending.is_empty() {
            backoff.begin();
            let body = json!({"requests": pending.iter().map(|&i| requests[i].to_json(i)).collect::<Vec<_>>()});
            // The batch POST itself may be resent when everything in it may be.
            let resendable = pending.iter().all(|&i| requests[i].resend);
            let idempotency = if resendable {
                Idempotency::Safe
            } else {
                Idempotency::Once
            };
            let reply = self
                .send(Method::POST, &self.url("/$batch"), Some(&body), &[], idempotency)
                .await?;
            let parsed: BatchEnvelope = reply.json()?;
            let mut resend = Vec::new();
            let mut wait = None;
            let mut answered = vec![false; requests.len()];
            for mut item in parsed.responses {
                let Some(i) = item.id.parse::<usize>().ok().filter(|i| pending.contains(i)) else {
                    return Err(GraphError::Protocol("batch answered an id it was not sent".into()));
                };
                answered[i] = true;
                let retry_after = item.retry_after();
                let retry = Retry::for_status(item.status, retry_after);
                if let Some(w) = backoff.next_wait(retry, requests[i].idempotency()) {
                    wait = Some(wait.map_or(w, |longest: std::time::Duration| longest.max(w)));
                    resend.push(i);
                }
                results[i] = Some(BatchResponse {
                    status: item.status,
                    body: item.body(),
                    retry_after,
                });
            }
            if pending.iter().any(|&i| !answered[i]) {
                return Err(GraphError::Protocol("batch response is missing items".into()));
            }
            pending = resend;
            if let Some(w) = wait {
                tokio::time::sleep(w).await;
            }
        }
        // Every item was answered: a missing one ended the loop with an error above.
        Ok(results.into_iter().flatten().collect())
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::Duration;

    use m365_sim::directory::CONTOSO;
    use m365_sim::{FaultRule, Sim};

    use super::*;
    use crate::microsoft::graph::GraphClient;
    use crate::microsoft::retry::RetryPolicy;

    #[tokio::test]
    async fn a_throttled_item_inside_a_batch_is_retried() {
        let sim = Sim::start(SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();
        let graph = GraphClient::new(
            &crate::config::Endpoint::parse("X", &sim.url()).unwrap(),
            reqwest::Client::new(),
            RetryPolicy {
                base_delay: Duration::from_millis(10),
                ..Default::default()
            },
        );
        let session = graph.session(crate::secret::AccessToken::new(sim.graph_app_token(CONTOSO)));
        let ids: Vec<String> = sim
            .state
            .with_graph(&CONTOSO, |t| {
                t.groups
                    .values()
                    .filter(|g| g.is_unified())
                    .take(20)
                    .map(|g| g.id.to_string())
                    .collect()
            })
            .unwrap();
        let requests: Vec<_> = ids
            .iter()
            .map(|id| BatchRequest::get_eventual(format!("/groups/{id}/owners/$count")))
            .collect();
        // Item 7 is throttled twice inside a 200 batch response, then served.
        sim.state
            .faults
            .arm(FaultRule::throttled(format!("/v1.0/groups/{}/owners/$count", ids[7]), "1").times(2));
        let out = session.batch(&requests).await.unwrap();
        assert!(out.iter().all(|r| r.ok()), "{out:?}");
        assert!(
            out.iter()
                .all(|r| r.body.as_str().is_some_and(|n| n.parse::<u64>().is_ok())),
            "counts: {out:?}"
        );
        assert_eq!(
            sim.requests_where(|p| p == "/v1.0/$batch"),
            3,
            "one batch plus two retries of the throttled item"
        );
        // When the item stays throttled past the retries, the caller gets its 429 back.
        sim.state.faults.arm(FaultRule::throttled(
            format!("/v1.0/groups/{}/owners/$count", ids[3]),
            "0",
        ));
        let out = session.batch(&requests).await.unwrap();
        assert_eq!(out[3].status, 429);
        assert!(out.iter().enumerate().all(|(i, r)| i == 3 || r.ok()));
    }
}
