//! What the status aggregator observed in the cluster, recorded against resources and their orders.

use sqlx::Row;

use crate::orders::{event, next_seq, set_state};
use crate::{now_us, Result, Store};

/// A service's observed state, derived by the aggregator from its XR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// Tenant slug (`maxcloud.dev/tenant` label, or the namespace without `mc-`).
    pub tenant: String,
    pub kind: String,
    pub name: String,
    /// `progressing` | `ready` | `failed`.
    pub status: String,
    pub url: Option<String>,
    /// Why it is not ready, when it is not.
    pub message: Option<String>,
    /// The order that last wrote the object (`maxcloud.dev/order-id`), when the object carries one.
    pub order_id: Option<String>,
    /// What it serves of its revisions (JSON: `latestRevision`, `latestReadyRevision`, `traffic` of the XR status),
    /// for kinds whose status has them.
    pub served: Option<String>,
}

/// What recording an observation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// No resource of the order service has this kind and name: created by other means (kubectl, Terraform).
    Unmanaged,
    /// The resource row was updated (`changed`: its status or URL is new, and a service event was logged) or
    /// already said the same; `order` names an order that moved to a new state because of it: (order id, new
    /// state).
    Resource { tenant_id: String, changed: bool, order: Option<(String, String)> },
    /// The resource's delete order is merged; the object is on its way out.
    Deleting,
}

/// The newest merged (or applied) delete order of a resource: (tenant id, order id).
async fn open_delete_order(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_slug: &str,
    kind: &str,
    name: &str,
) -> Result<Option<(String, String)>> {
    let row = sqlx::query(
        "SELECT o.tenant_id, o.id FROM orders o JOIN tenants t ON t.id = o.tenant_id \
         WHERE t.slug = $1 AND o.kind = $2 AND o.name = $3 AND o.action = 'delete' \
         AND o.state IN ('merged', 'applied') ORDER BY o.created_at DESC LIMIT 1",
    )
    .bind(tenant_slug)
    .bind(kind)
    .bind(name)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(|r| (r.get("tenant_id"), r.get("id"))))
}

/// Order states the cluster can move on from: merged (or applied) orders become ready or failed.
const OPEN_STATES: [&str; 2] = ["merged", "applied"];

impl Store {
    /// Record an observation: the resource's status and URL, and — when the object carries the id of the
    /// order that wrote it and that order is merged or applied — the order's move to `ready` or `failed` (with
    /// the message), with its order event, in one transaction.
    pub async fn record_observation(&self, obs: &Observation) -> Result<Recorded> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let row = sqlx::query(
            "SELECT r.id, r.tenant_id, r.status, r.url FROM resources r JOIN tenants t ON t.id = r.tenant_id \
             WHERE t.slug = $1 AND r.kind = $2 AND r.name = $3",
        )
        .bind(&obs.tenant)
        .bind(&obs.kind)
        .bind(&obs.name)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // A resource whose delete order is merged has no row any more, but its object lives until Flux
            // prunes it: that is a deletion in progress, not an object someone made by hand.
            if open_delete_order(&mut tx, &obs.tenant, &obs.kind, &obs.name).await?.is_some() {
                return Ok(Recorded::Deleting);
            }
            return Ok(Recorded::Unmanaged);
        };
        let (resource_id, tenant_id): (String, String) = (row.get("id"), row.get("tenant_id"));
        let (status, url): (String, Option<String>) = (row.get("status"), row.get("url"));
        let now = now_us();
        // A resource being deleted keeps that status until its row goes.
        let changed = status != "deleting" && (status != obs.status || url != obs.url);
        if changed {
            sqlx::query("UPDATE resources SET status = $1, url = $2, updated_at = $3 WHERE id = $4")
                .bind(&obs.status)
                .bind(&obs.url)
                .bind(now)
                .bind(&resource_id)
                .execute(&mut *tx)
                .await?;
            let seq = next_seq(&mut tx).await?;
            sqlx::query(
                "INSERT INTO service_events (seq, tenant_id, kind, name, status, url, message, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(seq)
            .bind(&tenant_id)
            .bind(&obs.kind)
            .bind(&obs.name)
            .bind(&obs.status)
            .bind(&obs.url)
            .bind(&obs.message)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if obs.served.is_some() {
            sqlx::query("UPDATE resources SET served = $1 WHERE id = $2")
                .bind(&obs.served)
                .bind(&resource_id)
                .execute(&mut *tx)
                .await?;
        }
        let mut moved = None;
        if let (Some(order_id), "ready" | "failed") = (&obs.order_id, obs.status.as_str()) {
            let order = sqlx::query("SELECT state FROM orders WHERE id = $1 AND tenant_id = $2")
                .bind(order_id)
                .bind(&tenant_id)
                .fetch_optional(&mut *tx)
                .await?;
            let state: Option<String> = order.map(|r| r.get("state"));
            if state.as_deref().is_some_and(|s| OPEN_STATES.contains(&s)) {
                let error = if obs.status == "failed" { obs.message.clone() } else { None };
                sqlx::query("UPDATE orders SET state = $1, error = $2, updated_at = $3 WHERE id = $4")
                    .bind(&obs.status)
                    .bind(&error)
                    .bind(now)
                    .bind(order_id)
                    .execute(&mut *tx)
                    .await?;
                event(&mut tx, order_id, &obs.status, now, obs.message.as_deref()).await?;
                moved = Some((order_id.clone(), obs.status.clone()));
            }
        }
        tx.commit().await?;
        Ok(Recorded::Resource { tenant_id, changed, order: moved })
    }
}

impl Store {
    /// Record that the object of a resource is gone from the cluster: its merged delete order is done
    /// (`ready`, "deleted"). Returns (tenant id, order id) of the order that moved, if one did.
    pub async fn record_deleted(&self, tenant_slug: &str, kind: &str, name: &str) -> Result<Option<(String, String)>> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let Some((tenant_id, order_id)) = open_delete_order(&mut tx, tenant_slug, kind, name).await? else {
            return Ok(None);
        };
        set_state(&mut tx, &order_id, "ready", now_us(), Some("deleted from the cluster")).await?;
        tx.commit().await?;
        Ok(Some((tenant_id, order_id)))
    }

    /// Resources of `kind` whose delete order is merged (or applied) but not done: (tenant slug, name).
    pub async fn open_deletes(&self, kind: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT DISTINCT t.slug, o.name FROM orders o JOIN tenants t ON t.id = o.tenant_id \
             WHERE o.kind = $1 AND o.action = 'delete' AND o.state IN ('merged', 'applied')",
        )
        .bind(kind)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("slug"), r.get("name"))).collect())
    }

    /// The tenant's merged orders not yet seen in the cluster, with their merge commits: (order id, commit).
    pub async fn merged_awaiting_apply(&self, tenant_slug: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT o.id, p.merge_commit FROM orders o JOIN tenants t ON t.id = o.tenant_id \
             JOIN pull_requests p ON p.order_id = o.id \
             WHERE t.slug = $1 AND o.state = 'merged' AND p.merge_commit IS NOT NULL ORDER BY o.created_at",
        )
        .bind(tenant_slug)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| (r.get("id"), r.get("merge_commit"))).collect())
    }

    /// Marks merged orders `applied` (their commit is in the revision Flux applied), with an order event each.
    /// Returns (tenant id, order id, kind, name) of the orders that moved; orders no longer `merged` are left
    /// alone.
    pub async fn record_applied(
        &self,
        order_ids: &[String],
        revision: &str,
    ) -> Result<Vec<(String, String, String, String)>> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let now = now_us();
        let mut moved = Vec::new();
        for id in order_ids {
            let row = sqlx::query("SELECT tenant_id, kind, name FROM orders WHERE id = $1 AND state = 'merged'")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else { continue };
            set_state(&mut tx, id, "applied", now, Some(&format!("applied by Flux at {revision}"))).await?;
            moved.push((row.get("tenant_id"), id.clone(), row.get("kind"), row.get("name")));
        }
        tx.commit().await?;
        Ok(moved)
    }
}
