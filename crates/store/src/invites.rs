//! Invitations: an admin invites an email address into the organisation with a role; whoever holds
//! the (hashed) token accepts it once before it expires and gets a membership and an API key.

use sqlx::Row;

use crate::model::{self, ApiKeyRow, Role, Tenant, User};
use crate::tenants::{insert_key, insert_user, NewKey};
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
    pub revoked_at: Option<i64>,
    /// Whether the invite e-mail went out: `none` (no mailer), `pending` (being sent), `sent`.
    pub mail: String,
}

/// An invite as its organisation's admins see it (never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InviteInfo {
    pub invite: Invite,
    /// `pending`, `accepted`, `expired` or `revoked`, as of the listing.
    pub state: &'static str,
    /// E-mail of the admin who invited.
    pub invited_by: String,
}

/// Why an invite token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteRefused {
    /// No invite has this token.
    Unknown,
    /// The invite was already used.
    Accepted,
    /// The invite's time ran out.
    Expired,
    /// An admin revoked the invite.
    Revoked,
}

/// What revoking an invite did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The invite is revoked now.
    Done,
    /// No such invite in this organisation.
    NotFound,
    /// It was accepted already: the person is a member (remove the membership instead).
    AlreadyAccepted,
    /// It was revoked before.
    AlreadyRevoked,
}

/// The state of an invite at `now`.
fn invite_state(accepted_at: Option<i64>, revoked_at: Option<i64>, expires_at: i64, now: i64) -> &'static str {
    if accepted_at.is_some() {
        "accepted"
    } else if revoked_at.is_some() {
        "revoked"
    } else if expires_at < now {
        "expired"
    } else {
        "pending"
    }
}

fn invite_row(r: &sqlx::any::AnyRow) -> sqlx::Result<Invite> {
    Ok(Invite {
        id: r.try_get("id")?,
        tenant_id: r.try_get("tenant_id")?,
        email: r.try_get("email")?,
        role: model::role(&r.try_get::<String, _>("role")?),
        created_at: r.try_get("created_at")?,
        expires_at: r.try_get("expires_at")?,
        accepted_at: r.try_get("accepted_at")?,
        revoked_at: r.try_get("revoked_at")?,
        mail: r.try_get("mail")?,
    })
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
    /// Store an invite (token hashed) valid for `ttl_us` microseconds, with no e-mail to send.
    pub async fn create_invite(
        &self,
        tenant_id: &str,
        invited_by: &str,
        email: &str,
        role: Role,
        hash: &str,
        ttl_us: i64,
    ) -> Result<Invite> {
        self.create_invite_with_mail(tenant_id, invited_by, email, role, hash, ttl_us, "none").await
    }

    /// Store an invite (token hashed) valid for `ttl_us` microseconds; `mail` is its e-mail state (`none` or
    /// `pending`, see [`Invite::mail`]).
    #[allow(clippy::too_many_arguments)]
    pub async fn create_invite_with_mail(
        &self,
        tenant_id: &str,
        invited_by: &str,
        email: &str,
        role: Role,
        hash: &str,
        ttl_us: i64,
        mail: &str,
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
            revoked_at: None,
            mail: mail.to_string(),
        };
        sqlx::query(
            "INSERT INTO invites (id, tenant_id, email, role, hash, invited_by, created_at, expires_at, mail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&invite.id)
        .bind(tenant_id)
        .bind(email)
        .bind(role.as_str())
        .bind(hash)
        .bind(invited_by)
        .bind(now)
        .bind(invite.expires_at)
        .bind(mail)
        .execute(&self.pool)
        .await?;
        Ok(invite)
    }

    /// Record that the invite's e-mail went out (`sent`).
    pub async fn set_invite_mail(&self, tenant_id: &str, id: &str, mail: &str) -> Result<()> {
        let _w = self.writer().await;
        sqlx::query("UPDATE invites SET mail = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(mail)
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remove an invite that was never usable (its e-mail could not be sent); only while not accepted.
    pub async fn delete_unsent_invite(&self, tenant_id: &str, id: &str) -> Result<bool> {
        let _w = self.writer().await;
        let res = sqlx::query("DELETE FROM invites WHERE tenant_id = $1 AND id = $2 AND accepted_at IS NULL")
            .bind(tenant_id)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(res.rows_affected() == 1)
    }

    /// The organisation's invites, newest first, each with its state at `now` and who invited.
    pub async fn invites(&self, tenant_id: &str) -> Result<Vec<InviteInfo>> {
        let rows = sqlx::query(
            "SELECT i.id, i.tenant_id, i.email, i.role, i.created_at, i.expires_at, i.accepted_at, i.revoked_at, \
                    i.mail, u.email AS inviter \
             FROM invites i JOIN users u ON u.id = i.invited_by \
             WHERE i.tenant_id = $1 ORDER BY i.created_at DESC, i.id",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        let now = now_us();
        rows.iter()
            .map(|r| {
                let invite = invite_row(r)?;
                Ok(InviteInfo {
                    state: invite_state(invite.accepted_at, invite.revoked_at, invite.expires_at, now),
                    invited_by: r.try_get("inviter")?,
                    invite,
                })
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    /// Revoke a pending (or expired) invite of the organisation: its token is refused from now on.
    pub async fn revoke_invite(&self, tenant_id: &str, id: &str) -> Result<Revoked> {
        let _w = self.writer().await;
        let now = now_us();
        let res = sqlx::query(
            "UPDATE invites SET revoked_at = $1 \
             WHERE tenant_id = $2 AND id = $3 AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(tenant_id)
        .bind(id)
        .execute(&self.pool)
        .await?;
        if res.rows_affected() == 1 {
            return Ok(Revoked::Done);
        }
        let row = sqlx::query("SELECT accepted_at, revoked_at FROM invites WHERE tenant_id = $1 AND id = $2")
            .bind(tenant_id)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => Revoked::NotFound,
            Some(r) if r.try_get::<Option<i64>, _>("accepted_at")?.is_some() => Revoked::AlreadyAccepted,
            Some(_) => Revoked::AlreadyRevoked,
        })
    }

    /// Accept the invite whose token hashes to `hash` (see [`Store::try_accept_invite`]); a refusal is
    /// `NotFound("invite")` or `InvalidState` naming why.
    pub async fn accept_invite(&self, hash: &str, key: NewKey) -> Result<Joined> {
        match self.try_accept_invite(hash, key).await? {
            Ok(joined) => Ok(joined),
            Err(InviteRefused::Unknown) => Err(StoreError::NotFound("invite")),
            Err(InviteRefused::Accepted) => Err(StoreError::InvalidState("this invite was already accepted".into())),
            Err(InviteRefused::Expired) => Err(StoreError::InvalidState("this invite has expired".into())),
            Err(InviteRefused::Revoked) => Err(StoreError::InvalidState("this invite was revoked".into())),
        }
    }

    /// Accept the invite whose token hashes to `hash`: creates the user if the email is new, the
    /// membership and an API key, and marks the invite used — all in one transaction. The invite is
    /// claimed first by a conditional update (still pending, not expired), so of two concurrent accepts
    /// exactly one wins, on SQLite and on PostgreSQL (the row lock makes the second wait and then find
    /// it used).
    pub async fn try_accept_invite(&self, hash: &str, key: NewKey) -> Result<Result<Joined, InviteRefused>> {
        let _w = self.writer().await;
        let mut tx = self.pool.begin().await?;
        let now = now_us();
        let claimed = sqlx::query(
            "UPDATE invites SET accepted_at = $1 \
             WHERE hash = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at >= $1",
        )
        .bind(now)
        .bind(hash)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT i.id, i.tenant_id, i.email, i.role, i.expires_at, i.accepted_at, i.revoked_at, \
                    t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.created_at AS t_created_at \
             FROM invites i JOIN tenants t ON t.id = i.tenant_id WHERE i.hash = $1",
        )
        .bind(hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else { return Ok(Err(InviteRefused::Unknown)) };
        if claimed.rows_affected() != 1 {
            let accepted = row.try_get::<Option<i64>, _>("accepted_at")?.is_some();
            let revoked = row.try_get::<Option<i64>, _>("revoked_at")?.is_some();
            return Ok(Err(match (accepted, revoked) {
                (true, _) => InviteRefused::Accepted,
                (false, true) => InviteRefused::Revoked,
                (false, false) => InviteRefused::Expired,
            }));
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
            None => insert_user(&mut tx, &email, now).await?,
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
        tx.commit().await?;
        Ok(Ok(Joined { tenant, user, role, key }))
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
