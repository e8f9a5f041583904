//! Webhook deliveries from the Git hosting provider. No API key: a delivery is authenticated by its HMAC
//! signature (the shared webhook secret). A delivery only tells the order service which pull request to look at;
//! what happened is read from the provider's API.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_forge::ForgeKind;
use maxcloud_orders::{WebhookOutcome, WebhookRefused};

use crate::audit::AuditTarget;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

async fn deliver(
    state: &AppState,
    kind: ForgeKind,
    headers: &HeaderMap,
    body: &[u8],
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::WebhookResult>)> {
    let outcome = state.orders.webhook(kind, headers, body).await.map_err(|e| match e {
        WebhookRefused::NotConfigured(m) => ApiError::not_found(m),
        WebhookRefused::Signature(e) => ApiError::unauthorized(format!("webhook signature: {e}")),
        WebhookRefused::Malformed(e) => ApiError::bad_request(format!("webhook delivery: {e}")),
        WebhookRefused::Internal(m) => ApiError::internal(m),
    })?;
    let (status, result, order, reason) = match outcome {
        WebhookOutcome::Handled { order_id } => (StatusCode::OK, "handled", Some(order_id), None),
        WebhookOutcome::Duplicate => (StatusCode::OK, "duplicate", None, Some("delivery handled before".to_string())),
        WebhookOutcome::Ignored(reason) => (StatusCode::ACCEPTED, "ignored", None, Some(reason)),
    };
    let target = order.as_ref().map_or_else(|| format!("webhook/{kind}"), |o| format!("webhook/{kind} order/{o}"));
    Ok((status, Extension(AuditTarget(target)), axum::Json(m::WebhookResult { result: result.into(), order, reason })))
}

/// A delivery from GitHub (`X-Hub-Signature-256`, `X-GitHub-Event`, `X-GitHub-Delivery`).
#[utoipa::path(post, operation_id = "webhooks_github", path = "/api/v1/webhooks/github", tag = "webhooks",
    responses((status = 200, body = m::WebhookResult), (status = 202, body = m::WebhookResult),
        (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn github(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::WebhookResult>)> {
    deliver(&state, ForgeKind::GitHub, &headers, &body).await
}

/// A delivery from Gitea or Forgejo (`X-Gitea-Signature`, `X-Gitea-Event`, `X-Gitea-Delivery`).
#[utoipa::path(post, operation_id = "webhooks_gitea", path = "/api/v1/webhooks/gitea", tag = "webhooks",
    responses((status = 200, body = m::WebhookResult), (status = 202, body = m::WebhookResult),
        (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn gitea(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::WebhookResult>)> {
    deliver(&state, ForgeKind::Gitea, &headers, &body).await
}
