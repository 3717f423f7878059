//! Errors as HTTP answers: a status and `{"error": {"kind": ..., "message": ...}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fresco::{Error, LogError};
use serde::Serialize;

/// An error answered to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// A stable, machine-readable kind (`bad_request`, `unknown_model`, ...).
    pub kind: &'static str,
    /// What was wrong, naming the field, value or dependency.
    pub message: String,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    kind: &'a str,
    message: &'a str,
}

impl ApiError {
    /// A 400 naming what was wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError { status: StatusCode::BAD_REQUEST, kind: "bad_request", message: message.into() }
    }

    /// The answer to a [`fresco::Error`]: 400 for what the request got wrong, 404 for
    /// an unknown model, 409 for a treatment of a held-out entity, 413 for a batch over
    /// the limit, 503 when a dependency (the log, the event stream, the aggregates) is
    /// down beyond its policy, 500 for the rest.
    pub fn from_client(error: &Error) -> Self {
        let (status, kind) = match error {
            Error::UnknownModel { .. } => (StatusCode::NOT_FOUND, "unknown_model"),
            Error::UnknownRequestValue { .. }
            | Error::MissingEntity { .. }
            | Error::InvalidValue { .. }
            | Error::MissingFeature { .. }
            | Error::EmptyTreatment { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::HeldOutTreatment { .. } => (StatusCode::CONFLICT, "held_out"),
            Error::BatchTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "batch_too_large"),
            Error::Log { source: LogError::Schema { .. }, .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Log { .. } => (StatusCode::SERVICE_UNAVAILABLE, "log_unavailable"),
            Error::Aggregates(_) | Error::Events(_) => (StatusCode::SERVICE_UNAVAILABLE, "dependency_unavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        ApiError { status, kind, message: error.to_string() }
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::from_client(&error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, kind = self.kind, message = %self.message, "request failed");
        }
        let body = Body { error: Inner { kind: self.kind, message: &self.message } };
        (self.status, Json(body)).into_response()
    }
}
