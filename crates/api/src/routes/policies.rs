//! Merge policies of the caller's organisation: per kind and action, auto-merge or review required (with
//! optional required reviewers), over the catalog's defaults.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::Action;
use maxcloud_orders::SetPolicy;
use maxcloud_store::MergePolicyRow;

use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert::ts;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

fn view(row: &MergePolicyRow, custom: bool) -> m::MergePolicy {
    m::MergePolicy {
        kind: row.kind.clone(),
        action: row.action.clone(),
        policy: row.policy.clone(),
        reviewers: row.reviewers.clone(),
        required_approvals: row.required_approvals,
        custom,
        updated_by: custom.then(|| row.updated_by.clone()),
        updated_at: custom.then(|| ts(row.updated_at)),
    }
}

fn parse_action(action: &str) -> ApiResult<Action> {
    action
        .parse()
        .map_err(|_| ApiError::invalid("action", format!("action {action:?} is not one of: create, update, delete")))
}

/// Every kind and action with the policy that applies.
#[utoipa::path(get, operation_id = "policies_list", path = "/api/v1/policies", tag = "policies", security(("api_key" = [])),
    responses((status = 200, body = [m::MergePolicy]), (status = 401, body = m::ErrorBody)))]
pub async fn list(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::MergePolicy>>> {
    let rows = state.orders.policies(&p.tenant).await.map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    Ok(axum::Json(rows.iter().map(|(row, custom)| view(row, *custom)).collect()))
}

/// Set the organisation's policy for one kind and action (admins only). Orders placed afterwards follow it.
#[utoipa::path(put, operation_id = "policies_set", path = "/api/v1/policies/{kind}/{action}", tag = "policies", security(("api_key" = [])),
    params(("kind" = String, Path), ("action" = String, Path)), request_body = m::SetMergePolicyRequest,
    responses((status = 200, body = m::MergePolicy), (status = 400, body = m::ErrorBody),
        (status = 403, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    auth: Auth,
    Path((kind, action)): Path<(String, String)>,
    Json(req): Json<m::SetMergePolicyRequest>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::MergePolicy>)> {
    auth.require_admin()?;
    let action = parse_action(&action)?;
    let review = match req.policy.as_str() {
        "review" => true,
        "auto" => false,
        other => return Err(ApiError::invalid("policy", format!("policy {other:?} is not one of: auto, review"))),
    };
    let required_approvals = req.required_approvals.unwrap_or(1.max(req.reviewers.len() as i64));
    if (req.reviewers.len() as i64) > required_approvals {
        return Err(ApiError::invalid(
            "required_approvals",
            format!(
                "required_approvals ({required_approvals}) is less than the number of reviewers ({})",
                req.reviewers.len()
            ),
        ));
    }
    let set = SetPolicy { kind, action, review, reviewers: req.reviewers, required_approvals };
    let p = &auth.0;
    let row = state.orders.set_policy(&p.tenant, set, &p.user.email).await.map_err(|e| {
        ApiError::from_order(e, "", &|f| (f == "requiredApprovals").then(|| "required_approvals".into()))
    })?;
    let target = format!("policy/{}/{}", row.kind, row.action);
    Ok((Extension(AuditTarget(target)), axum::Json(view(&row, true))))
}

/// Drop the organisation's policy for one kind and action (admins only): the catalog's default applies again.
#[utoipa::path(delete, operation_id = "policies_reset", path = "/api/v1/policies/{kind}/{action}", tag = "policies", security(("api_key" = [])),
    params(("kind" = String, Path), ("action" = String, Path)),
    responses((status = 204), (status = 403, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn reset(
    State(state): State<AppState>,
    auth: Auth,
    Path((kind, action)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>)> {
    auth.require_admin()?;
    let action = parse_action(&action)?;
    state
        .orders
        .reset_policy(&auth.0.tenant, &kind, action)
        .await
        .map_err(|e| ApiError::from_order(e, "", &|_| None))?;
    Ok((StatusCode::NO_CONTENT, Extension(AuditTarget(format!("policy/{kind}/{}", action.as_str())))))
}
