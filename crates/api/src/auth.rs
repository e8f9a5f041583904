//! Authentication: API keys (`mc_…`) as bearer tokens, Git read tokens (`mcg_…`) for Flux.
//!
//! Keys are 192 bits of randomness; the store keeps only their SHA-256 (a slow password hash buys
//! nothing for keys this long) and a short prefix to recognise them by.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use maxcloud_store::{NewKey, Principal, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::AppState;

pub const API_KEY_PREFIX: &str = "mc_";
pub const GIT_TOKEN_PREFIX: &str = "mcg_";
pub const INVITE_PREFIX: &str = "mci_";
/// Header a front end acting with one key for many people (the Backstage plugin) names the person with.
pub const ON_BEHALF_OF_HEADER: &str = "x-maxcloud-on-behalf-of";

/// A fresh secret with `prefix`, and its stored (hashed) form.
pub fn generate_key(prefix: &str, name: &str) -> (String, NewKey) {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    let secret = format!("{prefix}{}", hex::encode(bytes));
    let shown = secret[..prefix.len() + 8].to_string();
    let key = NewKey { name: name.to_string(), prefix: shown, hash: hash_secret(&secret) };
    (secret, key)
}

pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Result of looking at the `Authorization` header, stored in request extensions by [`resolve_layer`].
#[derive(Clone)]
pub enum Caller {
    Anonymous,
    Invalid(&'static str),
    Key(Box<Principal>),
    /// A valid key with a malformed `X-Maxcloud-On-Behalf-Of` header.
    BadOnBehalfOf(Box<Principal>),
    /// A bearer refused with a reason of its own (an OIDC token: bad signature, expired, no organisation, …).
    Refused(Box<ApiError>),
}

/// Resolve the bearer key once per request, for the handlers ([`Auth`]) and the audit layer.
pub async fn resolve_layer(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let caller = match req.headers().get(header::AUTHORIZATION) {
        None => Caller::Anonymous,
        Some(value) => match value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim) {
            None => Caller::Invalid("Authorization header must be `Bearer mc_…`"),
            Some(token) if crate::oidc::looks_like_jwt(token) => {
                match crate::oidc::resolve(&state, token, req.headers()).await {
                    Ok(p) => Caller::Key(Box::new(p)),
                    Err(e) => Caller::Refused(Box::new(e)),
                }
            }
            Some(key) if !key.starts_with(API_KEY_PREFIX) || key.len() > 200 => {
                Caller::Invalid("malformed API key: expected `mc_…`")
            }
            Some(key) => match state.store.principal_by_key_hash(&hash_secret(key)).await {
                // An API key acts in its own organisation only; naming another is a mistake worth stopping.
                Ok(Some(p)) if other_tenant_named(&p, req.headers()) => Caller::Refused(Box::new(
                    ApiError::forbidden(format!(
                        "this API key belongs to organisation {:?}, not the one {} names",
                        p.tenant.slug,
                        crate::oidc::TENANT_HEADER
                    ))
                    .field(crate::oidc::TENANT_HEADER),
                )),
                Ok(Some(mut p)) => match on_behalf_of(req.headers()) {
                    Ok(person) => {
                        p.on_behalf_of = person;
                        Caller::Key(Box::new(p))
                    }
                    // Refused by the handler's `Auth`, so the audit log records the refusal with its tenant.
                    Err(()) => Caller::BadOnBehalfOf(Box::new(p)),
                },
                Ok(None) => Caller::Invalid("invalid or revoked API key"),
                Err(e) => return ApiError::internal(e).into_response(),
            },
        },
    };
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// Whether an `X-Maxcloud-Tenant` header names another organisation than the key's.
fn other_tenant_named(p: &Principal, headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(crate::oidc::TENANT_HEADER)
        .is_some_and(|v| v.to_str().ok().map(str::trim) != Some(p.tenant.slug.as_str()))
}

/// The `X-Maxcloud-On-Behalf-Of` header: printable, at most 200 characters.
fn on_behalf_of(headers: &axum::http::HeaderMap) -> Result<Option<String>, ()> {
    let Some(value) = headers.get(ON_BEHALF_OF_HEADER) else { return Ok(None) };
    let text = value.to_str().map_err(|_| ())?.trim();
    if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
        return Err(());
    }
    Ok(Some(text.to_string()))
}

/// Who made a call, for orders and the audit log: the key's user, and whom a front end said it acted for
/// (`ops@acme.example for user:default/jane`).
pub fn actor(p: &Principal) -> String {
    match &p.on_behalf_of {
        Some(person) => format!("{} for {person}", p.user.email),
        None => p.user.email.clone(),
    }
}

/// Extractor: the authenticated caller, or 401.
pub struct Auth(pub Principal);

impl Auth {
    /// 403 unless the caller is an admin of their organisation.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this action needs the admin role in the organisation"))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(Caller::Key(p)) => Ok(Auth((**p).clone())),
            Some(Caller::BadOnBehalfOf(_)) => Err(ApiError::bad_request(format!(
                "{ON_BEHALF_OF_HEADER} must be printable text of at most 200 characters"
            ))
            .field(ON_BEHALF_OF_HEADER)),
            Some(Caller::Invalid(why)) => Err(ApiError::unauthorized(*why)),
            Some(Caller::Refused(e)) => Err((**e).clone()),
            _ => Err(ApiError::unauthorized("missing API key: send `Authorization: Bearer mc_…`")),
        }
    }
}
