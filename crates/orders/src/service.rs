use std::sync::Arc;

use maxcloud_catalog::{Action, Catalog, FieldError, ResourceName, ServiceType};
use maxcloud_gitops::Repos;
use maxcloud_store::{Accepted, NewOrder, OrderRow, Store, StoreError, Tenant};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::worker::{Worker, WorkerConfig};

/// An order as the API hands it over: already parsed into domain types.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    pub tenant: Tenant,
    pub action: Action,
    /// Catalog kind, plural or singular (case-insensitive).
    pub kind: String,
    pub name: ResourceName,
    /// The resource's `spec` as ordered (before defaults). Ignored for deletes.
    pub parameters: Value,
    pub requester: String,
    pub idempotency_key: Option<String>,
}

/// The stored order and whether it was new (`false`: an idempotent replay).
#[derive(Debug, Clone)]
pub struct Placed {
    pub order: OrderRow,
    pub created: bool,
}

/// A change of an order's state, published on the event bus.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderUpdate {
    pub tenant_id: String,
    pub order_id: String,
    pub kind: String,
    pub name: String,
    pub state: String,
}

impl OrderUpdate {
    /// `order` now in `state`.
    pub fn new(order: &OrderRow, state: &str) -> OrderUpdate {
        OrderUpdate {
            tenant_id: order.tenant_id.clone(),
            order_id: order.id.clone(),
            kind: order.kind.clone(),
            name: order.name.clone(),
            state: state.to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    /// The parameters break the schema or a CEL rule; the paths are relative to the parameters.
    #[error("invalid parameters: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    #[error("unknown kind {0:?}: see GET /api/v1/catalog")]
    UnknownKind(String),
    #[error("{message}")]
    Conflict { field: &'static str, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The order would take the organisation beyond one of its quotas; `field` is relative to the parameters.
    #[error("{message}")]
    Quota { field: String, message: String },
    #[error("{0}")]
    InvalidState(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for OrderError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field, message } => OrderError::Conflict { field, message },
            StoreError::NotFound(what) => OrderError::NotFound(what),
            StoreError::InvalidState(m) => OrderError::InvalidState(m),
            other => OrderError::Internal(other.to_string()),
        }
    }
}

/// Entry point of the order workflow; cheap to clone.
#[derive(Clone)]
pub struct OrderService {
    pub(crate) store: Store,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) worker: Worker,
    events: std::sync::Arc<crate::EventBus>,
    /// The platform's master key, which seals the tenants' SOPS keys; without it secrets cannot be set.
    pub(crate) master_key: Option<Arc<maxcloud_secrets::MasterKey>>,
    /// Per-organisation limits checked when orders are placed.
    quotas: Arc<crate::quota::Quotas>,
    /// One lock per organisation around quota check and acceptance, so that concurrent orders cannot both slip
    /// under a limit (one server process; the store serialises nothing across replicas).
    quota_locks: Arc<std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// The organisation's quota lock: this process's, and the database's across replicas (PostgreSQL).
struct QuotaLock {
    _local: tokio::sync::OwnedMutexGuard<()>,
    shared: maxcloud_store::DbLock,
}

impl OrderService {
    /// Build the service. With `config.run_worker`, the worker resumes every pending order at once.
    pub fn new(store: Store, catalog: Arc<Catalog>, repos: Arc<Repos>, config: WorkerConfig) -> OrderService {
        let events = std::sync::Arc::new(crate::EventBus::new());
        let worker = Worker::start(store.clone(), catalog.clone(), repos, events.clone(), config);
        OrderService {
            store,
            catalog,
            worker,
            events,
            master_key: None,
            quotas: Arc::default(),
            quota_locks: Arc::default(),
        }
    }

    /// Checks orders against these per-organisation limits.
    pub fn with_quotas(mut self, quotas: crate::quota::Quotas) -> OrderService {
        self.quotas = Arc::new(quotas);
        self
    }

    /// The organisation's limits and what its resources add up to now.
    pub async fn quota(&self, tenant: &Tenant) -> Result<(crate::quota::Limits, crate::quota::Totals), OrderError> {
        let limits = self.quotas.for_tenant(&tenant.slug);
        Ok((limits, self.totals(tenant, None).await?.0))
    }

    /// The organisation's totals now and, with `change` (kind, name, new spec), as if it were done: one read.
    async fn totals(
        &self,
        tenant: &Tenant,
        change: Option<(&str, &str, &Value)>,
    ) -> Result<(crate::quota::Totals, crate::quota::Totals), OrderError> {
        let (mut now, mut after) = (crate::quota::Totals::default(), crate::quota::Totals::default());
        for row in self.store.resources(&tenant.id, None).await? {
            if row.status == "deleting" {
                continue;
            }
            let spec: Value = serde_json::from_str(&row.spec).unwrap_or(Value::Null);
            crate::quota::add(&self.catalog, &mut now, &row.kind, &spec);
            if !change.is_some_and(|(k, n, _)| k == row.kind && n == row.name) {
                crate::quota::add(&self.catalog, &mut after, &row.kind, &spec);
            }
        }
        if let Some((kind, _, spec)) = change {
            crate::quota::add(&self.catalog, &mut after, kind, spec);
        }
        Ok((now, after))
    }

    /// Refuses a create or update that would take the organisation beyond a limit; returns the organisation's lock,
    /// to be held until the order is stored.
    async fn check_quota(
        &self,
        tenant: &Tenant,
        kind: &str,
        name: &str,
        spec: &Value,
    ) -> Result<Option<QuotaLock>, OrderError> {
        let limits = self.quotas.for_tenant(&tenant.slug);
        if limits.is_unlimited() {
            return Ok(None);
        }
        let local = {
            let mut locks = self.quota_locks.lock().expect("quota locks");
            locks.entry(tenant.id.clone()).or_default().clone()
        };
        // This process's orders of the organisation queue here, so at most one per process waits for the database's.
        let local = local.lock_owned().await;
        let shared = self.store.lock(&format!("maxcloud-quota/{}", tenant.id)).await?;
        let checked = self.totals(tenant, Some((kind, name, spec))).await.and_then(|(before, after)| {
            crate::quota::check(&self.catalog, kind, &limits, &before, &after)
                .map_err(|e| OrderError::Quota { field: e.field, message: e.message })
        });
        match checked {
            Ok(()) => Ok(Some(QuotaLock { _local: local, shared })),
            Err(e) => {
                shared.release().await;
                Err(e)
            }
        }
    }

    /// Enables tenant secrets (`place_secret`), sealing the tenants' keys with `key`.
    pub fn with_master_key(mut self, key: maxcloud_secrets::MasterKey) -> OrderService {
        self.master_key = Some(Arc::new(key));
        self
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Live order state changes of all tenants (filter by `tenant_id`), announced after the store has them:
    /// a wake-up for readers of the store's event log (`Store::events_since`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<crate::Announcement> {
        self.events.subscribe()
    }

    /// The tenant's order events as a live stream. With `last_event_id` (an SSE `Last-Event-ID`) it starts right
    /// after that event, replaying what the client missed, also across restarts; without one it starts now.
    /// `lagged` is true when the id is unknown here (malformed, or from another database): the client
    /// missed something and should re-read the state it shows.
    pub async fn events(
        &self,
        tenant_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<(bool, impl futures::Stream<Item = maxcloud_store::LoggedEvent> + Send), OrderError> {
        // Subscribe before reading where the log ends, so nothing falls between the two.
        let wake = self.events.subscribe();
        let newest = self.store.last_event_seq().await?;
        let (lagged, after) = match last_event_id.map(|id| id.parse::<i64>()) {
            None => (false, newest),
            Some(Ok(seq)) if (0..=newest).contains(&seq) => (false, seq),
            Some(_) => (true, newest),
        };
        Ok((lagged, crate::events::stream(self.store.clone(), wake, tenant_id.to_string(), after)))
    }

    /// Validate and store an order; the worker takes it from there.
    pub async fn place(&self, req: PlaceOrder) -> Result<Placed, OrderError> {
        let ty = self.catalog.get(&req.kind).ok_or_else(|| OrderError::UnknownKind(req.kind.clone()))?;
        let spec = match req.action {
            Action::Delete => Value::Object(Default::default()),
            Action::Create | Action::Update => ty.validate(&req.parameters).map_err(OrderError::Invalid)?,
        };
        // Held until the order is stored: concurrent orders of the organisation (in any replica) see each other.
        let quota = match req.action {
            Action::Delete => None,
            Action::Create | Action::Update => {
                self.check_quota(&req.tenant, &ty.kind, req.name.as_str(), &spec).await?
            }
        };
        let request_hash = req.idempotency_key.as_ref().map(|_| request_hash(ty, &req));
        // The tenant's own policy for this kind and action, else the catalog's.
        let own = self.store.merge_policy(&req.tenant.id, &ty.kind, req.action.as_str()).await?;
        let (merge_policy, reviewers, required_approvals) = match own {
            Some(p) => (p.policy, p.reviewers, p.required_approvals),
            None => (ty.merge_policy(req.action).as_str().to_string(), Vec::new(), 1),
        };
        let new = NewOrder {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: req.tenant.id.clone(),
            action: req.action.as_str().to_string(),
            kind: ty.kind.clone(),
            name: req.name.as_str().to_string(),
            parameters: spec.to_string(),
            requester: req.requester,
            idempotency_key: req.idempotency_key,
            request_hash,
            path: ty.path_for(&req.name),
            merge_policy,
            reviewers,
            required_approvals,
        };
        let placed = self.accept(&req.tenant, new).await;
        if let Some(lock) = quota {
            lock.shared.release().await;
        }
        placed
    }

    /// Store a new order, announce it (and the order it supersedes) and wake the tenant's lane.
    pub(crate) async fn accept(&self, tenant: &Tenant, new: NewOrder) -> Result<Placed, OrderError> {
        let (order, created, superseded) = match self.store.accept_order(new).await? {
            Accepted::Created(o) => (o, true, None),
            Accepted::Superseding { order, superseded } => (order, true, Some(superseded)),
            Accepted::Replayed(o) => (o, false, None),
        };
        if created {
            self.events.publish(crate::Announcement::Order(OrderUpdate::new(&order, &order.state)));
            if let Some(old) = superseded {
                self.withdraw_superseded(tenant, &order, &old).await;
            }
            self.worker.notify(&order.tenant_id);
        }
        Ok(Placed { order, created })
    }

    /// `old` was superseded by `newer`: announced, and its pull request closed (on the forge with a comment naming
    /// the newer order; locally its branch deleted). Best effort: the store already says superseded.
    async fn withdraw_superseded(&self, tenant: &Tenant, newer: &OrderRow, old: &OrderRow) {
        self.events.publish(crate::Announcement::Order(OrderUpdate::new(old, "superseded")));
        let why = format!(
            "Superseded by order `{}` ({} {} `{}`): closed by max-cloud.",
            newer.id, newer.action, newer.kind, newer.name
        );
        self.withdraw(tenant, old, &why).await;
    }

    /// Close an order's pull request that the store already closed (rejected, superseded).
    async fn withdraw(&self, tenant: &Tenant, order: &OrderRow, why: &str) {
        let result = match self.store.pull_request_for(&order.id).await {
            Ok(Some(row)) if row.url.is_some() && self.worker.has_forge() => {
                self.worker.close_on_forge(tenant, &row, why).await.map_err(|e| e.to_string())
            }
            Ok(_) => self.worker.delete_branch(tenant, &order.id).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            // The store is the truth: a leftover open pull request or branch harms nothing.
            tracing::warn!(order = %order.id, error = %e, "cannot close the withdrawn order's pull request");
        }
    }

    /// Approve a review-required order; the worker merges it. On a Git hosting provider orders are approved by
    /// reviewing their pull request there.
    pub async fn approve(&self, tenant: &Tenant, order_id: &str, approver: &str) -> Result<OrderRow, OrderError> {
        if self.worker.has_forge() {
            let pr = self.store.pull_request_for(order_id).await?;
            let order = self.store.order(&tenant.id, order_id).await?.ok_or(OrderError::NotFound("order"))?;
            let place = match pr.and_then(|p| p.url) {
                Some(url) => format!("approve its pull request: {url}"),
                None => "approve its pull request once it is open".to_string(),
            };
            return Err(OrderError::InvalidState(format!(
                "order {} is reviewed on the Git provider: {place}",
                order.id
            )));
        }
        let order = self.store.approve_order(&tenant.id, order_id, approver).await?;
        self.worker.notify(&tenant.id);
        Ok(order)
    }

    /// Reject a review-required order: its PR is closed and its branch deleted; nothing is merged.
    pub async fn reject(&self, tenant: &Tenant, order_id: &str, reason: &str) -> Result<OrderRow, OrderError> {
        let order = self.store.reject_order(&tenant.id, order_id, reason).await?;
        self.events.publish(crate::Announcement::Order(OrderUpdate::new(&order, &order.state)));
        self.withdraw(tenant, &order, &format!("Rejected through max-cloud: {reason}")).await;
        Ok(order)
    }

    /// Create the tenant's Git repository and commit its directory (namespace, RBAC, Flux sync, Receiver) to
    /// the platform repository (idempotent).
    pub async fn init_tenant_repo(&self, tenant: &Tenant) -> Result<(), OrderError> {
        self.worker.init_repo(tenant).await.map_err(|e| OrderError::Internal(e.to_string()))
    }

    /// Create the platform repository if missing and onboard every stored tenant that is not in it yet
    /// (start-up; idempotent). Returns how many tenants were committed.
    pub async fn sync_platform(&self) -> Result<usize, OrderError> {
        let tenants = self.store.tenants().await?;
        self.worker.sync_platform(tenants).await.map_err(|e| OrderError::Internal(e.to_string()))
    }

    /// Announce an order's state change observed elsewhere (the status aggregator) on the live event bus.
    pub fn publish(&self, update: OrderUpdate) {
        self.events.publish(crate::Announcement::Order(update));
    }

    /// Announce that a service event of the tenant was logged (the status aggregator).
    pub fn announce_service(&self, tenant_id: &str) {
        self.events.publish(crate::Announcement::Service { tenant_id: tenant_id.to_string() });
    }

    /// Reports what the cluster made of an order back to Git: a commit status on its merge commit (context
    /// `maxcloud/<Kind>/<name>`): `success` with the URL when `ready`, `failure` with the reason when `failed`,
    /// `pending` otherwise. Orders without a merge commit (not merged yet, rejected) have nothing to report on.
    pub async fn report_outcome(
        &self,
        order_id: &str,
        state: &str,
        url: Option<&str>,
        message: Option<&str>,
    ) -> Result<(), OrderError> {
        let Some(pr) = self.store.pull_request_for(order_id).await? else { return Ok(()) };
        let Some(commit) = pr.merge_commit.clone() else { return Ok(()) };
        let tenant = self.store.tenant_by_id(&pr.tenant_id).await?.ok_or(OrderError::NotFound("tenant"))?;
        let order = self.store.order(&tenant.id, order_id).await?.ok_or(OrderError::NotFound("order"))?;
        let (commit_state, description) = match state {
            "ready" if order.action == "delete" => (maxcloud_gitops::CommitState::Success, "deleted".to_string()),
            "ready" => (maxcloud_gitops::CommitState::Success, url.map_or("ready".into(), |u| format!("ready at {u}"))),
            "failed" => (maxcloud_gitops::CommitState::Failure, message.unwrap_or("failed").to_string()),
            other => {
                (maxcloud_gitops::CommitState::Pending, message.map_or(other.to_string(), |m| format!("{other}: {m}")))
            }
        };
        let status = maxcloud_gitops::CommitStatus::new(
            format!("maxcloud/{}/{}", order.kind, order.name),
            commit_state,
            &description,
            url.map(str::to_string),
            order.id.clone(),
        );
        if self.worker.has_forge() && pr.url.is_some() {
            let comment = match commit_state {
                maxcloud_gitops::CommitState::Success | maxcloud_gitops::CommitState::Failure => {
                    Some(outcome_comment(&order, state, url, message))
                }
                _ => None,
            };
            return self
                .worker
                .report_on_forge(&tenant, &pr, &commit, &status, comment.as_deref())
                .await
                .map_err(|e| OrderError::Internal(format!("cannot report to the Git provider: {e}")));
        }
        self.worker
            .set_commit_status(&tenant.slug, &commit, status)
            .await
            .map_err(|e| OrderError::Internal(format!("cannot set the commit status: {e}")))
    }

    /// Wait until the worker has nothing left to do (tests and benches).
    pub async fn idle(&self) {
        self.worker.idle().await
    }
}

/// The comment on an order's pull request once the cluster has carried it out (or failed to).
fn outcome_comment(order: &OrderRow, state: &str, url: Option<&str>, message: Option<&str>) -> String {
    let what = format!("{} `{}`", order.kind, order.name);
    match (state, order.action.as_str()) {
        ("ready", "delete") => format!("✅ {what} was deleted from the cluster."),
        ("ready", _) => match url {
            Some(url) => format!("✅ {what} is ready at {url}"),
            None => format!("✅ {what} is ready."),
        },
        _ => format!("❌ {what} failed: {}", message.unwrap_or("no reason given")),
    }
}

/// Fingerprint of an order request, to tell an idempotent replay from a different request that reuses
/// the same key.
fn request_hash(ty: &ServiceType, req: &PlaceOrder) -> String {
    let mut h = Sha256::new();
    h.update(req.action.as_str());
    h.update([0]);
    h.update(&ty.kind);
    h.update([0]);
    h.update(req.name.as_str());
    h.update([0]);
    if req.action != Action::Delete {
        // serde_json's map is ordered, so equal documents serialise equally.
        h.update(req.parameters.to_string());
    }
    hex::encode(h.finalize())
}
