//! The invocation envelopes of non-HTTP functions (functions-custom-handler.md §2–3).
//! Request: `{"Data":{<binding>:…},"Metadata":{…,"sys":{"MethodName","UtcNow","RandGuid"}}}`.
//! Response: `{"Outputs":{<binding>:…},"Logs":["…"],"ReturnValue":…}`; any non-2xx status
//! fails the invocation (the host then retries a queue message, and finally poisons it).

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use warp::http::{Response, StatusCode};

/// What the host POSTs for a timer or queue invocation.
#[derive(Debug, Clone, Deserialize)]
pub struct InvocationRequest {
    #[serde(rename = "Data", default)]
    pub data: Map<String, Value>,
    #[serde(rename = "Metadata", default)]
    pub metadata: Map<String, Value>,
}

impl InvocationRequest {
    /// A queue trigger's message: the host sends it as a JSON *string* holding the message
    /// text (even when the text is itself JSON), so both forms are accepted.
    pub fn queue_message(&self, binding: &str) -> Option<String> {
        match self.data.get(binding)? {
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// `Metadata.DequeueCount` of a queue invocation.
    pub fn dequeue_count(&self) -> Option<u64> {
        self.metadata.get("DequeueCount").and_then(Value::as_u64)
    }
}

/// What the handler answers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InvocationResponse {
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    #[serde(rename = "ReturnValue")]
    pub return_value: Value,
}

impl InvocationResponse {
    /// A completed invocation with one log line and no outputs.
    pub fn logged(line: impl Into<String>) -> Self {
        Self {
            logs: vec![line.into()],
            ..Default::default()
        }
    }
}

/// A failed invocation: a non-2xx status (the host records the failure and retries a queue
/// message) with a JSON body in the API's error shape, `{"error":{"code","message"}}`. The
/// codes here are the host's, not the UI's (`invalid_invocation`, `sync_failed`, …).
#[derive(Debug)]
pub struct InvocationFailure {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl InvocationFailure {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn into_response(self) -> Response<Bytes> {
        crate::api::json(
            self.status,
            &json!({"error": {"code": self.code, "message": self.message}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_queue_example() {
        // Verbatim from the custom handlers documentation (functions-custom-handler.md §2).
        let raw = r#"{
          "Data": { "myQueueItem": "{ message: \"Message sent\" }" },
          "Metadata": {
            "DequeueCount": 1,
            "ExpirationTime": "2019-10-16T17:58:31+00:00",
            "Id": "800ae4b3-bdd2-4c08-badd-f08e5a34b865",
            "InsertionTime": "2019-10-09T17:58:31+00:00",
            "NextVisibleTime": "2019-10-09T18:08:32+00:00",
            "PopReceipt": "AgAAAAMAAAAAAAAAAgtnj8x+1QE=",
            "sys": { "MethodName": "QueueTrigger", "UtcNow": "2019-10-09T17:58:32.2205399Z", "RandGuid": "24ad4c06-24ad-4e5b-8294-3da9714877e9" }
          }
        }"#;
        let req: InvocationRequest = serde_json::from_str(raw).unwrap();
        assert_eq!(
            req.queue_message("myQueueItem").unwrap(),
            "{ message: \"Message sent\" }"
        );
        assert_eq!(req.dequeue_count(), Some(1));
    }

    #[test]
    fn response_uses_the_documented_pascal_case_keys() {
        let resp = InvocationResponse {
            logs: vec!["Log message 1".into()],
            ..Default::default()
        };
        let v = serde_json::to_value(&resp).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"Outputs": {}, "Logs": ["Log message 1"], "ReturnValue": null})
        );
    }
}
