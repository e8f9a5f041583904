//! `maxcloud-server`: the max-cloud order service.
//!
//! - `dev`: embedded defaults (SQLite and local Git repos in a data directory), prints where things are;
//! - `serve`: configured by flags and environment (12-factor), JSON logs;
//! - `migrate`: apply database migrations and exit.

mod identity_args;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use maxcloud_api::pricing::PriceList;
use maxcloud_forge::ForgeKind;
use maxcloud_server::RegistrySettings;
use maxcloud_server::{default_xrds_dir, open_store, redact, start_until_signal, Config, ForgeAuth, ForgeConfig};

#[derive(Parser)]
#[command(name = "maxcloud-server", version, about = "max-cloud order service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run on embedded defaults: SQLite and Git repositories under --data-dir.
    Dev(RunArgs),
    /// Run configured by flags and environment variables.
    Serve(RunArgs),
    /// Print the JWKS of a registry token key (`--registry-key-file`): the file the registry's
    /// `auth.token.jwks` names to trust this server's tokens.
    RegistryJwks {
        /// PKCS#8 PEM of the ES256 (P-256) key.
        #[arg(long, env = "MAXCLOUD_REGISTRY_KEY_FILE", value_name = "FILE")]
        registry_key_file: PathBuf,
    },
    /// Apply database migrations and exit.
    Migrate {
        /// `sqlite://…` or `postgres://…`
        #[arg(long, env = "DATABASE_URL")]
        database_url: String,
    },
    /// Print a tenant's SOPS age identity (AGE-SECRET-KEY-1…), unsealed with the master key (created on first use):
    /// for disaster recovery, or to give Flux its decryption Secret by hand. Treat the output as a secret.
    TenantKey {
        /// The tenant's slug.
        slug: String,
        #[arg(long, env = "MAXCLOUD_DATA_DIR", default_value = ".maxcloud-dev")]
        data_dir: PathBuf,
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        #[arg(long, env = "MAXCLOUD_MASTER_KEY_FILE", value_name = "FILE")]
        master_key_file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Address to listen on.
    #[arg(long, env = "MAXCLOUD_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Directory for the SQLite database and the tenant repositories (created if missing).
    #[arg(long, env = "MAXCLOUD_DATA_DIR", default_value = ".maxcloud-dev")]
    data_dir: PathBuf,
    /// The platform's age key file that seals every tenant's SOPS key (default: <data-dir>/master.agekey,
    /// created when missing). Keep it secret and backed up: without it no tenant secret can be set or synced.
    #[arg(long, env = "MAXCLOUD_MASTER_KEY_FILE", value_name = "FILE")]
    master_key_file: Option<PathBuf>,
    /// Per-organisation quotas (YAML or JSON): `default:` and `tenants: {<slug>: …}` with any of services,
    /// databases, max_scale, cpu, memory (Kubernetes quantities). Default: no limits.
    #[arg(long, env = "MAXCLOUD_QUOTAS", value_name = "FILE")]
    quotas: Option<PathBuf>,
    /// Database URL; default: SQLite in the data directory.
    #[arg(long, env = "DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of the XRDs that make up the catalog.
    #[arg(long, env = "MAXCLOUD_XRDS_DIR")]
    xrds_dir: Option<PathBuf>,
    /// Accept orders but do not drive them (another process runs the worker).
    #[arg(long, env = "MAXCLOUD_NO_WORKER")]
    no_worker: bool,
    /// URL the cluster's Flux clones tenant repositories from (`<base>/<slug>.git`); default: this server's
    /// own `http://<listen>/git`.
    #[arg(long, env = "MAXCLOUD_TENANT_GIT_BASE_URL")]
    tenant_git_base_url: Option<String>,
    /// Password that reads the platform repository at /git/platform.git (Flux's `tenants` source); unset:
    /// the platform repository is not served. Pass it by environment, not on the command line.
    #[arg(long, env = "MAXCLOUD_PLATFORM_GIT_TOKEN", hide_env_values = true)]
    platform_git_token: Option<String>,
    /// notification-controller's receiver server (e.g. `http://notification-controller.flux-system`): after a
    /// merge the tenant's Flux Receiver is called so the sync starts at once. Needs --flux-webhook-token.
    #[arg(long, env = "MAXCLOUD_FLUX_RECEIVER_URL", requires = "flux_webhook_token")]
    flux_receiver_url: Option<String>,
    /// The token in every tenant's `maxcloud-webhook-token` Secret (HMAC key of the Receiver calls). Pass it by
    /// environment, not on the command line.
    #[arg(long, env = "MAXCLOUD_FLUX_WEBHOOK_TOKEN", hide_env_values = true, requires = "flux_receiver_url")]
    flux_webhook_token: Option<String>,
    /// Kubeconfig of the cluster the status aggregator watches (unset and not --in-cluster: no cluster).
    #[arg(long, env = "MAXCLOUD_KUBECONFIG", conflicts_with = "in_cluster")]
    kubeconfig: Option<PathBuf>,
    /// Watch the cluster the server runs in, with its pod's service account.
    #[arg(long, env = "MAXCLOUD_IN_CLUSTER")]
    in_cluster: bool,
    /// The server's own ServiceAccount, `namespace/name` (the Helm chart sets it). With a cluster and the Flux
    /// webhook token, the server then creates each tenant's two Flux Secrets (Git read token, Receiver token)
    /// itself; each tenant directory in the platform repository grants it exactly that.
    #[arg(long, env = "MAXCLOUD_SERVICE_ACCOUNT", value_name = "NAMESPACE/NAME", value_parser = parse_service_account)]
    service_account: Option<maxcloud_gitops::ServiceAccountRef>,
    /// Price list of metered usage, YAML or JSON: `currency` (e.g. EUR), `vcpu_second` and `gib_second` (decimal
    /// prices per second of a requested vCPU / GiB of memory). Default: EUR 0.000024 and 0.0000025.
    #[arg(long, env = "MAXCLOUD_PRICE_LIST", value_name = "FILE")]
    price_list: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "MAXCLOUD_LOG_FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Where the tenant repositories live: `local` (bare repositories in the data directory, served over
    /// /git), `github` (GitHub or GitHub Enterprise) or `gitea` (Gitea or Forgejo).
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER", default_value = "local", value_parser = ["local", "github", "gitea", "forgejo"])]
    git_provider: String,
    /// Gitea/Forgejo: the server URL; GitHub: the API URL (default https://api.github.com; GitHub Enterprise:
    /// https://HOST/api/v3).
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_URL")]
    git_provider_url: Option<String>,
    /// Organisation that holds the tenant repositories (one per tenant, named after its slug).
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_OWNER")]
    git_provider_owner: Option<String>,
    /// Access token of the provider (Gitea, or GitHub without an App). Pass it by environment.
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_TOKEN", hide_env_values = true)]
    git_provider_token: Option<String>,
    /// GitHub App id (with --github-app-installation-id and --github-app-private-key instead of a token).
    #[arg(long, env = "MAXCLOUD_GITHUB_APP_ID", requires_all = ["github_app_installation_id", "github_app_private_key"])]
    github_app_id: Option<u64>,
    /// Installation of the GitHub App in the organisation.
    #[arg(long, env = "MAXCLOUD_GITHUB_APP_INSTALLATION_ID", requires = "github_app_id")]
    github_app_installation_id: Option<u64>,
    /// PEM file of the GitHub App's private key.
    #[arg(long, env = "MAXCLOUD_GITHUB_APP_PRIVATE_KEY", value_name = "FILE", requires = "github_app_id")]
    github_app_private_key: Option<PathBuf>,
    /// Secret of the provider's webhook (HMAC key), sent to /api/v1/webhooks/<provider>. Unset: polling only.
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_WEBHOOK_SECRET", hide_env_values = true)]
    git_provider_webhook_secret: Option<String>,
    /// Read-only token Flux clones the tenant repositories with (written into each tenant's `maxcloud-git-token`
    /// Secret; never the order service's own token). Pass it by environment.
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_READ_TOKEN", hide_env_values = true)]
    git_provider_read_token: Option<String>,
    /// User name that goes with --git-provider-read-token (Gitea: the token's owner).
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_READ_USER", default_value = "flux")]
    git_provider_read_user: String,
    /// Seconds between polls of open pull requests (the fallback for missed webhooks).
    #[arg(long, env = "MAXCLOUD_GIT_PROVIDER_POLL_SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    git_provider_poll_seconds: u64,
    /// The container registry's API as this server reaches it (e.g. `http://registry.registry:5000`): lists the
    /// organisations' images. Unset: the token endpoint works, `GET /api/v1/registry/images` answers 503.
    #[arg(long, env = "MAXCLOUD_REGISTRY_URL", value_name = "URL")]
    registry_url: Option<String>,
    /// Registry host of image references shown to clients (`registry.example.eu`); default: the host of
    /// --registry-url.
    #[arg(long, env = "MAXCLOUD_REGISTRY_HOST", value_name = "HOST")]
    registry_host: Option<String>,
    /// The registry's `auth.token.service`: audience of the tokens and the `service` clients ask for.
    #[arg(long, env = "MAXCLOUD_REGISTRY_SERVICE", default_value = maxcloud_registry::DEFAULT_SERVICE)]
    registry_service: String,
    /// The registry's `auth.token.issuer`.
    #[arg(long, env = "MAXCLOUD_REGISTRY_ISSUER", default_value = maxcloud_registry::DEFAULT_ISSUER)]
    registry_issuer: String,
    /// PKCS#8 PEM of the ES256 (P-256) key registry tokens are signed with (`dev`: default
    /// <data-dir>/registry/token-key.pem, generated when missing; `serve`: required for the registry endpoints).
    /// Its JWKS, for the registry's `auth.token.jwks`, is written to <data-dir>/registry/jwks.json.
    #[arg(long, env = "MAXCLOUD_REGISTRY_KEY_FILE", value_name = "FILE")]
    registry_key_file: Option<PathBuf>,
    #[command(flatten)]
    identity: identity_args::IdentityArgs,
    /// Name server (IP:PORT) at which custom domains' ownership records (TXT `_maxcloud-challenge.<domain>`) are
    /// looked up [default: the system's resolver]
    #[arg(long, env = "MAXCLOUD_DNS_RESOLVER", value_name = "IP:PORT")]
    dns_resolver: Option<SocketAddr>,
    /// Grafana Loki's HTTP API (e.g. `http://loki.monitoring:3100`): service logs are read from there instead of
    /// the Kubernetes pod log API, also without a cluster. Streams are selected by the labels `namespace`,
    /// `container` (`user-container`) and --loki-app-label, as the log shipper's Kubernetes discovery sets them
    #[arg(long, env = "MAXCLOUD_LOKI_URL", value_name = "URL")]
    loki_url: Option<String>,
    /// Loki stream label holding the pod label `maxcloud.dev/name` (Alloy / Promtail `labelmap` of
    /// `__meta_kubernetes_pod_label_(.+)` names it so)
    #[arg(long, env = "MAXCLOUD_LOKI_APP_LABEL", default_value = maxcloud_server::LokiSettings::DEFAULT_APP_LABEL)]
    loki_app_label: String,
    /// Loki stream label holding the pod label `serving.knative.dev/revision` (shown as the line's revision when
    /// present)
    #[arg(long, env = "MAXCLOUD_LOKI_REVISION_LABEL",
        default_value = maxcloud_server::LokiSettings::DEFAULT_REVISION_LABEL)]
    loki_revision_label: String,
    /// The Loki tenant the cluster's logs are kept under, sent as `X-Scope-OrgID` (a Loki with `auth_enabled:
    /// true`; `a|b` queries several)
    #[arg(long, env = "MAXCLOUD_LOKI_TENANT", value_name = "ID", requires = "loki_url")]
    loki_tenant: Option<String>,
    /// Networks of the proxies in front of the server (load balancer, ingress controller), comma-separated CIDRs or
    /// addresses: a request from one of them is recorded in the audit log as coming from the client their
    /// `X-Forwarded-For` names (the rightmost address outside these networks). Unset: the TCP peer, and the header
    /// is ignored
    #[arg(long, env = "MAXCLOUD_TRUSTED_PROXIES", value_name = "CIDR,...", value_delimiter = ',',
        value_parser = maxcloud_api::client_ip::TrustedProxies::parse_net)]
    trusted_proxies: Vec<ipnet::IpNet>,
}

fn parse_service_account(text: &str) -> Result<maxcloud_gitops::ServiceAccountRef, String> {
    maxcloud_gitops::ServiceAccountRef::parse(text).map_err(|e| e.to_string())
}

impl RunArgs {
    /// The forge, from the `--git-provider*` flags; every missing or contradictory flag is named.
    fn forge(&self) -> anyhow::Result<Option<ForgeConfig>> {
        let kind = match self.git_provider.as_str() {
            "local" => {
                let stray = [
                    ("--git-provider-url", self.git_provider_url.is_some()),
                    ("--git-provider-owner", self.git_provider_owner.is_some()),
                    ("--git-provider-token", self.git_provider_token.is_some()),
                    ("--github-app-id", self.github_app_id.is_some()),
                    ("--git-provider-webhook-secret", self.git_provider_webhook_secret.is_some()),
                    ("--git-provider-read-token", self.git_provider_read_token.is_some()),
                ];
                if let Some((flag, _)) = stray.iter().find(|(_, set)| *set) {
                    anyhow::bail!("{flag} needs --git-provider github or gitea (the local provider is in use)");
                }
                return Ok(None);
            }
            other => ForgeKind::parse(other).context("unknown --git-provider")?,
        };
        let url = match (kind, &self.git_provider_url) {
            (_, Some(url)) => url.clone(),
            (ForgeKind::GitHub, None) => "https://api.github.com".to_string(),
            (ForgeKind::Gitea, None) => {
                anyhow::bail!("--git-provider gitea needs --git-provider-url (the Gitea server)")
            }
        };
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            anyhow::bail!("--git-provider-url must be an http(s) URL, got {url:?}");
        }
        let owner = self
            .git_provider_owner
            .clone()
            .context("--git-provider-owner is required: the organisation that holds the tenant repositories")?;
        let auth = match (&self.git_provider_token, self.github_app_id) {
            (Some(_), Some(_)) => anyhow::bail!("give either --git-provider-token or --github-app-id, not both"),
            (Some(token), None) => ForgeAuth::Token(token.clone()),
            (None, Some(app_id)) => {
                if kind != ForgeKind::GitHub {
                    anyhow::bail!("--github-app-id needs --git-provider github");
                }
                let path = self.github_app_private_key.as_ref().context("--github-app-private-key is required")?;
                let private_key_pem = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --github-app-private-key {}", path.display()))?;
                let installation_id =
                    self.github_app_installation_id.context("--github-app-installation-id is required")?;
                ForgeAuth::GitHubApp { app_id, installation_id, private_key_pem }
            }
            (None, None) => anyhow::bail!("--git-provider {kind} needs --git-provider-token (or a GitHub App)"),
        };
        Ok(Some(ForgeConfig {
            kind,
            url,
            owner,
            auth,
            webhook_secret: self.git_provider_webhook_secret.clone(),
            poll_interval: std::time::Duration::from_secs(self.git_provider_poll_seconds),
            flux_read_token: self.git_provider_read_token.clone().map(|t| (self.git_provider_read_user.clone(), t)),
        }))
    }

    /// The registry token service: always in `dev` (the key generated into the data directory), with
    /// `--registry-key-file` in `serve`.
    fn registry(&self, dev: bool) -> anyhow::Result<Option<RegistrySettings>> {
        if !dev && self.registry_key_file.is_none() {
            if self.registry_url.is_some() || self.registry_host.is_some() {
                anyhow::bail!("--registry-url and --registry-host need --registry-key-file (the token signing key)");
            }
            return Ok(None);
        }
        Ok(Some(RegistrySettings {
            key_file: self.registry_key_file.clone(),
            generate: dev,
            service: self.registry_service.clone(),
            issuer: self.registry_issuer.clone(),
            url: self.registry_url.clone(),
            public_host: self.registry_host.clone(),
        }))
    }

    fn config(&self) -> anyhow::Result<Config> {
        let price_list = match &self.price_list {
            Some(path) => PriceList::load(path)?,
            None => PriceList::default(),
        };
        Ok(Config {
            listen: self.listen,
            data_dir: self.data_dir.clone(),
            master_key_file: self.master_key_file.clone(),
            quotas: match &self.quotas {
                Some(path) => maxcloud_orders::quota::Quotas::load(path).map_err(anyhow::Error::msg)?,
                None => Default::default(),
            },
            database_url: self.database_url.clone(),
            xrds_dir: self.xrds_dir.clone().unwrap_or_else(default_xrds_dir),
            run_worker: !self.no_worker,
            tenant_git_base_url: self.tenant_git_base_url.clone(),
            platform_git_token: self.platform_git_token.clone(),
            flux_receiver: self.flux_receiver_url.clone().zip(self.flux_webhook_token.clone()),
            cluster: match (&self.kubeconfig, self.in_cluster) {
                (Some(path), _) => Some(maxcloud_server::ClusterAccess::Kubeconfig(path.clone())),
                (None, true) => Some(maxcloud_server::ClusterAccess::InCluster),
                (None, false) => None,
            },
            price_list,
            service_account: self.service_account.clone(),
            forge: self.forge()?,
            registry: None,
            invites: self.identity.invites()?,
            oidc: self.identity.oidc()?,
            dns_resolver: self.dns_resolver,
            trusted_proxies: maxcloud_api::client_ip::TrustedProxies::new(self.trusted_proxies.clone()),
            loki: match &self.loki_url {
                Some(url) => {
                    let settings = maxcloud_server::LokiSettings {
                        url: url.clone(),
                        app_label: self.loki_app_label.clone(),
                        revision_label: self.loki_revision_label.clone(),
                        org_id: self.loki_tenant.clone(),
                    };
                    settings.validate()?;
                    Some(settings)
                }
                None => None,
            },
        })
    }
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAXCLOUD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn,sqlx=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Dev(args) => {
            init_logs(args.log_format.as_deref() == Some("json"));
            let mut config = args.config()?;
            config.registry = args.registry(true)?;
            let running = start_until_signal(&config).await?;
            let data = std::fs::canonicalize(&config.data_dir).unwrap_or(config.data_dir.clone());
            println!("max-cloud order service (dev mode)");
            println!("  API:          http://{}/api/v1", running.addr);
            println!("  OpenAPI:      http://{}/api/v1/openapi.json", running.addr);
            println!("  Git repos:    http://{}/git/<org>.git   (password: an API key)", running.addr);
            println!("  data dir:     {}", data.display());
            println!("  database:     {}", redact(&config.database_url()));
            println!("  repositories: {}", data.join("repos").display());
            println!("  platform:     {}", data.join("repos").join("platform.git").display());
            println!("  catalog:      {}", config.xrds_dir.display());
            if let Some(registry) = &config.registry {
                println!(
                    "  registry:     tokens at http://{}/api/v1/registry/token (service {}, issuer {}), JWKS {}",
                    running.addr,
                    registry.service,
                    registry.issuer,
                    data.join("registry").join("jwks.json").display()
                );
            }
            let prices = &config.price_list;
            println!(
                "  prices:       {} {} per vCPU-second, {} per GiB-second",
                prices.currency, prices.vcpu_second, prices.gib_second
            );
            println!(
                "Try: maxcloud --api-url http://{} auth register --email me@example.com --org \"Acme Shop\"",
                running.addr
            );
            running.wait().await
        }
        Command::Serve(args) => {
            init_logs(args.log_format.as_deref() != Some("text"));
            let mut config = args.config()?;
            config.registry = args.registry(false)?;
            let running = start_until_signal(&config).await?;
            tracing::info!(addr = %running.addr, data_dir = %config.data_dir.display(), "listening");
            running.wait().await
        }
        Command::TenantKey { slug, data_dir, database_url, master_key_file } => {
            init_logs(false);
            let url = database_url.unwrap_or_else(|| format!("sqlite://{}", data_dir.join("maxcloud.db").display()));
            let store = open_store(&url).await?;
            let tenant = store.tenant_by_slug(&slug).await?.with_context(|| format!("no tenant {slug:?}"))?;
            let master_path = master_key_file.unwrap_or_else(|| data_dir.join("master.agekey"));
            let master = maxcloud_secrets::MasterKey::load(&master_path)?;
            // Created on first use, as the server does: a tenant onboarded by hand gets its key before its first secret.
            let key = maxcloud_orders::tenant_key(&store, &master, &tenant.id).await?;
            println!("{}", key.identity());
            Ok(())
        }
        Command::RegistryJwks { registry_key_file } => {
            let pem = std::fs::read_to_string(&registry_key_file)
                .with_context(|| format!("cannot read {}", registry_key_file.display()))?;
            let key = maxcloud_registry::SigningKey::from_pem(&pem)
                .with_context(|| format!("--registry-key-file {}", registry_key_file.display()))?;
            println!("{}", serde_json::to_string_pretty(&key.jwks())?);
            Ok(())
        }
        Command::Migrate { database_url } => {
            init_logs(false);
            open_store(&database_url).await.context("migration failed")?;
            println!("migrations applied to {}", redact(&database_url));
            Ok(())
        }
    }
}
