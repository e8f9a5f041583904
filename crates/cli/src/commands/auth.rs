//! `maxcloud auth ...`

use anyhow::{Context, Result};
use maxcloud_api_model::{
    AcceptInviteRequest, ApiKey, AuthStatus, CreateApiKeyRequest, CreateInviteRequest, CreatedApiKey, CreatedInvite,
    Invite, Member, RegisterRequest, RegisterResponse,
};
use serde_json::json;

use super::Ctx;
use crate::cli::{ApiKeysCommand, AuthCommand};
use crate::client::segment;
use crate::config::{self, Credentials};
use crate::output::{opt, print_doc, write_stdout, KeyValues, Table};

pub async fn run(ctx: &Ctx, cmd: AuthCommand) -> Result<()> {
    match cmd {
        AuthCommand::Register { email, org } => register(ctx, email, org).await,
        AuthCommand::Status => status(ctx).await,
        AuthCommand::Invite { email, role } => invite(ctx, email, role).await,
        AuthCommand::AcceptInvite { token } => accept_invite(ctx, token).await,
        AuthCommand::Members => members(ctx).await,
        AuthCommand::Invites => list_invites(ctx).await,
        AuthCommand::RevokeInvite { id } => revoke_invite(ctx, &id).await,
        AuthCommand::Login { token } => login(ctx, token).await,
        AuthCommand::ApiKeys(ApiKeysCommand::Create { name }) => create_key(ctx, name).await,
        AuthCommand::ApiKeys(ApiKeysCommand::List) => list_keys(ctx).await,
        AuthCommand::ApiKeys(ApiKeysCommand::Delete { id }) => delete_key(ctx, &id).await,
    }
}

async fn register(ctx: &Ctx, email: String, org_name: String) -> Result<()> {
    let resp: RegisterResponse = ctx.client.post("/api/v1/auth/register", &RegisterRequest { email, org_name }).await?;
    save_and_show(ctx, resp, "Registered")
}

async fn accept_invite(ctx: &Ctx, token: String) -> Result<()> {
    let resp: RegisterResponse = ctx.client.post("/api/v1/auth/accept-invite", &AcceptInviteRequest { token }).await?;
    save_and_show(ctx, resp, "Joined as")
}

async fn invite(ctx: &Ctx, email: String, role: String) -> Result<()> {
    let inv: CreatedInvite =
        ctx.client.post("/api/v1/auth/invites", &CreateInviteRequest { email, role: Some(role) }).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &inv);
    }
    match &inv.token {
        Some(token) => write_stdout(&format!(
            "Invited {} as {} (valid until {}); no e-mail was sent.\nInvite token: {}\n\nThe token is shown only once. They join with:\n  maxcloud --api-url {} auth accept-invite {}\n",
            inv.email, inv.role, inv.expires_at, token, ctx.api_url, token
        )),
        None => write_stdout(&format!(
            "Invited {} as {} (valid until {}); the invitation was e-mailed to them.\nInvite ID: {}\n",
            inv.email, inv.role, inv.expires_at, inv.id
        )),
    }
}

async fn list_invites(ctx: &Ctx) -> Result<()> {
    let invites: Vec<Invite> = ctx.client.get("/api/v1/auth/invites").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &invites);
    }
    let mut table = Table::new(["ID", "EMAIL", "ROLE", "STATE", "MAIL", "INVITED-BY", "CREATED", "EXPIRES"]);
    for i in &invites {
        table.row([
            i.id.clone(),
            i.email.clone(),
            i.role.clone(),
            i.state.clone(),
            i.mail.clone(),
            i.invited_by.clone(),
            i.created_at.clone(),
            i.expires_at.clone(),
        ]);
    }
    write_stdout(&table.render())
}

async fn revoke_invite(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.client.delete(&format!("/api/v1/auth/invites/{}", segment(id))).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &json!({ "id": id, "revoked": true }));
    }
    write_stdout(&format!("revoked invite {id}\n"))
}

/// Check the identity provider's token against the API, then store it as the bearer in the credentials file.
async fn login(ctx: &Ctx, token: String) -> Result<()> {
    let token = token.trim().to_string();
    if token.split('.').count() != 3 {
        anyhow::bail!("--token must be a JWT of your identity provider (three dot-separated parts)");
    }
    let client = crate::client::Client::new(&ctx.api_url, Some(token.clone()))?.with_org(ctx.org_asked.clone());
    let st: AuthStatus = client.get("/api/v1/auth/status").await?;
    let path = ctx
        .credentials_path
        .clone()
        .context("cannot locate the credentials file (set HOME or XDG_CONFIG_HOME); the token was not saved")?;
    let creds = Credentials {
        api_url: Some(ctx.api_url.clone()),
        api_key: Some(token),
        email: Some(st.user.email.clone()),
        org: Some(st.organization.slug.clone()),
    };
    config::save(&path, &creds)?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &st);
    }
    write_stdout(&format!(
        "Logged in as {} in organization \"{}\" (slug: {}) as {}.\nToken saved to {}; sign in again when it expires.\n",
        st.user.email,
        st.organization.name,
        st.organization.slug,
        st.role,
        path.display()
    ))
}

async fn members(ctx: &Ctx) -> Result<()> {
    let members: Vec<Member> = ctx.client.get("/api/v1/auth/members").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &members);
    }
    let mut table = Table::new(["EMAIL", "ROLE", "JOINED"]);
    for m in &members {
        table.row([m.user.email.clone(), m.role.clone(), m.joined_at.clone()]);
    }
    write_stdout(&table.render())
}

/// Store the new API key as the credentials in use and show it (it is shown only once).
fn save_and_show(ctx: &Ctx, resp: RegisterResponse, verb: &str) -> Result<()> {
    let path = ctx.credentials_path.clone().context(
        "registered, but cannot locate the credentials file (set HOME or XDG_CONFIG_HOME); \
         the API key was not saved",
    )?;
    let creds = Credentials {
        api_url: Some(ctx.api_url.clone()),
        api_key: Some(resp.api_key.clone()),
        email: Some(resp.user.email.clone()),
        org: Some(resp.organization.slug.clone()),
    };
    let saved = config::save(&path, &creds);
    if ctx.json_or_yaml() {
        saved?;
        return print_doc(ctx.format, &resp);
    }
    // Show the key even when saving failed: it is shown only once.
    let mut text = format!(
        "{verb} {} in organization \"{}\" (slug: {}).\nAPI key: {}\n",
        resp.user.email, resp.organization.name, resp.organization.slug, resp.api_key
    );
    if saved.is_ok() {
        text.push_str(&format!("Credentials saved to {}\n", path.display()));
    }
    text.push_str(&format!(
        "\nThe API key is shown only once. To use it elsewhere:\n  export MAXCLOUD_API_KEY={}\n",
        resp.api_key
    ));
    write_stdout(&text)?;
    saved
}

async fn status(ctx: &Ctx) -> Result<()> {
    let st: AuthStatus = ctx.client.get("/api/v1/auth/status").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &st);
    }
    let mut kv = KeyValues::new();
    kv.add("api", &ctx.api_url)
        .add("user", format!("{} ({})", st.user.email, st.user.id))
        .add("organization", format!("{} (slug: {})", st.organization.name, st.organization.slug))
        .add("role", &st.role)
        .add("api key", format!("{} ({}, {})", st.api_key.name, st.api_key.prefix, st.api_key.id));
    write_stdout(&kv.render())
}

async fn create_key(ctx: &Ctx, name: Option<String>) -> Result<()> {
    let key: CreatedApiKey = ctx.client.post("/api/v1/auth/api-keys", &CreateApiKeyRequest { name }).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &key);
    }
    let mut kv = KeyValues::new();
    kv.add("id", &key.id)
        .add("name", &key.name)
        .add("prefix", &key.prefix)
        .add("created", &key.created_at)
        .add("api key", &key.api_key);
    write_stdout(&format!("{}\nThe API key is shown only once.\n", kv.render()))
}

async fn list_keys(ctx: &Ctx) -> Result<()> {
    let keys: Vec<ApiKey> = ctx.client.get("/api/v1/auth/api-keys").await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &keys);
    }
    let mut table = Table::new(["ID", "NAME", "PREFIX", "CREATED", "LAST-USED"]);
    for k in &keys {
        table.row([
            k.id.clone(),
            opt(Some(&k.name)),
            k.prefix.clone(),
            k.created_at.clone(),
            opt(k.last_used_at.as_deref()),
        ]);
    }
    write_stdout(&table.render())
}

async fn delete_key(ctx: &Ctx, id: &str) -> Result<()> {
    ctx.client.delete(&format!("/api/v1/auth/api-keys/{}", segment(id))).await?;
    if ctx.json_or_yaml() {
        return print_doc(ctx.format, &json!({ "id": id, "deleted": true }));
    }
    write_stdout(&format!("deleted API key {id}\n"))
}
