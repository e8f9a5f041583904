//! Tenant secrets: values a tenant sets (`maxcloud secrets set`) reach its namespace only as SOPS-encrypted
//! Kubernetes Secrets committed to the tenant repository, which Flux's kustomize-controller decrypts with the
//! tenant's own age key (`spec.decryption` of the tenant Kustomization). Git, the store and the order log never
//! hold a value in plain text.
//!
//! Key custody ([`keys`]): every tenant has an x25519 age key pair. The public half (recipient) encrypts; the
//! private half (identity) is kept in the store only *sealed* — age-encrypted to the platform's master key
//! ([`MasterKey`], a file the operator provides or `dev` generates) — and is unsealed only to hand it to Flux as
//! the tenant's decryption Secret in the cluster.
//!
//! File format ([`sops`]): what `sops --encrypt --age <recipient> --encrypted-regex '^(data|stringData)$'
//! --mac-only-encrypted` writes, decryptable by the `sops` CLI and by Flux.

pub mod keys;
pub mod sops;

pub use keys::{MasterKey, TenantKey};
pub use sops::{decrypt_secret, encrypt_secret, SecretManifest};

/// What can go wrong with keys and files.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("key: {0}")]
    Key(String),
    #[error("encryption: {0}")]
    Encrypt(String),
    #[error("decryption: {0}")]
    Decrypt(String),
    #[error("file: {0}")]
    Format(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
