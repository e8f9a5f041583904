//! Tenant secrets: values go in, only key names ever come out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `PUT /api/v1/secrets/{name}`: the secret's keys and values (it holds exactly these afterwards).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetSecretRequest {
    /// KEY → value (UTF-8 text). Keys: letters, digits, `-`, `_`, `.`.
    pub data: BTreeMap<String, String>,
}

/// A secret as the tenant sees it: names, never values.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretInfo {
    pub name: String,
    pub keys: Vec<String>,
    /// `pending` until the latest order is on `main`, then as the cluster reports; `deleting` while removed.
    pub status: String,
    /// The file in the tenant repository (SOPS-encrypted to the tenant's key).
    pub path: String,
    /// The latest order that changed it.
    pub order_id: String,
    pub created_at: String,
    pub updated_at: String,
}

/// How an App reads a secret key: `--secret-env VAR=secret:key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub secret: String,
    pub key: String,
}
