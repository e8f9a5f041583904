//! Invites into an organisation: create (and e-mail), list, revoke, accept.
//!
//! The token (`mci_…`) is stored as its SHA-256 only. It is usable once, until it expires (`--invite-ttl`)
//! or an admin revokes it. With a mailer the token goes to the invitee only; if the mail cannot be sent, the
//! invite is deleted again and the admin gets 502 (no invite exists that nobody was told about).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use maxcloud_api_model as m;
use maxcloud_store::{InviteRefused, Revoked, Role};

use crate::audit::AuditTarget;
use crate::auth::{generate_key, hash_secret, Auth, API_KEY_PREFIX, INVITE_PREFIX};
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::mail::InviteMail;
use crate::AppState;

type Created<T> = (StatusCode, Extension<AuditTarget>, axum::Json<T>);

/// Invite someone into the organisation (admins only). Without a mailer the token is in the answer, shown
/// once; with one it is e-mailed to the invitee (502 `mail_failed` and no invite when that fails).
#[utoipa::path(post, operation_id = "auth_create_invite", path = "/api/v1/auth/invites", tag = "auth", security(("api_key" = [])),
    request_body = m::CreateInviteRequest,
    responses((status = 201, body = m::CreatedInvite), (status = 403, body = m::ErrorBody), (status = 409, body = m::ErrorBody),
        (status = 422, body = m::ErrorBody), (status = 502, description = "the invite e-mail could not be sent; no invite was kept", body = m::ErrorBody)))]
pub async fn create_invite(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<m::CreateInviteRequest>,
) -> ApiResult<Created<m::CreatedInvite>> {
    auth.require_admin()?;
    let p = auth.0;
    let email = crate::routes::auth::parse_email(&req.email)?;
    let role = match req.role.as_deref() {
        None => Role::Member,
        Some(r) => Role::from_name(r)
            .ok_or_else(|| ApiError::invalid("role", format!("role {r:?} is not one of: admin, member")))?,
    };
    let settings = &state.config.invites;
    let mailing = settings.mailer.is_configured();
    let ttl_us = i64::try_from(settings.ttl.as_micros()).unwrap_or(i64::MAX / 2);
    let (token, key) = generate_key(INVITE_PREFIX, "invite");
    let invite = state
        .store
        .create_invite_with_mail(
            &p.tenant.id,
            &p.user.id,
            &email,
            role,
            &key.hash,
            ttl_us,
            if mailing { "pending" } else { "none" },
        )
        .await?;
    let target = Extension(AuditTarget(format!("invite/{} {email}", invite.id)));
    let expires_at = convert::ts(invite.expires_at);
    if !mailing {
        return Ok((
            StatusCode::CREATED,
            target,
            axum::Json(m::CreatedInvite {
                id: invite.id,
                email,
                role: role.as_str().to_string(),
                token: Some(token),
                expires_at,
                mail: "none".into(),
                note: Some(
                    "no mail was sent (this server has no mailer configured): pass the token to the invitee yourself; \
                     it is shown only once"
                        .into(),
                ),
            }),
        ));
    }
    let public_url = settings.public_url.clone().unwrap_or_default();
    let mail = InviteMail {
        invite_id: &invite.id,
        to: &email,
        organization_name: &p.tenant.name,
        organization_slug: &p.tenant.slug,
        role: role.as_str(),
        invited_by: &p.user.email,
        token: &token,
        expires_at: &expires_at,
        public_url: &public_url,
    };
    if let Err(e) = settings.mailer.send_invite(&mail).await {
        tracing::warn!(invite = %invite.id, error = %e, "invite e-mail not sent; the invite is deleted");
        state.store.delete_unsent_invite(&p.tenant.id, &invite.id).await?;
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "mail_failed",
            format!("the invite e-mail to {email} could not be sent, so no invite was created: {e}"),
        )
        .field("email"));
    }
    state.store.set_invite_mail(&p.tenant.id, &invite.id, "sent").await?;
    Ok((
        StatusCode::CREATED,
        target,
        axum::Json(m::CreatedInvite {
            id: invite.id,
            email: email.clone(),
            role: role.as_str().to_string(),
            token: None,
            expires_at,
            mail: "sent".into(),
            note: Some(format!("the invitation with its one-time token was e-mailed to {email}")),
        }),
    ))
}

/// The organisation's invites, newest first, with their state (admins only; never the tokens).
#[utoipa::path(get, operation_id = "auth_list_invites", path = "/api/v1/auth/invites", tag = "auth", security(("api_key" = [])),
    responses((status = 200, body = [m::Invite]), (status = 401, body = m::ErrorBody), (status = 403, body = m::ErrorBody)))]
pub async fn list_invites(State(state): State<AppState>, auth: Auth) -> ApiResult<axum::Json<Vec<m::Invite>>> {
    auth.require_admin()?;
    let invites = state.store.invites(&auth.0.tenant.id).await?;
    Ok(axum::Json(
        invites
            .into_iter()
            .map(|i| m::Invite {
                id: i.invite.id,
                email: i.invite.email,
                role: i.invite.role.as_str().to_string(),
                state: i.state.to_string(),
                invited_by: i.invited_by,
                mail: i.invite.mail,
                created_at: convert::ts(i.invite.created_at),
                expires_at: convert::ts(i.invite.expires_at),
                accepted_at: i.invite.accepted_at.map(convert::ts),
                revoked_at: i.invite.revoked_at.map(convert::ts),
            })
            .collect(),
    ))
}

/// Revoke an invite of the organisation (admins only): its token is refused from then on.
#[utoipa::path(delete, operation_id = "auth_revoke_invite", path = "/api/v1/auth/invites/{id}", tag = "auth", security(("api_key" = [])),
    params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = m::ErrorBody), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody)))]
pub async fn revoke_invite(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Extension<AuditTarget>)> {
    auth.require_admin()?;
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::not_found(format!("no invite {id:?} in this organisation")).field("id"));
    }
    match state.store.revoke_invite(&auth.0.tenant.id, &id).await? {
        Revoked::Done => Ok((StatusCode::NO_CONTENT, Extension(AuditTarget(format!("invite/{id}"))))),
        Revoked::NotFound => Err(ApiError::not_found(format!("no invite {id:?} in this organisation")).field("id")),
        Revoked::AlreadyAccepted => Err(ApiError::conflict(
            "this invite was already accepted: the person is a member now (an accepted invite cannot be revoked)",
        )
        .field("id")),
        Revoked::AlreadyRevoked => Err(ApiError::conflict("this invite was already revoked").field("id")),
    }
}

/// Accept an invite: joins the organisation and answers with the only copy of a new API key. A token that
/// was used, has expired or was revoked is refused with 410 and a code saying which.
#[utoipa::path(post, operation_id = "auth_accept_invite", path = "/api/v1/auth/accept-invite", tag = "auth", request_body = m::AcceptInviteRequest,
    responses((status = 201, body = m::RegisterResponse), (status = 404, body = m::ErrorBody), (status = 409, body = m::ErrorBody),
        (status = 410, description = "invite_used, invite_expired or invite_revoked", body = m::ErrorBody), (status = 422, body = m::ErrorBody)))]
pub async fn accept_invite(
    State(state): State<AppState>,
    Json(req): Json<m::AcceptInviteRequest>,
) -> ApiResult<Created<m::RegisterResponse>> {
    let token = req.token.trim();
    if !token.starts_with(INVITE_PREFIX) || token.len() > 200 {
        return Err(ApiError::invalid("token", "token must be an invite token (`mci_…`)"));
    }
    let (secret, key) = generate_key(API_KEY_PREFIX, "default");
    let joined = match state.store.try_accept_invite(&hash_secret(token), key).await? {
        Ok(joined) => joined,
        Err(refused) => {
            let (code, message) = match refused {
                InviteRefused::Unknown => return Err(ApiError::not_found("no such invite").field("token")),
                InviteRefused::Accepted => ("invite_used", "this invite was already accepted: a token works once"),
                InviteRefused::Expired => ("invite_expired", "this invite has expired: ask an admin for a new one"),
                InviteRefused::Revoked => ("invite_revoked", "this invite was revoked by an admin of the organisation"),
            };
            return Err(ApiError::new(StatusCode::GONE, code, message).field("token"));
        }
    };
    Ok((
        StatusCode::CREATED,
        Extension(AuditTarget(format!("tenant/{} member {}", joined.tenant.slug, joined.user.email))),
        axum::Json(m::RegisterResponse {
            user: convert::user(&joined.user),
            organization: convert::organization(&joined.tenant),
            api_key: secret,
        }),
    ))
}
