use axum::extract::{Path, State};
use maxcloud_api_model as m;
use maxcloud_catalog::{Action, ServiceType};

use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub fn entry(t: &ServiceType) -> m::CatalogEntry {
    m::CatalogEntry {
        kind: t.kind.clone(),
        plural: t.plural.clone(),
        group: t.group.clone(),
        version: t.version.clone(),
        api_version: t.api_version(),
        description: t.description.clone(),
        schema: t.json_schema().clone(),
        rules: t.rules().into_iter().map(|(path, rule, message)| m::CatalogRule { path, rule, message }).collect(),
        ui_order: t.ui_order.clone(),
        merge_policy: [Action::Create, Action::Update, Action::Delete]
            .into_iter()
            .map(|a| (a.as_str().to_string(), t.merge_policy(a).as_str().to_string()))
            .collect(),
    }
}

/// Every orderable service type, derived from the XRDs.
#[utoipa::path(get, operation_id = "catalog_list", path = "/api/v1/catalog", tag = "catalog", responses((status = 200, body = [m::CatalogEntry])))]
pub async fn list(State(state): State<AppState>) -> axum::Json<Vec<m::CatalogEntry>> {
    axum::Json(state.orders.catalog().types().map(entry).collect())
}

/// One service type by kind or plural.
#[utoipa::path(get, operation_id = "catalog_get", path = "/api/v1/catalog/{kind}", tag = "catalog", params(("kind" = String, Path)),
    responses((status = 200, body = m::CatalogEntry), (status = 404, body = m::ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(kind): Path<String>) -> ApiResult<axum::Json<m::CatalogEntry>> {
    let t =
        state.orders.catalog().get(&kind).ok_or_else(|| ApiError::not_found(format!("no service type {kind:?}")))?;
    Ok(axum::Json(entry(t)))
}
