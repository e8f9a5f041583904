//! The tenants' SOPS keys: recipient in clear, identity sealed by the platform's master key (never in plain text).

use sqlx::Row;

use crate::db::now_us;
use crate::{is_unique_violation, Result, Store};

/// A tenant's age key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedKey {
    /// `age1…`: what the tenant's files are encrypted to.
    pub recipient: String,
    /// The identity, age-encrypted to the master key (armored).
    pub sealed: String,
}

impl Store {
    pub async fn sops_key(&self, tenant_id: &str) -> Result<Option<SealedKey>> {
        let row = sqlx::query("SELECT recipient, sealed FROM tenant_sops_keys WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(SealedKey { recipient: r.try_get("recipient")?, sealed: r.try_get("sealed")? })).transpose()
    }

    /// Stores the tenant's key unless it has one; returns the key in force (the existing one if two callers
    /// raced to create it, so a tenant never has two).
    pub async fn insert_sops_key(&self, tenant_id: &str, key: SealedKey) -> Result<SealedKey> {
        let inserted = {
            let _w = self.writer().await;
            sqlx::query(
                "INSERT INTO tenant_sops_keys (tenant_id, recipient, sealed, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(tenant_id)
            .bind(&key.recipient)
            .bind(&key.sealed)
            .bind(now_us())
            .execute(&self.pool)
            .await
        };
        match inserted {
            Ok(_) => Ok(key),
            Err(e) if is_unique_violation(&e) => {
                Ok(self.sops_key(tenant_id).await?.ok_or(crate::StoreError::NotFound("tenant key"))?)
            }
            Err(e) => Err(e.into()),
        }
    }
}
