//! A service's revisions and traffic (`/api/v1/services/{id}/revisions`, `/traffic`): every deploy through the
//! services facade names the revision it creates; traffic rules split requests between those names. The history
//! is read from the service's orders; the rules themselves are `maxcloud_catalog::revisions`.

use std::collections::BTreeSet;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_catalog::revisions::{self as rules, Target};
use maxcloud_catalog::Action;
use maxcloud_store::{OrderRow, ResourceRow};
use serde_json::Value;

use super::orders::{idempotency_key, parse_name};
use super::services::{find, place};
use crate::audit::AuditTarget;
use crate::auth::Auth;
use crate::convert::ts;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::AppState;

/// Order states after which a revision never reaches the cluster (or cannot serve).
const DEAD_STATES: [&str; 3] = ["rejected", "superseded", "failed"];

/// One revision as the service's orders tell it.
struct Entry {
    name: String,
    image: String,
    order: OrderRow,
}

impl Entry {
    fn addressable(&self) -> bool {
        !DEAD_STATES.contains(&self.order.state.as_str())
    }
}

/// The revisions the service's create and update orders named, oldest first. A name carried by several orders
/// (traffic changes keep the revision) belongs to the first of them that is not dead.
fn history(orders: &[OrderRow]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for o in orders.iter().filter(|o| o.action != "delete") {
        let Ok(params) = serde_json::from_str::<Value>(&o.parameters) else { continue };
        let Some(name) = params.get("revision").and_then(Value::as_str) else { continue };
        let image = params.get("image").and_then(Value::as_str).unwrap_or_default().to_string();
        let entry = Entry { name: name.to_string(), image, order: o.clone() };
        match out.iter_mut().find(|e| e.name == name) {
            None => out.push(entry),
            Some(e) if !e.addressable() && entry.addressable() => *e = entry,
            Some(_) => {}
        }
    }
    out
}

/// What the facade needs to know about a service's revisions.
pub(crate) struct RevisionState {
    entries: Vec<Entry>,
    orders: Vec<OrderRow>,
    /// The revision the current spec creates.
    pub latest: Option<String>,
    pub spec: Value,
    /// What the cluster reported (`Observation::served`).
    served: Option<Value>,
}

impl RevisionState {
    pub(crate) async fn load(state: &AppState, row: &ResourceRow) -> ApiResult<RevisionState> {
        let orders = state.store.resource_orders(&row.tenant_id, &row.id).await?;
        let spec: Value = serde_json::from_str(&row.spec).map_err(ApiError::internal)?;
        let latest = spec.get("revision").and_then(Value::as_str).map(str::to_string);
        let served = state.store.served(&row.tenant_id, &row.id).await?.and_then(|t| serde_json::from_str(&t).ok());
        Ok(RevisionState { entries: history(&orders), orders, latest, spec, served })
    }

    /// Every name used so far (dead ones too: Knative may have seen them).
    fn names(&self) -> BTreeSet<String> {
        self.entries.iter().map(|e| e.name.clone()).collect()
    }

    /// Names traffic rules may use.
    fn addressable(&self) -> BTreeSet<String> {
        self.entries.iter().filter(|e| e.addressable()).map(|e| e.name.clone()).collect()
    }
}

/// How a deploy names its revision and moves traffic (the request's `revision`, `no_traffic`, `tag`), and its
/// idempotency key.
pub(crate) struct Deploy<'a> {
    pub revision: Option<&'a str>,
    pub no_traffic: bool,
    pub tag: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
}

impl<'a> Deploy<'a> {
    pub(crate) fn of(req: &'a m::PatchServiceRequest, idempotency_key: Option<&'a str>) -> Deploy<'a> {
        Deploy {
            revision: req.revision.as_deref(),
            no_traffic: req.no_traffic,
            tag: req.tag.as_deref(),
            idempotency_key,
        }
    }
}

/// Names the revision a deploy creates and sets the traffic it leaves behind in `spec`:
/// `revision` (given, new for the service) or the next `r<N>`; `no_traffic` keeps the shares where they are (the
/// new revision gets 0%), `tag` gives the new revision its own URL. `current` is the service before the deploy
/// (`None` for a new one); its custom domains are kept (they change only through the domains endpoints).
pub(crate) async fn name_deploy(
    state: &AppState,
    app: &str,
    current: Option<&ResourceRow>,
    spec: &mut Value,
    how: Deploy<'_>,
) -> ApiResult<()> {
    let Deploy { revision, no_traffic, tag, idempotency_key } = how;
    if let Some(tag) = tag {
        rules::check_tag(app, tag).map_err(|m| ApiError::invalid("tag", format!("tag: {m}")))?;
    }
    let before = match current {
        Some(row) => Some(RevisionState::load(state, row).await?),
        None => None,
    };
    let Value::Object(map) = spec else { return Err(ApiError::internal("service spec is not an object")) };
    // A retried request (same idempotency key) gets what the first one got, so the order service sees the same
    // request and answers with the stored order.
    let replayed = before.as_ref().and_then(|b| {
        let key = idempotency_key?;
        b.orders.iter().find(|o| o.action != "delete" && o.idempotency_key.as_deref() == Some(key))
    });
    if let Some(order) = replayed {
        let first: Value = serde_json::from_str(&order.parameters).map_err(ApiError::internal)?;
        for field in ["revision", "traffic", "domains"] {
            match first.get(field) {
                Some(v) => map.insert(field.into(), v.clone()),
                None => map.remove(field),
            };
        }
        return Ok(());
    }
    let used = before.as_ref().map(RevisionState::names).unwrap_or_default();
    let name = match revision {
        Some(r) => {
            rules::check_revision_name(app, r).map_err(|m| ApiError::invalid("revision", format!("revision: {m}")))?;
            if used.contains(r) {
                return Err(ApiError::conflict(format!(
                    "revision: service {app:?} already has a revision {r:?}; every deploy needs a new name"
                ))
                .field("revision"));
            }
            r.to_string()
        }
        None => rules::next_revision_name(used.iter().map(String::as_str)),
    };
    let traffic = match &before {
        None if no_traffic => {
            return Err(ApiError::invalid(
                "no_traffic",
                "no_traffic: a new service has no traffic to keep; leave it out for the first deploy",
            ))
        }
        None => rules::traffic_after_deploy(&[], None, &name, false, tag),
        Some(b) => {
            rules::traffic_after_deploy(&rules::spec_traffic(&b.spec), b.latest.as_deref(), &name, no_traffic, tag)
        }
    }
    .map_err(|r| ApiError::invalid(r.field.clone(), r.to_string()))?;
    map.insert("revision".into(), Value::String(name));
    map.insert("traffic".into(), rules::traffic_spec(&traffic));
    match before.as_ref().map(|b| rules::spec_domains(&b.spec)) {
        Some(domains) if !domains.is_empty() => {
            map.insert("domains".into(), serde_json::json!(domains));
        }
        _ => {
            map.remove("domains");
        }
    }
    Ok(())
}

/// Fields of an App spec that do not make a new revision (they change routing or the Service's labels only).
const NOT_IN_REVISION: [&str; 4] = ["revision", "traffic", "domains", "visibility"];

/// The generic order path takes an App's parameters as given. An update that changes what the revision is made of
/// but keeps the name of the revision in force (a form prefilled from the current spec) would be refused by Knative,
/// so the next generated name is filled in; a name the caller changed is kept. A retried request (same idempotency
/// key) gets the name the first one got.
pub(crate) async fn name_changed_revision(
    state: &AppState,
    tenant_id: &str,
    name: &str,
    params: &mut Value,
    idempotency_key: Option<&str>,
) -> ApiResult<()> {
    let Some(row) = state.store.resource_by_name(tenant_id, "App", name).await? else { return Ok(()) };
    let rs = RevisionState::load(state, &row).await?;
    let Some(current) = rs.latest.as_deref() else { return Ok(()) };
    let first = idempotency_key
        .and_then(|key| rs.orders.iter().find(|o| o.action != "delete" && o.idempotency_key.as_deref() == Some(key)));
    if let Some(order) = first {
        let first: Value = serde_json::from_str(&order.parameters).map_err(ApiError::internal)?;
        if let (Some(r), Value::Object(map)) = (first.get("revision"), &mut *params) {
            map.insert("revision".into(), r.clone());
        }
        return Ok(());
    }
    if params.get("revision").and_then(Value::as_str) != Some(current) {
        return Ok(());
    }
    let Some(ty) = state.orders.catalog().get("App") else { return Ok(()) };
    // Invalid parameters are the order service's to refuse, with its field names.
    let Ok(new) = ty.validate(params) else { return Ok(()) };
    let made_of = |v: &Value| {
        let mut v = v.clone();
        if let Value::Object(map) = &mut v {
            for k in NOT_IN_REVISION {
                map.remove(k);
            }
        }
        v
    };
    if made_of(&new) != made_of(&rs.spec) {
        params["revision"] = Value::String(rules::next_revision_name(rs.names().iter().map(String::as_str)));
    }
    Ok(())
}

fn wire_target(t: &Target) -> m::TrafficTarget {
    m::TrafficTarget {
        revision: t.revision.clone(),
        latest_revision: t.revision.is_none(),
        percent: i64::from(t.percent),
        tag: t.tag.clone(),
    }
}

fn view(row: &ResourceRow, rs: &RevisionState) -> m::Revisions {
    let traffic = rules::effective_traffic(&rs.spec);
    let revisions = rs
        .entries
        .iter()
        .map(|e| {
            let latest = rs.latest.as_deref() == Some(e.name.as_str());
            let serves = |t: &&Target| match &t.revision {
                Some(r) => *r == e.name,
                None => latest,
            };
            m::Revision {
                name: e.name.clone(),
                full_name: format!("{}-{}", row.name, e.name),
                image: e.image.clone(),
                order_id: e.order.id.clone(),
                order_state: e.order.state.clone(),
                created_at: ts(e.order.created_at),
                latest,
                percent: traffic.iter().filter(serves).map(|t| i64::from(t.percent)).sum(),
                tags: traffic.iter().filter(serves).filter_map(|t| t.tag.clone()).collect(),
                addressable: e.addressable(),
            }
        })
        .collect();
    m::Revisions {
        service: row.name.clone(),
        latest_revision: rs.latest.clone(),
        revisions,
        traffic: traffic.iter().map(wire_target).collect(),
        order_id: row.order_id.clone(),
        cluster: rs.served.as_ref().map(|s| served(&row.name, s)),
    }
}

/// The XR status' revision fields in the API's terms: Knative's `<service>-<revision>` names shortened to the
/// names given at deploy.
fn served(app: &str, s: &Value) -> m::ServedRevisions {
    let prefix = format!("{app}-");
    let short = |v: &Value| v.as_str().map(|n| n.strip_prefix(&prefix).unwrap_or(n).to_string());
    let text = |v: &Value| v.as_str().filter(|t| !t.is_empty()).map(str::to_string);
    m::ServedRevisions {
        latest_created: short(&s["latestRevision"]),
        latest_ready: short(&s["latestReadyRevision"]),
        traffic: s["traffic"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|t| m::ServedTarget {
                        revision: short(&t["revision"]).unwrap_or_default(),
                        percent: t["percent"].as_i64().unwrap_or(0),
                        tag: text(&t["tag"]),
                        url: text(&t["url"]),
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// The service's revisions (one per deploy, oldest first) with their images, orders, shares and tags.
#[utoipa::path(get, operation_id = "services_revisions", path = "/api/v1/services/{id}/revisions", tag = "services",
    security(("api_key" = [])), params(("id" = String, Path)),
    responses((status = 200, body = m::Revisions), (status = 401, body = m::ErrorBody), (status = 404, body = m::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<m::Revisions>> {
    let row = find(&state, &p.tenant.id, &id).await?;
    let rs = RevisionState::load(&state, &row).await?;
    Ok(axum::Json(view(&row, &rs)))
}

/// The request's targets as rules, each malformed one named.
fn targets(req: &m::SetTrafficRequest, current: &[Target]) -> ApiResult<Vec<Target>> {
    match (&req.targets, req.to_latest) {
        (Some(_), true) => Err(ApiError::invalid("to_latest", "to_latest: give either targets or to_latest, not both")),
        (None, false) => Err(ApiError::invalid("targets", "targets: give the split, or to_latest")),
        // Everything to the latest revision; tags stay reachable at 0%.
        (None, true) => {
            let mut out = vec![Target::latest()];
            out.extend(
                current
                    .iter()
                    .filter(|t| t.tag.is_some() && t.revision.is_some())
                    .map(|t| Target { percent: 0, ..t.clone() }),
            );
            Ok(out)
        }
        (Some(list), false) => list
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let revision = match (&t.revision, t.latest_revision) {
                    (Some(_), true) => {
                        return Err(ApiError::invalid(
                            format!("targets[{i}]"),
                            format!("targets[{i}]: give a revision or latest_revision, not both"),
                        ))
                    }
                    (None, false) => {
                        return Err(ApiError::invalid(
                            format!("targets[{i}].revision"),
                            format!("targets[{i}].revision: give a revision (or latest_revision: true)"),
                        ))
                    }
                    (r, _) => r.clone(),
                };
                let percent = u8::try_from(t.percent).ok().filter(|p| *p <= 100).ok_or_else(|| {
                    ApiError::invalid(
                        format!("targets[{i}].percent"),
                        format!("targets[{i}].percent: {} is not a share from 0 to 100", t.percent),
                    )
                })?;
                Ok(Target { revision, percent, tag: t.tag.clone() })
            })
            .collect(),
    }
}

/// App parameter path (`traffic[1].tag`) -> the request's field (`targets[1].tag`).
fn traffic_field(path: &str) -> Option<String> {
    path.strip_prefix("traffic").map(|rest| format!("targets{rest}"))
}

/// Split the service's requests between its revisions (an App update order that changes only `traffic`).
/// `maxcloud traffic`, `maxcloud rollback`.
#[utoipa::path(put, operation_id = "services_set_traffic", path = "/api/v1/services/{id}/traffic", tag = "services",
    security(("api_key" = [])), params(("id" = String, Path)), request_body = m::SetTrafficRequest,
    responses((status = 200, body = m::Revisions), (status = 400, body = m::ErrorBody), (status = 401, body = m::ErrorBody),
        (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn set_traffic(
    State(state): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(req): Json<m::SetTrafficRequest>,
) -> ApiResult<(Extension<AuditTarget>, axum::Json<m::Revisions>)> {
    let idempotency_key = idempotency_key(&headers)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let rs = RevisionState::load(&state, &row).await?;
    let targets = targets(&req, &rules::spec_traffic(&rs.spec))?;
    rules::check_traffic(&row.name, &targets, &rs.addressable())
        .map_err(|r| ApiError::invalid(r.field.clone(), r.to_string()))?;
    let mut spec = rs.spec.clone();
    spec["traffic"] = rules::traffic_spec(&targets);
    let name = parse_name(&row.name, "name")?;
    let placed =
        place(&state, &p, Action::Update, name.clone(), spec, idempotency_key).await.map_err(rename_traffic_error)?;
    let row = find(&state, &p.tenant.id, &id).await?;
    let rs = RevisionState::load(&state, &row).await?;
    Ok((Extension(AuditTarget(format!("App/{name} order/{}", placed.order.id))), axum::Json(view(&row, &rs))))
}

/// Field names of an order refusal in the traffic request's terms.
fn rename_traffic_error(mut e: ApiError) -> ApiError {
    if let Some(f) = e.field.as_deref().and_then(traffic_field) {
        e.message = e.message.replace("traffic", "targets");
        e.field = Some(f);
    }
    for p in e.fields.iter_mut() {
        if let Some(f) = traffic_field(&p.field) {
            p.field = f;
        }
    }
    e
}
