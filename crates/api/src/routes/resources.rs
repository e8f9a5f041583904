use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use maxcloud_api_model as m;

use crate::auth::Auth;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

/// The organisation's resources of the catalog's kinds (all, or `?kind=App`); secrets are listed by `/secrets`.
#[utoipa::path(get, operation_id = "resources_list", path = "/api/v1/resources", tag = "resources", security(("api_key" = [])),
    params(("kind" = Option<String>, Query)), responses((status = 200, body = [m::Resource]), (status = 401, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HashMap<String, String>>,
) -> ApiResult<axum::Json<Vec<m::Resource>>> {
    let kind = q.get("kind").map(|k| state.orders.catalog().get(k).map(|t| t.kind.clone()).unwrap_or(k.clone()));
    let rows = state.store.resources(&p.tenant.id, kind.as_deref()).await?;
    let ordered = rows.iter().filter(|r| r.kind != maxcloud_orders::SECRET_KIND);
    Ok(axum::Json(ordered.map(|r| convert::resource(&p.tenant, r)).collect()))
}

/// What a resource is made of in the cluster: the XR and the objects its composition made (nested XRs with
/// theirs), each with its Ready/Synced conditions and the message of a condition that is not True.
#[utoipa::path(get, operation_id = "resources_tree", path = "/api/v1/resources/{kind}/{name}/tree", tag = "resources", security(("api_key" = [])),
    params(("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, body = m::ResourceNode), (status = 401, body = m::ErrorBody),
              (status = 404, body = m::ErrorBody, description = "no such resource of the organisation"),
              (status = 503, body = m::ErrorBody, description = "no cluster is connected")))]
pub async fn tree(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path((kind, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<m::ResourceNode>> {
    let ty = state.orders.catalog().get(&kind).ok_or_else(|| {
        ApiError::not_found(format!("no service type {kind:?}: see GET /api/v1/catalog")).field("kind")
    })?;
    if state.store.resource_by_name(&p.tenant.id, &ty.kind, &name).await?.is_none() {
        return Err(ApiError::not_found(format!("no {} named {name:?}", ty.kind)).field("name"));
    }
    let Some(trees) = &state.trees else {
        return Err(ApiError::unavailable("no cluster is connected: resource trees come from the status aggregator"));
    };
    let api_version = ty.api_version();
    let namespace = format!("mc-{}", p.tenant.slug);
    let node = trees.tree(&api_version, &ty.kind, &namespace, &name).unwrap_or_else(|| m::ResourceNode {
        api_version,
        kind: ty.kind.clone(),
        name: name.clone(),
        namespace,
        observed: false,
        ready: None,
        synced: None,
        message: None,
        children: Vec::new(),
    });
    Ok(axum::Json(node))
}

/// Resources of the organisation's namespace that max-cloud did not order: XRs of a catalog kind created by
/// other means (kubectl, Terraform), with what they composed. Shown so nothing runs unnoticed; not managed.
#[utoipa::path(get, operation_id = "resources_unmanaged", path = "/api/v1/resources/unmanaged", tag = "resources", security(("api_key" = [])),
    responses((status = 200, body = [m::ResourceNode]), (status = 401, body = m::ErrorBody),
              (status = 503, body = m::ErrorBody, description = "no cluster is connected")))]
pub async fn unmanaged(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::ResourceNode>>> {
    let Some(trees) = &state.trees else {
        return Err(ApiError::unavailable(
            "no cluster is connected: unmanaged resources come from the status aggregator",
        ));
    };
    let managed: std::collections::HashSet<(String, String)> =
        state.store.resources(&p.tenant.id, None).await?.into_iter().map(|r| (r.kind, r.name)).collect();
    let catalog = state.orders.catalog();
    let nodes = trees
        .top_level(&format!("mc-{}", p.tenant.slug))
        .into_iter()
        .filter(|n| catalog.get(&n.kind).is_some_and(|t| n.api_version == t.api_version()))
        .filter(|n| !managed.contains(&(n.kind.clone(), n.name.clone())))
        .collect();
    Ok(axum::Json(nodes))
}
