//! Errors of the management API, as HTTP statuses and one JSON shape:
//! `{"error": {"status": 412, "message": "..."}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::config::Problem;
use crate::subscription::SubscriptionError;

/// Problems in one line, as `tollgate validate` prints them.
pub fn joined(problems: &[Problem]) -> String {
    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ")
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    /// The body is not what the route takes, or names what does not exist: the same words
    /// `tollgate validate` uses.
    #[error("{0}")]
    Invalid(String),
    /// What `tollgate validate` would say of the body, problem by problem.
    #[error("{}", joined(.0))]
    Problems(Vec<Problem>),
    /// What the token may not do: a change with the read-only token, or a part the config's
    /// `management.allow` does not open to the API.
    #[error("{}", joined(.0))]
    Forbidden(Vec<Problem>),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("If-Match is required: send the ETag you read, so a concurrent change is not overwritten")]
    IfMatchRequired,
    #[error("{0}")]
    Stale(String),
    #[error("{0}")]
    Conflict(String),
    #[error("subscriptions are not kept: set `management.data_dir` in the config")]
    NoStore,
    #[error("uploaded components are kept in `management.data_dir`: set it in the config")]
    NoUploads,
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Invalid(_) | ApiError::Problems(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::IfMatchRequired => StatusCode::PRECONDITION_REQUIRED,
            ApiError::Stale(_) => StatusCode::PRECONDITION_FAILED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::NoStore | ApiError::NoUploads => StatusCode::CONFLICT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "management API request failed");
        }
        let mut body = json!({ "error": { "status": status.as_u16(), "message": self.to_string() } });
        if let ApiError::Problems(problems) | ApiError::Forbidden(problems) = &self {
            body["error"]["problems"] = problems.iter().map(|p| json!({ "path": p.path, "message": p.message })).collect();
        }
        (status, Json(body)).into_response()
    }
}

impl From<SubscriptionError> for ApiError {
    fn from(e: SubscriptionError) -> ApiError {
        match e {
            SubscriptionError::NotFound(_) => ApiError::NotFound(e.to_string()),
            SubscriptionError::Stale { .. } => ApiError::Stale(e.to_string()),
            SubscriptionError::Conflict(_) => ApiError::Conflict(e.to_string()),
            SubscriptionError::Store(crate::subscription::StoreError::Stale(_)) => ApiError::Stale(e.to_string()),
            SubscriptionError::Store(_) => ApiError::Internal(e.to_string()),
        }
    }
}
