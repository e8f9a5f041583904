use std::collections::HashMap;

use axum::extract::{Query, State};
use maxcloud_api_model as m;

use crate::auth::Auth;
use crate::convert;
use crate::error::ApiResult;
use crate::AppState;

/// The organisation's resources (all kinds, or `?kind=App`).
#[utoipa::path(get, path = "/api/v1/resources", tag = "resources", security(("api_key" = [])),
    params(("kind" = Option<String>, Query)), responses((status = 200, body = [m::Resource]), (status = 401, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::Json<Vec<m::Resource>>> {
    let kind = q.get("kind").map(|k| state.orders.catalog().get(k).map(|t| t.kind.clone()).unwrap_or(k.clone()));
    let rows = state.store.resources(&p.tenant.id, kind.as_deref()).await?;
    Ok(axum::Json(rows.iter().map(|r| convert::resource(&p.tenant, r)).collect()))
}
