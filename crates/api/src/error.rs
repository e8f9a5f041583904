//! API errors: one JSON shape, the right status, and a note for the audit log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maxcloud_api_model::{ErrorBody, ErrorDetail};
use maxcloud_orders::OrderError;

/// An error answer: `{"error": {"code", "message", "field"?}}` with `status`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    /// Every invalid field (`invalid_parameters`), `field` being the first.
    pub fields: Vec<maxcloud_api_model::FieldProblem>,
}

/// Attached to error responses so the audit layer can record why a call was refused.
#[derive(Debug, Clone)]
pub struct ErrorNote(pub String);

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, fields: Vec::new() }
    }
    pub fn field(mut self, field: impl Into<String>) -> ApiError {
        self.field = Some(field.into());
        self
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameters", message).field(field)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %message, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal error; see the server log")
    }

    /// Map an order error; `prefix` is put before parameter paths (`parameters.`), and `rename` maps
    /// a parameter path to the caller's field name (the typed services facade).
    pub fn from_order(e: OrderError, prefix: &str, rename: &dyn Fn(&str) -> Option<String>) -> ApiError {
        match e {
            OrderError::Invalid(errors) => {
                let first = errors.first();
                let field = first.map(|f| rename(&f.field).unwrap_or_else(|| join_path(prefix, &f.field)));
                let fields: Vec<maxcloud_api_model::FieldProblem> = errors
                    .iter()
                    .map(|f| maxcloud_api_model::FieldProblem {
                        field: rename(&f.field).unwrap_or_else(|| join_path(prefix, &f.field)),
                        message: f.message.clone(),
                    })
                    .collect();
                let message =
                    fields.iter().map(|f| format!("{}: {}", f.field, f.message)).collect::<Vec<_>>().join("; ");
                ApiError {
                    field,
                    fields,
                    ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_parameters", message)
                }
            }
            OrderError::UnknownKind(_) => ApiError::invalid("kind", e.to_string()),
            OrderError::Conflict { field, message } => ApiError::conflict(message).field(field),
            OrderError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            OrderError::Quota { field, message } => {
                // `name`: the order's own name (a count), not one of its parameters.
                let field = match field.as_str() {
                    "name" => field,
                    _ => rename(&field).unwrap_or_else(|| join_path(prefix, &field)),
                };
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "quota_exceeded", message).field(field)
            }
            OrderError::InvalidState(m) => ApiError::conflict(m),
            OrderError::Internal(m) => ApiError::internal(m),
        }
    }
}

fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.trim_end_matches('.').to_string(),
        (false, false) if path.starts_with('[') => format!("{}{path}", prefix.trim_end_matches('.')),
        (false, false) => format!("{prefix}{path}"),
    }
}

impl From<maxcloud_store::StoreError> for ApiError {
    fn from(e: maxcloud_store::StoreError) -> Self {
        use maxcloud_store::StoreError;
        match e {
            StoreError::Conflict { field, message } => ApiError::conflict(message).field(field),
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::InvalidState(m) => ApiError::conflict(m),
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let note = match &self.field {
            Some(f) => format!("{} ({f}): {}", self.code, self.message),
            None => format!("{}: {}", self.code, self.message),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
                field: self.field,
                fields: self.fields,
            },
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"max-cloud\""),
            );
        }
        resp.extensions_mut().insert(ErrorNote(note));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
