use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::{Action, ResourceName};
use maxcloud_orders::{PlaceOrder, Placed};
use maxcloud_store::{Principal, Tenant};

use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

/// Read the optional `Idempotency-Key` header: 1 to 255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let bad =
        || ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters").field("Idempotency-Key");
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}

pub fn parse_name(raw: &str, field: &str) -> ApiResult<ResourceName> {
    ResourceName::parse(raw).map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
}

/// Full wire view of an order (with its PR and history).
pub async fn view(state: &AppState, tenant: &Tenant, order: &maxcloud_store::OrderRow) -> ApiResult<m::Order> {
    let pr = state.store.pull_request_for(&order.id).await?;
    let history = state.store.order_events(&order.id).await?;
    Ok(convert::order(tenant, order, pr.as_ref(), &history))
}

pub fn requester(p: &Principal) -> String {
    crate::auth::actor(p)
}

/// Place an order: validated against the catalog and stored; a pull request follows.
#[utoipa::path(post, operation_id = "orders_create", path = "/api/v1/orders", tag = "orders", security(("api_key" = [])),
    request_body = m::CreateOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "replays return the original order")),
    responses((status = 201, body = m::Order), (status = 200, body = m::Order, description = "idempotent replay"),
        (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody),
        (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Json(req): Json<m::CreateOrderRequest>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::Order>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let action: Action = match req.action.as_deref() {
        None => Action::Create,
        Some(a) => a
            .parse()
            .map_err(|_| ApiError::invalid("action", format!("action {a:?} is not one of: create, update, delete")))?,
    };
    let name = parse_name(&req.name, "name")?;
    let mut parameters = super::parameters_object(req.parameters)?;
    if action != Action::Delete && state.orders.catalog().get(&req.kind).is_some_and(|ty| ty.kind == "App") {
        // Custom domains reach Git only once this organisation proved it owns them (a TXT record, see domains.rs).
        super::domains::refuse_unverified(&state, &p.tenant.id, name.as_str(), &parameters, "parameters.").await?;
        if action == Action::Update {
            let key = idempotency_key.as_deref();
            super::revisions::name_changed_revision(&state, &p.tenant.id, name.as_str(), &mut parameters, key).await?;
        }
    }
    let target = format!("{}/{}", req.kind, name);
    let placed = state
        .orders
        .place(PlaceOrder {
            tenant: p.tenant.clone(),
            action,
            kind: req.kind,
            name,
            parameters,
            requester: requester(&p),
            idempotency_key,
        })
        .await
        .map_err(|e| ApiError::from_order(e, "parameters.", &|_| None))?;
    let Placed { order, created } = placed;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    let view = view(&state, &p.tenant, &order).await?;
    Ok((status, Extension(AuditTarget(format!("{target} order/{}", order.id))), axum::Json(view)))
}

/// The organisation's orders, newest first (`?limit=`, default 100, at most 1000). `?review=pending`: only the
/// orders waiting for a review, oldest first.
#[utoipa::path(get, operation_id = "orders_list", path = "/api/v1/orders", tag = "orders", security(("api_key" = [])),
    params(("limit" = Option<i64>, Query), ("review" = Option<String>, Query, description = "`pending`")),
    responses((status = 200, body = [m::Order]), (status = 400, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::Json<Vec<m::Order>>> {
    let limit = super::limit_param(&q)?;
    if let Some(review) = q.get("review") {
        if review != "pending" {
            return Err(ApiError::bad_request(format!("review: expected `pending`, got {review:?}")).field("review"));
        }
        let mut out = Vec::new();
        for order in state.store.pending_reviews(&p.tenant.id).await?.iter().take(limit as usize) {
            out.push(view(&state, &p.tenant, order).await?);
        }
        return Ok(axum::Json(out));
    }
    let rows = state.store.orders_with_details(&p.tenant.id, limit).await?;
    Ok(axum::Json(rows.iter().map(|(o, pr, history)| convert::order(&p.tenant, o, pr.as_ref(), history)).collect()))
}

/// One order with its pull request and state history.
#[utoipa::path(get, operation_id = "orders_get", path = "/api/v1/orders/{id}", tag = "orders", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = m::Order), (status = 404, body = m::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<m::Order>> {
    let order =
        state.store.order(&p.tenant.id, &id).await?.ok_or_else(|| ApiError::not_found(format!("no order {id:?}")))?;
    Ok(axum::Json(view(&state, &p.tenant, &order).await?))
}

/// Approve a review-required order (admins only); its pull request is merged next.
#[utoipa::path(post, operation_id = "orders_approve", path = "/api/v1/orders/{id}/approve", tag = "orders", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 200, body = m::Order), (status = 403, body = m::ErrorBody),
        (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Order>)> {
    auth.require_admin()?;
    let p = &auth.0;
    let order = state
        .orders
        .approve(&p.tenant, &id, &requester(p))
        .await
        .map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    let view = view(&state, &p.tenant, &order).await?;
    Ok((Extension(AuditTarget(format!("order/{id}"))), axum::Json(view)))
}

/// Reject a review-required order (admins only): its pull request is closed, nothing is merged.
#[utoipa::path(post, operation_id = "orders_reject", path = "/api/v1/orders/{id}/reject", tag = "orders", security(("api_key" = [])),
    params(("id" = String, Path)), request_body = m::RejectOrderRequest,
    responses((status = 200, body = m::Order), (status = 403, body = m::ErrorBody),
        (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Order>)> {
    auth.require_admin()?;
    let req: m::RejectOrderRequest = crate::json::parse_optional(&body)?;
    let reason = req.reason.map(|r| r.trim().to_string()).filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 1000 || r.chars().any(|c| c.is_control() && c != '\n')) {
        return Err(ApiError::invalid("reason", "reason must be at most 1000 printable characters"));
    }
    let p = &auth.0;
    let reason = reason.unwrap_or_else(|| format!("rejected by {}", requester(p)));
    let order =
        state.orders.reject(&p.tenant, &id, &reason).await.map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    let view = view(&state, &p.tenant, &order).await?;
    Ok((Extension(AuditTarget(format!("order/{id}"))), axum::Json(view)))
}
