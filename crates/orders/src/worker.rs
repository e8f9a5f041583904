//! The outbox worker: one lane per tenant, each driving that tenant's stored orders forward in order.
//!
//! Lanes are tokio tasks that exist only while their tenant has work; `notify` starts one or marks the
//! running one dirty so it looks again before it ends. Git work (git2, blocking) runs in
//! `spawn_blocking`. Every step is idempotent against what the repo and the store already hold:
//! - the commit lives on `order/<id>`; an existing branch with the order's trailer is reused;
//! - the PR row is unique per order; recording it again returns the existing one;
//! - merging a branch main already contains is a no-op (`AlreadyMerged`).
//!
//! So after a crash between any two steps, the next pass redoes nothing twice.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maxcloud_catalog::{Catalog, ResourceName, TenantSlug};
use maxcloud_gitops::{self as gitops, Change, GitError, OrderText, Repos, Signature};
use maxcloud_store::{NewPullRequest, OrderRow, Outcome, Store, Tenant};
use tokio::sync::Notify;

use crate::failpoint;
use crate::service::OrderUpdate;

/// Why a lane stopped; its orders stay pending and the sweep retries them.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaneError {
    #[error(transparent)]
    Store(#[from] maxcloud_store::StoreError),
    #[error("git: {0}")]
    Git(String),
    #[error("{0}")]
    Forge(maxcloud_forge::ForgeError),
}

/// How the worker runs.
#[derive(Clone)]
pub struct WorkerConfig {
    /// Drive orders at all (`false`: accept-only API node; another process runs the worker).
    pub run_worker: bool,
    /// Orders fetched per pass of a lane.
    pub batch: i64,
    /// How often to sweep the store for orders no notification announced (e.g. after a restart).
    pub sweep_interval: Duration,
    /// Committer of the order service's commits.
    pub committer: Signature,
    /// URL the tenant repositories are served under, as the cluster's Flux reaches them (`<base>/<slug>.git`);
    /// written into each tenant's `GitRepository` in the platform repository.
    pub tenant_git_base_url: String,
    /// The Flux Receivers to poke after a merge (none: Flux syncs at its interval).
    pub flux_receiver: Option<crate::FluxReceiver>,
    /// The order service's ServiceAccount, when it creates the tenants' Flux Secrets itself: each tenant
    /// directory then grants it access to exactly those.
    pub order_service: Option<gitops::ServiceAccountRef>,
    /// The Git hosting provider the tenant repositories live on (`None`: the embedded local provider).
    pub forge: Option<crate::ForgeSettings>,
    /// The monthly price of a footprint, for pull request bodies (`None`: no estimate shown).
    pub price_estimate: Option<PriceEstimate>,
}

/// Prices a resource's footprint for a month: one line of text.
pub type PriceEstimate = Arc<dyn Fn(&maxcloud_catalog::Footprint) -> String + Send + Sync>;

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            run_worker: true,
            batch: 64,
            sweep_interval: Duration::from_secs(30),
            committer: Signature { name: "max-cloud".into(), email: "orders@maxcloud.dev".into() },
            tenant_git_base_url: "http://127.0.0.1:8080/git".into(),
            flux_receiver: None,
            order_service: None,
            forge: None,
            price_estimate: None,
        }
    }
}

#[derive(Default)]
struct Lanes {
    /// tenant id -> dirty flag of its running lane.
    running: HashMap<String, bool>,
}

pub(crate) struct Inner {
    pub(crate) store: Store,
    catalog: Arc<Catalog>,
    pub(crate) repos: Arc<Repos>,
    events: std::sync::Arc<crate::EventBus>,
    pub(crate) config: WorkerConfig,
    lanes: Mutex<Lanes>,
    idle: Notify,
    /// Tenants whose repository is being packed in the background.
    gc_running: Mutex<std::collections::HashSet<String>>,
    /// Clone URLs of forge repositories known to be set up (slug → URL).
    pub(crate) forge_repos: Mutex<HashMap<String, String>>,
}

#[derive(Clone)]
pub(crate) struct Worker {
    pub(crate) inner: Arc<Inner>,
}

impl Worker {
    pub(crate) fn start(
        store: Store,
        catalog: Arc<Catalog>,
        repos: Arc<Repos>,
        events: std::sync::Arc<crate::EventBus>,
        config: WorkerConfig,
    ) -> Worker {
        let worker = Worker {
            inner: Arc::new(Inner {
                store,
                catalog,
                repos,
                events,
                config,
                lanes: Mutex::new(Lanes::default()),
                idle: Notify::new(),
                gc_running: Mutex::default(),
                forge_repos: Mutex::default(),
            }),
        };
        if worker.inner.config.run_worker {
            let sweeper = worker.clone();
            tokio::spawn(async move { sweeper.sweep_forever().await });
            if worker.inner.config.forge.is_some() {
                let poller = worker.clone();
                tokio::spawn(async move { poller.poll_forever().await });
            }
        }
        worker
    }

    /// Whether orders go to a Git hosting provider.
    pub(crate) fn has_forge(&self) -> bool {
        self.inner.config.forge.is_some()
    }

    pub(crate) fn forge_settings(&self) -> Option<&crate::ForgeSettings> {
        self.inner.config.forge.as_ref()
    }

    /// Wake the lane of `tenant_id`.
    pub(crate) fn notify(&self, tenant_id: &str) {
        if !self.inner.config.run_worker {
            return;
        }
        let mut lanes = self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(dirty) = lanes.running.get_mut(tenant_id) {
            *dirty = true;
            return;
        }
        lanes.running.insert(tenant_id.to_string(), false);
        drop(lanes);
        let worker = self.clone();
        let tenant_id = tenant_id.to_string();
        tokio::spawn(async move { worker.run_lane(tenant_id).await });
    }

    /// Resolves once no lane is running.
    pub(crate) async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            if self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner()).running.is_empty() {
                return;
            }
            notified.await;
        }
    }

    pub(crate) async fn init_repo(&self, tenant: &Tenant) -> Result<(), GitError> {
        let repos = self.inner.repos.clone();
        let committer = self.inner.config.committer.clone();
        let platform = self.platform_settings();
        let tenant = tenant.clone();
        run_blocking(move || {
            init_repo(&repos, &tenant, &committer)?;
            add_to_platform(&repos, &tenant, &platform, &committer).map(|_| ())
        })
        .await
    }

    /// Create the platform repository if missing, then make sure every tenant has its directory there (a
    /// no-op for tenants already onboarded: resumes a registration that crashed before its platform commit).
    pub(crate) async fn sync_platform(&self, tenants: Vec<Tenant>) -> Result<usize, GitError> {
        let repos = self.inner.repos.clone();
        let committer = self.inner.config.committer.clone();
        let platform = self.platform_settings();
        run_blocking(move || {
            repos.init_platform(&committer)?;
            let mut committed = 0;
            for tenant in &tenants {
                if matches!(
                    add_to_platform(&repos, tenant, &platform, &committer)?,
                    gitops::PlatformCommit::Committed { .. }
                ) {
                    committed += 1;
                }
            }
            Ok(committed)
        })
        .await
    }

    /// What every tenant's platform directory is rendered with: (Git base URL, the order service's account).
    fn platform_settings(&self) -> (String, Option<gitops::ServiceAccountRef>) {
        (self.inner.config.tenant_git_base_url.clone(), self.inner.config.order_service.clone())
    }

    pub(crate) async fn delete_branch(&self, tenant: &Tenant, order_id: &str) -> Result<(), GitError> {
        let repos = self.inner.repos.clone();
        let slug = tenant.slug.clone();
        let branch = gitops::branch_for(order_id);
        run_blocking(move || repos.delete_branch(&slug, &branch)).await
    }

    /// Sets a commit status on the tenant's `commit` (the local provider keeps it as a Git note).
    pub(crate) async fn set_commit_status(
        &self,
        slug: &str,
        commit: &str,
        status: gitops::CommitStatus,
    ) -> Result<(), GitError> {
        let (repos, committer) = (self.inner.repos.clone(), self.inner.config.committer.clone());
        let (slug, commit) = (slug.to_string(), commit.to_string());
        run_blocking(move || repos.set_commit_status(&slug, &commit, &status, &committer)).await
    }

    /// The polling fallback: every open pull request on the forge is looked at, for the webhook deliveries that
    /// were never configured or got lost.
    async fn poll_forever(&self) {
        let Some(interval) = self.inner.config.forge.as_ref().map(|f| f.poll_interval) else { return };
        loop {
            tokio::time::sleep(interval).await;
            let open = match self.inner.store.open_forge_pull_requests(1_000).await {
                Ok(open) => open,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list open pull requests");
                    continue;
                }
            };
            for (order, row) in open {
                let tenant = match self.inner.store.tenant_by_id(&order.tenant_id).await {
                    Ok(Some(t)) => t,
                    _ => continue,
                };
                if let Err(e) = self.sync_pull_request(&tenant, &order, &row).await {
                    tracing::warn!(order = %order.id, error = %e, "cannot look at the pull request");
                }
            }
        }
    }

    async fn sweep_forever(&self) {
        loop {
            match self.inner.store.tenants_with_pending_orders().await {
                Ok(tenants) => tenants.iter().for_each(|t| self.notify(t)),
                Err(e) => tracing::warn!(error = %e, "sweep for pending orders failed"),
            }
            tokio::time::sleep(self.inner.config.sweep_interval).await;
        }
    }

    async fn run_lane(&self, tenant_id: String) {
        // On success the lane has already removed itself (under the lock, after seeing no work);
        // removing it here again could remove a newer lane of the same tenant.
        if let Err(e) = self.lane_passes(&tenant_id).await {
            // The store or the repo is unavailable: leave the orders where they are; the sweep
            // retries later.
            tracing::error!(tenant = %tenant_id, error = %e, "order lane stopped");
            let mut lanes = self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner());
            lanes.running.remove(&tenant_id);
            if lanes.running.is_empty() {
                self.inner.idle.notify_waiters();
            }
        }
    }

    /// Drive the tenant's pending orders, batch after batch, pipelined: while batch N is being
    /// recorded in the store, the Git work of batch N+1 (which builds on N's commits) already runs.
    /// Records still happen strictly in batch order.
    async fn lane_passes(&self, tenant_id: &str) -> Result<(), LaneError> {
        let Some(tenant) = self.inner.store.tenant_by_id(tenant_id).await? else {
            return Err(LaneError::Git(format!("tenant {tenant_id} does not exist")));
        };
        let batch = self.inner.config.batch;
        let mut inflight: Option<(RecordTask, HashSet<String>)> = None;
        loop {
            self.set_dirty(tenant_id, false);
            let skip = inflight.as_ref().map(|(_, ids)| ids.len() as i64).unwrap_or(0);
            let mut orders = self.inner.store.pending_orders(tenant_id, batch + skip).await?;
            if let Some((_, ids)) = &inflight {
                orders.retain(|o| !ids.contains(&o.id));
            }
            orders.truncate(batch as usize);
            if orders.is_empty() {
                if let Some((record, _)) = inflight.take() {
                    join_record(record).await?;
                    continue;
                }
                let mut lanes = self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner());
                if lanes.running.get(tenant_id).copied().unwrap_or(false) {
                    continue;
                }
                // Not dirty: end the lane while still holding the lock, so no notification is lost.
                lanes.running.remove(tenant_id);
                if lanes.running.is_empty() {
                    self.inner.idle.notify_waiters();
                }
                return Ok(());
            }
            if self.inner.config.forge.is_some() {
                // On a forge, orders go one by one (each is a pushed branch and a pull request).
                self.forge_pass(&tenant, orders).await?;
                continue;
            }
            let drained = (orders.len() as i64) < batch;
            let ids: HashSet<String> = orders.iter().map(|o| o.id.clone()).collect();
            let applied = self.git_batch(&tenant, orders).await;
            if let Some((record, _)) = inflight.take() {
                join_record(record).await?;
            }
            let applied = applied?;
            let worker = self.clone();
            let t = tenant.clone();
            inflight = Some((tokio::spawn(async move { worker.record_batch(&t, applied).await }), ids));
            self.maybe_gc(&tenant, drained).await;
        }
    }

    /// Repack the tenant repo when packs or loose objects pile up: each batch of orders writes one
    /// packfile (see `Repos::apply_batch`), approvals and `commit_order` write loose objects. `git gc`
    /// runs in the background, at most one per tenant, next to the lane (it is safe beside writers:
    /// see `Repos::gc`), so orders never wait for it; preferably when the lane has drained, at the
    /// latest at a hard limit.
    async fn maybe_gc(&self, tenant: &Tenant, drained: bool) {
        // Batch packs are small (trees delta-compressed within a batch) and libgit2 looks objects up
        // in the most recently used pack first, so a few hundred packs cost little; packing less
        // often keeps the housekeeping out of the way of orders.
        const PACKS_WHEN_IDLE: usize = 256;
        const PACKS_HARD_LIMIT: usize = 1024;
        const LOOSE_WHEN_IDLE: usize = 2_000;
        let repos = self.inner.repos.clone();
        let slug = tenant.slug.clone();
        let counts = run_blocking(move || Ok((repos.pack_count(&slug)?, repos.loose_objects_estimate(&slug)?))).await;
        let (packs, loose) = match counts {
            Ok(c) => c,
            Err(e) => return tracing::warn!(tenant = %tenant.slug, error = %e, "cannot inspect tenant repo"),
        };
        let due = packs > PACKS_HARD_LIMIT || (drained && (packs > PACKS_WHEN_IDLE || loose > LOOSE_WHEN_IDLE));
        if !due || !self.inner.gc_running.lock().unwrap_or_else(|p| p.into_inner()).insert(tenant.slug.clone()) {
            return;
        }
        let worker = self.clone();
        let slug = tenant.slug.clone();
        tokio::spawn(async move {
            let repos = worker.inner.repos.clone();
            let s = slug.clone();
            let start = std::time::Instant::now();
            match run_blocking(move || repos.gc(&s)).await {
                Ok(()) => {
                    tracing::info!(tenant = %slug, packs, loose, took_ms = start.elapsed().as_millis() as u64, "packed tenant repo")
                }
                Err(e) => tracing::warn!(tenant = %slug, error = %e, "git gc failed"),
            }
            worker.inner.gc_running.lock().unwrap_or_else(|p| p.into_inner()).remove(&slug);
        });
    }

    fn set_dirty(&self, tenant_id: &str, dirty: bool) {
        if let Some(d) = self.inner.lanes.lock().unwrap_or_else(|p| p.into_inner()).running.get_mut(tenant_id) {
            *d = dirty;
        }
    }

    /// The Git work of a batch of orders in one blocking call (`Repos::apply_batch`: one packfile,
    /// `main` moved once), turned into outcomes for [`Worker::record_batch`]. A failing order (e.g. a
    /// change that changes nothing) fails alone; a failure of the batch as a whole stops the lane and
    /// leaves the orders pending for the next pass (the sweep retries). Every step is idempotent
    /// against what the repo holds, so redoing a batch whose record was lost is safe.
    async fn git_batch(&self, tenant: &Tenant, orders: Vec<OrderRow>) -> Result<AppliedBatch, LaneError> {
        let mut outcomes = Vec::with_capacity(orders.len());
        let mut published = Vec::with_capacity(orders.len());
        let mut jobs = Vec::with_capacity(orders.len());
        for order in orders {
            match self.prepare(tenant, &order, None) {
                Ok(texts) => jobs.push((order, texts)),
                Err(error) => {
                    published.push((order.clone(), "failed"));
                    outcomes.push(Outcome::Failed { order, state: "failed".into(), error });
                }
            }
        }
        let repos = self.inner.repos.clone();
        let committer = self.inner.config.committer.clone();
        let tenant_owned = tenant.clone();
        let t0 = std::time::Instant::now();
        let (jobs, applied) = run_blocking(move || {
            init_repo(&repos, &tenant_owned, &committer)?;
            failpoint::hit("before_git");
            let authors: Vec<Signature> =
                jobs.iter().map(|(_, t)| Signature { name: t.requester.clone(), email: t.requester.clone() }).collect();
            let items: Vec<gitops::BatchItem> = jobs
                .iter()
                .zip(&authors)
                .map(|((order, t), author)| gitops::BatchItem {
                    change: Change {
                        order_id: &t.order_id,
                        path: &t.path,
                        content: t.content.as_deref(),
                        message: &t.message,
                        author,
                    },
                    merge: order.merge_policy == "auto" || order.approved,
                })
                .collect();
            let applied = repos.apply_batch(&tenant_owned.slug, &items)?;
            drop(items);
            failpoint::hit("after_git");
            Ok((jobs, applied))
        })
        .await
        .map_err(|e| LaneError::Git(e.to_string()))?;
        let git_us = t0.elapsed().as_micros() as u64;
        for ((order, texts), result) in jobs.into_iter().zip(applied) {
            let applied = match result {
                Ok(a) => a,
                Err(e) => {
                    let error = match e {
                        GitError::NoChange(_) => e.to_string(),
                        other => format!("git: {other}"),
                    };
                    tracing::warn!(order = %order.id, %error, "order failed");
                    published.push((order.clone(), "failed"));
                    outcomes.push(Outcome::Failed { order, state: "failed".into(), error });
                    continue;
                }
            };
            let pr = NewPullRequest {
                branch: applied.committed.branch.clone(),
                head_commit: applied.committed.commit.clone(),
                title: texts.pr_title,
                body: texts.pr_body,
                ..Default::default()
            };
            match applied.merged {
                None => {
                    published.push((order.clone(), "pr_open"));
                    outcomes.push(Outcome::Opened { order, pr });
                }
                Some(merged) => {
                    let message = match &merged {
                        gitops::MergeOutcome::FastForward { .. } => None,
                        gitops::MergeOutcome::Regenerated { .. } => {
                            Some("main had moved: the change was regenerated on the new main".to_string())
                        }
                        gitops::MergeOutcome::AlreadyMerged { .. } => Some("already on main (resumed)".to_string()),
                    };
                    let pr = NewPullRequest { head_commit: merged.commit().to_string(), ..pr };
                    published.push((order.clone(), "merged"));
                    outcomes.push(Outcome::Merged { order, pr, merge_commit: merged.commit().to_string(), message });
                }
            }
        }
        Ok(AppliedBatch { outcomes, published, git_us, t0 })
    }

    /// Record a batch's outcomes in one store transaction, publish them, and delete the branches of
    /// merged review PRs.
    pub(crate) async fn record_batch(&self, tenant: &Tenant, batch: AppliedBatch) -> Result<(), LaneError> {
        let AppliedBatch { outcomes, published, git_us, t0 } = batch;
        let last_merge = outcomes.iter().rev().find_map(|o| match o {
            Outcome::Merged { merge_commit, .. } => Some(merge_commit.clone()),
            _ => None,
        });
        self.inner.store.record_outcomes(outcomes).await?;
        // Flux fetches at once instead of at its interval (best effort, off the lane).
        if let (Some(receiver), Some(commit)) = (self.inner.config.flux_receiver.clone(), last_merge) {
            let slug = tenant.slug.clone();
            tokio::spawn(async move {
                if let Err(e) = receiver.notify(&slug, &commit).await {
                    tracing::warn!(tenant = %slug, error = %e, "cannot notify the Flux receiver");
                }
            });
        }
        failpoint::hit("after_record");
        tracing::debug!(
            tenant = %tenant.slug, orders = published.len(), git_us,
            store_us = (t0.elapsed().as_micros() as u64).saturating_sub(git_us), "order batch recorded"
        );
        for (order, state) in &published {
            self.publish(order, state);
        }
        // Branches of approved review PRs are deleted once merged, as a forge does after a merge
        // (auto-merged orders never get one). A crash before this only leaves a stale branch.
        let merged: Vec<String> = published
            .iter()
            .filter(|(o, s)| *s == "merged" && o.merge_policy == "review")
            .map(|(o, _)| gitops::branch_for(&o.id))
            .collect();
        if !merged.is_empty() {
            let repos = self.inner.repos.clone();
            let slug = tenant.slug.clone();
            let deleted = run_blocking(move || merged.iter().try_for_each(|b| repos.delete_branch(&slug, b))).await;
            if let Err(e) = deleted {
                tracing::warn!(tenant = %tenant.slug, error = %e, "cannot delete merged branches");
            }
        }
        Ok(())
    }

    /// Render everything the Git steps of an order need. `old`: the resource file on main (`Some(None)`: it does not
    /// exist), when known, for the diff in the pull request body.
    pub(crate) fn prepare(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        old: Option<Option<&[u8]>>,
    ) -> Result<OrderTexts, String> {
        let (content, parameters, estimate) = if order.action == "delete" {
            (None, None, None)
        } else if order.kind == crate::SECRET_KIND {
            // Encrypted when the order was placed; the texts show the key names only.
            let stored: serde_json::Value = serde_json::from_str(&order.parameters).map_err(|e| e.to_string())?;
            let file = stored["file"].as_str().ok_or("secret order without its file")?;
            let keys =
                maxcloud_catalog::to_yaml(&serde_json::json!({"keys": stored["keys"]})).map_err(|e| e.to_string())?;
            (Some(file.as_bytes().to_vec()), Some(keys), None)
        } else {
            let ty =
                self.inner.catalog.get(&order.kind).ok_or_else(|| format!("kind {} left the catalog", order.kind))?;
            let slug = TenantSlug::parse(&tenant.slug).map_err(|e| e.to_string())?;
            let name = ResourceName::parse(&order.name).map_err(|e| e.to_string())?;
            let spec: serde_json::Value = serde_json::from_str(&order.parameters).map_err(|e| e.to_string())?;
            let object = ty.build_resource(&slug, &name, &order.id, &spec);
            let content = maxcloud_catalog::to_yaml(&object).map_err(|e| e.to_string())?.into_bytes();
            let parameters = maxcloud_catalog::to_yaml(&spec).map_err(|e| e.to_string())?;
            let estimate =
                self.inner.config.price_estimate.as_ref().and_then(|price| ty.footprint(&spec).map(|f| price(&f)));
            (Some(content), Some(parameters), estimate)
        };
        let diff = old.map(|old| {
            let old = old.map(String::from_utf8_lossy);
            let new = content.as_deref().map(String::from_utf8_lossy);
            gitops::unified_diff(&order.path, old.as_deref(), new.as_deref())
        });
        let text = OrderText {
            order_id: order.id.clone(),
            action: order.action.clone(),
            kind: order.kind.clone(),
            name: order.name.clone(),
            path: order.path.clone(),
            requester: order.requester.clone(),
            tenant: tenant.slug.clone(),
            parameters,
            diff,
            estimate,
        };
        Ok(OrderTexts {
            order_id: order.id.clone(),
            path: order.path.clone(),
            content,
            message: gitops::render_commit_message(&text).map_err(|e| e.to_string())?,
            pr_title: gitops::render_pr_title(&text).map_err(|e| e.to_string())?,
            pr_body: gitops::render_pr_body(&text).map_err(|e| e.to_string())?,
            requester: order.requester.clone(),
        })
    }

    pub(crate) fn publish(&self, order: &OrderRow, state: &str) {
        self.inner.events.publish(crate::Announcement::Order(OrderUpdate::new(order, state)));
    }
}

/// A batch whose Git work is done, waiting to be recorded.
pub(crate) struct AppliedBatch {
    outcomes: Vec<Outcome>,
    published: Vec<(OrderRow, &'static str)>,
    git_us: u64,
    t0: std::time::Instant,
}

impl AppliedBatch {
    /// Outcomes reached one by one (the forge lane).
    pub(crate) fn of(outcomes: Vec<Outcome>, published: Vec<(OrderRow, &'static str)>) -> AppliedBatch {
        AppliedBatch { outcomes, published, git_us: 0, t0: std::time::Instant::now() }
    }
}

/// A batch being recorded in the background.
type RecordTask = tokio::task::JoinHandle<Result<(), LaneError>>;

/// Wait for a spawned record step; a panic in it stops the lane like a store error.
async fn join_record(handle: RecordTask) -> Result<(), LaneError> {
    handle.await.map_err(|e| LaneError::Git(format!("record task failed: {e}")))?
}

/// Everything the Git steps of one order need, rendered up front.
#[derive(Debug, Clone)]
pub(crate) struct OrderTexts {
    pub(crate) order_id: String,
    pub(crate) path: String,
    pub(crate) content: Option<Vec<u8>>,
    pub(crate) message: String,
    pub(crate) pr_title: String,
    pub(crate) pr_body: String,
    pub(crate) requester: String,
}

/// Render the tenant's platform directory and commit it (idempotent).
fn add_to_platform(
    repos: &Repos,
    tenant: &Tenant,
    (git_base_url, order_service): &(String, Option<gitops::ServiceAccountRef>),
    committer: &Signature,
) -> Result<gitops::PlatformCommit, GitError> {
    repos.init_platform(committer)?;
    let mut ctx = gitops::TenantContext::new(&tenant.slug, &tenant.name, git_base_url);
    ctx.order_service = order_service.clone();
    let files = gitops::render_tenant(&ctx)?;
    repos.add_tenant_to_platform(&ctx, &files, committer)
}

fn init_repo(repos: &Repos, tenant: &Tenant, committer: &Signature) -> Result<(), GitError> {
    if tenant.slug == gitops::PLATFORM_REPO {
        return Err(GitError::InvalidInput(format!("tenant slug {:?} is reserved", tenant.slug)));
    }
    if repos.exists(&tenant.slug) {
        return Ok(());
    }
    let readme = gitops::render_readme(&gitops::ReadmeContext {
        tenant_name: tenant.name.clone(),
        slug: tenant.slug.clone(),
        namespace: format!("mc-{}", tenant.slug),
        clone_url_path: format!("/git/{}.git", tenant.slug),
    })?;
    repos.init_tenant(&tenant.slug, &readme, committer)?;
    Ok(())
}

pub(crate) async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, GitError> + Send + 'static,
) -> Result<T, GitError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) => Err(GitError::Io(std::io::Error::other(format!("git task panicked: {e}")))),
    }
}
