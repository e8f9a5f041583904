//! Route table of `/api/v1`. Each module holds the handlers of one resource.

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod domains;
pub mod events;
pub mod git;
pub mod health;
pub mod invites;
pub mod logs;
pub mod orders;
pub mod policies;
pub mod quotas;
pub mod registry;
pub mod resources;
pub mod revisions;
pub mod secrets;
pub mod services;
pub mod usage;
pub mod webhooks;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::{delete, get, post, put};
use axum::Router;

use crate::AppState;

/// Response header telling clients whether a cluster reports back (`connected`) or orders end at
/// `merged` (`none`); `maxcloud deploy --wait` reads it.
pub const CLUSTER_HEADER: &str = "x-maxcloud-cluster";

pub fn api_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/register", post(auth::register))
        .route("/auth/status", get(auth::status))
        .route("/auth/api-keys", post(auth::create_key).get(auth::list_keys))
        .route("/auth/api-keys/{id}", delete(auth::delete_key))
        .route("/auth/git-tokens", post(auth::create_git_token))
        .route("/auth/invites", post(invites::create_invite).get(invites::list_invites))
        .route("/auth/invites/{id}", delete(invites::revoke_invite))
        .route("/auth/accept-invite", post(invites::accept_invite))
        .route("/auth/members", get(auth::members))
        .route("/catalog", get(catalog::list))
        .route("/catalog/{kind}", get(catalog::get))
        .route("/catalog/{kind}/estimate", post(catalog::estimate))
        .route("/orders", post(orders::create).get(orders::list))
        .route("/orders/{id}", get(orders::get))
        .route("/orders/{id}/approve", post(orders::approve))
        .route("/orders/{id}/reject", post(orders::reject))
        .route("/policies", get(policies::list))
        .route("/policies/{kind}/{action}", put(policies::set).delete(policies::reset))
        .route("/webhooks/github", post(webhooks::github))
        .route("/webhooks/gitea", post(webhooks::gitea))
        .route("/resources", get(resources::list))
        .route("/resources/unmanaged", get(resources::unmanaged))
        .route("/resources/{kind}/{name}/tree", get(resources::tree))
        .route("/services", post(services::create).get(services::list))
        .route(
            "/services/{id}",
            get(services::get).put(services::update).patch(services::patch).delete(services::delete),
        )
        .route("/services/{id}/revisions", get(revisions::list))
        .route("/services/{id}/traffic", put(revisions::set_traffic))
        .route("/services/{id}/domains", post(domains::add).get(domains::list))
        .route("/services/{id}/domains/{domain}", delete(domains::remove))
        .route("/services/{id}/domains/{domain}/verify", post(domains::verify))
        .route("/secrets", get(secrets::list))
        .route("/secrets/{name}", get(secrets::get).put(secrets::set).delete(secrets::delete))
        .route("/services/{id}/logs", get(logs::stream))
        .route("/usage", get(usage::get))
        .route("/quotas", get(quotas::get))
        .route("/usage/invoice", get(usage::invoice))
        .route("/registry", get(registry::info))
        .route("/registry/token", get(registry::token))
        .route("/registry/images", get(registry::images))
        .route("/audit", get(audit::list))
        .route("/events", get(events::stream))
        .route("/openapi.json", get(crate::openapi::document))
        .fallback(|| async { crate::error::ApiError::not_found("no such endpoint") })
}

/// Order parameters (a resource's `spec`) as given in a request body: a JSON object, `{}` when absent.
pub(crate) fn parameters_object(
    parameters: Option<serde_json::Value>,
) -> Result<serde_json::Value, crate::error::ApiError> {
    match parameters {
        None => Ok(serde_json::Value::Object(Default::default())),
        Some(v @ serde_json::Value::Object(_)) => Ok(v),
        Some(_) => Err(crate::error::ApiError::invalid("parameters", "parameters must be a JSON object")),
    }
}

/// A query parameter holding an RFC 3339 time; a bad one is refused naming `field`.
pub(crate) fn time_param(text: &str, field: &str) -> Result<time::OffsetDateTime, crate::error::ApiError> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(|_| {
        crate::error::ApiError::bad_request(format!(
            "{field}: expected an RFC 3339 time such as 2026-01-01T00:00:00Z, got {text:?}"
        ))
        .field(field)
    })
}

/// The `limit` query parameter of list endpoints: 1–1000, default 100.
pub(crate) fn limit_param(q: &std::collections::HashMap<String, String>) -> Result<i64, crate::error::ApiError> {
    match q.get("limit") {
        None => Ok(100),
        Some(l) => match l.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(crate::error::ApiError::bad_request("limit must be an integer from 1 to 1000").field("limit")),
        },
    }
}

pub async fn cluster_header(State(state): State<AppState>, mut resp: Response) -> Response {
    let value = if state.config.cluster_connected { "connected" } else { "none" };
    resp.headers_mut().insert(CLUSTER_HEADER, HeaderValue::from_static(value));
    resp
}
