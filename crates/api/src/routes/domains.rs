//! Custom domains of a service (`/api/v1/services/{id}/domains`): a domain is ordered (added to the App's
//! `domains`, which the composition turns into a DomainMapping and a DNS record) only once the tenant has shown it
//! owns it — a TXT record `_maxcloud-challenge.<domain>` holding `maxcloud-verify=<token>`, with a token of its own
//! per tenant and domain. A domain verified by one organisation cannot be added by another.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::revisions::{challenge_value, spec_domains, DomainName};
use maxcloud_catalog::Action;
use maxcloud_store::{DomainClaim, ResourceRow};
use serde_json::{json, Value};

use super::orders::{idempotency_key, parse_name};
use super::services::{find, place};
use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert::ts;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

fn parse_domain(raw: &str) -> ApiResult<DomainName> {
    DomainName::parse(raw).map_err(|m| ApiError::invalid("domain", format!("domain: {m}")))
}

/// Order states in which the order that added a domain is on `main` (or further).
const ON_MAIN: [&str; 3] = ["merged", "applied", "ready"];

async fn wire(state: &AppState, c: &DomainClaim) -> ApiResult<m::Domain> {
    let domain = parse_domain(&c.domain)?;
    let state_name = match (&c.verified_at, &c.order_id) {
        (None, _) => "pending",
        (Some(_), Some(order_id)) => match state.store.order(&c.tenant_id, order_id).await? {
            Some(o) if ON_MAIN.contains(&o.state.as_str()) => "active",
            _ => "verified",
        },
        (Some(_), None) => "verified",
    };
    Ok(m::Domain {
        domain: c.domain.clone(),
        service: c.service_name.clone(),
        state: state_name.to_string(),
        verification: m::DomainVerification {
            record_type: "TXT".into(),
            name: domain.challenge_name(),
            value: challenge_value(&c.token),
        },
        verified_at: c.verified_at.map(ts),
        order_id: c.order_id.clone(),
        created_at: ts(c.created_at),
    })
}

/// Whether the challenge record of `claim` is published. `Err` when DNS gave no answer at all.
async fn published(state: &AppState, domain: &DomainName, claim: &DomainClaim) -> ApiResult<(bool, Vec<String>)> {
    let found = state.dns.txt(&domain.challenge_name()).await.map_err(|e| {
        ApiError::new(StatusCode::BAD_GATEWAY, "dns_unavailable", format!("{e}; try verifying again later"))
            .field("domain")
    })?;
    let want = challenge_value(&claim.token);
    Ok((found.iter().any(|v| v.trim() == want), found))
}

/// Marks the claim verified and orders the domain onto the service (the App update order adding it to
/// `domains`). On a refused order the claim is pending again.
async fn verify_and_order(
    state: &AppState,
    p: &maxcloud_store::Principal,
    row: &ResourceRow,
    domain: &DomainName,
    idempotency_key: Option<String>,
) -> ApiResult<DomainClaim> {
    state.store.verify_domain(&p.tenant.id, domain.as_str()).await?;
    let mut spec: Value = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
    let mut domains = spec_domains(&spec);
    if !domains.iter().any(|d| d == domain.as_str()) {
        domains.push(domain.to_string());
    }
    spec["domains"] = json!(domains);
    let name = parse_name(&row.name, "name")?;
    let placed = match place(state, p, Action::Update, name, spec, idempotency_key).await {
        Ok(placed) => placed,
        Err(mut e) => {
            state.store.unverify_domain(&p.tenant.id, domain.as_str()).await?;
            if e.field.as_deref().is_some_and(|f| f.starts_with("domains")) {
                e.field = Some("domain".into());
            }
            return Err(e);
        }
    };
    state.store.set_domain_order(&p.tenant.id, domain.as_str(), &placed.order.id).await?;
    state.store.domain_claim(&p.tenant.id, domain.as_str()).await?.ok_or_else(|| ApiError::internal("claim vanished"))
}

/// Refuses App parameters naming a custom domain that another organisation has verified (the generic order path,
/// which takes `domains` as given): `409` naming `<prefix>domains[i]`.
pub(crate) async fn refuse_unverified(
    state: &AppState,
    tenant_id: &str,
    app: &str,
    spec: &Value,
    prefix: &str,
) -> ApiResult<()> {
    let domains = spec_domains(spec);
    for (i, d) in domains.iter().enumerate() {
        if state.store.domain_owner(d).await?.is_some_and(|owner| owner != tenant_id) {
            let field = format!("{prefix}domains[{i}]");
            return Err(ApiError::conflict(format!("{field}: {d} is verified by another organisation")).field(field));
        }
    }
    for (i, d) in domains.iter().enumerate() {
        let field = format!("{prefix}domains[{i}]");
        // Only a domain this organisation proved to own, for this App, may be ordered: otherwise any tenant could
        // point a DomainMapping and a DNS record at somebody else's name.
        let claim = state.store.domain_claim(tenant_id, d).await?;
        if !claim.is_some_and(|c| c.verified_at.is_some() && c.service_name == app) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "domain_not_verified",
                format!(
                    "{field}: {d} is not verified for {app}: add it with `maxcloud domains add {app} {d}` \
                     (POST /api/v1/services/{{id}}/domains) and create the TXT record it names"
                ),
            )
            .field(field));
        }
    }
    Ok(())
}

fn not_verified(domain: &DomainName, claim: &DomainClaim, found: &[String]) -> ApiError {
    let seen = if found.is_empty() {
        "no TXT record there".to_string()
    } else {
        format!("found {}", found.iter().map(|v| format!("{v:?}")).collect::<Vec<_>>().join(", "))
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "domain_not_verified",
        format!(
            "domain: {domain} is not verified: create a TXT record {} with the value {:?} ({seen}), then verify again",
            domain.challenge_name(),
            challenge_value(&claim.token)
        ),
    )
    .field("domain")
}

/// Add a custom domain to a service. Answers `202` with the TXT record to create while the domain is not verified
/// (nothing is ordered); `201` once the record is there and the domain is ordered.
#[utoipa::path(post, operation_id = "services_add_domain", path = "/api/v1/services/{id}/domains", tag = "services",
    security(("api_key" = [])), params(("id" = String, Path)), request_body = m::AddDomainRequest,
    responses((status = 201, body = m::Domain), (status = 202, body = m::Domain), (status = 400, body = m::ErrorBody),
        (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody),
        (status = 422, body = m::ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<m::AddDomainRequest>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>, axum::Json<m::Domain>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let domain = parse_domain(&req.domain)?;
    // A claim left by a deleted service of this tenant is released.
    if let Some(old) = state.store.domain_claim(&p.tenant.id, domain.as_str()).await? {
        if old.service_id != row.id && state.store.resource(&p.tenant.id, &old.service_id).await?.is_none() {
            state.store.remove_domain(&p.tenant.id, domain.as_str()).await?;
        }
    }
    let token = hex::encode(rand::random::<[u8; 16]>());
    let claim = state.store.claim_domain(&p.tenant.id, domain.as_str(), &row.id, &row.name, &token).await?;
    let audit = Extension(AuditTarget(format!("App/{} domain/{domain}", row.name)));
    if claim.verified_at.is_some() {
        return Ok((StatusCode::OK, audit, axum::Json(wire(&state, &claim).await?)));
    }
    // Verified at once when the record is already there; a failing lookup leaves it pending.
    let ready = matches!(published(&state, &domain, &claim).await, Ok((true, _)));
    if !ready {
        return Ok((StatusCode::ACCEPTED, audit, axum::Json(wire(&state, &claim).await?)));
    }
    let claim = verify_and_order(&state, &p, &row, &domain, idempotency_key).await?;
    Ok((StatusCode::CREATED, audit, axum::Json(wire(&state, &claim).await?)))
}

/// The claim of `raw` on the service `row`, or 404.
async fn claim_of(
    state: &AppState,
    p: &maxcloud_store::Principal,
    row: &ResourceRow,
    raw: &str,
) -> ApiResult<(DomainName, DomainClaim)> {
    let domain = parse_domain(raw)?;
    match state.store.domain_claim(&p.tenant.id, domain.as_str()).await? {
        Some(c) if c.service_id == row.id => Ok((domain, c)),
        _ => Err(ApiError::not_found(format!("service {:?} has no domain {domain}", row.name))),
    }
}

/// Check the domain's TXT record and, when it holds this organisation's token, order the domain. Refused with
/// the record to create (`422`, field `domain`) while it does not; nothing is ordered then.
#[utoipa::path(post, operation_id = "services_verify_domain", path = "/api/v1/services/{id}/domains/{domain}/verify",
    tag = "services", security(("api_key" = [])), params(("id" = String, Path), ("domain" = String, Path)),
    responses((status = 200, body = m::Domain), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody),
        (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody), (status = 502, body = m::ErrorBody)))]
pub async fn verify(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Domain>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let (domain, claim) = claim_of(&state, &p, &row, &raw).await?;
    let audit = Extension(AuditTarget(format!("App/{} domain/{domain}", row.name)));
    if claim.verified_at.is_some() {
        return Ok((audit, axum::Json(wire(&state, &claim).await?)));
    }
    let (ok, found) = published(&state, &domain, &claim).await?;
    if !ok {
        return Err(not_verified(&domain, &claim, &found));
    }
    let claim = verify_and_order(&state, &p, &row, &domain, idempotency_key).await?;
    Ok((audit, axum::Json(wire(&state, &claim).await?)))
}

/// The service's custom domains: pending (with the record to create), verified, active.
#[utoipa::path(get, operation_id = "services_domains", path = "/api/v1/services/{id}/domains", tag = "services",
    security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, body = [m::Domain]), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Vec<m::Domain>>> {
    let row = find(&state, &p.tenant.id, &id).await?;
    let mut out = Vec::new();
    for c in state.store.domain_claims(&p.tenant.id, &row.id).await? {
        out.push(wire(&state, &c).await?);
    }
    Ok(axum::Json(out))
}

/// Remove a custom domain: an App update order taking it out of `domains` when it was ordered; the claim is
/// dropped (the domain is free for others again). The order, if any, is named in `x-maxcloud-order`.
#[utoipa::path(delete, operation_id = "services_remove_domain", path = "/api/v1/services/{id}/domains/{domain}",
    tag = "services", security(("api_key" = [])), params(("id" = String, Path), ("domain" = String, Path)),
    responses((status = 204), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody),
        (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path((id, raw)): Path<(String, String)>,
) -> ApiResult<(StatusCode, HeaderMap, Extension<AuditTarget>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let (domain, _claim) = claim_of(&state, &p, &row, &raw).await?;
    let mut spec: Value = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
    let domains = spec_domains(&spec);
    let mut out = HeaderMap::new();
    let mut target = format!("App/{} domain/{domain}", row.name);
    if domains.iter().any(|d| d == domain.as_str()) {
        let rest: Vec<&String> = domains.iter().filter(|d| *d != domain.as_str()).collect();
        if rest.is_empty() {
            if let Value::Object(map) = &mut spec {
                map.remove("domains");
            }
        } else {
            spec["domains"] = json!(rest);
        }
        let name = parse_name(&row.name, "name")?;
        let placed = place(&state, &p, Action::Update, name, spec, idempotency_key).await?;
        target = format!("{target} order/{}", placed.order.id);
        if let Ok(v) = placed.order.id.parse() {
            out.insert(super::services::ORDER_HEADER, v);
        }
    }
    state.store.remove_domain(&p.tenant.id, domain.as_str()).await?;
    Ok((StatusCode::NO_CONTENT, out, Extension(AuditTarget(target))))
}
