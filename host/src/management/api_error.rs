//! Errors of the management API: an HTTP status and an RFC 9457 problem
//! (`application/problem+json`) whose `type` names the kind of error, stable across releases:
//! `{"type": "urn:tollgate:problem:stale", "title": "...", "status": 412, "detail": "..."}`, with
//! `errors: [{path, detail}]` where places in the body are at fault.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::{JsonSchema, Schema, SchemaGenerator};

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
    /// The gateway's own client listener did not answer the playground.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// Every kind of error the management API answers with: (`type` slug, status, title). The
/// `type` is `urn:tollgate:problem:<slug>`; docs/management-api.md lists them.
pub const KINDS: &[(&str, u16, &str)] = &[
    ("not-found", 404, "Not found"),
    ("invalid", 422, "The request is not acceptable"),
    ("invalid-config", 422, "The configuration sent is not valid"),
    ("forbidden", 403, "Not allowed to change this"),
    ("read-only", 403, "The read-only token cannot change anything"),
    ("unauthorized", 401, "The admin token is missing or not valid"),
    ("too-large", 413, "The body is too large"),
    ("unsupported-media-type", 415, "The body's media type is not accepted here"),
    ("if-match-required", 428, "If-Match is required"),
    ("stale", 412, "Changed since it was read"),
    ("conflict", 409, "In conflict with the current state"),
    ("no-store", 409, "Nothing is kept without a data directory"),
    ("method-not-allowed", 405, "The route does not take this method"),
    ("unavailable", 502, "The gateway's client listener did not answer"),
    ("internal", 500, "The gateway failed"),
];

/// An RFC 9457 problem, the body of every error the API answers with.
#[derive(serde::Serialize, JsonSchema)]
#[schemars(rename = "Problem")]
pub struct ProblemDocument {
    /// The kind of error, `urn:tollgate:problem:<kind>`: stable across releases, what a script
    /// branches on (docs/management-api.md, "Errors").
    #[serde(rename = "type")]
    #[schemars(schema_with = "kinds")]
    pub kind: String,
    /// The kind's title.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// The places in the body at fault, in the words `tollgate validate` uses, when there are some.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<Place>>,
}

/// One place in a body at fault.
#[derive(serde::Serialize, JsonSchema)]
pub struct Place {
    /// Where, as `tollgate validate` says it (`server.backend.http`).
    pub path: String,
    pub detail: String,
}

/// The `type`s of [`KINDS`].
fn kinds(_: &mut SchemaGenerator) -> Schema {
    let all: Vec<String> = KINDS.iter().map(|(slug, ..)| format!("urn:tollgate:problem:{slug}")).collect();
    schemars::json_schema!({ "type": "string", "enum": all })
}

/// A problem document of kind `slug` (one of [`KINDS`]), with `detail`, and `errors` when places
/// in the body are at fault.
pub fn problem(slug: &str, detail: &str, errors: Option<Vec<Place>>) -> Response {
    let (slug, code, title) = KINDS.iter().copied().find(|(s, ..)| *s == slug).unwrap_or(("internal", 500, "The gateway failed"));
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = ProblemDocument { kind: format!("urn:tollgate:problem:{slug}"), title, status: code, detail: detail.to_owned(), errors };
    let body = serde_json::to_string(&body).expect("a problem serializes");
    let mut r = (status, body).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    r
}

impl ApiError {
    /// The kind of problem, as [`KINDS`] names it.
    fn slug(&self) -> &'static str {
        match self {
            ApiError::NotFound(_) => "not-found",
            ApiError::Invalid(_) => "invalid",
            ApiError::Problems(_) => "invalid-config",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::TooLarge(_) => "too-large",
            ApiError::UnsupportedMedia(_) => "unsupported-media-type",
            ApiError::IfMatchRequired => "if-match-required",
            ApiError::Stale(_) => "stale",
            ApiError::Conflict(_) => "conflict",
            ApiError::NoStore | ApiError::NoUploads => "no-store",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

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
            ApiError::Unavailable(_) => StatusCode::BAD_GATEWAY,
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
        let places = match &self {
            ApiError::Problems(problems) | ApiError::Forbidden(problems) => {
                Some(problems.iter().map(|p| Place { path: p.path.clone(), detail: p.message.clone() }).collect())
            }
            _ => None,
        };
        debug_assert_eq!(KINDS.iter().find(|(s, ..)| *s == self.slug()).map(|k| k.1), Some(status.as_u16()));
        problem(self.slug(), &self.to_string(), places)
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
