//! The feature server's JSON: `POST /get-online-features`, its answer, its errors.

use std::collections::BTreeMap;

use fresco::{FeatureValue, Timestamp, Value, ValueType};
use serde::{Deserialize, Serialize};

use crate::FeastError;

/// The request body.
#[derive(Debug, Serialize)]
pub(crate) struct Request<'a> {
    pub entities: BTreeMap<&'a str, Vec<serde_json::Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub feature_service: Option<&'a str>,
    pub full_feature_names: bool,
}

/// The answer: one result per name in `metadata.feature_names` (the join keys first,
/// then the features in the server's order, not the request's).
#[derive(Debug, Deserialize)]
pub(crate) struct Response {
    pub metadata: Metadata,
    pub results: Vec<Column>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub feature_names: Vec<String>,
}

/// One feature for every entity asked for.
#[derive(Debug, Deserialize)]
pub(crate) struct Column {
    pub values: Vec<serde_json::Value>,
    pub statuses: Vec<String>,
    #[serde(default)]
    pub event_timestamps: Vec<String>,
}

/// Feast's error bodies: a JSON string that holds JSON (`{"module", "class",
/// "message"}`), a JSON string of plain text, or FastAPI's `{"detail": ...}`.
pub(crate) fn server_error(status: u16, body: &str) -> FeastError {
    #[derive(Deserialize)]
    struct Raised {
        class: Option<String>,
        message: Option<String>,
    }
    let text = match serde_json::from_str::<serde_json::Value>(body) {
        Ok(serde_json::Value::String(inner)) => inner,
        Ok(serde_json::Value::Object(object)) => match object.get("detail") {
            Some(serde_json::Value::String(detail)) => detail.clone(),
            Some(detail) => detail.to_string(),
            None => serde_json::Value::Object(object).to_string(),
        },
        _ => body.to_owned(),
    };
    match serde_json::from_str::<Raised>(&text) {
        Ok(Raised { class, message: Some(message) }) => FeastError::Server { status, class, message },
        _ => FeastError::Server { status, class: None, message: shorten(&text) },
    }
}

fn shorten(text: &str) -> String {
    const MAX: usize = 500;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// One cell of a column as fresco's value of the declared type, with its status.
pub(crate) fn cell(column: &Column, row: usize, ty: ValueType, feature: &str) -> Result<FeatureValue, FeastError> {
    let decode =
        |reason: String| FeastError::Decode { reason: format!("feature `{feature}`, entity #{row}: {reason}") };
    let (Some(raw), Some(status)) = (column.values.get(row), column.statuses.get(row)) else {
        return Err(decode("the answer has fewer rows than entities asked for".into()));
    };
    let event_ts = match column.event_timestamps.get(row) {
        Some(text) => Some(text.parse::<Timestamp>().map_err(|e| decode(e.to_string()))?),
        None => None,
    };
    match status.as_str() {
        "PRESENT" => {}
        "NOT_FOUND" | "NULL_VALUE" => return Ok(FeatureValue::missing()),
        "OUTSIDE_MAX_AGE" => return Ok(FeatureValue::expired(event_ts.unwrap_or(Timestamp::from_micros(0)))),
        other => return Err(decode(format!("unknown status `{other}`"))),
    }
    let value = typed(raw, ty).ok_or_else(|| decode(format!("{raw} is not {ty}")))?;
    Ok(FeatureValue::present(value, event_ts.unwrap_or(Timestamp::from_micros(0))))
}

/// A JSON value as `ty`; `None` when it is not one. Null is always admitted.
fn typed(raw: &serde_json::Value, ty: ValueType) -> Option<Value> {
    use serde_json::Value as J;
    Some(match (raw, ty) {
        (J::Null, _) => Value::Null,
        (J::Bool(b), ValueType::Bool) => Value::Bool(*b),
        (J::Number(n), ValueType::I64) => Value::I64(n.as_i64()?),
        (J::Number(n), ValueType::F64) => Value::F64(n.as_f64()?),
        // Feast writes NaN and infinities of float features as strings.
        (J::String(s), ValueType::F64) => Value::F64(match s.as_str() {
            "NaN" | "nan" => f64::NAN,
            "Infinity" | "inf" => f64::INFINITY,
            "-Infinity" | "-inf" => f64::NEG_INFINITY,
            _ => return None,
        }),
        (J::String(s), ValueType::Str) => Value::Str(s.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn error_bodies_become_typed_errors() {
        let nested = r#""{\"module\": \"feast.errors\", \"class\": \"FeatureViewNotFoundException\", \"message\": \"Feature view nope does not exist in project p\"}""#;
        match server_error(404, nested) {
            FeastError::Server { status: 404, class: Some(class), message } => {
                assert_eq!(class, "FeatureViewNotFoundException");
                assert_eq!(message, "Feature view nope does not exist in project p");
            }
            other => panic!("{other:?}"),
        }
        let plain = r#""'Feature nope not found in projection restaurants'""#;
        assert!(matches!(server_error(500, plain), FeastError::Server { class: None, ref message, .. }
            if message == "'Feature nope not found in projection restaurants'"));
        let detail = r#"{"detail": [{"loc": ["body"], "msg": "field required"}]}"#;
        assert!(
            matches!(server_error(422, detail), FeastError::Server { ref message, .. } if message.contains("field required"))
        );
        let junk = "x".repeat(2000);
        assert!(
            matches!(server_error(502, &junk), FeastError::Server { ref message, .. } if message.chars().count() == 501)
        );
    }

    #[test]
    fn cells_follow_status_and_type() {
        let column: Column = serde_json::from_str(
            r#"{"values": [12.5, null, 3, "x", 7.0],
                "statuses": ["PRESENT", "NOT_FOUND", "PRESENT", "PRESENT", "OUTSIDE_MAX_AGE"],
                "event_timestamps": ["2026-12-01T11:00:00Z", "1970-01-01T00:00:00Z", "2026-11-01T12:00:00Z",
                                     "2026-12-01T11:00:00Z", "2026-11-01T00:00:00Z"]}"#,
        )
        .unwrap();
        let v = cell(&column, 0, ValueType::F64, "f").unwrap();
        assert_eq!((v.value, v.event_ts), (Value::F64(12.5), Some("2026-12-01T11:00:00Z".parse().unwrap())));
        assert_eq!(cell(&column, 1, ValueType::F64, "f").unwrap(), FeatureValue::missing());
        // An integer is a valid float; a float feature read as a string is not.
        assert_eq!(cell(&column, 2, ValueType::F64, "f").unwrap().value, Value::F64(3.0));
        assert_eq!(cell(&column, 2, ValueType::I64, "f").unwrap().value, Value::I64(3));
        assert!(matches!(cell(&column, 3, ValueType::F64, "f"), Err(FeastError::Decode { .. })));
        assert_eq!(cell(&column, 4, ValueType::F64, "f").unwrap().status, fresco::FeatureStatus::Expired);
        assert!(matches!(cell(&column, 9, ValueType::F64, "f"), Err(FeastError::Decode { .. })));
    }
}
