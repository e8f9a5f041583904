//! Invitations: an admin invites an email address into the organisation with a role; whoever holds
//! the (hashed) token accepts it once before it expires and gets a membership and an API key.

use sqlx::Row;

use crate::model::{self, ApiKeyRow, Role, Tenant, User};
use crate::tenants::{insert_key, NewKey};
use crate::{now_us, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invite {
    pub id: String,
    pub tenant_id: String,
    pub email: String,
    pub role: Role,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
}

/// What accepting an invite yields.
#[derive(Debug, Clone)]
pub struct Joined {
    pub tenant: Tenant,
    pub user: User,
    pub role: Role,
    pub key: ApiKeyRow,
}

/// A member of an organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: i64,
}

impl Store {
    /// Store an invite (token hashed) valid for `ttl_us` microseconds.
    pub async fn create_invite(
        &self,
        tenant_id: &str,
        invited_by: &str,
        email: &str,
        role: Role,
        hash: &str,
        ttl_us: i64,
    ) -> Result<Invite> {
        let _w = self.writer().await;
        let member = sqlx::query(
            "SELECT 1 AS one FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 AND u.email = $2",
        )
        .bind(tenant_id)
        .bind(email)
        .fetch_optional(&self.pool)
        .await?;
        if member.is_some() {
            return Err(StoreError::Conflict {
                field: "email",
                message: format!("{email} is already a member of this organisation"),
            });
        }
        let now = now_us();
        let invite = Invite {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant_id.to_string(),
            email: email.to_string(),
            role,
            created_at: now,
            expires_at: now + ttl_us,
            accepted_at: None,
        };
        sqlx::query(
            "INSERT INTO invites (id, tenant_id, email, role, hash, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&invite.id)
        .bind(tenant_id)
        .bind(email)
        .bind(role.as_str())
        .bind(hash)
        .bind(invited_by)
        .bind(now)
        .bind(invite.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(invite)
    }

    /// Accept the invite whose token hashes to `hash`: creates the user if the email is new, the
    /// membership and an API key, and marks the invite used — all in one transaction.
    pub async fn accept_invite(&self, hash: &str, key: NewKey) -> Result<Joined> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "SELECT i.id, i.tenant_id, i.email, i.role, i.expires_at, i.accepted_at, \
                    t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.created_at AS t_created_at \
             FROM invites i JOIN tenants t ON t.id = i.tenant_id WHERE i.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Err(StoreError::NotFound("invite")) };
        let now = now_us();
        if row.try_get::<Option<i64>, _>("accepted_at")?.is_some() {
            return Err(StoreError::InvalidState("this invite was already accepted".into()));
        }
        if row.try_get::<i64, _>("expires_at")? < now {
            return Err(StoreError::InvalidState("this invite has expired".into()));
        }
        let tenant = model::tenant(&row, "t_")?;
        let email: String = row.try_get("email")?;
        let role = model::role(&row.try_get::<String, _>("role")?);
        let existing = sqlx::query("SELECT id, email, created_at FROM users WHERE email = $1")
            .bind(&email)
            .fetch_optional(&mut *tx)
            .await?;
        let user = match existing {
            Some(r) => model::user(&r, "")?,
            None => {
                let user = User { id: uuid::Uuid::new_v4().to_string(), email: email.clone(), created_at: now };
                sqlx::query("INSERT INTO users (id, email, created_at) VALUES ($1, $2, $3)")
                    .bind(&user.id)
                    .bind(&user.email)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                user
            }
        };
        let res = sqlx::query("INSERT INTO memberships (tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)")
            .bind(&tenant.id)
            .bind(&user.id)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await;
        if let Err(e) = res {
            return Err(if crate::is_unique_violation(&e) {
                StoreError::Conflict { field: "token", message: format!("{email} is already a member") }
            } else {
                e.into()
            });
        }
        let key = insert_key(&mut tx, &tenant.id, &user.id, &key, now).await?;
        sqlx::query("UPDATE invites SET accepted_at = $1 WHERE id = $2")
            .bind(now)
            .bind(row.try_get::<String, _>("id")?)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Joined { tenant, user, role, key })
    }

    /// The organisation's members, oldest first.
    pub async fn members(&self, tenant_id: &str) -> Result<Vec<Member>> {
        let rows = sqlx::query(
            "SELECT u.id, u.email, u.created_at, m.role, m.created_at AS joined_at FROM memberships m \
             JOIN users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY m.created_at, u.email",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Member {
                    user: model::user(r, "")?,
                    role: model::role(&r.try_get::<String, _>("role")?),
                    joined_at: r.try_get("joined_at")?,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }
}
