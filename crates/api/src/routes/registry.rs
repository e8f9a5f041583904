//! The container registry: the Docker Registry v2 token endpoint and what a tenant has there.
//!
//! `GET /registry/token?service=…&scope=…` is the `realm` the registry sends clients to (docker, oras,
//! oci-client, Flux, kubelet). Clients authenticate with HTTP Basic — any username, an API key (`mc_…`) as password
//! — as they do with `docker login`, or with `Authorization: Bearer mc_…`. The answer grants the subset of the
//! requested actions the caller may have (`maxcloud_registry::grant`): an empty `access` list is a valid answer.
//! Malformed scopes, an unknown `service` or unknown parameters are refused (400, naming the parameter); bad
//! credentials 401 with `WWW-Authenticate: Basic`. Nothing is written.

use axum::extract::rejection::QueryRejection;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use base64::Engine;
use maxcloud_api_model as m;
use maxcloud_registry::{Claims, Role, TOKEN_TTL_SECONDS};
use maxcloud_store::Principal;

use crate::auth::{hash_secret, Auth, Caller, API_KEY_PREFIX};
use crate::error::{ApiError, ApiResult};
use crate::registry::RegistryConfig;
use crate::AppState;

/// Query parameters of a token request (the spec's, and what docker sends besides).
const TOKEN_PARAMS: &[&str] = &["service", "scope", "account", "client_id", "offline_token"];

fn registry(state: &AppState) -> ApiResult<&RegistryConfig> {
    state.registry.as_deref().ok_or_else(|| ApiError::not_found("no container registry is enabled on this server"))
}

fn role(p: &Principal) -> Role {
    match p.role {
        maxcloud_store::Role::Admin => Role::Admin,
        maxcloud_store::Role::Member => Role::Member,
    }
}

/// A 401 asking for Basic credentials (what docker and oras answer with a username and password).
fn basic_challenge(message: &str) -> Response {
    let mut resp = ApiError::unauthorized(message).into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"max-cloud registry\""));
    resp
}

/// The caller of a token request: Basic with an API key as password, else the bearer the auth layer resolved.
async fn token_caller(state: &AppState, headers: &HeaderMap, caller: Option<&Caller>) -> Result<Principal, Response> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(encoded) = value.and_then(|v| v.strip_prefix("Basic ")) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|d| String::from_utf8(d).ok())
            .ok_or_else(|| basic_challenge("malformed Basic credentials"))?;
        let (_, password) =
            decoded.split_once(':').ok_or_else(|| basic_challenge("malformed Basic credentials: no password"))?;
        if !password.starts_with(API_KEY_PREFIX) || password.len() > 200 {
            return Err(basic_challenge("the password must be a max-cloud API key (`mc_…`)"));
        }
        return match state.store.principal_by_key_hash(&hash_secret(password)).await {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(basic_challenge("invalid or revoked API key")),
            Err(e) => Err(ApiError::internal(e).into_response()),
        };
    }
    match caller {
        Some(Caller::Key(p)) => Ok((**p).clone()),
        Some(Caller::Anonymous) | None => {
            Err(basic_challenge("authentication required: Basic with an API key (`mc_…`) as password"))
        }
        Some(Caller::Invalid(why)) => Err(basic_challenge(why)),
        // The on-behalf-of header has no meaning here; a bearer refused for its own reason keeps it.
        Some(Caller::BadOnBehalfOf(p)) => Ok((**p).clone()),
        #[allow(unreachable_patterns)]
        Some(_) => Err(basic_challenge("invalid credentials")),
    }
}

/// A Docker Registry v2 bearer token for the caller's own repositories (`<slug>/…`). Credentials: HTTP Basic
/// with any username and an API key as password, or `Authorization: Bearer mc_…`.
#[utoipa::path(get, operation_id = "registry_token", path = "/api/v1/registry/token", tag = "registry",
    security(("api_key" = [])),
    params(
        ("service" = String, Query, description = "The registry's service name (the token's audience)"),
        ("scope" = Option<Vec<String>>, Query, description = "Requested scopes, `repository:<slug>/<name>:pull,push`; repeated or space-separated; none: a token without access (login check)"),
        ("account" = Option<String>, Query, description = "Ignored (the API key names the user)"),
        ("client_id" = Option<String>, Query, description = "Ignored"),
        ("offline_token" = Option<String>, Query, description = "`true` or `false`; no refresh tokens are issued"),
    ),
    responses((status = 200, body = m::RegistryToken), (status = 400, body = m::ErrorBody),
        (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn token(
    State(state): State<AppState>,
    caller: Option<Extension<Caller>>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Response {
    let (principal, access, token) = match issue(&state, caller.as_ref().map(|Extension(c)| c), &headers, query).await {
        Ok(issued) => issued,
        Err(resp) => return resp,
    };
    // A grant that lets the caller change the registry (push, delete) is recorded like a mutating call: who, from
    // where, on what. Pull-only grants (every deploy's image pull) are not.
    let writes: Vec<String> = access
        .iter()
        .filter(|a| a.actions.iter().any(|x| x != "pull"))
        .map(|a| format!("{}:{}", a.name, a.actions.join(",")))
        .collect();
    if !writes.is_empty() {
        let entry = maxcloud_store::AuditEntry {
            tenant_id: Some(principal.tenant.id.clone()),
            actor: Some(crate::auth::actor(&principal)),
            method: "GET".into(),
            path: "/api/v1/registry/token".into(),
            status: 200,
            action: "registry.token".into(),
            target: Some(writes.join(" ").chars().take(1000).collect()),
            detail: None,
            source: state.config.trusted_proxies.source(peer.map(|Extension(ConnectInfo(addr))| addr), &headers),
        };
        if let Err(e) = state.audit.write(entry).await {
            return ApiError::internal(e).into_response();
        }
    }
    // A bearer credential: no cache may keep it (RFC 6749, section 5.1).
    let mut resp = axum::Json(token).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

async fn issue(
    state: &AppState,
    caller: Option<&Caller>,
    headers: &HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(Principal, Vec<maxcloud_registry::Access>, m::RegistryToken), Response> {
    let config = registry(state).map_err(IntoResponse::into_response)?;
    let principal = token_caller(state, headers, caller).await?;
    let bad = |field: &str, message: String| ApiError::bad_request(message).field(field).into_response();
    let Query(params) = query.map_err(|e| bad("query", format!("malformed query string: {e}")))?;
    let mut service = None;
    let mut scopes = Vec::new();
    for (name, value) in &params {
        match name.as_str() {
            "service" if service.is_some() => return Err(bad("service", "service: give it once".into())),
            "service" => service = Some(value.as_str()),
            "scope" => scopes.push(value.as_str()),
            "offline_token" if !matches!(value.as_str(), "true" | "false") => {
                return Err(bad("offline_token", format!("offline_token: expected true or false, got {value:?}")))
            }
            "account" | "client_id" if value.len() > 256 => {
                return Err(bad(name, format!("{name}: at most 256 characters")))
            }
            other if !TOKEN_PARAMS.contains(&other) => {
                let shown: String = other.chars().take(64).collect();
                return Err(bad(
                    &shown,
                    format!("unknown parameter {shown:?}: expected one of {}", TOKEN_PARAMS.join(", ")),
                ));
            }
            _ => {}
        }
    }
    match service {
        None => return Err(bad("service", format!("service is required (this registry's is {:?})", config.service))),
        Some(s) if s != config.service => {
            let shown: String = s.chars().take(100).collect();
            return Err(bad(
                "service",
                format!("unknown service {shown:?}: this server issues tokens for {:?}", config.service),
            ));
        }
        Some(_) => {}
    }
    let scopes = maxcloud_registry::parse_scopes(scopes).map_err(|e| bad("scope", e.to_string()))?;
    let access = maxcloud_registry::grant(&scopes, &principal.tenant.slug, role(&principal));
    let claims = Claims::new(&config.issuer, &config.service, &principal.user.email, access.clone(), TOKEN_TTL_SECONDS);
    let issued = claims.issue(&config.key).map_err(|e| ApiError::internal(e).into_response())?;
    let token = m::RegistryToken {
        token: issued.token,
        access_token: issued.access_token,
        expires_in: issued.expires_in,
        issued_at: issued.issued_at,
    };
    Ok((principal, access, token))
}

/// Where the organisation's images go: the registry host, the repository prefix (the organisation's slug), the
/// token service and what the caller may do there.
#[utoipa::path(get, operation_id = "registry_info", path = "/api/v1/registry", tag = "registry",
    security(("api_key" = [])),
    responses((status = 200, body = m::RegistryInfo), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn info(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<m::RegistryInfo>> {
    let config = registry(&state)?;
    let scope = maxcloud_registry::parse_scopes([format!("repository:{}/x:*", p.tenant.slug).as_str()])
        .map_err(ApiError::internal)?;
    let actions = maxcloud_registry::grant(&scope, &p.tenant.slug, role(&p))
        .into_iter()
        .next()
        .map(|a| a.actions)
        .unwrap_or_default();
    Ok(axum::Json(m::RegistryInfo {
        host: config.host(),
        insecure: config.insecure(),
        prefix: p.tenant.slug.clone(),
        service: config.service.clone(),
        actions,
    }))
}

/// The organisation's repositories (`<slug>/…`) in the registry, with their tags. The server reads the registry
/// with tokens it mints for itself; other tenants' repositories are never shown.
#[utoipa::path(get, operation_id = "registry_images", path = "/api/v1/registry/images", tag = "registry",
    security(("api_key" = [])),
    responses((status = 200, body = m::RegistryImages), (status = 401, body = m::ErrorBody),
        (status = 404, body = m::ErrorBody), (status = 503, body = m::ErrorBody)))]
pub async fn images(State(state): State<AppState>, Auth(p): Auth) -> ApiResult<axum::Json<m::RegistryImages>> {
    let config = registry(&state)?;
    let host = config
        .host()
        .filter(|_| config.url.is_some())
        .ok_or_else(|| ApiError::unavailable("no registry is connected to this server (--registry-url)"))?;
    let slug = p.tenant.slug.clone();
    let found = state.registry_client.images(config, &slug).await.map_err(|e| {
        tracing::warn!(error = %e, "cannot list the registry");
        ApiError::unavailable("the registry cannot be reached; try again later")
    })?;
    let images = found
        .into_iter()
        .map(|(repository, tags)| m::RegistryImage {
            name: repository[slug.len() + 1..].to_string(),
            reference: format!("{host}/{repository}"),
            repository,
            tags,
        })
        .collect();
    Ok(axum::Json(m::RegistryImages { host, prefix: slug, images }))
}
