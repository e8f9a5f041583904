//! The REST API of the order service (axum). Thin: it parses requests into domain types once, calls
//! [`maxcloud_orders::OrderService`] and the store, and shapes the answers into `maxcloud_api_model`
//! wire types.
//!
//! Cross-cutting concerns live in layers: [`auth`] resolves the caller from `Authorization: Bearer mc_…`
//! once per request, [`audit`] records every mutating call (accepted or refused), [`error`] turns every
//! failure into `{"error": {"code", "message", "field"?}}`.

pub mod audit;
pub mod auth;
pub mod client_ip;
mod convert;
pub mod dns;
pub mod error;
mod json;
pub mod mail;
pub mod oidc;
pub mod openapi;
pub mod pricing;
pub mod registry;
mod routes;

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use maxcloud_orders::OrderService;
use maxcloud_store::Store;

/// Largest request body accepted on the JSON API.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What the API needs at run time.
#[derive(Clone)]
pub struct ApiConfig {
    /// Root of the tenant repositories (`<slug>.git`), served read-only at `/git/<slug>.git`.
    pub repos_root: PathBuf,
    /// Whether a cluster (status aggregator) reports back; without one, orders end at `merged`.
    pub cluster_connected: bool,
    /// SHA-256 (hex, see `auth::hash_secret`) of the platform Git token: the only credential that reads the
    /// platform repository at `/git/platform.git`. `None`: the platform repository is not served.
    pub platform_git_token_hash: Option<String>,
    /// What usage costs (`GET /api/v1/usage`).
    pub price_list: pricing::PriceList,
    /// Invites: time to live, the public URL for the accept command, the mailer.
    pub invites: mail::InviteSettings,
    /// OIDC login (bearer JWTs of one identity provider); `None`: API keys only.
    pub oidc: Option<Arc<oidc::Verifier>>,
    /// Proxies whose `X-Forwarded-For` names the client the audit log records; empty: the TCP peer is.
    pub trusted_proxies: client_ip::TrustedProxies,
}

/// The resource trees of a connected cluster (the status aggregator's; the API does not watch the cluster
/// itself).
pub trait ResourceTrees: Send + Sync {
    /// The tree under the XR `api_version`/`kind` `namespace`/`name`, if the aggregator has seen it.
    fn tree(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<maxcloud_api_model::ResourceNode>;
    /// The trees of every XR in `namespace` that no other XR composed.
    fn top_level(&self, namespace: &str) -> Vec<maxcloud_api_model::ResourceNode>;
}

/// The containers' logs of a connected cluster (the server implements it with the pod log API, or Loki's query API
/// with `--loki-url`).
pub trait LogSource: Send + Sync {
    /// The lines of every pod of App `app` in `namespace` (all its revisions), oldest first, at most `tail` of them
    /// overall; with `follow`, then every new line of these and of pods that start later, until the stream is dropped.
    fn logs(
        &self,
        namespace: String,
        app: String,
        query: LogQuery,
    ) -> futures::future::BoxFuture<
        'static,
        Result<futures::stream::BoxStream<'static, maxcloud_api_model::LogLine>, String>,
    >;
}

/// What part of the logs is wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogQuery {
    pub follow: bool,
    pub tail: u32,
}

/// Shared state of all handlers.
#[derive(Clone)]
pub struct AppState {
    pub orders: OrderService,
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub audit: audit::AuditWriter,
    /// `None` without a cluster.
    pub trees: Option<Arc<dyn ResourceTrees>>,
    /// Container logs; `None` without a cluster.
    pub logs: Option<Arc<dyn LogSource>>,
    /// The container registry's token service; `None`: the registry endpoints answer 404.
    pub registry: Option<Arc<registry::RegistryConfig>>,
    pub registry_client: registry::RegistryClient,
    /// Where custom domains' ownership records (TXT) are looked up.
    pub dns: dns::DnsResolver,
}

impl AppState {
    /// State for the router; starts the audit writer (call inside a tokio runtime).
    pub fn new(orders: OrderService, store: Store, config: ApiConfig) -> AppState {
        let audit = audit::AuditWriter::start(store.clone());
        AppState {
            orders,
            store,
            config: Arc::new(config),
            audit,
            trees: None,
            logs: None,
            registry: None,
            registry_client: Default::default(),
            dns: Default::default(),
        }
    }

    /// With the container registry's token service.
    pub fn with_registry(mut self, registry: registry::RegistryConfig) -> AppState {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// With the container logs of a connected cluster.
    pub fn with_logs(mut self, logs: Arc<dyn LogSource>) -> AppState {
        self.logs = Some(logs);
        self
    }

    /// Looking up custom domains' ownership records with `dns` instead of the system's resolver.
    pub fn with_dns_resolver(mut self, dns: dns::DnsResolver) -> AppState {
        self.dns = dns;
        self
    }

    /// With the resource trees of a connected cluster.
    pub fn with_trees(mut self, trees: Arc<dyn ResourceTrees>) -> AppState {
        self.trees = Some(trees);
        self
    }
}

/// The whole HTTP surface: `/healthz`, `/readyz`, `/api/v1/…`, `/git/<slug>.git/…`.
pub fn router(state: AppState) -> Router {
    let api = routes::api_routes()
        .layer(axum::middleware::from_fn_with_state(state.clone(), audit::audit_layer))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::resolve_layer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response_with_state(state.clone(), routes::cluster_header));
    Router::new()
        .merge(routes::health::routes())
        .nest("/api/v1", api)
        .merge(routes::git::routes())
        .fallback(|| async { error::ApiError::not_found("no such endpoint") })
        .with_state(state)
}
