use axum::extract::{Path, State};
use maxcloud_api_model as m;
use maxcloud_catalog::{Action, ServiceType};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::pricing::PriceList;
use crate::AppState;

pub fn entry(t: &ServiceType, prices: &PriceList) -> m::CatalogEntry {
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
        price: t.footprint(&t.with_defaults(&Value::Object(Default::default()))).map(|f| prices.estimate(&f)),
    }
}

fn service_type<'a>(state: &'a AppState, kind: &str) -> ApiResult<&'a ServiceType> {
    state.orders.catalog().get(kind).ok_or_else(|| ApiError::not_found(format!("no service type {kind:?}")))
}

/// Every orderable service type, derived from the XRDs.
#[utoipa::path(get, operation_id = "catalog_list", path = "/api/v1/catalog", tag = "catalog", responses((status = 200, body = [m::CatalogEntry])))]
pub async fn list(State(state): State<AppState>) -> axum::Json<Vec<m::CatalogEntry>> {
    axum::Json(state.orders.catalog().types().map(|t| entry(t, &state.config.price_list)).collect())
}

/// One service type by kind or plural.
#[utoipa::path(get, operation_id = "catalog_get", path = "/api/v1/catalog/{kind}", tag = "catalog", params(("kind" = String, Path)),
    responses((status = 200, body = m::CatalogEntry), (status = 404, body = m::ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(kind): Path<String>) -> ApiResult<axum::Json<m::CatalogEntry>> {
    let t = service_type(&state, &kind)?;
    Ok(axum::Json(entry(t, &state.config.price_list)))
}

/// What a resource with these parameters would cost per month at list prices, before ordering it. The
/// parameters are validated as an order's would be (422 names every invalid field); nothing is stored.
#[utoipa::path(post, operation_id = "catalog_estimate", path = "/api/v1/catalog/{kind}/estimate", tag = "catalog",
    params(("kind" = String, Path)), request_body = m::EstimateRequest,
    responses((status = 200, body = m::PriceEstimate), (status = 404, body = m::ErrorBody,
        description = "no such type, or the type has no price"), (status = 422, body = m::ErrorBody)))]
pub async fn estimate(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Json(req): Json<m::EstimateRequest>,
) -> ApiResult<axum::Json<m::PriceEstimate>> {
    let t = service_type(&state, &kind)?;
    let params = super::parameters_object(req.parameters)?;
    let spec = t.validate(&params).map_err(|errors| {
        ApiError::from_order(maxcloud_orders::OrderError::Invalid(errors), "parameters.", &|_| None)
    })?;
    let footprint = t.footprint(&spec).ok_or_else(|| {
        ApiError::not_found(format!("{} has no price: its XRD does not say what it requests", t.kind))
    })?;
    Ok(axum::Json(state.config.price_list.estimate(&footprint)))
}
