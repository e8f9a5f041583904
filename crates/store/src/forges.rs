//! What the store keeps for Git hosting providers: merge policies per tenant, the review state of pull requests
//! on a forge, pull requests closed there, and the webhook deliveries already handled.

use sqlx::Row;

use crate::model::{self, OrderRow, PullRequestRow, ORDER_COLUMNS, PR_COLUMNS};
use crate::orders::{close_unmerged, event};
use crate::{now_us, Result, Store, StoreError};

/// A tenant's merge policy for one kind and action, replacing the catalog's default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergePolicyRow {
    pub tenant_id: String,
    pub kind: String,
    pub action: String,
    /// `auto` or `review`.
    pub policy: String,
    /// Forge logins that must approve (empty: any reviewer with write access).
    pub reviewers: Vec<String>,
    pub required_approvals: i64,
    pub updated_by: String,
    pub updated_at: i64,
}

/// A review state read from the forge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewUpdate {
    /// `pending`, `approved` or `changes_requested`.
    pub state: String,
    pub reviewed_by: Vec<String>,
}

fn policy_row(row: &sqlx::any::AnyRow) -> sqlx::Result<MergePolicyRow> {
    Ok(MergePolicyRow {
        tenant_id: row.try_get("tenant_id")?,
        kind: row.try_get("kind")?,
        action: row.try_get("action")?,
        policy: row.try_get("policy")?,
        reviewers: model::split_list(&row.try_get::<String, _>("reviewers")?),
        required_approvals: row.try_get("required_approvals")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

const POLICY_COLUMNS: &str = "tenant_id, kind, action, policy, reviewers, required_approvals, updated_by, updated_at";

impl Store {
    /// Set (insert or replace) a tenant's merge policy for `kind` and `action`.
    pub async fn set_merge_policy(&self, row: &MergePolicyRow) -> Result<()> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM merge_policies WHERE tenant_id = $1 AND kind = $2 AND action = $3")
            .bind(&row.tenant_id)
            .bind(&row.kind)
            .bind(&row.action)
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("INSERT INTO merge_policies ({POLICY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
            .bind(&row.tenant_id)
            .bind(&row.kind)
            .bind(&row.action)
            .bind(&row.policy)
            .bind(row.reviewers.join(","))
            .bind(row.required_approvals)
            .bind(&row.updated_by)
            .bind(row.updated_at)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Remove a tenant's merge policy (the catalog's default applies again). `false` if there was none.
    pub async fn delete_merge_policy(&self, tenant_id: &str, kind: &str, action: &str) -> Result<bool> {
        let _w = self.writer().await;
        let done = sqlx::query("DELETE FROM merge_policies WHERE tenant_id = $1 AND kind = $2 AND action = $3")
            .bind(tenant_id)
            .bind(kind)
            .bind(action)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// The tenant's own merge policies, by kind and action.
    pub async fn merge_policies(&self, tenant_id: &str) -> Result<Vec<MergePolicyRow>> {
        let sql = format!("SELECT {POLICY_COLUMNS} FROM merge_policies WHERE tenant_id = $1 ORDER BY kind, action");
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(policy_row).collect::<sqlx::Result<_>>()?)
    }

    /// The tenant's own merge policy for `kind` and `action`, if it set one.
    pub async fn merge_policy(&self, tenant_id: &str, kind: &str, action: &str) -> Result<Option<MergePolicyRow>> {
        let sql =
            format!("SELECT {POLICY_COLUMNS} FROM merge_policies WHERE tenant_id = $1 AND kind = $2 AND action = $3");
        let row = sqlx::query(&sql).bind(tenant_id).bind(kind).bind(action).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(policy_row).transpose()?)
    }

    /// Remember a webhook delivery. `false` if it was handled before (a replay).
    pub async fn record_delivery(&self, provider: &str, delivery_id: &str, event: &str) -> Result<bool> {
        let _w = self.writer().await;
        let res = sqlx::query(
            "INSERT INTO webhook_deliveries (provider, delivery_id, event, received_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(provider)
        .bind(delivery_id)
        .bind(event)
        .bind(now_us())
        .execute(&self.pool)
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if crate::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// The order whose pull request has forge number `number` in the tenant's repository.
    pub async fn order_by_pull_request(
        &self,
        tenant_id: &str,
        number: i64,
    ) -> Result<Option<(OrderRow, PullRequestRow)>> {
        let sql = format!("SELECT {PR_COLUMNS} FROM pull_requests WHERE tenant_id = $1 AND number = $2");
        let Some(row) = sqlx::query(&sql).bind(tenant_id).bind(number).fetch_optional(&self.pool).await? else {
            return Ok(None);
        };
        let pr = model::pull_request(&row)?;
        let order = self.order(tenant_id, &pr.order_id).await?.ok_or(StoreError::NotFound("order"))?;
        Ok(Some((order, pr)))
    }

    /// Orders whose pull request is open on a forge (the polling fallback looks at each), oldest first.
    pub async fn open_forge_pull_requests(&self, limit: i64) -> Result<Vec<(OrderRow, PullRequestRow)>> {
        let sql = format!(
            "SELECT {PR_COLUMNS} FROM pull_requests WHERE state = 'open' AND url IS NOT NULL ORDER BY created_at LIMIT $1"
        );
        let rows = sqlx::query(&sql).bind(limit).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let pr = model::pull_request(row)?;
            if let Some(order) = self.order(&pr.tenant_id, &pr.order_id).await? {
                out.push((order, pr));
            }
        }
        Ok(out)
    }

    /// The tenant's orders that wait for a review (policy `review`, not yet approved, merged or closed).
    pub async fn pending_reviews(&self, tenant_id: &str) -> Result<Vec<OrderRow>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND merge_policy = 'review' AND approved = 0 \
             AND state IN ('accepted', 'pr_open') ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(model::order).collect::<sqlx::Result<_>>()?)
    }

    /// Record the review state read from the forge. With `approve` the order is approved too (the worker merges
    /// it), logged with who approved. Returns the order as it is now; an order no longer waiting is left alone.
    pub async fn record_review(&self, order: &OrderRow, review: &ReviewUpdate, approve: bool) -> Result<OrderRow> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let mut current = model::order(&sqlx::query(&sql).bind(&order.id).fetch_one(&mut *tx).await?)?;
        let now = now_us();
        let prev: Option<(Option<String>, Option<String>)> =
            sqlx::query("SELECT review_state, reviewed_by FROM pull_requests WHERE order_id = $1")
                .bind(&order.id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| (r.get("review_state"), r.get("reviewed_by")));
        let by = review.reviewed_by.join(",");
        let changed = prev
            .as_ref()
            .is_none_or(|(s, b)| s.as_deref() != Some(review.state.as_str()) || b.as_deref().unwrap_or("") != by);
        if changed {
            sqlx::query(
                "UPDATE pull_requests SET review_state = $1, reviewed_by = $2, updated_at = $3 WHERE order_id = $4",
            )
            .bind(&review.state)
            .bind(&by)
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
        }
        let waiting = current.state == "pr_open" && !current.approved;
        if waiting && approve {
            sqlx::query("UPDATE orders SET approved = 1, updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&order.id)
                .execute(&mut *tx)
                .await?;
            event(&mut tx, &order.id, "pr_open", now, Some(&format!("approved by {by} on the pull request"))).await?;
            current.approved = true;
        } else if waiting && changed && review.state == "changes_requested" {
            event(&mut tx, &order.id, "pr_open", now, Some(&format!("changes requested by {by}"))).await?;
        }
        tx.commit().await?;
        Ok(current)
    }

    /// The order's pull request was closed on the forge without being merged: the order becomes `rejected` with
    /// `reason`, and its effect on the resource row is undone (a create that never reached main removes the
    /// resource). A no-op for an order that is already past `pr_open`.
    pub async fn record_pr_closed(&self, order: &OrderRow, reason: &str) -> Result<Option<OrderRow>> {
        self.close_order(order, "rejected", reason).await
    }

    /// The order cannot go on (its pull request was changed by someone else, or cannot be merged): it becomes
    /// `failed` with `reason`; its pull request stays as it is on the forge. A no-op past `pr_open`.
    pub async fn record_pr_failed(&self, order: &OrderRow, reason: &str) -> Result<Option<OrderRow>> {
        self.close_order(order, "failed", reason).await
    }

    async fn close_order(&self, order: &OrderRow, state: &str, reason: &str) -> Result<Option<OrderRow>> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1");
        let mut current = model::order(&sqlx::query(&sql).bind(&order.id).fetch_one(&mut *tx).await?)?;
        if !matches!(current.state.as_str(), "accepted" | "pr_open") {
            return Ok(None);
        }
        close_unmerged(&mut tx, &current, state, reason).await?;
        tx.commit().await?;
        current.state = state.to_string();
        current.error = Some(reason.to_string());
        Ok(Some(current))
    }

    /// The order cannot move on for now (the forge is unreachable or refuses the credentials): its state stays,
    /// `message` is logged once (not again while it repeats) and kept as the order's error.
    pub async fn record_blocked(&self, order: &OrderRow, message: &str) -> Result<bool> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let last: Option<String> =
            sqlx::query("SELECT message FROM order_events WHERE order_id = $1 ORDER BY seq DESC LIMIT 1")
                .bind(&order.id)
                .fetch_optional(&mut *tx)
                .await?
                .and_then(|r| r.get("message"));
        if last.as_deref() == Some(message) {
            return Ok(false);
        }
        let now = now_us();
        sqlx::query("UPDATE orders SET error = $1, updated_at = $2 WHERE id = $3")
            .bind(message)
            .bind(now)
            .bind(&order.id)
            .execute(&mut *tx)
            .await?;
        event(&mut tx, &order.id, &order.state, now, Some(message)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The order's branch was regenerated (pushed again on a newer main): its PR's head is now `head_commit`.
    pub async fn record_pr_head(&self, order_id: &str, head_commit: &str) -> Result<()> {
        let _w = self.writer().await;
        sqlx::query(
            "UPDATE pull_requests SET head_commit = $1, updated_at = $2 WHERE order_id = $3 AND state = 'open'",
        )
        .bind(head_commit)
        .bind(now_us())
        .bind(order_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
