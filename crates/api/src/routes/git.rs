//! Tenant repos over Git smart HTTP, read-only, behind basic auth: `git clone
//! http://token:<api key or git token>@host/git/<slug>.git`. The password must be an API key of that
//! tenant or one of its Git read tokens; pushes are refused.
//!
//! The platform repository (`/git/platform.git`, the tenants' Flux onboarding) is served only when a platform
//! Git token is configured, and only to that token: tenant credentials never open it.

use axum::body::{Body, Bytes};
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use base64::Engine;
use maxcloud_gitops::http_backend::{self, CgiRequest};
use maxcloud_gitops::PLATFORM_REPO;

use crate::auth::{hash_secret, API_KEY_PREFIX, GIT_TOKEN_PREFIX};
use crate::AppState;

/// Largest request body (a clone's negotiation) accepted on the Git endpoint.
const MAX_GIT_BODY: usize = 16 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/git/{repo}/{*rest}", any(serve)).layer(axum::extract::DefaultBodyLimit::max(MAX_GIT_BODY))
}

fn plain(status: StatusCode, msg: &str) -> Response {
    let mut r = (status, format!("{msg}\n")).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"max-cloud git\""));
    }
    r
}

/// The password of a basic `Authorization` header.
fn basic_password(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_string())
}

async fn serve(
    State(state): State<AppState>,
    Path((repo, rest)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(slug) = repo.strip_suffix(".git") else { return plain(StatusCode::NOT_FOUND, "not found") };
    let query = query.unwrap_or_default();
    let Some(password) = basic_password(&headers) else {
        return plain(StatusCode::UNAUTHORIZED, "authentication required: use an API key or Git token as password");
    };
    if slug == PLATFORM_REPO {
        return serve_platform(&state, &repo, rest, query, method, &headers, &password, body).await;
    }
    let tenant = if password.starts_with(GIT_TOKEN_PREFIX) {
        match state.store.tenant_by_git_token_hash(&hash_secret(&password)).await {
            Ok(Some(id)) => state.store.tenant_by_id(&id).await,
            other => other.map(|_| None),
        }
    } else if password.starts_with(API_KEY_PREFIX) {
        state.store.principal_by_key_hash(&hash_secret(&password)).await.map(|p| p.map(|p| p.tenant))
    } else {
        Ok(None)
    };
    let tenant = match tenant {
        Ok(Some(t)) => t,
        Ok(None) => return plain(StatusCode::UNAUTHORIZED, "invalid or revoked credentials"),
        Err(e) => {
            tracing::error!(error = %e, "git auth lookup failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error");
        }
    };
    if tenant.slug != slug {
        return plain(StatusCode::FORBIDDEN, "these credentials do not grant access to this repository");
    }
    backend(&state, repo, rest, query, method, &headers, tenant.slug.clone(), body).await
}

/// The platform repository: read-only, for the platform Git token only.
#[allow(clippy::too_many_arguments)]
async fn serve_platform(
    state: &AppState,
    repo: &str,
    rest: String,
    query: String,
    method: Method,
    headers: &HeaderMap,
    password: &str,
    body: Bytes,
) -> Response {
    let Some(expected) = &state.config.platform_git_token_hash else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    // Both sides are SHA-256 digests: comparing them leaks nothing about the token.
    if hash_secret(password) != *expected {
        return plain(StatusCode::FORBIDDEN, "these credentials do not grant access to this repository");
    }
    backend(state, repo.to_string(), rest, query, method, headers, PLATFORM_REPO.to_string(), body).await
}

#[allow(clippy::too_many_arguments)]
async fn backend(
    state: &AppState,
    repo: String,
    rest: String,
    query: String,
    method: Method,
    headers: &HeaderMap,
    remote_user: String,
    body: Bytes,
) -> Response {
    let rest = format!("/{rest}");
    if !http_backend::is_read_only_request(&rest, &query) {
        return plain(StatusCode::FORBIDDEN, "tenant repositories are read-only: change them by placing orders");
    }
    if method != Method::GET && method != Method::POST {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(String::from);
    let req = CgiRequest {
        method: method.to_string(),
        repo: repo.clone(),
        path_info_rest: rest,
        query,
        content_type: header_str(header::CONTENT_TYPE),
        content_encoding: header_str(header::CONTENT_ENCODING),
        git_protocol: headers.get("git-protocol").and_then(|v| v.to_str().ok()).map(String::from),
        remote_user,
        body,
    };
    match http_backend::run(&state.config.repos_root, req).await {
        Ok(cgi) => {
            let mut resp = Response::new(Body::from(cgi.body));
            *resp.status_mut() = StatusCode::from_u16(cgi.status).unwrap_or(StatusCode::BAD_GATEWAY);
            for (k, v) in cgi.headers {
                if let (Ok(k), Ok(v)) = (header::HeaderName::try_from(k), HeaderValue::try_from(v)) {
                    resp.headers_mut().append(k, v);
                }
            }
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "git http-backend failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "git backend failed")
        }
    }
}
