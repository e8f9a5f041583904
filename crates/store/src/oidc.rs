//! Users of an OpenID Connect identity provider: an identity (issuer, subject) maps to one user; the
//! memberships its token's claims grant are kept in step with the claims on every request.

use sqlx::Row;

use crate::model::{self, Role, Tenant, User};
use crate::{now_us, Result, Store, StoreError};

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcLogin {
    pub issuer: String,
    pub subject: String,
    /// Lower-cased e-mail address from the token.
    pub email: String,
    /// The token asserts the e-mail address is verified (`email_verified: true`): only then is a first
    /// login linked to an existing max-cloud user with that address.
    pub email_verified: bool,
    /// Organisation slug → role, from the claims (at most one role per organisation, the higher one).
    pub grants: Vec<(String, Role)>,
}

/// The identity's user and the organisations it may act in now.
#[derive(Debug, Clone)]
pub struct OidcUser {
    pub user: User,
    /// The granted organisations that exist, with the role the claims give.
    pub tenants: Vec<(Tenant, Role)>,
    /// Granted slugs no organisation has.
    pub unknown: Vec<String>,
}

impl Store {
    /// Find or create the identity's user and bring its claim-granted memberships (`via = 'oidc'`) in line
    /// with `login.grants`: added, role changed, or removed when the identity provider no longer grants them.
    /// Reads only when nothing changed (the common case on every request). An identity seen for the first time
    /// whose claims grant no existing organisation is not created: `NotFound("organisation")`, nothing written.
    pub async fn oidc_sync(&self, login: &OidcLogin) -> Result<OidcUser> {
        if let Some(done) = self.oidc_unchanged(login).await? {
            return Ok(done);
        }
        match self.oidc_write(login).await {
            // Two first requests of the same identity at once (PostgreSQL): the other one created it.
            Err(StoreError::Db(e)) if crate::is_unique_violation(&e) => self.oidc_write(login).await,
            other => other,
        }
    }

    async fn granted_tenants(&self, login: &OidcLogin) -> Result<(Vec<(Tenant, Role)>, Vec<String>)> {
        let mut tenants = Vec::new();
        let mut unknown = Vec::new();
        for (slug, role) in &login.grants {
            let row = sqlx::query("SELECT id, slug, name, created_at FROM tenants WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
            match row {
                Some(r) => tenants.push((model::tenant(&r, "")?, *role)),
                None => unknown.push(slug.clone()),
            }
        }
        Ok((tenants, unknown))
    }

    /// `Some` when the identity exists and its memberships already match the grants.
    async fn oidc_unchanged(&self, login: &OidcLogin) -> Result<Option<OidcUser>> {
        let row = sqlx::query(
            "SELECT u.id, u.email, u.created_at FROM oidc_identities o JOIN users u ON u.id = o.user_id \
             WHERE o.issuer = $1 AND o.subject = $2",
        )
        .bind(&login.issuer)
        .bind(&login.subject)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let user = model::user(&row, "")?;
        let (tenants, unknown) = self.granted_tenants(login).await?;
        let have = self.oidc_memberships(&user.id).await?;
        let mut want: Vec<(String, String, bool)> =
            tenants.iter().map(|(t, r)| (t.id.clone(), r.as_str().to_string(), true)).collect();
        want.sort();
        let mut have_oidc: Vec<(String, String, bool)> = have.into_iter().filter(|(_, _, via)| *via).collect();
        have_oidc.sort();
        // Every granted tenant must be an `oidc` membership with the granted role, and no other `oidc` one left.
        Ok((want == have_oidc).then_some(OidcUser { user, tenants, unknown }))
    }

    /// (tenant id, role, via oidc) of every membership of the user.
    async fn oidc_memberships(&self, user_id: &str) -> Result<Vec<(String, String, bool)>> {
        let rows = sqlx::query("SELECT tenant_id, role, via FROM memberships WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("tenant_id")?,
                    r.try_get::<String, _>("role")?,
                    r.try_get::<Option<String>, _>("via")?.as_deref() == Some("oidc"),
                ))
            })
            .collect::<sqlx::Result<_>>()
            .map_err(Into::into)
    }

    async fn oidc_write(&self, login: &OidcLogin) -> Result<OidcUser> {
        let _w = self.writer().await;
        let (tenants, unknown) = self.granted_tenants(login).await?;
        let mut tx = self.pool.begin().await?;
        let now = now_us();
        let row = sqlx::query(
            "SELECT u.id, u.email, u.created_at FROM oidc_identities o JOIN users u ON u.id = o.user_id \
             WHERE o.issuer = $1 AND o.subject = $2",
        )
        .bind(&login.issuer)
        .bind(&login.subject)
        .fetch_optional(&mut *tx)
        .await?;
        let user = match row {
            Some(r) => model::user(&r, "")?,
            None if tenants.is_empty() => return Err(StoreError::NotFound("organisation")),
            None => {
                let existing = sqlx::query("SELECT id, email, created_at FROM users WHERE email = $1")
                    .bind(&login.email)
                    .fetch_optional(&mut *tx)
                    .await?;
                let user = match existing {
                    Some(r) if login.email_verified => model::user(&r, "")?,
                    Some(_) => {
                        return Err(StoreError::Conflict {
                            field: "email",
                            message: format!(
                                "{} already belongs to a max-cloud user; the identity provider must assert \
                                 email_verified for a first sign-in with it",
                                login.email
                            ),
                        })
                    }
                    None => crate::tenants::insert_user(&mut tx, &login.email, now).await?,
                };
                sqlx::query(
                    "INSERT INTO oidc_identities (issuer, subject, user_id, created_at, last_seen_at) \
                     VALUES ($1, $2, $3, $4, $4)",
                )
                .bind(&login.issuer)
                .bind(&login.subject)
                .bind(&user.id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                user
            }
        };
        sqlx::query("UPDATE oidc_identities SET last_seen_at = $1 WHERE issuer = $2 AND subject = $3")
            .bind(now)
            .bind(&login.issuer)
            .bind(&login.subject)
            .execute(&mut *tx)
            .await?;
        for (tenant, role) in &tenants {
            sqlx::query(
                "INSERT INTO memberships (tenant_id, user_id, role, created_at, via) VALUES ($1, $2, $3, $4, 'oidc') \
                 ON CONFLICT (tenant_id, user_id) DO UPDATE SET role = excluded.role, via = 'oidc'",
            )
            .bind(&tenant.id)
            .bind(&user.id)
            .bind(role.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // Claim-granted memberships the claims no longer grant go.
        let rows = sqlx::query("SELECT tenant_id FROM memberships WHERE user_id = $1 AND via = 'oidc'")
            .bind(&user.id)
            .fetch_all(&mut *tx)
            .await?;
        for r in rows {
            let tenant_id: String = r.try_get("tenant_id")?;
            if !tenants.iter().any(|(t, _)| t.id == tenant_id) {
                sqlx::query("DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2 AND via = 'oidc'")
                    .bind(&tenant_id)
                    .bind(&user.id)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(OidcUser { user, tenants, unknown })
    }
}
