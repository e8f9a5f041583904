//! Webhook deliveries from the Git hosting provider and the tenants' merge policies.

use maxcloud_catalog::Action;
use maxcloud_forge::webhook::{self, WebhookError};
use maxcloud_forge::ForgeKind;
use maxcloud_store::{MergePolicyRow, Tenant};

use crate::{OrderError, OrderService};

/// What became of a verified delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// About an order's pull request: its state is being read from the forge.
    Handled { order_id: String },
    /// This delivery id was handled before (a redelivery or a replay): nothing done.
    Duplicate,
    /// Verified, but not about an order's pull request (another event, repository or pull request).
    Ignored(String),
}

/// Why a delivery is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookRefused {
    /// No forge of that kind, or no webhook secret, is configured.
    #[error("{0}")]
    NotConfigured(String),
    /// The signature is missing or wrong.
    #[error("{0}")]
    Signature(WebhookError),
    /// Signed, but headers or body are not what the forge sends.
    #[error("{0}")]
    Malformed(WebhookError),
    #[error("internal error: {0}")]
    Internal(String),
}

/// A tenant's merge policy to set.
#[derive(Debug, Clone)]
pub struct SetPolicy {
    /// Catalog kind, any case, singular or plural.
    pub kind: String,
    pub action: Action,
    /// `true`: review required; `false`: auto-merge.
    pub review: bool,
    pub reviewers: Vec<String>,
    pub required_approvals: i64,
}

impl OrderService {
    /// Verify and act on a webhook delivery from a forge of `kind`. Cheap: the pull request is looked at in the
    /// background, so the forge gets its answer at once.
    pub async fn webhook(
        &self,
        kind: ForgeKind,
        headers: &http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookOutcome, WebhookRefused> {
        let Some(settings) = self.worker.forge_settings().filter(|s| s.forge.kind() == kind) else {
            return Err(WebhookRefused::NotConfigured(format!("no {kind} provider is configured here")));
        };
        let Some(secret) = settings.webhook_secret.as_deref() else {
            return Err(WebhookRefused::NotConfigured(format!(
                "webhooks from {kind} are not configured (set MAXCLOUD_GIT_PROVIDER_WEBHOOK_SECRET)"
            )));
        };
        webhook::verify(kind, secret.as_bytes(), headers, body).map_err(WebhookRefused::Signature)?;
        let delivery = webhook::read(kind, headers, body).map_err(WebhookRefused::Malformed)?;
        let internal = |e: maxcloud_store::StoreError| WebhookRefused::Internal(e.to_string());
        if !self.store.record_delivery(kind.as_str(), &delivery.id, &delivery.event).await.map_err(internal)? {
            return Ok(WebhookOutcome::Duplicate);
        }
        let Some(pr) = delivery.pull_request else {
            return Ok(WebhookOutcome::Ignored(format!("event {} is not about a pull request", delivery.event)));
        };
        // Logins are case-insensitive on GitHub and Gitea; deliveries spell the owner as the forge does, the
        // configuration as the operator typed it.
        if !pr.owner.eq_ignore_ascii_case(settings.forge.owner()) {
            return Ok(WebhookOutcome::Ignored(format!("{}/{} is not a tenant repository", pr.owner, pr.repo)));
        }
        let Some(tenant) = self.store.tenant_by_slug(&pr.repo).await.map_err(internal)? else {
            return Ok(WebhookOutcome::Ignored(format!("{}/{} is not a tenant repository", pr.owner, pr.repo)));
        };
        let found = self.store.order_by_pull_request(&tenant.id, pr.number as i64).await.map_err(internal)?;
        let Some((order, row)) = found else {
            return Ok(WebhookOutcome::Ignored(format!("pull request #{} is not an order's", pr.number)));
        };
        let worker = self.worker.clone();
        let order_id = order.id.clone();
        tokio::spawn(async move {
            if let Err(e) = worker.sync_pull_request(&tenant, &order, &row).await {
                tracing::warn!(order = %order.id, error = %e, "cannot look at the pull request (polling will)");
            }
        });
        Ok(WebhookOutcome::Handled { order_id })
    }

    /// Set the tenant's merge policy for a kind and action (over the catalog's default).
    pub async fn set_policy(&self, tenant: &Tenant, set: SetPolicy, by: &str) -> Result<MergePolicyRow, OrderError> {
        let ty = self.catalog.get(&set.kind).ok_or_else(|| OrderError::UnknownKind(set.kind.clone()))?;
        let invalid = |field: &str, message: String| {
            OrderError::Invalid(vec![maxcloud_catalog::FieldError { field: field.to_string(), message }])
        };
        if !(1..=10).contains(&set.required_approvals) {
            return Err(invalid("requiredApprovals", "must be between 1 and 10".into()));
        }
        for (i, r) in set.reviewers.iter().enumerate() {
            let ok =
                !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.[]".contains(&b));
            if !ok {
                return Err(invalid(&format!("reviewers[{i}]"), format!("{r:?} is not a Git provider login")));
            }
        }
        if !set.review && !set.reviewers.is_empty() {
            return Err(invalid("reviewers", "reviewers need the review policy".into()));
        }
        let row = MergePolicyRow {
            tenant_id: tenant.id.clone(),
            kind: ty.kind.clone(),
            action: set.action.as_str().to_string(),
            policy: if set.review { "review" } else { "auto" }.to_string(),
            reviewers: set.reviewers,
            required_approvals: set.required_approvals,
            updated_by: by.to_string(),
            updated_at: maxcloud_store::now_us(),
        };
        self.store.set_merge_policy(&row).await?;
        Ok(row)
    }

    /// The tenant's merge policy of every kind and action: its own where set, else the catalog's default.
    pub async fn policies(&self, tenant: &Tenant) -> Result<Vec<(MergePolicyRow, bool)>, OrderError> {
        let own = self.store.merge_policies(&tenant.id).await?;
        let mut out = Vec::new();
        for ty in self.catalog.types() {
            for action in Action::ALL {
                match own.iter().find(|p| p.kind == ty.kind && p.action == action.as_str()) {
                    Some(p) => out.push((p.clone(), true)),
                    None => out.push((
                        MergePolicyRow {
                            tenant_id: tenant.id.clone(),
                            kind: ty.kind.clone(),
                            action: action.as_str().to_string(),
                            policy: ty.merge_policy(action).as_str().to_string(),
                            reviewers: Vec::new(),
                            required_approvals: 1,
                            updated_by: String::new(),
                            updated_at: 0,
                        },
                        false,
                    )),
                }
            }
        }
        Ok(out)
    }

    /// Drop the tenant's own policy for a kind and action: the catalog's default applies again.
    pub async fn reset_policy(&self, tenant: &Tenant, kind: &str, action: Action) -> Result<(), OrderError> {
        let ty = self.catalog.get(kind).ok_or_else(|| OrderError::UnknownKind(kind.to_string()))?;
        if !self.store.delete_merge_policy(&tenant.id, &ty.kind, action.as_str()).await? {
            return Err(OrderError::NotFound("merge policy"));
        }
        Ok(())
    }
}
