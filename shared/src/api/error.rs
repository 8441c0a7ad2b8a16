//! Krafter-compatible error bodies: `{"error": ..., "code": ..., "details": {...}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tracing::error;

use crate::domain::{FieldErrors, InputError};
use crate::ports::StoreError;
use crate::service::ServiceError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid JSON")]
    InvalidJson(FieldErrors),
    #[error("invalid or missing API key")]
    Unauthorized,
    #[error("insufficient scope")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("payload too large")]
    PayloadTooLarge,
    #[error("the request body was not received in time")]
    RequestTimeout,
    #[error("the request URI is too long")]
    UriTooLong,
    #[error("validation failed")]
    Validation(FieldErrors),
    #[error("rate limit exceeded")]
    RateLimited { retry_after: u32 },
    #[error("job is paused")]
    JobPaused,
    #[error("job has no future run")]
    NoFutureRun,
    #[error("job quota exceeded")]
    QuotaExceeded(u64),
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a FieldErrors>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u32>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidJson(_) => (S::BAD_REQUEST, "Invalid JSON", "invalid_json"),
            Self::Unauthorized => (
                S::UNAUTHORIZED,
                "Invalid or missing API key",
                "invalid_api_key",
            ),
            Self::Forbidden => (S::FORBIDDEN, "Insufficient scope", "insufficient_scope"),
            Self::NotFound => (S::NOT_FOUND, "Not found", "not_found"),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "method_not_allowed",
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "Payload too large",
                "payload_too_large",
            ),
            Self::RequestTimeout => (S::REQUEST_TIMEOUT, "Request timeout", "request_timeout"),
            Self::UriTooLong => (S::URI_TOO_LONG, "URI too long", "uri_too_long"),
            Self::Validation(_) => (
                S::UNPROCESSABLE_ENTITY,
                "Validation failed",
                "validation_failed",
            ),
            Self::RateLimited { .. } => {
                (S::TOO_MANY_REQUESTS, "Rate limit exceeded", "rate_limited")
            }
            Self::JobPaused => (S::CONFLICT, "Job is paused", "job_paused"),
            Self::NoFutureRun => (
                S::CONFLICT,
                "Job schedule has no future run",
                "no_future_run",
            ),
            Self::QuotaExceeded(_) => (
                S::UNPROCESSABLE_ENTITY,
                "Job quota exceeded",
                "quota_exceeded",
            ),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "Internal error", "internal"),
        }
    }
}

impl ApiError {
    /// The error's JSON body, as its response carries it (and an MCP tool's error result).
    pub fn body(&self) -> serde_json::Value {
        let (_, message, code) = self.parts();
        let quota;
        let details = match self {
            Self::InvalidJson(d) | Self::Validation(d) if !d.is_empty() => Some(d),
            Self::QuotaExceeded(n) => {
                quota = FieldErrors::single("jobs", format!("a team may have at most {n} jobs"));
                Some(&quota)
            }
            _ => None,
        };
        let body = ErrorBody {
            error: message,
            code,
            details,
            retry_after: self.retry_after(),
        };
        serde_json::to_value(body).expect("an error body serializes")
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// The error's HTTP status.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// Logs the cause of an internal error (never shown to the client).
    pub fn log_cause(&self) {
        if let Self::Internal(source) = self {
            error!(error = %source, source = ?source.source(), "request failed");
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.log_cause();
        let (status, _, _) = self.parts();
        let mut response = (status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => Self::NotFound,
            ServiceError::JobPaused => Self::JobPaused,
            ServiceError::NoFutureRun => Self::NoFutureRun,
            ServiceError::QuotaExceeded(n) => Self::QuotaExceeded(n),
            ServiceError::Input(InputError::Types(d)) => Self::InvalidJson(d),
            ServiceError::Input(InputError::Invalid(d)) => Self::Validation(d),
            e @ ServiceError::Contention => Self::Internal(Box::new(e)),
            ServiceError::Store(e) => Self::Internal(Box::new(e)),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        Self::Internal(Box::new(e))
    }
}
