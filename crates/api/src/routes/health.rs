use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use maxcloud_api_model::Health;

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz)).route("/metrics", get(metrics))
}

/// Prometheus metrics (text exposition format): orders by state, tenants.
pub async fn metrics(
    State(state): State<AppState>,
) -> ApiResult<([(axum::http::HeaderName, &'static str); 1], String)> {
    use std::fmt::Write;
    let counts = state.store.order_counts().await.map_err(ApiError::internal)?;
    let tenants = state.store.tenants().await.map_err(ApiError::internal)?.len();
    let mut out = String::new();
    let _ = writeln!(out, "# HELP maxcloud_orders Orders by state.\n# TYPE maxcloud_orders gauge");
    for state in ["accepted", "pr_open", "merged", "applied", "ready", "failed", "rejected", "superseded"] {
        let n = counts.iter().find(|(s, _)| s == state).map(|(_, n)| *n).unwrap_or(0);
        let _ = writeln!(out, "maxcloud_orders{{state=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP maxcloud_tenants Registered tenants.\n# TYPE maxcloud_tenants gauge\nmaxcloud_tenants {tenants}"
    );
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

/// Liveness: the process serves HTTP.
#[utoipa::path(get, operation_id = "health_healthz", path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

/// Readiness: the database answers.
#[utoipa::path(get, operation_id = "health_readyz", path = "/readyz", tag = "health", responses((status = 200, body = Health), (status = 500)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.store.ping().await.map_err(ApiError::internal)?;
    Ok(Json(Health { status: "ok".into() }))
}
