//! Tenant secrets (`/api/v1/secrets`): values are encrypted for the tenant's namespace before anything is stored
//! (see `maxcloud_orders::place_secret`); reads return key names only.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::FieldError;
use maxcloud_orders::{OrderError, PlaceSecret, SECRET_KIND};
use maxcloud_secrets::SecretData;
use maxcloud_store::ResourceRow;
use serde_json::Value;

use super::orders::{parse_name, requester};
use super::services::ORDER_HEADER;
use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

/// Names of the platform's Secrets in tenant namespaces (Flux's Git token, Receiver token, SOPS key).
const RESERVED_PREFIX: &str = "maxcloud-";

fn info(row: &ResourceRow) -> m::SecretInfo {
    let spec: Value = serde_json::from_str(&row.spec).unwrap_or(Value::Null);
    let keys = spec["keys"].as_array().map(|k| k.iter().filter_map(|k| k.as_str().map(String::from)).collect());
    m::SecretInfo {
        name: row.name.clone(),
        keys: keys.unwrap_or_default(),
        status: row.status.clone(),
        path: row.path.clone(),
        order_id: row.order_id.clone(),
        created_at: convert::ts(row.created_at),
        updated_at: convert::ts(row.updated_at),
    }
}

async fn find(state: &AppState, tenant_id: &str, name: &str) -> ApiResult<ResourceRow> {
    let name = parse_name(name, "name")?;
    state
        .store
        .resource_by_name(tenant_id, SECRET_KIND, name.as_str())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no secret {name:?}")))
}

fn enabled(state: &AppState) -> ApiResult<()> {
    if state.orders.secrets_enabled() {
        Ok(())
    } else {
        Err(ApiError::unavailable("secrets are not enabled on this server: it has no master key"))
    }
}

/// The organisation's secrets: names and keys, never values.
#[utoipa::path(get, operation_id = "secrets_list", path = "/api/v1/secrets", tag = "secrets", security(("api_key" = [])),
    responses((status = 200, body = [m::SecretInfo]), (status = 401, body = m::ErrorBody)))]
pub async fn list(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::SecretInfo>>> {
    let rows = state.store.resources(&p.tenant.id, Some(SECRET_KIND)).await?;
    Ok(axum::Json(rows.iter().map(info).collect()))
}

/// One secret's keys.
#[utoipa::path(get, operation_id = "secrets_get", path = "/api/v1/secrets/{name}", tag = "secrets", security(("api_key" = [])),
    params(("name" = String, Path)), responses((status = 200, body = m::SecretInfo), (status = 404, body = m::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<m::SecretInfo>> {
    Ok(axum::Json(info(&find(&state, &p.tenant.id, &name).await?)))
}

/// Create or replace a secret: it holds exactly the given keys afterwards. The values are encrypted to the
/// organisation's key (SOPS, age) and committed as `secrets/<name>.yaml`; Flux decrypts them into a Secret in the
/// organisation's namespace, which Apps read with `secret_env`.
#[utoipa::path(put, operation_id = "secrets_set", path = "/api/v1/secrets/{name}", tag = "secrets", security(("api_key" = [])),
    params(("name" = String, Path)), request_body = m::SetSecretRequest,
    responses((status = 201, body = m::SecretInfo, description = "created"), (status = 200, body = m::SecretInfo, description = "replaced"),
        (status = 400, body = m::ErrorBody), (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody),
        (status = 503, body = m::ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
    Json(req): Json<m::SetSecretRequest>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::SecretInfo>)> {
    let name = parse_name(&name, "name")?;
    if name.as_str().starts_with(RESERVED_PREFIX) {
        return Err(ApiError::invalid(
            "name",
            format!("name: secrets starting with {RESERVED_PREFIX:?} are reserved for the platform's own Secrets"),
        ));
    }
    let data = parse_data(req.data)?;
    enabled(&state)?;
    let placed = state
        .orders
        .place_secret(PlaceSecret {
            tenant: p.tenant.clone(),
            name: name.clone(),
            data: Some(data),
            requester: requester(&p),
        })
        .await
        .map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    let row = find(&state, &p.tenant.id, name.as_str()).await?;
    let status = if placed.order.action == "create" { StatusCode::CREATED } else { StatusCode::OK };
    // The audit entry names the keys, never a value.
    let target = format!("Secret/{name} keys={} order/{}", info(&row).keys.join(","), placed.order.id);
    Ok((status, Extension(AuditTarget(target)), axum::Json(info(&row))))
}

/// Delete a secret: its file is removed from the repository and Flux prunes the Secret.
#[utoipa::path(delete, operation_id = "secrets_delete", path = "/api/v1/secrets/{name}", tag = "secrets", security(("api_key" = [])),
    params(("name" = String, Path)), responses((status = 204), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, [(&'static str, String); 1], Extension<AuditTarget>)> {
    let row = find(&state, &p.tenant.id, &name).await?;
    let name = parse_name(&row.name, "name")?;
    let placed = state
        .orders
        .place_secret(PlaceSecret {
            tenant: p.tenant.clone(),
            name: name.clone(),
            data: None,
            requester: requester(&p),
        })
        .await
        .map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    let audit = Extension(AuditTarget(format!("Secret/{name} order/{}", placed.order.id)));
    Ok((StatusCode::NO_CONTENT, [(ORDER_HEADER, placed.order.id.clone())], audit))
}

/// Every bad key or value, each named (`data.<KEY>`).
fn parse_data(data: BTreeMap<String, String>) -> ApiResult<SecretData> {
    SecretData::parse(data).map_err(|errors| {
        let errors = errors.into_iter().map(|(field, message)| FieldError { field, message }).collect();
        ApiError::from_order(OrderError::Invalid(errors), "", &|_| None)
    })
}
