//! Command implementations, one module per area.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::{Cli, Command, OrdersCommand};
use crate::client::Client;
use crate::config::{self, Credentials};
use crate::output::Format;

pub mod audit;
pub mod auth;
pub mod catalog;
pub mod completions;
pub mod logs;
pub mod orders;
pub mod policies;
pub mod registry;
pub mod revisions;
pub mod secrets;
pub mod services;
pub mod usage;
pub mod wait;

/// API URL used when neither a flag, the environment nor the credentials file gives one.
pub const DEFAULT_API_URL: &str = "http://127.0.0.1:8080";

/// What every command needs: the client, the output format and where credentials live.
pub struct Ctx {
    pub client: Client,
    pub format: Format,
    pub api_url: String,
    pub credentials_path: Option<PathBuf>,
    /// The organisation asked for with `--tenant` (or MAXCLOUD_TENANT); `auth login` sends only this one, not the
    /// credentials file's, which belongs to the token it replaces.
    pub org_asked: Option<String>,
}

impl Ctx {
    pub fn json_or_yaml(&self) -> bool {
        self.format != Format::Table
    }
}

/// Resolves the API URL and key (flag/env, then credentials file, then default) and runs the command.
pub async fn run(cli: Cli) -> Result<()> {
    if let Command::Completions { shell } = cli.command {
        return completions::run(shell);
    }
    let registering = matches!(
        cli.command,
        Command::Auth(
            crate::cli::AuthCommand::Register { .. }
                | crate::cli::AuthCommand::AcceptInvite { .. }
                | crate::cli::AuthCommand::Login { .. }
        )
    );
    let credentials_path = config::credentials_path().ok();
    let stored = match &credentials_path {
        Some(path) => match config::load(path) {
            Ok(creds) => creds.unwrap_or_default(),
            // `auth register` overwrites a broken file, so it must not be stopped by it.
            Err(_) if registering => Credentials::default(),
            Err(e) => return Err(e),
        },
        None => Credentials::default(),
    };
    let non_empty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let api_url = non_empty(cli.api_url)
        .or_else(|| non_empty(stored.api_url.clone()))
        .unwrap_or_else(|| DEFAULT_API_URL.to_string());
    let flag_key = non_empty(cli.api_key);
    // The stored organisation goes with the stored credential only: another key names its own organisation.
    let org_asked = non_empty(cli.tenant).map(|org| crate::client::parse_tenant(&org)).transpose()?;
    let org = match &org_asked {
        Some(org) => Some(org.clone()),
        None if flag_key.is_none() => non_empty(stored.org.clone()),
        None => None,
    };
    let api_key = flag_key.or_else(|| non_empty(stored.api_key.clone()));
    let client = Client::new(&api_url, api_key)?.with_org(org);
    let ctx = Ctx { api_url: client.base_url().to_string(), client, format: cli.output, credentials_path, org_asked };

    match cli.command {
        Command::Auth(cmd) => auth::run(&ctx, cmd).await,
        Command::Deploy(args) => services::deploy(&ctx, args).await,
        Command::List => services::list(&ctx).await,
        Command::Status { name, watch, timeout } => services::status(&ctx, &name, watch.then_some(timeout)).await,
        Command::Delete(args) => services::delete(&ctx, args).await,
        Command::Revisions { name } => revisions::list(&ctx, &name).await,
        Command::Traffic(args) => revisions::traffic(&ctx, args).await,
        Command::Rollback { name, revision, wait } => revisions::rollback(&ctx, &name, &revision, &wait).await,
        Command::Domains(cmd) => revisions::domains(&ctx, cmd).await,
        Command::Orders(args) => match args.command {
            None => orders::list(&ctx, args.limit, args.pending).await,
            Some(OrdersCommand::Show { id }) => orders::show(&ctx, &id).await,
            Some(OrdersCommand::Approve { id }) => orders::approve(&ctx, &id).await,
            Some(OrdersCommand::Reject { id, reason }) => orders::reject(&ctx, &id, reason.as_deref()).await,
        },
        Command::Order(args) => orders::order(&ctx, args).await,
        Command::Catalog { kind } => catalog::run(&ctx, kind.as_deref()).await,
        Command::Resources => services::resources(&ctx).await,
        Command::Usage(args) => usage::run(&ctx, args).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
        Command::Secrets(cmd) => secrets::run(&ctx, cmd).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Quotas => usage::quotas(&ctx).await,
        Command::Push(args) => registry::push(&ctx, args).await,
        Command::Images => registry::images(&ctx).await,
        Command::Policies { command } => policies::run(&ctx, command).await,
        Command::Completions { .. } => Ok(()),
    }
}
