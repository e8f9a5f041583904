//! Wiring of the order service: configuration -> store, catalog, repos, order service, HTTP server.
//! The binary (`main.rs`) parses flags into [`Config`]; tests and benches call [`start`] directly.

mod forge;
mod logs;
mod loki;
pub mod registry;
pub mod tenant_secrets;

pub use forge::{ForgeAuth, ForgeConfig};
pub use loki::LokiSettings;
pub use registry::RegistrySettings;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use maxcloud_api::pricing::PriceList;
use maxcloud_api::{ApiConfig, AppState};
use maxcloud_catalog::Catalog;
use maxcloud_gitops::Repos;
use maxcloud_orders::{OrderService, WorkerConfig};
use maxcloud_store::Store;
use tokio::sync::oneshot;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// The platform's age key sealing the tenants' SOPS keys; default `<data_dir>/master.agekey`, created when
    /// missing.
    pub master_key_file: Option<PathBuf>,
    /// Per-organisation limits (`--quotas`); default: none.
    pub quotas: maxcloud_orders::quota::Quotas,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/maxcloud.db`.
    pub database_url: Option<String>,
    pub xrds_dir: PathBuf,
    pub run_worker: bool,
    /// URL under which the cluster's Flux reaches the tenant repositories (`<base>/<slug>.git`), written into
    /// each tenant's `GitRepository` in the platform repository. Default: this server's own
    /// `http://<listen address>/git`.
    pub tenant_git_base_url: Option<String>,
    /// The platform Git token: the password that reads `/git/platform.git`. `None`: not served.
    pub platform_git_token: Option<String>,
    /// (receiver URL, webhook token) of the clusters' Flux notification-controller, poked after merges.
    pub flux_receiver: Option<(String, String)>,
    /// Where the status aggregator watches the cluster (none: no cluster, orders stop at `merged`).
    pub cluster: Option<ClusterAccess>,
    /// What usage costs; the aggregator meters the tenants' pods when a cluster is connected.
    pub price_list: PriceList,
    /// The server's own ServiceAccount: with a cluster and `flux_receiver`, it creates the tenants' Flux Secrets
    /// (`tenant_secrets`), and the tenant directories grant it that.
    pub service_account: Option<maxcloud_gitops::ServiceAccountRef>,
    /// The Git hosting provider of the tenant repositories (`None`: the embedded local provider).
    pub forge: Option<ForgeConfig>,
    /// The container registry's token service (`None`: the registry endpoints answer 404).
    pub registry: Option<RegistrySettings>,
    /// Invites: time to live, public URL, mailer.
    pub invites: maxcloud_api::mail::InviteSettings,
    /// OIDC login of one identity provider (`None`: API keys only).
    pub oidc: Option<maxcloud_api::oidc::OidcConfig>,
    /// The name server custom domains' ownership records (TXT) are looked up at (`None`: the system's resolver).
    pub dns_resolver: Option<SocketAddr>,
    /// Proxies whose `X-Forwarded-For` the audit log believes (`--trusted-proxies`; empty: none).
    pub trusted_proxies: maxcloud_api::client_ip::TrustedProxies,
    /// Container logs from Loki instead of the pod log API (`--loki-url`; also without a cluster).
    pub loki: Option<LokiSettings>,
}

impl Config {
    /// The embedded defaults on a loopback port chosen by the OS: SQLite and the repositories in `data_dir`, the
    /// worker on, no cluster, the default price list.
    pub fn embedded(data_dir: PathBuf) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
            master_key_file: None,
            quotas: Default::default(),
            database_url: None,
            xrds_dir: default_xrds_dir(),
            run_worker: true,
            tenant_git_base_url: None,
            platform_git_token: None,
            flux_receiver: None,
            cluster: None,
            price_list: PriceList::default(),
            service_account: None,
            forge: None,
            registry: Some(RegistrySettings::dev()),
            invites: Default::default(),
            oidc: None,
            dns_resolver: None,
            trusted_proxies: Default::default(),
            loki: None,
        }
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("maxcloud.db").display()))
    }
    pub fn master_key_file(&self) -> PathBuf {
        self.master_key_file.clone().unwrap_or_else(|| self.data_dir.join("master.agekey"))
    }
    pub fn repos_dir(&self) -> PathBuf {
        self.data_dir.join("repos")
    }
}

/// The XRD directory used when none is configured: `MAXCLOUD_XRDS_DIR`, else `./xrds`, else the
/// `xrds/` of the source tree this binary was built from.
pub fn default_xrds_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MAXCLOUD_XRDS_DIR") {
        return PathBuf::from(dir);
    }
    let local = PathBuf::from("xrds");
    if local.is_dir() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../xrds")
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub orders: OrderService,
    pub store: Store,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Stop accepting connections and wait for in-flight requests.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.await??;
        self.store.close().await;
        Ok(())
    }

    /// Wait until the server ends (ctrl-c / SIGTERM when started with [`start_until_signal`]).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await??;
        Ok(())
    }
}

/// Open the store and apply migrations.
pub async fn open_store(url: &str) -> anyhow::Result<Store> {
    let store = Store::connect(url).await.with_context(|| format!("cannot open database {}", redact(url)))?;
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(store)
}

/// Hide a password in a database URL for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Start the server; it runs until [`Running::stop`].
pub async fn start(config: &Config) -> anyhow::Result<Running> {
    let (tx, rx) = oneshot::channel();
    start_with(
        config,
        async move {
            let _ = rx.await;
        },
        Some(tx),
    )
    .await
}

/// Start the server; it runs until ctrl-c or SIGTERM.
pub async fn start_until_signal(config: &Config) -> anyhow::Result<Running> {
    start_with(config, shutdown_signal(), None).await
}

async fn start_with(
    config: &Config,
    until: impl std::future::Future<Output = ()> + Send + 'static,
    shutdown: Option<oneshot::Sender<()>>,
) -> anyhow::Result<Running> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    std::fs::create_dir_all(config.repos_dir())?;
    let catalog = Catalog::load_dir(&config.xrds_dir)
        .with_context(|| format!("cannot load the catalog from {}", config.xrds_dir.display()))?;
    let store = open_store(&config.database_url()).await?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let repos = Arc::new(Repos::new(config.repos_dir()));
    let forge = match &config.forge {
        Some(f) => Some(maxcloud_orders::ForgeSettings {
            forge: f.client()?,
            webhook_secret: f.webhook_secret.clone(),
            poll_interval: f.poll_interval,
        }),
        None => None,
    };
    let default_base = match &config.forge {
        Some(f) => f.default_git_base_url(),
        None => default_git_base_url(addr),
    };
    let prices = config.price_list.clone();
    let worker = WorkerConfig {
        run_worker: config.run_worker,
        forge,
        price_estimate: Some(Arc::new(move |f: &maxcloud_catalog::Footprint| prices.monthly_estimate(f))),
        tenant_git_base_url: config.tenant_git_base_url.clone().unwrap_or(default_base),
        flux_receiver: config.flux_receiver.as_ref().map(|(url, token)| maxcloud_orders::FluxReceiver::new(url, token)),
        order_service: config.service_account.clone(),
        ..WorkerConfig::default()
    };
    // The platform repository exists before the first registration. Created before the order service starts
    // its worker, so start-up stays as quick as before for the crash-resume path.
    {
        let repos = repos.clone();
        let committer = worker.committer.clone();
        tokio::task::spawn_blocking(move || repos.init_platform(&committer))
            .await
            .context("platform repository task")?
            .context("cannot create the platform repository")?;
    }
    let master_key = maxcloud_secrets::MasterKey::load_or_create(&config.master_key_file())
        .with_context(|| format!("master key {}", config.master_key_file().display()))?;
    let orders = OrderService::new(store.clone(), Arc::new(catalog), repos.clone(), worker)
        .with_master_key(master_key)
        .with_quotas(config.quotas.clone());
    // The platform repository exists before the first registration (created above, cheaply); tenants whose
    // registration stopped before their platform commit are onboarded in the background, so start-up does not
    // wait on one Git commit per tenant.
    {
        let orders = orders.clone();
        tokio::spawn(async move {
            match orders.sync_platform().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tenants = n, "tenants added to the platform repository"),
                Err(e) => tracing::error!(error = %e, "cannot bring the platform repository up to date"),
            }
        });
    }
    let trees = match &config.cluster {
        Some(access) => {
            let client = kube_client(access).await.context("cannot reach the cluster")?;
            match (&config.service_account, &config.flux_receiver) {
                (Some(_), Some((url, token))) => {
                    let receiver = maxcloud_orders::FluxReceiver::new(url, token);
                    let git = match config.forge.as_ref().and_then(|f| f.flux_read_token.clone()) {
                        Some((username, password)) => tenant_secrets::GitCredentials::Static { username, password },
                        None if config.forge.is_some() => {
                            tracing::warn!(
                                "no --git-provider-read-token: Flux gets no credentials for the tenant repositories"
                            );
                            tenant_secrets::GitCredentials::Unset
                        }
                        None => tenant_secrets::GitCredentials::Mint,
                    };
                    tenant_secrets::spawn(client.clone(), orders.clone(), token.clone(), git, Some(receiver));
                }
                (Some(_), None) => {
                    tracing::warn!("--service-account without --flux-webhook-token: tenant Flux secrets not created")
                }
                _ => {}
            }
            Some((spawn_aggregator(client.clone(), store.clone(), orders.clone(), repos.clone()), client))
        }
        None => None,
    };
    let cluster_connected = trees.is_some();
    let platform_git_token_hash =
        config.platform_git_token.as_deref().filter(|t| !t.is_empty()).map(maxcloud_api::auth::hash_secret);
    let state = AppState::new(
        orders.clone(),
        store.clone(),
        ApiConfig {
            repos_root: config.repos_dir(),
            cluster_connected,
            platform_git_token_hash,
            price_list: config.price_list.clone(),
            invites: maxcloud_api::mail::InviteSettings {
                public_url: Some(config.invites.public_url.clone().unwrap_or_else(|| public_base_url(addr))),
                ..config.invites.clone()
            },
            oidc: match &config.oidc {
                Some(c) => Some(Arc::new(maxcloud_api::oidc::Verifier::new(c.clone()).map_err(anyhow::Error::msg)?)),
                None => None,
            },
            trusted_proxies: config.trusted_proxies.clone(),
        },
    );
    let state = match config.dns_resolver {
        Some(addr) => state.with_dns_resolver(maxcloud_api::dns::DnsResolver::Server(addr)),
        None => state,
    };
    let state = match &config.registry {
        Some(settings) => state.with_registry(settings.load(&config.data_dir)?),
        None => state,
    };
    let state = match trees {
        Some((tree, client)) => state.with_trees(Arc::new(Trees(tree))).with_logs(Arc::new(logs::PodLogs::new(client))),
        None => state,
    };
    // Loki, when configured, is read instead of the pod log API.
    let state = match &config.loki {
        Some(settings) => state.with_logs(Arc::new(loki::LokiSource(Arc::new(loki::LokiLogs::new(settings.clone())?)))),
        None => state,
    };
    let app = maxcloud_api::router(state).layer(tower_http::trace::TraceLayer::new_for_http());
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(until).await });
    Ok(Running { addr, orders, store, shutdown, task })
}

/// How the server reaches the cluster it reports on.
#[derive(Debug, Clone)]
pub enum ClusterAccess {
    /// A kubeconfig file (its current context).
    Kubeconfig(PathBuf),
    /// The pod's service account.
    InCluster,
}

async fn kube_client(access: &ClusterAccess) -> anyhow::Result<kube::Client> {
    let config = match access {
        ClusterAccess::Kubeconfig(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?
        }
        ClusterAccess::InCluster => kube::Config::incluster()?,
    };
    Ok(kube::Client::try_from(config)?)
}

/// The aggregator's resource trees, as the API shows them.
struct Trees(maxcloud_status::Tree);

/// The API's view of a tree node.
fn api_node(n: maxcloud_status::Node) -> maxcloud_api_model::ResourceNode {
    let observed = n.summary.is_some();
    let summary = n.summary.unwrap_or_default();
    maxcloud_api_model::ResourceNode {
        observed,
        api_version: n.key.api_version,
        kind: n.key.kind,
        name: n.key.name,
        namespace: n.key.namespace,
        ready: summary.ready,
        synced: summary.synced,
        message: summary.message,
        children: n.children.into_iter().map(api_node).collect(),
    }
}

impl maxcloud_api::ResourceTrees for Trees {
    fn tree(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<maxcloud_api_model::ResourceNode> {
        let key = maxcloud_status::ObjKey {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        };
        self.0.get(&key).map(api_node)
    }

    fn top_level(&self, namespace: &str) -> Vec<maxcloud_api_model::ResourceNode> {
        self.0.top_level(namespace).into_iter().map(api_node).collect()
    }
}

/// Runs the status aggregator (with metering); forwards the order transitions it records to the live event bus and reports
/// the outcome of merged orders back to Git (a commit status on the merge commit). Returns its trees.
fn spawn_aggregator(
    client: kube::Client,
    store: Store,
    orders: OrderService,
    repos: Arc<Repos>,
) -> maxcloud_status::Tree {
    let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
    let ancestry: maxcloud_status::Ancestry = Arc::new(move |slug: &str, applied: &str, merge_commit: &str| {
        repos.contains(slug, applied, merge_commit).unwrap_or(false)
    });
    let aggregator = maxcloud_status::Aggregator::new(client, store).with_applied(ancestry).with_metering();
    let tree = aggregator.tree();
    tokio::spawn(async move {
        aggregator.run(tx).await;
        tracing::warn!("the status aggregator stopped");
    });
    tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            use maxcloud_status::Event;
            let (update, url, message) = match event {
                Event::Observed { tenant_id, kind, name, order: Some((order_id, state)), url, message, .. } => {
                    // The service event (if any) was logged before the order's: one announcement wakes both.
                    (maxcloud_orders::OrderUpdate { tenant_id, order_id, kind, name, state }, url, message)
                }
                Event::Observed { tenant_id, changed: true, .. } => {
                    orders.announce_service(&tenant_id);
                    continue;
                }
                Event::Deleted { tenant_id: Some(tenant_id), kind, name, order: Some((order_id, state)) } => {
                    (maxcloud_orders::OrderUpdate { tenant_id, order_id, kind, name, state }, None, None)
                }
                Event::Applied { tenant_id, order_id, kind, name, .. } => {
                    let state = "applied".to_string();
                    orders.publish(maxcloud_orders::OrderUpdate { tenant_id, order_id, kind, name, state });
                    continue;
                }
                Event::Unmanaged { tenant, kind, name, .. } => {
                    tracing::debug!(%tenant, %kind, %name, "unmanaged resource");
                    continue;
                }
                Event::Observed { .. } | Event::Deleted { .. } => continue,
            };
            let (order_id, state) = (update.order_id.clone(), update.state.clone());
            orders.publish(update);
            // Off the forwarder, retried: a Git hiccup must neither delay the next events nor lose the status.
            let orders = orders.clone();
            tokio::spawn(async move {
                for (attempt, pause) in [1u64, 5, 25].into_iter().enumerate() {
                    match orders.report_outcome(&order_id, &state, url.as_deref(), message.as_deref()).await {
                        Ok(()) => return,
                        Err(e) => {
                            tracing::warn!(order = %order_id, attempt, error = %e, "cannot report the outcome to Git")
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(pause)).await;
                }
                tracing::error!(order = %order_id, "gave up reporting the outcome to Git");
            });
        }
    });
    tree
}

/// `http://<addr>`, with a wildcard listen address replaced by loopback: the API's URL in invite e-mails when
/// no `--public-url` is given.
fn public_base_url(addr: SocketAddr) -> String {
    default_git_base_url(addr).trim_end_matches("/git").to_string()
}

/// `http://<addr>/git`, with a wildcard listen address replaced by loopback.
fn default_git_base_url(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/git")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
