//! `GET /api/v1/quotas`: the organisation's limits (the platform's quota file) and what is in use.

use axum::extract::State;
use maxcloud_api_model as m;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The organisation's limits and current totals; orders that would raise a total beyond its limit are refused
/// with `quota_exceeded` naming the field.
#[utoipa::path(get, operation_id = "quotas_get", path = "/api/v1/quotas", tag = "usage", security(("api_key" = [])),
    responses((status = 200, body = m::Quota), (status = 401, body = m::ErrorBody)))]
pub async fn get(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<m::Quota>> {
    let (limits, used) = state.orders.quota(&p.tenant).await.map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    Ok(axum::Json(m::Quota {
        tenant: p.tenant.slug.clone(),
        limits: m::QuotaLimits {
            services: limits.services,
            databases: limits.databases,
            max_scale: limits.max_scale,
            cpu_milli: limits.cpu_milli,
            memory_bytes: limits.memory_bytes,
        },
        used: m::QuotaUsed {
            services: used.services,
            databases: used.databases,
            max_scale: used.max_scale,
            cpu_milli: used.cpu_milli,
            memory_bytes: used.memory_bytes,
        },
    }))
}
