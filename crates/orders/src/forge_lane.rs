//! Orders on a Git hosting provider (GitHub, Gitea): the order's commit is built in the local mirror of the tenant
//! repository, its branch pushed to the forge, and the pull request opened, labelled and merged there.
//!
//! Every step is idempotent by order id, also across restarts: the branch is `order/<id>`; before opening a pull
//! request the forge is asked for one with that head (so a crash between opening and recording it never yields a
//! second); a branch the forge holds with the order's own older commit is replaced, one with someone else's commit
//! is never overwritten.
//!
//! The pull request's fate is read from the forge — on a webhook delivery, by the polling fallback, and before
//! every merge — never from a payload: merged (by the order service or a human) → `merged`; closed unmerged →
//! `rejected`; a head that is not the order's commit (a human pushed or force-pushed) → `failed` with the reason,
//! the pull request left as it is. Reviews: an order whose policy needs review is approved once the forge shows
//! enough approvals (by others than the order service, including every required reviewer) and nobody's request
//! for changes; the lane then merges it.

use std::sync::Arc;
use std::time::Duration;

use maxcloud_forge::{Forge, ForgeError, Label, Merge, NewPullRequest as ForgePr, PrState, PullRequest, Status};
use maxcloud_gitops::{self as gitops, Change, GitError, RemoteAuth, Signature};
use maxcloud_store::{NewPullRequest, OrderRow, Outcome, PullRequestRow, ReviewUpdate, Tenant};

use crate::worker::{run_blocking, AppliedBatch, LaneError, OrderTexts, Worker};

/// How the order service works with a forge.
#[derive(Clone)]
pub struct ForgeSettings {
    pub forge: Arc<dyn Forge>,
    /// Shared secret of the forge's webhook (`None`: webhooks are refused; polling only).
    pub webhook_secret: Option<String>,
    /// How often open pull requests are looked at without a webhook (the fallback).
    pub poll_interval: Duration,
}

impl std::fmt::Debug for ForgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeSettings")
            .field("kind", &self.forge.kind())
            .field("owner", &self.forge.owner())
            .field("webhooks", &self.webhook_secret.is_some())
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

/// What became of an order after a look at its pull request.
enum Next {
    /// Nothing more to do now.
    Done,
    /// Merge it.
    Merge(Box<PullRequest>),
}

impl From<ForgeError> for LaneError {
    fn from(e: ForgeError) -> Self {
        LaneError::Forge(e)
    }
}

impl Worker {
    fn settings(&self) -> &ForgeSettings {
        self.inner.config.forge.as_ref().expect("the forge lane runs only with a forge configured")
    }

    /// The tenant's repository on the forge, created (with the README on `main`, and `main` protected) when
    /// missing, and the local mirror fetched. Returns its clone URL and the Git credentials.
    async fn forge_repo(&self, tenant: &Tenant) -> Result<(String, RemoteAuth), LaneError> {
        let forge = self.settings().forge.clone();
        let auth = forge.git_auth().await?;
        let auth = RemoteAuth { username: auth.username, password: auth.password };
        // A repository seen set up before needs only a fetch (forgotten again after any error of the lane).
        let known = self.inner.forge_repos.lock().unwrap_or_else(|p| p.into_inner()).get(&tenant.slug).cloned();
        if let Some(url) = known {
            let (repos, slug, u, a) = (self.inner.repos.clone(), tenant.slug.clone(), url.clone(), auth.clone());
            // A failing fetch goes the long way, where the forge's API says what is wrong.
            if let Ok(Some(_)) = run_blocking(move || repos.fetch_remote(&slug, &u, &a)).await {
                return Ok((url, auth));
            }
            self.forget_repo(tenant);
        }
        let name = tenant.slug.as_str();
        let repo = match forge.repo(name).await? {
            Some(repo) => repo,
            None => forge.create_repo(name, &format!("max-cloud GitOps repository of {}", tenant.name)).await?,
        };
        let (repos, slug, url, a) =
            (self.inner.repos.clone(), tenant.slug.clone(), repo.clone_url.clone(), auth.clone());
        let main = run_blocking(move || repos.fetch_remote(&slug, &url, &a)).await.map_err(git)?;
        if main.is_none() || repo.empty {
            // A new repository: its first commit is the README, then main is protected.
            let readme = gitops::render_readme(&gitops::ReadmeContext {
                tenant_name: tenant.name.clone(),
                slug: tenant.slug.clone(),
                namespace: format!("mc-{}", tenant.slug),
                clone_url_path: repo.clone_url.clone(),
            })
            .map_err(git)?;
            let (repos, slug, url, a) =
                (self.inner.repos.clone(), tenant.slug.clone(), repo.clone_url.clone(), auth.clone());
            let committer = self.inner.config.committer.clone();
            run_blocking(move || {
                repos.init_tenant(&slug, &readme, &committer)?;
                repos.push_remote(&slug, &url, &a, &[("main", false)])
            })
            .await
            .map_err(git)?;
            forge.protect_branch(name, "main", &maxcloud_forge::Protection { required_approvals: 1 }).await?;
        }
        self.inner
            .forge_repos
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.slug.clone(), repo.clone_url.clone());
        Ok((repo.clone_url, auth))
    }

    /// Forget what is known about the tenant's repository (after an error: it may have been deleted or moved).
    fn forget_repo(&self, tenant: &Tenant) {
        self.inner.forge_repos.lock().unwrap_or_else(|p| p.into_inner()).remove(&tenant.slug);
    }

    /// One pass over the tenant's pending orders on the forge, one order at a time. An unreachable forge or
    /// refused credentials stop the pass (the orders keep their state and show the reason); an order that cannot
    /// go on fails alone.
    pub(crate) async fn forge_pass(&self, tenant: &Tenant, orders: Vec<OrderRow>) -> Result<(), LaneError> {
        let (url, auth) = match self.forge_repo(tenant).await {
            Ok(ok) => ok,
            Err(e) => {
                self.forget_repo(tenant);
                for order in &orders {
                    self.inner.store.record_blocked(order, &format!("waiting for the Git provider: {e}")).await?;
                }
                return Err(e);
            }
        };
        for order in orders {
            if let Err(e) = self.forge_order(tenant, &order, &url, &auth).await {
                self.forget_repo(tenant);
                if let LaneError::Store(_) = e {
                    return Err(e);
                }
                self.inner.store.record_blocked(&order, &format!("waiting for the Git provider: {e}")).await?;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn forge_order(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        url: &str,
        auth: &RemoteAuth,
    ) -> Result<(), LaneError> {
        // The resource file on the forge's main (the mirror was fetched for this pass), for the PR's diff.
        let (repos, slug, path) = (self.inner.repos.clone(), tenant.slug.clone(), order.path.clone());
        let old = run_blocking(move || repos.read_main_file(&slug, &path)).await.map_err(git)?;
        let texts = match self.prepare(tenant, order, Some(old.as_deref())) {
            Ok(t) => t,
            Err(error) => return self.fail(tenant, order, error).await,
        };
        let pr_row = self.inner.store.pull_request_for(&order.id).await?;
        let next = match pr_row.as_ref().and_then(|p| p.url.as_ref().map(|_| p)) {
            Some(row) => {
                let pr = self.settings().forge.pull_request(&tenant.slug, row.number as u64).await?;
                self.judge(tenant, order, row, pr).await?
            }
            None => self.open(tenant, order, &texts, url, auth).await?,
        };
        if let Next::Merge(pr) = next {
            self.merge(tenant, order, &texts, *pr, url, auth).await?;
        }
        Ok(())
    }

    /// Open the order's pull request (or find the one a crash left unrecorded) and record it.
    async fn open(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        texts: &OrderTexts,
        url: &str,
        auth: &RemoteAuth,
    ) -> Result<Next, LaneError> {
        let forge = self.settings().forge.clone();
        let branch = gitops::branch_for(&order.id);
        let pr = match forge.find_pull_request(&tenant.slug, &branch).await? {
            Some(pr) => pr,
            None => {
                let head = match self.push_branch(tenant, order, texts, url, auth).await? {
                    Ok(head) => head,
                    Err(error) => {
                        self.fail(tenant, order, error).await?;
                        return Ok(Next::Done);
                    }
                };
                let new = ForgePr { head: &branch, base: "main", title: &texts.pr_title, body: &texts.pr_body };
                let pr = forge.create_pull_request(&tenant.slug, &new).await?;
                if pr.head_sha != head {
                    tracing::warn!(order = %order.id, forge = %pr.head_sha, ours = %head, "pull request head differs from the pushed branch");
                }
                pr
            }
        };
        forge.add_labels(&tenant.slug, pr.number, &labels(order)).await?;
        if order.merge_policy == "review" && !order.reviewers.is_empty() {
            forge.request_reviewers(&tenant.slug, pr.number, &order.reviewers).await?;
        }
        let row = NewPullRequest {
            branch: branch.clone(),
            head_commit: pr.head_sha.clone(),
            title: texts.pr_title.clone(),
            body: texts.pr_body.clone(),
            number: Some(pr.number as i64),
            url: Some(pr.html_url.clone()),
        };
        let recorded = self.inner.store.record_pr_opened(order, row).await?;
        self.publish(order, "pr_open");
        self.judge(tenant, order, &recorded, pr).await
    }

    /// Build (or rebuild on main) the order's commit and push its branch. `Ok(Err(reason))`: the order cannot be
    /// carried out (no change, or the branch on the forge holds someone else's commit).
    async fn push_branch(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        texts: &OrderTexts,
        url: &str,
        auth: &RemoteAuth,
    ) -> Result<Result<String, String>, LaneError> {
        let (repos, slug, url, auth) = (self.inner.repos.clone(), tenant.slug.clone(), url.to_string(), auth.clone());
        let texts = texts.clone();
        let order_id = order.id.clone();
        let pushed = run_blocking(move || {
            let author = Signature { name: texts.requester.clone(), email: texts.requester.clone() };
            let change = Change {
                order_id: &order_id,
                path: &texts.path,
                content: texts.content.as_deref(),
                message: &texts.message,
                author: &author,
            };
            let branch = gitops::branch_for(&order_id);
            let rebased = match repos.rebase_order(&slug, &change) {
                Ok(r) => r,
                Err(e @ (GitError::NoChange(_) | GitError::Conflict(_))) => return Ok(Err(e.to_string())),
                Err(e) => return Err(e),
            };
            let head = rebased.commit().to_string();
            let force = match repos.remote_branch(&slug, &branch)? {
                None => false,
                Some(tip) if tip == head => return Ok(Ok(head)),
                Some(tip) if repos.is_order_commit(&slug, &tip, &order_id)? => true,
                Some(tip) => {
                    return Ok(Err(format!(
                        "branch {branch} on the Git provider holds commit {tip}, which was not made for this order"
                    )))
                }
            };
            repos.push_remote(&slug, &url, &auth, &[(&branch, force)])?;
            Ok(Ok(head))
        })
        .await
        .map_err(git)?;
        Ok(pushed)
    }

    /// Act on what the forge says about the order's pull request: record a merge or a close done there, take
    /// reviews into account, and say whether to merge now.
    async fn judge(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        row: &PullRequestRow,
        pr: PullRequest,
    ) -> Result<Next, LaneError> {
        match pr.state {
            PrState::Merged => {
                let commit = pr.merge_commit.clone().unwrap_or_default();
                // Our own merge, recorded late (its answer lost, or a crash before the record), is not one made on
                // the Git provider by someone; its branch goes as after any merge of ours.
                let me = self.settings().forge.login().await.ok();
                let ours = pr.merged_by.is_some() && pr.merged_by == me;
                let by =
                    pr.merged_by.as_deref().filter(|_| !ours).map(|who| format!("merged by {who} on the Git provider"));
                self.record_merge(tenant, order, row, &pr, &commit, by).await?;
                if ours {
                    self.delete_merged_branch(tenant, order, &pr).await;
                }
                return Ok(Next::Done);
            }
            PrState::Closed => {
                let reason = format!("pull request #{} was closed without merging", pr.number);
                if let Some(closed) = self.inner.store.record_pr_closed(order, &reason).await? {
                    self.publish(&closed, "rejected");
                }
                return Ok(Next::Done);
            }
            PrState::Open => {}
        }
        if pr.head_sha != row.head_commit {
            let slug = tenant.slug.clone();
            let (repos, head) = (self.inner.repos.clone(), pr.head_sha.clone());
            let order_id = order.id.clone();
            // Our own rebuilt commit (pushed before a crash) is fine; anything else is someone else's change.
            let ours = run_blocking(move || repos.is_order_commit(&slug, &head, &order_id)).await.unwrap_or(false);
            if !ours {
                let reason = format!(
                    "pull request #{} was changed on the Git provider (its head {} is not the order's commit {}): \
                     not merged; the pull request is left as it is — place a new order to change the resource",
                    pr.number,
                    short(&pr.head_sha),
                    short(&row.head_commit)
                );
                self.fail(tenant, order, reason).await?;
                return Ok(Next::Done);
            }
            self.inner.store.record_pr_head(&order.id, &pr.head_sha).await?;
        }
        if order.merge_policy == "auto" || order.approved {
            return Ok(Next::Merge(Box::new(pr)));
        }
        // Review: count the forge's verdicts.
        let forge = self.settings().forge.clone();
        let me = forge.login().await?;
        let reviews = forge.reviews(&tenant.slug, pr.number).await?;
        let approvers: Vec<String> = reviews.approvers().filter(|who| *who != me).map(str::to_string).collect();
        let objectors: Vec<String> = reviews.changes_requested_by().map(str::to_string).collect();
        let approved = objectors.is_empty()
            && approvers.len() as i64 >= order.required_approvals.max(1)
            && order.reviewers.iter().all(|r| approvers.contains(r));
        let update = match (approved, objectors.is_empty(), approvers.is_empty()) {
            (true, _, _) => ReviewUpdate { state: "approved".into(), reviewed_by: approvers },
            (false, false, _) => ReviewUpdate { state: "changes_requested".into(), reviewed_by: objectors },
            (false, true, _) => ReviewUpdate { state: "pending".into(), reviewed_by: approvers },
        };
        let now = self.inner.store.record_review(order, &update, approved).await?;
        Ok(if now.approved { Next::Merge(Box::new(pr)) } else { Next::Done })
    }

    /// Merge on the forge. If the forge refuses because main moved under the branch, the commit is rebuilt on the
    /// new main and pushed again, once; any other refusal fails the order with the forge's reason.
    async fn merge(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        texts: &OrderTexts,
        mut pr: PullRequest,
        url: &str,
        auth: &RemoteAuth,
    ) -> Result<(), LaneError> {
        let forge = self.settings().forge.clone();
        let bypass = order.merge_policy == "auto";
        for attempt in 0..2 {
            match forge.merge(&tenant.slug, pr.number, &pr.head_sha, &texts.message, bypass).await? {
                Merge::Merged { commit } => {
                    let row = self.inner.store.pull_request_for(&order.id).await?;
                    let Some(row) = row else { return Err(LaneError::Git("pull request row vanished".into())) };
                    self.record_merge(tenant, order, &row, &pr, &commit, None).await?;
                    self.delete_merged_branch(tenant, order, &pr).await;
                    return Ok(());
                }
                Merge::NotMergeable { reason } if attempt == 0 => {
                    tracing::info!(order = %order.id, %reason, "merge refused; rebuilding the branch on main");
                    let (repos, slug, u, a) =
                        (self.inner.repos.clone(), tenant.slug.clone(), url.to_string(), auth.clone());
                    run_blocking(move || repos.fetch_remote(&slug, &u, &a).map(|_| ())).await.map_err(git)?;
                    let head = match self.push_branch(tenant, order, texts, url, auth).await? {
                        Ok(head) => head,
                        Err(error) => return self.fail(tenant, order, error).await,
                    };
                    self.inner.store.record_pr_head(&order.id, &head).await?;
                    pr = forge.pull_request(&tenant.slug, pr.number).await?;
                }
                Merge::NotMergeable { reason } => {
                    return self.fail(tenant, order, format!("the Git provider refused the merge: {reason}")).await;
                }
            }
        }
        Ok(())
    }

    /// Delete the branch of a pull request the order service merged (best effort). GitHub keeps merged branches;
    /// Gitea deleted it with the merge.
    async fn delete_merged_branch(&self, tenant: &Tenant, order: &OrderRow, pr: &PullRequest) {
        if let Err(e) = self.settings().forge.delete_branch(&tenant.slug, &pr.head_branch).await {
            tracing::warn!(order = %order.id, error = %e, "cannot delete the merged branch");
        }
    }

    async fn record_merge(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        row: &PullRequestRow,
        pr: &PullRequest,
        commit: &str,
        message: Option<String>,
    ) -> Result<(), LaneError> {
        if order.state != "pr_open" && order.state != "accepted" {
            return Ok(());
        }
        // The merge commit is needed locally (applied = Flux's revision contains it).
        if let Ok((url, auth)) = self.forge_repo(tenant).await {
            let (repos, slug) = (self.inner.repos.clone(), tenant.slug.clone());
            if let Err(e) = run_blocking(move || repos.fetch_remote(&slug, &url, &auth).map(|_| ())).await {
                tracing::warn!(tenant = %tenant.slug, error = %e, "cannot fetch main after a merge");
            }
        }
        let pr_new = NewPullRequest {
            branch: row.branch.clone(),
            head_commit: pr.head_sha.clone(),
            title: row.title.clone(),
            body: row.body.clone(),
            number: Some(row.number),
            url: row.url.clone(),
        };
        let outcome = Outcome::Merged { order: order.clone(), pr: pr_new, merge_commit: commit.to_string(), message };
        self.record_batch(tenant, AppliedBatch::of(vec![outcome], vec![(order.clone(), "merged")])).await
    }

    async fn fail(&self, tenant: &Tenant, order: &OrderRow, error: String) -> Result<(), LaneError> {
        tracing::warn!(order = %order.id, %error, "order failed");
        if self.inner.store.pull_request_for(&order.id).await?.is_some() {
            if let Some(failed) = self.inner.store.record_pr_failed(order, &error).await? {
                self.publish(&failed, "failed");
            }
            return Ok(());
        }
        let outcome = Outcome::Failed { order: order.clone(), state: "failed".into(), error };
        self.record_batch(tenant, AppliedBatch::of(vec![outcome], vec![(order.clone(), "failed")])).await
    }

    /// Look at an order's pull request now (a webhook delivery, the polling fallback): record what happened on
    /// the forge and wake the lane if the order can be merged.
    pub(crate) async fn sync_pull_request(
        &self,
        tenant: &Tenant,
        order: &OrderRow,
        row: &PullRequestRow,
    ) -> Result<(), LaneError> {
        if order.state != "pr_open" {
            return Ok(());
        }
        let forge = self.settings().forge.clone();
        let pr = forge.pull_request(&tenant.slug, row.number as u64).await?;
        // Merged by the order service itself: the lane that merged it records it (an order it merges stays pending
        // until recorded, also across a crash). Recording it here as well would race the lane — the merge taken
        // for a human's, the mirror fetched and its branch deleted twice at once.
        let pending = order.merge_policy == "auto" || order.approved;
        if pending
            && pr.state == PrState::Merged
            && pr.merged_by.is_some()
            && pr.merged_by == Some(forge.login().await?)
        {
            self.notify(&tenant.id);
            return Ok(());
        }
        if let Next::Merge(_) = self.judge(tenant, order, row, pr).await? {
            self.notify(&tenant.id);
        }
        Ok(())
    }

    /// Close the pull requests of orders that were rejected through the API or superseded: a comment saying why,
    /// then closed, its branch deleted.
    pub(crate) async fn close_on_forge(
        &self,
        tenant: &Tenant,
        row: &PullRequestRow,
        why: &str,
    ) -> Result<(), ForgeError> {
        let forge = self.settings().forge.clone();
        let number = row.number as u64;
        forge.comment(&tenant.slug, number, why).await?;
        forge.close(&tenant.slug, number).await?;
        forge.delete_branch(&tenant.slug, &row.branch).await
    }

    /// Report the cluster's verdict on the pull request: a commit status on the merge commit and, when the order
    /// is done, a comment.
    pub(crate) async fn report_on_forge(
        &self,
        tenant: &Tenant,
        row: &PullRequestRow,
        commit: &str,
        status: &gitops::CommitStatus,
        comment: Option<&str>,
    ) -> Result<(), ForgeError> {
        let forge = self.settings().forge.clone();
        let state = match status.state {
            gitops::CommitState::Success => maxcloud_forge::StatusState::Success,
            gitops::CommitState::Failure => maxcloud_forge::StatusState::Failure,
            gitops::CommitState::Error => maxcloud_forge::StatusState::Error,
            gitops::CommitState::Pending => maxcloud_forge::StatusState::Pending,
        };
        let s = Status {
            state,
            context: &status.context,
            description: &status.description,
            target_url: status.target_url.as_deref(),
        };
        forge.set_status(&tenant.slug, commit, &s).await?;
        if let Some(body) = comment {
            forge.comment(&tenant.slug, row.number as u64, body).await?;
        }
        Ok(())
    }
}

/// Labels of an order's pull request: its kind and its action.
fn labels(order: &OrderRow) -> Vec<Label> {
    let action_color = match order.action.as_str() {
        "create" => "2ea043",
        "update" => "1f6feb",
        _ => "d1242f",
    };
    vec![
        Label {
            name: format!("kind/{}", order.kind.to_lowercase()),
            color: "8250df".into(),
            description: format!("max-cloud {} order", order.kind),
        },
        Label {
            name: format!("action/{}", order.action),
            color: action_color.into(),
            description: format!("max-cloud {} order", order.action),
        },
    ]
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}

fn git(e: GitError) -> LaneError {
    LaneError::Git(e.to_string())
}
