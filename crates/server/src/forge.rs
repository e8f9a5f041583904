//! Which Git hosting provider holds the tenant repositories: the embedded local provider (default), GitHub or
//! Gitea/Forgejo — chosen by configuration.

use std::sync::Arc;
use std::time::Duration;

use maxcloud_forge::{Forge, ForgeKind, RetryPolicy};

/// How the server reaches a forge.
#[derive(Clone)]
pub struct ForgeConfig {
    pub kind: ForgeKind,
    /// Gitea: the server's URL (`https://git.example.eu`); GitHub: the API URL (`https://api.github.com`, or
    /// `https://ghe.example/api/v3` for GitHub Enterprise).
    pub url: String,
    /// Organisation holding the tenant repositories.
    pub owner: String,
    pub auth: ForgeAuth,
    /// Shared secret of the webhook the forge sends to `/api/v1/webhooks/<kind>`; `None`: polling only.
    pub webhook_secret: Option<String>,
    /// How often open pull requests are polled (the webhook fallback).
    pub poll_interval: Duration,
    /// (username, token) Flux reads the tenant repositories with: a read-only credential of the forge, written
    /// into every tenant's `maxcloud-git-token` Secret (never the order service's own token).
    pub flux_read_token: Option<(String, String)>,
}

/// Credentials for the forge.
#[derive(Clone)]
pub enum ForgeAuth {
    /// A personal or bot access token (Gitea; GitHub fine-grained or classic token).
    Token(String),
    /// A GitHub App installation (the App's private key signs the JWT exchanged for installation tokens).
    GitHubApp { app_id: u64, installation_id: u64, private_key_pem: String },
}

impl std::fmt::Debug for ForgeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let auth = match self.auth {
            ForgeAuth::Token(_) => "token",
            ForgeAuth::GitHubApp { .. } => "github-app",
        };
        f.debug_struct("ForgeConfig")
            .field("kind", &self.kind)
            .field("url", &self.url)
            .field("owner", &self.owner)
            .field("auth", &auth)
            .field("webhooks", &self.webhook_secret.is_some())
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl ForgeConfig {
    /// The client for this forge.
    pub fn client(&self) -> anyhow::Result<Arc<dyn Forge>> {
        let retry = RetryPolicy::default();
        match (self.kind, &self.auth) {
            (ForgeKind::Gitea, ForgeAuth::Token(token)) => {
                Ok(Arc::new(maxcloud_forge::gitea::Gitea::new(&self.url, &self.owner, token, retry)?))
            }
            (ForgeKind::Gitea, ForgeAuth::GitHubApp { .. }) => {
                anyhow::bail!("a GitHub App cannot sign in to Gitea: give a Gitea access token")
            }
            (ForgeKind::GitHub, auth) => {
                use maxcloud_forge::github::{GitHub, GitHubAuth, GitHubConfig};
                let auth = match auth {
                    ForgeAuth::Token(token) => GitHubAuth::Token(token.clone()),
                    ForgeAuth::GitHubApp { app_id, installation_id, private_key_pem } => GitHubAuth::App {
                        app_id: *app_id,
                        installation_id: *installation_id,
                        private_key_pem: private_key_pem.clone(),
                    },
                };
                let config = GitHubConfig { api_url: self.url.clone(), owner: self.owner.clone(), auth, retry };
                Ok(Arc::new(GitHub::new(config)?))
            }
        }
    }

    /// Where Flux clones a tenant's repository from (`<base>/<slug>.git`): the forge's web URL and owner.
    pub fn default_git_base_url(&self) -> String {
        match self.kind {
            ForgeKind::Gitea => format!("{}/{}", self.url.trim_end_matches('/'), self.owner),
            ForgeKind::GitHub => {
                let api = self.url.trim_end_matches('/');
                let web = match api {
                    "https://api.github.com" => "https://github.com".to_string(),
                    // GitHub Enterprise Server: https://HOST/api/v3 → https://HOST
                    other => other.trim_end_matches("/api/v3").to_string(),
                };
                format!("{web}/{}", self.owner)
            }
        }
    }
}
