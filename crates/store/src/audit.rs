use sqlx::Row;

use crate::model::{AuditEntry, AuditRow};
use crate::{now_us, Result, Store};

impl Store {
    /// Append an entry to the audit log.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<()> {
        self.audit_many(std::slice::from_ref(entry)).await
    }

    /// Append entries to the audit log in one transaction.
    pub async fn audit_many(&self, entries: &[AuditEntry]) -> Result<()> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        for entry in entries {
            sqlx::query(
                "INSERT INTO audit_log (id, at, tenant_id, actor, method, path, status, action, target, detail, source) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(now_us())
            .bind(&entry.tenant_id)
            .bind(&entry.actor)
            .bind(&entry.method)
            .bind(&entry.path)
            .bind(i64::from(entry.status))
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.detail)
            .bind(&entry.source)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest audit entries, of one tenant or (with `None`) of calls made without a tenant.
    pub async fn audit_log(&self, tenant_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = match tenant_id {
            Some(t) => sqlx::query(
                "SELECT id, at, tenant_id, actor, method, path, status, action, target, detail, source FROM audit_log \
                     WHERE tenant_id = $1 ORDER BY at DESC LIMIT $2",
            )
            .bind(t)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
            None => sqlx::query(
                "SELECT id, at, tenant_id, actor, method, path, status, action, target, detail, source FROM audit_log \
                     WHERE tenant_id IS NULL ORDER BY at DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await?,
        };
        rows.iter().map(audit_row).collect::<sqlx::Result<_>>().map_err(Into::into)
    }

    /// One tenant's audit entries matching `query`, newest first. Entries are never changed or removed: the log
    /// is append-only (no API writes it but the audit layer).
    pub async fn audit_query(&self, tenant_id: &str, query: &AuditQuery) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT id, at, tenant_id, actor, method, path, status, action, target, detail, source FROM audit_log \
             WHERE tenant_id = $1 AND at >= $2 AND at < $3 AND ($4 = '' OR action = $4) \
             ORDER BY at DESC, id DESC LIMIT $5",
        )
        .bind(tenant_id)
        .bind(query.since_us.unwrap_or(i64::MIN))
        .bind(query.until_us.unwrap_or(i64::MAX))
        .bind(query.action.clone().unwrap_or_default())
        .bind(query.limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect::<sqlx::Result<_>>().map_err(Into::into)
    }
}

/// Which audit entries to read: a time window in microseconds since the epoch (`since` inclusive, `until`
/// exclusive), one action (`orders.create`), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub since_us: Option<i64>,
    pub until_us: Option<i64>,
    pub action: Option<String>,
    pub limit: i64,
}

fn audit_row(r: &sqlx::any::AnyRow) -> sqlx::Result<AuditRow> {
    Ok(AuditRow {
        id: r.try_get("id")?,
        at: r.try_get("at")?,
        entry: AuditEntry {
            tenant_id: r.try_get("tenant_id")?,
            actor: r.try_get("actor")?,
            method: r.try_get("method")?,
            path: r.try_get("path")?,
            status: u16::try_from(r.try_get::<i64, _>("status")?).unwrap_or(0),
            action: r.try_get("action")?,
            target: r.try_get("target")?,
            detail: r.try_get("detail")?,
            source: r.try_get("source")?,
        },
    })
}
