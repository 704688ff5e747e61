//! The HTTP error type: every failure leaves Peil as `application/problem+json`
//! (RFC 9457) with a machine-readable `type`. Stores return `DbError`, domain
//! parsing returns `Invalid`; handlers turn both into [`ApiError`] here, so the
//! mapping to status codes lives in one place.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::db::DbError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Seconds a client should wait before retrying while the database is away.
const RETRY_AFTER_SECS: u32 = 5;

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URN naming the kind of problem, e.g. `urn:peil:problem:validation`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// For validation problems: every offending field.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One bad field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's name as sent, dotted for nested fields (`settings.k`).
    pub field: String,
    /// A JSON Pointer (RFC 6901) to the field in the request body.
    pub pointer: String,
    /// What is wrong with it, in words.
    pub detail: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        let field = field.into();
        let pointer = format!(
            "/{}",
            field
                .split('.')
                .map(|s| s.replace('~', "~0").replace('/', "~1"))
                .collect::<Vec<_>>()
                .join("/")
        );
        Self {
            field,
            pointer,
            detail: detail.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("request body larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("authentication required: {0}")]
    Unauthenticated(&'static str),
    #[error("the email address or password is wrong")]
    InvalidCredentials,
    #[error("a new password must be set first")]
    PasswordChangeRequired,
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("this link has already been used to answer")]
    AlreadyAnswered,
    #[error("the wave has closed")]
    WaveClosed,
    #[error("too many attempts; retry after {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("the database is unavailable")]
    Unavailable,
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ApiError {
    pub fn field(field: &str, detail: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, detail)])
    }

    fn slug(&self) -> &'static str {
        match self {
            Self::Validation(_) => "validation",
            Self::Malformed(_) => "malformed-request",
            Self::UnsupportedMediaType(_) => "unsupported-media-type",
            Self::PayloadTooLarge { .. } => "payload-too-large",
            Self::Unauthenticated(_) => "unauthenticated",
            Self::InvalidCredentials => "invalid-credentials",
            Self::PasswordChangeRequired => "password-change-required",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound => "not-found",
            Self::Conflict(_) => "conflict",
            Self::AlreadyAnswered => "already-answered",
            Self::WaveClosed => "wave-closed",
            Self::TooManyRequests { .. } => "too-many-requests",
            Self::Unavailable => "unavailable",
            Self::Unexpected(_) => "internal",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::Validation(_) => "The request has invalid fields",
            Self::Malformed(_) => "The request could not be read",
            Self::UnsupportedMediaType(_) => "Unsupported media type",
            Self::PayloadTooLarge { .. } => "The request body is too large",
            Self::Unauthenticated(_) => "Authentication required",
            Self::InvalidCredentials => "Wrong email address or password",
            Self::PasswordChangeRequired => "A new password must be set first",
            Self::Forbidden(_) => "Not allowed",
            Self::NotFound => "Not found",
            Self::Conflict(_) => "Conflict",
            Self::AlreadyAnswered => "Already answered",
            Self::WaveClosed => "The survey has closed",
            Self::TooManyRequests { .. } => "Too many attempts",
            Self::Unavailable => "Service temporarily unavailable",
            Self::Unexpected(_) => "Internal error",
        }
    }

    fn detail(&self) -> Option<String> {
        match self {
            Self::Validation(errors) => Some(format!(
                "{} field(s) are invalid: {}",
                errors.len(),
                errors
                    .iter()
                    .map(|e| e.field.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Self::Malformed(d) | Self::UnsupportedMediaType(d) | Self::Conflict(d) => {
                Some(d.clone())
            }
            Self::PayloadTooLarge { limit } => {
                Some(format!("The body may be at most {limit} bytes."))
            }
            Self::Unauthenticated(d) | Self::Forbidden(d) => Some((*d).to_owned()),
            Self::PasswordChangeRequired => Some(
                "This account signed in with a one-time password. Set a new one with POST /api/v1/auth/password."
                    .to_owned(),
            ),
            Self::Unavailable => Some("Try again in a few seconds.".to_owned()),
            Self::TooManyRequests { retry_after_secs } => Some(format!(
                "Too many requests: try again in {retry_after_secs} s."
            )),
            Self::AlreadyAnswered => Some("This link has been used to answer; it answers once.".to_owned()),
            Self::WaveClosed => Some("This survey no longer takes answers.".to_owned()),
            Self::InvalidCredentials | Self::NotFound | Self::Unexpected(_) => None,
        }
    }

    pub fn problem(&self) -> Problem {
        Problem {
            problem_type: format!("urn:peil:problem:{}", self.slug()),
            title: self.title().to_owned(),
            status: self.status_code().as_u16(),
            detail: self.detail(),
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Unavailable(reason) => {
                tracing::warn!(%reason, "database unavailable");
                Self::Unavailable
            }
            e if e.is_not_found() => Self::NotFound,
            // The check before the write lost a race; the constraint held.
            e if e.is_unique_violation() => {
                Self::Conflict("Another request created the same thing first.".into())
            }
            other => Self::Unexpected(anyhow::Error::new(other)),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        DbError::from(error).into()
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unauthenticated(_) | Self::InvalidCredentials => StatusCode::UNAUTHORIZED,
            Self::PasswordChangeRequired | Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Conflict(_) | Self::AlreadyAnswered => StatusCode::CONFLICT,
            Self::WaveClosed => StatusCode::GONE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unexpected(error) = self {
            // The caller gets an opaque 500; the log gets the whole chain.
            tracing::error!(error = format!("{error:#}"), "request failed unexpectedly");
        }
        let mut response = problem_response(&self.problem());
        let headers = response.headers_mut();
        match self {
            Self::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            Self::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unauthenticated(_) | Self::InvalidCredentials => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"peil\""),
                );
            }
            _ => {}
        }
        response
    }
}

pub fn problem_response(problem: &Problem) -> HttpResponse {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::build(status)
        .content_type(PROBLEM_JSON)
        .json(problem)
}

/// A problem for a status produced outside Peil's handlers (unknown route,
/// wrong method, a framework-level body error), so every error looks alike.
pub fn generic_problem(status: StatusCode) -> Problem {
    let slug = match status {
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "payload-too-large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported-media-type",
        s if s.is_server_error() => "internal",
        _ => "bad-request",
    };
    Problem {
        problem_type: format!("urn:peil:problem:{slug}"),
        title: status
            .canonical_reason()
            .unwrap_or("Request failed")
            .to_owned(),
        status: status.as_u16(),
        detail: None,
        errors: Vec::new(),
    }
}

// Response sets for the OpenAPI document, shared by the handlers'
// annotations; never built, only described (hence `dead_code`).

/// 401 and 403: what every endpoint that needs a caller may answer.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Refused {
    /// Missing, unknown or expired credentials.
    #[response(status = 401, content_type = "application/problem+json")]
    Unauthenticated(Problem),
    /// The caller may not do this (or must set a new password first).
    #[response(status = 403, content_type = "application/problem+json")]
    Forbidden(Problem),
}

/// 404: no such thing in the caller's organisation (or reach).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum Missing {
    /// Not found in the caller's organisation (or, for a manager, their subtree).
    #[response(status = 404, content_type = "application/problem+json")]
    NotFound(Problem),
}

/// 422: the body has invalid fields, each named.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)]
pub enum InvalidFields {
    /// Invalid fields, each named in `errors`.
    #[response(status = 422, content_type = "application/problem+json")]
    Validation(Problem),
}
