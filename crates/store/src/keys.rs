use sqlx::Row;

use crate::model::{self, ApiKeyRow, Principal};
use crate::tenants::{insert_key, NewKey};
use crate::{now_us, Result, Store};

/// `last_used_at` is refreshed at most this often per key, to keep reads free of writes.
const TOUCH_INTERVAL_US: i64 = 60 * 1_000_000;

impl Store {
    /// Resolve an API key by its hash; revoked keys resolve to nothing.
    pub async fn principal_by_key_hash(&self, hash: &str) -> Result<Option<Principal>> {
        let row = sqlx::query(
            "SELECT k.id AS k_id, k.tenant_id AS k_tenant_id, k.user_id AS k_user_id, k.name AS k_name, \
                    k.prefix AS k_prefix, k.created_at AS k_created_at, k.last_used_at AS k_last_used_at, \
                    k.revoked_at AS k_revoked_at, \
                    t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.created_at AS t_created_at, \
                    u.id AS u_id, u.email AS u_email, u.created_at AS u_created_at, m.role AS role \
             FROM api_keys k \
             JOIN tenants t ON t.id = k.tenant_id \
             JOIN users u ON u.id = k.user_id \
             JOIN memberships m ON m.tenant_id = k.tenant_id AND m.user_id = k.user_id \
             WHERE k.hash = $1 AND k.revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let key = model::api_key(&row, "k_")?;
        let principal = Principal {
            tenant: model::tenant(&row, "t_")?,
            user: model::user(&row, "u_")?,
            role: model::role(&row.try_get::<String, _>("role")?),
            key,
            on_behalf_of: None,
        };
        let now = now_us();
        if principal.key.last_used_at.is_none_or(|t| now - t > TOUCH_INTERVAL_US) {
            let _w = self.writer().await;
            sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(&principal.key.id)
                .execute(&self.pool)
                .await?;
        }
        Ok(Some(principal))
    }

    pub async fn create_api_key(&self, tenant_id: &str, user_id: &str, key: NewKey) -> Result<ApiKeyRow> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let row = insert_key(&mut tx, tenant_id, user_id, &key, now_us()).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The tenant's active keys, oldest first.
    pub async fn api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKeyRow>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, user_id, name, prefix, created_at, last_used_at, revoked_at \
             FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(|r| model::api_key(r, "")).collect::<sqlx::Result<_>>()?)
    }

    /// Revoke a key of the tenant; `false` if there is no such active key in this tenant.
    pub async fn revoke_api_key(&self, tenant_id: &str, key_id: &str) -> Result<bool> {
        self.revoke("api_keys", tenant_id, key_id).await
    }

    /// Revoke a Git read token of the tenant; `false` if there is no such active token in this tenant.
    pub async fn revoke_git_token(&self, tenant_id: &str, token_id: &str) -> Result<bool> {
        self.revoke("git_tokens", tenant_id, token_id).await
    }

    async fn revoke(&self, table: &'static str, tenant_id: &str, id: &str) -> Result<bool> {
        let _w = self.writer().await;
        let sql = format!("UPDATE {table} SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL");
        let done = sqlx::query(&sql).bind(now_us()).bind(id).bind(tenant_id).execute(&self.pool).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Store a new Git read token (hashed) for the tenant; returns its id.
    pub async fn create_git_token(&self, tenant_id: &str, hash: &str) -> Result<(String, i64)> {
        let _w = self.writer().await;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_us();
        sqlx::query("INSERT INTO git_tokens (id, tenant_id, hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&id)
            .bind(tenant_id)
            .bind(hash)
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok((id, now))
    }

    /// The tenant a Git read token belongs to, if it is valid.
    pub async fn tenant_by_git_token_hash(&self, hash: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT tenant_id FROM git_tokens WHERE hash = $1 AND revoked_at IS NULL")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("tenant_id")).transpose()?)
    }
}
