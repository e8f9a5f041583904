use sqlx::Row;

use crate::model::{self, ApiKeyRow, Role, Tenant, User};
use crate::{is_unique_violation, now_us, Result, Store, StoreError};

/// What registration creates: a tenant, its first user (admin) and that user's first API key.
#[derive(Debug, Clone)]
pub struct Registration {
    pub tenant: Tenant,
    pub user: User,
    pub key: ApiKeyRow,
}

/// The hashed form of a new API key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub prefix: String,
    pub hash: String,
}

impl Store {
    /// Register an organisation: tenant + admin user + API key, in one transaction.
    ///
    /// `slug_for(n)` gives the slug candidate for attempt `n` (1 = the plain slug, 2.. = suffixed); the
    /// first free one is taken.
    pub async fn register(
        &self,
        email: &str,
        org_name: &str,
        slug_for: impl Fn(u32) -> String,
        key: NewKey,
    ) -> Result<Registration> {
        let _w = self.writer().await;
        let mut attempt = 1u32;
        loop {
            match self.try_register(email, org_name, &slug_for, attempt, &key).await {
                // A concurrent registration (PostgreSQL) took the same slug first: try the next one.
                Err(StoreError::Conflict { field: "slug", .. }) if attempt < 1000 => attempt += 1,
                other => return other,
            }
        }
    }

    async fn try_register(
        &self,
        email: &str,
        org_name: &str,
        slug_for: &impl Fn(u32) -> String,
        mut attempt: u32,
        key: &NewKey,
    ) -> Result<Registration> {
        let mut tx = self.pool.begin().await?;
        let taken: Option<String> = sqlx::query("SELECT id FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(&mut *tx)
            .await?
            .map(|r| r.get("id"));
        if taken.is_some() {
            return Err(StoreError::Conflict {
                field: "email",
                message: format!("a user with email {email:?} is already registered"),
            });
        }
        let slug = loop {
            let candidate = slug_for(attempt);
            let exists = sqlx::query("SELECT id FROM tenants WHERE slug = $1")
                .bind(&candidate)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
            if !exists {
                break candidate;
            }
            attempt += 1;
        };
        let now = now_us();
        let tenant = Tenant { id: uuid::Uuid::new_v4().to_string(), slug, name: org_name.to_string(), created_at: now };
        let res = sqlx::query("INSERT INTO tenants (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&tenant.id)
            .bind(&tenant.slug)
            .bind(&tenant.name)
            .bind(now)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            return Err(if is_unique_violation(&e) {
                StoreError::Conflict { field: "slug", message: "organisation slug taken".into() }
            } else {
                e.into()
            });
        }
        let user = match insert_user(&mut tx, email, now).await {
            Ok(user) => user,
            Err(e) => {
                return Err(if is_unique_violation(&e) {
                    StoreError::Conflict {
                        field: "email",
                        message: format!("a user with email {email:?} is already registered"),
                    }
                } else {
                    e.into()
                })
            }
        };
        sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&tenant.id)
            .bind(&user.id)
            .bind(Role::Admin.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let key = insert_key(&mut tx, &tenant.id, &user.id, key, now).await?;
        tx.commit().await?;
        Ok(Registration { tenant, user, key })
    }

    pub async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| model::tenant(&r, "")).transpose()?)
    }

    pub async fn tenant_by_id(&self, id: &str) -> Result<Option<Tenant>> {
        let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| model::tenant(&r, "")).transpose()?)
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>> {
        let rows =
            sqlx::query("SELECT id, slug, name, created_at FROM tenants ORDER BY slug").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(|r| model::tenant(r, "")).collect::<sqlx::Result<_>>()?)
    }
}

/// A new user with `email`, created at `now`.
pub(crate) async fn insert_user(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    email: &str,
    now: i64,
) -> sqlx::Result<User> {
    let user = User { id: uuid::Uuid::new_v4().to_string(), email: email.to_string(), created_at: now };
    sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(user)
}

pub(crate) async fn insert_key(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant_id: &str,
    user_id: &str,
    key: &NewKey,
    now: i64,
) -> Result<ApiKeyRow> {
    let row = ApiKeyRow {
        id: uuid::Uuid::new_v4().to_string(),
        tenant_id: tenant_id.to_string(),
        user_id: user_id.to_string(),
        name: key.name.clone(),
        prefix: key.prefix.clone(),
        created_at: now,
        last_used_at: None,
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_keys (id, tenant_id, user_id, name, prefix, hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&row.id)
    .bind(&row.tenant_id)
    .bind(&row.user_id)
    .bind(&row.name)
    .bind(&row.prefix)
    .bind(&key.hash)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(row)
}
