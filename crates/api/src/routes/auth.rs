use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::TenantSlug;

use crate::audit::AuditTarget;
use crate::auth::{generate_key, Auth, API_KEY_PREFIX, GIT_TOKEN_PREFIX};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

type Created<T> = (StatusCode, Extension<AuditTarget>, axum::Json<T>);

/// Register an organisation and its first user (admin); answers with the only copy of the API key.
#[utoipa::path(post, operation_id = "auth_register", path = "/api/v1/auth/register", tag = "auth", request_body = m::RegisterRequest,
    responses((status = 201, body = m::RegisterResponse), (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn register(
    State(state): State<AppState>,
    Json(req): Json<m::RegisterRequest>,
) -> ApiResult<Created<m::RegisterResponse>> {
    let email = parse_email(&req.email)?;
    let org_name = req.org_name.trim();
    if org_name.is_empty() || org_name.chars().count() > 100 || org_name.chars().any(char::is_control) {
        return Err(ApiError::invalid("org_name", "org_name must be 1 to 100 printable characters"));
    }
    let slug = TenantSlug::from_org_name(org_name)
        .ok_or_else(|| ApiError::invalid("org_name", "org_name must contain at least one letter or digit"))?;
    let (secret, key) = generate_key(API_KEY_PREFIX, "default");
    let reg = state
        .store
        .register(&email, org_name, |n| if n <= 1 { slug.to_string() } else { slug.with_suffix(n).to_string() }, key)
        .await?;
    state.orders.init_tenant_repo(&reg.tenant).await.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Extension(AuditTarget(format!("tenant/{}", reg.tenant.slug))),
        axum::Json(m::RegisterResponse {
            user: convert::user(&reg.user),
            organization: convert::organization(&reg.tenant),
            api_key: secret,
        }),
    ))
}

/// Who the API key belongs to.
#[utoipa::path(get, operation_id = "auth_status", path = "/api/v1/auth/status", tag = "auth", security(("api_key" = [])),
    responses((status = 200, body = m::AuthStatus), (status = 401, body = m::ErrorBody)))]
pub async fn status(Auth(p): Auth) -> axum::Json<m::AuthStatus> {
    axum::Json(m::AuthStatus {
        authenticated: true,
        user: convert::user(&p.user),
        organization: convert::organization(&p.tenant),
        role: p.role.as_str().to_string(),
        api_key: convert::api_key(&p.key),
    })
}

/// Create another API key for the calling user; the key is shown once.
#[utoipa::path(post, operation_id = "auth_create_key", path = "/api/v1/auth/api-keys", tag = "auth", security(("api_key" = [])),
    request_body = m::CreateApiKeyRequest, responses((status = 201, body = m::CreatedApiKey), (status = 401, body = m::ErrorBody)))]
pub async fn create_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    body: axum::body::Bytes,
) -> ApiResult<Created<m::CreatedApiKey>> {
    // The body is optional: no body means a key with the default name.
    let req: m::CreateApiKeyRequest = crate::json::parse_optional(&body)?;
    let name = req.name.unwrap_or_else(|| "cli".to_string());
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid("name", "name must be 1 to 64 printable characters"));
    }
    let (secret, key) = generate_key(API_KEY_PREFIX, name);
    let row = state.store.create_api_key(&p.tenant.id, &p.user.id, key).await?;
    Ok((
        StatusCode::CREATED,
        Extension(AuditTarget(format!("api-key/{}", row.id))),
        axum::Json(m::CreatedApiKey {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            created_at: convert::ts(row.created_at),
            api_key: secret,
        }),
    ))
}

/// The organisation's active API keys (never the secrets).
#[utoipa::path(get, operation_id = "auth_list_keys", path = "/api/v1/auth/api-keys", tag = "auth", security(("api_key" = [])),
    responses((status = 200, body = [m::ApiKey]), (status = 401, body = m::ErrorBody)))]
pub async fn list_keys(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::ApiKey>>> {
    let keys = state.store.api_keys(&p.tenant.id).await?;
    Ok(axum::Json(keys.iter().map(convert::api_key).collect()))
}

/// Revoke an API key of the organisation.
#[utoipa::path(delete, operation_id = "auth_delete_key", path = "/api/v1/auth/api-keys/{id}", tag = "auth", security(("api_key" = [])),
    params(("id" = String, Path)), responses((status = 204), (status = 404, body = m::ErrorBody)))]
pub async fn delete_key(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>)> {
    if !state.store.revoke_api_key(&p.tenant.id, &id).await? {
        return Err(ApiError::not_found(format!("no API key {id:?} in this organisation")));
    }
    Ok((StatusCode::NO_CONTENT, Extension(AuditTarget(format!("api-key/{id}")))))
}

/// Create a read-only token for the organisation's Git repo (for Flux); admins only, shown once.
#[utoipa::path(post, operation_id = "auth_create_git_token", path = "/api/v1/auth/git-tokens", tag = "auth", security(("api_key" = [])),
    responses((status = 201, body = m::CreatedGitToken), (status = 403, body = m::ErrorBody)))]
pub async fn create_git_token(State(state): State<AppState>, auth: Auth) -> ApiResult<Created<m::CreatedGitToken>> {
    auth.require_admin()?;
    let p = auth.0;
    let (secret, key) = generate_key(GIT_TOKEN_PREFIX, "git");
    let (id, created) = state.store.create_git_token(&p.tenant.id, &key.hash).await?;
    Ok((
        StatusCode::CREATED,
        Extension(AuditTarget(format!("git-token/{id}"))),
        axum::Json(m::CreatedGitToken {
            id,
            token: secret,
            repo_path: format!("/git/{}.git", p.tenant.slug),
            created_at: convert::ts(created),
        }),
    ))
}

/// The organisation's members and their roles.
#[utoipa::path(get, operation_id = "auth_members", path = "/api/v1/auth/members", tag = "auth", security(("api_key" = [])),
    responses((status = 200, body = [m::Member]), (status = 401, body = m::ErrorBody)))]
pub async fn members(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<Vec<m::Member>>> {
    let members = state.store.members(&p.tenant.id).await?;
    Ok(axum::Json(
        members
            .iter()
            .map(|mb| m::Member {
                user: convert::user(&mb.user),
                role: mb.role.as_str().to_string(),
                joined_at: convert::ts(mb.joined_at),
            })
            .collect(),
    ))
}

/// A plausible mailbox address, lower-cased: one `@`, a non-empty local part, a dotted domain.
pub(crate) fn parse_email(raw: &str) -> ApiResult<String> {
    let email = raw.trim().to_ascii_lowercase();
    let bad = |why: &str| ApiError::invalid("email", format!("email {raw:?} is not a valid address: {why}"));
    if email.len() > 254 {
        return Err(bad("longer than 254 characters"));
    }
    let Some((local, domain)) = email.split_once('@') else { return Err(bad("missing @")) };
    if local.is_empty() || local.len() > 64 || local.contains('@') || domain.contains('@') {
        return Err(bad("expected exactly one @ after a local part of 1 to 64 characters"));
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>' || c == ',') {
        return Err(bad("contains whitespace or forbidden characters"));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return Err(bad("the domain must be a dotted host name"));
    }
    Ok(email)
}
