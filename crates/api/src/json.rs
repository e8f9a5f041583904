//! A JSON body extractor with precise errors: the path of the offending field, 400 for malformed
//! documents and unknown fields, 422 for well-formed documents with wrong values, 413 for oversize bodies.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !json_type {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("request body exceeds {} bytes", crate::MAX_BODY_BYTES),
                )
            } else {
                ApiError::bad_request(format!("cannot read request body: {rejection}"))
            }
        })?;
        parse(&bytes).map(Json)
    }
}

/// Deserialise an optional body: empty (or blank) means `T::default()`.
pub(crate) fn parse_optional<T: DeserializeOwned + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse(bytes)
    }
}

/// Deserialise `bytes`, naming the failing field.
pub(crate) fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            // Name the unknown field itself (serde_path_to_error usually includes it in the path).
            let unknown = message.strip_prefix("unknown field `").and_then(|rest| rest.split('`').next()).map(|f| {
                if path == "." || path.is_empty() {
                    f.to_string()
                } else if path == f || path.ends_with(&format!(".{f}")) {
                    path.clone()
                } else {
                    format!("{path}.{f}")
                }
            });
            // A missing required field: name it (inside the object the path points at).
            let missing = message.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()).map(|f| {
                if path == "." || path.is_empty() {
                    f.to_string()
                } else {
                    format!("{path}.{f}")
                }
            });
            let field =
                unknown.clone().or(missing.clone()).or_else(|| (path != "." && !path.is_empty()).then_some(path));
            let status = match inner.classify() {
                serde_json::error::Category::Syntax | serde_json::error::Category::Eof => StatusCode::BAD_REQUEST,
                serde_json::error::Category::Io => StatusCode::BAD_REQUEST,
                serde_json::error::Category::Data if unknown.is_some() => StatusCode::BAD_REQUEST,
                serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
            };
            let code = if status == StatusCode::BAD_REQUEST { "malformed_request" } else { "invalid_request" };
            let message = match &field {
                Some(f) if unknown.is_some() => format!("unknown field {f:?}"),
                Some(f) if missing.is_some() => format!("{f}: missing (required)"),
                Some(f) => format!("{f}: {}", strip_position(&message)),
                None => format!("malformed JSON: {}", strip_position(&message)),
            };
            Err(ApiError { status, code, message, field, fields: Vec::new() })
        }
    }
}

fn strip_position(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}
