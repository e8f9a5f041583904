//! The typed facade of the seed API: a service is an `App` resource, created and deleted by orders.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::{Action, ImageRef};
use maxcloud_orders::PlaceOrder;
use serde_json::{json, Map, Value};

use super::orders::{idempotency_key, parse_name, requester};
use super::revisions::{name_deploy, Deploy};
use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

const KIND: &str = "App";

/// Response header naming the order a request placed (the removal order of `DELETE /services/{id}`).
pub(crate) const ORDER_HEADER: &str = "x-maxcloud-order";

/// The App parameters a service request stands for.
fn parameters(req: &m::CreateServiceRequest) -> Value {
    Value::Object(partial_parameters(&as_patch(req)))
}

fn as_patch(req: &m::CreateServiceRequest) -> m::PatchServiceRequest {
    m::PatchServiceRequest {
        name: Some(req.name.clone()),
        image: Some(req.image.clone()),
        port: req.port,
        command: req.command.clone(),
        args: req.args.clone(),
        env_vars: req.env_vars.clone(),
        secret_env: req.secret_env.clone(),
        min_scale: req.min_scale,
        max_scale: req.max_scale,
        concurrency: req.concurrency,
        cpu: req.cpu.clone(),
        memory: req.memory.clone(),
        visibility: req.visibility.clone(),
        revision: req.revision.clone(),
        no_traffic: req.no_traffic,
        tag: req.tag.clone(),
    }
}

/// The App parameters named by the given fields of a service request, and no others.
fn partial_parameters(req: &m::PatchServiceRequest) -> Map<String, Value> {
    let mut p = Map::new();
    if let Some(image) = &req.image {
        p.insert("image".into(), json!(image));
    }
    if let Some(port) = req.port {
        p.insert("port".into(), json!(port));
    }
    if let Some(c) = &req.command {
        p.insert("command".into(), json!(c));
    }
    if let Some(a) = &req.args {
        p.insert("args".into(), json!(a));
    }
    if let Some(env) = &req.env_vars {
        let list: Vec<Value> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        p.insert("env".into(), Value::Array(list));
    }
    if let Some(env) = &req.secret_env {
        let list: Vec<Value> =
            env.iter().map(|(k, r)| json!({"name": k, "secretName": r.secret, "key": r.key})).collect();
        p.insert("secretEnv".into(), Value::Array(list));
    }
    let mut scaling = Map::new();
    if let Some(n) = req.min_scale {
        scaling.insert("minScale".into(), json!(n));
    }
    if let Some(n) = req.max_scale {
        scaling.insert("maxScale".into(), json!(n));
    }
    if let Some(n) = req.concurrency {
        scaling.insert("containerConcurrency".into(), json!(n));
    }
    if !scaling.is_empty() {
        p.insert("scaling".into(), Value::Object(scaling));
    }
    let mut resources = Map::new();
    if let Some(c) = &req.cpu {
        resources.insert("cpu".into(), json!(c));
    }
    if let Some(mem) = &req.memory {
        resources.insert("memory".into(), json!(mem));
    }
    if !resources.is_empty() {
        p.insert("resources".into(), Value::Object(resources));
    }
    if let Some(v) = &req.visibility {
        p.insert("visibility".into(), json!(v));
    }
    p
}

/// JSON merge: objects merge key by key, anything else is replaced.
fn merge(base: &mut Value, patch: Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p,
    }
}

/// App parameter path -> the service request's field name.
fn field_name(path: &str) -> Option<String> {
    let head = path.split(['.', '[']).next().unwrap_or(path);
    Some(
        match path {
            "scaling.minScale" => "min_scale",
            "scaling.maxScale" => "max_scale",
            "scaling.containerConcurrency" => "concurrency",
            "resources.cpu" => "cpu",
            "resources.memory" => "memory",
            _ if head == "env" => "env_vars",
            _ if head == "secretEnv" => "secret_env",
            _ if head == "scaling" => "min_scale",
            _ => return Some(path.to_string()),
        }
        .to_string(),
    )
}

/// Check a service request and turn it into `App` parameters.
fn checked_parameters(req: &m::CreateServiceRequest) -> ApiResult<Value> {
    check_fields(&as_patch(req))?;
    Ok(parameters(req))
}

/// Checks the image reference and variable names up front, for messages that name the field.
fn check_fields(req: &m::PatchServiceRequest) -> ApiResult<()> {
    if let Some(image) = &req.image {
        ImageRef::parse(image).map_err(|e| ApiError::invalid("image", format!("image: {e}")))?;
    }
    if let Some(env) = &req.env_vars {
        if let Some(bad) = env.keys().find(|k| !valid_env_name(k)) {
            return Err(ApiError::invalid(
                "env_vars",
                format!(
                    "env_vars: {bad:?} is not a valid variable name (letters, digits, '_', not starting with a digit)"
                ),
            ));
        }
    }
    if let Some(env) = &req.secret_env {
        for (var, r) in env {
            if !valid_env_name(var) {
                return Err(ApiError::invalid(
                    "secret_env",
                    format!("secret_env: {var:?} is not a valid variable name (letters, digits, '_', not starting with a digit)"),
                ));
            }
            if let Err(e) = maxcloud_catalog::ResourceName::parse(&r.secret) {
                return Err(ApiError::invalid("secret_env", format!("secret_env.{var}.secret: {e}")));
            }
            if maxcloud_secrets::SecretData::parse([(r.key.clone(), String::new())].into()).is_err() {
                return Err(ApiError::invalid(
                    "secret_env",
                    format!("secret_env.{var}.key: {:?} is not a secret key (letters, digits, '-', '_', '.')", r.key),
                ));
            }
        }
    }
    Ok(())
}

/// Deploy a container image as a service (an `App` create order).
#[utoipa::path(post, operation_id = "services_create", path = "/api/v1/services", tag = "services", security(("api_key" = [])),
    request_body = m::CreateServiceRequest,
    responses((status = 201, body = m::Service), (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody),
        (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(req): Json<m::CreateServiceRequest>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::Service>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let name = parse_name(&req.name, "name")?;
    let mut parameters = checked_parameters(&req)?;
    let patch = as_patch(&req);
    // An existing name is a conflict before --no-traffic's refusal (`maxcloud deploy` redeploys on it).
    if req.no_traffic && state.store.resource_by_name(&p.tenant.id, KIND, name.as_str()).await?.is_some() {
        return Err(ApiError::conflict(format!("{KIND} {:?} already exists", name.as_str())).field("name"));
    }
    let how = Deploy::of(&patch, idempotency_key.as_deref());
    name_deploy(&state, name.as_str(), None, &mut parameters, how).await?;
    let placed = place(&state, &p, Action::Create, name.clone(), parameters, idempotency_key).await?;
    let row = state
        .store
        .resource(&p.tenant.id, &placed.order.resource_id)
        .await?
        .ok_or_else(|| ApiError::internal("resource of a stored order is missing"))?;
    let status = if placed.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Extension(AuditTarget(format!("App/{name} order/{}", placed.order.id))),
        axum::Json(convert::service(&row)),
    ))
}

/// Place an `App` order for the caller, errors named after the service request's fields.
pub(crate) async fn place(
    state: &AppState,
    p: &maxcloud_store::Principal,
    action: Action,
    name: maxcloud_catalog::ResourceName,
    parameters: Value,
    idempotency_key: Option<String>,
) -> ApiResult<maxcloud_orders::Placed> {
    let order = PlaceOrder {
        tenant: p.tenant.clone(),
        action,
        kind: KIND.into(),
        name,
        parameters,
        requester: requester(p),
        idempotency_key,
    };
    state.orders.place(order).await.map_err(|e| ApiError::from_order(e, "", &field_name))
}

fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Redeploy a service: an `App` update order replacing its whole spec (fields left out return to
/// their defaults). The name cannot change.
#[utoipa::path(put, operation_id = "services_update", path = "/api/v1/services/{id}", tag = "services", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = m::CreateServiceRequest,
    responses((status = 200, body = m::Service), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody),
        (status = 422, body = m::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<m::CreateServiceRequest>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Service>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    if req.name != row.name {
        return Err(ApiError::invalid("name", format!("name: a service cannot be renamed (it is {:?})", row.name)));
    }
    let name = parse_name(&req.name, "name")?;
    let mut parameters = checked_parameters(&req)?;
    let patch = as_patch(&req);
    let how = Deploy::of(&patch, idempotency_key.as_deref());
    name_deploy(&state, name.as_str(), Some(&row), &mut parameters, how).await?;
    let placed = place(&state, &p, Action::Update, name.clone(), parameters, idempotency_key).await?;
    let row = find(&state, &p.tenant.id, &id).await?;
    Ok((Extension(AuditTarget(format!("App/{name} order/{}", placed.order.id))), axum::Json(convert::service(&row))))
}

/// Change some fields of a service: an `App` update order with the current spec, the given fields
/// merged in. `maxcloud deploy` to an existing name uses this.
#[utoipa::path(patch, operation_id = "services_patch", path = "/api/v1/services/{id}", tag = "services", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = m::PatchServiceRequest,
    responses((status = 200, body = m::Service), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody),
        (status = 422, body = m::ErrorBody)))]
pub async fn patch(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<m::PatchServiceRequest>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Service>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    if req.name.as_ref().is_some_and(|n| *n != row.name) {
        return Err(ApiError::invalid("name", format!("name: a service cannot be renamed (it is {:?})", row.name)));
    }
    check_fields(&req)?;
    let mut spec: Value = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
    merge(&mut spec, Value::Object(partial_parameters(&req)));
    let name = parse_name(&row.name, "name")?;
    name_deploy(&state, name.as_str(), Some(&row), &mut spec, Deploy::of(&req, idempotency_key.as_deref())).await?;
    let placed = place(&state, &p, Action::Update, name.clone(), spec, idempotency_key).await?;
    let row = find(&state, &p.tenant.id, &id).await?;
    Ok((Extension(AuditTarget(format!("App/{name} order/{}", placed.order.id))), axum::Json(convert::service(&row))))
}

/// The organisation's services.
#[utoipa::path(get, operation_id = "services_list", path = "/api/v1/services", tag = "services", security(("api_key" = [])),
    responses((status = 200, body = [m::Service]), (status = 401, body = m::ErrorBody)))]
pub async fn list(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::Service>>> {
    let rows = state.store.resources(&p.tenant.id, Some(KIND)).await?;
    Ok(axum::Json(rows.iter().map(convert::service).collect()))
}

pub(crate) async fn find(state: &AppState, tenant_id: &str, id: &str) -> ApiResult<maxcloud_store::ResourceRow> {
    match state.store.resource(tenant_id, id).await? {
        Some(r) if r.kind == KIND => Ok(r),
        _ => Err(ApiError::not_found(format!("no service {id:?}"))),
    }
}

/// One service.
#[utoipa::path(get, operation_id = "services_get", path = "/api/v1/services/{id}", tag = "services", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = m::Service), (status = 404, body = m::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<m::Service>> {
    Ok(axum::Json(convert::service(&find(&state, &p.tenant.id, &id).await?)))
}

/// Delete a service: a pull request removes its file; the service shows `deleting` until it is merged.
#[utoipa::path(delete, operation_id = "services_delete", path = "/api/v1/services/{id}", tag = "services", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, [(&'static str, String); 1], Extension<AuditTarget>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let name = parse_name(&row.name, "name")?;
    let placed = place(&state, &p, Action::Delete, name, Value::Null, idempotency_key).await?;
    let order_header = [(ORDER_HEADER, placed.order.id.clone())];
    let audit = Extension(AuditTarget(format!("App/{} order/{}", row.name, placed.order.id)));
    Ok((StatusCode::NO_CONTENT, order_header, audit))
}
