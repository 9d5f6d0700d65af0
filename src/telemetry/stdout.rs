//! The stdout sink: one JSON object per line, which the Functions host ships to Application
//! Insights. Catalogued events print their template, never a rendered message; fields outside
//! the clear list print as "[redacted]".

use std::io::Write as _;

use serde_json::{Map, Value};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

use super::catalog;
use super::fields::Fields;

pub const REDACTED: &str = "[redacted]";

/// Formats one event as the stdout JSON line (without the newline).
pub fn format_event(event: &tracing::Event<'_>, now: chrono::DateTime<chrono::Utc>) -> String {
    let fields = Fields::of(event);
    let meta = event.metadata();
    let mut obj = Map::new();
    obj.insert(
        "timestamp".into(),
        now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).into(),
    );
    obj.insert("level".into(), meta.level().as_str().into());
    let code = fields.str("event").map(str::to_string);
    let message = match code.as_deref() {
        Some(c) => catalog::spec(c).map_or(REDACTED.to_string(), |s| s.template.to_string()),
        // Dependencies' own events carry no code; their messages are their own text.
        None => {
            obj.insert("target".into(), meta.target().into());
            fields.message.clone().unwrap_or_default()
        }
    };
    obj.insert("message".into(), message.into());
    for (k, v) in fields.map {
        let v = if catalog::is_clear(&k) {
            v
        } else {
            Value::String(REDACTED.into())
        };
        obj.insert(k, v);
    }
    Value::Object(obj).to_string()
}

/// The stdout layer.
pub struct StdoutJson;

impl<S: tracing::Subscriber> Layer<S> for StdoutJson {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let line = format_event(event, chrono::Utc::now());
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}
