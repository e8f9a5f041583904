//! Custom domains claimed by tenants for their services, and the orders of one resource (its revision history).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::model::{self, OrderRow, ORDER_COLUMNS};
use crate::{is_unique_violation, now_us, Result, Store, StoreError};

/// A tenant's claim on a custom domain for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainClaim {
    pub tenant_id: String,
    pub domain: String,
    pub service_id: String,
    pub service_name: String,
    /// What the TXT record must hold after `maxcloud-verify=`; public by design (it is published in DNS).
    pub token: String,
    /// When the TXT record was seen (`None`: pending).
    pub verified_at: Option<i64>,
    /// The order that added the domain to the service.
    pub order_id: Option<String>,
    pub created_at: i64,
}

const COLUMNS: &str = "tenant_id, domain, service_id, service_name, token, verified_at, order_id, created_at";

fn claim(row: &AnyRow) -> sqlx::Result<DomainClaim> {
    Ok(DomainClaim {
        tenant_id: row.try_get("tenant_id")?,
        domain: row.try_get("domain")?,
        service_id: row.try_get("service_id")?,
        service_name: row.try_get("service_name")?,
        token: row.try_get("token")?,
        verified_at: row.try_get("verified_at")?,
        order_id: row.try_get("order_id")?,
        created_at: row.try_get("created_at")?,
    })
}

fn taken(domain: &str) -> StoreError {
    StoreError::Conflict { field: "domain", message: format!("{domain} is verified by another organisation") }
}

impl Store {
    /// Claims `domain` for the tenant's service with `token` (pending), or returns the tenant's existing claim of it
    /// for that service. Refused (conflict on `domain`) when another organisation has verified it for a service it
    /// still has (a claim left by a deleted service is dropped) or the tenant claimed it for another service.
    pub async fn claim_domain(
        &self,
        tenant_id: &str,
        domain: &str,
        service_id: &str,
        service_name: &str,
        token: &str,
    ) -> Result<DomainClaim> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let sql = format!("SELECT {COLUMNS} FROM custom_domains WHERE domain = $1");
        let rows = sqlx::query(&sql).bind(domain).fetch_all(&mut *tx).await?;
        let claims = rows.iter().map(claim).collect::<sqlx::Result<Vec<_>>>()?;
        if let Some(own) = claims.iter().find(|c| c.tenant_id == tenant_id) {
            if own.service_id != service_id {
                return Err(StoreError::Conflict {
                    field: "domain",
                    message: format!("{domain} is already added to service {:?}", own.service_name),
                });
            }
            return Ok(own.clone());
        }
        for c in claims.iter().filter(|c| c.verified_at.is_some()) {
            // A verified claim outlives its service only until someone else wants the domain.
            let alive = sqlx::query("SELECT id FROM resources WHERE id = $1")
                .bind(&c.service_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if alive {
                return Err(taken(domain));
            }
            sqlx::query("DELETE FROM custom_domains WHERE tenant_id = $1 AND domain = $2")
                .bind(&c.tenant_id)
                .bind(domain)
                .execute(&mut *tx)
                .await?;
        }
        let now = now_us();
        sqlx::query(
            "INSERT INTO custom_domains (tenant_id, domain, service_id, service_name, token, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(tenant_id)
        .bind(domain)
        .bind(service_id)
        .bind(service_name)
        .bind(token)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DomainClaim {
            tenant_id: tenant_id.into(),
            domain: domain.into(),
            service_id: service_id.into(),
            service_name: service_name.into(),
            token: token.into(),
            verified_at: None,
            order_id: None,
            created_at: now,
        })
    }

    /// The tenant's claim of `domain`.
    pub async fn domain_claim(&self, tenant_id: &str, domain: &str) -> Result<Option<DomainClaim>> {
        let sql = format!("SELECT {COLUMNS} FROM custom_domains WHERE tenant_id = $1 AND domain = $2");
        let row = sqlx::query(&sql).bind(tenant_id).bind(domain).fetch_optional(&self.pool).await?;
        Ok(row.map(|r| claim(&r)).transpose()?)
    }

    /// The tenant's claims for one service, by domain.
    pub async fn domain_claims(&self, tenant_id: &str, service_id: &str) -> Result<Vec<DomainClaim>> {
        let sql =
            format!("SELECT {COLUMNS} FROM custom_domains WHERE tenant_id = $1 AND service_id = $2 ORDER BY domain");
        let rows = sqlx::query(&sql).bind(tenant_id).bind(service_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(claim).collect::<sqlx::Result<_>>()?)
    }

    /// Marks the tenant's claim verified now. Refused (conflict on `domain`) when another organisation verified the
    /// domain first; not found without a claim.
    pub async fn verify_domain(&self, tenant_id: &str, domain: &str) -> Result<DomainClaim> {
        {
            let _w = self.writer().await;
            let res = sqlx::query(
                "UPDATE custom_domains SET verified_at = $1 WHERE tenant_id = $2 AND domain = $3 AND verified_at IS NULL",
            )
            .bind(now_us())
            .bind(tenant_id)
            .bind(domain)
            .execute(&self.pool)
            .await;
            match res {
                Err(e) if is_unique_violation(&e) => return Err(taken(domain)),
                other => other?,
            };
        }
        self.domain_claim(tenant_id, domain).await?.ok_or(StoreError::NotFound("domain"))
    }

    /// Undoes `verify_domain` (the order adding the domain could not be placed): the claim is pending again.
    pub async fn unverify_domain(&self, tenant_id: &str, domain: &str) -> Result<()> {
        let _w = self.writer().await;
        sqlx::query(
            "UPDATE custom_domains SET verified_at = NULL, order_id = NULL WHERE tenant_id = $1 AND domain = $2",
        )
        .bind(tenant_id)
        .bind(domain)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records the order that added the verified domain to its service.
    pub async fn set_domain_order(&self, tenant_id: &str, domain: &str, order_id: &str) -> Result<()> {
        let _w = self.writer().await;
        sqlx::query("UPDATE custom_domains SET order_id = $1 WHERE tenant_id = $2 AND domain = $3")
            .bind(order_id)
            .bind(tenant_id)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Drops the tenant's claim of `domain` (the domain is free for others again); whether there was one.
    pub async fn remove_domain(&self, tenant_id: &str, domain: &str) -> Result<bool> {
        let _w = self.writer().await;
        let res = sqlx::query("DELETE FROM custom_domains WHERE tenant_id = $1 AND domain = $2")
            .bind(tenant_id)
            .bind(domain)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() > 0)
    }

    /// The tenant that verified `domain` for a service it still has, if one did.
    pub async fn domain_owner(&self, domain: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT c.tenant_id FROM custom_domains c JOIN resources r ON r.id = c.service_id \
             WHERE c.domain = $1 AND c.verified_at IS NOT NULL",
        )
        .bind(domain)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get("tenant_id")).transpose()?)
    }

    /// What the cluster last reported the resource serves of its revisions (see `Observation::served`).
    pub async fn served(&self, tenant_id: &str, resource_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT served FROM resources WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(resource_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get::<Option<String>, _>("served")).transpose()?.flatten())
    }

    /// Every order of one resource (its create, updates and delete), oldest first.
    pub async fn resource_orders(&self, tenant_id: &str, resource_id: &str) -> Result<Vec<OrderRow>> {
        let sql = format!(
            "SELECT {ORDER_COLUMNS} FROM orders WHERE tenant_id = $1 AND resource_id = $2 ORDER BY created_at, id"
        );
        let rows = sqlx::query(&sql).bind(tenant_id).bind(resource_id).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(model::order).collect::<sqlx::Result<_>>()?)
    }
}
