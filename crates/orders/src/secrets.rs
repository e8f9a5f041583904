//! Tenant secrets as orders: `secrets/<name>.yaml` in the tenant repository, a SOPS file encrypted to the tenant's
//! age key (see `maxcloud_secrets`). The value is encrypted here, before the order is stored: the order log,
//! the resource row and Git only ever hold the encrypted file (and the key names).

use std::sync::Arc;

use maxcloud_catalog::{Action, ResourceName};
use maxcloud_secrets::{MasterKey, SecretData, SecretManifest, TenantKey};
use maxcloud_store::{NewOrder, SealedKey, Store, Tenant};
use serde_json::json;

use crate::service::{OrderError, OrderService, Placed};

/// The order kind of tenant secrets (not a catalog kind: no XRD, no composition).
pub const SECRET_KIND: &str = "Secret";

/// Where a secret lives in the tenant repository.
pub fn secret_path(name: &ResourceName) -> String {
    format!("secrets/{name}.yaml")
}

/// A secret to set (create or replace) or delete, already parsed.
#[derive(Debug, Clone)]
pub struct PlaceSecret {
    pub tenant: Tenant,
    pub name: ResourceName,
    /// `None`: delete the secret.
    pub data: Option<SecretData>,
    pub requester: String,
}

impl OrderService {
    /// Orders a secret: `create` when the tenant has none of that name, else `update` (its keys replaced by
    /// `data`); `delete` without data. Secrets merge without review unless the tenant's policy says otherwise.
    pub async fn place_secret(&self, req: PlaceSecret) -> Result<Placed, OrderError> {
        let existing = self.store.resource_by_name(&req.tenant.id, SECRET_KIND, req.name.as_str()).await?;
        let (action, parameters) = match &req.data {
            None if existing.is_none() => return Err(OrderError::NotFound("secret")),
            None => (Action::Delete, json!({})),
            Some(data) => {
                let key = self.tenant_key(&req.tenant).await?;
                let manifest = SecretManifest {
                    name: req.name.as_str().to_string(),
                    namespace: format!("mc-{}", req.tenant.slug),
                    labels: [
                        ("app.kubernetes.io/managed-by".to_string(), "maxcloud".to_string()),
                        ("maxcloud.dev/tenant".to_string(), req.tenant.slug.clone()),
                    ]
                    .into(),
                    data: data.values().clone(),
                };
                let file =
                    maxcloud_secrets::encrypt_secret(&manifest, &key.recipient(), time::OffsetDateTime::now_utc())
                        .map_err(|e| OrderError::Internal(e.to_string()))?;
                let action = if existing.is_some() { Action::Update } else { Action::Create };
                (action, json!({"keys": data.keys(), "file": file}))
            }
        };
        let own = self.store.merge_policy(&req.tenant.id, SECRET_KIND, action.as_str()).await?;
        let (merge_policy, reviewers, required_approvals) = match own {
            Some(p) => (p.policy, p.reviewers, p.required_approvals),
            None => ("auto".to_string(), Vec::new(), 1),
        };
        let new = NewOrder {
            id: uuid::Uuid::new_v4().to_string(),
            tenant_id: req.tenant.id.clone(),
            action: action.as_str().to_string(),
            kind: SECRET_KIND.to_string(),
            name: req.name.as_str().to_string(),
            parameters: parameters.to_string(),
            requester: req.requester,
            idempotency_key: None,
            request_hash: None,
            path: secret_path(&req.name),
            merge_policy,
            reviewers,
            required_approvals,
        };
        self.accept(&req.tenant, new).await
    }

    /// The tenant's key, created (and sealed) on first use.
    pub async fn tenant_key(&self, tenant: &Tenant) -> Result<TenantKey, OrderError> {
        tenant_key(&self.store, self.master()?, &tenant.id).await
    }

    /// Whether this server can encrypt secrets (it has a master key).
    pub fn secrets_enabled(&self) -> bool {
        self.master_key.is_some()
    }

    fn master(&self) -> Result<&Arc<MasterKey>, OrderError> {
        self.master_key
            .as_ref()
            .ok_or_else(|| OrderError::InvalidState("secrets are not enabled on this server (no master key)".into()))
    }
}

/// A tenant's key from the store, unsealed with `master`; created and sealed on first use (racing creators
/// agree on the first stored key).
pub async fn tenant_key(store: &Store, master: &MasterKey, tenant_id: &str) -> Result<TenantKey, OrderError> {
    let sealed = match store.sops_key(tenant_id).await? {
        Some(sealed) => sealed,
        None => {
            let key = TenantKey::generate();
            let sealed = SealedKey {
                recipient: key.recipient(),
                sealed: master.seal(&key).map_err(|e| OrderError::Internal(e.to_string()))?,
            };
            store.insert_sops_key(tenant_id, sealed).await?
        }
    };
    master.unseal(&sealed.sealed).map_err(|e| OrderError::Internal(e.to_string()))
}
