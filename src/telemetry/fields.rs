//! Collects a tracing event's fields as JSON values.

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};

/// The fields of one event, and its `message` (the format string as rendered) apart.
#[derive(Default)]
pub struct Fields {
    pub map: Map<String, Value>,
    pub message: Option<String>,
}

impl Fields {
    pub fn of(event: &tracing::Event<'_>) -> Self {
        let mut f = Self::default();
        event.record(&mut f);
        f
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.map.get(name).and_then(Value::as_str)
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.map.insert(
            field.name().into(),
            serde_json::Number::from_f64(value).map_or(Value::Null, Value::Number),
        );
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.map.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        } else {
            self.map.insert(field.name().into(), value.into());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            self.map.insert(field.name().into(), text.into());
        }
    }
}
