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
                "INSERT INTO audit_log (id, at, tenant_id, actor, method, path, status, action, target, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
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
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The newest audit entries, of one tenant or (with `None`) of calls made without a tenant.
    pub async fn audit_log(&self, tenant_id: Option<&str>, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = match tenant_id {
            Some(t) => {
                sqlx::query(
                    "SELECT id, at, tenant_id, actor, method, path, status, action, target, detail FROM audit_log \
                     WHERE tenant_id = $1 ORDER BY at DESC LIMIT $2",
                )
                .bind(t)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(
                    "SELECT id, at, tenant_id, actor, method, path, status, action, target, detail FROM audit_log \
                     WHERE tenant_id IS NULL ORDER BY at DESC LIMIT $1",
                )
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter()
            .map(|r| {
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
                    },
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
