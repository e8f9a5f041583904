//! OpenID Connect login: bearer JWTs of one identity provider (Keycloak, Entra ID, …), verified against the
//! issuer's JWKS and mapped to an organisation and a role by a claim.
//!
//! - Discovery: `<issuer>/.well-known/openid-configuration` (its `issuer` must equal the configured one)
//!   names the `jwks_uri`. Keys are cached; a token with a `kid` the cache lacks makes the verifier fetch the
//!   JWKS again, at most once per `refetch_interval` (a flood of made-up key ids costs one fetch), and the
//!   whole set is refreshed after `max_age` so a key the issuer dropped stops working.
//! - Accepted: RS256/RS384/RS512/PS256/PS384/PS512 and ES256/ES384, with the key the `kid` names, whose type
//!   must fit the algorithm (`none` and HMAC algorithms are refused before any key is looked at). `iss` must be
//!   the configured issuer, `aud` must contain the configured audience, `exp` is required, `exp`/`nbf` get
//!   `leeway` seconds.
//! - Claims → access: the roles claim (`groups` by default; Entra ID app roles: `roles`) holds values
//!   `<prefix>:<organisation slug>:<admin|member>` (prefix `maxcloud`; a leading `/` from a Keycloak group path
//!   is ignored). Other values are ignored. The user is the (issuer, `sub`) identity, created on the first
//!   request with the e-mail claim; its memberships follow the claims on every request
//!   ([`maxcloud_store::Store::oidc_sync`]).
//! - A token granting several organisations picks one with `X-Maxcloud-Tenant: <slug>`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use maxcloud_store::{ApiKeyRow, OidcLogin, Principal, Role};
use serde::Deserialize;

use crate::error::ApiError;

/// Header naming the organisation a token that grants several acts in.
pub const TENANT_HEADER: &str = "x-maxcloud-tenant";

/// The identity provider and how its claims map to organisations and roles.
#[derive(Debug, Clone)]
pub struct OidcConfig {
    /// The issuer URL, exactly as the tokens' `iss` says (`https://kc.example/realms/acme`,
    /// `https://login.microsoftonline.com/<tenant id>/v2.0`).
    pub issuer: String,
    /// A value the tokens' `aud` must contain (the client id / application id URI).
    pub audience: String,
    /// Claim holding `<prefix>:<slug>:<role>` values (`groups`; Entra ID app roles: `roles`).
    pub roles_claim: String,
    pub role_prefix: String,
    /// Claim holding the user's e-mail (`email`; Entra ID without the optional claim: `preferred_username`).
    pub email_claim: String,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
    /// Least time between two JWKS fetches caused by unknown key ids.
    pub refetch_interval: Duration,
    /// Keys older than this are fetched again before use.
    pub max_age: Duration,
}

impl OidcConfig {
    pub fn new(issuer: &str, audience: &str) -> OidcConfig {
        OidcConfig {
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            roles_claim: "groups".into(),
            role_prefix: "maxcloud".into(),
            email_claim: "email".into(),
            leeway: 60,
            refetch_interval: Duration::from_secs(10),
            max_age: Duration::from_secs(3600),
        }
    }
}

/// Verifies tokens of the configured issuer; holds the JWKS cache.
pub struct Verifier {
    config: OidcConfig,
    http: reqwest::Client,
    cache: tokio::sync::Mutex<KeyCache>,
}

#[derive(Default)]
struct KeyCache {
    jwks_uri: Option<String>,
    keys: HashMap<String, Key>,
    fetched_at: Option<Instant>,
    /// Why the last fetch failed (cleared by a successful one).
    last_error: Option<JwtError>,
}

struct Key {
    decoding: DecodingKey,
    /// `RSA` or `EC` (+ curve), to refuse an algorithm the key cannot have signed with.
    kind: KeyKind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Other,
}

/// Why a bearer JWT was refused: every reason is answered 401 with its own message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed(&'static str),
    Algorithm(String),
    UnknownKey,
    KeyMismatch,
    Signature,
    Expired,
    NotYetValid,
    Issuer,
    Audience,
    MissingClaim(String),
    /// The issuer's discovery document or JWKS could not be read.
    Provider(String),
}

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JwtError::Malformed(why) => write!(f, "malformed JWT: {why}"),
            JwtError::Algorithm(alg) => write!(
                f,
                "JWT algorithm {alg:?} is not accepted: the identity provider's tokens are signed with RS256 or ES256 \
                 (RS384/RS512/PS256/PS384/PS512/ES384 too)"
            ),
            JwtError::UnknownKey => write!(f, "JWT key id (kid) is not among the identity provider's signing keys"),
            JwtError::KeyMismatch => write!(f, "JWT algorithm does not fit the type of the key its kid names"),
            JwtError::Signature => write!(f, "JWT signature does not verify with the identity provider's key"),
            JwtError::Expired => write!(f, "JWT has expired (exp)"),
            JwtError::NotYetValid => write!(f, "JWT is not valid yet (nbf)"),
            JwtError::Issuer => write!(f, "JWT issuer (iss) is not the identity provider this server trusts"),
            JwtError::Audience => write!(f, "JWT audience (aud) does not include this service"),
            JwtError::MissingClaim(c) => write!(f, "JWT lacks the required claim {c:?}"),
            JwtError::Provider(why) => {
                write!(f, "cannot verify the JWT: the identity provider's keys are unavailable: {why}")
            }
        }
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// Looks like a compact JWS: three base64url parts, a JSON header (`eyJ`).
pub fn looks_like_jwt(token: &str) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    parts.len() == 3
        && token.starts_with("eyJ")
        && token.len() <= 16 * 1024
        && parts[..2].iter().all(|p| !p.is_empty())
        && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

fn accepted_algorithm(alg: &str) -> Option<Algorithm> {
    Some(match alg {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return None,
    })
}

fn fits(alg: Algorithm, kind: KeyKind) -> bool {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => kind == KeyKind::Rsa,
        Algorithm::ES256 => kind == KeyKind::EcP256,
        Algorithm::ES384 => kind == KeyKind::EcP384,
        _ => false,
    }
}

impl Verifier {
    pub fn new(config: OidcConfig) -> Result<Verifier, String> {
        let issuer = reqwest::Url::parse(&config.issuer).map_err(|e| format!("--oidc-issuer is not a URL: {e}"))?;
        if !matches!(issuer.scheme(), "https" | "http") {
            return Err("--oidc-issuer must be an https URL".into());
        }
        if config.audience.trim().is_empty() {
            return Err("--oidc-audience must not be empty".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Verifier { config, http, cache: Default::default() })
    }

    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Verify `token` and return its claims.
    pub async fn verify(&self, token: &str) -> Result<serde_json::Map<String, serde_json::Value>, JwtError> {
        let header_part = token.split('.').next().unwrap_or_default();
        let header_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header_part)
            .map_err(|_| JwtError::Malformed("the header is not base64url"))?;
        let header: RawHeader = serde_json::from_slice(&header_bytes)
            .map_err(|_| JwtError::Malformed("the header is not a JOSE header"))?;
        let alg = accepted_algorithm(&header.alg).ok_or_else(|| JwtError::Algorithm(header.alg.clone()))?;
        let (decoding, kind) = self.key(header.kid.as_deref()).await?;
        if !fits(alg, kind) {
            return Err(JwtError::KeyMismatch);
        }
        let mut validation = Validation::new(alg);
        validation.algorithms = vec![alg];
        validation.set_issuer(&[self.config.issuer.as_str()]);
        validation.set_audience(&[self.config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = self.config.leeway;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        use jsonwebtoken::errors::ErrorKind as K;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &decoding, &validation)
            .map_err(|e| match e.kind() {
                K::InvalidSignature => JwtError::Signature,
                K::ExpiredSignature => JwtError::Expired,
                K::ImmatureSignature => JwtError::NotYetValid,
                K::InvalidIssuer => JwtError::Issuer,
                K::InvalidAudience => JwtError::Audience,
                K::MissingRequiredClaim(c) => JwtError::MissingClaim(c.clone()),
                K::InvalidAlgorithm => JwtError::KeyMismatch,
                K::InvalidClaimFormat(c) => JwtError::MissingClaim(c.clone()),
                K::Base64(_) | K::Json(_) | K::Utf8(_) | K::InvalidToken => {
                    JwtError::Malformed("the payload or signature cannot be decoded")
                }
                _ => JwtError::Signature,
            })?;
        Ok(data.claims)
    }

    /// The key `kid` names (or the only key, when the token names none).
    async fn key(&self, kid: Option<&str>) -> Result<(DecodingKey, KeyKind), JwtError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched_at.is_none_or(|t| t.elapsed() >= self.config.max_age);
        if stale {
            if let Err(e) = self.refresh(&mut cache).await {
                if cache.keys.is_empty() {
                    return Err(e);
                }
                tracing::warn!(error = %e, "cannot refresh the OIDC keys; using the cached ones");
            }
        }
        if let Some(found) = pick(&cache, kid) {
            return Ok(found);
        }
        // An unknown key id: maybe the issuer rotated its keys. Fetch again, but not more often than allowed.
        let recent = cache.fetched_at.is_some_and(|t| t.elapsed() < self.config.refetch_interval);
        if !recent {
            self.refresh(&mut cache).await?;
            if let Some(found) = pick(&cache, kid) {
                return Ok(found);
            }
        }
        // No keys at all because the issuer could not be read: say that, not "unknown key".
        if let (true, Some(e)) = (cache.keys.is_empty(), &cache.last_error) {
            return Err(e.clone());
        }
        Err(if kid.is_none() { JwtError::Malformed("the header has no kid") } else { JwtError::UnknownKey })
    }

    async fn refresh(&self, cache: &mut KeyCache) -> Result<(), JwtError> {
        let result = self.fetch_keys(cache).await;
        cache.last_error = result.as_ref().err().cloned();
        result
    }

    async fn fetch_keys(&self, cache: &mut KeyCache) -> Result<(), JwtError> {
        // Counted as a fetch even when it fails, so an unreachable issuer is not hammered.
        cache.fetched_at = Some(Instant::now());
        let jwks_uri = match &cache.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let doc: Discovery = self.get_json(&url).await?;
                if doc.issuer != self.config.issuer {
                    return Err(JwtError::Provider(format!(
                        "the discovery document names issuer {:?}, not {:?}",
                        doc.issuer, self.config.issuer
                    )));
                }
                cache.jwks_uri = Some(doc.jwks_uri.clone());
                doc.jwks_uri
            }
        };
        let set: JwkSet = self.get_json(&jwks_uri).await?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            // Encryption keys are not signing keys.
            if matches!(jwk.common.public_key_use, Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)) {
                continue;
            }
            let Some(kid) = jwk.common.key_id.clone() else { continue };
            let kind = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => KeyKind::Rsa,
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    jsonwebtoken::jwk::EllipticCurve::P256 => KeyKind::EcP256,
                    jsonwebtoken::jwk::EllipticCurve::P384 => KeyKind::EcP384,
                    _ => KeyKind::Other,
                },
                _ => KeyKind::Other,
            };
            if kind == KeyKind::Other {
                continue;
            }
            match DecodingKey::from_jwk(jwk) {
                Ok(decoding) => {
                    keys.insert(kid, Key { decoding, kind });
                }
                Err(e) => tracing::warn!(%kid, error = %e, "ignoring an unusable key of the OIDC issuer"),
            }
        }
        tracing::info!(keys = keys.len(), "fetched the OIDC issuer's signing keys");
        cache.keys = keys;
        Ok(())
    }

    async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, JwtError> {
        let resp = self.http.get(url).send().await.map_err(|e| JwtError::Provider(format!("GET {url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(JwtError::Provider(format!("GET {url}: HTTP {}", resp.status())));
        }
        resp.json::<T>().await.map_err(|e| JwtError::Provider(format!("GET {url}: {e}")))
    }

    /// What the claims say: the identity, its e-mail and the organisations with roles.
    pub fn login(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Result<OidcLogin, ApiError> {
        let c = &self.config;
        let subject = claims.get("sub").and_then(|v| v.as_str()).filter(|s| !s.is_empty() && s.len() <= 255);
        let subject = subject.ok_or_else(|| ApiError::unauthorized("JWT lacks the required claim \"sub\""))?;
        let email = claims
            .get(&c.email_claim)
            .and_then(|v| v.as_str())
            .map(|e| e.trim().to_ascii_lowercase())
            .filter(|e| e.contains('@') && e.len() <= 254 && !e.chars().any(|ch| ch.is_whitespace() || ch.is_control()))
            .ok_or_else(|| {
                ApiError::forbidden(format!(
                    "the token has no e-mail address in its {:?} claim: the identity provider must send it",
                    c.email_claim
                ))
            })?;
        let email_verified = claims.get("email_verified").and_then(|v| v.as_bool()).unwrap_or(false);
        let values: Vec<&str> = match claims.get(&c.roles_claim) {
            Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
            Some(serde_json::Value::String(s)) => s.split_whitespace().collect(),
            _ => Vec::new(),
        };
        let mut grants: Vec<(String, Role)> = Vec::new();
        for value in values {
            let mut parts = value.trim_start_matches('/').splitn(3, ':');
            let (Some(prefix), Some(slug), Some(role)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if prefix != c.role_prefix || maxcloud_catalog::TenantSlug::parse(slug).is_err() {
                continue;
            }
            let Some(role) = Role::from_name(role) else { continue };
            match grants.iter_mut().find(|(s, _)| s == slug) {
                Some((_, r)) if role == Role::Admin => *r = Role::Admin,
                Some(_) => {}
                None => grants.push((slug.to_string(), role)),
            }
        }
        Ok(OidcLogin { issuer: c.issuer.clone(), subject: subject.to_string(), email, email_verified, grants })
    }
}

fn pick(cache: &KeyCache, kid: Option<&str>) -> Option<(DecodingKey, KeyKind)> {
    match kid {
        Some(kid) => cache.keys.get(kid).map(|k| (k.decoding.clone(), k.kind)),
        None if cache.keys.len() == 1 => cache.keys.values().next().map(|k| (k.decoding.clone(), k.kind)),
        None => None,
    }
}

/// Resolve a bearer JWT into the caller: verified, the user and memberships synchronised, the organisation
/// chosen. Every refusal is an [`ApiError`] with its own message (401 for the token, 403 for what it grants).
pub async fn resolve(state: &crate::AppState, token: &str, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let Some(verifier) = state.config.oidc.as_ref() else {
        return Err(ApiError::unauthorized(
            "a JWT bearer needs OIDC login, which this server does not have configured (--oidc-issuer); use an API key `mc_…`",
        ));
    };
    let claims = verifier.verify(token).await.map_err(|e| match e {
        JwtError::Provider(_) => {
            tracing::warn!(error = %e, "OIDC verification unavailable");
            ApiError::unavailable(e.to_string())
        }
        other => ApiError::unauthorized(other.to_string()),
    })?;
    let login = verifier.login(&claims)?;
    let c = verifier.config();
    let wanted = match headers.get(TENANT_HEADER) {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|s| maxcloud_catalog::TenantSlug::parse(s).is_ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!("{TENANT_HEADER} must be an organisation slug")).field(TENANT_HEADER)
                })?
                .to_string(),
        ),
    };
    let no_organisation = || {
        ApiError::forbidden(format!(
            "the token grants no max-cloud organisation: its {:?} claim has no value {}:<organisation>:admin|member",
            c.roles_claim, c.role_prefix
        ))
    };
    let unknown = |slugs: &[String]| {
        ApiError::forbidden(format!(
            "the token grants roles only in organisations that do not exist: {}",
            slugs.join(", ")
        ))
    };
    // Synchronised even when the claims grant nothing any more, so an identity's old memberships go.
    let synced = state.store.oidc_sync(&login).await.map_err(|e| match e {
        maxcloud_store::StoreError::Conflict { message, .. } => ApiError::forbidden(message),
        maxcloud_store::StoreError::NotFound(_) if login.grants.is_empty() => no_organisation(),
        maxcloud_store::StoreError::NotFound(_) => {
            unknown(&login.grants.iter().map(|(s, _)| s.clone()).collect::<Vec<_>>())
        }
        other => ApiError::from(other),
    })?;
    if login.grants.is_empty() {
        return Err(no_organisation());
    }
    let chosen = match &wanted {
        Some(slug) => synced.tenants.iter().find(|(t, _)| &t.slug == slug).cloned().ok_or_else(|| {
            ApiError::forbidden(format!(
                "the token grants no role in organisation {slug:?} (its {:?} claim has no {}:{slug}:admin|member)",
                c.roles_claim, c.role_prefix
            ))
        })?,
        None => match synced.tenants.as_slice() {
            [one] => one.clone(),
            [] => return Err(unknown(&synced.unknown)),
            many => {
                let slugs: Vec<&str> = many.iter().map(|(t, _)| t.slug.as_str()).collect();
                return Err(ApiError::forbidden(format!(
                    "the token grants several organisations ({}): name one with the {TENANT_HEADER} header",
                    slugs.join(", ")
                ))
                .field(TENANT_HEADER));
            }
        },
    };
    let (tenant, role) = chosen;
    let key = ApiKeyRow {
        id: "oidc".to_string(),
        tenant_id: tenant.id.clone(),
        user_id: synced.user.id.clone(),
        name: format!("oidc {}", c.issuer),
        prefix: "jwt".to_string(),
        created_at: synced.user.created_at,
        last_used_at: None,
        revoked_at: None,
    };
    Ok(Principal { tenant, user: synced.user, role, key, on_behalf_of: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(roles_claim: &str) -> Verifier {
        let mut c = OidcConfig::new("https://idp.example/realms/acme", "maxcloud-api");
        c.roles_claim = roles_claim.into();
        Verifier::new(c).unwrap()
    }

    fn claims(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn groups_map_to_organisations_and_roles() {
        let v = verifier("groups");
        let login = v
            .login(&claims(serde_json::json!({
                "sub": "u1", "email": "Ann@Example.COM", "email_verified": true,
                // Keycloak full group paths, a duplicate with a higher role, values for others, a bad slug.
                "groups": ["/maxcloud:acme:member", "maxcloud:acme:admin", "maxcloud:beta:member", "admins",
                           "other:acme:admin", "maxcloud:Bad Slug:admin", "maxcloud:gamma:owner"]
            })))
            .unwrap();
        assert_eq!(login.email, "ann@example.com");
        assert!(login.email_verified);
        assert_eq!(login.grants, [("acme".to_string(), Role::Admin), ("beta".to_string(), Role::Member)]);
        assert_eq!(login.issuer, "https://idp.example/realms/acme");
    }

    #[test]
    fn entra_roles_claim_and_missing_parts() {
        let v = verifier("roles");
        let login =
            v.login(&claims(serde_json::json!({"sub": "u1", "email": "a@b.example", "roles": "maxcloud:acme:member"})));
        assert_eq!(login.unwrap().grants, [("acme".to_string(), Role::Member)]);
        let no_email = v.login(&claims(serde_json::json!({"sub": "u1", "roles": ["maxcloud:acme:admin"]})));
        assert_eq!(no_email.unwrap_err().status, axum::http::StatusCode::FORBIDDEN);
        let no_sub = v.login(&claims(serde_json::json!({"email": "a@b.example"})));
        assert_eq!(no_sub.unwrap_err().status, axum::http::StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."));
        assert!(looks_like_jwt("eyJh.eyJz.c2ln-_"));
        assert!(!looks_like_jwt("mc_0123456789abcdef"));
        assert!(!looks_like_jwt("eyJh.eyJz"));
        assert!(!looks_like_jwt("eyJh.eyJz.sig.extra"));
        assert!(!looks_like_jwt("eyJh..sig"));
        assert!(!looks_like_jwt("eyJh.eyJz.si+g"));
    }

    #[test]
    fn only_asymmetric_algorithms_fitting_the_key() {
        for alg in ["none", "HS256", "HS384", "HS512", "EdDSA", "rs256", ""] {
            assert!(accepted_algorithm(alg).is_none(), "{alg}");
        }
        assert!(fits(Algorithm::RS256, KeyKind::Rsa) && fits(Algorithm::PS256, KeyKind::Rsa));
        assert!(fits(Algorithm::ES256, KeyKind::EcP256) && !fits(Algorithm::ES256, KeyKind::EcP384));
        assert!(!fits(Algorithm::RS256, KeyKind::EcP256) && !fits(Algorithm::ES384, KeyKind::Rsa));
    }

    #[test]
    fn config_is_checked() {
        assert!(Verifier::new(OidcConfig::new("not a url", "a")).is_err());
        assert!(Verifier::new(OidcConfig::new("ftp://idp.example", "a")).is_err());
        assert!(Verifier::new(OidcConfig::new("https://idp.example", " ")).is_err());
    }
}
