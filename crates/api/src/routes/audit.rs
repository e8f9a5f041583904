//! `GET /api/v1/audit`: the organisation's audit log (BSI C5: who, tenant, what, when, from where, result),
//! for its admins. Append-only: nothing in the API changes or removes an entry.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use maxcloud_api_model as m;
use maxcloud_store::AuditQuery;

use crate::auth::Auth;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// Query parameters this endpoint knows; anything else is refused by name.
const PARAMS: [&str; 5] = ["since", "until", "action", "limit", "format"];

/// The organisation's audit entries, newest first. `since`/`until`: RFC 3339 times (`since` inclusive,
/// `until` exclusive); `action`: one action, e.g. `orders.create`; `limit`: 1–1000 (default 100);
/// `format=jsonl`: JSON lines (`application/x-ndjson`), one entry per line, for export. Admins only.
#[utoipa::path(get, operation_id = "audit_list", path = "/api/v1/audit", tag = "audit", security(("api_key" = [])),
    params(("since" = Option<String>, Query), ("until" = Option<String>, Query), ("action" = Option<String>, Query),
        ("limit" = Option<i64>, Query), ("format" = Option<String>, Query, description = "`json` (default) or `jsonl`")),
    responses((status = 200, body = [m::AuditRecord]), (status = 400, body = m::ErrorBody),
        (status = 401, body = m::ErrorBody), (status = 403, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    auth.require_admin()?;
    if let Some(unknown) = q.keys().find(|k| !PARAMS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter {unknown:?}; known: {}",
            PARAMS.join(", ")
        ))
        .field(unknown.clone()));
    }
    let time = |name: &str| -> Result<Option<i64>, ApiError> {
        q.get(name)
            .map(|text| super::time_param(text, name).map(|t| (t.unix_timestamp_nanos() / 1000) as i64))
            .transpose()
    };
    let (since_us, until_us) = (time("since")?, time("until")?);
    if let (Some(s), Some(u)) = (since_us, until_us) {
        if s >= u {
            return Err(ApiError::bad_request("until must be later than since").field("until"));
        }
    }
    let action = match q.get("action") {
        None => None,
        Some(a)
            if !a.is_empty() && a.len() <= 100 && a.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)) =>
        {
            Some(a.clone())
        }
        Some(a) => {
            return Err(ApiError::bad_request(format!("action must look like orders.create, got {a:?}")).field("action"))
        }
    };
    let limit = super::limit_param(&q)?;
    let jsonl = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("jsonl") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!("format must be json or jsonl, got {other:?}")).field("format"))
        }
    };
    let rows = state.store.audit_query(&auth.0.tenant.id, &AuditQuery { since_us, until_us, action, limit }).await?;
    let records: Vec<m::AuditRecord> = rows.iter().map(convert::audit).collect();
    if !jsonl {
        return Ok(axum::Json(records).into_response());
    }
    let mut body = String::new();
    for record in &records {
        body.push_str(&serde_json::to_string(record).map_err(ApiError::internal)?);
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}
