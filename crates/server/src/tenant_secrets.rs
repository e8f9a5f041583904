//! The two Secrets each tenant namespace needs for Flux, created by the order service so that no credential is
//! ever committed: `maxcloud-git-token`, `maxcloud-webhook-token` (the platform's Receiver token) and
//! `maxcloud-sops-age` (the tenant's age identity, with which Flux decrypts the tenant's SOPS-encrypted Secrets).
//!
//! What `maxcloud-git-token` holds depends on where the tenant repositories live ([`GitCredentials`]): with the
//! embedded local provider, username `flux` and a Git read token for the tenant's repository, minted here and
//! stored only hashed; with a forge, the read-only credentials the platform configured for Flux
//! (`--git-provider-read-token`), kept up to date when they are rotated.
//!
//! The server may touch exactly these two Secrets in tenant namespaces: the tenant directory of the platform
//! repository grants its ServiceAccount a Role there (`gitops/tenant/rbac.yaml.j2`, rendered when
//! `--service-account` is set); its cluster-wide rights stay read-only. Tenants whose namespace or Role Flux
//! has not applied yet are retried on the next pass; once both Secrets are there, the tenant's Receiver is
//! called so Flux fetches at once instead of waiting for its retry.

use std::collections::HashSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PostParams};
use maxcloud_orders::{FluxReceiver, OrderService};
use maxcloud_store::{AuditEntry, Tenant};
use serde_json::json;

/// The key of the identity in the SOPS Secret: kustomize-controller imports every `*.agekey` entry.
pub const SOPS_IDENTITY_KEY: &str = "identity.agekey";

/// How often tenants still missing their Secrets are retried (and new tenants picked up).
const PASS: Duration = Duration::from_secs(3);

/// What Flux reads the tenant repositories with.
#[derive(Clone)]
pub enum GitCredentials {
    /// A read token of the local provider, one per tenant, minted when the Secret is created.
    Mint,
    /// Fixed credentials for the forge (a read-only token of the Git hosting provider).
    Static { username: String, password: String },
    /// None are configured: only the webhook token is written.
    Unset,
}

/// Keeps every tenant's Flux Secrets in place, forever (one pass every few seconds over the tenants not done).
pub fn spawn(
    client: kube::Client,
    orders: OrderService,
    webhook_token: String,
    git: GitCredentials,
    receiver: Option<FluxReceiver>,
) {
    let store = orders.store().clone();
    tokio::spawn(async move {
        let mut done: HashSet<String> = HashSet::new();
        loop {
            match store.tenants().await {
                Ok(tenants) => {
                    let pending: Vec<&Tenant> = tenants.iter().filter(|t| !done.contains(&t.id)).collect();
                    for tenant in pending {
                        match ensure(&client, &orders, tenant, &webhook_token, &git).await {
                            Ok(created) => {
                                done.insert(tenant.id.clone());
                                if created {
                                    tracing::info!(tenant = %tenant.slug, "Flux secrets created");
                                    if let Some(receiver) = &receiver {
                                        if let Err(e) = receiver.notify(&tenant.slug, "secrets").await {
                                            tracing::warn!(tenant = %tenant.slug, error = %e, "cannot call the Receiver");
                                        }
                                    }
                                }
                            }
                            // Namespace or Role not applied by Flux yet: next pass.
                            Err(e) => {
                                tracing::debug!(tenant = %tenant.slug, error = %e, "Flux secrets not in place yet")
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list tenants"),
            }
            tokio::time::sleep(PASS).await;
        }
    });
}

/// Creates what is missing in the tenant's namespace and brings rotated credentials up to date; true when
/// something was written. An error (namespace or Role not there yet) means: try again later.
pub async fn ensure(
    client: &kube::Client,
    orders: &OrderService,
    tenant: &Tenant,
    webhook_token: &str,
    git: &GitCredentials,
) -> Result<bool, String> {
    let store = orders.store();
    let namespace = format!("mc-{}", tenant.slug);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    let webhook_data = json!({"token": webhook_token});
    let mut wrote = keep(&secrets, &namespace, maxcloud_gitops::TENANT_WEBHOOK_SECRET, webhook_data).await?;
    // The tenant's age identity, with which Flux decrypts its SOPS-encrypted Secrets (the tenant Kustomization
    // cannot reconcile without it).
    if orders.secrets_enabled() {
        let identity = orders.tenant_key(tenant).await.map_err(|e| e.to_string())?.identity();
        let data = serde_json::Value::Object([(SOPS_IDENTITY_KEY.to_string(), json!(identity))].into_iter().collect());
        wrote |= keep(&secrets, &namespace, maxcloud_gitops::TENANT_SOPS_SECRET, data).await?;
    }
    match git {
        GitCredentials::Static { username, password } => {
            let data = json!({"username": username, "password": password});
            wrote |= keep(&secrets, &namespace, maxcloud_gitops::TENANT_GIT_SECRET, data).await?;
            return Ok(wrote);
        }
        GitCredentials::Unset => return Ok(wrote),
        GitCredentials::Mint => {}
    }
    if secrets.get_opt(maxcloud_gitops::TENANT_GIT_SECRET).await.map_err(|e| e.to_string())?.is_none() {
        let (token, key) = maxcloud_api::auth::generate_key(maxcloud_api::auth::GIT_TOKEN_PREFIX, "flux");
        let (id, _) = store.create_git_token(&tenant.id, &key.hash).await.map_err(|e| e.to_string())?;
        let data = json!({"username": "flux", "password": token});
        let created = create(&secrets, &namespace, maxcloud_gitops::TENANT_GIT_SECRET, data).await;
        let entry = AuditEntry {
            tenant_id: Some(tenant.id.clone()),
            actor: Some("max-cloud".into()),
            method: "SYSTEM".into(),
            path: format!("/api/v1/namespaces/{namespace}/secrets/{}", maxcloud_gitops::TENANT_GIT_SECRET),
            status: if created.is_ok() { 201 } else { 500 },
            action: "flux.git-token.create".into(),
            target: Some(format!("git-token/{id}")),
            detail: created.as_ref().err().cloned(),
            source: None,
        };
        if let Err(e) = store.audit(&entry).await {
            tracing::error!(error = %e, "cannot write audit entry");
        }
        if let Err(e) = created {
            // The token never reached the cluster: revoke it rather than leave an unused credential.
            let _ = store.revoke_git_token(&tenant.id, &id).await;
            return Err(e);
        }
        wrote = true;
    }
    Ok(wrote)
}

/// Create the Secret `name` with `data`, or bring it up to date (a rotated token); true when something was written.
async fn keep(secrets: &Api<Secret>, namespace: &str, name: &str, data: serde_json::Value) -> Result<bool, String> {
    let wanted: std::collections::BTreeMap<String, String> =
        serde_json::from_value(data.clone()).map_err(|e| e.to_string())?;
    match secrets.get_opt(name).await.map_err(|e| e.to_string())? {
        Some(existing) if wanted.iter().all(|(k, v)| token_of(&existing, k).as_deref() == Some(v.as_str())) => {
            Ok(false)
        }
        Some(mut existing) => {
            existing.data = None;
            existing.string_data = Some(wanted);
            secrets.replace(name, &PostParams::default(), &existing).await.map_err(|e| e.to_string())?;
            Ok(true)
        }
        None => create(secrets, namespace, name, data).await.map(|_| true),
    }
}

async fn create(secrets: &Api<Secret>, namespace: &str, name: &str, data: serde_json::Value) -> Result<(), String> {
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {"app.kubernetes.io/managed-by": "maxcloud"}},
        "type": "Opaque",
        "stringData": data,
    }))
    .map_err(|e| e.to_string())?;
    secrets.create(&PostParams::default(), &secret).await.map(|_| ()).map_err(|e| e.to_string())
}

fn token_of(secret: &Secret, key: &str) -> Option<String> {
    let bytes = secret.data.as_ref()?.get(key)?;
    String::from_utf8(bytes.0.clone()).ok()
}
