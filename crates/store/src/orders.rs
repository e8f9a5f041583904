//! The order outbox: orders are stored (state `accepted`) before any Git work, and every later step is
//! recorded in one transaction together with its effect on the resource row and an order event.

use std::collections::HashMap;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use crate::model::{self, NewOrder, NewPullRequest, OrderEvent, OrderRow, PullRequestRow, ORDER_COLUMNS, PR_COLUMNS};
use crate::{is_unique_violation, now_us, Result, Store, StoreError};

/// What the worker did with one order, recorded by [`Store::record_outcomes`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The PR is open and waits for review.
    Opened { order: OrderRow, pr: NewPullRequest },
    /// The PR was merged into main with `merge_commit`.
    Merged { order: OrderRow, pr: NewPullRequest, merge_commit: String, message: Option<String> },
    /// The order failed (`state` = `failed` or `rejected`).
    Failed { order: OrderRow, state: String, error: String },
}

/// An order with its pull request (if opened) and its state history.
pub type OrderDetails = (OrderRow, Option<PullRequestRow>, Vec<OrderEvent>);

/// What `accept_order` did.
#[derive(Debug, Clone)]
pub enum Accepted {
    /// A new order was stored.
    Created(OrderRow),
    /// A new order was stored and superseded `superseded`, which waited for review (now `superseded`, its PR row
    /// closed).
    Superseding { order: OrderRow, superseded: Box<OrderRow> },
    /// The idempotency key was seen before with the same request: the original order.
    Replayed(OrderRow),
}

impl Accepted {
    pub fn order(&self) -> &OrderRow {
        match self {
            Accepted::Created(o) | Accepted::Superseding { order: o, .. } | Accepted::Replayed(o) => o,
        }
    }
}

impl Store {
    /// Store a new order in state `accepted` and apply its effect on the resource row:
    /// create inserts the resource (`pending`), update replaces its spec, delete marks it `deleting`.
    ///
    /// An order of the same resource still waiting for review (not approved) is `superseded` by the new one, which
    /// then needs at least that review too (its policy, reviewers and approvals). If the waiting order was a create,
    /// the new one still creates the resource (an update becomes a create; a delete withdraws it: nothing is left to
    /// do in Git and the new order is `ready` at once).
    pub async fn accept_order(&self, mut new: NewOrder) -> Result<Accepted> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        if let Some(key) = &new.idempotency_key {
            let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND idempotency_key = $2");
            if let Some(row) = sqlx::query(&sql).bind(&new.tenant_id).bind(key).fetch_optional(&mut *tx).await? {
                let existing = model::order(&row)?;
                if existing.request_hash == new.request_hash {
                    return Ok(Accepted::Replayed(existing));
                }
                return Err(StoreError::Conflict {
                    field: "Idempotency-Key",
                    message: format!("idempotency key {key:?} was already used for a different request"),
                });
            }
        }
        // Orders on one resource apply in order. An order still waiting for review would otherwise be
        // overtaken (and, once approved, overwrite the newer change): the newer order supersedes it.
        let now = now_us();
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND kind = $2 AND name = $3 \
             AND merge_policy = 'review' AND state IN ('accepted', 'pr_open') LIMIT 1"
        );
        let waiting =
            sqlx::query(&sql).bind(&new.tenant_id).bind(&new.kind).bind(&new.name).fetch_optional(&mut *tx).await?;
        let mut withdrawn = None;
        let mut superseded = None;
        if let Some(row) = waiting {
            let waiting = model::order(&row)?;
            if waiting.approved {
                return Err(StoreError::Conflict {
                    field: "name",
                    message: format!(
                        "{} {:?} has order {} approved and about to be merged: retry once it is merged",
                        new.kind, new.name, waiting.id
                    ),
                });
            }
            let message = format!("superseded by order {}", new.id);
            supersede(&mut tx, &waiting, &message, now).await?;
            // Superseding never skips a review: the newer order needs at least the review the waiting one needed.
            new.merge_policy = "review".into();
            new.required_approvals = new.required_approvals.max(waiting.required_approvals);
            for r in &waiting.reviewers {
                if !new.reviewers.contains(r) {
                    new.reviewers.push(r.clone());
                }
            }
            match (waiting.action.as_str(), new.action.as_str()) {
                // The resource never reached main: the newer order still creates it.
                ("create", "create" | "update") => {
                    sqlx::query("UPDATE resources SET spec = $1, order_id = $2, updated_at = $3 WHERE id = $4")
                        .bind(&new.parameters)
                        .bind(&new.id)
                        .bind(now)
                        .bind(&waiting.resource_id)
                        .execute(&mut *tx)
                        .await?;
                    new.action = "create".into();
                    withdrawn = Some((waiting.resource_id.clone(), None));
                }
                // Deleting what was never created: nothing is left to do in Git.
                ("create", _) => {
                    sqlx::query("DELETE FROM resources WHERE id = $1")
                        .bind(&waiting.resource_id)
                        .execute(&mut *tx)
                        .await?;
                    withdrawn = Some((
                        waiting.resource_id.clone(),
                        Some(format!(
                            "nothing to delete: create order {} was withdrawn before it was merged",
                            waiting.id
                        )),
                    ));
                }
                // A withdrawn delete leaves the resource as it was.
                ("delete", _) => {
                    sqlx::query("UPDATE resources SET status = 'pending', updated_at = $1 WHERE id = $2 AND status = 'deleting'")
                        .bind(now)
                        .bind(&waiting.resource_id)
                        .execute(&mut *tx)
                        .await?;
                }
                _ => {}
            }
            let mut old = waiting;
            old.state = "superseded".into();
            old.error = Some(message);
            superseded = Some(old);
        }
        let existing = sqlx::query("SELECT id, status FROM resources WHERE tenant_id = $1 AND kind = $2 AND name = $3")
            .bind(&new.tenant_id)
            .bind(&new.kind)
            .bind(&new.name)
            .fetch_optional(&mut *tx)
            .await?;
        let existing: Option<(String, String)> = existing.map(|r| (r.get("id"), r.get("status")));
        let resource_id = match (new.action.as_str(), existing) {
            _ if withdrawn.is_some() => withdrawn.as_ref().map(|(id, _)| id.clone()).unwrap_or_default(),
            ("create", Some(_)) => {
                return Err(StoreError::Conflict {
                    field: "name",
                    message: format!("{} {:?} already exists", new.kind, new.name),
                })
            }
            ("create", None) => {
                let id = uuid::Uuid::new_v4().to_string();
                let res = sqlx::query(
                    "INSERT INTO resources (id, tenant_id, kind, name, status, spec, path, order_id, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $8)",
                )
                .bind(&id)
                .bind(&new.tenant_id)
                .bind(&new.kind)
                .bind(&new.name)
                .bind(&new.parameters)
                .bind(&new.path)
                .bind(&new.id)
                .bind(now)
                .execute(&mut *tx)
                .await;
                match res {
                    Err(e) if is_unique_violation(&e) => {
                        return Err(StoreError::Conflict {
                            field: "name",
                            message: format!("{} {:?} already exists", new.kind, new.name),
                        })
                    }
                    other => other?,
                };
                id
            }
            (_, None) => return Err(StoreError::NotFound("resource")),
            (_, Some((_, status))) if status == "deleting" => {
                return Err(StoreError::Conflict {
                    field: "name",
                    message: format!("{} {:?} is being deleted", new.kind, new.name),
                })
            }
            ("update", Some((id, _))) => {
                sqlx::query("UPDATE resources SET spec = $1, order_id = $2, updated_at = $3 WHERE id = $4")
                    .bind(&new.parameters)
                    .bind(&new.id)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
            (_, Some((id, _))) => {
                sqlx::query("UPDATE resources SET status = 'deleting', order_id = $1, updated_at = $2 WHERE id = $3")
                    .bind(&new.id)
                    .bind(now)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                id
            }
        };
        let row = OrderRow {
            id: new.id,
            tenant_id: new.tenant_id,
            action: new.action,
            kind: new.kind,
            name: new.name,
            parameters: new.parameters,
            state: "accepted".into(),
            requester: new.requester,
            idempotency_key: new.idempotency_key,
            request_hash: new.request_hash,
            resource_id,
            path: new.path,
            merge_policy: new.merge_policy,
            approved: false,
            error: None,
            reviewers: new.reviewers,
            required_approvals: new.required_approvals,
            created_at: now,
            updated_at: now,
        };
        let res = sqlx::query(
            "INSERT INTO orders (id, tenant_id, action, kind, name, parameters, state, requester, idempotency_key, \
             request_hash, resource_id, path, merge_policy, approved, reviewers, required_approvals, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, $14, $15, $16, $16)",
        )
        .bind(&row.id)
        .bind(&row.tenant_id)
        .bind(&row.action)
        .bind(&row.kind)
        .bind(&row.name)
        .bind(&row.parameters)
        .bind(&row.state)
        .bind(&row.requester)
        .bind(&row.idempotency_key)
        .bind(&row.request_hash)
        .bind(&row.resource_id)
        .bind(&row.path)
        .bind(&row.merge_policy)
        .bind(row.reviewers.join(","))
        .bind(row.required_approvals)
        .bind(now)
        .execute(&mut *tx)
        .await;
        match res {
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Conflict {
                    field: "Idempotency-Key",
                    message: "idempotency key was used concurrently; retry to get the stored order".into(),
                })
            }
            other => other?,
        };
        event(&mut tx, &row.id, "accepted", now, None).await?;
        let mut row = row;
        if let Some((_, Some(message))) = &withdrawn {
            set_state(&mut tx, &row.id, "ready", now, Some(message)).await?;
            row.state = "ready".into();
        }
        tx.commit().await?;
        Ok(match superseded {
            Some(superseded) => Accepted::Superseding { order: row, superseded: Box::new(superseded) },
            None => Accepted::Created(row),
        })
    }

    /// Orders of one tenant the worker has to drive: accepted ones, and open PRs that may be merged
    /// (auto-merge policy or approved). Oldest first.
    pub async fn pending_orders(&self, tenant_id: &str, limit: i64) -> Result<Vec<OrderRow>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND (state = 'accepted' OR \
             (state = 'pr_open' AND (merge_policy = 'auto' OR approved = 1))) ORDER BY created_at, id LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).bind(limit).fetch_all(&self.pool).await?;
        orders(rows)
    }

    /// Tenants that have orders for the worker (used at start-up to resume after a crash).
    pub async fn tenants_with_pending_orders(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT DISTINCT tenant_id FROM orders WHERE state = 'accepted' OR \
             (state = 'pr_open' AND (merge_policy = 'auto' OR approved = 1))",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| r.try_get("tenant_id")).collect::<sqlx::Result<_>>()?)
    }

    /// Record the order's pull request as opened (`pr_open`). Idempotent: an existing PR is returned.
    pub async fn record_pr_opened(&self, order: &OrderRow, pr: NewPullRequest) -> Result<PullRequestRow> {
        let rows = self.record_outcomes(vec![Outcome::Opened { order: order.clone(), pr }]).await?;
        rows.into_iter().flatten().next().ok_or(StoreError::NotFound("pull request"))
    }

    /// Record the order's pull request as merged with `merge_commit` (opening it first if it was not
    /// recorded yet), move the order to `merged` and apply the merge to the resource row.
    pub async fn record_merged(
        &self,
        order: &OrderRow,
        pr: NewPullRequest,
        merge_commit: &str,
        message: Option<&str>,
    ) -> Result<PullRequestRow> {
        let outcome = Outcome::Merged {
            order: order.clone(),
            pr,
            merge_commit: merge_commit.to_string(),
            message: message.map(String::from),
        };
        let rows = self.record_outcomes(vec![outcome]).await?;
        rows.into_iter().flatten().next().ok_or(StoreError::NotFound("pull request"))
    }

    /// Move the order to `failed` (or `rejected`), closing its PR, and undo its effect on the resource row.
    pub async fn record_failed(&self, order: &OrderRow, state: &str, error: &str) -> Result<()> {
        let outcome = Outcome::Failed { order: order.clone(), state: state.to_string(), error: error.to_string() };
        self.record_outcomes(vec![outcome]).await.map(|_| ())
    }

    /// Record what the worker did with a batch of orders, in one transaction (one commit for many
    /// orders keeps the single SQLite writer free for the API). Returns each outcome's PR, if any.
    pub async fn record_outcomes(&self, outcomes: Vec<Outcome>) -> Result<Vec<Option<PullRequestRow>>> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let mut out = Vec::with_capacity(outcomes.len());
        for outcome in outcomes {
            out.push(match outcome {
                Outcome::Opened { order, pr } => Some(open_pr(&mut tx, &order, &pr).await?),
                Outcome::Merged { order, pr, merge_commit, message } => {
                    Some(merge_pr(&mut tx, &order, pr, &merge_commit, message.as_deref()).await?)
                }
                Outcome::Failed { order, state, error } => {
                    fail_order(&mut tx, &order, &state, &error).await?;
                    None
                }
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Approve a review-required order whose PR is open, so the worker merges it.
    pub async fn approve_order(&self, tenant_id: &str, order_id: &str, approver: &str) -> Result<OrderRow> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND tenant_id = $2");
        let Some(row) = sqlx::query(&sql).bind(order_id).bind(tenant_id).fetch_optional(&mut *tx).await? else {
            return Err(StoreError::NotFound("order"));
        };
        let mut order = model::order(&row)?;
        if order.merge_policy != "review" {
            return Err(StoreError::InvalidState("order does not require review: it is merged automatically".into()));
        }
        if order.approved {
            return Err(StoreError::InvalidState("order is already approved".into()));
        }
        if order.state != "pr_open" && order.state != "accepted" {
            return Err(StoreError::InvalidState(format!("order is {}, not awaiting review", order.state)));
        }
        let now = now_us();
        sqlx::query("UPDATE orders SET approved = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(order_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE pull_requests SET review_state = 'approved', reviewed_by = $1, updated_at = $2 WHERE order_id = $3",
        )
        .bind(approver)
        .bind(now)
        .bind(order_id)
        .execute(&mut *tx)
        .await?;
        event(&mut tx, order_id, &order.state, now, Some(&format!("approved by {approver}"))).await?;
        tx.commit().await?;
        order.approved = true;
        order.updated_at = now;
        Ok(order)
    }

    /// Number of orders per state, over all tenants (for metrics).
    pub async fn order_counts(&self) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM orders GROUP BY state ORDER BY state")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect::<sqlx::Result<_>>()?)
    }

    /// Reject a review-required order whose PR is open and not approved: the order becomes
    /// `rejected`, the PR `closed`, and the order's effect on the resource row is undone (a rejected
    /// create removes the resource, which never reached `main`).
    pub async fn reject_order(&self, tenant_id: &str, order_id: &str, reason: &str) -> Result<OrderRow> {
        let _w = self.writer().await;
        let mut tx = self.begin_events().await?;
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND tenant_id = $2");
        let Some(row) = sqlx::query(&sql).bind(order_id).bind(tenant_id).fetch_optional(&mut *tx).await? else {
            return Err(StoreError::NotFound("order"));
        };
        let mut order = model::order(&row)?;
        if order.merge_policy != "review" {
            return Err(StoreError::InvalidState("order does not require review: it is merged automatically".into()));
        }
        if order.approved || order.state != "pr_open" {
            let what = if order.approved { "approved".to_string() } else { order.state.clone() };
            return Err(StoreError::InvalidState(format!("order is {what}, not awaiting review")));
        }
        close_unmerged(&mut tx, &order, "rejected", reason).await?;
        tx.commit().await?;
        order.state = "rejected".into();
        order.error = Some(reason.to_string());
        Ok(order)
    }

    pub async fn order(&self, tenant_id: &str, order_id: &str) -> Result<Option<OrderRow>> {
        let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1 AND tenant_id = $2");
        let row = sqlx::query(&sql).bind(order_id).bind(tenant_id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| model::order(&r)).transpose()?)
    }

    /// The tenant's orders, newest first.
    pub async fn orders(&self, tenant_id: &str, limit: i64) -> Result<Vec<OrderRow>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).bind(limit).fetch_all(&self.pool).await?;
        orders(rows)
    }

    pub async fn order_events(&self, order_id: &str) -> Result<Vec<OrderEvent>> {
        let rows = sqlx::query("SELECT state, at, message FROM order_events WHERE order_id = $1 ORDER BY at, seq")
            .bind(order_id)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(order_event).collect::<sqlx::Result<_>>()?)
    }

    /// The tenant's newest orders with their pull requests and histories, in three queries.
    pub async fn orders_with_details(&self, tenant_id: &str, limit: i64) -> Result<Vec<OrderDetails>> {
        let orders = self.orders(tenant_id, limit).await?;
        let newest = "SELECT id FROM orders WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2";
        let sql = format!("SELECT {PR_COLUMNS} FROM pull_requests WHERE order_id IN ({newest})");
        let mut prs: HashMap<String, PullRequestRow> = HashMap::new();
        for row in sqlx::query(&sql).bind(tenant_id).bind(limit).fetch_all(&self.pool).await? {
            let pr = model::pull_request(&row)?;
            prs.insert(pr.order_id.clone(), pr);
        }
        let sql = format!(
            "SELECT order_id, state, at, message FROM order_events WHERE order_id IN ({newest}) ORDER BY at, seq"
        );
        let mut events: HashMap<String, Vec<OrderEvent>> = HashMap::new();
        for row in sqlx::query(&sql).bind(tenant_id).bind(limit).fetch_all(&self.pool).await? {
            events.entry(row.try_get("order_id")?).or_default().push(order_event(&row)?);
        }
        Ok(orders
            .into_iter()
            .map(|o| {
                let pr = prs.remove(&o.id);
                let history = events.remove(&o.id).unwrap_or_default();
                (o, pr, history)
            })
            .collect())
    }

    pub async fn pull_request_for(&self, order_id: &str) -> Result<Option<PullRequestRow>> {
        let sql = format!("SELECT {PR_COLUMNS} FROM pull_requests WHERE order_id = $1");
        let row = sqlx::query(&sql).bind(order_id).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| model::pull_request(&r)).transpose()?)
    }

    pub async fn pull_requests(&self, tenant_id: &str) -> Result<Vec<PullRequestRow>> {
        let sql = format!("SELECT {PR_COLUMNS} FROM pull_requests WHERE tenant_id = $1 ORDER BY number");
        let rows = sqlx::query(&sql).bind(tenant_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(model::pull_request).collect::<sqlx::Result<_>>()?)
    }
}

/// An entry of the live-event log, with its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedEvent {
    pub seq: i64,
    pub kind: String,
    pub name: String,
    pub what: Logged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logged {
    /// An order changed state.
    Order { order_id: String, state: String, message: Option<String> },
    /// A resource's status or URL changed, as the cluster reports it.
    Service { status: String, url: Option<String>, message: Option<String> },
}

impl Store {
    /// The tenant's live events (order and service events) after sequence number `after`, oldest first, at most
    /// `limit`.
    pub async fn events_since(&self, tenant_id: &str, after: i64, limit: i64) -> Result<Vec<LoggedEvent>> {
        let orders = sqlx::query(
            "SELECT e.seq, e.order_id, e.state, e.message, o.kind, o.name FROM order_events e \
             JOIN orders o ON o.id = e.order_id \
             WHERE e.tenant_id = $1 AND e.seq > $2 ORDER BY e.seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let services = sqlx::query(
            "SELECT seq, kind, name, status, url, message FROM service_events \
             WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(tenant_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let logged = |r: &AnyRow, what: Logged| -> sqlx::Result<LoggedEvent> {
            Ok(LoggedEvent { seq: r.try_get("seq")?, kind: r.try_get("kind")?, name: r.try_get("name")?, what })
        };
        let mut events = Vec::with_capacity(orders.len() + services.len());
        for r in &orders {
            let (order_id, state, message) = (r.try_get("order_id")?, r.try_get("state")?, r.try_get("message")?);
            events.push(logged(r, Logged::Order { order_id, state, message })?);
        }
        for r in &services {
            let (status, url, message) = (r.try_get("status")?, r.try_get("url")?, r.try_get("message")?);
            events.push(logged(r, Logged::Service { status, url, message })?);
        }
        // Each list holds every one of its events up to its own last: merged, the first `limit` are complete.
        events.sort_by_key(|e| e.seq);
        events.truncate(limit.max(0) as usize);
        Ok(events)
    }

    /// The newest sequence number of the live-event log (0 when empty): where a new subscriber starts.
    pub async fn last_event_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT value FROM event_seq WHERE id = 1").fetch_one(&self.pool).await?;
        Ok(row.try_get("value")?)
    }
}

fn order_event(r: &AnyRow) -> sqlx::Result<OrderEvent> {
    Ok(OrderEvent { state: r.try_get("state")?, at: r.try_get("at")?, message: r.try_get("message")? })
}

fn orders(rows: Vec<AnyRow>) -> Result<Vec<OrderRow>> {
    Ok(rows.iter().map(model::order).collect::<sqlx::Result<_>>()?)
}

pub(crate) async fn event(
    tx: &mut Transaction<'_, Any>,
    order_id: &str,
    state: &str,
    at: i64,
    message: Option<&str>,
) -> Result<()> {
    let seq = next_seq(tx).await?;
    sqlx::query(
        "INSERT INTO order_events (order_id, state, at, message, seq, tenant_id) \
         SELECT $1, $2, $3, $4, $5, tenant_id FROM orders WHERE id = $6",
    )
    .bind(order_id)
    .bind(state)
    .bind(at)
    .bind(message)
    .bind(seq)
    .bind(order_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The next number of the live-event log. The counter row stays locked until commit, so sequence order is commit
/// order (see migration 0004).
pub(crate) async fn next_seq(tx: &mut Transaction<'_, Any>) -> Result<i64> {
    let row =
        sqlx::query("UPDATE event_seq SET value = value + 1 WHERE id = 1 RETURNING value").fetch_one(&mut **tx).await?;
    Ok(row.try_get("value")?)
}

pub(crate) async fn set_state(
    tx: &mut Transaction<'_, Any>,
    order_id: &str,
    state: &str,
    at: i64,
    message: Option<&str>,
) -> Result<()> {
    sqlx::query("UPDATE orders SET state = $1, updated_at = $2 WHERE id = $3")
        .bind(state)
        .bind(at)
        .bind(order_id)
        .execute(&mut **tx)
        .await?;
    event(tx, order_id, state, at, message).await
}

/// Insert the PR row for `order` unless it exists; move an `accepted` order to `pr_open`.
async fn open_pr(tx: &mut Transaction<'_, Any>, order: &OrderRow, pr: &NewPullRequest) -> Result<PullRequestRow> {
    let sql = format!("SELECT {PR_COLUMNS} FROM pull_requests WHERE order_id = $1");
    if let Some(row) = sqlx::query(&sql).bind(&order.id).fetch_optional(&mut **tx).await? {
        return Ok(model::pull_request(&row)?);
    }
    let number: i64 = match pr.number {
        Some(n) => n,
        None => sqlx::query("SELECT COALESCE(MAX(number), 0) + 1 AS n FROM pull_requests WHERE tenant_id = $1")
            .bind(&order.tenant_id)
            .fetch_one(&mut **tx)
            .await?
            .try_get("n")?,
    };
    let now = now_us();
    let row = PullRequestRow {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: order.tenant_id.clone(),
        order_id: order.id.clone(),
        number,
        branch: pr.branch.clone(),
        state: "open".into(),
        merge_policy: order.merge_policy.clone(),
        head_commit: pr.head_commit.clone(),
        merge_commit: None,
        title: pr.title.clone(),
        body: pr.body.clone(),
        url: pr.url.clone(),
        review_state: (order.merge_policy == "review").then(|| "pending".to_string()),
        reviewed_by: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO pull_requests (id, tenant_id, order_id, number, branch, state, merge_policy, head_commit, \
         title, body, url, review_state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.order_id)
    .bind(row.number)
    .bind(&row.branch)
    .bind(&row.state)
    .bind(&row.merge_policy)
    .bind(&row.head_commit)
    .bind(&row.title)
    .bind(&row.body)
    .bind(&row.url)
    .bind(&row.review_state)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    set_state(tx, &order.id, "pr_open", now, None).await?;
    Ok(row)
}

async fn merge_pr(
    tx: &mut Transaction<'_, Any>,
    order: &OrderRow,
    pr: NewPullRequest,
    merge_commit: &str,
    message: Option<&str>,
) -> Result<PullRequestRow> {
    let mut row = open_pr(tx, order, &pr).await?;
    if row.state == "merged" {
        return Ok(row);
    }
    let now = now_us();
    sqlx::query(
        "UPDATE pull_requests SET state = 'merged', head_commit = $1, merge_commit = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(&pr.head_commit)
    .bind(merge_commit)
    .bind(now)
    .bind(&row.id)
    .execute(&mut **tx)
    .await?;
    set_state(tx, &order.id, "merged", now, message).await?;
    if order.action == "delete" {
        sqlx::query("DELETE FROM resources WHERE id = $1 AND order_id = $2")
            .bind(&order.resource_id)
            .bind(&order.id)
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query("UPDATE resources SET updated_at = $1 WHERE id = $2 AND order_id = $3")
            .bind(now)
            .bind(&order.resource_id)
            .bind(&order.id)
            .execute(&mut **tx)
            .await?;
    }
    row.state = "merged".into();
    row.head_commit = pr.head_commit;
    row.merge_commit = Some(merge_commit.to_string());
    row.updated_at = now;
    Ok(row)
}

/// An order that never reached `main` ends (`rejected`, `failed`): as [`fail_order`], and a create's resource,
/// which was never applied, goes.
pub(crate) async fn close_unmerged(
    tx: &mut Transaction<'_, Any>,
    order: &OrderRow,
    state: &str,
    reason: &str,
) -> Result<()> {
    fail_order(tx, order, state, reason).await?;
    if order.action == "create" {
        sqlx::query("DELETE FROM resources WHERE id = $1 AND order_id = $2")
            .bind(&order.resource_id)
            .bind(&order.id)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

pub(crate) async fn fail_order(
    tx: &mut Transaction<'_, Any>,
    order: &OrderRow,
    state: &str,
    error: &str,
) -> Result<()> {
    let now = now_us();
    sqlx::query("UPDATE orders SET state = $1, error = $2, updated_at = $3 WHERE id = $4")
        .bind(state)
        .bind(error)
        .bind(now)
        .bind(&order.id)
        .execute(&mut **tx)
        .await?;
    event(tx, &order.id, state, now, Some(error)).await?;
    sqlx::query("UPDATE pull_requests SET state = 'closed', updated_at = $1 WHERE order_id = $2 AND state = 'open'")
        .bind(now)
        .bind(&order.id)
        .execute(&mut **tx)
        .await?;
    let undo = match order.action.as_str() {
        "create" => "UPDATE resources SET status = 'failed', updated_at = $1 WHERE id = $2 AND order_id = $3",
        "delete" => "UPDATE resources SET status = 'pending', updated_at = $1 WHERE id = $2 AND order_id = $3",
        _ => "UPDATE resources SET updated_at = $1 WHERE id = $2 AND order_id = $3",
    };
    sqlx::query(undo).bind(now).bind(&order.resource_id).bind(&order.id).execute(&mut **tx).await?;
    Ok(())
}

/// Mark a waiting order `superseded` by a newer one: its PR is closed; the resource row is the newer order's to
/// change.
async fn supersede(tx: &mut Transaction<'_, Any>, order: &OrderRow, message: &str, now: i64) -> Result<()> {
    sqlx::query("UPDATE orders SET state = 'superseded', error = $1, updated_at = $2 WHERE id = $3")
        .bind(message)
        .bind(now)
        .bind(&order.id)
        .execute(&mut **tx)
        .await?;
    event(tx, &order.id, "superseded", now, Some(message)).await?;
    sqlx::query("UPDATE pull_requests SET state = 'closed', updated_at = $1 WHERE order_id = $2 AND state = 'open'")
        .bind(now)
        .bind(&order.id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
