//! The audit layer: every mutating call (POST, PUT, PATCH, DELETE), accepted or refused, gets one
//! entry with who, what, the status and — for refusals — why.

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use maxcloud_store::{AuditEntry, Store};
use tokio::sync::{mpsc, oneshot};

use crate::auth::Caller;
use crate::error::ErrorNote;
use crate::AppState;

/// Set by handlers on their response: what the call acted on (`App/shop`, an order id, …).
#[derive(Debug, Clone)]
pub struct AuditTarget(pub String);

pub async fn audit_layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    if matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let path = req.uri().path().to_string();
    let caller = req.extensions().get::<Caller>().cloned();
    // The peer (set when served with connect info), or the client a trusted proxy in front names.
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|info| info.0);
    let source = state.config.trusted_proxies.source(peer, req.headers());
    let resp = next.run(req).await;
    let (tenant_id, actor) = match &caller {
        Some(Caller::Key(p) | Caller::BadOnBehalfOf(p)) => (Some(p.tenant.id.clone()), Some(crate::auth::actor(p))),
        _ => (None, None),
    };
    let entry = AuditEntry {
        tenant_id,
        actor,
        method: method.to_string(),
        action: action_name(&method, &path),
        path,
        status: resp.status().as_u16(),
        target: resp.extensions().get::<AuditTarget>().map(|t| t.0.clone()),
        detail: resp.extensions().get::<ErrorNote>().map(|n| n.0.chars().take(1000).collect()),
        source,
    };
    if let Err(e) = state.audit.write(entry).await {
        tracing::error!(error = %e, "cannot write audit entry");
    }
    resp
}

/// Writes audit entries with group commit: concurrent requests' entries share one transaction, and
/// each request still waits until its entry is stored before it answers. One write transaction per
/// busy moment instead of one per request keeps the single SQLite writer free for orders.
#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<(AuditEntry, oneshot::Sender<Result<(), String>>)>,
}

impl AuditWriter {
    /// Start the writer task (it ends when every `AuditWriter` clone is dropped).
    pub fn start(store: Store) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<(AuditEntry, oneshot::Sender<Result<(), String>>)>(4096);
        tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 256 {
                    match rx.try_recv() {
                        Ok(next) => batch.push(next),
                        Err(_) => break,
                    }
                }
                let (entries, acks): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
                let result = store.audit_many(&entries).await.map_err(|e| e.to_string());
                for ack in acks {
                    let _ = ack.send(result.clone());
                }
            }
        });
        AuditWriter { tx }
    }

    /// Store `entry`; resolves once it is committed.
    pub async fn write(&self, entry: AuditEntry) -> Result<(), String> {
        let (ack, done) = oneshot::channel();
        self.tx.send((entry, ack)).await.map_err(|_| "audit writer stopped".to_string())?;
        done.await.map_err(|_| "audit writer stopped".to_string())?
    }
}

/// `POST /api/v1/orders/{id}/approve` -> `orders.approve`, `DELETE /api/v1/services/{id}` -> `services.delete`.
fn action_name(method: &Method, path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches("/api/v1/").split('/').filter(|s| !s.is_empty()).collect();
    let resource = match parts.as_slice() {
        ["auth", what, ..] => format!("auth.{what}"),
        ["services", _, what @ ("traffic" | "domains"), ..] => format!("services.{what}"),
        [what, ..] => what.to_string(),
        [] => "root".into(),
    };
    let verb = match (method, parts.last()) {
        (_, Some(&"approve")) => "approve",
        (_, Some(&"reject")) => "reject",
        (_, Some(&"verify")) => "verify",
        (&Method::POST, _) if parts.len() <= 2 && resource.starts_with("auth.register") => "register",
        (&Method::POST, _) => "create",
        (&Method::DELETE, _) => "delete",
        (&Method::PUT, _) | (&Method::PATCH, _) => "update",
        _ => "update",
    };
    if resource == "auth.register" || resource == "auth.accept-invite" {
        return resource;
    }
    format!("{resource}.{verb}")
}
